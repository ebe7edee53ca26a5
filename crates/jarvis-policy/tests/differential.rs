//! Differential tests: what the policy reads in a line against what the real
//! bash runs, and what dash would have run instead.
//!
//! The host guard runs every line with `bash --noprofile --norc -c LINE`, the
//! shell the policy models. These tests make the two meet: each line is
//! analysed with the shipped knowledge base, then run by bash, and every
//! program bash would execute must be one the policy found, with the same
//! argument words wherever the policy says it knows them. Where bash and the
//! policy disagree, the policy's parser or walker is wrong.
//!
//! How bash's executions are recorded. `PATH` is an empty directory and the
//! environment is empty, so no program is ever found, and bash calls the
//! function `command_not_found_handle` with the name and arguments instead:
//! it appends them, NUL-separated, to a log. Nothing real ever runs, and a
//! program the policy missed cannot hide, whatever its name (a recorder per
//! expected name would miss the unexpected one). The handler and `enable -n`
//! of the builtins that are also programs (`echo`, `printf`, `test`, …, which
//! bash would otherwise run internally, unseen) come from a `BASH_ENV` file:
//! bash reads it before the line, so the line itself is still given to
//! `bash --noprofile --norc -c` word for word, exactly as the guard does (an
//! `eval "$1"` harness would change `$0`, `$@` and how the text is parsed).
//! The guard clears `BASH_ENV`; here it is the instrument. The handler
//! succeeds for every name but `false`, so `&&` and `||` chains take the
//! branches they would with real programs.
//!
//! The recorder and the rule that matches an executed program with a found
//! one live in `bash/mod.rs`, which the corpora-and-generated-lines suite
//! (tests/tests/bash_differential.rs) shares.
//!
//! Dash has no such hook, so its runs use a recorder script linked under
//! every name-like word of the line (and every name bash or the policy saw):
//! whatever dash tries to execute among them is recorded.
//!
//! Both shells must be installed (`/usr/bin/bash` or `/bin/bash`, and
//! `/usr/bin/dash` or `/bin/dash`); a missing one fails the test, saying so.

mod bash;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bash::{Argv, BASH, Found, POLICY, joined, name_like_words, policy_runs};

/// Dash's builtins: dash runs these itself, so its recorder never sees them.
const DASH_BUILTINS: &[&str] = &[
    ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "command", "continue", "echo", "eval",
    "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill", "local",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true",
    "type", "ulimit", "umask", "unalias", "unset", "wait",
];

/// How the policy's list must relate to bash's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// Every program one runs, the other found.
    Same,
    /// The policy may list more: code in a branch or function bash does not
    /// reach, or a line bash refuses to parse.
    PolicyCovers,
    /// The policy refuses to read the line (and so it is never run): the
    /// parser cannot follow bash there.
    Refused,
}

/// What dash does with the same line.
#[derive(Clone, Copy, Debug)]
enum Dash {
    /// Dash runs the same programs (those that are not its builtins).
    Same,
    /// Dash runs something else; each argv here (words joined by spaces)
    /// is run by dash and not by bash.
    Runs(&'static [&'static str]),
    /// Dash runs something else, described by its differing lists alone.
    Differs,
}

struct Case {
    line: &'static str,
    compare: Compare,
    dash: Dash,
    /// Argvs (joined by spaces) bash must run.
    bash_runs: &'static [&'static str],
    /// Program names bash must never run.
    bash_never: &'static [&'static str],
}

const fn case(line: &'static str) -> Case {
    Case {
        line,
        compare: Compare::Same,
        dash: Dash::Same,
        bash_runs: &[],
        bash_never: &[],
    }
}

impl Case {
    const fn refused(mut self) -> Case {
        self.compare = Compare::Refused;
        self
    }
    const fn covers(mut self) -> Case {
        self.compare = Compare::PolicyCovers;
        self
    }
    const fn dash(mut self, d: Dash) -> Case {
        self.dash = d;
        self
    }
    const fn runs(mut self, r: &'static [&'static str]) -> Case {
        self.bash_runs = r;
        self
    }
    const fn never(mut self, n: &'static [&'static str]) -> Case {
        self.bash_never = n;
        self
    }
}

