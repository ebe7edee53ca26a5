//! Policy files: parsing and validation into [`RuleSet`], and rule matching.
//!
//! Parsing and validation are one stage with one output: a [`RuleSet`] that
//! cannot fail at evaluation for a reason the loader could have caught (a bad
//! regex, an unknown decision, a duplicate id). Every mistake is reported
//! with its file, line, column and field, and loading collects all of them
//! instead of stopping at the first, so `jarvis policy lint` shows the whole
//! list at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jarvis_core::{Decision, HostName};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::analyze::{Command, KnowledgeError, ProgramRef};
use crate::kb::{KnowledgeFile, PathSpec, ProgramSpec};
use crate::paths::{self, PathGlob};
use crate::shell::{RedirectOp, Word};

/// One mistake in one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 when the mistake is about the file as a whole.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field: `rule[2].args`, `defaults.decision`.
    pub field: String,
    /// What is wrong, and where it helps, what would be right.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.field,
                self.message
            )
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.field,
                self.message
            )
        }
    }
}

/// Every mistake found while loading policy files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The mistakes, in file order.
    pub errors: Vec<PolicyError>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} mistake{} in the policy:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// The defaults of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// The decision for commands no rule matches.
    pub decision: Decision,
    /// The highest risk at which an allow rule runs a command unattended.
    pub auto_allow_max_risk: u8,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            decision: Decision::Approve,
            auto_allow_max_risk: 30,
        }
    }
}

/// Where a rule was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line of the `[[rule]]` header.
    pub line: usize,
}

/// What a rule's `command` entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefix {
    /// `"*"`: any program.
    Any,
    /// A program, optionally followed by leading words (`docker ps`,
    /// `crontab -l`).
    Words {
        /// The program name (or path, if written with a `/`).
        program: String,
        /// Positional words that must lead the command's subcommand path.
        path: Vec<String>,
        /// Option words (`-l`, `--get`) that must be among its arguments.
        options: Vec<String>,
    },
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its id, unique across the loaded files.
    pub id: String,
    /// What it decides.
    pub decision: Decision,
    /// What it matches.
    pub commands: Vec<Prefix>,
    /// A pattern over the arguments after the program.
    pub args: Option<Regex>,
    /// Path patterns over the places the command names, as the host
    /// resolves them (see [`paths_match`]).
    pub paths: Option<Vec<PathGlob>>,
    /// Host patterns it is limited to; `None` for every host.
    pub hosts: Option<Vec<String>>,
    /// Why, in words for the person reading a decision.
    pub reason: String,
    /// Command lines it must match.
    pub examples: Vec<String>,
    /// Command lines it must not match.
    pub counter_examples: Vec<String>,
    /// Where it was written.
    pub origin: Origin,
    /// `commands` by program name, built on the first match.
    index: std::sync::OnceLock<PrefixIndex>,
}

/// A rule's `commands` by the program name they name, so a command meets
/// only the entries that can match it: the shipped rules list ~1,100
/// programs, and every command of every line met every one of them.
#[derive(Debug, Clone, Default)]
struct PrefixIndex {
    by_name: HashMap<String, Vec<usize>>,
    /// `*` and programs written as paths, which any command may meet.
    always: Vec<usize>,
}

impl PrefixIndex {
    fn of(commands: &[Prefix]) -> PrefixIndex {
        let mut index = PrefixIndex::default();
        for (i, p) in commands.iter().enumerate() {
            match p {
                Prefix::Words { program, .. } if !program.contains('/') => {
                    index.by_name.entry(program.clone()).or_default().push(i);
                }
                _ => index.always.push(i),
            }
        }
        index
    }
}

/// Rules and defaults, merged from every loaded file.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The merged defaults.
    pub defaults: Defaults,
    /// Every rule, in load order.
    pub rules: Vec<Rule>,
}

/// Where a rule's host limit leaves a request with no host.
fn host_applies(rule: &Rule, host: Option<&HostName>) -> bool {
    match (&rule.hosts, host) {
        (None, _) => true,
        (Some(patterns), Some(h)) => patterns.iter().any(|p| glob_match(p, h.as_str())),
        // With the host unknown, a limited rule can only make things
        // stricter: deny and approve rules apply, allow rules do not.
        (Some(_), None) => rule.decision != Decision::Allow,
    }
}

