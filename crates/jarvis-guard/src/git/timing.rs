//! How long the git work of one changing action takes: the snapshot before
//! it (kept as a ref) and the fingerprint after it, by repository size, and
//! each git process's share.
//!
//! Run by `scripts/bench-snapshot`, release build:
//! `cargo test --release -p jarvis-guard -- --ignored --exact
//! git::timing::snapshot_git_work --nocapture`. `JARVIS_SNAPSHOT_SIZES`
//! (comma-separated file counts) and `JARVIS_SNAPSHOT_SAMPLES` override
//! the sizes and the samples per size.
//!
//! The guard's own policy loading and the SSH round trip are not in these
//! figures; `tests/benches/snapshot.rs` measures the whole request.
//!
//! The captures run in a test process of their own with `GIT_TRACE2_EVENT`
//! set, so each git process the guard starts writes its argv and its own
//! run time; what the wall time holds beyond their sum is starting the
//! processes, waiting for them and the guard's own work (reading and
//! copying the index).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tempfile::TempDir;

use super::capture;

/// Set in the child process: `<repo>\t<phase>\t<samples>`.
const CHILD: &str = "JARVIS_SNAPSHOT_TIMING_CHILD";

const SIZES: &[usize] = &[100, 1_000, 10_000, 100_000];

/// The two guard requests of one action.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    /// Before the command, kept under a ref.
    Snapshot,
    /// After it: fingerprints only.
    After,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::After => "after",
        }
    }

    fn parse(s: &str) -> Option<Phase> {
        [Phase::Snapshot, Phase::After]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// What one phase took at one size, in milliseconds.
struct Measured {
    /// Wall time of each capture.
    walls: Vec<f64>,
    /// Per git process, in the order a capture runs them: its label and
    /// its own run time in each sample.
    steps: Vec<(String, Vec<f64>)>,
}

#[test]
#[ignore = "a benchmark: run by scripts/bench-snapshot"]
fn snapshot_git_work() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let sizes: Vec<usize> = std::env::var("JARVIS_SNAPSHOT_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| SIZES.to_vec());
    let samples_override: Option<usize> = std::env::var("JARVIS_SNAPSHOT_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut report = String::new();
    let mut curve = Vec::new();
    for files in sizes {
        let samples = samples_override.unwrap_or(if files >= 100_000 { 7 } else { 21 });
        let tmp = TempDir::new().expect("temp dir");
        let repo = make_repo(tmp.path(), files);
        let snapshot = measure(&repo, Phase::Snapshot, samples);
        let after = measure(&repo, Phase::After, samples);
        sh(
            Path::new(&repo),
            "git for-each-ref --format='delete %(refname)' refs/jarvis | git update-ref --stdin",
        );
        curve.push((files, median(&snapshot.walls), median(&after.walls)));
        let _ = writeln!(report, "\n{files} files, median of {samples}:");
        for (phase, m) in [(Phase::Snapshot, &snapshot), (Phase::After, &after)] {
            let own: f64 = m.steps.iter().map(|(_, t)| median(t)).sum();
            let _ = writeln!(
                report,
                "  {:<8} {:>7.1} ms wall: {} git processes, {:.1} ms inside them (summed), {:.1} ms the rest (starting and waiting for them, the guard's own work)",
                phase.name(),
                median(&m.walls),
                m.steps.len(),
                own,
                median(&m.walls) - own
            );
            for (label, times) in &m.steps {
                let _ = writeln!(report, "    {:>7.1} ms  git {label}", median(times));
            }
        }
    }
    println!("\ngit work of a snapshot and its after-state (guard code, no SSH, no policy):");
    println!(
        "{:>8}  {:>9}  {:>9}  {:>9}",
        "files", "snapshot", "after", "both"
    );
    for (files, s, a) in curve {
        println!("{files:>8}  {s:>6.1} ms  {a:>6.1} ms  {:>6.1} ms", s + a);
    }
    println!("{report}");
}

/// `files` 1-KiB files, 100 to a directory, committed; then one modified
/// and one untracked, as `tests/benches/snapshot.rs` makes them.
fn make_repo(base: &Path, files: usize) -> String {
    let dir = base.join("repo");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let sub = dir.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&sub).expect("directory");
        let body: Vec<u8> = (0..128)
            .flat_map(|_| {
                // xorshift: distinct content per file, no dependency.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()
            })
            .collect();
        std::fs::write(sub.join(format!("f{i}")), body).expect("file");
    }
    sh(
        &dir,
        "git init -q -b main . && git add -A && git commit -qm files \
         && echo x >> d0/f0 && echo new > untracked",
    );
    dir.to_string_lossy().into_owned()
}

