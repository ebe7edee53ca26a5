//! What the gateway knows besides actions: the audit log and its
//! verification, the hosts, what the policy says of a command, and the
//! live stream of changes.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::bodies::{
    ErrorBody, EventList, HostAnswer, HostHealth, HostKernelAnswer, HostList, PolicyAnswer,
    PolicyBody, RiskWords, Verification, WhoAmI,
};
use super::{ApiResult, body};
use crate::server::audit_filter::AuditParams;
use crate::server::chain::chain_status;
use crate::server::error::AppError;
use crate::server::hosts::host_rows;
use crate::server::judge::try_policy;
use crate::server::live::{self, EventsQuery};
use crate::server::session::{ApiUser, WebUser};
use crate::server::state::AppState;

#[derive(Deserialize)]
pub(crate) struct LimitQuery {
    #[serde(default)]
    limit: Option<i64>,
}

/// Read the audit log
///
/// Audit events, newest first, with the web UI's filters. Every change to
/// an action, every refusal, sign-in and token change is one event,
/// hash-chained to the one before it; `payload` is the event's details as
/// canonical JSON text.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit_events",
    tag = "audit",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    params(
        ("host" = Option<String>, Query, description = "Only events about this host."),
        ("actor" = Option<String>, Query, description = "Only events by this actor: as stored (`user:alice`, `token:planner`) or as the web UI words it (`alice`, `agent token planner`)."),
        ("kind" = Option<String>, Query, description = "Only events of this kind (`action.approved`), of kinds starting with it when it ends in `.` (`action.`), or of an action entering a state named in words (`waiting for approval`)."),
        ("since" = Option<String>, Query, description = "Only events at or after this time: a date (`2026-11-23`, midnight UTC) or a date and time (`2026-11-23T14:00`, UTC unless it ends in `Z` or an offset)."),
        ("until" = Option<String>, Query, description = "Only events before this time, written as `since`."),
        ("q" = Option<String>, Query, description = "Only events whose payload, actor, kind or action id contains this text, ignoring case."),
        ("action" = Option<String>, Query, description = "Only events about this action (its full id)."),
        ("upto" = Option<i64>, Query, description = "Only events at or before this sequence number."),
        ("offset" = Option<i64>, Query, description = "Skip this many of the newest first."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 10000, description = "How many, from 1 to 10000 (default 100)."),
    ),
    responses(
        (status = 200, description = "The events.", body = EventList),
        (status = 400, description = "`since` or `until` is not a time (the error names which), or the query cannot be read (that answer is plain text).", body = ErrorBody),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    ),
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    ApiUser(_caller): ApiUser,
    Query(p): Query<AuditParams>,
    Query(limit): Query<LimitQuery>,
) -> ApiResult {
    let filter = p
        .filter(limit.limit.unwrap_or(100).clamp(1, 10_000))
        .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, e.to_string()).json())?;
    let events = state
        .gw
        .store()
        .events(&filter)
        .await
        .map_err(|e| AppError::from_store(e).json())?;
    Ok(Json(EventList { events }).into_response())
}

/// Verify the audit log
///
/// Walks the audit chain, its signed heads and checkpoints (and what the
/// witnesses hold), and reports every break: an event that is not as it
/// was written, one that is missing, a gap. A verification at most 30
/// seconds old is reused.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    operation_id = "verify_audit_log",
    tag = "audit",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "The chain was walked; `intact` says whether it holds.", body = Verification),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 503, description = "The chain could not be read.", body = ErrorBody),
    ),
)]
pub(crate) async fn verify(State(state): State<AppState>, ApiUser(_caller): ApiUser) -> ApiResult {
    let status = chain_status(&state).await;
    match status.report {
        Ok(report) => Ok(Json(Verification {
            intact: report.is_intact(),
            report,
        })
        .into_response()),
        Err(e) => Err(AppError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).json()),
    }
}

