//! From shell syntax to facts: which programs a line runs and what each can do.
//!
//! [`analyze`] takes the invocations of [`crate::shell`] and, with the
//! [`Knowledge`] base, resolves each program name, walks its subcommands and
//! flags, and unwraps everything that runs another program (`sudo`, `env`,
//! `xargs`, `timeout`, `busybox`, `find -exec`, `sh -c`, `eval`, `watch`,
//! `ssh host CMD`, a here-document fed to `bash`, `echo … | sh`). Each
//! program becomes a [`Command`] with its [`Finding`]s. Nothing here decides;
//! guardrails, rules and risk read these facts.
//!
//! This module holds the facts and the state one analysis carries; the
//! work is split by what it reads:
//!
//! - `knowledge`: the knowledge base, compiled for lookup ([`Knowledge`]);
//! - `line`: a parsed line, invocation by invocation, wrappers unwrapped;
//! - `environment`: what a line sets up for the commands after it
//!   (variables, exports, directories, aliases);
//! - `walk`: one program's knowledge tree over its arguments, its options
//!   in `walk::options`;
//! - `paths`: the paths a command names and what they hold;
//! - `network`: ways a known program carries data off the host;
//! - `tool_script`: scripts in a tool's own language (`sed`, `awk`, `jq`).

use std::sync::Arc;

use jarvis_core::text::code;

use crate::kb::Effect;
use crate::shell::{self, Assignment, Redirect, ShellError, Word, truncate};

mod environment;
mod knowledge;
mod line;
mod network;
mod paths;
mod tool_script;
mod walk;

pub use knowledge::{Knowledge, KnowledgeError, Node, Program};
pub use paths::{basename, expand_braces, normalize_path, resolve};

/// Directories whose programs are the system's own. A program named by a
/// path elsewhere (`./cat`, `/tmp/git`) is not the allow-listed tool.
pub const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// One thing a command can do, with the words a person needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind of effect.
    pub effect: Effect,
    /// Why, as a sentence for a tired admin, with code quoted by
    /// [`code`]: "`find -exec` runs a program for every file it finds".
    pub why: String,
    /// The least risk this finding implies.
    pub risk: u8,
    /// Whether this must never run without a person, whatever the threshold
    /// (secrets, programs only known at run time, code that cannot be read).
    pub attended: bool,
    /// The words of the command the sentence begins with (`curl -f` for
    /// "`curl -f` talks over the network"), when it begins with them.
    /// Reasons merge the findings that say the same of one program.
    pub subject: Option<String>,
    /// The sentence is only the effect's stock phrase ([`Effect::phrase`]):
    /// the knowledge base says nothing more about it.
    pub stock: bool,
    /// `why` is still the rest of a sentence whose subject is the command
    /// that holds the finding, added when that command is complete (a path
    /// it changes, a file a redirection writes).
    pending: bool,
}

impl Finding {
    /// A finding a person may or may not need to see, by its risk; `why`
    /// is a whole sentence.
    pub fn new(effect: Effect, risk: u8, why: String) -> Finding {
        Finding {
            effect,
            why,
            risk,
            attended: false,
            subject: None,
            stock: false,
            pending: false,
        }
    }

    /// A finding that must never run without a person; `why` is a whole
    /// sentence.
    pub fn attended(effect: Effect, risk: u8, why: String) -> Finding {
        Finding::new(effect, risk, why).attend()
    }

    /// A finding about `subject`, words of the command (`rm -r`): the
    /// sentence is the subject quoted as code, then `rest` ("deletes
    /// directories and everything in them").
    pub fn about(subject: &str, effect: Effect, risk: u8, rest: &str) -> Finding {
        Finding {
            subject: Some(subject.to_owned()),
            ..Finding::new(effect, risk, format!("{} {rest}", code(subject)))
        }
    }

    /// A finding about the command that will hold it, whose name is not
    /// known yet (a redirection or a path is read before the program):
    /// `rest` is the sentence after the command's name.
    pub(crate) fn of_command(effect: Effect, risk: u8, rest: String) -> Finding {
        Finding {
            pending: true,
            ..Finding::new(effect, risk, rest)
        }
    }

    /// The same finding, never to run without a person.
    pub fn attend(mut self) -> Finding {
        self.attended = true;
        self
    }

    /// The sentence of a command the knowledge base gives only an effect:
    /// "`docker restart` starts, stops or restarts a service or container".
    fn stock_phrase(subject: &str, effect: Effect, risk: u8) -> Finding {
        Finding {
            stock: true,
            ..Finding::about(subject, effect, risk, effect.phrase())
        }
    }

