//! The pages of the web UI: the approval queue, actions, the audit log,
//! hosts and the policy, and the forms that approve, deny and roll back.
//! Every page works without JavaScript; forms post back and redirect.

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jarvis_core::{ActionId, ActionState, ApprovalProgress, Behind, ConversationId, Risk};
use jarvis_exec::snapshot::{Snapshot, SnapshotPlan};
use jarvis_policy::Request;
use jarvis_store::{ActionRecord, AuditFilter, BadTime, OffsetDateTime, parse_time};
use serde::Deserialize;

use super::error::AppError;
use super::session::{Caller, FLASH, FormUser, WebUser, cookie, cookie_name, set_cookie};
use super::views::{
    ActionPage, ActionsPage, AuditPage, AuditQuery, ChatOrigin, Chrome, Connection, Flash,
    FlashKind, Health, HostKernel, HostRow, HostUnattended, HostsPage, PolicyPage, PolicyTry,
    QueueItem, QueueItems, QueuePage, RollbackPage, RuleView, Section, Story,
};
use super::{AppState, Shared, now_unix, unix};
use crate::pipeline::GatewayError;
use crate::rollback::{NOTHING_CHANGED, changed_nothing, outcome_words};

/// Renders a template, or says which one failed.
pub(crate) fn html(page: &impl Template) -> Result<Html<String>, AppError> {
    page.render().map(Html).map_err(|e| {
        tracing::error!(error = %e, "template failed");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be drawn: {e}"),
        )
    })
}

/// The message carried across a redirect, in a short-lived cookie (not the
/// URL, where a crafted link could put words in Jarvis's mouth).
fn flash_cookie(state: &Shared, kind: FlashKind, text: &str) -> HeaderValue {
    let tag = match kind {
        FlashKind::Info => "i",
        FlashKind::Success => "s",
        FlashKind::Error => "e",
    };
    let value = format!("{tag}.{}", URL_SAFE_NO_PAD.encode(text));
    set_cookie(state, FLASH, &value, 60)
}

fn read_flash(state: &Shared, headers: &HeaderMap) -> Option<Flash> {
    // Only the name this server sets: under TLS that is the `__Host-` one,
    // which another site cannot plant.
    let raw = cookie(headers, &cookie_name(state, FLASH))?;
    let (tag, text) = raw.split_once('.')?;
    let kind = match tag {
        "i" => FlashKind::Info,
        "s" => FlashKind::Success,
        "e" => FlashKind::Error,
        _ => return None,
    };
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    Some(Flash { kind, text })
}

fn redirect_with(state: &Shared, to: &str, kind: FlashKind, text: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, flash_cookie(state, kind, text));
    r
}

/// A page for a caller, with any flash message shown once.
pub(crate) fn page(state: &Shared, headers: &HeaderMap, body: Html<String>) -> Response {
    let mut r = body.into_response();
    if read_flash(state, headers).is_some() {
        r.headers_mut()
            .append(header::SET_COOKIE, set_cookie(state, FLASH, "", 0));
    }
    r
}

