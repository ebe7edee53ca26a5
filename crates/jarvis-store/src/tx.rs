//! Transactions that cannot outlive their failure.
//!
//! sqlx's own `Transaction`, when COMMIT fails, queues a ROLLBACK whose
//! failure it ignores and hands the connection back to the pool. SQLite
//! may leave a transaction open after SQLITE_FULL or SQLITE_IOERR (or roll
//! it back itself, so that sqlx's ROLLBACK fails and its count of open
//! transactions stays wrong), so a pooled connection could go on answering
//! from its own uncommitted writes while holding the write lock: later
//! requests were acknowledged from a database nobody else could see.
//!
//! [`Tx`] owns its connection. The connection goes back to the pool only
//! after a COMMIT or ROLLBACK the database confirmed; a failed COMMIT, a
//! failed ROLLBACK, or a transaction cancelled part-way through a COMMIT
//! closes it instead, which ends whatever the database still holds open
//! (SQLite rolls back on close, PostgreSQL when the session ends). A
//! transaction dropped without ending (an error returned with `?`, a
//! cancelled request) is rolled back in the background before its
//! connection is reused, and closed if that fails.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};

/// An open transaction on a connection of its own (see the module's
/// documentation for how it ends).
pub(crate) struct Tx {
    /// `None` once the transaction has ended and the connection gone.
    conn: Option<PoolConnection<Any>>,
    /// What dropping the transaction before it ended does.
    on_drop: OnDrop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnDrop {
    /// Roll back in the background, then reuse the connection.
    RollBack,
    /// Close the connection: its state is not known.
    Discard,
}

impl Tx {
    /// Takes a connection from `pool` and starts a transaction on it with
    /// `begin` (`BEGIN`, or `BEGIN ISOLATION LEVEL …` on PostgreSQL).
    pub(crate) async fn begin(pool: &AnyPool, begin: &str) -> Result<Tx, sqlx::Error> {
        // The guard exists before BEGIN is sent, so a failed or cancelled
        // BEGIN ends the same way as any other unfinished transaction.
        let mut tx = Tx {
            conn: Some(pool.acquire().await?),
            on_drop: OnDrop::RollBack,
        };
        tx.execute(begin).await?;
        Ok(tx)
    }

    /// Commits. The connection goes back to the pool only if the database
    /// confirmed the COMMIT; otherwise it is closed, so nothing it held
    /// open survives, and the error is returned: the write did not happen.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.end("COMMIT").await
    }

    /// Rolls back. The connection is closed if the ROLLBACK fails.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end("ROLLBACK").await
    }

    async fn end(mut self, statement: &str) -> Result<(), sqlx::Error> {
        // Cancelled while the statement is under way, the outcome is not
        // known: the connection must not be reused.
        self.on_drop = OnDrop::Discard;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match conn.execute(statement).await {
            Ok(_) => {
                // Back to the pool, with no transaction open.
                drop(self.conn.take());
                Ok(())
            }
            Err(e) => {
                if let Some(conn) = self.conn.take() {
                    discard(conn);
                }
                Err(e)
            }
        }
    }
}

/// Takes `conn` out of the pool for good and closes it, which rolls back
/// anything it still holds open.
pub(crate) fn discard(conn: PoolConnection<Any>) {
    let raw = conn.detach();
    tracing::warn!("closing a database connection whose transaction did not end cleanly");
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                let _ = raw.close().await;
            });
        }
        // Dropping closes it too, without the goodbye.
        Err(_) => drop(raw),
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match (self.on_drop, tokio::runtime::Handle::try_current()) {
            (OnDrop::RollBack, Ok(rt)) => {
                // The rollback runs on a guard of its own that closes the
                // connection if the rollback fails or is itself cancelled.
                let tx = Tx {
                    conn: Some(conn),
                    on_drop: OnDrop::Discard,
                };
                rt.spawn(async move {
                    let _ = tx.rollback().await;
                });
            }
            _ => discard(conn),
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
            .as_deref()
            .expect("a transaction holds its connection until it ends")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
            .as_deref_mut()
            .expect("a transaction holds its connection until it ends")
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx")
            .field("open", &self.conn.is_some())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sqlx::any::AnyPoolOptions;
    use std::time::Duration;

    /// A pool of two connections on a fresh SQLite file whose writers give
    /// up on a held lock after a fifth of a second, and a table whose
    /// foreign key is checked only at COMMIT: the one way to make a COMMIT
    /// fail at will (SQLite then keeps the transaction open, as it may on
    /// a full disk).
    pub(crate) async fn pool(name: &str) -> (AnyPool, std::path::PathBuf) {
        sqlx::any::install_default_drivers();
        let dir = std::env::temp_dir().join(format!("jarvis-tx-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 200").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .expect("pool");
        pool.execute(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER \
               REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED); \
             CREATE TABLE ok (id INTEGER PRIMARY KEY)",
        )
        .await
        .expect("schema");
        (pool, dir)
    }

    pub(crate) async fn count(pool: &AnyPool, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_leaves_no_connection_inside_its_transaction() {
        let (pool, dir) = pool("commit").await;
        for round in 0..4 {
            let mut tx = Tx::begin(&pool, "BEGIN").await.expect("begin");
            tx.execute("INSERT INTO child (id, parent) VALUES (1, 99)")
                .await
                .expect("the check waits for COMMIT");
            let e = tx.commit().await.expect_err("COMMIT must fail");
            assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
            // Every connection the pool hands out now is outside any
            // transaction: none sees the row, and each can write at once
            // (a connection still holding the lock would make the others
            // wait out their busy timeout and fail).
            for _ in 0..4 {
                assert_eq!(count(&pool, "child").await, 0, "round {round}");
                let mut w = Tx::begin(&pool, "BEGIN").await.expect("begin");
                w.execute(&*format!("INSERT OR REPLACE INTO ok (id) VALUES ({round})"))
                    .await
                    .expect("write while the failed one is gone");
                w.commit().await.expect("commit");
            }
        }
        assert_eq!(count(&pool, "ok").await, 4);
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_transaction_is_rolled_back_before_its_connection_is_reused() {
        let (pool, dir) = pool("drop").await;
        for _ in 0..8 {
            let mut tx = Tx::begin(&pool, "BEGIN").await.expect("begin");
            tx.execute("INSERT INTO ok (id) VALUES (1)")
                .await
                .expect("insert");
            // An error returned with `?`, a cancelled request.
            drop(tx);
            assert_eq!(count(&pool, "ok").await, 0);
        }
        // And one cancelled in the middle of its work.
        let slow = async {
            let mut tx = Tx::begin(&pool, "BEGIN").await.expect("begin");
            tx.execute("INSERT INTO ok (id) VALUES (2)")
                .await
                .expect("insert");
            tokio::time::sleep(Duration::from_secs(60)).await;
            tx.commit().await
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
        let mut w = Tx::begin(&pool, "BEGIN").await.expect("begin");
        w.execute("INSERT INTO ok (id) VALUES (3)")
            .await
            .expect("the lock is free again");
        w.commit().await.expect("commit");
        assert_eq!(count(&pool, "ok").await, 1);
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
