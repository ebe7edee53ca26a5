//! Group commit of SQLite writes.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every
//! COMMIT waits for the disk. Writers that each began their own
//! transaction queued in SQLite's busy handler, which sleeps between
//! attempts (up to 100 ms), and each paid a sync of its own, so more
//! clients bought no more throughput and a much longer tail.
//!
//! Here writers queue in order on one in-process gate instead, and write
//! into one shared transaction on one connection, each inside a savepoint
//! of its own: a writer that fails or is cancelled rolls back to its
//! savepoint and leaves the others' writes in place. A committer task ends
//! the shared transaction once the writers queued before it are through,
//! so one sync covers everyone who wrote meanwhile (one writer alone is
//! committed at once). No writer hears "done" before the COMMIT that holds
//! its write succeeded; when a COMMIT fails, every writer in it hears the
//! failure (with the database's own error, so a full disk is still named),
//! the connection is closed, and nothing of the batch remains.
//!
//! Other processes (the CLI beside a running server) still meet SQLite's
//! lock and its busy timeout; the shared transaction holds that lock only
//! while writes are in it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, watch};

use crate::tx::discard;

/// What a batch's COMMIT said, shared by every writer in it.
type Outcome = Result<(), Arc<Failure>>;

/// The state behind the gate: the connection writes go through and the
/// batch open on it.
struct Batch {
    pool: AnyPool,
    conn: Option<PoolConnection<Any>>,
    /// Whether a transaction is open on `conn`.
    open: bool,
    /// Where the open batch's writers hear its outcome.
    done: watch::Sender<Option<Outcome>>,
    /// Batches committed so far.
    commits: u64,
}

impl Batch {
    /// Ends the batch with `outcome`, telling its writers, and starts a
    /// fresh one.
    fn finish(&mut self, outcome: Outcome) {
        self.open = false;
        let (next, _) = watch::channel(None);
        let done = std::mem::replace(&mut self.done, next);
        done.send_replace(Some(outcome));
    }

    /// Gives up the open batch: the connection is closed (which rolls back
    /// whatever it holds) and the batch's writers hear `why`.
    fn abort(&mut self, why: Failure) {
        if let Some(conn) = self.conn.take() {
            discard(conn);
        }
        self.finish(Err(Arc::new(why)));
    }

    /// The connection, with the batch's transaction open on it.
    async fn begin(&mut self) -> Result<&mut AnyConnection, sqlx::Error> {
        if self.conn.is_none() {
            self.conn = Some(self.pool.acquire().await?);
            self.open = false;
        }
        if !self.open {
            let conn = self.conn.as_mut().expect("acquired above");
            if let Err(e) = conn.execute("BEGIN").await {
                // A BEGIN that failed leaves the connection's state unknown.
                if let Some(conn) = self.conn.take() {
                    discard(conn);
                }
                return Err(e);
            }
            self.open = true;
        }
        Ok(self.conn.as_deref_mut().expect("acquired above"))
    }

    /// Commits the open batch, if any, and tells its writers.
    async fn commit(&mut self) {
        if !self.open {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            self.finish(Ok(()));
            return;
        };
        match conn.execute("COMMIT").await {
            Ok(_) => {
                self.commits += 1;
                self.finish(Ok(()));
            }
            Err(e) => self.abort(Failure::of(&e)),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // A pooled connection must never go back with a transaction open.
        if self.open
            && let Some(conn) = self.conn.take()
        {
            discard(conn);
        }
    }
}

/// The gate and the committer of one SQLite store.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    gate: Arc<Mutex<Batch>>,
    wake: Arc<Notify>,
    /// Whether the committer task runs: it ends with the runtime it was
    /// started on, and a store used on another runtime after that (a
    /// command that opens one per step) starts another.
    alive: Arc<AtomicBool>,
    /// How long a writer waits its turn before giving up, as SQLite's busy
    /// timeout would have it wait for the lock.
    patience: Duration,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the committer for `pool`'s writes. It ends when the last
    /// handle is dropped.
    pub(crate) fn start(pool: AnyPool, patience: Duration) -> GroupCommit {
        let (done, _) = watch::channel(None);
        let gate = Arc::new(Mutex::new(Batch {
            pool,
            conn: None,
            open: false,
            done,
            commits: 0,
        }));
        let group = GroupCommit {
            gate,
            wake: Arc::new(Notify::new()),
            alive: Arc::new(AtomicBool::new(false)),
            patience,
        };
        group.keep_committer();
        group
    }

