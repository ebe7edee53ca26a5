//! `jarvis-guard`: the forced command in the gateway key's `authorized_keys`
//! entry on a host.
//!
//! It owns the host's last word: it reads one framed request from
//! `SSH_ORIGINAL_COMMAND`, re-checks it against a policy file on the host
//! (which the gateway cannot change), runs it with `/bin/sh` in its own
//! process group under a timeout, output caps and resource limits, kills
//! whatever the command leaves running, and appends one line per request to
//! its own log. It also does the host's part of snapshots, rollbacks,
//! previews and file edits, with the host's own git and Docker.
//!
//! It must never run anything it could not parse or that the host policy
//! denies, never run an interactive shell, never let a request choose its
//! own limits beyond what the forced command line allows, never let a
//! snapshot, rollback or preview run code planted in a repository, and
//! never touch the real target while previewing. It depends on the protocol
//! half of jarvis-exec only, never on the SSH client stack.

mod account;
mod cmd;
mod confine;
mod docker;
mod engine;
mod error;
mod files;
mod git;
mod keeper;
mod log;
mod preview;
mod runner;
mod snapshot;
mod tree;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jarvis_core::Decision;
use jarvis_exec::protocol::{
    CheckReport, Ending, Frame, Hello, KernelReport, Outcome, PROTOCOL_VERSION, ProtocolError,
    Refusal, Request, StreamSummary,
};
use jarvis_exec::snapshot::{EditRequest, PreviewKind, PreviewReport, PreviewRequest};
use jarvis_policy::confine::Confinement;
use jarvis_policy::engine::{Policy, Request as PolicyRequest};
use jarvis_policy::scope::{Live, ScopeContext};
use serde_json::json;
use sha2::Digest as _;

use crate::confine::{Grant, HostGrants, KernelMode};
use crate::error::GuardError;
use crate::log::GuardLog;
use crate::preview::PreviewContext;
use crate::runner::{Limits, Sink};

const USAGE: &str =
    "usage: jarvis-guard --policy FILE --log FILE [--state DIR] [--max-timeout SECS] \
[--max-procs N] [--max-file-size BYTES] [--max-open-files N] [--kernel on|off] \
[--approved-writes DIR]...
Meant as the forced command of an authorized_keys entry; `jarvis hosts install-guard` prints one.";

