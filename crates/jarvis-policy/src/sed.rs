//! sed scripts read as GNU sed reads them, for what they do beyond editing
//! the text that streams past: the commands that run shell commands (`e`,
//! the `e` flag of `s`), write files (`w`, `W`, the `w` flag of `s`) or read
//! them (`r`, `R`), and scripts that come from a file.
//!
//! Pattern matching on the script text cannot do this: `s` takes any
//! character as its delimiter (`sqxqidqe` runs `id`), an address can use a
//! custom one (`\cxce id`), and a command letter takes its argument without
//! a space (`etouch x`). Whatever this reader cannot follow is reported as
//! unreadable, never as harmless.

use crate::script::ScriptEffects;

/// Reads the scripts of `sed ARGS` (the words after the program name, as
/// the program receives them).
pub fn effects(args: &[String]) -> ScriptEffects {
    let mut out = ScriptEffects::default();
    let mut scripts: Vec<&str> = Vec::new();
    let mut explicit = false;
    let mut operands = Vec::new();
    let mut options = true;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        i += 1;
        if !options || a == "-" || !a.starts_with('-') {
            operands.push(a);
            continue;
        }
        if a == "--" {
            options = false;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            // getopt_long takes any unambiguous prefix.
            let is = |full: &str, shortest: usize| name.len() >= shortest && full.starts_with(name);
            if is("expression", 1) {
                explicit = true;
                match value {
                    Some(v) => scripts.push(v),
                    None => {
                        scripts.extend(args.get(i).map(String::as_str));
                        i += 1;
                    }
                }
            } else if is("file", 1) {
                out.from_file = true;
                if value.is_none() {
                    i += 1;
                }
            } else if is("line-length", 2) && value.is_none() {
                i += 1;
            }
            continue;
        }
        for (at, c) in a.char_indices().skip(1) {
            let rest = &a[at + c.len_utf8()..];
            match c {
                'e' => {
                    explicit = true;
                    if rest.is_empty() {
                        scripts.extend(args.get(i).map(String::as_str));
                        i += 1;
                    } else {
                        scripts.push(rest);
                    }
                    break;
                }
                'f' => {
                    out.from_file = true;
                    if rest.is_empty() {
                        i += 1;
                    }
                    break;
                }
                'l' => {
                    if rest.is_empty() {
                        i += 1;
                    }
                    break;
                }
                // The rest is the backup suffix.
                'i' => break,
                _ => {}
            }
        }
    }
    if !explicit && let Some(first) = operands.first() {
        scripts.push(first);
    }
    // GNU sed joins the pieces of `-e` with newlines into one script, so a
    // command's text may go on in the next piece (`-e '1i\' -e 'text'`).
    let script: Vec<char> = scripts.join("\n").chars().collect();
    if command_list(&script, &mut out).is_none() {
        out.unreadable = true;
    }
    out
}

/// Reads a script's commands into `out`; `None` where it cannot follow.
fn command_list(s: &[char], out: &mut ScriptEffects) -> Option<()> {
    let mut i = 0;
    loop {
        while i < s.len() && (s[i].is_whitespace() || s[i] == ';') {
            i += 1;
        }
        if i >= s.len() {
            return Some(());
        }
        i = address(s, i)?;
        skip_blanks(s, &mut i);
        if s.get(i) == Some(&',') {
            i += 1;
            skip_blanks(s, &mut i);
            i = address(s, i)?;
            skip_blanks(s, &mut i);
        }
        while s.get(i) == Some(&'!') {
            i += 1;
            skip_blanks(s, &mut i);
        }
        let c = *s.get(i)?;
        i += 1;
        match c {
            '{' | '}' | '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'n' | 'N' | 'p' | 'P' | 'x'
            | 'z' | 'F' => {}
            'l' | 'L' | 'q' | 'Q' => {
                skip_blanks(s, &mut i);
                while s.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
            }
            '#' => skip_to(s, &mut i, &['\n']),
            ':' | 'b' | 't' | 'T' | 'v' => skip_to(s, &mut i, &['\n', ';']),
            'a' | 'i' | 'c' => {
                // Text to the end of the line; a backslash continues it.
                while i < s.len() && s[i] != '\n' {
                    i += if s[i] == '\\' { 2 } else { 1 };
                }
            }
            's' => {
                let delimiter = *s.get(i)?;
                if delimiter == '\n' || delimiter == '\\' {
                    return None;
                }
                i += 1;
                for _ in 0..2 {
                    i = delimited(s, i, delimiter)?;
                }
                while let Some(&f) = s.get(i) {
                    match f {
                        'g' | 'p' | 'i' | 'I' | 'm' | 'M' => i += 1,
                        d if d.is_ascii_digit() => i += 1,
                        'e' => {
                            out.runs.push(None);
                            i += 1;
                        }
                        'w' => {
                            // The file name is the rest of the line.
                            i += 1;
                            out.writes.push(rest_of_line(s, &mut i)?);
                        }
                        ';' | '\n' | '}' | '#' => break,
                        b if b.is_whitespace() => break,
                        _ => return None,
                    }
                }
            }
            'y' => {
                let delimiter = *s.get(i)?;
                i += 1;
                for _ in 0..2 {
                    i = delimited(s, i, delimiter)?;
                }
            }
            'r' | 'R' => out.reads.push(rest_of_line(s, &mut i)?),
            'w' | 'W' => out.writes.push(rest_of_line(s, &mut i)?),
            'e' => {
                let command = rest_of_line(s, &mut i).unwrap_or_default();
                out.runs.push((!command.is_empty()).then_some(command));
            }
            _ => return None,
        }
    }
}

