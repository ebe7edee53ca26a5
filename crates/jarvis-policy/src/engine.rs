//! The judgement of one request: parse, guardrails, rules, risk, decision.

use std::path::{Path, PathBuf};

use jarvis_core::text::code;
use jarvis_core::{Decision, HostName, Risk};
use serde::Serialize;

use crate::analyze::{self, Analysis, Knowledge, LineContext};
use crate::confine::{self, Confinement};
use crate::dryrun::{self, Preview};
use crate::guardrails;
use crate::kb::KnowledgeFile;
use crate::reasons;
use crate::risk;
use crate::rules::{self, LoadError, PolicyError, Rule, RuleSet};
use crate::scope::{self, Scope, ScopeContext};

/// The paths (relative to the workspace) of the policy files built into
/// the binary, in the order they are merged.
pub fn shipped_files() -> impl Iterator<Item = &'static str> {
    crate::shipped::FILES.iter().copied()
}

/// The longest command line judged. Longer lines are denied unread: nobody
/// reviews a 64 KiB one-liner, and the bound keeps judgement time bounded.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A command someone wants to run.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command line, as the shell on the host would read it.
    pub command: String,
    /// The host it is for, if known.
    pub host: Option<HostName>,
    /// The directory it would run in, if known.
    pub cwd: Option<String>,
}

impl Request {
    /// A request for a command with no host or directory.
    pub fn new(command: impl Into<String>) -> Request {
        Request {
            command: command.into(),
            ..Request::default()
        }
    }
}

/// What the policy says about a request.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The command line judged.
    pub command: String,
    /// What may happen.
    pub decision: Decision,
    /// How dangerous it is.
    pub risk: Risk,
    /// Why, as sentences for a person, in a fixed order that screens rely
    /// on when they show only the first one or two:
    ///
    /// 1. `reasons[0]` is what decided the verdict: for `deny`, the hard
    ///    guardrail or rule that refuses the line (a guardrail's reason
    ///    starts with "hard guardrail"); for `approve`, what made the line
    ///    wait for a person (the riskiest waiting program's strongest
    ///    finding when its risk alone is over the unattended limit, else
    ///    the rule or default that asks for a person, or the allow rule
    ///    said as overridden: "rule `x` would let `cmd` run unattended,
    ///    but …"); for `allow`, the rule that lets it run unattended; for a
    ///    line that cannot be read, why not;
    /// 2. then the other guardrails and deny rules;
    /// 3. then the findings that set the risk score, highest risk first;
    /// 4. then the rest (rules and defaults that did not decide).
    ///
    /// No reason contradicts the verdict, none repeats another, findings
    /// that say the same of one program are one sentence, and commands
    /// are quoted as written, as Markdown code spans
    /// ([`jarvis_core::text::code`]; read them back with
    /// [`jarvis_core::text::spans`]).
    pub reasons: Vec<String>,
    /// Ids of the rules that matched.
    pub rules: Vec<String>,
    /// Whether the line could not be parsed (and so was denied).
    pub parse_error: bool,
    /// The judgement of each program the line runs (for `--explain`).
    #[serde(skip)]
    pub steps: Vec<Step>,
    /// Previews the tools themselves can give (for `--explain`).
    #[serde(skip)]
    pub previews: Vec<Preview>,
}

/// The judgement of one program of a line.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The command, shortened for display.
    pub command: String,
    /// How it is reached: `sudo`, `bash -c`, `$(…)`.
    pub via: Vec<String>,
    /// What the rules say about it alone.
    pub decision: Decision,
    /// Its own risk.
    pub risk: Risk,
    /// What it can do.
    pub findings: Vec<String>,
    /// Rules that matched it.
    pub rules: Vec<String>,
}

impl Judgement {
    /// Holds the line for a person for a reason outside the policy (the
    /// host cannot enforce the kernel wall, a runaway loop): a line the
    /// policy let run unattended now waits, `why` becomes the first reason,
    /// and the reasons that said it runs unattended are said as what
    /// would have let it, so none contradicts the verdict. A refused line
    /// stays refused and its reasons stay as they are.
    pub fn hold(&mut self, why: String) {
        if self.decision == Decision::Deny {
            return;
        }
        if self.decision == Decision::Allow {
            self.decision = Decision::Approve;
            for r in &mut self.reasons {
                *r = reasons::held(r);
            }
        }
        self.reasons.insert(0, why);
    }
}

