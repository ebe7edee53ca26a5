//! awk programs read as gawk, mawk, busybox awk and the original awk read
//! them, for what they do beyond transforming the text that streams
//! through: the shell commands they run (`system()`, `print | "cmd"`,
//! `"cmd" | getline`, gawk's `|&`), the files they write (`print > "f"`,
//! `printf >> "f"`, gawk's profile, pretty-print and variable dumps) or
//! read beyond their operands (`getline < "f"`, a rewritten `ARGV`), the
//! environment they read (`ENVIRON`, `PROCINFO`, `SYMTAB`), and code that
//! comes from files (`-f`, `-E`, `-i`, `-l`, `@include`, `@load`, mawk's
//! `-W exec`).
//!
//! Patterns over the program text cannot do this: a string may hold `;`,
//! `}` or `#`, a regex may hold `>` or `|`, and `>` redirects output only
//! at the top level of a print statement (`$3 > 100` and `print (a > b)`
//! compare). So the program is tokenized as awk tokenizes it (strings with
//! their escapes, regex literals told from division by the token before
//! them, comments, continuations) and the constructs are found in the
//! tokens, across nesting, `;`, braces and newlines. Where the awks read a
//! construct differently, the reading that shows more is taken; whatever
//! cannot be followed is reported as unreadable, never as harmless.
//!
//! gawk's `--sandbox` is not relied on: mawk takes `-W sandbox` as a
//! vacuous option and runs the program with `system()` and redirections
//! intact, and the original awk ignores options it does not know, so
//! `awk --sandbox` proves nothing about which awk `awk` is.

use crate::script::ScriptEffects;

/// Programs longer than this are not read, so the work stays bounded.
const MAX_PROGRAM: usize = 64 * 1024;
/// Tokens read from one program at most.
const MAX_TOKENS: usize = 20_000;
/// Parentheses, brackets and braces nested deeper than this are not read.
const MAX_DEPTH: usize = 128;

/// Where gawk's `-p`/`--profile` and `-o`/`--pretty-print` write when no
/// file is named.
const PROFILE_FILE: &str = "awkprof.out";
/// Where gawk's `-d`/`--dump-variables` writes when no file is named.
const DUMP_FILE: &str = "awkvars.out";

/// Output names awk writes to without creating or changing a file.
const STANDARD_OUTPUTS: &[&str] = &[
    "/dev/stdout",
    "/dev/stderr",
    "/dev/fd/1",
    "/dev/fd/2",
    "-",
    "/dev/null",
];
/// Input names that are the standard input, not a file.
const STANDARD_INPUTS: &[&str] = &["-", "/dev/stdin", "/dev/fd/0"];

/// Reads the program of `awk ARGS` (the words after the program name, as
/// the program receives them).
pub fn effects(args: &[String]) -> ScriptEffects {
    let mut options = Options::default();
    options.walk(args);
    let mut out = std::mem::take(&mut options.out);
    if out.unreadable {
        return out;
    }
    let mut programs = std::mem::take(&mut options.also_programs);
    if options.program_given {
        // gawk reads the `-e` pieces as one program, a piece after another.
        if !options.sources.is_empty() {
            programs.push(options.sources.join("\n"));
        }
    } else if let Some(text) = args.get(options.operands) {
        // Where another awk reads an earlier word as its program (`mawk -W
        // assign x=1 /etc/shadow` runs `x=1` over the shadow file, the
        // original awk ignores `-i` and runs `1` in `-i 1 /etc/shadow`),
        // this word may be a file it reads.
        if !options.shifted {
            options.not_paths.push(options.operands);
        }
        programs.push(text.clone());
    }
    // The original awk skips every option it does not know as one word
    // (`--source=X Y` runs `Y`), so its program may be another word.
    if let Some(at) = original_awk_program(args)
        && (options.program_given || at != options.operands)
    {
        programs.push(args[at].clone());
    }
    // The words after the program are files (judged as paths by the
    // analysis) and `var=value` assignments: neither is code.
    for text in &programs {
        program(text, &mut out);
    }
    once(&mut out.runs);
    once(&mut out.writes);
    once(&mut out.reads);
    out.not_paths = options.not_paths;
    out.not_paths.sort_unstable();
    out.not_paths.dedup();
    out
}

/// The word the original awk (and the awks built on it) takes as its
/// program: the first after its options, where `-f`, `-F` and `-v` take a
/// value and every other word starting with `-` is skipped alone; `None`
/// when the program comes from a file or there is none.
fn original_awk_program(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        let mut letters = a.chars().skip(1);
        let Some(letter) = letters.next().filter(|_| a.starts_with('-')) else {
            break;
        };
        if matches!(letter, 'f' | 'F' | 'v') && letters.next().is_none() {
            i += 1;
        }
        if letter == 'f' {
            return None;
        }
        i += 1;
    }
    (i < args.len()).then_some(i)
}

/// Keeps the first of each repeated entry.
fn once<T: Clone + Eq + std::hash::Hash>(items: &mut Vec<T>) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(item.clone()));
}

/// What an option does to the reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    /// `-v var=val`, `-F fs`: values, not code.
    Value,
    /// `-f progfile`: the program comes from a file.
    File,
    /// `-e text`: program text.
    Source,
    /// `-E file`: the program comes from a file, and options end.
    Exec,
    /// `-i file`, `-l library`: code from a file, the program still inline.
    Include,
    /// `-d[file]`: writes the variables to a file.
    DumpVariables,
    /// `-o[file]`, `-p[file]`: writes a profile or the program.
    Profile,
    /// `-D`: an interactive debugger; `--persist`: a heap kept in a file.
    Unfollowable,
    /// Changes how text is read or reported, nothing else.
    Harmless,
}

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    No,
    /// The next word, or attached (`-F:`, `--file=x`).
    Required,
    /// Only attached (`-p/tmp/x`, `--profile=x`).
    Optional,
}

