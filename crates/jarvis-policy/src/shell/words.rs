//! Words as bash reads them: quotes and escapes removed, `$'…'` decoded,
//! and the substitutions, arithmetic and parameter expansions inside them
//! walked for the commands they run.

use brush_parser::word::{
    self as bword, Parameter, ParameterExpr, TildeExpr, WordPiece, WordPieceWithSource,
};
use jarvis_core::text::code;

use super::parser_guard::unpanicked;
use super::walker::{Frame, Walker};
use super::{Context, ShellError, Word, options, truncate};

impl Walker<'_> {
    /// Walks text read as inside double quotes, where quote characters are
    /// literal and only `$…`, `` `…` `` and backslashes act.
    fn quoted_text(&mut self, text: &str, depth: usize, frame: &Frame) -> Result<(), ShellError> {
        let pieces = unpanicked(|| bword::parse_heredoc(text, &options()))
            .ok_or_else(|| self.parser_failed(text))?
            .map_err(|e| ShellError::Syntax {
                what: self.what.to_owned(),
                detail: format!("in the text {}: {e}", code(&truncate(text, 80))),
            })?;
        let mut w = WordBuilder::new(text);
        self.pieces(&pieces, true, depth, frame, &mut w)
    }

    /// Normalises one word and walks the commands hidden in it.
    pub(super) fn word(
        &mut self,
        raw: &str,
        depth: usize,
        frame: &Frame,
    ) -> Result<Word, ShellError> {
        // Most words are plain (`ps`, `-a`, `/srv/app`): nothing to unquote
        // or expand, so the word parser (and its locked cache) is skipped.
        if !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+^".contains(&b))
        {
            return Ok(Word::literal(raw));
        }
        let pieces = unpanicked(|| bword::parse(raw, &options()))
            .ok_or_else(|| self.parser_failed(raw))?
            .map_err(|e| ShellError::Syntax {
                what: self.what.to_owned(),
                detail: format!("in the word {}: {e}", code(&truncate(raw, 80))),
            })?;
        let mut w = WordBuilder::new(raw);
        self.pieces(&pieces, false, depth, frame, &mut w)?;
        Ok(w.finish())
    }

    pub(super) fn pieces(
        &mut self,
        pieces: &[WordPieceWithSource],
        quoted: bool,
        depth: usize,
        frame: &Frame,
        w: &mut WordBuilder,
    ) -> Result<(), ShellError> {
        for (k, p) in pieces.iter().enumerate() {
            // The parser gives up on some nestings (`$(( 1 * $(( cmd ) |
            // x ) ))`) and leaves them as plain text, a lone `$` and then
            // `((…`; bash runs what is inside.
            if let WordPiece::Text(t) = &p.piece
                && t.ends_with('$')
                && let Some(WordPiece::Text(next)) = pieces.get(k + 1).map(|n| &n.piece)
                && next.starts_with(['(', '{', '['])
            {
                return Err(ShellError::Syntax {
                    what: self.what.to_owned(),
                    detail: format!(
                        "the expansion {} is nested in a way the parser cannot read",
                        code(&truncate(&raw_slice(w.raw, p), 40))
                    ),
                });
            }
            match &p.piece {
                WordPiece::Text(t) => {
                    if quoted {
                        w.literal(t);
                    } else {
                        w.unquoted(t);
                    }
                }
                WordPiece::SingleQuotedText(t) => w.literal(t),
                WordPiece::AnsiCQuotedText(t) => w.ansi_c(t),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner, true, depth, frame, w)?;
                }
                WordPiece::EscapeSequence(s) => {
                    let escaped = s.strip_prefix('\\').unwrap_or(s);
                    if quoted && !matches!(escaped, "$" | "`" | "\"" | "\\" | "\n") {
                        w.literal(s);
                    } else if escaped != "\n" {
                        w.literal(escaped);
                    }
                }
                WordPiece::TildeExpansion(TildeExpr::Home | TildeExpr::UserHome(_)) => {
                    // A tilde expands to a home directory: not attacker
                    // controlled, so the word stays literal as `~…`.
                    w.literal(&raw_slice(w.raw, p));
                }
                WordPiece::TildeExpansion(_) => {
                    // `~+` is the working directory, `~-` the previous one,
                    // `~N` an entry of the directory stack: all known only
                    // at run time, and all among the directories the line
                    // can `cd` to, so as a path the word is `.` resolved
                    // against each of them (`cd /; rm -rf ~+` is `/`).
                    w.expansion(&raw_slice(w.raw, p));
                    w.skeleton.push('.');
                }
                WordPiece::ParameterExpansion(expr) => {
                    self.parameter(expr, quoted, depth, frame)?;
                    w.expansion(&raw_slice(w.raw, p));
                }
                WordPiece::CommandSubstitution(body) => {
                    self.substitution(body, depth, frame)?;
                    w.expansion(&raw_slice(w.raw, p));
                }
                WordPiece::BackquotedCommandSubstitution(body) => {
                    self.substitution(&unescape_backquoted(body), depth, frame)?;
                    w.expansion(&raw_slice(w.raw, p));
                }
                WordPiece::ArithmeticExpression(e) => {
                    self.arithmetic(&e.value, depth, frame)?;
                    let raw = raw_slice(w.raw, p);
                    // `$(( cmd ) | other)` closes with one parenthesis, not
                    // two: bash reads it as `$( ( cmd ) | other )`.
                    if let Some(body) = raw
                        .strip_prefix("$(")
                        .and_then(|b| b.strip_suffix(')'))
                        .filter(|_| !raw.ends_with("))"))
                    {
                        self.substitution(body, depth, frame)?;
                    }
                    w.expansion(&raw);
                }
            }
        }
        Ok(())
    }

    pub(super) fn substitution(
        &mut self,
        body: &str,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        self.program_text(
            body,
            depth + 1,
            &Frame {
                context: {
                    let mut c = frame.context.clone();
                    c.push(Context::CommandSubstitution);
                    c
                },
                ..Frame::default()
            },
        )
    }

    /// Arithmetic text can hold `$(…)` (also through array subscripts), which
    /// bash runs while evaluating; walk it as a word to find them.
    ///
    /// Bash reads arithmetic text as if inside double quotes, so a single
    /// quote there quotes nothing: `$(( 'a[$(id)]' ))` runs `id`.
    pub(super) fn arithmetic(
        &mut self,
        text: &str,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        if text.contains("$(")
            && text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == "case")
        {
            // Bash counts a `case` pattern's parentheses as the
            // expression's and runs `$(( 2 * $(case …) ))` as commands.
            return Err(ShellError::Syntax {
                what: self.what.to_owned(),
                detail: format!(
                    "a `case` inside the arithmetic {}, which bash may read as commands",
                    code(&truncate(text, 40))
                ),
            });
        }
        if text.contains("$(") || text.contains('`') || text.contains("${") {
            let outer = std::mem::replace(&mut self.in_arithmetic, true);
            let walked = self.quoted_text(text, depth + 1, frame);
            self.in_arithmetic = outer;
            walked?;
        }
        if text.contains('[') && !text.contains("$(") && !text.contains('`') {
            // `a[$x]` evaluates `$x` as arithmetic again; a variable holding
            // `$(cmd)` would run it. What is in the variable is unknowable.
            if text.contains('$') {
                self.script.opaque.push(format!(
                    "arithmetic {} evaluates a variable as an array subscript",
                    code(&truncate(text, 60))
                ));
            }
        }
        Ok(())
    }

    /// Walks the words nested in a parameter expansion. `quoted` says the
    /// expansion sits inside double quotes or an unquoted here-document:
    /// there, quotes inside `${x:-WORD}` are literal characters, so in
    /// `"${x:-'$(id)'}"` the `$(id)` is a command substitution that runs,
    /// and WORD is read as here-document text rather than as a word.
    pub(super) fn parameter(
        &mut self,
        expr: &ParameterExpr,
        quoted: bool,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        use ParameterExpr as P;
        // Quotes inside a default, assigned or alternative value are
        // literal within double quotes; in patterns, replacements and error
        // messages bash still treats them as quotes.
        let mut value_quoted = false;
        let nested: Vec<&str> = match expr {
            P::UseDefaultValues {
                default_value: v, ..
            }
            | P::AssignDefaultValues {
                default_value: v, ..
            } => {
                value_quoted = quoted;
                v.iter().map(String::as_str).collect()
            }
            P::IndicateErrorIfNullOrUnset {
                error_message: v, ..
            } => v.iter().map(String::as_str).collect(),
            P::UseAlternativeValue {
                alternative_value: v,
                ..
            } => {
                value_quoted = quoted;
                v.iter().map(String::as_str).collect()
            }
            P::RemoveSmallestSuffixPattern { pattern: v, .. }
            | P::RemoveLargestSuffixPattern { pattern: v, .. }
            | P::RemoveSmallestPrefixPattern { pattern: v, .. }
            | P::RemoveLargestPrefixPattern { pattern: v, .. } => {
                v.iter().map(String::as_str).collect()
            }
            P::Substring { offset, length, .. } => std::iter::once(offset.value.as_str())
                .chain(length.iter().map(|l| l.value.as_str()))
                .collect(),
            P::ReplaceSubstring {
                pattern,
                replacement,
                ..
            } => std::iter::once(pattern.as_str())
                .chain(replacement.iter().map(String::as_str))
                .collect(),
            _ => Vec::new(),
        };
        for text in nested {
            if text.contains('$') || text.contains('`') {
                if value_quoted {
                    self.quoted_text(text, depth + 1, frame)?;
                } else {
                    self.word(text, depth + 1, frame)?;
                }
            }
        }
        if let Some(Parameter::NamedWithIndex { index, .. }) = parameter_of(expr) {
            self.arithmetic(index, depth, frame)?;
        }
        Ok(())
    }
}

