//! An in-process stand-in for `jarvis-guard`, for tests that want the
//! gateway's whole path without a host: it implements [`Transport`] and
//! answers each protocol request with the frames the real guard would send
//! (a greeting, output, then the last frame), as scripted by the test.
//!
//! It owns only the scripting of answers and the record of what it was
//! asked. It must never run anything, touch the filesystem or decide
//! whether an action may run: the policy, the approvals and the executor's
//! limits stay in front of it exactly as they stand in front of SSH.
//!
//! It sits behind the `fake-guard` cargo feature, off by default, so the
//! gateway's binaries do not carry a host that answers "done" to anything;
//! the tests crate turns it on, and this crate's own unit tests build it
//! too. A feature rather than `#[cfg(test)]` alone because the tests that
//! drive the gateway on it live in another crate.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jarvis_core::ActionId;
use sha2::{Digest, Sha256};

use crate::protocol::{
    CheckReport, Ending, EnforcementLevel, Frame, FrameDecoder, Hello, KernelEnforcement,
    KernelReport, MAX_REQUEST, Outcome, PROTOCOL_VERSION, Refusal, Request, RunAccount,
    StreamSummary,
};
use crate::snapshot::{
    DropReport, FileState, PlanTarget, PreviewBasis, PreviewKind, PreviewReport, RepoState,
    RestoreReport, RestoredTarget, Snapshot, SnapshotPlan, TargetOutcome, TargetState, VolumeState,
};
use crate::transport::{BoxFuture, Transport, TransportError};

/// How the fake answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole answer: `output` frames (stdout, stderr) after the
    /// greeting, then `last`.
    Frames {
        /// Frames before the last, in order.
        output: Vec<Frame>,
        /// The frame that ends the answer (boxed: a report is large).
        last: Box<Frame>,
    },
    /// A run that exits by itself with `code`, having written `stdout` and
    /// `stderr` (sent up to the request's output cap, as the guard does).
    Exit {
        /// The exit code.
        code: i32,
        /// What it wrote to stdout.
        stdout: Vec<u8>,
        /// What it wrote to stderr.
        stderr: Vec<u8>,
    },
    /// A run the guard killed at its timeout.
    TimedOut,
    /// The guard refused the request; nothing ran.
    Refuse {
        /// The refusal's code (`host-policy`, `bad-request`, …).
        code: String,
        /// Why.
        reason: String,
    },
    /// No connection could be made: the request was never sent.
    NeverSent,
    /// The link broke after the greeting: the request may have run.
    Broken,
    /// The greeting came, then nothing for longer than the caller's
    /// silence bound; answered at once as the silence running out would.
    Silent,
    /// The greeting came, then nothing: the answer waits out the caller's
    /// whole silence bound before it fails as [`Reply::Silent`], so a run
    /// stays under way meanwhile.
    Hang,
}

