//! The list of actions, and one action's page.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jarvis_core::{ActionId, ActionState};
use jarvis_exec::snapshot::Snapshot;
use jarvis_store::AuditFilter;
use serde::Deserialize;

use crate::rollback::{NOTHING_CHANGED, changed_nothing};
use crate::server::error::AppError;
use crate::server::lookup::{approvers, needed, plan_lines, resolve, story_of};
use crate::server::page::{chrome, html, page};
use crate::server::session::WebUser;
use crate::server::state::{AppState, now_unix, unix};
use crate::server::views::{ActionPage, ActionsPage, Chrome, Section};

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

/// A snapshot in words: each target, and what the action did to it (or
/// that it left it alone), instead of the manifest's JSON.
fn snapshot_words(record: &jarvis_store::SnapshotRecord) -> Vec<String> {
    let parse = |v: &serde_json::Value| serde_json::from_value::<Snapshot>(v.clone()).ok();
    let Some(before) = parse(&record.manifest) else {
        return Vec::new();
    };
    let after = record.after.as_ref().and_then(parse);
    let when = crate::server::views::fmt_time(&record.taken_at);
    crate::rollback::comes_back(&before, after.as_ref(), &when)
        .into_iter()
        .map(|t| match t.changed {
            Some(c) if c.is_empty() => format!("{}: the action left it as it was", t.subject),
            Some(c) => format!("{}: the action changed it ({})", t.subject, c.join("; ")),
            None => t.subject,
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_as_its_targets_and_what_the_action_did() {
        let repo = |head: &str| {
            serde_json::json!({
                "action_id": "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f",
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
}
