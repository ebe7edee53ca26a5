//! Running: an approved action prepared (a fresh policy check, the run
//! window, the snapshot before), admitted by the executor, run once, and
//! its result stored with the final state; and what the store keeps of a
//! run.

use std::time::{Duration, SystemTime};

use jarvis_core::{ActionId, ActionKind, ActionState, Decision, HostName, Risk, person};
use jarvis_exec::protocol::{Ending, Refusal};
use jarvis_exec::snapshot::{RestoreReport, SnapshotPlan, SnapshotRequest};
use jarvis_exec::{Admission, ExecError, Execution, HostSpec, Job, Output, Ticket};
use jarvis_store::{
    ActionRecord, CapturedOutput, Judged, NewEvent, RunEnding, RunRecord, StoreError,
};
use serde_json::json;

use super::Gateway;
use super::error::GatewayError;
use super::kernel::KernelStanding;
use super::propose::{Assessment, action_edit};

/// An approved action checked and ready to ask the executor for.
struct Prepared {
    action: ActionRecord,
    host: HostName,
    spec: HostSpec,
    job: Job,
    plan: SnapshotPlan,
    kernel: KernelStanding,
}

/// An action [`Gateway::start_proposed`] let through the limits that answer
/// at once; [`Gateway::run_started`] runs it.
pub struct Started {
    prepared: Prepared,
    ticket: Ticket,
}

impl Started {
    /// The action.
    pub fn id(&self) -> ActionId {
        self.prepared.action.id
    }
}

