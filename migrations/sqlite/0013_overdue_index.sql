-- The expiry sweep asks for the waiting actions whose wait began before a
-- cutoff: pending ones by when they entered the queue, approved ones by
-- their approval (their last change). With these it reads only the overdue
-- rows, not every waiting one, every sweep.
CREATE INDEX actions_pending_since ON actions (state, pending_since);
CREATE INDEX actions_state_updated ON actions (state, updated_at);
