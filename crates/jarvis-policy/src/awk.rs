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
//!
//! The entry point and what every part shares are here; the command line
//! is `options`, the lexer `lexer`, the reading of the tokens `program`.

use crate::script::ScriptEffects;

mod lexer;
mod options;
mod program;

use options::Options;
use program::program;

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
