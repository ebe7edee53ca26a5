//! jq and yq read for what a line does besides reshaping JSON or YAML: the
//! environment it reads (`env`, `$ENV`, yq's `env(NAME)`, `strenv`,
//! `envsubst`), files it reads beyond its operands (`--rawfile`,
//! `--slurpfile`, `--argfile`, yq's `load("f")`), code it takes from files
//! (`-f`, `-L`, `import`, `include`, yq's `--from-file` and `.yq` files),
//! files it edits in place (`yq -i`, jaq's `-i`), files an expression names
//! (mikefarah yq's `-s`) and programs it runs (mikefarah yq's `system`).
//!
//! jq itself can neither run a program nor write a file: what it prints goes
//! where the shell sends it (a redirection, a pipe into `sh`), and that is
//! judged as the shell line it is. Its input files are the line's operands,
//! which the analysis already judges as reads, so they are not reported here.
//!
//! `yq` names two programs. kislyuk's Python yq hands its filter to jq;
//! mikefarah's Go yq has a language of its own, whose lexer finds operators
//! inside words and ends strings and paths by other rules. A host may have
//! either, so a yq line is read both ways, and whatever either would do
//! counts. The jq family is read the same way: an option that jq 1.5 to
//! 1.8, gojq or jaq knows counts as that one reads it.
//!
//! The filter is tokenised as jq's lexer does (strings and the filters
//! interpolated into them with `\(…)`, `#` comments, `$name`, `@format`,
//! `.field`, keywords), and a name counts as a call wherever it is not a
//! field, an object key or a definition's name. What this reader cannot
//! follow (an unknown option, an unterminated string, unbalanced brackets,
//! an absurd length or depth) is unreadable, never harmless. It never
//! panics.
//!
//! The options and the walk over the words are here; jq's language is
//! `language`, the Go yq's `go_yq`.

use crate::script::ScriptEffects;

mod go_yq;
mod language;

use go_yq::go_view;
use language::{classify, lex};

/// Filters longer than this are not read; no everyday filter comes near.
const MAX_FILTER_CHARS: usize = 64 * 1024;

/// Nesting deeper than this (brackets, interpolations, `eval` strings) is
/// not read.
const MAX_DEPTH: usize = 64;

/// Reads `jq ARGS` (also gojq and jaq): the words after the program name,
/// as the program receives them.
pub fn effects_jq(args: &[String]) -> ScriptEffects {
    read(args, Dialect::Jq)
}

/// Reads `yq ARGS` (also xq and tomlq) as both the Python and the Go yq
/// would run them.
pub fn effects_yq(args: &[String]) -> ScriptEffects {
    read(args, Dialect::Yq)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// jq, gojq, jaq.
    Jq,
    /// The Python yq (jq's language and options, and its own) and the Go
    /// yq (a language and options of its own).
    Yq,
}

/// What an option does to the reading of the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opt {
    /// Shapes input or output only.
    Flag,
    /// Takes a value that is no file (`--indent 2`, `-o json`).
    Value,
    /// Takes a name and a value (`--arg NAME VALUE`).
    Named,
    /// Takes a name and a file it reads (`--rawfile NAME FILE`).
    NamedFile,
    /// jq's `-f`: the first positional is the file holding the program.
    ProgramFileFirst,
    /// yq's `-f FILE` and `--from-file FILE`: the program comes from FILE.
    ProgramFileValue,
    /// `-L DIR`: where `import` and `include` find modules.
    Library,
    /// Edits its input files in place.
    InPlace,
    /// The positionals after the program are values, not files.
    Args,
    /// Runs the test programs in the files that follow.
    RunTests,
    /// Go yq's `--expression EXPR`: the program, given as a value.
    Expression,
    /// Go yq's `-s EXPR`: writes each result to a file EXPR names.
    SplitExp,
    /// Go yq's `--split-exp-file FILE`: the same, the expression from FILE.
    SplitExpFile,
}

