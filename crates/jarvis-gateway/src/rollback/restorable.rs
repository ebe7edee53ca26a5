//! What a rollback puts back and where: the kept snapshot and after-state
//! of an action that can be rolled back now, and where its targets stand
//! on the host.

use jarvis_core::{ActionId, ActionState, HostName};
use jarvis_exec::snapshot::{RestoreReport, RestoreRequest, Snapshot};
use jarvis_exec::{Admission, HostSpec};
use jarvis_store::ActionRecord;

use crate::pipeline::{Gateway, GatewayError};

/// What a rollback puts back, and where.
pub(super) struct Restorable {
    pub(super) host: HostName,
    pub(super) spec: HostSpec,
    pub(super) target: Snapshot,
    pub(super) after: Option<Snapshot>,
}

impl Gateway {
    /// What a rollback of `original` would put back, or why it cannot be
    /// rolled back now.
    pub(super) async fn restorable(
        &self,
        original: &ActionRecord,
    ) -> Result<Restorable, GatewayError> {
        let id = original.id;
        let refuse = |why: String| GatewayError::NoRollback { id, why };
        if original.state == ActionState::RolledBack {
            let by = self.store().rollbacks_of(id).await?;
            let by = by
                .iter()
                .rev()
                .find(|r| r.state == ActionState::Succeeded)
                .map(|r| format!(" by {}", r.id))
                .unwrap_or_default();
            return Err(refuse(format!("it was already rolled back{by}")));
        }
        if !matches!(
            original.state,
            ActionState::Succeeded | ActionState::Failed | ActionState::TimedOut
        ) {
            return Err(refuse(format!(
                "it is {}; only a succeeded, failed or timed-out action can be rolled back",
                original.state.label()
            )));
        }
        let Some(record) = self.store().snapshot(id).await? else {
            return Err(refuse(match &original.plan {
                Some(p) => format!("no snapshot was taken ({})", p.summary()),
                None => "no snapshot was taken".into(),
            }));
        };
        if let Some(at) = &record.pruned_at {
            return Err(refuse(format!(
                "its snapshot was pruned at {at} (retention)"
            )));
        }
        let target: Snapshot = serde_json::from_value(record.manifest.clone())
            .map_err(|e| refuse(format!("its snapshot record cannot be read: {e}")))?;
        let after: Option<Snapshot> = record
            .after
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| refuse(format!("its after-state record cannot be read: {e}")))?;
        let host = HostName::parse(&record.host)
            .map_err(|_| GatewayError::UnknownHost(record.host.clone()))?;
        let spec = self
            .config()
            .host(&host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        Ok(Restorable {
            host,
            spec,
            target,
            after,
        })
    }

    /// Asks the host where each target of a rollback stands now (already
    /// back, as the action left it, or changed since) without changing
    /// anything. `None` when the host could not say: unreachable, or a
    /// guard too old to check; the rollback's own run checks again.
    /// Within an admitted rollback, it asks on the rollback's admission.
    pub(super) async fn check_restore(
        &self,
        rb: ActionId,
        r: &Restorable,
        admission: Option<&Admission>,
    ) -> Option<RestoreReport> {
        let request = RestoreRequest {
            action_id: rb,
            target: r.target.clone(),
            after: r.after.clone(),
            force: false,
            check_only: true,
            volume_image: r.spec.snapshots.volume_image.clone(),
        };
        let answer = match admission {
            Some(a) => self.executor().restore_admitted(a, request).await,
            None => self.executor().restore(&r.host, request).await,
        };
        match answer {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(host = %r.host, error = %e, "cannot check a rollback's targets before it runs");
                None
            }
        }
    }
}
