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

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use jarvis_core::text::code as code_span;
use regex::Regex;

use crate::analyze::{Analysis, Command, ProgramRef, basename, normalize_path, resolve};
use crate::guardrails::Breach;
use crate::shell::{self, Context, Invocation, RedirectOp, Script, Word};

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

// ---- words spelt at run time -------------------------------------------

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
fn run_time_words(call: &Call, r: &mut Reading) {
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

fn escape_double(v: &str) -> String {
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
fn balanced(text: &str, open: char, close: char) -> Option<usize> {
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
fn every_process(args: &[&str]) -> bool {
    args.iter().any(|a| match a.strip_prefix('-') {
        Some(short) => {
            !short.starts_with('-')
                && (short.contains(['e', 'A']) || (short.contains('a') && short.contains('x')))
        }
        None => a.contains('a') && a.contains('x') && a.chars().all(|c| c.is_ascii_alphabetic()),
    })
}

/// `printf FORMAT ARGS` with `%s`-like directives filled in order.
fn printf(format: &str, args: &[&str]) -> String {
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
fn as_if_destroyers(call: &Call, r: &mut Reading) {
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
fn unknown_runner(call: &Call, r: &mut Reading) {
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

/// A line of a program and words as written.
fn line(program: &str, args: &[Word]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.raw);
    }
    s
}

fn line_of(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a text as one shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quoted_line(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

// ---- code in other languages ---------------------------------------------

fn is_interpreter(stem: &str) -> bool {
    matches!(
        stem,
        "python"
            | "pypy"
            | "perl"
            | "ruby"
            | "irb"
            | "node"
            | "nodejs"
            | "deno"
            | "bun"
            | "php"
            | "lua"
            | "luajit"
            | "tclsh"
            | "wish"
            | "Rscript"
            | "julia"
            | "expect"
            | "osascript"
            | "jshell"
            | "groovy"
            | "scala"
            | "elixir"
            | "erl"
            | "guile"
            | "racket"
            | "sbcl"
            | "clisp"
    )
}

/// Shells as the readings know them (the knowledge base's `sh` family).
pub(crate) fn is_shell(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash"
            | "dash"
            | "zsh"
            | "ksh"
            | "ash"
            | "mksh"
            | "rbash"
            | "fish"
            | "csh"
            | "tcsh"
            | "yash"
            | "posh"
            | "busybox"
    )
}

/// Programs whose arguments or input are code they run.
fn is_runner(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    is_shell(name) || matches!(name, "eval" | "source" | ".") || is_interpreter(stem)
}

/// Inline code, code on standard input: what it calls is read for shell
/// lines and destructive library calls.
fn interpreter(name: &str, call: &Call, r: &mut Reading) {
    let mut codes: Vec<&str> = call
        .args
        .iter()
        .filter(|a| a.literal)
        .map(|a| a.text.as_str())
        .collect();
    if let Input::Text(w) = call.stdin
        && w.literal
    {
        codes.push(&w.text);
    }
    for code in codes {
        read_code(name, code, 0, r);
    }
}

/// Recursive library calls that delete a tree: each is `rm -rf` of the
/// path it is given.
static TREE_DELETE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(rmtree|rm_rf|rm_r|remove_tree|rmSync|rmdirSync|rimraf|RemoveAll|remove_dir_all|remove_dir|remove_entry|remove_entry_secure|removeSync|emptyDirSync|emptyDir|removedirs|deleteRecursively|delete_tree)\b|\.(rm|rmdir|remove)\s*\(",
    )
    .expect("the tree deletion pattern is valid")
});

/// Library calls that delete one file: `rm -f` of the path they are given.
static FILE_DELETE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(unlink|unlinkSync|remove|rm_f|safe_unlink|delete)\b")
        .expect("the file deletion pattern is valid")
});

static PERMISSIONS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(chmod_R|chown_R|chmod|chown|lchown|chmodSync|chownSync|lchownSync)\b")
        .expect("the permission pattern is valid")
});

static KILL_CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bkill(pg)?\b").expect("the kill pattern is valid"));

static MINUS_ONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\w.\-])-\s*1([^\w.]|$)").expect("the minus-one pattern is valid")
});

/// Signs that code opens a file for writing.
static WRITE_MODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"["'](w|wb|w\+|wb\+|w\+b|a|ab|a\+|r\+|rb\+|r\+b|\+?>{1,2})["']|O_WRONLY|O_RDWR|O_TRUNC|writeFile|WriteStream|file_put_contents|File\.write|IO\.write|IO\.binwrite|write_bytes|write_text|syswrite"#,
    )
    .expect("the write mode pattern is valid")
});

/// Calls that run or evaluate text as code.
static EVALUATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(exec|eval|system|popen|spawn|execSync|spawnSync|execFile|execFileSync|Function|compile|passthru|shell_exec|proc_open|assert|instance_eval|class_eval|module_eval|loadstring|load|dofile|execute|check_output|check_call|getoutput|getstatusoutput|run|call|Popen|qx)\b",
    )
    .expect("the evaluator pattern is valid")
});

/// Library calls that decode or unscramble text.
static DECODER_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"b64decode|b32decode|b16decode|a85decode|b85decode|decodebytes|decodestring|decode_base64|base64_decode|decode64|urlsafe_b64decode|\bunpack\b|\bpack\s*\(?\s*["'][Hh]|fromhex|unhexlify|\batob\b|from\([^)]*["'](base64|hex)["']|decompress|\binflate|gzinflate|gzuncompress|gzdecode|str_rot13|rot_?13|\[::-1\]|\breverse\b|\bstrrev\b|codecs\.decode|marshal\.loads|pickle\.loads|\bchr\s*\(|String\.fromCharCode|\btr\s*/|\by/"#,
    )
    .expect("the decoder pattern is valid")
});

/// How deep literal strings are read as code again (`exec("…")` in `-c`).
const MAX_CODE_DEPTH: usize = 3;

