//! The JSON API (`/api/v1`): what agents, scripts and the CLI's remote
//! users call. Bearer tokens propose and read; people signed in with a
//! session cookie may also decide, sending the session's CSRF token in
//! `X-CSRF-Token`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jarvis_core::{ActionId, ActionState, ApprovalProgress, HostName, Purpose};
use jarvis_exec::snapshot::FileEdit;
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit_filter::AuditParams;
use super::chain::chain_status;
use super::error::AppError;
use super::hosts::host_rows;
use super::judge::try_policy;
use super::lookup::{decision_error, needed, plan_lines};
use super::session::{ApiUser, Caller};
use super::state::{AppState, Shared, unix};
use crate::pipeline::{GatewayError, Proposal, Work};
use crate::rollback::{describe, outcome_words};
use jarvis_exec::ExecError;
use jarvis_store::{ActionRecord, StoreError};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeBody {
    host: String,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
    #[serde(default)]
    edit: Option<FileEdit>,
    /// Why the agent asks, shown to the approver.
    #[serde(default)]
    reason: String,
    /// What the agent expects it to do, shown to the approver.
    #[serde(default)]
    expected_effect: String,
}

/// `POST /api/v1/actions`: propose an action. One the policy allows is
/// started at once: the limits that answer at once (the host's breaker,
/// the rate limits) are asked before the answer, and it runs in the
/// background.
///
/// The rule for a refusal by a limit: when a host limit refuses an allowed
/// proposal as it is made, the answer is `429 Too Many Requests` with
/// `Retry-After` (whole seconds) and a body of the same shape as a `201`,
/// plus `refused` (`code`, `reason`, `retry_after_secs`); the action is
/// `denied`, its first reason says which limit and when to try again, and
/// it never stays behind as a runnable approval. The host being busy is
/// not known at once: the run waits in the background for a slot, up to
/// the host's queue timeout, and if none frees up the action stays
/// approved with an `action.refused` event, for a person to run from its
/// page until the run window lapses it (the `201` went out already).
pub(crate) async fn propose(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    payload: Result<Json<ProposeBody>, JsonRejection>,
) -> ApiResult {
    caller
        .check_csrf(&state, csrf_header(&headers), "propose", None)
        .await
        .map_err(AppError::json)?;
    caller
        .require(
            &state,
            caller.principal.may_propose(),
            "propose actions",
            None,
        )
        .await
        .map_err(AppError::json)?;
    let b = body(payload)?;
    let host = HostName::parse(&b.host).map_err(|e| {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("host: {e}")).json()
    })?;
    let work = match (b.command, b.edit) {
        (Some(line), None) if !line.trim().is_empty() => Work::Command {
            line,
            cwd: b.cwd.clone(),
        },
        (None, Some(e)) => Work::Edit(e),
        _ => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "give exactly one of `command` (a non-empty command line) or `edit`",
            )
            .json());
        }
    };
    let purpose = Purpose::new(&b.reason, &b.expected_effect).map_err(|e| {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{}: {e}", e.field),
        )
        .json()
    })?;
    let actor = caller.actor();
    let key = idempotency_key(&headers)?;
    // A retry of a proposal whose answer was lost: the action it made,
    // not a second one.
    if let Some(key) = &key
        && let Some(made) = state
            .gw
            .store()
            .action_for_key(&actor, key)
            .await
            .map_err(|e| AppError::from_store(e).json())?
    {
        return replay(&state, made, key, &host, &work);
    }
    let proposal = Proposal {
        requester: actor.clone(),
        host: host.clone(),
        work: work.clone(),
        timeout: b.timeout_secs.map(Duration::from_secs),
        purpose,
    };
    let proposed = match &key {
        Some(key) => state.gw.propose_keyed(proposal, key).await,
        None => state.gw.propose(proposal).await,
    };
    let proposed = match proposed {
        Ok(p) => p,
        // The same key, sent again while the first was being judged.
        Err(GatewayError::Store(StoreError::KeyUsed { action, key })) => {
            let made = state
                .gw
                .store()
                .action(action)
                .await
                .map_err(|e| AppError::from_store(e).json())?;
            return replay(&state, made, &key, &host, &work);
        }
        Err(e) => return Err(AppError::from_gateway(e).json()),
    };
    let id = proposed.action.id;
    let mut action = proposed.action;
    let mut refused = None;
    if action.state == ActionState::Approved {
        match state.gw.start_proposed(id).await {
            Ok(started) => super::runs::spawn_started(state.clone(), started, actor),
            Err(e) => {
                // Only a host limit refuses here (the action is denied).
                if let GatewayError::NotSent { source, .. } = &e {
                    if let ExecError::RateLimited(limited) = source {
                        state.metrics.rate_limit_refused(
                            action.host.as_deref().unwrap_or_default(),
                            &limited.scope.to_string(),
                        );
                    }
                    refused = Some(source.clone());
                }
                tracing::warn!(action = %id, error = %e, "the action was not started");
                // It moved (refused, or back to a person): answer with it
                // as it stands.
                action = state
                    .gw
                    .store()
                    .action(id)
                    .await
                    .map_err(|e| AppError::from_gateway(e.into()).json())?;
            }
        }
    }
    let link = state
        .settings
        .public_url
        .as_ref()
        .map(|u| format!("{u}/actions/{id}"));
    let mut answer = json!({
        "action": action,
        "judgement": proposed.judgement,
        "snapshot": proposed.plan.summary(),
        "expires_at": (action.state == ActionState::PendingApproval)
            .then(|| unix(state.gw.expires_at(&action))),
        "link": link,
    });
    let Some(source) = refused else {
        return Ok((StatusCode::CREATED, Json(answer)).into_response());
    };
    let wait = crate::pipeline::whole_secs(source.retry_after().unwrap_or_default());
    answer["refused"] = json!({
        "code": source.code(),
        "reason": source.to_string(),
        "retry_after_secs": wait,
    });
    Ok((
        StatusCode::TOO_MANY_REQUESTS,
        [(axum::http::header::RETRY_AFTER, wait.to_string())],
        Json(answer),
    )
        .into_response())
}