/// List the hosts
///
/// The configured hosts: where each is reached, its last health check, its
/// circuit breaker, its limits, its shell, and its kernel wall (what its
/// kernel enforces and whether actions the policy allows may run there
/// without a person).
#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    operation_id = "list_hosts",
    tag = "hosts",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "The hosts.", body = HostList),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
    ),
)]
pub(crate) async fn hosts(State(state): State<AppState>, ApiUser(_caller): ApiUser) -> ApiResult {
    let hosts = host_rows(&state)
        .into_iter()
        .map(|h| HostAnswer {
            name: h.name,
            destination: h.destination,
            tags: h.tags,
            health: HostHealth {
                ok: h.health.ok,
                detail: h.health.detail,
                checked_at: h.health.checked_at,
            },
            breaker: h.breaker,
            limits: h.limits.into_iter().collect(),
            shell: h.shell,
            kernel: HostKernelAnswer {
                level: h.kernel.level_word(),
                detail: h.kernel.detail,
                enforcement: h.kernel.enforcement,
                unattended: h.kernel.unattended,
                consequence: h.kernel.consequence,
                learnt_at: (!h.kernel.learnt_at.is_empty()).then_some(h.kernel.learnt_at),
            },
        })
        .collect();
    Ok(Json(HostList { hosts }).into_response())
}

/// Ask the policy
///
/// What the policy says of a command line, judged as a proposal would be
/// but without proposing anything: the decision, the risk, the reasons and
/// the rules that matched, in the shape of `jarvis policy check --json`.
#[utoipa::path(
    post,
    path = "/api/v1/policy/check",
    operation_id = "check_policy",
    tag = "policy",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "The policy's verdict.", body = PolicyAnswer),
        (status = 400, description = "The body is not a command to judge.", body = ErrorBody),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 422, description = "`host` is not a host name.", body = ErrorBody),
    ),
)]
pub(crate) async fn policy_check(
    State(state): State<AppState>,
    ApiUser(_caller): ApiUser,
    payload: Result<Json<PolicyBody>, JsonRejection>,
) -> ApiResult {
    let b = body(payload)?;
    let t =
        try_policy(&state, &b.command, b.host.as_deref().unwrap_or("")).map_err(AppError::json)?;
    Ok(Json(PolicyAnswer {
        command: t.command,
        decision: t.decision,
        risk: RiskWords {
            score: t.risk_score,
            level: t.risk_level,
        },
        reasons: t.reasons,
        rules: t.rules,
        parse_error: t.parse_error,
    })
    .into_response())
}

/// Follow changes live
///
/// A stream of server-sent events (`text/event-stream`), each a JSON
/// object in `data`:
///
/// - `action`: an action was proposed, changed state, had an approval
///   counted or a preview attached (the `LiveAction` schema). Read the
///   action again for the rest.
/// - `output`: a chunk of a running action's output (the `LiveOutput`
///   schema); a client that falls behind misses chunks, and the run's
///   output is complete on the action once it ends.
///
/// A comment line every 15 seconds keeps the connection open. The number
/// of streams open at once is capped (`server.max_streams`); the stream
/// ends when the server stops.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "follow_events",
    tag = "live",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    params(("action" = Option<jarvis_core::ActionId>, Query, description = "Only events about this action (its full id).")),
    responses(
        (status = 200, description = "The stream: events named `action` or `output`.", content_type = "text/event-stream", body = String),
        (status = 303, description = "No token or session: sent to the sign-in page (`Location: /login?next=…`)."),
        (status = 400, description = "`action` is not an action id (answered in plain text)."),
        (status = 401, description = "The token is unknown or revoked (answered as a web page)."),
        (status = 503, description = "As many streams are open as the server allows; try again in a few seconds.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
pub(crate) async fn events(
    state: State<AppState>,
    user: WebUser,
    uri: Uri,
    query: Query<EventsQuery>,
) -> Response {
    // The web UI's stream, under the API's path: one stream, one handler.
    live::events(state, user, uri, query).await
}

/// Who the credentials are
///
/// Who the credentials sent are, as the audit log names them, and what
/// they may do. An agent's tools use it to tell its own actions from
/// others' (the MCP server's `get_action` shows only the caller's).
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    operation_id = "who_am_i",
    tag = "actions",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "The caller.", body = WhoAmI),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
    ),
)]
pub(crate) async fn whoami(ApiUser(caller): ApiUser) -> ApiResult {
    let p = &caller.principal;
    Ok(Json(WhoAmI {
        actor: caller.actor(),
        may_propose: p.may_propose(),
        may_decide: p.may_decide(),
    })
    .into_response())
}
