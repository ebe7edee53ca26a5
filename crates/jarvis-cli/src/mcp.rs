//! `jarvis mcp`: Jarvis's tools for an agent that starts it as an MCP
//! server on stdio (Claude Code, Codex CLI, Cursor, Goose …).
//!
//! The agent always acts with an API token, given by reference (a file or
//! `JARVIS_TOKEN`), never as the operator who runs this: its proposals are
//! recorded under the token's name and answered for by the person who
//! made the token, and it can approve nothing. With `--server` the tools
//! call that running `jarvis serve`; without, they call the same API in
//! this process over the local store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use jarvis_gateway::mcp::{ApiRoute, JarvisMcp, McpOptions};
use jarvis_gateway::server::LocalApi;

use crate::actions::{gateway, runtime};
use crate::data::{DataArgs, config};

#[derive(Args)]
pub struct McpArgs {
    /// A running `jarvis serve` for the tools to call (its base URL, such as https://jarvis.lan) [env: JARVIS_SERVER]; without one they use the local store.
    #[arg(long, value_name = "URL", env = "JARVIS_SERVER")]
    server: Option<String>,
    /// A file holding the API token the agent acts with (`jarvis tokens add NAME --scope propose`); or set JARVIS_TOKEN to the token itself.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Seconds run_command waits for a person and the run before it returns the action's id to poll [default: the config's server.mcp_wait_secs, 60].
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
    #[command(flatten)]
    data: DataArgs,
}

/// The token, from `--token-file` or `JARVIS_TOKEN`: never from the
/// command line, where every user of the machine could read it.
fn token(args: &McpArgs) -> Result<String> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}", path.display()))?
            .trim()
            .to_owned(),
        None => std::env::var("JARVIS_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    };
    if token.is_empty() {
        bail!(
            "jarvis mcp acts with an API token: create one with `jarvis tokens add NAME --scope propose`, then pass it with --token-file FILE or in JARVIS_TOKEN"
        );
    }
    Ok(token)
}

pub fn mcp(args: McpArgs) -> Result<ExitCode> {
    let token = token(&args)?;
    let wait = args
        .wait
        .map_or(config().server.mcp_wait, Duration::from_secs);
    if wait.is_zero() {
        bail!("--wait must be at least 1 second");
    }
    runtime()?.block_on(async {
        let (route, ui, local) = match &args.server {
            Some(url) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    bail!("--server `{url}` must be an http(s) URL such as https://jarvis.lan");
                }
                let route = ApiRoute::remote(url).context("--server")?;
                (route, Some(url.trim_end_matches('/').to_owned()), None)
            }
            None => {
                let local = LocalApi::new(gateway(&args.data).await?);
                (
                    ApiRoute::InProcess(local.router()),
                    config().server.public_url.clone(),
                    Some(local),
                )
            }
        };
        let server = JarvisMcp::new(
            route,
            McpOptions {
                token: Some(token),
                wait,
                ui,
            },
        );
        let served = server.serve_stdio().await.context("jarvis mcp");
        if let Some(local) = local {
            // Runs the tools started finish before the store closes.
            local.close(config().server.drain).await;
        }
        served?;
        Ok(ExitCode::SUCCESS)
    })
}
