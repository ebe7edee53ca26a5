//! jq's language: its lexer, and which names in a filter are calls to
//! what (loaders, `env`, `input_filename`, definitions).

use crate::script::ScriptEffects;

use super::{Dialect, MAX_DEPTH, read_filter};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Token {
    /// An identifier or keyword, module-qualified ones (`a::b`) included.
    Word(String),
    /// `.name`
    Field,
    /// `$name` (jq 1.6 takes blanks after the `$`).
    Var(String),
    /// `@name`
    Format,
    Str(Text),
    Number,
    /// Brackets, separators and operators.
    Sym(&'static str),
}

/// A string: its text when nothing is interpolated, and the tokens of each
/// interpolated filter.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Text {
    literal: Option<String>,
    parts: Vec<Vec<Token>>,
}

/// Operators, longest first so that `?//` is not read as `?` and `//`.
/// `!` and `~` are no jq, but the Go yq's (`!=`, `~` for null).
const OPERATORS: &[&str] = &[
    "?//", "//=", "|=", "+=", "-=", "*=", "/=", "%=", "//", "==", "!=", "<=", ">=", "|", ",", ":",
    ";", "=", "<", ">", "+", "-", "*", "/", "%", "?", "!", "~",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(super) fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Past blanks and comments; `None` for a comment that jq versions read
/// differently (1.7.1 continues one that ends in an odd number of
/// backslashes onto the next line; 1.6 does not).
fn skip_blank(s: &[char], i: &mut usize) -> Option<()> {
    loop {
        match s.get(*i) {
            Some(c) if c.is_whitespace() => *i += 1,
            Some('#') => {
                let start = *i;
                while s.get(*i).is_some_and(|c| *c != '\n') {
                    *i += 1;
                }
                let comment = &s[start..*i];
                let backslashes = comment.iter().rev().take_while(|c| **c == '\\').count();
                if backslashes % 2 == 1 || comment.contains(&'\r') {
                    return None;
                }
            }
            _ => return Some(()),
        }
    }
}

/// An identifier with its `::` parts, from `s[*i]`, which starts one.
fn ident(s: &[char], i: &mut usize) -> String {
    let mut name = String::new();
    loop {
        while let Some(&c) = s.get(*i).filter(|c| is_ident(**c)) {
            name.push(c);
            *i += 1;
        }
        if s.get(*i) == Some(&':')
            && s.get(*i + 1) == Some(&':')
            && s.get(*i + 2).is_some_and(|c| is_ident_start(*c))
        {
            name.push_str("::");
            *i += 2;
        } else {
            return name;
        }
    }
}

/// Tokens from `s[*i]` to the end, or, inside an interpolation, to its
/// closing `)`. Brackets must match, as jq's lexer demands.
pub(super) fn lex(
    s: &[char],
    i: &mut usize,
    depth: usize,
    interpolation: bool,
) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut open: Vec<char> = Vec::new();
    loop {
        skip_blank(s, i)?;
        let Some(&c) = s.get(*i) else {
            // An interpolation or a bracket left open.
            return (!interpolation && open.is_empty()).then_some(tokens);
        };
        if depth + open.len() > MAX_DEPTH {
            return None;
        }
        match c {
            '"' => {
                *i += 1;
                tokens.push(Token::Str(string(s, i, depth + 1)?));
            }
            '.' => {
                *i += 1;
                match s.get(*i) {
                    Some('.') => {
                        *i += 1;
                        tokens.push(Token::Sym(".."));
                    }
                    Some(c) if is_ident_start(*c) => {
                        while s.get(*i).is_some_and(|c| is_ident(*c)) {
                            *i += 1;
                        }
                        tokens.push(Token::Field);
                    }
                    Some(c) if c.is_ascii_digit() => {
                        number(s, i);
                        tokens.push(Token::Number);
                    }
                    _ => tokens.push(Token::Sym(".")),
                }
            }
            '$' => {
                *i += 1;
                skip_blank(s, i)?;
                match s.get(*i) {
                    Some(c) if is_ident_start(*c) => tokens.push(Token::Var(ident(s, i))),
                    // jq's private `$$$$name`.
                    Some('$') => tokens.push(Token::Sym("$")),
                    _ => return None,
                }
            }
            '@' => {
                *i += 1;
                if !s.get(*i).is_some_and(|c| is_ident_start(*c)) {
                    return None;
                }
                ident(s, i);
                tokens.push(Token::Format);
            }
            c if is_ident_start(c) => tokens.push(Token::Word(ident(s, i))),
            c if c.is_ascii_digit() => {
                number(s, i);
                tokens.push(Token::Number);
            }
            '(' | '[' | '{' => {
                *i += 1;
                open.push(c);
                tokens.push(Token::Sym(match c {
                    '(' => "(",
                    '[' => "[",
                    _ => "{",
                }));
            }
            ')' | ']' | '}' => {
                *i += 1;
                let wanted = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match open.pop() {
                    Some(o) if o == wanted => {}
                    None if interpolation && c == ')' => return Some(tokens),
                    _ => return None,
                }
                tokens.push(Token::Sym(match c {
                    ')' => ")",
                    ']' => "]",
                    _ => "}",
                }));
            }
            _ => {
                let op = OPERATORS.iter().find(|op| {
                    op.chars()
                        .enumerate()
                        .all(|(k, oc)| s.get(*i + k) == Some(&oc))
                })?;
                *i += op.chars().count();
                tokens.push(Token::Sym(op));
            }
        }
    }
}