    /// Starts the committer on the current runtime unless it runs.
    fn keep_committer(&self) {
        if !self.alive.swap(true, Ordering::AcqRel) {
            tokio::spawn(committer(
                Arc::downgrade(&self.gate),
                self.wake.clone(),
                Alive(self.alive.clone()),
            ));
        }
    }

    /// Waits its turn and starts a write: a savepoint in the open batch.
    pub(crate) async fn begin(&self) -> Result<SharedWrite, sqlx::Error> {
        self.keep_committer();
        let mut batch = tokio::time::timeout(self.patience, self.gate.clone().lock_owned())
            .await
            .map_err(|_| {
                sqlx::Error::Database(Box::new(Failure {
                    message: "database is locked: other writes in this process held it longer than the busy timeout".into(),
                    code: Some("5".into()),
                    kind: FailureKind::Database,
                }))
            })?;
        let conn = batch.begin().await?;
        if let Err(e) = conn.execute("SAVEPOINT write").await {
            batch.abort(Failure::of(&e));
            return Err(e);
        }
        Ok(SharedWrite {
            batch: Some(batch),
            gate: self.gate.clone(),
            wake: self.wake.clone(),
            alive: self.alive.clone(),
            ending: false,
        })
    }

    /// Commits whatever is open and lets the connection go, so the pool
    /// can close.
    pub(crate) async fn close(&self) {
        let mut batch = self.gate.lock().await;
        batch.commit().await;
        drop(batch.conn.take());
    }
}

/// Says the committer stopped, however it stops (its runtime gone).
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Commits each batch once the writers queued ahead of it are through.
async fn committer(gate: Weak<Mutex<Batch>>, wake: Arc<Notify>, _alive: Alive) {
    loop {
        wake.notified().await;
        let Some(gate) = gate.upgrade() else {
            return;
        };
        // Taking the gate queues behind every writer already waiting for
        // it: they all join the batch this COMMIT ends.
        gate.lock().await.commit().await;
    }
}

/// One writer's turn: a savepoint in the shared transaction, with the
/// gate held until it is released or rolled back.
pub(crate) struct SharedWrite {
    batch: Option<OwnedMutexGuard<Batch>>,
    gate: Arc<Mutex<Batch>>,
    wake: Arc<Notify>,
    alive: Arc<AtomicBool>,
    /// Set while RELEASE or ROLLBACK TO is under way: cancelled then, the
    /// savepoint's state is not known.
    ending: bool,
}

impl SharedWrite {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.batch
            .as_mut()
            .and_then(|b| b.conn.as_deref_mut())
            .expect("a write holds the connection until it ends")
    }

    pub(crate) fn conn_ref(&self) -> &AnyConnection {
        self.batch
            .as_ref()
            .and_then(|b| b.conn.as_deref())
            .expect("a write holds the connection until it ends")
    }

    /// Keeps the write: releases the savepoint, lets the next writer in,
    /// and waits for the COMMIT that holds it.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        // Cancelled from here until the gate is let go, the savepoint's
        // state is not known (see the drop).
        self.ending = true;
        let batch = self
            .batch
            .as_mut()
            .expect("a write holds the gate until it ends");
        let conn = batch.conn.as_mut().expect("a write holds the connection");
        if let Err(e) = conn.execute("RELEASE write").await {
            batch.abort(Failure::of(&e));
            self.batch = None;
            return Err(e);
        }
        self.settle().await
    }

    /// Undoes the write, leaving the batch's other writes in place, and
    /// waits for the batch to end: what the writer read there (another
    /// request's action, made with the same idempotency key) may be an
    /// answer it gives, and must be durable before it is given. If the
    /// batch failed, so does this.
    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.ending = true;
        let batch = self
            .batch
            .as_mut()
            .expect("a write holds the gate until it ends");
        if let Err(e) = undo(batch).await {
            self.batch = None;
            return Err(e);
        }
        self.settle().await
    }

    /// Lets the next writer in and waits for the batch's COMMIT.
    async fn settle(mut self) -> Result<(), sqlx::Error> {
        let batch = self
            .batch
            .take()
            .expect("a write holds the gate until it ends");
        let mut done = batch.done.subscribe();
        drop(batch);
        self.wake.notify_one();
        let outcome = loop {
            tokio::select! {
                // The borrow of the value ends inside: it must not be held
                // across the other branch's wait.
                outcome = async {
                    done.wait_for(Option::is_some)
                        .await
                        .map(|o| o.clone().expect("waited for Some"))
                } => break outcome,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    // The committer went with its runtime: whoever waits
                    // commits.
                    if !self.alive.load(Ordering::Acquire) {
                        self.gate.lock().await.commit().await;
                    }
                }
            }
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure.to_sqlx()),
            // The committer is gone: the store was dropped or closed.
            Err(_) => Err(sqlx::Error::PoolClosed),
        }
    }
}

