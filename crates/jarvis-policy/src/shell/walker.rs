//! The walk of brush-parser's AST: lists, pipelines, compound commands,
//! functions and simple commands, each simple command becoming an
//! [`Invocation`] with the context it runs in.

use brush_parser::ast;
use jarvis_core::text::code;

use super::parser_guard::{
    describe_parse_error, expansion_after_heredoc, oversized_number, spaced_parens,
    syntactic_depth, unpanicked,
};
use super::{
    Assignment, Context, FunctionDef, Invocation, MAX_NESTING, Redirect, Script, ShellError, Stdin,
    Word, endless_condition, options, truncate,
};

/// What the walk carries down into nested constructs.
#[derive(Clone, Default)]
pub(super) struct Frame {
    pub(super) context: Vec<Context>,
    pub(super) redirects: Vec<Redirect>,
    pub(super) stdin: Option<Stdin>,
}

impl Frame {
    pub(super) fn with(&self, c: Context) -> Frame {
        let mut f = self.clone();
        f.context.push(c);
        f
    }
}

/// The parts of one simple command gathered so far.
struct SimpleParts {
    pub(super) frame: Frame,
    pub(super) words: Vec<Word>,
    pub(super) assignments: Vec<Assignment>,
}

pub(super) struct Walker<'a> {
    pub(super) script: Script,
    pub(super) what: &'a str,
    /// The text being walked has `( (`: two parentheses apart.
    pub(super) spaced_parens: bool,
    /// Walking a command substitution inside arithmetic.
    pub(super) in_arithmetic: bool,
}