fn read_code(name: &str, code: &str, depth: usize, r: &mut Reading) {
    if depth > MAX_CODE_DEPTH || r.lines.len() >= MAX_LINES {
        return;
    }
    let lits = literals(code);
    // Every string that is a shell line is judged as one: `os.system("…")`,
    // `` `…` ``, `%x(…)`, whatever call takes it.
    for l in &lits {
        if !l.text.trim().is_empty() && l.text.len() <= 4096 {
            r.lines.push(l.text.clone());
        }
    }
    // Adjacent strings are an argument vector: `["rm", "-rf", "/"]`,
    // `system "rm", "-rf", "/"`; `execvp("rm", ["rm", …])` starts with
    // the file, so its tail is tried too.
    let mut group: Vec<&Literal> = Vec::new();
    let flush = |group: &mut Vec<&Literal>, r: &mut Reading| {
        if group.len() >= 2 {
            let words: Vec<String> = group.iter().map(|l| l.text.clone()).collect();
            r.lines.push(quoted_line(&words));
            if words.len() >= 3 {
                r.lines.push(quoted_line(&words[1..]));
            }
        }
        group.clear();
    };
    for l in lits.iter().filter(|l| !l.shell) {
        let joined = group.last().is_some_and(|prev| {
            code.get(prev.end..l.start).is_some_and(|between| {
                between
                    .chars()
                    .all(|c| c.is_whitespace() || ",[]".contains(c))
            })
        });
        if !joined {
            flush(&mut group, r);
        }
        group.push(l);
    }
    flush(&mut group, r);
    for m in TREE_DELETE.find_iter(code) {
        if let Some(l) = literal_after(code, &lits, m.end()) {
            r.lines.push(format!("rm -rf -- {}", quote(&l.text)));
        }
    }
    for m in FILE_DELETE.find_iter(code) {
        if let Some(l) = literal_after(code, &lits, m.end()) {
            r.lines.push(format!("rm -f -- {}", quote(&l.text)));
        }
    }
    for m in PERMISSIONS.find_iter(code) {
        let recursive = if m.as_str().ends_with("_R") {
            "-R "
        } else {
            ""
        };
        let window = statement_end(code, m.end());
        for l in lits
            .iter()
            .filter(|l| l.start >= m.end() && l.start < window)
        {
            r.lines
                .push(format!("chmod {recursive}000 -- {}", quote(&l.text)));
        }
    }
    for m in KILL_CALL.find_iter(code) {
        let end = statement_end(code, m.end());
        if let Some(args) = code.get(m.end()..end)
            && MINUS_ONE.is_match(args)
        {
            r.lines.push("kill -9 -1".into());
        }
    }
    let writes = WRITE_MODE.is_match(code);
    for l in &lits {
        let path = l.text.trim_start_matches(['+', '>', '<', ' ']);
        let opened_for_writing = l.text.trim_start().starts_with(['>', '+']);
        if (path.starts_with("/dev/") || path.starts_with("/proc/sys"))
            && (writes || opened_for_writing)
        {
            r.lines.push(format!("tee -- {}", quote(path)));
        }
    }
    for m in EVALUATOR.find_iter(code) {
        let end = argument_end(code, m.end());
        if code
            .get(m.end()..end)
            .is_some_and(|args| DECODER_CALL.is_match(args))
        {
            r.hidden.push(format!(
                "{} runs code it decodes or unscrambles at run time ({})",
                code_span(name),
                code_span(&shell::truncate(code.get(m.start()..end).unwrap_or(""), 60))
            ));
            break;
        }
    }
    for l in &lits {
        if l.text.len() > 3 {
            read_code(name, &l.text, depth + 1, r);
        }
    }
}

/// A string literal in code.
#[derive(Debug)]
struct Literal {
    text: String,
    start: usize,
    end: usize,
    /// Backquotes, `qx`, `%x`: a shell command in Perl, Ruby and PHP.
    shell: bool,
}

/// The first literal after `from` in the same statement, close by.
fn literal_after<'l>(code: &str, lits: &'l [Literal], from: usize) -> Option<&'l Literal> {
    let end = statement_end(code, from).min(from + 120);
    lits.iter().find(|l| l.start >= from && l.start < end)
}

/// Where the statement that `from` is in ends: `;` or a line end.
fn statement_end(code: &str, from: usize) -> usize {
    code.get(from..)
        .and_then(|rest| rest.find([';', '\n']))
        .map_or(code.len(), |i| from + i)
}

/// Where the argument of a call starting at `from` ends: its closing
/// bracket, else the statement's end.
fn argument_end(code: &str, from: usize) -> usize {
    let Some(rest) = code.get(from..) else {
        return code.len();
    };
    let trimmed = rest.trim_start();
    if let Some(after) = trimmed.strip_prefix('(') {
        let start = from + (rest.len() - trimmed.len()) + 1;
        if let Some(len) = balanced(after, '(', ')') {
            return start + len;
        }
    }
    statement_end(code, from)
}

/// The string literals of code in any of the common languages: `'…'`,
/// `"…"`, triple quotes, backquotes, Perl's `q`/`qq`/`qx` and Ruby's
/// `%q`/`%Q`/`%x` with any delimiter. Escapes are undone.
fn literals(code: &str) -> Vec<Literal> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < 256 {
        let b = bytes[i];
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let quoted_op = if word_start {
            ["qx", "qq", "q", "%x", "%q", "%Q", "%w"]
                .iter()
                .find(|op| bytes[i..].starts_with(op.as_bytes()))
                .filter(|op| {
                    bytes
                        .get(i + op.len())
                        .is_some_and(|d| "({[</|!#".contains(char::from(*d)))
                })
        } else {
            None
        };
        if let Some(op) = quoted_op {
            let open = char::from(bytes[i + op.len()]);
            let close = match open {
                '(' => ')',
                '{' => '}',
                '[' => ']',
                '<' => '>',
                other => other,
            };
            let body_start = i + op.len() + 1;
            let Some(len) = code[body_start..].find(close) else {
                break;
            };
            out.push(Literal {
                text: code[body_start..body_start + len].to_owned(),
                start: i,
                end: body_start + len + 1,
                shell: op.ends_with('x'),
            });
            i = body_start + len + 1;
            continue;
        }
        if !matches!(b, b'\'' | b'"' | b'`') {
            i += 1;
            continue;
        }
        let q = char::from(b);
        let triple: String = std::iter::repeat_n(q, 3).collect();
        let (body_start, closing) = if code[i..].starts_with(&triple) {
            (i + 3, triple.as_str())
        } else {
            (i + 1, &code[i..i + 1])
        };
        let mut j = body_start;
        let mut text = String::new();
        let mut end = None;
        while j < bytes.len() {
            if code[j..].starts_with(closing) {
                end = Some(j);
                break;
            }
            let Some(c) = code[j..].chars().next() else {
                break;
            };
            if c == '\\' {
                let Some(next) = code[j + 1..].chars().next() else {
                    break;
                };
                match next {
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'x' => {
                        let hex = code.get(j + 2..j + 4).unwrap_or("");
                        match u8::from_str_radix(hex, 16) {
                            Ok(v) => {
                                text.push(char::from(v));
                                j += 2;
                            }
                            Err(_) => text.push('x'),
                        }
                    }
                    other => text.push(other),
                }
                j += 1 + next.len_utf8();
                continue;
            }
            text.push(c);
            j += c.len_utf8();
        }
        let Some(end) = end else {
            break;
        };
        out.push(Literal {
            text,
            start: i,
            end: end + closing.len(),
            shell: q == '`',
        });
        i = end + closing.len();
    }
    out
}

