//! Scripts in a tool's own language (`sed`, `awk`, `jq`, `yq`): what they
//! run, write and read besides transforming text (see [`crate::script`]).

use jarvis_core::text::code;

use crate::kb::Effect;
use crate::shell::{Word, truncate};

use super::{Analyzer, Finding, Inner, Own, PathUse, WriteTargets, base_risk};

impl Analyzer<'_> {
    /// Path-class findings for every argument of a known program.
    /// What a script in a tool's own language does besides transforming
    /// text (see [`crate::script`]): a command it runs is judged as shell
    /// like `sh -c`'s, a file it writes or reads is a path like any other,
    /// and a script that cannot be read is never unattended. Returns the
    /// positions of the words that are script text, never paths.
    pub(super) fn tool_script(
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
}

/// Reads one invocation's arguments (the words after the program name, as
/// the program receives them) for what its scripts do.
type ScriptReader = fn(&[String]) -> crate::script::ScriptEffects;

/// The reader for a program whose arguments carry a script in its own
/// language, by the knowledge base's name for it.
pub(super) fn script_reader(program: &str) -> Option<ScriptReader> {
    match program {
        "sed" => Some(crate::sed::effects),
        "awk" => Some(crate::awk::effects),
        "jq" => Some(crate::jq::effects_jq),
        "yq" => Some(crate::jq::effects_yq),
        _ => None,
    }
}
