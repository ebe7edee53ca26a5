//! awk's lexer: strings with their escapes, regex literals told from
//! division by the token before them, numbers, names, comments and
//! continuations.

use super::{MAX_DEPTH, MAX_TOKENS};

/// One awk token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A newline that ends a statement (one after an operator, a comma or
    /// an opening brace continues it and is dropped).
    Newline,
    /// A string literal as awk decodes it, and whether every awk decodes it
    /// to that text (`\x414` and `\q` differ between them, a NUL cuts a
    /// command short).
    Str(String, bool),
    Regex,
    Number,
    /// A name: keyword, function or variable, without any namespace.
    Name(String),
    Op(&'static str),
    /// `@`: gawk's directives, indirect calls and typed regexes.
    At,
}

/// Operators, longest first so that `**=` is not read as `**` and `=`.
const OPERATORS: &[&str] = &[
    "**=", "**", "^=", "+=", "-=", "*=", "%=", "==", "<=", ">=", "!=", "!~", "&&", "||", ">>",
    "|&", "++", "--", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "%", "^", "!", ">",
    "<", "|", "?", ":", "~", "$", "=",
];

pub(super) const ASSIGNMENTS: &[&str] = &["=", "+=", "-=", "*=", "/=", "%=", "^=", "**="];

/// Keywords after which an expression starts, so a `/` opens a regex.
const BEFORE_EXPRESSION: &[&str] = &["print", "printf", "return", "case", "do", "else", "exit"];

/// Whether a `/` here opens a regex rather than dividing: awk's grammar
/// wants a regex where an operand must start, and divides after one. Where
/// unsure, this reads division, which reads the text as code and so shows
/// more of it.
fn regex_here(tokens: &[Token], depth: usize) -> bool {
    let mut last = tokens.last();
    if depth > 0 {
        // Inside parentheses or brackets a newline ends nothing.
        last = tokens.iter().rev().find(|t| **t != Token::Newline);
    }
    match last {
        None | Some(Token::Newline | Token::At) => true,
        Some(Token::Name(n)) => BEFORE_EXPRESSION.contains(&n.as_str()),
        Some(Token::Str(..) | Token::Regex | Token::Number) => false,
        Some(Token::Op(o)) => !matches!(*o, ")" | "]" | "++" | "--"),
    }
}

/// Whether a newline after `last` ends the statement: only after something
/// that can end one. After an operator, a comma or a brace it continues the
/// statement (gawk, for one, reads `x ?\n a : b` as one expression).
fn ends_statement(last: Option<&Token>) -> bool {
    match last {
        Some(Token::Name(_) | Token::Str(..) | Token::Regex | Token::Number) => true,
        Some(Token::Op(o)) => matches!(*o, ")" | "]" | "++" | "--"),
        _ => false,
    }
}

pub(super) fn tokenize(text: &str) -> Option<Vec<Token>> {
    let s: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        if tokens.len() > MAX_TOKENS {
            return None;
        }
        let c = s[i];
        match c {
            ' ' | '\t' | '\r' | '\x0b' | '\x0c' => i += 1,
            '\\' => match (s.get(i + 1), s.get(i + 2)) {
                (Some('\n'), _) => i += 2,
                (Some('\r'), Some('\n')) => i += 3,
                _ => return None,
            },
            '\n' => {
                i += 1;
                if ends_statement(tokens.last()) {
                    tokens.push(Token::Newline);
                }
            }
            '#' => {
                while s.get(i).is_some_and(|c| *c != '\n') {
                    i += 1;
                }
            }
            '"' => {
                let (decoded, exact, next) = string(&s, i + 1)?;
                tokens.push(Token::Str(decoded, exact));
                i = next;
            }
            '/' if regex_here(&tokens, depth) => {
                i = regex(&s, i + 1)?;
                tokens.push(Token::Regex);
            }
            '/' if s.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op("/="));
                i += 2;
            }
            '/' => {
                tokens.push(Token::Op("/"));
                i += 1;
            }
            '@' => {
                tokens.push(Token::At);
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i = number(&s, i);
                tokens.push(Token::Number);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let (name, next) = name(&s, i);
                tokens.push(Token::Name(name));
                i = next;
            }
            _ => {
                let op = OPERATORS.iter().find(|op| {
                    op.chars()
                        .enumerate()
                        .all(|(k, oc)| s.get(i + k) == Some(&oc))
                })?;
                i += op.len();
                match *op {
                    "(" | "[" => depth += 1,
                    ")" | "]" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                tokens.push(Token::Op(op));
            }
        }
    }
    Some(tokens)
}