impl Walker<'_> {
    pub(super) fn program_text(
        &mut self,
        text: &str,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        if depth > MAX_NESTING {
            return Err(ShellError::TooDeep { limit: MAX_NESTING });
        }
        // Parsers that recurse per nesting level can exhaust the stack on
        // hostile input long before MAX_NESTING is reached by *our* count, so
        // the syntactic nesting is bounded up front, before brush sees it.
        if syntactic_depth(text) > MAX_NESTING {
            return Err(ShellError::TooDeep { limit: MAX_NESTING });
        }
        if let Some(n) = oversized_number(text) {
            // brush-parser unwraps these numbers and would panic.
            return Err(ShellError::Syntax {
                what: self.what.to_owned(),
                detail: format!(
                    "the number {n} is too large for a file descriptor or directory-stack index"
                ),
            });
        }
        if let Some(detail) = expansion_after_heredoc(text) {
            return Err(ShellError::Syntax {
                what: self.what.to_owned(),
                detail,
            });
        }
        let parsed =
            unpanicked(|| brush_parser::Parser::new(text.as_bytes(), &options()).parse_program());
        let program = match parsed {
            Some(Ok(program)) => program,
            Some(Err(e)) => {
                return Err(ShellError::Syntax {
                    what: self.what.to_owned(),
                    detail: describe_parse_error(&e),
                });
            }
            None => return Err(self.parser_failed(text)),
        };
        let outer_spaced = std::mem::replace(&mut self.spaced_parens, spaced_parens(text));
        for cc in &program.complete_commands {
            self.compound_list(cc, depth, frame)?;
        }
        self.spaced_parens = outer_spaced;
        Ok(())
    }

    pub(super) fn parser_failed(&self, text: &str) -> ShellError {
        ShellError::Syntax {
            what: self.what.to_owned(),
            detail: format!(
                "the shell parser fails on the text {}",
                code(&truncate(text, 80))
            ),
        }
    }

    /// Appends another walk's findings, shifting its indices.
    fn absorb(&mut self, other: Script) {
        let base = self.script.invocations.len();
        for mut inv in other.invocations {
            if let Stdin::Pipe(up) = &mut inv.stdin {
                for i in up.iter_mut() {
                    *i += base;
                }
            }
            self.script.invocations.push(inv);
        }
        for f in other.functions {
            self.script.functions.push(FunctionDef {
                name: f.name,
                body: f.body.start + base..f.body.end + base,
            });
        }
        self.script.opaque.extend(other.opaque);
    }

    pub(super) fn compound_list(
        &mut self,
        list: &ast::CompoundList,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        for ast::CompoundListItem(and_or, sep) in &list.0 {
            let frame = if matches!(sep, ast::SeparatorOperator::Async) {
                frame.with(Context::Background)
            } else {
                frame.clone()
            };
            self.pipeline(&and_or.first, depth, &frame)?;
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p, depth, &frame)?;
            }
        }
        Ok(())
    }

    pub(super) fn pipeline(
        &mut self,
        p: &ast::Pipeline,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        let mut upstream: Vec<usize> = Vec::new();
        for (i, cmd) in p.seq.iter().enumerate() {
            let mut f = frame.clone();
            if i > 0 {
                f.stdin = Some(Stdin::Pipe(upstream.clone()));
            }
            let start = self.script.invocations.len();
            self.command(cmd, depth, &f)?;
            if i == 0
                && p.timed.is_some()
                && matches!(cmd, ast::Command::Simple(_))
                && self.script.invocations.len() > start
                && let Some(simple) = self.script.invocations.last_mut()
            {
                // In POSIX mode (`set -o posix`, which the line may set
                // anywhere before) `time` followed by an option is no
                // reserved word: `time -p time cmd` runs the program `time`
                // with every word after it. The pipeline's first command is
                // judged both ways.
                let posix = matches!(p.timed, Some(ast::PipelineTimed::TimedWithPosixOutput(_)))
                    .then(|| prefixed(simple, &["time", "-p"]));
                // After the reserved word `time`, bash takes `-p`, `--`
                // and another `time` as the reserved word's: `time time
                // X=1 cmd` runs `cmd`. The parser takes them for words.
                while simple
                    .words
                    .first()
                    .is_some_and(|w| matches!(w.raw.as_str(), "time" | "-p" | "--"))
                {
                    simple.words.remove(0);
                    while let Some(w) = simple.words.first()
                        && let Some(a) = bare_assignment(w)
                    {
                        simple.assignments.push(a);
                        simple.words.remove(0);
                    }
                }
                self.script.invocations.extend(posix);
            }
            upstream.extend(start..self.script.invocations.len());
        }
        Ok(())
    }

    pub(super) fn command(
        &mut self,
        cmd: &ast::Command,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        match cmd {
            ast::Command::Simple(s) => self.simple(s, depth, frame),
            ast::Command::Compound(c, redirects) => {
                let mut f = frame.clone();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut f)?;
                    }
                }
                self.compound(c, depth + 1, &f)
            }
            ast::Command::Function(def) => {
                let name = def.fname.value.clone();
                let start = self.script.invocations.len();
                let mut f = frame.with(Context::Function(name.clone()));
                if let Some(list) = &def.body.1 {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut f)?;
                    }
                }
                self.compound(&def.body.0, depth + 1, &f)?;
                let end = self.script.invocations.len();
                self.script.functions.push(FunctionDef {
                    name,
                    body: start..end,
                });
                Ok(())
            }
            ast::Command::ExtendedTest(test, redirects) => {
                let mut f = frame.clone();
                if let Some(list) = redirects {
                    for r in &list.0 {
                        self.redirect(r, depth, &mut f)?;
                    }
                }
                self.extended_test(&test.expr, depth, &f)
            }
        }
    }

    fn extended_test(
        &mut self,
        e: &ast::ExtendedTestExpr,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        use ast::ExtendedTestExpr as E;
        match e {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a, depth, frame)?;
                self.extended_test(b, depth, frame)
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a, depth, frame),
            // `-v NAME[SUBSCRIPT]` and the operands of `-eq`, `-lt`, …
            // are evaluated as arithmetic after quote removal, so a
            // `$(…)` that quotes kept from the word still runs there.
            E::UnaryTest(op, w) => {
                let word = self.word(&w.value, depth, frame)?;
                if matches!(op, ast::UnaryPredicate::ShellVariableIsSetAndAssigned) {
                    self.arithmetic_operand(&word, depth, frame)?;
                }
                Ok(())
            }
            E::BinaryTest(op, a, b) => {
                let left = self.word(&a.value, depth, frame)?;
                let right = self.word(&b.value, depth, frame)?;
                use ast::BinaryPredicate as B;
                if matches!(
                    op,
                    B::ArithmeticEqualTo
                        | B::ArithmeticNotEqualTo
                        | B::ArithmeticLessThan
                        | B::ArithmeticLessThanOrEqualTo
                        | B::ArithmeticGreaterThan
                        | B::ArithmeticGreaterThanOrEqualTo
                ) {
                    self.arithmetic_operand(&left, depth, frame)?;
                    self.arithmetic_operand(&right, depth, frame)?;
                }
                Ok(())
            }
        }
    }

    /// A value given to a variable. Bash evaluates a variable's value as an
    /// expression wherever the variable meets arithmetic (`(( x ))`,
    /// `$(( x + 1 ))`, `let x`, `[[ x -gt 0 ]]`, a subscript `a[x]`,
    /// `declare -i`), and evaluating `a[$(id)]` runs `id`; so a value that
    /// holds a command substitution inside a subscript is judged as run.
    fn arithmetic_value(
        &mut self,
        value: &Word,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        if value.literal
            && value.text.contains('[')
            && (value.text.contains("$(") || value.text.contains('`'))
        {
            self.arithmetic(&value.text, depth, frame)?;
        }
        Ok(())
    }

    /// A word whose value bash evaluates as arithmetic. Its expansions were
    /// walked as the word was; what quotes hid from them is walked here.
    fn arithmetic_operand(
        &mut self,
        word: &Word,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        if word.literal {
            self.arithmetic(&word.text, depth, frame)?;
        }
        Ok(())
    }

    fn compound(
        &mut self,
        c: &ast::CompoundCommand,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        if depth > MAX_NESTING {
            return Err(ShellError::TooDeep { limit: MAX_NESTING });
        }
        use ast::CompoundCommand as C;
        match c {
            C::Arithmetic(a) => {
                self.arithmetic(&a.expr.value, depth, frame)?;
                // `( (cmd) )` and `((cmd))` differ by a space, and parsers
                // disagree on which is which; where the expression also
                // reads as a subshell, judge that reading too.
                let as_subshell = format!("( {} )", a.expr.value);
                let mut probe = Walker {
                    script: Script::default(),
                    what: self.what,
                    spaced_parens: self.spaced_parens,
                    in_arithmetic: self.in_arithmetic,
                };
                match probe.program_text(&as_subshell, depth + 1, frame) {
                    Ok(()) => self.absorb(probe.script),
                    // brush-parser reads `( (cmd) )` as arithmetic, blank
                    // and all; bash never does. Where the text has such a
                    // pair, the subshell reading must be readable.
                    Err(e) if self.spaced_parens => return Err(e),
                    Err(_) => {}
                }
                Ok(())
            }
            C::ArithmeticForClause(a) => {
                for e in [&a.initializer, &a.condition, &a.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value, depth, frame)?;
                }
                self.compound_list(&a.body.list, depth, frame)
            }
            C::BraceGroup(g) => self.compound_list(&g.list, depth, frame),
            C::Subshell(s) => self.compound_list(&s.list, depth, frame),
            C::ForClause(f) => {
                // Each value becomes an assignment of the loop variable, so
                // `for d in / /etc; do rm -rf "$d"; done` is judged with
                // what `$d` will hold.
                for w in f.values.iter().flatten() {
                    let value = self.word(&w.value, depth, frame)?;
                    self.arithmetic_value(&value, depth, frame)?;
                    self.script.invocations.push(Invocation {
                        words: Vec::new(),
                        assignments: vec![Assignment {
                            name: f.variable_name.clone(),
                            value,
                        }],
                        redirects: Vec::new(),
                        stdin: Stdin::Inherited,
                        context: frame.context.clone(),
                    });
                }
                self.compound_list(&f.body.list, depth, frame)
            }
            C::CaseClause(c) => {
                self.word(&c.value.value, depth, frame)?;
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(&p.value, depth, frame)?;
                    }
                    if let Some(body) = &item.cmd {
                        self.compound_list(body, depth, frame)?;
                    }
                }
                Ok(())
            }
            C::IfClause(i) => {
                self.compound_list(&i.condition, depth, frame)?;
                self.compound_list(&i.then, depth, frame)?;
                for e in i.elses.iter().flatten() {
                    if let Some(cond) = &e.condition {
                        self.compound_list(cond, depth, frame)?;
                    }
                    self.compound_list(&e.body, depth, frame)?;
                }
                Ok(())
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.compound_list(&w.0, depth, frame)?;
                let endless = endless_condition(&w.0, matches!(c, C::WhileClause(_)));
                let body = if endless {
                    frame.with(Context::EndlessLoop)
                } else {
                    frame.clone()
                };
                self.compound_list(&w.1.list, depth, &body)
            }
            C::Coprocess(c) => {
                let start = self.script.invocations.len();
                self.command(&c.body, depth, &frame.with(Context::Background))?;
                // Bash 5.2 parses the body of a `$(…)` or `<(…)`, prints it
                // back as text and parses that again; a coprocess of a
                // simple command comes back as `coproc COPROC cmd …`, which
                // runs the program `COPROC` with `cmd …` for arguments.
                // Both readings are judged.
                // Each time the text is printed and parsed again (an
                // enclosing substitution, an array assignment `declare`
                // reads again) another `COPROC` comes in front; how many is
                // known only at run time.
                let substituted = frame.context.iter().any(|c| {
                    matches!(
                        c,
                        Context::CommandSubstitution | Context::ProcessSubstitution
                    )
                });
                if substituted
                    && c.name.is_none()
                    && matches!(*c.body, ast::Command::Simple(_))
                    && self.script.invocations.len() > start
                    && let Some(simple) = self.script.invocations.last().cloned()
                {
                    let mut renamed = prefixed(&simple, &["COPROC"]);
                    renamed.words.insert(
                        1,
                        Word {
                            raw: "COPROC…".into(),
                            text: "COPROC…".into(),
                            literal: false,
                            skeleton: String::new(),
                            pattern: false,
                        },
                    );
                    self.script.invocations.push(renamed);
                }
                Ok(())
            }
        }
    }

    pub(super) fn simple(
        &mut self,
        s: &ast::SimpleCommand,
        depth: usize,
        frame: &Frame,
    ) -> Result<(), ShellError> {
        let mut cmd = SimpleParts {
            frame: frame.clone(),
            words: Vec::new(),
            assignments: Vec::new(),
        };
        for item in s.prefix.iter().flat_map(|p| &p.0) {
            self.simple_item(item, true, depth, &mut cmd)?;
        }
        if let Some(name) = &s.word_or_name {
            if let Some(open) = unclosed_subscript(&name.value) {
                // Bash reads `a[1 + 2]=x cmd` as one assignment and `a[1 + 2]`
                // as one command name: at the start of a command, a subscript
                // runs to its `]` across blanks. The parser splits it at the
                // blank, so the command it sees is not the one bash runs.
                return Err(ShellError::Syntax {
                    what: self.what.to_owned(),
                    detail: format!(
                        "the array subscript in {} holds a blank, and bash reads the \
                         words up to its `]` as one",
                        code(&truncate(open, 40))
                    ),
                });
            }
            let w = self.word(&name.value, depth, &cmd.frame)?;
            cmd.words.push(w);
        }
        for item in s.suffix.iter().flat_map(|p| &p.0) {
            self.simple_item(item, false, depth, &mut cmd)?;
        }
        let stdin = cmd.frame.stdin.clone().unwrap_or(Stdin::Inherited);
        self.script.invocations.push(Invocation {
            words: cmd.words,
            assignments: cmd.assignments,
            redirects: cmd.frame.redirects,
            stdin,
            context: cmd.frame.context,
        });
        Ok(())
    }

    fn simple_item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        in_prefix: bool,
        depth: usize,
        cmd: &mut SimpleParts,
    ) -> Result<(), ShellError> {
        use ast::CommandPrefixOrSuffixItem as I;
        match item {
            I::IoRedirect(r) => self.redirect(r, depth, &mut cmd.frame)?,
            I::Word(w) => {
                let w = self.word(&w.value, depth, &cmd.frame)?;
                cmd.words.push(w);
            }
            I::AssignmentWord(a, w) if !(in_prefix && cmd.words.is_empty()) => {
                // `export X=1`, `declare X=$(…)`: an argument word.
                let _ = a;
                let w = self.word(&w.value, depth, &cmd.frame)?;
                cmd.words.push(w);
            }
            I::AssignmentWord(a, _) => {
                let f = &cmd.frame;
                let value = match &a.value {
                    ast::AssignmentValue::Scalar(v) => {
                        let value = self.word(&v.value, depth, f)?;
                        self.arithmetic_value(&value, depth, f)?;
                        value
                    }
                    ast::AssignmentValue::Array(items) => {
                        let mut joined = Vec::new();
                        for (k, v) in items {
                            if let Some(k) = k {
                                self.word(&k.value, depth, f)?;
                            }
                            let value = self.word(&v.value, depth, f)?;
                            self.arithmetic_value(&value, depth, f)?;
                            joined.push(value);
                        }
                        Word::join(&joined)
                    }
                };
                let name = match &a.name {
                    ast::AssignmentName::VariableName(n) => n.clone(),
                    ast::AssignmentName::ArrayElementName(n, index) => {
                        // Array subscripts are evaluated arithmetically, and
                        // arithmetic evaluation runs `$(…)` inside them.
                        self.arithmetic(index, depth, f)?;
                        n.clone()
                    }
                };
                cmd.assignments.push(Assignment { name, value });
            }
            I::ProcessSubstitution(_, sub) => {
                self.compound_list(
                    &sub.list,
                    depth + 1,
                    &Frame::default().with(Context::ProcessSubstitution),
                )?;
                // `--opt=<(cmd)` is one word to bash, which the parser
                // splits after the `=`; the option's value is the pipe.
                if let Some(last) = cmd.words.last_mut()
                    && last.raw.ends_with('=')
                {
                    last.raw.push_str("<(…)");
                    last.text.push_str("/dev/fd/63");
                    last.literal = false;
                } else {
                    cmd.words.push(Word {
                        raw: "<(…)".into(),
                        text: "/dev/fd/63".into(),
                        literal: false,
                        skeleton: String::new(),
                        pattern: false,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The assignment a word written bare is, when it is one (`X=1`,
/// `a+=b`): what the parser took for an argument after a reserved word.
fn bare_assignment(w: &Word) -> Option<Assignment> {
    let (name, _) = w.raw.split_once('=')?;
    let name = name.strip_suffix('+').unwrap_or(name);
    let is_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_name {
        return None;
    }
    let value = w.text.split_once('=').map_or("", |(_, v)| v);
    Some(Assignment {
        name: name.to_owned(),
        value: Word {
            raw: w.raw[w.raw.find('=').map_or(0, |i| i + 1)..].to_owned(),
            text: value.to_owned(),
            literal: w.literal,
            skeleton: w.skeleton.split_once('=').map_or("", |(_, v)| v).to_owned(),
            pattern: w.pattern,
        },
    })
}

/// `inv` run as the arguments of the words `prefix` (`time -p cmd …`):
/// its assignments become words whose values are only known at run time.
fn prefixed(inv: &Invocation, prefix: &[&str]) -> Invocation {
    let mut words: Vec<Word> = prefix.iter().map(|p| Word::literal(p)).collect();
    for a in &inv.assignments {
        let text = format!("{}={}", a.name, a.value.text);
        words.push(Word {
            raw: text.clone(),
            text,
            literal: false,
            skeleton: String::new(),
            pattern: false,
        });
    }
    words.extend(inv.words.iter().cloned());
    Invocation {
        words,
        assignments: Vec::new(),
        ..inv.clone()
    }
}

/// The word, if it opens an array subscript it does not close (`a[1`):
/// at the start of a command bash reads on across blanks to the `]`.
fn unclosed_subscript(word: &str) -> Option<&str> {
    let (name, rest) = word.split_once('[')?;
    let is_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (is_name && !rest.contains(']')).then_some(word)
}