/// Past a number's digits, fraction and exponent.
fn number(s: &[char], i: &mut usize) {
    while s.get(*i).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
        *i += 1;
    }
    if s.get(*i).is_some_and(|c| *c == 'e' || *c == 'E') {
        let mut k = *i + 1;
        if s.get(k).is_some_and(|c| *c == '+' || *c == '-') {
            k += 1;
        }
        if s.get(k).is_some_and(char::is_ascii_digit) {
            *i = k;
            while s.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
        }
    }
}

/// A string from just after its opening quote; `None` when it never ends
/// or holds an escape jq rejects.
pub(super) fn string(s: &[char], i: &mut usize, depth: usize) -> Option<Text> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut literal = String::new();
    let mut parts = Vec::new();
    loop {
        let c = *s.get(*i)?;
        *i += 1;
        match c {
            '"' => break,
            '\\' => {
                let e = *s.get(*i)?;
                *i += 1;
                match e {
                    '(' => parts.push(lex(s, i, depth + 1, true)?),
                    '"' | '\\' | '/' => literal.push(e),
                    'b' => literal.push('\u{8}'),
                    'f' => literal.push('\u{c}'),
                    'n' => literal.push('\n'),
                    'r' => literal.push('\r'),
                    't' => literal.push('\t'),
                    'u' => {
                        let hex: String = s.get(*i..*i + 4)?.iter().collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        *i += 4;
                        literal.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    _ => return None,
                }
            }
            c => literal.push(c),
        }
    }
    Some(Text {
        literal: parts.is_empty().then_some(literal),
        parts,
    })
}

/// jq's keywords: never calls.
const KEYWORDS: &[&str] = &[
    "def", "if", "then", "elif", "else", "end", "as", "reduce", "foreach", "try", "catch", "label",
    "and", "or", "__loc__", "module", "break",
];

/// The Go yq's file loaders: `load`, `load_str`, `load_xml`, `load_props`,
/// `load_base64`, `strload`, `xml_load` and the rest.
fn is_loader(name: &str) -> bool {
    name.starts_with("load") || name.ends_with("load")
}

