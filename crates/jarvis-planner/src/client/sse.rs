//! Server-sent events, as a streamed chat completion arrives: bytes in
//! whatever pieces the network gives, events out.
//!
//! It follows the parts of the WHATWG event-stream rules a completion
//! needs: a line ends with CRLF, LF or CR (a CRLF split between two reads
//! is one end); the `data` lines of an event are joined with newlines; a
//! blank line ends the event; a line that starts with `:` is a comment (a
//! keep-alive); `event` names the event; other fields (`id`, `retry`) mean
//! nothing to a completion and are skipped. A line is held until it is
//! whole, and only then read as text, so a character split between two
//! reads is never mistaken for bad UTF-8.
//!
//! It holds at most one unfinished line and one unfinished event; the
//! caller bounds what it is fed.

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    /// Its `event` field, empty when it has none (a plain message).
    pub(super) name: String,
    /// Its `data` lines, joined with newlines.
    pub(super) data: String,
}

/// A line of the stream that is not UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the event stream is not UTF-8 text")]
pub(super) struct NotText {
    /// The line's number, from 1.
    pub(super) line: u64,
}

/// Turns the bytes of an event stream into events.
#[derive(Debug, Default)]
pub(super) struct Decoder {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The last read ended with a CR, so a LF that starts the next one
    /// ends no further line.
    after_cr: bool,
    /// Lines ended so far.
    lines: u64,
    /// The current event's data, if it has a `data` line yet.
    data: Option<String>,
    /// The current event's name.
    name: String,
}

impl Decoder {
    /// Reads `bytes`, appending the events they complete to `out`.
    pub(super) fn feed(
        &mut self,
        mut bytes: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> Result<(), NotText> {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.read_line(&line, out)?;
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// At the end of the stream: the last line, even without its line end,
    /// and the last event, even without the blank line that should end it
    /// (a server that closes the stream has said all it will).
    pub(super) fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), NotText> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.read_line(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn read_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), NotText> {
        self.lines += 1;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| NotText { line: self.lines })?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => value.clone_into(&mut self.name),
            _ => {}
        }
        Ok(())
    }

    /// Ends the current event; one without data is no event.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let name = std::mem::take(&mut self.name);
        if let Some(data) = self.data.take() {
            out.push(SseEvent { name, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> SseEvent {
        SseEvent {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    /// Every event of `pieces` fed one after another, and at the end.
    fn decode(pieces: &[&[u8]]) -> Result<Vec<SseEvent>, NotText> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut out)?;
        }
        decoder.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn events_are_split_on_blank_lines_with_any_line_end() {
        let stream = b"data: one\n\ndata: two\r\n\r\ndata: three\r\rdata: four\n\n";
        let want = vec![
            event("", "one"),
            event("", "two"),
            event("", "three"),
            event("", "four"),
        ];
        assert_eq!(decode(&[stream]), Ok(want.clone()));
        // The same bytes one at a time: a CRLF split between two reads is
        // one line end, not a blank line.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(&bytes), Ok(want));
        assert_eq!(
            decode(&[b"data: a\r", b"\ndata: b\r", b"\n\r\n"]),
            Ok(vec![event("", "a\nb")])
        );
    }

    #[test]
    fn data_lines_join_comments_and_other_fields_are_skipped() {
        let stream =
            b": keep-alive\nid: 7\nretry: 10\nevent: error\ndata:first\ndata:  second\ndata\n\n";
        assert_eq!(
            decode(&[stream]),
            Ok(vec![event("error", "first\n second\n")])
        );
        // No data, no event; the name does not leak into the next one.
        assert_eq!(
            decode(&[b"event: ping\n\ndata: x\n\n"]),
            Ok(vec![event("", "x")])
        );
    }

    #[test]
    fn a_character_split_between_reads_is_kept_whole() {
        let text = "data: {\"content\":\"€ and ü\"}\n\n".as_bytes();
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(
            decode(&bytes),
            Ok(vec![event("", "{\"content\":\"€ and ü\"}")])
        );
    }

    #[test]
    fn the_last_event_counts_without_its_blank_line() {
        assert_eq!(
            decode(&[b"data: a\n\ndata: [DONE]"]),
            Ok(vec![event("", "a"), event("", "[DONE]")])
        );
        assert_eq!(decode(&[b""]), Ok(vec![]));
        assert_eq!(decode(&[b"\n\n\n"]), Ok(vec![]));
    }

    #[test]
    fn any_split_of_a_stream_reads_the_same() {
        let stream =
            "data: {\"a\":\"€\"}\r\n\r\n: ping\n\nevent: x\ndata: 1\ndata: 2\r\rdata: [DONE]\n\n"
                .as_bytes();
        let whole = decode(&[stream]);
        assert_eq!(whole.as_ref().map(Vec::len), Ok(3));
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let split = [&stream[..a], &stream[a..b], &stream[b..]];
                assert_eq!(decode(&split), whole, "split at {a} and {b}");
            }
        }
    }

    #[test]
    fn bad_utf8_names_its_line() {
        assert_eq!(
            decode(&[b"data: ok\n\ndata: \xff\xfe\n\n"]),
            Err(NotText { line: 3 })
        );
    }
}
