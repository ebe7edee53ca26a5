-- Conversations with the planner and their messages. The actions a
-- conversation proposes name it as their requester (`chat:ID`); the audit
-- log records each message's role, size and hash, never its text.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,          -- UUID v7
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_by  TEXT NOT NULL,             -- the actor who asked
    title       TEXT NOT NULL,             -- the first request, shortened
    state       TEXT NOT NULL CHECK (state IN ('active', 'finished', 'stopped')),
    outcome     TEXT                       -- how it ended, in words
);

CREATE TABLE conversation_messages (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    seq              INTEGER NOT NULL,     -- 1, 2, 3, … per conversation
    at               TEXT NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,        -- the message as JSON
    action_id        TEXT,                 -- the action a message is about
    PRIMARY KEY (conversation_id, seq)
);
