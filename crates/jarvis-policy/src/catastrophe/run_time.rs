//! Words spelt at run time (`$a$b`, `$(echo rm)`, `${PATH:0:1}`) given the
//! values the line shows, and programs known only at run time or unknown
//! to the knowledge base read as the commands their words could be.

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use regex::Regex;

use crate::analyze::basename;
use crate::shell::{self, Word};

use super::lines::{line, line_of};
use super::{Call, Reading};

/// Values a variable is usually given by the system, for `${PATH:0:1}`:
/// each starts with `/`, which is what such spellings are after.
const SYSTEM_VALUES: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/root"),
    ("PWD", "/"),
    ("OLDPWD", "/"),
    ("SHELL", "/bin/bash"),
    ("MAIL", "/var/mail/root"),
];

/// `$a$b -rf /`, `"$(echo rm)" -rf /`, `rm -rf ${PATH:0:1}`: the line again
/// with each word the analysis could not read given the values the line
/// shows for it.
pub(super) fn run_time_words(call: &Call, r: &mut Reading) {
    let words: Vec<&Word> = std::iter::once(call.program).chain(call.args).collect();
    if words.iter().all(|w| w.literal) {
        return;
    }
    let mut any = false;
    let choices: Vec<Vec<String>> = words
        .iter()
        .map(|w| {
            if w.literal {
                return vec![w.raw.clone()];
            }
            let values = spell(&w.raw, call.vars);
            any |= values.iter().any(|v| *v != w.raw);
            values
        })
        .collect();
    if !any {
        return;
    }
    let most = choices.iter().map(Vec::len).max().unwrap_or(1).min(8);
    for k in 0..most {
        let l: Vec<&str> = choices
            .iter()
            .map(|c| c[k.min(c.len() - 1)].as_str())
            .collect();
        r.lines.push(l.join(" "));
    }
}

/// The spellings a raw word can have once its expansions are given the
/// values the line shows (at most 8); the word itself when none is known.
fn spell(raw: &str, vars: &[(String, String)]) -> Vec<String> {
    // `"$@"` and `"${a[@]}"` are each element as a word of its own.
    let trimmed = raw.trim_matches('"');
    if raw.starts_with('"')
        && raw.ends_with('"')
        && raw.len() >= 2
        && let Some(values) = whole_list(trimmed, vars)
    {
        return values;
    }
    let mut out = vec![String::new()];
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    let mut in_double = false;
    let mut any = false;
    let push = |out: &mut Vec<String>, s: &str| {
        for o in out.iter_mut() {
            o.push_str(s);
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let end = (i + 2).min(chars.len());
                push(&mut out, &chars[i..end].iter().collect::<String>());
                i = end;
            }
            '\'' if !in_double => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map_or(chars.len(), |p| i + 2 + p);
                push(&mut out, &chars[i..close].iter().collect::<String>());
                i = close;
            }
            '"' => {
                in_double = !in_double;
                push(&mut out, "\"");
                i += 1;
            }
            '$' | '`' => {
                let (len, values) = expansion(&chars[i..], vars);
                let written: String = chars[i..i + len.max(1)].iter().collect();
                if values.is_empty() {
                    push(&mut out, &written);
                } else {
                    any = true;
                    let mut next = Vec::new();
                    for o in &out {
                        for v in &values {
                            if next.len() < 8 {
                                let v = if in_double {
                                    escape_double(v)
                                } else {
                                    v.clone()
                                };
                                next.push(format!("{o}{v}"));
                            }
                        }
                    }
                    out = next;
                }
                i += len.max(1);
            }
            other => {
                push(&mut out, &other.to_string());
                i += 1;
            }
        }
    }
    if any { out } else { vec![raw.to_owned()] }
}

/// `$@`, `${a[@]}`: a list whose elements become words of their own.
fn whole_list(inner: &str, vars: &[(String, String)]) -> Option<Vec<String>> {
    let name = match inner {
        "$@" | "$*" | "${@}" | "${*}" => "@",
        _ => inner
            .strip_prefix("${")
            .and_then(|s| s.strip_suffix("[@]}").or_else(|| s.strip_suffix("[*]}")))?,
    };
    let values = values_of(name, vars);
    (!values.is_empty()).then_some(values)
}

fn values_of(name: &str, vars: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> = vars
        .iter()
        .rev()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .collect();
    v.dedup();
    v.truncate(4);
    v
}

