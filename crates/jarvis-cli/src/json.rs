//! `--json`: the objects the CLI prints for scripts and agents, one per
//! command (JSON lines for `chat`), with the field names of
//! `actions show --json` and the JSON API, documented in
//! `docs/json-output.md`. With `--json` nothing else goes to stdout;
//! progress stays on stderr.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use jarvis_core::ActionId;
use jarvis_gateway::Gateway;
use jarvis_store::{ActionRecord, RunRecord};
use serde_json::{Value, json};

use crate::actions::exit;

/// How a command that can run an action ended; the exit code and the
/// `outcome` word say the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran and exited 0.
    Succeeded,
    /// It ran and failed, timed out, or the host refused it.
    Failed,
    /// It waits for a person.
    Pending,
    /// Denied, or refused before anything was sent.
    Refused,
}

impl Outcome {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Pending => "pending",
            Outcome::Refused => "refused",
        }
    }

    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Succeeded => exit::SUCCEEDED,
            Outcome::Failed => exit::FAILED,
            Outcome::Pending => exit::PENDING,
            Outcome::Refused => exit::REFUSED,
        })
    }
}

/// Why an action did not run (or went back to a person): a stable code
/// for scripts and the sentence for people.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: &'static str,
    pub(crate) reason: String,
}

impl Refusal {
    pub(crate) fn new(code: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({ "code": self.code, "reason": self.reason })
    }
}

/// How `run`, `approve` and `edit` ended.
#[derive(Debug)]
pub(crate) struct Ended {
    pub(crate) outcome: Outcome,
    pub(crate) refused: Option<Refusal>,
}

impl Ended {
    pub(crate) fn with(outcome: Outcome) -> Ended {
        Ended {
            outcome,
            refused: None,
        }
    }

    pub(crate) fn refused(outcome: Outcome, refusal: Refusal) -> Ended {
        Ended {
            outcome,
            refused: Some(refusal),
        }
    }
}

/// One object on one line of stdout.
pub(crate) fn print(value: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

/// A run as `actions show --json` and the API give it: the stored record,
/// each output with its kept bytes as `text` (invalid UTF-8 as U+FFFD)
/// beside its full count, hash and `truncated` flag.
pub(crate) fn run(r: &RunRecord) -> Value {
    let mut v = json!(r);
    v["stdout"]["text"] = json!(String::from_utf8_lossy(&r.stdout.data));
    v["stderr"]["text"] = json!(String::from_utf8_lossy(&r.stderr.data));
    v
}

/// The action's page in the web UI: the config's `[server] public_url`,
/// else the address `jarvis serve` binds.
pub(crate) fn link(id: ActionId) -> String {
    format!("{}/actions/{id}", crate::data::config().server.ui_url())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The object `run`, `approve` and `edit` end with: the action as it
/// stands now, its run if it ran, why it did not, and where to see it.
/// The caller adds its own fields.
pub(crate) async fn action_end(gw: &Gateway, id: ActionId, ended: &Ended) -> Result<Value> {
    let action = gw.store().action(id).await?;
    let run = gw.store().run_of(id).await?;
    Ok(action_object(gw, &action, run.as_ref(), ended))
}

fn action_object(
    gw: &Gateway,
    action: &ActionRecord,
    run_record: Option<&RunRecord>,
    ended: &Ended,
) -> Value {
    let waiting = action.state == jarvis_core::ActionState::PendingApproval;
    json!({
        "outcome": ended.outcome.word(),
        "action": action,
        "run": run_record.map(run),
        "refused": ended.refused.as_ref().map(Refusal::to_json),
        "expires_at": waiting.then(|| unix(gw.expires_at(action))),
        "link": link(action.id),
    })
}
