-- Actions, their lifecycle state, and the append-only, hash-chained audit log.

CREATE TABLE actions (
    id          TEXT PRIMARY KEY,          -- UUID v7
    created_at  TEXT NOT NULL,             -- RFC 3339, UTC
    updated_at  TEXT NOT NULL,
    requester   TEXT NOT NULL,
    host        TEXT,
    command     TEXT NOT NULL,
    state       TEXT NOT NULL,
    decision    TEXT,
    risk        INTEGER,
    reasons     TEXT NOT NULL DEFAULT '[]', -- JSON array
    version     INTEGER NOT NULL DEFAULT 0  -- bumped on every transition
);
CREATE INDEX actions_state ON actions (state, created_at);

CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,        -- 1, 2, 3, … without gaps
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action_id  TEXT,
    host       TEXT,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,              -- canonical JSON
    prev_hash  TEXT NOT NULL,              -- hex SHA-256 of the previous event
    hash       TEXT NOT NULL               -- hex SHA-256 over prev_hash and this event
);
CREATE INDEX audit_events_action ON audit_events (action_id, seq);
CREATE INDEX audit_events_kind ON audit_events (kind, seq);

-- The head of the chain, one row. Every append starts by writing this row,
-- which serialises writers: SQLite takes its write lock at once instead of
-- upgrading a read lock later (which can fail with SQLITE_BUSY).
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed snapshots of the head, so that recomputing the chain after an edit,
-- or cutting off its tail, is detected too.
CREATE TABLE audit_checkpoints (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    signed_at   TEXT NOT NULL,
    public_key  TEXT NOT NULL,             -- hex ed25519 public key
    signature   TEXT NOT NULL              -- hex ed25519 signature
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
