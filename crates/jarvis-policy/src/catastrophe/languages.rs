//! Code in other languages (`python3 -c`, `perl -e`, `node -e`, …): its
//! string literals and calls read for what they would destroy, kill or
//! hand to a shell.

use std::sync::LazyLock;

// Named so, because `code` is what this module calls the code it reads.
use jarvis_core::text::code as code_span;
use regex::Regex;

use crate::shell::{self};

use super::lines::{quote, quoted_line};
use super::run_time::balanced;
use super::{Call, Input, MAX_LINES, Reading};

pub(super) fn is_interpreter(stem: &str) -> bool {
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
pub(super) fn is_runner(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    is_shell(name) || matches!(name, "eval" | "source" | ".") || is_interpreter(stem)
}

/// Inline code, code on standard input: what it calls is read for shell
/// lines and destructive library calls.
pub(super) fn interpreter(name: &str, call: &Call, r: &mut Reading) {
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
pub(super) static DECODER_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"b64decode|b32decode|b16decode|a85decode|b85decode|decodebytes|decodestring|decode_base64|base64_decode|decode64|urlsafe_b64decode|\bunpack\b|\bpack\s*\(?\s*["'][Hh]|fromhex|unhexlify|\batob\b|from\([^)]*["'](base64|hex)["']|decompress|\binflate|gzinflate|gzuncompress|gzdecode|str_rot13|rot_?13|\[::-1\]|\breverse\b|\bstrrev\b|codecs\.decode|marshal\.loads|pickle\.loads|\bchr\s*\(|String\.fromCharCode|\btr\s*/|\by/"#,
    )
    .expect("the decoder pattern is valid")
});

/// How deep literal strings are read as code again (`exec("…")` in `-c`).
const MAX_CODE_DEPTH: usize = 3;

pub(super) fn read_code(name: &str, code: &str, depth: usize, r: &mut Reading) {
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
pub(super) struct Literal {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catastrophe::tests::read_line;

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
}