/// A string literal from after its opening quote: the decoded text, whether
/// every awk decodes it so, and the index after the closing quote.
pub(super) fn string(s: &[char], mut i: usize) -> Option<(String, bool, usize)> {
    let mut text = String::new();
    let mut exact = true;
    loop {
        let c = *s.get(i)?;
        i += 1;
        match c {
            '"' => return Some((text, exact, i)),
            '\n' => return None,
            '\\' => {
                let e = *s.get(i)?;
                i += 1;
                match e {
                    '\n' => {}
                    '"' | '\\' | '/' => text.push(e),
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'r' => text.push('\r'),
                    'a' => text.push('\x07'),
                    'b' => text.push('\x08'),
                    'f' => text.push('\x0c'),
                    'v' => text.push('\x0b'),
                    '0'..='7' => {
                        let mut value = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match s.get(i).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    value = value * 8 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        exact &= push_byte(&mut text, value);
                    }
                    'x' => {
                        let digits = s[i..].iter().take_while(|d| d.is_ascii_hexdigit()).count();
                        // gawk before 4.2 took every hex digit; newer awks
                        // take at most two.
                        exact &= (1..=2).contains(&digits);
                        let mut value = 0;
                        for d in s[i..].iter().take(digits.min(2)) {
                            value = value * 16 + d.to_digit(16).unwrap_or(0);
                        }
                        i += digits.min(2);
                        exact &= push_byte(&mut text, value);
                    }
                    // gawk drops the backslash, mawk keeps it.
                    other => {
                        exact = false;
                        text.push('\\');
                        text.push(other);
                    }
                }
            }
            c => text.push(c),
        }
    }
}

/// Pushes one decoded byte; false where it is not the same text to every
/// reader (a NUL ends a C string early, a byte above 127 is no character).
fn push_byte(text: &mut String, value: u32) -> bool {
    match char::from_u32(value) {
        Some(c) if (1..128).contains(&value) => {
            text.push(c);
            true
        }
        _ => {
            text.push('\u{fffd}');
            false
        }
    }
}

/// The index after a regex literal that starts after its opening `/`, or
/// `None` when it never ends. A `/` inside a bracket expression does not
/// end it (`/[^/]+/`), as gawk and mawk read it; the awks that do end
/// there are left with an unterminated bracket and refuse the program.
pub(super) fn regex(s: &[char], mut i: usize) -> Option<usize> {
    let mut brackets = 0usize;
    let mut opened = 0usize;
    while let Some(&c) = s.get(i) {
        match c {
            '\\' => {
                s.get(i + 1)?;
                i += 2;
                continue;
            }
            '\n' => return None,
            '[' if brackets == 0 => {
                brackets = 1;
                opened = i;
            }
            '[' if s.get(i + 1) == Some(&':') => brackets += 1,
            // `[]…]` and `[^]…]`: a `]` first in the bracket is itself.
            ']' if brackets > 0
                && i != opened + 1
                && !(i == opened + 2 && s[opened + 1] == '^') =>
            {
                brackets -= 1;
            }
            '/' if brackets == 0 => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index after a number: digits, a fraction, an exponent, or gawk's
/// hexadecimal. Letters after it start a name of their own, as they do in
/// awk (`1system("id")` calls `system`).
pub(super) fn number(s: &[char], mut i: usize) -> usize {
    if s[i] == '0'
        && matches!(s.get(i + 1), Some('x' | 'X'))
        && s.get(i + 2).is_some_and(char::is_ascii_hexdigit)
    {
        i += 2;
        while s.get(i).is_some_and(char::is_ascii_hexdigit) {
            i += 1;
        }
        return i;
    }
    while s.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if s.get(i) == Some(&'.') {
        i += 1;
        while s.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(s.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(s.get(i + 1), Some('+' | '-')));
        if s.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
            i += 1 + sign;
            while s.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
    }
    i
}

/// A name and the index after it; of a gawk qualified name (`ns::f`) the
/// last part, so `awk::system` is `system`.
pub(super) fn name(s: &[char], mut i: usize) -> (String, usize) {
    let word = |i: &mut usize| {
        let start = *i;
        while s
            .get(*i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            *i += 1;
        }
        s[start..*i].iter().collect::<String>()
    };
    let mut last = word(&mut i);
    while s.get(i) == Some(&':')
        && s.get(i + 1) == Some(&':')
        && s.get(i + 2)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
    {
        i += 2;
        last = word(&mut i);
    }
    (last, i)
}

/// For each bracket, the index of its partner; `None` when they do not
/// balance or nest too deep.
pub(super) fn pair_up(tokens: &[Token]) -> Option<Vec<usize>> {
    let mut partner = vec![usize::MAX; tokens.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Token::Op(o) = t else { continue };
        match *o {
            "(" | "[" | "{" => {
                open.push(i);
                if open.len() > MAX_DEPTH {
                    return None;
                }
            }
            close @ (")" | "]" | "}") => {
                let opener = open.pop()?;
                let pairs = matches!(
                    (&tokens[opener], close),
                    (Token::Op("("), ")") | (Token::Op("["), "]") | (Token::Op("{"), "}")
                );
                if !pairs {
                    return None;
                }
                partner[opener] = i;
                partner[i] = opener;
            }
            _ => {}
        }
    }
    open.is_empty().then_some(partner)
}

pub(super) fn is_op(t: Option<&Token>, ops: &[&str]) -> bool {
    matches!(t, Some(Token::Op(o)) if ops.contains(o))
}

pub(super) fn is_name(t: Option<&Token>, names: &[&str]) -> bool {
    matches!(t, Some(Token::Name(n)) if names.contains(&n.as_str()))
}
