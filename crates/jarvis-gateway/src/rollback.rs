//! Previews for approvers, rollbacks, and snapshot retention: the parts of
//! the pipeline that read or use what snapshots keep.

use std::time::Duration;

use jarvis_core::{
    ActionId, ActionKind, ActionState, ApprovalRule, Decision, HostName, Risk, RollbackApproval,
    person,
};
use jarvis_exec::snapshot::{
    DropRequest, PreviewKind, PreviewReport, PreviewRequest, RestoreReport, RestoreRequest,
    RestoredTarget, Snapshot, SnapshotPlan, TargetOutcome, branch_words, short_commit,
};
use jarvis_exec::{Admission, ExecError, HostSpec, Job, Output};
use jarvis_policy::Request;
use jarvis_policy::scope::Live;
use jarvis_store::{
    ActionRecord, CapturedOutput, Judged, NewAction, NewEvent, RunRecord, SnapshotRecord,
    StoreError,
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
    /// `pending_approval` when it waits for approvers, `denied` when it
    /// stopped before changing anything because targets changed since.
    pub rollback: ActionRecord,
    /// The host's report (for a refused one, its check), when the host
    /// was reached.
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
    /// running; and not made at all when there is nothing to undo (the
    /// action changed nothing its snapshot covers, or the host finds every
    /// target back already). The host is asked where the targets stand
    /// before anyone approves: one changed since the action refuses the
    /// rollback at once, unless forced (the returned rollback is `denied`,
    /// its reasons and the host's check report say what changed). After a
    /// failure halfway, asking again finishes the job: targets already put
    /// back are recognised and left alone. With `force`, targets changed
    /// since the action are restored too (the rollback's own snapshot
    /// keeps what they held).
    ///
    /// # Errors
    /// [`GatewayError::NoRollback`], [`GatewayError::NothingToUndo`],
    /// [`GatewayError::ApprovalRefused`], [`GatewayError::NotSent`], or a
    /// store error. A rollback that reached the host and failed, or was
    /// refused over later changes, is not an error: it is the returned
    /// action's state and report.
    pub async fn rollback(
        &self,
        id: ActionId,
        actor: &str,
        force: bool,
    ) -> Result<RolledBack, GatewayError> {
        let original = self.store().action(id).await?;
        let restorable = self.restorable(&original).await?;
        // Forced or not: a rollback of an action that changed nothing
        // would only overwrite what others did since.
        if restorable
            .after
            .as_ref()
            .is_some_and(|after| restorable.target.nothing_to_undo(after))
        {
            return Err(GatewayError::NothingToUndo {
                id,
                why: NOTHING_CHANGED.into(),
            });
        }
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
                    other.id,
                    other.state.label()
                ),
            });
        }
        let rb = ActionId::new();
        // Where the targets stand now, asked before anyone is asked to
        // approve: a rollback that would stop is refused at once, and one
        // that would put nothing back is not made at all. A host that
        // cannot say (unreachable, or a guard without checks) is asked
        // again when the rollback runs, and the rollback itself stops on a
        // later change all the same.
        let check = self.check_restore(rb, &restorable, None).await;
        if check.as_ref().is_some_and(|r| r.complete) {
            return Err(GatewayError::NothingToUndo {
                id,
                why: ALREADY_BACK.into(),
            });
        }
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
        // What a rollback changes is what the original changed, and a
        // forced one more: it is never judged below the original.
        let risk = original.risk.unwrap_or(Risk::MAX);
        if let Some(report) = check.filter(|r| !force && stopped_by_changes(r)) {
            let rollback = self
                .stop_rollback(rb, ActionState::Proposed, id, risk, &report)
                .await?;
            return Ok(RolledBack {
                rollback,
                report: Some(report),
            });
        }
        let of_rollback = original.kind == ActionKind::Rollback;
        let (rule, request_counts) = self.config().approvals.for_rollback(
            self.config().rollback_approval,
            force,
            of_rollback,
        );
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
                    "rollback of {id} ({}), asked for by {}",
                    jarvis_core::text::code(&original.command),
                    jarvis_core::words::actor(actor)
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
                original.state.label()
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
            action_id: rb.to_string(),
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
                    action_id: rb.to_string(),
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
                    ending: "exited".into(),
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

    /// Asks the host where each target of a rollback stands now (already
    /// back, as the action left it, or changed since) without changing
    /// anything. `None` when the host could not say: unreachable, or a
    /// guard too old to check; the rollback's own run checks again.
    /// Within an admitted rollback, it asks on the rollback's admission.
    async fn check_restore(
        &self,
        rb: ActionId,
        r: &Restorable,
        admission: Option<&Admission>,
    ) -> Option<RestoreReport> {
        let request = RestoreRequest {
            action_id: rb.to_string(),
            target: r.target.clone(),
            after: r.after.clone(),
            force: false,
            check_only: true,
            volume_image: r.spec.snapshots.volume_image.clone(),
        };
        let answer = match admission {
            Some(a) => self.executor().restore_admitted(a, request).await,
            None => self.executor().restore(&r.host, request).await,
        };
        match answer {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(host = %r.host, error = %e, "cannot check a rollback's targets before it runs");
                None
            }
        }
    }

    /// Refuses rollback `rb` (from `proposed` or `approved`) because
    /// targets changed since its action: it becomes `denied`, its reasons
    /// say what changed, and the event carries each changed target, so
    /// the rollback page can offer to force it.
    async fn stop_rollback(
        &self,
        rb: ActionId,
        from: ActionState,
        original: ActionId,
        risk: Risk,
        report: &RestoreReport,
    ) -> Result<ActionRecord, GatewayError> {
        let changed: Vec<serde_json::Value> = changed_since(report)
            .into_iter()
            .map(|(target, what)| json!({ "target": target, "changed": what }))
            .collect();
        let judged = Judged {
            decision: Decision::Deny,
            risk,
            reasons: vec![stopped_words(report), FORCE_NOTE.into()],
        };
        Ok(self
            .store()
            .transition(
                rb,
                from,
                ActionState::Denied,
                "gateway",
                Some(&judged),
                json!({
                    "rollback_of": original.to_string(),
                    "stopped": changed,
                }),
            )
            .await?)
    }

    /// What a rollback of action `id` would put back and what it would
    /// not, from the store alone (the host is not asked): what a person
    /// confirms before asking for it, with the last rollback of it that
    /// stopped on later changes, if that is the latest.
    ///
    /// # Errors
    /// [`GatewayError::NoRollback`] when it cannot be rolled back (no
    /// snapshot, pruned, not finished, already rolled back), or a store
    /// error.
    pub async fn rollback_offer(&self, id: ActionId) -> Result<RollbackOffer, GatewayError> {
        let original = self.store().action(id).await?;
        let Restorable {
            host,
            target,
            after,
            ..
        } = self.restorable(&original).await?;
        let taken_at = self
            .store()
            .snapshot(id)
            .await?
            .map(|s| s.taken_at)
            .unwrap_or_default();
        let mut not_back = target.not_captured.clone();
        if original.kind == ActionKind::Command {
            not_back.push(ELSEWHERE.into());
        }
        let nothing_to_undo = after.as_ref().is_some_and(|a| target.nothing_to_undo(a));
        let of_rollback = original.kind == ActionKind::Rollback;
        let approval = self.rollback_approval_words(&original, false, of_rollback);
        let force_approval = self.rollback_approval_words(&original, true, of_rollback);
        let rollbacks = self.store().rollbacks_of(id).await?;
        let in_progress = rollbacks
            .iter()
            .find(|r| {
                matches!(
                    r.state,
                    ActionState::PendingApproval | ActionState::Approved | ActionState::Running
                )
            })
            .cloned();
        let stopped = match rollbacks.into_iter().last() {
            Some(rb) if rb.state == ActionState::Denied => {
                let events = self
                    .store()
                    .events(&jarvis_store::AuditFilter {
                        action_id: Some(rb.id.to_string()),
                        kind: Some("action.denied".into()),
                        limit: Some(1),
                        ..jarvis_store::AuditFilter::default()
                    })
                    .await?;
                let payload: serde_json::Value = events
                    .first()
                    .and_then(|e| serde_json::from_str(&e.payload).ok())
                    .unwrap_or_default();
                let changed: Vec<(String, String)> = payload["stopped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                        (text("target"), text("changed"))
                    })
                    .collect();
                (!changed.is_empty()).then(|| StoppedRollback {
                    message: rb.reasons.first().cloned().unwrap_or_default(),
                    rollback: rb,
                    changed,
                })
            }
            _ => None,
        };
        Ok(RollbackOffer {
            original,
            host,
            taken_at,
            target,
            after,
            not_back,
            nothing_to_undo,
            approval,
            force_approval,
            stopped,
            in_progress,
        })
    }

    /// How a rollback of `original` (forced or not) is approved, as the
    /// person asking for it reads it before confirming.
    fn rollback_approval_words(
        &self,
        original: &ActionRecord,
        force: bool,
        of_rollback: bool,
    ) -> String {
        let (rule, request_counts) = self.config().approvals.for_rollback(
            self.config().rollback_approval,
            force,
            of_rollback,
        );
        if request_counts {
            return "It runs as soon as you confirm: one approver is enough, and asking for it counts as that approval.".into();
        }
        let needed = rule.needed(original.risk.unwrap_or(Risk::MAX));
        let who = match (needed, rule.self_approval) {
            (1, true) => "one approver (you may approve it yourself)".to_owned(),
            (1, false) => "one approver other than you".to_owned(),
            (n, true) => format!("{n} approvers"),
            (n, false) => format!("{n} approvers other than you"),
        };
        format!(
            "It then waits for approval by {who}, like any action at this risk, and runs once approved."
        )
    }

    /// Applies the host's retention to its kept snapshots: the newest
    /// `keep` stay, and none older than `max_age_days`. Each is marked
    /// pruned before the host removes it; what a host could not remove is
    /// unmarked again and reported in a `snapshot.prune_failed` event.
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
            // Recorded before the host is asked: a record that cannot be
            // written (a full disk) sends nothing, and a host that removed
            // what the record still offers to roll back to cannot happen.
            self.store()
                .mark_pruned(id, actor, json!({ "why": why }))
                .await?;
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
                        .append(NewEvent {
                            actor: actor.to_owned(),
                            action_id: Some(id),
                            host: Some(host.to_string()),
                            kind: "snapshot.removed".into(),
                            payload: json!({ "removed": report.removed }),
                        })
                        .await?;
                    pruned.push(id);
                }
                outcome => {
                    let error = match outcome {
                        Ok(report) => report.errors.join("; "),
                        Err(e) => e.to_string(),
                    };
                    // Kept after all: it can be rolled back to, and the
                    // next pruning tries again. (Were this write to fail,
                    // the record would say pruned of a snapshot the host
                    // still holds: space taken, nothing offered that is
                    // gone.)
                    self.store()
                        .unmark_pruned(id, actor, json!({ "why": why, "error": error }))
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

/// The clause of [`GatewayError::NothingToUndo`] for an action whose
/// snapshot and recorded after-state are the same.
pub const NOTHING_CHANGED: &str = "it changed nothing that can be put back";

/// The clause of [`GatewayError::NothingToUndo`] for an action whose
/// targets are all back as its snapshot found them already.
pub const ALREADY_BACK: &str = "everything it changed is already back as the snapshot found it";

const FORCE_NOTE: &str = "Forcing the rollback puts them back anyway and overwrites those later changes; Jarvis snapshots the present first, so a forced rollback can be undone too.";

const ELSEWHERE: &str =
    "anything the command did outside these: other files, services, or other machines it reached";

/// Whether a stored snapshot and the state recorded right after its action
/// say the action changed nothing a rollback would put back. `false` when
/// either cannot be read or the after-state was not recorded: then nobody
/// can say.
pub fn changed_nothing(record: &SnapshotRecord) -> bool {
    let Ok(target) = serde_json::from_value::<Snapshot>(record.manifest.clone()) else {
        return false;
    };
    let Some(Ok(after)) = record.after.clone().map(serde_json::from_value::<Snapshot>) else {
        return false;
    };
    target.nothing_to_undo(&after)
}

/// A target named in words, as a report or a snapshot names it:
/// `git repository /srv/app`, `container grafana`.
pub fn target_words(kind: &str, name: &str) -> String {
    match kind {
        "repo" => format!("git repository {name}"),
        "container" => format!("container {name}"),
        "volume" => format!("volume {name}"),
        "file" => format!("file {name}"),
        other => format!("{other} {name}"),
    }
}

/// One target of a snapshot, and what a rollback makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBack {
    /// The target: `container grafana`.
    pub subject: String,
    /// The target and the state it goes back to: `git repository /srv/app
    /// back to e59951b (branch main), uncommitted files included`.
    pub back: String,
    /// What the action changed in it, in words; empty when the action did
    /// not change it (a rollback leaves it as it is), `None` when the
    /// state after the action was not recorded.
    pub changed: Option<Vec<String>>,
}