fn parameter_of(expr: &ParameterExpr) -> Option<&Parameter> {
    use ParameterExpr as P;
    match expr {
        P::Parameter { parameter, .. }
        | P::UseDefaultValues { parameter, .. }
        | P::AssignDefaultValues { parameter, .. }
        | P::IndicateErrorIfNullOrUnset { parameter, .. }
        | P::UseAlternativeValue { parameter, .. }
        | P::ParameterLength { parameter, .. }
        | P::RemoveSmallestSuffixPattern { parameter, .. }
        | P::RemoveLargestSuffixPattern { parameter, .. }
        | P::RemoveSmallestPrefixPattern { parameter, .. }
        | P::RemoveLargestPrefixPattern { parameter, .. }
        | P::Substring { parameter, .. }
        | P::ReplaceSubstring { parameter, .. } => Some(parameter),
        _ => None,
    }
}

/// Builds a [`Word`] piece by piece.
pub(super) struct WordBuilder<'a> {
    pub(super) raw: &'a str,
    pub(super) text: String,
    pub(super) skeleton: String,
    pub(super) literal: bool,
    pub(super) pattern: bool,
}

impl<'a> WordBuilder<'a> {
    pub(super) fn new(raw: &'a str) -> Self {
        WordBuilder {
            raw,
            text: String::new(),
            skeleton: String::new(),
            literal: true,
            pattern: false,
        }
    }

