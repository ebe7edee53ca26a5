//! An action as the pages and the API both read it: found by id or
//! prefix, its plan and risk, the approvers it needs and has, the story
//! an approver reads; and a refused decision turned into an audited
//! error.

use jarvis_core::{ActionId, Behind, ConversationId, Risk};
use jarvis_exec::snapshot::SnapshotPlan;
use jarvis_store::ActionRecord;

use super::error::AppError;
use super::session::Caller;
use super::state::Shared;
use super::views::{ChatOrigin, Story};
use crate::pipeline::GatewayError;

/// An action named in a path, by id or unique prefix.
pub(crate) async fn resolve(state: &Shared, text: &str) -> Result<ActionId, AppError> {
    state
        .gw
        .store()
        .resolve_action(text)
        .await
        .map_err(AppError::from_store)
}

/// The snapshot plan stored with an action, in words.
pub(crate) fn plan_lines(plan: Option<&SnapshotPlan>) -> Vec<String> {
    plan.map(|p| vec![p.summary()]).unwrap_or_default()
}

/// The risk of an action, or critical when it has none (never judged).
pub(crate) fn risk_of(a: &ActionRecord) -> Risk {
    a.risk.unwrap_or(Risk::MAX)
}

/// How many distinct approvers an action needs under the rule it is
/// counted by (a rollback's may differ from the configured one).
pub(crate) async fn needed(state: &Shared, a: &ActionRecord) -> Result<u32, AppError> {
    Ok(state
        .gw
        .approval_rule(a)
        .await
        .map_err(AppError::from_gateway)?
        .needed(risk_of(a)))
}

pub(crate) async fn approvers(state: &Shared, id: ActionId) -> Result<Vec<String>, AppError> {
    Ok(state
        .gw
        .store()
        .approvals_of(id)
        .await
        .map_err(AppError::from_store)?
        .into_iter()
        .map(|a| a.approver)
        .collect())
}

/// The story an approver reads of `action`, with the conversation it came
/// from when a chat proposed it (a conversation gone from the store leaves
/// the story without it, not the page without the action).
pub(crate) async fn story_of(state: &Shared, action: &ActionRecord) -> Story {
    let chat = match Behind::of(&action.requester) {
        Some(Behind::Conversation(id)) => match id.parse::<ConversationId>() {
            Ok(id) => match state.gw.store().conversation(id).await {
                Ok(c) => Some(ChatOrigin {
                    id,
                    question: c.title,
                }),
                Err(e) => {
                    tracing::warn!(action = %action.id, error = %e, "the action's conversation is unreadable");
                    None
                }
            },
            Err(_) => None,
        },
        Some(Behind::Token(_)) | None => None,
    };
    Story::of(action, chat)
}

/// Turns a refused approval into an audited refusal, and any gateway
/// error into a page.
pub(crate) async fn decision_error(
    state: &Shared,
    caller: &Caller,
    id: ActionId,
    e: GatewayError,
) -> AppError {
    if let GatewayError::ApprovalRefused { why, .. } = &e {
        let reason = match why {
            jarvis_core::ApprovalRefusal::OwnRequest { .. } => "self_approval",
            jarvis_core::ApprovalRefusal::AlreadyApproved { .. } => "already_approved",
        };
        state
            .audit_refusal(
                &caller.actor(),
                Some(id),
                reason,
                serde_json::json!({ "what": "approve", "why": why.to_string() }),
            )
            .await;
    }
    // Decided while the page was being read: say by whom.
    let moved_on = matches!(
        e,
        GatewayError::WrongState { .. }
            | GatewayError::Store(jarvis_store::StoreError::Conflict { .. })
    );
    let error = AppError::from_gateway(e);
    if moved_on {
        error.and(&crate::server::error::decided(state, id).await)
    } else {
        error
    }
}
