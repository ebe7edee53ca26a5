-- Signed heads form a chain of their own: each names the head before it
-- and says why it was signed and which checkpoint interval its signer
-- kept, all under its signature (version 2). Rows from before stay
-- version 1: their signature covers the sequence number and hash only.
ALTER TABLE audit_checkpoints ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_checkpoints ADD COLUMN every INTEGER;
ALTER TABLE audit_checkpoints ADD COLUMN reason TEXT;
ALTER TABLE audit_checkpoints ADD COLUMN previous_seq INTEGER;
ALTER TABLE audit_checkpoints ADD COLUMN previous_signature TEXT;