// ---- shells, xargs, find -----------------------------------------------------

/// `sh -c 'rm -rf "$1"' _ /`: the string with its positional parameters
/// given the words after it.
fn shell_positionals(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut command_mode = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !(t.starts_with('-') || t.starts_with('+')) || t.len() < 2 {
            break;
        }
        if matches!(t, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file") {
            i += 1;
        } else if !t.starts_with("--") && t[1..].contains('c') {
            command_mode = true;
        }
        i += 1;
    }
    if !command_mode {
        return;
    }
    let Some((script, params)) = args.get(i..).and_then(<[Word]>::split_first) else {
        return;
    };
    if !script.literal || params.is_empty() || !script.text.contains('$') {
        return;
    }
    let params: Vec<String> = params.iter().map(|p| p.text.clone()).collect();
    r.lines.push(give_positionals(&script.text, &params));
}

/// Replaces `$0`…`$9`, `$@` and `$*` in shell text by the given words,
/// quoted for where they stand.
fn give_positionals(script: &str, params: &[String]) -> String {
    let chars: Vec<char> = script.chars().collect();
    let mut out = String::new();
    let mut in_double = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' if !in_double => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map_or(chars.len(), |p| i + 2 + p);
                out.extend(&chars[i..close]);
                i = close;
            }
            '\\' => {
                let end = (i + 2).min(chars.len());
                out.extend(&chars[i..end]);
                i = end;
            }
            '"' => {
                in_double = !in_double;
                out.push('"');
                i += 1;
            }
            '$' => {
                let (name, len) = match (chars.get(i + 1), chars.get(i + 2), chars.get(i + 3)) {
                    (Some('{'), Some(n), Some('}')) => (*n, 4),
                    (Some(n), _, _) => (*n, 2),
                    _ => (' ', 1),
                };
                let values: Vec<&String> = match name {
                    '0'..='9' => {
                        let k = name as usize - '0' as usize;
                        params.get(k).into_iter().collect()
                    }
                    '@' | '*' => params.iter().skip(1).collect(),
                    _ => {
                        out.push('$');
                        i += 1;
                        continue;
                    }
                };
                let text: Vec<String> = values
                    .iter()
                    .map(|v| {
                        if in_double {
                            escape_double(v)
                        } else {
                            quote(v)
                        }
                    })
                    .collect();
                out.push_str(&text.join(" "));
                i += len;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

/// What an earlier command of a pipeline prints, as far as `xargs` cares:
/// the paths `find` starts from (it prints each first), and every process
/// for a listing of them (`-1`, to `kill`).
fn piped_items(up: &[Vec<Word>]) -> Vec<String> {
    let mut items = Vec::new();
    for words in up {
        let Some((first, args)) = words.split_first() else {
            continue;
        };
        let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        match basename(&first.text) {
            "find" => items.extend(find_starts(args)),
            "ps" if every_process(&texts) => items.push("-1".into()),
            "pgrep" | "pidof" if texts.iter().any(|t| matches!(*t, "." | ".*" | "^")) => {
                items.push("-1".into())
            }
            _ => {}
        }
    }
    items
}

/// The paths `find` starts from (the working directory when none).
fn find_starts(args: &[Word]) -> Vec<String> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-H" | "-L" | "-P") || t.starts_with("-O") {
            i += 1;
            continue;
        }
        if t == "-D" {
            i += 2;
            continue;
        }
        if t.starts_with('-') || t == "(" || t == "!" {
            break;
        }
        starts.push(args[i].raw.clone());
        i += 1;
    }
    if starts.is_empty() {
        starts.push(".".into());
    }
    starts
}

/// `echo / | xargs rm -rf`, `find / | xargs -0 rm -rf`,
/// `xargs -I{} sh -c 'rm -rf {}' <<< /etc`: the command with the items it
/// would be handed.
fn xargs(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut replace: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') || t == "-" {
            break;
        }
        match t {
            "-I" => {
                replace = args.get(i + 1).map(|a| a.text.clone());
                i += 2;
                continue;
            }
            "-i" | "--replace" => replace = Some("{}".into()),
            "-a" | "--arg-file" | "-d" | "--delimiter" | "-E" | "-L" | "--max-lines" | "-n"
            | "--max-args" | "-P" | "--max-procs" | "-s" | "--max-chars" => {
                i += 2;
                continue;
            }
            _ => {
                if let Some(v) = t.strip_prefix("--replace=") {
                    replace = Some(v.to_owned());
                } else if let Some(v) = t.strip_prefix("-I") {
                    replace = Some(v.to_owned());
                } else if let Some(v) = t.strip_prefix("-i") {
                    replace = Some(if v.is_empty() {
                        "{}".into()
                    } else {
                        v.to_owned()
                    });
                }
            }
        }
        i += 1;
    }
    let rest = args.get(i..).unwrap_or(&[]);
    let items: Vec<String> = match call.stdin {
        Input::Text(w) if w.literal => w.text.split_whitespace().map(str::to_owned).collect(),
        Input::Pipe(up) => piped_items(up)
            .into_iter()
            .map(|s| s.trim_matches(['\'', '"']).to_owned())
            .collect(),
        _ => Vec::new(),
    };
    if items.is_empty() {
        return;
    }
    let command: Vec<String> = if rest.is_empty() {
        vec!["echo".into()]
    } else {
        rest.iter().map(|w| w.text.clone()).collect()
    };
    match replace {
        Some(pattern) if !pattern.is_empty() => {
            for item in items.iter().take(8) {
                let words: Vec<String> =
                    command.iter().map(|w| w.replace(&pattern, item)).collect();
                r.lines.push(quoted_line(&words));
            }
        }
        _ => {
            let mut words = command;
            words.extend(items.into_iter().take(64));
            r.lines.push(quoted_line(&words));
        }
    }
}

