-- What each host's guard last said of its kernel wall (Landlock and
-- seccomp), kept so that a short-lived `jarvis` process judging a proposal
-- need not ask the host again while the answer is fresh. One row per host,
-- replaced at each answer, and good only for the connection it came over
-- (another key, port or pinned host key may reach another guard); a
-- cache, never evidence (the audit log keeps what each run was confined
-- by).
CREATE TABLE host_kernels (
    host       TEXT PRIMARY KEY,
    connection TEXT NOT NULL,   -- a digest of what defined the connection
    report     TEXT NOT NULL,   -- the guard's report, as JSON
    learnt_at  TEXT NOT NULL    -- when it answered, by the gateway's clock
);
