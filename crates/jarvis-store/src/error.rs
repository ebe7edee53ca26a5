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
    /// The disk (or the quota, or the tablespace) holding the database is
    /// full: the write was refused and nothing of it was kept.
    #[error("the disk holding {database} is full while {doing} ({cause}); nothing was written")]
    NoSpace {
        /// What was being done.
        doing: &'static str,
        /// Which database (its file, or its server and name), or "the
        /// database" where the failing statement did not know.
        database: String,
        /// The database's own words.
        cause: String,
    },
    /// The database cannot be written at all: its file system is read-only,
    /// or the disk answers with I/O errors.
    #[error("{database} cannot be written while {doing} ({cause}); nothing was written")]
    Unwritable {
        /// What was being done.
        doing: &'static str,
        /// Which database, as in [`StoreError::NoSpace`].
        database: String,
        /// The database's own words.
        cause: String,
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
    /// The requester already proposed with this idempotency key; nothing
    /// was written, and `action` is what the key made.
    #[error("the idempotency key `{key}` was already used, for action {action}")]
    KeyUsed {
        /// The key.
        key: String,
        /// The action it made.
        action: jarvis_core::ActionId,
    },
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

    /// Whether the database refused to keep a write for want of space or
    /// of a writable disk ([`StoreError::NoSpace`],
    /// [`StoreError::Unwritable`]): an operator's matter, which passes
    /// when space comes back, not a fault of the request.
    pub fn is_unwritable(&self) -> bool {
        matches!(
            self,
            StoreError::NoSpace { .. } | StoreError::Unwritable { .. }
        )
    }

    /// Names `database` in an error that says the database cannot be
    /// written, where it did not yet say which.
    pub(crate) fn in_database(mut self, name: &str) -> StoreError {
        if let StoreError::NoSpace { database, .. } | StoreError::Unwritable { database, .. } =
            &mut self
            && database == UNNAMED
        {
            name.clone_into(database);
        }
        self
    }
}

/// What an error says of a database it cannot name.
const UNNAMED: &str = "the database";

/// The databases this process opened: a statement inside a transaction
/// fails where its store is not at hand, and a server or a command opens
/// one database, so its name is known all the same. A process that opens
/// several (tests, tools) gets "the database" there instead, and the name
/// wherever the store itself maps the error.
static OPENED: std::sync::Mutex<Opened> = std::sync::Mutex::new(Opened::None);

enum Opened {
    None,
    One(String),
    Several,
}

/// Notes that this process opened the database `name`.
pub(crate) fn opened(name: &str) {
    if let Ok(mut o) = OPENED.lock() {
        *o = match &*o {
            Opened::None => Opened::One(name.to_owned()),
            Opened::One(n) if n == name => return,
            Opened::One(_) | Opened::Several => Opened::Several,
        };
    }
}

/// The one database this process opened, or "the database".
fn unnamed() -> String {
    match OPENED.lock().as_deref() {
        Ok(Opened::One(name)) => name.clone(),
        Ok(Opened::None | Opened::Several) | Err(_) => UNNAMED.to_owned(),
    }
}

/// SQLite's primary result codes for a full disk, a read-only database
/// and an I/O error (extended codes carry the primary in their low byte).
const SQLITE_FULL: i64 = 13;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CANTOPEN: i64 = 14;

fn classify(doing: &'static str, e: sqlx::Error) -> StoreError {
    let cause = e.to_string();
    let no_space = |cause: String| StoreError::NoSpace {
        doing,
        database: unnamed(),
        cause,
    };
    let unwritable = |cause: String| StoreError::Unwritable {
        doing,
        database: unnamed(),
        cause,
    };
    match &e {
        sqlx::Error::Io(io) => {
            return match io.raw_os_error() {
                // ENOSPC, EDQUOT.
                Some(28 | 122) => no_space(cause),
                // EROFS, EIO.
                Some(30 | 5) => unwritable(cause),
                _ => StoreError::ConnectionLost { doing },
            };
        }
        sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut => {
            return StoreError::ConnectionLost { doing };
        }
        sqlx::Error::Database(db) => {
            let msg = db.message().to_ascii_lowercase();
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite's codes are numbers (an extended code keeps the
            // primary in its low byte); PostgreSQL's SQLSTATEs are five
            // characters, some all digits ("42501"), never to be read so.
            let primary = (code.len() < 5)
                .then(|| code.parse::<i64>().ok())
                .flatten()
                .map(|c| c & 0xff);
            // SQLite: 5 BUSY, 6 LOCKED.
            if matches!(primary, Some(5 | 6)) || msg.contains("database is locked") {
                return StoreError::Locked { doing };
            }
            // PostgreSQL 53100 disk_full (also what a full tablespace
            // says), 53xxx insufficient resources otherwise.
            if primary == Some(SQLITE_FULL)
                || code == "53100"
                || msg.contains("disk is full")
                || msg.contains("no space left")
                || msg.contains("quota exceeded")
            {
                return no_space(db.message().to_owned());
            }
            // PostgreSQL 25006 read_only_sql_transaction (a standby, or
            // default_transaction_read_only), 58030 io_error, XX001/XX002
            // data or index corrupted.
            if matches!(
                primary,
                Some(SQLITE_READONLY | SQLITE_IOERR | SQLITE_CANTOPEN)
            ) || matches!(code.as_str(), "25006" | "58030" | "XX001" | "XX002")
                || msg.contains("read-only file system")
                || msg.contains("disk i/o error")
            {
                return unwritable(db.message().to_owned());
            }
            if code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03" {
                return StoreError::ConnectionLost { doing };
            }
        }
        _ => {}
    }
    if cause.contains("connection") && (cause.contains("closed") || cause.contains("reset")) {
        return StoreError::ConnectionLost { doing };
    }
    StoreError::Database {
        doing,
        reason: cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_unwritable_disk_is_named_by_its_cause() {
        let os = |code| {
            classify(
                "x",
                sqlx::Error::Io(std::io::Error::from_raw_os_error(code)),
            )
        };
        assert!(matches!(os(28), StoreError::NoSpace { .. }));
        assert!(matches!(os(122), StoreError::NoSpace { .. }));
        assert!(matches!(os(30), StoreError::Unwritable { .. }));
        assert!(matches!(os(5), StoreError::Unwritable { .. }));
        assert!(matches!(os(104), StoreError::ConnectionLost { .. }));
        let e = os(28).in_database("SQLite database /srv/jarvis.db");
        assert!(e.is_unwritable());
        let text = e.to_string();
        assert!(
            text.contains("/srv/jarvis.db") && text.contains("full") && text.contains("nothing"),
            "{text}"
        );
        // A name already given stays.
        let again = e.in_database("elsewhere").to_string();
        assert!(again.contains("/srv/jarvis.db"), "{again}");
    }
}