    pub(super) fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.skeleton.push_str(s);
    }

    pub(super) fn unquoted(&mut self, s: &str) {
        if has_pattern_chars(s) {
            self.pattern = true;
            self.literal = false;
        }
        self.literal(s);
    }

    /// A `$'…'` string: exact when its bytes are text; bytes that are no
    /// UTF-8 (`$'\xff'`) reach the program as they are, which no `String`
    /// can say, so the word is then only known at run time.
    fn ansi_c(&mut self, body: &str) {
        let bytes = ansi_c_bytes(body);
        match String::from_utf8(bytes) {
            Ok(text) => self.literal(&text),
            Err(e) => {
                self.literal = false;
                self.literal(&String::from_utf8_lossy(e.as_bytes()));
            }
        }
    }

    pub(super) fn expansion(&mut self, raw: &str) {
        self.literal = false;
        self.text.push_str(raw);
    }

    pub(super) fn finish(self) -> Word {
        Word {
            raw: self.raw.to_owned(),
            text: self.text,
            literal: self.literal,
            skeleton: self.skeleton,
            pattern: self.pattern,
        }
    }
}

/// Unquoted text that the shell would glob or brace-expand.
fn has_pattern_chars(s: &str) -> bool {
    if s.contains(['*', '?']) {
        return true;
    }
    // `[` starts a bracket expression only when a `]` follows it; a lone
    // `[` is the test command.
    if let Some(open) = s.find('[')
        && s[open + 1..].contains(']')
    {
        return true;
    }
    // `{a,b}` and `{1..3}` expand; a lone `{` or `}` does not.
    if let (Some(open), Some(close)) = (s.find('{'), s.rfind('}'))
        && open < close
    {
        let inner = &s[open..close];
        if inner.contains(',') || inner.contains("..") {
            return true;
        }
    }
    // extglob: `@(…)`, `!(…)`, `+(…)`
    s.contains("(")
}