impl Reply {
    /// A run that exits 0 with `stdout`.
    pub fn ok(stdout: &str) -> Reply {
        Reply::Exit {
            code: 0,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    /// A refusal with `code` and one reason.
    pub fn refuse(code: &str, reason: &str) -> Reply {
        Reply::Refuse {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

type Matcher = Box<dyn Fn(&Request) -> bool + Send + Sync>;

#[derive(Default)]
struct State {
    /// Scripted answers, newest first; the first that matches answers.
    rules: Vec<(Matcher, Reply)>,
    requests: Vec<Request>,
    /// How many runs, edits and restores have been answered: the host's
    /// state as snapshots see it, so one taken after a run differs from
    /// one taken before (as the gateway's "nothing to undo" check needs).
    generation: u64,
}

/// A fake guard for one or more hosts. Cloning it gives another handle on
/// the same script and record, so a test keeps one while the executor
/// holds another.
#[derive(Clone, Default)]
pub struct FakeGuard {
    state: Arc<Mutex<State>>,
    name: String,
}

impl std::fmt::Debug for FakeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGuard")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FakeGuard {
    /// A guard that answers every request as a healthy host with a full
    /// kernel wall would, and runs every command to exit 0 with no output.
    /// `name` is the host's name in errors and its connection id.
    pub fn new(name: &str) -> FakeGuard {
        FakeGuard {
            state: Arc::default(),
            name: name.to_owned(),
        }
    }

    /// This guard as the executor takes it.
    pub fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers every request `matches` accepts with `reply`, from now on;
    /// a later script takes precedence over an earlier one.
    pub fn answer(
        &self,
        matches: impl Fn(&Request) -> bool + Send + Sync + 'static,
        reply: Reply,
    ) -> &Self {
        self.state().rules.insert(0, (Box::new(matches), reply));
        self
    }

    /// Answers every run whose command line contains `needle` with `reply`.
    pub fn on_command(&self, needle: &str, reply: Reply) -> &Self {
        let needle = needle.to_owned();
        self.answer(
            move |r| matches!(r, Request::Run(run) if run.command.contains(&needle)),
            reply,
        )
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// The command lines of the run requests received, in order.
    pub fn commands(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::Run(run) => Some(run.command),
                Request::Check
                | Request::Kernel
                | Request::Snapshot(_)
                | Request::Restore(_)
                | Request::Preview(_)
                | Request::Edit(_)
                | Request::Drop(_)
                | Request::Account(_) => None,
            })
            .collect()
    }

    /// How many requests `which` accepts were received.
    pub fn count(&self, which: impl Fn(&Request) -> bool) -> usize {
        self.state().requests.iter().filter(|r| which(r)).count()
    }

    /// The reply to `request`, which is recorded.
    fn reply_for(&self, request: &Request) -> Reply {
        let mut state = self.state();
        state.requests.push(request.clone());
        let reply = state
            .rules
            .iter()
            .find(|(m, _)| m(request))
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| default_reply(request, state.generation));
        let changes = match &reply {
            Reply::Exit { .. } | Reply::TimedOut => true,
            Reply::Frames { last, .. } => matches!(**last, Frame::Restored(_)),
            Reply::Refuse { .. }
            | Reply::NeverSent
            | Reply::Broken
            | Reply::Silent
            | Reply::Hang => false,
        };
        if changes {
            state.generation += 1;
        }
        reply
    }

    async fn serve(
        &self,
        request: &Request,
        silence: Duration,
        on_frame: &mut (dyn FnMut(&Frame) + Send),
    ) -> Result<Frame, TransportError> {
        let line = request.encode();
        if line.len() > MAX_REQUEST {
            return Err(TransportError::Local {
                host: self.name.clone(),
                detail: format!(
                    "the request is {} bytes once encoded, over the {MAX_REQUEST}-byte limit",
                    line.len()
                ),
            });
        }
        // What reaches the guard is the line, not the value: parsed back
        // as the guard parses it, so a request it could not read fails here.
        let request = Request::parse(&line).map_err(|e| TransportError::Local {
            host: self.name.clone(),
            detail: format!("the request does not read back: {e}"),
        })?;
        let reply = self.reply_for(&request);
        let host = self.name.clone();
        if matches!(reply, Reply::NeverSent) {
            return Err(TransportError::Connect {
                host,
                detail: "the fake guard was told to be unreachable".into(),
            });
        }
        on_frame(&Frame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            guard_version: "fake".into(),
        }));
        match reply {
            Reply::Broken => {
                return Err(TransportError::Broken {
                    host,
                    detail: "the fake guard was told to break the link after the request".into(),
                });
            }
            Reply::Hang => {
                tokio::time::sleep(silence).await;
                return Err(TransportError::Silent {
                    host,
                    silent: silence,
                });
            }
            Reply::Silent => {
                return Err(TransportError::Silent {
                    host,
                    silent: silence,
                });
            }
            Reply::Frames { .. }
            | Reply::Exit { .. }
            | Reply::TimedOut
            | Reply::Refuse { .. }
            | Reply::NeverSent => {}
        }
        let (output, last) = frames(&request, reply);
        for frame in output {
            on_frame(&wire(&self.name, &frame)?);
        }
        wire(&self.name, &last)
    }
}