/// `find / -exec sh -c '…' _ {} \;`: each command `-exec` runs, with `{}`
/// given each path `find` starts from (the first it finds).
fn find_exec(call: &Call, r: &mut Reading) {
    let args = call.args;
    let starts = find_starts(args);
    let mut i = 0;
    while i < args.len() {
        if matches!(
            args[i].text.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            let end = args[i + 1..]
                .iter()
                .position(|w| matches!(w.text.as_str(), ";" | "+"))
                .map_or(args.len(), |p| i + 1 + p);
            let argv = &args[i + 1..end];
            if argv.iter().any(|w| w.text.contains("{}")) {
                for start in starts.iter().take(8) {
                    let start = start.trim_matches(['\'', '"']);
                    let words: Vec<String> =
                        argv.iter().map(|w| w.text.replace("{}", start)).collect();
                    r.lines.push(quoted_line(&words));
                }
            }
            i = end;
        }
        i += 1;
    }
}

// ---- tools' mini-languages ---------------------------------------------------

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
fn git(texts: &[&str], r: &mut Reading) {
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
fn vim(call: &Call, r: &mut Reading) {
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
fn emacs(texts: &[&str], r: &mut Reading) {
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
fn gdb(texts: &[&str], r: &mut Reading) {
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
fn make(call: &Call, r: &mut Reading) {
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
fn capsh(call: &Call, r: &mut Reading) {
    if let Some(i) = call.args.iter().position(|a| a.text == "--") {
        r.lines.push(line("bash", &call.args[i + 1..]));
    }
}

/// `wipe -rf /home`, `srm -r /etc`: secure deleters are `rm` by another
/// name.
fn secure_delete(call: &Call, r: &mut Reading) {
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
fn ddrescue(call: &Call, r: &mut Reading) {
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
fn set_positionals(texts: &[&str], r: &mut Reading) {
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

// ---- containers with the host's directories ---------------------------------

/// `docker run` options that take a value as the next word.
const RUN_VALUE_OPTIONS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--annotation",
    "--blkio-weight",
    "--cap-add",
    "--cap-drop",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "-c",
    "--cpu-shares",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--device",
    "--device-cgroup-rule",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--env-file",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-timeout",
    "-h",
    "--hostname",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "-l",
    "--label",
    "--label-file",
    "--link",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-swap",
    "--mount",
    "--name",
    "--network",
    "--net",
    "--network-alias",
    "--pid",
    "--platform",
    "-p",
    "--publish",
    "--pull",
    "--restart",
    "--runtime",
    "--security-opt",
    "--shm-size",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "-u",
    "--user",
    "--ulimit",
    "--userns",
    "--uts",
    "-v",
    "--volume",
    "--volumes-from",
    "-w",
    "--workdir",
    "--pod",
    "--secret",
    "--arch",
    "--os",
];

/// Global options of the container CLIs that take a value.
const GLOBAL_VALUE_OPTIONS: &[&str] = &[
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
    "--url",
    "--connection",
    "--root",
    "--runroot",
    "--namespace",
    "-n",
    "--storage-driver",
    "--cgroup-manager",
];

/// `docker run -v /:/host alpine rm -rf /host`: what the container runs,
/// with each writable bind mount's container path mapped back to the
/// host's; with `--privileged` the host's devices are the container's, and
/// with `--pid=host` too, what it runs may reach the host whole.
fn container_run(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut i = 0;
    while i < args.len() && args[i].text.starts_with('-') {
        if GLOBAL_VALUE_OPTIONS.contains(&args[i].text.as_str()) {
            i += 1;
        }
        i += 1;
    }
    match args.get(i).map(|a| a.text.as_str()) {
        Some("run") => i += 1,
        Some("container") if args.get(i + 1).is_some_and(|a| a.text == "run") => i += 2,
        _ => return,
    }
    let mut mounts: Vec<(String, String)> = Vec::new();
    let mut privileged = false;
    let mut host_pid = false;
    let mut entrypoint: Option<String> = None;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') {
            break;
        }
        let (name, value) = match t.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (t, None),
        };
        let value = if value.is_none() && RUN_VALUE_OPTIONS.contains(&name) {
            i += 1;
            args.get(i).map(|a| a.text.clone())
        } else {
            value
        };
        match (name, value) {
            ("-v" | "--volume", Some(v)) => {
                let parts: Vec<&str> = v.split(':').collect();
                if let [src, dst, rest @ ..] = parts.as_slice()
                    && src.starts_with('/')
                    && !rest
                        .iter()
                        .any(|o| o.split(',').any(|o| o == "ro" || o == "readonly"))
                {
                    mounts.push(((*src).to_owned(), (*dst).to_owned()));
                }
            }
            ("--mount", Some(v)) => {
                let mut src = None;
                let mut dst = None;
                let mut read_only = false;
                for part in v.split(',') {
                    match part.split_once('=') {
                        Some(("source" | "src", s)) => src = Some(s.to_owned()),
                        Some(("target" | "dst" | "destination", d)) => dst = Some(d.to_owned()),
                        Some(("readonly" | "ro", "true" | "1")) => read_only = true,
                        None if matches!(part, "readonly" | "ro") => read_only = true,
                        _ => {}
                    }
                }
                if let (Some(s), Some(d)) = (src, dst)
                    && s.starts_with('/')
                    && !read_only
                {
                    mounts.push((s, d));
                }
            }
            ("--privileged", _) => privileged = true,
            ("--pid", Some(v)) if v == "host" => host_pid = true,
            ("--entrypoint", Some(v)) => entrypoint = Some(v),
            _ => {}
        }
        i += 1;
    }
    // The image, then what it runs.
    let Some(command) = args.get(i + 1..) else {
        return;
    };
    let mut words: Vec<String> = entrypoint.into_iter().collect();
    words.extend(command.iter().map(|w| w.text.clone()));
    if words.is_empty() {
        return;
    }
    if privileged && host_pid {
        r.lines.push(quoted_line(&words));
    }
    if privileged {
        mounts.push(("/dev".into(), "/dev".into()));
        mounts.push(("/proc/sysrq-trigger".into(), "/proc/sysrq-trigger".into()));
    }
    let mut mapped_any = false;
    let mapped: Vec<String> = words
        .iter()
        .map(|w| {
            let m = map_mounts(w, &mounts);
            mapped_any |= m != *w || mounts.iter().any(|(s, d)| s == d && w.contains(d.as_str()));
            m
        })
        .collect();
    if mapped_any {
        r.lines.push(quoted_line(&mapped));
    }
}

/// Replaces each container path that starts a path in `word` by the host
/// path mounted there.
fn map_mounts(word: &str, mounts: &[(String, String)]) -> String {
    let mut out = word.to_owned();
    for (src, dst) in mounts {
        let dst = dst.trim_end_matches('/');
        if dst.is_empty() || src == dst {
            continue;
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(dst) {
            let before = rest[..at].chars().last();
            let after = rest[at + dst.len()..].chars().next();
            let starts = before.is_none_or(|c| " \t'\"=:;(&|".contains(c));
            let ends = after.is_none_or(|c| "/ \t'\";*)&|".contains(c));
            result.push_str(&rest[..at]);
            if starts && ends {
                let src = if after == Some('/') {
                    src.trim_end_matches('/')
                } else {
                    src.as_str()
                };
                result.push_str(src);
            } else {
                result.push_str(dst);
            }
            rest = &rest[at + dst.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

// ---- code behind a decoder ---------------------------------------------------

/// Whether the words of a command decode or unscramble text, and how it is
/// written for a reason.
fn decoder(words: &[Word]) -> Option<String> {
    let (first, args) = words.split_first()?;
    let name = basename(&first.text);
    let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    let short = |c: char| {
        texts
            .iter()
            .any(|t| t.starts_with('-') && !t.starts_with("--") && t[1..].contains(c))
    };
    let has = |s: &str| texts.contains(&s);
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let decodes = match name {
        "base64" | "base32" | "basenc" | "b64" | "base58" => {
            short('d') || short('D') || has("--decode")
        }
        "xxd" => short('r') || has("--revert"),
        "openssl" => texts
            .iter()
            .any(|t| matches!(*t, "-d" | "-decrypt" | "--decrypt")),
        "gzip" | "bzip2" | "xz" | "lzma" | "zstd" | "lz4" | "brotli" | "pigz" | "pbzip2"
        | "lzip" | "lzop" | "compress" => short('d') || has("--decompress") || has("--uncompress"),
        "gunzip" | "zcat" | "gzcat" | "bzcat" | "bunzip2" | "xzcat" | "unxz" | "unlzma"
        | "lzcat" | "zstdcat" | "unzstd" | "lz4cat" | "unlz4" | "uncompress" | "unpigz"
        | "uudecode" | "rev" | "tac" | "iconv" | "recode" => true,
        "tr" => texts.iter().filter(|t| !t.starts_with('-')).count() >= 2,
        "printf" => texts.iter().any(|t| ESCAPED.is_match(t)),
        "echo" => short('e') && texts.iter().any(|t| ESCAPED.is_match(t)),
        "gpg" | "gpg2" | "age" | "rage" => short('d') || has("--decrypt"),
        "sed" => texts
            .iter()
            .any(|t| t.starts_with("y/") || t.contains(";y/")),
        _ if is_interpreter(stem) => texts.iter().any(|t| DECODER_CALL.is_match(t)),
        _ => false,
    };
    decodes.then(|| {
        let shown: Vec<&str> = std::iter::once(name)
            .chain(texts.iter().copied().take(3))
            .collect();
        shell::truncate(&shown.join(" "), 40)
    })
}

static ESCAPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(x[0-9a-fA-F]|[0-7]{2,3}|u[0-9a-fA-F]{2}|U[0-9a-fA-F]{4})")
        .expect("the escape pattern is valid")
});

/// Whether a runner reads the code it runs from standard input: no inline
/// code and no script file, or a script named `-` or `/dev/stdin`; under
/// `xargs`, what it reads becomes its arguments.
fn code_on_stdin(name: &str, call: &Call) -> bool {
    if call.via.last().is_some_and(|v| v.starts_with("xargs")) {
        return true;
    }
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    let mut i = 0;
    let args = call.args;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-" | "/dev/stdin" | "/proc/self/fd/0" | "/dev/fd/0") {
            return true;
        }
        if t == "--" || !(t.starts_with('-') || (t.starts_with('+') && is_shell(name))) {
            // A script file, or what `eval` and `source` are given.
            return false;
        }
        let inline = if is_shell(name) {
            !t.starts_with("--") && t[1..].contains('c')
        } else {
            matches!(
                t,
                "-c" | "-e" | "-E" | "-r" | "-R" | "-B" | "-F" | "-m" | "-p" | "--eval" | "--print"
            ) || (stem == "perl" && t.starts_with('-') && t.contains(['e', 'E']))
        };
        if inline {
            return false;
        }
        if is_shell(name) && t.contains('s') && !t.starts_with("--") {
            return true;
        }
        if matches!(
            t,
            "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file" | "-W" | "-X" | "-I" | "-M"
        ) {
            i += 1;
        }
        i += 1;
    }
    // Without words, `eval` and `source` run nothing.
    !matches!(name, "eval" | "source" | ".")
}

/// `echo … | base64 -d | sh`: a runner that reads its code from a decoder.
fn decoded_stdin(name: &str, call: &Call) -> Option<String> {
    if !is_runner(name) || !code_on_stdin(name, call) {
        return None;
    }
    let Input::Pipe(up) = call.stdin else {
        return None;
    };
    let d = up.iter().find_map(|w| decoder(w))?;
    Some(format!(
        "{} runs what {} decodes, so what it runs is hidden from review",
        code_span(name),
        code_span(&d)
    ))
}

/// `sh -c "$(echo … | base64 -d)"`, `bash <(xxd -r -p <<< …)`, `eval
/// $(rev <<< …)`, `$(… | base64 -d)`: an invocation that runs code and
/// takes a word from a substitution that decodes.
pub(crate) fn decoded_substitution(inv: &Invocation, script: &Script) -> Option<String> {
    let k = script
        .invocations
        .iter()
        .position(|x| std::ptr::eq(x, inv))?;
    let depth = inv.context.len();
    let mut d = None;
    for j in (0..k).rev() {
        let s = &script.invocations[j];
        let inside = s.context.len() > depth
            && s.context[..depth] == inv.context[..]
            && matches!(
                s.context[depth],
                Context::CommandSubstitution | Context::ProcessSubstitution
            );
        if !inside {
            break;
        }
        if d.is_none() {
            d = decoder(&s.words);
        }
    }
    let d = d?;
    let dynamic = inv.words.first().is_some_and(|w| !w.literal);
    let runner = inv
        .words
        .iter()
        .filter(|w| w.literal)
        .map(|w| basename(&w.text))
        .find(|n| is_runner(n));
    match (dynamic, runner) {
        (true, _) => Some(format!(
            "the program is whatever {} decodes, hidden from review",
            code_span(&d)
        )),
        (false, Some(r)) => Some(format!(
            "{} runs what {} decodes, so what it runs is hidden from review",
            code_span(r),
            code_span(&d)
        )),
        _ => None,
    }
}

// ---- the guardrails of this module -------------------------------------------

/// Runs this module's guardrails over the analysed line.
pub fn check(analysis: &Analysis, out: &mut Vec<Breach>) {
    for why in &analysis.obfuscated {
        out.push(Breach {
            guardrail: "obfuscated-code",
            why: why.clone(),
        });
    }
    decoded_files_run(&analysis.commands, out);
    for c in analysis.commands.iter().chain(&analysis.embedded) {
        check_command(c, out);
    }
}

/// The guardrails one command can breach by itself.
fn check_command(c: &Command, out: &mut Vec<Breach>) {
    let Some(name) = c.name() else {
        identity_files(c, "", out);
        return;
    };
    identity_files(c, name, out);
    pools(c, name, out);
    kill_by_user(c, name, out);
}

/// Files whose loss or clobbering stops anyone from logging in, or the
/// system from booting or running any program.
static IDENTITY_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(/etc/(passwd|shadow|group|gshadow|sudoers|fstab|crypttab|pam\.d/[^/]+)|/(usr/)?s?bin/(sh|bash|dash|sudo|su|init|login)|/(usr/)?lib/systemd/systemd|/(usr/)?lib(32|64|x32)?(/[a-z0-9_]+-linux-gnu[a-z0-9_]*)?/(ld-linux[^/]*\.so[^/]*|libc\.so\.6|ld-[0-9.]+\.so))$",
    )
    .expect("the identity file pattern is valid")
});

/// Sources whose copy is no content at all.
const EMPTY_SOURCES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/full",
];

fn operands(args: &[Word], value_options: &[&str]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut done = false;
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if !done && t == "--" {
            done = true;
        } else if !done && t.starts_with('-') && t.len() > 1 {
            if value_options.contains(&t) {
                i += 1;
            }
        } else {
            out.push(args[i].clone());
        }
        i += 1;
    }
    out
}