impl TargetBack {
    /// Whether the action left it as the snapshot found it.
    pub fn unchanged(&self) -> bool {
        self.changed.as_ref().is_some_and(Vec::is_empty)
    }
}

/// What comes back, one entry per target of `snapshot` (taken at `when`,
/// already in words), in the order a rollback restores them, each compared
/// with `after`, the state right after the action.
pub fn comes_back(snapshot: &Snapshot, after: Option<&Snapshot>, when: &str) -> Vec<TargetBack> {
    let compared = after.map(|a| snapshot.compare(a)).unwrap_or_default();
    let changed = |kind: &str, name: &str| {
        compared
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .and_then(|c| c.changed.clone())
    };
    let gone = |subject: &str| format!("{subject} removed (it did not exist before the action)");
    let mut out = Vec::new();
    for r in &snapshot.repos {
        let subject = target_words("repo", &r.path);
        out.push(TargetBack {
            back: format!(
                "{subject} back to {} ({}), uncommitted files included",
                short_commit(r.head.as_deref()),
                branch_words(r.branch.as_deref())
            ),
            changed: changed("repo", &r.path),
            subject,
        });
    }
    for f in &snapshot.files {
        let subject = target_words("file", &f.path);
        out.push(TargetBack {
            back: if f.exists {
                format!("{subject} back to its content of {when}")
            } else {
                gone(&subject)
            },
            changed: changed("file", &f.path),
            subject,
        });
    }
    for v in &snapshot.volumes {
        let subject = target_words("volume", &v.name);
        out.push(TargetBack {
            back: if v.exists {
                format!("{subject} back to its files of {when}")
            } else {
                gone(&subject)
            },
            changed: changed("volume", &v.name),
            subject,
        });
    }
    for c in &snapshot.containers {
        let subject = target_words("container", &c.name);
        out.push(TargetBack {
            back: if c.exists {
                format!(
                    "{subject} back to its settings and files of {when}, {} (it is recreated from its snapshot, so it restarts)",
                    if c.running { "running" } else { "stopped" }
                )
            } else {
                gone(&subject)
            },
            changed: changed("container", &c.name),
            subject,
        });
    }
    out
}

