//! The audit log page, and verifying the chain on request.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::forms::{CsrfOnly, deciders_form};
use crate::server::audit_filter::AuditParams;
use crate::server::chain::chain_status;
use crate::server::error::AppError;
use crate::server::page::{chrome, html, page, redirect_with};
use crate::server::session::{FormUser, WebUser};
use crate::server::state::AppState;
use crate::server::views::{AuditPage, AuditQuery, FlashKind, Section};

const AUDIT_PAGE: i64 = 100;

/// `GET /audit`: the audit log with filters, and the chain's status.
pub(crate) async fn audit(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Result<Response, AppError> {
    let status = chain_status(&state).await;
    let mut frame = chrome(&state, &caller, &headers, "Audit log", Section::Audit);
    frame.chain_intact = status.intact();
    frame.chain_problem = status.problem();
    let offset = p.offset.unwrap_or(0).clamp(0, i64::from(u32::MAX));
    // A filter that does not parse is shown on the page itself, with the
    // form as it was sent, so it can be corrected in place.
    let (mut events, filter_error, bad_fields) =
        match p.filter(AUDIT_PAGE + 1) {
            Ok(filter) => (
                state.gw.store().events(&filter).await.map_err(|e| {
                    AppError::from_store(e).page(frame.clone(), Some("/audit".into()))
                })?,
                None,
                Vec::new(),
            ),
            Err(bad) => (Vec::new(), Some(bad.to_string()), bad.names()),
        };
    let more = events.len() as i64 > AUDIT_PAGE;
    events.truncate(AUDIT_PAGE as usize);
    let code = if filter_error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let upto = p.upto.map(|n| n.to_string()).unwrap_or_default();
    let pairs = [
        ("host", &p.host),
        ("actor", &p.actor),
        ("kind", &p.kind),
        ("since", &p.since),
        ("until", &p.until),
        ("q", &p.q),
        ("action", &p.action),
        ("upto", &upto),
    ];
    let next_query = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::server::session::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let verified_secs_ago = status.at.elapsed().as_secs();
    let (verify, verify_error) = match status.report {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let body = html(&AuditPage {
        can_verify: caller.principal.may_decide(),
        verified_secs_ago,
        chrome: frame,
        events,
        query: AuditQuery {
            host: p.host,
            actor: p.actor,
            kind: p.kind,
            since: p.since,
            until: p.until,
            q: p.q,
            action: p.action,
            upto: p.upto,
        },
        verify,
        verify_error,
        next_offset: more.then_some(offset + AUDIT_PAGE),
        prev_offset: (offset > 0 && filter_error.is_none()).then(|| (offset - AUDIT_PAGE).max(0)),
        next_query,
        filter_error,
        bad_fields,
    })?;
    let mut response = page(&state, &headers, body);
    *response.status_mut() = code;
    Ok(response)
}

/// `POST /audit/verify`: walks the whole chain now, for a person who
/// decides (who answers for what the log says), and shows the outcome on
/// the audit page. Any page already shows a status seconds old; this is
/// for the moment after a repair, or before trusting the log.
pub(crate) async fn verify_now(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Not verified", Section::Audit);
    deciders_form(
        &state,
        &caller,
        &form,
        "verify the audit log",
        frame,
        "/audit",
    )
    .await?;
    let status = crate::server::chain::refresh_chain(&state).await;
    let (kind, text) = match (&status.report, status.problem()) {
        (Ok(r), None) => (
            FlashKind::Success,
            format!(
                "Verified just now, in {}. {}.",
                crate::server::views::duration_text(
                    u64::try_from(status.took.as_millis()).unwrap_or(u64::MAX)
                ),
                crate::server::views::chain_status_text(r)
            ),
        ),
        (Ok(_), Some(problem)) => (
            FlashKind::Error,
            format!(
                "Verified just now: the audit log is broken. {problem} Each break is listed below and marked in the log."
            ),
        ),
        (Err(_), problem) => (
            FlashKind::Error,
            problem.unwrap_or_else(|| "The audit log could not be verified.".into()),
        ),
    };
    Ok(redirect_with(&state, "/audit", kind, &text))
}