impl Rule {
    /// The `commands` entries that can match `c`: those naming a name `c`
    /// can be matched by (see the name test in [`Rule::matches`]), and
    /// those that meet every command. Each is still tested in full.
    fn candidates<'a>(&'a self, c: &'a Command) -> impl Iterator<Item = &'a Prefix> + 'a {
        let index = self.index.get_or_init(|| PrefixIndex::of(&self.commands));
        let mut names: [Option<&str>; 3] = [None; 3];
        if let ProgramRef::Named { name, known, .. } = &c.program {
            names[0] = Some(name.as_str());
            if self.decision != Decision::Allow {
                names[1] = name.split('.').next().filter(|b| *b != name.as_str());
                names[2] = known
                    .as_ref()
                    .map(|k| k.name.as_str())
                    .filter(|k| Some(*k) != names[0] && Some(*k) != names[1]);
            }
        }
        let named = names
            .into_iter()
            .flatten()
            .filter_map(|n| index.by_name.get(n))
            .flatten();
        index
            .always
            .iter()
            .chain(named)
            .filter_map(|&i| self.commands.get(i))
    }

    /// Whether the rule matches the command on the host.
    pub fn matches(&self, c: &Command, host: Option<&HostName>) -> bool {
        if !host_applies(self, host) {
            return false;
        }
        let prefix_hit = self.candidates(c).any(|p| match p {
            Prefix::Any => true,
            Prefix::Words {
                program,
                path,
                options,
            } => {
                let ProgramRef::Named {
                    name,
                    written,
                    system,
                    known,
                    ..
                } = &c.program
                else {
                    return false;
                };
                let name_hit = if program.contains('/') {
                    written == program
                } else if self.decision != Decision::Allow {
                    // Deny and approve rules catch look-alikes (`./sudo`),
                    // variants (`mkfs.ext4` for `mkfs`) and other names of
                    // the same program (`bash` for `sh`): erring wide only
                    // makes them stricter.
                    name == program
                        || name.split('.').next() == Some(program.as_str())
                        || known.as_ref().is_some_and(|k| &k.name == program)
                } else {
                    // An allow rule names exactly the system's program.
                    name == program && *system
                };
                name_hit
                    && path.len() <= c.positionals.len()
                    && path
                        .iter()
                        .zip(&c.positionals)
                        .all(|(w, p)| p.as_deref() == Some(w.as_str()))
                    && options
                        .iter()
                        .all(|o| c.args.iter().any(|a| a.literal && a.text == *o))
            }
        });
        if !prefix_hit {
            return false;
        }
        let args_hit = match &self.args {
            None => true,
            Some(re) => {
                let joined = c
                    .args
                    .iter()
                    .map(|a| a.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                // An allow pattern must not be satisfied by words only known
                // at run time.
                let dynamic = c.args.iter().any(|a| !a.literal);
                re.is_match(&joined) && !(dynamic && self.decision == Decision::Allow)
            }
        };
        args_hit
            && self
                .paths
                .as_ref()
                .is_none_or(|globs| paths_match(globs, c, self.decision))
    }
}

/// Whether a rule's `paths` patterns meet the places a command names: its
/// words that are no options (and option values that look like paths),
/// its redirection targets, or, when it names none, its working
/// directory; each read as the host resolves it ([`crate::paths`]), so
/// `/var/log//x`, `/var/log/x*/y` and `cd /var/log && … x/y` all name
/// `/var/log/x…`. A place only known at run time could be anywhere: a deny
/// or approve rule applies to it, an allow rule does not. An allow rule
/// applies only when every place surely lies inside its patterns.
fn paths_match(globs: &[PathGlob], c: &Command, decision: Decision) -> bool {
    let (mut places, mut unknown) = path_words(c);
    if places.is_empty() && !unknown {
        for cwd in &c.cwds {
            match cwd {
                Some(d) => places.push((d.clone(), false)),
                None => unknown = true,
            }
        }
    }
    let (mut any, mut all, mut count) = (false, true, 0);
    for (text, glob) in places {
        let host = paths::resolve_in(&text, &c.cwds, glob);
        unknown |= !host.is_known();
        for p in &host.paths {
            count += 1;
            any |= globs.iter().any(|g| g.could_match(p, host.glob));
            all &= globs.iter().any(|g| g.surely_contains(p, host.glob));
        }
    }
    if decision == Decision::Allow {
        !unknown && count > 0 && all
    } else {
        unknown || any
    }
}