/// `frame` as the gateway's decoder reads it off the wire, so the fake
/// never answers what the real decoder would reject.
fn wire(host: &str, frame: &Frame) -> Result<Frame, TransportError> {
    let mut decoder = FrameDecoder::new();
    decoder.push(&frame.encode());
    match decoder.next_frame() {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(TransportError::Protocol {
            host: host.into(),
            detail: "the fake guard's frame is incomplete".into(),
        }),
        Err(e) => Err(TransportError::Protocol {
            host: host.into(),
            detail: e.to_string(),
        }),
    }
}

impl Transport for FakeGuard {
    fn exchange<'a>(
        &'a self,
        request: &'a Request,
        silence: Duration,
        on_frame: &'a mut (dyn FnMut(&Frame) + Send),
    ) -> BoxFuture<'a, Result<Frame, TransportError>> {
        Box::pin(self.serve(request, silence, on_frame))
    }

    fn control_socket(&self) -> BoxFuture<'_, Option<PathBuf>> {
        Box::pin(async { None })
    }

    fn connection_id(&self) -> Option<String> {
        Some(format!("fake:{}", self.name))
    }
}

/// What a healthy host with a full kernel wall answers.
fn default_reply(request: &Request, generation: u64) -> Reply {
    match request {
        Request::Run(_) => Reply::ok(""),
        Request::Edit(edit) => Reply::ok(&format!("edited {}\n", edit.edit.path)),
        Request::Check
        | Request::Kernel
        | Request::Snapshot(_)
        | Request::Restore(_)
        | Request::Preview(_)
        | Request::Drop(_)
        | Request::Account(_) => Reply::Frames {
            output: Vec::new(),
            last: Box::new(default_last(request, generation)),
        },
    }
}

fn default_last(request: &Request, generation: u64) -> Frame {
    let enforcement = KernelEnforcement {
        level: EnforcementLevel::Full,
        landlock_abi: Some(6),
        missing: Vec::new(),
    };
    match request {
        Request::Check => Frame::Checked(CheckReport {
            hostname: "fake".into(),
            user: "jarvis".into(),
            policy: Vec::new(),
            policy_rules: 0,
            docker: None,
            git: Some("git version 2.43.0".into()),
            bash: Some("GNU bash, version 5.2.21(1)-release".into()),
            enforcement,
        }),
        Request::Kernel => Frame::Kernel(KernelReport {
            bash: Some("/usr/bin/bash".into()),
            enforcement,
        }),
        Request::Snapshot(s) => {
            Frame::Snapshotted(snapshot_of(s.action_id, &s.plan, s.keep, generation))
        }
        Request::Restore(r) if !r.target.kept => Frame::Refused(Refusal {
            code: "bad-request".into(),
            reasons: vec![
                "the snapshot to restore holds fingerprints only, nothing to restore from".into(),
            ],
        }),
        Request::Restore(r) => {
            let targets = targets_of(&r.target, r.check_only);
            let plan = r.target.plan();
            Frame::Restored(RestoreReport {
                before: (!r.check_only).then(|| snapshot_of(r.action_id, &plan, true, generation)),
                after: (!r.check_only)
                    .then(|| snapshot_of(r.action_id, &plan, false, generation + 1)),
                complete: !r.check_only || targets.is_empty(),
                targets,
                duration_ms: 1,
            })
        }
        Request::Preview(p) => Frame::Previewed(PreviewReport {
            summary: vec![format!("a preview of {}", p.action_id)],
            ..PreviewReport::of(match p.preview {
                PreviewKind::Git { .. } => PreviewBasis::Git,
                PreviewKind::Docker { .. } => PreviewBasis::Docker,
                PreviewKind::Edit { .. } => PreviewBasis::Edit,
            })
        }),
        Request::Drop(d) => Frame::Dropped(DropReport {
            removed: d
                .snapshots
                .iter()
                .map(|s| s.action_id.to_string())
                .collect(),
            errors: Vec::new(),
        }),
        Request::Account(a) => Frame::Account(RunAccount {
            action_id: a.action_id,
            started: None,
            ended: None,
            read_bytes: 0,
            whole_log: true,
        }),
        // Runs and edits are answered by `frames`.
        Request::Run(_) | Request::Edit(_) => Frame::Refused(Refusal {
            code: "bad-request".into(),
            reasons: vec!["a run has no default last frame".into()],
        }),
    }
}

