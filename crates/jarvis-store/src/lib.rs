//! Persistence of Jarvis: actions with their lifecycle, runs, snapshots,
//! and the audit log.
//!
//! One code base over two real backends through sqlx's `Any` driver: SQLite
//! (the embedded default: one file, WAL) and PostgreSQL (for several
//! gateway replicas). Queries use `$N` placeholders, which both accept.
//! Migrations live in the workspace's `migrations/sqlite` and
//! `migrations/postgres` and run at connect time.
//!
//! It also keeps who may act through the web server: users, their
//! server-side sessions and API tokens (hashes only), and the approvals
//! counted towards an action's separation-of-duties rule.
//!
//! It owns the audit chain: every state change of an action and its audit
//! event commit in one transaction, and events are hash-chained so that any
//! edit, deletion, insertion or reordering shows. It must never decide what
//! may run (that is jarvis-policy's job) and never let an action change
//! state except through [`jarvis_core::ActionState::transition`].

mod actions;
mod approvals;
mod audit;
mod changes;
mod commitment;
mod conversations;
mod error;
mod group;
mod heads;
mod kernels;
mod people;
mod probe;
mod redact;
mod runners;
mod runs;
mod signing;
mod snapshots;
mod tx;
mod verify;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use tokio::sync::broadcast;

pub use actions::{ActionRecord, Judged, NewAction};
pub use approvals::ApprovalRecord;
pub use audit::{AuditEvent, AuditFilter, ExportLine, NewEvent, canonical_payload};
pub use changes::{ActionChange, ChangeKind};
pub use conversations::{ConversationRecord, MessageRecord};
pub use error::StoreError;
pub use heads::{Checkpoint, HEAD_VERSION};
pub use kernels::HostKernel;
pub use people::{NewSession, SessionRecord, TokenRecord, UserRecord};
pub use probe::FreeSpace;
pub use redact::{Redaction, redact};
pub use runners::RunnerClaim;
pub use runs::{CapturedOutput, RunEnding, RunRecord, UnknownRunEnding};
pub use signing::{AuditKey, KeyError, refuse_key_inside};
pub use snapshots::SnapshotRecord;
pub use time::OffsetDateTime;
pub use verify::{
    Break, BreakKind, VerifyOptions, VerifyProblem, VerifyReport, verify_lines, verify_lines_with,
};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long an SQLite writer waits for another process's lock before
    /// giving up with [`StoreError::Locked`].
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The store: a connection pool and the backend it talks to.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The operator's key and how often (in events) to sign the head.
    signer: Option<Arc<(AuditKey, i64)>>,
    /// The SQLite file, for reads that bypass the async driver.
    sqlite_path: Option<Arc<std::path::Path>>,
    /// Where changes to actions read from the audit log are announced, and
    /// the task that reads them while anyone listens. Clones share both.
    changes: broadcast::Sender<ActionChange>,
    follower: Arc<tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    /// The database in words, for errors that must say which one cannot
    /// be written: its file, or its URL without the password.
    label: Arc<str>,
    /// On SQLite, the gate writers queue at and the committer that ends
    /// their shared transaction ([`group`]).
    group: Option<group::GroupCommit>,
}

/// How many unread changes a slow listener may fall behind before it is told
/// it lagged (and should reload) instead of holding the writers back.
const CHANGES_CAPACITY: usize = 1024;

