//! What a line sets up for the commands after it: variables and what they
//! tell programs, exports, `set -a`, working directories (`cd`), aliases,
//! traps and code stored for arithmetic.

use jarvis_core::text::code;

use crate::kb::Effect;
use crate::shell::{self, Assignment, ShellError, Word, truncate};

use super::{Analyzer, Finding, PathUse, Via};

/// Builtins that take variable names, whose array subscripts bash
/// evaluates as arithmetic (`declare 'a[$(id)]=1'` runs `id`); `let` takes
/// arithmetic expressions outright.
const SUBSCRIPT_TAKERS: &[&str] = &[
    "let",
    "declare",
    "typeset",
    "local",
    "readonly",
    "export",
    "unset",
    "read",
    "mapfile",
    "readarray",
    "printf",
    "test",
    "[",
    "wait",
    "getopts",
];

/// Whether a variable given to a program (`X=1 cmd`) only sets how text
/// looks: the locale, the time zone, the terminal's size and colours, or a
/// pager that is plain `cat`. Everything else is an input nobody has read:
/// programs and the libraries they load take hundreds of variables, and
/// some run commands (`GREP` for zgrep) or append to any file (`GIT_TRACE`).
fn harmless_environment(a: &Assignment) -> bool {
    const SAFE: &[&str] = &[
        "LANG",
        "LANGUAGE",
        "TZ",
        "COLUMNS",
        "LINES",
        "TERM",
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "SYSTEMD_COLORS",
        "SYSTEMD_URLIFY",
        "GIT_TERMINAL_PROMPT",
        "DEBIAN_FRONTEND",
    ];
    const PAGERS: &[&str] = &["PAGER", "GIT_PAGER", "SYSTEMD_PAGER", "MANPAGER"];
    let name = a.name.as_str();
    let value = &a.value;
    let simple_value = value.literal
        && value
            .text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/+@,".contains(c));
    if PAGERS.contains(&name) {
        return value.literal && matches!(value.text.as_str(), "" | "cat");
    }
    simple_value && (SAFE.contains(&name) || name.starts_with("LC_"))
}

