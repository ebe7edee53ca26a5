//! Snapshots taken on hosts, previews shown to approvers, and the link
//! between a rollback and the action it puts back.
//!
//! The store keeps what the host reported as JSON; it does not interpret
//! it (jarvis-exec owns those types). What it guarantees: a manifest is
//! written once, the after-state once, and a successful rollback moves the
//! original action to `rolled_back` in the same transaction as its own end.

use jarvis_core::{ActionId, ActionState, PreviewReport, SnapshotPlan};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::actions::{ActionRecord, transition_locked};
use crate::audit::{NewEvent, WriteTx, append_locked};
use crate::runs::{RunRecord, insert_run};
use crate::{Store, StoreError, now};

/// A snapshot as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SnapshotRecord {
    /// The action it was taken for.
    pub action_id: ActionId,
    /// The host.
    pub host: String,
    /// When it was recorded.
    pub taken_at: String,
    /// What the host kept.
    pub manifest: Value,
    /// The targets' fingerprints right after the action ran.
    pub after: Option<Value>,
    /// When retention removed what the host kept.
    pub pruned_at: Option<String>,
}

impl SnapshotRecord {
    fn from_row(row: &AnyRow) -> Result<SnapshotRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("snapshot {what}: {e}"))
        };
        let id: String = row.try_get("action_id").map_err(|e| bad("action_id", &e))?;
        let manifest: String = row.try_get("manifest").map_err(|e| bad("manifest", &e))?;
        let after: Option<String> = row.try_get("after").map_err(|e| bad("after", &e))?;
        Ok(SnapshotRecord {
            action_id: id.parse().map_err(|e| bad(&id, &e))?,
            host: row.try_get("host").map_err(|e| bad("host", &e))?,
            taken_at: row.try_get("taken_at").map_err(|e| bad("taken_at", &e))?,
            manifest: serde_json::from_str(&manifest).map_err(|e| bad(&id, &e))?,
            after: after
                .map(|a| serde_json::from_str(&a))
                .transpose()
                .map_err(|e| bad(&id, &e))?,
            pruned_at: row.try_get("pruned_at").map_err(|e| bad("pruned_at", &e))?,
        })
    }
}

const SNAPSHOT_COLUMNS: &str = "action_id, host, taken_at, manifest, after, pruned_at";

impl Store {
    /// Appends `event` to the chain inside the caller's write and commits
    /// both; `what` names the write in errors.
    async fn commit_with_event(
        &self,
        mut tx: WriteTx,
        mut head: (i64, String),
        event: NewEvent,
        what: &'static str,
    ) -> Result<(), StoreError> {
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit().await.map_err(self.db(what))
    }

    /// Records the snapshot taken before an action ran, and its
    /// `snapshot.taken` event carrying `summary` (counts, what was not
    /// captured; never file contents).
    ///
    /// # Errors
    /// A [`StoreError`]; a second snapshot for one action is refused by the
    /// primary key.
    pub async fn record_snapshot(
        &self,
        id: ActionId,
        host: &str,
        manifest: &Value,
        summary: Value,
    ) -> Result<(), StoreError> {
        let (mut tx, head) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO snapshots (action_id, host, taken_at, manifest) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(host)
        .bind(now())
        .bind(manifest.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording a snapshot"))?;
        self.commit_with_event(
            tx,
            head,
            NewEvent {
                actor: "gateway".into(),
                action_id: Some(id),
                host: Some(host.to_owned()),
                kind: "snapshot.taken".into(),
                payload: summary,
            },
            "committing a snapshot",
        )
        .await
    }

    /// Records the targets' state right after the action ran (once).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] without a snapshot; a database error when an
    /// after-state is already recorded.
    pub async fn record_after(&self, id: ActionId, after: &Value) -> Result<(), StoreError> {
        let (mut tx, head) = self.begin_write().await?;
        let done = sqlx::query("UPDATE snapshots SET after = $1 WHERE action_id = $2")
            .bind(after.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording the state after an action"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("a snapshot of action {id}")));
        }
        self.commit_with_event(
            tx,
            head,
            NewEvent {
                actor: "gateway".into(),
                action_id: Some(id),
                host: None,
                kind: "snapshot.after".into(),
                payload: json!({ "recorded": true }),
            },
            "committing the state after an action",
        )
        .await
    }

    /// The snapshot of an action, if one was taken.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn snapshot(&self, id: ActionId) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE action_id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading a snapshot"))?;
        row.as_ref().map(SnapshotRecord::from_row).transpose()
    }

