//! The Go yq's language, whose lexer finds operators inside words and ends
//! strings and paths by rules of its own: read for `env`, `load` and
//! `system` calls.

use crate::script::ScriptEffects;

use super::language::{command, is_ident};
use super::{Dialect, MAX_DEPTH, read_filter};

/// One unit of a filter as the Go yq's lexer splits it: a character of
/// code, or a string (its text when nothing is interpolated).
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Char(char),
    Str(Option<String>),
}

/// Characters that end a Go yq path element (`.a-b#c` is one path there).
const GO_PATH_ENDS: &str = " ;}{:[],|.()=\n!";

/// Reads a filter as the Go yq's lexer does, which has no word boundaries
/// (`keysenv(HOME)` is `keys` then `env(HOME)`) and its own ends for paths
/// and strings. Text that lexer refuses, it never runs.
pub(super) fn go_view(s: &[char], depth: usize, out: &mut ScriptEffects) {
    if depth > MAX_DEPTH {
        out.unreadable = true;
        return;
    }
    let Some(pieces) = go_pieces(s, depth, out) else {
        return;
    };
    let starts = |k: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(o, c)| pieces.get(k + o) == Some(&Piece::Char(c)))
    };
    for k in 0..pieces.len() {
        if starts(k, "envsubst") {
            out.environment = true;
        } else if starts(k, "load") {
            // `load`, `load_xml`, `load_str`, …, then its argument.
            let mut at = k + 4;
            while matches!(pieces.get(at), Some(Piece::Char(c)) if is_ident(*c)) {
                at += 1;
            }
            if let Some(args) = go_call_args(&pieces, at) {
                match args.as_deref() {
                    Some([path]) => out.reads.push(path.clone()),
                    _ => out.reads_unknown = true,
                }
            }
        } else if starts(k, "eval") {
            if let Some(args) = go_call_args(&pieces, k + 4) {
                match args.as_deref() {
                    Some([expression]) => {
                        read_filter(expression, Dialect::Yq, depth + 1, out);
                    }
                    _ => out.unreadable = true,
                }
            }
        } else if starts(k, "system")
            && let Some(args) = go_call_args(&pieces, k + 6)
        {
            out.runs.push(args.and_then(command));
        }
    }
}

/// The pieces of a Go yq filter: paths, variables and comments dropped,
/// strings as one piece each, `env(…)` and `strenv(…)` taken whole (their
/// argument is a bare name the lexer does not split). The filters
/// interpolated into strings are read on the way. `None` where the lexer
/// would fail (a string that never ends).
fn go_pieces(s: &[char], depth: usize, out: &mut ScriptEffects) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut i = 0;
    let at = |i: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(o, c)| s.get(i + o) == Some(&c))
    };
    while let Some(&c) = s.get(i) {
        if at(i, "env(") {
            out.environment = true;
            while s.get(i).is_some_and(|c| *c != ')') {
                i += 1;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                let mut raw = String::new();
                i += 1;
                loop {
                    match *s.get(i)? {
                        '"' => break,
                        '\\' => {
                            raw.push('\\');
                            raw.push(*s.get(i + 1)?);
                            i += 2;
                        }
                        c => {
                            raw.push(c);
                            i += 1;
                        }
                    }
                }
                i += 1;
                let interpolated = go_interpolations(&raw);
                for filter in &interpolated {
                    let chars: Vec<char> = filter.chars().collect();
                    go_view(&chars, depth + 1, out);
                }
                pieces.push(Piece::Str(
                    interpolated.is_empty().then(|| go_unescape(&raw)),
                ));
            }
            '#' => {
                while s.get(i).is_some_and(|c| *c != '\n') {
                    i += 1;
                }
            }
            '.' => {
                i += 1;
                match s.get(i) {
                    // `."a b"` is `.` and a string; `."ab"` a path.
                    Some('"') => {
                        let mut k = i + 1;
                        while s.get(k).is_some_and(|c| *c != '"' && *c != ' ') {
                            k += 1;
                        }
                        if k > i + 1 && s.get(k) == Some(&'"') {
                            i = k + 1;
                        } else {
                            pieces.push(Piece::Char('.'));
                        }
                    }
                    Some(c) if !GO_PATH_ENDS.contains(*c) && *c != '.' => {
                        while s.get(i).is_some_and(|c| !GO_PATH_ENDS.contains(*c)) {
                            i += 1;
                        }
                    }
                    _ => pieces.push(Piece::Char('.')),
                }
            }
            '$' if s
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-') =>
            {
                i += 1;
                while s
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                {
                    i += 1;
                }
            }
            c => {
                pieces.push(Piece::Char(c));
                i += 1;
            }
        }
    }
    Some(pieces)
}

/// The filters a Go yq string interpolates with `\(…)`, each to its
/// matching `)` or the string's end.
fn go_interpolations(raw: &str) -> Vec<String> {
    let text = raw.replace("\\\"", "\"");
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'(') {
            i += 2;
            let start = i;
            let mut open = 1usize;
            while let Some(&c) = chars.get(i) {
                if c == '(' {
                    open += 1;
                } else if c == ')' {
                    open -= 1;
                    if open == 0 {
                        break;
                    }
                }
                i += 1;
            }
            found.push(chars[start..i.min(chars.len())].iter().collect());
        } else if chars[i] == '\\' {
            i += 2;
        } else {
            i += 1;
        }
    }
    found
}

fn go_unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The arguments of a Go yq call whose name ends at `pieces[at]`:
/// `None` when no `(` follows (no call), `Some(None)` when an argument is
/// no string literal.
fn go_call_args(pieces: &[Piece], at: usize) -> Option<Option<Vec<String>>> {
    let blank = |p: Option<&Piece>| matches!(p, Some(Piece::Char(c)) if c.is_whitespace());
    let mut k = at;
    while blank(pieces.get(k)) {
        k += 1;
    }
    if pieces.get(k) != Some(&Piece::Char('(')) {
        return None;
    }
    k += 1;
    let mut args = Vec::new();
    let literal = |k: &mut usize, args: &mut Vec<String>| -> Option<()> {
        while blank(pieces.get(*k)) {
            *k += 1;
        }
        match pieces.get(*k)? {
            Piece::Str(Some(s)) => {
                args.push(s.clone());
                *k += 1;
            }
            Piece::Char('[') => {
                *k += 1;
                loop {
                    while blank(pieces.get(*k)) {
                        *k += 1;
                    }
                    match pieces.get(*k)? {
                        Piece::Str(Some(s)) => args.push(s.clone()),
                        Piece::Char(_) | Piece::Str(_) => return None,
                    }
                    *k += 1;
                    while blank(pieces.get(*k)) {
                        *k += 1;
                    }
                    match pieces.get(*k)? {
                        Piece::Char(',') => *k += 1,
                        Piece::Char(']') => break,
                        Piece::Char(_) | Piece::Str(_) => return None,
                    }
                }
                *k += 1;
            }
            Piece::Char(_) | Piece::Str(_) => return None,
        }
        while blank(pieces.get(*k)) {
            *k += 1;
        }
        Some(())
    };
    let parsed = (|| {
        loop {
            literal(&mut k, &mut args)?;
            match pieces.get(k)? {
                Piece::Char(';') => k += 1,
                Piece::Char(')') => return Some(args),
                Piece::Char(_) | Piece::Str(_) => return None,
            }
        }
    })();
    Some(parsed)
}