/// Environment variables that make programs run other code or look elsewhere.
const DANGEROUS_VARS: &[(&str, &str)] = &[
    (
        "PATH",
        "changes `PATH`, so program names may not mean the system's programs",
    ),
    (
        "LD_PRELOAD",
        "sets `LD_PRELOAD`, which loads code into every program it starts",
    ),
    (
        "LD_LIBRARY_PATH",
        "sets `LD_LIBRARY_PATH`, which can load other code into programs",
    ),
    (
        "LD_AUDIT",
        "sets `LD_AUDIT`, which loads code into every program it starts",
    ),
    (
        "IFS",
        "changes `IFS`, which changes how the shell splits words",
    ),
    (
        "BASH_ENV",
        "sets `BASH_ENV`, a script every bash it starts runs first",
    ),
    ("ENV", "sets `ENV`, a script every sh it starts runs first"),
    (
        "PROMPT_COMMAND",
        "sets `PROMPT_COMMAND`, a command the shell runs",
    ),
    (
        "PS4",
        "sets `PS4`, which the shell expands and can run commands through",
    ),
    (
        "SHELLOPTS",
        "sets `SHELLOPTS`, which changes how shells behave",
    ),
    (
        "BASHOPTS",
        "sets `BASHOPTS`, which changes how bash behaves",
    ),
    ("PAGER", "sets `PAGER`, a program other tools run"),
    ("GIT_PAGER", "sets `GIT_PAGER`, a program git runs"),
    ("MANPAGER", "sets `MANPAGER`, a program man runs"),
    (
        "SYSTEMD_PAGER",
        "sets `SYSTEMD_PAGER`, a program systemctl runs",
    ),
    ("LESSOPEN", "sets `LESSOPEN`, a program less runs"),
    ("LESSCLOSE", "sets `LESSCLOSE`, a program less runs"),
    ("EDITOR", "sets `EDITOR`, a program other tools run"),
    ("VISUAL", "sets `VISUAL`, a program other tools run"),
    ("GIT_EDITOR", "sets `GIT_EDITOR`, a program git runs"),
    ("GIT_SSH", "sets `GIT_SSH`, a program git runs"),
    (
        "GIT_SSH_COMMAND",
        "sets `GIT_SSH_COMMAND`, a command git runs",
    ),
    (
        "GIT_EXEC_PATH",
        "sets `GIT_EXEC_PATH`, where git looks for its programs",
    ),
    ("GIT_ASKPASS", "sets `GIT_ASKPASS`, a program git runs"),
    ("SSH_ASKPASS", "sets `SSH_ASKPASS`, a program ssh runs"),
    ("SUDO_ASKPASS", "sets `SUDO_ASKPASS`, a program sudo runs"),
    (
        "GIT_DIR",
        "sets `GIT_DIR`, pointing git at another repository",
    ),
    (
        "GIT_WORK_TREE",
        "sets `GIT_WORK_TREE`, pointing git at other files",
    ),
    (
        "GIT_CONFIG",
        "sets `GIT_CONFIG`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_GLOBAL",
        "sets `GIT_CONFIG_GLOBAL`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_SYSTEM",
        "sets `GIT_CONFIG_SYSTEM`, a config file that can run programs",
    ),
    (
        "GIT_CONFIG_PARAMETERS",
        "sets `GIT_CONFIG_PARAMETERS`, git settings that can run programs",
    ),
    (
        "GIT_CONFIG_COUNT",
        "sets `GIT_CONFIG_COUNT`, git settings that can run programs",
    ),
    (
        "PYTHONPATH",
        "sets `PYTHONPATH`, where Python loads code from",
    ),
    (
        "PYTHONSTARTUP",
        "sets `PYTHONSTARTUP`, code Python runs first",
    ),
    (
        "PYTHONHOME",
        "sets `PYTHONHOME`, where Python loads code from",
    ),
    ("PERL5LIB", "sets `PERL5LIB`, where Perl loads code from"),
    ("PERL5OPT", "sets `PERL5OPT`, options (and code) Perl runs"),
    ("PERLLIB", "sets `PERLLIB`, where Perl loads code from"),
    ("RUBYOPT", "sets `RUBYOPT`, options (and code) Ruby runs"),
    ("RUBYLIB", "sets `RUBYLIB`, where Ruby loads code from"),
    (
        "NODE_OPTIONS",
        "sets `NODE_OPTIONS`, which can make node load code",
    ),
    (
        "DOCKER_HOST",
        "sets `DOCKER_HOST`, pointing docker at another engine",
    ),
    (
        "KUBECONFIG",
        "sets `KUBECONFIG`, pointing kubectl at another cluster",
    ),
    ("BROWSER", "sets `BROWSER`, a program other tools run"),
    (
        "GIT_EXTERNAL_DIFF",
        "sets `GIT_EXTERNAL_DIFF`, a program git runs",
    ),
    (
        "GIT_PROXY_COMMAND",
        "sets `GIT_PROXY_COMMAND`, a command git runs",
    ),
    (
        "HOME",
        "sets `HOME`, so programs read their configuration (which can run programs) from elsewhere",
    ),
    (
        "XDG_CONFIG_HOME",
        "sets `XDG_CONFIG_HOME`, so programs read their configuration from elsewhere",
    ),
    (
        "CURL_HOME",
        "sets `CURL_HOME`, so curl reads its configuration from elsewhere",
    ),
    ("WGETRC", "sets `WGETRC`, a configuration file wget obeys"),
    ("GNUPGHOME", "sets `GNUPGHOME`, so gpg trusts other keys"),
    (
        "http_proxy",
        "sets http_proxy, sending web traffic through another host",
    ),
    (
        "https_proxy",
        "sets https_proxy, sending web traffic through another host",
    ),
    (
        "HTTP_PROXY",
        "sets `HTTP_PROXY`, sending web traffic through another host",
    ),
    (
        "HTTPS_PROXY",
        "sets `HTTPS_PROXY`, sending web traffic through another host",
    ),
    (
        "ALL_PROXY",
        "sets `ALL_PROXY`, sending traffic through another host",
    ),
    (
        "all_proxy",
        "sets all_proxy, sending traffic through another host",
    ),
    (
        "SSL_CERT_FILE",
        "sets `SSL_CERT_FILE`, changing which servers are trusted",
    ),
    (
        "CURL_CA_BUNDLE",
        "sets `CURL_CA_BUNDLE`, changing which servers are trusted",
    ),
];

