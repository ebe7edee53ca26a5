//! The forms that approve, deny, and run an approved action that has not
//! started.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use jarvis_core::ApprovalProgress;

use super::forms::{DecisionForm, decision_allowed};
use crate::server::error::AppError;
use crate::server::lookup::decision_error;
use crate::server::page::redirect_with;
use crate::server::session::FormUser;
use crate::server::state::AppState;
use crate::server::views::FlashKind;

/// `POST /actions/{id}/approve`.
pub(crate) async fn approve(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let (id, frame) =
        decision_allowed(&state, &caller, &headers, &form, "approve actions", &text).await?;
    let actor = caller.actor();
    let conversation = form.conversation_page(id);
    let to = conversation
        .clone()
        .unwrap_or_else(|| format!("/actions/{id}"));
    match state.gw.approve(id, &actor, form.reason()).await {
        Ok((_, ApprovalProgress::Complete)) => {
            crate::server::runs::spawn_execute(state.clone(), id, actor);
            let text = if conversation.is_some() {
                "Approved. It is running now; the conversation goes on with its result."
            } else {
                "Approved. It is running now; its output appears below."
            };
            Ok(redirect_with(&state, &to, FlashKind::Success, text))
        }
        Ok((_, ApprovalProgress::Waiting { more })) => Ok(redirect_with(
            &state,
            &to,
            FlashKind::Info,
            &format!(
                "Your approval is recorded. It needs {more} more distinct approver(s) before it runs."
            ),
        )),
        Err(e) => Err(decision_error(&state, &caller, id, e)
            .await
            .page(frame, Some(to))),
    }
}

/// `POST /actions/{id}/run`: runs an approved action that has not started
/// (a limit refused it, or the server stopped first). The pipeline checks
/// the policy, the plan and the limits again.
pub(crate) async fn run(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let (id, frame) =
        decision_allowed(&state, &caller, &headers, &form, "run actions", &text).await?;
    crate::server::runs::start_approved(&state, id, caller.actor())
        .await
        .map_err(|e| AppError::from_gateway(e).page(frame, Some(format!("/actions/{id}"))))?;
    Ok(redirect_with(
        &state,
        &format!("/actions/{id}"),
        FlashKind::Info,
        "Started. If a limit refuses it again, the timeline says why.",
    ))
}

/// `POST /actions/{id}/deny`.
pub(crate) async fn deny(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let (id, frame) =
        decision_allowed(&state, &caller, &headers, &form, "deny actions", &text).await?;
    let reason = form.reason().unwrap_or("no reason given");
    let conversation = form.conversation_page(id);
    match state.gw.reject(id, &caller.actor(), reason).await {
        Ok(_) => Ok(redirect_with(
            &state,
            conversation.as_deref().unwrap_or("/"),
            FlashKind::Success,
            "Denied. Nothing was sent to the host.",
        )),
        Err(e) => Err(decision_error(&state, &caller, id, e).await.page(
            frame,
            Some(conversation.unwrap_or_else(|| format!("/actions/{id}"))),
        )),
    }
}