/// gawk's long options in every version (names later removed included, so
/// that an abbreviation one version reads as unique is not read as another
/// option here).
const LONG: &[(&str, Opt, Arg)] = &[
    ("assign", Opt::Value, Arg::Required),
    ("bignum", Opt::Harmless, Arg::No),
    ("characters-as-bytes", Opt::Harmless, Arg::No),
    ("compat", Opt::Harmless, Arg::No),
    ("copyleft", Opt::Harmless, Arg::No),
    ("copyright", Opt::Harmless, Arg::No),
    ("csv", Opt::Harmless, Arg::No),
    ("debug", Opt::Unfollowable, Arg::Optional),
    ("dump-variables", Opt::DumpVariables, Arg::Optional),
    ("exec", Opt::Exec, Arg::Required),
    ("field-separator", Opt::Value, Arg::Required),
    ("file", Opt::File, Arg::Required),
    ("gen-pot", Opt::Harmless, Arg::No),
    ("help", Opt::Harmless, Arg::No),
    ("include", Opt::Include, Arg::Required),
    ("lint", Opt::Harmless, Arg::Optional),
    ("lint-old", Opt::Harmless, Arg::No),
    ("load", Opt::Include, Arg::Required),
    ("no-optimize", Opt::Harmless, Arg::No),
    ("non-decimal-data", Opt::Harmless, Arg::No),
    ("nostalgia", Opt::Harmless, Arg::No),
    ("optimize", Opt::Harmless, Arg::No),
    ("parsedebug", Opt::Harmless, Arg::No),
    ("persist", Opt::Unfollowable, Arg::Optional),
    ("posix", Opt::Harmless, Arg::No),
    ("pretty-print", Opt::Profile, Arg::Optional),
    ("profile", Opt::Profile, Arg::Optional),
    ("re-interval", Opt::Harmless, Arg::No),
    ("sandbox", Opt::Harmless, Arg::No),
    ("source", Opt::Source, Arg::Required),
    ("trace", Opt::Harmless, Arg::No),
    ("traditional", Opt::Harmless, Arg::No),
    ("usage", Opt::Harmless, Arg::No),
    ("use-lc-numeric", Opt::Harmless, Arg::No),
    ("version", Opt::Harmless, Arg::No),
];

/// mawk's `-W` options; only `exec` does more than change how text is read.
const MAWK_W: &[&str] = &[
    "dump",
    "exec",
    "help",
    "interactive",
    "posix",
    "posix_space",
    "random",
    "repetitions",
    "sprintf",
    "traditional",
    "usage",
    "version",
];

/// gawk's short options (mawk, busybox and the original awk know a subset).
fn short(c: char) -> Option<(Opt, Arg)> {
    Some(match c {
        'F' | 'v' => (Opt::Value, Arg::Required),
        'f' => (Opt::File, Arg::Required),
        'e' => (Opt::Source, Arg::Required),
        'E' => (Opt::Exec, Arg::Required),
        'i' | 'l' => (Opt::Include, Arg::Required),
        'd' => (Opt::DumpVariables, Arg::Optional),
        'D' => (Opt::Unfollowable, Arg::Optional),
        'o' | 'p' => (Opt::Profile, Arg::Optional),
        'L' => (Opt::Harmless, Arg::Optional),
        'b' | 'c' | 'C' | 'g' | 'h' | 'I' | 'k' | 'M' | 'n' | 'N' | 'O' | 'P' | 'r' | 's' | 'S'
        | 't' | 'V' => (Opt::Harmless, Arg::No),
        _ => return None,
    })
}

/// What a long option name stands for, as getopt_long reads it: the exact
/// name, or the one option it is an unambiguous prefix of.
fn long_option(name: &str) -> Option<(Opt, Arg)> {
    if name.is_empty() {
        return None;
    }
    if let Some(&(_, opt, arg)) = LONG.iter().find(|(n, ..)| *n == name) {
        return Some((opt, arg));
    }
    let mut found: Option<(Opt, Arg)> = None;
    for &(n, opt, arg) in LONG {
        if n.starts_with(name) {
            match found {
                Some(f) if f != (opt, arg) => return None,
                _ => found = Some((opt, arg)),
            }
        }
    }
    found
}

/// How mawk reads one comma-separated piece of a `-W` value: `Some(true)`
/// for `exec` (in any abbreviation and case), `Some(false)` for its other
/// options, `None` for a name it does not know.
fn mawk_exec(piece: &str) -> Option<bool> {
    let name = piece.split('=').next().unwrap_or("").to_ascii_lowercase();
    if name.is_empty() {
        return Some(false);
    }
    if "exec".starts_with(&name) {
        return Some(true);
    }
    MAWK_W.iter().any(|o| o.starts_with(&name)).then_some(false)
}

/// Whether the option walk goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    /// Options end; the remaining words are operands.
    Stop,
    Unreadable,
}

#[derive(Default)]
struct Options {
    out: ScriptEffects,
    /// The pieces of `-e`/`--source`.
    sources: Vec<String>,
    /// Words one awk takes as an option's value and another as its program
    /// (`-W x` to the original awk, which ignores `-W`; the word after `-W
    /// field-separator` to mawk, for which that option means nothing).
    also_programs: Vec<String>,
    /// The program comes from options, so the first operand is a file.
    program_given: bool,
    /// The index of the first word after the options.
    operands: usize,
    /// The words that are program text or values awk never opens.
    not_paths: Vec<usize>,
    /// A word was taken as the value of an option some awk does not know,
    /// which reads it as its program instead.
    shifted: bool,
    /// The option word being read, and the word after it once taken as its
    /// value.
    word: usize,
    value_word: Option<usize>,
}

