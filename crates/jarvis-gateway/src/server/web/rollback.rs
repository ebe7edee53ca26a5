//! The rollback confirmation, and the form that asks for a rollback.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use jarvis_core::ActionState;

use super::forms::{DecisionForm, decision_allowed};
use crate::pipeline::GatewayError;
use crate::rollback::outcome_words;
use crate::server::error::AppError;
use crate::server::lookup::resolve;
use crate::server::page::{chrome, html, page, redirect_with};
use crate::server::session::{FormUser, WebUser};
use crate::server::state::AppState;
use crate::server::views::{Chrome, FlashKind, RollbackPage, Section};

/// `GET /actions/{id}/rollback`: the confirmation before a rollback: what
/// comes back and what does not, then Confirm / Cancel; after a rollback
/// stopped on later changes, what changed and Force, on this same page.
/// Nothing to undo says so instead of offering anything.
pub(crate) async fn rollback_page(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Roll back", Section::Actions);
    let id = resolve(&state, &text)
        .await
        .map_err(|e| e.page(frame.clone(), Some("/actions".into())))?;
    let offer = state.gw.rollback_offer(id).await.map_err(|e| {
        AppError::from_gateway(e).page(frame.clone(), Some(format!("/actions/{id}")))
    })?;
    let (left_alone, comes_back): (Vec<_>, Vec<_>) = offer
        .comes_back(&crate::server::views::fmt_time(&offer.taken_at))
        .into_iter()
        .partition(|t| t.unchanged());
    let body = html(&RollbackPage {
        chrome: Chrome {
            title: format!("Roll back {}", &id.to_string()[..13]),
            ..frame
        },
        host: offer.host.to_string(),
        taken_at: offer.taken_at,
        comes_back,
        left_alone,
        not_back: offer.not_back,
        nothing_to_undo: offer.nothing_to_undo,
        approval: offer.approval,
        force_approval: offer.force_approval,
        stopped: offer.stopped,
        in_progress: offer.in_progress,
        can_ask: caller.principal.may_decide(),
        action: offer.original,
    })?;
    Ok(page(&state, &headers, body))
}

/// `POST /actions/{id}/rollback`: asks for a rollback of the action (with
/// `force=1`, a forced one), a new audited action, and shows what came of
/// it: done, waiting for approvers, stopped on later changes (back on the
/// confirmation page, which shows what changed and offers Force), or
/// nothing to undo.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(text): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, AppError> {
    let (id, frame) =
        decision_allowed(&state, &caller, &headers, &form, "roll back actions", &text).await?;
    let force = form.force.as_deref().is_some_and(|f| f == "1" || f == "on");
    match state.gw.rollback(id, &caller.actor(), force).await {
        Ok(done) if done.rollback.state == ActionState::PendingApproval => {
            let why = done.rollback.reasons.last().cloned().unwrap_or_default();
            Ok(redirect_with(
                &state,
                &format!("/actions/{}", done.rollback.id),
                FlashKind::Info,
                &format!(
                    "The rollback waits for approval: {why}. It runs once approved, like any action."
                ),
            ))
        }
        // The confirmation page says it all (what changed, and Force), for
        // whoever comes back to it later too: no flash to repeat it.
        Ok(done) if done.rollback.state == ActionState::Denied => {
            Ok(Redirect::to(&format!("/actions/{id}/rollback#rollback-stopped")).into_response())
        }
        Ok(done) => {
            let run = state
                .gw
                .store()
                .run_of(done.rollback.id)
                .await
                .map_err(AppError::from_store)?;
            let error = run.and_then(|r| r.error);
            let kind = if done.rollback.state == ActionState::Succeeded {
                FlashKind::Success
            } else {
                FlashKind::Error
            };
            Ok(redirect_with(
                &state,
                &format!("/actions/{}", done.rollback.id),
                kind,
                &outcome_words(&done, error.as_deref()),
            ))
        }
        Err(GatewayError::NothingToUndo { why, .. }) => Ok(redirect_with(
            &state,
            &format!("/actions/{id}"),
            FlashKind::Info,
            &format!("Nothing to undo: {why}."),
        )),
        Err(e) => Err(AppError::from_gateway(e).page(frame, Some(format!("/actions/{id}")))),
    }
}