/// The longest `Idempotency-Key` taken, in bytes.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The proposal's `Idempotency-Key` header, if it has one: 1 to 255
/// visible ASCII characters (a UUID is the usual choice).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        AppError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID, say)"
            ),
        )
        .json()
    };
    let key = value.to_str().map_err(|_| bad())?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

/// The answer to a proposal sent again with the key of one already made:
/// `200` with that action as it stands now (`"replayed": true`), or `422`
/// if the key was used for a different proposal (a client bug that must
/// not pass for a retry).
fn replay(
    state: &AppState,
    made: ActionRecord,
    key: &str,
    host: &HostName,
    work: &Work,
) -> ApiResult {
    if made.host.as_deref() != Some(host.as_str())
        || made.command != work.line()
        || made.cwd.as_deref() != work.cwd()
    {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the Idempotency-Key `{key}` was already used for a different proposal (action {}); use a new key for a new proposal",
                made.id
            ),
        )
        .json());
    }
    let link = state
        .settings
        .public_url
        .as_ref()
        .map(|u| format!("{u}/actions/{}", made.id));
    let answer = json!({
        "expires_at": (made.state == ActionState::PendingApproval)
            .then(|| unix(state.gw.expires_at(&made))),
        "action": made,
        "replayed": true,
        "link": link,
    });
    Ok((StatusCode::OK, Json(answer)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    before: Option<ActionId>,
}

/// `GET /api/v1/actions[?state=&limit=&before=ID]`: newest first; `before`
/// pages to older ones.
pub(crate) async fn list(
    State(state): State<AppState>,
    ApiUser(_caller): ApiUser,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let wanted = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<ActionState>()
                .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, e.to_string()).json())?,
        ),
        None => None,
    };
    let actions = state
        .gw
        .store()
        .actions_before(wanted, q.before, q.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(|e| AppError::from_store(e).json())?;
    Ok(Json(json!({ "actions": actions })).into_response())
}

/// `GET /api/v1/actions/{id}`: the action, its run (output as text),
/// snapshot, approvals and audit events.
pub(crate) async fn show(
    State(state): State<AppState>,
    ApiUser(_caller): ApiUser,
    Path(text): Path<String>,
) -> ApiResult {
    let id = resolve(&state, &text).await?;
    let store = state.gw.store();
    let json_err = |e| AppError::from_store(e).json();
    let action = store.action(id).await.map_err(json_err)?;
    let run = store.run_of(id).await.map_err(json_err)?;
    let run = run.map(|r| {
        let mut v = json!(r);
        v["stdout"]["text"] = json!(String::from_utf8_lossy(&r.stdout.data));
        v["stderr"]["text"] = json!(String::from_utf8_lossy(&r.stderr.data));
        v
    });
    let events = store
        .events(&jarvis_store::AuditFilter {
            action_id: Some(id.to_string()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .map_err(json_err)?;
    Ok(Json(json!({
        "action": action,
        "plan": plan_lines(action.plan.as_ref()),
        "run": run,
        "snapshot": store.snapshot(id).await.map_err(json_err)?,
        "approvals": store.approvals_of(id).await.map_err(json_err)?,
        "needed_approvers": needed(&state, &action).await.map_err(AppError::json)?,
        "rollbacks": store.rollbacks_of(id).await.map_err(json_err)?,
        "events": events.into_iter().rev().collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    force: bool,
}

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

/// `POST /api/v1/actions/{id}/approve`.
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
                    super::runs::spawn_execute(state.clone(), id, actor);
                    0
                }
                ApprovalProgress::Waiting { more } => more,
            };
            Ok(Json(json!({
                "action": action,
                "approved": more == 0,
                "approvals_still_needed": more,
            }))
            .into_response())
        }
        Err(e) => Err(decision_error(&state, &caller, id, e).await.json()),
    }
}

/// `POST /api/v1/actions/{id}/run`: starts an approved action that has
/// not started; answers at once (202), the run is followed on the action.
pub(crate) async fn run(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> ApiResult {
    let id = may_decide(&state, &caller, &headers, &text, "run actions").await?;
    let action = super::runs::start_approved(&state, id, caller.actor())
        .await
        .map_err(|e| AppError::from_gateway(e).json())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "action": action, "started": true })),
    )
        .into_response())
}