static DASH: LazyLock<PathBuf> = LazyLock::new(|| bash::find_shell("dash"));

/// The scratch directory of one case, removed when dropped: an empty
/// directory for bash's `PATH`, one of recorders for dash's, a log for
/// each shell, a working directory and a home.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "jarvis-differential-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        for d in ["empty", "recorders", "work", "home"] {
            std::fs::create_dir_all(root.join(d)).expect("scratch directory");
        }
        for log in ["bash.log", "dash.log"] {
            std::fs::write(root.join(log), b"").expect("log file");
        }
        Scratch { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn records(&self, log: &str) -> Vec<Argv> {
        let bytes = std::fs::read(self.path(log)).expect("log readable");
        bash::parse_log(&bytes)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn quoted(p: &Path) -> String {
    bash::shell_quote(&p.display().to_string())
}

/// Runs `cmd` until it and everything it started have ended (they share
/// its standard output, which is read to its end); killed if stuck.
fn run_to_end(mut cmd: Process) -> String {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("shell starts");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Every process of the run is in the group the shell leads.
            let _ = Process::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        })
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().expect("shell ends");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    format!("{status}, stdout {stdout:?}, stderr {stderr:?}")
}

/// What bash executes for `line`, and how the run ended.
fn bash_runs(s: &Scratch, line: &str) -> (Vec<Argv>, String) {
    let env = format!(
        "{}\n{}",
        *bash::DISABLE_BUILTINS,
        bash::handler(&quoted(&s.path("bash.log")))
    );
    let env_file = s.path("bash_env");
    std::fs::write(&env_file, env).expect("BASH_ENV file");
    let mut cmd = Process::new(&*BASH);
    cmd.args(["--noprofile", "--norc", "-c", line])
        .env_clear()
        .env("PATH", s.path("empty"))
        .env("HOME", s.path("home"))
        .env("LANG", "C.UTF-8")
        .env("BASH_ENV", &env_file)
        .current_dir(s.path("work"));
    let how = run_to_end(cmd);
    (s.records("bash.log"), how)
}

/// What dash executes for `line`, with a recorder under each of `names`.
fn dash_runs(s: &Scratch, line: &str, names: &BTreeSet<String>) -> (Vec<Argv>, String) {
    let recorder = s.path("recorder");
    std::fs::write(
        &recorder,
        format!(
            "#!{}\nprintf '%s\\0' \"$(($# + 1))\" \"${{0##*/}}\" \"$@\" >> {}\n",
            BASH.display(),
            quoted(&s.path("dash.log"))
        ),
    )
    .expect("recorder");
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755))
        .expect("recorder mode");
    for n in names {
        let _ = std::os::unix::fs::symlink(&recorder, s.path("recorders").join(n));
    }
    let mut cmd = Process::new(&*DASH);
    cmd.args(["-c", line])
        .env_clear()
        .env("PATH", s.path("recorders"))
        .env("HOME", s.path("home"))
        .env("LANG", "C.UTF-8")
        .current_dir(s.path("work"));
    let how = run_to_end(cmd);
    (s.records("dash.log"), how)
}

/// Scratch paths differ between the two runs' records only by nothing;
/// they are shown as one word so lists read alike.
fn scrub(s: &Scratch, v: &[String]) -> Vec<String> {
    let root = s.root.display().to_string();
    let mut v: Vec<String> = v.iter().map(|a| a.replace(&root, "SCRATCH")).collect();
    v.sort();
    v
}