    /// Snapshots, newest first, of one host or all.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn snapshots(
        &self,
        host: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SnapshotRecord>, StoreError> {
        let limit = limit.clamp(1, 100_000);
        let rows = match host {
            Some(h) => sqlx::query(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE host = $1 ORDER BY action_id DESC LIMIT {limit}"
            ))
            .bind(h)
            .fetch_all(self.pool())
            .await,
            None => sqlx::query(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots ORDER BY action_id DESC LIMIT {limit}"
            ))
            .fetch_all(self.pool())
            .await,
        }
        .map_err(StoreError::db("listing snapshots"))?;
        rows.iter().map(SnapshotRecord::from_row).collect()
    }

    /// The ids of a host's unpruned snapshots, newest first: what retention
    /// looks at after every action, without reading any manifest.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn kept_snapshots(&self, host: &str) -> Result<Vec<ActionId>, StoreError> {
        sqlx::query(
            "SELECT action_id FROM snapshots WHERE host = $1 AND pruned_at IS NULL \
             ORDER BY action_id DESC",
        )
        .bind(host)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing kept snapshots"))?
        .iter()
        .map(|r| {
            let id: String = r
                .try_get("action_id")
                .map_err(|e| StoreError::Corrupt(format!("snapshot id: {e}")))?;
            id.parse()
                .map_err(|e| StoreError::Corrupt(format!("snapshot id {id}: {e}")))
        })
        .collect()
    }

    /// Marks a snapshot pruned: what the host kept is gone, so it can no
    /// longer be rolled back to. `detail` (why) goes into the
    /// `snapshot.pruned` event.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no unpruned snapshot.
    pub async fn mark_pruned(
        &self,
        id: ActionId,
        actor: &str,
        detail: Value,
    ) -> Result<(), StoreError> {
        self.set_pruned(id, actor, detail, true).await
    }

    /// Takes back [`Store::mark_pruned`] when the host could not remove
    /// what the snapshot kept: it can be rolled back to again, and the
    /// next pruning tries again. `detail` (why, and what failed) goes into
    /// the `snapshot.prune_failed` event.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no pruned snapshot.
    pub async fn unmark_pruned(
        &self,
        id: ActionId,
        actor: &str,
        detail: Value,
    ) -> Result<(), StoreError> {
        self.set_pruned(id, actor, detail, false).await
    }

    async fn set_pruned(
        &self,
        id: ActionId,
        actor: &str,
        detail: Value,
        pruned: bool,
    ) -> Result<(), StoreError> {
        let (doing, committing, missing, kind) = if pruned {
            (
                "marking a snapshot pruned",
                "committing a pruned snapshot",
                "an unpruned",
                "snapshot.pruned",
            )
        } else {
            (
                "taking back a snapshot's pruning",
                "committing a snapshot's failed pruning",
                "a pruned",
                "snapshot.prune_failed",
            )
        };
        let (mut tx, head) = self.begin_write().await?;
        let update = if pruned {
            sqlx::query(
                "UPDATE snapshots SET pruned_at = $1 WHERE action_id = $2 AND pruned_at IS NULL",
            )
            .bind(now())
        } else {
            sqlx::query(
                "UPDATE snapshots SET pruned_at = NULL WHERE action_id = $1 AND pruned_at IS NOT NULL",
            )
        };
        let done = update
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(doing))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!(
                "{missing} snapshot of action {id}"
            )));
        }
        self.commit_with_event(
            tx,
            head,
            NewEvent {
                actor: actor.to_owned(),
                action_id: Some(id),
                host: None,
                kind: kind.into(),
                payload: detail,
            },
            committing,
        )
        .await
    }

    /// Attaches the preview shown to approvers; `summary` (never the diff
    /// itself, which may hold anything) goes into the `action.previewed`
    /// event.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn set_preview(
        &self,
        id: ActionId,
        preview: &PreviewReport,
        summary: Value,
    ) -> Result<(), StoreError> {
        let text = crate::actions::json_text("preview", &Some(preview))?;
        let (mut tx, head) = self.begin_write().await?;
        sqlx::query("UPDATE actions SET preview = $1 WHERE id = $2")
            .bind(text)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("attaching a preview"))?;
        self.commit_with_event(
            tx,
            head,
            NewEvent {
                actor: "gateway".into(),
                action_id: Some(id),
                host: None,
                kind: "action.previewed".into(),
                payload: summary,
            },
            "committing a preview",
        )
        .await?;
        Ok(())
    }

    /// The snapshot plan changed after approval: records the new plan and
    /// sends the action back to `pending_approval`, in one transaction.
    ///
    /// # Errors
    /// As [`Store::transition`].
    pub async fn replan(
        &self,
        id: ActionId,
        plan: &SnapshotPlan,
        actor: &str,
        reason: &str,
    ) -> Result<ActionRecord, StoreError> {
        let text = crate::actions::json_text("plan", &Some(plan))?;
        let plan_json = json!(plan);
        let (mut tx, mut head) = self.begin_write().await?;
        let record = transition_locked(
            &mut tx,
            &mut head,
            self.signer(),
            id,
            ActionState::Approved,
            ActionState::PendingApproval,
            actor,
            None,
            json!({
                "reason": reason,
                "plan": plan_json,
                "commitment": crate::commitment::of_plan(&plan_json),
            }),
        )
        .await?;
        sqlx::query("UPDATE actions SET plan = $1 WHERE id = $2")
            .bind(text)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording a new snapshot plan"))?;
        // Approvals bind to what was shown, and the plan shown is gone: the
        // new one needs its own approvals (the old ones stay in the log).
        sqlx::query("DELETE FROM approvals WHERE action_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("clearing approvals of an old plan"))?;
        tx.commit()
            .await
            .map_err(self.db("committing a new snapshot plan"))?;
        let mut record = record;
        record.plan = Some(plan.clone());
        Ok(record)
    }

    /// Ends a rollback's run like [`Store::finish_run`] and, when it
    /// succeeded, moves the action it puts back from `original_from` to
    /// `rolled_back`, all in one transaction.
    ///
    /// # Errors
    /// As [`Store::transition`], for either action; nothing is written then.
    pub async fn finish_rollback(
        &self,
        id: ActionId,
        to: ActionState,
        run: &RunRecord,
        original: ActionId,
        original_from: ActionState,
    ) -> Result<ActionRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let record = transition_locked(
            &mut tx,
            &mut head,
            self.signer(),
            id,
            ActionState::Running,
            to,
            "gateway",
            None,
            json!({ "run": run.summary(), "rollback_of": original.to_string() }),
        )
        .await?;
        insert_run(&mut tx, id, run).await?;
        if to == ActionState::Succeeded {
            transition_locked(
                &mut tx,
                &mut head,
                self.signer(),
                original,
                original_from,
                ActionState::RolledBack,
                "gateway",
                None,
                json!({ "rollback": id.to_string() }),
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(self.db("committing a rollback"))?;
        Ok(record)
    }

    /// Rollback actions that name `original`, oldest first.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn rollbacks_of(&self, original: ActionId) -> Result<Vec<ActionRecord>, StoreError> {
        let ids: Vec<String> =
            sqlx::query("SELECT id FROM actions WHERE rollback_of = $1 ORDER BY id")
                .bind(original.to_string())
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::db("listing rollbacks"))?
                .iter()
                .filter_map(|r| r.try_get::<String, _>("id").ok())
                .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id: ActionId = id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("rollback id {id}: {e}")))?;
            out.push(self.action(id).await?);
        }
        Ok(out)
    }
}
