//! Changes to actions, announced to listeners (the web server's live
//! views and notifications) as the audit log records them.
//!
//! The log is the one ordered record every writer appends to, so following
//! it shows a listener what any process committed: the server's own work,
//! `jarvis approve` in a terminal beside it, another replica on the same
//! PostgreSQL database. One task per store reads the events after the last
//! one it saw, a few times a second, while anyone listens.

use std::time::Duration;

use jarvis_core::{ActionId, ActionState};
use serde::Serialize;
use sqlx::Row;
use tokio::sync::broadcast;

use crate::{Store, StoreError};

/// How often the log is read for new events.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// Events read at most per look; the rest wait for the next.
const BATCH: i64 = 1000;

/// A committed change to an action, announced to [`Store::changes`]
/// listeners so a live view can refresh what it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(description = "A committed change to an action.")]
pub struct ActionChange {
    /// The action.
    pub id: ActionId,
    /// Its state after the change.
    pub state: ActionState,
    /// The host it is for.
    pub host: Option<String>,
    /// What changed.
    pub what: ChangeKind,
    /// The audit event that recorded it.
    pub seq: i64,
}

/// What an [`ActionChange`] was, so a listener can tell an action arriving
/// in a state from something added to it while it stays there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(
    description = "What changed: it was proposed (`created`), moved to `state` (`state_changed`), had one approval of several counted (`approval_recorded`), or had a preview attached (`preview`)."
)]
pub enum ChangeKind {
    /// It was proposed.
    Created,
    /// It moved to `state`.
    StateChanged,
    /// An approval was counted and it still waits for more.
    ApprovalRecorded,
    /// A preview was attached.
    Preview,
}

impl Store {
    /// Changes to actions committed from now on, by this process or any
    /// other on the same database: one per creation, state change, approval
    /// counted or preview attached, in the audit log's order, within about
    /// [`FOLLOW_EVERY`] of the commit. A listener that falls more than 1024
    /// changes behind gets [`broadcast::error::RecvError::Lagged`] and
    /// should reload what it shows.
    ///
    /// # Errors
    /// A database error reading where the log ends.
    pub async fn changes(&self) -> Result<broadcast::Receiver<ActionChange>, StoreError> {
        let listener = self.changes.subscribe();
        let mut follower = self.follower.lock().await;
        if follower.as_ref().is_none_or(|task| task.is_finished()) {
            // From the head as it is now: nothing committed after this
            // call returns is missed.
            let from = self.head_seq().await?;
            *follower = Some(tokio::spawn(follow(self.clone(), from)));
        }
        Ok(listener)
    }

    /// The action events after `after`, oldest first, and the last seq
    /// looked at (events of other kinds move it on too).
    async fn changes_after(&self, after: i64) -> Result<(Vec<ActionChange>, i64), StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, action_id, host FROM audit_events \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading new audit events"))?;
        let mut last = after;
        let mut changes = Vec::new();
        for row in rows {
            let bad = |e: sqlx::Error| StoreError::Corrupt(format!("audit event: {e}"));
            let seq: i64 = row.try_get("seq").map_err(bad)?;
            last = seq;
            let kind: String = row.try_get("kind").map_err(bad)?;
            let Some(id) = row
                .try_get::<Option<String>, _>("action_id")
                .map_err(bad)?
                .and_then(|id| id.parse::<ActionId>().ok())
            else {
                continue;
            };
            let host: Option<String> = row.try_get("host").map_err(bad)?;
            let Some(what) = kind.strip_prefix("action.") else {
                continue;
            };
            let (state, what) = match what {
                "proposed" => (ActionState::Proposed, ChangeKind::Created),
                "approval_recorded" => (ActionState::PendingApproval, ChangeKind::ApprovalRecorded),
                // Its event says nothing of the state; the record does. One
                // that cannot be read is skipped, not retried for ever.
                "previewed" => match self.action(id).await {
                    Ok(a) => (a.state, ChangeKind::Preview),
                    Err(_) => continue,
                },
                other => match other.parse::<ActionState>() {
                    Ok(state) => (state, ChangeKind::StateChanged),
                    // `action.refused` and the like change nothing.
                    Err(_) => continue,
                },
            };
            let host = match host {
                Some(h) => Some(h),
                None => match self.action(id).await {
                    Ok(a) => a.host.as_ref().map(jarvis_core::HostName::to_string),
                    Err(_) => None,
                },
            };
            changes.push(ActionChange {
                id,
                state,
                host,
                what,
                seq,
            });
        }
        Ok((changes, last))
    }
}

/// Announces each action change the log records after `last`, until
/// nobody listens or the store is closed. A failed read is tried again on
/// the next tick from the same place, so nothing is skipped; it is logged
/// once when reading starts to fail and once when it works again.
async fn follow(store: Store, mut last: i64) {
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        if store.pool().is_closed() || store.changes.receiver_count() == 0 {
            // Decided under the lock `changes()` takes, so a listener that
            // arrives now either keeps this task or starts another.
            let mut slot = store.follower.lock().await;
            if store.pool().is_closed() || store.changes.receiver_count() == 0 {
                *slot = None;
                return;
            }
        }
        loop {
            match store.changes_after(last).await {
                Ok((changes, seen)) => {
                    if failing {
                        tracing::info!(seq = seen, "reading the audit log for changes again");
                        failing = false;
                    }
                    // A full batch means more are waiting: read on.
                    let full = seen - last >= BATCH;
                    last = seen;
                    for change in changes {
                        let _ = store.changes.send(change);
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, after = last, "cannot read the audit log for changes; live updates and notifications wait");
                        failing = true;
                    }
                    break;
                }
            }
        }
    }
}