impl Options {
    fn walk(&mut self, args: &[String]) {
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "--" {
                self.operands = i + 1;
                return;
            }
            if a == "-" || !a.starts_with('-') {
                self.operands = i;
                return;
            }
            self.word = i;
            self.value_word = None;
            i += 1;
            let flow = match a.strip_prefix("--") {
                Some(long) => self.long(long, args, &mut i),
                None => self.cluster(&a[1..], args, &mut i),
            };
            match flow {
                Flow::Go => {}
                Flow::Stop => {
                    self.operands = i;
                    return;
                }
                Flow::Unreadable => {
                    self.out.unreadable = true;
                    return;
                }
            }
        }
        self.operands = args.len();
    }

    /// `-abc`, `-F:`, `-vx=1`, `-ffile`, `-p/tmp/x`: short options in one
    /// word, the first that takes a value taking the rest of it.
    fn cluster(&mut self, letters: &str, args: &[String], i: &mut usize) -> Flow {
        for (at, c) in letters.char_indices() {
            let rest = &letters[at + c.len_utf8()..];
            if c == 'W' {
                return if rest.is_empty() {
                    match args.get(*i) {
                        Some(value) => {
                            self.not_paths.extend([self.word, *i]);
                            self.shifted = true;
                            *i += 1;
                            // The original awk ignores `-W` alone and reads
                            // the next word as its program.
                            self.also_programs.push(value.clone());
                            self.w_option(value, args, i)
                        }
                        None => Flow::Unreadable,
                    }
                } else {
                    self.not_paths.push(self.word);
                    self.w_option(rest, args, i)
                };
            }
            let Some((opt, arg)) = short(c) else {
                return Flow::Unreadable;
            };
            match arg {
                Arg::No => match self.apply(opt, None) {
                    Flow::Go => {}
                    other => return other,
                },
                Arg::Optional => return self.apply(opt, Some(rest).filter(|r| !r.is_empty())),
                Arg::Required if !rest.is_empty() => return self.apply(opt, Some(rest)),
                Arg::Required => {
                    let Some(value) = args.get(*i) else {
                        return Flow::Unreadable;
                    };
                    self.value_word = Some(*i);
                    self.shifted |= !matches!(c, 'F' | 'v' | 'f');
                    *i += 1;
                    return self.apply(opt, Some(value));
                }
            }
        }
        Flow::Go
    }

    /// `--name`, `--name=value`, `--name value`, and any unambiguous
    /// abbreviation of the name.
    fn long(&mut self, text: &str, args: &[String], i: &mut usize) -> Flow {
        let (name, attached) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        match long_option(name) {
            Some((opt, arg)) => self.with_value(opt, arg, attached, args, i, false),
            None => Flow::Unreadable,
        }
    }

    /// `-W value`: gawk reads it as `--value`, mawk as its own
    /// comma-separated options. Both readings count; a name neither knows
    /// is unreadable.
    fn w_option(&mut self, value: &str, args: &[String], i: &mut usize) -> Flow {
        let (name, attached) = match value.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (value, None),
        };
        let mawk_execs = value.split(',').any(|p| mawk_exec(p) == Some(true));
        let before = *i;
        let gawk = long_option(name)
            .map(|(opt, arg)| self.with_value(opt, arg, attached, args, i, mawk_execs));
        if gawk == Some(Flow::Unreadable) {
            return Flow::Unreadable;
        }
        let consumed = *i > before;
        match (gawk, self.mawk_w(value, args, i, consumed)) {
            (Some(Flow::Stop), _) | (_, Flow::Stop) => Flow::Stop,
            (Some(_), _) => Flow::Go,
            (None, mawk) => mawk,
        }
    }

    /// mawk's reading of a `-W` value: `exec` takes a file (attached after
    /// `=` or the next word, unless `consumed` says another reading took it
    /// already) and ends the options; its other options change nothing
    /// here; a name it does not know is unreadable.
    fn mawk_w(&mut self, value: &str, args: &[String], i: &mut usize, consumed: bool) -> Flow {
        let mut known = false;
        for piece in value.split(',') {
            match mawk_exec(piece) {
                Some(true) => {
                    self.out.from_file = true;
                    self.program_given = true;
                    if !piece.contains('=') && !consumed {
                        if args.get(*i).is_none() {
                            return Flow::Unreadable;
                        }
                        *i += 1;
                    }
                    return Flow::Stop;
                }
                Some(false) => known = true,
                None => {}
            }
        }
        if known { Flow::Go } else { Flow::Unreadable }
    }

    /// Applies a long option (or gawk's `-W` reading of one) with its value.
    fn with_value(
        &mut self,
        opt: Opt,
        arg: Arg,
        attached: Option<&str>,
        args: &[String],
        i: &mut usize,
        mawk_takes_next: bool,
    ) -> Flow {
        match (arg, attached) {
            // gawk refuses a value for an option that takes none.
            (Arg::No, Some(_)) => Flow::Unreadable,
            (Arg::No, None) => self.apply(opt, None),
            (Arg::Optional, v) => self.apply(opt, v.filter(|v| !v.is_empty())),
            (Arg::Required, Some(v)) => self.apply(opt, Some(v)),
            (Arg::Required, None) => {
                let Some(value) = args.get(*i) else {
                    return Flow::Unreadable;
                };
                self.value_word = Some(*i);
                self.shifted = true;
                *i += 1;
                // mawk takes a `-W` or long name it does not know as
                // nothing and reads the next word as its program (the words
                // of the options that bring in files are attended to anyway).
                if opt == Opt::Value && !mawk_takes_next {
                    self.also_programs.push(value.clone());
                }
                self.apply(opt, Some(value))
            }
        }
    }

    fn apply(&mut self, opt: Opt, value: Option<&str>) -> Flow {
        if matches!(opt, Opt::Value | Opt::Source) {
            // `-v key=/srv/app/.env` names no file awk opens.
            self.not_paths.push(self.word);
            self.not_paths.extend(self.value_word);
        }
        match opt {
            Opt::Value | Opt::Harmless => {}
            Opt::Source => {
                self.sources.push(value.unwrap_or_default().to_owned());
                self.program_given = true;
            }
            Opt::File => {
                self.out.from_file = true;
                self.program_given = true;
            }
            Opt::Exec => {
                self.out.from_file = true;
                self.program_given = true;
                return Flow::Stop;
            }
            Opt::Include => self.out.from_file = true,
            Opt::DumpVariables => output_file(value.unwrap_or(DUMP_FILE), &mut self.out),
            Opt::Profile => output_file(value.unwrap_or(PROFILE_FILE), &mut self.out),
            Opt::Unfollowable => return Flow::Unreadable,
        }
        Flow::Go
    }
}

