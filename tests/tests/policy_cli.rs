//! `jarvis policy` as users and other tools call it.

use jarvis_tests::{TempDir, jarvis};
use serde_json::Value;

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

#[test]
fn jsonl_follows_design_md_to_the_letter() {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"command\": \"docker ps -a\"}\n");
    input.extend_from_slice(b"{\"command\": \"rm -rf /\", \"host\": \"nas\"}\n");
    input.extend_from_slice(b"this is not json\n");
    input.extend_from_slice(b"{\"command\": \"echo 'unterminated\"}\n");
    input.extend_from_slice(b"\xff\xfe binary \x00\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"command\": \"ls\", \"host\": \"bad host\"}\n");
    input.extend_from_slice(b"{\"command\": \"ls\", \"unknown\": 1}\r\n");
    input.extend_from_slice(
        format!(
            "{{\"command\": \"echo {}\"}}\n",
            "a".repeat(2 * 1024 * 1024)
        )
        .as_bytes(),
    );
    input.extend_from_slice(b"{\"command\": \"systemctl restart nginx\"}");
    let out = jarvis(&["policy", "check", "--jsonl"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out.stdout);
    assert_eq!(got.len(), 10, "one decision per input line");
    for d in &got {
        let keys: Vec<&str> = d
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "command",
                "decision",
                "risk",
                "reasons",
                "rules",
                "parse_error"
            ]
        );
        let risk = d["risk"].as_object().expect("risk object");
        assert_eq!(
            risk.keys().map(String::as_str).collect::<Vec<_>>(),
            ["score", "level"]
        );
        assert!(risk["score"].as_u64().expect("score") <= 100);
        assert!(
            ["low", "medium", "high", "critical"].contains(&risk["level"].as_str().expect("level"))
        );
        assert!(["allow", "approve", "deny"].contains(&d["decision"].as_str().expect("decision")));
        assert!(d["reasons"].is_array() && d["rules"].is_array() && d["parse_error"].is_boolean());
    }
    let decision = |i: usize| got[i]["decision"].as_str().expect("decision").to_owned();
    assert_eq!(got[0]["command"], "docker ps -a");
    assert_eq!(decision(0), "allow");
    assert_eq!(got[0]["rules"][0], "inspect-docker");
    assert_eq!(decision(1), "deny");
    assert_eq!(got[1]["risk"]["level"], "critical");
    assert_eq!(got[1]["parse_error"], false);
    for (i, says) in [
        (2, "request line 3 is not a request"),
        (3, "does not parse as shell"),
        (4, "request line 5 is not valid UTF-8"),
        (5, "request line 6 is empty"),
        (6, "request line 7: host name `bad host`"),
        (7, "unknown field `unknown`"),
        (8, "request line 9 is longer than"),
    ] {
        assert_eq!(decision(i), "deny", "line {}", i + 1);
        assert_eq!(got[i]["parse_error"], true, "line {}", i + 1);
        let reason = got[i]["reasons"][0].as_str().expect("reason");
        assert!(reason.contains(says), "line {}: {reason}", i + 1);
    }
    assert_eq!(
        decision(9),
        "approve",
        "the last line has no newline and still counts"
    );
}

#[test]
fn jsonl_keeps_order_across_batches() {
    let n = 10_000;
    let mut input = String::new();
    for i in 0..n {
        input.push_str(&format!("{{\"command\": \"echo {i}\"}}\n"));
    }
    let out = jarvis(&["policy", "check", "--jsonl"], input.as_bytes());
    let got = lines(&out.stdout);
    assert_eq!(got.len(), n);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d["command"], format!("echo {i}"));
    }
}