struct Args {
    policy: PathBuf,
    log: PathBuf,
    /// Volume archives and file copies of snapshots.
    state: PathBuf,
    limits: Limits,
    /// Whether commands run under the kernel wall (`--kernel off` is for a
    /// host whose owner accepts that the gateway then asks a person for
    /// everything, or runs best-effort).
    kernel: KernelMode,
    /// What approved actions may write besides their scope, and what no
    /// command may write.
    grants: HostGrants,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut policy = None;
    let mut log = None;
    let mut state = None;
    let mut limits = Limits::default();
    let mut kernel = KernelMode::On;
    let mut approved_writes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: `{v}` is not a whole number"))
        };
        match arg.as_str() {
            "--version" | "-V" => return Ok(None),
            "--policy" => policy = Some(PathBuf::from(value("--policy")?)),
            "--log" => log = Some(PathBuf::from(value("--log")?)),
            "--state" => state = Some(PathBuf::from(value("--state")?)),
            "--max-timeout" => {
                limits.max_timeout =
                    Duration::from_secs(number("--max-timeout", value("--max-timeout")?)?)
            }
            "--max-procs" => limits.max_procs = number("--max-procs", value("--max-procs")?)?,
            "--max-file-size" => {
                limits.max_file_size = number("--max-file-size", value("--max-file-size")?)?
            }
            "--max-open-files" => {
                limits.max_open_files = number("--max-open-files", value("--max-open-files")?)?
            }
            "--kernel" => {
                kernel = match value("--kernel")?.as_str() {
                    "on" => KernelMode::On,
                    "off" => KernelMode::Off,
                    v => return Err(format!("--kernel: `{v}` is neither `on` nor `off`")),
                }
            }
            "--approved-writes" => {
                let dir = PathBuf::from(value("--approved-writes")?);
                if !dir.is_absolute() {
                    return Err(format!(
                        "--approved-writes: `{}` is not an absolute path",
                        dir.display()
                    ));
                }
                approved_writes.push(dir);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if approved_writes.is_empty() {
        // Where a person's approved change usually lands besides the
        // repositories and files it names.
        approved_writes.extend(home.clone());
        approved_writes.extend([PathBuf::from("/tmp"), PathBuf::from("/var/tmp")]);
    }
    let policy = policy.ok_or("--policy FILE is required")?;
    let log = log.ok_or("--log FILE is required")?;
    let state = match state {
        Some(s) => s,
        None => home
            .as_ref()
            .map(|h| h.join(".local/state/jarvis-guard"))
            .ok_or("--state DIR is required when HOME is not set")?,
    };
    // The guard's own files and the keys that let the gateway in are never
    // writable by a command, whatever was approved.
    let mut protected = vec![policy.clone(), log.clone(), state.clone()];
    protected.extend(std::env::current_exe().ok());
    protected.extend(home.map(|h| h.join(".ssh")));
    Ok(Some(Args {
        policy,
        log,
        state,
        limits,
        kernel,
        grants: HostGrants {
            approved_writes,
            protected,
        },
    }))
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if argv.first().is_some_and(|a| a == confine::CONFINE_ARG) {
        return confine::child_main(&argv[1..]);
    }
    if argv.first().is_some_and(|a| a == keeper::KEEP_ARG) {
        return keeper::main(&argv[1..]);
    }
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!(
                "jarvis-guard {} (protocol {PROTOCOL_VERSION})",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("jarvis-guard: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // sshd's SIGHUP/SIGTERM when the session ends: kill the command, not
    // just the guard.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("jarvis-guard: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let mut log = match GuardLog::open(&args.log) {
        Ok(l) => l,
        Err(e) => {
            // No log, no run: the host owner must be able to see what ran.
            eprintln!(
                "jarvis-guard: refused: cannot open log {}: {e}",
                args.log.display()
            );
            return ExitCode::from(1);
        }
    };
    let Ok(line) = std::env::var("SSH_ORIGINAL_COMMAND") else {
        let _ = log.write(json!({"result": "refused", "code": "interactive"}));
        eprintln!(
            "jarvis-guard: refused: this key runs framed Jarvis requests only; interactive logins are not allowed"
        );
        return ExitCode::from(1);
    };
    let request = match Request::parse(&line) {
        Ok(r) => r,
        Err(e @ (ProtocolError::Unframed | ProtocolError::TooLong(_))) => {
            let shown: String = line.chars().take(200).collect();
            let _ = log.write(json!({"result": "refused", "code": "unframed", "command": shown}));
            eprintln!("jarvis-guard: refused: {e}");
            return ExitCode::from(1);
        }
        Err(e) => {
            let refusal = Refusal {
                code: "bad-request".into(),
                reasons: vec![e.to_string()],
            };
            let _ = log.write(
                json!({"result": "refused", "code": "bad-request", "reasons": refusal.reasons}),
            );
            let mut out = std::io::stdout().lock();
            let _ = out.send(&hello());
            let _ = out.send(&Frame::Refused(refusal));
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    if out.send(&hello()).is_err() {
        return ExitCode::from(1);
    }
    match request {
        Request::Kernel => {
            let report = KernelReport {
                bash: runner::find_bash().map(|b| b.display().to_string()),
                enforcement: confine::probe(args.kernel),
            };
            let _ =
                log.write(json!({"result": "kernel", "level": report.enforcement.level.as_str()}));
            let _ = out.send(&Frame::Kernel(report));
            ExitCode::SUCCESS
        }
        Request::Account(req) => {
            // Read-only and cheap: the log's tail, no policy load, so a
            // gateway can ask as soon as a host answers again.
            // The id was parsed with the request (a UUID version 7, or
            // the request was refused as a bad one), so only an id the
            // gateway could have made is searched for or logged.
            let (entry, frame, code) = match account::read(&args.log, req.action_id, account::TAIL)
            {
                Ok(a) => (
                    json!({"op": "account", "action_id": req.action_id, "result": "done",
                        "found": account::found(&a), "read_bytes": a.read_bytes}),
                    Frame::Account(a),
                    ExitCode::SUCCESS,
                ),
                Err(e) => {
                    let refusal = Refusal {
                        code: "log".into(),
                        reasons: vec![format!("cannot read the log {}: {e}", args.log.display())],
                    };
                    (
                        json!({"op": "account", "action_id": req.action_id,
                            "result": "refused", "code": "log", "reasons": refusal.reasons}),
                        Frame::Refused(refusal),
                        ExitCode::from(1),
                    )
                }
            };
            let _ = log.write(entry);
            let _ = out.send(&frame);
            code
        }
        Request::Check => {
            let report = check(&args);
            let _ = log.write(json!({"result": "checked"}));
            let _ = out.send(&Frame::Checked(report));
            ExitCode::SUCCESS
        }
        Request::Run(req) => {
            let entry = json!({
                "action_id": req.action_id,
                "command": req.command,
                "cwd": req.cwd,
                "timeout_ms": req.timeout_ms,
                "approved": req.approved,
            });
            // When the command came to exist, so a run stopped half way (the
            // gateway gone) still has its length in the log.
            let began = std::cell::Cell::new(None);
            let result = assess(&args, &req.command, req.cwd.as_deref()).and_then(|confinement| {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
                let cwd = req.cwd.clone().unwrap_or(home);
                let grant = Grant::for_run(
                    &confinement,
                    req.approved,
                    &req.scope,
                    std::path::Path::new(&cwd),
                    &args.grants,
                );
                let host = runner::Host {
                    limits: &args.limits,
                    kernel: args.kernel,
                    grants: &args.grants,
                };
                // No log, no run: the `started` line is on disk before the
                // command exists, so a command that kills its guard still
                // left a trace.
                let mut started = |kernel: &str| {
                    began.set(Some(std::time::Instant::now()));
                    log.write(json!({
                        "result": "started",
                        "action_id": req.action_id,
                        "command_sha256": hex::encode(sha2::Sha256::digest(req.command.as_bytes())),
                        "approved": req.approved,
                        "kernel": kernel,
                    }))
                };
                runner::run(&req, &grant, &host, &[], &mut started, &stop, &mut out)
            });
            let (entry, frame, code) = match result {
                Ok(outcome) => {
                    let mut e = entry;
                    e["result"] = json!("ran");
                    e["outcome"] = json!(outcome);
                    (e, Frame::Done(outcome), ExitCode::SUCCESS)
                }
                Err(refusal) => {
                    let mut e = entry;
                    e["result"] = json!("refused");
                    e["code"] = json!(refusal.code);
                    e["reasons"] = json!(refusal.reasons);
                    if let Some(at) = began.get() {
                        e["duration_ms"] =
                            json!(u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX));
                    }
                    (e, Frame::Refused(refusal), ExitCode::from(1))
                }
            };
            // Not waited onto the disk: what ran is on disk already (the
            // started line, written before the command could run, says it
            // may have), and this line adds how it ended, which the
            // gateway hears in the answer. Waiting for the disk here made
            // every answer wait for it.
            if let Err(e) = log.append(entry) {
                eprintln!("jarvis-guard: cannot write log {}: {e}", args.log.display());
            }
            let _ = out.send(&frame);
            let _ = out.flush();
            code
        }
        Request::Edit(req) => edit(&args, &req, &mut log, &mut out),
        other @ (Request::Snapshot(_)
        | Request::Restore(_)
        | Request::Preview(_)
        | Request::Drop(_)) => long_op(&args, other, &stop, &mut log, &mut out),
    }
}

/// Applies a file edit. It answers like a run: the diff as output, then
/// `Done`, so the gateway records it as it records any action.
fn edit(args: &Args, req: &EditRequest, log: &mut GuardLog, out: &mut impl Write) -> ExitCode {
    let started = std::time::Instant::now();
    let mut entry = json!({"op": "edit", "action_id": req.action_id, "path": req.edit.path});
    if let Err(refusal) = judge_edit(args, &req.edit.path) {
        entry["result"] = json!("refused");
        entry["reasons"] = json!(refusal.reasons);
        let _ = log.write(entry);
        let _ = out.send(&Frame::Refused(refusal));
        return ExitCode::from(1);
    }
    let (stdout, stderr, code) = match files::apply(&req.edit) {
        Ok(diff) => (diff.into_bytes(), Vec::new(), 0),
        Err(e) => (Vec::new(), format!("{e}\n").into_bytes(), 1),
    };
    let summary = |bytes: &[u8]| StreamSummary {
        bytes: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        truncated: false,
    };
    let outcome = Outcome {
        ending: Ending::Exited,
        exit_code: Some(code),
        signal: None,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stdout: summary(&stdout),
        stderr: summary(&stderr),
        killed: 0,
        kernel: None,
    };
    entry["result"] = json!("ran");
    entry["outcome"] = json!(outcome);
    if let Err(e) = log.write(entry) {
        eprintln!("jarvis-guard: cannot write log {}: {e}", args.log.display());
    }
    for chunk in stdout.chunks(64 * 1024) {
        let _ = out.send(&Frame::Stdout(chunk.to_vec()));
    }
    if !stderr.is_empty() {
        let _ = out.send(&Frame::Stderr(stderr));
    }
    let _ = out.send(&Frame::Done(outcome));
    ExitCode::SUCCESS
}

/// Snapshots, rollbacks, previews and drops: they can take a while (a
/// `docker commit`, a clone), so the work runs on a thread while this one
/// sends heartbeats. A vanished client does not cut a rollback short: a
/// half-done rollback is worse than one nobody hears about, and the gateway
/// can ask again.
fn long_op(
    args: &Args,
    request: Request,
    stop: &Arc<AtomicBool>,
    log: &mut GuardLog,
    out: &mut impl Write,
) -> ExitCode {
    let started = std::time::Instant::now();
    let (op, action_id) = match &request {
        Request::Snapshot(r) => ("snapshot", Some(r.action_id)),
        // A check changes nothing; its log line says so.
        Request::Restore(r) if r.check_only => ("restore-check", Some(r.action_id)),
        Request::Restore(r) => ("restore", Some(r.action_id)),
        Request::Preview(r) => ("preview", Some(r.action_id)),
        Request::Drop(_) => ("drop", None),
        Request::Run(_)
        | Request::Check
        | Request::Kernel
        | Request::Edit(_)
        | Request::Account(_) => ("other", None),
    };
    // Without one, the line says `""`, as it always has.
    let action_id = action_id.map(|id| id.to_string()).unwrap_or_default();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = tx.send(do_long_op(args, &request, stop));
        });
        loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(result) => return result,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = out.send(&Frame::Heartbeat);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Refusal {
                        code: "internal".into(),
                        reasons: vec![format!("the {op} stopped without an answer")],
                    });
                }
            }
        }
    });
    let mut entry = json!({
        "op": op,
        "action_id": action_id,
        "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    let (frame, code) = match result {
        Ok(frame) => {
            entry["result"] = json!("done");
            if let Frame::Restored(r) = &frame {
                entry["complete"] = json!(r.complete);
                entry["targets"] = json!(r.targets);
            }
            (frame, ExitCode::SUCCESS)
        }
        Err(refusal) => {
            entry["result"] = json!("refused");
            entry["code"] = json!(refusal.code);
            entry["reasons"] = json!(refusal.reasons);
            (Frame::Refused(refusal), ExitCode::from(1))
        }
    };
    if let Err(e) = log.write(entry) {
        eprintln!("jarvis-guard: cannot write log {}: {e}", args.log.display());
    }
    let _ = out.send(&frame);
    let _ = out.flush();
    code
}