/// The absolute paths a word can name for a command: as written, with
/// the line's variables, joined onto each directory it may run in.
fn paths_of(w: &Word, c: &Command) -> Vec<String> {
    let mut texts = vec![w.text.clone()];
    if !w.literal {
        texts.push(w.skeleton.clone());
        for (name, value) in &c.vars {
            for form in [format!("${{{name}}}"), format!("${name}")] {
                if w.text.contains(&form) {
                    texts.push(w.text.replace(&form, value));
                }
            }
        }
    }
    let mut out = Vec::new();
    for t in texts {
        let t = t.replace('"', "");
        if t.is_empty() {
            continue;
        }
        if t.starts_with('/') {
            out.push(normalize_path(&t));
        } else {
            out.extend(
                c.cwds
                    .iter()
                    .flatten()
                    .filter_map(|cwd| resolve(Some(cwd), &t)),
            );
        }
    }
    out
}

/// `> /etc/passwd`, `truncate -s0 /etc/shadow`, `cp /dev/null /etc/fstab`,
/// `rm -f /etc/passwd`, `ln -sf /dev/null /etc/passwd`.
fn identity_files(c: &Command, name: &str, out: &mut Vec<Breach>) {
    let mut clobbered: Vec<(Word, &str)> = Vec::new();
    for r in &c.redirects {
        if r.op == RedirectOp::Write {
            clobbered.push((r.target.clone(), "a redirection empties"));
        }
    }
    let short = |ch: char| {
        c.args.iter().any(|a| {
            a.text.starts_with('-') && !a.text.starts_with("--") && a.text[1..].contains(ch)
        })
    };
    match name {
        "truncate" => {
            for w in operands(&c.args, &["-s", "--size", "-r", "--reference"]) {
                clobbered.push((w, "`truncate` cuts"));
            }
        }
        "rm" | "unlink" | "shred" | "wipe" | "srm" => {
            for w in operands(
                &c.args,
                &["-n", "--iterations", "-s", "--size", "--random-source"],
            ) {
                clobbered.push((w, "deleting or shredding removes"));
            }
        }
        "tee" if !short('a') && !c.args.iter().any(|a| a.text == "--append") => {
            for w in operands(&c.args, &["--output-error"]) {
                clobbered.push((w, "`tee` overwrites"));
            }
        }
        "dd" => {
            for a in &c.args {
                if let Some(target) = a.text.strip_prefix("of=") {
                    clobbered.push((
                        Word {
                            text: target.to_owned(),
                            skeleton: a.skeleton.trim_start_matches("of=").to_owned(),
                            ..a.clone()
                        },
                        "`dd` overwrites",
                    ));
                }
            }
        }
        "cp" | "install" | "ln" => {
            let ops = operands(
                &c.args,
                &[
                    "-t",
                    "--target-directory",
                    "-m",
                    "--mode",
                    "-o",
                    "--owner",
                    "-g",
                    "--group",
                    "-S",
                    "--suffix",
                ],
            );
            if let Some((dest, sources)) = ops.split_last() {
                let empty = sources
                    .iter()
                    .any(|s| EMPTY_SOURCES.contains(&s.text.as_str()));
                let forced_link =
                    name == "ln" && (short('f') || c.args.iter().any(|a| a.text == "--force"));
                if empty || forced_link {
                    clobbered.push((dest.clone(), "replacing it with nothing empties"));
                }
            }
        }
        "mv" => {
            let ops = operands(&c.args, &["-t", "--target-directory", "-S", "--suffix"]);
            if let Some((_, sources)) = ops.split_last() {
                for s in sources {
                    clobbered.push((s.clone(), "`mv` takes away"));
                }
            }
        }
        _ => {}
    }
    for (w, how) in clobbered {
        if let Some(p) = paths_of(&w, c)
            .into_iter()
            .find(|p| IDENTITY_FILE.is_match(p))
        {
            out.push(Breach {
                guardrail: "identity-files",
                why: format!(
                    "{how} {}, without which nobody can log in or the system cannot boot or run programs",
                    code_span(&p)
                ),
            });
        }
    }
}

