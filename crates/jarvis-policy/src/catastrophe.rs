//! Catastrophes the plain analysis does not see, and the guardrails that
//! catch them.
//!
//! This module owns two things. First, the *readings*: heuristics that say,
//! as shell lines, what a command would do where the analysis reads no
//! shell — code in another language (`python3 -c`, `perl -e`, …), a tool's
//! own mini-language (git aliases, vim's `!`, gdb's `shell`, make recipes),
//! a program or argument assembled at run time (`$a$b`, `$(echo rm)`,
//! `${PATH:0:1}`), what `xargs` and `find -exec` hand their commands, the
//! positional parameters of `sh -c STRING ARGS`, a container's bind mounts
//! mapped back to the host, and tools that are `rm` or `dd` by another
//! name. The analysis judges these lines, and only the guardrails look at
//! the commands they yield ([`Analysis::embedded`]): a reading can make a
//! line denied for destruction, never allowed, and rules never see it.
//!
//! Second, the guardrails of its own ([`check`]): code a shell, `eval`,
//! `source` or an interpreter takes from a decoder (`obfuscated-code`),
//! clobbering the system's identity files (`identity-files`), destroying a
//! pool, a volume group or a dataset with everything under it
//! (`pool-destroy`), and killing every process of root (`kill-all`).
//!
//! It never does IO and never panics on any text: what it cannot read it
//! leaves to the analysis, which never runs unreadable code unattended.
//!
//! The readings are split by what they read: `run_time` (words spelt at
//! run time, programs only known then), `languages` (code in other
//! languages), `runners` (shells' positional parameters, `xargs`, `find`),
//! `tools` (tools' mini-languages), `containers` (bind mounts mapped back
//! to the host) and `decoders` (code behind a decoder); `lines` says what
//! they find back as shell lines, and `checks` holds the guardrails.

use crate::analyze::basename;
use crate::shell::Word;

mod checks;
mod containers;
mod decoders;
mod languages;
mod lines;
mod run_time;
mod runners;
mod tools;

pub use checks::check;
pub(crate) use decoders::decoded_substitution;
pub(crate) use languages::is_shell;

use containers::container_run;
use decoders::decoded_stdin;
use languages::{interpreter, is_interpreter};
use lines::line;
use run_time::{as_if_destroyers, run_time_words, unknown_runner};
use runners::{find_exec, shell_positionals, xargs};
use tools::{capsh, ddrescue, emacs, gdb, git, make, secure_delete, set_positionals, vim};

/// What a command reads on its standard input, as the readings need it.
pub(crate) enum Input<'a> {
    /// Nothing the line shows.
    Nothing,
    /// A here-document, a here-string or literal `echo` output.
    Text(&'a Word),
    /// The output of these earlier commands of its pipeline (their words).
    Pipe(&'a [Vec<Word>]),
}

/// One command as the readings see it.
pub(crate) struct Call<'a> {
    /// The program word as written.
    pub program: &'a Word,
    /// Its arguments.
    pub args: &'a [Word],
    /// What it reads on standard input.
    pub stdin: Input<'a>,
    /// Literal values the line gave shell variables so far.
    pub vars: &'a [(String, String)],
    /// The wrappers it is reached through (`xargs`, `sudo`, `bash -c`).
    pub via: &'a [String],
    /// Whether the knowledge base describes the program.
    pub known: bool,
}

/// What a reading found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Shell lines that say what the command would do, for the guardrails.
    pub lines: Vec<String>,
    /// Why the code it runs is hidden behind a decoder.
    pub hidden: Vec<String>,
    /// Shell variables it sets (`set -- a b` sets `$1`, `$@`).
    pub remember: Vec<(String, String)>,
}

/// The most lines one reading yields; each is analysed in turn.
const MAX_LINES: usize = 32;

/// Reads one command for what it would do beyond its own words.
pub(crate) fn read(call: &Call) -> Reading {
    let mut r = Reading::default();
    let name = if call.program.literal {
        basename(&call.program.text).to_owned()
    } else {
        String::new()
    };
    run_time_words(call, &mut r);
    if name.is_empty() {
        as_if_destroyers(call, &mut r);
    } else if !call.known {
        unknown_runner(call, &mut r);
    }
    let texts: Vec<&str> = call.args.iter().map(|a| a.text.as_str()).collect();
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    if is_interpreter(stem) {
        interpreter(&name, call, &mut r);
    }
    if is_shell(&name) {
        shell_positionals(call, &mut r);
    }
    if let Some(why) = decoded_stdin(&name, call) {
        r.hidden.push(why);
    }
    match stem {
        "xargs" => xargs(call, &mut r),
        "find" => find_exec(call, &mut r),
        "git" => git(&texts, &mut r),
        "vim" | "vi" | "nvim" | "view" | "ex" | "gvim" | "vimdiff" | "rvim" | "nvi" => {
            vim(call, &mut r)
        }
        "emacs" => emacs(&texts, &mut r),
        "gdb" => gdb(&texts, &mut r),
        "make" | "gmake" => make(call, &mut r),
        "capsh" => capsh(call, &mut r),
        "docker" | "podman" | "nerdctl" => container_run(call, &mut r),
        "wipe" | "srm" => secure_delete(call, &mut r),
        "ddrescue" | "dd_rescue" => ddrescue(call, &mut r),
        "dcfldd" | "dc3dd" => r.lines.push(line("dd", call.args)),
        "set" => set_positionals(&texts, &mut r),
        _ => {}
    }
    r.lines.dedup();
    r.lines.truncate(MAX_LINES);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn w(t: &str) -> Word {
        Word::literal(t)
    }

    pub(super) fn read_line(program: &str, args: &[&str]) -> Reading {
        let program = w(program);
        let args: Vec<Word> = args.iter().map(|a| w(a)).collect();
        read(&Call {
            program: &program,
            args: &args,
            stdin: Input::Nothing,
            vars: &[],
            via: &[],
            known: true,
        })
    }
}
