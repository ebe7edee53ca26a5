//! The NL2Bash corpus (tests/corpora/nl2bash/all.cm: 12,607 one-liners
//! people wrote on the web) as a measure of how much real shell the parser
//! reads: a line it cannot parse is one it must refuse, so every parse error
//! is a person asked for nothing. At most 0.5% of the lines may fail to
//! parse where bash itself parses them; lines bash also rejects (the corpus
//! has placeholders like `<command>`) are counted apart.
//!
//! It also prints how the shipped policy decides the corpus, for the
//! README's figures; those are not asserted, since the corpus is mostly
//! changes that rightly wait for a person.

use std::path::PathBuf;
use std::process::Command;

use jarvis_core::Decision;
use jarvis_policy::{Policy, Request};

/// The share of the lines bash parses that the analysis may fail to parse.
const PARSE_ERROR_CEILING: f64 = 0.005;

fn corpus() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpora/nl2bash/all.cm");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(str::to_owned).collect()
}

/// Whether bash itself parses `line` (`-n`: read, never run).
fn bash_parses(line: &str) -> bool {
    Command::new("bash")
        .args(["--noprofile", "--norc", "-n", "-c", line])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_parser_reads_what_bash_reads_in_nl2bash() {
    let policy = Policy::shipped().expect("shipped policy loads");
    let lines = corpus();
    assert!(lines.len() >= 12_000, "only {} lines", lines.len());
    let (mut allow, mut approve, mut deny) = (0usize, 0usize, 0usize);
    let mut ours = Vec::new();
    let mut both = 0usize;
    for line in &lines {
        let j = policy.judge(&Request::new(line.clone()));
        match j.decision {
            Decision::Allow => allow += 1,
            Decision::Approve => approve += 1,
            Decision::Deny => deny += 1,
        }
        if j.parse_error {
            if bash_parses(line) {
                ours.push(format!("`{line}`: {}", j.reasons.join("; ")));
            } else {
                both += 1;
            }
        }
    }
    let total = lines.len();
    let bash_ok = total - both;
    let share = ours.len() as f64 / bash_ok as f64;
    let pct = |n: usize| n as f64 * 100.0 / total as f64;
    println!(
        "nl2bash: {total} lines; parse errors: {} of the {bash_ok} bash parses ({:.2}%), \
         and {both} lines bash rejects too",
        ours.len(),
        share * 100.0
    );
    println!(
        "nl2bash under the shipped policy: allow {allow} ({:.1}%), approve {approve} ({:.1}%), deny {deny} ({:.1}%)",
        pct(allow),
        pct(approve),
        pct(deny)
    );
    for o in &ours {
        println!("  parse error: {o}");
    }
    assert!(
        share <= PARSE_ERROR_CEILING,
        "{:.2}% of the lines bash parses fail to parse here (ceiling {:.1}%):\n{}",
        share * 100.0,
        PARSE_ERROR_CEILING * 100.0,
        ours.join("\n")
    );
}
