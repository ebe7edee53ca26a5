//! An awk program's tokens read for the constructs that run commands,
//! write or read files and read the environment, across nesting, `;`,
//! braces and newlines.

use crate::script::ScriptEffects;

use super::lexer::{ASSIGNMENTS, Token, is_name, is_op, pair_up, tokenize};
use super::{MAX_PROGRAM, command, input_file, output_file};

/// Reads one program's text into `out`.
pub(super) fn program(text: &str, out: &mut ScriptEffects) {
    if text.len() > MAX_PROGRAM {
        out.unreadable = true;
        return;
    }
    let Some(tokens) = tokenize(text) else {
        out.unreadable = true;
        return;
    };
    let Some(partner) = pair_up(&tokens) else {
        out.unreadable = true;
        return;
    };
    let program = Program {
        tokens: &tokens,
        partner: &partner,
    };
    // Pipes a print statement sends its output through.
    let mut print_pipes = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Name(n) => match n.as_str() {
                "print" | "printf" => program.print_statement(i, &mut print_pipes, out),
                "getline" => program.getline_input(i, out),
                "system" => out.runs.push(program.system_command(i)),
                "ENVIRON" | "PROCINFO" => out.environment = true,
                // Every global by name: `SYMTAB["ENVIRON"]`, `SYMTAB["ARGV"][1] = f`.
                "SYMTAB" => {
                    out.environment = true;
                    out.reads_unknown = true;
                }
                "ARGV" | "ARGC" if program.changes_argv(i) => out.reads_unknown = true,
                "sub" | "gsub" | "split" | "patsplit" | "asort" | "asorti" | "match"
                    if program.call_touches_argv(i) =>
                {
                    out.reads_unknown = true;
                }
                // gawk 4.0 loaded shared libraries with a function.
                "extension" if is_op(tokens.get(i + 1), &["("]) => out.from_file = true,
                _ => {}
            },
            Token::Op("|" | "|&") if !print_pipes[i] => {
                if is_name(tokens.get(i + 1), &["getline"]) {
                    command(program.piped_command(i), out);
                } else {
                    // A pipe that is neither a print's nor getline's: no
                    // awk accepts it, so nothing says what it runs.
                    out.runs.push(None);
                }
            }
            Token::At => program.directive(i, out),
            Token::Newline | Token::Str(..) | Token::Regex | Token::Number | Token::Op(_) => {}
        }
    }
}

pub(super) struct Program<'a> {
    tokens: &'a [Token],
    partner: &'a [usize],
}