/// What a rollback of an action would put back and what it would not;
/// see [`Gateway::rollback_offer`].
#[derive(Debug, Clone)]
pub struct RollbackOffer {
    /// The action it would undo.
    pub original: ActionRecord,
    /// Its host.
    pub host: HostName,
    /// When its snapshot was recorded.
    pub taken_at: String,
    /// The snapshot a rollback goes back to.
    pub target: Snapshot,
    /// The state right after the action, when it was recorded.
    pub after: Option<Snapshot>,
    /// What does not come back, in words.
    pub not_back: Vec<String>,
    /// Whether the action changed nothing a rollback would put back.
    pub nothing_to_undo: bool,
    /// How a rollback is approved, in words.
    pub approval: String,
    /// How a forced rollback is approved, in words.
    pub force_approval: String,
    /// The latest rollback of it, when it stopped on later changes.
    pub stopped: Option<StoppedRollback>,
    /// A rollback of it that waits for approval, is approved or runs.
    pub in_progress: Option<ActionRecord>,
}

impl RollbackOffer {
    /// What comes back, with the snapshot's time as `when` gives it.
    pub fn comes_back(&self, when: &str) -> Vec<TargetBack> {
        comes_back(&self.target, self.after.as_ref(), when)
    }
}

/// A rollback refused because targets changed since its action.
#[derive(Debug, Clone)]
pub struct StoppedRollback {
    /// The refused rollback.
    pub rollback: ActionRecord,
    /// "Stopped before changing anything: …".
    pub message: String,
    /// Each changed target and what changed in it, in words.
    pub changed: Vec<(String, String)>,
}

