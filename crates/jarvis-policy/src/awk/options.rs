//! The command line as each awk reads it: gawk's, mawk's and busybox's
//! options, mawk's `-W`, and what the original awk skips.

use crate::script::ScriptEffects;

use super::{DUMP_FILE, PROFILE_FILE, output_file};

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
pub(super) struct Options {
    pub(super) out: ScriptEffects,
    /// The pieces of `-e`/`--source`.
    pub(super) sources: Vec<String>,
    /// Words one awk takes as an option's value and another as its program
    /// (`-W x` to the original awk, which ignores `-W`; the word after `-W
    /// field-separator` to mawk, for which that option means nothing).
    pub(super) also_programs: Vec<String>,
    /// The program comes from options, so the first operand is a file.
    pub(super) program_given: bool,
    /// The index of the first word after the options.
    pub(super) operands: usize,
    /// The words that are program text or values awk never opens.
    pub(super) not_paths: Vec<usize>,
    /// A word was taken as the value of an option some awk does not know,
    /// which reads it as its program instead.
    pub(super) shifted: bool,
    /// The option word being read, and the word after it once taken as its
    /// value.
    pub(super) word: usize,
    pub(super) value_word: Option<usize>,
}

impl Options {
    pub(super) fn walk(&mut self, args: &[String]) {
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
                    other @ (Flow::Stop | Flow::Unreadable) => return other,
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