impl Opt {
    fn values(self) -> usize {
        match self {
            Opt::Flag | Opt::ProgramFileFirst | Opt::InPlace | Opt::Args | Opt::RunTests => 0,
            Opt::Value
            | Opt::ProgramFileValue
            | Opt::Library
            | Opt::Expression
            | Opt::SplitExp
            | Opt::SplitExpFile => 1,
            Opt::Named | Opt::NamedFile => 2,
        }
    }
}

/// jq's long options, and those gojq and jaq add. All of them match only
/// when written in full: none of these tools takes an abbreviation.
fn jq_long(name: &str) -> Option<Opt> {
    Some(match name {
        "slurp"
        | "raw-output"
        | "raw-output0"
        | "join-output"
        | "compact-output"
        | "color-output"
        | "monochrome-output"
        | "ascii-output"
        | "unbuffered"
        | "sort-keys"
        | "raw-input"
        | "null-input"
        | "tab"
        | "seq"
        | "stream"
        | "stream-errors"
        | "exit-status"
        | "binary"
        | "debug-dump-disasm"
        | "debug-trace"
        | "debug-trace=all"
        | "help"
        | "version"
        | "build-configuration"
        | "yaml-input"
        | "yaml-output" => Opt::Flag,
        "indent" => Opt::Value,
        "arg" | "argjson" => Opt::Named,
        "rawfile" | "slurpfile" | "argfile" => Opt::NamedFile,
        "from-file" => Opt::ProgramFileFirst,
        "library-path" => Opt::Library,
        "args" | "jsonargs" => Opt::Args,
        "run-tests" => Opt::RunTests,
        "in-place" => Opt::InPlace,
        _ => return None,
    })
}

fn jq_short(c: char) -> Option<Opt> {
    Some(match c {
        's' | 'r' | 'j' | 'c' | 'C' | 'M' | 'a' | 'S' | 'R' | 'n' | 'e' | 'h' | 'V' | 'b' | 'v' => {
            Opt::Flag
        }
        'f' => Opt::ProgramFileFirst,
        'L' => Opt::Library,
        'i' => Opt::InPlace,
        _ => return None,
    })
}

/// The Python yq's own options, the jq options it passes on, and the Go
/// yq's options. Where the two disagree, the reading that does more wins
/// (`--from-file` takes its file as a value in both yqs).
fn yq_long(name: &str) -> Option<Opt> {
    Some(match name {
        // The Python yq.
        "yaml-output" | "yml-output" | "yaml-roundtrip" | "yml-roundtrip" | "indentless-lists"
        | "indentless" | "explicit-start" | "explicit-end" | "no-expand-aliases" | "xml-output"
        | "xml-dtd" | "toml-output" => Opt::Flag,
        "output-format"
        | "yaml-output-grammar-version"
        | "yml-out-ver"
        | "width"
        | "max-expansion-factor"
        | "xml-root"
        | "xml-force-list" => Opt::Value,
        "in-place" | "inplace" => Opt::InPlace,
        "from-file" => Opt::ProgramFileValue,
        // The Go yq.
        "verbose"
        | "debug-node-info"
        | "tojson"
        | "xml-strict-mode"
        | "xml-keep-namespace"
        | "xml-raw-token"
        | "xml-skip-proc-inst"
        | "xml-skip-directives"
        | "csv-auto-parse"
        | "tsv-auto-parse"
        | "lua-unquoted"
        | "lua-globals"
        | "properties-array-brackets"
        | "string-interpolation"
        | "no-doc"
        | "unwrapScalar"
        | "nul-output"
        | "prettyPrint"
        | "colors"
        | "no-colors"
        | "header-preprocess"
        | "yaml-fix-merge-anchor-to-spec"
        | "yaml-compact-seq-indent"
        | "security-disable-env-ops"
        | "security-disable-file-ops"
        | "security-enable-system-operator" => Opt::Flag,
        "input-format"
        | "xml-attribute-prefix"
        | "xml-content-name"
        | "xml-proc-inst-prefix"
        | "xml-directive-name"
        | "csv-separator"
        | "lua-prefix"
        | "lua-suffix"
        | "properties-separator"
        | "shell-key-separator"
        | "front-matter" => Opt::Value,
        "expression" => Opt::Expression,
        "split-exp" => Opt::SplitExp,
        "split-exp-file" => Opt::SplitExpFile,
        other => return jq_long(other),
    })
}