pub(super) fn escape_double(v: &str) -> String {
    let mut s = String::new();
    for c in v.chars() {
        if matches!(c, '"' | '$' | '`' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// The length of the expansion at the start of `chars` and the values it
/// can have (none when unknown).
fn expansion(chars: &[char], vars: &[(String, String)]) -> (usize, Vec<String>) {
    let text: String = chars.iter().collect();
    if let Some(rest) = text.strip_prefix("$(")
        && !rest.starts_with('(')
    {
        let Some(len) = balanced(rest, '(', ')') else {
            return (chars.len(), Vec::new());
        };
        let inner = &rest[..len];
        return (
            inner.chars().count() + 3,
            substitution_output(inner).into_iter().collect(),
        );
    }
    if let Some(rest) = text.strip_prefix('`') {
        let Some(end) = rest.find('`') else {
            return (chars.len(), Vec::new());
        };
        let inner = &rest[..end];
        return (
            inner.chars().count() + 2,
            substitution_output(inner).into_iter().collect(),
        );
    }
    if let Some(rest) = text.strip_prefix("${") {
        let Some(len) = balanced(rest, '{', '}') else {
            return (chars.len(), Vec::new());
        };
        let inner = &rest[..len];
        return (inner.chars().count() + 3, parameter(inner, vars));
    }
    if let Some(rest) = text.strip_prefix('$') {
        let name: String = match rest.chars().next() {
            Some(c @ ('@' | '*' | '0'..='9')) => c.to_string(),
            _ => rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect(),
        };
        if name.is_empty() {
            return (1, Vec::new());
        }
        return (name.chars().count() + 1, values_of(&name, vars));
    }
    (1, Vec::new())
}

/// The length of the text before the bracket that closes one already open.
pub(super) fn balanced(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

static SUBSTRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*):\s*([0-9]+)(?::\s*([0-9]+))?$")
        .expect("the substring pattern is valid")
});

static DEFAULTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*):?[-=+](.*)$").expect("the default pattern is valid")
});

/// The values of `${…}` with what is inside the braces.
fn parameter(inner: &str, vars: &[(String, String)]) -> Vec<String> {
    if let Some(caps) = SUBSTRING.captures(inner) {
        let name = &caps[1];
        let offset: usize = caps[2].parse().unwrap_or(0);
        let length: Option<usize> = caps.get(3).and_then(|m| m.as_str().parse().ok());
        let mut bases = values_of(name, vars);
        if let Some((_, v)) = SYSTEM_VALUES.iter().find(|(n, _)| *n == name) {
            bases.push((*v).to_owned());
        }
        return bases
            .iter()
            .map(|b| {
                let s = b.chars().skip(offset);
                match length {
                    Some(l) => s.take(l).collect(),
                    None => s.collect(),
                }
            })
            .collect();
    }
    if let Some(caps) = DEFAULTED.captures(inner) {
        let mut v = values_of(&caps[1], vars);
        v.push(caps[2].trim_matches(['"', '\'']).to_owned());
        return v;
    }
    let name = inner
        .strip_suffix("[@]")
        .or_else(|| inner.strip_suffix("[*]"))
        .or_else(|| inner.strip_suffix("[0]"))
        .unwrap_or(inner);
    values_of(name, vars)
}

/// What a command substitution prints, when the line shows it: `echo rm`,
/// `printf '\x72\x6d'`, `which rm`; a listing of every process stands for
/// `-1` (every process, to `kill`).
fn substitution_output(inner: &str) -> Option<String> {
    let script = shell::parse(inner, "a command substitution", 0).ok()?;
    let [inv] = script.invocations.as_slice() else {
        return None;
    };
    let words = &inv.words;
    let (first, args) = words.split_first()?;
    if !first.literal || !args.iter().all(|a| a.literal) {
        return None;
    }
    let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    match basename(&first.text) {
        "echo" => {
            let mut escapes = false;
            let mut rest = texts.as_slice();
            while let Some((f, tail)) = rest.split_first() {
                if matches!(*f, "-n" | "-e" | "-E" | "-ne" | "-en") {
                    escapes |= f.contains('e');
                    rest = tail;
                } else {
                    break;
                }
            }
            let joined = rest.join(" ");
            Some(if escapes {
                shell::decode_ansi_c(&joined)
            } else {
                joined
            })
        }
        "printf" => {
            let (format, rest) = texts.split_first()?;
            Some(printf(format, rest))
        }
        "which" | "type" | "whereis" | "readlink" | "realpath" => {
            texts.last().map(|t| basename(t).to_owned())
        }
        "command" if texts.first().is_some_and(|t| *t == "-v" || *t == "-V") => {
            texts.last().map(|t| basename(t).to_owned())
        }
        "ps" if every_process(&texts) => Some("-1".into()),
        "pgrep" | "pidof" if texts.iter().any(|t| matches!(*t, "." | ".*" | "^" | "")) => {
            Some("-1".into())
        }
        _ => None,
    }
}

