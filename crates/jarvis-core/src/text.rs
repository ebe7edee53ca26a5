//! Untrusted text made inert before a person reads it.
//!
//! An agent writes the command, the working directory, the planner's words
//! and a command's output; a person reads them on a web page, in a
//! notification or in a terminal, and decides. Characters that act instead
//! of showing (terminal escape sequences, a carriage return that rewrites
//! the line, bidirectional overrides that reorder it, zero-width and tag
//! characters that hide text) could make the screen show something other
//! than what will run. Every view of untrusted text goes through this one
//! table, so the web UI, the notifications, the planner's transcript and the
//! CLI agree on what is shown.
//!
//! Each such character becomes one visible stand-in, never nothing, so a
//! person sees that something was there and lengths stay comparable.
//!
//! It also owns the one way text is shortened to a budget, in characters
//! or in bytes: a cut never splits a character, and a shortened text
//! shown to a person says so with [`ELLIPSIS`]. It must never do I/O nor
//! decide what a text means: callers choose the budget and what is cut.

use std::borrow::Cow;

/// The mark a shortened text ends with when shown to a person.
pub const ELLIPSIS: char = '…';

/// The char boundary of `text` nearest at or before byte `index` (its
/// length when `index` is past the end), so an offset from elsewhere
/// never splits a character.
pub fn floor_boundary(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The char boundary of `text` nearest at or after byte `index` (its
/// length when `index` is past the end).
pub fn ceil_boundary(text: &str, index: usize) -> usize {
    let mut start = index.min(text.len());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    start
}

/// The longest start of `text` of at most `max_bytes` bytes that ends on
/// a char boundary.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> &str {
    &text[..floor_boundary(text, max_bytes)]
}

/// The first `max` characters of `text`, or all of it.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// `text` shortened in place to at most `max_bytes` bytes on a char
/// boundary, unmarked (for a payload with its own "truncated" flag);
/// whether anything was cut.
pub fn cut_bytes(text: &mut String, max_bytes: usize) -> bool {
    let end = floor_boundary(text, max_bytes);
    let cut = end < text.len();
    text.truncate(end);
    cut
}

/// `text` in at most `max` characters, the last one [`ELLIPSIS`] when
/// anything was cut.
pub fn clip_chars(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) if max == 0 => Cow::Borrowed(""),
        Some(_) => {
            let mut out = truncate_chars(text, max - 1).to_owned();
            out.push(ELLIPSIS);
            Cow::Owned(out)
        }
    }
}

/// `text` in at most `max_bytes` bytes, on a char boundary, ending in
/// [`ELLIPSIS`] when anything was cut; a budget too small for the mark
/// gets the bare cut.
pub fn clip_bytes(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let Some(room) = max_bytes.checked_sub(ELLIPSIS.len_utf8()) else {
        return Cow::Borrowed(truncate_bytes(text, max_bytes));
    };
    let mut out = truncate_bytes(text, room).to_owned();
    out.push(ELLIPSIS);
    Cow::Owned(out)
}

/// `text` in about `budget` bytes with its middle left out: its head and
/// tail kept on char boundaries around a note of how many bytes were
/// omitted (`[… N bytes omitted …]`, on a line of its own, on top of the
/// budget). For output whose end says as much as its start: the error a
/// command ends with survives where a plain cut would drop it.
pub fn clip_middle(text: &str, budget: usize) -> Cow<'_, str> {
    if text.len() <= budget {
        return Cow::Borrowed(text);
    }
    let head = floor_boundary(text, budget / 2);
    let tail = ceil_boundary(text, text.len() - (budget - head)).max(head);
    Cow::Owned(format!(
        "{}\n[… {} bytes omitted …]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    ))
}

/// Whether `c` is a character that acts on a screen instead of showing:
/// C0 and C1 controls and DEL (a newline and a tab are judged by the
/// caller), and the invisible formatting characters.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Characters that change how text displays or hide text without showing
/// themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        // Soft hyphen, combining grapheme joiner, Arabic letter mark,
        // Mongolian vowel separator.
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}'
        // Hangul fillers: they render as blank space.
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
        // Zero-width space, joiners, left-to-right and right-to-left marks.
        | '\u{200B}'..='\u{200F}'
        // Line and paragraph separators, bidirectional embeddings and
        // overrides.
        | '\u{2028}'..='\u{202E}'
        // Word joiner, invisible operators, bidirectional isolates,
        // deprecated format characters.
        | '\u{2060}'..='\u{206F}'
        // Byte order mark (zero-width no-break space).
        | '\u{FEFF}'
        // Interlinear annotation.
        | '\u{FFF9}'..='\u{FFFB}'
        // Tag characters: invisible copies of ASCII that can smuggle text.
        | '\u{E0000}'..='\u{E007F}'
        // Variation selectors supplement: invisible, can carry data.
        | '\u{E0100}'..='\u{E01EF}')
}

