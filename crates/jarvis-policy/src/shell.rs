//! Shell syntax: from a command line to every simple command it would run.
//!
//! This layer knows bash grammar and nothing about programs. It walks the
//! brush-parser AST (lists, pipelines, subshells, groups, loops, `case`,
//! functions, command and process substitutions, here-documents) and yields
//! [`Invocation`]s whose words have had their quotes and escapes removed, so
//! `\rm`, `r''m`, `"rm"` and `$'\x72m'` all read `rm`. Recursion into strings
//! that *programs* hand to a shell (`sh -c`, `eval`, `find -exec`) needs the
//! knowledge base and happens one layer up, in `analyze`.
//!
//! The walk of the AST is `walker`, with its redirections and
//! here-documents in `redirects` and its words (quotes, escapes,
//! expansions) in `words`; `parser_guard` holds what brush-parser must not
//! be handed, or must be held from.

use brush_parser::ParserOptions;
use brush_parser::ast;

mod parser_guard;
mod redirects;
mod walker;
mod words;

pub(crate) use words::decode_ansi_c;

use walker::{Frame, Walker};

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

/// `s` quoted in a reason: `max` characters of it at most, and the
/// ellipsis after them when it is longer.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    jarvis_core::text::clip_chars(s, max + 1).into_owned()
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