pub(crate) fn chrome(
    state: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    title: &str,
    section: Section,
) -> Chrome {
    let mut c = caller.chrome(state, title, section);
    c.flash = read_flash(state, headers);
    c
}

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
pub(crate) fn plan_lines(plan: Option<&serde_json::Value>) -> Vec<String> {
    plan.and_then(|p| serde_json::from_value::<SnapshotPlan>(p.clone()).ok())
        .map(|p| vec![p.summary()])
        .unwrap_or_default()
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

async fn approvers(state: &Shared, id: ActionId) -> Result<Vec<String>, AppError> {
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

/// A snapshot in words: each target, and what the action did to it (or
/// that it left it alone), instead of the manifest's JSON.
fn snapshot_words(record: &jarvis_store::SnapshotRecord) -> Vec<String> {
    let parse = |v: &serde_json::Value| serde_json::from_value::<Snapshot>(v.clone()).ok();
    let Some(before) = parse(&record.manifest) else {
        return Vec::new();
    };
    let after = record.after.as_ref().and_then(parse);
    let when = super::views::fmt_time(&record.taken_at);
    crate::rollback::comes_back(&before, after.as_ref(), &when)
        .into_iter()
        .map(|t| match t.changed {
            Some(c) if c.is_empty() => format!("{}: the action left it as it was", t.subject),
            Some(c) => format!("{}: the action changed it ({})", t.subject, c.join("; ")),
            None => t.subject,
        })
        .collect()
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
        _ => None,
    };
    Story::of(action, chat)
}

const QUEUE_PAGE: usize = 50;

async fn queue_items_of(state: &Shared) -> Result<(Vec<QueueItem>, bool), AppError> {
    let mut pending = state
        .gw
        .store()
        .actions(Some(ActionState::PendingApproval), QUEUE_PAGE as i64 + 1)
        .await
        .map_err(AppError::from_store)?;
    let more = pending.len() > QUEUE_PAGE;
    pending.truncate(QUEUE_PAGE);
    let mut items = Vec::with_capacity(pending.len());
    for action in pending {
        let needed = needed(state, &action).await?;
        // With one approver needed, a pending action has none yet: the
        // first approval decides it. Only a two-person rule has partial
        // approvals to show.
        let approvers = if needed > 1 {
            approvers(state, action.id).await?
        } else {
            Vec::new()
        };
        items.push(QueueItem {
            story: story_of(state, &action).await,
            expires_at_unix: unix(state.gw.expires_at(&action)),
            approvers,
            needed,
            action,
        });
    }
    Ok((items, more))
}

/// `GET /`: the approval queue.
pub(crate) async fn queue(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (items, more) = queue_items_of(&state).await?;
    let total_pending = state
        .gw
        .store()
        .count_actions_by()
        .await
        .map_err(AppError::from_store)?
        .into_iter()
        .filter(|(s, _, _)| *s == ActionState::PendingApproval)
        .map(|(_, _, n)| n)
        .sum();
    let body = html(&QueuePage {
        chrome: chrome(&state, &caller, &headers, "Approval queue", Section::Queue),
        items,
        can_decide: caller.principal.may_decide(),
        now_unix: now_unix(),
        total_pending,
        more,
    })?;
    Ok(page(&state, &headers, body))
}

/// `GET /queue/items`: the queue's list alone, for live refresh.
pub(crate) async fn queue_items(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
) -> Result<Html<String>, AppError> {
    let (items, _) = queue_items_of(&state).await?;
    html(&QueueItems {
        items,
        can_decide: caller.principal.may_decide(),
        csrf: caller.csrf.clone().unwrap_or_default(),
        now_unix: now_unix(),
    })
}

#[derive(Deserialize)]
pub(crate) struct ActionsQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

const ACTIONS_PAGE: usize = 100;

/// `GET /actions`: every action, newest first, optionally of one state.
pub(crate) async fn actions(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Query(q): Query<ActionsQuery>,
) -> Result<Response, AppError> {
    let chrome = chrome(&state, &caller, &headers, "Actions", Section::Actions);
    let filter = q.state.filter(|s| !s.is_empty());
    let wanted = match &filter {
        Some(s) => Some(ActionState::from_words(s).ok_or_else(|| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                format!("`{s}` is not an action state"),
            )
            .page(chrome.clone(), Some("/actions".into()))
        })?),
        None => None,
    };
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(b.parse::<ActionId>().map_err(|e| {
            AppError::new(StatusCode::BAD_REQUEST, e.to_string())
                .page(chrome.clone(), Some("/actions".into()))
        })?),
        None => None,
    };
    let mut actions = state
        .gw
        .store()
        .actions_before(wanted, before, ACTIONS_PAGE as i64 + 1)
        .await
        .map_err(AppError::from_store)?;
    let more = actions.len() > ACTIONS_PAGE;
    actions.truncate(ACTIONS_PAGE);
    let next_before = more
        .then(|| actions.last().map(|a| a.id.to_string()))
        .flatten();
    let body = html(&ActionsPage {
        chrome,
        actions,
        state: wanted.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        states: ActionState::ALL.to_vec(),
        next_before,
    })?;
    Ok(page(&state, &headers, body))
}

