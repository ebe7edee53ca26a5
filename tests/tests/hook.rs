//! `jarvis hook claude-code | codex` as the agents run it: their documented
//! `PreToolUse` payloads (tests/data/hook/) on stdin, the answer on stdout
//! and the exit code. No host, no store: only the policy.

use std::path::{Path, PathBuf};
use std::process::Output;

use jarvis_tests::{TempDir, jarvis, jarvis_with_env, workspace};
use serde_json::{Value, json};

fn payload(name: &str) -> Vec<u8> {
    let path = workspace().join("tests/data/hook").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `jarvis hook AGENT` with `input` on stdin, with no config of the
/// user's in the way.
fn hook(agent: &str, input: &[u8]) -> Output {
    let empty = TempDir::new("hook-home");
    hook_with(&["hook", agent], input, empty.path())
}

fn hook_with(args: &[&str], input: &[u8], config_home: &Path) -> Output {
    jarvis_with_env(args, input, &[("XDG_CONFIG_HOME", config_home)])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The one JSON object on stdout, which must be all there is.
fn answer(out: &Output) -> Value {
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line on stdout:\n{stdout}\nstderr: {}",
        text(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("the answer is JSON")
}

/// The reason the hook gives for `command`: what `jarvis policy check`
/// says of it (the same engine and policy), in the hook's one line.
fn reason_for(command: &str) -> String {
    let out = jarvis(&["policy", "check", "--json", "--", command], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).expect("policy check --json");
    let verdict = match j["decision"].as_str().expect("decision") {
        "allow" => "runs unattended",
        "approve" => "needs a person",
        "deny" => "refused",
        other => panic!("unknown decision {other}"),
    };
    let reasons: Vec<&str> = j["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .take(2)
        .map(|r| r.as_str().expect("a reason is text"))
        .collect();
    format!(
        "Jarvis policy: {verdict} (risk {}, {}): {}.",
        j["risk"]["score"],
        j["risk"]["level"].as_str().expect("level"),
        reasons.join("; ").trim_end_matches('.')
    )
}

fn decision(decision: &str, reason: &str) -> Value {
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    })
}

/// A call that cannot be judged is blocked with exit 2, stdout empty and
/// the reason on stderr (which both agents hand to the model).
fn assert_blocked(out: &Output, agent: &str, says: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        stderr.starts_with(&format!("jarvis hook {agent}: ")),
        "{stderr}"
    );
    assert!(stderr.contains(says), "{says} in:\n{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("Jarvis cannot judge this call, so it is blocked."),
        "{stderr}"
    );
}

#[test]
fn claude_code_gets_allow_ask_and_deny_with_the_policy_check_reasons() {
    for (file, command, verdict) in [
        ("claude-allowed.json", "ls -la", "allow"),
        ("claude-pending.json", "systemctl restart nginx", "ask"),
        ("claude-denied.json", "rm -rf /", "deny"),
    ] {
        let out = hook("claude-code", &payload(file));
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        assert_eq!(
            answer(&out),
            decision(verdict, &reason_for(command)),
            "{file}"
        );
    }
}

#[test]
fn the_deny_names_the_guardrail_and_the_risk() {
    let out = hook("claude-code", &payload("claude-denied.json"));
    assert_eq!(
        answer(&out),
        decision(
            "deny",
            "Jarvis policy: refused (risk 100, critical): hard guardrail (wipe-root): `rm -r` deletes `/`, the whole filesystem; `rm` changes `/` (a top-level directory)."
        )
    );
}

#[test]
fn a_reason_never_carries_terminal_control_characters() {
    for agent in ["claude-code", "codex"] {
        let out = hook(agent, &payload("claude-escape.json"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v = answer(&out);
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
        let reason = v["hookSpecificOutput"]["permissionDecisionReason"]
            .as_str()
            .expect("reason");
        assert!(
            !reason.chars().any(jarvis_core::text::is_unsafe),
            "{reason:?}"
        );
    }
}

#[test]
fn other_tools_get_no_opinion() {
    for (agent, file) in [
        ("claude-code", "claude-other-tool.json"),
        ("codex", "claude-other-tool.json"),
        ("codex", "codex-apply-patch.json"),
    ] {
        let out = hook(agent, &payload(file));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
}

#[test]
fn what_cannot_be_judged_is_blocked_with_exit_2_saying_what_and_where() {
    let truncated = payload("claude-truncated.txt");
    let no_command = payload("claude-no-command.json");
    let post = payload("claude-post-tool-use.json");
    for agent in ["claude-code", "codex"] {
        for (input, says) in [
            (
                &truncated[..],
                "the hook input on stdin is not JSON: EOF while parsing an object at line 7 column 0",
            ),
            (b"", "the hook input on stdin is not JSON: EOF while parsing a value at line 1 column 0"),
            (b"\xff\xfe\x00garbage", "the hook input on stdin is not JSON"),
            (b"[\"PreToolUse\"]", "the hook input on stdin is JSON but not an object"),
            (&no_command[..], "the hook input's `tool_input.command` is missing"),
            (
                &post[..],
                "the hook input is a `PostToolUse` event, not `PreToolUse`: configure this command under the PreToolUse hooks only",
            ),
            (
                br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":""}}"#,
                "the hook input's `tool_input.command` is empty",
            ),
            (
                br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}"#,
                "the hook input's `tool_input` is a string, not an object",
            ),
            (
                br#"{"hook_event_name":"PreToolUse","tool_input":{"command":"ls"}}"#,
                "the hook input's `tool_name` is missing",
            ),
            (
                br#"{"hook_event_name":"Stop\u001b[2J"}"#,
                "the hook input is a `Stop\u{241B}[2J` event",
            ),
        ] {
            assert_blocked(&hook(agent, input), agent, says);
        }
    }
}

#[test]
fn codex_hears_nothing_for_allowed_and_a_deny_for_what_needs_a_person() {
    let out = hook("codex", &payload("codex-allowed.json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    let out = hook("codex", &payload("codex-pending.json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        answer(&out),
        decision(
            "deny",
            &format!(
                "{} Codex hooks cannot ask a person, so Jarvis holds it back: ask the user to run it, or to allow it.",
                reason_for("systemctl restart nginx")
            )
        )
    );

    let out = hook("codex", &payload("codex-denied.json"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(answer(&out), decision("deny", &reason_for("rm -rf /")));
}

/// A policy of `rules` beside a config pointing at it, in `dir`.
fn config_with_policy(dir: &TempDir, rules: &str) -> PathBuf {
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, rules).expect("write policy");
    let config = dir.path().join("jarvis.toml");
    std::fs::write(&config, "[policy]\npaths = [\"policy.toml\"]\n").expect("write config");
    config
}

const NO_LS: &str = "[defaults]\ndecision = \"approve\"\nauto_allow_max_risk = 30\n\n\
    [[rule]]\nid = \"no-listing\"\ndecision = \"deny\"\ncommand = [\"ls\"]\nreason = \"listing is not done here\"\n";

#[test]
fn the_policy_is_the_configs_or_the_one_given() {
    let dir = TempDir::new("hook-policy");
    let config = config_with_policy(&dir, NO_LS);
    let allowed = payload("claude-allowed.json");
    let config = config.to_str().expect("utf-8 path");
    let out = hook_with(
        &["--config", config, "hook", "claude-code"],
        &allowed,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v = answer(&out);
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
    let reason = v["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .expect("reason");
    assert!(reason.contains("no-listing"), "{reason}");

    // `--policy` over the config's.
    let policy = dir.path().join("policy.toml");
    let out = hook_with(
        &["hook", "codex", "--policy", policy.to_str().expect("utf-8")],
        &payload("codex-allowed.json"),
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        answer(&out)["hookSpecificOutput"]["permissionDecision"],
        "deny"
    );
}

#[test]
fn a_broken_policy_blocks_shell_calls_and_leaves_other_tools_alone() {
    let dir = TempDir::new("hook-broken");
    let config = config_with_policy(&dir, "[[rule]]\nid = 7\n");
    let config = config.to_str().expect("utf-8 path");
    for agent in ["claude-code", "codex"] {
        let out = hook_with(
            &["--config", config, "hook", agent],
            &payload("claude-allowed.json"),
            dir.path(),
        );
        assert_blocked(&out, agent, "the policy cannot be loaded: ");
        assert!(
            text(&out.stderr).contains("policy.toml"),
            "{}",
            text(&out.stderr)
        );

        let out = hook_with(
            &["--config", config, "hook", agent],
            &payload("claude-other-tool.json"),
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}