fn raw_slice(raw: &str, p: &WordPieceWithSource) -> String {
    raw.get(p.start_index..p.end_index)
        .unwrap_or(raw)
        .to_owned()
}

/// Removes the backslashes that backquotes add: inside `` `…` `` a backslash
/// escapes only `$`, `` ` `` and `\`.
fn unescape_backquoted(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && matches!(n, '$' | '`' | '\\')
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Decodes the body of a `$'…'` string the way bash does (in the UTF-8
/// locale the guard runs it in), for text where the exact bytes matter
/// less than the characters (`echo -e`, `printf`).
pub(crate) fn decode_ansi_c(s: &str) -> String {
    let bytes = ansi_c_bytes(s);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The bytes bash makes of the body of a `$'…'` string, in a UTF-8 locale.
///
/// Bash's rules, which differ from Rust's and C's in the corners: `\x`,
/// `\u` and `\U` take one to two, four or eight hex digits and stay as
/// written with none; octal takes one to three digits, and its value is cut
/// to a byte; `\cX` is X's control character (`\c?` is DEL, and `\c\\`
/// takes the escaped backslash); an unknown escape keeps its backslash. A
/// NUL ends the string: bash hands programs C strings, so what follows a
/// `\0` (or `\x00`, `\c@`) inside the quotes never reaches them.
fn ansi_c_bytes(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push(b'\\');
            break;
        };
        let byte: Option<u8> = match e {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'e' | 'E' => Some(0x1b),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' | '\'' | '"' | '?' => Some(e as u8),
            'c' => match chars.next() {
                None => {
                    out.extend_from_slice(b"\\c");
                    continue;
                }
                Some(x) => {
                    if x == '\\' && chars.peek() == Some(&'\\') {
                        chars.next();
                    }
                    let mut buf = [0u8; 4];
                    let first = x.encode_utf8(&mut buf).as_bytes()[0];
                    let v = if x == '?' {
                        0x7f
                    } else {
                        first.to_ascii_uppercase() & 0x1f
                    };
                    if v == 0 {
                        return out;
                    }
                    out.push(v);
                    // The rest of a multi-byte character follows as it is.
                    out.extend_from_slice(&buf[1..x.len_utf8()]);
                    continue;
                }
            },
            'x' | 'u' | 'U' => {
                let max = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                match take_digits(&mut chars, 16, max) {
                    None => {
                        out.push(b'\\');
                        out.push(e as u8);
                        continue;
                    }
                    Some(0) => return out,
                    Some(v) if e == 'x' => u8::try_from(v).ok(),
                    Some(v) => {
                        match char::from_u32(v) {
                            Some(c) => push_char(&mut out, c),
                            // Bash writes surrogates and values beyond
                            // Unicode as bytes that are no UTF-8; an
                            // invalid sequence keeps the word inexact.
                            None => out.extend_from_slice(&[0xff, 0xfe]),
                        }
                        continue;
                    }
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                Some((v & 0xff) as u8)
            }
            other => {
                out.push(b'\\');
                push_char(&mut out, other);
                continue;
            }
        };
        match byte {
            Some(0) => return out,
            Some(b) => out.push(b),
            None => {}
        }
    }
    out
}

fn take_digits(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    radix: u32,
    max: usize,
) -> Option<u32> {
    let mut v: Option<u32> = None;
    for _ in 0..max {
        match chars.peek().and_then(|c| c.to_digit(radix)) {
            Some(d) => {
                v = Some(v.unwrap_or(0).saturating_mul(radix).saturating_add(d));
                chars.next();
            }
            None => break,
        }
    }
    v
}
