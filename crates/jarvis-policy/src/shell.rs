//! Shell syntax: from a command line to every simple command it would run.
//!
//! This layer knows bash grammar and nothing about programs. It walks the
//! brush-parser AST (lists, pipelines, subshells, groups, loops, `case`,
//! functions, command and process substitutions, here-documents) and yields
//! [`Invocation`]s whose words have had their quotes and escapes removed, so
//! `\rm`, `r''m`, `"rm"` and `$'\x72m'` all read `rm`. Recursion into strings
//! that *programs* hand to a shell (`sh -c`, `eval`, `find -exec`) needs the
//! knowledge base and happens one layer up, in `analyze`.

use brush_parser::ast;
use brush_parser::word::{
    self as bword, Parameter, ParameterExpr, TildeExpr, WordPiece, WordPieceWithSource,
};
use brush_parser::{ParserOptions, SourcePosition};
use jarvis_core::text::code;

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// The shell grammar rejected the text.
    #[error("{what} does not parse as shell: {detail}")]
    Syntax {
        /// Which text failed: "the command line", "the `sh -c` string", …
        what: String,
        /// The parser's own message, with line and column where known.
        detail: String,
    },
    /// Strings hidden in strings hidden in strings, beyond what is judged.
    #[error("the command nests shells, substitutions or groups more than {limit} levels deep")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
}

/// How deep shells may nest (`sh -c "sh -c '…'"`, `$( $( … ) )`, `( ( … ) )`).
/// Real commands stay in single digits; the limit bounds work and stack.
pub const MAX_NESTING: usize = 24;

/// A word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text as written.
    pub raw: String,
    /// The text the program receives when the word has no expansions;
    /// otherwise the literal parts with each expansion kept as written.
    pub text: String,
    /// True when `text` is exactly what the program receives: no parameter,
    /// command or arithmetic expansion, no unquoted glob or brace expansion.
    pub literal: bool,
    /// The literal parts with every expansion removed: what the word becomes
    /// if every variable is empty (`"$DIR/"` → `/`).
    pub skeleton: String,
    /// The word holds an unquoted glob (`*`, `?`, `[`) or brace expansion.
    pub pattern: bool,
}

impl Word {
    /// The words joined with spaces, as a shell would read them again
    /// (`eval a b`, `watch a b`, array values): literal only if all are.
    pub fn join(words: &[Word]) -> Word {
        let joined = |part: fn(&Word) -> &str| words.iter().map(part).collect::<Vec<_>>().join(" ");
        Word {
            raw: joined(|w| &w.raw),
            text: joined(|w| &w.text),
            skeleton: joined(|w| &w.skeleton),
            literal: words.iter().all(|w| w.literal),
            pattern: words.iter().any(|w| w.pattern),
        }
    }

    /// A literal word that was never written by anyone (used for synthesised
    /// argument lists, such as the words of an `eval` string).
    pub fn literal(text: &str) -> Word {
        Word {
            raw: text.to_owned(),
            text: text.to_owned(),
            literal: true,
            skeleton: text.to_owned(),
            pattern: false,
        }
    }
}

/// A variable assignment before a command, or on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The variable name (`PATH`, `LD_PRELOAD`).
    pub name: String,
    /// Its value.
    pub value: Word,
}

/// What a redirection does with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectOp {
    /// `<`
    Read,
    /// `>`, `>|`, `&>`
    Write,
    /// `>>`, `&>>`
    Append,
    /// `<>`
    ReadWrite,
    /// `<&`, `>&` onto a descriptor
    Duplicate,
}

impl RedirectOp {
    /// Whether the target file is written.
    pub fn writes(self) -> bool {
        matches!(
            self,
            RedirectOp::Write | RedirectOp::Append | RedirectOp::ReadWrite
        )
    }
}

/// A file redirection of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// What is done with the target.
    pub op: RedirectOp,
    /// The file (or descriptor, for duplications).
    pub target: Word,
}

