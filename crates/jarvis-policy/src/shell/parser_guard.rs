//! What brush-parser must not be handed, or must be held from: input that
//! nests too deeply, numbers it would overflow on, expansions it would lose
//! after a here-document operator, and its panics.

use brush_parser::SourcePosition;

use super::truncate;

/// An upper bound on how deeply constructs nest, counted over openers
/// (`(`, `{`, `` ` ``, `if`/`for`/`while`/`until`/`case`), ignoring quotes.
/// It over-counts (quoted parentheses count too), which only makes the
/// check stricter, and it is linear in the input.
pub(super) fn syntactic_depth(text: &str) -> usize {
    let mut depth: usize = 0;
    let mut max: usize = 0;
    let mut backquotes = 0usize;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' => depth = depth.saturating_sub(1),
            b'`' => backquotes += 1,
            b'i' | b'f' | b'w' | b'u' | b'c' if i == 0 || !is_word_byte(bytes[i - 1]) => {
                let rest = &bytes[i..];
                for kw in [&b"if"[..], b"for", b"while", b"until", b"case", b"select"] {
                    if rest.starts_with(kw) && rest.get(kw.len()).is_none_or(|b| !is_word_byte(*b))
                    {
                        depth += 1;
                        max = max.max(depth);
                    }
                }
            }
            b'f' | b'd' | b'e' if i == 0 || !is_word_byte(bytes[i - 1]) => {}
            _ => {}
        }
        if i == 0 || !is_word_byte(bytes[i - 1]) {
            let rest = &bytes[i..];
            for kw in [&b"fi"[..], b"done", b"esac"] {
                if rest.starts_with(kw) && rest.get(kw.len()).is_none_or(|b| !is_word_byte(*b)) {
                    depth = depth.saturating_sub(1);
                }
            }
        }
        i += 1;
    }
    // Nested backquotes need escaping at each level, so their count bounds
    // their depth loosely; treat every pair as a level.
    max.max(depth) + backquotes / 2
}

/// A number that brush-parser would unwrap and overflow on: a descriptor
/// before `<` or `>` (bash refuses those too), or a directory-stack index
/// after `~`, `~+` or `~-`.
pub(super) fn oversized_number(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[start..i];
        let redirects = matches!(bytes.get(i), Some(b'<' | b'>'));
        let before = &bytes[..start];
        let tilde = before.ends_with(b"~") || before.ends_with(b"~+") || before.ends_with(b"~-");
        if (redirects || tilde) && digits.parse::<i32>().is_err() {
            return Some(digits);
        }
    }
    None
}

/// Whether `text` has two opening parentheses with blanks between them.
pub(super) fn spaced_parens(text: &str) -> bool {
    text.match_indices('(').any(|(i, _)| {
        let after = &text[i + 1..];
        let rest = after.trim_start_matches([' ', '\t']);
        rest.len() < after.len() && rest.starts_with('(')
    })
}

/// Runs a call into the shell parser, turning a panic in it into `None`.
/// brush-parser unwraps in places hostile input reaches; what it cannot
/// parse is refused like any text that does not parse.
pub(super) fn unpanicked<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Why `text` cannot be handed to brush-parser as it is: a `$(…)`,
/// `${…}`, `$[…]`, `<(…)` or `>(…)` after a here-document operator on the
/// same line. While
/// it looks for the document's body, brush-parser takes the pieces of
/// such an expansion for words of their own (`cat <<EOF > "$(id)"` reads
/// as `cat` with the words `id` and `$()`; inside a `$(…)` the whole
/// substitution comes out empty), so a command substitution there would
/// go unseen. Bash runs it; the line is refused. The scan is textual and
/// errs towards refusing: an operator that only looks like one (`<<` in
/// quotes, a shift such as `1 << n`) counts too.
pub(super) fn expansion_after_heredoc(text: &str) -> Option<String> {
    const EXPANSIONS: [&str; 5] = ["$(", "${", "$[", "<(", ">("];
    if !text.contains("<<") {
        return None;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i + 1 < chars.len() {
        let operator = chars[i] == '<'
            && chars[i + 1] == '<'
            && chars.get(i + 2) != Some(&'<')
            && (i == 0 || chars[i - 1] != '<');
        if !operator {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        if chars.get(j) == Some(&'-') {
            j += 1;
        }
        while matches!(chars.get(j), Some(' ' | '\t')) {
            j += 1;
        }
        let starts_tag = chars
            .get(j)
            .is_some_and(|c| c.is_alphabetic() || "_'\"\\".contains(*c));
        // The rest of the line, continuations included.
        let mut rest = String::new();
        let mut k = j;
        while let Some(&c) = chars.get(k) {
            if c == '\\' && chars.get(k + 1) == Some(&'\n') {
                k += 2;
                continue;
            }
            if c == '\n' {
                break;
            }
            rest.push(c);
            k += 1;
        }
        if starts_tag
            && (EXPANSIONS.iter().any(|e| rest.contains(e)) || number_then_redirect(&rest))
        {
            let tag: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            return Some(format!(
                "an expansion follows the here-document `<<{}` on its line, which the \
                 parser cannot read there",
                truncate(&tag, 40)
            ));
        }
        i = j;
    }
    None
}

/// Whether `text` has a number word followed by a redirection
/// (`tee f 5 >&out`): after a here-document operator the parser loses the blank and
/// reads the number as the redirection's descriptor.
fn number_then_redirect(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|i| {
        let starts = chars[i].is_ascii_digit() && (i == 0 || chars[i - 1].is_whitespace());
        if !starts {
            return false;
        }
        let mut j = i;
        while chars.get(j).is_some_and(char::is_ascii_digit) {
            j += 1;
        }
        let blanks = j;
        while matches!(chars.get(j), Some(' ' | '\t')) {
            j += 1;
        }
        j > blanks && matches!(chars.get(j), Some('<' | '>'))
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

pub(super) fn describe_parse_error(e: &brush_parser::ParseError) -> String {
    use brush_parser::ParseError as E;
    let at = |pos: &SourcePosition| format!(" at line {}, column {}", pos.line, pos.column);
    match e {
        E::ParsingNear(pos) => format!("unexpected text{}", at(pos)),
        E::ParsingAtEndOfInput => {
            "the command ends too early (an unclosed `if`, `(`, `{` or quote?)".into()
        }
        // The tokenizer's own message already says where.
        E::Tokenizing { inner, .. } => inner.to_string(),
    }
}
