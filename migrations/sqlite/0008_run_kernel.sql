-- What the kernel allowed the command (the guard's one-line account of its
-- Landlock and seccomp ruleset), or why it ran without the kernel wall.
-- NULL for runs recorded before the wall, or refused before a command ran.
ALTER TABLE action_runs ADD COLUMN kernel TEXT;