/// Where a command's standard input comes from, when the line says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// Not redirected on this line.
    Inherited,
    /// The output of earlier commands of the same pipeline (their indices in
    /// [`Script::invocations`]).
    Pipe(Vec<usize>),
    /// A here-document or here-string.
    Text(Word),
    /// A file redirection (`< file`).
    File,
}

/// How an invocation was reached, outermost first, for reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Inside `$(…)` or backquotes.
    CommandSubstitution,
    /// Inside `<(…)` or `>(…)`.
    ProcessSubstitution,
    /// Inside the body of a function definition.
    Function(String),
    /// Run in the background with `&`.
    Background,
    /// Inside a loop whose condition is always true (`while :`, `until false`).
    EndlessLoop,
}

/// Whether a loop condition is a constant that never ends the loop.
fn endless_condition(cond: &ast::CompoundList, is_while: bool) -> bool {
    let [ast::CompoundListItem(and_or, _)] = cond.0.as_slice() else {
        return false;
    };
    if !and_or.additional.is_empty() || and_or.first.seq.len() != 1 || and_or.first.bang {
        return false;
    }
    let ast::Command::Simple(simple) = &and_or.first.seq[0] else {
        return false;
    };
    let word = simple.word_or_name.as_ref().map(|w| w.value.as_str());
    let args = simple.suffix.as_ref().map_or(0, |s| s.0.len());
    match (is_while, word) {
        (true, Some(":" | "true")) => true,
        (true, Some("[")) => args == 2,
        (false, Some("false")) => true,
        _ => false,
    }
}

/// One simple command that would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Program and arguments. Empty for a bare assignment or redirection.
    pub words: Vec<Word>,
    /// Assignments written before the program.
    pub assignments: Vec<Assignment>,
    /// Redirections, including those of enclosing groups and loops.
    pub redirects: Vec<Redirect>,
    /// Where standard input comes from.
    pub stdin: Stdin,
    /// How it was reached.
    pub context: Vec<Context>,
}

/// A function defined on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    /// Its name.
    pub name: String,
    /// Indices in [`Script::invocations`] of the commands of its body.
    pub body: std::ops::Range<usize>,
}

/// Everything that would run on a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Every simple command, in source order (substitutions before the
    /// command whose words hold them).
    pub invocations: Vec<Invocation>,
    /// Functions the line defines.
    pub functions: Vec<FunctionDef>,
    /// Constructs the walker met whose effect cannot be known statically and
    /// that do not show up as an invocation (an arithmetic expression, say).
    pub opaque: Vec<String>,
}

fn options() -> ParserOptions {
    ParserOptions::default()
}

/// Parses `text` and collects everything that would run.
///
/// `what` names the text in errors ("the command line", "the `sh -c` string").
/// `depth` is how deeply this text is already nested.
///
/// # Errors
/// [`ShellError`] when the text does not parse or nests too deeply.
pub fn parse(text: &str, what: &str, depth: usize) -> Result<Script, ShellError> {
    let mut walker = Walker {
        script: Script::default(),
        what,
        spaced_parens: false,
        in_arithmetic: false,
    };
    walker.program_text(text, depth, &Frame::default())?;
    Ok(walker.script)
}

/// Parses text that bash evaluates as arithmetic (a `let` expression, the
/// subscript in a variable name given to `declare`, `read`, `unset`,
/// `printf -v`, `test -v`), and collects what its command substitutions
/// run. Quotes in such text are literal characters: they were removed
/// before bash evaluated it, so `let 'a[$(id)]=1'` runs `id`.
///
/// # Errors
/// [`ShellError`] when a substitution in it does not parse.
pub fn parse_arithmetic(text: &str, what: &str, depth: usize) -> Result<Script, ShellError> {
    let mut walker = Walker {
        script: Script::default(),
        what,
        spaced_parens: false,
        in_arithmetic: false,
    };
    if depth > MAX_NESTING {
        return Err(ShellError::TooDeep { limit: MAX_NESTING });
    }
    walker.arithmetic(text, depth, &Frame::default())?;
    Ok(walker.script)
}