/// `zfs destroy -r`, `docker system prune --volumes`, `docker volume prune
/// -a`, `lvremove VG`, `vgremove`, `pvremove`.
fn pools(c: &Command, name: &str, out: &mut Vec<Breach>) {
    let texts: Vec<&str> = c.args.iter().map(|a| a.text.as_str()).collect();
    let short = |ch: char| {
        texts
            .iter()
            .any(|t| t.starts_with('-') && !t.starts_with("--") && t[1..].contains(ch))
    };
    let positionals: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| !t.starts_with('-'))
        .collect();
    let mut push = |why: String| {
        out.push(Breach {
            guardrail: "pool-destroy",
            why,
        });
    };
    match name {
        "zfs" if positionals.first() == Some(&"destroy") && (short('r') || short('R')) => {
            if let Some(d) = positionals[1..].iter().find(|d| !d.contains('@')) {
                push(format!(
                    "{} destroys the dataset with every child, snapshot and clone under it",
                    code_span(&format!("zfs destroy -r {d}"))
                ));
            }
        }
        "docker" | "podman" | "nerdctl" => {
            let mut i = 0;
            while i < texts.len() && texts[i].starts_with('-') {
                if GLOBAL_VALUE_OPTIONS.contains(&texts[i]) {
                    i += 1;
                }
                i += 1;
            }
            let sub: Vec<&str> = texts
                .get(i..)
                .unwrap_or(&[])
                .iter()
                .copied()
                .filter(|t| !t.starts_with('-'))
                .take(2)
                .collect();
            let all = short('a') || texts.contains(&"--all");
            match sub.as_slice() {
                ["system", "prune", ..]
                    if texts
                        .iter()
                        .any(|t| *t == "--volumes" || t.starts_with("--volumes=")) =>
                {
                    push(format!(
                        "{} deletes volumes and the data in them",
                        code_span(&format!("{name} system prune --volumes"))
                    ))
                }
                ["volume", "prune", ..] if all => push(format!(
                    "{} deletes every volume no container uses, named ones too",
                    code_span(&format!("{name} volume prune -a"))
                )),
                ["volume", "rm" | "remove", ..]
                    if c.args
                        .iter()
                        .any(|a| a.raw.contains("volume ls") || a.raw.contains("volume list")) =>
                {
                    push(format!(
                        "{} deletes every volume",
                        code_span(&format!("{name} volume rm $({name} volume ls …)"))
                    ))
                }
                _ => {}
            }
        }
        "lvremove" => {
            for p in &positionals {
                let rest = p.strip_prefix("/dev/").unwrap_or(p);
                if !rest.contains('/') && !rest.is_empty() {
                    push(format!(
                        "{} deletes every logical volume of the volume group",
                        code_span(&format!("lvremove {p}"))
                    ));
                }
            }
        }
        "vgremove"
            if !texts
                .iter()
                .any(|t| matches!(*t, "--help" | "-h" | "--version")) =>
        {
            push("`vgremove` deletes a volume group and every volume in it".into());
        }
        "pvremove"
            if !texts
                .iter()
                .any(|t| matches!(*t, "--help" | "-h" | "--version")) =>
        {
            push("`pvremove` wipes the LVM label of a disk and what depends on it".into());
        }
        _ => {}
    }
}