/// Short options of both yqs: `-s` is the Go yq's `--split-exp` (the Python
/// yq's jq reads it as `--slurp`), `-f` takes a value in both (a program
/// file, or the Go yq's front-matter mode).
fn yq_short(c: char) -> Option<Opt> {
    Some(match c {
        'y' | 'Y' | 'x' | 't' | 'v' | 'N' | 'P' | '0' => Opt::Flag,
        'w' | 'o' | 'p' | 'I' => Opt::Value,
        'f' => Opt::ProgramFileValue,
        's' => Opt::SplitExp,
        other => return jq_short(other),
    })
}

/// A dialect's long options by name, and its short ones by letter.
type LongOptions = fn(&str) -> Option<Opt>;
type ShortOptions = fn(char) -> Option<Opt>;

/// The Go yq's subcommands that take an expression.
const YQ_EVAL_SUBCOMMANDS: &[&str] = &["e", "eval", "ea", "eval-all"];

/// jq takes a word as an option when a letter or a second dash follows its
/// dash; `-1`, `-.a` and `-` are positionals.
fn is_option(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next() == Some('-')
        && chars
            .next()
            .is_some_and(|c| c == '-' || c.is_ascii_alphabetic())
}

/// The line's words as the tool's option parser sorts them.
#[derive(Default)]
struct Walk<'a> {
    out: ScriptEffects,
    /// Filters to read: the program positional, `--expression`, `-s`.
    filters: Vec<&'a str>,
    /// Positionals: where each stands, its text, and whether `--args`
    /// came before it.
    positionals: Vec<(usize, &'a str, bool)>,
    /// Where the words stand that are values, never files.
    not_paths: Vec<usize>,
    args_mode: bool,
    /// jq's `-f`: the first positional names the program file.
    program_file_first: bool,
    /// The program came with an option, so every positional is a file.
    program_given: bool,
    in_place: bool,
    /// `--run-tests`: the rest of the line are test files.
    stop: bool,
}