fn do_long_op(args: &Args, request: &Request, stop: &Arc<AtomicBool>) -> Result<Frame, Refusal> {
    let failed = |code: &str| {
        let code = code.to_owned();
        move |why: GuardError| Refusal {
            code,
            reasons: vec![why.to_string()],
        }
    };
    if let Err(e) = private_dir(&args.state) {
        return Err(failed("state")(e));
    }
    let judge =
        |line: &str| judge(args, line, None).map_err(|r| GuardError::Policy(r.reasons.join("; ")));
    let host = snapshot::Host {
        state_dir: &args.state,
        judge: &judge,
    };
    match request {
        Request::Snapshot(req) => snapshot::take(req, &host)
            .map(Frame::Snapshotted)
            .map_err(failed("snapshot")),
        Request::Restore(req) => snapshot::restore(req, &host)
            .map(Frame::Restored)
            .map_err(failed("restore")),
        Request::Drop(req) => Ok(Frame::Dropped(snapshot::drop(req))),
        Request::Preview(req) => preview(args, req, stop).map(Frame::Previewed),
        Request::Run(_)
        | Request::Check
        | Request::Kernel
        | Request::Edit(_)
        | Request::Account(_) => Err(failed("bad-request")(GuardError::Request(
            "not a long operation".into(),
        ))),
    }
}