/// The visible stand-in for an unsafe character: the Unicode control
/// pictures for C0 (`ESC` is `␛`, a carriage return `␍`), `␡` for DEL, and
/// `�` for the rest.
pub fn stand_in(c: char) -> char {
    match c {
        '\0'..='\u{1F}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'),
        '\u{7F}' => '\u{2421}',
        _ => '\u{FFFD}',
    }
}

/// `text` with every unsafe character replaced by its stand-in; newlines
/// and tabs are kept, for text that spans lines (output, a plan).
pub fn inert(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || c == '\t' || !is_unsafe(c) {
                c
            } else {
                stand_in(c)
            }
        })
        .collect()
}

/// `text` on one line: as [`inert`], and newlines and tabs replaced too
/// (a list row, a command, a name).
pub fn inert_line(text: &str) -> String {
    text.chars()
        .map(|c| if is_unsafe(c) { stand_in(c) } else { c })
        .collect()
}

/// The first unsafe character of `text`, with its byte offset, for a
/// refusal that says what and where (a working directory must hold none,
/// not even a newline).
pub fn first_unsafe(text: &str) -> Option<(usize, char)> {
    text.char_indices().find(|&(_, c)| is_unsafe(c))
}

/// A command, a path or a flag quoted inside a sentence, as a Markdown
/// code span: delimited by one more backtick than its longest run of
/// backticks, so a quoted command that holds backticks (`` echo `id` ``)
/// still reads back whole. The policy writes its reasons with it; the web
/// UI shows each span as code ([`spans`]) and a terminal shows the
/// Markdown as it is.
pub fn code(quoted: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in quoted.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // Reading back strips one space from each side when both are there,
    // and a backtick at an edge would merge with the fence.
    let pad = quoted.starts_with('`')
        || quoted.ends_with('`')
        || (quoted.len() >= 2
            && quoted.starts_with(' ')
            && quoted.ends_with(' ')
            && !quoted.trim().is_empty());
    if pad {
        format!("{fence} {quoted} {fence}")
    } else {
        format!("{fence}{quoted}{fence}")
    }
}

/// A piece of a sentence written with [`code`] spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span<'a> {
    /// Words.
    Text(&'a str),
    /// Something quoted as code.
    Code(&'a str),
}

/// `sentence` split into words and code spans, by CommonMark's rule: a run
/// of n backticks opens a span that the next run of exactly n backticks
/// closes; a run with no match is text.
pub fn spans(sentence: &str) -> Vec<Span<'_>> {
    let bytes = sentence.as_bytes();
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let body = i + n;
        let mut j = body;
        let close = loop {
            if j >= bytes.len() {
                break None;
            }
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    break Some(j);
                }
                j += m;
            } else {
                j += 1;
            }
        };
        let Some(close) = close else {
            i = body;
            continue;
        };
        if text_from < i {
            out.push(Span::Text(&sentence[text_from..i]));
        }
        let mut quoted = &sentence[body..close];
        if quoted.len() >= 2
            && quoted.starts_with(' ')
            && quoted.ends_with(' ')
            && !quoted.trim().is_empty()
        {
            quoted = &quoted[1..quoted.len() - 1];
        }
        out.push(Span::Code(quoted));
        i = close + n;
        text_from = i;
    }
    if text_from < bytes.len() {
        out.push(Span::Text(&sentence[text_from..]));
    }
    out
}