/// The frames of `reply` to `request`.
fn frames(request: &Request, reply: Reply) -> (Vec<Frame>, Frame) {
    let cap = match request {
        Request::Run(r) => usize::try_from(r.output_cap).unwrap_or(usize::MAX),
        Request::Check
        | Request::Kernel
        | Request::Snapshot(_)
        | Request::Restore(_)
        | Request::Preview(_)
        | Request::Edit(_)
        | Request::Drop(_)
        | Request::Account(_) => usize::MAX,
    };
    match reply {
        Reply::Frames { output, last } => (output, *last),
        Reply::Refuse { code, reason } => (
            Vec::new(),
            Frame::Refused(Refusal {
                code,
                reasons: vec![reason],
            }),
        ),
        Reply::TimedOut => (
            Vec::new(),
            Frame::Done(outcome(Ending::TimedOut, None, b"", b"", cap)),
        ),
        Reply::Exit {
            code,
            stdout,
            stderr,
        } => {
            let mut output = Vec::new();
            if !stdout.is_empty() {
                output.push(Frame::Stdout(stdout[..stdout.len().min(cap)].to_vec()));
            }
            if !stderr.is_empty() {
                output.push(Frame::Stderr(stderr[..stderr.len().min(cap)].to_vec()));
            }
            let done = outcome(Ending::Exited, Some(code), &stdout, &stderr, cap);
            (output, Frame::Done(done))
        }
        // Failures are answered before any frame is made.
        Reply::NeverSent | Reply::Broken | Reply::Silent | Reply::Hang => (
            Vec::new(),
            Frame::Refused(Refusal {
                code: "bad-request".into(),
                reasons: vec!["a failure has no frames".into()],
            }),
        ),
    }
}

fn outcome(
    ending: Ending,
    exit_code: Option<i32>,
    stdout: &[u8],
    stderr: &[u8],
    cap: usize,
) -> Outcome {
    Outcome {
        ending,
        exit_code,
        signal: (ending == Ending::TimedOut).then_some(9),
        duration_ms: 1,
        stdout: summary(stdout, cap),
        stderr: summary(stderr, cap),
        killed: 0,
        kernel: Some("fake guard: nothing ran".into()),
    }
}

fn summary(bytes: &[u8], cap: usize) -> StreamSummary {
    StreamSummary {
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        truncated: bytes.len() > cap,
    }
}

