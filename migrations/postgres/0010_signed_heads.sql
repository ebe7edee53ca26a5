-- Signed heads form a chain of their own: each names the head before it
-- and says why it was signed and which checkpoint interval its signer
-- kept, all under its signature (version 2). Rows from before stay
-- version 1: their signature covers the sequence number and hash only.
ALTER TABLE audit_checkpoints
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
    ADD COLUMN every BIGINT,
    ADD COLUMN reason TEXT,
    ADD COLUMN previous_seq BIGINT,
    ADD COLUMN previous_signature TEXT;
