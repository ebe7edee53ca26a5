-- The person accountable for each action, resolved when it is proposed: a
-- conversation's action answers to whoever started the conversation, a
-- token's to the person who made the token (both, for a conversation a
-- token started), anyone else to themselves. Approval rules, per-requester
-- limits and refusals use it instead of the requester.
ALTER TABLE actions ADD COLUMN accountable TEXT NOT NULL DEFAULT '';

-- Existing actions, by the same steps: first the conversation, then the
-- token behind it (or behind the action itself). Where the record behind a
-- requester is gone, the requester stays accountable.
UPDATE actions SET accountable = requester;
UPDATE actions
SET accountable = (SELECT c.started_by FROM conversations c WHERE c.id = substr(actions.accountable, 6))
WHERE accountable LIKE 'chat:%'
  AND EXISTS (SELECT 1 FROM conversations c WHERE c.id = substr(actions.accountable, 6));
UPDATE actions
SET accountable = (SELECT t.created_by FROM api_tokens t WHERE t.name = substr(actions.accountable, 7))
WHERE accountable LIKE 'token:%'
  AND EXISTS (SELECT 1 FROM api_tokens t WHERE t.name = substr(actions.accountable, 7));