fn preview(
    args: &Args,
    req: &PreviewRequest,
    stop: &Arc<AtomicBool>,
) -> Result<PreviewReport, Refusal> {
    let failed = |why: GuardError| Refusal {
        code: "preview".into(),
        reasons: vec![why.to_string()],
    };
    let timeout = Duration::from_millis(req.timeout_ms).min(args.limits.max_timeout);
    match &req.preview {
        PreviewKind::Edit { edit } => {
            judge_edit(args, &edit.path)?;
            files::preview(edit, req.output_cap).map_err(failed)
        }
        PreviewKind::Git { repo, command, cwd } => {
            // Loaded once: the judgement, the scope check and the replay's
            // confinement all read the line with it.
            let policy = host_policy(args)?;
            judge_with(&policy, args, command, cwd.as_deref())?;
            // The host checks for itself that the line only makes local
            // changes inside the repository, as the gateway said.
            let repos = [repo.clone()];
            let scope = policy.scope(
                command,
                &ScopeContext {
                    cwd: cwd.as_deref(),
                    repos: &repos,
                },
            );
            if !matches!(scope.live, Some(Live::Git { .. })) {
                return Err(failed(GuardError::Request(format!(
                    "`{command}` does more than local changes inside {repo}, so it is not replayed"
                ))));
            }
            let host = runner::Host {
                limits: &args.limits,
                kernel: args.kernel,
                grants: &args.grants,
            };
            let ctx = PreviewContext {
                action_id: req.action_id,
                host: &host,
                policy: &policy,
                stop,
                timeout,
                cap: req.output_cap,
            };
            git::preview(repo, command, cwd.as_deref(), &ctx).map_err(failed)
        }
        PreviewKind::Docker {
            container,
            argv,
            container_arg,
        } => {
            let line = std::iter::once("docker".to_owned())
                .chain(argv.iter().map(|a| jarvis_policy::dryrun::quote(a)))
                .collect::<Vec<_>>()
                .join(" ");
            judge(args, &line, None)?;
            docker::preview(
                container,
                argv,
                *container_arg,
                req.action_id,
                timeout,
                req.output_cap,
            )
            .map_err(failed)
        }
    }
}

