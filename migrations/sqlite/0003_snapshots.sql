-- What an action is (command, file edit, rollback), what an approval binds
-- to besides the command (the snapshot plan) and what it was shown (the
-- preview), and the snapshots taken on hosts.

ALTER TABLE actions ADD COLUMN kind TEXT NOT NULL DEFAULT 'command';
ALTER TABLE actions ADD COLUMN edit TEXT;          -- JSON: path and new content or diff
ALTER TABLE actions ADD COLUMN rollback_of TEXT;   -- the action a rollback puts back
ALTER TABLE actions ADD COLUMN plan TEXT;          -- JSON snapshot plan, fixed at proposal
ALTER TABLE actions ADD COLUMN preview TEXT;       -- JSON preview shown to approvers
CREATE INDEX actions_rollback_of ON actions (rollback_of);

-- One row per action whose targets were captured before it ran. The
-- manifest says what the host kept (refs, images, archives, copies); a
-- rollback restores from it, so it never changes after it is written.
CREATE TABLE snapshots (
    action_id  TEXT PRIMARY KEY REFERENCES actions (id),
    host       TEXT NOT NULL,
    taken_at   TEXT NOT NULL,
    manifest   TEXT NOT NULL,   -- JSON
    after      TEXT,            -- JSON: fingerprints right after the action ran
    pruned_at  TEXT             -- when retention removed what the host kept
);
CREATE INDEX snapshots_host ON snapshots (host, action_id);

CREATE TRIGGER snapshots_manifest_fixed BEFORE UPDATE OF action_id, host, taken_at, manifest ON snapshots
BEGIN
    SELECT RAISE(ABORT, 'a snapshot manifest is written once');
END;
CREATE TRIGGER snapshots_after_once BEFORE UPDATE OF after ON snapshots
WHEN OLD.after IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a snapshot''s after-state is written once');
END;
CREATE TRIGGER snapshots_no_delete BEFORE DELETE ON snapshots
BEGIN
    SELECT RAISE(ABORT, 'snapshots are not deleted; retention marks them pruned');
END;