#[test]
fn single_check_human_and_json() {
    let out = jarvis(&["policy", "check", "--", "sudo sh -c 'rm -rf /*'"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("deny    risk 100 (critical)"), "{text}");
    assert!(text.contains("hard guardrail (wipe-root)"), "{text}");

    let out = jarvis(
        &[
            "policy", "check", "--json", "--host", "nas", "--", "git", "status",
        ],
        b"",
    );
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["command"], "git status");
    assert_eq!(d["decision"], "allow");

    let out = jarvis(
        &["policy", "check", "--explain", "--", "git clean -fdx"],
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("plan (each program the line runs):"),
        "{text}"
    );
    assert!(text.contains("git clean -dx -n"), "{text}");

    let out = jarvis(&["policy", "check", "--host", "bad host", "--", "ls"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--host"));
}

#[test]
fn lint_points_at_file_line_and_field() {
    let dir = TempDir::new("lint");
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        "[defaults]\ndecision = \"maybe\"\n\n[[rule]]\nid = \"a\"\ndecision = \"allow\"\ncommand = \"ls\"\nargs = \"([\"\n\n[[rule]]\nid = \"b\"\ndecision = \"allow\"\ncommand = \"sudo\"\n",
    )
    .expect("write policy");
    let shown = file.display().to_string();
    let out = jarvis(&["policy", "lint", "--policy", &shown], b"");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "error: {shown}:2:12: defaults.decision: unknown decision `maybe`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "error: {shown}:8:8: rule[0] `a`.args: the pattern does not compile"
        )),
        "{text}"
    );
    assert!(text.contains("2 errors"), "{text}");

    std::fs::write(
        &file,
        "[[rule]]\nid = \"b\"\ndecision = \"allow\"\ncommand = \"sudo\"\ntypo = 1\n",
    )
    .expect("write");
    let out = jarvis(&["policy", "lint", "--policy", &shown], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(":5:1: rule.typo: unknown field `typo`"),
        "{text}"
    );

    std::fs::write(
        &file,
        "[[rule]]\nid = \"b\"\ndecision = \"allow\"\ncommand = \"sudo\"\n",
    )
    .expect("write");
    let out = jarvis(&["policy", "lint", "--policy", &shown], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning:") && text.contains("allows `sudo`"),
        "{text}"
    );

    let out = jarvis(&["policy", "lint"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn lint_names_allowed_programs_whose_options_are_open() {
    let dir = TempDir::new("lint-options");
    let file = dir.path().join("mine.toml");
    // `zpool` has no option table here and awk's is incomplete; grep's is
    // complete, so it is not named.
    std::fs::write(
        &file,
        "[[rule]]\nid = \"pools\"\ndecision = \"allow\"\ncommand = [\"zpool status\", \"grep\"]\n\n[[rule]]\nid = \"text\"\ndecision = \"allow\"\ncommand = \"awk\"\n",
    )
    .expect("write policy");
    let shown = file.display().to_string();
    let out = jarvis(&["policy", "lint", "--policy", &shown], b"");
    assert!(out.status.success(), "warnings do not fail a lint");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "warning: {shown}:1: rule `pools` allows `zpool status`, whose options are not a closed list (it has no option table)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("warning: {shown}:6: rule `text` allows `awk`"))
            && text.contains("is incomplete"),
        "{text}"
    );
    assert!(!text.contains("allows `grep`"), "{text}");

    // The shipped policy lists its open programs and still passes.
    let out = jarvis(&["policy", "lint"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for open in ["`awk`", "`jq`", "`kubectl get`", "`docker top`"] {
        assert!(
            text.lines().any(|l| l.starts_with("warning: ")
                && l.contains(&format!(
                    "allows {open}, whose options are not a closed list"
                ))),
            "{open} is not named:\n{text}"
        );
    }
    assert!(!text.contains("allows `ls`,"), "{text}");
}

#[test]
fn policy_test_reports_examples_that_changed() {
    let dir = TempDir::new("examples");
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        "[[rule]]\nid = \"ps\"\ndecision = \"allow\"\ncommand = \"docker ps\"\n\
         examples = [\"docker ps -a\", \"docker logs x\"]\ncounter_examples = [\"docker ps\"]\n",
    )
    .expect("write");
    let out = jarvis(
        &["policy", "test", "--policy", &file.display().to_string()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rule `ps`: `docker logs x` is an example, but the rule does not match it"),
        "{text}"
    );
    assert!(
        text.contains("rule `ps`: `docker ps` is a counter-example, but the rule matches it"),
        "{text}"
    );
    assert!(text.contains("1 passed, 2 failed"), "{text}");

    let out = jarvis(&["policy", "test"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
