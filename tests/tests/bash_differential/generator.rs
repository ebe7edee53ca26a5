//! A grammar of bash lines for the differential suite: seeded, so a line is
//! reproduced from its seed and number alone, and broad, so the policy's
//! parser meets every construct bash has for running a program (quoting of
//! every kind, parameter, command, process and arithmetic expansion,
//! here-documents, compound commands, functions, aliases, the builtins that
//! run code, wrappers from the knowledge base) in combinations nobody
//! writes by hand.
//!
//! It owns the shape of the lines and nothing about how they run. It must
//! never emit an absolute program path, a redirection to a file outside the
//! working directory other than `/dev/null`, a change of `PATH`, or a loop
//! that does not end by itself: every loop it writes ends in `break` or
//! counts to two. About one line in twenty is deliberately broken (a quote,
//! bracket or keyword missing or doubled): bash refuses it, and the policy
//! must refuse it too or still find what bash ran before the break.

use std::path::Path;

/// SplitMix64: a tiny, fast, seedable generator; the suite needs
/// reproducibility, not statistical quality.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// True `p` times in a hundred.
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// Programs every line is likely to meet.
const COMMON: &[&str] = &[
    "ls",
    "cat",
    "grep",
    "id",
    "uname",
    "rm",
    "cp",
    "mv",
    "find",
    "sed",
    "awk",
    "curl",
    "git",
    "docker",
    "systemctl",
    "chmod",
    "touch",
    "mkdir",
    "tar",
    "head",
    "tail",
    "sort",
    "wc",
    "ps",
    "date",
    "hostname",
    "whoami",
    "df",
    "du",
    "echo",
    "printf",
    "test",
    "[",
    "true",
    "false",
    "kill",
    "pwd",
    "env",
    "xargs",
    "tee",
];

/// Names no knowledge base lists, some with characters that need quoting.
const MADE_UP: &[&str] = &[
    "frob",
    "zz-top",
    "qux.sh",
    "a_b",
    "x1",
    "gr+ep",
    "do-it",
    "mk.2",
    "p@q",
    "x:y",
    "a,b",
    "odd name",
    "semi;colon",
    "dollar$sign",
    "st*ar",
    "új",
    "x=1",
    "-dash",
    "%pct",
    "back\\slash",
    "quo'te",
    "dq\"x",
];

/// Names of functions the lines define; none is a program name, so a
/// function never hides a program from the comparison.
const FUNCTIONS: &[&str] = &["fa", "fb", "f_1", "fn-x"];

/// Variables the lines set and read; `PATH` is never among them.
const VARIABLES: &[&str] = &["x", "y", "v_1", "arr", "IFS", "HOME", "OLDPWD", "n"];

/// Special parameters.
const SPECIALS: &[&str] = &["1", "@", "*", "#", "?", "$", "!", "-", "0", "_"];

/// Ordinary argument words.
const WORDS: &[&str] = &[
    "-la",
    "-n",
    "-rf",
    "a",
    "b.txt",
    "x",
    "--color=auto",
    "--",
    "-",
    "5",
    ".",
    "..",
    "a=b",
    "-e",
    "%s",
    "{}",
    "dir/file",
    "/tmp",
    "/etc/passwd",
    "~",
    "~/x",
    "~root",
    "~+",
    "~-",
    "x=~/a:~/b",
    "a:b",
    "-c",
    "+x",
    "k=v",
    "0",
    "--name=val",
    "@",
    "}",
    "]",
    "!",
    "a#b",
];

/// Wrappers of the knowledge base, each with the words before the command
/// it runs.
const WRAPPERS: &[&str] = &[
    "sudo",
    "sudo -u root",
    "sudo -E",
    "env",
    "env X=1",
    "env -i",
    "env -u HOME",
    "nice",
    "nice -n 5",
    "timeout 5",
    "timeout -s KILL 1m",
    "nohup",
    "xargs",
    "xargs -0",
    "xargs -I{}",
    "stdbuf -oL",
    "setsid",
    "ionice -c3",
    "chrt -i 0",
    "taskset 1",
    "flock f",
    "watch -n 1",
    "doas",
    "time",
    "command",
    "command --",
    "exec",
    "busybox",
    "strace -f",
    "unshare -r",
];

/// Shells and what each takes before a command string.
const SHELLS: &[&str] = &[
    "sh -c",
    "bash -c",
    "dash -c",
    "bash -lc",
    "sh -ec",
    "su -c",
    "runuser -u nobody -- sh -c",
    "ssh host",
];

/// Here-document delimiters; no generated body line is one of them.
const DELIMITERS: &[&str] = &["EOF", "END", "X_1", "eof", "E"];

/// What the generator may emit as a program name.
pub struct Vocabulary {
    /// Every program of the knowledge base, by name and alias.
    pub known: Vec<String>,
}

