//! `jarvis chat "PROMPT"`: a conversation with the planner in the terminal,
//! and `jarvis chat --continue ID "MORE"` to say more in one that ended.
//! It streams the plan and the results, waits for approvals made elsewhere
//! (the web UI or `jarvis approve`), and its exit code says how it ended.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use jarvis_core::{ActionState, ConversationId};
use jarvis_gateway::chat::ChatEvent;
use jarvis_planner::agent::{Event, StopReason};
use jarvis_planner::model::Model;
use serde_json::{Value, json};

use crate::actions::{gateway, operator, runtime};
use crate::data::DataArgs;

/// Exit codes of `chat`.
pub mod exit {
    /// The conversation finished with an answer.
    pub const FINISHED: u8 = 0;
    /// It stopped before an answer (a limit, the model failing, a repeat).
    pub const STOPPED: u8 = 1;
}

#[derive(Args)]
pub struct ChatArgs {
    /// What you want done, in words (or, without a model, a command).
    #[arg(required = true, value_name = "PROMPT")]
    prompt: Vec<String>,
    /// Say more in a conversation you started that has ended: the model
    /// answers with everything said in it so far.
    #[arg(long = "continue", value_name = "CONVERSATION")]
    follow_up: Option<ConversationId>,
    /// Print JSON lines as the conversation goes, one object per event, the last one its end (docs/json-output.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

fn first_lines(text: &str, n: usize) -> String {
    let mut out: Vec<&str> = text.lines().take(n).collect();
    if text.lines().count() > n {
        out.push("…");
    }
    out.join("\n    ")
}

/// One event of the conversation on stderr. Everything in it (the model's
/// words, commands, reasons, output) is the agent's or a host's, so all of
/// it is made inert.
/// `ui` is where the web UI is, for the link to a waiting action.
fn show(ui: &str, event: ChatEvent) {
    let mut err = crate::terminal::Inert::new(std::io::stderr());
    // The terminal may go away; the conversation is stored all the same.
    let _ = match event {
        ChatEvent::Waiting { id, host, command } => writeln!(
            err,
            "jarvis: waiting for approval of action {id} on {host}: {command}\n        approve it at {ui}/actions/{id} or with `jarvis approve {id}`"
        ),
        ChatEvent::Planner(Event::Thinking { step }) => {
            writeln!(err, "jarvis: thinking (step {step})")
        }
        // The model's text as it is written; `Said` only ends its line.
        ChatEvent::Planner(Event::Saying { text, piece: 0 }) => write!(err, "planner: {text}"),
        ChatEvent::Planner(Event::Saying { text, .. }) => write!(err, "{text}"),
        ChatEvent::Planner(Event::Said { .. }) => writeln!(err),
        ChatEvent::Planner(Event::Proposed {
            host,
            command,
            reason,
        }) => writeln!(
            err,
            "jarvis: proposing on {host}: {command}\n        because: {reason}"
        ),
        ChatEvent::Planner(Event::Result { report }) => {
            let detail = match (&report.note, report.state) {
                (Some(note), _) => format!(" ({note})"),
                (None, ActionState::Succeeded | ActionState::Failed | ActionState::TimedOut) => {
                    String::new()
                }
                (
                    None,
                    ActionState::Proposed
                    | ActionState::Denied
                    | ActionState::PendingApproval
                    | ActionState::Approved
                    | ActionState::Rejected
                    | ActionState::Expired
                    | ActionState::Running
                    | ActionState::Interrupted
                    | ActionState::RolledBack,
                ) => format!(" ({})", report.reasons.join("; ")),
            };
            let out = first_lines(&report.stdout, 5);
            let state = report.state.label();
            // What the people who decided said, as the model was told it.
            let said: String = report
                .people
                .iter()
                .map(|p| format!("\n        {p}"))
                .collect();
            writeln!(
                err,
                "jarvis: action {} {state}{}{detail}{said}{}",
                report.id,
                report
                    .exit_code
                    .map(|c| format!(", exit {c}"))
                    .unwrap_or_default(),
                if out.is_empty() {
                    String::new()
                } else {
                    format!("\n    {out}")
                }
            )
        }
        ChatEvent::Planner(Event::ToolError { tool, message }) => {
            writeln!(
                err,
                "jarvis: the model's `{tool}` call was refused: {message}"
            )
        }
        ChatEvent::Planner(Event::Finished { .. }) => Ok(()),
        ChatEvent::Planner(Event::Stopped { why }) => writeln!(err, "jarvis: {why}"),
    };
    let _ = err.finish();
}

/// One JSON line on stdout. The reader may go away; the conversation is
/// stored all the same.
fn line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

/// One event as a JSON object, named by `type`. Text is as the model or
/// host wrote it: the JSON encoder escapes what a terminal would act on.
fn event_json(ui: &str, event: &ChatEvent) -> Value {
    match event {
        ChatEvent::Waiting { id, host, command } => json!({
            "type": "waiting",
            "id": id,
            "host": host,
            "command": command,
            "link": format!("{ui}/actions/{id}"),
        }),
        ChatEvent::Planner(Event::Thinking { step }) => json!({ "type": "thinking", "step": step }),
        // Many per turn, as the model writes; `said` follows with the whole.
        ChatEvent::Planner(Event::Saying { text, piece }) => {
            json!({ "type": "saying", "piece": piece, "text": text })
        }
        ChatEvent::Planner(Event::Said { text }) => json!({ "type": "said", "text": text }),
        ChatEvent::Planner(Event::Proposed {
            host,
            command,
            reason,
        }) => json!({ "type": "proposed", "host": host, "command": command, "reason": reason }),
        ChatEvent::Planner(Event::Result { report }) => json!({
            "type": "result",
            "id": report.id,
            "state": report.state,
            "decision": report.decision,
            "risk": report.risk,
            "reasons": report.reasons,
            "exit_code": report.exit_code,
            "stdout": report.stdout,
            "stderr": report.stderr,
            "truncated": report.truncated,
            "note": report.note,
            "people": report.people,
            "link": format!("{ui}/actions/{}", report.id),
        }),
        ChatEvent::Planner(Event::ToolError { tool, message }) => {
            json!({ "type": "tool_error", "tool": tool, "message": message })
        }
        ChatEvent::Planner(Event::Finished { summary }) => {
            json!({ "type": "finished", "summary": summary })
        }
        ChatEvent::Planner(Event::Stopped { why }) => json!({
            "type": "stopped",
            "finished": matches!(why, StopReason::Finished),
            "reason": why.to_string(),
        }),
    }
}

pub fn chat(args: ChatArgs) -> Result<ExitCode> {
    // Warnings (the model endpoint rate limiting, a retry) on stderr, so a
    // long wait says why.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    runtime()?.block_on(async {
        let gw = gateway(&args.data).await?;
        let model = gw.chat_model()?;
        let prompt = args.prompt.join(" ");
        if model.is_none() {
            eprintln!("jarvis: no model configured ([llm] in the config): direct mode");
        }
        let mode = if model.is_some() { "planner" } else { "direct" };
        let model = model.as_ref().map(|m| m as &dyn Model);
        let ui = crate::data::config().server.ui_url();
        let conversation = match args.follow_up {
            Some(id) => gw.follow_up(id, &operator(), &prompt).await?,
            None => gw.start_chat(&operator(), &prompt).await?,
        };
        let outcome = if args.json {
            line(&json!({
                "type": "started",
                "conversation": conversation.id,
                "mode": mode,
                "continued": args.follow_up.is_some(),
            }));
            let mut show = |event| line(&event_json(&ui, &event));
            let outcome = gw.continue_chat(&conversation, model, &mut show).await?;
            line(&json!({
                "type": "end",
                "conversation": outcome.conversation.id,
                "state": outcome.conversation.state,
                "finished": outcome.finished,
                "summary": outcome.summary,
                "actions": outcome
                    .actions
                    .iter()
                    .map(|a| json!({ "id": a.id, "state": a.state }))
                    .collect::<Vec<_>>(),
            }));
            outcome
        } else {
            let mut show = |event| show(&ui, event);
            let outcome = gw.continue_chat(&conversation, model, &mut show).await?;
            println!("{}", crate::terminal::text(&outcome.summary));
            outcome
        };
        let id = outcome.conversation.id;
        eprintln!(
            "jarvis: conversation {id} {}; say more with `jarvis chat --continue {id} \"…\"`",
            outcome.conversation.state
        );
        gw.close().await;
        Ok(ExitCode::from(if outcome.finished {
            exit::FINISHED
        } else {
            exit::STOPPED
        }))
    })
}