/// Creates `dir` (and parents) readable by the guard's user only.
fn private_dir(dir: &std::path::Path) -> Result<(), GuardError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| {
            GuardError::Host(format!(
                "cannot prepare the state directory {}: {e}",
                dir.display()
            ))
        })
}

fn hello() -> Frame {
    Frame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        guard_version: env!("CARGO_PKG_VERSION").into(),
    })
}

fn load_policy(args: &Args) -> Result<Policy, GuardError> {
    Policy::load(std::slice::from_ref(&args.policy)).map_err(|e| {
        GuardError::Policy(format!(
            "host policy cannot be loaded, so nothing runs: {e}"
        ))
    })
}

fn host_policy(args: &Args) -> Result<Policy, Refusal> {
    load_policy(args).map_err(|why| Refusal {
        code: "host-policy".into(),
        reasons: vec![why.to_string()],
    })
}

/// The host policy's word. Only `deny` (its rules and the built-in
/// guardrails) is enforced here: asking a person is the gateway's part, and
/// by the time a request arrives the gateway says one has agreed.
fn judge(args: &Args, command: &str, cwd: Option<&str>) -> Result<(), Refusal> {
    judge_with(&host_policy(args)?, args, command, cwd)
}

fn judge_with(
    policy: &Policy,
    args: &Args,
    command: &str,
    cwd: Option<&str>,
) -> Result<(), Refusal> {
    let judgement = policy.judge(&PolicyRequest {
        command: command.into(),
        host: None,
        cwd: cwd.map(str::to_owned),
    });
    if judgement.decision == Decision::Deny {
        let mut reasons = vec![format!(
            "the host policy ({}) denies this command",
            args.policy.display()
        )];
        reasons.extend(judgement.reasons);
        return Err(Refusal {
            code: "host-policy".into(),
            reasons,
        });
    }
    Ok(())
}

