-- When an action last entered pending_approval: its approval window runs
-- from then, so one sent back for approval (its plan changed) gets a whole
-- window again rather than expiring at once.
ALTER TABLE actions ADD COLUMN pending_since TEXT;
UPDATE actions SET pending_since = created_at WHERE state = 'pending_approval';