/// `GET /actions/{id}`: everything about one action.
pub(crate) async fn action(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Path(text): Path<String>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Action", Section::Actions);
    let id = resolve(&state, &text)
        .await
        .map_err(|e| e.page(frame.clone(), Some("/actions".into())))?;
    let store = state.gw.store();
    // The events before the action: then the record is at least as new as
    // the last event the page names, so the page's live script can skip
    // every change up to that event (a late one would otherwise reload the
    // page under a reader's finger).
    let mut events = store
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            limit: Some(1000),
            ..AuditFilter::default()
        })
        .await
        .map_err(AppError::from_store)?;
    events.reverse();
    let action = store.action(id).await.map_err(AppError::from_store)?;
    let run = store.run_of(id).await.map_err(AppError::from_store)?;
    let snapshot = store.snapshot(id).await.map_err(AppError::from_store)?;
    let snapshot_lines = snapshot.as_ref().map(snapshot_words).unwrap_or_default();
    let rollbacks = store.rollbacks_of(id).await.map_err(AppError::from_store)?;
    let pending = action.state == ActionState::PendingApproval;
    let rollable = matches!(
        action.state,
        ActionState::Succeeded | ActionState::Failed | ActionState::TimedOut
    );
    let rollback_note = match (&snapshot, action.state) {
        (_, ActionState::RolledBack) => Some("This action has been rolled back.".to_owned()),
        (None, _) if rollable => Some(
            "No snapshot was taken for this action (it only reads, or what it changes is not covered), so Jarvis cannot roll it back."
                .to_owned(),
        ),
        (Some(s), _) if s.pruned_at.is_some() => Some(format!(
            "Its snapshot was removed by retention at {}, so it can no longer be rolled back.",
            s.pruned_at.as_deref().unwrap_or("?")
        )),
        (Some(s), _) if rollable && changed_nothing(s) => {
            Some(format!("Nothing to undo: {NOTHING_CHANGED}."))
        }
        (Some(_), _) if rollable => Some(
            "Rolling back puts back what its snapshot captured. The next page lists what comes back and what does not, and asks you to confirm."
                .to_owned(),
        ),
        _ => None,
    };
    let deadline = state.gw.deadline(&action);
    let can_roll_back = caller.principal.may_decide()
        && rollable
        && snapshot
            .as_ref()
            .is_some_and(|s| s.pruned_at.is_none() && !changed_nothing(s));
    let story = story_of(&state, &action).await;
    let body = html(&ActionPage {
        story,
        snapshot_lines,
        chrome: Chrome {
            title: format!("Action {}", &id.to_string()[..13]),
            ..frame
        },
        plan: plan_lines(action.plan.as_ref()),
        approvers: approvers(&state, id).await?,
        needed: needed(&state, &action).await?,
        expires_at_unix: deadline.map(unix),
        can_decide: pending && caller.principal.may_decide(),
        can_run: action.state == ActionState::Approved
            && run.is_none()
            && !state.is_starting(id)
            && deadline.is_some_and(|d| d > std::time::SystemTime::now())
            && caller.principal.may_decide(),
        can_roll_back,
        rollback_note,
        now_unix: now_unix(),
        action,
        run,
        snapshot,
        events,
        rollbacks,
    })?;
    Ok(page(&state, &headers, body))
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    force: Option<String>,
    /// The page the form was on, when that is not where the decision would
    /// lead (a conversation's page).
    #[serde(default)]
    return_to: Option<String>,
}

impl DecisionForm {
    fn reason(&self) -> Option<&str> {
        self.reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
    }

    /// The conversation page to go back to after deciding on `action`.
    fn conversation_page(&self, action: ActionId) -> Option<String> {
        conversation_return(self.return_to.as_deref()?, action)
    }
}

