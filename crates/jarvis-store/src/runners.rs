//! Who runs actions on this database: a process that runs actions holds a
//! [`RunnerClaim`] for its whole life, and one that finds itself the only
//! holder may treat actions left `running` as orphans of a process that
//! died. Marking a live run `interrupted` would lose its result, so the
//! claim must see every runner that shares the database.
//!
//! On PostgreSQL that is an advisory lock, held on a connection of the
//! claim's own, which reaches runners on every machine and is let go by the
//! server when a process dies. An SQLite database is a file on one machine;
//! the caller's lock on a file beside it covers that case, and the claim
//! there is a formality that always says "sole".

use sqlx::{AnyConnection, Row};

use crate::{Backend, Store, StoreError};

/// The advisory lock's key: "jarvis_r" as eight bytes.
const RUNNERS_KEY: i64 = 0x6a61_7276_6973_5f72;

/// How long a claim waits for a runner that is recovering (holding the lock
/// alone) before it gives up with an error.
const WAIT_FOR_RECOVERY: &str = "60s";

/// A process's claim to run actions; see the module docs. Dropping it (or
/// the process ending) lets the claim go.
pub struct RunnerClaim {
    sole: bool,
    /// PostgreSQL: the session that holds the lock.
    session: Option<AnyConnection>,
}

impl std::fmt::Debug for RunnerClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerClaim")
            .field("sole", &self.sole)
            .field("postgres", &self.session.is_some())
            .finish()
    }
}

impl RunnerClaim {
    /// Whether no other process held a claim when this one was made: only
    /// then may actions left `running` be taken for orphans.
    pub fn is_sole(&self) -> bool {
        self.sole
    }

    /// Lets other runners in once this one has recovered: a sole claim
    /// holds the lock exclusively until then, so nobody starts an action
    /// that the recovery would take for an orphan.
    ///
    /// # Errors
    /// A database error; the claim is then still exclusive.
    pub async fn share(&mut self) -> Result<(), StoreError> {
        let (true, Some(session)) = (self.sole, self.session.as_mut()) else {
            return Ok(());
        };
        // Taken at once (the session holds the exclusive lock itself), then
        // the exclusive hold is let go.
        sqlx::query("SELECT 1 AS one FROM (SELECT pg_advisory_lock_shared($1)) AS taken")
            .bind(RUNNERS_KEY)
            .fetch_one(&mut *session)
            .await
            .map_err(StoreError::db("sharing the runners lock"))?;
        sqlx::query("SELECT pg_advisory_unlock($1) AS released")
            .bind(RUNNERS_KEY)
            .fetch_one(&mut *session)
            .await
            .map_err(StoreError::db("sharing the runners lock"))?;
        Ok(())
    }
}

impl Store {
    /// Claims a place among the processes that run actions on this
    /// database. On PostgreSQL, a claim made while no other exists is sole
    /// and exclusive until [`RunnerClaim::share`]; any other waits (up to a
    /// minute) for such a one to share, then holds the lock shared.
    ///
    /// # Errors
    /// A database error, or [`StoreError::Invalid`] when a recovering
    /// runner did not let others in within a minute.
    pub async fn claim_runner(&self) -> Result<RunnerClaim, StoreError> {
        if self.backend() == Backend::Sqlite {
            return Ok(RunnerClaim {
                sole: true,
                session: None,
            });
        }
        let mut session = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("opening a session for the runners lock"))?
            .detach();
        let sole: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS sole")
            .bind(RUNNERS_KEY)
            .fetch_one(&mut session)
            .await
            .map_err(StoreError::db("trying the runners lock"))?
            .try_get("sole")
            .map_err(|e| StoreError::Corrupt(format!("the runners lock: {e}")))?;
        if !sole {
            sqlx::query(&format!("SET lock_timeout = '{WAIT_FOR_RECOVERY}'"))
                .execute(&mut session)
                .await
                .map_err(StoreError::db("setting the runners lock's wait"))?;
            sqlx::query("SELECT 1 AS one FROM (SELECT pg_advisory_lock_shared($1)) AS taken")
                .bind(RUNNERS_KEY)
                .fetch_one(&mut session)
                .await
                .map_err(|e| match &e {
                    // lock_not_available: the wait ran out.
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03") => {
                        StoreError::Invalid(format!(
                            "another process has been recovering actions on this database for over {WAIT_FOR_RECOVERY}; try again"
                        ))
                    }
                    _ => StoreError::db("taking the runners lock")(e),
                })?;
        }
        Ok(RunnerClaim {
            sole,
            session: Some(session),
        })
    }
}
