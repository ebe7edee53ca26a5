//! Tools' own mini-languages that run shell commands: git aliases and
//! settings, vim's `!`, emacs, gdb's `shell`, make recipes, `capsh`, and
//! tools that are `rm` or `dd` by another name.

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use regex::Regex;

use crate::shell::Word;

use super::languages::read_code;
use super::lines::line;
use super::run_time::balanced;
use super::{Call, Input, Reading};

/// git settings whose values are commands it runs.
fn git_command_setting(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "core.pager"
            | "core.editor"
            | "core.sshcommand"
            | "core.fsmonitor"
            | "core.askpass"
            | "core.gitproxy"
            | "sequence.editor"
            | "diff.external"
            | "gpg.program"
            | "uploadpack.packobjectshook"
    ) || key.starts_with("pager.")
        || (key.starts_with("filter.")
            && (key.ends_with(".clean") || key.ends_with(".smudge") || key.ends_with(".process")))
        || (key.starts_with("diff.") && key.ends_with(".textconv"))
        || (key.starts_with("merge.") && key.ends_with(".driver"))
        || (key.starts_with("remote.")
            && (key.ends_with(".receivepack") || key.ends_with(".uploadpack")))
}

/// `git -c alias.x='!rm -rf /' x`, `git -c core.pager='…' log`: the
/// commands its settings run.
pub(super) fn git(texts: &[&str], r: &mut Reading) {
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < texts.len() {
        let t = texts[i];
        let setting = if t == "-c" {
            i += 1;
            texts.get(i).copied()
        } else {
            t.strip_prefix("-c").filter(|s| s.contains('='))
        };
        if let Some((k, v)) = setting.and_then(|s| s.split_once('=')) {
            settings.push((k.to_owned(), v.to_owned()));
        }
        if t == "config" {
            let rest: Vec<&str> = texts[i + 1..]
                .iter()
                .copied()
                .filter(|a| !a.starts_with('-'))
                .collect();
            if let [k, v, ..] = rest.as_slice() {
                settings.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        i += 1;
    }
    for (key, value) in settings {
        let lower = key.to_ascii_lowercase();
        if let Some(cmd) = value.strip_prefix('!') {
            if lower.starts_with("alias.") || lower.starts_with("credential.") {
                r.lines.push(cmd.to_owned());
            }
        } else if git_command_setting(&key) {
            r.lines.push(value);
        }
    }
}

static VIM_SHELL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:silent!?\s*)?(?:(?:r|re|rea|read|w|wr|wri|writ|write)\s*!|!|(?:ter|term|termi|termin|termina|terminal)\s+)(.*)$")
        .expect("the vim shell pattern is valid")
});

static VIM_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:silent!?\s*)?(py3|python3|py|python|pyx|pythonx|lua|perl|ruby|rub)\s+(.*)$")
        .expect("the vim code pattern is valid")
});

/// One editor command: what shell line or code it runs.
fn vim_command(cmd: &str, r: &mut Reading) {
    let cmd = cmd.trim_start_matches([':', ' ', '\t']);
    if let Some(c) = VIM_SHELL.captures(cmd) {
        r.lines.push(c[1].to_owned());
    } else if let Some(c) = VIM_CODE.captures(cmd) {
        let language = match &c[1] {
            "lua" => "lua",
            "perl" => "perl",
            "ruby" | "rub" => "ruby",
            _ => "python3",
        };
        read_code(language, &c[2], 0, r);
    } else if cmd.contains("system") || cmd.contains("exe") {
        read_code("vim", cmd, 0, r);
    }
}

/// `vim -c '!rm -rf /'`, `vim +'r !…'`, `vim --cmd …`, `vim -es <<< …`.
pub(super) fn vim(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut script_on_stdin = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "-c" || t == "--cmd" {
            if let Some(cmd) = args.get(i + 1) {
                vim_command(&cmd.text, r);
            }
            i += 2;
            continue;
        }
        if let Some(cmd) = t.strip_prefix('+')
            && !cmd.is_empty()
            && !cmd.chars().all(|c| c.is_ascii_digit())
        {
            vim_command(cmd, r);
        }
        if t.starts_with('-') && !t.starts_with("--") && (t.contains('e') || t.contains('s')) {
            script_on_stdin = true;
        }
        i += 1;
    }
    if script_on_stdin && let Input::Text(w) = call.stdin {
        for cmd in w.text.lines() {
            vim_command(cmd, r);
        }
    }
}

/// `emacs --eval '(shell-command "…")'`.
pub(super) fn emacs(texts: &[&str], r: &mut Reading) {
    for (i, t) in texts.iter().enumerate() {
        let code = match *t {
            "--eval" | "-eval" => texts.get(i + 1).copied(),
            _ => t.strip_prefix("--eval="),
        };
        if let Some(code) = code {
            read_code("emacs", code, 0, r);
        }
    }
}

/// `gdb -batch -ex 'shell rm -rf /'`, `-ex 'python …'`.
pub(super) fn gdb(texts: &[&str], r: &mut Reading) {
    for (i, t) in texts.iter().enumerate() {
        let cmd = match *t {
            "-ex"
            | "--ex"
            | "-eval-command"
            | "--eval-command"
            | "-iex"
            | "--iex"
            | "-init-eval-command"
            | "--init-eval-command" => texts.get(i + 1).copied(),
            _ => t
                .strip_prefix("--eval-command=")
                .or_else(|| t.strip_prefix("-eval-command="))
                .or_else(|| t.strip_prefix("--ex="))
                .or_else(|| t.strip_prefix("--init-eval-command=")),
        };
        let Some(cmd) = cmd.map(str::trim_start) else {
            continue;
        };
        if let Some(rest) = cmd.strip_prefix("shell ").or_else(|| cmd.strip_prefix('!')) {
            r.lines.push(rest.to_owned());
        } else if let Some(rest) = cmd
            .strip_prefix("python ")
            .or_else(|| cmd.strip_prefix("py "))
            .or_else(|| cmd.strip_prefix("pi "))
        {
            read_code("python3", rest, 0, r);
        } else if let Some(rest) = cmd.strip_prefix("pipe ").or_else(|| cmd.strip_prefix("| "))
            && let Some((_, shell)) = rest.split_once('|')
        {
            r.lines.push(shell.to_owned());
        }
    }
}

