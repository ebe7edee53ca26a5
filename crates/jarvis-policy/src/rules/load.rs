//! Policy files read and validated into a [`RuleSet`]: every mistake
//! found, each named by file, line, column and field, and the files of
//! one policy merged toward strictness.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use jarvis_core::text::floor_boundary;
use jarvis_core::{Decision, HostName};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::analyze::KnowledgeError;
use crate::kb::{KnowledgeFile, PathSpec, ProgramSpec};
use crate::paths::PathGlob;

use super::{Defaults, Origin, PolicyError, Prefix, Rule, RuleSet};

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
    let offset = floor_boundary(text, offset);
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

/// The dotted field a TOML error points at, read from the line it is on.
fn field_of_toml_error(text: &str, span: &Range<usize>) -> String {
    let start = floor_boundary(text, span.start);
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
}