impl Program<'_> {
    fn get(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i)
    }

    /// The text of `tokens[from..to]` when it is one string literal, bare
    /// or in parentheses, that every awk decodes alike.
    fn literal(&self, from: usize, to: usize) -> Option<String> {
        match self.tokens.get(from..to)? {
            [Token::Str(s, true)] => Some(s.clone()),
            [Token::Op("("), Token::Str(s, true), Token::Op(")")] => Some(s.clone()),
            _ => None,
        }
    }

    /// `print …`/`printf …` from `start` to its end: a `>`, `>>`, `|` or
    /// `|&` at the top level of its expression list redirects its output
    /// (in parentheses or brackets it compares); what follows to the end of
    /// the statement names the file or command.
    fn print_statement(&self, start: usize, print_pipes: &mut [bool], out: &mut ScriptEffects) {
        let mut j = start + 1;
        let mut redirect = None;
        let end = loop {
            match self.get(j) {
                None | Some(Token::Newline) => break j,
                Some(Token::Op(";" | "}" | ")" | "]" | "{")) => break j,
                Some(Token::Op("(" | "[")) => j = self.partner[j] + 1,
                Some(Token::Op(op @ (">" | ">>" | "|" | "|&"))) if redirect.is_none() => {
                    redirect = Some((j, *op));
                    j += 1;
                }
                _ => j += 1,
            }
        };
        let Some((at, op)) = redirect else { return };
        if at + 1 >= end {
            out.unreadable = true;
            return;
        }
        let target = self.literal(at + 1, end);
        if op.starts_with('>') {
            match target {
                Some(file) => output_file(&file, out),
                None => out.writes_unknown = true,
            }
        } else {
            print_pipes[at] = true;
            command(target, out);
        }
    }

    /// `getline [var] < file`: a `<` after `getline` (and its variable)
    /// before anything that ends the getline expression reads that file.
    fn getline_input(&self, start: usize, out: &mut ScriptEffects) {
        let mut j = start + 1;
        loop {
            match self.get(j) {
                None => return,
                Some(Token::Op("<")) => break,
                Some(Token::Op("(" | "[")) => j = self.partner[j] + 1,
                Some(Token::Newline | Token::Op(_)) => {
                    // The variable read into: `$NF`, `$-1`, `x++`.
                    if matches!(
                        self.get(j),
                        Some(Token::Op("$" | "-" | "+" | "!" | "++" | "--"))
                    ) {
                        j += 1;
                    } else {
                        return;
                    }
                }
                Some(Token::Name(n))
                    if matches!(n.as_str(), "in" | "getline" | "print" | "printf") =>
                {
                    return;
                }
                Some(_) => j += 1,
            }
        }
        match self.source_literal(j + 1) {
            Some(file) => input_file(&file, out),
            None => out.reads_unknown = true,
        }
    }

    /// The file a `getline <` reads when it is a literal that nothing after
    /// it extends: gawk and mawk read `getline < "a" "b"` from `a`, busybox
    /// and the original awk from `ab`.
    fn source_literal(&self, from: usize) -> Option<String> {
        let ends = |k: usize| match self.get(k) {
            None | Some(Token::Newline) => true,
            Some(Token::Op(o)) => matches!(
                *o,
                ";" | "{"
                    | "}"
                    | ")"
                    | "]"
                    | ","
                    | "&&"
                    | "||"
                    | "?"
                    | ":"
                    | ">"
                    | "<"
                    | ">="
                    | "<="
                    | "=="
                    | "!="
                    | "|"
                    | "|&"
                    | "~"
                    | "!~"
            ),
            _ => false,
        };
        match self.get(from)? {
            Token::Str(s, true) if ends(from + 1) => Some(s.clone()),
            Token::Op("(") if self.partner[from] == from + 2 && ends(from + 3) => {
                self.literal(from, from + 3)
            }
            Token::Newline
            | Token::Str(..)
            | Token::Regex
            | Token::Number
            | Token::Name(_)
            | Token::Op(_)
            | Token::At => None,
        }
    }

    /// The command of `CMD | getline` when it is one string literal; the
    /// left side of `|` reaches back to the nearest token that binds less
    /// tightly, and anything else there makes it unknown.
    fn piped_command(&self, pipe: usize) -> Option<String> {
        let starts = |k: Option<usize>| match k.map(|k| &self.tokens[k]) {
            None | Some(Token::Newline) => true,
            Some(Token::Op(o)) => {
                matches!(
                    *o,
                    ";" | "{" | "}" | "(" | "[" | "," | "&&" | "||" | "?" | ":"
                ) || ASSIGNMENTS.contains(o)
            }
            Some(Token::Name(n)) => matches!(n.as_str(), "return" | "do" | "else"),
            _ => false,
        };
        match self.tokens.get(..pipe)? {
            [.., Token::Str(s, true)] if starts(pipe.checked_sub(2)) => Some(s.clone()),
            [.., Token::Op("("), Token::Str(s, true), Token::Op(")")]
                if starts(pipe.checked_sub(4)) =>
            {
                Some(s.clone())
            }
            _ => None,
        }
    }

    /// `system(CMD)`: the command when it is one string literal.
    fn system_command(&self, at: usize) -> Option<String> {
        if !is_op(self.get(at + 1), &["("]) {
            return None;
        }
        self.literal(at + 2, self.partner[at + 1])
    }

    /// Whether `ARGV`/`ARGC` at `at` is changed here (assigned, incremented,
    /// deleted, read into by getline) or `ARGV` is handed over whole (to
    /// `split`, to a function that may fill it), which changes the files
    /// awk reads.
    fn changes_argv(&self, at: usize) -> bool {
        let before = at.checked_sub(1).and_then(|k| self.get(k));
        if is_op(before, &["++", "--"]) || is_name(before, &["delete", "getline"]) {
            return true;
        }
        let mut after = at + 1;
        let subscripted = is_op(self.get(after), &["["]);
        if subscripted {
            after = self.partner[after] + 1;
        }
        if is_op(self.get(after), ASSIGNMENTS) || is_op(self.get(after), &["++", "--"]) {
            return true;
        }
        is_name(self.get(at), &["ARGV"]) && !subscripted && !is_name(before, &["in"])
    }

    /// Whether a call of a function that assigns to its arguments (`sub`'s
    /// target, `split`'s array) names `ARGV` or `ARGC` among them.
    fn call_touches_argv(&self, at: usize) -> bool {
        if !is_op(self.get(at + 1), &["("]) {
            return false;
        }
        let close = self.partner[at + 1];
        self.tokens[at + 2..close]
            .iter()
            .any(|t| matches!(t, Token::Name(n) if n == "ARGV" || n == "ARGC"))
    }

    /// `@include "f"` and `@load "lib"` bring in code from files; `@f(…)`
    /// calls the function a variable names, `system` among those gawk
    /// allows; `@/re/` is a typed regex; `@namespace` changes nothing here.
    fn directive(&self, at: usize, out: &mut ScriptEffects) {
        match self.get(at + 1) {
            Some(Token::Name(n)) if n == "include" || n == "load" => out.from_file = true,
            Some(Token::Name(n)) if n == "namespace" => {}
            Some(Token::Name(_)) if is_op(self.get(at + 2), &["("]) => out.runs.push(None),
            Some(Token::Regex) => {}
            _ => out.unreadable = true,
        }
    }
}
