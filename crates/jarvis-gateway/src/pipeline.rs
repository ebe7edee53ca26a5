//! The one path every action takes: propose ► judge ► (approve) ► admit ►
//! run ► record. The CLI, the web UI and the planner all call these
//! methods; none reaches a host another way.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use jarvis_core::{
    ActionId, ActionKind, ActionState, ApprovalProgress, ApprovalRefusal, ApprovalRule, Decision,
    HostName, Purpose, Risk, person,
};
use jarvis_exec::protocol::{
    AccountEnd, CheckReport, Ending, EnforcementLevel, KernelEnforcement, Refusal, RunAccount,
    StreamSummary,
};
use jarvis_exec::snapshot::{FileChange, FileEdit, RestoreReport, SnapshotPlan, SnapshotRequest};
use jarvis_exec::{Admission, ExecError, Execution, Executor, HostSpec, Job, Output, Ticket};
use jarvis_policy::scope::Live;
use jarvis_policy::{Judgement, LoadError, Policy, Request};
use jarvis_store::{
    ActionRecord, CapturedOutput, Judged, NewAction, NewEvent, RunRecord, Store, StoreError,
};
use serde_json::json;

use crate::config::{Config, Enforcement};

/// Why the gateway could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The policy files are wrong.
    #[error("policy: {0}")]
    Policy(#[from] LoadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The action names a host that is not configured.
    #[error("no host named `{0}` is configured (see `jarvis hosts list`)")]
    UnknownHost(String),
    /// The action is not in a state that allows this.
    #[error("action {id} is {state}, so it cannot be {wanted}")]
    WrongState {
        /// The action.
        id: ActionId,
        /// Its state.
        state: ActionState,
        /// What was asked.
        wanted: &'static str,
    },
    /// The approval request is older than the approval TTL.
    #[error("action {id} waited longer than {}s for approval and has expired; propose it again", .ttl.as_secs())]
    Expired {
        /// The action.
        id: ActionId,
        /// The TTL.
        ttl: Duration,
    },
    /// The action was approved but did not start within the run window:
    /// what was judged then may no longer hold, so nothing runs on it.
    #[error("action {id} was approved more than {}s ago and never started, so its approval has lapsed; propose it again", .window.as_secs())]
    ApprovalLapsed {
        /// The action.
        id: ActionId,
        /// The run window.
        window: Duration,
    },
    /// Someone other than who started a conversation tried to continue it.
    #[error(
        "conversation {id} was started by {started_by}; only they may continue it, as what it proposes counts as theirs"
    )]
    NotYourConversation {
        /// The conversation.
        id: jarvis_core::ConversationId,
        /// Who started it.
        started_by: String,
    },
    /// A follow-up to a conversation that has not ended yet.
    #[error("conversation {id} is still going; wait for it to end before saying more")]
    ConversationBusy {
        /// The conversation.
        id: jarvis_core::ConversationId,
    },
    /// A chat message with nothing in it.
    #[error("the message is empty: say what Jarvis should look into")]
    EmptyMessage,
    /// A chat message longer than anyone types.
    #[error("the message is too long: {chars} characters, at most {max}")]
    MessageTooLong {
        /// Its length.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The policy, read again just before running, now denies it.
    #[error("action {id} is denied by the policy as it is now: {}", .reasons.join("; "))]
    NowDenied {
        /// The action.
        id: ActionId,
        /// Why.
        reasons: Vec<String>,
    },
    /// The snapshot plan is not what was approved (the host config
    /// changed); the action went back to `pending_approval`.
    #[error(
        "action {id} would now snapshot differently than approved ({now}); it waits for approval again"
    )]
    PlanChanged {
        /// The action.
        id: ActionId,
        /// The plan now, in words.
        now: String,
    },
    /// The action was allowed to run unattended, but its host, under
    /// `enforcement = "required"`, can no longer confine it with the
    /// kernel; the action went back to `pending_approval`.
    #[error(
        "action {id} was allowed to run unattended, but `{host}` can no longer enforce the kernel wall ({level}); under enforcement = \"required\" it waits for a person"
    )]
    KernelUnenforced {
        /// The action.
        id: ActionId,
        /// Its host.
        host: HostName,
        /// What is known of the host's kernel wall, in words.
        level: String,
    },
    /// The snapshot before the run failed; nothing ran and the action stays
    /// approved.
    #[error("action {id} was not run: its snapshot failed: {source}")]
    SnapshotFailed {
        /// The action.
        id: ActionId,
        /// Why.
        source: ExecError,
    },
    /// A snapshot for this action already exists, so an earlier attempt
    /// got as far as taking it; it is not run on top of that.
    #[error(
        "action {id} already has a snapshot from an earlier attempt that did not finish; propose it again"
    )]
    SnapshotExists {
        /// The action.
        id: ActionId,
    },
    /// The working directory holds a character that acts on a screen
    /// instead of showing (a newline, an escape sequence, a bidi
    /// override): a person approving it would not see what it names.
    #[error("the working directory `{shown}` has {what} at byte {at}; give a plain path")]
    BadCwd {
        /// The directory, made inert for showing.
        shown: String,
        /// The first such character's byte offset.
        at: usize,
        /// The character, named (`U+001B`).
        what: String,
    },
    /// The edit is malformed.
    #[error("edit of `{path}`: {message}")]
    BadEdit {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The planner's model cannot be used.
    #[error("the model: {why}")]
    Model {
        /// Why.
        why: String,
    },
    /// The approval does not count under the approval rule.
    #[error("action {id}: {why}")]
    ApprovalRefused {
        /// The action.
        id: ActionId,
        /// Why.
        why: ApprovalRefusal,
    },
    /// The action cannot be rolled back.
    #[error("action {id} cannot be rolled back: {why}")]
    NoRollback {
        /// The action.
        id: ActionId,
        /// Why.
        why: String,
    },
    /// A rollback would put nothing back: the action changed nothing its
    /// snapshot covers, or all of it is back already. No rollback action
    /// is made.
    #[error("nothing to undo for action {id}: {why}")]
    NothingToUndo {
        /// The action.
        id: ActionId,
        /// Why, as a clause about the action ("it changed nothing that
        /// can be put back").
        why: String,
    },
    /// The executor refused before sending anything; the action stays
    /// approved and can be run again later, unless it was refused as it
    /// was proposed ([`Gateway::start_proposed`]): then it is `denied`.
    #[error("action {id} was not sent: {source}")]
    NotSent {
        /// The action.
        id: ActionId,
        /// Why.
        source: ExecError,
    },
}

