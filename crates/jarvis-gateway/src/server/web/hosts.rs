//! The hosts page, and checking one host on request.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::forms::{CsrfOnly, deciders_form};
use crate::server::error::AppError;
use crate::server::hosts::host_rows;
use crate::server::page::{chrome, html, page, redirect_with};
use crate::server::session::{FormUser, WebUser};
use crate::server::state::AppState;
use crate::server::views::{FlashKind, HostsPage, Section};

/// `GET /hosts`.
pub(crate) async fn hosts(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let body = html(&HostsPage {
        chrome: chrome(&state, &caller, &headers, "Hosts", Section::Hosts),
        hosts: host_rows(&state),
        can_check: caller.principal.may_decide(),
    })?;
    Ok(page(&state, &headers, body))
}

/// `POST /hosts/{name}/check`: checks one host now (its guard answers, and
/// says what it has and enforces) and shows the outcome on the hosts page.
/// For people who decide: a check opens an SSH connection to the host.
pub(crate) async fn check_host(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Not checked", Section::Hosts);
    let back = Some("/hosts".to_owned());
    deciders_form(
        &state,
        &caller,
        &form,
        "check hosts",
        frame.clone(),
        "/hosts",
    )
    .await?;
    let Some(host) = state
        .gw
        .config()
        .hosts
        .iter()
        .find(|h| h.name.as_str() == name)
        .map(|h| h.name.clone())
    else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "No host of that name is configured, so there is nothing to check.",
        )
        .page(frame, back));
    };
    let health = crate::server::hosts::check_host(&state, &host).await;
    let (kind, text) = if health.ok == Some(true) {
        (
            FlashKind::Success,
            format!("{host} answered just now: {}.", health.detail),
        )
    } else {
        (
            FlashKind::Error,
            format!(
                "{host} did not answer: {}.",
                health.detail.trim_end_matches('.')
            ),
        )
    };
    let to = format!(
        "/hosts#host-{}",
        crate::server::session::encode(host.as_str())
    );
    Ok(redirect_with(&state, &to, kind, &text))
}
