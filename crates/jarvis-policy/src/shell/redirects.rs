//! Redirections and here-documents as the walk meets them, here-documents
//! ended where bash ends them.

use brush_parser::ast;
use brush_parser::word::{self as bword};
use jarvis_core::text::code;

use super::parser_guard::unpanicked;
use super::walker::{Frame, Walker};
use super::words::WordBuilder;
use super::{Context, Redirect, RedirectOp, ShellError, Stdin, Word, options, truncate};

impl Walker<'_> {
    pub(super) fn redirect(
        &mut self,
        r: &ast::IoRedirect,
        depth: usize,
        frame: &mut Frame,
    ) -> Result<(), ShellError> {
        use ast::{IoFileRedirectKind as K, IoFileRedirectTarget as T, IoRedirect as R};
        match r {
            R::File(_, kind, target) => {
                let op = match kind {
                    K::Read => RedirectOp::Read,
                    K::Write | K::Clobber => RedirectOp::Write,
                    K::Append => RedirectOp::Append,
                    K::ReadAndWrite => RedirectOp::ReadWrite,
                    K::DuplicateInput | K::DuplicateOutput => RedirectOp::Duplicate,
                };
                match target {
                    T::Filename(w) | T::Duplicate(w) => {
                        let target = self.word(&w.value, depth, frame)?;
                        // `>&file` and `<&file` with a word that is not a
                        // descriptor number redirect to a file.
                        let op = if op == RedirectOp::Duplicate
                            && !(target.literal
                                && (target.text == "-"
                                    || target.text.chars().all(|c| c.is_ascii_digit())))
                        {
                            match kind {
                                K::DuplicateInput => RedirectOp::Read,
                                _ => RedirectOp::Write,
                            }
                        } else {
                            op
                        };
                        if op == RedirectOp::Read {
                            frame.stdin = Some(Stdin::File);
                        }
                        frame.redirects.push(Redirect { op, target });
                    }
                    T::Fd(_) => {}
                    T::ProcessSubstitution(_, sub) => {
                        self.compound_list(
                            &sub.list,
                            depth + 1,
                            &Frame::default().with(Context::ProcessSubstitution),
                        )?;
                    }
                }
            }
            R::HereDocument(_, doc) => {
                if self.in_arithmetic {
                    // Bash reads a command substitution inside `$((…))` by
                    // other quoting rules, and a here-document there ends
                    // elsewhere than the parser says.
                    return Err(ShellError::Syntax {
                        what: self.what.to_owned(),
                        detail: format!(
                            "a here-document `<<{}` inside arithmetic, which bash reads \
                             another way",
                            truncate(&doc.here_end.value, 40)
                        ),
                    });
                }
                if doc.requires_expansion {
                    self.heredoc_ends_as_bash_reads_it(doc)?;
                }
                let body = if doc.requires_expansion {
                    self.heredoc_body(&doc.doc.value, depth, frame)?
                } else {
                    Word::literal(&doc.doc.value)
                };
                frame.stdin = Some(Stdin::Text(body));
            }
            R::HereString(_, w) => {
                let mut body = self.word(&w.value, depth, frame)?;
                body.text.push('\n');
                frame.stdin = Some(Stdin::Text(body));
            }
            R::OutputAndError(w, append) => {
                let target = self.word(&w.value, depth, frame)?;
                let op = if *append {
                    RedirectOp::Append
                } else {
                    RedirectOp::Write
                };
                frame.redirects.push(Redirect { op, target });
            }
        }
        Ok(())
    }

    /// With an unquoted delimiter, bash joins a line ending in a backslash
    /// with the next *before* comparing it with the delimiter, and the
    /// parser does not: `EO\` + `F` ends the document in bash, and a body
    /// line `x\` swallows the delimiter line after it. Either way the
    /// commands after it are not the ones the parser saw (text hidden in a
    /// "document" would run), so such a line is refused.
    fn heredoc_ends_as_bash_reads_it(&self, doc: &ast::IoHereDocument) -> Result<(), ShellError> {
        let delimiter = doc.here_end.value.as_str();
        let body = doc.doc.value.as_str();
        let mut joined = String::with_capacity(body.len());
        let mut continued = false;
        for line in body.split_inclusive('\n') {
            let text = line.strip_suffix('\n').unwrap_or(line);
            let trailing = text.len() - text.trim_end_matches('\\').len();
            let mut text = text;
            if !continued && doc.remove_tabs {
                text = text.trim_start_matches('\t');
            }
            if trailing % 2 == 1 && line.ends_with('\n') {
                joined.push_str(&text[..text.len() - 1]);
                continued = true;
                continue;
            }
            joined.push_str(text);
            if joined == delimiter {
                return Err(self.continued_heredoc(delimiter));
            }
            joined.clear();
            continued = false;
        }
        if continued {
            // The last body line goes on into what the parser took for the
            // delimiter line.
            return Err(self.continued_heredoc(delimiter));
        }
        Ok(())
    }

    fn continued_heredoc(&self, delimiter: &str) -> ShellError {
        ShellError::Syntax {
            what: self.what.to_owned(),
            detail: format!(
                "a line of the here-document ending {} is continued with a backslash, \
                 so bash ends the document at another line than it appears to",
                code(&truncate(delimiter, 40))
            ),
        }
    }

    fn heredoc_body(
        &mut self,
        body: &str,
        depth: usize,
        frame: &Frame,
    ) -> Result<Word, ShellError> {
        let pieces = unpanicked(|| bword::parse_heredoc(body, &options()))
            .ok_or_else(|| self.parser_failed(body))?
            .map_err(|e| ShellError::Syntax {
                what: format!("a here-document in {}", self.what),
                detail: e.to_string(),
            })?;
        let mut w = WordBuilder::new(body);
        self.pieces(&pieces, true, depth, frame, &mut w)?;
        Ok(w.finish())
    }
}