/// What kind of JSON value `v` is, with its article, for a message that
/// says what was sent instead of what was wanted ("got an array").
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_round_to_whole_characters() {
        let s = "aé€b"; // 1 + 2 + 3 + 1 bytes
        assert_eq!(floor_boundary(s, 2), 1);
        assert_eq!(ceil_boundary(s, 2), 3);
        assert_eq!(ceil_boundary(s, 4), 6);
        assert_eq!(ceil_boundary(s, 3), 3);
        assert_eq!(ceil_boundary(s, 99), s.len());
    }

    #[test]
    fn a_middle_cut_keeps_head_and_tail() {
        assert_eq!(clip_middle("short", 10), "short");
        let text = format!("{}{}", "a".repeat(10), "b".repeat(10));
        assert_eq!(clip_middle(&text, 8), "aaaa\n[… 12 bytes omitted …]\nbbbb");
        // Never inside a character: the head rounds down, the tail up.
        let wide = "é".repeat(10); // 20 bytes
        let cut = clip_middle(&wide, 7);
        assert_eq!(cut, "é\n[… 14 bytes omitted …]\néé");
    }

    #[test]
    fn a_boundary_never_splits_a_character() {
        // "a→b": `→` is three bytes, 1..4.
        let s = "a→b";
        assert_eq!(
            (0..=6).map(|i| floor_boundary(s, i)).collect::<Vec<_>>(),
            [0, 1, 1, 1, 4, 5, 5]
        );
        assert_eq!(floor_boundary("", 3), 0);
    }

    #[test]
    fn byte_cuts_end_on_a_character() {
        assert_eq!(truncate_bytes("abc", 3), "abc");
        assert_eq!(truncate_bytes("abc", 9), "abc");
        assert_eq!(truncate_bytes("a→b", 2), "a");
        assert_eq!(truncate_bytes("a→b", 4), "a→");
        assert_eq!(truncate_bytes("abc", 0), "");
        assert_eq!(truncate_bytes("😀", 3), "");

        let cut = |s: &str, cap| {
            let mut s = s.to_owned();
            let was = cut_bytes(&mut s, cap);
            (s, was)
        };
        assert_eq!(cut("abc", 3), ("abc".into(), false));
        assert_eq!(cut("a→b", 2), ("a".into(), true));
        assert_eq!(cut("abc", 0), (String::new(), true));
        assert_eq!(cut("", 0), (String::new(), false));
    }

    #[test]
    fn character_cuts_count_characters_not_bytes() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("héllo", 5), "héllo");
        assert_eq!(truncate_chars("héllo", 0), "");
        assert_eq!(truncate_chars("", 3), "");
    }

    #[test]
    fn a_clipped_text_fits_its_budget_and_says_it_was_cut() {
        assert_eq!(clip_chars("abcdef", 4), "abc…");
        assert_eq!(clip_chars("abc", 4), "abc");
        assert_eq!(clip_chars("abcd", 4), "abcd");
        assert_eq!(clip_chars("ééééé", 3), "éé…");
        assert_eq!(clip_chars("😀😀", 1), "…");
        assert_eq!(clip_chars("abc", 0), "");
        assert_eq!(clip_chars("", 0), "");
        assert!(matches!(clip_chars("abc", 3), Cow::Borrowed("abc")));

        assert_eq!(clip_bytes("ééé", 5), "é…");
        assert_eq!(clip_bytes("ééé", 6), "ééé");
        assert_eq!(clip_bytes("éééé", 6), "é…");
        assert_eq!(clip_bytes("abcdef", 3), "…");
        // Too small for the mark: the cut alone, still within the budget.
        assert_eq!(clip_bytes("abcdef", 2), "ab");
        assert_eq!(clip_bytes("é", 1), "");
        assert_eq!(clip_bytes("abc", 0), "");
        for max in 0..12 {
            assert!(clip_bytes("aé→😀b", max).len() <= max, "{max}");
            assert!(clip_chars("aé→😀b", max).chars().count() <= max, "{max}");
        }
    }

    #[test]
    fn code_spans_read_back_whole() {
        for quoted in [
            "ls -la",
            "echo `id`",
            "`",
            "a``b",
            " x ",
            " ",
            "sed -i 's/a/b/' /etc/app.conf",
            "printf '%s' \"``\"",
        ] {
            let sentence = format!("before {} after", code(quoted));
            assert_eq!(
                spans(&sentence),
                vec![
                    Span::Text("before "),
                    Span::Code(quoted),
                    Span::Text(" after")
                ],
                "{sentence}"
            );
        }
        assert_eq!(code("ls"), "`ls`");
        assert_eq!(code("echo `id`"), "`` echo `id` ``");
        // An unmatched run is text, not the start of code.
        assert_eq!(spans("a ` b"), vec![Span::Text("a ` b")]);
        assert_eq!(spans("``a` b"), vec![Span::Text("``a` b")],);
        assert_eq!(spans(""), vec![]);
    }

    /// The one table: every class of character that acts instead of
    /// showing, and the ones that must stay as they are.
    #[test]
    fn the_character_table() {
        let unsafe_chars: &[(char, &str)] = &[
            ('\0', "NUL"),
            ('\u{7}', "BEL"),
            ('\u{8}', "backspace"),
            ('\r', "carriage return"),
            ('\u{1B}', "ESC, terminal escape sequences"),
            ('\u{7F}', "DEL"),
            ('\u{85}', "NEL"),
            ('\u{9B}', "CSI as one byte"),
            ('\u{AD}', "soft hyphen"),
            ('\u{34F}', "combining grapheme joiner"),
            ('\u{61C}', "Arabic letter mark"),
            ('\u{115F}', "Hangul choseong filler"),
            ('\u{180E}', "Mongolian vowel separator"),
            ('\u{200B}', "zero-width space"),
            ('\u{200D}', "zero-width joiner"),
            ('\u{200E}', "left-to-right mark"),
            ('\u{200F}', "right-to-left mark"),
            ('\u{2028}', "line separator"),
            ('\u{2029}', "paragraph separator"),
            ('\u{202A}', "left-to-right embedding"),
            ('\u{202E}', "right-to-left override"),
            ('\u{2060}', "word joiner"),
            ('\u{2066}', "left-to-right isolate"),
            ('\u{2069}', "pop directional isolate"),
            ('\u{3164}', "Hangul filler"),
            ('\u{FEFF}', "byte order mark"),
            ('\u{FFF9}', "interlinear annotation anchor"),
            ('\u{E0041}', "tag latin capital A"),
            ('\u{E007F}', "cancel tag"),
            ('\u{E0100}', "variation selector 17"),
        ];
        for &(c, name) in unsafe_chars {
            assert!(is_unsafe(c), "{name} (U+{:04X}) must be unsafe", c as u32);
            let shown = inert_line(&format!("a{c}b"));
            assert_eq!(shown.chars().count(), 3, "{name}: one stand-in");
            assert!(!shown.contains(c), "{name} survives");
        }
        for c in [
            'a', ' ', '~', 'é', 'ß', 'Ж', '中', '€', '→', '✓', '😀', '\u{FE0F}', '\u{301}',
        ] {
            assert!(!is_unsafe(c), "U+{:04X} must be kept", c as u32);
            assert_eq!(inert_line(&c.to_string()), c.to_string());
        }
    }

    #[test]
    fn stand_ins_are_visible_and_say_what_was_there() {
        assert_eq!(inert("\u{1B}[2J"), "\u{241B}[2J");
        assert_eq!(inert("ok\rrm"), "ok\u{240D}rm");
        assert_eq!(inert("x\u{7F}"), "x\u{2421}");
        assert_eq!(inert("txt\u{202E}exe"), "txt\u{FFFD}exe");
    }

    #[test]
    fn text_keeps_its_lines_and_a_line_does_not() {
        assert_eq!(inert("a\n\tb"), "a\n\tb");
        assert_eq!(inert_line("a\n\tb"), "a\u{240A}\u{2409}b");
    }

    #[test]
    fn the_first_unsafe_character_is_found_with_its_offset() {
        assert_eq!(first_unsafe("/srv/app"), None);
        assert_eq!(first_unsafe("/srv/é\u{1B}x"), Some((7, '\u{1B}')));
        assert_eq!(first_unsafe("/srv\n"), Some((4, '\n')));
    }
}