fn sh(dir: &Path, script: &str) {
    crate::git::tests::sh(dir, script);
}

/// Runs `samples` captures of `phase` in a child test process whose git
/// processes trace themselves.
fn measure(repo: &str, phase: Phase, samples: usize) -> Measured {
    let traces = TempDir::new().expect("trace dir");
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "git::timing::snapshot_git_work",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{repo}\t{}\t{samples}", phase.name()))
        .env("GIT_TRACE2_EVENT", traces.path())
        .output()
        .expect("child runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let walls: Vec<f64> = said
        .lines()
        .filter_map(|l| l.split_once("wall-ms ").map(|(_, v)| v))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    assert_eq!(walls.len(), samples, "{said}");
    let processes = read_traces(traces.path());
    let per = processes.len() / samples;
    assert_eq!(
        per * samples,
        processes.len(),
        "captures ran different numbers of git processes: {processes:?}"
    );
    // Captures run one after another, but within one some processes run
    // side by side and may start in either order: a step is a label and
    // which time it comes in its capture.
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for capture in processes.chunks(per) {
        let mut seen: Vec<&str> = Vec::new();
        for (label, ms) in capture {
            let nth = seen.iter().filter(|l| **l == label.as_str()).count();
            seen.push(label);
            let mut same = steps.iter_mut().filter(|(l, _)| l == label);
            match same.nth(nth) {
                Some((_, times)) => times.push(*ms),
                None => steps.push((label.clone(), vec![*ms])),
            }
        }
    }
    assert!(
        steps.iter().all(|(_, t)| t.len() == samples),
        "captures ran different git processes: {steps:?}"
    );
    Measured { walls, steps }
}

/// The child's part: captures `samples` times and prints each wall time.
fn child(spec: &str) {
    let mut parts = spec.split('\t');
    let (Some(repo), Some(phase), Some(samples)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("bad {CHILD}: {spec}");
    };
    let phase = Phase::parse(phase).expect("phase");
    let samples: usize = samples.parse().expect("samples");
    for i in 0..samples {
        let id = format!("00000000-0000-7000-8000-{i:012x}");
        let started = Instant::now();
        let state = match phase {
            Phase::Snapshot => capture(repo, Some(id.parse().expect("a UUID v7"))),
            Phase::After => capture(repo, None),
        }
        .expect("capture");
        let ms = started.elapsed().as_secs_f64() * 1e3;
        println!("wall-ms {ms}");
        assert_eq!(state.kept_ref.is_some(), phase == Phase::Snapshot);
    }
}

/// Each git process of the trace directory, in the order they started:
/// a label made of its arguments (object ids and refs shortened) and its
/// own run time in milliseconds.
fn read_traces(dir: &Path) -> Vec<(String, f64)> {
    let mut processes: Vec<(String, String, f64)> = Vec::new();
    for entry in std::fs::read_dir(dir).expect("traces").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("trace");
        let mut started = None;
        let mut argv = None;
        let mut took = None;
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match event["event"].as_str() {
                Some("version") => started = event["time"].as_str().map(str::to_owned),
                Some("start") => {
                    argv = event["argv"].as_array().map(|a| {
                        a.iter()
                            .skip(1)
                            .filter_map(|w| w.as_str())
                            .map(shorten)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                }
                Some("exit") => took = event["t_abs"].as_f64(),
                _ => {}
            }
        }
        if let (Some(s), Some(a), Some(t)) = (started, argv, took) {
            processes.push((s, a, t * 1e3));
        }
    }
    // ISO 8601 UTC with fixed widths sorts as text.
    processes.sort_by(|a, b| a.0.cmp(&b.0));
    processes.into_iter().map(|(_, a, t)| (a, t)).collect()
}

fn shorten(word: &str) -> String {
    let is_oid = word.len() >= 40 && word.bytes().all(|b| b.is_ascii_hexdigit());
    if is_oid {
        "<oid>".into()
    } else if word.starts_with("refs/jarvis/") {
        "<ref>".into()
    } else if word.starts_with("jarvis snapshot ") {
        "<message>".into()
    } else if word.starts_with("branch: ") {
        "<body>".into()
    } else {
        word.to_owned()
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