/// Every way the policy, bash and dash disagree on one case.
fn check(c: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let s = Scratch::new();
    let (ran, how) = bash_runs(&s, c.line);
    let found = match (policy_runs(c.line), c.compare) {
        (Ok(_), Compare::Refused) => {
            problems.push(format!(
                "the policy reads {:?}, which it must refuse",
                c.line
            ));
            Vec::new()
        }
        (Err(_), Compare::Refused) => Vec::new(),
        (Ok(found), _) => found,
        (Err(e), _) => {
            problems.push(format!("the policy cannot read {:?}: {e}", c.line));
            return problems;
        }
    };
    let context = format!(
        "line {:?}\n  bash ran: {:?}\n  bash ended: {how}\n  policy found: {:?}",
        c.line,
        ran.iter().map(|a| joined(a)).collect::<Vec<_>>(),
        found.iter().map(Found::show).collect::<Vec<_>>()
    );
    if c.compare != Compare::Refused {
        for argv in bash::unseen(&ran, &found) {
            problems.push(format!(
                "bash runs `{}`, which the policy does not see\n{context}",
                joined(argv)
            ));
        }
    }
    if c.compare == Compare::Same {
        for f in &found {
            if !ran.iter().any(|a| f.matches(a)) {
                problems.push(format!(
                    "the policy sees `{}`, which bash does not run\n{context}",
                    f.show()
                ));
            }
        }
    }
    for want in c.bash_runs {
        if !ran.iter().any(|a| joined(a) == *want) {
            problems.push(format!("bash must run `{want}`\n{context}"));
        }
    }
    for never in c.bash_never {
        if ran
            .iter()
            .any(|a| a.first().map(String::as_str) == Some(*never))
        {
            problems.push(format!("bash must not run `{never}`\n{context}"));
        }
    }

    let mut names = name_like_words(c.line);
    names.extend(ran.iter().filter_map(|a| a.first().cloned()));
    names.extend(found.iter().filter_map(|f| f.name.clone()));
    let (dashed, dash_how) = dash_runs(&s, c.line, &names);
    let external = |a: &&Argv| {
        a.first()
            .is_some_and(|n| !DASH_BUILTINS.contains(&n.as_str()))
    };
    let bash_side = scrub(
        &s,
        &ran.iter()
            .filter(external)
            .map(|a| joined(a))
            .collect::<Vec<_>>(),
    );
    let dash_side = scrub(
        &s,
        &dashed
            .iter()
            .filter(external)
            .map(|a| joined(a))
            .collect::<Vec<_>>(),
    );
    let dash_context = format!(
        "line {:?}\n  bash ran: {bash_side:?}\n  dash ran: {dash_side:?}\n  dash ended: {dash_how}",
        c.line
    );
    match c.dash {
        Dash::Same if bash_side != dash_side => problems.push(format!(
            "dash and bash run different programs\n{dash_context}"
        )),
        Dash::Differs if bash_side == dash_side => problems.push(format!(
            "dash was expected to run something else than bash\n{dash_context}"
        )),
        Dash::Runs(expected) => {
            for e in expected {
                if !dash_side.iter().any(|d| d == e) {
                    problems.push(format!("dash was expected to run `{e}`\n{dash_context}"));
                }
                if bash_side.iter().any(|b| b == e) {
                    problems.push(format!("bash runs `{e}` too\n{dash_context}"));
                }
            }
        }
        Dash::Same | Dash::Differs => {}
    }
    problems
}

