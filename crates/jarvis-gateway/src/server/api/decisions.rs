//! A person's decisions on an action: approve, deny, run, roll back. No
//! token may make them: they are a person's act, through a session.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jarvis_core::{ActionId, ActionState, ApprovalProgress};

use super::bodies::{
    Approval, Decided, DecisionBody, ErrorBody, RollbackAnswer, RollbackConflict, Started,
};
use super::{ApiResult, csrf_header, resolve};
use crate::rollback::{describe, outcome_words};
use crate::server::error::AppError;
use crate::server::lookup::{decision_error, needed};
use crate::server::session::{ApiUser, Caller};
use crate::server::state::{AppState, Shared};

/// The checks every decision makes, in order: the action exists, the CSRF
/// token (for sessions), and the caller's right to decide (never a token).
async fn may_decide(
    state: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    text: &str,
    what: &str,
) -> Result<ActionId, AppError> {
    let id = resolve(state, text).await?;
    caller
        .check_csrf(state, csrf_header(headers), what, Some(id))
        .await
        .map_err(AppError::json)?;
    caller
        .require(state, caller.principal.may_decide(), what, Some(id))
        .await
        .map_err(AppError::json)?;
    Ok(id)
}

/// A decision's body is optional: empty means no reason and no force.
fn decision_body(raw: &[u8]) -> Result<DecisionBody, AppError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    serde_json::from_slice(raw).map_err(|e| {
        AppError::new(StatusCode::BAD_REQUEST, format!("the request body: {e}")).json()
    })
}

/// Approve an action
///
/// Counts the signed-in person's approval of an action waiting for one.
/// Once as many distinct people as the approval rule asks have approved
/// (more for critical risk), the action is `approved` and starts at once,
/// in the background; until then it keeps waiting and the answer says how
/// many more it needs. Nobody approves their own request unless
/// `self_approval` is on, and nobody counts twice.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/approve",
    operation_id = "approve_action",
    tag = "decisions",
    security(("session" = ["approver"])),
    params(
        ("id" = String, Path, description = "The action's id, or a unique prefix of it."),
        ("X-CSRF-Token" = String, Header, description = "The session's CSRF token."),
    ),
    request_body(content = Option<DecisionBody>, description = "Optional: a reason to record."),
    responses(
        (status = 200, description = "The approval was counted.", body = Approval),
        (status = 400, description = "The body is not JSON of this shape, or the prefix matches more than one action.", body = ErrorBody),
        (status = 401, description = "No session or token, or the token is unknown or revoked (a token that is known gets 403: no token decides).", body = ErrorBody),
        (status = 403, description = "A token, a viewer, a missing or wrong CSRF token, the person's own request, or a second approval by the same person.", body = ErrorBody),
        (status = 404, description = "No such action.", body = ErrorBody),
        (status = 409, description = "It no longer waits for approval (decided, run or refused already): the error says by whom.", body = ErrorBody),
        (status = 410, description = "It expired before anyone decided.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
        (status = 507, description = "The gateway's disk is full: nothing was recorded.", body = ErrorBody),
    ),
)]
pub(crate) async fn approve(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    payload: Bytes,
) -> ApiResult {
    let id = may_decide(&state, &caller, &headers, &text, "approve actions").await?;
    let b = decision_body(&payload)?;
    let actor = caller.actor();
    match state.gw.approve(id, &actor, b.reason.as_deref()).await {
        Ok((action, progress)) => {
            let more = match progress {
                ApprovalProgress::Complete => {
                    crate::server::runs::spawn_execute(state.clone(), id, actor);
                    0
                }
                ApprovalProgress::Waiting { more } => more,
            };
            Ok(Json(Approval {
                action,
                approved: more == 0,
                approvals_still_needed: more,
            })
            .into_response())
        }
        Err(e) => Err(decision_error(&state, &caller, id, e).await.json()),
    }
}

/// Run an approved action
///
/// Starts an approved action that has not started: one a host limit
/// refused when it was approved, say. Answers at once; follow the run on
/// the action. In the background it is judged again under the policy as
/// it is now and its snapshot plan is made again (a plan that changed
/// sends it back to a person); a limit that refuses it again leaves it
/// `approved`, with an `action.refused` event that says why.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/run",
    operation_id = "run_action",
    tag = "decisions",
    security(("session" = ["approver"])),
    params(
        ("id" = String, Path, description = "The action's id, or a unique prefix of it."),
        ("X-CSRF-Token" = String, Header, description = "The session's CSRF token."),
    ),
    responses(
        (status = 202, description = "Started.", body = Started),
        (status = 400, description = "The prefix matches more than one action.", body = ErrorBody),
        (status = 401, description = "No session or token, or the token is unknown or revoked (a token that is known gets 403: no token decides).", body = ErrorBody),
        (status = 403, description = "A token, a viewer, or a missing or wrong CSRF token.", body = ErrorBody),
        (status = 404, description = "No such action.", body = ErrorBody),
        (status = 409, description = "It is not an approved action waiting to start.", body = ErrorBody),
        (status = 410, description = "Its approval lapsed (older than `limits.run_window_secs`): it is `expired` now.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    ),
)]
pub(crate) async fn run(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> ApiResult {
    let id = may_decide(&state, &caller, &headers, &text, "run actions").await?;
    let action = crate::server::runs::start_approved(&state, id, caller.actor())
        .await
        .map_err(|e| AppError::from_gateway(e).json())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            action,
            started: true,
        }),
    )
        .into_response())
}

