//! The built-in form of the shipped policy (split into units at build time
//! and compiled as lines need them, see build.rs) judges exactly as the same
//! files loaded from their TOML, on every corpus the project has: NL2Bash,
//! the benchmark corpus, the benign read-only lines and the adversarial and
//! catastrophic classes, each with and without a host and a directory. The
//! same holds with a local file on top that redefines a program, an alias,
//! an option table, an override and a sensitive path.

use std::path::{Path, PathBuf};

use jarvis_policy::scope::ScopeContext;
use jarvis_policy::{Base, Policy, Request, engine};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The shipped files from the source tree, in the order they merge.
fn shipped_texts() -> Vec<(PathBuf, String)> {
    engine::shipped_files()
        .map(|f| (PathBuf::from(f), read(&workspace().join(f))))
        .collect()
}

/// Every line the project keeps for judging, once each.
fn corpus() -> Vec<String> {
    let mut lines = Vec::new();
    let files = [
        "tests/corpora/nl2bash/all.cm",
        "tests/data/benign-readonly.txt",
        "crates/jarvis-policy/tests/data/adversarial.txt",
        "crates/jarvis-policy/tests/data/catastrophic.txt",
    ];
    for f in files {
        lines.extend(
            read(&workspace().join(f))
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    lines.extend(
        read(&workspace().join("crates/jarvis-policy/benches/corpus.txt"))
            .lines()
            .map(|l| l.replace("\\n", "\n")),
    );
    lines.sort();
    lines.dedup();
    lines
}

/// Everything a caller can read of a judgement of `line`, as text.
fn verdicts(policy: &Policy, line: &str) -> Vec<String> {
    let host = "nas".parse().expect("host name");
    let mut out = Vec::new();
    for (host, cwd) in [(None, None), (Some(host), Some("/srv/app".to_owned()))] {
        let req = Request {
            command: line.to_owned(),
            host,
            cwd: cwd.clone(),
        };
        let j = policy.explain(&req);
        out.push(format!(
            "{:?} {:?} {:?} {:?} {}",
            j.decision, j.risk, j.reasons, j.rules, j.parse_error
        ));
        out.push(format!("{:?}", j.steps));
        out.push(format!("{:?}", j.previews));
        let repos = ["/srv/app".to_owned()];
        let scope = policy.scope(
            line,
            &ScopeContext {
                cwd: cwd.as_deref(),
                repos: &repos,
            },
        );
        out.push(format!("{scope:?}"));
        out.push(format!("{:?}", policy.confinement(line, cwd.as_deref())));
    }
    out
}

fn assert_same(built_in: &Policy, reference: &Policy, what: &str) {
    let lines = corpus();
    assert!(lines.len() > 12_000, "only {} lines", lines.len());
    let mut differ = Vec::new();
    for line in &lines {
        let (a, b) = (verdicts(built_in, line), verdicts(reference, line));
        if a != b {
            let at = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
            differ.push(format!(
                "{line:?}\n  built-in:  {}\n  from TOML: {}",
                a[at], b[at]
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{what}: {} of {} lines judged differently, first:\n{}",
        differ.len(),
        lines.len(),
        differ
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_built_in_policy_judges_as_the_toml_does() {
    let built_in = Policy::shipped().expect("the built-in policy loads");
    let reference = Policy::from_texts_on(Base::Nothing, shipped_texts()).expect("policies/ loads");
    assert_eq!(built_in.knowledge().len(), reference.knowledge().len());
    assert_eq!(built_in.rules().rules.len(), reference.rules().rules.len());
    assert_eq!(built_in.sources(), reference.sources());
    assert_same(&built_in, &reference, "shipped");
}

/// A local file that redefines what is shipped: a program by name and one
/// by alias, a table, pins shared by a program's tables and one table's
/// own, and a sensitive path.
const LOCAL: &str = r#"
[[rule]]
id = "local-inspect"
decision = "allow"
command = ["ls", "cat", "git log", "systemctl status", "docker ps"]
reason = "local inspection"

[program.tar]
family = "files"
why = "archives, as this site describes it"
risk = 40

[program.nano]
family = "editor"
aliases = ["vi"]
effects = ["write"]

[options.cat]
version = "cat (local) 1"
source = "local"
complete = true
abbreviations = "none"
option = [{ names = ["-n"], class = "none" }]

[override."systemctl *"]
"--host" = "changes"

[override."git log"]
"--output" = "reads-value"

[[path]]
regex = '^/srv/app/\.env$'
class = "secret"
what = "the app's environment file"
"#;

#[test]
fn a_local_file_on_the_built_in_policy_judges_as_on_the_toml() {
    let local = (PathBuf::from("local.toml"), LOCAL.to_owned());
    let built_in = Policy::from_texts(vec![local.clone()]).expect("local on built-in loads");
    let mut texts: Vec<(PathBuf, String)> = shipped_texts()
        .into_iter()
        .map(|(p, t)| {
            // The shipped rules stand aside when files are given.
            let knowledge_only = strip_rules(&t);
            (p, knowledge_only)
        })
        .collect();
    texts.push(local);
    let reference = Policy::from_texts_on(Base::Nothing, texts).expect("local on TOML loads");
    assert_eq!(built_in.knowledge().len(), reference.knowledge().len());
    // The local file does change judgements, so the comparison means something.
    let shipped = Policy::shipped().expect("the built-in policy loads");
    for line in ["cat -A /etc/hostname", "vi notes.txt", "cat /srv/app/.env"] {
        assert_ne!(
            verdicts(&built_in, line),
            verdicts(&shipped, line),
            "the local file should change how `{line}` is judged"
        );
    }
    assert_same(&built_in, &reference, "local on shipped");
}

/// A shipped file's text without its rules and defaults (the shipped
/// rules apply only when no file is given).
fn strip_rules(text: &str) -> String {
    let mut table: toml::Table = toml::from_str(text).expect("shipped TOML parses");
    table.remove("rule");
    table.remove("defaults");
    toml::to_string(&table).expect("TOML serialises")
}

#[test]
fn every_shipped_unit_reads_and_compiles() {
    let policy = Policy::shipped().expect("the built-in policy loads");
    if let Err(errors) = policy.knowledge().check_shipped() {
        panic!(
            "{} shipped units do not compile:\n{}",
            errors.len(),
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