impl Vocabulary {
    /// The programs of the knowledge base files in `dir`
    /// (`[program.NAME]` headers and their `aliases`).
    pub fn from_knowledge(dir: &Path) -> Vocabulary {
        let mut known = std::collections::BTreeSet::new();
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read the knowledge base {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            for line in text.lines() {
                let line = line.trim();
                if let Some(head) = line
                    .strip_prefix("[program.")
                    .and_then(|h| h.strip_suffix(']'))
                {
                    let name = if let Some(quoted) = head.strip_prefix('"') {
                        quoted.split('"').next().unwrap_or_default()
                    } else {
                        head.split('.').next().unwrap_or_default()
                    };
                    if !name.is_empty() {
                        known.insert(name.to_owned());
                    }
                } else if let Some(list) = line.strip_prefix("aliases = [") {
                    for a in list.trim_end_matches(']').split(',') {
                        let a = a.trim().trim_matches('"');
                        if !a.is_empty() {
                            known.insert(a.to_owned());
                        }
                    }
                }
            }
        }
        assert!(
            known.len() > 100,
            "only {} programs found in {}",
            known.len(),
            dir.display()
        );
        Vocabulary {
            known: known.into_iter().collect(),
        }
    }

    /// Every name the generator can emit as a program, for the stubs.
    pub fn program_names(&self) -> impl Iterator<Item = &str> {
        self.known
            .iter()
            .map(String::as_str)
            .chain(COMMON.iter().copied())
            .chain(MADE_UP.iter().copied())
            .chain(["sh", "bash", "dash", "su", "runuser", "ssh", "find"])
    }
}

/// Builds lines from one seed.
pub struct Generator<'v> {
    rng: Rng,
    vocabulary: &'v Vocabulary,
    /// Here-document bodies (with their delimiter lines) waiting for the
    /// next newline of the text being written.
    heredocs: Vec<String>,
    /// How much more nesting the current line may spend.
    fuel: u32,
    depth: u32,
    /// Loops written on the current line, for their counters' names.
    loops: u32,
    /// Inside backquotes, an alias or a here-document body, where no
    /// here-document is written.
    no_heredocs: bool,
}