/// A snapshot of what `plan` names, as a host where everything exists
/// would take it in `generation`; with `keep`, with something to restore
/// from. It finds no containers: a container's state says too much about
/// a real host to make up.
fn snapshot_of(action_id: ActionId, plan: &SnapshotPlan, keep: bool, generation: u64) -> Snapshot {
    let digest = |name: &str| hex::encode(Sha256::digest(format!("{name}@{generation}")));
    let tree = |name: &str| digest(name)[..40].to_owned();
    let mut snapshot = Snapshot::new(action_id, keep);
    for target in plan.targets() {
        match target {
            PlanTarget::Repo(path) => snapshot.push(RepoState {
                path: path.clone(),
                head: Some(tree(path)),
                branch: Some("main".into()),
                index_tree: tree(path),
                worktree_tree: tree(path),
                commit: keep.then(|| tree(path)),
                kept_ref: keep.then(|| format!("refs/jarvis/snapshots/{action_id}")),
            }),
            PlanTarget::Volume(name) => snapshot.push(VolumeState {
                name: name.clone(),
                exists: true,
                fingerprint: digest(name),
                archive: keep.then(|| format!("{name}.tar")),
                bytes: 0,
            }),
            PlanTarget::File(path) => snapshot.push(FileState {
                path: path.clone(),
                exists: true,
                sha256: Some(digest(path)),
                mode: Some(0o644),
                backup: keep.then(|| format!("{path}.jarvis-{action_id}")),
            }),
            PlanTarget::Container(_) | PlanTarget::Compose(_) => {}
        }
    }
    snapshot.not_captured = plan.not_captured.clone();
    snapshot.duration_ms = 1;
    snapshot
}

