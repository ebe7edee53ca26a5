//! Whether the database still takes a write, for a readiness check: a
//! `SELECT 1` answers on a full disk, and a server that says it is ready
//! while every write fails sends its clients into errors.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::tx::Tx;
use crate::{Backend, Store, StoreError, now};

/// The space left where the database keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeSpace {
    /// The directory measured (the SQLite file's).
    pub dir: PathBuf,
    /// Bytes an unprivileged writer may still use there.
    pub bytes: u64,
}

/// Writes, syncs and removes a page-sized file in `dir`.
fn probe_file(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".jarvis-write-probe");
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    result
}

impl Store {
    /// Writes and commits something small, as a real write would: on
    /// SQLite it rewrites one row of `write_probe` and writes (and
    /// removes) a page-sized file beside the database; on PostgreSQL it
    /// fills a page of a temporary table (which must take new space where
    /// the database's tables live) and rolls back, leaving nothing.
    ///
    /// # Errors
    /// [`StoreError::NoSpace`] or [`StoreError::Unwritable`] naming the
    /// database and why, or whatever else stops the write.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        match self.backend() {
            Backend::Sqlite => {
                // In turn with every other write (the group commit), so a
                // busy server's writes do not keep the probe out.
                let (mut tx, _) = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO write_probe (id, at) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                )
                .bind(now())
                .execute(&mut *tx)
                .await
                .map_err(self.db("writing the probe row"))?;
                tx.commit()
                    .await
                    .map_err(self.db("committing the write probe"))?;
                // SQLite writes a commit into its WAL, whose blocks it
                // reuses: the row above can commit on a full disk that
                // refuses the next page the database needs. New blocks
                // beside the file say whether the disk has any left.
                let Some(dir) = self
                    .sqlite_path()
                    .and_then(|f| f.parent())
                    .map(Path::to_owned)
                else {
                    return Ok(());
                };
                let written = tokio::task::spawn_blocking(move || probe_file(&dir))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                written.map_err(|e| {
                    StoreError::db("writing a probe file beside the database")(sqlx::Error::Io(e))
                        .in_database(self.describe())
                })
            }
            Backend::Postgres => {
                let mut tx = Tx::begin(self.pool(), "BEGIN")
                    .await
                    .map_err(self.db("starting a write probe"))?;
                // A new relation's first page is new space: a full
                // tablespace refuses it with disk_full, where rewriting a
                // row in place would still succeed.
                for statement in [
                    "CREATE TEMPORARY TABLE jarvis_write_probe (b TEXT) ON COMMIT DROP",
                    "INSERT INTO jarvis_write_probe SELECT repeat('x', 1000) FROM generate_series(1, 8)",
                ] {
                    sqlx::query(statement)
                        .execute(&mut *tx)
                        .await
                        .map_err(self.db("writing the probe table"))?;
                }
                tx.rollback()
                    .await
                    .map_err(self.db("ending the write probe"))
            }
        }
    }

    /// The space left in the SQLite file's directory; `None` on PostgreSQL
    /// (its server's disk is not this machine's to measure) or when the
    /// directory cannot be asked.
    pub fn free_space(&self) -> Option<FreeSpace> {
        let dir = self.sqlite_path()?.parent()?.to_owned();
        let stat = rustix::fs::statvfs(&dir).ok()?;
        Some(FreeSpace {
            bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
            dir,
        })
    }
}