impl<'v> Generator<'v> {
    pub fn new(seed: u64, vocabulary: &'v Vocabulary) -> Generator<'v> {
        Generator {
            rng: Rng::new(seed),
            vocabulary,
            heredocs: Vec::new(),
            fuel: 0,
            depth: 0,
            loops: 0,
            no_heredocs: false,
        }
    }

    /// The next line.
    pub fn line(&mut self) -> String {
        self.fuel = 1 + self.rng.below(4) as u32;
        self.depth = 0;
        self.loops = 0;
        self.heredocs.clear();
        let mut out = String::new();
        match self.rng.below(20) {
            0 => out.push_str("shopt -s expand_aliases\n"),
            1 => out.push_str("shopt -s extglob\n"),
            2 => out.push_str(self.rng.pick(&[
                "set -e\n",
                "set -o posix\n",
                "set -f\n",
                "set -u; ",
                "shopt -s nullglob; ",
                "shopt -s failglob\n",
            ])),
            _ => {}
        }
        out.push_str(&self.program_text(true));
        if self.rng.percent(5) {
            out.push_str(" # a comment $(id) `id` ' \"");
        }
        if self.rng.percent(5) {
            out = self.broken(out);
        }
        out
    }

    /// A list of commands, with pending here-documents written after it
    /// (so a `$(…)` or a string closes over its own).
    fn program_text(&mut self, top: bool) -> String {
        let outer = std::mem::take(&mut self.heredocs);
        let mut out = String::new();
        let n = 1 + self.rng.below(if top { 4 } else { 2 });
        for i in 0..n {
            if i > 0 {
                // A here-document waiting for its body usually ends its
                // line, as people write them.
                let sep = if !self.heredocs.is_empty() && self.rng.percent(80) {
                    self.rng.pick(&["\n", " &\n", ";\n"])
                } else {
                    self.rng
                        .pick(&["; ", " && ", " || ", " & ", "\n", " &\n", ";\n"])
                };
                out.push_str(sep);
                if sep.ends_with('\n') {
                    self.flush_heredocs(&mut out);
                }
            }
            out.push_str(&self.complete_command());
        }
        if !self.heredocs.is_empty() {
            out.push('\n');
            self.flush_heredocs(&mut out);
        }
        self.heredocs = outer;
        out
    }

    /// Writes the pending bodies; `out` ends with a newline.
    fn flush_heredocs(&mut self, out: &mut String) {
        for body in self.heredocs.drain(..) {
            out.push_str(&body);
            out.push('\n');
        }
    }

    fn next_loop(&mut self) -> u32 {
        self.loops += 1;
        self.loops
    }

    fn spend(&mut self) -> bool {
        if self.fuel == 0 || self.depth >= 4 {
            return false;
        }
        self.fuel -= 1;
        true
    }

    /// A command that may define things used after it on the line.
    fn complete_command(&mut self) -> String {
        match self.rng.below(30) {
            0 if self.spend() => self.function_and_call(),
            1 if self.spend() => self.alias_and_use(),
            2 => self.variable_then_use(),
            _ => self.and_or(),
        }
    }

    fn and_or(&mut self) -> String {
        let mut out = self.pipeline();
        while self.rng.percent(20) {
            out.push_str(self.rng.pick(&[" && ", " || "]));
            out.push_str(&self.pipeline());
        }
        out
    }

    fn pipeline(&mut self) -> String {
        let mut out = String::new();
        match self.rng.below(25) {
            0 => out.push_str("! "),
            1 => out.push_str("time "),
            2 => out.push_str("time -p "),
            3 => out.push_str("coproc "),
            _ => {}
        }
        out.push_str(&self.command());
        while self.rng.percent(15) && (self.heredocs.is_empty() || self.rng.percent(20)) {
            out.push_str(self.rng.pick(&[" | ", " |& ", "|"]));
            out.push_str(&self.command());
        }
        out
    }

    fn command(&mut self) -> String {
        if !self.spend() {
            return self.simple();
        }
        self.depth += 1;
        let out = match self.rng.below(40) {
            0..=14 => self.simple(),
            15 => format!("{{ {}; }}{}", self.list(), self.compound_redirects()),
            16 => format!("( {} ){}", self.list(), self.compound_redirects()),
            17 => self.if_clause(),
            18 => format!("while {}; do {}; break; done", self.list(), self.list()),
            19 => format!("until {}; do {}; break; done", self.list(), self.list()),
            20 => self.for_clause(),
            21 => format!(
                // Each loop counts with a variable of its own, so an inner
                // loop never resets an outer one's.
                "for (( i{n} = 0; i{n} < {}; i{n}++ )); do {}; done",
                self.rng.below(3),
                self.list(),
                n = self.next_loop(),
            ),
            22 => self.case_clause(),
            // The parser refuses `select`; rare, so the lines around it
            // are still checked.
            23 if self.rng.percent(10) => format!(
                "select v in {}; do {}; break; done",
                self.words(2, 1),
                self.list()
            ),
            24 => format!("[[ {} ]]", self.test_expression()),
            25 => self.arithmetic_command(),
            26 => self.eval(),
            27 => self.wrapped(),
            28 => self.shell_string(),
            29 => self.find_exec(),
            30 => self.declaration(),
            31 => self.builtin_form(),
            32 => format!(
                "coproc {} {{ {}; }}",
                self.rng.pick(&["CP", "co_1"]),
                self.list()
            ),
            33 => format!("( exec {} )", self.simple()),
            34 => format!("trap {} EXIT; {}", self.code_word(), self.simple()),
            35 => self.read_into_subscript(),
            36 => self.arithmetic_through_variable(),
            _ => self.simple(),
        };
        self.depth -= 1;
        out
    }

    /// Commands separated by `;`, `&&`, `||` or `&`, for inside compounds.
    fn list(&mut self) -> String {
        let mut out = self.and_or();
        if self.rng.percent(25) {
            out.push_str(self.rng.pick(&["; ", " & ", " && ", " || "]));
            out.push_str(&self.and_or());
        }
        out
    }

    fn compound_redirects(&mut self) -> String {
        if self.rng.percent(25) {
            format!(" {}", self.redirect())
        } else {
            String::new()
        }
    }

    fn if_clause(&mut self) -> String {
        let mut out = format!("if {}; then {}; ", self.list(), self.list());
        if self.rng.percent(30) {
            out.push_str(&format!("elif {}; then {}; ", self.list(), self.list()));
        }
        if self.rng.percent(40) {
            out.push_str(&format!("else {}; ", self.list()));
        }
        out.push_str("fi");
        out
    }

    fn for_clause(&mut self) -> String {
        let var = self.rng.pick(&["v", "x", "f"]);
        match self.rng.below(3) {
            0 => format!("for {var}; do {}; done", self.list()),
            _ => format!(
                "for {var} in {}; do {}; done",
                self.words(1, 3),
                self.list()
            ),
        }
    }

    fn case_clause(&mut self) -> String {
        let mut out = format!("case {} in ", self.word());
        let arms = 1 + self.rng.below(3);
        for _ in 0..arms {
            let pattern = match self.rng.below(4) {
                0 => "*".to_owned(),
                1 => format!("{}|{}", self.plain_word(), self.plain_word()),
                2 => format!("({}", self.plain_word()),
                _ => self.word(),
            };
            let end = if self.rng.percent(90) {
                ";;"
            } else {
                self.rng.pick(&[";&", ";;&"])
            };
            out.push_str(&format!("{pattern}) {}{end} ", self.list()));
        }
        out.push_str("esac");
        out
    }

    fn test_expression(&mut self) -> String {
        let base = match self.rng.below(9) {
            0 => format!("-v 'a[$({})]'", self.simple_plain()),
            1 => format!("-n {}", self.word()),
            2 => format!(
                "{} == {}",
                self.word(),
                self.rng.pick(&["@(a|b)", "x*", "?"])
            ),
            3 => format!(
                "{} =~ {}",
                self.word(),
                self.rng.pick(&["^a.*$", "(x|y)", "[0-9]+"])
            ),
            4 => format!("-f {}", self.word()),
            5 => format!("'a[$({})]' -eq {}", self.simple_plain(), self.rng.below(3)),
            6 => format!("{} > {}", self.word(), self.word()),
            7 => format!("! -z {}", self.word()),
            _ => format!("( {} -lt 2 )", self.word()),
        };
        match self.rng.below(6) {
            0 => format!("{base} && {}", self.test_expression_leaf()),
            1 => format!("{base} || {}", self.test_expression_leaf()),
            _ => base,
        }
    }

    fn test_expression_leaf(&mut self) -> String {
        format!("-e {}", self.word())
    }

    fn arithmetic_command(&mut self) -> String {
        match self.rng.below(6) {
            0 => format!("(( x = 1 + $({}) ))", self.program_text(false)),
            1 => format!("(( 'a[$({})]' ))", self.simple_plain()),
            2 => "(( i++ ))".to_owned(),
            3 => format!("let 'a[$({})]=1' x=2", self.simple_plain()),
            4 => format!("let x=$(( 2 * $({}) ))", self.program_text(false)),
            _ => format!("(( a[`{}`] + 1 ))", self.simple_plain()),
        }
    }

    /// `x='a[$(cmd)]'` and then arithmetic that reads `x`: bash evaluates
    /// the value as an expression, subscript and all.
    fn arithmetic_through_variable(&mut self) -> String {
        let code = self.simple_plain();
        let (name, value) = (
            self.rng.pick(&["x", "n"]),
            format!("a[$({})]", code.replace('\'', "")),
        );
        let reader = self.rng.pick(&[
            "(( NAME ))",
            "echo $(( NAME + 1 ))",
            "let NAME",
            "[[ NAME -gt 0 ]]",
            "declare -i z=NAME",
        ]);
        format!("{name}='{value}'; {}", reader.replace("NAME", name))
    }

    fn read_into_subscript(&mut self) -> String {
        let code = self.simple_plain();
        match self.rng.below(5) {
            0 => format!("read -r 'a[$({code})]' < /dev/null"),
            1 => format!("printf -v 'a[$({code})]' %s x"),
            2 => format!("declare 'a[$({code})]=x'"),
            3 => format!("unset 'a[$({code})]'"),
            _ => format!("mapfile -t 'a[$({code})]' < /dev/null"),
        }
    }

    fn eval(&mut self) -> String {
        match self.rng.below(5) {
            0 => format!("eval {}", single_quote(&self.program_text(false))),
            1 => format!(
                "eval \"{}\"",
                double_quote_escape(&self.program_text(false))
            ),
            2 => format!("eval {}", self.words(1, 3)),
            3 => format!("eval \"$({})\"", self.program_text(false)),
            _ => format!("eval -- {}", self.code_word()),
        }
    }

    fn code_word(&mut self) -> String {
        let code = self.program_text(false);
        if self.rng.percent(60) {
            single_quote(&code)
        } else {
            format!("\"{}\"", double_quote_escape(&code))
        }
    }

    fn wrapped(&mut self) -> String {
        let wrapper = self.rng.pick(WRAPPERS);
        format!("{wrapper} {}", self.simple())
    }

    fn shell_string(&mut self) -> String {
        let shell = self.rng.pick(SHELLS);
        let code = self.code_word();
        if self.rng.percent(20) {
            format!("{shell} {code} arg0 arg1")
        } else {
            format!("{shell} {code}")
        }
    }

    fn find_exec(&mut self) -> String {
        let inner = self.simple_plain();
        let action = self.rng.pick(&["-exec", "-execdir", "-ok"]);
        let end = self.rng.pick(&["\\;", "';'", "+", "\";\""]);
        format!(
            "find . -name {} {action} {inner} {{}} {end}",
            self.plain_word()
        )
    }

    fn declaration(&mut self) -> String {
        let var = self.rng.pick(VARIABLES);
        match self.rng.below(8) {
            0 => format!("declare -a {var}=({} {})", self.word(), self.word()),
            1 => format!("declare {var}={}", self.word()),
            2 => format!("export {var}={}", self.word()),
            3 => format!("readonly {var}={}", self.word()),
            4 => format!("typeset -i {var}={}", self.arithmetic_text()),
            5 => format!("local {var}={}", self.word()),
            6 => format!("{var}=({} [3]={})", self.word(), self.word()),
            _ => format!("declare -x {var}+={}", self.word()),
        }
    }

    fn builtin_form(&mut self) -> String {
        match self.rng.below(10) {
            0 => format!("command {}", self.simple()),
            1 => format!("command -v {}", self.program_word()),
            2 => format!(
                "builtin {}",
                self.rng.pick(&["cd .", "echo x", "printf %s y", ":"])
            ),
            3 => format!(
                "{} {}",
                self.rng.pick(&["source", "."]),
                self.rng.pick(&["/dev/null", "./missing", "f x y"])
            ),
            4 => format!("exec {}", self.redirect()),
            5 => format!("exec {}", self.simple()),
            6 => format!("time {}", self.simple()),
            7 => format!("! {}", self.simple()),
            8 => format!("{} {}", self.rng.pick(&["coproc", "nohup"]), self.simple()),
            _ => format!("type {}", self.program_word()),
        }
    }

    /// `f() { …; }; f args`, or another way to define and call one.
    fn function_and_call(&mut self) -> String {
        let name = self.rng.pick(FUNCTIONS);
        let body = self.list();
        let def = match self.rng.below(4) {
            0 => format!("{name}() {{ {body}; }}"),
            1 => format!("function {name} {{ {body}; }}"),
            2 => format!("function {name}() ( {body} )"),
            _ => format!("{name} () {{ local v=$1; {body}; }}"),
        };
        let calls = if self.rng.percent(80) {
            format!("; {name} {}", self.words(0, 3))
        } else {
            String::new()
        };
        format!("{def}{calls}")
    }

    /// `alias NAME='TEXT'` and a use on a later line (aliases only expand
    /// on lines read after the definition, with `expand_aliases` on).
    fn alias_and_use(&mut self) -> String {
        let name = if self.rng.percent(50) {
            self.rng.pick(&["al", "ll", "x_a"]).to_string()
        } else {
            self.program_name()
        };
        let name = if is_plain(&name) { name } else { "al".into() };
        let text = self.without_heredocs(Generator::simple);
        let trailing = if self.rng.percent(20) { " " } else { "" };
        let on = if self.rng.percent(70) {
            "shopt -s expand_aliases\n"
        } else {
            ""
        };
        format!(
            "{on}alias {name}={}\n{name} {}",
            single_quote(&format!("{text}{trailing}")),
            self.words(0, 3)
        )
    }

    /// `x=VALUE; … $x …`: a variable the line fills and reads back.
    fn variable_then_use(&mut self) -> String {
        let var = self.rng.pick(&["x", "y", "v_1"]);
        let value = match self.rng.below(5) {
            0 => single_quote(&self.simple_plain()),
            1 => self.word(),
            2 => format!("$({})", self.program_text(false)),
            3 => format!("({} {})", self.word(), self.word()),
            _ => single_quote("$(id)"),
        };
        let user = match self.rng.below(4) {
            0 => format!("${var} {}", self.word()),
            1 => format!("{} \"${var}\"", self.program_word()),
            2 => format!("eval \"${var}\""),
            _ => format!("{} ${{{var}[@]}}", self.program_word()),
        };
        format!("{var}={value}; {user}")
    }

    /// A simple command: assignments, a program, words and redirections.
    fn simple(&mut self) -> String {
        let mut parts = Vec::new();
        while self.rng.percent(12) {
            parts.push(self.assignment());
        }
        if parts.is_empty() || self.rng.percent(90) {
            parts.push(self.program_word());
            for _ in 0..self.rng.below(4) {
                if self.rng.percent(15) {
                    // A here-document mid-command is rare: what follows it
                    // on the line mostly ends the command.
                    let was = self.no_heredocs;
                    self.no_heredocs |= self.rng.percent(80);
                    parts.push(self.redirect());
                    self.no_heredocs = was;
                } else {
                    parts.push(self.word());
                }
            }
        }
        while self.rng.percent(15) {
            parts.push(self.redirect());
        }
        parts.join(" ")
    }

    /// A simple command of plain words, for places quoted once more.
    fn simple_plain(&mut self) -> String {
        let mut out = self.program_name();
        if !is_plain(&out) {
            out = "frob".into();
        }
        for _ in 0..self.rng.below(3) {
            out.push(' ');
            out.push_str(&self.plain_word());
        }
        out
    }

    fn assignment(&mut self) -> String {
        let var = self.rng.pick(VARIABLES);
        match self.rng.below(6) {
            0 if self.rng.percent(10) => {
                format!("a[{}]={}", self.arithmetic_text(), self.word())
            }
            0 => format!("a[{}]={}", self.subscript(), self.word()),
            1 => format!("{var}+={}", self.word()),
            2 => format!("{var}=({} {})", self.word(), self.word()),
            _ => format!("{var}={}", self.word()),
        }
    }

    fn program_name(&mut self) -> String {
        match self.rng.below(10) {
            0..=3 => self.rng.pick(COMMON).to_string(),
            4..=7 => self.vocabulary.known[self.rng.below(self.vocabulary.known.len())].clone(),
            _ => self.rng.pick(MADE_UP).to_string(),
        }
    }

    /// A program name, written in one of the ways bash reads as that name
    /// (or, now and then, as one only known at run time).
    fn program_word(&mut self) -> String {
        let name = self.program_name();
        if !is_plain(&name) {
            return match self.rng.below(3) {
                0 => single_quote(&name),
                1 => format!("\"{}\"", double_quote_escape(&name)),
                _ => ansi_c(&name),
            };
        }
        match self.rng.below(30) {
            0 => format!("\\{name}"),
            1 => single_quote(&name),
            2 => format!("\"{name}\""),
            3 if name.len() > 1 => format!("{}''{}", &name[..1], &name[1..]),
            4 => ansi_c(&name),
            5 => format!("$\"{name}\""),
            6 if name.len() > 1 => format!("{}\"{}\"", &name[..1], &name[1..]),
            7 => format!("./bin/{name}"),
            8 => format!("bin/{name}"),
            9 => format!("${}", self.rng.pick(&["x", "y", "{x}", "{x:-ls}"])),
            10 => format!("$(echo {name})"),
            11 => format!("`echo {name}`"),
            12 => format!("{{{name},-x}}"),
            13 => format!("{name}\\\n"),
            _ => name,
        }
    }

    /// `min` words and up to `spread - 1` more.
    fn words(&mut self, min: usize, spread: usize) -> String {
        let n = min + self.rng.below(spread);
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }

    fn plain_word(&mut self) -> String {
        let w = self.rng.pick(WORDS);
        if w.starts_with('~') || w.contains(['#', '!', '}', ']', '{']) {
            "a".into()
        } else {
            w.to_owned()
        }
    }

    /// An argument word: one to three parts joined.
    fn word(&mut self) -> String {
        let spread = if self.rng.percent(30) { 3 } else { 1 };
        let n = 1 + self.rng.below(spread);
        let mut out = String::new();
        for i in 0..n {
            let part = self.word_part(i == 0);
            out.push_str(&part);
        }
        if out.is_empty() { "''".into() } else { out }
    }

    fn word_part(&mut self, first: bool) -> String {
        let rich = self.rng.percent(35) && self.spend();
        let roll = if rich {
            self.rng.below(40)
        } else {
            self.rng.below(14)
        };
        match roll {
            0..=5 => {
                let w = self.rng.pick(WORDS);
                // `~`, `#` and `!` act only at the start of a word.
                if !first && (w.starts_with('~') || w.starts_with('#')) {
                    "t".into()
                } else {
                    w.to_owned()
                }
            }
            6 => single_quote(&self.quoted_text()),
            7 => format!("\"{}\"", self.double_quoted_text(false)),
            8 => ansi_c_body(&mut self.rng),
            9 => format!("$\"{}\"", self.double_quoted_text(false)),
            10 => self
                .rng
                .pick(&["*.txt", "?", "[ab]", "a*", "[!x]"])
                .to_string(),
            11 => self
                .rng
                .pick(&["{a,b}", "x{1..3}", "{a..c}", "{,x}", "{a}"])
                .to_string(),
            12 => self
                .rng
                .pick(&["\\ ", "\\$x", "a\\\\b", "\\'", "\\\"", "\\*"])
                .to_string(),
            13 => format!("${}", self.rng.pick(VARIABLES)),
            14..=16 => self.parameter_expansion(false),
            // Every substitution costs bash a process; they are common
            // enough to meet every other construct, and no more.
            17 | 18 => {
                self.depth += 1;
                let s = format!("$({})", self.program_text(false));
                self.depth -= 1;
                s
            }
            19 | 20 => self.parameter_expansion(false),
            21 => self.backquoted(),
            22 => self.rng.pick(&["\"$x\"", "\"${x}\"", "'$x'"]).to_string(),
            23 | 24 => format!("$(({}))", self.arithmetic_text()),
            25 => format!("$[{}]", self.arithmetic_text()),
            26 if first => {
                self.depth += 1;
                let s = format!(
                    "{}({})",
                    self.rng.pick(&["<", ">"]),
                    self.program_text(false)
                );
                self.depth -= 1;
                s
            }
            27 => self
                .rng
                .pick(&["@(a|b)", "!(x)", "+(y)", "*(z)", "?(q)"])
                .to_string(),
            28 => format!("{{a,$({})}}", self.simple_plain()),
            29 => format!("${}", self.rng.pick(SPECIALS)),
            30 => format!("$'{}'", "\\'$(id)"),
            31 => "\"$'x'\"".into(),
            32 => format!("\"$({})\"", self.program_text(false)),
            _ => self.parameter_expansion(true),
        }
    }

    fn quoted_text(&mut self) -> String {
        let mut out = String::new();
        for _ in 0..1 + self.rng.below(3) {
            out.push_str(self.rng.pick(&[
                "a b",
                "$(id)",
                "`id`",
                "\"",
                "\\",
                "$x",
                "; rm -rf x",
                "${x:-y}",
                "\n",
                "#",
                "*",
                "\\n",
            ]));
        }
        out
    }

    /// Text for inside double quotes (or an unquoted here-document when
    /// `heredoc`, where `"` is an ordinary character).
    fn double_quoted_text(&mut self, heredoc: bool) -> String {
        let mut out = String::new();
        for _ in 0..1 + self.rng.below(3) {
            let rich = self.rng.percent(35) && self.spend();
            match self.rng.below(if rich { 16 } else { 6 }) {
                0 => out.push_str("a b"),
                1 => out.push_str(self.rng.pick(&["'", "#", "*", "~", "{a,b}", "!"])),
                2 => out.push_str(self.rng.pick(&["\\$", "\\\\", "\\`", "\\n", "\\'"])),
                3 => out.push_str(if heredoc { "\"q\"" } else { "\\\"" }),
                4 => out.push_str(&format!("${}", self.rng.pick(VARIABLES))),
                5 => out.push_str("$'x'"),
                6..=8 => out.push_str(&self.parameter_expansion(true)),
                9 | 10 => {
                    self.depth += 1;
                    out.push_str(&format!("$({})", self.program_text(false)));
                    self.depth -= 1;
                }
                11 => out.push_str(&self.backquoted()),
                12 => out.push_str(&format!("$(({}))", self.arithmetic_text())),
                13 => out.push_str("\\\n"),
                14 => out.push_str(&format!("${{x:-'$({})'}}", self.simple_plain())),
                _ => out.push_str(&format!("${}", self.rng.pick(SPECIALS))),
            }
        }
        out
    }

    fn without_heredocs(&mut self, f: impl FnOnce(&mut Self) -> String) -> String {
        let was = self.no_heredocs;
        self.no_heredocs = true;
        let out = f(self);
        self.no_heredocs = was;
        out
    }

    fn backquoted(&mut self) -> String {
        let was = self.no_heredocs;
        self.no_heredocs = true;
        self.depth += 1;
        let inner = if self.rng.percent(20) {
            // Nested backquotes are escaped inside the outer ones.
            format!("{} \\`{}\\`", self.simple_plain(), self.simple_plain())
        } else {
            self.simple_plain()
        };
        self.depth -= 1;
        self.no_heredocs = was;
        format!("`{inner}`")
    }

    /// `${…}` in one of its forms; `quoted` says it sits inside double
    /// quotes, where quotes in a default value are literal.
    fn parameter_expansion(&mut self, quoted: bool) -> String {
        let var = self.rng.pick(&["x", "y", "v_1", "HOME", "1", "@"]);
        let nested = |g: &mut Generator| -> String {
            match g.rng.below(7) {
                0 => format!("'$({})'", g.simple_plain()),
                1 => format!("\"$({})\"", g.simple_plain()),
                2 => format!("$({})", g.simple_plain()),
                3 => g.plain_word(),
                4 => format!("`{}`", g.simple_plain()),
                5 => format!("${{y:-$({})}}", g.simple_plain()),
                _ => "'a b'".into(),
            }
        };
        let _ = quoted;
        match self.rng.below(18) {
            0 => format!("${{{var}}}"),
            1 => format!("${{{var}:-{}}}", nested(self)),
            2 => format!("${{{var}-{}}}", nested(self)),
            3 => format!("${{x:={}}}", nested(self)),
            4 => format!("${{{var}:+{}}}", nested(self)),
            5 => format!("${{{var}#{}}}", nested(self)),
            6 => format!("${{{var}%%{}}}", nested(self)),
            7 => format!("${{{var}/{}/{}}}", self.plain_word(), nested(self)),
            8 => format!("${{{var}//a/{}}}", nested(self)),
            9 => "${!x}".into(),
            10 => format!("${{#{var}}}"),
            11 => "${arr[@]}".into(),
            12 => format!("${{arr[$({})]}}", self.simple_plain()),
            13 => format!("${{{var}:1:$(({}))}}", self.arithmetic_text()),
            14 => "${x^^}".into(),
            15 => "${x@Q}".into(),
            16 => "${!a*}".into(),
            _ => format!("${{{var}:?{}}}", nested(self)),
        }
    }

    /// An array subscript as people write it, without blanks.
    fn subscript(&mut self) -> String {
        match self.rng.below(4) {
            0 => "i+1".into(),
            1 => format!("$({})", self.simple_plain()),
            2 => "n".into(),
            _ => format!("`{}`", self.simple_plain()),
        }
    }

    fn arithmetic_text(&mut self) -> String {
        match self.rng.below(7) {
            0 => "1 + 2".into(),
            1 => format!("$({}) + 1", self.simple_plain()),
            2 => "x * 2".into(),
            3 => format!("a[$({})]", self.simple_plain()),
            4 => "i++".into(),
            5 => format!("`{}`", self.simple_plain()),
            _ => "${#x} - 1".into(),
        }
    }

    fn redirect(&mut self) -> String {
        let target = self
            .rng
            .pick(&["f", "out.txt", "/dev/null", "\"$x\"", "log"]);
        match self.rng.below(22) {
            0 => format!("> {target}"),
            1 => format!(">> {target}"),
            2 => format!("< {target}"),
            3 => "2>&1".into(),
            4 => ">&2".into(),
            5 => format!("&> {target}"),
            6 => format!("&>> {target}"),
            7 => format!(">| {target}"),
            8 => format!("<> {target}"),
            9 => "2>/dev/null".into(),
            10 => format!("3> {target}"),
            11 => "3<&-".into(),
            12 => format!("<<< {}", self.word()),
            13 => format!("> $({})", self.simple_plain()),
            14 if self.depth < 4 => format!("> >({})", self.simple_plain()),
            15 if self.depth < 4 => format!("< <({})", self.simple_plain()),
            16..=19 if !self.no_heredocs => self.heredoc(),
            20 => format!(">&{target}"),
            _ => "1>&2".into(),
        }
    }

    /// A here-document operator; its body waits for the next newline.
    fn heredoc(&mut self) -> String {
        let delimiter = self.rng.pick(DELIMITERS);
        let tabs = self.rng.percent(30);
        let (quoted_form, expands) = match self.rng.below(6) {
            0 => (format!("'{delimiter}'"), false),
            1 => (format!("\"{delimiter}\""), false),
            2 => (format!("\\{delimiter}"), false),
            _ => (delimiter.to_owned(), true),
        };
        let indent = if tabs { "\t" } else { "" };
        let mut body = String::new();
        for _ in 0..1 + self.rng.below(3) {
            body.push_str(indent);
            let text = self.without_heredocs(|g| g.double_quoted_text(true));
            body.push_str(&text.replace('\n', " "));
            if self.rng.percent(8) {
                // A continued line: bash joins it with the next before
                // looking for the delimiter.
                body.push('\\');
            }
            body.push('\n');
        }
        body.push_str(indent);
        body.push_str(delimiter);
        let _ = expands;
        self.heredocs.push(body);
        format!("<<{}{quoted_form}", if tabs { "-" } else { "" })
    }

    /// The line with one piece of its syntax broken.
    fn broken(&mut self, line: String) -> String {
        let closers: Vec<usize> = line
            .char_indices()
            .filter(|(_, c)| "'\"`)}]".contains(*c))
            .map(|(i, _)| i)
            .collect();
        match self.rng.below(6) {
            0 if !closers.is_empty() => {
                let at = self.rng.pick(&closers);
                let mut l = line;
                l.remove(at);
                l
            }
            1 => format!("{line} )"),
            2 => format!("{line}; fi"),
            3 => format!("if {line}"),
            4 => format!("{line} |"),
            _ => {
                let mut cut = self.rng.below(line.len().max(1));
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line[..cut].to_owned()
            }
        }
    }
}

/// Whether `name` can be written without quotes as a command word.
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name != "["
        && !name.contains('=')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+@:,%".contains(c))
        && !name.starts_with('-')
}

fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Escapes `text` for inside double quotes, so that it is the same text
/// after bash removes the quotes.
fn double_quote_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '$' | '`' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `name` as a `$'…'` string of hex escapes.
fn ansi_c(name: &str) -> String {
    let mut out = String::from("$'");
    for b in name.bytes() {
        out.push_str(&format!("\\x{b:02x}"));
    }
    out.push('\'');
    out
}

/// A `$'…'` string mixing characters with every kind of escape bash has.
fn ansi_c_body(rng: &mut Rng) -> String {
    let mut out = String::from("$'");
    for _ in 0..1 + rng.below(4) {
        out.push_str(rng.pick(&[
            "a",
            "\\x41",
            "\\x6c",
            "\\0",
            "\\x00z",
            "\\c@",
            "\\cA",
            "\\c?",
            "\\101",
            "\\1010",
            "\\n",
            "\\t",
            "\\'",
            "\\\"",
            "\\\\",
            "\\e",
            "\\u00e9",
            "\\U0001F600",
            "\\q",
            "\\8",
            "\\x",
            "\\xZ",
            "\\xff",
            " ",
            "$(id)",
            "\\c\\\\",
            "\\E",
            "\\?",
            "\\a",
        ]));
    }
    out.push('\'');
    out
}