/// gawk's network special files (`/inet/tcp/0/host/80`): a redirection or
/// getline on one talks to another machine, which no field of the effects
/// says, so the program is reported as unreadable.
fn is_network(name: &str) -> bool {
    ["/inet/", "/inet4/", "/inet6/"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn output_file(name: &str, out: &mut ScriptEffects) {
    if is_network(name) {
        out.unreadable = true;
    } else if !STANDARD_OUTPUTS.contains(&name) {
        out.writes.push(name.to_owned());
    }
}

fn input_file(name: &str, out: &mut ScriptEffects) {
    if is_network(name) {
        out.unreadable = true;
    } else if !STANDARD_INPUTS.contains(&name) {
        out.reads.push(name.to_owned());
    }
}

fn command(text: Option<String>, out: &mut ScriptEffects) {
    if text.as_deref().is_some_and(is_network) {
        out.unreadable = true;
    } else {
        out.runs.push(text);
    }
}

/// One awk token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A newline that ends a statement (one after an operator, a comma or
    /// an opening brace continues it and is dropped).
    Newline,
    /// A string literal as awk decodes it, and whether every awk decodes it
    /// to that text (`\x414` and `\q` differ between them, a NUL cuts a
    /// command short).
    Str(String, bool),
    Regex,
    Number,
    /// A name: keyword, function or variable, without any namespace.
    Name(String),
    Op(&'static str),
    /// `@`: gawk's directives, indirect calls and typed regexes.
    At,
}

/// Operators, longest first so that `**=` is not read as `**` and `=`.
const OPERATORS: &[&str] = &[
    "**=", "**", "^=", "+=", "-=", "*=", "%=", "==", "<=", ">=", "!=", "!~", "&&", "||", ">>",
    "|&", "++", "--", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "%", "^", "!", ">",
    "<", "|", "?", ":", "~", "$", "=",
];

const ASSIGNMENTS: &[&str] = &["=", "+=", "-=", "*=", "/=", "%=", "^=", "**="];

/// Keywords after which an expression starts, so a `/` opens a regex.
const BEFORE_EXPRESSION: &[&str] = &["print", "printf", "return", "case", "do", "else", "exit"];

/// Whether a `/` here opens a regex rather than dividing: awk's grammar
/// wants a regex where an operand must start, and divides after one. Where
/// unsure, this reads division, which reads the text as code and so shows
/// more of it.
fn regex_here(tokens: &[Token], depth: usize) -> bool {
    let mut last = tokens.last();
    if depth > 0 {
        // Inside parentheses or brackets a newline ends nothing.
        last = tokens.iter().rev().find(|t| **t != Token::Newline);
    }
    match last {
        None | Some(Token::Newline | Token::At) => true,
        Some(Token::Name(n)) => BEFORE_EXPRESSION.contains(&n.as_str()),
        Some(Token::Str(..) | Token::Regex | Token::Number) => false,
        Some(Token::Op(o)) => !matches!(*o, ")" | "]" | "++" | "--"),
    }
}

/// Whether a newline after `last` ends the statement: only after something
/// that can end one. After an operator, a comma or a brace it continues the
/// statement (gawk, for one, reads `x ?\n a : b` as one expression).
fn ends_statement(last: Option<&Token>) -> bool {
    match last {
        Some(Token::Name(_) | Token::Str(..) | Token::Regex | Token::Number) => true,
        Some(Token::Op(o)) => matches!(*o, ")" | "]" | "++" | "--"),
        _ => false,
    }
}

fn tokenize(text: &str) -> Option<Vec<Token>> {
    let s: Vec<char> = text.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        if tokens.len() > MAX_TOKENS {
            return None;
        }
        let c = s[i];
        match c {
            ' ' | '\t' | '\r' | '\x0b' | '\x0c' => i += 1,
            '\\' => match (s.get(i + 1), s.get(i + 2)) {
                (Some('\n'), _) => i += 2,
                (Some('\r'), Some('\n')) => i += 3,
                _ => return None,
            },
            '\n' => {
                i += 1;
                if ends_statement(tokens.last()) {
                    tokens.push(Token::Newline);
                }
            }
            '#' => {
                while s.get(i).is_some_and(|c| *c != '\n') {
                    i += 1;
                }
            }
            '"' => {
                let (decoded, exact, next) = string(&s, i + 1)?;
                tokens.push(Token::Str(decoded, exact));
                i = next;
            }
            '/' if regex_here(&tokens, depth) => {
                i = regex(&s, i + 1)?;
                tokens.push(Token::Regex);
            }
            '/' if s.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Op("/="));
                i += 2;
            }
            '/' => {
                tokens.push(Token::Op("/"));
                i += 1;
            }
            '@' => {
                tokens.push(Token::At);
                i += 1;
            }
            c if c.is_ascii_digit()
                || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                i = number(&s, i);
                tokens.push(Token::Number);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let (name, next) = name(&s, i);
                tokens.push(Token::Name(name));
                i = next;
            }
            _ => {
                let op = OPERATORS.iter().find(|op| {
                    op.chars()
                        .enumerate()
                        .all(|(k, oc)| s.get(i + k) == Some(&oc))
                })?;
                i += op.len();
                match *op {
                    "(" | "[" => depth += 1,
                    ")" | "]" => depth = depth.saturating_sub(1),
                    _ => {}
                }
                tokens.push(Token::Op(op));
            }
        }
    }
    Some(tokens)
}

/// A string literal from after its opening quote: the decoded text, whether
/// every awk decodes it so, and the index after the closing quote.
fn string(s: &[char], mut i: usize) -> Option<(String, bool, usize)> {
    let mut text = String::new();
    let mut exact = true;
    loop {
        let c = *s.get(i)?;
        i += 1;
        match c {
            '"' => return Some((text, exact, i)),
            '\n' => return None,
            '\\' => {
                let e = *s.get(i)?;
                i += 1;
                match e {
                    '\n' => {}
                    '"' | '\\' | '/' => text.push(e),
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'r' => text.push('\r'),
                    'a' => text.push('\x07'),
                    'b' => text.push('\x08'),
                    'f' => text.push('\x0c'),
                    'v' => text.push('\x0b'),
                    '0'..='7' => {
                        let mut value = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match s.get(i).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    value = value * 8 + d;
                                    i += 1;
                                }
                                None => break,
                            }
                        }
                        exact &= push_byte(&mut text, value);
                    }
                    'x' => {
                        let digits = s[i..].iter().take_while(|d| d.is_ascii_hexdigit()).count();
                        // gawk before 4.2 took every hex digit; newer awks
                        // take at most two.
                        exact &= (1..=2).contains(&digits);
                        let mut value = 0;
                        for d in s[i..].iter().take(digits.min(2)) {
                            value = value * 16 + d.to_digit(16).unwrap_or(0);
                        }
                        i += digits.min(2);
                        exact &= push_byte(&mut text, value);
                    }
                    // gawk drops the backslash, mawk keeps it.
                    other => {
                        exact = false;
                        text.push('\\');
                        text.push(other);
                    }
                }
            }
            c => text.push(c),
        }
    }
}

