//! Proposing: a command or an edit checked, judged by the policy with what
//! is known of the host's kernel wall, and stored with its decision; the
//! limits on an edit and a working directory.

use std::time::Duration;

use jarvis_core::{ActionId, ActionKind, ActionState, Decision, HostName, Purpose};
use jarvis_exec::protocol::EnforcementLevel;
use jarvis_exec::snapshot::{FileChange, FileEdit, SnapshotPlan, plan_for_command, plan_for_edit};
use jarvis_exec::{HostSpec, Job};
use jarvis_policy::scope::Live;
use jarvis_policy::{Judgement, Request};
use jarvis_store::{ActionRecord, Judged, NewAction};
use serde_json::json;

use super::Gateway;
use super::error::GatewayError;
use super::kernel::{KernelKnown, KernelStanding};

/// What someone asks to run.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// Who asks (`local:alice`, `planner`).
    pub requester: String,
    /// Where.
    pub host: HostName,
    /// What it would do there.
    pub work: Work,
    /// A timeout other than the host's default.
    pub timeout: Option<Duration>,
    /// What the proposer says it is for, shown to whoever decides.
    pub purpose: Option<Purpose>,
}

/// What a proposal would do on its host: one or the other, never both, so
/// no caller has to say what a command line means for an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Run a command line, in `cwd` on the host if given.
    Command {
        /// The command line.
        line: String,
        /// The directory on the host.
        cwd: Option<String>,
    },
    /// Change one file.
    Edit(FileEdit),
}

impl Work {
    /// The line the action is recorded, shown and sent under: the command
    /// line, or `edit PATH`.
    pub fn line(&self) -> String {
        match self {
            Work::Command { line, .. } => line.clone(),
            Work::Edit(e) => format!("edit {}", e.path),
        }
    }

    /// The directory a command runs in; an edit names its file whole.
    pub fn cwd(&self) -> Option<&str> {
        match self {
            Work::Command { cwd, .. } => cwd.as_deref(),
            Work::Edit(_) => None,
        }
    }

    /// The edit, if this is one.
    pub fn edit(&self) -> Option<&FileEdit> {
        match self {
            Work::Command { .. } => None,
            Work::Edit(e) => Some(e),
        }
    }
}

/// The outcome of a proposal.
#[derive(Debug, Clone)]
pub struct Proposed {
    /// The action as recorded: `approved`, `pending_approval` or `denied`.
    pub action: ActionRecord,
    /// What the policy said, with the loop brake applied.
    pub judgement: Judgement,
    /// What a snapshot will capture.
    pub plan: SnapshotPlan,
}

/// What the policy says of an action, what a snapshot of it captures, and
/// the live preview its scope allows.
pub(crate) struct Assessment {
    pub(crate) judgement: Judgement,
    pub(crate) plan: SnapshotPlan,
    pub(crate) live: Option<Live>,
}

/// The largest edit content or diff accepted: it travels in one SSH
/// command line, which Linux limits to 128 KiB.
const MAX_EDIT: usize = 32 * 1024;

/// Refuses a working directory no screen shows as it is; nothing is
/// recorded then.
fn check_cwd(cwd: &str) -> Result<(), GatewayError> {
    match jarvis_core::text::first_unsafe(cwd) {
        Some((at, c)) => Err(GatewayError::BadCwd {
            shown: jarvis_core::text::inert_line(cwd),
            at,
            what: format!("U+{:04X}", u32::from(c)),
        }),
        None => Ok(()),
    }
}

fn check_edit(e: &FileEdit) -> Result<(), GatewayError> {
    let bad = |message: &str| GatewayError::BadEdit {
        path: e.path.clone(),
        message: message.to_owned(),
    };
    if !e.path.starts_with('/') {
        return Err(bad("the path must be absolute"));
    }
    if e.path.split('/').any(|c| c == "..") || e.path.contains('\0') {
        return Err(bad("the path must not contain `..` or NUL"));
    }
    if let Some((at, c)) = jarvis_core::text::first_unsafe(&e.path) {
        return Err(GatewayError::BadEdit {
            path: jarvis_core::text::inert_line(&e.path),
            message: format!(
                "the path has U+{:04X} at byte {at}, which a screen does not show as it is",
                u32::from(c)
            ),
        });
    }
    let size = match &e.change {
        FileChange::Content { content } => content.len(),
        FileChange::Diff { diff } => diff.len(),
    };
    if size > MAX_EDIT {
        return Err(bad(&format!(
            "{size} bytes is over the {MAX_EDIT}-byte limit for one edit"
        )));
    }
    Ok(())
}

