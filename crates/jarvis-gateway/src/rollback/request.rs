//! Asking for a rollback: refused when there is nothing to undo or
//! another rollback is under way, stopped at once over later changes, and
//! otherwise approved under the rule `[approvals] rollback` gives it.

use jarvis_core::{
    ActionId, ActionKind, ActionState, ApprovalRule, Decision, Risk, RollbackApproval,
};
use jarvis_exec::snapshot::RestoreReport;
use jarvis_store::{ActionRecord, Judged, NewAction, StoreError};
use serde_json::json;

use super::words::{changed_since, stopped_by_changes, stopped_words};
use super::{ALREADY_BACK, NOTHING_CHANGED, RolledBack, rollback_command, rollback_forced};
use crate::pipeline::{Gateway, GatewayError};

const FORCE_NOTE: &str = "Forcing the rollback puts them back anyway and overwrites those later changes; Jarvis snapshots the present first, so a forced rollback can be undone too.";

impl Gateway {
    /// Asks for a rollback of action `id`: a new action of kind `rollback`
    /// that names it, proposed by `actor` (someone allowed to approve
    /// actions) and answered for by them, judged at the original's risk at
    /// least, and approved under the rule [`ApprovalRule::for_rollback`]
    /// gives it. Where `actor`'s own request counts as its approval
    /// (`[approvals] rollback = "one-approver"` with self-approval allowed,
    /// neither forced nor a rollback of a rollback) it runs at once;
    /// otherwise it waits in the queue like any action, and
    /// [`Gateway::execute`] runs it once approved.
    ///
    /// Refused for an action that has no snapshot, whose snapshot was
    /// pruned, that is not `succeeded`, `failed` or `timed_out` (so one
    /// already rolled back is refused), or that has a rollback waiting or
    /// running; and not made at all when there is nothing to undo (the
    /// action changed nothing its snapshot covers, or the host finds every
    /// target back already). The host is asked where the targets stand
    /// before anyone approves: one changed since the action refuses the
    /// rollback at once, unless forced (the returned rollback is `denied`,
    /// its reasons and the host's check report say what changed). After a
    /// failure halfway, asking again finishes the job: targets already put
    /// back are recognised and left alone. With `force`, targets changed
    /// since the action are restored too (the rollback's own snapshot
    /// keeps what they held).
    ///
    /// # Errors
    /// [`GatewayError::NoRollback`], [`GatewayError::NothingToUndo`],
    /// [`GatewayError::ApprovalRefused`], [`GatewayError::NotSent`], or a
    /// store error. A rollback that reached the host and failed, or was
    /// refused over later changes, is not an error: it is the returned
    /// action's state and report.
    pub async fn rollback(
        &self,
        id: ActionId,
        actor: &str,
        force: bool,
    ) -> Result<RolledBack, GatewayError> {
        let original = self.store().action(id).await?;
        let restorable = self.restorable(&original).await?;
        // Forced or not: a rollback of an action that changed nothing
        // would only overwrite what others did since.
        if restorable
            .after
            .as_ref()
            .is_some_and(|after| restorable.target.nothing_to_undo(after))
        {
            return Err(GatewayError::NothingToUndo {
                id,
                why: NOTHING_CHANGED.into(),
            });
        }
        if let Some(other) = self.store().rollbacks_of(id).await?.into_iter().find(|r| {
            // Not `proposed`: that lasts a moment, and one left so by a
            // crash would block every rollback of it for good.
            matches!(
                r.state,
                ActionState::PendingApproval | ActionState::Approved | ActionState::Running
            )
        }) {
            return Err(GatewayError::NoRollback {
                id,
                why: format!(
                    "rollback {} of it is {}; it must be decided or finished first",
                    other.id,
                    other.state.label()
                ),
            });
        }
        let rb = ActionId::new();
        // Where the targets stand now, asked before anyone is asked to
        // approve: a rollback that would stop is refused at once, and one
        // that would put nothing back is not made at all. A host that
        // cannot say (unreachable, or a guard without checks) is asked
        // again when the rollback runs, and the rollback itself stops on a
        // later change all the same.
        let check = self.check_restore(rb, &restorable, None).await;
        if check.as_ref().is_some_and(|r| r.complete) {
            return Err(GatewayError::NothingToUndo {
                id,
                why: ALREADY_BACK.into(),
            });
        }
        self.store()
            .create_action(&NewAction {
                id: rb,
                requester: actor.to_owned(),
                host: Some(restorable.host.clone()),
                command: rollback_command(id, force),
                cwd: None,
                timeout_secs: None,
                kind: ActionKind::Rollback,
                edit: None,
                rollback_of: Some(id),
                plan: original.plan.clone(),
                purpose: None,
            })
            .await?;
        // What a rollback changes is what the original changed, and a
        // forced one more: it is never judged below the original.
        let risk = original.risk.unwrap_or(Risk::MAX);
        if let Some(report) = check.filter(|r| !force && stopped_by_changes(r)) {
            let rollback = self
                .stop_rollback(rb, ActionState::Proposed, id, risk, &report)
                .await?;
            return Ok(RolledBack {
                rollback,
                report: Some(report),
            });
        }
        let of_rollback = original.kind == ActionKind::Rollback;
        let (rule, request_counts) = self.config().approvals.for_rollback(
            self.config().rollback_approval,
            force,
            of_rollback,
        );
        let why_rule = if force {
            "forced, it also overwrites what changed since, so it needs the full approval rule"
                .to_owned()
        } else if of_rollback {
            format!("it puts back what rollback {id} undid, so it needs the full approval rule")
        } else if request_counts {
            "one approver is enough ([approvals] rollback = \"one-approver\"), and asking for it is that approval".to_owned()
        } else if self.config().rollback_approval == RollbackApproval::OneApprover {
            "one approver is enough ([approvals] rollback = \"one-approver\"), someone other than who asked".to_owned()
        } else {
            "it is approved under the same rule as any action at its risk ([approvals] rollback = \"same-rule\")".to_owned()
        };
        let judged = Judged {
            decision: Decision::Approve,
            risk,
            reasons: vec![
                format!(
                    "rollback of {id} ({}), asked for by {}",
                    jarvis_core::text::code(&original.command),
                    jarvis_core::words::actor(actor)
                ),
                why_rule,
            ],
        };
        let action = if request_counts {
            match self
                .store()
                .approve_own_proposal(rb, actor, &judged, "asked for the rollback", &rule)
                .await
            {
                Ok((action, _)) => action,
                Err(StoreError::ApprovalRefused(why)) => {
                    return Err(GatewayError::ApprovalRefused { id: rb, why });
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            self.store()
                .transition(
                    rb,
                    ActionState::Proposed,
                    ActionState::PendingApproval,
                    "policy",
                    Some(&judged),
                    json!({
                        "rollback_of": id.to_string(),
                        "force": force,
                        "needed": rule.needed(risk),
                    }),
                )
                .await?
        };
        if action.state != ActionState::Approved {
            return Ok(RolledBack {
                rollback: action,
                report: None,
            });
        }
        // Approved at once, it still goes the one way every action reaches
        // a host.
        let (rollback, report) = self.execute_reporting(rb, actor, &mut |_| {}).await?;
        Ok(RolledBack { rollback, report })
    }

    /// The rule rollback `rb` is approved under, and whether its asker's
    /// request counted as an approval.
    pub(crate) async fn rollback_rule(
        &self,
        rb: &ActionRecord,
    ) -> Result<(ApprovalRule, bool), GatewayError> {
        // A rollback whose original cannot be named is treated as the
        // strictest kind: the full rule.
        let of_rollback = match rb.rollback_of {
            Some(original) => self.store().action(original).await?.kind == ActionKind::Rollback,
            None => true,
        };
        Ok(self.config().approvals.for_rollback(
            self.config().rollback_approval,
            rollback_forced(rb),
            of_rollback,
        ))
    }

    /// Refuses rollback `rb` (from `proposed` or `approved`) because
    /// targets changed since its action: it becomes `denied`, its reasons
    /// say what changed, and the event carries each changed target, so
    /// the rollback page can offer to force it.
    pub(super) async fn stop_rollback(
        &self,
        rb: ActionId,
        from: ActionState,
        original: ActionId,
        risk: Risk,
        report: &RestoreReport,
    ) -> Result<ActionRecord, GatewayError> {
        let changed: Vec<serde_json::Value> = changed_since(report)
            .into_iter()
            .map(|(target, what)| json!({ "target": target, "changed": what }))
            .collect();
        let judged = Judged {
            decision: Decision::Deny,
            risk,
            reasons: vec![stopped_words(report), FORCE_NOTE.into()],
        };
        Ok(self
            .store()
            .transition(
                rb,
                from,
                ActionState::Denied,
                "gateway",
                Some(&judged),
                json!({
                    "rollback_of": original.to_string(),
                    "stopped": changed,
                }),
            )
            .await?)
    }
}