/// Pushes one decoded byte; false where it is not the same text to every
/// reader (a NUL ends a C string early, a byte above 127 is no character).
fn push_byte(text: &mut String, value: u32) -> bool {
    match char::from_u32(value) {
        Some(c) if (1..128).contains(&value) => {
            text.push(c);
            true
        }
        _ => {
            text.push('\u{fffd}');
            false
        }
    }
}

/// The index after a regex literal that starts after its opening `/`, or
/// `None` when it never ends. A `/` inside a bracket expression does not
/// end it (`/[^/]+/`), as gawk and mawk read it; the awks that do end
/// there are left with an unterminated bracket and refuse the program.
fn regex(s: &[char], mut i: usize) -> Option<usize> {
    let mut brackets = 0usize;
    let mut opened = 0usize;
    while let Some(&c) = s.get(i) {
        match c {
            '\\' => {
                s.get(i + 1)?;
                i += 2;
                continue;
            }
            '\n' => return None,
            '[' if brackets == 0 => {
                brackets = 1;
                opened = i;
            }
            '[' if s.get(i + 1) == Some(&':') => brackets += 1,
            // `[]…]` and `[^]…]`: a `]` first in the bracket is itself.
            ']' if brackets > 0
                && i != opened + 1
                && !(i == opened + 2 && s[opened + 1] == '^') =>
            {
                brackets -= 1;
            }
            '/' if brackets == 0 => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index after a number: digits, a fraction, an exponent, or gawk's
/// hexadecimal. Letters after it start a name of their own, as they do in
/// awk (`1system("id")` calls `system`).
fn number(s: &[char], mut i: usize) -> usize {
    if s[i] == '0'
        && matches!(s.get(i + 1), Some('x' | 'X'))
        && s.get(i + 2).is_some_and(char::is_ascii_hexdigit)
    {
        i += 2;
        while s.get(i).is_some_and(char::is_ascii_hexdigit) {
            i += 1;
        }
        return i;
    }
    while s.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if s.get(i) == Some(&'.') {
        i += 1;
        while s.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(s.get(i), Some('e' | 'E')) {
        let sign = usize::from(matches!(s.get(i + 1), Some('+' | '-')));
        if s.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
            i += 1 + sign;
            while s.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
    }
    i
}

/// A name and the index after it; of a gawk qualified name (`ns::f`) the
/// last part, so `awk::system` is `system`.
fn name(s: &[char], mut i: usize) -> (String, usize) {
    let word = |i: &mut usize| {
        let start = *i;
        while s
            .get(*i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            *i += 1;
        }
        s[start..*i].iter().collect::<String>()
    };
    let mut last = word(&mut i);
    while s.get(i) == Some(&':')
        && s.get(i + 1) == Some(&':')
        && s.get(i + 2)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
    {
        i += 2;
        last = word(&mut i);
    }
    (last, i)
}

/// For each bracket, the index of its partner; `None` when they do not
/// balance or nest too deep.
fn pair_up(tokens: &[Token]) -> Option<Vec<usize>> {
    let mut partner = vec![usize::MAX; tokens.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Token::Op(o) = t else { continue };
        match *o {
            "(" | "[" | "{" => {
                open.push(i);
                if open.len() > MAX_DEPTH {
                    return None;
                }
            }
            close @ (")" | "]" | "}") => {
                let opener = open.pop()?;
                let pairs = matches!(
                    (&tokens[opener], close),
                    (Token::Op("("), ")") | (Token::Op("["), "]") | (Token::Op("{"), "}")
                );
                if !pairs {
                    return None;
                }
                partner[opener] = i;
                partner[i] = opener;
            }
            _ => {}
        }
    }
    open.is_empty().then_some(partner)
}

fn is_op(t: Option<&Token>, ops: &[&str]) -> bool {
    matches!(t, Some(Token::Op(o)) if ops.contains(o))
}

fn is_name(t: Option<&Token>, names: &[&str]) -> bool {
    matches!(t, Some(Token::Name(n)) if names.contains(&n.as_str()))
}

/// Reads one program's text into `out`.
fn program(text: &str, out: &mut ScriptEffects) {
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
            _ => {}
        }
    }
}

struct Program<'a> {
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
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn of(list: &[&str]) -> ScriptEffects {
        effects(&words(list))
    }

    fn runs(words: &[&str]) -> Vec<Option<String>> {
        of(words).runs
    }

    fn some(text: &str) -> Vec<Option<String>> {
        vec![Some(text.to_owned())]
    }

    #[test]
    fn system_runs_its_literal_command() {
        assert_eq!(runs(&["BEGIN{system(\"rm -rf /\")}"]), some("rm -rf /"));
        assert_eq!(runs(&["{ system (\"id\") }", "f"]), some("id"));
        assert_eq!(runs(&["BEGIN { system((\"id\")) }"]), some("id"));
        assert_eq!(runs(&["{ system(\"echo \" $1) }", "f"]), vec![None]);
        assert_eq!(runs(&["{ system($0) }", "f"]), vec![None]);
        assert_eq!(runs(&["-vcmd=id", "BEGIN{system(cmd)}"]), vec![None]);
        assert_eq!(runs(&["-v", "cmd=id", "BEGIN{system(cmd)}"]), vec![None]);
        // Escapes are decoded as awk decodes them.
        assert_eq!(runs(&["BEGIN{system(\"r\\155 -rf /\")}"]), some("rm -rf /"));
        assert_eq!(runs(&["BEGIN{system(\"rm\\x20-rf /\")}"]), some("rm -rf /"));
        // Where the awks decode differently, the command is not known.
        assert_eq!(runs(&["BEGIN{system(\"ls \\x2ftmp\")}"]), some("ls /tmp"));
        assert_eq!(runs(&["BEGIN{system(\"ls \\x2fbin\")}"]), vec![None]);
        assert_eq!(runs(&["BEGIN{system(\"rm\\x020-rf /\")}"]), vec![None]);
        assert_eq!(runs(&["BEGIN{system(\"id\\0; rm -rf /\")}"]), vec![None]);
        assert_eq!(runs(&["BEGIN{system(\"\\id\")}"]), vec![None]);
        // A qualified name and a number glued before it hide nothing.
        assert_eq!(runs(&["BEGIN{awk::system(\"id\")}"]), some("id"));
        assert_eq!(runs(&["BEGIN{x = 1system(\"id\")}"]), some("id"));
    }

    #[test]
    fn print_redirections_write_and_pipe() {
        assert_eq!(of(&["{print > \"/dev/sda\"}", "f"]).writes, ["/dev/sda"]);
        assert_eq!(
            of(&["{printf \"x\" >> \"/etc/cron.d/x\"}", "f"]).writes,
            ["/etc/cron.d/x"]
        );
        assert_eq!(
            of(&["{print $1, $2 >\"out.txt\"}", "f"]).writes,
            ["out.txt"]
        );
        assert_eq!(
            of(&["{printf(\"%s\\n\", $0) > (\"/tmp/x\")}", "f"]).writes,
            ["/tmp/x"]
        );
        assert!(of(&["{print > $1 \".txt\"}", "f"]).writes_unknown);
        assert!(of(&["{print > \"/etc/\" \"passwd\"}", "f"]).writes_unknown);
        assert!(of(&["{print $0 > FILENAME \".bak\"}", "f"]).writes_unknown);
        assert!(of(&["{ print a > b }", "f"]).writes_unknown);
        assert_eq!(runs(&["BEGIN{print \"id\" | \"sh\"}"]), some("sh"));
        assert_eq!(runs(&["{print $2 | \"sort -u\"}", "f"]), some("sort -u"));
        assert_eq!(runs(&["{print | cmd}", "f"]), vec![None]);
        assert_eq!(runs(&["BEGIN{print \"id\" |& \"sh\"}"]), some("sh"));
        assert_eq!(
            runs(&["BEGIN { printf \"%s\\n\", \"id\" | \"/bin/sh\" }"]),
            some("/bin/sh")
        );
        // Standard streams are no files.
        for target in ["/dev/stderr", "/dev/stdout", "/dev/fd/2", "-", "/dev/null"] {
            let program = format!("{{print \"oops\" > \"{target}\"}}");
            assert!(of(&[&program, "f"]).only_transforms(), "{target}");
        }
        // A statement may go on over a newline after an operator.
        assert_eq!(
            of(&["{ print x ?\n \"a\" : \"b\" > \"/etc/x\" }", "f"]).writes,
            ["/etc/x"]
        );
        assert_eq!(
            of(&["{ print $1,\n $2 > \"/etc/x\" }", "f"]).writes,
            ["/etc/x"]
        );
    }

    #[test]
    fn strings_regexes_and_comments_hide_nothing() {
        assert_eq!(
            of(&["{ print \"a;b}c#d\" > \"/etc/x\" }", "f"]).writes,
            ["/etc/x"]
        );
        assert_eq!(runs(&["{ x = \"}\"; print x | \"sh\" }", "f"]), some("sh"));
        assert_eq!(
            runs(&["{ x = \";\" } { print \"#\" | \"sh\" }", "f"]),
            some("sh")
        );
        assert_eq!(
            of(&["/a>b|c/ { print \"}\" > \"/tmp/o\" } # print > \"/x\"", "f"]).writes,
            ["/tmp/o"]
        );
        // What sits in a comment is not run.
        assert!(of(&["{ print } # system(\"id\")", "f"]).only_transforms());
        // A regex holding a quote or a slash in brackets is one token.
        assert!(of(&["/\"/ { print }", "f"]).only_transforms());
        assert!(of(&["{ sub(/[^/]*$/, \"\"); print }", "f"]).only_transforms());
        assert!(of(&["$0 ~ /[]/]/ { print }", "f"]).only_transforms());
        assert!(of(&["/[[:alpha:]/]+/", "f"]).only_transforms());
        // A bracket that swallows code, as gawk and mawk would read it, is a
        // regex; the awks that end it earlier refuse the program.
        assert!(of(&["$0 ~ /[/; system(\"id\"); x = /]/", "f"]).only_transforms());
    }

    #[test]
    fn comparisons_are_not_redirections() {
        for program in [
            "$3 > 100",
            "$3 > 100 { print $1 }",
            "{ if (a > b) print }",
            "{ if ($1 > 5) print $2 }",
            "{ print ($1 > 2) }",
            "{ print ($1 > 2), $2 }",
            "{ printf(\"%d\\n\", a > b) }",
            "{ print a[$1 > 2] }",
            "NR>1 && $5+0 > 80 {print $6}",
            "{ x = ($1 > max) ? $1 : max } END { print x }",
            "/a|b/",
            "/>/",
            "/a|b/ { print }",
            "{ n = a / b / c; print n }",
            "{ a /= 2; print a }",
            "{ print 6 / 2 / 3 }",
            "length > 72",
            "{ print length / 2 }",
            "{ x = a++ / 2 }",
            "{ print (a) / (b) }",
            "$1 != prev { print; prev = $1 }",
            "{ s = s \"|\" $1 } END { print s }",
            "BEGIN { while ((getline line) > 0) n++; print n }",
            "{ getline; print }",
            "{ getline x; print x }",
            "$1 < 10",
            "{ for (i = 1; i <= NF; i++) s += $i } END { print s }",
            "{ print ARGV[1], ARGC }",
            "BEGIN { for (i = 0; i < ARGC; i++) print ARGV[i] }",
            "{ if (($1 in seen) == 0) print }",
            "BEGIN { printf \"%s\\n\", \"hi\" }",
            "@namespace \"x\"\n{ print }",
            "BEGIN { r = @/x/; print r }",
        ] {
            let e = of(&[program, "f"]);
            assert!(e.only_transforms(), "{program}: {e:?}");
        }
    }

    #[test]
    fn getline_from_commands_and_files() {
        assert_eq!(runs(&["BEGIN{\"sh\" | getline}"]), some("sh"));
        assert_eq!(
            runs(&["BEGIN { while ((\"date\" | getline d) > 0) print d }"]),
            some("date")
        );
        assert_eq!(runs(&["BEGIN { (\"id\") | getline x }"]), some("id"));
        assert_eq!(runs(&["BEGIN { cmd | getline x }"]), vec![None]);
        assert_eq!(runs(&["BEGIN { \"ls \" dir | getline x }"]), vec![None]);
        assert_eq!(runs(&["BEGIN { -\"id\" | getline x }"]), vec![None]);
        assert_eq!(runs(&["BEGIN { \"sh\" |& getline x }"]), some("sh"));
        assert_eq!(
            of(&["BEGIN{while((getline l < \"/srv/app/.env\")>0) print l}"]).reads,
            ["/srv/app/.env"]
        );
        assert_eq!(
            of(&["BEGIN { getline line < \"/etc/shadow\"; print line }"]).reads,
            ["/etc/shadow"]
        );
        assert_eq!(of(&["BEGIN { getline < (\"/x\") }"]).reads, ["/x"]);
        assert_eq!(of(&["BEGIN { getline $1 < \"/x\" }"]).reads, ["/x"]);
        assert_eq!(of(&["BEGIN { getline a[1] < \"/x\" }"]).reads, ["/x"]);
        assert!(of(&["BEGIN { getline < ARGV[1] }"]).reads_unknown);
        assert!(of(&["BEGIN { getline x < file }"]).reads_unknown);
        // gawk reads `a`, the original awk `ab`: the file is not known.
        assert!(of(&["BEGIN { getline x < \"a\" \"b\" }"]).reads_unknown);
        assert!(of(&["BEGIN { getline x < \"/etc/\" f }"]).reads_unknown);
        assert!(of(&["BEGIN { getline < \"-\" }"]).only_transforms());
        assert!(of(&["BEGIN { getline x < \"/dev/stdin\" }"]).only_transforms());
    }

    #[test]
    fn environment_argv_and_code_from_files() {
        assert!(of(&["BEGIN { print ENVIRON[\"HOME\"] }"]).environment);
        assert!(of(&["BEGIN { for (k in ENVIRON) print k }"]).environment);
        assert!(of(&["BEGIN { print PROCINFO[\"pid\"] }"]).environment);
        assert!(of(&["BEGIN { print SYMTAB[\"ENV\" \"IRON\"][\"X\"] }"]).environment);
        for program in [
            "BEGIN { ARGV[1] = \"/etc/shadow\" }",
            "BEGIN { ARGV[ARGC++] = \"/etc/shadow\" }",
            "BEGIN { ARGC = 2 }",
            "BEGIN { ARGC += 1 }",
            "BEGIN { delete ARGV[1] }",
            "BEGIN { split(\"/etc/shadow\", ARGV) }",
            "BEGIN { sub(/x/, \"/etc/shadow\", ARGV[1]) }",
            "function f(a) { a[1] = \"/etc/shadow\" } BEGIN { f(ARGV) }",
            "BEGIN { getline ARGV[1] }",
        ] {
            assert!(of(&[program, "f"]).reads_unknown, "{program}");
        }
        assert!(of(&["@include \"lib.awk\"\n{ print }"]).from_file);
        assert!(of(&["@load \"readfile\"\nBEGIN { print }"]).from_file);
        assert!(of(&["BEGIN { extension(\"x.so\", \"init\") }"]).from_file);
        assert_eq!(runs(&["BEGIN { f = \"system\"; @f(\"id\") }"]), vec![None]);
        for network in [
            "BEGIN { print \"x\" |& \"/inet/tcp/0/203.0.113.5/80\" }",
            "BEGIN { \"/inet4/tcp/0/h/80\" |& getline }",
            "BEGIN { getline < \"/inet6/tcp/0/h/80\" }",
            "BEGIN { print > \"/inet/udp/0/h/53\" }",
        ] {
            assert!(of(&[network]).unreadable, "{network}");
        }
    }

    #[test]
    fn options_are_read_as_the_awks_read_them() {
        assert!(of(&["-f", "prog.awk", "f"]).from_file);
        assert!(of(&["-fprog.awk", "f"]).from_file);
        assert!(of(&["--file=prog.awk", "f"]).from_file);
        assert!(of(&["--fil", "prog.awk", "f"]).from_file);
        assert!(of(&["-E", "prog.awk", "f"]).from_file);
        assert!(of(&["-i", "inplace", "{print}", "f"]).from_file);
        assert!(of(&["-l", "ordchr", "{print}", "f"]).from_file);
        assert!(of(&["--load=x.so", "{print}"]).from_file);
        // With -f, the first operand is a file, not the program.
        assert!(
            of(&["-f", "p.awk", "BEGIN{system(\"id\")}"])
                .runs
                .is_empty()
        );
        // -e pieces are one program.
        assert_eq!(
            runs(&["-e", "BEGIN { x = 1 }", "-e", "END { system(\"id\") }"]),
            some("id")
        );
        assert_eq!(runs(&["--source=BEGIN{system(\"id\")}"]), some("id"));
        assert_eq!(runs(&["--so", "BEGIN{system(\"id\")}"]), some("id"));
        assert_eq!(runs(&["-W", "source=BEGIN{system(\"id\")}"]), some("id"));
        // The profile, pretty-print and variable dumps are writes.
        assert_eq!(
            of(&["--dump-variables=/etc/passwd", "{print}"]).writes,
            ["/etc/passwd"]
        );
        assert_eq!(of(&["-p/root/x", "{print}"]).writes, ["/root/x"]);
        assert_eq!(of(&["-p", "{print}"]).writes, ["awkprof.out"]);
        assert_eq!(of(&["-d", "{print}"]).writes, ["awkvars.out"]);
        assert_eq!(of(&["-o/tmp/pp", "{print}"]).writes, ["/tmp/pp"]);
        assert_eq!(of(&["--pretty=/tmp/pp", "{print}"]).writes, ["/tmp/pp"]);
        assert_eq!(of(&["--profile", "{print}"]).writes, ["awkprof.out"]);
        assert_eq!(of(&["-nd/tmp/v", "{print}"]).writes, ["/tmp/v"]);
        // The debugger is interactive; unknown and ambiguous options are not guessed.
        for words in [
            &["-D", "{print}"][..],
            &["--debug", "{print}"],
            &["-q", "{print}"],
            &["--d", "{print}"],
            &["--l", "{print}"],
            &["--fi", "x", "{print}"],
            &["--bogus", "{print}"],
            &["-f"],
            &["-safe", "{print}"],
        ] {
            assert!(of(words).unreadable, "{words:?}");
        }
        // The sandbox is gawk's alone: mawk runs system() under -W sandbox.
        assert_eq!(runs(&["--sandbox", "BEGIN{system(\"id\")}"]), some("id"));
        assert_eq!(runs(&["-S", "BEGIN{system(\"id\")}"]), some("id"));
        // Clusters and attached values.
        assert!(of(&["-F:", "{print $1}", "/etc/passwd"]).only_transforms());
        assert!(of(&["-F", ":", "-v", "OFS=\t", "{print $1}", "f"]).only_transforms());
        assert!(of(&["-bvx=1", "{print x}", "f"]).only_transforms());
        assert!(of(&["--", "{print}", "-f"]).only_transforms());
        assert!(of(&["--lint=fatal", "-Lfatal", "{print}"]).only_transforms());
        assert!(of(&["--version"]).only_transforms());
        assert!(of(&["--vers"]).only_transforms());
        // Operands are files and assignments, never code.
        assert!(of(&["{print}", "cmd=system(\"id\")", "-f"]).only_transforms());
    }

    #[test]
    fn the_original_awk_skips_what_it_does_not_know() {
        // It ignores --source=… and runs the next word, a file to gawk.
        assert_eq!(
            runs(&["--source=BEGIN{}", "BEGIN{system(\"id\")}"]),
            some("id")
        );
        assert_eq!(
            runs(&["-S", "--lint", "-v", "x=1", "BEGIN{system(\"id\")}"]),
            some("id")
        );
        assert_eq!(runs(&["-e", "BEGIN{}", "BEGIN{system(\"id\")}"]), vec![]);
        assert_eq!(original_awk_program(&words(&["-e", "X", "Y"])), Some(1));
        assert_eq!(
            original_awk_program(&words(&["-vx=1", "-F", ":", "X"])),
            Some(3)
        );
        assert_eq!(original_awk_program(&words(&["-bf", "X"])), Some(1));
        assert_eq!(original_awk_program(&words(&["-f", "X", "Y"])), None);
        assert_eq!(original_awk_program(&words(&["--", "-X"])), Some(1));
        assert_eq!(original_awk_program(&words(&["-", "X"])), Some(0));
        assert_eq!(original_awk_program(&words(&["-F"])), None);
    }

    #[test]
    fn mawk_w_options() {
        assert!(of(&["-W", "exec", "prog.awk", "f"]).from_file);
        assert!(of(&["-We", "prog.awk"]).from_file);
        assert!(of(&["-W", "EXEC", "prog.awk"]).from_file);
        assert!(of(&["-Winteractive,exec", "prog.awk"]).from_file);
        assert!(of(&["-W", "exec=prog.awk"]).from_file);
        assert!(of(&["-W", "sprintf=2000,exec", "prog.awk"]).from_file);
        // After exec the options end.
        assert!(of(&["-W", "exec", "p.awk", "-D"]).from_file);
        assert!(!of(&["-W", "exec", "p.awk", "-D"]).unreadable);
        for words in [
            &["-W", "version"][..],
            &["-Wv"],
            &["-W", "interactive", "{print}"],
            &["-W", "sprintf=4000", "{print}"],
            &["-W", "posix_space", "{print}"],
        ] {
            assert!(of(words).only_transforms(), "{words:?}: {:?}", of(words));
        }
        // gawk reads `-W dump` as --dump-variables.
        assert_eq!(of(&["-W", "dump", "{print}"]).writes, ["awkvars.out"]);
        // mawk ignores `-W field-separator` and runs the next word.
        assert_eq!(
            runs(&["-W", "field-separator", "BEGIN{system(\"id\")}"]),
            some("id")
        );
        assert_eq!(
            runs(&["--field-separator", "BEGIN{system(\"id\")}"]),
            some("id")
        );
        // The original awk ignores `-W` and runs the word after it.
        assert_eq!(
            runs(&["-W", "random=1;system(\"id\")", "{print}"]),
            some("id")
        );
        assert!(of(&["-W", "BEGIN{system(\"id\")}"]).unreadable);
    }

    #[test]
    fn what_cannot_be_followed_is_unreadable() {
        for program in [
            "{ print \"x }",
            "{ print /x }",
            "{ print $1 ",
            "{ print ($1 }",
            "{ print ] }",
            "BEGIN { x = \"a\nb\" }",
            "{ print } \\",
            "{ print `id` }",
            "{ print > }",
            "@ x",
            "{ print 'x' }",
        ] {
            assert!(of(&[program, "f"]).unreadable, "{program}");
        }
        let deep = format!("BEGIN {{ x = {}1{} }}", "(".repeat(200), ")".repeat(200));
        assert!(of(&[&deep]).unreadable);
        let long = format!("BEGIN {{ x = \"{}\" }}", "a".repeat(MAX_PROGRAM));
        assert!(of(&[&long]).unreadable);
    }

    #[test]
    fn program_text_and_values_are_no_paths() {
        assert_eq!(of(&["{print}", "/srv/app/.env"]).not_paths, [0]);
        assert_eq!(
            of(&["-F:", "-v", "k=/srv/app/.env", "{print k}", "f"]).not_paths,
            [0, 1, 2, 3]
        );
        assert_eq!(of(&["-vk=/etc/shadow", "{print k}"]).not_paths, [0, 1]);
        assert_eq!(
            of(&["-e", "BEGIN{}", "--source", "END{}", "f"]).not_paths,
            [0, 1, 2, 3]
        );
        assert_eq!(of(&["-W", "version"]).not_paths, [0, 1]);
        assert_eq!(
            of(&["-W", "assign", "x=1", "/etc/shadow"]).not_paths,
            [0, 1, 2]
        );
        assert_eq!(
            of(&["-W", "interactive", "{print}", "/etc/shadow"]).not_paths,
            [0, 1]
        );
        assert!(of(&["-i", "1", "/etc/shadow"]).not_paths.is_empty());
        assert_eq!(of(&["-F", ":", "/x/", "f"]).not_paths, [0, 1, 2]);
        // Program files are read, and so are paths.
        assert!(of(&["-f", "/srv/app/.env", "f"]).not_paths.is_empty());
        assert_eq!(of(&["-W", "exec", "p.awk", "f"]).not_paths, [0, 1]);
    }

    #[test]
    fn no_program_reads_nothing() {
        assert!(of(&[]).only_transforms());
        assert!(of(&["-F:"]).only_transforms());
    }
}