/// A time the store wrote, or `None` if it cannot be read.
pub(super) fn stored_time(t: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// A wait in whole seconds, rounded up: what `Retry-After` and the
/// refusal's words say.
pub fn whole_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// When a v7 id was made.
pub(crate) fn time_of(id: ActionId) -> SystemTime {
    let (secs, nanos) = id
        .as_uuid()
        .get_timestamp()
        .map(|t| t.to_unix())
        .unwrap_or((0, 0));
    std::time::UNIX_EPOCH + Duration::new(secs, nanos)
}

fn captured(data: Vec<u8>, s: jarvis_exec::protocol::StreamSummary) -> CapturedOutput {
    CapturedOutput {
        truncated: s.truncated || (data.len() as u64) < s.bytes,
        data,
        bytes: s.bytes,
        sha256: s.sha256,
    }
}

fn run_record(
    started_at: String,
    result: Result<Execution, ExecError>,
) -> (ActionState, RunRecord) {
    let finished_at = jarvis_store::now();
    match result {
        Ok(e) => {
            let o = e.outcome;
            let to = match (o.ending, o.exit_code) {
                (Ending::Exited, Some(0)) => ActionState::Succeeded,
                (Ending::TimedOut, _) => ActionState::TimedOut,
                (Ending::Exited, _) | (Ending::Signalled, _) => ActionState::Failed,
            };
            let ending = run_ending(o.ending).as_str();
            let error = (o.ending == Ending::TimedOut).then(|| {
                format!(
                    "timed out after {}s; the guard killed its whole process tree",
                    e.timeout.as_secs()
                )
            });
            (
                to,
                RunRecord {
                    started_at,
                    finished_at,
                    ending: ending.into(),
                    exit_code: o.exit_code,
                    signal: o.signal,
                    duration_ms: o.duration_ms,
                    killed: o.killed,
                    stdout: captured(e.stdout, o.stdout),
                    stderr: captured(e.stderr, o.stderr),
                    error,
                    kernel: o.kernel,
                    host_account: None,
                },
            )
        }
        Err(err) => (ActionState::Failed, failed_run(started_at, &err)),
    }
}

/// The word a run's record keeps for how the guard said it ended.
pub(super) fn run_ending(ending: Ending) -> RunEnding {
    match ending {
        Ending::Exited => RunEnding::Exited,
        Ending::Signalled => RunEnding::Signalled,
        Ending::TimedOut => RunEnding::TimedOut,
    }
}

/// The record of a guard that refused to give its account (one that
/// predates the question, or cannot read its log).
pub(super) fn unavailable_record(refusal: &Refusal) -> RunRecord {
    let now = jarvis_store::now();
    RunRecord {
        started_at: now.clone(),
        finished_at: now,
        ending: RunEnding::Unavailable.as_str().into(),
        exit_code: None,
        signal: None,
        duration_ms: 0,
        killed: 0,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        error: Some(format!(
            "the host's guard could not say what became of it ({}): {}",
            refusal.code,
            refusal.reasons.join("; ")
        )),
        kernel: None,
        host_account: None,
    }
}

/// The run record of an attempt the host refused or never answered.
pub(crate) fn failed_run(started_at: String, err: &ExecError) -> RunRecord {
    let ending = match err {
        ExecError::Refused { .. } => RunEnding::Refused,
        e if e.may_have_run() => RunEnding::Lost,
        // Refused or failed on this side: nothing reached the host.
        ExecError::Transport(t) if t.is_local() => RunEnding::NotSent,
        ExecError::Transport(_) => RunEnding::Unreachable,
        ExecError::UnknownHost(_)
        | ExecError::TimeoutTooLong { .. }
        | ExecError::RateLimited(_)
        | ExecError::Busy { .. }
        | ExecError::CircuitOpen { .. }
        | ExecError::TooLarge { .. } => RunEnding::NotSent,
    };
    RunRecord {
        started_at,
        finished_at: jarvis_store::now(),
        ending: ending.as_str().into(),
        exit_code: None,
        signal: None,
        duration_ms: 0,
        killed: 0,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        error: Some(err.to_string()),
        kernel: None,
        host_account: None,
    }
}

impl Gateway {
    /// Runs an approved action on its host, streaming output to
    /// `on_output`, and records the result. A rollback puts back its
    /// original's snapshot instead ([`Gateway::rollback`]); its report is
    /// the output.
    ///
    /// An approval older than the run window has lapsed: the action becomes
    /// `expired` and nothing runs. The policy is asked again next (it may
    /// have changed since the approval); then the executor admits it (breaker, rate limits,
    /// concurrency). A refusal at either step leaves the action `approved`
    /// and writes an `action.refused` event. Only then does it become
    /// `running`, which happens at most once.
    ///
    /// An action the policy allowed alone goes back to `pending_approval`
    /// instead when its host requires the kernel wall and no longer has
    /// all of it (or can no longer be asked).
    ///
    /// # Errors
    /// [`GatewayError::WrongState`], [`GatewayError::ApprovalLapsed`],
    /// [`GatewayError::NowDenied`], [`GatewayError::PlanChanged`],
    /// [`GatewayError::KernelUnenforced`], [`GatewayError::NotSent`], or a
    /// store error. A failure on the host is not an error: it is the
    /// returned action's state and run.
    pub async fn execute(
        &self,
        id: ActionId,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<ActionRecord, GatewayError> {
        Ok(self.execute_reporting(id, actor, on_output).await?.0)
    }

    /// [`Gateway::execute`], with the host's report when the action is a
    /// rollback that reached the host.
    pub(crate) async fn execute_reporting(
        &self,
        id: ActionId,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<(ActionRecord, Option<RestoreReport>), GatewayError> {
        let action = self.store.action(id).await?;
        if action.state != ActionState::Approved {
            return Err(GatewayError::WrongState {
                id,
                state: action.state,
                wanted: "run",
            });
        }
        // What runs is what was proposed and approved: fields changed in
        // the database since are refused (and the refusal audited).
        self.store.check_commitment(&action).await?;
        self.check_run_window(&action).await?;
        if action.kind == ActionKind::Rollback {
            let done = self.run_rollback(&action, actor, on_output).await?;
            return Ok((done.rollback, done.report));
        }
        let prepared = self.prepare(action).await?;
        let admission = match self.executor.admit(&prepared.job).await {
            Ok(a) => a,
            Err(source) => {
                self.refused(&prepared.action, source.code(), &source.to_string())
                    .await?;
                return Err(GatewayError::NotSent { id, source });
            }
        };
        Ok((
            self.run_admitted(prepared, admission, actor, on_output)
                .await?,
            None,
        ))
    }

    /// The first start of an action the policy let run alone, made as it is
    /// proposed (the API and conversations call it right after
    /// [`Gateway::propose`]): every check [`Gateway::execute`] makes before
    /// sending, and the limits that answer at once (the breaker, the rate
    /// limits; [`Executor::admit_now`]). Then [`Gateway::run_started`]
    /// waits for a slot on the host and runs it.
    ///
    /// A host limit that refuses it here refuses the action (`approved →
    /// denied`, its first reason saying which limit and when to try
    /// again): nobody approved it, so nothing of value is lost, and an
    /// action refused as it was proposed must not stay behind as a runnable
    /// approval. What refuses only later (no slot on the host within its
    /// queue timeout, while the proposer already has its answer) leaves it
    /// approved, as [`Gateway::execute`] does, for a person to run from its
    /// page until the run window lapses it.
    ///
    /// # Errors
    /// [`GatewayError::NotSent`] when a host limit refused it (the action
    /// is `denied` then; [`ExecError::retry_after`] says for how long), or
    /// as [`Gateway::execute`].
    pub async fn start_proposed(&self, id: ActionId) -> Result<Started, GatewayError> {
        let action = self.store.action(id).await?;
        if action.state != ActionState::Approved || action.kind == ActionKind::Rollback {
            return Err(GatewayError::WrongState {
                id,
                state: action.state,
                wanted: "run",
            });
        }
        self.store.check_commitment(&action).await?;
        let prepared = self.prepare(action).await?;
        match self.executor.admit_now(&prepared.job) {
            Ok(ticket) => Ok(Started { prepared, ticket }),
            Err(source) => Err(self.refuse_at_proposal(&prepared.action, source).await?),
        }
    }

    /// Runs an action [`Gateway::start_proposed`] started: waits for its
    /// seat on the host, then as [`Gateway::execute`].
    ///
    /// # Errors
    /// As [`Gateway::execute`].
    pub async fn run_started(
        &self,
        started: Started,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<ActionRecord, GatewayError> {
        let Started { prepared, ticket } = started;
        let admission = match self.executor.seat(ticket).await {
            Ok(a) => a,
            Err(source) => {
                self.refused(&prepared.action, source.code(), &source.to_string())
                    .await?;
                return Err(GatewayError::NotSent {
                    id: prepared.action.id,
                    source,
                });
            }
        };
        self.run_admitted(prepared, admission, actor, on_output)
            .await
    }

    /// Refuses an action a host limit refused at its first start: `approved
    /// → denied`, the policy's decision kept (it did allow it), the limit
    /// and the wait first among the reasons. Someone who moved it first
    /// wins; then only the refusal is returned.
    async fn refuse_at_proposal(
        &self,
        action: &ActionRecord,
        source: ExecError,
    ) -> Result<GatewayError, GatewayError> {
        let wait = whole_secs(source.retry_after().unwrap_or_default());
        let why = format!("refused when proposed: {source}; propose it again in {wait}s or later");
        let mut reasons = vec![why];
        reasons.extend(action.reasons.iter().cloned());
        let judged = Judged {
            decision: action.decision.unwrap_or(Decision::Allow),
            risk: action.risk.unwrap_or(Risk::MAX),
            reasons,
        };
        match self
            .store
            .transition(
                action.id,
                ActionState::Approved,
                ActionState::Denied,
                "gateway",
                Some(&judged),
                json!({
                    "code": source.code(),
                    "reason": source.to_string(),
                    "retry_after_secs": wait,
                    "refused": "at-proposal",
                }),
            )
            .await
        {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(GatewayError::NotSent {
            id: action.id,
            source,
        })
    }

    /// Everything [`Gateway::execute`] checks of an approved command or
    /// edit before it asks the executor: the policy as it is now, the plan
    /// the approval bound to, the kernel wall an unattended action relied
    /// on; then the job to send.
    async fn prepare(&self, action: ActionRecord) -> Result<Prepared, GatewayError> {
        let id = action.id;
        let host = action
            .host
            .clone()
            .ok_or_else(|| GatewayError::UnknownHost(String::new()))?;
        let spec = self
            .config
            .host(&host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        let edit = action_edit(&action);
        let Assessment {
            judgement: now,
            plan,
            ..
        } = self.assess(&spec, &action.command, action.cwd.as_deref(), edit.as_ref());
        if now.decision == Decision::Deny {
            self.refused(&action, "policy-now-denies", &now.reasons.join("; "))
                .await?;
            return Err(GatewayError::NowDenied {
                id,
                reasons: now.reasons,
            });
        }
        // An approval binds to the snapshot plan it showed.
        if action.plan.as_ref() != Some(&plan) {
            let summary = plan.summary();
            self.store
                .replan(
                    id,
                    &plan,
                    "gateway",
                    "the snapshot plan changed since approval",
                )
                .await?;
            return Err(GatewayError::PlanChanged { id, now: summary });
        }
        // The policy let this run without a person because the host's
        // kernel would hold it to the judgement; if the host lost that wall
        // since (a new kernel, a forced command with `--kernel off`), a
        // person decides after all.
        let unattended = action.decision == Some(Decision::Allow);
        let kernel = self
            .kernel_for(&host, action.decision.unwrap_or(Decision::Approve))
            .await;
        if unattended && !kernel.unattended() {
            let why = kernel.reason().unwrap_or_default();
            let mut reasons = vec![why.clone()];
            reasons.extend(now.reasons);
            self.store
                .transition(
                    id,
                    ActionState::Approved,
                    ActionState::PendingApproval,
                    "gateway",
                    Some(&Judged {
                        decision: Decision::Approve,
                        risk: now.risk,
                        reasons,
                    }),
                    json!({ "reason": why, "kernel": kernel.audit() }),
                )
                .await?;
            return Err(GatewayError::KernelUnenforced {
                id,
                host,
                level: kernel.level(),
            });
        }
        let job = Job {
            action_id: id,
            host: host.clone(),
            // Limits per requester count the person who answers for the
            // action: one person's conversations and tokens share theirs.
            requester: person(&action.accountable).to_owned(),
            command: action.command.clone(),
            cwd: action.cwd.clone(),
            timeout: action
                .timeout_secs
                .map(|s| Duration::from_secs(u64::from(s))),
            edit,
            // A person saw it in the queue; the kernel's grant widens to
            // what that person approved.
            approved: action.decision == Some(Decision::Approve),
            scope: plan.write_scope(),
        };
        Ok(Prepared {
            action,
            host,
            spec,
            job,
            plan,
            kernel,
        })
    }

    /// Runs a prepared action its admission lets through: the run window
    /// again, the snapshot, `running`, the run and its record.
    async fn run_admitted(
        &self,
        prepared: Prepared,
        admission: Admission,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<ActionRecord, GatewayError> {
        let Prepared {
            action,
            host,
            spec,
            job,
            plan,
            kernel,
        } = prepared;
        let id = action.id;
        let _in_flight = self.run_in_flight();
        // Admission may have waited for a slot on the host.
        self.check_run_window(&action).await?;
        if !plan.is_empty() {
            self.snapshot_before(&spec, &action, &plan, &admission)
                .await?;
        }
        match self
            .store
            .transition(
                id,
                ActionState::Approved,
                ActionState::Running,
                actor,
                None,
                json!({
                    "timeout_secs": admission.timeout().as_secs(),
                    "kernel": kernel.audit(),
                }),
            )
            .await
        {
            Ok(_) => {}
            // The sweeper (here or in another process) expired it while
            // its snapshot was taken.
            Err(StoreError::Conflict {
                found: ActionState::Expired,
                ..
            }) => {
                return Err(GatewayError::ApprovalLapsed {
                    id,
                    window: self.config.run_window,
                });
            }
            Err(e) => return Err(e.into()),
        }
        let started_at = jarvis_store::now();
        let result = self.executor.run(admission, &job, on_output).await;
        // The guard's own account of the kernel wall the run had is kept
        // with the run and in its audit event, on every host.
        let (to, run) = run_record(started_at, result);
        let record = self.store.finish_run(id, to, "gateway", &run).await?;
        if run.ending == RunEnding::Lost.as_str() {
            // The host's guard knows how it ended; if the link is still
            // down, a later successful host check asks again.
            self.settle_accounts_quietly(&host).await;
        }
        if !plan.is_empty() {
            self.snapshot_after(&spec, id, &plan).await?;
            self.prune(&host, "gateway").await?;
        }
        Ok(record)
    }

    /// Takes and records the snapshot an approved action needs before it
    /// runs. A failure leaves the action approved with an `action.refused`
    /// event: nothing ran.
    async fn snapshot_before(
        &self,
        spec: &HostSpec,
        action: &ActionRecord,
        plan: &SnapshotPlan,
        admission: &Admission,
    ) -> Result<(), GatewayError> {
        let id = action.id;
        if self.store.snapshot(id).await?.is_some() {
            self.refused(
                action,
                "snapshot-exists",
                "an earlier attempt already took a snapshot",
            )
            .await?;
            return Err(GatewayError::SnapshotExists { id });
        }
        let taken = self
            .executor
            .snapshot_admitted(
                admission,
                SnapshotRequest {
                    action_id: id,
                    plan: plan.clone(),
                    keep: true,
                    volume_image: spec.snapshots.volume_image.clone(),
                },
            )
            .await;
        match taken {
            Ok(snapshot) => {
                let summary = snapshot.outline();
                self.store
                    .record_snapshot(id, spec.name.as_str(), &json!(snapshot), summary)
                    .await?;
                Ok(())
            }
            Err(source) => {
                self.refused(action, "snapshot-failed", &source.to_string())
                    .await?;
                Err(GatewayError::SnapshotFailed { id, source })
            }
        }
    }

    /// Records what the action left, so a rollback can tell later changes
    /// from the action's own. A failure is recorded, not raised: the run is
    /// over, and a rollback then needs `--force`.
    async fn snapshot_after(
        &self,
        spec: &HostSpec,
        id: ActionId,
        plan: &SnapshotPlan,
    ) -> Result<(), GatewayError> {
        let after = self
            .executor
            .snapshot(
                &spec.name,
                SnapshotRequest {
                    action_id: id,
                    plan: plan.clone(),
                    keep: false,
                    volume_image: spec.snapshots.volume_image.clone(),
                },
            )
            .await;
        match after {
            Ok(after) => Ok(self.store.record_after(id, &json!(after)).await?),
            Err(e) => {
                self.store
                    .append(NewEvent {
                        actor: "gateway".into(),
                        action_id: Some(id),
                        host: Some(spec.name.to_string()),
                        kind: "snapshot.after_failed".into(),
                        payload: json!({ "error": e.to_string() }),
                    })
                    .await?;
                Ok(())
            }
        }
    }

    pub(crate) async fn refused(
        &self,
        action: &ActionRecord,
        code: &str,
        reason: &str,
    ) -> Result<(), GatewayError> {
        self.store
            .append(NewEvent {
                actor: "gateway".into(),
                action_id: Some(action.id),
                host: action.host.as_ref().map(HostName::to_string),
                kind: "action.refused".into(),
                payload: json!({ "code": code, "reason": reason, "state": action.state.as_str() }),
            })
            .await?;
        Ok(())
    }
}
