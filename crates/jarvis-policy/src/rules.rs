//! Policy files: parsing and validation into [`RuleSet`], and rule matching.
//!
//! Parsing and validation are one stage with one output: a [`RuleSet`] that
//! cannot fail at evaluation for a reason the loader could have caught (a bad
//! regex, an unknown decision, a duplicate id). Every mistake is reported
//! with its file, line, column and field, and loading collects all of them
//! instead of stopping at the first, so `jarvis policy lint` shows the whole
//! list at once.
//!
//! The rules and their matching are here; reading and validating the files
//! into a [`RuleSet`] is `load`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use jarvis_core::{Decision, HostName};
use regex::Regex;

use crate::analyze::{Command, ProgramRef};
use crate::paths::{self, PathGlob};
use crate::shell::{RedirectOp, Word};

mod load;

pub use load::{FileKnowledge, Loaded, locate_knowledge_errors, merge, parse_file};

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
                Prefix::Any | Prefix::Words { .. } => index.always.push(i),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_globs() {
        assert!(glob_match("web-*", "web-1"));
        assert!(glob_match("*", "nas"));
        assert!(glob_match("n?s", "nas"));
        assert!(!glob_match("web-*", "nas"));
        assert!(!glob_match("nas", "nas2"));
    }
}
