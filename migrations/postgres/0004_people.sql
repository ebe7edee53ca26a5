-- People and machines that act through the web server: users with roles,
-- their server-side sessions, API tokens, and approvals counted towards an
-- action's separation-of-duties rule. No secret is stored in the clear: the
-- gateway hashes passwords, session ids and tokens before they get here.

CREATE TABLE users (
    name                 TEXT PRIMARY KEY,   -- [a-z0-9._-], 1 to 64
    role                 TEXT NOT NULL CHECK (role IN ('viewer', 'approver', 'admin')),
    password_hash        TEXT NOT NULL,      -- PHC string
    created_at           TEXT NOT NULL,
    password_changed_at  TEXT NOT NULL
);

-- The cookie holds a random secret; only its SHA-256 is kept, so a copy of
-- the database signs nobody in.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,            -- hex SHA-256 of the cookie's secret
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,               -- RFC 3339 UTC; compared parsed, not as text
    remote      TEXT
);
CREATE INDEX sessions_user ON sessions (user_name);

-- Names are never reused, revoked or not, so `token:NAME` in the log means
-- one token.
CREATE TABLE api_tokens (
    name          TEXT PRIMARY KEY,
    scope         TEXT NOT NULL CHECK (scope IN ('read', 'propose')),
    token_hash    TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the token
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,                      -- to the minute
    revoked_at    TEXT
);

-- The approvals an action has collected for what it now asks; a new
-- snapshot plan clears them (the audit log keeps every one).
CREATE TABLE approvals (
    action_id  TEXT NOT NULL REFERENCES actions (id),
    approver   TEXT NOT NULL,
    at         TEXT NOT NULL,
    reason     TEXT,
    position   BIGINT NOT NULL,              -- 1, 2, …: the order they came in
    PRIMARY KEY (action_id, approver)
);