/// Reads the calls in one filter's tokens into `out`; `None` where it
/// cannot follow.
pub(super) fn classify(
    tokens: &[Token],
    dialect: Dialect,
    depth: usize,
    out: &mut ScriptEffects,
) -> Option<()> {
    let mut open: Vec<&str> = Vec::new();
    // The bracket depth at which a definition's parameters end.
    let mut params_at: Option<usize> = None;
    let mut defining = false;
    for (n, token) in tokens.iter().enumerate() {
        let prev = n.checked_sub(1).and_then(|p| tokens.get(p));
        let next = tokens.get(n + 1);
        match token {
            Token::Sym(b @ ("(" | "[" | "{")) => {
                if defining && *b == "(" {
                    params_at = Some(open.len());
                }
                open.push(b);
            }
            Token::Sym(")" | "]" | "}") => {
                open.pop();
                if params_at == Some(open.len()) {
                    params_at = None;
                }
            }
            Token::Str(text) => {
                for part in &text.parts {
                    classify(part, dialect, depth + 1, out)?;
                }
            }
            Token::Var(name) if name == "ENV" => out.environment = true,
            Token::Word(word) => {
                let after_def = prev == Some(&Token::Word("def".to_owned()));
                defining = after_def;
                // `{env}`, `{env: 1}` and the pattern `{env: $e}` name a
                // key (`{env}` reads `.env`), not the builtin.
                let key = open.last() == Some(&"{")
                    && matches!(prev, Some(Token::Sym("{" | ",")))
                    && matches!(next, Some(Token::Sym(":" | "," | "}")));
                let alias = prev == Some(&Token::Word("as".to_owned()));
                if key || after_def || alias || params_at.is_some() {
                    continue;
                }
                call(word, tokens, n, dialect, depth, out)?;
            }
            Token::Field | Token::Var(_) | Token::Format | Token::Number | Token::Sym(_) => {}
        }
        if !matches!(token, Token::Word(_) | Token::Sym("(")) {
            defining = false;
        }
    }
    Some(())
}

/// What calling `word` (at `tokens[n]`) does.
pub(super) fn call(
    word: &str,
    tokens: &[Token],
    n: usize,
    dialect: Dialect,
    depth: usize,
    out: &mut ScriptEffects,
) -> Option<()> {
    let called = tokens.get(n + 1) == Some(&Token::Sym("("));
    match word {
        w if KEYWORDS.contains(&w) => {}
        "import" | "include" => out.from_file = true,
        "env" | "strenv" | "envsubst" => out.environment = true,
        // Loads a module by a name only known at run time.
        "modulemeta" => out.reads_unknown = true,
        "eval" if called => match literal_args(tokens, n + 1).as_deref() {
            Some([expression]) => read_filter(expression, dialect, depth + 1, out),
            _ => return None,
        },
        "system" if called => out.runs.push(literal_args(tokens, n + 1).and_then(command)),
        w if called && is_loader(w) => match literal_args(tokens, n + 1).as_deref() {
            Some([path]) => out.reads.push(path.clone()),
            _ => out.reads_unknown = true,
        },
        _ => {}
    }
    Some(())
}

/// The arguments of a call whose `(` is at `tokens[n]`, when each is a
/// string or an array of strings, flattened: `("a"; ["b", "c"])`.
fn literal_args(tokens: &[Token], n: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut k = n + 1;
    loop {
        match tokens.get(k)? {
            Token::Str(Text {
                literal: Some(s), ..
            }) => {
                out.push(s.clone());
                k += 1;
            }
            Token::Sym("[") => {
                k += 1;
                loop {
                    match tokens.get(k)? {
                        Token::Str(Text {
                            literal: Some(s), ..
                        }) => out.push(s.clone()),
                        Token::Word(_)
                        | Token::Field
                        | Token::Var(_)
                        | Token::Format
                        | Token::Str(_)
                        | Token::Number
                        | Token::Sym(_) => return None,
                    }
                    k += 1;
                    match tokens.get(k)? {
                        Token::Sym(",") => k += 1,
                        Token::Sym("]") => break,
                        Token::Word(_)
                        | Token::Field
                        | Token::Var(_)
                        | Token::Format
                        | Token::Str(_)
                        | Token::Number
                        | Token::Sym(_) => return None,
                    }
                }
                k += 1;
            }
            Token::Word(_)
            | Token::Field
            | Token::Var(_)
            | Token::Format
            | Token::Str(_)
            | Token::Number
            | Token::Sym(_) => return None,
        }
        match tokens.get(k)? {
            Token::Sym(";") => k += 1,
            Token::Sym(")") => return Some(out),
            Token::Word(_)
            | Token::Field
            | Token::Var(_)
            | Token::Format
            | Token::Str(_)
            | Token::Number
            | Token::Sym(_) => return None,
        }
    }
}

/// A command line for what the Go yq's `system(CMD; ARGS)` runs.
pub(super) fn command(words: Vec<String>) -> Option<String> {
    let (program, args) = words.split_first()?;
    let mut line = program.clone();
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    Some(line)
}

fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:,@%+-".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
