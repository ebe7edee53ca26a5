//! `jarvis hook claude-code | codex`: the policy engine as a coding agent's
//! `PreToolUse` hook. The agent runs the command with the hook's JSON on
//! stdin before each tool call; the answer on stdout (or the exit code)
//! says whether the call may go ahead.
//!
//! Only shell calls (`Bash`) are judged, locally, with the policy `jarvis
//! policy check` uses; nothing is proposed, stored or sent to a host.
//! Anything the hook cannot judge blocks the call: both agents treat an
//! exit code other than 0 and 2 (a panic, a crash) as a hook *failure* and
//! run the tool anyway, so every failure here ends in exit 2, the one
//! answer both read as "blocked", whatever the event and whatever they
//! make of stdout.
//!
//! The formats:
//! - Claude Code: <https://code.claude.com/docs/en/hooks> (`PreToolUse`
//!   decision control: `hookSpecificOutput.permissionDecision` of `allow`,
//!   `ask` or `deny` with `permissionDecisionReason`; exit 2 blocks and
//!   feeds stderr to the model).
//! - Codex: <https://developers.openai.com/codex/hooks> (`PreToolUse`
//!   honours `deny` with a non-empty reason, and exit 2 with a reason on
//!   stderr; a bare `allow` and `ask` are rejected as unsupported and the
//!   tool then runs, so an allowed call gets no output at all, and a call
//!   that needs a person is blocked with a reason that says so).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use jarvis_core::Decision;
use jarvis_core::text::{clip_chars, inert_line};
use jarvis_policy::{Judgement, Policy, Request};
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum HookCommand {
    /// Claude Code's PreToolUse hook: judges Bash calls and answers allow, ask or deny.
    ClaudeCode(HookArgs),
    /// Codex's PreToolUse hook: judges Bash calls; blocks what the policy denies or holds for a person.
    Codex(HookArgs),
}

#[derive(Args)]
pub struct HookArgs {
    /// A policy file or directory of them; repeatable. Default: the config's `[policy] paths`, else the shipped policy.
    #[arg(long = "policy", value_name = "PATH")]
    policy: Vec<PathBuf>,
}

/// The agent whose hook format is spoken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Agent {
    ClaudeCode,
    Codex,
}

impl Agent {
    fn command(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "jarvis hook claude-code",
            Agent::Codex => "jarvis hook codex",
        }
    }
}

/// The largest hook input read. A Bash call is far smaller (the policy
/// judges at most 64 KiB of command); the room is for other tools' inputs
/// (a file written whole), which must still be read to be let through.
const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;

/// The longest reason handed back: the agent shows it in a prompt or to
/// its model, and the first one or two of the policy's reasons decide.
const MAX_REASON_CHARS: usize = 1000;

/// What a hook input asks, once read.
#[derive(Debug, PartialEq, Eq)]
enum Call {
    /// A shell command for the policy to judge.
    Bash { command: String },
    /// Another tool: not Jarvis's to judge.
    OtherTool,
}

/// Why a hook input cannot be judged; said on stderr with exit 2.
#[derive(Debug, PartialEq, Eq)]
enum Unjudgeable {
    TooLarge,
    NotJson(String),
    NotAnObject,
    Field {
        field: &'static str,
        problem: String,
    },
    WrongEvent(String),
    EmptyCommand,
}

impl std::fmt::Display for Unjudgeable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unjudgeable::TooLarge => write!(
                f,
                "the hook input on stdin is over {} MiB",
                MAX_INPUT_BYTES / (1024 * 1024)
            ),
            Unjudgeable::NotJson(e) => write!(f, "the hook input on stdin is not JSON: {e}"),
            Unjudgeable::NotAnObject => {
                write!(f, "the hook input on stdin is JSON but not an object")
            }
            Unjudgeable::Field { field, problem } => {
                write!(f, "the hook input's `{field}` {problem}")
            }
            Unjudgeable::WrongEvent(event) => write!(
                f,
                "the hook input is a `{event}` event, not `PreToolUse`: configure this command under the PreToolUse hooks only"
            ),
            Unjudgeable::EmptyCommand => {
                write!(f, "the hook input's `tool_input.command` is empty")
            }
        }
    }
}

/// How the hook answers.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Exit 0 with nothing on stdout: no opinion, the agent's own
    /// permission flow decides.
    Silent,
    /// Exit 0 with this JSON on stdout.
    Json(Value),
    /// Exit 2 with this on stderr: the call is blocked.
    Block(String),
}

pub fn run(cmd: HookCommand) -> Result<ExitCode> {
    let (agent, args) = match cmd {
        HookCommand::ClaudeCode(a) => (Agent::ClaudeCode, a),
        HookCommand::Codex(a) => (Agent::Codex, a),
    };
    let mut input = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut input);
    // A panic would exit 101, which both agents take for a failed hook
    // and run the tool anyway: anything that goes wrong here blocks.
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match read {
        Ok(_) => answer(agent, &input, || load_policy(&args.policy)),
        Err(e) => Answer::Block(block_message(
            agent,
            &format!("cannot read the hook input on stdin: {e}"),
        )),
    }))
    .unwrap_or_else(|_| {
        Answer::Block(block_message(
            agent,
            "judging the call failed inside Jarvis",
        ))
    });
    Ok(emit(answer))
}

