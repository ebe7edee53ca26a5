//! Actions: proposing one, listing them, reading one.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use jarvis_core::{ActionState, HostName, Purpose};
use jarvis_exec::ExecError;
use jarvis_store::{ActionRecord, StoreError};

use super::bodies::{
    ActionDetail, ActionList, ErrorBody, LimitRefusal, ListQuery, ProposeBody, Proposed, Replayed,
};
use super::{ApiResult, body, csrf_header, resolve};
use crate::pipeline::{GatewayError, Proposal, Work};
use crate::server::error::AppError;
use crate::server::lookup::{needed, plan_lines};
use crate::server::session::ApiUser;
use crate::server::state::{AppState, unix};

/// Propose an action
///
/// Proposes a command line (or a file edit) for a host. The policy judges
/// it at once: an action it allows runs now, in the background, and is
/// answered `approved`; one that needs a person is answered
/// `pending_approval` and waits in the approval queue until someone
/// decides or it expires (`expires_at`); one it refuses is answered
/// `denied` and never runs. Follow it with `GET /api/v1/actions/{id}`.
///
/// The limits that answer at once (the host's circuit breaker, the rate
/// limits) are asked before the answer: when one refuses an allowed
/// action, the answer is `429` with `Retry-After` and the same body plus
/// `refused`, and the action is `denied` (its first reason says which
/// limit and when to try again). A host that is only busy is not known at
/// once: the run waits for a slot in the background, and if none frees up
/// in time the action stays `approved` for a person to run.
///
/// Send an `Idempotency-Key` to retry safely: the same key again answers
/// `200` with the action the first request made.
#[utoipa::path(
    post,
    path = "/api/v1/actions",
    operation_id = "propose_action",
    tag = "actions",
    security(("bearer" = ["propose"]), ("session" = ["approver"])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 visible ASCII characters (a UUID, say) naming this proposal, so a retry after a lost answer returns the action already made instead of a second one."),
        ("X-CSRF-Token" = Option<String>, Header,
            description = "The session's CSRF token; needed when a session cookie, not a token, authenticates."),
    ),
    request_body = ProposeBody,
    responses(
        (status = 201, description = "Proposed and judged.", body = Proposed),
        (status = 200, description = "The `Idempotency-Key` was used for this same proposal already: the action it made, as it stands now.", body = Replayed),
        (status = 400, description = "The body is not a proposal, or the `Idempotency-Key` header is malformed.", body = ErrorBody),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 403, description = "The token's scope is `read`, the person is a viewer, or a session's CSRF token is missing or wrong.", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_kib`.", body = ErrorBody),
        (status = 422, description = "The host is unknown or misspelt, not exactly one of `command` and `edit` was given, the edit or `cwd` is unusable, `reason` or `expected_effect` is too long, or the `Idempotency-Key` was used for a different proposal.", body = ErrorBody),
        (status = 429, description = "A host limit refused the allowed action: it is `denied` and `refused` says which limit.", body = Proposed,
            headers(("Retry-After" = u64, description = "Whole seconds to wait before proposing again."))),
        (status = 503, description = "The database is unavailable, or the request took longer than `server.request_timeout_secs` (it may have taken effect).", body = ErrorBody),
        (status = 507, description = "The gateway's disk is full: nothing was recorded.", body = ErrorBody),
    ),
)]
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
            Ok(started) => {
                crate::server::runs::spawn_started(state.clone(), started, actor);
            }
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
    let expires_at =
        (action.state == ActionState::PendingApproval).then(|| unix(state.gw.expires_at(&action)));
    let mut answer = Proposed {
        action,
        judgement: proposed.judgement.into(),
        snapshot: proposed.plan.summary(),
        expires_at,
        link,
        refused: None,
    };
    let Some(source) = refused else {
        return Ok((StatusCode::CREATED, Json(answer)).into_response());
    };
    let wait = crate::pipeline::whole_secs(source.retry_after().unwrap_or_default());
    answer.refused = Some(LimitRefusal {
        code: source.code(),
        reason: source.to_string(),
        retry_after_secs: wait,
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
    let answer = Replayed {
        expires_at: (made.state == ActionState::PendingApproval)
            .then(|| unix(state.gw.expires_at(&made))),
        action: made,
        replayed: true,
        link,
    };
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// List actions
///
/// Actions, newest first, optionally only those in one state. A page holds
/// `limit` actions; pass the last one's id as `before` for the next.
#[utoipa::path(
    get,
    path = "/api/v1/actions",
    operation_id = "list_actions",
    tag = "actions",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    params(ListQuery),
    responses(
        (status = 200, description = "The actions.", body = ActionList),
        (status = 400, description = "`state` names no state, or the query cannot be read (`before` is not an action id, `limit` not a number: that answer is plain text).", body = ErrorBody),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    ),
)]
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
    Ok(Json(ActionList { actions }).into_response())
}

/// Read an action
///
/// The action with everything known of it: its run (with its output as
/// text), the snapshot taken before it ran, the approvals counted, how
/// many it needs, the rollbacks that name it, and its audit events, oldest
/// first.
#[utoipa::path(
    get,
    path = "/api/v1/actions/{id}",
    operation_id = "show_action",
    tag = "actions",
    security(("bearer" = ["read"]), ("session" = ["viewer"])),
    params(("id" = String, Path, description = "The action's id, or a unique prefix of it (as the CLI and the web UI show it).")),
    responses(
        (status = 200, description = "The action.", body = ActionDetail),
        (status = 400, description = "The prefix matches more than one action.", body = ErrorBody),
        (status = 401, description = "No token or session, or the token is unknown or revoked.", body = ErrorBody),
        (status = 404, description = "No such action.", body = ErrorBody),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    ),
)]
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
    let events = store
        .events(&jarvis_store::AuditFilter {
            action_id: Some(id.to_string()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .map_err(json_err)?;
    Ok(Json(ActionDetail {
        plan: plan_lines(action.plan.as_ref()),
        run: run.map(Into::into),
        snapshot: store.snapshot(id).await.map_err(json_err)?,
        approvals: store.approvals_of(id).await.map_err(json_err)?,
        needed_approvers: needed(&state, &action).await.map_err(AppError::json)?,
        rollbacks: store.rollbacks_of(id).await.map_err(json_err)?,
        events: events.into_iter().rev().collect(),
        action,
    })
    .into_response())
}
