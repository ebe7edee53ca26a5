//! `jarvis run`, `approve`, `deny` and `actions list | show`: the pipeline
//! without the web UI. The CLI acts as the local operator and is audited as
//! `local:<user>`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jarvis_core::{ActionId, ActionState, ApprovalProgress, HostName, Purpose};
use jarvis_exec::Output;
use jarvis_gateway::{Gateway, GatewayError, Proposal, Work};
use jarvis_store::{ActionRecord, AuditFilter, RunRecord, Store};
use serde_json::json;

use crate::data::{DataArgs, config};
use crate::json::{Ended, Outcome, Refusal};
use crate::terminal;

/// Exit codes of `run` and `approve`, so scripts can tell outcomes apart.
pub mod exit {
    /// The command ran and exited 0.
    pub const SUCCEEDED: u8 = 0;
    /// The command ran and failed, timed out, or the host refused it.
    pub const FAILED: u8 = 1;
    /// Waiting for a person: `jarvis approve ID`.
    pub const PENDING: u8 = 3;
    /// Denied by policy, or refused before sending (limits, breaker).
    pub const REFUSED: u8 = 4;
}

#[derive(Args)]
pub struct RunArgs {
    /// The configured host to run on.
    #[arg(long, value_name = "NAME")]
    host: String,
    /// The directory on the host (default: the guard user's home).
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Seconds before the whole process tree on the host is killed (default: the host's).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Why it is needed, shown to whoever approves it.
    #[arg(long, value_name = "TEXT", default_value = "")]
    reason: String,
    /// What it will read or change, shown to whoever approves it.
    #[arg(long, value_name = "TEXT", default_value = "")]
    expected_effect: String,
    /// Print one JSON object when it ends (docs/json-output.md); the command's output is in it instead of streamed.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    /// The command line, run by bash on the host.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args)]
pub struct ApproveArgs {
    /// The action id or a unique prefix of it.
    id: String,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
    /// Print one JSON object when it ends (docs/json-output.md); the command's output is in it instead of streamed.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
pub struct DenyArgs {
    /// The action id or a unique prefix of it.
    id: String,
    /// Why, for the audit log and whoever proposed it.
    #[arg(long, required = true)]
    reason: String,
    /// Print the rejected action as one JSON object (docs/json-output.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Subcommand)]
pub enum ActionsCommand {
    /// List actions, newest first.
    List {
        /// Only actions in this state, as shown or stored: "waiting for
        /// approval" (or pending_approval, pending), running, failed, …
        #[arg(long, value_parser = state_in_words)]
        state: Option<ActionState>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one action: command, decision, risk, reasons, state, output, timings, events.
    Show {
        /// The action id or a unique prefix of it.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Who the CLI acts as.
pub(crate) fn operator() -> String {
    // The account, not $USER, which the caller can set to anything.
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid{}", nix::unistd::getuid()));
    format!("local:{user}")
}

/// Where SSH control sockets go, so that every `jarvis` of the user (and
/// `jarvis serve`) finds the same masters: the user's runtime directory
/// (`$XDG_RUNTIME_DIR`, private and emptied at logout) if there is one,
/// else the temporary directory. Short, since a socket path has a 107-byte
/// limit. Created 0700; one that others could reach is refused.
pub fn control_dir() -> Result<std::path::PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from) {
        Some(run) if run.is_absolute() && run.is_dir() => run.join("jarvis-ssh"),
        _ => std::env::temp_dir().join(format!("jarvis-ssh-{}", nix::unistd::geteuid())),
    };
    jarvis_exec::transport::master::prepare_control_dir(&dir)?;
    Ok(dir)
}

pub(crate) async fn gateway(data: &DataArgs) -> Result<Gateway> {
    let store = data.signing_store().await?;
    let runner = data.runner(&store).await?;
    let gw = Gateway::open(config().clone(), store, &control_dir()?, runner.is_sole()).await?;
    runner.recovered().await?;
    Ok(gw)
}

/// The runtime a command runs on.
pub(crate) struct CommandRuntime(tokio::runtime::Runtime);

impl CommandRuntime {
    /// Runs a command to its end; then whatever it wrote is covered by a
    /// signed head ([`crate::data::seal_written`]), whether it succeeded
    /// or not.
    pub(crate) fn block_on<T>(&self, command: impl Future<Output = Result<T>>) -> Result<T> {
        self.0.block_on(async {
            let result = command.await;
            crate::data::seal_written().await;
            result
        })
    }
}

pub(crate) fn runtime() -> Result<CommandRuntime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map(CommandRuntime)
        .context("cannot start the async runtime")
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let host = HostName::parse(&args.host).with_context(|| format!("--host {}", args.host))?;
        let purpose = Purpose::new(&args.reason, &args.expected_effect)
            .map_err(|e| anyhow::anyhow!("--{}: {e}", e.field.replace('_', "-")))?;
        let gw = gateway(&args.data).await?;
        let proposal = Proposal {
            requester: operator(),
            host,
            work: Work::Command {
                line: args.command.join(" "),
                cwd: args.cwd,
            },
            timeout: args.timeout.map(Duration::from_secs),
            purpose,
        };
        let code = propose_and_run(&gw, proposal, args.json).await?;
        gw.close().await;
        Ok(code)
    })
}

/// Proposes, then runs what the policy allows, shows what waits for a
/// person (with its snapshot plan and preview), or reports the denial;
/// with `json`, ends with the action's object on stdout.
pub(crate) async fn propose_and_run(
    gw: &Gateway,
    proposal: Proposal,
    json: bool,
) -> Result<ExitCode> {
    let proposed = gw.propose(proposal).await?;
    let action = proposed.action;
    let j = &proposed.judgement;
    eprintln!(
        "jarvis: action {} {} (risk {} {})",
        action.id,
        j.decision.label(),
        j.risk.score(),
        j.risk.level().as_str()
    );
    let ended = match action.state {
        ActionState::Approved => execute(gw, action.id, json).await?,
        ActionState::PendingApproval => {
            for r in &j.reasons {
                eprintln!("  - {}", terminal::line(r));
            }
            eprintln!("  {}", terminal::line(&proposed.plan.summary()));
            if let Some(p) = &action.preview {
                eprint!(
                    "{}",
                    terminal::text(&jarvis_gateway::rollback::preview_text(p))
                );
            }
            eprintln!(
                "jarvis: waiting for approval; run `jarvis approve {}` or `jarvis deny {} --reason …`",
                action.id, action.id
            );
            if !json {
                println!("{}", action.id);
            }
            Ended::with(Outcome::Pending)
        }
        ActionState::Proposed
        | ActionState::Denied
        | ActionState::Rejected
        | ActionState::Expired
        | ActionState::Running
        | ActionState::Succeeded
        | ActionState::Failed
        | ActionState::TimedOut
        | ActionState::Interrupted
        | ActionState::RolledBack => {
            eprintln!("jarvis: denied; nothing was sent to the host:");
            for r in &j.reasons {
                eprintln!("  - {}", terminal::line(r));
            }
            Ended::refused(
                Outcome::Refused,
                Refusal::new("denied", j.reasons.join("; ")),
            )
        }
    };
    if json {
        let mut v = crate::json::action_end(gw, action.id, &ended).await?;
        v["judgement"] = json!(j);
        crate::json::print(&v)?;
    }
    Ok(ended.outcome.code())
}

/// Runs an approved action and reports the end. Its output is streamed,
/// made inert on the way to a terminal and as the host sent it into a
/// pipe or a file; with `json` it is not streamed (stdout is the object's
/// alone, and the object carries the output).
pub(crate) async fn execute(gw: &Gateway, id: ActionId, json: bool) -> Result<Ended> {
    let ran = if json {
        gw.execute(id, &operator(), &mut |_| {}).await
    } else {
        let mut stdout = shown(std::io::stdout());
        let mut stderr = shown(std::io::stderr());
        let mut print = |o: Output<'_>| {
            // The terminal may go away; the output is stored all the same.
            let _ = match o {
                Output::Stdout(b) => stdout.write_all(b).and_then(|()| stdout.flush()),
                Output::Stderr(b) => stderr.write_all(b).and_then(|()| stderr.flush()),
            };
        };
        let ran = gw.execute(id, &operator(), &mut print).await;
        for w in [&mut stdout, &mut stderr] {
            let _ = w.flush();
        }
        ran
    };
    let action = match ran {
        Ok(a) => a,
        Err(ref e @ GatewayError::NotSent { ref source, .. }) => {
            return Ok(stays_approved(id, e, source.code()));
        }
        Err(ref e @ GatewayError::NowDenied { .. }) => {
            return Ok(stays_approved(id, e, "now-denied"));
        }
        Err(ref e @ GatewayError::SnapshotFailed { .. }) => {
            return Ok(stays_approved(id, e, "snapshot-failed"));
        }
        Err(ref e @ GatewayError::PlanChanged { .. }) => {
            return Ok(back_to_a_person(id, e, "plan-changed"));
        }
        Err(ref e @ GatewayError::KernelUnenforced { .. }) => {
            return Ok(back_to_a_person(id, e, "kernel-unenforced"));
        }
        Err(e) => return Err(e.into()),
    };
    // A rollback whose targets changed while it waited is refused before
    // it starts; its reasons say what changed and how to force it.
    if action.state == ActionState::Denied {
        for r in &action.reasons {
            eprintln!("jarvis: {}", terminal::line(r));
        }
        if let Some(of) = action.rollback_of {
            eprintln!("jarvis: `jarvis rollback {of} --force` puts them back anyway");
        }
        return Ok(Ended::refused(
            Outcome::Refused,
            Refusal::new("targets-changed", action.reasons.join("; ")),
        ));
    }
    let run = gw.store().run_of(id).await?;
    eprintln!("jarvis: {}", ending_line(&action, run.as_ref()));
    Ok(Ended::with(if action.state == ActionState::Succeeded {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }))
}

/// Nothing was sent and the action stays approved, for a later try.
fn stays_approved(id: ActionId, e: &GatewayError, code: &'static str) -> Ended {
    let said = e.to_string();
    eprintln!("jarvis: {}", terminal::line(&said));
    eprintln!("jarvis: the action stays approved; `jarvis approve {id}` runs it later");
    Ended::refused(Outcome::Refused, Refusal::new(code, said))
}

/// Nothing was sent and the action waits for a person again.
fn back_to_a_person(id: ActionId, e: &GatewayError, code: &'static str) -> Ended {
    let said = e.to_string();
    eprintln!("jarvis: {}", terminal::line(&said));
    eprintln!(
        "jarvis: look at it again with `jarvis actions show {id}`, then `jarvis approve {id}`"
    );
    Ended::refused(Outcome::Pending, Refusal::new(code, said))
}

/// `w` as the terminal should get it: through [`terminal::Inert`] when it
/// is one.
fn shown<W: Write + std::io::IsTerminal + Send + 'static>(w: W) -> Box<dyn Write + Send> {
    if w.is_terminal() {
        Box::new(terminal::Inert::new(w))
    } else {
        Box::new(w)
    }
}

