//! Previews for approvers, rollbacks, and snapshot retention: the parts of
//! the pipeline that read or use what snapshots keep.

use std::time::Duration;

use jarvis_core::{
    ActionId, ActionKind, ActionState, ApprovalRule, Decision, HostName, Risk, RollbackApproval,
    person,
};
use jarvis_exec::snapshot::{
    DropRequest, PreviewKind, PreviewReport, PreviewRequest, RestoreReport, RestoreRequest,
    Snapshot, SnapshotPlan, TargetOutcome,
};
use jarvis_exec::{ExecError, HostSpec, Job, Output};
use jarvis_policy::Request;
use jarvis_policy::scope::Live;
use jarvis_store::{
    ActionRecord, CapturedOutput, Judged, NewAction, NewEvent, RunRecord, StoreError,
};
use serde_json::json;
use sha2::Digest as _;

use crate::pipeline::{Gateway, GatewayError, action_edit, failed_run, time_of};

/// Output and diff of a preview kept for approvers.
const PREVIEW_CAP: u64 = 256 * 1024;

/// A stored preview as text: its kind, summary lines, diff and output.
pub fn preview_text(preview: &serde_json::Value) -> String {
    let Ok(p) = serde_json::from_value::<PreviewReport>(preview.clone()) else {
        return String::new();
    };
    let mut out = format!("preview ({}):\n", p.kind);
    for line in &p.summary {
        out.push_str(&format!("  {line}\n"));
    }
    if !p.diff.is_empty() {
        out.push_str(&p.diff);
        if !p.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    if !p.output.is_empty() {
        out.push_str(&format!(
            "--- output in the copy (exit {}) ---\n{}",
            p.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            p.output
        ));
        if !p.output.ends_with('\n') {
            out.push('\n');
        }
    }
    if p.truncated {
        out.push_str("[… preview truncated]\n");
    }
    out
}

/// What asking for a rollback did.
#[derive(Debug, Clone)]
pub struct RolledBack {
    /// The rollback action: `succeeded` or `failed` when it ran at once,
    /// `pending_approval` when it waits for approvers.
    pub rollback: ActionRecord,
    /// The host's report, when the host was reached.
    pub report: Option<RestoreReport>,
}

/// What a rollback puts back, and where.
struct Restorable {
    host: HostName,
    spec: HostSpec,
    target: Snapshot,
    after: Option<Snapshot>,
}

/// The command line a rollback is recorded with; the only place that
/// writes it, so [`rollback_forced`] can read it back.
fn rollback_command(original: ActionId, force: bool) -> String {
    format!(
        "rollback {original}{}",
        if force { FORCE_SUFFIX } else { "" }
    )
}

const FORCE_SUFFIX: &str = " --force";

/// Whether a rollback action restores targets changed since its original.
pub fn rollback_forced(rollback: &ActionRecord) -> bool {
    rollback.kind == ActionKind::Rollback && rollback.command.ends_with(FORCE_SUFFIX)
}

impl Gateway {
    /// Makes the preview an approver sees and attaches it to the action:
    /// a live one in a throwaway copy where the scope allows (`live`, from
    /// the proposal's assessment), else the policy's static plan. A live
    /// preview that could not be had (refused by a limit or by the host, or
    /// failed on the way) falls back to the plan and says why.
    pub(crate) async fn attach_preview(
        &self,
        spec: &HostSpec,
        action: &ActionRecord,
        plan: &SnapshotPlan,
        live: Option<Live>,
    ) -> Result<(), GatewayError> {
        let live = match action_edit(action)? {
            Some(edit) => Some(PreviewKind::Edit { edit }),
            None => match live {
                Some(Live::Git { repo }) => Some(PreviewKind::Git {
                    repo,
                    command: action.command.clone(),
                    cwd: action.cwd.clone(),
                }),
                Some(Live::Docker {
                    container,
                    argv,
                    container_arg,
                }) => Some(PreviewKind::Docker {
                    container,
                    argv,
                    container_arg,
                }),
                None => None,
            },
        };
        let mut report = match live {
            Some(kind) => match self.live_preview(spec, action, kind).await? {
                Ok(r) => r,
                Err(why) => {
                    let mut r = self.static_preview(action);
                    r.summary.insert(0, why);
                    r
                }
            },
            None => self.static_preview(action),
        };
        report.summary.push(plan.summary());
        let summary = json!({
            "kind": report.kind,
            "summary": report.summary,
            "diff_bytes": report.diff.len(),
            "diff_sha256": hex::encode(sha2::Sha256::digest(report.diff.as_bytes())),
            "exit_code": report.exit_code,
            "truncated": report.truncated,
        });
        self.store()
            .set_preview(action.id, &json!(report), summary)
            .await?;
        Ok(())
    }

    /// A preview in a throwaway copy on the host, or why there is none.
    ///
    /// A preview acts on the host before anyone approved the action, so it
    /// is admitted like a run (rate limits, breaker, the host's concurrency
    /// slot, as the action's requester), and `action.preview_started` is in
    /// the audit log before the request is sent. A refusal by a limit is
    /// not the proposal's failure: the action waits with the plan and the
    /// reason.
    async fn live_preview(
        &self,
        spec: &HostSpec,
        action: &ActionRecord,
        kind: PreviewKind,
    ) -> Result<Result<PreviewReport, String>, GatewayError> {
        let job = Job {
            action_id: action.id.to_string(),
            host: spec.name.clone(),
            requester: person(&action.accountable).to_owned(),
            command: action.command.clone(),
            cwd: action.cwd.clone(),
            timeout: Some(spec.limits.default_timeout),
            edit: None,
            approved: false,
            scope: Vec::new(),
        };
        let admission = match self.executor().admit(&job).await {
            Ok(a) => a,
            Err(e) => return Ok(Err(format!("no live preview: {e}"))),
        };
        let (what, target) = match &kind {
            PreviewKind::Git { repo, .. } => ("git", repo.clone()),
            PreviewKind::Docker { container, .. } => ("docker", container.clone()),
            PreviewKind::Edit { edit } => ("edit", edit.path.clone()),
        };
        self.store()
            .append(NewEvent {
                actor: "gateway".into(),
                action_id: Some(action.id),
                host: Some(spec.name.to_string()),
                kind: "action.preview_started".into(),
                payload: json!({
                    "kind": what,
                    "target": target,
                    "timeout_ms": u64::try_from(admission.timeout().as_millis()).unwrap_or(u64::MAX),
                }),
            })
            .await?;
        let request = PreviewRequest {
            action_id: action.id.to_string(),
            preview: kind,
            timeout_ms: u64::try_from(admission.timeout().as_millis()).unwrap_or(u64::MAX),
            output_cap: PREVIEW_CAP.min(spec.limits.output_cap),
        };
        Ok(match self.executor().preview(admission, request).await {
            Ok(r) => Ok(r),
            Err(ExecError::Refused { refusal, .. }) => Err(format!(
                "no live preview: the host refused it ({}): {}",
                refusal.code,
                refusal.reasons.join("; ")
            )),
            Err(e) => Err(format!("live preview failed, so the plan is shown: {e}")),
        })
    }

    /// The policy's plan as a preview: each program the line runs and the
    /// tools' own dry-run forms.
    fn static_preview(&self, action: &ActionRecord) -> PreviewReport {
        let explained = self.policy().explain(&Request {
            command: action.command.clone(),
            host: action.host.as_deref().and_then(|h| HostName::parse(h).ok()),
            cwd: action.cwd.clone(),
        });
        let mut summary: Vec<String> = explained
            .steps
            .iter()
            .map(|s| {
                format!(
                    "runs {} ({}, risk {})",
                    jarvis_core::text::code(&s.command),
                    s.decision.label(),
                    s.risk.score()
                )
            })
            .collect();
        summary.extend(explained.previews.iter().map(|p| {
            format!(
                "{} would show {}",
                jarvis_core::text::code(&p.preview),
                p.shows
            )
        }));
        PreviewReport {
            kind: "plan".into(),
            summary,
            ..PreviewReport::default()
        }
    }

    /// Asks for a rollback of action `id`: a new action of kind `rollback`
    /// that names it, proposed by `actor` (someone allowed to approve
    /// actions) and answered for by them, judged at the original's risk at
    /// least, and approved under the rule [`ApprovalRule::for_rollback`]
    /// gives it. Where `actor`'s own request counts as its approval
    /// (`[approvals] rollback = "one-approver"` with self-approval allowed,
    /// neither forced nor a rollback of a rollback) it runs at once;
    /// otherwise it waits in the queue like any action, and
    /// [`Gateway::execute`] runs it once approved.
    ///
    /// Refused for an action that has no snapshot, whose snapshot was
    /// pruned, that is not `succeeded`, `failed` or `timed_out` (so one
    /// already rolled back is refused), or that has a rollback waiting or
    /// running. After a failure halfway, asking again finishes the job:
    /// targets already put back are recognised and left alone. With
    /// `force`, targets changed since the action are restored too (the
    /// rollback's own snapshot keeps what they held).
    ///
    /// # Errors
    /// [`GatewayError::NoRollback`], [`GatewayError::ApprovalRefused`],
    /// [`GatewayError::NotSent`], or a store error. A rollback that reached
    /// the host and failed is not an error: it is the returned action's
    /// state and report.
    pub async fn rollback(
        &self,
        id: ActionId,
        actor: &str,
        force: bool,
    ) -> Result<RolledBack, GatewayError> {
        let original = self.store().action(id).await?;
        let restorable = self.restorable(&original).await?;
        if let Some(other) = self.store().rollbacks_of(id).await?.into_iter().find(|r| {
            // Not `proposed`: that lasts a moment, and one left so by a
            // crash would block every rollback of it for good.
            matches!(
                r.state,
                ActionState::PendingApproval | ActionState::Approved | ActionState::Running
            )
        }) {
            return Err(GatewayError::NoRollback {
                id,
                why: format!(
                    "rollback {} of it is {}; it must be decided or finished first",
                    other.id, other.state
                ),
            });
        }
        let rb = ActionId::new();
        self.store()
            .create_action(&NewAction {
                id: rb,
                requester: actor.to_owned(),
                host: Some(restorable.host.clone()),
                command: rollback_command(id, force),
                cwd: None,
                timeout_secs: None,
                kind: ActionKind::Rollback,
                edit: None,
                rollback_of: Some(id),
                plan: original.plan.clone(),
                purpose: None,
            })
            .await?;
        let of_rollback = original.kind == ActionKind::Rollback;
        let (rule, request_counts) = self.config().approvals.for_rollback(
            self.config().rollback_approval,
            force,
            of_rollback,
        );
        // What a rollback changes is what the original changed, and a
        // forced one more: it is never judged below the original.
        let risk = original.risk.unwrap_or(Risk::MAX);
        let why_rule = if force {
            "forced, it also overwrites what changed since, so it needs the full approval rule"
                .to_owned()
        } else if of_rollback {
            format!("it puts back what rollback {id} undid, so it needs the full approval rule")
        } else if request_counts {
            "one approver is enough ([approvals] rollback = \"one-approver\"), and asking for it is that approval".to_owned()
        } else if self.config().rollback_approval == RollbackApproval::OneApprover {
            "one approver is enough ([approvals] rollback = \"one-approver\"), someone other than who asked".to_owned()
        } else {
            "it is approved under the same rule as any action at its risk ([approvals] rollback = \"same-rule\")".to_owned()
        };
        let judged = Judged {
            decision: Decision::Approve,
            risk,
            reasons: vec![
                format!(
                    "rollback of {id} (`{}`), asked for by {actor}",
                    original.command
                ),
                why_rule,
            ],
        };
        let action = if request_counts {
            match self
                .store()
                .approve_own_proposal(rb, actor, &judged, "asked for the rollback", &rule)
                .await
            {
                Ok((action, _)) => action,
                Err(StoreError::ApprovalRefused(why)) => {
                    return Err(GatewayError::ApprovalRefused { id: rb, why });
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            self.store()
                .transition(
                    rb,
                    ActionState::Proposed,
                    ActionState::PendingApproval,
                    "policy",
                    Some(&judged),
                    json!({
                        "rollback_of": id.to_string(),
                        "force": force,
                        "needed": rule.needed(risk),
                    }),
                )
                .await?
        };
        if action.state != ActionState::Approved {
            return Ok(RolledBack {
                rollback: action,
                report: None,
            });
        }
        // Approved at once, it still goes the one way every action reaches
        // a host.
        let (rollback, report) = self.execute_reporting(rb, actor, &mut |_| {}).await?;
        Ok(RolledBack { rollback, report })
    }

    /// The rule rollback `rb` is approved under, and whether its asker's
    /// request counted as an approval.
    pub(crate) async fn rollback_rule(
        &self,
        rb: &ActionRecord,
    ) -> Result<(ApprovalRule, bool), GatewayError> {
        // A rollback whose original cannot be named is treated as the
        // strictest kind: the full rule.
        let of_rollback = match rb.rollback_of {
            Some(original) => self.store().action(original).await?.kind == ActionKind::Rollback,
            None => true,
        };
        Ok(self.config().approvals.for_rollback(
            self.config().rollback_approval,
            rollback_forced(rb),
            of_rollback,
        ))
    }

    /// What a rollback of `original` would put back, or why it cannot be
    /// rolled back now.
    async fn restorable(&self, original: &ActionRecord) -> Result<Restorable, GatewayError> {
        let id = original.id;
        let refuse = |why: String| GatewayError::NoRollback { id, why };
        if original.state == ActionState::RolledBack {
            let by = self.store().rollbacks_of(id).await?;
            let by = by
                .iter()
                .rev()
                .find(|r| r.state == ActionState::Succeeded)
                .map(|r| format!(" by {}", r.id))
                .unwrap_or_default();
            return Err(refuse(format!("it was already rolled back{by}")));
        }
        if !matches!(
            original.state,
            ActionState::Succeeded | ActionState::Failed | ActionState::TimedOut
        ) {
            return Err(refuse(format!(
                "it is {}; only a succeeded, failed or timed-out action can be rolled back",
                original.state
            )));
        }
        let Some(record) = self.store().snapshot(id).await? else {
            let plan: Option<SnapshotPlan> = original
                .plan
                .clone()
                .and_then(|p| serde_json::from_value(p).ok());
            return Err(refuse(match plan {
                Some(p) => format!("no snapshot was taken ({})", p.summary()),
                None => "no snapshot was taken".into(),
            }));
        };
        if let Some(at) = &record.pruned_at {
            return Err(refuse(format!(
                "its snapshot was pruned at {at} (retention)"
            )));
        }
        let target: Snapshot = serde_json::from_value(record.manifest.clone())
            .map_err(|e| refuse(format!("its snapshot record cannot be read: {e}")))?;
        let after: Option<Snapshot> = record
            .after
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| refuse(format!("its after-state record cannot be read: {e}")))?;
        let host = HostName::parse(&record.host)
            .map_err(|_| GatewayError::UnknownHost(record.host.clone()))?;
        let spec = self
            .config()
            .host(&host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        Ok(Restorable {
            host,
            spec,
            target,
            after,
        })
    }

    /// Runs approved rollback `action` for [`Gateway::execute`], which has
    /// checked its state, commitment and run window: checks again that its
    /// original can be rolled back (another rollback may have finished, or
    /// retention pruned the snapshot, while it waited), admits it like any
    /// run, and sends the host the kept snapshot and the after-state. The
    /// host's report becomes the rollback's run and its output; success
    /// moves the original to `rolled_back` in the same transaction. A
    /// refusal before anything is sent leaves the rollback approved, with
    /// an `action.refused` event.
    pub(crate) async fn run_rollback(
        &self,
        action: &ActionRecord,
        actor: &str,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<RolledBack, GatewayError> {
        let rb = action.id;
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
        let Restorable {
            host,
            spec,
            target,
            after,
        } = restorable;
        let job = Job {
            action_id: rb.to_string(),
            host: host.clone(),
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
            .restore(
                &host,
                RestoreRequest {
                    action_id: rb.to_string(),
                    target,
                    after,
                    force: rollback_forced(action),
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
                    ending: "exited".into(),
                    exit_code: Some(if report.complete { 0 } else { 1 }),
                    signal: None,
                    duration_ms: report.duration_ms,
                    killed: 0,
                    stdout: output(text.into_bytes()),
                    stderr: output(Vec::new()),
                    error,
                    kernel: None,
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

    /// Applies the host's retention to its kept snapshots: the newest
    /// `keep` stay, and none older than `max_age_days`. What a host could
    /// not remove stays unpruned and is reported in a `snapshot.prune_failed`
    /// event.
    ///
    /// # Errors
    /// [`GatewayError::UnknownHost`] or a store error.
    pub async fn prune(&self, host: &HostName, actor: &str) -> Result<Vec<ActionId>, GatewayError> {
        let spec = self
            .config()
            .host(host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        let settings = &spec.snapshots;
        let max_age = settings
            .max_age_days
            .map(|d| Duration::from_secs(u64::from(d) * 86_400));
        let kept = self.store().kept_snapshots(host.as_str()).await?;
        let mut pruned = Vec::new();
        for (rank, id) in kept.into_iter().enumerate() {
            let age = std::time::SystemTime::now()
                .duration_since(time_of(id))
                .unwrap_or_default();
            let too_many = rank >= settings.keep as usize;
            let too_old = max_age.is_some_and(|m| age > m);
            if !too_many && !too_old {
                continue;
            }
            let Some(record) = self.store().snapshot(id).await? else {
                continue;
            };
            let Ok(snapshot) = serde_json::from_value::<Snapshot>(record.manifest) else {
                continue;
            };
            let why = if too_many {
                format!("more than {} kept snapshots on {host}", settings.keep)
            } else {
                format!("older than {} days", settings.max_age_days.unwrap_or(0))
            };
            let dropped = self
                .executor()
                .drop_snapshots(
                    host,
                    DropRequest {
                        snapshots: vec![snapshot],
                    },
                )
                .await;
            match dropped {
                Ok(report) if report.errors.is_empty() => {
                    self.store()
                        .mark_pruned(id, actor, json!({ "why": why, "removed": report.removed }))
                        .await?;
                    pruned.push(id);
                }
                outcome => {
                    let error = match outcome {
                        Ok(report) => report.errors.join("; "),
                        Err(e) => e.to_string(),
                    };
                    self.store()
                        .append(NewEvent {
                            actor: actor.to_owned(),
                            action_id: Some(id),
                            host: Some(host.to_string()),
                            kind: "snapshot.prune_failed".into(),
                            payload: json!({ "why": why, "error": error }),
                        })
                        .await?;
                }
            }
        }
        Ok(pruned)
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

/// The report as lines for the run's output: one per target.
pub fn describe(report: &RestoreReport) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let word = match t.outcome {
            TargetOutcome::AlreadyRestored => "already restored",
            TargetOutcome::Restored => "restored",
            TargetOutcome::Changed => "changed since",
            TargetOutcome::Failed => "FAILED",
            TargetOutcome::Skipped => "not tried",
        };
        out.push_str(&format!("{} {}: {word}: {}\n", t.kind, t.name, t.detail));
    }
    out
}

fn stopped_why(report: &RestoreReport) -> String {
    if report.before.is_none() {
        let changed: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Changed)
            .map(|t| format!("{} {} {}", t.kind, t.name, t.detail))
            .collect();
        format!(
            "stopped before changing anything: {}; roll back with --force to restore anyway (the rollback snapshots the present first)",
            changed.join("; ")
        )
    } else {
        let failed: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Failed)
            .map(|t| format!("{} {}: {}", t.kind, t.name, t.detail))
            .collect();
        format!(
            "failed halfway: {}; run the rollback again to finish (targets already restored are kept)",
            failed.join("; ")
        )
    }
}
