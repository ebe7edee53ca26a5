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

CREATE FUNCTION jarvis_snapshot_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'snapshots are not deleted; retention marks them pruned';
    END IF;
    IF NEW.action_id IS DISTINCT FROM OLD.action_id OR NEW.host IS DISTINCT FROM OLD.host
       OR NEW.taken_at IS DISTINCT FROM OLD.taken_at OR NEW.manifest IS DISTINCT FROM OLD.manifest THEN
        RAISE EXCEPTION 'a snapshot manifest is written once';
    END IF;
    IF OLD.after IS NOT NULL AND NEW.after IS DISTINCT FROM OLD.after THEN
        RAISE EXCEPTION 'a snapshot''s after-state is written once';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER snapshots_fixed BEFORE UPDATE OR DELETE ON snapshots
    FOR EACH ROW EXECUTE FUNCTION jarvis_snapshot_fixed();
