//! Snapshot retention: the newest `keep` of a host's kept snapshots stay,
//! and none older than `max_age_days`, each marked pruned before the host
//! removes it.

use std::time::Duration;

use jarvis_core::{ActionId, HostName};
use jarvis_exec::snapshot::{DropRequest, Snapshot};
use jarvis_store::NewEvent;
use serde_json::json;

use crate::pipeline::{Gateway, GatewayError, time_of};

impl Gateway {
    /// Applies the host's retention to its kept snapshots: the newest
    /// `keep` stay, and none older than `max_age_days`. Each is marked
    /// pruned before the host removes it; what a host could not remove is
    /// unmarked again and reported in a `snapshot.prune_failed` event.
    ///
    /// # Errors
    /// [`GatewayError::UnknownHost`] or a store error.
    pub async fn prune(&self, host: &HostName, actor: &str) -> Result<Vec<ActionId>, GatewayError> {
        let spec = self
            .config()
            .host(host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        let settings = &spec.snapshots;
        let max_age = settings
            .max_age_days
            .map(|d| Duration::from_secs(u64::from(d) * 86_400));
        let kept = self.store().kept_snapshots(host.as_str()).await?;
        let mut pruned = Vec::new();
        for (rank, id) in kept.into_iter().enumerate() {
            let age = std::time::SystemTime::now()
                .duration_since(time_of(id))
                .unwrap_or_default();
            let too_many = rank >= settings.keep as usize;
            let too_old = max_age.is_some_and(|m| age > m);
            if !too_many && !too_old {
                continue;
            }
            let Some(record) = self.store().snapshot(id).await? else {
                continue;
            };
            let Ok(snapshot) = serde_json::from_value::<Snapshot>(record.manifest) else {
                continue;
            };
            let why = if too_many {
                format!("more than {} kept snapshots on {host}", settings.keep)
            } else {
                format!("older than {} days", settings.max_age_days.unwrap_or(0))
            };
            // Recorded before the host is asked: a record that cannot be
            // written (a full disk) sends nothing, and a host that removed
            // what the record still offers to roll back to cannot happen.
            self.store()
                .mark_pruned(id, actor, json!({ "why": why }))
                .await?;
            let dropped = self
                .executor()
                .drop_snapshots(
                    host,
                    DropRequest {
                        snapshots: vec![snapshot],
                    },
                )
                .await;
            let error = match dropped {
                Ok(report) if report.errors.is_empty() => {
                    self.store()
                        .append(NewEvent {
                            actor: actor.to_owned(),
                            action_id: Some(id),
                            host: Some(host.to_string()),
                            kind: "snapshot.removed".into(),
                            payload: json!({ "removed": report.removed }),
                        })
                        .await?;
                    pruned.push(id);
                    continue;
                }
                Ok(report) => report.errors.join("; "),
                Err(e) => e.to_string(),
            };
            // Kept after all: it can be rolled back to, and the next
            // pruning tries again. (Were this write to fail, the record
            // would say pruned of a snapshot the host still holds: space
            // taken, nothing offered that is gone.)
            self.store()
                .unmark_pruned(id, actor, json!({ "why": why, "error": error }))
                .await?;
        }
        Ok(pruned)
    }
}