impl Store {
    /// Connects to `url` (`sqlite:///path/jarvis.db`, `postgres://…`),
    /// creating an SQLite file if needed, and runs pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the database cannot be reached or
    /// opened, [`StoreError::Migrate`] when its schema cannot be brought up
    /// to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, &StoreOptions::default()).await
    }

    /// [`Store::connect`] with options.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn connect_with(url: &str, opts: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let busy_ms = opts.busy_timeout.as_millis();
        let shown = redact::redact_url(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Connect {
                url: shown,
                reason: "the URL must start with sqlite: or postgres://".into(),
            });
        };
        let url = match backend {
            // Create the file on first start.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            Backend::Sqlite | Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|e| StoreError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; the busy
                        // timeout makes a second writer wait instead of fail;
                        // FULL sync means a committed event survives a crash.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                            .await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Migrate {
            reason: e.to_string(),
        })?;
        let sqlite_path = (backend == Backend::Sqlite)
            .then(|| sqlite_file(&url))
            .flatten();
        let (changes, _) = broadcast::channel(CHANGES_CAPACITY);
        let label = match &sqlite_path {
            Some(file) => format!("the SQLite database {}", file.display()),
            None => format!("the database {shown}"),
        };
        error::opened(&label);
        let group = (backend == Backend::Sqlite)
            .then(|| group::GroupCommit::start(pool.clone(), opts.busy_timeout));
        Ok(Store {
            group,
            pool,
            backend,
            signer: None,
            sqlite_path,
            changes,
            follower: Arc::default(),
            label: label.into(),
        })
    }

    /// Signs a checkpoint of the chain's head every `every` events with
    /// `key`, in the same transaction as the event that reaches it; the
    /// same key signs heads on request ([`Store::sign_head`]).
    #[must_use]
    pub fn with_checkpoints(mut self, key: AuditKey, every: i64) -> Store {
        self.signer = Some(Arc::new((key, every.max(1))));
        self
    }

    /// The public half of the key this store signs heads with, if any.
    pub fn signing_key(&self) -> Option<String> {
        self.signer().map(|(key, _)| key.public_hex())
    }

    /// The checkpoint interval this store signs at, if it signs.
    pub fn checkpoint_every(&self) -> Option<i64> {
        self.signer().map(|(_, every)| *every)
    }

    /// The directory the database keeps its files in, when it says: the
    /// SQLite file's directory, or PostgreSQL's `data_directory` (which
    /// only a superuser or a `pg_read_all_settings` member may read; `None`
    /// for others).
    ///
    /// # Errors
    /// A database error other than being refused the setting.
    pub async fn data_directory(&self) -> Result<Option<std::path::PathBuf>, StoreError> {
        if let Some(file) = self.sqlite_path() {
            return Ok(file.parent().map(std::path::Path::to_owned));
        }
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        match sqlx::query_scalar::<_, String>("SELECT current_setting('data_directory')")
            .fetch_one(self.pool())
            .await
        {
            Ok(dir) => Ok(Some(std::path::PathBuf::from(dir))),
            // 42501: insufficient_privilege.
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42501") => Ok(None),
            Err(e) => Err(StoreError::db("asking the database for its data directory")(e)),
        }
    }

    /// Refuses an audit key file inside the data directory of a PostgreSQL
    /// server (see [`refuse_key_inside`]). An SQLite file is the gateway's
    /// own, so its key may sit beside it; a database server's directory is
    /// the database host's, and the key is to live off it.
    ///
    /// # Errors
    /// [`StoreError::Signing`] naming the key and the directory, or a
    /// database error.
    pub async fn refuse_key_in_data_directory(
        &self,
        key: &std::path::Path,
    ) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        if let Some(dir) = self.data_directory().await? {
            refuse_key_inside(key, &dir)?;
        }
        Ok(())
    }

    pub(crate) fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    pub(crate) fn signer(&self) -> Option<&(AuditKey, i64)> {
        self.signer.as_deref()
    }

    /// The database in words (`the SQLite database /var/lib/jarvis/jarvis.db`,
    /// `the database postgres://jarvis@db/jarvis`), as errors name it.
    pub fn describe(&self) -> &str {
        &self.label
    }

    /// Classifies a database error as [`StoreError::db`] does, naming this
    /// store's database when the error says it cannot be written.
    pub(crate) fn db(&self, doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::db(doing)(e).in_database(&self.label)
    }

    /// The backend behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (`SELECT 1`), for a readiness probe.
    ///
    /// # Errors
    /// A [`StoreError`] naming why it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(StoreError::db("checking the database answers"))?;
        Ok(())
    }

    /// Closes every connection, after committing the writes under way.
    pub async fn close(&self) {
        if let Some(group) = &self.group {
            group.close().await;
        }
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn group(&self) -> Option<&group::GroupCommit> {
        self.group.as_ref()
    }
}

/// The file an `sqlite:` URL names, if it names one (not `:memory:`).
fn sqlite_file(url: &str) -> Option<Arc<std::path::Path>> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| Arc::from(std::path::Path::new(path)))
}