impl<'a> Walk<'a> {
    /// Takes in option `opt` with its values, and where the values stand
    /// when they are words of their own.
    fn apply(&mut self, opt: Opt, values: &[&'a str], at: Option<usize>) {
        if let Some(first) = at {
            // `-s` takes no value in the Python yq, whose jq reads the word
            // after it as a file (`yq . -s f.yml` slurps f.yml).
            let not_files = match opt {
                Opt::Value | Opt::Named | Opt::Expression => values.len(),
                // `--rawfile NAME FILE`: the name.
                Opt::NamedFile => 1,
                Opt::Flag
                | Opt::ProgramFileFirst
                | Opt::ProgramFileValue
                | Opt::Library
                | Opt::InPlace
                | Opt::Args
                | Opt::RunTests
                | Opt::SplitExp
                | Opt::SplitExpFile => 0,
            };
            self.not_paths.extend(first..first + not_files);
        }
        match opt {
            Opt::Flag | Opt::Value | Opt::Named => {}
            Opt::NamedFile => self
                .out
                .reads
                .extend(values.get(1).map(|v| (*v).to_owned())),
            Opt::ProgramFileFirst => {
                self.out.from_file = true;
                self.program_file_first = true;
            }
            Opt::ProgramFileValue => {
                self.out.from_file = true;
                self.program_given = true;
            }
            Opt::Library => self.out.from_file = true,
            Opt::InPlace => self.in_place = true,
            Opt::Args => self.args_mode = true,
            Opt::RunTests => {
                self.out.from_file = true;
                self.stop = true;
            }
            Opt::Expression => {
                self.filters.extend(values.first().copied());
                self.program_given = true;
            }
            Opt::SplitExp => {
                self.out.writes_unknown = true;
                self.filters.extend(values.first().copied());
            }
            Opt::SplitExpFile => {
                self.out.from_file = true;
                self.out.writes_unknown = true;
            }
        }
    }
}

fn read(args: &[String], dialect: Dialect) -> ScriptEffects {
    let (long, short): (LongOptions, ShortOptions) = match dialect {
        Dialect::Jq => (jq_long, jq_short),
        Dialect::Yq => (yq_long, yq_short),
    };
    let mut walk = Walk::default();
    let mut options_done = false;
    let mut i = 0;
    while i < args.len() && !walk.stop {
        let a = args[i].as_str();
        i += 1;
        if options_done || !is_option(a) {
            walk.positionals.push((i - 1, a, walk.args_mode));
            continue;
        }
        if a == "--" {
            options_done = true;
            continue;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (opt, attached) = match long(body) {
                Some(opt) => (opt, None),
                None => match body.split_once('=') {
                    Some((name, value)) => match long(name) {
                        Some(opt) => (opt, Some(value)),
                        None => {
                            walk.out.unreadable = true;
                            continue;
                        }
                    },
                    None => {
                        walk.out.unreadable = true;
                        continue;
                    }
                },
            };
            let (values, at): (Vec<&str>, _) = match (opt.values(), attached) {
                (0, _) => (Vec::new(), None),
                (1, Some(v)) => (vec![v], None),
                (n, None) if i + n <= args.len() => {
                    i += n;
                    (
                        args[i - n..i].iter().map(String::as_str).collect(),
                        Some(i - n),
                    )
                }
                _ => {
                    walk.out.unreadable = true;
                    continue;
                }
            };
            walk.apply(opt, &values, at);
            continue;
        }
        // The Python yq edits in place whenever a single-dash word it
        // passes on to jq holds an `i` anywhere (`-ri`, `-pini`).
        if dialect == Dialect::Yq && a.contains('i') {
            walk.in_place = true;
        }
        let cluster = &a[1..];
        for (at, c) in cluster.char_indices() {
            let Some(opt) = short(c) else {
                walk.out.unreadable = true;
                break;
            };
            match opt.values() {
                0 => walk.apply(opt, &[], None),
                1 => {
                    // The rest of the word is the value (`-Ldir`, `-oy`),
                    // or else the next word.
                    let rest = &cluster[at + c.len_utf8()..];
                    if !rest.is_empty() {
                        walk.apply(opt, &[rest], None);
                    } else if let Some(next) = args.get(i) {
                        i += 1;
                        walk.apply(opt, &[next.as_str()], Some(i - 1));
                    } else {
                        walk.out.unreadable = true;
                    }
                    break;
                }
                _ => {
                    walk.out.unreadable = true;
                    break;
                }
            }
        }
    }
    let mut program_taken = walk.program_given;
    let mut program_positional = None;
    let mut files = Vec::new();
    let positionals = std::mem::take(&mut walk.positionals);
    for (n, &(at, p, after_args)) in positionals.iter().enumerate() {
        if dialect == Dialect::Yq && n == 0 && YQ_EVAL_SUBCOMMANDS.contains(&p) {
            continue;
        }
        if !program_taken {
            program_taken = true;
            if walk.program_file_first {
                continue;
            }
            program_positional = Some(p);
            walk.filters.push(p);
            // jq never opens its filter; the Go yq opens an existing file
            // in its place.
            if dialect == Dialect::Jq {
                walk.not_paths.push(at);
            }
            // The Go yq takes an existing `.yq` file in the program's
            // place as the file holding it.
            if dialect == Dialect::Yq && p.ends_with(".yq") {
                walk.out.from_file = true;
            }
            continue;
        }
        if after_args {
            walk.not_paths.push(at);
        } else {
            files.push(p);
        }
    }
    let mut out = std::mem::take(&mut walk.out);
    out.not_paths = std::mem::take(&mut walk.not_paths);
    if walk.in_place {
        out.writes
            .extend(files.iter().filter(|f| **f != "-").map(|f| (*f).to_owned()));
        // The Go yq takes an existing file in the program's place as the
        // first file (`yq -i f.yml` rewrites f.yml).
        if dialect == Dialect::Yq
            && let Some(p) = program_positional
            && looks_like_a_file(p)
        {
            out.writes.push(p.to_owned());
        }
    }
    for filter in &walk.filters {
        read_filter(filter, dialect, 0, &mut out);
    }
    dedupe(&mut out.reads);
    dedupe(&mut out.writes);
    dedupe(&mut out.runs);
    out
}

/// A word that names a file rather than spelling a filter: path characters
/// only, and no leading `.` unless it is `./` or `../`.
fn looks_like_a_file(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./~+@-".contains(c))
        && (!word.starts_with('.') || word.starts_with("./") || word.starts_with("../"))
}

fn dedupe<T: Ord + Clone>(list: &mut Vec<T>) {
    let mut seen = std::collections::BTreeSet::new();
    list.retain(|x| seen.insert(x.clone()));
}

/// Reads one filter into `out`, in jq's language and, for yq, in the Go
/// yq's too.
fn read_filter(text: &str, dialect: Dialect, depth: usize, out: &mut ScriptEffects) {
    if text.chars().count() > MAX_FILTER_CHARS || depth > MAX_DEPTH {
        out.unreadable = true;
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    match lex(&chars, &mut at, depth, false) {
        Some(tokens) => {
            if classify(&tokens, dialect, depth, out).is_none() {
                out.unreadable = true;
            }
        }
        None => out.unreadable = true,
    }
    if dialect == Dialect::Yq {
        go_view(&chars, depth, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jq(words: &[&str]) -> ScriptEffects {
        effects_jq(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    fn yq(words: &[&str]) -> ScriptEffects {
        effects_yq(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    fn env(words: &[&str]) -> bool {
        let e = jq(words);
        e.environment && !e.unreadable
    }

    #[test]
    fn everyday_filters_only_transform() {
        for words in [
            &[".[0].State"][..],
            &["-r", ".items[].metadata.name", "pods.json"],
            &[".[] | select(.status==\"up\") | .name", "s.json"],
            &["-s", "add", "a.json", "b.json"],
            &["--arg", "n", "grafana", ".[] | select(.name==$n)", "x.json"],
            &["-n", "[inputs]", "a.json"],
            &["{name, env: .Config.Env | length}", "x.json"],
            &[".env", "x.json"],
            &[".[] | {env}", "x.json"],
            &["{env: 1, a: .b}"],
            &["{\"env\": .x}"],
            &[".a.env", "x.json"],
            &[".[\"env\"]"],
            &[".\"env\""],
            &["getpath([\"env\"])"],
            &["-rc", ".[] | \"\\(.name)=\\(.value)\"", "x.json"],
            &["-r", "@sh \"echo \\(.name)\""],
            &["-r", "to_entries[] | \"\\(.key): \\(.value)\""],
            &["$__loc__"],
            &["input_filename"],
            &["-n", "input, inputs", "a.json"],
            &["[splits(\", \")]"],
            &["# a comment\n.a"],
            &["def f($env): $env; f(.x)"],
            &["reduce .[] as $x (0; . + $x)"],
            &["if .a then .b elif .c then .d else .e end"],
            &["try .a catch \"none\""],
            &[". as {env: $e} | $e"],
            &[". as {$env} | $env"],
            &["label $out | foreach .[] as $x (0; .+1; if . > 3 then ., break $out else . end)"],
            &[".a as [$x, $y] ?// $x | $x"],
            &["--indent", "4", "--tab", "--seq", "--stream", ".", "f"],
            &[
                "-S",
                "-C",
                "-M",
                "-a",
                "-j",
                "-e",
                "-R",
                "--unbuffered",
                ".",
            ],
            &[
                "--raw-output0",
                "--ascii-output",
                "--sort-keys",
                "--exit-status",
                ".",
            ],
            &["--binary", "--version"],
            &["--help"],
            &["--build-configuration"],
            &["-n", "--args", "$ARGS.positional", "a", "b"],
            &["-n", "--jsonargs", "$ARGS", "1", "{}"],
            &["--argjson", "n", "{\"a\":1}", "$n", "f"],
            &["--", "-.a", "f"],
            &["-1"],
            &["--rawfile", "t", "/srv/app/template.txt", "-n", "$t"],
            &["{$__loc__}"],
            &["{(.a): 1, \"b\": 2}"],
            &["--debug-trace=all", "."],
            &["--indent=2", "."],
        ] {
            let e = jq(words);
            let only_reads = ScriptEffects {
                reads: e.reads.clone(),
                not_paths: e.not_paths.clone(),
                ..ScriptEffects::default()
            };
            assert_eq!(e, only_reads, "{words:?}");
        }
    }

    #[test]
    fn the_environment_in_every_spelling() {
        for words in [
            &["-n", "env"][..],
            &["-n", "$ENV.DB_PASSWORD"],
            &["-n", "$ENV"],
            &["-n", "env.HOME"],
            &["-n", "env|keys"],
            &["-n", "\"\\(env.SECRET)\""],
            &["-rn", "@sh \"x=\\(env.SECRET)\""],
            &["-n", "{$ENV}"],
            &["-n", "{a: env}"],
            &["-n", "{env: env}"],
            &["-n", "{(env|tostring): 1}"],
            &["-n", "[env]"],
            &["-n", ". as $x | env"],
            &["-n", "$ ENV"],
            &["-n", "$ # hidden\nENV"],
            &["-n", "# first line\nenv"],
            &["-n", "{a: 1 | env}"],
            &["-n", "\"\\(\"\\(env)\")\""],
            &["-n", "try env catch 1"],
            &["-n", "def env: 1; env"],
            &[".a | env(HOME)"],
            &[".a = strenv(TOKEN)"],
            &[".a | envsubst"],
            &["{\"a\\(1)\": env.X}"],
            &["-n", "$$$$ENV"],
        ] {
            assert!(env(words), "{words:?}: {:?}", jq(words));
        }
    }

    #[test]
    fn files_the_line_names_are_reads() {
        assert_eq!(
            jq(&["-n", "--rawfile", "k", "/srv/app/.env", "$k"]).reads,
            ["/srv/app/.env"]
        );
        assert_eq!(
            jq(&["--slurpfile", "s", "/root/.ssh/id_rsa", "-n", "$s"]).reads,
            ["/root/.ssh/id_rsa"]
        );
        assert_eq!(
            jq(&["--argfile", "s", "/etc/shadow", "-n", "$s"]).reads,
            ["/etc/shadow"]
        );
        assert_eq!(
            yq(&["-n", "load(\"/srv/app/.env\")"]).reads,
            ["/srv/app/.env"]
        );
        assert_eq!(
            yq(&["-n", ".a = load_str(\"/etc/shadow\")"]).reads,
            ["/etc/shadow"]
        );
        assert_eq!(yq(&["-n", "xml_load(\"k.xml\")"]).reads, ["k.xml"]);
        let dynamic = yq(&["-n", "load(.path)"]);
        assert!(dynamic.reads_unknown && dynamic.reads.is_empty());
        assert!(jq(&["-n", "\"m\" | modulemeta"]).reads_unknown);
        // Arguments are values, never files.
        assert!(
            jq(&["-n", "--arg", "f", "/srv/app/.env", "$f"])
                .reads
                .is_empty()
        );
    }

    #[test]
    fn code_from_files() {
        for words in [
            &["-f", "prog.jq", "x.json"][..],
            &["--from-file", "prog.jq", "x.json"],
            &["-nf", "prog.jq"],
            &["-L", "/tmp/mods", "import \"m\" as m; m::f"],
            &["-L/tmp/mods", "."],
            &["-rL", "/tmp", "."],
            &["--library-path", "/tmp", "."],
            &["import \"m\" as m; m::f"],
            &["include \"m\"; f"],
            &["import \"data\" as $d; $d"],
            &["--run-tests", "t.txt"],
        ] {
            assert!(jq(words).from_file, "{words:?}");
        }
        assert!(yq(&["--from-file", "p.yq", "f.yml"]).from_file);
        assert!(yq(&["-f", "p.jq", "f.yml"]).from_file);
        assert!(yq(&["prog.yq", "f.yml"]).from_file);
        assert!(yq(&["--split-exp-file", "s.yq", "f.yml"]).from_file);
    }

    #[test]
    fn in_place_writes_the_file_operands() {
        assert_eq!(yq(&["-i", ".a=1", "f.yml"]).writes, ["f.yml"]);
        assert_eq!(yq(&["--in-place", "-y", ".a=1", "f.yml"]).writes, ["f.yml"]);
        assert_eq!(
            yq(&["--inplace", ".a=1", "a.yml", "b.yml"]).writes,
            ["a.yml", "b.yml"]
        );
        assert_eq!(yq(&["-yi", ".a=1", "f.yml"]).writes, ["f.yml"]);
        assert_eq!(yq(&["-Pi", ".a=1", "f.yml"]).writes, ["f.yml"]);
        assert_eq!(yq(&["e", "-i", ".a=1", "f.yml"]).writes, ["f.yml"]);
        assert_eq!(yq(&["-i", "f.yml"]).writes, ["f.yml"]);
        // The Go yq takes an existing file in the program's place as data.
        assert!(
            yq(&["-i", "/srv/x.yml", ".a=1"])
                .writes
                .contains(&"/srv/x.yml".to_owned())
        );
        assert_eq!(
            yq(&["-i", "--expression", ".a=1", "f.yml"]).writes,
            ["f.yml"]
        );
        assert_eq!(jq(&["-i", ".a=1", "f.json"]).writes, ["f.json"]);
        assert_eq!(jq(&["--in-place", ".a=1", "f.json"]).writes, ["f.json"]);
        // Not written: a filter, stdin.
        assert!(yq(&["-i", ".a = 1"]).writes.is_empty());
        assert!(yq(&["-y", ".a", "f.yml"]).writes.is_empty());
    }

    #[test]
    fn split_files_are_written_somewhere_unknown() {
        assert!(yq(&["-s", ".name", "f.yml"]).writes_unknown);
        assert!(yq(&["--split-exp", "\"out/\" + $index", "f.yml"]).writes_unknown);
        assert!(yq(&["-s.name", "f.yml"]).writes_unknown);
        assert!(yq(&["--split-exp=.a", "f.yml"]).writes_unknown);
        let hidden = yq(&["-s", "env(X)", ".", "f.yml"]);
        assert!(hidden.writes_unknown && hidden.environment);
    }

    #[test]
    fn go_yq_reads_operators_inside_words_and_strings() {
        assert!(yq(&["keysenv(HOME)"]).environment);
        assert!(yq(&[".a = \"${X}\" | envsubst"]).environment);
        // A string that ends early for the Go yq leaves code outside it.
        assert!(yq(&["\"\\(\"env(HOME)\")\""]).environment);
        assert_eq!(
            yq(&["--security-enable-system-operator", ".a = system(\"id\")"]).runs,
            vec![Some("id".to_owned())]
        );
        assert_eq!(
            yq(&[".a = system(\"/usr/bin/echo\"; [\"a b\", \"c\"])"]).runs,
            vec![Some("/usr/bin/echo 'a b' c".to_owned())]
        );
        assert_eq!(yq(&[".a = system(.cmd)"]).runs, vec![None]);
        assert!(yq(&["eval(\"env(X)\")"]).environment);
        assert!(yq(&["eval(.expr)"]).unreadable);
        // Paths, strings and variables hold no operators.
        for words in [
            &[".services | keys", "compose.yml"][..],
            &["-y", ".services.grafana.image", "compose.yml"],
            &[".payload.download", "f.yml"],
            &["select(.name == \"load\")", "f.yml"],
            &[".my-env", "f.yml"],
            &[".a.evaluate", "f.yml"],
            &["e", ".a", "f.yml"],
            &[
                "eval-all",
                ". as $item ireduce ({}; . * $item)",
                "a.yml",
                "b.yml",
            ],
            &["-o", "json", ".", "f.yml"],
            &["-oy", "-P", ".a", "f.yml"],
            &["-p", "xml", "-o", "yaml", ".", "f.xml"],
            &[".a # env(X)", "f.yml"],
            &["--front-matter", "extract", ".a", "f.md"],
        ] {
            let e = yq(words);
            let dash_env = words[0] == ".my-env";
            if dash_env {
                // jq reads `.my - env`: the builtin.
                assert!(e.environment, "{words:?}");
                continue;
            }
            assert!(e.only_transforms(), "{words:?}: {e:?}");
        }
    }

    #[test]
    fn what_cannot_be_followed_is_unreadable() {
        for words in [
            &["--raw", "."][..],
            &["--raw-out", "."],
            &["-rcx", "."],
            &["--no-such", "."],
            &["\"unterminated"],
            &["[.a"],
            &[".a]"],
            &["(.a]"],
            &["{a: 1"],
            &["\"\\(.a\""],
            &["\"\\q\""],
            &["-n", "--arg", "x"],
            &["-L"],
            &["--rawfile=k", "f", "."],
            &["# comment \\\nenv"],
            &["é"],
            &["$"],
            &["@"],
            &["eval(.x)"],
        ] {
            assert!(jq(words).unreadable, "{words:?}: {:?}", jq(words));
        }
        let deep = "[".repeat(500) + &"]".repeat(500);
        assert!(jq(&[&deep]).unreadable);
        let long = ".a|".repeat(30_000) + ".";
        assert!(jq(&[&long]).unreadable);
    }

    #[test]
    fn filters_and_values_are_no_paths() {
        assert_eq!(jq(&[".env", "x.json"]).not_paths, [0]);
        assert_eq!(
            jq(&["-r", "--arg", "f", "/srv/app/.env", "$f", "x.json"]).not_paths,
            [2, 3, 4]
        );
        assert_eq!(
            jq(&["--rawfile", "k", "/srv/app/.env", "-n", "$k"]).not_paths,
            [1, 4]
        );
        assert_eq!(
            jq(&["-n", "--args", "$ARGS", "a", ".env"]).not_paths,
            [2, 3, 4]
        );
        // `jq .env .env` reads the second.
        assert_eq!(jq(&[".env", ".env"]).not_paths, [0]);
        // With `-f` the first positional is the program's file.
        assert!(jq(&["-f", ".env", "x.json"]).not_paths.is_empty());
        // The Go yq reads an existing file in the filter's place, and the
        // Python yq's jq the word after `-s`.
        assert!(yq(&[".env", "x.yml"]).not_paths.is_empty());
        assert!(yq(&[".", "-s", ".env"]).not_paths.is_empty());
    }

    #[test]
    fn never_panics_on_fragments() {
        for s in [
            "\"\\", "\"\\u12", "\"\\(", "$ ", ".", "..", "@", "a::", "1e", "1e+", "{", "}", ")",
            "\"\\(\"", "\\", "eval(", "load(", "system(", "env(", "\u{0}", "'", "`",
        ] {
            let _ = jq(&[s]);
            let _ = yq(&[s]);
            let _ = yq(&["-i", s, s]);
        }
    }
}