/// `make -f - <<< $'all:\n\trm -rf /'`, `make --eval='…'`: the recipes of a
/// makefile the line spells out, and its `$(shell …)` calls.
pub(super) fn make(call: &Call, r: &mut Reading) {
    let texts: Vec<&str> = call.args.iter().map(|a| a.text.as_str()).collect();
    let mut makefiles: Vec<String> = Vec::new();
    let mut from_stdin = false;
    for (i, t) in texts.iter().enumerate() {
        match *t {
            "-f" | "--file" | "--makefile" => {
                from_stdin |= texts
                    .get(i + 1)
                    .is_some_and(|f| matches!(*f, "-" | "/dev/stdin"));
            }
            "--eval" | "-E" => makefiles.extend(texts.get(i + 1).map(|s| (*s).to_owned())),
            _ => {
                if let Some(v) = t.strip_prefix("--eval=") {
                    makefiles.push(v.to_owned());
                }
                from_stdin |= matches!(
                    *t,
                    "-f-" | "--file=-" | "--makefile=-" | "-f/dev/stdin" | "--file=/dev/stdin"
                );
            }
        }
    }
    if from_stdin && let Input::Text(w) = call.stdin {
        makefiles.push(w.text.clone());
    }
    for text in makefiles {
        for l in text.lines() {
            let recipe = if let Some(recipe) = l.strip_prefix('\t') {
                Some(recipe)
            } else {
                l.split_once(';')
                    .filter(|(rule, _)| rule.contains(':'))
                    .map(|(_, recipe)| recipe)
            };
            if let Some(recipe) = recipe {
                let recipe = recipe.trim_start_matches(['@', '-', '+', ' ']);
                r.lines.push(recipe.replace("$$", "$"));
            }
            let mut rest = l;
            while let Some(at) = rest.find("$(shell ") {
                let after = &rest[at + 8..];
                match balanced(after, '(', ')') {
                    Some(len) => {
                        r.lines.push(after[..len].to_owned());
                        rest = &after[len..];
                    }
                    None => break,
                }
            }
        }
    }
}

/// `capsh -- -c 'rm -rf /'`: the words after `--` are bash's.
pub(super) fn capsh(call: &Call, r: &mut Reading) {
    if let Some(i) = call.args.iter().position(|a| a.text == "--") {
        r.lines.push(line("bash", &call.args[i + 1..]));
    }
}

/// `wipe -rf /home`, `srm -r /etc`: secure deleters are `rm` by another
/// name.
pub(super) fn secure_delete(call: &Call, r: &mut Reading) {
    let recursive = call.args.iter().any(|a| {
        a.text.starts_with('-') && !a.text.starts_with("--") && a.text.contains(['r', 'R'])
    }) || call.args.iter().any(|a| a.text == "--recursive");
    let paths: Vec<Word> = call
        .args
        .iter()
        .filter(|a| !a.text.starts_with('-'))
        .cloned()
        .collect();
    let flags = if recursive { "-rf" } else { "-f" };
    r.lines.push(line(&format!("rm {flags} --"), &paths));
}

/// `ddrescue --force /dev/zero /dev/sda`: the second operand is written.
pub(super) fn ddrescue(call: &Call, r: &mut Reading) {
    let operands: Vec<&Word> = call
        .args
        .iter()
        .filter(|a| !a.text.starts_with('-'))
        .collect();
    if let Some(out) = operands.get(1) {
        r.lines.push(format!("tee -- {}", out.raw));
    }
}

/// `set -- a b c` gives `$1`, `$@` and `$*`.
pub(super) fn set_positionals(texts: &[&str], r: &mut Reading) {
    let Some(start) = texts.iter().position(|t| *t == "--") else {
        return;
    };
    let words = &texts[start + 1..];
    let all = words.join(" ");
    r.remember.push(("@".into(), all.clone()));
    r.remember.push(("*".into(), all));
    for (k, w) in words.iter().enumerate().take(9) {
        r.remember.push(((k + 1).to_string(), (*w).to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use crate::catastrophe::tests::read_line;

    #[test]
    fn mini_languages() {
        let r = read_line("git", &["-c", "alias.x=!rm -rf /", "x"]);
        assert_eq!(r.lines, vec!["rm -rf /"]);
        let r = read_line("git", &["-c", "alias.st=status", "st"]);
        assert!(r.lines.is_empty());
        let r = read_line("vim", &["-c", ":!rm -rf /"]);
        assert_eq!(r.lines, vec!["rm -rf /"]);
        let r = read_line("vim", &["-c", ":set number", "f"]);
        assert!(r.lines.is_empty());
        let r = read_line("gdb", &["-batch", "-ex", "shell rm -rf /"]);
        assert_eq!(r.lines, vec!["rm -rf /"]);
        let r = read_line("make", &["--eval=x: ; rm -rf /"]);
        assert_eq!(r.lines, vec![" rm -rf /".trim_start().to_owned()]);
        let r = read_line("capsh", &["--", "-c", "rm -rf /"]);
        assert_eq!(r.lines, vec!["bash -c rm -rf /"]);
    }
}