/// The current time as the store writes it: RFC 3339 in UTC with exactly
/// six digits of fraction (`2026-11-23T14:00:00.000000Z`). Fixed width, so
/// that text order is time order: an index, `ORDER BY` or `<` on a time
/// column means what it says.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// A time as the store writes times (see [`now`]), for callers that store
/// one of their own (a session's expiry).
pub fn timestamp(t: time::OffsetDateTime) -> String {
    // Every time the store is handed fits in UTC and in four digits of
    // year (`now()`, or what `parse_time` accepted); one that did not is
    // written in UTC all the same, its year as it is, rather than panic.
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Text that [`parse_time`] does not read as a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a time: use a date (2026-11-23, midnight UTC), a time in UTC \
     (2026-11-23T14:00, 2026-11-23 14:00:00) or RFC 3339 with Z or an offset \
     (2026-11-23T14:00:00Z, 2026-11-23T16:00:00.5+02:00)"
)]
pub struct BadTime {
    /// What was given (its first 64 characters).
    pub input: String,
}

/// Reads a time as people and scripts write one, for filters on stored
/// times: a date `2026-11-23` (midnight UTC); a date and a time of day
/// (`2026-11-23T14:00`, `2026-11-23 14:00:00`, seconds and a fraction
/// optional) in UTC unless followed by `Z` or an offset (`+02:00`), which
/// covers RFC 3339. Surrounding whitespace is ignored; a fraction beyond
/// nanoseconds, an offset beyond 23:59 and leap seconds are not.
///
/// # Errors
/// [`BadTime`] naming the input when it is none of these, or names a day
/// or time of day that does not exist (`2026-02-30`, `24:00`).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, BadTime> {
    let bad = || BadTime {
        input: s.chars().take(64).collect(),
    };
    let t = s.trim();
    let date = t.get(..10).and_then(parse_date).ok_or_else(bad)?;
    let rest = t.get(10..).ok_or_else(bad)?;
    if rest.is_empty() {
        return Ok(date.midnight().assume_utc());
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    let (clock, offset) = split_offset(rest).ok_or_else(bad)?;
    let clock = parse_clock(clock).ok_or_else(bad)?;
    // In UTC it must still be a year the store can write: 9999-12-31T23:30
    // at -01:00 is in year 10000.
    time::PrimitiveDateTime::new(date, clock)
        .assume_offset(offset)
        .checked_to_offset(time::UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(bad)
}

/// Exactly `n` ASCII digits, as a number.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a day that exists.
fn parse_date(s: &str) -> Option<time::Date> {
    let (year, rest) = s.split_once('-')?;
    let (month, day) = rest.split_once('-')?;
    let month = time::Month::try_from(u8::try_from(digits(month, 2)?).ok()?).ok()?;
    let year = i32::try_from(digits(year, 4)?).ok()?;
    time::Date::from_calendar_date(year, month, u8::try_from(digits(day, 2)?).ok()?).ok()
}

/// The time of day and its offset: a trailing `Z`, `+HH:MM` or `-HH:MM`,
/// or none (UTC).
fn split_offset(s: &str) -> Option<(&str, time::UtcOffset)> {
    if let Some(clock) = s.strip_suffix(['Z', 'z']) {
        return Some((clock, time::UtcOffset::UTC));
    }
    let Some(at) = s.len().checked_sub(6).filter(|&i| s.is_char_boundary(i)) else {
        return Some((s, time::UtcOffset::UTC));
    };
    let (clock, offset) = s.split_at(at);
    let sign: i8 = match offset.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Some((s, time::UtcOffset::UTC)),
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    // RFC 3339's bounds; the time crate would take offsets up to 25:59.
    let hours = i8::try_from(digits(hours, 2).filter(|h| *h < 24)?).ok()?;
    let minutes = i8::try_from(digits(minutes, 2).filter(|m| *m < 60)?).ok()?;
    let offset = time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
    Some((clock, offset))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.F` with one to nine digits of fraction.
fn parse_clock(s: &str) -> Option<time::Time> {
    let mut parts = s.splitn(3, ':');
    let hour = u8::try_from(digits(parts.next()?, 2)?).ok()?;
    let minute = u8::try_from(digits(parts.next()?, 2)?).ok()?;
    let (second, nanos) = match parts.next() {
        None => (0, 0),
        Some(sec) => match sec.split_once('.') {
            None => (digits(sec, 2)?, 0),
            Some((sec, fraction)) => {
                let n = fraction.len();
                if !(1..=9).contains(&n) {
                    return None;
                }
                (
                    digits(sec, 2)?,
                    digits(fraction, n)? * 10u32.pow(9 - n as u32),
                )
            }
        },
    };
    time::Time::from_hms_nano(hour, minute, u8::try_from(second).ok()?, nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> String {
        timestamp(parse_time(s).unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn times_are_read_in_every_accepted_form() {
        for (input, want) in [
            ("2026-11-23", "2026-11-23T00:00:00.000000Z"),
            (" 2026-11-23\n", "2026-11-23T00:00:00.000000Z"),
            ("2026-11-23T14:00:00Z", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23t14:00:00z", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23T14:00:00.25Z", "2026-11-23T14:00:00.250000Z"),
            (
                "2026-11-23T14:00:00.123456789Z",
                "2026-11-23T14:00:00.123456Z",
            ),
            ("2026-11-23T16:30:00+02:30", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23T16:00:00.5+02:00", "2026-11-23T14:00:00.500000Z"),
            ("2026-11-23T01:00:00-05:00", "2026-11-23T06:00:00.000000Z"),
            ("2026-11-23T00:30:00+01:00", "2026-11-22T23:30:00.000000Z"),
            ("2026-11-23T14:00", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23T14:00Z", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23T15:00+01:00", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23 14:00:00", "2026-11-23T14:00:00.000000Z"),
            ("2026-11-23 14:00:07.5", "2026-11-23T14:00:07.500000Z"),
            ("2028-02-29", "2028-02-29T00:00:00.000000Z"),
        ] {
            assert_eq!(utc(input), want, "{input}");
        }
    }

    #[test]
    fn anything_else_is_refused_and_named() {
        for input in [
            "",
            "yesterday",
            "garbage",
            "2026-11-23T",
            "2026-11-23X14:00",
            "2026-11-23T14",
            "2026-11-23T14:00:00.",
            "2026-11-23T14:00:00.1234567890Z",
            "2026-11-23T14:00:00+0200",
            "2026-11-23T14:00:00+02",
            "2026-11-23T14:00:00 UTC",
            "2026-11-23+02:00",
            "2026-13-01",
            "2026-02-30",
            "2027-02-29",
            "2026-11-23T24:00",
            "2026-11-23T14:60",
            "2026-11-23T14:00:60Z",
            "2026-11-23T14:00:00+24:00",
            "9999-12-31T23:30-01:00",
            "0000-01-01T00:30+01:00",
            "26-11-23",
            "2026-1-23",
            "+2026-11-23",
            "2026-11-23T1４:00",
            "1763906400",
        ] {
            let e = parse_time(input).expect_err(input);
            assert_eq!(e.input, input, "the error names the input");
            let text = e.to_string();
            assert!(
                text.contains(&format!("`{input}` is not a time")) && text.contains("RFC 3339"),
                "{text}"
            );
        }
        let long = "x".repeat(1000);
        assert_eq!(
            parse_time(&long).expect_err("long").input.chars().count(),
            64
        );
    }

    #[test]
    fn stored_times_sort_as_text_in_time_order() {
        let mut times: Vec<OffsetDateTime> = [
            "2026-11-23T14:00:00Z",
            "2026-11-23T14:00:00.5Z",
            "2026-11-23T14:00:00.05Z",
            "2026-11-23T14:00:00.000001Z",
            "2026-11-23T13:59:59.999999Z",
            "2026-11-23T14:00:01Z",
            "0999-01-01",
            "9999-12-31T23:59:59.999999Z",
        ]
        .iter()
        .map(|s| parse_time(s).expect(s))
        .collect();
        let mut as_text: Vec<String> = times.iter().map(|t| timestamp(*t)).collect();
        times.sort();
        as_text.sort();
        let in_time_order: Vec<String> = times.iter().map(|t| timestamp(*t)).collect();
        assert_eq!(as_text, in_time_order);
        assert!(as_text.iter().all(|t| t.len() == 27), "{as_text:?}");
    }

    #[test]
    fn stored_times_read_back_as_themselves() {
        let t = time::OffsetDateTime::now_utc();
        let stored = timestamp(t);
        assert_eq!(timestamp(parse_time(&stored).expect("stored time")), stored);
    }
}