/// The last line of a run; the host's words in it (its error, its account
/// of the kernel wall) are made inert.
fn ending_line(action: &ActionRecord, run: Option<&RunRecord>) -> String {
    let Some(run) = run else {
        return format!("{} {}", action.id, action.state.label());
    };
    let mut line = format!("{} {}", action.id, action.state.label());
    if let Some(code) = run.exit_code {
        line.push_str(&format!(", exit {code}"));
    }
    if let Some(sig) = run.signal {
        line.push_str(&format!(", signal {sig}"));
    }
    line.push_str(&format!(" in {} ms", run.duration_ms));
    for (name, s) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if s.truncated {
            line.push_str(&format!(
                "; {name} truncated: kept {} of {} bytes (sha256 {})",
                s.data.len(),
                s.bytes,
                s.sha256
            ));
        }
    }
    if run.killed > 0 {
        line.push_str(&format!("; {} leftover processes killed", run.killed));
    }
    if let Some(k) = &run.kernel {
        line.push_str(&format!("; {k}"));
    }
    if let Some(e) = &run.error {
        line.push_str(&format!("; {e}"));
    }
    terminal::line(&line)
}

pub fn approve(args: ApproveArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let gw = gateway(&args.data).await?;
        let id = gw.store().resolve_action(&args.id).await?;
        let action = gw.store().action(id).await?;
        // An approved action that never started (its runner was refused by
        // a limit, or stopped first) is run by approving it again.
        if action.state != ActionState::Approved {
            let (_, progress) = gw.approve(id, &operator(), args.reason.as_deref()).await?;
            if let ApprovalProgress::Waiting { more } = progress {
                eprintln!(
                    "jarvis: your approval of {id} is recorded; it needs {more} more distinct approver(s) before it runs"
                );
                if args.json {
                    approved_json(&gw, id, &Ended::with(Outcome::Pending), more).await?;
                }
                return Ok(Outcome::Pending.code());
            }
            eprintln!("jarvis: approved {id}; running it");
        }
        let ended = execute(&gw, id, args.json).await?;
        if args.json {
            approved_json(&gw, id, &ended, 0).await?;
        }
        gw.close().await;
        Ok(ended.outcome.code())
    })
}

