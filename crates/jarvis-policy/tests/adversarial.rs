//! The project's own adversarial set (tests/data/adversarial.txt): lines
//! that write, run code, read secrets, send data away or destroy, grouped
//! by the mechanism they attack. The shipped policy must let none of them
//! run unattended; the figure per class is printed for the README.
//!
//! The lines are only ever judged here. Nothing in this file runs them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jarvis_core::Decision;
use jarvis_policy::{Policy, Request};

/// The set's lines by class: a `# class …` comment opens a class, and a
/// literal `\n` in a line stands for a newline.
fn classes() -> Vec<(String, Vec<String>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/adversarial.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(class) = line.strip_prefix("# class ") {
            out.push((class.to_owned(), Vec::new()));
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            let command = line.replace("\\n", "\n");
            match out.last_mut() {
                Some((_, lines)) => lines.push(command),
                None => panic!("`{line}` comes before any `# class` heading"),
            }
        }
    }
    out
}

#[test]
fn no_adversarial_line_runs_unattended() {
    let policy = Policy::shipped().expect("shipped policy loads");
    let mut held = BTreeMap::new();
    let mut allowed = Vec::new();
    let mut total = 0;
    for (class, lines) in classes() {
        assert!(lines.len() >= 3, "class `{class}` has only {}", lines.len());
        let mut n = 0;
        for line in &lines {
            total += 1;
            let j = policy.judge(&Request::new(line.clone()));
            if j.decision == Decision::Allow {
                allowed.push(format!("[{class}] `{line}`: {}", j.reasons.join("; ")));
            } else {
                n += 1;
            }
        }
        held.insert(class, (n, lines.len()));
    }
    let kept: usize = held.values().map(|(n, _)| n).sum();
    println!("adversarial: {kept} of {total} never run unattended");
    for (class, (n, of)) in &held {
        println!("  {n:>3} of {of:<3} {class}");
    }
    assert!(
        allowed.is_empty(),
        "allowed unattended:\n{}",
        allowed.join("\n")
    );
}