/// `pkill -u root`, `killall -u root`: every process of root, init's
/// services with them.
fn kill_by_user(c: &Command, name: &str, out: &mut Vec<Breach>) {
    if !matches!(name, "pkill" | "killall" | "skill" | "slay") {
        return;
    }
    let mut users = Vec::new();
    let mut patterns = 0;
    let mut i = 0;
    let args = &c.args;
    while i < args.len() {
        let t = args[i].text.as_str();
        if matches!(t, "-u" | "-U" | "--euid" | "--uid" | "--user") {
            users.extend(args.get(i + 1).map(|a| a.text.clone()));
            i += 2;
            continue;
        }
        if let Some(v) = ["--euid=", "--uid=", "--user="]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .or_else(|| t.strip_prefix("-u").filter(|v| !v.is_empty()))
            .or_else(|| t.strip_prefix("-U").filter(|v| !v.is_empty()))
        {
            users.push(v.to_owned());
        } else if matches!(
            t,
            "-s" | "--signal"
                | "-g"
                | "--pgroup"
                | "-G"
                | "--group"
                | "-P"
                | "--parent"
                | "-t"
                | "--terminal"
                | "--ns"
                | "--nslist"
                | "-F"
                | "--pidfile"
                | "-o"
                | "--older-than"
                | "-y"
                | "--younger-than"
                | "-c"
                | "--context"
        ) {
            i += 1;
        } else if !t.starts_with('-') {
            patterns += 1;
        }
        i += 1;
    }
    let root = users
        .iter()
        .any(|u| u.split(',').any(|u| u == "root" || u == "0"));
    if root && patterns == 0 {
        out.push(Breach {
            guardrail: "kill-all",
            why: format!(
                "{} with no name kills every process of root, the system's services with them",
                code_span(&format!("{name} -u root"))
            ),
        });
    }
}

