//! `jarvis serve`, and the people and tokens it lets in: `jarvis users` and
//! `jarvis tokens`. Generated secrets are printed once, alone on stdout (so
//! scripts can capture them), and never stored in the clear.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jarvis_core::{Role, TokenScope};
use jarvis_gateway::server::{ServeOptions, serve};
use jarvis_gateway::{ConnectionLimits, auth};

use crate::actions::{gateway, operator, runtime};
use crate::data::{DataArgs, config};

#[derive(Args)]
pub struct ServeArgs {
    /// Listen here instead of `[server] bind` (default 127.0.0.1:7878).
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a person; prints their generated password once.
    Add {
        /// The user name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// viewer (reads), approver (also proposes, approves, denies, rolls back) or admin.
        #[arg(long)]
        role: Role,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List people and their roles.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Give someone a new generated password (printed once); signs them out everywhere.
    Passwd {
        /// The user name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change someone's role.
    Role {
        /// The user name.
        name: String,
        /// The new role.
        role: Role,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a person and end their sessions.
    Remove {
        /// The user name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create an API token for an agent or script; prints it once.
    Add {
        /// A name for the token (it is the actor in the audit log: `token:NAME`).
        name: String,
        /// read (reads only) or propose (reads and proposes). No token can approve.
        #[arg(long, default_value = "propose")]
        scope: TokenScope,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List tokens (never their values).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token at once.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub fn serve_command(args: ServeArgs) -> Result<ExitCode> {
    with_allocator_tunables();
    // The server signs and ships heads itself, at start, every period and
    // when it stops.
    crate::data::server_signs_heads();
    // One JSON object per line on stderr, each request with its id; the
    // level is set by RUST_LOG (default info).
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    runtime()?.block_on(async {
        let gw = gateway(&args.data).await?;
        let bind = args.bind.unwrap_or(config().server.bind);
        open_files(&config().server.connections);
        if gw.store().user_count().await? == 0 {
            eprintln!(
                "jarvis: no users yet, so nobody can sign in. Create the first one with:\n  jarvis users add NAME --role admin\nIt prints a generated password once."
            );
        }
        if config().hosts.is_empty() {
            eprintln!("jarvis: the config names no hosts; nothing can be proposed until it does");
        }
        // Warm the dummy password hash so the first unknown-user sign-in
        // costs what every later one does.
        auth::burn_verify("");
        let options = ServeOptions {
            bind,
            audit_key: Some(args.data.key()?),
        };
        eprintln!("jarvis: serving on http://{bind}/");
        serve(gw, options, shutdown_signal())
            .await
            .context("jarvis serve")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Raises the soft limit on open files to the hard one, as Go's runtime
/// does: a default systemd unit starts at 1,024, and when `accept` runs out
/// of descriptors nobody is served, health checks included. Says so when
/// even the hard limit leaves no room for `[server]`'s caps besides the
/// database, SSH masters and logs.
fn open_files(limits: &ConnectionLimits) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    /// Descriptors besides clients' sockets: the database and its journal,
    /// SSH masters, logs, the listener.
    const OTHER: u64 = 128;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let soft = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    let wanted = u64::try_from(limits.sockets())
        .unwrap_or(u64::MAX)
        .saturating_add(OTHER);
    if soft < wanted {
        eprintln!(
            "jarvis: the open-file limit is {soft}, below the {wanted} that [server] max_connections = {} needs besides the database and SSH; raise LimitNOFILE or lower max_connections",
            limits.max_connections
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("jarvis: stopping");
}

pub fn users(cmd: UsersCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let actor = operator();
        match cmd {
            UsersCommand::Add { name, role, data } => {
                let store = data.signing_store().await?;
                let password = auth::generate_password();
                let hash = auth::hash_password(&password)?;
                store.create_user(&name, role, &hash, &actor).await?;
                eprintln!("jarvis: added {name} ({role}); their password, shown only now:");
                println!("{password}");
            }
            UsersCommand::List { data } => {
                let store = data.store().await?;
                let users = store.users().await?;
                if users.is_empty() {
                    eprintln!(
                        "jarvis: no users yet; add one with `jarvis users add NAME --role admin`"
                    );
                }
                for u in users {
                    println!("{:<24} {:<9} since {}", u.name, u.role, u.created_at);
                }
            }
            UsersCommand::Passwd { name, data } => {
                let store = data.signing_store().await?;
                let password = auth::generate_password();
                store
                    .set_password(&name, &auth::hash_password(&password)?, &actor)
                    .await?;
                eprintln!(
                    "jarvis: new password for {name}, shown only now (their sessions ended):"
                );
                println!("{password}");
            }
            UsersCommand::Role { name, role, data } => {
                let store = data.signing_store().await?;
                store.set_role(&name, role, &actor).await?;
                eprintln!("jarvis: {name} is now {role}");
            }
            UsersCommand::Remove { name, data } => {
                let store = data.signing_store().await?;
                store.remove_user(&name, &actor).await?;
                eprintln!("jarvis: removed {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn tokens(cmd: TokensCommand) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let actor = operator();
        match cmd {
            TokensCommand::Add { name, scope, data } => {
                let store = data.signing_store().await?;
                let token = auth::new_api_token();
                store
                    .create_token(&name, scope, &auth::digest(&token), &actor)
                    .await?;
                eprintln!(
                    "jarvis: token {name} ({scope}); send it as `Authorization: Bearer …`. Shown only now:"
                );
                println!("{token}");
            }
            TokensCommand::List { data } => {
                let store = data.store().await?;
                for t in store.tokens().await? {
                    let status = match &t.revoked_at {
                        Some(at) => format!("revoked {at}"),
                        None => format!(
                            "last used {}",
                            t.last_used_at.as_deref().unwrap_or("never")
                        ),
                    };
                    println!(
                        "{:<24} {:<8} by {} at {}; {status}",
                        t.name, t.scope, t.created_by, t.created_at
                    );
                }
            }
            TokensCommand::Revoke { name, data } => {
                let store = data.signing_store().await?;
                let t = store.revoke_token(&name, &actor).await?;
                if t.revoked_at.is_none() {
                    bail!("token {name} was not revoked");
                }
                eprintln!("jarvis: revoked {name}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// glibc's allocator as the server wants it: two arenas, and free memory
/// above 128 KiB given back at once. With the defaults, each thread that
/// had served a burst kept an arena of its own with what it had freed: a
/// server that started at 56 MiB held 96 MiB, idle, after 15,000 proposals
/// and a few pages, where with these it held 48 MiB (from 37) and served
/// as fast (scripts/bench-server).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ALLOCATOR_TUNABLES: &str = "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072";

/// glibc reads its tunables only when a process starts, and setting them
/// needs no code inside the allocator: the server starts itself again,
/// once, with them in its environment (the same process id, before it has
/// opened anything). An operator's own `GLIBC_TUNABLES` is left as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn with_allocator_tunables() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "GLIBC_TUNABLES";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let mut argv = std::env::args_os();
    let mut again = std::process::Command::new("/proc/self/exe");
    if let Some(name) = argv.next() {
        again.arg0(name);
    }
    let e = again.args(argv).env(VAR, ALLOCATOR_TUNABLES).exec();
    // Only a failed exec returns; the server runs as it is.
    eprintln!("jarvis: serving with the allocator's defaults (cannot restart with {VAR}: {e})");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn with_allocator_tunables() {}