/// Rolls back to the writer's savepoint; if that fails, the whole batch
/// goes, since what it holds is not known.
async fn undo(batch: &mut Batch) -> Result<(), sqlx::Error> {
    let Some(conn) = batch.conn.as_mut() else {
        return Ok(());
    };
    let mut result = conn.execute("ROLLBACK TO write").await.map(drop);
    if result.is_ok() {
        result = conn.execute("RELEASE write").await.map(drop);
    }
    if let Err(e) = &result {
        batch.abort(Failure::of(e));
    }
    result
}

impl Drop for SharedWrite {
    fn drop(&mut self) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        if self.ending {
            batch.abort(Failure::cancelled());
            return;
        }
        // Dropped part-way (an error returned early, a cancelled request):
        // its savepoint is undone before anyone else writes.
        let wake = self.wake.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = undo(&mut batch).await;
                    drop(batch);
                    wake.notify_one();
                });
            }
            Err(_) => batch.abort(Failure::cancelled()),
        }
    }
}

/// A failure to tell every writer of a batch: the database's error,
/// rebuilt for each of them so that it is classified as the original
/// would be (a full disk stays a full disk).
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    code: Option<String>,
    kind: FailureKind,
}

#[derive(Debug, Clone)]
enum FailureKind {
    Database,
    Io(Option<i32>, std::io::ErrorKind),
    PoolClosed,
    Other,
}

impl Failure {
    fn of(e: &sqlx::Error) -> Failure {
        let (code, kind) = match e {
            sqlx::Error::Database(db) => (db.code().map(Cow::into_owned), FailureKind::Database),
            sqlx::Error::Io(io) => (None, FailureKind::Io(io.raw_os_error(), io.kind())),
            sqlx::Error::PoolClosed | sqlx::Error::PoolTimedOut => (None, FailureKind::PoolClosed),
            _ => (None, FailureKind::Other),
        };
        let message = match e {
            sqlx::Error::Database(db) => db.message().to_owned(),
            other => other.to_string(),
        };
        Failure {
            message,
            code,
            kind,
        }
    }

    fn cancelled() -> Failure {
        Failure {
            message: "a write was cancelled while it ended; the writes committed with it were rolled back".into(),
            code: None,
            kind: FailureKind::Other,
        }
    }

