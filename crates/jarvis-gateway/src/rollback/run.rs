//! Running an approved rollback: checked again, admitted like any run, the
//! host's report recorded as the rollback's run and output.

use jarvis_core::{ActionState, Risk, person};
use jarvis_exec::snapshot::RestoreRequest;
use jarvis_exec::{Job, Output};
use jarvis_store::{ActionRecord, CapturedOutput, RunEnding, RunRecord, StoreError};
use serde_json::json;
use sha2::Digest as _;

use super::restorable::Restorable;
use super::words::{describe, stopped_by_changes, stopped_why};
use super::{RolledBack, rollback_command, rollback_forced};
use crate::pipeline::{Gateway, GatewayError, failed_run};

impl Gateway {
    /// Runs approved rollback `action` for [`Gateway::execute`], which has
    /// checked its state, commitment and run window: checks again that its
    /// original can be rolled back (another rollback may have finished, or
    /// retention pruned the snapshot, while it waited), admits it like any
    /// run, and sends the host the kept snapshot and the after-state. The
    /// host's report becomes the rollback's run and its output; success
    /// moves the original to `rolled_back` in the same transaction. A
    /// refusal by a limit before anything is sent leaves the rollback
    /// approved, with an `action.refused` event; a target changed while it
    /// waited (not forced) refuses it for good: `approved → denied`, never
    /// `running`.
    pub(crate) async fn run_rollback(
        &self,
        action: &ActionRecord,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<RolledBack, GatewayError> {
        let rb = action.id;
        let _in_flight = self.run_in_flight();
        // The command is what the proposal committed to and the approvers
        // saw; the action it names must be the one put back.
        let id = action
            .rollback_of
            .filter(|&id| action.command == rollback_command(id, rollback_forced(action)))
            .ok_or_else(|| {
                GatewayError::Store(StoreError::Corrupt(format!(
                    "rollback {rb} (`{}`) does not name the action it puts back",
                    action.command
                )))
            })?;
        let original = self.store().action(id).await?;
        let restorable = match self.restorable(&original).await {
            Ok(r) => r,
            Err(e) => {
                self.refused(action, "not-restorable", &e.to_string())
                    .await?;
                return Err(e);
            }
        };
        if let Some(other) = self
            .store()
            .rollbacks_of(id)
            .await?
            .into_iter()
            .find(|r| r.id != rb && r.state == ActionState::Running)
        {
            let why = format!("rollback {} of it is running", other.id);
            self.refused(action, "rollback-running", &why).await?;
            return Err(GatewayError::NoRollback { id, why });
        }
        let job = Job {
            action_id: rb,
            host: restorable.host.clone(),
            requester: person(&action.accountable).to_owned(),
            command: action.command.clone(),
            cwd: None,
            timeout: None,
            edit: None,
            approved: true,
            scope: Vec::new(),
        };
        let admission = match self.executor().admit(&job).await {
            Ok(a) => a,
            Err(source) => {
                self.refused(action, source.code(), &source.to_string())
                    .await?;
                return Err(GatewayError::NotSent { id: rb, source });
            }
        };
        // Targets may have changed while it waited for approval: checked
        // again, so a rollback that would stop is refused before it is
        // recorded as running (and so never as failed).
        if !rollback_forced(action)
            && let Some(report) = self
                .check_restore(rb, &restorable, Some(&admission))
                .await
                .filter(stopped_by_changes)
        {
            drop(admission);
            let risk = action.risk.unwrap_or(Risk::MAX);
            let rollback = self
                .stop_rollback(rb, ActionState::Approved, id, risk, &report)
                .await?;
            on_output(Output::Stdout(describe(&report).as_bytes()));
            return Ok(RolledBack {
                rollback,
                report: Some(report),
            });
        }
        let Restorable {
            host,
            spec,
            target,
            after,
        } = restorable;
        self.store()
            .transition(
                rb,
                ActionState::Approved,
                ActionState::Running,
                actor,
                None,
                json!({ "rollback_of": id.to_string() }),
            )
            .await?;
        let started_at = jarvis_store::now();
        let clock = std::time::Instant::now();
        let result = self
            .executor()
            .restore_admitted(
                &admission,
                RestoreRequest {
                    action_id: rb,
                    target,
                    after,
                    force: rollback_forced(action),
                    check_only: false,
                    volume_image: spec.snapshots.volume_image.clone(),
                },
            )
            .await;
        drop(admission);
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (to, run, report) = match result {
            Ok(report) => {
                if let Some(before) = &report.before {
                    // The state the rollback replaced, so it can be undone.
                    self.store()
                        .record_snapshot(
                            rb,
                            host.as_str(),
                            &json!(before),
                            json!({ "rollback_of": id.to_string(), "duration_ms": before.duration_ms }),
                        )
                        .await?;
                    if let Some(after) = &report.after {
                        self.store().record_after(rb, &json!(after)).await?;
                    }
                }
                let text = describe(&report);
                on_output(Output::Stdout(text.as_bytes()));
                let error = (!report.complete).then(|| stopped_why(&report));
                let to = if report.complete {
                    ActionState::Succeeded
                } else {
                    ActionState::Failed
                };
                let run = RunRecord {
                    started_at,
                    finished_at: jarvis_store::now(),
                    ending: RunEnding::Exited.as_str().into(),
                    exit_code: Some(if report.complete { 0 } else { 1 }),
                    signal: None,
                    duration_ms: report.duration_ms,
                    killed: 0,
                    stdout: output(text.into_bytes()),
                    stderr: output(Vec::new()),
                    error,
                    kernel: None,
                    host_account: None,
                };
                (to, run, Some(report))
            }
            Err(e) => {
                let mut run = failed_run(started_at, &e);
                run.duration_ms = duration_ms;
                (ActionState::Failed, run, None)
            }
        };
        let rollback = self
            .store()
            .finish_rollback(rb, to, &run, id, original.state)
            .await?;
        Ok(RolledBack { rollback, report })
    }
}

fn output(data: Vec<u8>) -> CapturedOutput {
    CapturedOutput {
        bytes: data.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(&data)),
        truncated: false,
        data,
    }
}