/// `POST /api/v1/actions/{id}/deny`.
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
    Ok(Json(json!({ "action": action })).into_response())
}

/// `POST /api/v1/actions/{id}/rollback`: asks for a rollback. One that may
/// run at once is run and answered when done (200); one that waits for
/// approvers is answered at once (202) and decided like any action. One
/// that stopped before changing anything because targets changed since
/// the action is recorded as refused and answered 409 with the refused
/// rollback, `stopped: true` and what changed; nothing to undo is a 409
/// with only the error, and no rollback is made.
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
    let mut body = json!({
        "rollback": done.rollback,
        "waiting_for_approval": waiting,
        "stopped": stopped,
        "needed_approvers": needed,
        "report": done.report,
        "summary": done.report.as_ref().map(describe),
        "outcome": outcome,
    });
    let status = if waiting {
        StatusCode::ACCEPTED
    } else if stopped {
        body["error"] = json!(outcome);
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /api/v1/audit`: events, newest first, with the web page's filters.
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
    Ok(Json(json!({ "events": events })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LimitQuery {
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/audit/verify`: the chain's verification, fresh within 30 s.
pub(crate) async fn verify(State(state): State<AppState>, ApiUser(_caller): ApiUser) -> ApiResult {
    let status = chain_status(&state).await;
    match status.report {
        Ok(r) => Ok(Json(json!({ "intact": r.is_intact(), "report": r })).into_response()),
        Err(e) => Err(AppError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).json()),
    }
}

/// `GET /api/v1/hosts`.
pub(crate) async fn hosts(State(state): State<AppState>, ApiUser(_caller): ApiUser) -> ApiResult {
    let hosts: Vec<Value> = host_rows(&state)
        .into_iter()
        .map(|h| {
            json!({
                "name": h.name,
                "destination": h.destination,
                "tags": h.tags,
                "health": { "ok": h.health.ok, "detail": h.health.detail, "checked_at": h.health.checked_at },
                "breaker": h.breaker,
                "limits": h.limits.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "shell": h.shell,
                "kernel": {
                    "level": h.kernel.level_word(),
                    "detail": h.kernel.detail,
                    "enforcement": h.kernel.enforcement,
                    "unattended": h.kernel.unattended,
                    "consequence": h.kernel.consequence,
                    "learnt_at": (!h.kernel.learnt_at.is_empty()).then_some(h.kernel.learnt_at),
                },
            })
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyBody {
    command: String,
    #[serde(default)]
    host: Option<String>,
}

/// `POST /api/v1/policy/check`: what the policy says of a command, in the
/// shape of `jarvis policy check --json`.
pub(crate) async fn policy_check(
    State(state): State<AppState>,
    ApiUser(_caller): ApiUser,
    payload: Result<Json<PolicyBody>, JsonRejection>,
) -> ApiResult {
    let b = body(payload)?;
    let t =
        try_policy(&state, &b.command, b.host.as_deref().unwrap_or("")).map_err(AppError::json)?;
    Ok(Json(json!({
        "command": t.command,
        "decision": t.decision,
        "risk": { "score": t.risk_score, "level": t.risk_level },
        "reasons": t.reasons,
        "rules": t.rules,
        "parse_error": t.parse_error,
    }))
    .into_response())
}

/// `GET /api/v1/whoami`: who the credentials sent are, as the audit log
/// names them, and what they may do. An agent's tools use it to tell its
/// own actions from others'.
pub(crate) async fn whoami(ApiUser(caller): ApiUser) -> ApiResult {
    let p = &caller.principal;
    Ok(Json(json!({
        "actor": caller.actor(),
        "may_propose": p.may_propose(),
        "may_decide": p.may_decide(),
    }))
    .into_response())
}
