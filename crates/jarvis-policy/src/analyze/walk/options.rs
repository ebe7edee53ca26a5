//! How a walk reads an option word: against the tool's complete option
//! table where there is one, else by the hand-written knowledge; flags,
//! abbreviations, clusters, attached values and words only known at run
//! time.

use jarvis_core::text::code;

use crate::kb::{Effect, Runs, Writes};
use crate::options::{OptionClass, OptionTable, Parsed, Unlisted, ValueAt};
use crate::shell::{Word, truncate};

use super::super::knowledge::Flag;
use super::super::{Finding, Inner, Node, base_risk};
use super::Walk;

impl Walk<'_> {
    /// Handles the option at `args[i]`; returns how many words it used.
    /// A node whose option table is complete knows every option its tool
    /// accepts, so one it does not list is unknown; other nodes read
    /// options by the hand-written knowledge alone.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn option(
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

    pub(super) fn flag(
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

    pub(super) fn dynamic_option(&mut self, node: &Node, a: &Word, label: &str) {
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
            Some(ValueAt::Next) | None => item.spelling.clone(),
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