/// A rule example that does not behave as its author wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The rule.
    pub rule: String,
    /// Where it was written.
    pub origin: String,
    /// The example command.
    pub example: String,
    /// What went wrong.
    pub problem: String,
}

/// What a policy's own files are read on top of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The knowledge base built into the binary (and its rules, when no
    /// file is given).
    Shipped,
    /// Nothing: the files are the whole policy. Reading `policies/` this
    /// way is the reference the built-in form is tested against.
    Nothing,
}

/// A loaded, validated policy: rules, defaults and the knowledge base.
#[derive(Debug)]
pub struct Policy {
    rules: RuleSet,
    kb: Knowledge,
    sources: Vec<PathBuf>,
}

impl Policy {
    /// The policy shipped with Jarvis (`policies/`).
    ///
    /// # Errors
    /// Only if the shipped files are broken, which the test suite prevents.
    pub fn shipped() -> Result<Policy, LoadError> {
        Policy::from_texts(Vec::new())
    }

    /// Loads policy files and directories (`*.toml`, recursively) on top of
    /// the shipped knowledge base. The shipped rules are used only when no
    /// path is given.
    ///
    /// # Errors
    /// Every mistake in every file, with file, line and field.
    pub fn load(paths: &[PathBuf]) -> Result<Policy, LoadError> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            collect_files(p, &mut files, &mut errors);
        }
        let mut texts = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => texts.push((f, t)),
                Err(e) => errors.push(PolicyError {
                    file: f,
                    line: 0,
                    column: 0,
                    field: "file".into(),
                    message: format!("cannot be read: {e}"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(LoadError { errors });
        }
        if texts.is_empty() && !paths.is_empty() {
            return Err(LoadError {
                errors: paths
                    .iter()
                    .map(|p| PolicyError {
                        file: p.clone(),
                        line: 0,
                        column: 0,
                        field: "file".into(),
                        message: "holds no .toml policy files".into(),
                    })
                    .collect(),
            });
        }
        Policy::from_texts(texts)
    }

    /// Builds a policy from file texts; with none, the shipped rules apply.
    ///
    /// # Errors
    /// Every mistake in every file.
    pub fn from_texts(texts: Vec<(PathBuf, String)>) -> Result<Policy, LoadError> {
        Policy::from_texts_on(Base::Shipped, texts)
    }

    /// Builds a policy from file texts on top of `base`. On the shipped
    /// base with no texts, the shipped rules apply; otherwise the texts'
    /// rules alone.
    ///
    /// # Errors
    /// Every mistake in every file.
    pub fn from_texts_on(base: Base, texts: Vec<(PathBuf, String)>) -> Result<Policy, LoadError> {
        let mut errors = Vec::new();
        let mut loaded = Vec::new();
        let mut sources = Vec::new();
        let mut kb = match base {
            Base::Shipped => Knowledge::shipped(),
            Base::Nothing => Knowledge::default(),
        };
        if base == Base::Shipped && texts.is_empty() {
            // The shipped knowledge is in `kb` already; of these files only
            // the rules and defaults are read.
            for (path, text) in crate::shipped::RULE_FILES {
                match rules::parse_file(Path::new(path), text) {
                    Ok(mut l) => {
                        l.knowledge = KnowledgeFile::default();
                        loaded.push((PathBuf::from(path), l));
                    }
                    Err(e) => errors.extend(e),
                }
            }
            sources.extend(shipped_files().map(PathBuf::from));
        }
        let mut file_texts = Vec::new();
        for (path, text) in texts {
            match rules::parse_file(&path, &text) {
                Ok(l) => {
                    sources.push(path.clone());
                    loaded.push((path.clone(), l));
                }
                Err(e) => errors.extend(e),
            }
            file_texts.push((path, text));
        }
        let (rules, knowledge) = match rules::merge(loaded) {
            Ok(m) => m,
            Err(e) => {
                errors.extend(e);
                return Err(LoadError { errors });
            }
        };
        for (path, k) in knowledge {
            if let Err(e) = kb.add(k) {
                let text = file_texts
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or("", |(_, t)| t.as_str());
                errors.extend(rules::locate_knowledge_errors(&path, text, e));
            }
        }
        if !errors.is_empty() {
            return Err(LoadError { errors });
        }
        Ok(Policy { rules, kb, sources })
    }

    /// The files whose rules are in force.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The rules and defaults.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The knowledge base.
    pub fn knowledge(&self) -> &Knowledge {
        &self.kb
    }

    /// Judges a request. Never panics and never allows what it could not
    /// read: any input gets a judgement.
    pub fn judge(&self, req: &Request) -> Judgement {
        self.judge_inner(req, false)
    }

    /// Judges a file edit of `path`: as the write `tee -- PATH` would be
    /// judged (sensitive paths, writes into `.git/`, rules for `tee`), with
    /// the reasons speaking of the edit.
    pub fn judge_edit(&self, path: &str, host: Option<HostName>) -> Judgement {
        let line = format!("tee -- {}", dryrun::quote(path));
        let mut j = self.judge(&Request {
            command: line.clone(),
            host,
            cwd: None,
        });
        let shown = format!("edit {path}");
        j.command = shown.clone();
        // The reasons speak of the edit, not of the `tee` that models it:
        // what `tee` does with its input is no part of an edit.
        let (line, shown, tee) = (code(&line), code(&shown), code("tee"));
        let writes = "the edit writes the file it names".to_owned();
        j.reasons = j
            .reasons
            .iter()
            .filter(|r| **r != format!("{tee} copies its input to its output"))
            .map(|r| {
                if *r == format!("{tee} writes its input to files") {
                    return writes.clone();
                }
                let r = r.replace(&line, &shown);
                match r.strip_prefix(&format!("{tee} ")) {
                    Some(rest) => format!("the edit {rest}"),
                    None => r,
                }
            })
            .collect();
        if !j.reasons.contains(&writes) {
            j.reasons.push(writes);
        }
        j
    }

    /// What a command line can change (see [`crate::scope`]). A line that
    /// cannot be read is wholly unscoped.
    pub fn scope(&self, command: &str, ctx: &ScopeContext<'_>) -> Scope {
        match self.analysis(command, ctx.cwd) {
            Ok(a) => scope::scope(&a, ctx),
            Err(_) => unscoped(),
        }
    }

    /// What the kernel should let a line do (see [`crate::confine`]).
    ///
    /// # Errors
    /// Why the line cannot be read; such a line is never run, so it has no
    /// confinement.
    pub fn confinement(&self, command: &str, cwd: Option<&str>) -> Result<Confinement, Unreadable> {
        self.analysis(command, cwd)
            .map(|a| confine::confinement(&a, cwd))
    }

    /// [`Policy::judge`] and [`Policy::scope`] of one request, reading the
    /// line once.
    pub fn judge_and_scope(&self, req: &Request, repos: &[String]) -> (Judgement, Scope) {
        let ctx = ScopeContext {
            cwd: req.cwd.as_deref(),
            repos,
        };
        match self.analysis(&req.command, ctx.cwd) {
            Ok(a) => (self.decide(req, &a, false), scope::scope(&a, &ctx)),
            Err(why) => (refused(&req.command, why.to_string()), unscoped()),
        }
    }

    /// Judges a request and adds the per-program steps and tool previews.
    pub fn explain(&self, req: &Request) -> Judgement {
        self.judge_inner(req, true)
    }

    fn judge_inner(&self, req: &Request, explain: bool) -> Judgement {
        match self.analysis(&req.command, req.cwd.as_deref()) {
            Ok(a) => self.decide(req, &a, explain),
            Err(why) => refused(&req.command, why.to_string()),
        }
    }

    /// The analysis of a line, or why it cannot be read (and so is denied).
    fn analysis(&self, command: &str, cwd: Option<&str>) -> Result<Analysis, Unreadable> {
        if let Some(why) = unreadable(command) {
            return Err(Unreadable::Text(why));
        }
        let ctx = LineContext {
            cwd: cwd.map(str::to_owned),
        };
        // The parser is a dependency; if it ever panics on some input, that
        // input is denied rather than taking the gateway down.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            analyze::analyze(command, &self.kb, &ctx)
        })) {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(Unreadable::Syntax(e.to_string())),
            Err(_) => Err(Unreadable::ParserFailed),
        }
    }

    fn decide(&self, req: &Request, analysis: &Analysis, explain: bool) -> Judgement {
        let limit = self.rules.defaults.auto_allow_max_risk;
        let mut matched: Vec<String> = Vec::new();
        let mut decision = Decision::Allow;
        let mut steps = Vec::new();
        let mut said = Vec::new();

        let breaches = guardrails::check(analysis);
        if !breaches.is_empty() {
            decision = Decision::Deny;
        }
        if !analysis.opaque.is_empty() {
            decision = decision.strictest(Decision::Approve);
        }
        for c in &analysis.commands {
            let risk = risk::command_risk(c);
            let hits: Vec<&Rule> = self
                .rules
                .rules
                .iter()
                .filter(|r| r.matches(c, req.host.as_ref()))
                .collect();
            // The strictest rule decides; the first of equals is named.
            let strictest = hits
                .iter()
                .copied()
                .fold(None::<&Rule>, |best, r| match best {
                    Some(b) if b.decision >= r.decision => Some(b),
                    _ => Some(r),
                });
            let (mut d, mut decided) = match strictest {
                Some(r) => (r.decision, reasons::Decided::Rule(r)),
                None if matches!(c.program, analyze::ProgramRef::None) && c.findings.is_empty() => {
                    // A bare assignment or redirection with nothing risky
                    // about it runs no program for the rules to judge.
                    (Decision::Allow, reasons::Decided::Nothing)
                }
                None => {
                    let d = self.rules.defaults.decision;
                    (d, reasons::Decided::Default(d))
                }
            };
            for r in &hits {
                if !matched.contains(&r.id) {
                    matched.push(r.id.clone());
                }
            }
            if d == Decision::Allow {
                let allowed_by = match decided {
                    reasons::Decided::Rule(r) => Some(r),
                    reasons::Decided::Nothing
                    | reasons::Decided::Default(_)
                    | reasons::Decided::Attended { .. }
                    | reasons::Decided::OverLimit { .. } => None,
                };
                if let Some(f) = c.findings.iter().find(|f| f.attended) {
                    d = Decision::Approve;
                    decided = reasons::Decided::Attended {
                        allowed_by,
                        finding: f,
                    };
                } else if risk.score() > limit {
                    d = Decision::Approve;
                    decided = reasons::Decided::OverLimit { allowed_by };
                }
            }
            decision = decision.strictest(d);
            said.push(reasons::Step {
                shown: c.display(),
                risk,
                decision: d,
                decided,
                findings: &c.findings,
            });
            if explain {
                steps.push(Step {
                    command: c.display(),
                    via: c.via.clone(),
                    decision: d,
                    risk,
                    findings: c.findings.iter().map(|f| f.why.clone()).collect(),
                    rules: hits.iter().map(|r| r.id.clone()).collect(),
                });
            }
        }
        let mut risk = risk::line_risk(&analysis.commands);
        if !breaches.is_empty() {
            risk = Risk::MAX;
        } else if !analysis.opaque.is_empty() {
            risk = risk.max(Risk::saturating(60));
        }
        let reasons = reasons::Facts {
            decision,
            limit,
            breaches: &breaches,
            opaque: &analysis.opaque,
            steps: said,
        }
        .sentences();
        Judgement {
            command: req.command.clone(),
            decision,
            risk,
            reasons,
            rules: matched,
            parse_error: false,
            steps,
            previews: if explain {
                dryrun::previews(analysis)
            } else {
                Vec::new()
            },
        }
    }

    /// Checks every rule's `examples` (must match) and `counter_examples`
    /// (must not).
    pub fn test_examples(&self) -> (usize, Vec<ExampleFailure>) {
        let mut failures = Vec::new();
        let mut count = 0;
        for rule in &self.rules.rules {
            let origin = format!("{}:{}", rule.origin.file.display(), rule.origin.line);
            let cases = rule
                .examples
                .iter()
                .map(|e| (e, true))
                .chain(rule.counter_examples.iter().map(|e| (e, false)));
            for (example, should) in cases {
                count += 1;
                let ctx = LineContext::default();
                let analysis = match analyze::analyze(example, &self.kb, &ctx) {
                    Ok(a) => a,
                    Err(e) => {
                        failures.push(ExampleFailure {
                            rule: rule.id.clone(),
                            origin: origin.clone(),
                            example: example.clone(),
                            problem: format!("the example does not parse: {e}"),
                        });
                        continue;
                    }
                };
                let hit = analysis
                    .commands
                    .iter()
                    .any(|c| rule_matches_any_host(rule, c));
                if hit != should {
                    failures.push(ExampleFailure {
                        rule: rule.id.clone(),
                        origin: origin.clone(),
                        example: example.clone(),
                        problem: if should {
                            "is an example, but the rule does not match it".into()
                        } else {
                            "is a counter-example, but the rule matches it".into()
                        },
                    });
                }
            }
        }
        (count, failures)
    }
}

