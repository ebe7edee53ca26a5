//! What the real bash executes for a line, set against what the policy's
//! analysis says it runs: the recorder both differential suites install in
//! bash, the log it writes, and the one rule that matches an executed
//! program with a found one.
//!
//! Shared by `crates/jarvis-policy/tests/differential.rs` (hand-picked
//! lines, one bash each) and `tests/tests/bash_differential.rs` (the
//! corpora and generated lines, many per bash, inside the kernel wall), so
//! both judge a disagreement the same way. It never runs bash itself and
//! never decides how bash is sandboxed: its callers do.
//!
//! How an execution is recorded. Bash calls the function
//! `command_not_found_handle` with the name and arguments of any program it
//! cannot find; [`handler`] defines it to append them, NUL-separated, to a
//! log. A recording stub program on `PATH` ([`stub_script`]) appends the
//! same record. The builtins that are also programs (`echo`, `printf`,
//! `test`, …, which bash would otherwise run internally, unseen) are
//! switched off ([`DISABLE_BUILTINS`]) so they show up like any program.
//! Both recorders succeed for every name but `false`, so `&&` and `||`
//! chains take the branches they would with real programs.

// Each suite uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::LazyLock;

use jarvis_policy::Policy;
use jarvis_policy::analyze::{self, LineContext, ProgramRef};
use jarvis_policy::shell;

/// The policy the host guard ships with.
pub static POLICY: LazyLock<Policy> =
    LazyLock::new(|| Policy::shipped().expect("the shipped policy loads"));

/// One executed (or expected) program: its name and argument words.
pub type Argv = Vec<String>;

/// Builtins that are also programs, switched off in bash so that running
/// them shows in the log like any program.
pub const DISABLED: &[&str] = &[
    "echo", "printf", "test", "[", "true", "false", "kill", "pwd",
];

/// The bash command that switches [`DISABLED`] off.
pub static DISABLE_BUILTINS: LazyLock<String> = LazyLock::new(|| {
    let names = DISABLED
        .iter()
        .map(|b| format!("'{b}'"))
        .collect::<Vec<_>>()
        .join(" ");
    format!("enable -n {names}")
});

/// The definition of bash's `command_not_found_handle` that records each
/// program bash cannot find into `log`, a shell word (quoted as needed).
/// The handler runs in a child of bash, so switching `printf` back on there
/// leaves the line's own bash as it was.
pub fn handler(log: &str) -> String {
    format!(
        "command_not_found_handle() {{\n\
           enable printf\n\
           builtin printf '%s\\0' \"$#\" \"$@\" >> {log}\n\
           [[ $1 != false ]]\n\
         }}\n"
    )
}

/// A recording stub program for `sh`: linked under any name in `stubs`, it
/// appends the name it was run by (without `stubs/` when found on `PATH`,
/// as written otherwise) and its arguments to `log`, a shell word. Bash's
/// `source` also looks for files on `PATH`; sourced, a stub does nothing.
pub fn stub_script(stubs: &Path, log: &str) -> String {
    format!(
        "#!/bin/sh\n\
         case ${{BASH_VERSION-}} in ?*) return 0 ;; esac\n\
         n=${{0#{dir}/}}\n\
         printf '%s\\0' \"$(($# + 1))\" \"$n\" \"$@\" >> {log}\n\
         [ \"$n\" != false ]\n",
        dir = shell_quote(&stubs.display().to_string())
    )
}

/// `text` as one single-quoted shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The shell at `/usr/bin/NAME` or `/bin/NAME`; a missing one fails the
/// test, saying so.
pub fn find_shell(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the differential tests need `{name}` in /usr/bin or /bin, and it is not installed; \
         install it (apt-get install {name}) rather than skipping these tests"
    );
}

/// The bash the host guard runs lines with.
pub static BASH: LazyLock<PathBuf> = LazyLock::new(|| find_shell("bash"));

/// Names bash keeps running internally (its builtins, less those switched
/// off): they never reach the log, so the policy's list leaves them out.
/// Its reserved words are no such names: the parser reads an unquoted one
/// as syntax, and a quoted one (`\time`, `'if'`) is a program.
pub static BASH_BUILTINS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    compgen("-b")
        .into_iter()
        .filter(|n| !DISABLED.contains(&n.as_str()))
        .collect()
});

/// Bash's reserved words (`if`, `time`, `[[`, …).
pub static BASH_KEYWORDS: LazyLock<BTreeSet<String>> = LazyLock::new(|| compgen("-k"));

