//! The `jarvis` binary: parses arguments, calls the libraries, prints.
//!
//! It owns no logic of its own beyond presentation and exit codes; anything
//! a test would want to call lives in a library crate. It must never decide
//! what may run: that is jarvis-policy's job.

mod actions;
mod audit;
mod chat;
mod data;
mod hook;
mod hosts;
mod json;
mod mcp;
mod policy;
mod serve;
mod snapshots;
mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Jarvis: a guarded execution gateway between AI agents and your servers.
#[derive(Parser)]
#[command(name = "jarvis", version, about, long_about = None)]
struct Cli {
    /// The configuration file: hosts, limits, store [env: JARVIS_CONFIG; default: ~/.config/jarvis/jarvis.toml if it exists].
    #[arg(long, value_name = "FILE", global = true, env = "JARVIS_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, lint and test policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Read, verify and export the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Propose a command for a host; it runs if the policy allows it, waits for approval, or is denied.
    Run(actions::RunArgs),
    /// Approve a pending action and run it (or run an approved one that has not started).
    Approve(actions::ApproveArgs),
    /// Reject a pending action.
    Deny(actions::DenyArgs),
    /// Propose a file edit (new content or a unified diff) for a host.
    Edit(snapshots::EditArgs),
    /// Put back what an action changed, from the snapshot taken before it ran.
    Rollback(snapshots::RollbackArgs),
    /// List, show and prune snapshots.
    #[command(subcommand)]
    Snapshots(snapshots::SnapshotsCommand),
    /// List and show actions.
    #[command(subcommand)]
    Actions(actions::ActionsCommand),
    /// List, check and install the guard on hosts.
    #[command(subcommand)]
    Hosts(hosts::HostsCommand),
    /// Ask Jarvis in words; the planner proposes actions through the policy and waits for approvals.
    Chat(chat::ChatArgs),
    /// Judge a coding agent's shell calls as its PreToolUse hook (JSON on stdin, the agent's answer on stdout).
    #[command(subcommand)]
    Hook(hook::HookCommand),
    /// Run the web UI and JSON API: approval queue, audit review, rollback.
    Serve(serve::ServeArgs),
    /// Serve Jarvis's tools to an agent over MCP on stdio: it proposes and reads with an API token, never approves.
    Mcp(mcp::McpArgs),
    /// Manage the people who sign in to the web UI.
    #[command(subcommand)]
    Users(serve::UsersCommand),
    /// Manage API tokens for agents and scripts (they propose and read, never approve).
    #[command(subcommand)]
    Tokens(serve::TokensCommand),
}

fn main() -> ExitCode {
    // The policy engine turns a panic inside its shell parser into a denial;
    // one line on stderr says so, without a backtrace per bad request.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("jarvis: internal error{at}: {what}");
    }));
    let cli = Cli::parse();
    let result = data::load_config(cli.config.as_deref()).and_then(|()| match cli.command {
        Command::Policy(cmd) => policy::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Run(args) => actions::run(args),
        Command::Approve(args) => actions::approve(args),
        Command::Deny(args) => actions::deny(args),
        Command::Edit(args) => snapshots::edit(args),
        Command::Rollback(args) => snapshots::rollback(args),
        Command::Snapshots(cmd) => snapshots::snapshots(cmd),
        Command::Actions(cmd) => actions::actions(cmd),
        Command::Hosts(cmd) => hosts::run(cmd),
        Command::Chat(args) => chat::chat(args),
        Command::Hook(cmd) => hook::run(cmd),
        Command::Serve(args) => serve::serve_command(args),
        Command::Mcp(args) => mcp::mcp(args),
        Command::Users(cmd) => serve::users(cmd),
        Command::Tokens(cmd) => serve::tokens(cmd),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jarvis: {}", terminal::text(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
