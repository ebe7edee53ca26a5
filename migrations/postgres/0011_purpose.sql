-- What the proposer says an action is for (the agent's reason and expected
-- effect, as JSON), shown to the person who decides. Older actions have none.
ALTER TABLE actions ADD COLUMN purpose TEXT;