/// `/chat/ID`, rebuilt from the parsed conversation id and pointing at
/// `action`'s card, or nothing for any other text. The form field is the
/// client's to forge: taking only this one shape, and never echoing it,
/// keeps it from sending anyone off the site or elsewhere on it.
fn conversation_return(return_to: &str, action: ActionId) -> Option<String> {
    let id: ConversationId = return_to.strip_prefix("/chat/")?.parse().ok()?;
    Some(format!("/chat/{id}#action-{action}"))
}

/// Checks CSRF and role for a decision on `id`, answering in pages.
async fn decision_allowed(
    state: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    form: &DecisionForm,
    what: &str,
    text: &str,
) -> Result<(ActionId, Chrome), AppError> {
    let frame = chrome(state, caller, headers, "Not done", Section::Queue);
    let back = Some(format!("/actions/{text}"));
    let id = resolve(state, text)
        .await
        .map_err(|e| e.page(frame.clone(), Some("/".into())))?;
    caller
        .check_csrf(state, form.csrf.as_deref(), what, Some(id))
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    caller
        .require(state, caller.principal.may_decide(), what, Some(id))
        .await
        .map_err(|e| e.page(frame.clone(), back))?;
    Ok((id, frame))
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
        error.and(&super::error::decided(state, id).await)
    } else {
        error
    }
}

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
            super::live::spawn_execute(state.clone(), id, actor);
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
    super::live::start_approved(&state, id, caller.actor())
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
        .comes_back(&super::views::fmt_time(&offer.taken_at))
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

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    #[serde(default)]
    host: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    action: String,
    /// Start the page at this event (a break, shown in place).
    #[serde(default)]
    upto: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

/// The stored actor for what a person typed in the actor filter: the words
/// the pages show (`alice`, `agent token planner`, `root (on the gateway)`,
/// `the planner`, `Jarvis`) or the stored form (`user:alice`), which is
/// kept as it is.
pub(crate) fn actor_from_words(text: &str) -> String {
    let t = text.trim();
    if t.contains(':') {
        return t.to_owned();
    }
    if let Some(name) = t.strip_prefix("agent token ") {
        return format!("token:{}", name.trim());
    }
    if let Some(account) = t.strip_suffix("(on the gateway)") {
        return format!("local:{}", account.trim());
    }
    match t {
        "the planner" | "planner" => "planner".to_owned(),
        "Jarvis" | "system" => "system".to_owned(),
        // The gateway's own steps and the operator's signatures carry bare
        // names; anyone else named by a word alone is a person.
        "gateway" | "operator" => t.to_owned(),
        name => format!("user:{name}"),
    }
}

/// The stored event kind for what a person typed in the kind filter: a
/// state's words (`waiting for approval`, `rolled back`) mean the event of
/// an action entering it (`action.pending_approval`); anything else is a
/// kind (`action.approved`) or a family of kinds (`action.`) as written.
pub(crate) fn kind_from_words(text: &str) -> String {
    let t = text.trim();
    if t.contains('.') {
        return t.to_owned();
    }
    match ActionState::from_words(t) {
        Some(state) => format!("action.{}", state.as_str()),
        None => t.to_owned(),
    }
}

/// The audit filter's time parameters that are not times, each with its
/// parameter's name.
#[derive(Debug)]
pub(crate) struct BadTimes(Vec<(&'static str, BadTime)>);

impl BadTimes {
    /// The names of the parameters at fault.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}

impl std::fmt::Display for BadTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{name}: {e}")?;
        }
        Ok(())
    }
}