/// `approve --json`'s object: the action's end and how many approvers
/// it still needs.
async fn approved_json(gw: &Gateway, id: ActionId, ended: &Ended, more: u32) -> Result<()> {
    let mut v = crate::json::action_end(gw, id, ended).await?;
    v["approvals_still_needed"] = json!(more);
    crate::json::print(&v)
}

pub fn deny(args: DenyArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let gw = gateway(&args.data).await?;
        let id = gw.store().resolve_action(&args.id).await?;
        let action = gw.reject(id, &operator(), &args.reason).await?;
        eprintln!("jarvis: rejected {id}");
        if args.json {
            crate::json::print(&json!({
                "outcome": "rejected",
                "action": action,
                "link": crate::json::link(id),
            }))?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn actions(cmd: ActionsCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            ActionsCommand::List {
                state,
                limit,
                json,
                data,
            } => {
                let store = data.store().await?;
                let mut out = std::io::stdout().lock();
                for a in store.actions(state, limit).await? {
                    if json {
                        writeln!(out, "{}", serde_json::to_string(&a)?)?;
                    } else {
                        let id = a.id.to_string();
                        writeln!(
                            out,
                            "{}  {:<20} {:<10} {:>3}  {}  {}",
                            &id[..13],
                            a.state.label(),
                            a.host.as_deref().unwrap_or("-"),
                            a.risk
                                .map(|r| r.score().to_string())
                                .unwrap_or_else(|| "-".into()),
                            a.created_at.get(..19).unwrap_or(&a.created_at),
                            terminal::line(&a.command)
                        )?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            ActionsCommand::Show { id, json, data } => {
                let store = data.store().await?;
                show(&store, &id, json).await
            }
        }
    })
}

async fn show(store: &Store, id: &str, as_json: bool) -> Result<ExitCode> {
    let id = store.resolve_action(id).await?;
    let action = store.action(id).await?;
    let run = store.run_of(id).await?;
    let events = store
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            limit: Some(1000),
            ..AuditFilter::default()
        })
        .await?;
    if as_json {
        let run_json = run.as_ref().map(crate::json::run);
        let events: Vec<_> = events
            .iter()
            .rev()
            .map(|e| {
                let payload: serde_json::Value =
                    serde_json::from_str(&e.payload).unwrap_or_else(|_| json!(e.payload));
                json!({"seq": e.seq, "at": e.at, "actor": e.actor, "kind": e.kind, "payload": payload})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "action": action,
                "run": run_json,
                "snapshot": store.snapshot(id).await?,
                "events": events
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "action   {}", action.id)?;
    writeln!(out, "state    {}", action.state.label())?;
    writeln!(out, "host     {}", action.host.as_deref().unwrap_or("-"))?;
    writeln!(out, "command  {}", terminal::line(&action.command))?;
    if action.kind != jarvis_core::ActionKind::Command {
        writeln!(out, "kind     {}", action.kind)?;
    }
    if let Some(of) = action.rollback_of {
        writeln!(out, "rolls back {of}")?;
    }
    if let Some(cwd) = &action.cwd {
        writeln!(out, "cwd      {}", terminal::line(cwd))?;
    }
    if let Some(t) = action.timeout_secs {
        writeln!(out, "timeout  {t}s")?;
    }
    writeln!(
        out,
        "by       {} at {}",
        terminal::line(&action.requester),
        action.created_at
    )?;
    if action.accountable != action.requester {
        writeln!(
            out,
            "for      {} (accountable)",
            terminal::line(&action.accountable)
        )?;
    }
    if let (Some(d), Some(r)) = (action.decision, action.risk) {
        writeln!(
            out,
            "decision {d}, risk {} ({})",
            r.score(),
            r.level().as_str()
        )?;
    }
    for r in &action.reasons {
        writeln!(out, "  - {}", terminal::line(r))?;
    }
    if let Some(plan) = &action.plan {
        writeln!(out, "plan     {}", terminal::line(&plan.summary()))?;
    }
    if let Some(s) = store.snapshot(id).await? {
        writeln!(
            out,
            "{}",
            terminal::line(&crate::snapshots::snapshot_line(&s))
        )?;
    }
    for rb in store.rollbacks_of(id).await? {
        writeln!(out, "rollback {} {}", rb.id, rb.state.label())?;
    }
    if let Some(p) = &action.preview {
        out.write_all(terminal::text(&jarvis_gateway::rollback::preview_text(p)).as_bytes())?;
    }
    if let Some(run) = &run {
        writeln!(out, "run      {}", ending_line(&action, Some(run)))?;
        writeln!(
            out,
            "started  {}  finished {}",
            run.started_at, run.finished_at
        )?;
        for (name, s) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            if s.bytes == 0 {
                continue;
            }
            writeln!(
                out,
                "--- {name} ({} bytes, sha256 {}) ---",
                s.bytes, s.sha256
            )?;
            let mut inert = terminal::Inert::new(&mut out);
            inert.write_all(&s.data)?;
            inert.finish()?;
            if s.truncated {
                writeln!(
                    out,
                    "\n[… truncated: {} of {} bytes kept]",
                    s.data.len(),
                    s.bytes
                )?;
            }
        }
    }
    writeln!(out, "events")?;
    for e in events.iter().rev() {
        writeln!(
            out,
            "  #{:<6} {}  {:<22} {}",
            e.seq,
            e.at,
            e.kind,
            terminal::line(&e.actor)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A state as a person types it (`waiting for approval`, `timed out`,
/// `pending_approval`).
fn state_in_words(text: &str) -> Result<ActionState, String> {
    ActionState::from_words(text).ok_or_else(|| {
        format!(
            "`{text}` is not an action state: use one of {}",
            ActionState::ALL
                .iter()
                .map(|s| s.label())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
