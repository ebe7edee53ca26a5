//! Walks one program's knowledge tree over its arguments: subcommands,
//! positionals, what it runs in turn (handed back as [`Inner`]s) and what
//! the kernel's ruleset needs to know. How each option word is read is in
//! [`options`].

use jarvis_core::text::code;

use crate::kb::{Effect, Runs, Writes};
use crate::options::OptionTables;
use crate::shell::{Word, truncate};

use super::{Finding, Inner, Node, Own, StdinSource, WriteTargets, base_risk};

mod options;

/// Walks one program's knowledge tree over its arguments.
pub(super) struct Walk<'a> {
    /// An option the knowledge base does not know was seen; it may have
    /// taken the next word as its value.
    pub(super) unknown_option: Option<String>,
    /// A flag whose effects replace the current node's own (`top -b`).
    pub(super) replaced: Option<(Vec<Effect>, Option<String>)>,
    pub(super) findings: &'a mut Vec<Finding>,
    pub(super) positionals: &'a mut Vec<Option<String>>,
    pub(super) inners: &'a mut Vec<Inner>,
    pub(super) stdin: &'a StdinSource,
    pub(super) gathered: &'a mut Gathered,
    /// Every option each tool accepts; a node with a complete table knows
    /// all its options.
    pub(super) tables: &'a OptionTables,
}

/// What a walk learns for the kernel's ruleset: the helpers of every node
/// it entered, and where the last node's writes land.
#[derive(Default)]
pub(super) struct Gathered {
    pub(super) helpers: Vec<String>,
    /// The positional words of the node reached.
    pub(super) operands: Vec<Word>,
    /// Values of options that write (`sort -o FILE`).
    pub(super) values: Vec<Word>,
    /// Values of options that name a file read (`grep -f FILE`), judged
    /// as contents read even by a tool that otherwise reads only names.
    pub(super) read_values: Vec<Word>,
    /// Values of directory options (`git -C DIR`).
    pub(super) directories: Vec<Word>,
    /// The node's own effects, a flag without a value or an argument
    /// pattern write or delete: the operands are written.
    pub(super) operand_writes: bool,
    /// Where the reached node's writes land.
    pub(super) writes: Writes,
    /// Something runs code the walk did not unwrap.
    pub(super) runs_unknown: bool,
    /// A node entered uses the network to read.
    pub(super) uses_network: bool,
    /// It reads every file under its operands (`grep -r`, `rg`).
    pub(super) recursive: bool,
    /// A flag keeps what the files hold out of its output (`grep -l`).
    pub(super) contents_hidden: bool,
}

impl Gathered {
    pub(super) fn finish(self) -> Own {
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
    pub(super) fn finding(
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

    pub(super) fn node(&mut self, node: &Node, args: &[Word], label: &str) {
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
                None
                | Some(
                    Runs::Rest
                    | Runs::RestAsShell
                    | Runs::Shell
                    | Runs::Interpreter
                    | Runs::Applet
                    | Runs::Value
                    | Runs::UntilTerminator,
                ) => {}
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
            None
            | Some(
                Runs::Rest
                | Runs::RestAsShell
                | Runs::Shell
                | Runs::Interpreter
                | Runs::Applet
                | Runs::Value
                | Runs::UntilTerminator,
            ) => {}
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
    pub(super) fn gather(&mut self, effects: &[Effect], unwrapped: bool, value: bool) {
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
            None
            | Some(
                Runs::Rest
                | Runs::Shell
                | Runs::Interpreter
                | Runs::Applet
                | Runs::Value
                | Runs::UntilTerminator,
            ) => self.inners.push(Inner::Argv {
                argv: rest.to_vec(),
                label: label.to_owned(),
                privileged,
            }),
        }
    }

    pub(super) fn args(&mut self, node: &Node, args: &[Word], label: &str) {
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
