//! What the kernel should let one command line do, from the same analysis
//! that judged it: the programs it may execute, the paths it may write and
//! whether it may use the network.
//!
//! This is the third wall's input. The host guard turns a [`Confinement`]
//! into a Landlock and seccomp ruleset for the command alone, so that an
//! action judged read-only cannot write even if the judgement was wrong.
//! Everything here is a *name* as the line spells it: resolving programs on
//! the host's `PATH`, following symbolic links and finding ELF interpreters
//! is the guard's work (this crate does no IO).
//!
//! The rule for every field is the same: when the analysis cannot know, the
//! field says so (`programs: None`, `writes_unknown`), and the guard grants
//! the narrow side for an unattended action and the host's approved grant
//! for one a person approved. Nothing here ever widens a grant because a
//! line is hard to read.

use std::collections::BTreeSet;

use crate::analyze::{Analysis, Command, ProgramRef, normalize_path, resolve};
use crate::kb::Effect;

/// What one command line may do under the kernel's ruleset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// The programs the line executes, each as the guard must look it up: a
    /// bare name (found on the command's `PATH` on the host), an absolute
    /// path, or an absolute pattern whose last component is a glob (a
    /// helper directory the knowledge base declares, such as
    /// `/usr/lib/git-core/git-*`). `None` when some program is only known
    /// at run time or the line runs code that cannot be read (a script
    /// file, inline Python): then no list is complete.
    pub programs: Option<BTreeSet<String>>,
    /// Absolute, normalised paths the line names as something it writes:
    /// redirection targets, and the path arguments of commands whose
    /// effects include writing or deleting.
    pub writes: BTreeSet<String>,
    /// Some write goes to a place only known at run time (a word with an
    /// expansion, a relative path with no known working directory, a
    /// command that writes without naming where).
    pub writes_unknown: bool,
    /// The line talks to other machines (a network effect the analysis
    /// found).
    pub network: bool,
}

impl Confinement {
    /// Whether the line writes nothing the analysis can see.
    pub fn read_only(&self) -> bool {
        self.writes.is_empty() && !self.writes_unknown
    }
}

/// Derives the confinement of an analysed line; `cwd` is the directory the
/// line starts in, when the request names one.
pub fn confinement(analysis: &Analysis, cwd: Option<&str>) -> Confinement {
    let mut c = Confinement {
        programs: Some(BTreeSet::new()),
        ..Confinement::default()
    };
    if !analysis.opaque.is_empty() {
        c.programs = None;
    }
    for command in &analysis.commands {
        add_program(&mut c, command);
        let effects: BTreeSet<Effect> = command.findings.iter().map(|f| f.effect).collect();
        if effects.contains(&Effect::Network) {
            c.network = true;
        }
        if effects.contains(&Effect::Unknown) {
            c.writes_unknown = true;
        }
        let dirs = working_dirs(command, cwd);
        for r in &command.redirects {
            if r.op.writes() {
                add_write(&mut c, &r.target.text, r.target.literal, &dirs);
            }
        }
        if effects.contains(&Effect::Write) || effects.contains(&Effect::Delete) {
            let mut named = false;
            for word in command.args.iter().filter(|w| !w.text.starts_with('-')) {
                if word.text.contains('/') || !word.literal {
                    named = true;
                    add_write(&mut c, &word.text, word.literal, &dirs);
                }
            }
            if !named {
                // `touch f`, `docker restart x`: where it writes is not a
                // path the line spells, so it is not known here.
                c.writes_unknown = true;
            }
        }
    }
    c
}

fn add_program(c: &mut Confinement, command: &Command) {
    match &command.program {
        ProgramRef::Named { written, .. } => {
            if let Some(programs) = &mut c.programs {
                programs.insert(written.clone());
            }
        }
        ProgramRef::Dynamic { .. } => c.programs = None,
        ProgramRef::None => {}
    }
    if command
        .findings
        .iter()
        .any(|f| f.effect == Effect::Exec && f.attended)
    {
        // Code the analysis could not read runs other programs.
        c.programs = None;
    }
}

/// The directories a relative path of `command` may be resolved against;
/// `None` in the list for one only known at run time.
fn working_dirs(command: &Command, cwd: Option<&str>) -> Vec<Option<String>> {
    if command.cwds.is_empty() {
        vec![cwd.map(str::to_owned)]
    } else {
        command.cwds.clone()
    }
}

fn add_write(c: &mut Confinement, text: &str, literal: bool, dirs: &[Option<String>]) {
    if !literal {
        c.writes_unknown = true;
        return;
    }
    if text.starts_with('/') {
        c.writes.insert(normalize_path(text));
        return;
    }
    for dir in dirs {
        match resolve(dir.as_deref(), text) {
            Some(path) => {
                c.writes.insert(normalize_path(&path));
            }
            None => c.writes_unknown = true,
        }
    }
}