/// Every target of `snapshot` the fake would have taken, in the order a
/// rollback restores them, due (a check) or put back.
fn targets_of(snapshot: &Snapshot, check_only: bool) -> Vec<RestoredTarget> {
    let (outcome, detail) = if check_only {
        (TargetOutcome::Due, String::new())
    } else {
        (TargetOutcome::Restored, "put back by the fake guard".into())
    };
    snapshot
        .in_restore_order()
        .into_iter()
        .filter(|t| match t {
            TargetState::Repo(_) | TargetState::Volume(_) | TargetState::File(_) => true,
            TargetState::Container(_) => false,
        })
        .map(|t| RestoredTarget {
            kind: t.kind().into(),
            name: t.name().into(),
            outcome,
            detail: detail.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{GlobalLimits, HostLimits, HostSpec};
    use crate::snapshot::SnapshotSettings;
    use crate::{ExecError, Executor, Job};
    use jarvis_core::HostName;

    fn spec() -> HostSpec {
        HostSpec {
            name: HostName::parse("fake").expect("valid"),
            destination: "jarvis@fake.invalid".into(),
            port: None,
            identity: None,
            known_hosts: PathBuf::from("/nonexistent/known_hosts"),
            tags: Vec::new(),
            limits: HostLimits::default(),
            snapshots: SnapshotSettings::default(),
        }
    }

    fn executor(guard: &FakeGuard) -> Executor {
        Executor::with_transports(vec![spec()], &GlobalLimits::default(), |_| {
            guard.transport()
        })
    }

    fn job(command: &str) -> Job {
        Job {
            action_id: "0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10"
                .parse()
                .expect("a UUID v7"),
            host: HostName::parse("fake").expect("valid"),
            requester: "test".into(),
            command: command.into(),
            cwd: None,
            timeout: None,
            edit: None,
            approved: false,
            scope: Vec::new(),
        }
    }

    async fn run(exec: &Executor, command: &str) -> Result<crate::Execution, ExecError> {
        let job = job(command);
        let admission = exec.admit(&job).await?;
        let mut seen = Vec::new();
        let result = exec
            .run(admission, &job, &mut |o| {
                if let crate::Output::Stdout(b) = o {
                    seen.extend_from_slice(b);
                }
            })
            .await;
        if let Ok(e) = &result {
            assert_eq!(seen, e.stdout, "streamed output is what was captured");
        }
        result
    }

    #[tokio::test]
    async fn a_scripted_run_comes_back_through_the_executor() {
        let guard = FakeGuard::new("fake");
        guard.on_command("uptime", Reply::ok("up 3 days\n"));
        let exec = executor(&guard);
        let done = run(&exec, "uptime").await.expect("runs");
        assert_eq!(done.outcome.exit_code, Some(0));
        assert_eq!(done.stdout, b"up 3 days\n");
        assert_eq!(done.outcome.stdout.bytes, 10);
        assert_eq!(guard.commands(), vec!["uptime".to_owned()]);
        assert_eq!(
            exec.connection_id(&spec().name).as_deref(),
            Some("fake:fake")
        );
        assert_eq!(exec.control_socket(&spec().name).await, None);
    }

    #[tokio::test]
    async fn failures_say_whether_the_run_may_have_happened() {
        let guard = FakeGuard::new("fake");
        guard
            .on_command("never", Reply::NeverSent)
            .on_command("broken", Reply::Broken)
            .on_command("quiet", Reply::Silent)
            .on_command("refused", Reply::refuse("host-policy", "not here"));
        let exec = executor(&guard);
        let refused = run(&exec, "refused").await.expect_err("refused");
        assert_eq!(refused.code(), "guard-refused");
        assert!(!refused.may_have_run());
        let never = run(&exec, "never").await.expect_err("fails");
        assert!(!never.may_have_run(), "{never}");
        let broken = run(&exec, "broken").await.expect_err("fails");
        assert!(broken.may_have_run(), "{broken}");
        let quiet = run(&exec, "quiet").await.expect_err("fails");
        assert!(quiet.may_have_run(), "{quiet}");
        // Three transport failures in a row opened the host's breaker.
        let open = run(&exec, "uptime").await.expect_err("breaker open");
        assert_eq!(open.code(), "circuit-open", "{open}");
    }

    #[tokio::test]
    async fn output_over_the_cap_is_cut_and_counted() {
        let guard = FakeGuard::new("fake");
        guard.on_command(
            "yes",
            Reply::Exit {
                code: 1,
                stdout: vec![b'y'; 100],
                stderr: b"oops".to_vec(),
            },
        );
        let mut spec = spec();
        spec.limits.output_cap = 10;
        let exec =
            Executor::with_transports(vec![spec], &GlobalLimits::default(), |_| guard.transport());
        let done = run(&exec, "yes").await.expect("runs");
        assert_eq!(done.stdout.len(), 10);
        assert!(done.outcome.stdout.truncated);
        assert_eq!(done.outcome.stdout.bytes, 100);
        assert_eq!(done.outcome.exit_code, Some(1));
        assert_eq!(done.stderr, b"oops");
    }

    #[tokio::test]
    async fn other_requests_get_plausible_answers() {
        let guard = FakeGuard::new("fake");
        let exec = executor(&guard);
        let host = spec().name;
        let kernel = exec.kernel(&host).await.expect("kernel");
        assert_eq!(kernel.enforcement.level, EnforcementLevel::Full);
        let check = exec.check(&host).await.expect("check");
        assert!(check.bash.is_some());
        let plan = SnapshotPlan::of([PlanTarget::File("/etc/motd".into())]);
        let id = ActionId::new();
        let snap = exec
            .snapshot(
                &host,
                crate::snapshot::SnapshotRequest {
                    action_id: id,
                    plan,
                    keep: true,
                    volume_image: None,
                },
            )
            .await
            .expect("snapshot");
        assert!(snap.kept && snap.files().all(|f| f.backup.is_some()));
        assert_eq!(snap.files().count(), 1);
        let report = exec
            .restore(
                &host,
                crate::snapshot::RestoreRequest {
                    action_id: id,
                    target: snap,
                    after: None,
                    force: false,
                    check_only: false,
                    volume_image: None,
                },
            )
            .await
            .expect("restore");
        assert!(report.complete && report.before.is_some());
        assert_eq!(report.targets[0].outcome, TargetOutcome::Restored);
        let account = exec.account(&host, id).await.expect("account");
        assert!(account.started.is_none());
        assert_eq!(
            guard.count(|r| matches!(r, Request::Kernel | Request::Check)),
            2
        );
        assert_eq!(guard.requests().len(), 5);
    }
}
