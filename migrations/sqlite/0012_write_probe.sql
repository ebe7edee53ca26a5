-- One row that /readyz rewrites to prove the database still takes a
-- committed write (a full disk fails the COMMIT). PostgreSQL needs no
-- table: its probe extends a temporary one, which a full tablespace refuses.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
