//! Where approved actions are started: off the request that approved them,
//! on a task of their own, their output fanned out to browsers as it
//! comes.

use jarvis_core::{ActionId, ActionState};
use jarvis_exec::{ExecError, Output};

use super::live_event::LiveEvent;
use super::state::AppState;
use crate::pipeline::GatewayError;

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
                    .map(|h| h.to_string())
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