/// Examples are about what a rule matches, not where: a host-limited rule
/// is tried on a host it names.
fn rule_matches_any_host(rule: &Rule, c: &analyze::Command) -> bool {
    let host = rule
        .hosts
        .as_ref()
        .and_then(|h| h.first())
        .and_then(|p| HostName::parse(&p.replace(['*', '?'], "x")).ok());
    rule.matches(c, host.as_ref())
}

fn collect_files(p: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<PolicyError>) {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => match std::fs::read_dir(p) {
            Ok(entries) => {
                let mut paths: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                for e in paths {
                    if e.is_dir() || e.extension().is_some_and(|x| x == "toml") {
                        collect_files(&e, files, errors);
                    }
                }
            }
            Err(e) => errors.push(PolicyError {
                file: p.to_owned(),
                line: 0,
                column: 0,
                field: "file".into(),
                message: format!("cannot be listed: {e}"),
            }),
        },
        Ok(_) => files.push(p.to_owned()),
        Err(e) => errors.push(PolicyError {
            file: p.to_owned(),
            line: 0,
            column: 0,
            field: "file".into(),
            message: format!("cannot be read: {e}"),
        }),
    }
}

/// Why a command line is refused before parsing, if it is.
/// Why a line cannot be read, and so is denied and never run. The words
/// are the reason a person and the agent are given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The text itself: too long, or bytes no shell line holds.
    #[error("{0}")]
    Text(String),
    /// The shell parser cannot read it.
    #[error("{0}; a command that cannot be read is never run")]
    Syntax(String),
    /// The parser failed on it; denied rather than taking the caller down.
    #[error("the parser failed on this input; it is denied")]
    ParserFailed,
}