/// Whether a rollback's report stops it: a target changed since the
/// action.
pub fn stopped_by_changes(report: &RestoreReport) -> bool {
    report
        .targets
        .iter()
        .any(|t| t.outcome == TargetOutcome::Changed)
}

/// Each target that changed since the action, in words, and what changed.
fn changed_since(report: &RestoreReport) -> Vec<(String, String)> {
    report
        .targets
        .iter()
        .filter(|t| t.outcome == TargetOutcome::Changed)
        .map(|t| (target_words(&t.kind, &t.name), what_changed(t).to_owned()))
        .collect()
}

/// What changed in a target since the action, as the host said it.
fn what_changed(t: &RestoredTarget) -> &str {
    // Guards before the check-only request prefixed their words.
    t.detail
        .strip_prefix("changed after the action: ")
        .unwrap_or(&t.detail)
}

/// "Stopped before changing anything: container grafana changed since this
/// action ran (files of grafana changed)", for a report that stopped on
/// later changes.
pub fn stopped_words(report: &RestoreReport) -> String {
    let parts: Vec<String> = changed_since(report)
        .into_iter()
        .map(|(target, what)| {
            if what.is_empty() {
                format!("{target} changed since this action ran")
            } else {
                format!("{target} changed since this action ran ({what})")
            }
        })
        .collect();
    format!("Stopped before changing anything: {}", parts.join("; "))
}