/// The edit an action carries, if it is one.
pub(crate) fn action_edit(action: &ActionRecord) -> Option<FileEdit> {
    match action.kind {
        ActionKind::Edit => action.edit.clone(),
        ActionKind::Command | ActionKind::Rollback => None,
    }
}

impl Gateway {
    /// The judgement, snapshot plan and possible live preview of a command
    /// or an edit, as they are now; the line is read once.
    pub(crate) fn assess(
        &self,
        spec: &HostSpec,
        command: &str,
        cwd: Option<&str>,
        edit: Option<&FileEdit>,
    ) -> Assessment {
        match edit {
            Some(e) => Assessment {
                judgement: self.policy.judge_edit(&e.path, Some(spec.name.clone())),
                plan: plan_for_edit(&e.path, &spec.snapshots),
                live: None,
            },
            None => {
                let (judgement, scope) = self.policy.judge_and_scope(
                    &Request {
                        command: command.to_owned(),
                        host: Some(spec.name.clone()),
                        cwd: cwd.map(str::to_owned),
                    },
                    &spec.snapshots.repos,
                );
                Assessment {
                    judgement,
                    plan: plan_for_command(&scope, &spec.snapshots),
                    live: scope.live,
                }
            }
        }
    }

    /// Records a proposal, judges it and moves it to `approved`,
    /// `pending_approval` or `denied`.
    ///
    /// What the policy would let run alone still waits for a person when
    /// the runaway-loop brake trips, or when the host requires the kernel
    /// wall (`enforcement = "required"`) and does not have all of it, or
    /// cannot be asked ([`KernelStanding::apply`]; the host is asked here
    /// when what is known of it is older than [`KERNEL_FRESH`]). Every way
    /// of proposing comes through here, so none escapes either.
    ///
    /// # Errors
    /// [`GatewayError::UnknownHost`] (nothing is recorded then) or a store
    /// error.
    pub async fn propose(&self, p: Proposal) -> Result<Proposed, GatewayError> {
        self.propose_telling(p, |_| {}).await
    }

    /// [`Gateway::propose`], calling `waits` with the action the moment it
    /// is recorded waiting for a person, before its preview is made (which
    /// can take seconds on the host): whoever asked hears at once.
    ///
    /// # Errors
    /// As [`Gateway::propose`].
    pub async fn propose_telling(
        &self,
        p: Proposal,
        waits: impl FnOnce(&ActionRecord) + Send,
    ) -> Result<Proposed, GatewayError> {
        self.propose_with(p, None, waits).await
    }

    /// [`Gateway::propose`] with the client's idempotency `key`, recorded
    /// with the action. If its requester already used the key, nothing is
    /// recorded and the error is [`StoreError::KeyUsed`] naming the action
    /// the key made (the caller answers with that one).
    ///
    /// # Errors
    /// As [`Gateway::propose`], and [`StoreError::KeyUsed`].
    pub async fn propose_keyed(&self, p: Proposal, key: &str) -> Result<Proposed, GatewayError> {
        self.propose_with(p, Some(key), |_| {}).await
    }

