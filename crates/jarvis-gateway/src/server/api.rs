//! The JSON API (`/api/v1`): what agents, scripts and the CLI's remote
//! users call. Bearer tokens propose and read; people signed in with a
//! session cookie may also decide, sending the session's CSRF token in
//! `X-CSRF-Token`.
//!
//! One module per resource: `actions` (propose, list, show), `decisions`
//! (approve, deny, run, roll back), `records` (the audit log, hosts, the
//! policy, the live stream). Every handler carries its own OpenAPI
//! description (`#[utoipa::path]`), and every body it takes or answers is
//! a type of `bodies`; `super::openapi` makes the router and the document
//! from the one list of these handlers.

pub(super) mod actions;
pub(super) mod bodies;
pub(super) mod decisions;
pub(super) mod records;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jarvis_core::ActionId;

use super::error::AppError;
use super::state::Shared;

type ApiResult = Result<Response, AppError>;

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, AppError> {
    payload.map(|Json(t)| t).map_err(|e| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            format!("the request body: {}", e.body_text()),
        )
        .json()
    })
}

async fn resolve(state: &Shared, text: &str) -> Result<ActionId, AppError> {
    super::lookup::resolve(state, text)
        .await
        .map_err(AppError::json)
}

fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}
