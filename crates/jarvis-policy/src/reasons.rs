//! The reasons of a judgement: its facts said as ranked sentences.
//!
//! The engine decides; this module only says why, for a person deciding on
//! a phone who reads the first one or two sentences. So the order is a
//! contract (see [`crate::Judgement::reasons`]):
//!
//! 1. the reason that decided the verdict: the guardrail or deny rule that
//!    refused the line; for a line that waits for a person, what made it
//!    wait (the riskiest waiting program's strongest finding when its risk
//!    alone is over the unattended limit, else the rule, the default or the
//!    never-unattended fact); for a line that runs unattended, the rule
//!    that lets its riskiest program run;
//! 2. the other guardrails and deny rules;
//! 3. the findings that set the risk score, highest risk first;
//! 4. the rest: rules and defaults that did not decide.
//!
//! And what is said never contradicts the verdict: a denied line is not
//! said to be approved or allowed by anything, an allow rule that was
//! overridden is said to be overridden ("would let … run unattended,
//! but …"), and a rule's own description ("reads files and text") is
//! repeated only of programs whose findings show they change nothing.
//! Findings that say the same of one program are merged, and code is
//! quoted as written with [`code`].

use jarvis_core::text::code;
use jarvis_core::{Decision, Risk};

use crate::analyze::Finding;
use crate::guardrails::Breach;
use crate::kb::Effect;
use crate::rules::Rule;

/// What set one program's own decision.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Decided<'a> {
    /// It runs no program and nothing about it is risky (`X=1`).
    Nothing,
    /// The strictest rule that matched it.
    Rule(&'a Rule),
    /// No rule matched; the policy's default for such commands.
    Default(Decision),
    /// A rule (or, with `None`, the default) would let it run unattended,
    /// but it holds a finding that always needs a person.
    Attended {
        allowed_by: Option<&'a Rule>,
        finding: &'a Finding,
    },
    /// A rule (or, with `None`, the default) would let it run unattended,
    /// but its risk is over the unattended limit.
    OverLimit { allowed_by: Option<&'a Rule> },
}

/// One program of the line, as the engine judged it.
pub(crate) struct Step<'a> {
    /// The command as written (see [`crate::analyze::Command::display`]).
    pub shown: String,
    /// Its own risk.
    pub risk: Risk,
    /// Its own decision.
    pub decision: Decision,
    /// What set that decision.
    pub decided: Decided<'a>,
    /// What it can do.
    pub findings: &'a [Finding],
}

/// Everything the sentences are made from.
pub(crate) struct Facts<'a> {
    /// The line's verdict.
    pub decision: Decision,
    /// The unattended limit of the policy.
    pub limit: u8,
    /// The guardrails the line breaks.
    pub breaches: &'a [Breach],
    /// Constructs whose effect cannot be known.
    pub opaque: &'a [String],
    /// The line's programs.
    pub steps: Vec<Step<'a>>,
}

/// The risk an opaque construct is given (see the engine).
const OPAQUE_RISK: u8 = 60;

/// The ranks of [`Facts::sentences`]' order, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Decisive,
    Refusal,
    Risk,
    Rest,
}

struct Said {
    tier: Tier,
    risk: u8,
    text: String,
}

