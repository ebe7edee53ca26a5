//! Live updates: the store's committed changes and the output of running
//! actions, fanned out to browsers over server-sent events, and the
//! reactions to changes (notifications, metrics). Approved actions are
//! started in `runs`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use jarvis_core::{ActionId, ActionState, ConversationId, Decision};
use jarvis_store::{ActionChange, ChangeKind};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::limits;
use super::live_event::{Interest, LiveEvent};
use super::session::WebUser;
use super::state::{AppState, Shared};
use crate::notify::{Notice, NoticeKind};
use crate::pipeline::time_of;

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(default)]
    action: Option<ActionId>,
    #[serde(default)]
    conversation: Option<ConversationId>,
}

/// `GET /events`: the live stream, optionally about one action, and with
/// `?conversation=ID` the model's text in that conversation as it is
/// written.
///
/// A conversation's text goes to whoever may read its page, which is
/// every signed-in caller (`chat::show` asks no more than `WebUser`
/// either); should conversations become private, the same rule belongs
/// here. Streams are never timed out, so they are bounded in number
/// instead (`max_streams`): beyond it the stream is refused with 503, and
/// a page without one still works, only without live updates.
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
    let interest = Interest {
        action: q.action,
        conversation: q.conversation,
    };
    let stream = BroadcastStream::new(state.live.subscribe()).filter_map(move |item| {
        // The stream's place is given back when the stream is dropped
        // (the browser went away, or the server stops).
        let _place = &place;
        // A browser that fell behind just misses chunks; the page reloads
        // the stored record when the action changes state, and a turn's
        // whole text follows its pieces.
        let event = item.ok()?;
        if !event.concerns(interest) {
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
        ActionState::Proposed
        | ActionState::Denied
        | ActionState::Rejected
        | ActionState::Expired
        | ActionState::Running
        | ActionState::Succeeded
        | ActionState::Interrupted
        | ActionState::RolledBack => return Ok(()),
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
        host: action.host.as_ref().map(ToString::to_string),
        command: Some(action.command.clone()),
        risk: action.risk,
        requester: Some(action.requester.clone()),
        summary,
    });
    Ok(())
}
