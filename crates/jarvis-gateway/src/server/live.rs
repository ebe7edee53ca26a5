//! Live updates: the store's committed changes and the output of running
//! actions, fanned out to browsers over server-sent events, and the
//! reactions to changes (notifications, metrics). Also where approved
//! actions are started, off the request that approved them.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jarvis_core::{ActionId, ActionState, Decision};
use jarvis_exec::{ExecError, Output};
use jarvis_store::{ActionChange, ChangeKind};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::session::WebUser;
use super::{AppState, Shared, limits};
use crate::notify::{Notice, NoticeKind};
use crate::pipeline::{GatewayError, time_of};

/// Something a browser watching the UI should hear about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// An action was created or changed.
    Action(ActionChange),
    /// A chunk of a running action's output.
    Output {
        /// The action.
        id: ActionId,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The chunk, as text.
        text: String,
    },
}

impl LiveEvent {
    fn id(&self) -> ActionId {
        match self {
            LiveEvent::Action(c) => c.id,
            LiveEvent::Output { id, .. } => *id,
        }
    }

    fn to_sse(&self) -> Option<Event> {
        let (name, data) = match self {
            // The state's words too, so a page shows what the server
            // renders without a copy of the table in the script.
            LiveEvent::Action(c) => (
                "action",
                serde_json::to_value(c).and_then(|mut v| {
                    v["label"] = c.state.label().into();
                    serde_json::to_string(&v)
                }),
            ),
            LiveEvent::Output { id, stream, text } => (
                "output",
                serde_json::to_string(
                    &serde_json::json!({ "id": id, "stream": stream, "text": text }),
                ),
            ),
        };
        data.ok().map(|d| Event::default().event(name).data(d))
    }
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    action: Option<ActionId>,
}

