//! Prints the request line that asks a guard to run the command given as
//! arguments, unattended, as the gateway would send it over SSH.
//!
//! `scripts/bench-floor` sends it with plain `ssh` to time the guard alone
//! against the floor; encoding it here, with the protocol's own code, keeps
//! that benchmark honest when the frame format changes.
//!
//! ```sh
//! cargo run -p jarvis-exec --example run-request -- true
//! ```

use jarvis_core::ActionId;
use jarvis_exec::protocol::{Request, RunRequest};

fn main() {
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if command.is_empty() {
        eprintln!("usage: run-request COMMAND...");
        std::process::exit(2);
    }
    // The sandbox host's limits (a minute, a MiB of each stream). Unattended,
    // so the guard judges the line itself, as it does for most agent commands.
    let line = Request::Run(RunRequest {
        action_id: ActionId::new(),
        command,
        cwd: None,
        timeout_ms: 60_000,
        output_cap: 1 << 20,
        approved: false,
        scope: Vec::new(),
    })
    .encode();
    println!("{line}");
}