fn compgen(what: &str) -> BTreeSet<String> {
    let out = Process::new(&*BASH)
        .args(["--noprofile", "--norc", "-c", &format!("compgen {what}")])
        .env_clear()
        .output()
        .expect("bash runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Log records: a count, then that many NUL-terminated words. A record cut
/// short (a recorder killed mid-write) ends the list; what came before it
/// still counts.
pub fn parse_log(bytes: &[u8]) -> Vec<Argv> {
    let mut words = bytes
        .split(|b| *b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned());
    let mut out = Vec::new();
    while let Some(n) = words.next() {
        let Ok(n) = n.parse::<usize>() else {
            break;
        };
        out.push((0..n).map(|_| words.next().unwrap_or_default()).collect());
    }
    out
}

/// Every word of the line that could name a program.
pub fn name_like_words(line: &str) -> BTreeSet<String> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_.+-".contains(c)))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// A program the policy says bash runs: its name and each argument, `None`
/// where the word is only known at run time.
#[derive(Debug, Clone)]
pub struct Found {
    /// `None` for a program only known at run time.
    pub name: Option<String>,
    pub args: Vec<Option<String>>,
}

impl Found {
    /// Whether `argv`, as bash ran it, is this.
    pub fn matches(&self, argv: &[String]) -> bool {
        let Some((name, args)) = argv.split_first() else {
            return false;
        };
        // A path reaches the same program however it is spelt (bash's
        // `exec` hands the program an absolute path for `./bin/ls`).
        let same_program = |n: &String| {
            n == name
                || (n.contains('/')
                    && name.contains('/')
                    && n.rsplit('/').next() == name.rsplit('/').next())
        };
        if self.name.as_ref().is_some_and(|n| !same_program(n)) {
            return false;
        }
        for (i, want) in self.args.iter().enumerate() {
            match want {
                Some(w) => {
                    if args.get(i) != Some(w) {
                        return false;
                    }
                }
                // A word only known at run time can become any number of
                // words; what follows it cannot be lined up.
                None => return true,
            }
        }
        args.len() == self.args.len()
    }

    /// The program as a line: `ls -la <run time>`.
    pub fn show(&self) -> String {
        let mut s = self.name.clone().unwrap_or_else(|| "<run time>".into());
        for a in &self.args {
            s.push(' ');
            s.push_str(a.as_deref().unwrap_or("<run time>"));
        }
        s
    }
}

/// The executions in `ran` that nothing in `found` accounts for: programs
/// bash ran that the analysis missed.
pub fn unseen<'a>(ran: &'a [Argv], found: &[Found]) -> Vec<&'a Argv> {
    ran.iter()
        .filter(|argv| !found.iter().any(|f| f.matches(argv)))
        .collect()
}

/// Whether a command is reached only through labels of the shell itself
/// (substitutions, functions, `eval`, `exec`, …): then bash starts it,
/// rather than another program (`sudo`, `bash -c`, `find -exec`) which is
/// recorded in its place.
pub fn bash_level(via: &[String]) -> bool {
    via.iter().all(|v| {
        matches!(
            v.as_str(),
            "$(…)"
                | "<(…)"
                | "background &"
                | "endless loop"
                | "eval"
                | "command"
                | "exec"
                | "trap"
                | "arithmetic"
                | "jobs -x"
                | "time"
        ) || v.starts_with("function ")
            || v.starts_with("alias ")
    })
}

/// What the policy says bash runs for `line`, or why it cannot read it.
pub fn policy_runs(line: &str) -> Result<Vec<Found>, String> {
    policy_reading(line).map(|r| r.found)
}

/// The policy's reading of a line, as the differential suites use it.
pub struct Reading {
    /// What bash runs, by the analysis: programs, not the builtins bash
    /// keeps or the functions the line defines.
    pub found: Vec<Found>,
    /// Every command the analysis found where bash starts it, builtins
    /// and function calls too: what a program bash ran must be among
    /// (a call of a function the line defines only in a branch not taken
    /// runs the program of that name).
    pub all: Vec<Found>,
    /// The analysis found a fork bomb: such a line is denied, and no suite
    /// runs it.
    pub fork_bomb: bool,
}

/// [`policy_runs`], with what else the suites need of the analysis.
pub fn policy_reading(line: &str) -> Result<Reading, String> {
    let analysis = analyze::analyze(line, POLICY.knowledge(), &LineContext::default())
        .map_err(|e| e.to_string())?;
    // Only a line with `()` or the word `function` can define one; most do
    // not, and a second parse is most of the cost of a short line.
    let defines = line.contains("function") || line.replace([' ', '\t'], "").contains("()");
    let functions: BTreeSet<String> = if defines {
        shell::parse(line, "the line", 0)
            .map_err(|e| e.to_string())?
            .functions
            .into_iter()
            .map(|f| f.name)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut found = Vec::new();
    let mut all = Vec::new();
    for c in analysis.commands.iter().filter(|c| bash_level(&c.via)) {
        let (f, program) = match &c.program {
            ProgramRef::Named { written, known, .. } => {
                // A tool that takes several of its own commands in its
                // arguments (`nft list ruleset \; flush ruleset`) is judged
                // one command at a time, each with its own words: the
                // program bash runs is known by name.
                let split = known
                    .as_ref()
                    .is_some_and(|p| !p.node.statement_separators().is_empty());
                let args = if split {
                    vec![None]
                } else {
                    c.args.iter().map(known_word).collect()
                };
                // Calls of functions the line defines run no program; nor
                // do builtins, but `exec` runs the program of the name.
                let program = (!BASH_BUILTINS.contains(written)
                    || c.via.last().is_some_and(|v| v == "exec"))
                    && !functions.contains(written);
                (
                    Found {
                        name: Some(written.clone()),
                        args,
                    },
                    program,
                )
            }
            ProgramRef::Dynamic { .. } => (
                Found {
                    name: None,
                    args: vec![None],
                },
                true,
            ),
            ProgramRef::None => continue,
        };
        if program {
            found.push(f.clone());
        }
        all.push(f);
    }
    Ok(Reading {
        found,
        all,
        fork_bomb: !analysis.fork_bombs.is_empty(),
    })
}

/// An argument as bash hands it over, where the analysis knows it. The
/// analysis keeps `~`, `~/…`, `~user` and `x=~/a:~/b` as written (a home
/// directory is no one's choice on the line); what bash makes of them
/// depends on `HOME` and the user database when it runs, so such a word
/// is known only then.
fn known_word(a: &shell::Word) -> Option<String> {
    let tilde = a.text.starts_with('~') || a.text.contains("=~") || a.text.contains(":~");
    (a.literal && !tilde).then(|| a.text.clone())
}

/// An argv as one line.
pub fn joined(argv: &[String]) -> String {
    argv.join(" ")
}
