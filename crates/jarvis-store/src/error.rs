use jarvis_core::{ActionState, ApprovalRefusal, IllegalTransition};

/// What went wrong in the store, named so the message can say exactly what.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open the database {url}: {reason}")]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database: {reason}")]
    Migrate {
        /// Why.
        reason: String,
    },
    /// Another process holds the SQLite database locked for longer than the
    /// busy timeout.
    #[error("the database is locked by another process while {doing}; nothing was written")]
    Locked {
        /// What was being done.
        doing: &'static str,
    },
    /// The disk is full.
    #[error("the disk holding the database is full while {doing}; nothing was written")]
    DiskFull {
        /// What was being done.
        doing: &'static str,
    },
    /// The connection to PostgreSQL dropped.
    #[error("lost the connection to the database while {doing}; the transaction was rolled back")]
    ConnectionLost {
        /// What was being done.
        doing: &'static str,
    },
    /// Any other database error.
    #[error("database error while {doing}: {reason}")]
    Database {
        /// What was being done.
        doing: &'static str,
        /// The database's message.
        reason: String,
    },
    /// The thing named does not exist (`action 0192…`, `audit event 12`).
    #[error("{0} does not exist")]
    NotFound(String),
    /// Several actions start with this prefix.
    #[error("the id prefix {prefix} is ambiguous: it matches {matches}")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// Some of the ids it matches.
        matches: String,
    },
    /// The lifecycle does not allow the move.
    #[error("action {id}: {source}")]
    IllegalTransition {
        /// The action.
        id: String,
        /// The move refused.
        source: IllegalTransition,
    },
    /// The action moved on before this change could be made: someone else
    /// approved, rejected or expired it first.
    #[error("action {id} is already {found}, not {expected}; someone else acted on it first")]
    Conflict {
        /// The action.
        id: String,
        /// The state the caller expected.
        expected: ActionState,
        /// The state it is in.
        found: ActionState,
    },
    /// Stored data that does not decode: the database was edited by hand or
    /// is damaged.
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The thing to create already exists (`user alice`, `token ci`).
    #[error("{0} already exists")]
    Exists(String),
    /// The input is not acceptable; the message says what and why.
    #[error("{0}")]
    Invalid(String),
    /// The approval rule does not count this approval; nothing was written.
    #[error(transparent)]
    ApprovalRefused(#[from] ApprovalRefusal),
    /// The audit key cannot sign, or sits where it must not; nothing was
    /// written.
    #[error(transparent)]
    Signing(#[from] crate::signing::KeyError),
    /// What an action would run is no longer what its proposal chained:
    /// the stored fields were changed behind Jarvis's back.
    #[error("action {id} is refused: its stored fields ({}) no longer match what was chained when it was proposed (changed in the database); propose it again", .fields.join(", "))]
    Tampered {
        /// The action.
        id: String,
        /// The fields that differ (`command`, `cwd`, …), or what is missing.
        fields: Vec<String>,
    },
}

impl StoreError {
    /// Classifies a database error from an operation described by `doing`.
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |e| classify(doing, e)
    }
}

fn classify(doing: &'static str, e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut => {
            return StoreError::ConnectionLost { doing };
        }
        sqlx::Error::Database(db) => {
            let msg = db.message().to_ascii_lowercase();
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite: 5 BUSY, 6 LOCKED, 13 FULL; PostgreSQL 53100 disk_full,
            // 57P01 admin_shutdown, 08xxx connection exceptions.
            if code == "5" || code == "6" || msg.contains("database is locked") {
                return StoreError::Locked { doing };
            }
            if code == "13"
                || code == "53100"
                || msg.contains("disk is full")
                || msg.contains("no space left")
            {
                return StoreError::DiskFull { doing };
            }
            if code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03" {
                return StoreError::ConnectionLost { doing };
            }
        }
        _ => {}
    }
    let reason = e.to_string();
    if reason.contains("connection") && (reason.contains("closed") || reason.contains("reset")) {
        return StoreError::ConnectionLost { doing };
    }
    StoreError::Database { doing, reason }
}
