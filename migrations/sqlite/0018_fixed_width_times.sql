-- Stored times become fixed width: RFC 3339 in UTC with exactly six digits
-- of fraction (2026-11-23T14:00:00.000000Z), as the store now writes them,
-- so that text order is time order. Before, trailing zeros of the fraction
-- were dropped, and `…:00Z` sorted after `…:00.5Z` of the same second.
--
-- Only the times the store already writes are rewritten (UTC, `Z`, none to
-- six digits of fraction); anything else is left as it is. Write-once
-- records keep the text they were written with: the audit log and its
-- signed checkpoints (hash-chained and signed over that text), runs, run
-- accounts and snapshot manifests. Those are ordered by sequence or id,
-- never by time text.

UPDATE actions SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE actions SET updated_at = CASE
    WHEN length(updated_at) = 20 THEN substr(updated_at, 1, 19) || '.000000Z'
    ELSE substr(updated_at, 1, 20) || substr(substr(updated_at, 21, length(updated_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE updated_at LIKE '____-__-__T__:__:__%Z'
  AND (length(updated_at) = 20 OR (length(updated_at) BETWEEN 22 AND 26 AND substr(updated_at, 20, 1) = '.'));

UPDATE actions SET pending_since = CASE
    WHEN length(pending_since) = 20 THEN substr(pending_since, 1, 19) || '.000000Z'
    ELSE substr(pending_since, 1, 20) || substr(substr(pending_since, 21, length(pending_since) - 21) || '000000', 1, 6) || 'Z'
END
WHERE pending_since LIKE '____-__-__T__:__:__%Z'
  AND (length(pending_since) = 20 OR (length(pending_since) BETWEEN 22 AND 26 AND substr(pending_since, 20, 1) = '.'));

UPDATE snapshots SET pruned_at = CASE
    WHEN length(pruned_at) = 20 THEN substr(pruned_at, 1, 19) || '.000000Z'
    ELSE substr(pruned_at, 1, 20) || substr(substr(pruned_at, 21, length(pruned_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE pruned_at LIKE '____-__-__T__:__:__%Z'
  AND (length(pruned_at) = 20 OR (length(pruned_at) BETWEEN 22 AND 26 AND substr(pruned_at, 20, 1) = '.'));

UPDATE users SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE users SET password_changed_at = CASE
    WHEN length(password_changed_at) = 20 THEN substr(password_changed_at, 1, 19) || '.000000Z'
    ELSE substr(password_changed_at, 1, 20) || substr(substr(password_changed_at, 21, length(password_changed_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE password_changed_at LIKE '____-__-__T__:__:__%Z'
  AND (length(password_changed_at) = 20 OR (length(password_changed_at) BETWEEN 22 AND 26 AND substr(password_changed_at, 20, 1) = '.'));

UPDATE sessions SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE sessions SET expires_at = CASE
    WHEN length(expires_at) = 20 THEN substr(expires_at, 1, 19) || '.000000Z'
    ELSE substr(expires_at, 1, 20) || substr(substr(expires_at, 21, length(expires_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE expires_at LIKE '____-__-__T__:__:__%Z'
  AND (length(expires_at) = 20 OR (length(expires_at) BETWEEN 22 AND 26 AND substr(expires_at, 20, 1) = '.'));

UPDATE api_tokens SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE api_tokens SET last_used_at = CASE
    WHEN length(last_used_at) = 20 THEN substr(last_used_at, 1, 19) || '.000000Z'
    ELSE substr(last_used_at, 1, 20) || substr(substr(last_used_at, 21, length(last_used_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE last_used_at LIKE '____-__-__T__:__:__%Z'
  AND (length(last_used_at) = 20 OR (length(last_used_at) BETWEEN 22 AND 26 AND substr(last_used_at, 20, 1) = '.'));

UPDATE api_tokens SET revoked_at = CASE
    WHEN length(revoked_at) = 20 THEN substr(revoked_at, 1, 19) || '.000000Z'
    ELSE substr(revoked_at, 1, 20) || substr(substr(revoked_at, 21, length(revoked_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE revoked_at LIKE '____-__-__T__:__:__%Z'
  AND (length(revoked_at) = 20 OR (length(revoked_at) BETWEEN 22 AND 26 AND substr(revoked_at, 20, 1) = '.'));

UPDATE approvals SET at = CASE
    WHEN length(at) = 20 THEN substr(at, 1, 19) || '.000000Z'
    ELSE substr(at, 1, 20) || substr(substr(at, 21, length(at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE at LIKE '____-__-__T__:__:__%Z'
  AND (length(at) = 20 OR (length(at) BETWEEN 22 AND 26 AND substr(at, 20, 1) = '.'));

UPDATE conversations SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE conversations SET updated_at = CASE
    WHEN length(updated_at) = 20 THEN substr(updated_at, 1, 19) || '.000000Z'
    ELSE substr(updated_at, 1, 20) || substr(substr(updated_at, 21, length(updated_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE updated_at LIKE '____-__-__T__:__:__%Z'
  AND (length(updated_at) = 20 OR (length(updated_at) BETWEEN 22 AND 26 AND substr(updated_at, 20, 1) = '.'));

UPDATE conversation_messages SET at = CASE
    WHEN length(at) = 20 THEN substr(at, 1, 19) || '.000000Z'
    ELSE substr(at, 1, 20) || substr(substr(at, 21, length(at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE at LIKE '____-__-__T__:__:__%Z'
  AND (length(at) = 20 OR (length(at) BETWEEN 22 AND 26 AND substr(at, 20, 1) = '.'));

UPDATE idempotency_keys SET created_at = CASE
    WHEN length(created_at) = 20 THEN substr(created_at, 1, 19) || '.000000Z'
    ELSE substr(created_at, 1, 20) || substr(substr(created_at, 21, length(created_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE created_at LIKE '____-__-__T__:__:__%Z'
  AND (length(created_at) = 20 OR (length(created_at) BETWEEN 22 AND 26 AND substr(created_at, 20, 1) = '.'));

UPDATE host_kernels SET learnt_at = CASE
    WHEN length(learnt_at) = 20 THEN substr(learnt_at, 1, 19) || '.000000Z'
    ELSE substr(learnt_at, 1, 20) || substr(substr(learnt_at, 21, length(learnt_at) - 21) || '000000', 1, 6) || 'Z'
END
WHERE learnt_at LIKE '____-__-__T__:__:__%Z'
  AND (length(learnt_at) = 20 OR (length(learnt_at) BETWEEN 22 AND 26 AND substr(learnt_at, 20, 1) = '.'));