/// Wrappers that read `NAME=VALUE` words before the command they run as
/// its environment.
pub(super) const ASSIGNING_WRAPPERS: &[&str] = &["env", "sudo"];

impl Analyzer<'_> {
    pub(super) fn builtin_effects(
        &mut self,
        name: &str,
        args: &[Word],
        findings: &mut Vec<Finding>,
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        match name {
            "cd" | "pushd" => {
                let target = args
                    .iter()
                    .find(|a| !a.text.starts_with('-') || a.text == "-");
                let next: Vec<Option<String>> = match target {
                    None => vec![Some("~".into())],
                    Some(t) if t.text != "-" => {
                        // Where the host would be after `cd`, from every
                        // directory the line can be in (see
                        // [`crate::paths`]): `cd /proc/1/root/etc` is in
                        // `/etc`, `cd ..` from a directory only known at run
                        // time can be in `/`. A target only known at run
                        // time is somewhere unknown, or what is left of it
                        // with every variable empty (`cd /srv/$APP` can be
                        // in `/srv`).
                        let mut next: Vec<Option<String>> = Vec::new();
                        let text = if t.literal {
                            Some(&t.text)
                        } else {
                            next.push(None);
                            Some(&t.skeleton).filter(|s| !s.is_empty())
                        };
                        if let Some(text) = text {
                            for c in &self.cwds {
                                let host = crate::paths::resolve(text, c.as_deref(), false);
                                if !host.is_known() {
                                    next.push(None);
                                }
                                next.extend(host.paths.into_iter().map(Some));
                            }
                        }
                        next
                    }
                    Some(_) => vec![None],
                };
                for n in next {
                    if !self.cwds.contains(&n) {
                        self.cwds.push(n);
                    }
                }
            }
            "set" => {
                let mut words = args.iter().map(|a| a.text.as_str());
                while let Some(w) = words.next() {
                    let cluster = w.len() > 1
                        && w.starts_with('-')
                        && !w.starts_with("--")
                        && w[1..].contains('a');
                    if cluster || (w == "-o" && words.next() == Some("allexport")) {
                        self.allexport = true;
                    }
                }
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                // What is exported reaches every program the line runs next.
                let exported = name == "export"
                    || args
                        .iter()
                        .any(|a| a.text.starts_with('-') && a.text.contains('x'));
                for a in args.iter().filter(|a| a.text.contains('=')) {
                    if let Some((n, v)) = a.text.split_once('=') {
                        let assignment = Assignment {
                            name: n.trim_end_matches('+').to_owned(),
                            value: Word {
                                literal: a.literal,
                                ..Word::literal(v)
                            },
                        };
                        self.assignment(&assignment, findings, exported);
                        self.remember(std::slice::from_ref(&assignment));
                    }
                }
            }
            "alias" => {
                for a in args.iter().filter(|a| a.text.contains('=')) {
                    let (alias, value) = a.text.split_once('=').unwrap_or_default();
                    let mut w = a.clone();
                    w.text = value.to_owned();
                    w.skeleton = value.to_owned();
                    self.shell_text(&w, "alias", &via.then("alias", false), depth + 1)?;
                    if a.literal {
                        self.aliases.push((alias.to_owned(), value.to_owned()));
                    }
                }
            }
            "trap" => {
                if let Some(cmd) = args.iter().find(|a| !a.text.starts_with('-')) {
                    self.shell_text(cmd, "trap", &via.then("trap", false), depth + 1)?;
                }
            }
            _ => {}
        }
        if SUBSCRIPT_TAKERS.contains(&name) {
            for a in args.iter().filter(|a| {
                a.literal
                    && (a.text.contains("$(") || a.text.contains('`'))
                    && (name == "let" || a.text.contains('['))
            }) {
                let script = shell::parse_arithmetic(
                    &a.text,
                    &format!("the {} arithmetic", code(name)),
                    depth,
                )?;
                self.script(&script, &via.then("arithmetic", false), depth + 1)?;
            }
        }
        Ok(())
    }

    /// With `expand_aliases` on (a `shopt` on an earlier line of the same
    /// command), bash replaces a command name that is an alias the line
    /// defined by the alias's text, so `x /` after `alias x='rm -rf'` is
    /// `rm -rf /`. Whether the option is on is only known at run time, so
    /// that reading is judged as well as the plain one.
    pub(super) fn alias_reading(
        &mut self,
        name: &str,
        args: &[Word],
        via: &Via,
        depth: usize,
    ) -> Result<(), ShellError> {
        let Some(text) = self
            .aliases
            .iter()
            .rev()
            .find(|(a, _)| a == name)
            .map(|(_, t)| t.clone())
        else {
            return Ok(());
        };
        if self.expanding.iter().any(|e| e == name) {
            return Ok(());
        }
        let mut line = text;
        for a in args {
            line.push(' ');
            line.push_str(&a.raw);
        }
        self.expanding.push(name.to_owned());
        let label = format!("alias {name}");
        let result = self.shell_text(
            &Word::literal(&line),
            &label,
            &via.then(label.clone(), false),
            depth + 1,
        );
        self.expanding.pop();
        result
    }

    pub(super) fn remember(&mut self, assignments: &[Assignment]) {
        for a in assignments.iter().filter(|a| a.value.literal) {
            self.vars.push((a.name.clone(), a.value.text.clone()));
        }
    }

    /// `for_program`: the assignment is in the environment of the program
    /// the same command runs (`X=1 cmd`), not only a shell variable.
    pub(super) fn assignment(
        &self,
        a: &Assignment,
        findings: &mut Vec<Finding>,
        for_program: bool,
    ) {
        if (for_program || self.allexport) && !harmless_environment(a) {
            findings.push(Finding::attended(
                Effect::Exec,
                60,
                format!(
                    "the line sets {} for the program it runs; tools read many variables that run programs or write files ({}, {}), so only locale, time zone and terminal settings are set unattended",
                    code(&a.name),
                    code("GREP"),
                    code("GIT_TRACE")
                ),
            ));
        }
        if let Some((_, why)) = DANGEROUS_VARS.iter().find(|(n, _)| *n == a.name)
            && !harmless_environment(a)
        {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line {why} ({})",
                    code(&format!("{}={}", a.name, truncate(&a.value.text, 40)))
                ),
            ));
        } else if a.name.starts_with("GIT_CONFIG_KEY_") || a.name.starts_with("GIT_CONFIG_VALUE_") {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line sets {}, a git setting that can run programs",
                    code(&a.name)
                ),
            ));
        }
        // `x='a[$(id)]'` runs `id` when `x` is later evaluated in arithmetic,
        // and `eval "$x"` runs whatever `x` holds: stored code is judged as
        // code that cannot be read.
        if a.value.literal && (a.value.text.contains("$(") || a.value.text.contains('`')) {
            findings.push(Finding::attended(
                Effect::Exec,
                70,
                format!(
                    "the line stores shell code in {} ({}), which arithmetic or eval may run later",
                    code(&a.name),
                    code(&truncate(&a.value.text, 40))
                ),
            ));
        }
        self.scan_path(&a.value.text, false, findings, PathUse::READ);
    }
}

/// `NAME=value` as an argument word.
pub(super) fn is_assignment_word(t: &str) -> bool {
    match t.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_words() {
        assert!(is_assignment_word("LD_PRELOAD=/tmp/x.so"));
        assert!(!is_assignment_word("--opt=x"));
        assert!(!is_assignment_word("=x"));
        assert!(!is_assignment_word("1A=x"));
    }
}
