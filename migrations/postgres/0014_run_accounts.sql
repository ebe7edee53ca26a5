-- The host guard's own account of a run the gateway could not hear the end
-- of (the link broke, or the gateway stopped while it ran), asked of the
-- guard afterwards and written once. The run's own row (`lost`) stays as the
-- gateway recorded it; an action with none (`interrupted`) gets the account
-- as its run as well.
CREATE TABLE run_accounts (
    action_id      TEXT PRIMARY KEY REFERENCES actions (id),
    host           TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,    -- when the guard answered, by the gateway's clock
    started_at     TEXT NOT NULL,    -- the host's clock: its `started` line, else its last word
    finished_at    TEXT NOT NULL,    -- the host's clock: the line that ended it
    ending         TEXT NOT NULL,    -- exited | signalled | timed_out | killed-gateway-gone | guard-gone | refused | never-started | no-record | unavailable
    exit_code      BIGINT,
    signal         BIGINT,
    duration_ms    BIGINT NOT NULL,
    killed         BIGINT NOT NULL,
    stdout_bytes   BIGINT NOT NULL,   -- as counted on the host, when it said
    stdout_sha256  TEXT NOT NULL,
    stderr_bytes   BIGINT NOT NULL,
    stderr_sha256  TEXT NOT NULL,
    error          TEXT,             -- the account in words
    kernel         TEXT
);

CREATE TRIGGER run_accounts_no_update BEFORE UPDATE ON run_accounts
    FOR EACH ROW EXECUTE FUNCTION jarvis_write_once();