/// The words of a command that can name places, as (text, is a glob),
/// and whether one of them is only known at run time.
fn path_words(c: &Command) -> (Vec<(String, bool)>, bool) {
    let looks_like_path = |v: &str| v.contains('/') || v.starts_with('~') || v.starts_with('.');
    // A word with an expansion other than a glob is only known at run time.
    let dynamic = |w: &Word| !w.literal && (!w.pattern || w.text != w.skeleton);
    let mut out = Vec::new();
    let mut unknown = false;
    let mut options = true;
    for a in &c.args {
        if options && a.text == "--" {
            options = false;
            continue;
        }
        let text = if options && a.text.starts_with('-') && a.text.len() > 1 {
            match a.text.split_once('=') {
                Some((_, v)) if looks_like_path(v) => v,
                _ => continue,
            }
        } else {
            match a.text.split_once('=') {
                Some((k, v))
                    if !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && looks_like_path(v) =>
                {
                    v
                }
                _ => a.text.as_str(),
            }
        };
        if dynamic(a) {
            unknown = true;
        } else {
            out.push((text.to_owned(), a.pattern));
        }
    }
    for r in &c.redirects {
        if r.op == RedirectOp::Duplicate
            || matches!(
                r.target.text.as_str(),
                "/dev/null" | "/dev/tty" | "/dev/zero"
            )
        {
            continue;
        }
        if dynamic(&r.target) {
            unknown = true;
        } else {
            out.push((r.target.text.clone(), r.target.pattern));
        }
    }
    (out, unknown)
}

/// `*` and `?` wildcards over one name (a host name in a rule, a file
/// name in a helper pattern); `[` is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    defaults: Option<Spanned<RawDefaults>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    program: BTreeMap<String, ProgramSpec>,
    #[serde(default)]
    path: Vec<PathSpec>,
    #[serde(default)]
    options: BTreeMap<String, crate::options::TableSpec>,
    #[serde(default, rename = "override")]
    overrides: BTreeMap<String, BTreeMap<String, crate::options::OverrideSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    decision: Option<Spanned<String>>,
    auto_allow_max_risk: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<Spanned<String>>,
    decision: Option<Spanned<String>>,
    command: Option<Spanned<OneOrMany>>,
    args: Option<Spanned<String>>,
    paths: Option<Spanned<Vec<Spanned<String>>>>,
    hosts: Option<Spanned<Vec<String>>>,
    reason: Option<Spanned<String>>,
    #[serde(default)]
    examples: Vec<Spanned<String>>,
    #[serde(default)]
    counter_examples: Vec<Spanned<String>>,
}

/// A policy file's contents, before it is merged with others.
pub struct Loaded {
    /// Its rules.
    pub rules: Vec<Rule>,
    /// Its defaults, if it sets any.
    pub defaults: Option<(Option<Decision>, Option<u8>)>,
    /// Its knowledge.
    pub knowledge: KnowledgeFile,
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

struct FileErrors<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<PolicyError>,
}

impl FileErrors<'_> {
    fn at(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Parses and validates one policy file's text.
///
/// # Errors
/// Every mistake in the file.
pub fn parse_file(file: &Path, text: &str) -> Result<Loaded, Vec<PolicyError>> {
    let mut errs = FileErrors {
        file,
        text,
        errors: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_owned();
            let field = field_of_toml_error(text, &span);
            errs.at(span, field, message);
            return Err(errs.errors);
        }
    };
    let defaults = raw.defaults.map(|d| {
        let d = d.into_inner();
        let decision = d.decision.and_then(|s| {
            let span = s.span();
            s.into_inner()
                .parse::<Decision>()
                .map_err(|e| errs.at(span, "defaults.decision", e.to_string()))
                .ok()
        });
        let max = d.auto_allow_max_risk.and_then(|v| {
            let span = v.span();
            let v = *v.get_ref();
            match u8::try_from(v).ok().filter(|v| *v <= 100) {
                Some(v) => Some(v),
                None => {
                    errs.at(
                        span,
                        "defaults.auto_allow_max_risk",
                        format!("{v} is not a risk score: use 0 to 100"),
                    );
                    None
                }
            }
        });
        (decision, max)
    });
    let mut rules = Vec::new();
    for (i, r) in raw.rule.into_iter().enumerate() {
        let span = r.span();
        if let Some(rule) = validate_rule(i, span, r.into_inner(), &mut errs) {
            rules.push(rule);
        }
    }
    let knowledge = KnowledgeFile {
        program: raw.program,
        path: raw.path,
        options: raw.options,
        overrides: raw.overrides,
    };
    if errs.errors.is_empty() {
        Ok(Loaded {
            rules,
            defaults,
            knowledge,
        })
    } else {
        Err(errs.errors)
    }
}

