//! A parsed line, invocation by invocation: each program resolved and
//! walked, what it hands to another program or a shell unwrapped and
//! analysed in turn, and what [`crate::catastrophe`] reads beyond the
//! words. Each program ends as a [`Command`] in the [`Analysis`].

use jarvis_core::text::code;

use crate::kb::Effect;
use crate::shell::{
    self, Assignment, Context, Invocation, Redirect, ShellError, Stdin, Word, truncate,
};

use super::environment::{ASSIGNING_WRAPPERS, is_assignment_word};
use super::network::{looks_like_remote_address, only_loopback};
use super::paths::basename;
use super::tool_script::script_reader;
use super::walk::{Gathered, Walk};
use super::{
    Analyzer, Command, Finding, Inner, Node, Own, PathUse, ProgramRef, SYSTEM_DIRS, StdinSource,
    Via, WriteTargets, base_risk,
};

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

/// Names that shells treat as the shell itself when given as an argument.
const SHELL_NAMES: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh", "mksh", "busybox",
];

impl Analyzer<'_> {
    pub(super) fn script(
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

    pub(super) fn invocation(
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
    pub(super) fn argv(
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
    pub(super) fn shell_text(
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
            StdinSource::Nothing | StdinSource::Network(_) => crate::catastrophe::Input::Nothing,
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

    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
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
            Stdin::Inherited | Stdin::Pipe(_) | Stdin::Text(_) | Stdin::File => None,
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

fn looks_like_shell_code(t: &str) -> bool {
    t.contains("$(")
        || t.contains('`')
        || t.contains("; ")
        || t.contains("&&")
        || t.contains("| ")
        || t.contains("||")
}
