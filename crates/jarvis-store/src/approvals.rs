//! Approvals counted under a separation-of-duties rule.
//!
//! An action waiting for approval collects one row per distinct approver
//! until the rule ([`ApprovalRule`]) says enough; the last approval moves it
//! to `approved` in the same transaction. Everything happens under the audit
//! chain's lock, so approvers racing on one action are counted one after the
//! other and the rule sees every earlier approval.

use jarvis_core::{ActionId, ActionState, ApprovalProgress, ApprovalRule, Risk};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::actions::{ActionRecord, Judged, fetch, transition_locked};
use crate::audit::{NewEvent, append_locked};
use crate::{Store, StoreError, now};

/// One person's approval of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApprovalRecord {
    /// Who approved (`user:alice`).
    pub approver: String,
    /// When.
    pub at: String,
    /// What they said, if anything.
    pub reason: Option<String>,
}

impl ApprovalRecord {
    fn from_row(row: &AnyRow) -> Result<ApprovalRecord, StoreError> {
        let bad = |what: &str, e: sqlx::Error| StoreError::Corrupt(format!("approval {what}: {e}"));
        Ok(ApprovalRecord {
            approver: row.try_get("approver").map_err(|e| bad("approver", e))?,
            at: row.try_get("at").map_err(|e| bad("at", e))?,
            reason: row.try_get("reason").map_err(|e| bad("reason", e))?,
        })
    }
}

async fn read_approvals(
    conn: &mut sqlx::AnyConnection,
    id: ActionId,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    // By position, not time: stored times do not sort as text.
    sqlx::query("SELECT approver, at, reason FROM approvals WHERE action_id = $1 ORDER BY position")
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("reading approvals"))?
        .iter()
        .map(ApprovalRecord::from_row)
        .collect()
}

impl Store {
    /// The approvals an action has collected for what it now asks, oldest
    /// first. A new snapshot plan clears them (see [`Store::replan`]).
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn approvals_of(&self, id: ActionId) -> Result<Vec<ApprovalRecord>, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("connecting"))?;
        read_approvals(&mut conn, id).await
    }

    /// Counts `approver`'s approval of a pending action under `rule`. When
    /// it is the last one needed, the action moves to `approved` (event
    /// `action.approved` with the reason and every approver); otherwise the
    /// approval is recorded (event `action.approval_recorded` with how many
    /// more are needed) and the action keeps waiting. An action without a
    /// risk counts as critical.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the action is no longer waiting for
    /// approval, [`StoreError::ApprovalRefused`] when the rule does not
    /// count this approval (the requester approving their own, or the same
    /// person twice), [`StoreError::NotFound`], or a database error; nothing
    /// is written in any of these cases.
    pub async fn approve(
        &self,
        id: ActionId,
        approver: &str,
        reason: Option<&str>,
        rule: &ApprovalRule,
    ) -> Result<(ActionRecord, ApprovalProgress), StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let action = fetch(&mut tx, id).await?;
        if action.state != ActionState::PendingApproval {
            return Err(StoreError::Conflict {
                id: id.to_string(),
                expected: ActionState::PendingApproval,
                found: action.state,
            });
        }
        let earlier: Vec<String> = read_approvals(&mut tx, id)
            .await?
            .into_iter()
            .map(|a| a.approver)
            .collect();
        let risk = action.risk.unwrap_or(Risk::MAX);
        // The person who answers for the action, as resolved when it was
        // proposed: behind a token or a conversation there is a person, and
        // that person approving is approving their own request.
        let progress = rule.count(&action.accountable, approver, risk, &earlier)?;
        sqlx::query(
            "INSERT INTO approvals (action_id, approver, at, reason, position) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(approver)
        .bind(now())
        .bind(reason)
        .bind(i64::try_from(earlier.len()).unwrap_or(i64::MAX - 1) + 1)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording an approval"))?;
        let record = match progress {
            ApprovalProgress::Complete => {
                let mut approvers = earlier;
                approvers.push(approver.to_owned());
                transition_locked(
                    &mut tx,
                    &mut head,
                    self.signer(),
                    id,
                    ActionState::PendingApproval,
                    ActionState::Approved,
                    approver,
                    None,
                    json!({ "reason": reason, "approvers": approvers }),
                )
                .await?
            }
            ApprovalProgress::Waiting { more } => {
                let event = NewEvent {
                    actor: approver.to_owned(),
                    action_id: Some(id),
                    host: action.host.as_ref().map(jarvis_core::HostName::to_string),
                    kind: "action.approval_recorded".into(),
                    payload: json!({ "approver": approver, "reason": reason, "more": more }),
                };
                append_locked(&mut tx, &mut head, event, self.signer()).await?;
                action
            }
        };
        tx.commit()
            .await
            .map_err(self.db("committing an approval"))?;
        Ok((record, progress))
    }

    /// Judges a just-proposed action whose asker's request counts as their
    /// own approval (a rollback under `[approvals] rollback =
    /// "one-approver"`). The asker's approval is counted under `rule` as
    /// [`Store::approve`] counts any other, so the rule can still refuse
    /// it; when it is enough the action moves from `proposed` to
    /// `approved` (event `action.approved`, the asker its approver),
    /// otherwise to `pending_approval` with the approval recorded.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the action is not `proposed`,
    /// [`StoreError::ApprovalRefused`], [`StoreError::NotFound`], or a
    /// database error; nothing is written in any of these cases.
    pub async fn approve_own_proposal(
        &self,
        id: ActionId,
        asker: &str,
        judged: &Judged,
        reason: &str,
        rule: &ApprovalRule,
    ) -> Result<(ActionRecord, ApprovalProgress), StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let action = fetch(&mut tx, id).await?;
        if action.state != ActionState::Proposed {
            return Err(StoreError::Conflict {
                id: id.to_string(),
                expected: ActionState::Proposed,
                found: action.state,
            });
        }
        let progress = rule.count(&action.accountable, asker, judged.risk, &[])?;
        sqlx::query(
            "INSERT INTO approvals (action_id, approver, at, reason, position) \
             VALUES ($1, $2, $3, $4, 1)",
        )
        .bind(id.to_string())
        .bind(asker)
        .bind(now())
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording an approval"))?;
        let record = match progress {
            ApprovalProgress::Complete => {
                transition_locked(
                    &mut tx,
                    &mut head,
                    self.signer(),
                    id,
                    ActionState::Proposed,
                    ActionState::Approved,
                    asker,
                    Some(judged),
                    json!({ "reason": reason, "approvers": [asker] }),
                )
                .await?
            }
            ApprovalProgress::Waiting { more } => {
                let record = transition_locked(
                    &mut tx,
                    &mut head,
                    self.signer(),
                    id,
                    ActionState::Proposed,
                    ActionState::PendingApproval,
                    "gateway",
                    Some(judged),
                    json!({}),
                )
                .await?;
                let event = NewEvent {
                    actor: asker.to_owned(),
                    action_id: Some(id),
                    host: action.host.as_ref().map(jarvis_core::HostName::to_string),
                    kind: "action.approval_recorded".into(),
                    payload: json!({ "approver": asker, "reason": reason, "more": more }),
                };
                append_locked(&mut tx, &mut head, event, self.signer()).await?;
                record
            }
        };
        tx.commit()
            .await
            .map_err(self.db("committing an approval"))?;
        Ok((record, progress))
    }
}
