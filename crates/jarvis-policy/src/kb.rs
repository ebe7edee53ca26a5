//! The knowledge base of programs: what each subcommand and flag of a common
//! program does (reads, writes, deletes, runs other programs, …).
//!
//! It is data, kept in TOML under `policies/knowledge/`, so that teaching
//! Jarvis a new program is a reviewable edit rather than a code change. The
//! schema is deliberately small: a program is a tree of [`Node`]s (program,
//! subcommand, sub-subcommand), each with its effects, the flags that change
//! them, and whether and how it runs another program.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// What running a command can do. Several may apply at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Only reads state.
    Read,
    /// Changes files or state.
    Write,
    /// Deletes files or state.
    Delete,
    /// Starts, stops or reconfigures a service or container.
    Service,
    /// Runs another program or code it was given.
    Exec,
    /// Talks to other machines.
    Network,
    /// Gains or hands out privilege (root, host namespaces, capabilities).
    Privilege,
    /// Waits for a person at a terminal (pagers, editors, REPLs).
    Interactive,
    /// Nothing is known about what it does.
    Unknown,
}

impl Effect {
    /// The word used in reasons and policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Delete => "delete",
            Effect::Service => "service",
            Effect::Exec => "exec",
            Effect::Network => "network",
            Effect::Privilege => "privilege",
            Effect::Interactive => "interactive",
            Effect::Unknown => "unknown",
        }
    }
}

