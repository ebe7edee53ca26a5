//! Deciding: approvals counted under the rule for the action's risk,
//! rejections, and the deadlines by which an approval lapses and an
//! approved action must start.

use std::time::SystemTime;

use jarvis_core::{ActionId, ActionKind, ActionState, ApprovalProgress, ApprovalRule};
use jarvis_store::{ActionRecord, StoreError};
use serde_json::json;

use super::Gateway;
use super::error::GatewayError;
use super::run::{stored_time, time_of};

impl Gateway {
    /// A person approves a pending action. The approval counts under the
    /// configured separation-of-duties rule (for a rollback, the rule
    /// [`Gateway::approval_rule`] gives it): it may be refused (the action
    /// is theirs to answer for, or they already approved), and an action
    /// that needs several distinct approvers stays pending until it has
    /// them all.
    ///
    /// # Errors
    /// [`GatewayError::WrongState`], [`GatewayError::Expired`] (the action
    /// is moved to `expired`), [`GatewayError::ApprovalRefused`], or a
    /// store error ([`StoreError::Conflict`] when someone else decided
    /// first).
    pub async fn approve(
        &self,
        id: ActionId,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<(ActionRecord, ApprovalProgress), GatewayError> {
        let action = self.pending(id, "approved").await?;
        let rule = self.approval_rule(&action).await?;
        match self.store.approve(id, actor, reason, &rule).await {
            Err(StoreError::ApprovalRefused(why)) => Err(GatewayError::ApprovalRefused { id, why }),
            Ok(approved) => Ok(approved),
            Err(e) => Err(e.into()),
        }
    }

    /// The rule an action's approvals are counted under: the configured
    /// one, or for a rollback the one `[approvals] rollback` gives it
    /// ([`ApprovalRule::for_rollback`]).
    ///
    /// # Errors
    /// A store error reading what a rollback puts back.
    pub async fn approval_rule(&self, action: &ActionRecord) -> Result<ApprovalRule, GatewayError> {
        if action.kind != ActionKind::Rollback {
            return Ok(self.config.approvals);
        }
        Ok(self.rollback_rule(action).await?.0)
    }

    /// Moves every pending action that waited longer than the approval TTL,
    /// and every approved one that did not start within the run window, to
    /// `expired`, and returns them. Someone acting on one at the same moment
    /// wins or loses cleanly: the move is a compare-and-set.
    ///
    /// It reads only the overdue actions, in batches (the store finds them
    /// by an index), so a sweep over a long queue with nothing due costs
    /// one indexed lookup per state, not every waiting row.
    ///
    /// # Errors
    /// A store error.
    pub async fn expire_overdue(&self) -> Result<Vec<ActionId>, GatewayError> {
        const BATCH: i64 = 500;
        let now = SystemTime::now();
        let mut expired = Vec::new();
        for (state, wait) in [
            (ActionState::PendingApproval, self.config.approval_ttl),
            (ActionState::Approved, self.config.run_window),
        ] {
            let Some(cutoff) = now.checked_sub(wait) else {
                continue;
            };
            loop {
                let batch = self
                    .store
                    .overdue(state, time::OffsetDateTime::from(cutoff), BATCH)
                    .await?;
                let mut moved = 0;
                for action in &batch {
                    // The store answers by the second, later parts of
                    // the cutoff's second included; the deadline decides.
                    if self.deadline(action).is_none_or(|d| d > now) {
                        continue;
                    }
                    match self.lapse(action).await {
                        Ok(()) => {
                            expired.push(action.id);
                            moved += 1;
                        }
                        Err(GatewayError::Store(StoreError::Conflict { .. })) => moved += 1,
                        Err(e) => return Err(e),
                    }
                }
                // A short batch was the last; one where nothing moved would
                // come back the same.
                if batch.len() < BATCH as usize || moved == 0 {
                    break;
                }
            }
        }
        Ok(expired)
    }

    /// When a pending action expires: the approval TTL after it last
    /// entered the queue (an action sent back because its plan changed
    /// gets a whole window again).
    pub fn expires_at(&self, action: &ActionRecord) -> SystemTime {
        let since = action
            .pending_since
            .as_deref()
            .and_then(stored_time)
            .unwrap_or_else(|| time_of(action.id));
        since + self.config.approval_ttl
    }

    /// Until when an approved action may still start: the run window after
    /// its approval. A refusal by a limit or a failed snapshot leaves an
    /// action approved, and its run button must not stay live for ever:
    /// the host, the policy's view of it and the person's reasons all age.
    pub fn run_deadline(&self, action: &ActionRecord) -> SystemTime {
        // `updated_at` is when the action last changed state, and nothing
        // changes an approved action's state but leaving `approved`. If it
        // cannot be read, the proposal time stands in: earlier, so the
        // approval lapses sooner rather than later.
        let approved_at = stored_time(&action.updated_at).unwrap_or_else(|| time_of(action.id));
        approved_at + self.config.run_window
    }

    /// Refuses an approved action whose approval has lapsed, moving it to
    /// `expired` (if nobody else did first).
    ///
    /// # Errors
    /// [`GatewayError::ApprovalLapsed`], or a store error.
    pub async fn check_run_window(&self, action: &ActionRecord) -> Result<(), GatewayError> {
        if self.run_deadline(action) > SystemTime::now() {
            return Ok(());
        }
        match self.lapse(action).await {
            Ok(()) | Err(GatewayError::Store(StoreError::Conflict { .. })) => {
                Err(GatewayError::ApprovalLapsed {
                    id: action.id,
                    window: self.config.run_window,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The moment the action's current wait runs out, if it is waiting on
    /// a person (pending) or on a start (approved).
    pub fn deadline(&self, action: &ActionRecord) -> Option<SystemTime> {
        match action.state {
            ActionState::PendingApproval => Some(self.expires_at(action)),
            ActionState::Approved => Some(self.run_deadline(action)),
            ActionState::Proposed
            | ActionState::Denied
            | ActionState::Rejected
            | ActionState::Expired
            | ActionState::Running
            | ActionState::Succeeded
            | ActionState::Failed
            | ActionState::TimedOut
            | ActionState::Interrupted
            | ActionState::RolledBack => None,
        }
    }

    /// Moves a pending or approved action whose deadline passed to
    /// `expired`, saying which wait ran out.
    async fn lapse(&self, action: &ActionRecord) -> Result<(), GatewayError> {
        let reason = match action.state {
            ActionState::Approved => format!(
                "approved but not started within {}s",
                self.config.run_window.as_secs()
            ),
            ActionState::Proposed
            | ActionState::Denied
            | ActionState::PendingApproval
            | ActionState::Rejected
            | ActionState::Expired
            | ActionState::Running
            | ActionState::Succeeded
            | ActionState::Failed
            | ActionState::TimedOut
            | ActionState::Interrupted
            | ActionState::RolledBack => {
                format!("no decision within {}s", self.config.approval_ttl.as_secs())
            }
        };
        self.store
            .transition(
                action.id,
                action.state,
                ActionState::Expired,
                "gateway",
                None,
                json!({ "reason": reason }),
            )
            .await?;
        Ok(())
    }

    /// A person rejects a pending action.
    ///
    /// # Errors
    /// As [`Gateway::approve`].
    pub async fn reject(
        &self,
        id: ActionId,
        actor: &str,
        reason: &str,
    ) -> Result<ActionRecord, GatewayError> {
        self.pending(id, "rejected").await?;
        Ok(self
            .store
            .transition(
                id,
                ActionState::PendingApproval,
                ActionState::Rejected,
                actor,
                None,
                json!({ "reason": reason }),
            )
            .await?)
    }

    async fn pending(
        &self,
        id: ActionId,
        wanted: &'static str,
    ) -> Result<ActionRecord, GatewayError> {
        let action = self.store.action(id).await?;
        if action.state != ActionState::PendingApproval {
            return Err(GatewayError::WrongState {
                id,
                state: action.state,
                wanted,
            });
        }
        if self.expires_at(&action) <= SystemTime::now() {
            self.lapse(&action).await?;
            return Err(GatewayError::Expired {
                id,
                ttl: self.config.approval_ttl,
            });
        }
        Ok(action)
    }
}
