-- What an approval binds to besides the command, and what a run produced.

ALTER TABLE actions ADD COLUMN cwd TEXT;
ALTER TABLE actions ADD COLUMN timeout_secs BIGINT;

-- One row per action that reached a host, written once, in the same
-- transaction as the action's move to its final state.
CREATE TABLE action_runs (
    action_id         TEXT PRIMARY KEY REFERENCES actions (id),
    started_at        TEXT NOT NULL,
    finished_at       TEXT NOT NULL,
    ending            TEXT NOT NULL,     -- exited | signalled | timed_out | refused | lost
    exit_code         BIGINT,
    signal            BIGINT,
    duration_ms       BIGINT NOT NULL,
    killed            BIGINT NOT NULL,   -- processes left behind that the guard killed
    stdout            BYTEA NOT NULL,    -- up to the host's output cap
    stdout_bytes      BIGINT NOT NULL,   -- all of it, as counted on the host
    stdout_sha256     TEXT NOT NULL,
    stdout_truncated  BIGINT NOT NULL,
    stderr            BYTEA NOT NULL,
    stderr_bytes      BIGINT NOT NULL,
    stderr_sha256     TEXT NOT NULL,
    stderr_truncated  BIGINT NOT NULL,
    error             TEXT              -- why it failed outside the command
);

CREATE FUNCTION jarvis_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is written once', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER action_runs_no_update BEFORE UPDATE ON action_runs
    FOR EACH ROW EXECUTE FUNCTION jarvis_write_once();
