//! What the readings find, said back as shell lines for the analysis to
//! judge.

use crate::shell::Word;

/// A line of a program and words as written.
pub(super) fn line(program: &str, args: &[Word]) -> String {
    let mut s = program.to_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.raw);
    }
    s
}

pub(super) fn line_of(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a text as one shell word.
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(super) fn quoted_line(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}