/// The nearest char boundary at or before `offset`, so an offset from
/// elsewhere can never split a character.
fn char_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// The dotted field a TOML error points at, read from the line it is on.
fn field_of_toml_error(text: &str, span: &Range<usize>) -> String {
    let start = char_boundary(text, span.start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[line_start..line_end].trim();
    let key = line.split('=').next().unwrap_or("").trim();
    if line.contains('=') && !key.is_empty() {
        // The enclosing table header gives the key its context.
        let header = text[..line_start]
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('['))
            .map(|h| h.trim().trim_matches(['[', ']']).to_owned());
        match header {
            Some(h) => format!("{h}.{key}"),
            None => key.to_owned(),
        }
    } else {
        "file".to_owned()
    }
}

fn validate_rule(
    i: usize,
    span: Range<usize>,
    r: RawRule,
    errs: &mut FileErrors<'_>,
) -> Option<Rule> {
    let before = errs.errors.len();
    let label = match &r.id {
        Some(id) => format!("rule[{i}] `{}`", id.get_ref()),
        None => format!("rule[{i}]"),
    };
    let id = match r.id {
        Some(id) if !id.get_ref().trim().is_empty() => {
            let ok = id
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
            if !ok {
                errs.at(
                    id.span(),
                    format!("{label}.id"),
                    "use letters, digits, `-`, `_`, `.` and `:` in rule ids",
                );
            }
            id.into_inner()
        }
        Some(id) => {
            errs.at(id.span(), format!("{label}.id"), "the id is empty");
            String::new()
        }
        None => {
            errs.at(span.clone(), label.clone(), "the rule has no `id`");
            String::new()
        }
    };
    let decision = match r.decision {
        Some(d) => {
            let s = d.span();
            d.into_inner()
                .parse::<Decision>()
                .map_err(|e| errs.at(s, format!("{label}.decision"), e.to_string()))
                .ok()
        }
        None => {
            errs.at(
                span.clone(),
                label.clone(),
                "the rule has no `decision` (allow, approve or deny)",
            );
            None
        }
    };
    let mut commands = Vec::new();
    match r.command {
        Some(c) => {
            let s = c.span();
            let list = match c.into_inner() {
                OneOrMany::One(x) => vec![x],
                OneOrMany::Many(xs) => xs,
            };
            if list.is_empty() {
                errs.at(
                    s.clone(),
                    format!("{label}.command"),
                    "the command list is empty, so the rule matches nothing",
                );
            }
            for entry in list {
                let words: Vec<&str> = entry.split_whitespace().collect();
                match words.as_slice() {
                    [] => errs.at(
                        s.clone(),
                        format!("{label}.command"),
                        "an empty command entry matches nothing",
                    ),
                    ["*"] => commands.push(Prefix::Any),
                    [first, ..] if words.contains(&"*") => {
                        let _ = first;
                        errs.at(
                            s.clone(),
                            format!("{label}.command"),
                            format!("`{entry}`: `*` stands alone and means any program; use `args` for patterns"),
                        );
                    }
                    [program, rest @ ..] => {
                        let (options, path): (Vec<&&str>, Vec<&&str>) =
                            rest.iter().partition(|w| w.starts_with('-'));
                        commands.push(Prefix::Words {
                            program: (*program).to_owned(),
                            path: path.into_iter().map(|w| (*w).to_owned()).collect(),
                            options: options.into_iter().map(|w| (*w).to_owned()).collect(),
                        });
                    }
                }
            }
        }
        None => errs.at(
            span.clone(),
            label.clone(),
            "the rule has no `command` (a program, program words, or \"*\")",
        ),
    }
    let args = r.args.and_then(|a| {
        let s = a.span();
        Regex::new(a.get_ref())
            .map_err(|e| {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or("").trim().to_owned();
                errs.at(
                    s,
                    format!("{label}.args"),
                    format!("the pattern does not compile: {last}"),
                );
            })
            .ok()
    });
    let paths = r.paths.map(|p| {
        let s = p.span();
        let list = p.into_inner();
        if list.is_empty() {
            errs.at(
                s,
                format!("{label}.paths"),
                "an empty path list matches nothing; leave `paths` out for any path",
            );
        }
        let mut globs = Vec::new();
        for item in list {
            let span = item.span();
            match PathGlob::parse(item.get_ref()) {
                Ok(g) => globs.push(g),
                Err(e) => errs.at(span, format!("{label}.paths"), e.to_string()),
            }
        }
        globs
    });
    let hosts = r.hosts.map(|h| {
        let s = h.span();
        let list = h.into_inner();
        if list.is_empty() {
            errs.at(
                s.clone(),
                format!("{label}.hosts"),
                "an empty host list matches no host; leave `hosts` out for all hosts",
            );
        }
        for p in &list {
            let bare = p.replace(['*', '?'], "a");
            if HostName::parse(&bare).is_err() {
                errs.at(
                    s.clone(),
                    format!("{label}.hosts"),
                    format!("`{p}` is not a host name or pattern"),
                );
            }
        }
        list
    });
    let reason = r
        .reason
        .map(Spanned::into_inner)
        .unwrap_or_else(|| format!("rule `{id}`"));
    if errs.errors.len() > before {
        return None;
    }
    let (line, _) = line_col(errs.text, span.start);
    Some(Rule {
        id,
        decision: decision?,
        commands,
        args,
        paths,
        hosts,
        reason,
        examples: r.examples.into_iter().map(Spanned::into_inner).collect(),
        counter_examples: r
            .counter_examples
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        origin: Origin {
            file: errs.file.to_owned(),
            line,
        },
        index: std::sync::OnceLock::new(),
    })
}