/// What someone asks to run.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// Who asks (`local:alice`, `planner`).
    pub requester: String,
    /// Where.
    pub host: HostName,
    /// The command line.
    pub command: String,
    /// The directory on the host.
    pub cwd: Option<String>,
    /// A timeout other than the host's default.
    pub timeout: Option<Duration>,
    /// A file edit instead of a command (`command` is then ignored).
    pub edit: Option<FileEdit>,
    /// What the proposer says it is for, shown to whoever decides.
    pub purpose: Option<Purpose>,
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

/// The wired pipeline.
pub struct Gateway {
    config: Config,
    policy: Policy,
    store: Store,
    executor: Executor,
    /// What each host's guard last said about the host (or why it could
    /// not be asked); read by every proposal, so held only for a copy.
    facts: Mutex<HashMap<HostName, HostFacts>>,
    /// What each host's guard last said of its kernel wall, from a check or
    /// the cheaper kernel question a proposal asks.
    kernels: Mutex<HashMap<HostName, KernelFact>>,
    /// One probe at a time per host: proposals that find the same host
    /// stale wait for the first one's answer instead of asking again.
    probing: HashMap<HostName, Arc<tokio::sync::Mutex<()>>>,
    /// Runs under way in this process, so a shutdown can let them finish.
    in_flight: Arc<InFlight>,
}