impl AuditParams {
    /// The store's filter. Times are read by [`parse_time`]; one that is
    /// not a time is an error rather than left out, which would answer
    /// with more than was asked for.
    pub(crate) fn filter(&self, limit: i64) -> Result<AuditFilter, BadTimes> {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut bad = Vec::new();
        let mut time = |name: &'static str, text: &str| -> Option<OffsetDateTime> {
            parse_time(&some(text)?)
                .map_err(|e| bad.push((name, e)))
                .ok()
        };
        let since = time("since", &self.since);
        let until = time("until", &self.until);
        if !bad.is_empty() {
            return Err(BadTimes(bad));
        }
        Ok(AuditFilter {
            action_id: some(&self.action),
            actor: some(&self.actor).map(|a| actor_from_words(&a)),
            host: some(&self.host),
            kind: some(&self.kind).map(|k| kind_from_words(&k)),
            since,
            until,
            search: some(&self.q),
            upto: self.upto,
            limit: Some(limit),
            offset: self
                .offset
                .filter(|o| *o > 0)
                .map(|o| o.min(i64::from(u32::MAX))),
        })
    }
}

const AUDIT_PAGE: i64 = 100;

/// The chain's status: the last verification while it is current (no
/// event since, and under thirty seconds old), otherwise verified again.
/// Reading the head is one row; the walk is fast (about a million events a
/// second on SQLite), and a stale green is worse than a short wait.
pub(crate) async fn chain_status(state: &Shared) -> super::ChainStatus {
    let cached = state.chain.read().ok().and_then(|c| c.clone());
    let head = state.gw.store().head_seq().await.ok();
    match cached {
        Some(c)
            if c.at.elapsed() < Duration::from_secs(30)
                && c.report.as_ref().ok().map(|r| r.last_seq) == head =>
        {
            c
        }
        _ => super::ops::refresh_chain(state).await,
    }
}

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
        .map(|(k, v)| format!("{k}={}", super::session::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let verified_secs_ago = status.at.elapsed().as_secs();
    let (verify, verify_error) = match status.report {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
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

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

/// Lets a form post through that only people who decide may make: its
/// CSRF token and the caller's role are checked (each refusal audited), a
/// refusal shown on a page that leads `back`.
async fn deciders_form(
    state: &Shared,
    caller: &Caller,
    form: &CsrfOnly,
    what: &str,
    frame: Chrome,
    back: &str,
) -> Result<(), AppError> {
    let back = Some(back.to_owned());
    caller
        .check_csrf(state, form.csrf.as_deref(), what, None)
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    caller
        .require(state, caller.principal.may_decide(), what, None)
        .await
        .map_err(|e| e.page(frame, back))
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
    let status = super::ops::refresh_chain(&state).await;
    let (kind, text) = match (&status.report, status.problem()) {
        (Ok(r), None) => (
            FlashKind::Success,
            format!(
                "Verified just now, in {}. {}.",
                super::views::duration_text(
                    u64::try_from(status.took.as_millis()).unwrap_or(u64::MAX)
                ),
                super::views::chain_status_text(r)
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

/// The hosts as the UI and API show them.
pub(crate) fn host_rows(state: &Shared) -> Vec<HostRow> {
    let health = state.health.read().map(|h| h.clone()).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    state
        .gw
        .config()
        .hosts
        .iter()
        .map(|h| {
            let l = &h.limits;
            HostRow {
                name: h.name.to_string(),
                destination: match h.port {
                    Some(p) => format!("{} port {p}", h.destination),
                    None => h.destination.clone(),
                },
                tags: h.tags.clone(),
                health: health.get(h.name.as_str()).cloned().unwrap_or(Health {
                    ok: None,
                    detail: "not checked yet".into(),
                    checked_at: String::new(),
                }),
                breaker: state
                    .gw
                    .executor()
                    .breaker_state(&h.name)
                    .unwrap_or_default(),
                connection: state
                    .gw
                    .executor()
                    .breaker_status(&h.name)
                    .map(|b| Connection::of(&b, now))
                    .unwrap_or_default(),
                shell: match state.gw.host_facts(&h.name).map(|f| f.report) {
                    Some(Ok(r)) => r
                        .bash
                        .unwrap_or_else(|| "no bash: the guard runs nothing on this host".into()),
                    _ => "not known yet".into(),
                },
                kernel: {
                    let k = state.gw.kernel_standing(&h.name);
                    HostKernel {
                        level: k.level_word().into(),
                        detail: k.level(),
                        enforcement: k.enforcement.as_str().into(),
                        consequence: k.consequence().into(),
                        unattended: k.unattended(),
                        learnt_at: k.learnt_at.unwrap_or_default(),
                    }
                },
                limits: vec![
                    (
                        "default timeout".into(),
                        format!("{}s", l.default_timeout.as_secs()),
                    ),
                    (
                        "max timeout".into(),
                        format!("{}s", l.max_timeout.as_secs()),
                    ),
                    ("output cap".into(), super::views::bytes_text(l.output_cap)),
                    (
                        "rate".into(),
                        format!("{}/min, burst {}", l.rate_per_minute, l.burst),
                    ),
                    ("concurrency".into(), l.concurrency.to_string()),
                    (
                        "cut off".into(),
                        format!(
                            "after {} failures in a row, for {}",
                            l.breaker_failures,
                            super::views::span_text(
                                i64::try_from(l.breaker_cooldown.as_secs()).unwrap_or(i64::MAX)
                            )
                        ),
                    ),
                ],
            }
        })
        .collect()
}

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
    let health = super::ops::check_host(&state, &host).await;
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
    let to = format!("/hosts#host-{}", super::session::encode(host.as_str()));
    Ok(redirect_with(&state, &to, kind, &text))
}

#[derive(Deserialize)]
pub(crate) struct PolicyQuery {
    #[serde(default)]
    command: String,
    #[serde(default)]
    host: String,
}

/// Judges a command as the pipeline would, for the policy page and API.
pub(crate) fn try_policy(state: &Shared, command: &str, host: &str) -> Result<PolicyTry, AppError> {
    let host_name =
        match host.trim() {
            "" => None,
            h => Some(jarvis_core::HostName::parse(h).map_err(|e| {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("host: {e}"))
            })?),
        };
    let j = state.gw.policy().judge(&Request {
        command: command.to_owned(),
        host: host_name,
        cwd: None,
    });
    Ok(PolicyTry {
        command: command.to_owned(),
        host: host.to_owned(),
        decision: j.decision.to_string(),
        verdict: j.decision.label().to_owned(),
        risk_score: u32::from(j.risk.score()),
        risk_level: j.risk.level().to_string(),
        reasons: j.reasons,
        rules: j.rules,
        parse_error: j.parse_error,
    })
}

/// `GET /policy`: the loaded policy files and a box to try a command.
pub(crate) async fn policy(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Query(q): Query<PolicyQuery>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Policy", Section::Policy);
    let result = if q.command.trim().is_empty() {
        None
    } else {
        Some(
            try_policy(&state, &q.command, &q.host)
                .map_err(|e| e.page(frame.clone(), Some("/policy".into())))?,
        )
    };
    let rules = state.gw.policy().rules();
    let max_risk = rules.defaults.auto_allow_max_risk;
    let body = html(&PolicyPage {
        chrome: frame,
        default_verdict: rules.defaults.decision.label().to_owned(),
        default_decision: rules.defaults.decision.to_string(),
        max_risk,
        max_risk_level: Risk::new(u32::from(max_risk))
            .map(|r| r.level().label().to_owned())
            .unwrap_or_default(),
        rules: rules.rules.iter().map(RuleView::of).collect(),
        unattended: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| {
                let k = state.gw.kernel_standing(&h.name);
                HostUnattended {
                    name: h.name.to_string(),
                    unattended: k.unattended(),
                    consequence: k.consequence().to_owned(),
                }
            })
            .collect(),
        files: state
            .gw
            .policy()
            .sources()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        hosts: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| h.name.to_string())
            .collect(),
        command: q.command,
        host: q.host,
        result,
    })?;
    Ok(page(&state, &headers, body))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/app.css`.
pub(crate) async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../../templates/static/app.css"),
    )
}

/// `GET /static/app.js`.
pub(crate) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../../templates/static/app.js"),
    )
}

/// Anything else.
pub(crate) async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "There is no page here.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_as_its_targets_and_what_the_action_did() {
        let repo = |head: &str| {
            serde_json::json!({
                "action_id": "a",
                "kept": true,
                "repos": [{
                    "path": "/srv/app",
                    "head": head,
                    "branch": "refs/heads/main",
                    "index_tree": "i",
                    "worktree_tree": "w"
                }],
                "duration_ms": 3
            })
        };
        let mut record = jarvis_store::SnapshotRecord {
            action_id: ActionId::new(),
            host: "nas".into(),
            taken_at: "2026-12-06T10:00:00Z".into(),
            manifest: repo("e59951b0000000000000000000000000000000ab"),
            after: Some(repo("9a8b7c60000000000000000000000000000000cd")),
            pruned_at: None,
        };
        let lines = snapshot_words(&record);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("git repository /srv/app: the action changed it ("),
            "{lines:?}"
        );
        record.after = Some(record.manifest.clone());
        assert_eq!(
            snapshot_words(&record),
            vec!["git repository /srv/app: the action left it as it was"]
        );
        record.after = None;
        assert_eq!(snapshot_words(&record), vec!["git repository /srv/app"]);
        // Not a snapshot (an older shape): no words rather than wrong ones.
        record.manifest = serde_json::json!({"git": []});
        assert!(snapshot_words(&record).is_empty());
    }

    #[test]
    fn only_a_conversation_page_is_a_place_to_return_to() {
        let action = ActionId::new();
        let chat = ConversationId::new();
        let want = Some(format!("/chat/{chat}#action-{action}"));
        assert_eq!(conversation_return(&format!("/chat/{chat}"), action), want);
        // Another spelling of the id comes back in the one the server writes.
        let simple = chat.to_string().replace('-', "");
        assert_eq!(
            conversation_return(&format!("/chat/{simple}"), action),
            want
        );
        for bad in [
            String::new(),
            "/".into(),
            "/chat".into(),
            "/chat/".into(),
            "/chat/not-an-id".into(),
            "https://evil.example".into(),
            "//evil.example".into(),
            "/\\evil.example".into(),
            format!("https://evil.example/chat/{chat}"),
            format!("//evil.example/chat/{chat}"),
            format!("/chat/{chat}/../../actions"),
            format!("/chat/{chat}?next=//evil.example"),
            format!("/chat/{chat}#elsewhere"),
            format!("/chat/{chat}\r\nLocation: //evil.example"),
            format!(" /chat/{chat}"),
            // A UUID, but not v7: not an id Jarvis makes.
            "/chat/6ba7b810-9dad-41d1-80b4-00c04fd430c8".into(),
        ] {
            assert_eq!(conversation_return(&bad, action), None, "{bad:?}");
        }
    }

    #[test]
    fn audit_filters_take_the_words_shown() {
        // Every actor the pages show in words reads back to the stored one.
        for stored in [
            "user:alice",
            "local:root",
            "token:planner",
            "planner",
            "system",
            "gateway",
        ] {
            assert_eq!(
                actor_from_words(&jarvis_core::words::actor(stored)),
                stored,
                "{stored}"
            );
            assert_eq!(actor_from_words(stored), stored, "{stored}");
        }
        assert_eq!(actor_from_words(" bob "), "user:bob");
        // States in words mean the event of entering them.
        assert_eq!(kind_from_words("approved"), "action.approved");
        assert_eq!(
            kind_from_words("waiting for approval"),
            "action.pending_approval"
        );
        assert_eq!(kind_from_words("Rolled back"), "action.rolled_back");
        assert_eq!(kind_from_words("action.approved"), "action.approved");
        assert_eq!(kind_from_words("action."), "action.");
        assert_eq!(kind_from_words("login"), "login");
        let f = AuditParams {
            actor: "alice".into(),
            kind: "pending".into(),
            upto: Some(44),
            ..AuditParams::default()
        }
        .filter(10)
        .expect("a filter");
        assert_eq!(f.actor.as_deref(), Some("user:alice"));
        assert_eq!(f.kind.as_deref(), Some("action.pending_approval"));
        assert_eq!(f.upto, Some(44));
    }

    #[test]
    fn a_broken_chain_in_a_sentence() {
        use jarvis_store::{Break, BreakKind, VerifyProblem, VerifyReport};
        let status = |report| super::super::ChainStatus {
            report,
            at: std::time::Instant::now(),
            took: Duration::from_millis(3),
        };
        assert_eq!(status(Ok(VerifyReport::default())).problem(), None);
        let first = Break {
            kind: BreakKind::Invalid,
            seq: 5,
            what: "event 5 was changed after it was written".into(),
        };
        let one = VerifyReport {
            problem: Some(VerifyProblem {
                seq: 5,
                what: first.what.clone(),
            }),
            breaks: vec![first.clone()],
            ..VerifyReport::default()
        };
        assert_eq!(
            status(Ok(one.clone())).problem().as_deref(),
            Some("It breaks at event #5: event 5 was changed after it was written.")
        );
        let many = VerifyReport {
            breaks: vec![first.clone(), first],
            unlisted: 2,
            ..one
        };
        assert_eq!(
            status(Ok(many)).problem().as_deref(),
            Some(
                "It breaks at event #5: event 5 was changed after it was written. 3 more breaks follow."
            )
        );
        assert_eq!(
            status(Err("database is locked".into()))
                .problem()
                .as_deref(),
            Some("Jarvis could not verify it: database is locked.")
        );
        // A long walk is repeated less often for pages.
        assert_eq!(
            super::super::ops::current_for(&status(Ok(VerifyReport::default()))),
            Duration::from_secs(10)
        );
        let slow = super::super::ChainStatus {
            took: Duration::from_secs(2),
            ..status(Ok(VerifyReport::default()))
        };
        assert_eq!(
            super::super::ops::current_for(&slow),
            Duration::from_secs(40)
        );
    }

    #[test]
    fn a_check_says_each_version_once() {
        let report = |git: Option<&str>, docker: Option<&str>| jarvis_exec::protocol::CheckReport {
            hostname: "nas".into(),
            user: "jarvis".into(),
            policy: vec![],
            policy_rules: 0,
            docker: docker.map(str::to_owned),
            git: git.map(str::to_owned),
            bash: None,
            enforcement: Default::default(),
        };
        assert_eq!(
            super::super::ops::checked_words(&report(Some("git version 2.39.5"), Some("27.3.1"))),
            "nas as jarvis; git 2.39.5; docker 27.3.1"
        );
        assert_eq!(
            super::super::ops::checked_words(&report(None, Some("Docker version 24.0.5, build 1"))),
            "nas as jarvis; no git; docker 24.0.5, build 1"
        );
    }

    #[test]
    fn audit_times_are_read_and_the_bad_ones_named() {
        let p = AuditParams {
            since: "2026-11-23T16:00:00.5+02:00".into(),
            until: " 2026-11-24 ".into(),
            ..AuditParams::default()
        };
        let f = p.filter(10).expect("a filter");
        assert_eq!(
            f.since.map(jarvis_store::timestamp).as_deref(),
            Some("2026-11-23T14:00:00.5Z")
        );
        assert_eq!(
            f.until.map(jarvis_store::timestamp).as_deref(),
            Some("2026-11-24T00:00:00Z")
        );
        let blank = AuditParams {
            since: "  ".into(),
            ..AuditParams::default()
        };
        assert!(blank.filter(10).expect("no filter").since.is_none());

        let bad = AuditParams {
            since: "yesterday".into(),
            until: "2026-13-01".into(),
            ..AuditParams::default()
        }
        .filter(10)
        .expect_err("not times");
        assert_eq!(bad.names(), ["since", "until"]);
        let text = bad.to_string();
        assert!(
            text.starts_with("since: `yesterday` is not a time: use")
                && text.contains("; until: `2026-13-01` is not a time: use"),
            "{text}"
        );
        let one = AuditParams {
            until: "garbage".into(),
            ..AuditParams::default()
        }
        .filter(10)
        .expect_err("not a time");
        assert_eq!(one.names(), ["until"]);
    }
}