impl Facts<'_> {
    /// The reasons, in the order of the module's contract, without repeats.
    pub fn sentences(&self) -> Vec<String> {
        let mut out: Vec<Said> = Vec::new();
        let decisive = self.decisive();
        for (i, b) in self.breaches.iter().enumerate() {
            let tier = match decisive {
                Some(Pick::Breach(d)) if d == i => Tier::Decisive,
                Some(Pick::Breach(_) | Pick::Opaque(_) | Pick::Step(_)) | None => Tier::Refusal,
            };
            out.push(Said {
                tier,
                risk: 100,
                text: format!("hard guardrail ({}): {}", b.guardrail, b.why),
            });
        }
        for (i, o) in self.opaque.iter().enumerate() {
            let tier = match decisive {
                Some(Pick::Opaque(d)) if d == i => Tier::Decisive,
                Some(Pick::Breach(_) | Pick::Opaque(_) | Pick::Step(_)) | None => Tier::Risk,
            };
            out.push(Said {
                tier,
                risk: OPAQUE_RISK,
                text: format!("{o}; what it runs cannot be known"),
            });
        }
        let mut allowed: Vec<Allowed> = Vec::new();
        let mut unruled: Vec<String> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let chosen = matches!(decisive, Some(Pick::Step(d)) if d == i);
            self.step(step, chosen, &mut out, &mut allowed, &mut unruled);
        }
        for a in allowed {
            out.push(self.allowed(&a));
        }
        if !unruled.is_empty() {
            let listed: Vec<String> = unruled.iter().map(|s| code(s)).collect();
            out.push(rest(format!(
                "no rule lets {} run unattended",
                list(&listed, "or")
            )));
        }
        if self.steps.is_empty() {
            out.push(Said {
                tier: if self.decision == Decision::Allow {
                    Tier::Decisive
                } else {
                    Tier::Rest
                },
                risk: 0,
                text: "the line runs nothing".to_owned(),
            });
        }
        // Stable: within a rank, risk first, then the order of the line.
        out.sort_by_key(|s| (s.tier, std::cmp::Reverse(s.risk)));
        let mut seen: Vec<String> = Vec::new();
        for s in out {
            if !seen.contains(&s.text) {
                seen.push(s.text);
            }
        }
        seen
    }

    /// What decided the verdict.
    fn decisive(&self) -> Option<Pick> {
        match self.decision {
            Decision::Deny => {
                if !self.breaches.is_empty() {
                    return Some(Pick::Breach(0));
                }
                riskiest(
                    self.steps
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.decision == Decision::Deny)
                        .map(|(i, s)| (Pick::Step(i), s.risk.score())),
                )
            }
            Decision::Approve => riskiest(
                self.steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.decision == Decision::Approve)
                    .map(|(i, s)| (Pick::Step(i), s.risk.score()))
                    .chain((0..self.opaque.len()).map(|i| (Pick::Opaque(i), OPAQUE_RISK))),
            ),
            Decision::Allow => {
                let steps = |nothing: bool| {
                    riskiest(
                        self.steps
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| matches!(s.decided, Decided::Nothing) == nothing)
                            .map(|(i, s)| (Pick::Step(i), s.risk.score())),
                    )
                };
                // A bare assignment decides only a line of nothing else.
                steps(false).or_else(|| steps(true))
            }
        }
    }

    /// The sentences of one program: what decided it, then its findings.
    fn step<'s>(
        &self,
        step: &'s Step<'s>,
        chosen: bool,
        out: &mut Vec<Said>,
        allowed: &mut Vec<Allowed<'s>>,
        unruled: &mut Vec<String>,
    ) {
        let shown = code(&step.shown);
        let score = step.risk.score();
        let findings = merged(step.findings);
        let strongest = findings.first();
        let over = score > self.limit;
        // Why this program gets its decision, ranked with `tier` unless it
        // decided the verdict.
        let cause = |out: &mut Vec<Said>, tier: Tier, text: String| {
            out.push(Said {
                tier: if chosen { Tier::Decisive } else { tier },
                risk: score,
                text,
            });
        };
        // A finding the cause already says, not repeated on its own.
        let mut said: Option<&str> = None;
        match step.decided {
            Decided::Nothing => {
                if self.decision == Decision::Allow {
                    allowed.push(Allowed {
                        rule: None,
                        nothing: true,
                        steps: vec![step.shown.clone()],
                        changes: false,
                        chosen,
                    });
                }
            }
            Decided::Rule(r) if r.decision == Decision::Deny => cause(
                out,
                Tier::Refusal,
                format!("rule {} refuses {shown}: {}", code(&r.id), r.reason),
            ),
            Decided::Default(Decision::Deny) => cause(
                out,
                Tier::Refusal,
                format!("no rule matches {shown}, and the policy refuses what no rule matches"),
            ),
            Decided::Default(_) | Decided::Rule(_) if step.decision == Decision::Allow => {
                if self.decision != Decision::Deny {
                    let rule = match step.decided {
                        Decided::Rule(r) => Some(r),
                        Decided::Nothing
                        | Decided::Default(_)
                        | Decided::Attended { .. }
                        | Decided::OverLimit { .. } => None,
                    };
                    let changes = findings.iter().any(|m| changes(m.finding.effect));
                    let same = |a: &&mut Allowed<'_>| {
                        !a.nothing && a.rule.map(|r| &r.id) == rule.map(|r| &r.id)
                    };
                    match allowed.iter_mut().find(same) {
                        Some(a) => {
                            a.steps.push(step.shown.clone());
                            a.changes |= changes;
                            a.chosen |= chosen;
                        }
                        None => allowed.push(Allowed {
                            rule,
                            nothing: false,
                            steps: vec![step.shown.clone()],
                            changes,
                            chosen,
                        }),
                    }
                }
            }
            Decided::Rule(_) | Decided::Default(_) => {
                // An approve rule, or no rule and a default that asks a
                // person. On a refused line, neither is worth saying.
                if self.decision == Decision::Approve {
                    let text = match step.decided {
                        Decided::Rule(r) => format!(
                            "rule {} asks a person before {shown} runs: {}",
                            code(&r.id),
                            r.reason
                        ),
                        Decided::Nothing
                        | Decided::Default(_)
                        | Decided::Attended { .. }
                        | Decided::OverLimit { .. } => {
                            format!("no rule lets {shown} run unattended")
                        }
                    };
                    let default = matches!(step.decided, Decided::Default(_));
                    match strongest {
                        // Its risk alone makes it wait, whatever the rules
                        // say: its strongest finding decided.
                        Some(f) if over && chosen => {
                            said = Some(&f.finding.why);
                            out.push(decisive(f.text.clone(), score));
                            if default {
                                unruled.push(step.shown.clone());
                            } else {
                                out.push(rest(text));
                            }
                        }
                        // Programs no rule matched are said in one sentence.
                        _ if default && !chosen => unruled.push(step.shown.clone()),
                        _ => cause(out, Tier::Rest, text),
                    }
                }
            }
            Decided::Attended {
                allowed_by,
                finding,
            } => {
                if self.decision != Decision::Deny {
                    said = Some(&finding.why);
                    let text = findings
                        .iter()
                        .find(|m| m.finding.why == finding.why)
                        .map_or(&finding.why, |m| &m.text);
                    cause(
                        out,
                        Tier::Risk,
                        format!(
                            "{}, but {text}; that always needs a person",
                            would_let(allowed_by, &shown),
                        ),
                    );
                }
            }
            Decided::OverLimit { allowed_by } => {
                if self.decision != Decision::Deny {
                    said = strongest.map(|m| m.finding.why.as_str());
                    let what = match strongest {
                        Some(m) => format!("{}: risk {score}", m.text),
                        None => format!("its risk {score}"),
                    };
                    cause(
                        out,
                        Tier::Risk,
                        format!(
                            "{}, but {what} is over the unattended limit {}",
                            would_let(allowed_by, &shown),
                            self.limit
                        ),
                    );
                }
            }
        }
        for m in findings {
            if said == Some(m.finding.why.as_str()) {
                continue;
            }
            out.push(Said {
                tier: Tier::Risk,
                risk: m.finding.risk,
                text: m.text,
            });
        }
    }

    /// The sentence for programs that would run unattended by one rule (or
    /// the default): on a line that runs unattended, what lets them; on a
    /// line that waits, what they would do alone.
    fn allowed(&self, a: &Allowed<'_>) -> Said {
        let steps = a.steps.iter().map(|s| code(s)).collect::<Vec<_>>();
        let listed = list(&steps, "and");
        let unattended = self.decision == Decision::Allow;
        let text = if a.nothing {
            format!("{listed} runs no program")
        } else {
            // A rule's description is its author's word for what it lets
            // through; it is repeated only of programs that change nothing.
            let described = |r: &Rule| {
                if a.changes {
                    String::new()
                } else {
                    format!(": {}", r.reason)
                }
            };
            match (a.rule, unattended) {
                (Some(r), true) => format!(
                    "rule {} lets {listed} run unattended{}",
                    code(&r.id),
                    described(r)
                ),
                (None, true) => format!(
                    "no rule matches {listed}, and the policy lets what no rule matches run unattended"
                ),
                (Some(r), false) => format!(
                    "alone, {listed} would run unattended (rule {}{})",
                    code(&r.id),
                    described(r)
                ),
                (None, false) => format!(
                    "alone, {listed} would run unattended (no rule matches, and the policy lets what no rule matches run unattended)"
                ),
            }
        };
        Said {
            tier: if a.chosen && unattended {
                Tier::Decisive
            } else {
                Tier::Rest
            },
            risk: 0,
            text,
        }
    }
}

