//! What each host's guard last said of its kernel wall: a cache, so that
//! a `jarvis` process that lives for one command does not ask the host
//! before judging it while another process's answer is fresh. The report
//! is the guard's own JSON, which this crate keeps without reading.

use sqlx::Row;

use crate::{Store, StoreError, now};

/// A host's last kernel report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKernel {
    /// A digest of what defined the connection the report came over: it
    /// holds for that connection only.
    pub connection: String,
    /// The report as the guard's protocol spells it (JSON).
    pub report: String,
    /// When the guard answered, by this side's clock ([`crate::now`]).
    pub learnt_at: String,
}

impl Store {
    /// Keeps `report` as what `host`'s guard says of its kernel wall now
    /// over the connection `connection` names, in place of what it said
    /// before.
    ///
    /// # Errors
    /// A database error.
    pub async fn record_host_kernel(
        &self,
        host: &str,
        connection: &str,
        report: &str,
    ) -> Result<(), StoreError> {
        let (mut tx, _) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO host_kernels (host, connection, report, learnt_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (host) DO UPDATE SET connection = excluded.connection, \
             report = excluded.report, learnt_at = excluded.learnt_at",
        )
        .bind(host)
        .bind(connection)
        .bind(report)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(self.db("recording a host's kernel report"))?;
        tx.commit()
            .await
            .map_err(self.db("committing a host's kernel report"))
    }

    /// What `host`'s guard last said of its kernel wall, and over which
    /// connection, if it was ever asked.
    ///
    /// # Errors
    /// A database error.
    pub async fn host_kernel(&self, host: &str) -> Result<Option<HostKernel>, StoreError> {
        let row =
            sqlx::query("SELECT connection, report, learnt_at FROM host_kernels WHERE host = $1")
                .bind(host)
                .fetch_optional(self.pool())
                .await
                .map_err(self.db("reading a host's kernel report"))?;
        row.map(|r| {
            Ok(HostKernel {
                connection: r.try_get("connection")?,
                report: r.try_get("report")?,
                learnt_at: r.try_get("learnt_at")?,
            })
        })
        .transpose()
        .map_err(self.db("reading a host's kernel report"))
    }
}