    /// Gives a finding made by [`Finding::of_command`] its subject: the
    /// program's name, or "the line" for a command that runs none.
    fn complete(&mut self, program: Option<&str>) {
        if !self.pending {
            return;
        }
        self.pending = false;
        self.why = match program {
            Some(p) => {
                self.subject = Some(p.to_owned());
                format!("{} {}", code(p), self.why)
            }
            None => format!("the line {}", self.why),
        };
    }
}

/// The base score of an effect when nothing more specific is known.
pub fn base_risk(effect: Effect) -> u8 {
    match effect {
        Effect::Read => 5,
        Effect::Interactive => 40,
        Effect::Network => 35,
        Effect::Write | Effect::Service => 45,
        Effect::Unknown => 50,
        Effect::Delete => 55,
        Effect::Exec => 70,
        Effect::Privilege => 75,
    }
}

/// What program a command runs.
#[derive(Debug, Clone)]
pub enum ProgramRef {
    /// A name known before it runs.
    Named {
        /// The name without directory (`rm` for `/bin/rm`).
        name: String,
        /// As written, after quote removal (`/bin/rm`).
        written: String,
        /// As written, quotes kept (`'/bin/rm'`).
        raw: String,
        /// Whether the name resolves to the system's program: no directory,
        /// or one of [`SYSTEM_DIRS`].
        system: bool,
        /// What the knowledge base says about it.
        known: Option<Arc<Program>>,
    },
    /// Only known at run time: `$x`, `$(…)`, a glob.
    Dynamic {
        /// As written.
        written: String,
    },
    /// No program: a bare assignment or redirection.
    None,
}

/// One program that the line runs, with everything known about it.
#[derive(Debug, Clone)]
pub struct Command {
    /// The program.
    pub program: ProgramRef,
    /// The arguments after the program name.
    pub args: Vec<Word>,
    /// The subcommand path and positional words, for rule prefixes; `None`
    /// where a word is only known at run time.
    pub positionals: Vec<Option<String>>,
    /// Assignments written before it.
    pub assignments: Vec<Assignment>,
    /// Its redirections.
    pub redirects: Vec<Redirect>,
    /// How it is reached: "sudo", "bash -c", "find -exec", "$(…)".
    pub via: Vec<String>,
    /// Whether it runs with raised privilege (through sudo, doas, su, …).
    pub privileged: bool,
    /// The working directories it may run in; `None` for one only known at
    /// run time.
    pub cwds: Vec<Option<String>>,
    /// Literal values the line gives shell variables before this command
    /// (`D=/; rm -rf $D`), for guardrails to try.
    pub vars: Vec<(String, String)>,
    /// What it can do.
    pub findings: Vec<Finding>,
    /// Programs it executes by itself as part of its work, as the knowledge
    /// base declares them for the program and subcommands it reached (git's
    /// `/usr/lib/git-core/git-*`, `gzip` for `zcat`).
    pub helpers: Vec<String>,
    /// Where the files it changes are named (its redirections aside).
    pub writes: WriteTargets,
    /// It runs programs no analysis can list: code it could not read (a
    /// script file, inline code, a hook, `awk`'s `system()`, a program set
    /// through the environment).
    pub runs_unknown: bool,
    /// It uses the network to read, as the knowledge base says (`dig`,
    /// `ping`), beyond any network effect among its findings.
    pub uses_network: bool,
}

/// Where a command's own writes land (its redirections aside), from the
/// knowledge base's description of the program and subcommand it reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteTargets {
    /// It writes no file of its own.
    #[default]
    Nothing,
    /// It writes these paths, as written: relative ones are relative to
    /// its working directory; a `NAME=PATH` word writes `PATH`.
    Paths {
        /// The words naming them.
        words: Vec<Word>,
        /// It also removes or renames them, changing the directories that
        /// hold them (`rm`, `mv`).
        entries: bool,
    },
    /// It writes beneath its working directory: the values of its
    /// directory options (`git -C DIR`, each relative to the one before,
    /// the first to the line's), else the line's own.
    WorkingDirectory {
        /// The directory options' values, in order.
        directories: Vec<Word>,
        /// Paths it names as well; only absolute ones lie outside.
        paths: Vec<Word>,
    },
    /// Where it writes cannot be known from the line.
    Unknown,
}

/// What a command gathers besides its findings, for [`Command`].
#[derive(Default)]
struct Own {
    helpers: Vec<String>,
    writes: WriteTargets,
    runs_unknown: bool,
    uses_network: bool,
}

impl Command {
    /// The program name as the rules see it, if it is known.
    pub fn name(&self) -> Option<&str> {
        match &self.program {
            ProgramRef::Named { name, .. } => Some(name),
            ProgramRef::Dynamic { .. } | ProgramRef::None => None,
        }
    }

