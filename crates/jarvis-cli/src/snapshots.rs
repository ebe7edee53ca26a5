//! `jarvis edit`, `jarvis rollback` and `jarvis snapshots list | show |
//! prune`.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jarvis_core::{ActionState, HostName};
use jarvis_exec::snapshot::{FileChange, FileEdit, Snapshot, TargetState};
use jarvis_gateway::rollback::outcome_words;
use jarvis_gateway::{GatewayError, Proposal, Work};
use jarvis_store::SnapshotRecord;
use serde_json::json;

use crate::actions::{gateway, operator, propose_and_run, runtime};
use crate::data::DataArgs;
use crate::json::{Outcome, Refusal};

#[derive(Args)]
pub struct EditArgs {
    /// The configured host.
    #[arg(long, value_name = "NAME")]
    host: String,
    /// The new content, from this file (`-` for stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    content: Option<PathBuf>,
    /// A unified diff to apply, from this file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    diff: Option<PathBuf>,
    /// Print one JSON object when it ends, as `run --json` does (docs/json-output.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
    /// The absolute path of the file on the host.
    path: String,
}

#[derive(Args)]
pub struct RollbackArgs {
    /// The action to roll back (id or unique prefix).
    id: String,
    /// Restore even targets that changed after the action (the rollback
    /// snapshots them first, so it can be undone). A forced rollback is
    /// always approved under the full approval rule.
    #[arg(long)]
    force: bool,
    /// Print one JSON object when it ends (docs/json-output.md): the rollback, the host's report, how it ended.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Subcommand)]
pub enum SnapshotsCommand {
    /// List snapshots, newest first.
    List {
        /// Only this host's.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Include pruned snapshots.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show what a snapshot holds and what it does not capture.
    Show {
        /// The action id (or a unique prefix).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove snapshots beyond the host's retention (`keep`, `max_age_days`).
    Prune {
        /// The configured host.
        #[arg(long, value_name = "NAME")]
        host: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

fn read_input(path: &PathBuf) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn edit(args: EditArgs) -> Result<ExitCode> {
    let change = match (&args.content, &args.diff) {
        (Some(f), None) => FileChange::Content {
            content: read_input(f)?,
        },
        (None, Some(f)) => FileChange::Diff {
            diff: read_input(f)?,
        },
        _ => bail!("give the new content with --content FILE or a diff with --diff FILE"),
    };
    runtime()?.block_on(async {
        let host = HostName::parse(&args.host).with_context(|| format!("--host {}", args.host))?;
        let gw = gateway(&args.data).await?;
        let proposal = Proposal {
            requester: operator(),
            host,
            work: Work::Edit(FileEdit {
                path: args.path,
                change,
            }),
            timeout: None,
            purpose: None,
        };
        let code = propose_and_run(&gw, proposal, args.json).await?;
        gw.close().await;
        Ok(code)
    })
}

pub fn rollback(args: RollbackArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let gw = gateway(&args.data).await?;
        let id = gw.store().resolve_action(&args.id).await?;
        let result = gw.rollback(id, &operator(), args.force).await;
        gw.close().await;
        let refused = |code: &'static str, said: String| -> Result<ExitCode> {
            eprintln!("jarvis: {said}");
            if args.json {
                crate::json::print(&json!({
                    "outcome": Outcome::Refused.word(),
                    "of": id,
                    "rollback": null,
                    "waiting_for_approval": false,
                    "stopped": false,
                    "needed_approvers": 0,
                    "report": null,
                    "summary": null,
                    "message": said,
                    "run": null,
                    "refused": Refusal::new(code, said.clone()).to_json(),
                    "link": crate::json::link(id),
                }))?;
            }
            Ok(Outcome::Refused.code())
        };
        let done = match result {
            Ok(done) => done,
            Err(GatewayError::NothingToUndo { why, .. }) => {
                return refused("nothing-to-undo", format!("nothing to undo: {why} (action {id})"));
            }
            Err(ref e @ GatewayError::NoRollback { .. }) => {
                return refused("no-rollback", e.to_string());
            }
            Err(ref e @ GatewayError::NotSent { ref source, .. }) => {
                return refused(source.code(), e.to_string());
            }
            Err(ref e @ GatewayError::ApprovalRefused { .. }) => {
                return refused("approval-refused", e.to_string());
            }
            Err(e) => return Err(e.into()),
        };
        let rb = &done.rollback;
        let waiting = rb.state == ActionState::PendingApproval;
        let run = gw.store().run_of(rb.id).await?;
        let words = outcome_words(&done, run.as_ref().and_then(|r| r.error.as_deref()));
        let mut needed = 0;
        if waiting {
            let rule = gw.approval_rule(rb).await?;
            needed = rule.needed(rb.risk.unwrap_or(jarvis_core::Risk::MAX));
            for r in &rb.reasons {
                eprintln!("  - {r}");
            }
            let who = if rule.self_approval {
                format!("run `jarvis approve {}`", rb.id)
            } else {
                format!(
                    "someone other than you must approve it (`jarvis approve {}` as another user, or the web UI)",
                    rb.id
                )
            };
            eprintln!(
                "jarvis: rollback {} of {id} waits for approval by {needed} approver(s); {who}, or `jarvis deny {} --reason …`",
                rb.id, rb.id
            );
        } else {
            eprintln!("jarvis: {words}");
        }
        let outcome = match rb.state {
            ActionState::PendingApproval => Outcome::Pending,
            ActionState::Succeeded => {
                eprintln!(
                    "jarvis: rollback {} of {id} succeeded; `jarvis rollback {}` undoes it",
                    rb.id, rb.id
                );
                Outcome::Succeeded
            }
            ActionState::Denied => {
                eprintln!(
                    "jarvis: nothing was changed; rollback {} of {id} is recorded as refused. `jarvis rollback {id} --force` puts them back anyway and overwrites those later changes (it snapshots the present first, so it can be undone too)",
                    rb.id
                );
                Outcome::Refused
            }
            ActionState::Proposed
            | ActionState::Approved
            | ActionState::Rejected
            | ActionState::Expired
            | ActionState::Running
            | ActionState::Failed
            | ActionState::TimedOut
            | ActionState::Interrupted
            | ActionState::RolledBack => {
                eprintln!("jarvis: rollback {} of {id} {}", rb.id, rb.state.label());
                Outcome::Failed
            }
        };
        if args.json {
            let stopped = rb.state == ActionState::Denied;
            crate::json::print(&json!({
                "outcome": outcome.word(),
                "of": id,
                "rollback": rb,
                "waiting_for_approval": waiting,
                "stopped": stopped,
                "needed_approvers": needed,
                "report": done.report,
                "summary": done.report.as_ref().map(jarvis_gateway::rollback::describe),
                "message": words,
                "run": run.as_ref().map(crate::json::run),
                "refused": stopped.then(|| Refusal::new("targets-changed", words.clone()).to_json()),
                "link": crate::json::link(rb.id),
            }))?;
        } else {
            if let Some(report) = &done.report {
                print!("{}", jarvis_gateway::rollback::describe(report));
            }
            if waiting {
                println!("{}", rb.id);
            }
        }
        Ok(outcome.code())
    })
}

/// One line about a snapshot: what it captured and whether it is kept.
pub fn snapshot_line(s: &SnapshotRecord) -> String {
    let parsed: Option<Snapshot> = serde_json::from_value(s.manifest.clone()).ok();
    let mut parts = Vec::new();
    if let Some(m) = &parsed {
        parts.extend(
            m.targets()
                .iter()
                .map(|t| format!("{} {}", t.kind(), t.name())),
        );
    }
    let state = match &s.pruned_at {
        Some(at) => format!("pruned {at}"),
        None => "kept".into(),
    };
    format!(
        "snapshot {} on {} at {} ({state}): {}",
        s.action_id,
        s.host,
        s.taken_at.get(..19).unwrap_or(&s.taken_at),
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    )
}

pub fn snapshots(cmd: SnapshotsCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        match cmd {
            SnapshotsCommand::List {
                host,
                all,
                limit,
                json,
                data,
            } => {
                let store = data.store().await?;
                let mut out = std::io::stdout().lock();
                for s in store.snapshots(host.as_deref(), limit).await? {
                    if !all && s.pruned_at.is_some() {
                        continue;
                    }
                    if json {
                        writeln!(out, "{}", serde_json::to_string(&s)?)?;
                    } else {
                        writeln!(out, "{}", crate::terminal::line(&snapshot_line(&s)))?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            SnapshotsCommand::Show { id, json, data } => {
                let store = data.store().await?;
                let id = store.resolve_action(&id).await?;
                let Some(s) = store.snapshot(id).await? else {
                    bail!("action {id} has no snapshot");
                };
                if json {
                    println!("{}", serde_json::to_string_pretty(&s)?);
                    return Ok(ExitCode::SUCCESS);
                }
                // Paths, branches and names come from the host.
                let mut out = crate::terminal::Inert::new(std::io::stdout().lock());
                writeln!(out, "{}", snapshot_line(&s))?;
                let m: Snapshot = serde_json::from_value(s.manifest.clone())
                    .with_context(|| format!("the snapshot record of {id} cannot be read"))?;
                for t in m.targets() {
                    match t {
                        TargetState::Repo(r) => writeln!(
                            out,
                            "  repo {}: HEAD {} on {}, index {}, working tree {}, kept as {}",
                            r.path,
                            r.head.as_deref().map(short).unwrap_or("(none)"),
                            r.branch.as_deref().unwrap_or("(detached)"),
                            short(&r.index_tree),
                            short(&r.worktree_tree),
                            r.kept_ref.as_deref().unwrap_or("-")
                        )?,
                        TargetState::Container(c) if c.exists => writeln!(
                            out,
                            "  container {}: {} from {}, kept as {}",
                            c.name,
                            if c.running { "running" } else { "stopped" },
                            c.image.as_deref().unwrap_or("-"),
                            c.snapshot_image.as_deref().unwrap_or("-")
                        )?,
                        TargetState::Container(c) => {
                            writeln!(out, "  container {}: did not exist", c.name)?
                        }
                        TargetState::Volume(v) => writeln!(
                            out,
                            "  volume {}: {} bytes archived at {}",
                            v.name,
                            v.bytes,
                            v.archive.as_deref().unwrap_or("-")
                        )?,
                        TargetState::File(f) => writeln!(
                            out,
                            "  file {}: {}",
                            f.path,
                            match &f.backup {
                                Some(b) => format!("copy at {b}"),
                                None => "did not exist".into(),
                            }
                        )?,
                    }
                }
                for n in &m.not_captured {
                    writeln!(out, "  not captured: {n}")?;
                }
                writeln!(
                    out,
                    "  state after the action: {}",
                    if s.after.is_some() {
                        "recorded"
                    } else {
                        "not recorded (a rollback needs --force)"
                    }
                )?;
                Ok(ExitCode::SUCCESS)
            }
            SnapshotsCommand::Prune { host, data } => {
                let host = HostName::parse(&host).with_context(|| format!("--host {host}"))?;
                let gw = gateway(&data).await?;
                let pruned = gw.prune(&host, &operator()).await;
                gw.close().await;
                let pruned = pruned?;
                eprintln!("jarvis: pruned {} snapshots on {host}", pruned.len());
                for id in pruned {
                    println!("{id}");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
