-- A proposal may carry an Idempotency-Key: a client that lost the answer
-- and sends the same proposal again with the same key gets the action it
-- already made, not a second one. Keys are the requester's own: one
-- agent's keys neither collide with another's nor reveal its actions.
CREATE TABLE idempotency_keys (
    requester   TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    action_id   TEXT NOT NULL REFERENCES actions (id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (requester, idem_key)
);
