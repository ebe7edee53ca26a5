//! The snapshot work a host's guard does for the gateway: snapshots and
//! fingerprints, rollbacks, previews and drops, each one call over the
//! executor's connections with the answer it must be.

use jarvis_core::HostName;

use super::{Admission, ExecError, Executor, HEARTBEATS, Via};
use crate::protocol::{Frame, Request};
use crate::snapshot::{
    DropReport, DropRequest, PreviewReport, PreviewRequest, RestoreReport, RestoreRequest,
    Snapshot, SnapshotRequest,
};

impl Executor {
    /// Takes a snapshot (or, without `keep`, fingerprints) on a host.
    ///
    /// # Errors
    /// As [`Executor::check`], or the guard's refusal.
    pub async fn snapshot(
        &self,
        host: &HostName,
        request: SnapshotRequest,
    ) -> Result<Snapshot, ExecError> {
        self.snapshot_via(Via::Fresh(host), request).await
    }

    /// Takes a snapshot for an admitted job, on its admission's pass: the
    /// snapshot before a run that probes a host is part of that probe.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn snapshot_admitted(
        &self,
        admission: &Admission,
        request: SnapshotRequest,
    ) -> Result<Snapshot, ExecError> {
        self.snapshot_via(Via::Admitted(admission), request).await
    }

    async fn snapshot_via(
        &self,
        via: Via<'_>,
        request: SnapshotRequest,
    ) -> Result<Snapshot, ExecError> {
        let answer = self
            .call(via, &Request::Snapshot(request), HEARTBEATS)
            .await?;
        let Frame::Snapshotted(s) = answer else {
            return Err(Self::unexpected(via.host(), "snapshot", &answer));
        };
        Ok(s)
    }

    /// Rolls targets back on a host.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn restore(
        &self,
        host: &HostName,
        request: RestoreRequest,
    ) -> Result<RestoreReport, ExecError> {
        self.restore_via(Via::Fresh(host), request).await
    }

    /// Rolls targets back (or checks them) for an admitted rollback, on its
    /// admission's pass.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn restore_admitted(
        &self,
        admission: &Admission,
        request: RestoreRequest,
    ) -> Result<RestoreReport, ExecError> {
        self.restore_via(Via::Admitted(admission), request).await
    }

    async fn restore_via(
        &self,
        via: Via<'_>,
        request: RestoreRequest,
    ) -> Result<RestoreReport, ExecError> {
        let answer = self
            .call(via, &Request::Restore(request), HEARTBEATS)
            .await?;
        let Frame::Restored(r) = answer else {
            return Err(Self::unexpected(via.host(), "rollback", &answer));
        };
        Ok(r)
    }

    /// Makes a preview on the admitted job's host, with the admission's
    /// timeout. A preview acts on the host before anyone approved the
    /// action, so it is admitted like a run ([`Executor::admit`]: rate
    /// limits, breaker, a concurrency slot) and holds the host's slot until
    /// its report is in.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn preview(
        &self,
        admission: Admission,
        mut request: PreviewRequest,
    ) -> Result<PreviewReport, ExecError> {
        request.timeout_ms = u64::try_from(admission.timeout.as_millis()).unwrap_or(u64::MAX);
        let answer = self
            .call(
                Via::Admitted(&admission),
                &Request::Preview(request),
                HEARTBEATS,
            )
            .await?;
        let Frame::Previewed(p) = answer else {
            return Err(Self::unexpected(&admission.host, "preview", &answer));
        };
        Ok(p)
    }

    /// Removes kept snapshots on a host.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn drop_snapshots(
        &self,
        host: &HostName,
        request: DropRequest,
    ) -> Result<DropReport, ExecError> {
        let answer = self
            .call(Via::Fresh(host), &Request::Drop(request), HEARTBEATS)
            .await?;
        let Frame::Dropped(d) = answer else {
            return Err(Self::unexpected(host, "drop", &answer));
        };
        Ok(d)
    }
}