/// A reason of a line that ran unattended, said of the line held for a
/// person (see [`crate::Judgement::hold`]): what let it run becomes what
/// would have let it.
pub(crate) fn held(reason: &str) -> String {
    let lets = reason.starts_with("rule `") || reason.starts_with("no rule matches ");
    match reason.split_once(" lets ") {
        Some((head, tail)) if lets && tail.contains("run unattended") => {
            format!("without that, {head} would let {tail}")
        }
        _ => reason.to_owned(),
    }
}

/// Programs one rule (or the default) lets run unattended.
struct Allowed<'a> {
    rule: Option<&'a Rule>,
    /// Commands that run no program at all.
    nothing: bool,
    steps: Vec<String>,
    /// Some of them change something, so the rule's description is not theirs.
    changes: bool,
    /// The riskiest program of an unattended line is among them.
    chosen: bool,
}

/// What decided a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pick {
    Breach(usize),
    Opaque(usize),
    Step(usize),
}

/// The first of the riskiest.
fn riskiest(candidates: impl Iterator<Item = (Pick, u8)>) -> Option<Pick> {
    let mut best: Option<(Pick, u8)> = None;
    for (p, r) in candidates {
        if best.is_none_or(|(_, b)| r > b) {
            best = Some((p, r));
        }
    }
    best.map(|(p, _)| p)
}