/// How many runs are under way, and a wake-up for whoever waits for none.
#[derive(Debug, Default)]
struct InFlight {
    runs: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One run under way, from its snapshot to its record; counted while it
/// lives, a panic or a cancelled future included.
pub(crate) struct InFlightRun(Arc<InFlight>);

impl Drop for InFlightRun {
    fn drop(&mut self) {
        if self
            .0
            .runs
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

impl Gateway {
    /// Wires the pipeline. With `recover`, actions left `running` are marked
    /// `interrupted` (they never run twice) and those left `proposed`, never
    /// judged, are refused (never run at all): the caller passes it only when
    /// no other process that runs actions on this store is alive, since
    /// their running actions are not lost, just not finished yet.
    ///
    /// # Errors
    /// A policy or store error.
    pub async fn open(
        config: Config,
        store: Store,
        control_dir: &Path,
        recover: bool,
    ) -> Result<Gateway, GatewayError> {
        let policy = if config.policy.is_empty() {
            Policy::shipped()?
        } else {
            Policy::load(&config.policy)?
        };
        let executor = Executor::new(config.hosts.clone(), &config.global, control_dir);
        let mut interrupted = Vec::new();
        if recover {
            interrupted = store.interrupt_running("gateway").await?;
            store.refuse_unjudged("gateway").await?;
            store
                .stop_active_conversations(
                    "stopped: Jarvis was restarted while this conversation ran; start it again",
                )
                .await?;
        }
        let probing = config
            .hosts
            .iter()
            .map(|h| (h.name.clone(), Arc::default()))
            .collect();
        let gateway = Gateway {
            config,
            policy,
            store,
            executor,
            facts: Mutex::default(),
            kernels: Mutex::default(),
            probing,
            in_flight: Arc::default(),
        };
        // What the hosts' guards say became of the runs this restart cut
        // short: asked once now, and again at a later successful host
        // check if a host does not answer.
        let mut hosts = Vec::new();
        for id in interrupted {
            if let Some(host) = gateway
                .store
                .action(id)
                .await?
                .host
                .and_then(|h| HostName::parse(&h).ok())
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        }
        for host in hosts {
            gateway.settle_accounts_quietly(&host).await;
        }
        Ok(gateway)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The executor (for host checks).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

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
                plan: SnapshotPlan::for_edit(&e.path, &spec.snapshots),
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
                    plan: SnapshotPlan::for_command(&scope, &spec.snapshots),
                    live: scope.live,
                }
            }
        }
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
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
        if let Some(e) = &p.edit {
            check_edit(e)?;
        }
        if let Some(cwd) = &p.cwd {
            check_cwd(cwd)?;
        }
        let command = match &p.edit {
            Some(e) => format!("edit {}", e.path),
            None => p.command.clone(),
        };
        let Assessment {
            mut judgement,
            plan,
            live,
        } = self.assess(&spec, &p.command, p.cwd.as_deref(), p.edit.as_ref());
        // A request that cannot reach the host whatever anyone decides (too
        // long for one SSH command line once encoded, a timeout over the
        // host's limit) is refused now, with the reason, instead of
        // failing when it is run.
        if let Err(e) = self.executor.fits(&Job {
            action_id: ActionId::new().to_string(),
            host: p.host.clone(),
            requester: p.requester.clone(),
            command: p.command.clone(),
            cwd: p.cwd.clone(),
            timeout: p.timeout,
            edit: p.edit.clone(),
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
                    cwd: p.cwd.clone(),
                    timeout_secs: p
                        .timeout
                        .map(|t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX)),
                    kind: if p.edit.is_some() {
                        ActionKind::Edit
                    } else {
                        ActionKind::Command
                    },
                    edit: p.edit.as_ref().map(|e| json!(e)),
                    rollback_of: None,
                    plan: Some(json!(plan)),
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
        if p.edit.is_none() {
            self.writes_need_a_person(&p, &kernel, &mut judgement);
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

    /// A person approves a pending action. The approval counts under the
    /// configured separation-of-duties rule (for a rollback, the rule
    /// [`Gateway::approval_rule`] gives it): it may be refused (the action
    /// is theirs to answer for, or they already approved), and an action
    /// that needs several distinct approvers stays pending until it has
    /// them all.
    ///
    /// # Errors
    /// [`GatewayError::WrongState`], [`GatewayError::Expired`] (the action
    /// is moved to `expired`), [`GatewayError::ApprovalRefused`], or a
    /// store error ([`StoreError::Conflict`] when someone else decided
    /// first).
    pub async fn approve(
        &self,
        id: ActionId,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<(ActionRecord, ApprovalProgress), GatewayError> {
        let action = self.pending(id, "approved").await?;
        let rule = self.approval_rule(&action).await?;
        match self.store.approve(id, actor, reason, &rule).await {
            Err(StoreError::ApprovalRefused(why)) => Err(GatewayError::ApprovalRefused { id, why }),
            other => Ok(other?),
        }
    }

    /// The rule an action's approvals are counted under: the configured
    /// one, or for a rollback the one `[approvals] rollback` gives it
    /// ([`ApprovalRule::for_rollback`]).
    ///
    /// # Errors
    /// A store error reading what a rollback puts back.
    pub async fn approval_rule(&self, action: &ActionRecord) -> Result<ApprovalRule, GatewayError> {
        if action.kind != ActionKind::Rollback {
            return Ok(self.config.approvals);
        }
        Ok(self.rollback_rule(action).await?.0)
    }

    /// Moves every pending action that waited longer than the approval TTL,
    /// and every approved one that did not start within the run window, to
    /// `expired`, and returns them. Someone acting on one at the same moment
    /// wins or loses cleanly: the move is a compare-and-set.
    ///
    /// It reads only the overdue actions, in batches (the store finds them
    /// by an index), so a sweep over a long queue with nothing due costs
    /// one indexed lookup per state, not every waiting row.
    ///
    /// # Errors
    /// A store error.
    pub async fn expire_overdue(&self) -> Result<Vec<ActionId>, GatewayError> {
        const BATCH: i64 = 500;
        let now = SystemTime::now();
        let mut expired = Vec::new();
        for (state, wait) in [
            (ActionState::PendingApproval, self.config.approval_ttl),
            (ActionState::Approved, self.config.run_window),
        ] {
            let Some(cutoff) = now.checked_sub(wait) else {
                continue;
            };
            loop {
                let batch = self
                    .store
                    .overdue(state, time::OffsetDateTime::from(cutoff), BATCH)
                    .await?;
                let mut moved = 0;
                for action in &batch {
                    // The store answers by the second, later parts of
                    // the cutoff's second included; the deadline decides.
                    if self.deadline(action).is_none_or(|d| d > now) {
                        continue;
                    }
                    match self.lapse(action).await {
                        Ok(()) => {
                            expired.push(action.id);
                            moved += 1;
                        }
                        Err(GatewayError::Store(StoreError::Conflict { .. })) => moved += 1,
                        Err(e) => return Err(e),
                    }
                }
                // A short batch was the last; one where nothing moved would
                // come back the same.
                if batch.len() < BATCH as usize || moved == 0 {
                    break;
                }
            }
        }
        Ok(expired)
    }

    /// When a pending action expires: the approval TTL after it last
    /// entered the queue (an action sent back because its plan changed
    /// gets a whole window again).
    pub fn expires_at(&self, action: &ActionRecord) -> SystemTime {
        let since = action
            .pending_since
            .as_deref()
            .and_then(stored_time)
            .unwrap_or_else(|| time_of(action.id));
        since + self.config.approval_ttl
    }

    /// Until when an approved action may still start: the run window after
    /// its approval. A refusal by a limit or a failed snapshot leaves an
    /// action approved, and its run button must not stay live for ever:
    /// the host, the policy's view of it and the person's reasons all age.
    pub fn run_deadline(&self, action: &ActionRecord) -> SystemTime {
        // `updated_at` is when the action last changed state, and nothing
        // changes an approved action's state but leaving `approved`. If it
        // cannot be read, the proposal time stands in: earlier, so the
        // approval lapses sooner rather than later.
        let approved_at = stored_time(&action.updated_at).unwrap_or_else(|| time_of(action.id));
        approved_at + self.config.run_window
    }

    /// Refuses an approved action whose approval has lapsed, moving it to
    /// `expired` (if nobody else did first).
    ///
    /// # Errors
    /// [`GatewayError::ApprovalLapsed`], or a store error.
    pub async fn check_run_window(&self, action: &ActionRecord) -> Result<(), GatewayError> {
        if self.run_deadline(action) > SystemTime::now() {
            return Ok(());
        }
        match self.lapse(action).await {
            Ok(()) | Err(GatewayError::Store(StoreError::Conflict { .. })) => {
                Err(GatewayError::ApprovalLapsed {
                    id: action.id,
                    window: self.config.run_window,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The moment the action's current wait runs out, if it is waiting on
    /// a person (pending) or on a start (approved).
    pub fn deadline(&self, action: &ActionRecord) -> Option<SystemTime> {
        match action.state {
            ActionState::PendingApproval => Some(self.expires_at(action)),
            ActionState::Approved => Some(self.run_deadline(action)),
            _ => None,
        }
    }

    /// Moves a pending or approved action whose deadline passed to
    /// `expired`, saying which wait ran out.
    async fn lapse(&self, action: &ActionRecord) -> Result<(), GatewayError> {
        let reason = match action.state {
            ActionState::Approved => format!(
                "approved but not started within {}s",
                self.config.run_window.as_secs()
            ),
            _ => format!("no decision within {}s", self.config.approval_ttl.as_secs()),
        };
        self.store
            .transition(
                action.id,
                action.state,
                ActionState::Expired,
                "gateway",
                None,
                json!({ "reason": reason }),
            )
            .await?;
        Ok(())
    }

    /// A person rejects a pending action.
    ///
    /// # Errors
    /// As [`Gateway::approve`].
    pub async fn reject(
        &self,
        id: ActionId,
        actor: &str,
        reason: &str,
    ) -> Result<ActionRecord, GatewayError> {
        self.pending(id, "rejected").await?;
        Ok(self
            .store
            .transition(
                id,
                ActionState::PendingApproval,
                ActionState::Rejected,
                actor,
                None,
                json!({ "reason": reason }),
            )
            .await?)
    }

    async fn pending(
        &self,
        id: ActionId,
        wanted: &'static str,
    ) -> Result<ActionRecord, GatewayError> {
        let action = self.store.action(id).await?;
        if action.state != ActionState::PendingApproval {
            return Err(GatewayError::WrongState {
                id,
                state: action.state,
                wanted,
            });
        }
        if self.expires_at(&action) <= SystemTime::now() {
            self.lapse(&action).await?;
            return Err(GatewayError::Expired {
                id,
                ttl: self.config.approval_ttl,
            });
        }
        Ok(action)
    }

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
            .as_deref()
            .and_then(|h| HostName::parse(h).ok())
            .ok_or_else(|| GatewayError::UnknownHost(action.host.clone().unwrap_or_default()))?;
        let spec = self
            .config
            .host(&host)
            .ok_or_else(|| GatewayError::UnknownHost(host.to_string()))?
            .clone();
        let edit = action_edit(&action)?;
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
        if action.plan.as_ref() != Some(&json!(plan)) {
            let summary = plan.summary();
            self.store
                .replan(
                    id,
                    &json!(plan),
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
            action_id: id.to_string(),
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
        if run.ending == "lost" {
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
                    action_id: id.to_string(),
                    plan: plan.clone(),
                    keep: true,
                    volume_image: spec.snapshots.volume_image.clone(),
                },
            )
            .await;
        match taken {
            Ok(snapshot) => {
                let summary = json!({
                    "repos": snapshot.repos.iter().map(|r| &r.path).collect::<Vec<_>>(),
                    "containers": snapshot.containers.iter().map(|c| &c.name).collect::<Vec<_>>(),
                    "volumes": snapshot.volumes.iter().map(|v| &v.name).collect::<Vec<_>>(),
                    "files": snapshot.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
                    "not_captured": snapshot.not_captured,
                    "duration_ms": snapshot.duration_ms,
                });
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
                    action_id: id.to_string(),
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
                host: action.host.clone(),
                kind: "action.refused".into(),
                payload: json!({ "code": code, "reason": reason, "state": action.state.as_str() }),
            })
            .await?;
        Ok(())
    }

    /// Under the kernel wall an action nobody approved writes nothing (the
    /// guard grants writes only to what a person approved), so a line the
    /// policy would let write alone waits for a person instead of failing
    /// on the host. Only a host known to have no wall at all runs it as the
    /// policy says.
    fn writes_need_a_person(
        &self,
        p: &Proposal,
        kernel: &KernelStanding,
        judgement: &mut Judgement,
    ) {
        let no_wall = matches!(&kernel.known,
            KernelKnown::Reported(k) if k.level == EnforcementLevel::None);
        if judgement.decision != Decision::Allow || no_wall {
            return;
        }
        let Ok(c) = self.policy.confinement(&p.command, p.cwd.as_deref()) else {
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
            jarvis_core::text::code(p.host.as_str())
        ));
    }

    /// Asks a host's guard who it is and what the host has, and remembers
    /// what it says of the kernel wall (or that it could not be asked) for
    /// the proposals that follow. The server's periodic host checks come
    /// through here, so they keep what proposals read fresh.
    ///
    /// # Errors
    /// As [`Executor::check`].
    pub async fn check_host(&self, host: &HostName) -> Result<CheckReport, ExecError> {
        let result = self.executor.check(host).await;
        let report = match &result {
            Ok(r) => Ok(r.clone()),
            Err(e) => Err(e.to_string()),
        };
        let kernel = report
            .as_ref()
            .map(|r| r.enforcement.clone())
            .map_err(Clone::clone);
        self.keep_kernel(host, &kernel).await;
        self.learn_kernel(host, kernel);
        let answered = report.is_ok();
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                host.clone(),
                HostFacts {
                    report,
                    learnt_at: jarvis_store::now(),
                },
            );
        if answered {
            // The host answers again: ask it about runs whose end the
            // gateway did not hear while it did not.
            self.settle_accounts_quietly(host).await;
        }
        result
    }

    /// Asks `host`'s guard for its own account of each recent run there
    /// whose end the gateway did not hear (a `lost` run, an `interrupted`
    /// action; [`Store::accounts_due`]) and records what it says
    /// ([`Store::record_host_account`]): the action's state stays, its run
    /// record gains the host's figures and the log a `run.guard_account`
    /// event. Stops at the first question the host does not answer; what
    /// is left is asked at the next call. A guard that cannot say (one
    /// that predates the question) is recorded as such, so it is not asked
    /// for ever. Returns how many accounts were recorded.
    ///
    /// # Errors
    /// A store error.
    pub async fn settle_accounts(&self, host: &HostName) -> Result<usize, GatewayError> {
        let due = self
            .store
            .accounts_due(host, ACCOUNT_LOOKBACK, ACCOUNTS_PER_ASK)
            .await?;
        let mut recorded = 0;
        for id in due {
            let asked = self.executor.account(host, &id.to_string()).await;
            let (run, payload) = match asked {
                Ok(account) => {
                    let action = self.store.action(id).await?;
                    let timeout = action
                        .timeout_secs
                        .map(|s| Duration::from_secs(u64::from(s)))
                        .or_else(|| self.config.host(host).map(|h| h.limits.default_timeout))
                        .unwrap_or(ACCOUNT_LOOKBACK);
                    // Started with no end yet may be a guard still at work
                    // (or one that has not noticed the gateway left): asked
                    // again later, until its timeout makes the silence
                    // final.
                    let Some(run) = account_record(&account, timeout, SystemTime::now()) else {
                        continue;
                    };
                    let payload = json!({ "account": account, "run": run.summary() });
                    (run, payload)
                }
                Err(ExecError::Refused { refusal, .. }) => {
                    let run = unavailable_record(&refusal);
                    (
                        run.clone(),
                        json!({ "refusal": refusal, "run": run.summary() }),
                    )
                }
                // The host does not answer (yet): the rest waits too.
                Err(_) => break,
            };
            if self
                .store
                .record_host_account(id, host.as_str(), &run, payload)
                .await?
            {
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    /// [`Gateway::settle_accounts`] within [`ACCOUNT_BUDGET`], saying what
    /// went wrong in the log instead of failing the caller, whose own work
    /// (a run's record, a host check) is done and stands.
    async fn settle_accounts_quietly(&self, host: &HostName) {
        match tokio::time::timeout(ACCOUNT_BUDGET, self.settle_accounts(host)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(host = %host, recorded = n, "host accounts of runs recorded")
            }
            Ok(Err(e)) => {
                tracing::warn!(host = %host, error = %e, "cannot record a host's account of a run")
            }
            Err(_) => tracing::warn!(
                host = %host,
                budget_secs = ACCOUNT_BUDGET.as_secs(),
                "a host's accounts of runs took too long; the rest are asked later"
            ),
        }
    }

    /// What the host's guard last said (or why it could not be asked),
    /// however old; `None` before anyone asked.
    pub fn host_facts(&self, host: &HostName) -> Option<HostFacts> {
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    fn learn_kernel(&self, host: &HostName, known: Result<KernelEnforcement, String>) {
        self.remember_kernel(
            host,
            KernelFact {
                known,
                learnt_at: jarvis_store::now(),
                learnt: Instant::now(),
            },
        );
    }

    fn remember_kernel(&self, host: &HostName, fact: KernelFact) {
        self.kernels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.clone(), fact);
    }

    fn kernel_fact(&self, host: &HostName) -> Option<KernelFact> {
        self.kernels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    /// A host's kernel wall as last learnt, and what its `enforcement`
    /// makes of it. Asks nobody.
    pub fn kernel_standing(&self, host: &HostName) -> KernelStanding {
        let fact = self.kernel_fact(host);
        KernelStanding {
            host: host.clone(),
            enforcement: self.config.enforcement(host),
            known: match &fact {
                None => KernelKnown::NotChecked,
                Some(f) => match &f.known {
                    Ok(k) => KernelKnown::Reported(k.clone()),
                    Err(why) => KernelKnown::Unreachable(why.clone()),
                },
            },
            learnt_at: fact.map(|f| f.learnt_at),
        }
    }

    /// The standing a `decision` on `host` is measured against. Only an
    /// action the policy would let run alone on a host whose owner
    /// requires the kernel wall depends on it, so only then is the host
    /// asked (when nothing, or nothing from the last [`KERNEL_FRESH`], is
    /// known). A best-effort host is never asked on the way: a probe that
    /// fails counts against the host's circuit breaker like a failed run,
    /// and there nothing waits on the answer.
    async fn kernel_for(&self, host: &HostName, decision: Decision) -> KernelStanding {
        if decision != Decision::Allow || self.config.enforcement(host) != Enforcement::Required {
            return self.kernel_standing(host);
        }
        let fresh = |gw: &Gateway| {
            gw.kernel_fact(host)
                .is_some_and(|f| f.learnt.elapsed() < KERNEL_FRESH)
        };
        if !fresh(self)
            && let Some(lock) = self.probing.get(host)
        {
            let _probe = lock.lock().await;
            // Someone else's probe may have answered while this one waited,
            // here or in another process sharing the store.
            if !fresh(self) && !self.recall_kernel(host).await {
                // The kernel question, not a whole check: it loads no
                // policy and probes nothing, so a proposal can afford it.
                let known = self
                    .executor
                    .kernel(host)
                    .await
                    .map(|r| r.enforcement)
                    .map_err(|e| e.to_string());
                self.keep_kernel(host, &known).await;
                self.learn_kernel(host, known);
            }
        }
        self.kernel_standing(host)
    }

    /// Learns what `host`'s guard said of its kernel wall less than
    /// [`KERNEL_FRESH`] ago, as another process kept it in the store;
    /// whether there was such an answer. A `jarvis` command lives for one
    /// action, so without this each would ask the host first.
    async fn recall_kernel(&self, host: &HostName) -> bool {
        let Ok(Some(kept)) = self.store.host_kernel(host.as_str()).await else {
            return false;
        };
        if self.executor.connection_id(host).as_ref() != Some(&kept.connection) {
            return false;
        }
        let now = jarvis_store::OffsetDateTime::now_utc();
        let (Some(age), Ok(report)) = (
            fresh_for(&kept.learnt_at, now),
            serde_json::from_str(&kept.report),
        ) else {
            return false;
        };
        let Some(learnt) = Instant::now().checked_sub(age) else {
            return false;
        };
        self.remember_kernel(
            host,
            KernelFact {
                known: Ok(report),
                learnt_at: kept.learnt_at,
                learnt,
            },
        );
        true
    }

    /// Keeps a host's answer about its kernel wall in the store for other
    /// processes ([`Gateway::recall_kernel`]). Only an answer: a host that
    /// could not be asked is asked again by the next one. A cache that
    /// cannot be written costs the next process a question, nothing more.
    async fn keep_kernel(&self, host: &HostName, known: &Result<KernelEnforcement, String>) {
        let (Ok(report), Some(connection)) = (known, self.executor.connection_id(host)) else {
            return;
        };
        let Ok(json) = serde_json::to_string(report) else {
            return;
        };
        if let Err(e) = self
            .store
            .record_host_kernel(host.as_str(), &connection, &json)
            .await
        {
            tracing::warn!(host = %host, error = %e, "cannot keep a host's kernel report");
        }
    }

    /// Closes SSH connections.
    pub async fn close(&self) {
        self.executor.close().await;
    }

    /// Counts a run as under way until the returned guard drops.
    pub(crate) fn run_in_flight(&self) -> InFlightRun {
        self.in_flight
            .runs
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightRun(Arc::clone(&self.in_flight))
    }

    /// How many runs are under way in this process.
    pub fn runs_in_flight(&self) -> usize {
        self.in_flight
            .runs
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no run is under way in this process, or `grace` has
    /// passed; returns how many are still running then. A shutdown calls it
    /// after it stopped taking requests, so a routine restart lets work
    /// finish instead of cutting it off (what is still running when the
    /// grace ends is interrupted, and recorded so, as before).
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Registered before the count is read, so a run that ends in
            // between still wakes this.
            let idle = self.in_flight.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let running = self.runs_in_flight();
            if running == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.runs_in_flight();
            }
        }
    }
}

/// How long what a host's guard said about its kernel counts as current
/// when a proposal depends on it. Twice the server's default host-check
/// period, so a server's periodic checks keep it fresh and a proposal
/// rarely waits on a probe; short enough that a host whose kernel or forced
/// command changed is noticed within minutes, not at the next restart.
pub const KERNEL_FRESH: Duration = Duration::from_secs(120);

/// How far back the gateway asks hosts about runs it did not hear end; a
/// guard reads only its log's tail, so older runs would have no record.
pub const ACCOUNT_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

/// At most this many runs are asked about per host at a time, newest first.
const ACCOUNTS_PER_ASK: u32 = 20;

/// How long one round of asking a host about runs may take, so a run's
/// record or a host check is not held up by a host that answers slowly.
const ACCOUNT_BUDGET: Duration = Duration::from_secs(10);

/// How long after a run's timeout its guard's silence counts: a guard
/// that logged the start and no end by then was itself stopped (the host's
/// clock may also differ from the gateway's by this much).
const ACCOUNT_GRACE: Duration = Duration::from_secs(60);

/// What a host's guard last said about the host, or why it could not be
/// asked.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The guard's report, or the error of asking it.
    pub report: Result<CheckReport, String>,
    /// When it was learnt, as the store writes times.
    pub learnt_at: String,
}

/// How old a kernel report learnt at `learnt_at` is at `now`, if it is
/// still fresh ([`KERNEL_FRESH`]). A time this side cannot read, or one
/// ahead of `now` (a clock set back since), is never fresh.
fn fresh_for(learnt_at: &str, now: jarvis_store::OffsetDateTime) -> Option<Duration> {
    let at = jarvis_store::parse_time(learnt_at).ok()?;
    Duration::try_from(now - at)
        .ok()
        .filter(|age| *age < KERNEL_FRESH)
}

/// What a host's guard last said of its kernel wall, or why it could not
/// be asked.
#[derive(Debug, Clone)]
struct KernelFact {
    known: Result<KernelEnforcement, String>,
    learnt_at: String,
    learnt: Instant,
}

/// What the gateway knows of a host's kernel wall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelKnown {
    /// The host's guard said.
    Reported(KernelEnforcement),
    /// The host's guard could not be asked; why.
    Unreachable(String),
    /// Nobody has asked yet.
    NotChecked,
}

/// A host's kernel wall and what its `enforcement` setting makes of it:
/// the one verdict that proposals, runs, `jarvis hosts check` and the
/// hosts page share, so they cannot disagree.
#[derive(Debug, Clone)]
pub struct KernelStanding {
    /// The host.
    pub host: HostName,
    /// Its owner's setting.
    pub enforcement: Enforcement,
    /// What is known of its kernel wall.
    pub known: KernelKnown,
    /// When that was learnt (`None` when nobody asked).
    pub learnt_at: Option<String>,
}

impl KernelStanding {
    /// Whether the kernel enforces every right the guard asks it for.
    pub fn full(&self) -> bool {
        matches!(&self.known, KernelKnown::Reported(k) if k.level == EnforcementLevel::Full)
    }

    /// Whether an action the policy allows may run without a person: the
    /// kernel holds it to the judgement, or the owner said best-effort.
    pub fn unattended(&self) -> bool {
        self.full() || self.enforcement == Enforcement::BestEffort
    }

    /// `full`, `partial`, `none` or `unknown`.
    pub fn level_word(&self) -> &'static str {
        match &self.known {
            KernelKnown::Reported(k) => k.level.as_str(),
            _ => "unknown",
        }
    }

    /// The level in words: `full (Landlock ABI 7)`, `none: switched off
    /// by …`, `partial (Landlock ABI 3): missing …`, `unknown: …`.
    pub fn level(&self) -> String {
        match &self.known {
            KernelKnown::Reported(k) => {
                let abi = k
                    .landlock_abi
                    .map(|v| format!(" (Landlock ABI {v})"))
                    .unwrap_or_default();
                let missing = k.missing.join(", ");
                match k.level {
                    EnforcementLevel::Full => format!("full{abi}"),
                    // What is left out of a partial wall is a list of rights.
                    EnforcementLevel::Partial => format!("partial{abi}: missing {missing}"),
                    // A host with no wall says why in the one entry.
                    EnforcementLevel::None if missing.is_empty() => format!("none{abi}"),
                    EnforcementLevel::None => format!("none{abi}: {missing}"),
                }
            }
            KernelKnown::Unreachable(why) => format!("unknown: the host could not be asked: {why}"),
            KernelKnown::NotChecked => "unknown: not checked yet".into(),
        }
    }

    /// What follows for actions the policy allows on this host.
    pub fn consequence(&self) -> &'static str {
        match (self.full(), self.enforcement) {
            (true, _) => "unattended actions allowed",
            (false, Enforcement::Required) => "every action waits for a person",
            (false, Enforcement::BestEffort) => {
                "unattended actions run without the full kernel wall"
            }
        }
    }

    /// Why an action on this host is held for a person, or (best-effort)
    /// runs without the full wall; `None` when the wall is whole.
    pub fn reason(&self) -> Option<String> {
        if self.full() {
            return None;
        }
        let host = &self.host;
        let level = self.level();
        let what = match &self.known {
            KernelKnown::Reported(k) if k.level == EnforcementLevel::Partial => {
                format!("`{host}` enforces only part of the kernel wall ({level})")
            }
            KernelKnown::Reported(_) => {
                format!("`{host}` cannot enforce the kernel wall ({level})")
            }
            KernelKnown::Unreachable(why) => format!(
                "whether `{host}` can enforce the kernel wall is not known (its guard could not be asked: {why})"
            ),
            KernelKnown::NotChecked => {
                format!(
                    "whether `{host}` can enforce the kernel wall is not known (not checked yet)"
                )
            }
        };
        Some(match self.enforcement {
            Enforcement::Required => format!(
                "{what}; under enforcement = \"required\" every action on it waits for a person"
            ),
            Enforcement::BestEffort => {
                format!("{what}; under enforcement = \"best-effort\" it runs as the policy says")
            }
        })
    }

    /// Applies the setting to a judgement: an action the policy would let
    /// run alone waits for a person instead when the host requires a
    /// kernel wall it lacks (or cannot be asked about). A denial stays a
    /// denial. Where the wall is known to be missing and the action goes
    /// ahead or waits anyway, the reason is added for whoever looks.
    pub fn apply(&self, judgement: &mut Judgement) {
        let Some(why) = self.reason() else {
            return;
        };
        match judgement.decision {
            Decision::Deny => {}
            Decision::Allow if !self.unattended() => judgement.hold(why),
            _ if matches!(self.known, KernelKnown::Reported(_)) => judgement.reasons.push(why),
            _ => {}
        }
    }

    /// The standing as an audit event records it.
    pub fn audit(&self) -> serde_json::Value {
        json!({
            "enforcement": self.enforcement.as_str(),
            "level": self.level_word(),
            "detail": self.level(),
            "learnt_at": self.learnt_at,
            "unattended_allowed": self.unattended(),
        })
    }
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
pub(crate) fn action_edit(action: &ActionRecord) -> Result<Option<FileEdit>, GatewayError> {
    match (&action.kind, &action.edit) {
        (ActionKind::Edit, Some(v)) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            GatewayError::Store(StoreError::Corrupt(format!(
                "edit of action {}: {e}",
                action.id
            )))
        }),
        _ => Ok(None),
    }
}

/// A time the store wrote, or `None` if it cannot be read.
fn stored_time(t: &str) -> Option<SystemTime> {
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
                _ => ActionState::Failed,
            };
            let ending = match o.ending {
                Ending::Exited => "exited",
                Ending::Signalled => "signalled",
                Ending::TimedOut => "timed_out",
            };
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

/// What the host guard's account of a run (`account`) makes of it, as a
/// run record whose outputs are counts and hashes only (`data` is never
/// sent). `None` while it may not be final: started, no end yet, and its
/// `timeout` and [`ACCOUNT_GRACE`] not yet over since the start, by `now`.
pub(crate) fn account_record(
    account: &RunAccount,
    timeout: Duration,
    now: SystemTime,
) -> Option<RunRecord> {
    let asked = jarvis_store::now();
    let start_at = account.started.as_ref().map(|s| s.at.clone());
    let end_at = account.ended.as_ref().map(|e| e.at().to_owned());
    let between = |from: &Option<String>, to: &Option<String>| {
        let from = stored_time(from.as_deref()?)?;
        let to = stored_time(to.as_deref()?)?;
        to.duration_since(from).ok()
    };
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut run = RunRecord {
        started_at: start_at
            .clone()
            .or_else(|| end_at.clone())
            .unwrap_or_else(|| asked.clone()),
        finished_at: end_at.clone().unwrap_or_else(|| asked.clone()),
        ending: String::new(),
        exit_code: None,
        signal: None,
        duration_ms: between(&start_at, &end_at).map(ms).unwrap_or(0),
        killed: 0,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        error: None,
        kernel: account.started.as_ref().and_then(|s| s.kernel.clone()),
        host_account: None,
    };
    match (&account.started, &account.ended) {
        (_, Some(AccountEnd::Ran { outcome: o, .. })) => {
            run.ending = match o.ending {
                Ending::Exited => "exited",
                Ending::Signalled => "signalled",
                Ending::TimedOut => "timed_out",
            }
            .into();
            run.exit_code = o.exit_code;
            run.signal = o.signal;
            run.duration_ms = o.duration_ms;
            run.killed = o.killed;
            let counted = |s: &StreamSummary| CapturedOutput {
                data: Vec::new(),
                bytes: s.bytes,
                sha256: s.sha256.clone(),
                // Nothing of it reached the gateway.
                truncated: s.bytes > 0,
            };
            run.stdout = counted(&o.stdout);
            run.stderr = counted(&o.stderr);
            run.kernel = o.kernel.clone().or(run.kernel);
            run.error = (o.ending == Ending::TimedOut)
                .then(|| "timed out; the guard killed its whole process tree".to_owned());
        }
        (
            started,
            Some(AccountEnd::Refused {
                code,
                reasons,
                duration_ms,
                ..
            }),
        ) => {
            if let Some(d) = duration_ms {
                run.duration_ms = *d;
            }
            let why = reasons.join("; ");
            let (ending, error) = match (started, code.as_str()) {
                (Some(_), "client-gone") => (
                    "killed-gateway-gone".to_owned(),
                    if why.is_empty() {
                        "the gateway disconnected; the command was killed".to_owned()
                    } else {
                        why
                    },
                ),
                (Some(_), _) => (
                    "refused".to_owned(),
                    format!("the host's guard stopped it after it started ({code}): {why}"),
                ),
                (None, _) => (
                    "refused".to_owned(),
                    format!("the host's guard refused it before it started ({code}): {why}"),
                ),
            };
            run.ending = ending;
            run.error = Some(error);
        }
        (Some(start), None) => {
            let since = stored_time(&start.at)
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if since < timeout + ACCOUNT_GRACE {
                return None;
            }
            run.ending = "guard-gone".into();
            run.error = Some(
                "the host's guard logged its start and nothing after: the guard itself was \
                 stopped (killed, or the host went down) while the command ran"
                    .into(),
            );
        }
        (None, None) if account.whole_log => {
            run.ending = "never-started".into();
            run.error = Some("the host's guard has no record of it: it never started".into());
        }
        (None, None) => {
            run.ending = "no-record".into();
            run.error = Some(format!(
                "the host's guard has no record of it in the last {} MiB of its log",
                account.read_bytes >> 20
            ));
        }
    }
    Some(run)
}

/// The record of a guard that refused to give its account (one that
/// predates the question, or cannot read its log).
fn unavailable_record(refusal: &Refusal) -> RunRecord {
    let now = jarvis_store::now();
    RunRecord {
        started_at: now.clone(),
        finished_at: now,
        ending: "unavailable".into(),
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
        ExecError::Refused { .. } => "refused",
        e if e.may_have_run() => "lost",
        // Refused or failed on this side: nothing reached the host.
        ExecError::Transport(t) if t.is_local() => "not-sent",
        ExecError::Transport(_) => "unreachable",
        _ => "not-sent",
    };
    RunRecord {
        started_at,
        finished_at: jarvis_store::now(),
        ending: ending.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_kernel_report_is_fresh_only_within_its_window_and_never_from_the_future() {
        let now = jarvis_store::parse_time("2026-12-07T10:00:00Z").expect("time");
        let at = |t: &str| fresh_for(t, now);
        assert_eq!(at("2026-12-07T09:59:30Z"), Some(Duration::from_secs(30)));
        assert_eq!(at("2026-12-07T10:00:00Z"), Some(Duration::ZERO));
        assert_eq!(at("2026-12-07T09:58:00Z"), None, "120 s is stale");
        assert_eq!(at("2026-12-07T10:00:01Z"), None, "a clock set back");
        assert_eq!(at("yesterday"), None);
    }

    fn standing(enforcement: Enforcement, known: KernelKnown) -> KernelStanding {
        KernelStanding {
            host: HostName::parse("sandbox-nokernel").expect("name"),
            enforcement,
            known,
            learnt_at: None,
        }
    }

    fn reported(level: EnforcementLevel, abi: Option<u32>, missing: &[&str]) -> KernelKnown {
        KernelKnown::Reported(KernelEnforcement {
            level,
            landlock_abi: abi,
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    fn judged(command: &str) -> Judgement {
        Policy::shipped()
            .expect("the shipped policy loads")
            .judge(&Request::new(command))
    }

    const OFF: &str = "switched off by the host's forced command (--kernel off)";

    #[test]
    fn a_host_without_the_wall_holds_what_the_policy_allows_under_required() {
        let s = standing(
            Enforcement::Required,
            reported(EnforcementLevel::None, None, &[OFF]),
        );
        let mut j = judged("uptime");
        assert_eq!(j.decision, Decision::Allow, "{:?}", j.reasons);
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert_eq!(
            j.reasons[0],
            "`sandbox-nokernel` cannot enforce the kernel wall (none: switched off by the host's forced command (--kernel off)); under enforcement = \"required\" every action on it waits for a person"
        );
        assert_eq!(s.consequence(), "every action waits for a person");
        assert!(!s.unattended());
    }

    #[test]
    fn deny_stays_deny_and_a_pending_action_learns_why() {
        let s = standing(
            Enforcement::Required,
            reported(
                EnforcementLevel::Partial,
                Some(3),
                &["TCP connect and bind (Landlock ABI 4)"],
            ),
        );
        let mut j = judged("rm -rf /");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Deny);
        assert_eq!(j.reasons, before, "a denial needs no word about the kernel");
        let mut j = judged("systemctl restart nginx");
        assert_eq!(j.decision, Decision::Approve, "{:?}", j.reasons);
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert!(
            j.reasons.last().is_some_and(|r| r.contains(
                "enforces only part of the kernel wall (partial (Landlock ABI 3): missing TCP connect and bind (Landlock ABI 4))"
            )),
            "{:?}",
            j.reasons
        );
    }

    #[test]
    fn a_host_that_cannot_be_asked_holds_under_required_only() {
        let unknown = KernelKnown::Unreachable("cannot connect to `x`".into());
        let s = standing(Enforcement::Required, unknown.clone());
        let mut j = judged("uptime");
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert!(
            j.reasons[0].contains("its guard could not be asked: cannot connect to `x`"),
            "{:?}",
            j.reasons
        );
        assert_eq!(s.level_word(), "unknown");
        // Best-effort: the policy decides, and a guess is no reason.
        let s = standing(Enforcement::BestEffort, unknown);
        let mut j = judged("uptime");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Allow);
        assert_eq!(j.reasons, before);
    }

    #[test]
    fn best_effort_runs_as_the_policy_says_and_says_what_is_missing() {
        let s = standing(
            Enforcement::BestEffort,
            reported(EnforcementLevel::None, None, &[OFF]),
        );
        let mut j = judged("uptime");
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Allow);
        assert!(
            j.reasons
                .last()
                .is_some_and(|r| r
                    .ends_with("under enforcement = \"best-effort\" it runs as the policy says")),
            "{:?}",
            j.reasons
        );
        assert!(s.unattended());
        assert_eq!(s.audit()["level"], "none");
        assert_eq!(s.audit()["enforcement"], "best-effort");
    }

    #[test]
    fn a_whole_wall_changes_nothing() {
        let s = standing(
            Enforcement::Required,
            reported(EnforcementLevel::Full, Some(7), &[]),
        );
        assert_eq!(s.level(), "full (Landlock ABI 7)");
        assert_eq!(s.consequence(), "unattended actions allowed");
        assert_eq!(s.reason(), None);
        let mut j = judged("uptime");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!((j.decision, j.reasons), (Decision::Allow, before));
    }

    fn account(started: Option<&str>, ended: Option<AccountEnd>, whole_log: bool) -> RunAccount {
        RunAccount {
            action_id: ActionId::new().to_string(),
            started: started.map(|at| jarvis_exec::protocol::AccountStart {
                at: at.into(),
                kernel: Some("read-only, runs 1 program, no network".into()),
                approved: false,
            }),
            ended,
            read_bytes: 8 << 20,
            whole_log,
        }
    }

    fn at(t: &str) -> SystemTime {
        stored_time(t).expect("time")
    }

    #[test]
    fn a_guard_account_becomes_a_run_record_in_the_guards_figures() {
        let minute = Duration::from_secs(60);
        let now = at("2026-12-07T04:10:00Z");
        let gone = account(
            Some("2026-12-07T04:00:00Z"),
            Some(AccountEnd::Refused {
                at: "2026-12-07T04:00:01.5Z".into(),
                code: "client-gone".into(),
                reasons: vec!["the gateway disconnected; the command was killed".into()],
                duration_ms: None,
            }),
            true,
        );
        let run = account_record(&gone, minute, now).expect("final");
        assert_eq!(run.ending, "killed-gateway-gone");
        // Without a logged length, the two lines' times give it.
        assert_eq!(run.duration_ms, 1_500);
        assert_eq!(run.started_at, "2026-12-07T04:00:00Z");
        assert_eq!(
            run.error.as_deref(),
            Some("the gateway disconnected; the command was killed")
        );
        assert!(run.kernel.is_some());

        let outcome = jarvis_exec::protocol::Outcome {
            ending: Ending::Exited,
            exit_code: Some(3),
            signal: None,
            duration_ms: 42,
            stdout: StreamSummary {
                bytes: 5,
                sha256: "ab".into(),
                truncated: false,
            },
            stderr: StreamSummary::default(),
            killed: 1,
            kernel: Some("k".into()),
        };
        let ran = account(
            Some("2026-12-07T04:00:00Z"),
            Some(AccountEnd::Ran {
                at: "2026-12-07T04:00:01Z".into(),
                outcome,
            }),
            true,
        );
        let run = account_record(&ran, minute, now).expect("final");
        assert_eq!(
            (
                run.ending.as_str(),
                run.exit_code,
                run.duration_ms,
                run.killed
            ),
            ("exited", Some(3), 42, 1)
        );
        // Counted on the host, never sent: marked as not all here.
        assert!(run.stdout.truncated && run.stdout.data.is_empty() && run.stdout.bytes == 5);

        // Started, no end: not final while the guard may still be at work.
        let silent = account(Some("2026-12-07T04:09:30Z"), None, true);
        assert_eq!(account_record(&silent, minute, now), None);
        let silent = account(Some("2026-12-07T04:00:00Z"), None, true);
        let run = account_record(&silent, minute, now).expect("final by now");
        assert_eq!(run.ending, "guard-gone");

        let refused = account(
            None,
            Some(AccountEnd::Refused {
                at: "2026-12-07T04:00:00Z".into(),
                code: "host-policy".into(),
                reasons: vec!["the host policy denies this command".into()],
                duration_ms: None,
            }),
            true,
        );
        let run = account_record(&refused, minute, now).expect("final");
        assert_eq!(run.ending, "refused");
        assert!(run.error.is_some_and(|e| e.contains("before it started")));

        let none = account(None, None, true);
        let run = account_record(&none, minute, now).expect("final");
        assert_eq!(run.ending, "never-started");
        assert_eq!(
            run.error.as_deref(),
            Some("the host's guard has no record of it: it never started")
        );
        let none = account(None, None, false);
        let run = account_record(&none, minute, now).expect("final");
        assert_eq!(run.ending, "no-record");
        assert!(run.error.is_some_and(|e| e.contains("last 8 MiB")));
    }
}
