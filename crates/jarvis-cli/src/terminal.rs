//! What the CLI puts on a person's terminal.
//!
//! Commands, working directories, reasons (which quote the command),
//! previews, the planner's words and a command's output are written by an
//! agent or a host. Printed raw, an escape sequence could clear the screen,
//! rewrite the line above or hide another pending action, and a
//! bidirectional override could reorder what the person reads before they
//! approve it. Every such string goes through here, and so through the one
//! table in `jarvis_core::text` that the web UI and the notifications use.
//! Machine output (`--json`) is left to its encoder.

use std::io::{self, Write};

/// Untrusted text on one line: newlines and tabs shown as stand-ins too.
pub fn line(text: &str) -> String {
    jarvis_core::text::inert_line(text)
}

/// Untrusted text that spans lines: newlines and tabs kept.
pub fn text(text: &str) -> String {
    jarvis_core::text::inert(text)
}

/// A writer that passes bytes on as text made inert: invalid UTF-8 becomes
/// `�`, and a character split across two writes is held until it is whole,
/// so streamed output is shown exactly as the same bytes would be at once.
pub struct Inert<W: Write> {
    inner: W,
    /// The start of a character whose remaining bytes have not come yet.
    pending: Vec<u8>,
}

impl<W: Write> Inert<W> {
    pub fn new(inner: W) -> Self {
        Inert {
            inner,
            pending: Vec::new(),
        }
    }

    /// Writes what is held back (an incomplete character at the end of the
    /// stream shows as `�`).
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.inner.write_all("\u{FFFD}".as_bytes())?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Write for Inert<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut shown = String::with_capacity(self.pending.len());
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    shown.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // Checked by from_utf8 just above.
                    shown.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            shown.push('\u{FFFD}');
                            rest = &after[bad..];
                        }
                        // Incomplete at the end: wait for the next write.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let held = rest.to_vec();
        self.pending = held;
        self.inner.write_all(text(&shown).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&[u8]]) -> String {
        let mut out = Inert::new(Vec::new());
        for c in chunks {
            out.write_all(c).expect("write to a vector");
        }
        out.finish().expect("finish");
        String::from_utf8(out.inner).expect("the writer emits UTF-8")
    }

    #[test]
    fn escape_sequences_and_overrides_arrive_inert() {
        let shown = through(&[
            b"ok\x1b[2J\x1b[1A\rpending: none\n",
            "a\u{202E}b\n".as_bytes(),
        ]);
        assert_eq!(
            shown,
            "ok\u{241B}[2J\u{241B}[1A\u{240D}pending: none\na\u{FFFD}b\n"
        );
    }

    #[test]
    fn a_character_split_between_writes_is_kept_whole() {
        let euro = "€".as_bytes();
        assert_eq!(through(&[&euro[..1], &euro[1..2], &euro[2..]]), "€");
        // The split one is an escape hidden in C1 form (U+009B, CSI).
        let csi = "\u{9B}".as_bytes();
        assert_eq!(through(&[&csi[..1], &csi[1..], b"2J"]), "\u{FFFD}2J");
    }

    #[test]
    fn invalid_bytes_and_a_cut_end_show_as_replacement() {
        assert_eq!(through(&[b"a\xffb"]), "a\u{FFFD}b");
        assert_eq!(through(&[&"€".as_bytes()[..2]]), "\u{FFFD}");
    }

    #[test]
    fn lines_and_text() {
        assert_eq!(line("a\nb\x1b"), "a\u{240A}b\u{241B}");
        assert_eq!(text("a\nb\x1b"), "a\nb\u{241B}");
    }
}