/// The host policy's word on a line and, when it lets it through, the
/// kernel confinement its own analysis derives: the guard never takes the
/// gateway's word for what a line does.
fn assess(args: &Args, command: &str, cwd: Option<&str>) -> Result<Confinement, Refusal> {
    let policy = host_policy(args)?;
    judge_with(&policy, args, command, cwd)?;
    policy.confinement(command, cwd).map_err(|why| Refusal {
        code: "host-policy".into(),
        reasons: vec![format!("the host cannot read this command: {why}")],
    })
}

/// The host policy's word on a file edit (only `deny` is enforced, as for
/// commands).
fn judge_edit(args: &Args, path: &str) -> Result<(), Refusal> {
    let policy = load_policy(args).map_err(|why| Refusal {
        code: "host-policy".into(),
        reasons: vec![why.to_string()],
    })?;
    let judgement = policy.judge_edit(path, None);
    if judgement.decision == Decision::Deny {
        let mut reasons = vec![format!(
            "the host policy ({}) denies this edit",
            args.policy.display()
        )];
        reasons.extend(judgement.reasons);
        return Err(Refusal {
            code: "host-policy".into(),
            reasons,
        });
    }
    Ok(())
}

fn check(args: &Args) -> CheckReport {
    let (policy, rules) = match load_policy(args) {
        Ok(p) => (
            vec![args.policy.display().to_string()],
            p.rules().rules.len(),
        ),
        Err(e) => (vec![e.to_string()], 0),
    };
    CheckReport {
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        user: nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        policy,
        policy_rules: rules,
        docker: probe(&["docker", "version", "--format", "{{.Server.Version}}"]),
        git: probe(&["git", "--version"]),
        bash: runner::find_bash().and_then(|b| probe(&[&b.to_string_lossy(), "--version"])),
        enforcement: confine::probe(args.kernel),
    }
}

/// First line of a short program's output, or `None` if it fails or takes
/// more than five seconds.
fn probe(argv: &[&str]) -> Option<String> {
    let mut child = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => break,
            Ok(None) if std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut()?, &mut text).ok()?;
    text.lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}