/// The report as lines for the run's output and the CLI: one per target,
/// in plain words.
pub fn describe(report: &RestoreReport) -> String {
    let stopped = report.before.is_none();
    let mut out = String::new();
    for t in &report.targets {
        let target = target_words(&t.kind, &t.name);
        let line = match t.outcome {
            TargetOutcome::AlreadyRestored => {
                format!("{target}: already as the snapshot found it, left alone")
            }
            TargetOutcome::Restored => {
                format!("{target}: put back as the snapshot found it, and checked")
            }
            TargetOutcome::Changed => format!(
                "{target}: changed since this action ran ({}), left alone",
                what_changed(t)
            ),
            TargetOutcome::Failed => format!("{target}: could not be put back: {}", t.detail),
            TargetOutcome::Skipped if stopped => format!("{target}: not touched"),
            TargetOutcome::Skipped => {
                format!("{target}: not tried, because an earlier one could not be put back")
            }
            // In a check that stops on another target, nothing is put back.
            TargetOutcome::Due if stopped_by_changes(report) => format!("{target}: not touched"),
            TargetOutcome::Due => {
                format!("{target}: as the action left it, a rollback puts it back")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What a finished rollback came to, in one or two sentences: the flash
/// after it and the CLI's last line. `rb` is the rollback's id, for the
/// way to undo it.
pub fn outcome_words(done: &RolledBack, error: Option<&str>) -> String {
    let rb = &done.rollback;
    let Some(report) = &done.report else {
        return match rb.state {
            ActionState::PendingApproval => {
                "The rollback waits for approval; it runs once approved.".into()
            }
            _ => format!(
                "The rollback failed before the host answered: {}",
                error.unwrap_or("no report came back")
            ),
        };
    };
    let named = |outcome: TargetOutcome| -> Vec<String> {
        report
            .targets
            .iter()
            .filter(|t| t.outcome == outcome)
            .map(|t| target_words(&t.kind, &t.name))
            .collect()
    };
    match rb.state {
        ActionState::Denied => stopped_words(report),
        ActionState::Succeeded => {
            let restored = named(TargetOutcome::Restored);
            let already = named(TargetOutcome::AlreadyRestored);
            let one = |list: &[String], a: &'static str, many: &'static str| {
                if list.len() == 1 { a } else { many }
            };
            let mut text = if restored.is_empty() {
                format!(
                    "Rolled back: {} {} already as the snapshot found {}, so nothing was changed.",
                    and_list(&already),
                    one(&already, "was", "were"),
                    one(&already, "it", "them"),
                )
            } else if already.is_empty() {
                format!(
                    "Rolled back: {} {} back as the snapshot found {}.",
                    and_list(&restored),
                    one(&restored, "is", "are"),
                    one(&restored, "it", "them"),
                )
            } else {
                format!(
                    "Rolled back: {} {} back as the snapshot found {} ({} already {}).",
                    and_list(&restored),
                    one(&restored, "is", "are"),
                    one(&restored, "it", "them"),
                    and_list(&already),
                    one(&already, "was", "were"),
                )
            };
            text.push_str(" What it replaced is kept in the rollback's own snapshot, so the rollback can be undone too.");
            text
        }
        _ if report.before.is_none() => stopped_words(report),
        _ => stopped_why(report),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => "nothing".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn stopped_why(report: &RestoreReport) -> String {
    if report.before.is_none() {
        format!(
            "{}. Force the rollback to put them back anyway (it snapshots the present first).",
            stopped_words(report)
        )
    } else {
        let failed: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Failed)
            .map(|t| {
                format!(
                    "{} could not be put back ({})",
                    target_words(&t.kind, &t.name),
                    t.detail
                )
            })
            .collect();
        let restored: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Restored)
            .map(|t| target_words(&t.kind, &t.name))
            .collect();
        let mut text = format!("The rollback failed partway: {}.", failed.join("; "));
        if !restored.is_empty() {
            text.push_str(&format!(" {} was put back.", and_list(&restored)));
        }
        text.push_str(
            " Run the rollback again to finish: what was put back is recognised and left alone.",
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_exec::snapshot::{ContainerState, RepoState};

    fn target(kind: &str, name: &str, outcome: TargetOutcome, detail: &str) -> RestoredTarget {
        RestoredTarget {
            kind: kind.into(),
            name: name.into(),
            outcome,
            detail: detail.into(),
        }
    }

    fn report(targets: Vec<RestoredTarget>, before: bool) -> RestoreReport {
        RestoreReport {
            before: before.then(Snapshot::default),
            after: None,
            complete: targets.iter().all(|t| {
                matches!(
                    t.outcome,
                    TargetOutcome::Restored | TargetOutcome::AlreadyRestored
                )
            }),
            targets,
            duration_ms: 5,
        }
    }

    fn record(state: ActionState) -> ActionRecord {
        ActionRecord {
            id: ActionId::new(),
            created_at: "2025-11-23T01:52:59Z".into(),
            updated_at: "2025-11-23T01:52:59Z".into(),
            requester: "local:alice".into(),
            accountable: "local:alice".into(),
            host: Some("nas".into()),
            command: "rollback x".into(),
            cwd: None,
            timeout_secs: None,
            state,
            decision: None,
            risk: None,
            reasons: Vec::new(),
            version: 1,
            kind: ActionKind::Rollback,
            edit: None,
            rollback_of: None,
            plan: None,
            preview: None,
            pending_since: None,
            purpose: None,
        }
    }

    #[test]
    fn a_drift_refusal_says_it_stopped_and_what_changed() {
        let r = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Skipped, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Changed,
                    "settings of grafana changed",
                ),
            ],
            false,
        );
        assert!(stopped_by_changes(&r));
        assert_eq!(
            stopped_words(&r),
            "Stopped before changing anything: container grafana changed since this action ran (settings of grafana changed)"
        );
        // Old guards' prefix is not repeated.
        let old = report(
            vec![target(
                "repo",
                "/srv/app",
                TargetOutcome::Changed,
                "changed after the action: HEAD moved a → b",
            )],
            false,
        );
        assert_eq!(
            stopped_words(&old),
            "Stopped before changing anything: git repository /srv/app changed since this action ran (HEAD moved a → b)"
        );
        let checked = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Due, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Changed,
                    "files changed",
                ),
            ],
            false,
        );
        assert!(describe(&checked).starts_with("git repository /srv/app: not touched\n"));
        let lines = describe(&r);
        assert!(
            lines.contains("git repository /srv/app: not touched\n"),
            "{lines}"
        );
        assert!(
            lines.contains("container grafana: changed since this action ran (settings of grafana changed), left alone"),
            "{lines}"
        );
        let done = RolledBack {
            rollback: record(ActionState::Denied),
            report: Some(r),
        };
        assert!(
            outcome_words(&done, None)
                .starts_with("Stopped before changing anything: container grafana")
        );
    }

    #[test]
    fn a_finished_rollback_says_what_is_back_in_plain_words() {
        let r = report(
            vec![
                target(
                    "repo",
                    "/srv/app",
                    TargetOutcome::Restored,
                    "restored HEAD 1234567 (tree abc)",
                ),
                target("container", "grafana", TargetOutcome::AlreadyRestored, ""),
            ],
            true,
        );
        let done = RolledBack {
            rollback: record(ActionState::Succeeded),
            report: Some(r.clone()),
        };
        let words = outcome_words(&done, None);
        assert_eq!(
            words,
            "Rolled back: git repository /srv/app is back as the snapshot found it (container grafana already was). What it replaced is kept in the rollback's own snapshot, so the rollback can be undone too."
        );
        for internal in ["tree", "fingerprint", "FAILED", "restored HEAD"] {
            assert!(!words.contains(internal), "{internal} in {words}");
        }
        let lines = describe(&r);
        assert_eq!(
            lines,
            "git repository /srv/app: put back as the snapshot found it, and checked\ncontainer grafana: already as the snapshot found it, left alone\n"
        );
    }

    #[test]
    fn a_rollback_that_failed_partway_says_how_to_finish() {
        let r = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Restored, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Failed,
                    "snapshot image jarvis-snapshots:x of grafana is gone or was replaced",
                ),
                target("volume", "data", TargetOutcome::Skipped, ""),
            ],
            true,
        );
        let done = RolledBack {
            rollback: record(ActionState::Failed),
            report: Some(r.clone()),
        };
        let words = outcome_words(&done, None);
        assert!(
            words.starts_with("The rollback failed partway: container grafana could not be put back (snapshot image"),
            "{words}"
        );
        assert!(
            words.contains("git repository /srv/app was put back"),
            "{words}"
        );
        assert!(
            words.contains("Run the rollback again to finish"),
            "{words}"
        );
        assert!(
            describe(&r)
                .contains("volume data: not tried, because an earlier one could not be put back"),
        );
        let unreachable = RolledBack {
            rollback: record(ActionState::Failed),
            report: None,
        };
        assert_eq!(
            outcome_words(&unreachable, Some("ssh: connection refused")),
            "The rollback failed before the host answered: ssh: connection refused"
        );
    }

    #[test]
    fn what_comes_back_names_each_target_and_the_state_it_returns_to() {
        let repo = RepoState {
            path: "/srv/app".into(),
            head: Some("e59951b0c0ffee".into()),
            branch: Some("refs/heads/main".into()),
            index_tree: "i1".into(),
            worktree_tree: "w1".into(),
            commit: Some("k".into()),
            kept_ref: Some("refs/jarvis/snapshots/x".into()),
        };
        let grafana = ContainerState {
            name: "grafana".into(),
            exists: true,
            id: Some("c1".into()),
            running: true,
            fingerprint: "f".into(),
            changes: "d".into(),
            volumes: Vec::new(),
            image: None,
            snapshot_image: Some("jarvis-snapshots:x.c1".into()),
            snapshot_image_id: None,
            inspect: None,
        };
        let created = ContainerState::absent("worker");
        let before = Snapshot {
            kept: true,
            repos: vec![repo.clone()],
            containers: vec![grafana.clone(), created.clone()],
            ..Snapshot::default()
        };
        let after = Snapshot {
            repos: vec![RepoState {
                head: Some("1a2b3c4d".into()),
                ..repo
            }],
            containers: vec![
                ContainerState {
                    snapshot_image: None,
                    ..grafana
                },
                ContainerState {
                    exists: true,
                    id: Some("c2".into()),
                    running: true,
                    ..created
                },
            ],
            ..Snapshot::default()
        };
        let back = comes_back(&before, Some(&after), "2025-11-23 01:52:59 UTC");
        assert_eq!(
            back[0].back,
            "git repository /srv/app back to e59951b (branch main), uncommitted files included"
        );
        assert_eq!(
            back[0].changed,
            Some(vec!["HEAD moved from e59951b to 1a2b3c4".to_owned()])
        );
        assert_eq!(
            back[1].back,
            "container grafana back to its settings and files of 2025-11-23 01:52:59 UTC, running (it is recreated from its snapshot, so it restarts)"
        );
        assert!(back[1].unchanged(), "the action did not touch grafana");
        assert_eq!(
            back[2].back,
            "container worker removed (it did not exist before the action)"
        );
        assert_eq!(back[2].changed, Some(vec!["it was created".to_owned()]));
        // Without the after-state nobody can say what the action changed.
        assert!(
            comes_back(&before, None, "then")
                .iter()
                .all(|t| t.changed.is_none())
        );
    }

    #[test]
    fn a_stored_snapshot_and_after_state_say_whether_anything_changed() {
        let repo = RepoState {
            path: "/srv/app".into(),
            head: Some("e59951b0".into()),
            branch: None,
            index_tree: "i1".into(),
            worktree_tree: "w1".into(),
            commit: Some("k".into()),
            kept_ref: None,
        };
        let snap = Snapshot {
            kept: true,
            repos: vec![repo.clone()],
            ..Snapshot::default()
        };
        let mut record = SnapshotRecord {
            action_id: ActionId::new(),
            host: "nas".into(),
            taken_at: "2025-11-23T01:52:59Z".into(),
            manifest: json!(snap),
            after: Some(json!(Snapshot {
                repos: vec![RepoState {
                    commit: None,
                    ..repo.clone()
                }],
                ..Snapshot::default()
            })),
            pruned_at: None,
        };
        assert!(changed_nothing(&record));
        record.after = Some(json!(Snapshot {
            repos: vec![RepoState {
                worktree_tree: "w2".into(),
                ..repo
            }],
            ..Snapshot::default()
        }));
        assert!(!changed_nothing(&record));
        record.after = None;
        assert!(!changed_nothing(&record), "unknown is not nothing");
    }

    #[test]
    fn targets_are_named_in_words() {
        assert_eq!(target_words("repo", "/srv/app"), "git repository /srv/app");
        assert_eq!(target_words("file", "/etc/x"), "file /etc/x");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