impl Effect {
    /// What a command with this effect does, as the rest of a sentence
    /// that begins with the command: "`docker restart` starts, stops or
    /// restarts a service or container". This is the one table that turns
    /// the knowledge base's effect tags into words; a node or flag with its
    /// own `why` says more and is used instead.
    pub fn phrase(self) -> &'static str {
        match self {
            Effect::Read => "only reads; it changes nothing",
            Effect::Write => "changes files or settings",
            Effect::Delete => "deletes files or data",
            Effect::Service => "starts, stops or restarts a service or container",
            Effect::Exec => "runs other programs or code",
            Effect::Network => "talks over the network",
            Effect::Privilege => "gains or hands out privileges (root, host access, capabilities)",
            Effect::Interactive => "waits for a person at a terminal",
            Effect::Unknown => "does something the knowledge base does not describe",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a program or flag runs another program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runs {
    /// The arguments after the node's options (and `skip` positionals) are a
    /// program and its arguments: `sudo`, `nice`, `timeout 5`, `xargs`.
    Rest,
    /// The arguments after the node's options are joined with spaces and run
    /// by a shell: `eval`, `watch`, `ssh host CMD`.
    RestAsShell,
    /// A shell: `-c STRING` (see `command_options`) is a script, a first
    /// positional is a script file, and with neither it runs what it reads on
    /// standard input.
    Shell,
    /// An interpreter of another language: code given inline (`-c`, `-e`) or
    /// from a file or standard input is run, but cannot be parsed as shell.
    Interpreter,
    /// The first positional is itself a program name: `busybox rm -rf /`.
    Applet,
    /// (flags only) The flag's value is a shell command string: `rsync -e`,
    /// `tar --to-command`.
    Value,
    /// (flags only) The arguments after the flag up to a `;` or `+` are a
    /// program and its arguments: `find -exec`.
    UntilTerminator,
}

/// Where the files a node changes are named, for the kernel's write rules
/// (see `crate::confine`). A subcommand without its own says what its
/// program says; a program without one says `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Writes {
    /// Its operands are what it changes (`touch f`, `chmod 644 f`), and the
    /// values of its options that write (`sort -o FILE`).
    Operands,
    /// Like `operands`, and it also removes or renames them, which changes
    /// the directories holding them (`rm`, `mv`).
    Entries,
    /// It changes files beneath its working directory (`git commit`: the
    /// repository), which `directory_options` can move (`git -C DIR`);
    /// absolute operands and the values of options that write count too.
    WorkingDirectory,
    /// What it changes is no file at all (a shell variable for
    /// `printf -v`, the disks' caches for `sync`).
    Nothing,
    /// Where it writes cannot be read from the line (`apt install`,
    /// `useradd`, `sed 's/a/b/w FILE'`).
    #[default]
    Unknown,
}

/// One program, or one subcommand of it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// What the node does when no subcommand or flag says otherwise.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// A sentence for reasons, e.g. "deletes files".
    #[serde(default)]
    pub why: Option<String>,
    /// A floor for the risk score whenever this node is used.
    #[serde(default)]
    pub risk: Option<u8>,
    /// Options that take a value as the next argument (`-C DIR`, `-u USER`).
    #[serde(default)]
    pub value_options: Vec<String>,
    /// Whether `-abc` means `-a -b -c` (true for most tools; false for
    /// `find`, `java`, … whose single-dash options are long words).
    #[serde(default = "yes")]
    pub combined_short: bool,
    /// How this node runs another program, if it does.
    #[serde(default)]
    pub runs: Option<Runs>,
    /// Positionals to skip before the wrapped program (`timeout DURATION`)
    /// or, for a program that runs nothing, before the files it changes
    /// (`chmod MODE FILE`).
    #[serde(default)]
    pub skip: usize,
    /// Options whose value is a command string (`sh -c`, `su -c`, `flock -c`).
    #[serde(default)]
    pub command_options: Vec<String>,
    /// The words it reads on standard input are appended to the command it
    /// runs (`xargs`).
    #[serde(default)]
    pub stdin_args: bool,
    /// Options in whose presence the node runs nothing (`command -v`).
    #[serde(default)]
    pub no_run_options: Vec<String>,
    /// Argument lists that make the node harmless when they are all there is
    /// (`python3 --version`).
    #[serde(default)]
    pub safe_alone: Vec<String>,
    /// Effects of a subcommand that is not listed; "unknown" when unset,
    /// because an unlisted subcommand may be an alias that runs anything.
    #[serde(default)]
    pub other: Option<Vec<Effect>>,
    /// Subcommands: `git status`, `docker compose up`.
    #[serde(default)]
    pub sub: BTreeMap<String, SubSpec>,
    /// Flags that add effects.
    #[serde(default)]
    pub flag: Vec<FlagSpec>,
    /// Patterns over arguments that add effects (`awk 'BEGIN{system("sh")}'`).
    #[serde(default)]
    pub arg: Vec<ArgSpec>,
    /// Programs it executes by itself as part of its normal work, which the
    /// kernel must let it run: bare names looked up on `PATH` (`gzip` for
    /// `zcat`), absolute paths, or absolute patterns whose last component
    /// is a glob (`/usr/lib/git-core/git-*`). What it runs because the line
    /// says so (`sudo CMD`, `find -exec`) is judged as a command of its
    /// own and is not listed here.
    #[serde(default)]
    pub helpers: Vec<String>,
    /// Where the files it changes are named (inherited by subcommands).
    #[serde(default)]
    pub writes: Option<Writes>,
    /// Options whose value is the directory it works in (`git -C DIR`,
    /// `make -C DIR`); they take a value.
    #[serde(default)]
    pub directory_options: Vec<String>,
    /// It reads names and metadata (sizes, modes, times, link targets),
    /// never what files hold, so a secret's path is no secret read
    /// (`ls -la .env`, `test -f .env`). Only for programs with no option
    /// that reads a file's contents.
    #[serde(default)]
    pub metadata_only: bool,
    /// It reaches other machines to do its reading (a DNS query, an echo
    /// request), so the kernel must let it use the network although
    /// nothing it does changes anything (its effects stay `read`).
    #[serde(default)]
    pub uses_network: bool,
    /// Words that end one of its own commands and start the next in its
    /// arguments (`nft list ruleset \; flush ruleset`, `tmux ls \;
    /// kill-server`, `ovs-vsctl show -- del-br br0`): each command is
    /// judged as the program run with it alone. `;` is also found inside a
    /// word, as these tools find it.
    #[serde(default)]
    pub statement_separators: Vec<String>,
    /// It reads every file under its operands unless told otherwise
    /// (`rg`), like a flag's `recursive`.
    #[serde(default)]
    pub recursive: bool,
    /// Options that give the pattern of a search tool (`grep -e`, `-f`):
    /// without one of them, its first operand is the pattern, not a file.
    #[serde(default)]
    pub pattern_options: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A subcommand, written in full or as a shorthand of its effects
/// (`status = "read"`, `push = ["network", "write"]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SubSpec {
    /// `status = "read"`
    One(Effect),
    /// `push = ["network", "write"]`
    Many(Vec<Effect>),
    /// `[program.docker.sub.compose]` with its own fields.
    Node(Box<NodeSpec>),
}