fn decisive(text: String, risk: u8) -> Said {
    Said {
        tier: Tier::Decisive,
        risk,
        text,
    }
}

fn rest(text: String) -> Said {
    Said {
        tier: Tier::Rest,
        risk: 0,
        text,
    }
}

/// "rule `x` would let `cmd` run unattended", or the default's words.
fn would_let(rule: Option<&Rule>, shown: &str) -> String {
    match rule {
        Some(r) => format!("rule {} would let {shown} run unattended", code(&r.id)),
        None => format!("the policy would let {shown} run unattended, as no rule matches it"),
    }
}

/// Whether an effect makes a rule's "reads …" untrue of a program.
fn changes(effect: Effect) -> bool {
    !matches!(effect, Effect::Read | Effect::Network | Effect::Interactive)
}

/// "`a`", "`a` and `b`", "`a`, `b` and `c`" (or "or").
fn list(items: &[String], and: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

/// A finding as it is said, merged with those that say the same.
pub(crate) struct Merged<'a> {
    /// The finding kept.
    pub finding: &'a Finding,
    /// Its sentence, naming the options that say the same.
    pub text: String,
}

/// One program's findings without those that say the same as another,
/// riskiest first (in the line's order among equals).
///
/// Two findings say the same when they have the same effect and speak of
/// the same program: one's subject is the other's or starts with it
/// (`curl`, `curl -f`). Of such a pair, the riskier one is kept; at equal
/// risk, the one the knowledge base wrote words for over a stock phrase,
/// then the one about the program rather than one of its options (`curl
/// makes a network request` over `curl -f talks over the network`).
/// Options of one program that do the same thing are one sentence (`ssh
/// -L opens a tunnel or forwards ports (likewise `ssh -R`)`). Findings
/// about different things of one program (two paths it changes) all stay,
/// and a finding that always needs a person is never dropped.
pub(crate) fn merged(findings: &[Finding]) -> Vec<Merged<'_>> {
    let related = |a: &Finding, b: &Finding| match (&a.subject, &b.subject) {
        (Some(x), Some(y)) => {
            x == y || x.starts_with(&format!("{y} ")) || y.starts_with(&format!("{x} "))
        }
        _ => false,
    };
    let len = |f: &Finding| f.subject.as_ref().map_or(0, String::len);
    let outdone = |f: &Finding, g: &Finding| {
        g.effect == f.effect
            && !f.attended
            && related(f, g)
            && (g.risk > f.risk
                || (g.risk == f.risk
                    && ((f.stock && !g.stock) || (f.stock == g.stock && len(g) < len(f)))))
    };
    // What a finding says of its subject: "opens a tunnel or forwards ports".
    let predicate = |f: &Finding| {
        f.subject
            .as_ref()
            .and_then(|s| f.why.strip_prefix(&format!("{} ", code(s))))
            .map(str::to_owned)
    };
    let program = |f: &Finding| {
        f.subject
            .as_ref()
            .and_then(|s| s.split(' ').next())
            .map(str::to_owned)
    };
    // Riskiest first, so that of two findings with the same words (one
    // node's sentence said for each of its effects) the riskier is kept.
    let mut order: Vec<(usize, &Finding)> = findings.iter().enumerate().collect();
    order.sort_by_key(|(_, f)| std::cmp::Reverse(f.risk));
    let mut kept: Vec<(&Finding, Vec<String>)> = Vec::new();
    for (i, f) in order {
        if findings
            .iter()
            .enumerate()
            .any(|(j, g)| j != i && outdone(f, g))
            || kept.iter().any(|(k, _)| k.why == f.why)
        {
            continue;
        }
        let alike = kept.iter_mut().find(|(k, _)| {
            k.effect == f.effect
                && k.risk == f.risk
                && k.attended == f.attended
                && program(k).is_some()
                && program(k) == program(f)
                && predicate(k).is_some()
                && predicate(k) == predicate(f)
        });
        match (alike, &f.subject) {
            (Some((_, also)), Some(subject)) => also.push(code(subject)),
            _ => kept.push((f, Vec::new())),
        }
    }
    let mut out: Vec<Merged<'_>> = kept
        .into_iter()
        .map(|(finding, also)| Merged {
            finding,
            text: match also.len() {
                0 => finding.why.clone(),
                _ => format!("{} (likewise {})", finding.why, list(&also, "and")),
            },
        })
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.finding.risk));
    out
}