fn unreadable(command: &str) -> Option<String> {
    if command.len() > MAX_COMMAND_BYTES {
        return Some(format!(
            "the command is {} bytes long; commands up to {MAX_COMMAND_BYTES} bytes are judged",
            command.len()
        ));
    }
    if command.trim().is_empty() {
        return Some("the command is empty".into());
    }
    // A carriage return not ending a line hides what precedes it on a
    // terminal (`echo safe\rrm -rf /` shows as something else) and sends
    // brush-parser's here-document tokenizer into an endless loop.
    if let Some(i) = command
        .match_indices('\r')
        .map(|(i, _)| i)
        .find(|i| command.as_bytes().get(i + 1) != Some(&b'\n'))
    {
        return Some(format!(
            "the command holds a carriage return at byte {i} that does not end a line; it can hide text on a screen"
        ));
    }
    if let Some((i, c)) = command
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Some(format!(
            "the command holds the control character U+{:04X} at byte {i}; binary input is not judged",
            c as u32
        ));
    }
    None
}

/// The scope of a line that cannot be read: nothing can be placed.
fn unscoped() -> Scope {
    Scope {
        unscoped: vec!["the command cannot be read, so what it changes is unknown".into()],
        ..Scope::default()
    }
}

/// A judgement for input refused before it is read: a request line that is
/// not a request (bad JSON, not UTF-8, too long), a command too large or
/// binary, or one that does not parse. Denied, with why.
pub fn refused(command: &str, why: String) -> Judgement {
    Judgement {
        command: command.to_owned(),
        decision: Decision::Deny,
        risk: Risk::MAX,
        reasons: vec![why],
        rules: Vec::new(),
        parse_error: true,
        steps: Vec::new(),
        previews: Vec::new(),
    }
}