    fn to_sqlx(&self) -> sqlx::Error {
        match self.kind {
            FailureKind::Database => sqlx::Error::Database(Box::new(self.clone())),
            FailureKind::Io(Some(os), _) => sqlx::Error::Io(std::io::Error::from_raw_os_error(os)),
            FailureKind::Io(None, kind) => {
                sqlx::Error::Io(std::io::Error::new(kind, self.message.clone()))
            }
            FailureKind::PoolClosed => sqlx::Error::PoolClosed,
            FailureKind::Other => sqlx::Error::Protocol(self.message.clone()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl sqlx::error::DatabaseError for Failure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

/// A write, holding the audit chain's lock: a transaction of its own on
/// PostgreSQL (which commits concurrent writers together by itself), a
/// turn in the shared batch on SQLite. Either way, `commit` returns only
/// once the write is durable, and a write dropped before it ends is undone.
pub(crate) enum WriteTx {
    Own(crate::tx::Tx),
    Shared(SharedWrite),
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            WriteTx::Own(tx) => tx.commit().await,
            WriteTx::Shared(w) => w.commit().await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            WriteTx::Own(tx) => tx.rollback().await,
            WriteTx::Shared(w) => w.rollback().await,
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            WriteTx::Own(tx) => tx,
            WriteTx::Shared(w) => w.conn_ref(),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            WriteTx::Own(tx) => tx,
            WriteTx::Shared(w) => w.conn(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::{count, pool};

    async fn insert(group: &GroupCommit, table: &str, id: i64) -> Result<(), sqlx::Error> {
        let mut w = group.begin().await?;
        w.conn()
            .execute(&*format!("INSERT INTO {table} (id) VALUES ({id})"))
            .await?;
        w.commit().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_share_commits_and_each_hears_only_after_its_own() {
        let (pool, dir) = pool("group").await;
        let group = GroupCommit::start(pool.clone(), Duration::from_secs(10));
        let writers: Vec<_> = (0..200)
            .map(|id| {
                let (group, pool) = (group.clone(), pool.clone());
                tokio::spawn(async move {
                    insert(&group, "ok", id).await.expect("write");
                    // Acknowledged means committed: another connection
                    // sees it at once.
                    let seen: i64 =
                        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM ok WHERE id = {id}"))
                            .fetch_one(&pool)
                            .await
                            .expect("read");
                    assert_eq!(seen, 1, "writer {id} was answered before its commit");
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer");
        }
        assert_eq!(count(&pool, "ok").await, 200);
        let commits = group.gate.lock().await.commits;
        assert!(
            commits < 200,
            "{commits} commits for 200 concurrent writers"
        );
        group.close().await;
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A command opens a runtime per step: the committer started on the
    /// first is gone with it, and the next writes must not wait for it.
    #[test]
    fn writes_go_on_when_the_runtime_that_started_the_committer_is_gone() {
        let rt = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        };
        let (pool, dir, group) = rt().block_on(async {
            let (pool, dir) = pool("group-runtimes").await;
            let group = GroupCommit::start(pool.clone(), Duration::from_secs(10));
            insert(&group, "ok", 1).await.expect("first runtime");
            (pool, dir, group)
        });
        rt().block_on(async {
            tokio::time::timeout(Duration::from_secs(10), insert(&group, "ok", 2))
                .await
                .expect("the write does not hang")
                .expect("second runtime");
            assert_eq!(count(&pool, "ok").await, 2);
            group.close().await;
            pool.close().await;
        });
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_that_fails_or_is_dropped_takes_only_its_own_writes() {
        let (pool, dir) = pool("group-undo").await;
        let group = GroupCommit::start(pool.clone(), Duration::from_secs(10));
        // Rolled back on purpose.
        let mut w = group.begin().await.expect("begin");
        w.conn()
            .execute("INSERT INTO ok (id) VALUES (1)")
            .await
            .expect("insert");
        w.rollback().await.expect("rollback");
        // Dropped part-way, as an error returned with `?` drops it.
        let mut w = group.begin().await.expect("begin");
        w.conn()
            .execute("INSERT INTO ok (id) VALUES (2)")
            .await
            .expect("insert");
        drop(w);
        // Cancelled while it holds its turn.
        let slow = async {
            let mut w = group.begin().await.expect("begin");
            w.conn()
                .execute("INSERT INTO ok (id) VALUES (3)")
                .await
                .expect("insert");
            tokio::time::sleep(Duration::from_secs(60)).await;
            w.commit().await
        };
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
        // A statement that fails inside a write.
        let mut w = group.begin().await.expect("begin");
        w.conn()
            .execute("INSERT INTO ok (id) VALUES (4)")
            .await
            .expect("insert");
        w.conn()
            .execute("INSERT INTO ok (id) VALUES (4)")
            .await
            .expect_err("a duplicate key");
        drop(w);
        insert(&group, "ok", 5).await.expect("a later write");
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM ok ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("read");
        assert_eq!(ids, vec![5]);
        group.close().await;
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_writer_in_it_and_the_next_batch_starts_clean() {
        let (pool, dir) = pool("group-fail").await;
        let group = GroupCommit::start(pool.clone(), Duration::from_secs(10));
        // Hold the gate so that the writers below queue and join one batch
        // with the one whose row breaks a check made at COMMIT.
        let holder = group.begin().await.expect("begin");
        let good: Vec<_> = (10..20)
            .map(|id| {
                let group = group.clone();
                tokio::spawn(async move { insert(&group, "ok", id).await })
            })
            .collect();
        let bad = {
            let group = group.clone();
            tokio::spawn(async move {
                let mut w = group.begin().await?;
                w.conn()
                    .execute("INSERT INTO child (id, parent) VALUES (1, 99)")
                    .await?;
                w.commit().await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        holder.commit().await.expect_err("its batch fails too");
        let e = bad.await.expect("task").expect_err("COMMIT must fail");
        assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
        for w in good {
            let e = w.await.expect("task").expect_err("in the failed batch");
            assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
        }
        assert_eq!(count(&pool, "ok").await, 0);
        assert_eq!(count(&pool, "child").await, 0);
        insert(&group, "ok", 1).await.expect("the next batch");
        assert_eq!(count(&pool, "ok").await, 1);
        group.close().await;
        pool.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