/// `GET /events`: the live stream, optionally about one action.
///
/// Streams are never timed out, so they are bounded in number instead
/// (`max_streams`): beyond it the stream is refused with 503, and a page
/// without one still works, only without live updates.
pub(crate) async fn events(
    State(state): State<AppState>,
    WebUser(_caller): WebUser,
    uri: Uri,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Ok(place) = state.streams.clone().try_acquire_owned() else {
        tracing::warn!(
            max_streams = state.settings.connections.max_streams,
            "a live stream was refused: as many are open as may be"
        );
        return limits::unavailable(
            uri.path(),
            format!(
                "As many live streams are open as Jarvis allows ({}, server.max_streams); try again in a few seconds.",
                state.settings.connections.max_streams
            ),
        );
    };
    let mut stopping = state.stopping.subscribe();
    let stream = BroadcastStream::new(state.live.subscribe()).filter_map(move |item| {
        // The stream's place is given back when the stream is dropped
        // (the browser went away, or the server stops).
        let _place = &place;
        // A browser that fell behind just misses chunks; the page reloads
        // the stored record when the action changes state.
        let event = item.ok()?;
        if q.action.is_some_and(|id| id != event.id()) {
            return None;
        }
        event.to_sse().map(Ok::<_, Infallible>)
    });
    let stream = futures_util::StreamExt::take_until(
        stream,
        Box::pin(async move {
            let _ = stopping.wait_for(|s| *s).await;
        }),
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Follows the store's changes: forwards them to browsers, notifies the
/// webhooks and records metrics. Runs until the server stops.
pub(crate) async fn watch_changes(state: AppState, mut changes: broadcast::Receiver<ActionChange>) {
    loop {
        let change = match changes.recv().await {
            Ok(c) => c,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "the change watcher fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let _ = state.live.send(LiveEvent::Action(change.clone()));
        if let Err(e) = react(&state, &change).await {
            tracing::warn!(action = %change.id, error = %e, "could not react to a change");
        }
    }
}

async fn react(state: &Shared, change: &ActionChange) -> Result<(), jarvis_store::StoreError> {
    // Only arrivals in a state: a preview attached or one approval of
    // several counted is a change to an action that stays where it is.
    if change.what != ChangeKind::StateChanged {
        return Ok(());
    }
    let kind = match change.state {
        ActionState::PendingApproval => NoticeKind::ApprovalNeeded,
        ActionState::Failed => NoticeKind::ActionFailed,
        ActionState::TimedOut => NoticeKind::ActionTimedOut,
        ActionState::Approved => {
            let action = state.gw.store().action(change.id).await?;
            if action.decision == Some(Decision::Approve) {
                let waited = std::time::SystemTime::now()
                    .duration_since(time_of(change.id))
                    .unwrap_or_default();
                state.metrics.observe_approval_latency(waited.as_secs_f64());
            }
            return Ok(());
        }
        _ => return Ok(()),
    };
    let action = state.gw.store().action(change.id).await?;
    if kind != NoticeKind::ApprovalNeeded
        && let Some(run) = state.gw.store().run_of(change.id).await?
    {
        state.metrics.observe_execution(
            action.host.as_deref().unwrap_or("-"),
            &run.ending,
            Duration::from_millis(run.duration_ms).as_secs_f64(),
        );
    }
    let summary = match kind {
        // The person who answers for it, when it is not who asked (a
        // conversation, a token), is who an approver needs to know.
        NoticeKind::ApprovalNeeded if action.accountable != action.requester => format!(
            "{} asks, for {}, to run this on {}; it waits for your approval",
            action.requester,
            action.accountable,
            action.host.as_deref().unwrap_or("?")
        ),
        NoticeKind::ApprovalNeeded => format!(
            "{} asks to run this on {}; it waits for your approval",
            action.requester,
            action.host.as_deref().unwrap_or("?")
        ),
        NoticeKind::ActionFailed => format!(
            "the action failed on {}",
            action.host.as_deref().unwrap_or("?")
        ),
        NoticeKind::ActionTimedOut => format!(
            "the action timed out on {}; its process tree was killed",
            action.host.as_deref().unwrap_or("?")
        ),
        NoticeKind::AuditBroken => String::new(),
    };
    state.notifier.notify(Notice {
        kind,
        action_id: Some(action.id),
        host: action.host.clone(),
        command: Some(action.command.clone()),
        risk: action.risk,
        requester: Some(action.requester.clone()),
        summary,
    });
    Ok(())
}

/// Starts an approved action that has not started (a limit refused it, or
/// the server stopped first).
///
/// # Errors
/// [`GatewayError::WrongState`] when it is not `approved`,
/// [`GatewayError::ApprovalLapsed`] (it is expired now), or a store error.
pub(crate) async fn start_approved(
    state: &AppState,
    id: ActionId,
    actor: String,
) -> Result<jarvis_store::ActionRecord, GatewayError> {
    let action = state.gw.store().action(id).await?;
    if action.state != ActionState::Approved {
        return Err(GatewayError::WrongState {
            id,
            state: action.state,
            wanted: "run",
        });
    }
    state.gw.check_run_window(&action).await?;
    spawn_execute(state.clone(), id, actor);
    Ok(action)
}

/// Runs an approved action in the background, streaming its output to
/// browsers. The pipeline records everything; this only reports.
pub(crate) fn spawn_execute(state: AppState, id: ActionId, actor: String) {
    spawn_run(state, id, actor, None);
}

/// Runs in the background an action just proposed that
/// [`crate::Gateway::start_proposed`] started.
pub(crate) fn spawn_started(state: AppState, started: crate::Started, actor: String) {
    spawn_run(state, started.id(), actor, Some(started));
}

fn spawn_run(state: AppState, id: ActionId, actor: String, started: Option<crate::Started>) {
    // Marked before the task starts, so the page the approver is sent to
    // next already knows it is on its way.
    state
        .starting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(id);
    tokio::spawn(async move {
        /// Unmarks the action however the run ends, a panic included.
        struct Started(AppState, ActionId);
        impl Drop for Started {
            fn drop(&mut self) {
                self.0
                    .starting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&self.1);
            }
        }
        let _started = Started(state.clone(), id);
        let live = state.live.clone();
        let mut forward = |o: Output<'_>| {
            let (stream, bytes) = match o {
                Output::Stdout(b) => ("stdout", b),
                Output::Stderr(b) => ("stderr", b),
            };
            let _ = live.send(LiveEvent::Output {
                id,
                stream,
                text: String::from_utf8_lossy(bytes).into_owned(),
            });
        };
        let done = match started {
            Some(started) => state.gw.run_started(started, &actor, &mut forward).await,
            None => state.gw.execute(id, &actor, &mut forward).await,
        };
        match done {
            Ok(done) => tracing::info!(action = %id, state = %done.state, "action finished"),
            Err(GatewayError::NotSent {
                source: ExecError::RateLimited(limited),
                ..
            }) => {
                let host = state
                    .gw
                    .store()
                    .action(id)
                    .await
                    .ok()
                    .and_then(|a| a.host)
                    .unwrap_or_default();
                state
                    .metrics
                    .rate_limit_refused(&host, &limited.scope.to_string());
                tracing::warn!(action = %id, scope = %limited.scope, "rate limited; the action stays approved");
            }
            Err(e) => tracing::warn!(action = %id, error = %e, "the action did not run"),
        }
    });
}