/// Whether `ps` lists every process (`-e`, `-A`, `ax`, `aux`).
pub(super) fn every_process(args: &[&str]) -> bool {
    args.iter().any(|a| match a.strip_prefix('-') {
        Some(short) => {
            !short.starts_with('-')
                && (short.contains(['e', 'A']) || (short.contains('a') && short.contains('x')))
        }
        None => a.contains('a') && a.contains('x') && a.chars().all(|c| c.is_ascii_alphabetic()),
    })
}

/// `printf FORMAT ARGS` with `%s`-like directives filled in order.
pub(super) fn printf(format: &str, args: &[&str]) -> String {
    let format = shell::decode_ansi_c(format);
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('%') => out.push('%'),
                Some('b') => out.push_str(&shell::decode_ansi_c(args.next().unwrap_or(&""))),
                Some(_) => out.push_str(args.next().unwrap_or(&"")),
                None => out.push('%'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `$x -rf /`, `"$X" -R 777 /`: a program known only at run time whose
/// arguments would be catastrophic for a destroyer is judged as each
/// destroyer those arguments fit, and its arguments as a command of their
/// own (the program may be a wrapper such as `$SUDO`).
pub(super) fn as_if_destroyers(call: &Call, r: &mut Reading) {
    let args = call.args;
    let Some(first) = args.first() else {
        return;
    };
    if first.literal && !first.text.starts_with('-') {
        r.lines.push(line_of(args));
    }
    let short = |c: char| {
        args.iter().any(|a| {
            a.text.starts_with('-') && !a.text.starts_with("--") && a.text[1..].contains(c)
        })
    };
    let has = |s: &str| args.iter().any(|a| a.text == s);
    if short('r') || short('R') || has("--recursive") {
        for destroyer in ["rm", "chmod", "chown", "chgrp", "setfacl"] {
            r.lines.push(line(destroyer, args));
        }
    }
    if args.iter().any(|a| a.text.starts_with("of=")) {
        r.lines.push(line("dd", args));
    }
    if has("-delete") || has("-exec") || has("-execdir") {
        r.lines.push(line("find", args));
    }
    if args.iter().any(|a| a.text.starts_with("--del")) {
        r.lines.push(line("rsync", args));
    }
    let signal = first.text == "--"
        || first.text == "-s"
        || (first.text.len() > 1
            && first.text.starts_with('-')
            && first.text[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    if signal && args.len() > 1 {
        r.lines.push(line("kill", args));
    }
}

/// `fakeroot rm -rf /`, `cgexec -g cpu:slow rm -rf /`: a program the
/// knowledge base does not know may run the rest of its words, so they are
/// read as a command from its first operand on. An option's value read as
/// a program is unknown in turn and peels off the same way.
pub(super) fn unknown_runner(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') || t.len() < 2 {
            break;
        }
        i += 1;
    }
    if let Some(rest) = args.get(i..)
        && !rest.is_empty()
    {
        r.lines.push(line_of(rest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_time_spellings_are_given_the_values_the_line_shows() {
        let vars = vec![
            ("a".to_owned(), "r".to_owned()),
            ("b".to_owned(), "m".to_owned()),
        ];
        assert_eq!(spell("$a$b", &vars), vec!["rm"]);
        assert_eq!(spell("${x:-rm}", &[]), vec!["rm"]);
        assert_eq!(spell("\"$(echo rm)\"", &[]), vec!["\"rm\""]);
        assert_eq!(spell("$(printf '\\x72\\x6d')", &[]), vec!["rm"]);
        assert_eq!(spell("${PATH:0:1}", &[]), vec!["/"]);
        assert_eq!(spell("$(which rm)", &[]), vec!["rm"]);
        assert_eq!(spell("$(ps -eo pid=)", &[]), vec!["-1"]);
        assert_eq!(spell("$unknown", &[]), vec!["$unknown"]);
        assert_eq!(spell("'$a'", &vars), vec!["'$a'"]);
        let list = vec![("@".to_owned(), "rm -rf /".to_owned())];
        assert_eq!(spell("\"$@\"", &list), vec!["rm -rf /"]);
    }
}