    async fn propose_with(
        &self,
        p: Proposal,
        key: Option<&str>,
        waits: impl FnOnce(&ActionRecord) + Send,
    ) -> Result<Proposed, GatewayError> {
        let spec = self
            .config
            .host(&p.host)
            .ok_or_else(|| GatewayError::UnknownHost(p.host.to_string()))?
            .clone();
        if let Some(e) = p.work.edit() {
            check_edit(e)?;
        }
        if let Some(cwd) = p.work.cwd() {
            check_cwd(cwd)?;
        }
        let command = p.work.line();
        let cwd = p.work.cwd().map(str::to_owned);
        let Assessment {
            mut judgement,
            plan,
            live,
        } = self.assess(&spec, &command, cwd.as_deref(), p.work.edit());
        // A request that cannot reach the host whatever anyone decides (too
        // long for one SSH command line once encoded, a timeout over the
        // host's limit) is refused now, with the reason, instead of
        // failing when it is run.
        if let Err(e) = self.executor.fits(&Job {
            action_id: ActionId::new(),
            host: p.host.clone(),
            requester: p.requester.clone(),
            command: command.clone(),
            cwd: cwd.clone(),
            timeout: p.timeout,
            edit: p.work.edit().cloned(),
            approved: true,
            scope: plan.write_scope(),
        }) {
            judgement.hold(format!("it cannot be sent: {e}"));
            judgement.decision = Decision::Deny;
        }
        // Asked before the action is recorded, so a slow host leaves no
        // action sitting in `proposed` while its guard answers.
        let kernel = self.kernel_for(&p.host, judgement.decision).await;
        let id = ActionId::new();
        self.store
            .create_action_keyed(
                &NewAction {
                    id,
                    requester: p.requester.clone(),
                    host: Some(p.host.clone()),
                    command: command.clone(),
                    cwd,
                    timeout_secs: p
                        .timeout
                        .map(|t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX)),
                    kind: match &p.work {
                        Work::Command { .. } => ActionKind::Command,
                        Work::Edit(_) => ActionKind::Edit,
                    },
                    edit: p.work.edit().cloned(),
                    rollback_of: None,
                    plan: Some(plan.clone()),
                    purpose: p.purpose.clone(),
                },
                key,
            )
            .await?;
        if judgement.decision == Decision::Allow {
            let brake = self.config.loop_brake;
            let repeats = self
                .store
                .recent_repeats(Some(&p.host), &command, brake.window)
                .await?;
            if repeats >= u64::from(brake.repeats) {
                judgement.hold(format!(
                    "runaway-loop brake: the same command was proposed for {} {repeats} times in {}s; a person must look",
                    jarvis_core::text::code(p.host.as_str()),
                    brake.window.as_secs()
                ));
            }
        }
        kernel.apply(&mut judgement);
        if let Work::Command { line, cwd } = &p.work {
            self.writes_need_a_person(&p.host, line, cwd.as_deref(), &kernel, &mut judgement);
        }
        let to = match judgement.decision {
            Decision::Allow => ActionState::Approved,
            Decision::Approve => ActionState::PendingApproval,
            Decision::Deny => ActionState::Denied,
        };
        let judged = Judged {
            decision: judgement.decision,
            risk: judgement.risk,
            reasons: judgement.reasons.clone(),
        };
        let mut action = self
            .store
            .transition(
                id,
                ActionState::Proposed,
                to,
                "policy",
                Some(&judged),
                json!({
                    "rules": judgement.rules,
                    "snapshot": plan.summary(),
                    "kernel": kernel.audit(),
                }),
            )
            .await?;
        if to == ActionState::PendingApproval {
            waits(&action);
            self.attach_preview(&spec, &action, &plan, live).await?;
            action = self.store.action(id).await?;
        }
        Ok(Proposed {
            action,
            judgement,
            plan,
        })
    }

    /// Under the kernel wall an action nobody approved writes nothing (the
    /// guard grants writes only to what a person approved), so a line the
    /// policy would let write alone waits for a person instead of failing
    /// on the host. Only a host known to have no wall at all runs it as the
    /// policy says.
    fn writes_need_a_person(
        &self,
        host: &HostName,
        line: &str,
        cwd: Option<&str>,
        kernel: &KernelStanding,
        judgement: &mut Judgement,
    ) {
        let no_wall = matches!(&kernel.known,
            KernelKnown::Reported(k) if k.level == EnforcementLevel::None);
        if judgement.decision != Decision::Allow || no_wall {
            return;
        }
        let Ok(c) = self.policy.confinement(line, cwd) else {
            return;
        };
        if c.read_only() {
            return;
        }
        let place = if c.writes.is_empty() {
            "somewhere only the run will know".to_owned()
        } else {
            c.writes.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        judgement.hold(format!(
            "it writes ({place}); on {} the kernel wall lets an action write only what a person approved",
            jarvis_core::text::code(host.as_str())
        ));
    }
}