impl SubSpec {
    /// The subcommand as a full node.
    pub fn into_node(self) -> NodeSpec {
        match self {
            SubSpec::One(e) => NodeSpec {
                effects: vec![e],
                ..NodeSpec::default()
            },
            SubSpec::Many(effects) => NodeSpec {
                effects,
                ..NodeSpec::default()
            },
            SubSpec::Node(n) => *n,
        }
    }
}

/// A flag that changes what a node does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagSpec {
    /// Spellings: `-r`, `-R`, `--recursive`.
    pub names: Vec<String>,
    /// Effects the flag adds.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// A sentence for reasons: "deletes directories recursively".
    #[serde(default)]
    pub why: Option<String>,
    /// A floor for the risk score when the flag is present.
    #[serde(default)]
    pub risk: Option<u8>,
    /// Whether the flag takes a value (next argument, `=value`, or attached).
    #[serde(default)]
    pub value: bool,
    /// The flag counts only when its value matches this pattern
    /// (`-v` with `^/:`, `-o` with `ProxyCommand`).
    #[serde(default)]
    pub value_regex: Option<String>,
    /// How the flag runs another program, if it does.
    #[serde(default)]
    pub runs: Option<Runs>,
    /// The flag's effects replace the node's own (`top -b` only reads,
    /// `git clean -n` only lists). Effects added by other flags stay.
    #[serde(default)]
    pub replaces: bool,
    /// The flag's value is a file it writes (`sort -o FILE`), rather than
    /// a setting of how it writes its operands (`truncate -s 0 FILE`).
    #[serde(default)]
    pub writes_value: bool,
    /// The flag makes the program read every file under its operands
    /// (`grep -r`, `diff -r`).
    #[serde(default)]
    pub recursive: bool,
    /// The flag makes the program print names or counts, never what the
    /// files hold (`grep -l`, `grep -c`, `rg --files`).
    #[serde(default)]
    pub contents_hidden: bool,
}

/// A pattern over the arguments of a node that adds effects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// Regular expression over each argument, or over their space-joined
    /// text when `joined` is set.
    pub regex: String,
    /// Effects added when it matches.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// A sentence for reasons.
    pub why: String,
    /// A floor for the risk score when it matches.
    #[serde(default)]
    pub risk: Option<u8>,
    /// Match the space-joined arguments instead of each one.
    #[serde(default)]
    pub joined: bool,
}

/// A whole program in the knowledge base.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// The family for the default policy and for grouping in the UI:
    /// files, text, system, logs, docker, git, systemd, network, storage,
    /// kubernetes, packages, shell, interpreter, privilege, process, editor.
    pub family: String,
    /// Other names of the same program (`vi` for `vim`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The program's own node.
    #[serde(flatten)]
    pub node: NodeSpec,
}

/// What a sensitive path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathClass {
    /// Holds secrets: reading or sending it is never unattended.
    Secret,
    /// System configuration or binaries: changing it is risky.
    System,
    /// A raw disk or memory device: writing it destroys data.
    BlockDevice,
    /// A kernel control file whose write has immediate effect (sysrq).
    KernelControl,
    /// A shell's network pseudo-device (`/dev/tcp/host/port`).
    NetworkDevice,
}

/// A pattern for sensitive paths.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// Regular expression over a path argument (as written, after quote removal).
    pub regex: String,
    /// What kind of sensitive path it is.
    pub class: PathClass,
    /// What it is, for reasons: "SSH private key".
    pub what: String,
}

/// One knowledge file as written; several are merged into a [`Knowledge`].
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeFile {
    /// Programs by name.
    #[serde(default)]
    pub program: BTreeMap<String, ProgramSpec>,
    /// Sensitive paths.
    #[serde(default)]
    pub path: Vec<PathSpec>,
    /// Option tables (see [`crate::options`]), by program and subcommand
    /// words: `[options."git log"]`.
    #[serde(default)]
    pub options: BTreeMap<String, crate::options::TableSpec>,
    /// Option classes a person pinned, by table and spelling.
    #[serde(default, rename = "override")]
    pub overrides: BTreeMap<String, BTreeMap<String, crate::options::OverrideSpec>>,
}