    /// The command as it was written, quotes kept, shortened for reasons:
    /// `sed -i 's/a/b/' /etc/app.conf`, `X=1 > /tmp/out`. Quote it with
    /// [`code`].
    pub fn display(&self) -> String {
        // Said for every program of every line: the words go straight into
        // one string, each after a space but the first.
        let mut line = String::new();
        let mut first = true;
        let mut word = |parts: &[&str]| {
            if !first {
                line.push(' ');
            }
            first = false;
            for p in parts {
                line.push_str(p);
            }
        };
        for a in &self.assignments {
            word(&[&a.name, "=", &a.value.raw]);
        }
        match &self.program {
            ProgramRef::Named { raw, .. } => word(&[raw]),
            ProgramRef::Dynamic { written } => word(&[written]),
            ProgramRef::None => {}
        }
        for a in &self.args {
            word(&[&a.raw]);
        }
        for r in &self.redirects {
            let op = match r.op {
                shell::RedirectOp::Read => "<",
                shell::RedirectOp::Write => ">",
                shell::RedirectOp::Append => ">>",
                shell::RedirectOp::ReadWrite => "<>",
                shell::RedirectOp::Duplicate => continue,
            };
            word(&[op, " ", &r.target.raw]);
        }
        truncate(line.trim(), 120)
    }
}

/// Everything the line runs.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Every program, including those inside wrappers and strings.
    pub commands: Vec<Command>,
    /// Functions that call themselves in the background or through a pipe.
    pub fork_bombs: Vec<String>,
    /// Constructs whose effect cannot be known (and that are no command).
    pub opaque: Vec<String>,
    /// What code in other languages, tools' mini-languages, words spelt at
    /// run time and containers' mounts would run, read by heuristics
    /// ([`crate::catastrophe`]): only the guardrails judge these, so a
    /// heuristic can deny a line, never allow one.
    pub embedded: Vec<Command>,
    /// Why code the line runs is hidden behind a decoder.
    pub obfuscated: Vec<String>,
}

/// Where the line will run, as far as the request says.
#[derive(Debug, Clone, Default)]
pub struct LineContext {
    /// The working directory, if the request names one.
    pub cwd: Option<String>,
}

/// Analyses a command line.
///
/// # Errors
/// [`ShellError`] when the line, or a string it hands to a shell, does not
/// parse, or when it nests too deeply.
pub fn analyze(line: &str, kb: &Knowledge, ctx: &LineContext) -> Result<Analysis, ShellError> {
    let mut a = Analyzer {
        kb,
        out: Analysis::default(),
        cwds: vec![ctx.cwd.clone()],
        vars: Vec::new(),
        aliases: Vec::new(),
        expanding: Vec::new(),
        allexport: false,
    };
    let script = shell::parse(line, "the command line", 0)?;
    a.script(&script, &Via::default(), 0)?;
    Ok(a.out)
}

/// The chain of wrappers a command is reached through.
#[derive(Clone, Default)]
struct Via {
    labels: Vec<String>,
    privileged: bool,
}

impl Via {
    fn then(&self, label: impl Into<String>, privileged: bool) -> Via {
        let mut v = self.clone();
        v.labels.push(label.into());
        v.privileged |= privileged;
        v
    }
}

/// What a node walk found that runs something else.
enum Inner {
    /// An argument vector: `sudo ARGV`, `find -exec ARGV ;`.
    Argv {
        argv: Vec<Word>,
        label: String,
        privileged: bool,
    },
    /// A shell string: `sh -c STRING`, `eval ARGS`, `rsync -e STRING`.
    ShellText {
        text: Word,
        label: String,
        privileged: bool,
    },
}

struct Analyzer<'k> {
    kb: &'k Knowledge,
    out: Analysis,
    cwds: Vec<Option<String>>,
    /// Literal values shell variables are given on the line, in order; a
    /// name may have several (`for d in / /etc`).
    vars: Vec<(String, String)>,
    /// Aliases the line defines, by name, with their text.
    aliases: Vec<(String, String)>,
    /// Aliases being expanded now: bash expands no alias within itself.
    expanding: Vec<String>,
    /// `set -a` was seen: every later assignment is exported to the
    /// programs the line runs.
    allexport: bool,
}

/// How a command uses the paths it is given.
#[derive(Clone, Copy)]
struct PathUse {
    /// It may change them.
    changes: bool,
    /// Reading a device means reading its data, not just its metadata.
    device_data: bool,
    /// It reads what the files hold, not only their names and metadata.
    contents: bool,
}

impl PathUse {
    const READ: PathUse = PathUse {
        changes: false,
        device_data: true,
        contents: true,
    };
}

/// What a shell or interpreter would read on its standard input.
#[derive(Clone)]
enum StdinSource {
    Nothing,
    Text(Word, String),
    Network(String),
    /// From where, and the words of the pipeline's earlier commands.
    Unknown(String, Vec<Vec<Word>>),
}