fn check_all(cases: &[Case]) {
    let problems: Vec<String> = cases.iter().flat_map(check).collect();
    assert!(
        problems.is_empty(),
        "{} disagreement(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn ansi_c_strings() {
    check_all(&[
        // The line that dash read as three commands: bash reads one string.
        case(r"echo $'\' ; touch MARK ; #'")
            .runs(&[r"echo ' ; touch MARK ; #"])
            .never(&["touch"])
            .dash(Dash::Runs(&["touch MARK"])),
        case(r#"ls $'a\tb' $'\x41\101\u00e9' $'\"' $'it\'s'"#).dash(Dash::Differs),
        case(r"ls $'\e[1m' $'\cA' $'\8' $'\q' $'\x4g'").dash(Dash::Differs),
        case(r"ls $'\x' $'\u' $'\xZ'").dash(Dash::Differs),
        case(r"ls $'a\0b' $'\x00z' c").dash(Dash::Differs),
        case(r"$'\x6c\x73' -la").dash(Dash::Differs),
    ]);
}

#[test]
fn locale_strings() {
    check_all(&[
        case(r#"ls $"hello world" $"a'b""#).dash(Dash::Differs),
        case(r#"ls "$"x"#).dash(Dash::Same),
    ]);
}

#[test]
fn brace_expansion_and_tilde() {
    check_all(&[
        case("ls {a,b}c d{1..3}")
            .runs(&["ls ac bc d1 d2 d3"])
            .dash(Dash::Differs),
        case("{ls,-la} x").runs(&["ls -la x"]).dash(Dash::Differs),
        case("ls {a} {} a{b c}").dash(Dash::Same),
        case("ls ~+ ~+/x").dash(Dash::Differs),
        case("ls ~ ~/x").dash(Dash::Same),
    ]);
}

#[test]
fn extended_tests() {
    check_all(&[
        // In bash `>` and `||` inside `[[ ]]` are operators; in dash `[[`
        // is a program, `> b` a redirection and `||` a new command.
        case("[[ a > b || c ]] && ls x")
            .runs(&["ls x"])
            .never(&["c"])
            .dash(Dash::Runs(&["c ]]"])),
        case("[[ -z $(id -u) && x = x ]] && ls z")
            .runs(&["id -u", "ls z"])
            .dash(Dash::Differs),
        case("[[ $x == @(a|b) ]] || ls y").dash(Dash::Differs),
    ]);
}

#[test]
fn pipes_and_process_substitution() {
    check_all(&[
        case("diff <(ls /a) >(grep x)").dash(Dash::Differs),
        case("ls /x |& grep err")
            .runs(&["grep err"])
            .dash(Dash::Differs),
        case("ls -la /srv | grep -v total | sort -k5 -n").dash(Dash::Same),
        case("cat < <(uname -a)").dash(Dash::Differs),
    ]);
}

#[test]
fn redirections_here_strings_and_here_documents() {
    check_all(&[
        case("ls /x &> out; cat out").dash(Dash::Same),
        // Dash backgrounds `false` and then runs a bare redirection, which
        // succeeds, so what follows `||` does not run.
        case("false &> f || ls y")
            .runs(&["ls y"])
            .dash(Dash::Differs),
        case(r#"grep x <<< "a b""#).dash(Dash::Differs),
        case("cat <<EOF\nhi $(uname)\nEOF\nls").dash(Dash::Same),
        case("cat <<'EOF'\nhi $(uname)\nEOF\nls").dash(Dash::Same),
        // A backslash-newline in the terminator word is a line
        // continuation in both shells.
        case("cat <<EO\\\nF\nhi\nEOF\nls x").dash(Dash::Same),
        // In the body, bash joins the continued line before comparing it
        // with the terminator, so the here-document ends early and `ls x`
        // and `EOF` run; dash reads on to the real terminator.
        case("cat <<EOF\nhi\nEO\\\nF\nls x\nEOF\nuname")
            .runs(&["ls x"])
            .refused()
            .dash(Dash::Differs),
        // A continued body line swallows the delimiter line after it.
        case("cat <<EOF\nx\\\nEOF\nls mid\nEOF\nls after")
            .never(&["ls mid"])
            .refused()
            .dash(Dash::Same),
        // An escaped backslash continues nothing; a quoted delimiter joins
        // no lines.
        case("cat <<EOF\nEO\\\\\nF\nEOF\nls after").dash(Dash::Same),
        case("cat <<'EOF'\nEO\\\nF\nEOF\nls after").dash(Dash::Same),
        case("cat <<-EOF\n\thi\n\tEOF\nls").dash(Dash::Same),
        case("ls 2>&1 >/dev/null; ls >| f; ls <> f").dash(Dash::Same),
    ]);
}

#[test]
fn extglob_without_shopt() {
    check_all(&[
        // `bash -c` has extglob off: these do not parse, nothing runs.
        case("ls @(a|b)").covers().dash(Dash::Same),
        case("ls !(a)").covers().dash(Dash::Same),
        // Switched on for the lines after it, they are patterns.
        case("shopt -s extglob\nls @(a|b) +(c) ?(d) *(e)").dash(Dash::Differs),
    ]);
}

#[test]
fn quoting_inside_parameter_expansions() {
    check_all(&[
        // Inside double quotes the single quotes are literal characters,
        // so `$(id)` is a command substitution that runs.
        case(r#"ls "${x:-'$(id)'}""#).runs(&["id"]).dash(Dash::Same),
        case(r#"x="${x:-'$(id -u)'}"; ls "$x""#)
            .runs(&["id -u"])
            .dash(Dash::Same),
        // Unquoted, they quote: nothing runs but ls.
        case(r"ls ${x:-'$(id)'}")
            .never(&["id"])
            .covers()
            .dash(Dash::Same),
        case("cat <<EOF\n${x:-'$(id)'}\nEOF")
            .runs(&["id"])
            .dash(Dash::Same),
        case(r#"ls "${x:-"$(id)"}" "${x:+$(uname)}""#)
            .covers()
            .dash(Dash::Same),
    ]);
}

#[test]
fn plain_lines() {
    check_all(&[
        case("ls 'a b' \"c d\" e\\ f \\ls l''s \"ls\"").dash(Dash::Same),
        case("\\ls; l''s; \"ls\"").dash(Dash::Same),
        case("cd /tmp && ls -la; uname -a || hostname")
            .covers()
            .dash(Dash::Same),
        case("x=$(date +%s); ls \"$x\" `hostname`").dash(Dash::Same),
        case("for f in a b; do ls \"$f\"; done").dash(Dash::Same),
        case("if grep -q x f; then cat f; else ls; fi")
            .covers()
            .dash(Dash::Same),
        case("f() { uname -a; }; f").dash(Dash::Same),
        case("case x in x) ls;; esac").dash(Dash::Same),
        case("ls # rm -rf /").dash(Dash::Same),
        case("ls#x a#b").dash(Dash::Same),
        case("l\\\ns -a").dash(Dash::Same),
        case("x=1 y=2 ls a=b").dash(Dash::Same),
        case("ls \"a\"'b'c").dash(Dash::Same),
        case("echo $((1 + 2)) $(( $(id -u) ))").dash(Dash::Same),
        case("! ls; ls & wait").dash(Dash::Same),
        case("eval 'ls x'; command ls y").dash(Dash::Same),
        case("time ls").dash(Dash::Differs),
        case("ls | while read -r l; do cat \"$l\"; done")
            .covers()
            .dash(Dash::Same),
    ]);
}

#[test]
fn quoting_and_comments() {
    check_all(&[
        case(r#"ls "$'x'" "$"y"" "a\b" "a\$b" "a\"b" "a\\b" "a\`b""#).dash(Dash::Same),
        case("ls \"a\\\nb\" 'c\\\nd'").dash(Dash::Same),
        case("ls;#x\nls #;rm\nls\\#x").dash(Dash::Same),
        case("ls} }").dash(Dash::Same),
        case("ls\u{a0}-la").dash(Dash::Same),
        case("ls 'a'\"b\"$'c'$\"d\"").dash(Dash::Differs),
        case("ls -- -x --color=auto a\\ b a\\\\b").dash(Dash::Same),
        case("ls $'\\''").dash(Dash::Differs),
        case("ls `#comment` $(#comment\n)").dash(Dash::Same),
        case("ls $( uname ')' ) \"$(uname \"a b\")\"").dash(Dash::Same),
        case(r#"ls "<(id)" ~root"#).dash(Dash::Same),
        // Bash expands tildes after `=` and `:` in words shaped like
        // assignments, even as arguments; dash does not.
        case("ls x=~/a:~/b").dash(Dash::Differs),
    ]);
}

#[test]
fn compound_commands() {
    check_all(&[
        case("{ ls; }; (ls x)").dash(Dash::Same),
        case("case x in x) ls a;;& x) ls b;& y) ls c;; esac").dash(Dash::Differs),
        case("function f { ls; }; f").dash(Dash::Differs),
        case("for x in $(id); do :; done").dash(Dash::Same),
        case("while false; do ls; done; until true; do ls; done")
            .covers()
            .dash(Dash::Same),
        case("trap 'ls trapped' EXIT; ls").dash(Dash::Same),
        case("coproc ls").dash(Dash::Differs),
        // In POSIX mode `time -p` is the program; the policy judges that
        // reading too.
        case("time -p ls")
            .runs(&["ls"])
            .covers()
            .dash(Dash::Differs),
        case("exec 3>f; ls >&3").dash(Dash::Same),
        case("set -o posix\nls <(id)").dash(Dash::Differs),
        // What the parser cannot follow, it refuses.
        case("select x in a; do ls; done")
            .refused()
            .dash(Dash::Same),
        case("ls $(case x in x) uname y;; esac)")
            .refused()
            .dash(Dash::Same),
    ]);
}

#[test]
fn substitutions_and_here_documents() {
    check_all(&[
        case("cat <<EOF | grep x\na\nEOF\nls").dash(Dash::Same),
        case("cat <<A <<B\na\nA\nb\nB\nls").dash(Dash::Same),
        case("x=$(cat <<EOF\nhi\nEOF\n); ls").dash(Dash::Same),
        case("echo `echo \\`id\\``; ls $(ls)$(id)").dash(Dash::Same),
        case("ls $(<f) ${x:-`id`}").dash(Dash::Same),
        case("cat <<EOF\n$'\\x41' `id` \\$(no)\nEOF").dash(Dash::Same),
        case("cat <<< $'a\\x41'").dash(Dash::Differs),
        case("a=1 b=$(id) ls").dash(Dash::Same),
        case("declare x=$(id -u); export y=$(uname); local z=$(hostname)").dash(Dash::Differs),
        case("echo $[1+1] $[$(id)]").runs(&["id"]).dash(Dash::Same),
    ]);
}

#[test]
fn arithmetic_evaluates_what_quotes_kept() {
    check_all(&[
        // Bash evaluates array subscripts in these as arithmetic after
        // quote removal, and arithmetic runs `$(…)`.
        case("[[ -v 'a[$(id -u)]' ]]")
            .runs(&["id -u"])
            .dash(Dash::Differs),
        case("[[ 'a[$(id -u)]' -eq 0 ]]")
            .runs(&["id -u"])
            .dash(Dash::Differs),
        case("let 'a[$(id)]=1'").runs(&["id"]).dash(Dash::Differs),
        case("(( 'a[$(id)]' ))")
            .runs(&["id"])
            .covers()
            .dash(Dash::Differs),
        case("echo $(( 'a[$(id)]' ))")
            .runs(&["id"])
            .covers()
            .dash(Dash::Same),
        case("declare 'a[$(id)]=x'")
            .runs(&["id"])
            .dash(Dash::Differs),
        case("read 'a[$(id)]' < /dev/null")
            .runs(&["id"])
            .dash(Dash::Differs),
        case("unset 'a[$(id)]'").covers().dash(Dash::Same),
    ]);
}

#[test]
fn aliases_the_line_defines() {
    check_all(&[
        // Aliases expand only with expand_aliases on, and only on lines
        // read after it was switched on: the policy judges both readings.
        case("shopt -s expand_aliases\nalias x='ls -la'\nx /y")
            .runs(&["ls -la /y"])
            .covers()
            .dash(Dash::Differs),
        case("alias x='ls -la'; x /z")
            .runs(&["x /z"])
            .covers()
            .dash(Dash::Same),
    ]);
}

/// Lines the corpora-and-generated-lines suite (tests/tests/bash_differential.rs)
/// found bash running programs the policy did not see, each cut down to
/// what shows the mechanism.
#[test]
fn corners_the_generated_lines_found() {
    check_all(&[
        // brush-parser takes an expansion after a here-document operator
        // apart into words of its own; such a line is refused.
        case("cat <<EOF > \"$(id)\"\nbody\nEOF")
            .runs(&["id"])
            .refused()
            .dash(Dash::Same),
        case("x=$(cat <<EOF | grep $(id)\nbody\nEOF\n)")
            .runs(&["id"])
            .refused()
            .dash(Dash::Same),
        case("cat <<E | tee >(wc)\nb\nE")
            .runs(&["wc"])
            .refused()
            .dash(Dash::Differs),
        // A here-document inside arithmetic ends elsewhere for bash.
        case("echo $(( $(cat <<E\n1\nE\n) ))")
            .runs(&["cat"])
            .refused()
            .dash(Dash::Same),
        // `( (` with a blank is two subshells to bash, arithmetic to
        // brush-parser.
        case("( ( grep x <<E ) )\nb\nE")
            .runs(&["grep x"])
            .refused()
            .dash(Dash::Same),
        // An expansion the parser leaves as text is refused.
        case("echo $(( 1 + $(( exec ls ) | wc ) ))")
            .runs(&["wc"])
            .refused()
            .dash(Dash::Differs),
        // A quoted word shaped like an assignment is the program's name.
        case("'x=1' ls; $'\\x79=2' -a").dash(Dash::Differs),
        // At the start of a command a subscript runs to its `]` across
        // blanks: `a[1 + 2]=x` is one assignment, and `ls` runs.
        case("a[1 + 2]=x ls")
            .runs(&["ls"])
            .refused()
            .dash(Dash::Differs),
        // `--opt=<(cmd)` is one word with the pipe's name in it.
        case("wc --files0-from=<(ls)").dash(Dash::Differs),
        // A value that arithmetic later evaluates runs its subscript.
        case("n='a[$(id)]'; (( n ))")
            .runs(&["id"])
            .covers()
            .dash(Dash::Differs),
        case("for x in 'a[$(id -u)]'; do let x; done")
            .runs(&["id -u"])
            .dash(Dash::Differs),
        // Bash 5.2 prints a substitution's body back and parses it again:
        // a coprocess of a simple command runs the program `COPROC`.
        case("declare -a x=(\"$(coproc ls)\")")
            .runs(&["COPROC COPROC ls"])
            .covers()
            .dash(Dash::Differs),
        case("echo $(coproc ls)")
            .runs(&["COPROC ls"])
            .covers()
            .dash(Dash::Differs),
        // In POSIX mode `time -p` is the program; `time --` is the
        // reserved word and its end of options.
        case("set -o posix\ntime -p ls")
            .runs(&["time -p ls"])
            .covers()
            .dash(Dash::Differs),
        case("time -- ls -la").dash(Dash::Differs),
        case("set -o posix\ntime -p time ls -a")
            .runs(&["time -p time ls -a"])
            .covers()
            .dash(Dash::Differs),
        case("time time X=1 ls; time time -p ls -a")
            .runs(&["ls", "ls -a"])
            .covers()
            .dash(Dash::Differs),
        // After a here-document a number word and a redirection keep the
        // blank between them for bash.
        case("cat <<E; tee f 5 >&2\nb\nE")
            .runs(&["tee f 5"])
            .refused()
            .dash(Dash::Same),
        // A `case` inside arithmetic can turn it into commands.
        case("echo $(( 2 * $(case x in (a) echo 3;; esac) ))")
            .runs(&["2 *"])
            .refused()
            .dash(Dash::Differs),
        // A quoted reserved word is a program.
        case("\\time ls; 'if' x")
            .runs(&["time ls", "if x"])
            .covers()
            .dash(Dash::Same),
        // `jobs -x` runs its command.
        case("jobs -x ls %1").dash(Dash::Differs),
    ]);
}

/// The readings above decide judgements: what bash would run is what the
/// guardrails see.
#[test]
fn what_bash_runs_is_what_is_judged() {
    use jarvis_core::Decision;
    use jarvis_policy::Request;
    let judge = |line: &str| POLICY.judge(&Request::new(line));
    for line in [
        // A NUL ends a `$'…'` string: bash runs `rm -rf /`.
        r"rm -rf $'/\0etc'",
        r"rm -rf $'/\x00tmp'",
        // `~+` is the working directory.
        "cd / && rm -rf ~+",
        "cd /; rm -rf ~-",
        // Quotes inside a double-quoted default are literal.
        r#"echo "${x:-'$(rm -rf /)'}""#,
        "cat <<EOF\n${x:-'$(rm -rf /)'}\nEOF",
        // Arithmetic runs what quotes kept.
        "let 'a[$(rm -rf /)]=1'",
        "[[ -v 'a[$(rm -rf /)]' ]]",
        // An alias the line defines.
        "shopt -s expand_aliases\nalias x='rm -rf'\nx /",
    ] {
        let j = judge(line);
        assert_eq!(j.decision, Decision::Deny, "{line:?}: {:?}", j.reasons);
    }
    for line in [
        // The here-document that bash ends early is refused.
        "cat <<EOF\nEO\\\nF\nrm -rf /tmp/x\nEOF",
        "cat <<EOF\nx\\\nEOF\nls\nEOF",
    ] {
        let j = judge(line);
        assert!(j.parse_error, "{line:?}: {:?}", j.reasons);
        assert_eq!(j.decision, Decision::Deny, "{line:?}");
    }
    // Bytes that are no text reach the program as they are: not literal.
    let j = judge(r"ls $'\xff'");
    assert_ne!(j.decision, Decision::Deny, "{:?}", j.reasons);
}
