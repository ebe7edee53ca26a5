//! The approval queue, and its list alone for live refresh.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use jarvis_core::ActionState;

use crate::server::error::AppError;
use crate::server::lookup::{approvers, needed, story_of};
use crate::server::page::{chrome, html, page};
use crate::server::session::WebUser;
use crate::server::state::{AppState, Shared, now_unix, unix};
use crate::server::views::{QueueItem, QueueItems, QueuePage, Section};

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
