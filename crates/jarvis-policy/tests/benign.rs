//! The project's benign set (tests/data/benign-readonly.txt): everyday
//! homelab reads that must run unattended and that the kernel wall must
//! fully confine, so that turning the wall on costs no everyday work.
//!
//! At least 97% of the lines must be `allow` under the shipped policy, and
//! for each allowed line the confinement must be complete and narrow: the
//! programs are known (the kernel can be told exactly what to execute),
//! nothing is written, and no network is needed.

use std::path::PathBuf;

use jarvis_core::Decision;
use jarvis_policy::{Policy, Request};

/// Where the sandbox host runs commands from.
const HOME: &str = "/home/jarvis";

fn benign_lines() -> Vec<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/benign-readonly.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_benign_set_is_large_enough_and_has_no_repeats() {
    let lines = benign_lines();
    assert!(lines.len() >= 100, "only {} benign commands", lines.len());
    let mut seen = std::collections::BTreeSet::new();
    for l in &lines {
        assert!(seen.insert(l), "`{l}` is listed twice");
    }
}

/// The share of the benign set that must run unattended. A few everyday
/// reads print secrets (`docker inspect` prints every environment value)
/// and rightly ask a person; the rest must not.
const UNATTENDED_FLOOR: f64 = 0.97;

#[test]
fn the_benign_set_runs_unattended() {
    let policy = Policy::shipped().expect("shipped policy loads");
    let lines = benign_lines();
    let mut asked = Vec::new();
    for line in &lines {
        let j = policy.judge(&Request {
            command: line.clone(),
            host: None,
            cwd: Some(HOME.into()),
        });
        if j.decision != Decision::Allow {
            asked.push(format!(
                "`{line}`: {} (risk {}): {}",
                j.decision,
                j.risk.score(),
                j.reasons.join("; ")
            ));
        }
    }
    let share = 1.0 - asked.len() as f64 / lines.len() as f64;
    println!(
        "benign: {} of {} unattended ({:.1}%)",
        lines.len() - asked.len(),
        lines.len(),
        share * 100.0
    );
    for a in &asked {
        println!("  asks: {a}");
    }
    assert!(
        share >= UNATTENDED_FLOOR,
        "only {:.1}% unattended, below {:.0}%:\n{}",
        share * 100.0,
        UNATTENDED_FLOOR * 100.0,
        asked.join("\n")
    );
}

#[test]
fn every_benign_command_is_fully_confined() {
    let policy = Policy::shipped().expect("shipped policy loads");
    let mut problems = Vec::new();
    for line in benign_lines() {
        let allowed = policy.judge(&Request {
            command: line.clone(),
            host: None,
            cwd: Some(HOME.into()),
        });
        if allowed.decision != Decision::Allow {
            continue;
        }
        let c = match policy.confinement(&line, Some(HOME)) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("`{line}`: {e}"));
                continue;
            }
        };
        if c.programs.is_none() {
            problems.push(format!("`{line}`: its programs are not known"));
        }
        if !c.read_only() {
            problems.push(format!(
                "`{line}`: writes {:?}{}",
                c.writes,
                if c.writes_unknown {
                    " and somewhere unknown"
                } else {
                    ""
                }
            ));
        }
        if c.network {
            problems.push(format!("`{line}`: uses the network"));
        }
    }
    assert!(
        problems.is_empty(),
        "not fully confined:\n{}",
        problems.join("\n")
    );
}
