//! The knowledge base compiled for lookup: programs by name and alias,
//! their subcommand and flag trees, and the sensitive paths. Shipped units
//! are compiled the first time a line needs them, so a process pays only
//! for the programs it meets.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use jarvis_core::text::code;
use regex::{Regex, RegexSet};

use crate::kb::{
    Effect, FlagSpec, KnowledgeFile, NodeSpec, PathClass, PathSpec, ProgramSpec, Runs, Writes,
};
use crate::options::{OptionTable, OptionTables};

use super::paths::basename;

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
    pub(super) options: OptionTables,
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
    pub(super) effects: Vec<Effect>,
    pub(super) why: Option<String>,
    pub(super) risk: Option<u8>,
    pub(super) value_options: Vec<String>,
    pub(super) combined_short: bool,
    pub(super) runs: Option<Runs>,
    pub(super) skip: usize,
    pub(super) command_options: Vec<String>,
    pub(super) stdin_args: bool,
    pub(super) no_run_options: Vec<String>,
    pub(super) safe_alone: Vec<String>,
    pub(super) other: Option<Vec<Effect>>,
    pub(super) sub: HashMap<String, Node>,
    pub(super) flags: Vec<Flag>,
    pub(super) args: Vec<ArgPattern>,
    pub(super) helpers: Vec<String>,
    pub(super) writes: Writes,
    pub(super) directory_options: Vec<String>,
    pub(super) uses_network: bool,
    pub(super) metadata_only: bool,
    pub(super) statement_separators: Vec<String>,
    pub(super) recursive: bool,
    pub(super) pattern_options: Vec<String>,
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
pub(super) struct Flag {
    pub(super) names: Vec<String>,
    pub(super) effects: Vec<Effect>,
    pub(super) why: Option<String>,
    pub(super) risk: Option<u8>,
    pub(super) value: bool,
    pub(super) value_regex: Option<Pattern>,
    pub(super) runs: Option<Runs>,
    pub(super) replaces: bool,
    pub(super) writes_value: bool,
    pub(super) recursive: bool,
    pub(super) contents_hidden: bool,
}

#[derive(Debug)]
pub(super) struct ArgPattern {
    pub(super) regex: Pattern,
    pub(super) effects: Vec<Effect>,
    pub(super) why: String,
    pub(super) risk: Option<u8>,
    pub(super) joined: bool,
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
    pub(super) fn classify_reading(&self, path: &str, glob: bool) -> Option<(&PathClass, &str)> {
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
pub(super) struct Pattern {
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
    pub(super) fn is_match(&self, text: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