/// The knowledge sections of one file, with the file they came from.
pub type FileKnowledge = (PathBuf, KnowledgeFile);

/// Merges loaded files into one rule set; ids must be unique across files.
///
/// Defaults merge toward strictness: the strictest default decision and the
/// lowest unattended limit of any file win, so adding a file can never make
/// the policy looser by accident.
///
/// # Errors
/// A [`PolicyError`] for every id defined twice.
pub fn merge(
    files: Vec<(PathBuf, Loaded)>,
) -> Result<(RuleSet, Vec<FileKnowledge>), Vec<PolicyError>> {
    let mut set = RuleSet::default();
    let mut decision: Option<Decision> = None;
    let mut max: Option<u8> = None;
    let mut seen: HashMap<String, Origin> = HashMap::new();
    let mut errors = Vec::new();
    let mut knowledge = Vec::new();
    for (path, loaded) in files {
        if let Some((d, m)) = loaded.defaults {
            decision = match (decision, d) {
                (Some(a), Some(b)) => Some(a.strictest(b)),
                (a, b) => a.or(b),
            };
            max = match (max, m) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        for rule in loaded.rules {
            if let Some(first) = seen.get(&rule.id) {
                errors.push(PolicyError {
                    file: rule.origin.file.clone(),
                    line: rule.origin.line,
                    column: 1,
                    field: format!("rule `{}`.id", rule.id),
                    message: format!(
                        "the id `{}` is already used at {}:{}",
                        rule.id,
                        first.file.display(),
                        first.line
                    ),
                });
                continue;
            }
            seen.insert(rule.id.clone(), rule.origin.clone());
            set.rules.push(rule);
        }
        knowledge.push((path, loaded.knowledge));
    }
    let d = Defaults::default();
    set.defaults = Defaults {
        decision: decision.unwrap_or(d.decision),
        auto_allow_max_risk: max.unwrap_or(d.auto_allow_max_risk),
    };
    if errors.is_empty() {
        Ok((set, knowledge))
    } else {
        Err(errors)
    }
}

/// Turns knowledge errors into policy errors located in the file's text.
pub fn locate_knowledge_errors(
    file: &Path,
    text: &str,
    errors: Vec<KnowledgeError>,
) -> Vec<PolicyError> {
    errors
        .into_iter()
        .map(|e| {
            let (line, column) = text
                .find(&e.needle)
                .map_or((0, 0), |off| line_col(text, off));
            PolicyError {
                file: file.to_owned(),
                line,
                column,
                field: e.place,
                message: e.problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_file(Path::new("p.toml"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn the_minimal_form_of_design_md_loads() {
        let text = r#"
[defaults]
decision = "approve"
auto_allow_max_risk = 30

[[rule]]
id = "inspect-containers"
decision = "allow"
command = ["docker ps", "docker logs", "git status"]
reason = "read-only inspection"
"#;
        let loaded = parse_file(Path::new("p.toml"), text).expect("loads");
        assert_eq!(loaded.rules.len(), 1);
        assert_eq!(loaded.rules[0].commands.len(), 3);
        assert_eq!(loaded.defaults, Some((Some(Decision::Approve), Some(30))));
        assert_eq!(loaded.rules[0].origin.line, 6);
    }

    #[test]
    fn mistakes_name_file_line_and_field() {
        let e = errors("[[rule]]\nid = \"x\"\ndecision = \"alow\"\ncommand = \"ls\"\n");
        assert_eq!(
            e,
            vec![
                "p.toml:3:12: rule[0] `x`.decision: unknown decision `alow`: expected allow, approve or deny"
            ]
        );
        let e =
            errors("[[rule]]\nid = \"x\"\ndecision = \"deny\"\ncommand = \"ls\"\nargs = \"(\"\n");
        assert!(
            e[0].starts_with("p.toml:5:8: rule[0] `x`.args: the pattern does not compile"),
            "{e:?}"
        );
        let e = errors("[[rule]]\nid = \"x\"\ndecison = \"deny\"\n");
        assert!(
            e[0].starts_with("p.toml:3:1: rule.decison: unknown field `decison`"),
            "{e:?}"
        );
        let e = errors("[defaults]\nauto_allow_max_risk = 300\n");
        assert!(
            e[0].contains("defaults.auto_allow_max_risk: 300 is not a risk score"),
            "{e:?}"
        );
        let e = errors("[[rule]]\nid = \"x\"\n");
        assert_eq!(e.len(), 2, "{e:?}");
    }

    #[test]
    fn duplicate_ids_across_files_are_refused() {
        let a = parse_file(
            Path::new("a.toml"),
            "[[rule]]\nid = \"x\"\ndecision = \"deny\"\ncommand = \"ls\"\n",
        )
        .expect("a");
        let b = parse_file(
            Path::new("b.toml"),
            "\n[[rule]]\nid = \"x\"\ndecision = \"allow\"\ncommand = \"ls\"\n",
        )
        .expect("b");
        let e = merge(vec![("a.toml".into(), a), ("b.toml".into(), b)]).expect_err("duplicate");
        assert_eq!(
            e[0].to_string(),
            "b.toml:2:1: rule `x`.id: the id `x` is already used at a.toml:1"
        );
    }

    #[test]
    fn defaults_merge_toward_strictness() {
        let a = parse_file(
            Path::new("a"),
            "[defaults]\ndecision = \"allow\"\nauto_allow_max_risk = 50\n",
        )
        .expect("a");
        let b = parse_file(
            Path::new("b"),
            "[defaults]\ndecision = \"approve\"\nauto_allow_max_risk = 20\n",
        )
        .expect("b");
        let (set, _) = merge(vec![("a".into(), a), ("b".into(), b)]).expect("merge");
        assert_eq!(set.defaults.decision, Decision::Approve);
        assert_eq!(set.defaults.auto_allow_max_risk, 20);
    }

    #[test]
    fn host_globs() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("*", "nas"));
        assert!(glob_match("n?s", "nas"));
        assert!(!glob_match("web-*", "nas"));
        assert!(!glob_match("nas", "nas2"));
    }
}
