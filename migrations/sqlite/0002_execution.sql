-- What an approval binds to besides the command, and what a run produced.

ALTER TABLE actions ADD COLUMN cwd TEXT;
ALTER TABLE actions ADD COLUMN timeout_secs INTEGER;

-- One row per action that reached a host, written once, in the same
-- transaction as the action's move to its final state.
CREATE TABLE action_runs (
    action_id         TEXT PRIMARY KEY REFERENCES actions (id),
    started_at        TEXT NOT NULL,
    finished_at       TEXT NOT NULL,
    ending            TEXT NOT NULL,     -- exited | signalled | timed_out | refused | lost
    exit_code         INTEGER,
    signal            INTEGER,
    duration_ms       INTEGER NOT NULL,
    killed            INTEGER NOT NULL,  -- processes left behind that the guard killed
    stdout            BLOB NOT NULL,     -- up to the host's output cap
    stdout_bytes      INTEGER NOT NULL,  -- all of it, as counted on the host
    stdout_sha256     TEXT NOT NULL,
    stdout_truncated  INTEGER NOT NULL,
    stderr            BLOB NOT NULL,
    stderr_bytes      INTEGER NOT NULL,
    stderr_sha256     TEXT NOT NULL,
    stderr_truncated  INTEGER NOT NULL,
    error             TEXT              -- why it failed outside the command
);

CREATE TRIGGER action_runs_no_update BEFORE UPDATE ON action_runs
BEGIN
    SELECT RAISE(ABORT, 'action_runs is written once');
END;