/// The argument of a command that takes the rest of the line (a file name,
/// a shell command), blanks before it dropped; `None` when there is none.
fn rest_of_line(s: &[char], i: &mut usize) -> Option<String> {
    skip_blanks(s, i);
    let start = *i;
    skip_to(s, i, &['\n']);
    let text: String = s[start..*i].iter().collect();
    (!text.is_empty()).then_some(text)
}

fn skip_blanks(s: &[char], i: &mut usize) {
    while s.get(*i).is_some_and(|c| *c == ' ' || *c == '\t') {
        *i += 1;
    }
}

fn skip_to(s: &[char], i: &mut usize, ends: &[char]) {
    while s.get(*i).is_some_and(|c| !ends.contains(c)) {
        *i += 1;
    }
}

/// Past the text up to the next unescaped `delimiter`, or `None` when it
/// never comes. Brackets get no special reading: where sed would take a
/// delimiter inside `[…]` literally, this ends the part early and what
/// follows reads as unreadable, never as harmless.
fn delimited(s: &[char], mut i: usize, delimiter: char) -> Option<usize> {
    while let Some(&c) = s.get(i) {
        if c == '\\' {
            i += 2;
        } else if c == delimiter {
            return Some(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Past an address (a line number, `first~step`, `$`, `/re/`, `\cREc`, `+N`
/// or `~N` after a comma), or `i` when there is none; `None` when one starts
/// but never ends.
fn address(s: &[char], mut i: usize) -> Option<usize> {
    match s.get(i) {
        Some(c) if c.is_ascii_digit() || *c == '+' || *c == '~' => {
            i += 1;
            while s.get(i).is_some_and(|c| c.is_ascii_digit() || *c == '~') {
                i += 1;
            }
            Some(i)
        }
        Some('$') => Some(i + 1),
        Some('/') => regex_flags(s, delimited(s, i + 1, '/')?),
        Some('\\') => {
            let delimiter = *s.get(i + 1)?;
            regex_flags(s, delimited(s, i + 2, delimiter)?)
        }
        _ => Some(i),
    }
}

fn regex_flags(s: &[char], mut i: usize) -> Option<usize> {
    while matches!(s.get(i), Some('I' | 'M')) {
        i += 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(words: &[&str]) -> ScriptEffects {
        effects(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn any_delimiter_and_any_address_hide_nothing() {
        assert_eq!(of(&["sqxqidqe", "f"]).runs, vec![None]);
        assert_eq!(of(&["sqxqyqw /dev/sda", "f"]).writes, ["/dev/sda"]);
        assert_eq!(of(&["\\cxce id", "f"]).runs, vec![Some("id".to_owned())]);
        assert_eq!(
            of(&["1etouch x", "f"]).runs,
            vec![Some("touch x".to_owned())]
        );
        assert_eq!(
            of(&["$!e rm -rf /", "f"]).runs,
            vec![Some("rm -rf /".to_owned())]
        );
        assert_eq!(of(&["-n", "/x/,+2W /tmp/out", "f"]).writes, ["/tmp/out"]);
        assert_eq!(of(&["1r /srv/app/.env", "f"]).reads, ["/srv/app/.env"]);
        assert_eq!(of(&["--expr=s,a,b,w /tmp/x", "f"]).writes, ["/tmp/x"]);
        assert_eq!(of(&["-e", "p", "-e", "w out", "f"]).writes, ["out"]);
        assert!(of(&["-f", "script.sed", "f"]).from_file);
        assert!(of(&["--fi=script.sed", "f"]).from_file);
    }

    #[test]
    fn everyday_edits_only_edit() {
        for words in [
            &["-n", "1,5p", "f"][..],
            &["s/a/b/g", "f"],
            &["-n", "/error/p", "f"],
            &["s|/a|/b|", "f"],
            &["-i", "s,x,y,g", "f"],
            &["-E", "s/([0-9]+)/<\\1>/2", "f"],
            &["/^#/d;/^$/d", "f"],
            &["y/abc/xyz/", "f"],
            &["-e", "1i\\", "-e", "header", "f"],
        ] {
            assert!(of(words).only_transforms(), "{words:?}: {:?}", of(words));
        }
    }

    #[test]
    fn what_cannot_be_followed_is_unreadable() {
        for words in [
            &["s/a/b", "f"][..],
            &["k", "f"],
            &["s/a/b/Z", "f"],
            &["/x", "f"],
        ] {
            assert!(of(words).unreadable, "{words:?}");
        }
    }
}