/// What the walk carries down into nested constructs.
#[derive(Clone, Default)]
struct Frame {
    context: Vec<Context>,
    redirects: Vec<Redirect>,
    stdin: Option<Stdin>,
}

impl Frame {
    fn with(&self, c: Context) -> Frame {
        let mut f = self.clone();
        f.context.push(c);
        f
    }
}

/// The parts of one simple command gathered so far.
struct SimpleParts {
    frame: Frame,
    words: Vec<Word>,
    assignments: Vec<Assignment>,
}

struct Walker<'a> {
    script: Script,
    what: &'a str,
    /// The text being walked has `( (`: two parentheses apart.
    spaced_parens: bool,
    /// Walking a command substitution inside arithmetic.
    in_arithmetic: bool,
}

impl Walker<'_> {
    fn program_text(&mut self, text: &str, depth: usize, frame: &Frame) -> Result<(), ShellError> {
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

    fn parser_failed(&self, text: &str) -> ShellError {
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

    fn compound_list(
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

    fn pipeline(
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

    fn command(
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

    fn simple(
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

    fn redirect(
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
    fn word(&mut self, raw: &str, depth: usize, frame: &Frame) -> Result<Word, ShellError> {
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

    fn pieces(
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

    fn substitution(&mut self, body: &str, depth: usize, frame: &Frame) -> Result<(), ShellError> {
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
    fn arithmetic(&mut self, text: &str, depth: usize, frame: &Frame) -> Result<(), ShellError> {
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
    fn parameter(
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
struct WordBuilder<'a> {
    raw: &'a str,
    text: String,
    skeleton: String,
    literal: bool,
    pattern: bool,
}

impl<'a> WordBuilder<'a> {
    fn new(raw: &'a str) -> Self {
        WordBuilder {
            raw,
            text: String::new(),
            skeleton: String::new(),
            literal: true,
            pattern: false,
        }
    }

    fn literal(&mut self, s: &str) {
        self.text.push_str(s);
        self.skeleton.push_str(s);
    }

    fn unquoted(&mut self, s: &str) {
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

    fn expansion(&mut self, raw: &str) {
        self.literal = false;
        self.text.push_str(raw);
    }

    fn finish(self) -> Word {
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

/// An upper bound on how deeply constructs nest, counted over openers
/// (`(`, `{`, `` ` ``, `if`/`for`/`while`/`until`/`case`), ignoring quotes.
/// It over-counts (quoted parentheses count too), which only makes the
/// check stricter, and it is linear in the input.
fn syntactic_depth(text: &str) -> usize {
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
fn oversized_number(text: &str) -> Option<&str> {
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

/// Whether `text` has two opening parentheses with blanks between them.
fn spaced_parens(text: &str) -> bool {
    text.match_indices('(').any(|(i, _)| {
        let after = &text[i + 1..];
        let rest = after.trim_start_matches([' ', '\t']);
        rest.len() < after.len() && rest.starts_with('(')
    })
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

/// Runs a call into the shell parser, turning a panic in it into `None`.
/// brush-parser unwraps in places hostile input reaches; what it cannot
/// parse is refused like any text that does not parse.
fn unpanicked<T>(f: impl FnOnce() -> T) -> Option<T> {
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
fn expansion_after_heredoc(text: &str) -> Option<String> {
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

fn describe_parse_error(e: &brush_parser::ParseError) -> String {
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

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(line: &str) -> Vec<String> {
        parse(line, "the command line", 0)
            .expect("parses")
            .invocations
            .iter()
            .map(|i| {
                i.words
                    .iter()
                    .map(|w| w.text.clone())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn finds_commands_in_every_construct() {
        let got = programs(
            "a1 | a2 && b || c; (d); { e; }; if f; then g; elif h; then i; else j; fi; \
             for x in $(k); do l; done; while m; do n; done; until o; do p; done; \
             case $(q) in x) r;; esac; fn() { s; }; echo <(t) >(u); v &",
        );
        for p in [
            "a1", "a2", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
            "q", "r", "s", "t", "u", "v",
        ] {
            assert!(got.iter().any(|c| c == p), "{p} missing from {got:?}");
        }
    }

    #[test]
    fn removes_quotes_and_escapes_from_program_names() {
        for line in [
            r"\rm -rf x",
            "r''m -rf x",
            "\"rm\" -rf x",
            r"$'\x72m' -rf x",
            r"$'\162m' -rf x",
            "'r'\"m\" -rf x",
        ] {
            let s = parse(line, "t", 0).expect("parses");
            let w = &s.invocations[0].words[0];
            assert_eq!(w.text, "rm", "{line}");
            assert!(w.literal, "{line}");
        }
    }

    #[test]
    fn marks_dynamic_words() {
        let s = parse("$x -rf \"$DIR\"/ *.log {a,b}", "t", 0).expect("parses");
        let w = &s.invocations[0].words;
        assert!(!w[0].literal);
        assert_eq!(w[2].skeleton, "/");
        assert!(w[3].pattern && !w[3].literal);
        assert!(w[4].pattern);
        assert!(w[1].literal);
    }

    #[test]
    fn substitutions_inside_quotes_and_defaults_are_found() {
        let got = programs(r#"echo "${X:-$(id)}" "`whoami`" $((1 + $(date +%s)))"#);
        assert!(got.iter().any(|c| c == "id"), "{got:?}");
        assert!(got.iter().any(|c| c == "whoami"), "{got:?}");
        assert!(got.iter().any(|c| c.starts_with("date")), "{got:?}");
    }

    #[test]
    fn heredocs_and_here_strings_become_stdin() {
        let s = parse("bash <<EOF\nrm -rf /\nEOF\n", "t", 0).expect("parses");
        assert!(matches!(&s.invocations[0].stdin, Stdin::Text(w) if w.text.contains("rm -rf /")));
        let s = parse("sh <<< 'reboot'", "t", 0).expect("parses");
        assert!(matches!(&s.invocations[0].stdin, Stdin::Text(w) if w.text == "reboot\n"));
    }

    #[test]
    fn pipes_record_upstream() {
        let s = parse("curl -s http://x | sudo bash", "t", 0).expect("parses");
        assert_eq!(s.invocations[1].stdin, Stdin::Pipe(vec![0]));
    }

    #[test]
    fn group_redirects_apply_to_inner_commands() {
        let s = parse("{ echo a; echo b; } > /dev/sda", "t", 0).expect("parses");
        assert!(
            s.invocations
                .iter()
                .all(|i| i.redirects.iter().any(|r| r.target.text == "/dev/sda"))
        );
    }

    #[test]
    fn bad_syntax_and_deep_nesting_are_errors() {
        assert!(matches!(
            parse("echo 'unterminated", "t", 0),
            Err(ShellError::Syntax { .. })
        ));
        assert!(matches!(
            parse("if then fi", "t", 0),
            Err(ShellError::Syntax { .. })
        ));
        let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
        assert!(matches!(
            parse(&deep, "t", 0),
            Err(ShellError::TooDeep { .. })
        ));
        let deep = format!("{}true{}", "$(".repeat(100), ")".repeat(100));
        assert!(matches!(
            parse(&deep, "t", 0),
            Err(ShellError::TooDeep { .. })
        ));
    }

    #[test]
    fn inputs_the_fuzzer_found() {
        // A closing brace before an opening one once sliced backwards.
        assert!(parse("}{q", "t", 0).is_ok());
        assert!(parse("echo }{a,b", "t", 0).is_ok());
        // brush-parser unwraps descriptor numbers; huge ones are refused first.
        assert!(matches!(
            parse("011111011111>y?", "t", 0),
            Err(ShellError::Syntax { .. })
        ));
        assert!(parse("echo 2>/dev/null 12345", "t", 0).is_ok());
        assert!(matches!(
            parse("~2222222222222222222222\t\t", "t", 0),
            Err(ShellError::Syntax { .. })
        ));
        assert!(matches!(
            parse("cd ~+99999999999", "t", 0),
            Err(ShellError::Syntax { .. })
        ));
        assert!(parse("cd ~+1 && ls ~/x", "t", 0).is_ok());
    }

    #[test]
    fn ansi_c_strings_decode_as_bash_does() {
        let word =
            |line: &str| parse(line, "t", 0).expect("parses").invocations[0].words[1].clone();
        for (line, text) in [
            (r"x $'\x41\101\u00e9'", "AAé"),
            (r"x $'\x' $'\xZ'", r"\x"),
            (r"x $'\u'", r"\u"),
            (r"x $'\c'", r"\c"),
            (r"x $'\c?\ca'", "\x7f\x01"),
            (r"x $'\c\\z'", "\x1cz"),
            (r"x $'\1010'", "A0"),
            (r"x $'\8\q'", r"\8\q"),
            // A NUL ends the quoted string, not the word.
            (r"x $'a\0b'c", "ac"),
            (r"x $'/\x00etc'", "/"),
            (r"x $'\c@z'", ""),
            (r"x $'\xc3\xa9'", "é"),
        ] {
            let w = word(line);
            assert_eq!(w.text, text, "{line}");
            assert!(w.literal, "{line}");
        }
        // Bytes that are no UTF-8 reach the program as they are.
        assert!(!word(r"x $'\xff'").literal);
        assert!(!word(r"x $'\ud800'").literal);
    }

    #[test]
    fn tildes_of_directories_are_run_time_values() {
        let w = &parse("ls ~ ~/x ~root ~+ ~+/x ~- ~1", "t", 0)
            .expect("parses")
            .invocations[0]
            .words;
        assert!(w[1].literal && w[2].literal && w[3].literal);
        for (word, skeleton) in w[4..].iter().zip([".", "./x", ".", "."]) {
            assert!(!word.literal, "{}", word.raw);
            assert_eq!(word.skeleton, skeleton, "{}", word.raw);
        }
    }

    #[test]
    fn quotes_in_double_quoted_defaults_are_literal() {
        for line in [
            r#"ls "${x:-'$(id)'}""#,
            r#"ls "${x:+'$(id)'}""#,
            r#"ls "${x:='$(id)'}""#,
            "cat <<EOF\n${x:-'$(id)'}\nEOF",
            "echo $(( 'a[$(id)]' ))",
            "[[ -v 'a[$(id)]' ]]",
            "[[ 'a[$(id)]' -gt 1 ]]",
        ] {
            assert!(programs(line).iter().any(|p| p == "id"), "{line}");
        }
        assert!(!programs(r"ls ${x:-'$(id)'}").iter().any(|p| p == "id"));
        assert!(!programs(r#"ls "${x#'$(id)'}""#).iter().any(|p| p == "id"));
    }

    #[test]
    fn here_documents_bash_ends_elsewhere_are_refused() {
        for line in [
            "cat <<EOF\nEO\\\nF\nls\nEOF",
            "cat <<EOF\nx\\\nEOF\nls\nEOF",
            "cat <<-EOF\n\tEO\\\nF\nls\nEOF",
        ] {
            assert!(
                matches!(parse(line, "t", 0), Err(ShellError::Syntax { .. })),
                "{line:?}"
            );
        }
        for line in [
            "cat <<EOF\nEO\\\\\nF\nEOF",
            "cat <<'EOF'\nEO\\\nF\nEOF",
            "cat <<EOF\na \\\nb\nEOF",
        ] {
            assert!(parse(line, "t", 0).is_ok(), "{line:?}");
        }
    }

    #[test]
    fn what_the_parser_would_misread_is_refused() {
        for line in [
            // An expansion after a here-document operator on its line.
            "cat <<EOF > \"$(id)\"\nx\nEOF",
            "cat <<EOF | grep ${x}\nx\nEOF",
            "cat <<-'E' | tee >(wc)\n\tx\n\tE",
            "x=$(cat <<EOF | grep $(id)\nx\nEOF\n)",
            // A subscript with a blank at the start of a command.
            "a[1 + 2]=x ls",
            "a[i + 1] x",
            // A here-document inside arithmetic.
            "echo $(( $(cat <<E\n1\nE\n) ))",
            // Nestings the parser leaves as text.
            "echo $(( 1 + $(( exec ls ) | wc ) ))",
            // A number word before a redirection after a here-document.
            "cat <<E; tee f 5 >&out\nb\nE",
            // A `case` inside arithmetic.
            "echo $(( 2 * $(case x in (a) echo 3;; esac) ))",
            // `( (` read as arithmetic where the subshell does not read.
            "( ( grep x <<E ) )\nb\nE",
        ] {
            assert!(
                matches!(parse(line, "t", 0), Err(ShellError::Syntax { .. })),
                "{line:?}"
            );
        }
        for line in [
            "cat <<EOF > out\n$(id)\nEOF",
            "x=$(cat <<EOF\n$(id)\nEOF\n)",
            "echo $((1 << 2)) $(id)",
            "a[i+1]=x ls",
            "ls a[1 + 2]=x",
            "( ( ls ) )",
        ] {
            assert!(parse(line, "t", 0).is_ok(), "{line:?}");
        }
    }

    #[test]
    fn readings_bash_has_are_judged() {
        // A value arithmetic evaluates later runs its subscript.
        assert!(programs("n='a[$(id)]'; (( n ))").iter().any(|p| p == "id"));
        assert!(
            programs("for x in 'a[$(id)]'; do let x; done")
                .iter()
                .any(|p| p == "id")
        );
        assert!(
            programs("arr=('a[$(id)]'); (( arr ))")
                .iter()
                .any(|p| p == "id")
        );
        // Bash 5.2 runs `COPROC cmd` for a coprocess in a substitution
        // (`COPROC COPROC cmd` where it is printed twice).
        let got = programs("echo $(coproc ls -la) >(coproc X=1 id)");
        for p in [
            "ls -la",
            "COPROC COPROC… ls -la",
            "id",
            "COPROC COPROC… X=1 id",
        ] {
            assert!(got.iter().any(|c| c == p), "{p} missing from {got:?}");
        }
        assert!(
            !programs("coproc ls")
                .iter()
                .any(|p| p.starts_with("COPROC"))
        );
        // POSIX mode makes `time -p` the program; `time --` ends the
        // reserved word's options.
        let got = programs("set -o posix\ntime -p ls");
        assert!(got.iter().any(|c| c == "time -p ls"), "{got:?}");
        assert_eq!(programs("time -- ls -a"), ["ls -a"]);
        let got = programs("set -o posix\ntime -p time ls");
        assert!(got.iter().any(|c| c == "time -p time ls"), "{got:?}");
        let s = parse("time time X=1 ls", "t", 0).expect("parses");
        assert_eq!(s.invocations[0].words[0].text, "ls");
        assert_eq!(s.invocations[0].assignments[0].name, "X");
        // `--opt=<(cmd)` is one word.
        let s = parse("wc --files0-from=<(ls) x", "t", 0).expect("parses");
        let wc = s.invocations.last().expect("wc");
        assert_eq!(wc.words.len(), 3);
        assert_eq!(wc.words[1].text, "--files0-from=/dev/fd/63");
        assert!(!wc.words[1].literal);
        // `$(( cmd ) | x)` closes with one parenthesis: commands.
        assert!(programs("echo $(( ls ) | wc)").iter().any(|p| p == "wc"));
    }

    #[test]
    fn functions_are_recorded() {
        let s = parse(":(){ :|:& };:", "t", 0).expect("parses");
        assert_eq!(s.functions.len(), 1);
        assert_eq!(s.functions[0].name, ":");
        assert_eq!(s.functions[0].body, 0..2);
    }
}