/// Writes the answer; its exit code.
fn emit(answer: Answer) -> ExitCode {
    match answer {
        Answer::Silent => ExitCode::SUCCESS,
        Answer::Json(v) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{v}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("jarvis: cannot write the hook's answer: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Answer::Block(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// The policy the hook judges with: `--policy`, else the config's, else
/// the shipped one (what the gateway would use).
fn load_policy(paths: &[PathBuf]) -> Result<Policy, String> {
    let paths = if paths.is_empty() {
        &crate::data::config().policy
    } else {
        paths
    };
    let loaded = if paths.is_empty() {
        Policy::shipped()
    } else {
        Policy::load(paths)
    };
    loaded.map_err(|e| format!("the policy cannot be loaded: {e}"))
}

/// The answer to one hook input. `policy` is loaded only for a Bash call,
/// so a broken policy file never blocks the agent's other tools.
fn answer(agent: Agent, input: &[u8], policy: impl FnOnce() -> Result<Policy, String>) -> Answer {
    let command = match read_call(input) {
        Ok(Call::OtherTool) => return Answer::Silent,
        Ok(Call::Bash { command }) => command,
        Err(why) => return Answer::Block(block_message(agent, &why.to_string())),
    };
    let policy = match policy() {
        Ok(p) => p,
        Err(why) => return Answer::Block(block_message(agent, &why)),
    };
    // No working directory: the one the agent reports is the session's,
    // and its shell may have moved since (`cd` persists between calls).
    // A line judged without one is read as running anywhere, the stricter
    // reading.
    let j = policy.judge(&Request {
        command,
        host: None,
        cwd: None,
    });
    verdict(agent, &j)
}

/// Reads a hook input: the `PreToolUse` event, the tool, and for `Bash`
/// its command. Fields the agents add over time are ignored.
fn read_call(input: &[u8]) -> Result<Call, Unjudgeable> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(Unjudgeable::TooLarge);
    }
    let value: Value =
        serde_json::from_slice(input).map_err(|e| Unjudgeable::NotJson(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(Unjudgeable::NotAnObject);
    };
    let text = |field: &'static str, v: Option<&Value>| match v {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(Unjudgeable::Field {
            field,
            problem: "is missing".into(),
        }),
        Some(other) => Err(Unjudgeable::Field {
            field,
            problem: format!("is {}, not a string", jarvis_core::text::json_kind(other)),
        }),
    };
    let event = text("hook_event_name", fields.get("hook_event_name"))?;
    if event != "PreToolUse" {
        return Err(Unjudgeable::WrongEvent(event));
    }
    if text("tool_name", fields.get("tool_name"))? != "Bash" {
        return Ok(Call::OtherTool);
    }
    let tool_input = match fields.get("tool_input") {
        Some(Value::Object(o)) => o,
        None => {
            return Err(Unjudgeable::Field {
                field: "tool_input",
                problem: "is missing".into(),
            });
        }
        Some(other) => {
            return Err(Unjudgeable::Field {
                field: "tool_input",
                problem: format!("is {}, not an object", jarvis_core::text::json_kind(other)),
            });
        }
    };
    let command = text("tool_input.command", tool_input.get("command"))?;
    if command.trim().is_empty() {
        return Err(Unjudgeable::EmptyCommand);
    }
    Ok(Call::Bash { command })
}

/// The agent's answer to the policy's judgement.
fn verdict(agent: Agent, j: &Judgement) -> Answer {
    let said = reason(j);
    match (agent, j.decision) {
        (Agent::ClaudeCode, Decision::Allow) => pre_tool_use("allow", &said),
        (Agent::ClaudeCode, Decision::Approve) => pre_tool_use("ask", &said),
        (Agent::ClaudeCode, Decision::Deny) => pre_tool_use("deny", &said),
        // Codex rejects a bare allow as unsupported: silence lets the
        // call go on to Codex's own approval settings.
        (Agent::Codex, Decision::Allow) => Answer::Silent,
        // Codex cannot ask a person from a hook; what must wait for one
        // does not run.
        (Agent::Codex, Decision::Approve) => pre_tool_use(
            "deny",
            &format!(
                "{said} Codex hooks cannot ask a person, so Jarvis holds it back: ask the user to run it, or to allow it."
            ),
        ),
        (Agent::Codex, Decision::Deny) => pre_tool_use("deny", &said),
    }
}

/// A `PreToolUse` answer: Claude Code and Codex read the same shape.
fn pre_tool_use(decision: &str, reason: &str) -> Answer {
    Answer::Json(json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    }))
}