/// `echo … | base64 -d > /tmp/x.sh && sh /tmp/x.sh`: a file a decoder
/// wrote, run as a script or program on the same line.
fn decoded_files_run(commands: &[Command], out: &mut Vec<Breach>) {
    let mut decoded: Vec<(String, String)> = Vec::new();
    for c in commands {
        let ProgramRef::Named { written, .. } = &c.program else {
            continue;
        };
        let mut words = vec![Word::literal(written)];
        words.extend(c.args.iter().cloned());
        let Some(d) = decoder(&words) else {
            continue;
        };
        let mut targets: Vec<Word> = c
            .redirects
            .iter()
            .filter(|r| r.op.writes())
            .map(|r| r.target.clone())
            .collect();
        for (i, a) in c.args.iter().enumerate() {
            if matches!(a.text.as_str(), "-o" | "-out" | "--output")
                && let Some(v) = c.args.get(i + 1)
            {
                targets.push(v.clone());
            }
        }
        for t in targets {
            for p in paths_of(&t, c) {
                decoded.push((p, d.clone()));
            }
        }
    }
    if decoded.is_empty() {
        return;
    }
    for c in commands {
        let ProgramRef::Named { name, written, .. } = &c.program else {
            continue;
        };
        let mut run: Vec<Word> = vec![Word::literal(written)];
        if is_runner(name) {
            run.extend(c.args.iter().find(|a| !a.text.starts_with('-')).cloned());
        }
        for w in run {
            for p in paths_of(&w, c) {
                if let Some((_, d)) = decoded.iter().find(|(f, _)| *f == p) {
                    out.push(Breach {
                        guardrail: "obfuscated-code",
                        why: format!(
                            "{} runs {}, which {} decoded on the same line, so what it runs is hidden from review",
                            code_span(name),
                            code_span(&p),
                            code_span(d)
                        ),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str) -> Word {
        Word::literal(t)
    }

    fn read_line(program: &str, args: &[&str]) -> Reading {
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

    #[test]
    fn literals_of_code() {
        let l = literals(r#"os.system("rm -rf /"); x = 'a\'b'; y = `id`; qx{ls}"#);
        let texts: Vec<(&str, bool)> = l.iter().map(|l| (l.text.as_str(), l.shell)).collect();
        assert_eq!(
            texts,
            vec![
                ("rm -rf /", false),
                ("a'b", false),
                ("id", true),
                ("ls", true)
            ]
        );
        assert!(literals("print('unterminated").is_empty());
        assert_eq!(literals(r#""""a"b""""#)[0].text, "a\"b");
    }

    #[test]
    fn code_is_read_for_destruction() {
        let r = read_line("python3", &["-c", "import shutil; shutil.rmtree('/etc')"]);
        assert!(r.lines.contains(&"rm -rf -- '/etc'".to_owned()), "{r:?}");
        let r = read_line(
            "node",
            &[
                "-e",
                r#"require("child_process").spawnSync("rm", ["-rf", "/"])"#,
            ],
        );
        assert!(r.lines.contains(&"'rm' '-rf' '/'".to_owned()), "{r:?}");
        let r = read_line("python3", &["-c", "import os; os.kill(-1, 9)"]);
        assert!(r.lines.contains(&"kill -9 -1".to_owned()), "{r:?}");
        let r = read_line("python3", &["-c", "import os; os.kill(-10, 9)"]);
        assert!(!r.lines.contains(&"kill -9 -1".to_owned()), "{r:?}");
        let r = read_line("python3", &["-c", r#"open("/dev/sda","wb").write(b"x")"#]);
        assert!(r.lines.contains(&"tee -- '/dev/sda'".to_owned()), "{r:?}");
        let r = read_line(
            "python3",
            &["-c", r#"print(open("/dev/sda","rb").read(512))"#],
        );
        assert!(!r.lines.iter().any(|l| l.starts_with("tee")), "{r:?}");
        let r = read_line(
            "python3",
            &["-c", r#"exec(__import__("base64").b64decode("eA=="))"#],
        );
        assert_eq!(r.hidden.len(), 1, "{r:?}");
        let r = read_line(
            "python3",
            &[
                "-c",
                "import base64,sys; print(base64.b64decode(sys.argv[1]))",
            ],
        );
        assert!(r.hidden.is_empty(), "{r:?}");
    }

    #[test]
    fn positional_parameters_of_a_shell_string() {
        assert_eq!(
            give_positionals(r#"rm -rf "$1" $0 '$1'"#, &["_".into(), "/".into()]),
            r#"rm -rf "/" '_' '$1'"#
        );
        let r = read_line("sh", &["-c", "rm -rf \"$@\"", "_", "/etc", "/usr"]);
        assert_eq!(r.lines, vec![r#"rm -rf "/etc /usr""#.to_owned()]);
    }

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

    #[test]
    fn containers_map_their_mounts_back() {
        let r = read_line(
            "docker",
            &["run", "-v", "/:/host", "alpine", "rm", "-rf", "/host"],
        );
        assert_eq!(r.lines, vec!["'rm' '-rf' '/'"]);
        let r = read_line(
            "docker",
            &["run", "--rm", "-v", "/:/host:ro", "alpine", "ls", "/host"],
        );
        assert!(r.lines.is_empty(), "{r:?}");
        let r = read_line(
            "docker",
            &[
                "run",
                "-v",
                "/srv/data:/data",
                "alpine",
                "rm",
                "-rf",
                "/data/x",
            ],
        );
        assert_eq!(r.lines, vec!["'rm' '-rf' '/srv/data/x'"]);
        let r = read_line(
            "docker",
            &[
                "run",
                "--mount",
                "type=bind,source=/,target=/h",
                "alpine",
                "sh",
                "-c",
                "rm -rf /h/*",
            ],
        );
        assert_eq!(r.lines, vec!["'sh' '-c' 'rm -rf /*'"]);
        assert_eq!(
            map_mounts("/hostile /host/etc", &[("/".into(), "/host".into())]),
            "/hostile /etc"
        );
    }

    #[test]
    fn decoders() {
        let d = |s: &str| decoder(&s.split(' ').map(w).collect::<Vec<_>>());
        assert!(d("base64 -d").is_some());
        assert!(d("base64 --decode").is_some());
        assert!(d("base64").is_none());
        assert!(d("xxd -r -p").is_some());
        assert!(d("xxd /bin/ls").is_none());
        assert!(d("tr a-z n-za-m").is_some());
        assert!(d("tr -d \\r").is_none());
        assert!(d("gzip -dc").is_some());
        assert!(d("gzip -c").is_none());
        assert!(d("rev").is_some());
        assert!(d("printf \\x72").is_some());
        assert!(d("printf %s\\n").is_none());
    }
}