/// Deny an action
///
/// Rejects an action waiting for approval: it never runs.
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/deny",
    operation_id = "deny_action",
    tag = "decisions",
    security(("session" = ["approver"])),
    params(
        ("id" = String, Path, description = "The action's id, or a unique prefix of it."),
        ("X-CSRF-Token" = String, Header, description = "The session's CSRF token."),
    ),
    request_body(content = Option<DecisionBody>, description = "Optional: a reason to record."),
    responses(
        (status = 200, description = "Rejected.", body = Decided),
        (status = 400, description = "The body is not JSON of this shape, or the prefix matches more than one action.", body = ErrorBody),
        (status = 401, description = "No session or token, or the token is unknown or revoked (a token that is known gets 403: no token decides).", body = ErrorBody),
        (status = 403, description = "A token, a viewer, or a missing or wrong CSRF token.", body = ErrorBody),
        (status = 404, description = "No such action.", body = ErrorBody),
        (status = 409, description = "It no longer waits for approval.", body = ErrorBody),
        (status = 410, description = "It expired before anyone decided.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    ),
)]
pub(crate) async fn deny(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    payload: Bytes,
) -> ApiResult {
    let id = may_decide(&state, &caller, &headers, &text, "deny actions").await?;
    let b = decision_body(&payload)?;
    let reason = b.reason.as_deref().unwrap_or("no reason given");
    let action = state
        .gw
        .reject(id, &caller.actor(), reason)
        .await
        .map_err(|e| AppError::from_gateway(e).json())?;
    Ok(Json(Decided { action }).into_response())
}

/// Roll an action back
///
/// Asks for a rollback of an action that ran: a new action of kind
/// `rollback` that puts back the snapshot taken before it, approved under
/// the approval rule's `rollback` setting. One that may run at once runs
/// and is answered when done (`200`); one that waits for approvers is
/// answered at once (`202`) and decided like any action. First the host is
/// asked, without changing anything, where each target stands: if one
/// changed since the action ran, the rollback stops before changing
/// anything (`409`, recorded as `denied`) unless `force` is given. An
/// action that changed nothing a rollback would put back has nothing to
/// undo (`409`, no rollback is made).
#[utoipa::path(
    post,
    path = "/api/v1/actions/{id}/rollback",
    operation_id = "rollback_action",
    tag = "decisions",
    security(("session" = ["approver"])),
    params(
        ("id" = String, Path, description = "The id, or a unique prefix, of the action to roll back."),
        ("X-CSRF-Token" = String, Header, description = "The session's CSRF token."),
    ),
    request_body(content = Option<DecisionBody>, description = "Optional: `force` to go ahead over targets changed since."),
    responses(
        (status = 200, description = "It ran: `rollback` is `succeeded` or `failed`.", body = RollbackAnswer),
        (status = 202, description = "It waits for approvers.", body = RollbackAnswer),
        (status = 400, description = "The body is not JSON of this shape, or the prefix matches more than one action.", body = ErrorBody),
        (status = 401, description = "No session or token, or the token is unknown or revoked (a token that is known gets 403: no token decides).", body = ErrorBody),
        (status = 403, description = "A token, a viewer, or a missing or wrong CSRF token.", body = ErrorBody),
        (status = 404, description = "No such action.", body = ErrorBody),
        (status = 409, description = "It stopped before changing anything (the refused rollback, with `stopped: true` and `error`), or there is nothing to roll back or undo (only `error`).", body = RollbackConflict),
        (status = 502, description = "The host failed to take the rollback's own snapshot.", body = ErrorBody),
        (status = 503, description = "It was not sent to the host, or the database is unavailable.", body = ErrorBody),
    ),
)]
pub(crate) async fn rollback(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    payload: Bytes,
) -> ApiResult {
    let id = may_decide(&state, &caller, &headers, &text, "roll back actions").await?;
    let b = decision_body(&payload)?;
    let done = state
        .gw
        .rollback(id, &caller.actor(), b.force)
        .await
        .map_err(|e| AppError::from_gateway(e).json())?;
    let waiting = done.rollback.state == ActionState::PendingApproval;
    let stopped = done.rollback.state == ActionState::Denied;
    let needed = if waiting {
        needed(&state, &done.rollback)
            .await
            .map_err(AppError::json)?
    } else {
        0
    };
    let error = state
        .gw
        .store()
        .run_of(done.rollback.id)
        .await
        .map_err(|e| AppError::from_store(e).json())?
        .and_then(|r| r.error);
    let outcome = outcome_words(&done, error.as_deref());
    let status = if waiting {
        StatusCode::ACCEPTED
    } else if stopped {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let summary = done.report.as_ref().map(describe);
    let answer = RollbackAnswer {
        rollback: done.rollback,
        waiting_for_approval: waiting,
        stopped,
        needed_approvers: needed,
        report: done.report.map(Into::into),
        summary,
        error: stopped.then(|| outcome.clone()),
        outcome,
    };
    Ok((status, Json(answer)).into_response())
}