/// The judgement in one line: the verdict, the risk and the first one or
/// two reasons (the deciding ones, in the order the engine documents),
/// inert and bounded, since the agent shows it on a terminal.
fn reason(j: &Judgement) -> String {
    let why: Vec<&str> = j.reasons.iter().take(2).map(String::as_str).collect();
    let text = format!(
        "Jarvis policy: {} (risk {}, {}): {}.",
        j.decision.label(),
        j.risk.score(),
        j.risk.level().as_str(),
        if why.is_empty() {
            "no reason given".to_owned()
        } else {
            why.join("; ").trim_end_matches('.').to_owned()
        }
    );
    inert_line(&clip_chars(&text, MAX_REASON_CHARS))
}

/// The stderr of a blocked call: what is wrong, where, and that the call
/// was blocked for it.
fn block_message(agent: Agent, why: &str) -> String {
    inert_line(&clip_chars(
        &format!(
            "{}: {why}; Jarvis cannot judge this call, so it is blocked.",
            agent.command()
        ),
        MAX_REASON_CHARS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Result<Policy, String> {
        Policy::shipped().map_err(|e| e.to_string())
    }

    fn bash(command: &str) -> Vec<u8> {
        json!({
            "session_id": "s",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": command},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn inputs_that_cannot_be_judged_block_and_say_where() {
        for (input, says) in [
            (&b"{"[..], "is not JSON: EOF while parsing an object at line 1 column 1"),
            (b"[]", "is JSON but not an object"),
            (b"{\"tool_name\":\"Bash\"}", "`hook_event_name` is missing"),
            (
                b"{\"hook_event_name\":\"PostToolUse\",\"tool_name\":\"Bash\"}",
                "a `PostToolUse` event, not `PreToolUse`",
            ),
            (
                b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":7}",
                "`tool_name` is a number, not a string",
            ),
            (
                b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\"}",
                "`tool_input` is missing",
            ),
            (
                b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":[\"ls\"]}}",
                "`tool_input.command` is an array, not a string",
            ),
            (
                b"{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"  \"}}",
                "`tool_input.command` is empty",
            ),
        ] {
            let Answer::Block(message) = answer(Agent::ClaudeCode, input, shipped) else {
                panic!("{} was not blocked", String::from_utf8_lossy(input));
            };
            assert!(message.contains(says), "{message}");
            assert!(message.starts_with("jarvis hook claude-code: "), "{message}");
            assert!(message.ends_with("so it is blocked."), "{message}");
        }
    }

    #[test]
    fn other_tools_get_no_opinion_and_never_load_the_policy() {
        let input = br#"{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{"file_path":"/etc/passwd"}}"#;
        for agent in [Agent::ClaudeCode, Agent::Codex] {
            let answer = answer(agent, input, || -> Result<Policy, String> {
                panic!("the policy is not needed for another tool")
            });
            assert_eq!(answer, Answer::Silent);
        }
    }

    #[test]
    fn a_policy_that_cannot_be_loaded_blocks_bash() {
        let got = answer(Agent::Codex, &bash("ls"), || Err("broken".into()));
        assert_eq!(
            got,
            Answer::Block(
                "jarvis hook codex: broken; Jarvis cannot judge this call, so it is blocked."
                    .into()
            )
        );
    }

    #[test]
    fn codex_hears_nothing_for_an_allowed_call_and_a_deny_for_one_that_waits() {
        assert_eq!(
            answer(Agent::Codex, &bash("ls -la"), shipped),
            Answer::Silent
        );
        let Answer::Json(v) = answer(Agent::Codex, &bash("systemctl restart nginx"), shipped)
        else {
            panic!("no decision");
        };
        let out = &v["hookSpecificOutput"];
        assert_eq!(out["permissionDecision"], "deny");
        let reason = out["permissionDecisionReason"].as_str().expect("reason");
        assert!(
            reason.starts_with("Jarvis policy: needs a person (risk "),
            "{reason}"
        );
        assert!(
            reason.contains("Codex hooks cannot ask a person"),
            "{reason}"
        );
    }

    #[test]
    fn reasons_are_inert_and_bounded() {
        let j = Judgement {
            command: "x".into(),
            decision: Decision::Deny,
            risk: jarvis_core::Risk::MAX,
            reasons: vec![
                format!("a\x1b[2Jb\n{}", "c".repeat(5000)),
                "second".into(),
                "third".into(),
            ],
            rules: Vec::new(),
            parse_error: false,
            steps: Vec::new(),
            previews: Vec::new(),
        };
        let r = reason(&j);
        assert!(
            r.starts_with("Jarvis policy: refused (risk 100, critical): a\u{241B}[2Jb\u{240A}c"),
            "{r}"
        );
        assert_eq!(r.chars().count(), MAX_REASON_CHARS);
        assert!(!r.contains("third"));
    }
}
