//! The policy's parser against the real bash, over every line of the
//! project's corpora and 100,000 generated lines: every program bash runs
//! for a line must be one the analysis found for it. A program bash ran
//! that the analysis did not see is a parser bug; the test fails and prints
//! the line, what bash ran, what the analysis saw and how to generate the
//! line again.
//!
//! What counts as a pass. A line the analysis refuses (it does not parse,
//! or nests too deeply) is never run unattended, so it passes unrun; so
//! does a line whose analysis finds a fork bomb (it is denied). Every other
//! line runs, and each execution bash records must match a program the
//! analysis found at the level bash starts it (not one a wrapper such as
//! `sudo` or `sh -c` starts: the wrapper is recorded in its place), by
//! name, and by each argument the analysis knows literally
//! (`bash/mod.rs`, shared with the hand-picked suite
//! crates/jarvis-policy/tests/differential.rs). The other direction (the
//! analysis may find more than bash runs: branches not taken, lines bash
//! refuses) is the hand-picked suite's business.
//!
//! Where the lines run: decisions.
//! - Nothing real may run, and the test may run as root. Bash runs under
//!   the guard's own kernel wall (`jarvis-guard confine SPEC -- bash …`,
//!   the mode the guard re-executes itself in; hence this suite lives in
//!   the workspace's end-to-end crate, not in the policy crate): it may
//!   execute only bash, dash (the stubs' interpreter), their dynamic
//!   loader and the stub directory, write only beneath the scratch
//!   directory (and `/dev/null`), and use no network. Run as root, it also
//!   drops to `nobody`, so the process limit bounds a fork bomb the
//!   analysis missed. A line under the wall that names `/bin/rm` gets
//!   "permission denied"; the generator never names an absolute program.
//!   The loader can start any program by path; no line names it.
//! - The environment is empty but for `PATH`, `HOME`, `TMPDIR` (where bash
//!   writes large here-documents) and `LANG=C.UTF-8`; each line works in an
//!   empty directory of its own, so no line sees another's files.
//! - Recording, three ways, so no program hides whatever its name: every
//!   name the generator and the corpora can emit that bash accepts as a
//!   function name has a recording function (a call costs no process);
//!   `PATH` holds a recording stub for every name (a dash script linked
//!   under each), which is what `command NAME`, `exec NAME` and `./bin/NAME`
//!   reach; bash calls `command_not_found_handle` for any other name. Each
//!   appends the name and arguments, NUL-separated, to the line's log, one
//!   file per process (bash flushes at every newline an argument holds, so
//!   records of processes running at once would interleave in one file).
//!   The builtins that are also programs are switched off (`enable -n`).
//! - Speed: a process per line costs about 1.5 ms before the line does
//!   anything, too much for 100,000 lines on two cores. Each bash runs a
//!   batch of lines instead, each line in its own subshell as
//!   `( eval 'LINE' )`: `eval` parses and runs a string command by command
//!   as `bash -c` does (aliases defined on one line expand on the next,
//!   `shopt -s extglob` changes how later lines parse), and the subshell
//!   keeps each line's variables, functions, aliases, options, traps,
//!   `exit`, `exec` and `set -e` to itself; `$0` is `bash` and there are
//!   no positional parameters, as with `bash -c`. The driver is read from
//!   standard input (`bash -s`), so `return`, `break` and `continue` in a
//!   line fail as they do in `bash -c`. A background job that records late
//!   still writes to its own line's log; every process of the batch holds
//!   the batch's standard output, whose end says all of them are gone.
//!   The analysis runs on its own thread, one worker per core and one more,
//!   while other batches run in bash.
//! - A line that stops making progress for five seconds (a loop from a
//!   corpus that never ends) is killed with its batch; what it recorded
//!   still counts, and the lines after it run in a new batch. A line the
//!   analysis takes more than twenty seconds over fails the suite: the
//!   guard judges every line before it runs.
//!
//! Knobs: `JARVIS_DIFF_LINES` (how many generated lines, default 100,000),
//! `JARVIS_DIFF_SEED` (the generator's seed), `JARVIS_DIFF_WORKERS`,
//! `JARVIS_DIFF_KEEP=1` (keep the scratch directories),
//! `JARVIS_DIFF_FUZZ_SEEDS=DIR` (also write one generated line in fifty as
//! a file into DIR, such as fuzz/corpus/judge, to seed the fuzzer with
//! grammar-shaped inputs). The corpora are every `.txt` and `.cm` file
//! beneath tests/data, tests/corpora and crates/jarvis-policy/tests/data,
//! one line each (`#` lines are comments in `.txt` files), and the
//! fuzzer's corpus (fuzz/corpus/judge), one input per file, when it exists.
//! Two ignored diagnostics help with a miss: `show_one_line`
//! (`JARVIS_DIFF_SHOW=LINE`: what the parser, the analysis and bash make
//! of one line) and `the_analysis_reads_generated_lines_in_time` (the
//! generated lines through the analysis alone, panics cut down to a
//! minimal line).

#[path = "../../crates/jarvis-policy/tests/bash/mod.rs"]
mod bash;
#[path = "bash_differential/generator.rs"]
mod generator;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bash::{Argv, BASH};
use generator::{Generator, Vocabulary};
use jarvis_tests::{guard_bin, workspace};

/// How many generated lines the suite runs unless told otherwise.
const GENERATED_LINES: usize = 100_000;

/// The generator's seed unless told otherwise.
const SEED: u64 = 0x6a61_7276_6973_0001;

/// Lines per bash process.
const BATCH: usize = 250;

/// How long a batch may go without finishing a line before it is killed.
const STALL: Duration = Duration::from_secs(5);

/// One line to check, and where it came from.
struct Job {
    origin: String,
    line: String,
}

/// What bash did with one line.
struct LineRun {
    records: Vec<Argv>,
    stderr: String,
    /// It was still running when its batch was killed.
    hung: bool,
    /// How long bash took over it.
    seconds: f64,
}

/// Counts of one suite, and its misses.
#[derive(Default)]
struct Tally {
    lines: usize,
    refused: usize,
    fork_bombs: usize,
    ran: usize,
    hung: usize,
    records: usize,
    /// Time spent analysing and in bash, summed over workers.
    analysing: Duration,
    running: Duration,
    /// Why the analysis refused lines, by kind, and how often.
    refusals: std::collections::BTreeMap<String, usize>,
    /// The lines bash took longest over: seconds, origin, line.
    slowest: Vec<(f64, String, String)>,
    misses: Vec<String>,
}

impl Tally {
    fn note_time(&mut self, seconds: f64, job: &Job) {
        self.slowest
            .push((seconds, job.origin.clone(), job.line.clone()));
        self.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.slowest.truncate(5);
    }
}

/// The scratch directory of one suite: recording stubs, a working
/// directory, a home, and one directory per batch for its driver, logs and
/// progress. Removed when dropped.
struct Sandbox {
    root: PathBuf,
    stubs: PathBuf,
    home: PathBuf,
    work: PathBuf,
    tmp: PathBuf,
    /// The confinement spec the guard's confine mode reads.
    spec: String,
    /// The recording functions every batch defines, one per name.
    functions: String,
    /// The user and group the lines run as, when this test runs as root.
    user: Option<(u32, u32)>,
    batches: AtomicUsize,
}

impl Sandbox {
    fn new(tag: &str, names: &BTreeSet<String>) -> Sandbox {
        let root = std::env::temp_dir().join(format!(
            "jarvis-bash-differential-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        let dir = |name: &str| {
            let d = root.join(name);
            std::fs::create_dir_all(&d).expect("scratch directory");
            d
        };
        let (stubs, home, work, tmp, runs) = (
            dir("stubs"),
            dir("home"),
            dir("work"),
            dir("tmp"),
            dir("runs"),
        );
        let unattributed = root.join("unattributed");
        let recorder = stubs.join(".recorder");
        std::fs::write(
            &recorder,
            bash::stub_script(
                &stubs,
                &format!("\"${{JARVIS_DIFF_LOG:-{}}}.$$\"", unattributed.display()),
            ),
        )
        .expect("recorder");
        std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755))
            .expect("recorder mode");
        let mut functions = String::new();
        for name in names {
            if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
                continue;
            }
            let _ = std::os::unix::fs::symlink(".recorder", stubs.join(name));
            if function_name(name) {
                functions.push_str(&format!("{name}() {{ __jarvis_record {name} \"$@\"; }}\n"));
            }
        }
        std::os::unix::fs::symlink(&stubs, work.join("bin")).expect("bin link");
        let user = running_as_root().then(nobody);
        if let Some((uid, gid)) = user {
            for d in [&root, &home, &work, &tmp, &runs] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid)).expect("chown scratch");
            }
        }
        let mut exec = Vec::new();
        for program in [BASH.clone(), PathBuf::from("/bin/sh")] {
            let real = std::fs::canonicalize(&program)
                .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
            if let Some(loader) = elf_interpreter(&real) {
                exec.push(std::fs::canonicalize(&loader).unwrap_or(loader));
            }
            exec.push(real);
        }
        exec.push(stubs.clone());
        let spec = serde_json::json!({
            "exec": exec,
            "writes": [root],
            "network": false,
        })
        .to_string();
        Sandbox {
            root,
            stubs,
            home,
            work,
            tmp,
            spec,
            functions,
            user,
            batches: AtomicUsize::new(0),
        }
    }

    fn make_dir(&self, d: &Path) {
        std::fs::create_dir_all(d).expect("batch directory");
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(d, Some(uid), Some(gid)).expect("chown batch directory");
        }
    }

    /// Runs `jobs`, each as bash would run it alone, and returns what each
    /// executed, in order.
    fn run(&self, jobs: &[&Job]) -> Vec<LineRun> {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join("runs").join(n.to_string());
        self.make_dir(&dir);
        let mut out = Vec::with_capacity(jobs.len());
        let mut start = 0;
        let mut attempt = 0;
        while start < jobs.len() {
            let at = dir.join(attempt.to_string());
            self.make_dir(&at);
            let times = self.attempt(&at, &jobs[start..]);
            let done = times.len();
            let mut logs = read_logs(&at);
            for (i, seconds) in times.into_iter().enumerate() {
                out.push(read_run(&at, i, logs.remove(&i), false, seconds));
            }
            start += done;
            if start < jobs.len() {
                // The line that was running when the batch ended.
                out.push(read_run(
                    &at,
                    done,
                    logs.remove(&done),
                    true,
                    STALL.as_secs_f64(),
                ));
                start += 1;
            }
            attempt += 1;
            if !keep() {
                let _ = std::fs::remove_dir_all(&at);
            }
        }
        if !keep() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        out
    }

    /// One bash over `jobs` until it ends or stalls; how long each line
    /// it finished took.
    fn attempt(&self, dir: &Path, jobs: &[&Job]) -> Vec<f64> {
        let q = |p: &Path| bash::shell_quote(&p.display().to_string());
        let mut driver = String::new();
        driver.push_str("ulimit -t 120; ulimit -v 2097152; ulimit -f 204800\n");
        if self.user.is_some() {
            driver.push_str("ulimit -u 1024\n");
        }
        // Each process writes a log of its own: appends from processes
        // running at once would interleave (bash flushes its output at
        // every newline an argument holds).
        let log = format!(
            "\"${{JARVIS_DIFF_LOG:-{}}}.$BASHPID\"",
            self.root.join("unattributed").display()
        );
        driver.push_str(&bash::handler(&log));
        // The fast recorder: a call costs no process. It switches `printf`
        // on only while it writes, as the line's own `printf` must stay a
        // program.
        driver.push_str(&format!(
            "__jarvis_record() {{\n\
               enable printf\n\
               builtin printf '%s\\0' \"$#\" \"$@\" >> {log}\n\
               enable -n printf\n\
               [[ $1 != false ]]\n\
             }}\n"
        ));
        driver.push_str(&self.functions);
        driver.push_str(&format!(
            "exec 9>&1 4>>{}\nbuiltin echo start $EPOCHREALTIME >&4\n",
            q(&dir.join("progress"))
        ));
        for (i, job) in jobs.iter().enumerate() {
            // Each line works in a directory of its own, as if it were the
            // only one: a file an earlier line made would change what its
            // globs match. `bin` there reaches the stubs by path.
            let work = dir.join(format!("{i}.work"));
            self.make_dir(&work);
            std::os::unix::fs::symlink(&self.stubs, work.join("bin")).expect("bin link");
            driver.push_str(&format!(
                "export JARVIS_DIFF_LOG={log}\n\
                 ( cd {work} && PATH={path}; {disable}; eval {line} ) </dev/null 2>{err} 4>&-\n\
                 builtin echo {i} $EPOCHREALTIME >&4\n",
                log = q(&dir.join(format!("{i}.log"))),
                path = q(&self.stubs),
                disable = *bash::DISABLE_BUILTINS,
                line = bash::shell_quote(&job.line),
                err = q(&dir.join(format!("{i}.err"))),
                work = q(&work),
            ));
        }
        let driver_file = dir.join("driver.sh");
        std::fs::write(&driver_file, driver).expect("driver");
        let mut cmd = Process::new(guard_bin());
        cmd.arg("confine")
            .arg(&self.spec)
            .arg("--")
            .arg(&*BASH)
            .args(["--noprofile", "--norc", "-s"])
            .env_clear()
            .env("PATH", &self.stubs)
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("LANG", "C.UTF-8")
            .current_dir(&self.work)
            .stdin(std::fs::File::open(&driver_file).expect("driver readable"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd.spawn().expect("the guard starts");
        let group = child.id();
        let mut stdout = child.stdout.take().expect("stdout piped");
        let mut stderr = child.stderr.take().expect("stderr piped");
        // Every process of the batch holds its standard output (fd 9 as
        // well): its end is the end of all of them.
        let drain = std::thread::spawn(move || {
            let mut sink = [0u8; 8192];
            while stdout.read(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let progress = dir.join("progress");
        let mut seen = 0;
        let mut last = Instant::now();
        let mut killed: Option<Instant> = None;
        let mut status = None;
        loop {
            if status.is_none() {
                status = child.try_wait().expect("wait for bash");
            }
            if status.is_some() && drain.is_finished() {
                break;
            }
            let len = std::fs::metadata(&progress).map_or(0, |m| m.len());
            if len != seen {
                seen = len;
                last = Instant::now();
            } else if last.elapsed() > STALL
                && killed.is_none_or(|k| k.elapsed() > Duration::from_millis(200))
            {
                // Again until the group is gone: a process may fork while
                // the first signal is delivered.
                kill_group(group);
                killed = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        let _ = drain.join();
        let errors = errors.join().unwrap_or_default();
        // Already reaped above; `wait` returns the same status.
        let status = child.wait().expect("bash ended");
        assert!(
            !(status.code() == Some(126) && errors.contains("kernel wall")),
            "the kernel wall could not be set up, and these lines must never run outside it: \
             {errors}"
        );
        let finished = std::fs::read_to_string(&progress).unwrap_or_default();
        let stamps: Vec<f64> = finished
            .lines()
            .filter_map(|l| l.split_once(' ')?.1.parse().ok())
            .collect();
        stamps
            .windows(2)
            .map(|w| w[1] - w[0])
            .take(jobs.len())
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if keep() {
            eprintln!("kept {}", self.root.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `JARVIS_DIFF_KEEP=1` keeps the scratch directories (drivers, logs,
/// bash's errors) for a look after the run.
fn keep() -> bool {
    std::env::var_os("JARVIS_DIFF_KEEP").is_some()
}

/// The records of a batch directory, by line: every `N.log.PID` file.
fn read_logs(dir: &Path) -> std::collections::HashMap<usize, Vec<Argv>> {
    let mut out: std::collections::HashMap<usize, Vec<Argv>> = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(line) = name
            .split_once(".log.")
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(entry.path()) {
            out.entry(line).or_default().extend(bash::parse_log(&bytes));
        }
    }
    out
}

/// Every record in `unattributed.PID` files beneath `root`.
fn unattributed(root: &Path) -> Vec<Argv> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("unattributed."))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .flat_map(|b| bash::parse_log(&b))
        .collect()
}

fn read_run(dir: &Path, i: usize, records: Option<Vec<Argv>>, hung: bool, seconds: f64) -> LineRun {
    let records = records.unwrap_or_default();
    let stderr = std::fs::read(dir.join(format!("{i}.err")))
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(2000)]).into_owned())
        .unwrap_or_default();
    LineRun {
        records,
        stderr,
        hung,
        seconds,
    }
}

/// Kills every process of the batch's group.
fn kill_group(group: u32) {
    let _ = Process::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// A refusal's reason without the text it quotes, to count by kind.
fn refusal_kind(why: &str) -> String {
    let mut kind = String::new();
    let mut quoted = false;
    for c in why.chars() {
        if c == '`' {
            quoted = !quoted;
            kind.push_str(if quoted { "`…" } else { "`" });
        } else if !quoted {
            kind.push(c);
        }
    }
    let kind = kind.split(" at line ").next().unwrap_or_default();
    kind.chars().take(120).collect()
}

/// Whether bash takes `name` as a function name in the driver and calls
/// the function where it would run the program: not a builtin it keeps
/// (defining one would change what the line does), not a reserved word,
/// and spelt so the definition parses.
fn function_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || "_.+:@,-".contains(c))
        && !bash::BASH_BUILTINS.contains(name)
        && !bash::BASH_KEYWORDS.contains(name)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The user and group of `nobody`.
fn nobody() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"nobody"))
                .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
        })
        .unwrap_or((65534, 65534))
}

/// The `PT_INTERP` path of a 64-bit little-endian ELF program (the
/// dynamic loader the kernel also executes), if it names one.
fn elf_interpreter(file: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(file).ok()?;
    let num = |at: usize, len: usize| -> Option<u64> {
        let b = bytes.get(at..at + len)?;
        Some(b.iter().rev().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
    };
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, size, count) = (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?);
    for i in 0..count {
        let at = usize::try_from(phoff + i * size).ok()?;
        if num(at, 4)? == 3 {
            let (offset, len) = (
                usize::try_from(num(at + 8, 8)?).ok()?,
                usize::try_from(num(at + 32, 8)?).ok()?,
            );
            let raw = bytes.get(offset..offset + len)?;
            let raw = raw.split(|b| *b == 0).next()?;
            return Some(PathBuf::from(String::from_utf8_lossy(raw).into_owned()));
        }
    }
    None
}

/// The longest the analysis may take over one line (a debug build, on a
/// loaded machine) before the line counts as a failure: the guard judges
/// every line before it runs, so a line that takes this long is a way to
/// stall it.
const ANALYSIS_LIMIT: Duration = Duration::from_secs(20);

/// What the analysis made of one line.
enum Verdict {
    Found(Vec<bash::Found>),
    Refused(String),
    ForkBomb,
    Panicked,
    TooSlow,
}

/// The analysis of each line, on a thread of its own so that a line it
/// cannot finish in [`ANALYSIS_LIMIT`] is reported rather than stalling the
/// suite (the thread is left to finish that line and stop).
fn read_all(lines: Vec<String>) -> Vec<Verdict> {
    let lines = std::sync::Arc::new(lines);
    let mut out = Vec::with_capacity(lines.len());
    while out.len() < lines.len() {
        let start = out.len();
        let (tx, rx) = std::sync::mpsc::channel();
        let mine = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in &mine[start..] {
                let reading = std::panic::catch_unwind(|| bash::policy_reading(line));
                let verdict = match reading {
                    Err(_) => Verdict::Panicked,
                    Ok(Err(e)) => Verdict::Refused(e),
                    Ok(Ok(r)) if r.fork_bomb => Verdict::ForkBomb,
                    Ok(Ok(r)) => Verdict::Found(r.all),
                };
                if tx.send(verdict).is_err() {
                    return;
                }
            }
        });
        while out.len() < lines.len() {
            match rx.recv_timeout(ANALYSIS_LIMIT) {
                Ok(v) => out.push(v),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    out.push(Verdict::TooSlow);
                    break;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    out.push(Verdict::Panicked);
                    break;
                }
            }
        }
    }
    out
}

/// Analyses `jobs`, runs those the analysis reads, and adds the outcome to
/// `tally`.
fn check(sandbox: &Sandbox, jobs: &[Job], tally: &Mutex<Tally>) {
    let mut to_run: Vec<(&Job, Vec<bash::Found>)> = Vec::new();
    let mut local = Tally {
        lines: jobs.len(),
        ..Tally::default()
    };
    let clock = Instant::now();
    let verdicts = read_all(jobs.iter().map(|j| j.line.clone()).collect());
    for (job, verdict) in jobs.iter().zip(verdicts) {
        match verdict {
            Verdict::Panicked => local.misses.push(format!(
                "the analysis panics on the line ({})\n  line {:?}",
                job.origin, job.line
            )),
            Verdict::TooSlow => local.misses.push(format!(
                "the analysis takes more than {} s over the line ({})\n  line {:?}",
                ANALYSIS_LIMIT.as_secs(),
                job.origin,
                job.line
            )),
            Verdict::Refused(why) => {
                local.refused += 1;
                *local.refusals.entry(refusal_kind(&why)).or_default() += 1;
            }
            Verdict::ForkBomb => local.fork_bombs += 1,
            Verdict::Found(found) => to_run.push((job, found)),
        }
    }
    local.analysing = clock.elapsed();
    let clock = Instant::now();
    let runs = sandbox.run(&to_run.iter().map(|(j, _)| *j).collect::<Vec<_>>());
    local.running = clock.elapsed();
    for ((job, found), run) in to_run.iter().zip(&runs) {
        local.ran += 1;
        local.hung += usize::from(run.hung);
        local.records += run.records.len();
        local.note_time(run.seconds, job);
        let unseen = bash::unseen(&run.records, found);
        if !unseen.is_empty() {
            local.misses.push(format!(
                "bash runs {:?}, which the analysis does not see ({})\n  line {:?}\n  \
                 bash ran: {:?}\n  analysis found: {:?}{}\n  \
                 bash's errors: {:?}",
                unseen.iter().map(|a| bash::joined(a)).collect::<Vec<_>>(),
                job.origin,
                job.line,
                run.records
                    .iter()
                    .map(|a| bash::joined(a))
                    .collect::<Vec<_>>(),
                found.iter().map(bash::Found::show).collect::<Vec<_>>(),
                if run.hung {
                    "\n  (killed: it stopped making progress)"
                } else {
                    ""
                },
                run.stderr
            ));
        }
    }
    let mut t = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    t.lines += local.lines;
    t.refused += local.refused;
    t.fork_bombs += local.fork_bombs;
    t.ran += local.ran;
    t.hung += local.hung;
    t.records += local.records;
    t.analysing += local.analysing;
    t.running += local.running;
    t.misses.extend(local.misses);
    for (kind, n) in local.refusals {
        *t.refusals.entry(kind).or_default() += n;
    }
    for (seconds, origin, line) in local.slowest {
        t.slowest.push((seconds, origin, line));
    }
    t.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    t.slowest.truncate(5);
}

/// Runs `batch(k)` for k = 0, 1, … on a worker per core until it returns
/// `None`, and fails on any miss.
fn run_suite(name: &str, sandbox: &Sandbox, batch: &(dyn Fn(usize) -> Option<Vec<Job>> + Sync)) {
    let started = Instant::now();
    let tally = Mutex::new(Tally::default());
    let next = AtomicUsize::new(0);
    // One more worker than cores: while one waits on its bash, another
    // analyses.
    let workers = std::env::var("JARVIS_DIFF_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)) + 1
        });
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(jobs) = batch(next.fetch_add(1, Ordering::Relaxed)) {
                    check(sandbox, &jobs, &tally);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let t = tally
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let unattributed = unattributed(&sandbox.root);
    eprintln!(
        "{name}: {} lines in {:.1} s ({:.0} lines/s): {} ran ({} killed \
         as stuck), {} refused by the analysis, {} fork bombs not run; bash ran {} programs; \
         {} missed; workers spent {:.1} s analysing and {:.1} s waiting for bash",
        t.lines,
        elapsed.as_secs_f64(),
        t.lines as f64 / elapsed.as_secs_f64(),
        t.ran,
        t.hung,
        t.refused,
        t.fork_bombs,
        t.records,
        t.misses.len(),
        t.analysing.as_secs_f64(),
        t.running.as_secs_f64(),
    );
    let mut kinds: Vec<(&String, &usize)> = t.refusals.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1));
    for (kind, n) in kinds.iter().take(8) {
        eprintln!("  refused {n}: {kind}");
    }
    for (seconds, origin, line) in &t.slowest {
        eprintln!("  slow: {seconds:.3} s {origin}: {line:?}");
    }
    assert!(
        unattributed.is_empty(),
        "programs ran with no line's log to record into (a line cleared the environment): {:?}",
        unattributed
    );
    assert!(
        t.misses.is_empty(),
        "{name}: {} line(s) where bash ran a program the analysis missed; the first:\n\n{}",
        t.misses.len(),
        t.misses
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
        }
        Err(_) => default,
    }
}

fn vocabulary() -> Vocabulary {
    Vocabulary::from_knowledge(&workspace().join("policies/knowledge"))
}

/// The generator's seed for batch `k`.
fn batch_seed(seed: u64, k: usize) -> u64 {
    seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn bash_runs_nothing_the_analysis_misses_in_generated_lines() {
    let total = usize::try_from(env_number("JARVIS_DIFF_LINES", GENERATED_LINES as u64))
        .expect("a line count");
    let seed = env_number("JARVIS_DIFF_SEED", SEED);
    let seeds_dir = std::env::var_os("JARVIS_DIFF_FUZZ_SEEDS").map(PathBuf::from);
    if let Some(d) = &seeds_dir {
        std::fs::create_dir_all(d).expect("fuzz seed directory");
    }
    let vocabulary = vocabulary();
    let names: BTreeSet<String> = vocabulary.program_names().map(str::to_owned).collect();
    let sandbox = Sandbox::new("generated", &names);
    let batch = |k: usize| -> Option<Vec<Job>> {
        let first = k * BATCH;
        if first >= total {
            return None;
        }
        let mut g = Generator::new(batch_seed(seed, k), &vocabulary);
        Some(
            (0..BATCH.min(total - first))
                .map(|i| {
                    let line = g.line();
                    if let Some(d) = &seeds_dir
                        && (first + i).is_multiple_of(50)
                    {
                        let _ = std::fs::write(d.join(format!("gen-{seed:x}-{k}-{i}")), &line);
                    }
                    Job {
                        origin: format!(
                            "JARVIS_DIFF_SEED={seed:#x}, batch {k}, line {i}: \
                             Generator::new(batch_seed(seed, {k})), call {}",
                            i + 1
                        ),
                        line,
                    }
                })
                .collect(),
        )
    };
    run_suite("generated lines", &sandbox, &batch);
}

/// Every line of the project's corpora, with where it came from.
fn corpus_lines() -> Vec<(String, String)> {
    let root = workspace();
    let mut files = Vec::new();
    for dir in [
        "tests/data",
        "tests/corpora",
        "crates/jarvis-policy/tests/data",
    ] {
        collect_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for file in files {
        let is_corpus = file.extension().is_some_and(|e| e == "txt" || e == "cm");
        let Some(text) = is_corpus
            .then(|| std::fs::read_to_string(&file).ok())
            .flatten()
        else {
            continue;
        };
        let comments = file.extension().is_some_and(|e| e == "txt");
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || (comments && trimmed.starts_with('#')) || line.contains('\0') {
                continue;
            }
            if seen.insert(line.to_owned()) {
                out.push((format!("{shown}:{}", n + 1), line.to_owned()));
            }
        }
    }
    let fuzz = root.join("fuzz/corpus/judge");
    let mut inputs = Vec::new();
    collect_files(&fuzz, &mut inputs);
    inputs.sort();
    for file in inputs {
        if let Ok(text) = std::fs::read_to_string(&file)
            && !text.contains('\0')
            && seen.insert(text.clone())
        {
            out.push((file.display().to_string(), text));
        }
    }
    out
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, into);
        } else {
            into.push(p);
        }
    }
}

#[test]
fn bash_runs_nothing_the_analysis_misses_in_the_corpora() {
    let lines = corpus_lines();
    assert!(
        lines.len() >= 100,
        "only {} corpus lines found; the benign set alone has more",
        lines.len()
    );
    let mut names: BTreeSet<String> = vocabulary().program_names().map(str::to_owned).collect();
    for (_, line) in &lines {
        names.extend(bash::name_like_words(line));
    }
    let sandbox = Sandbox::new("corpora", &names);
    let batch = |k: usize| -> Option<Vec<Job>> {
        let chunk = lines.chunks(BATCH).nth(k)?;
        Some(
            chunk
                .iter()
                .map(|(origin, line)| Job {
                    origin: origin.clone(),
                    line: line.clone(),
                })
                .collect(),
        )
    };
    run_suite("corpora", &sandbox, &batch);
}

/// The generated lines through the analysis alone, without bash: the
/// panics and the lines it cannot finish in time, quickly. A diagnostic
/// (`cargo test -p jarvis-tests --test bash_differential -- --ignored`).
#[test]
#[ignore = "a diagnostic; the generated-lines suite checks the same and more"]
fn the_analysis_reads_generated_lines_in_time() {
    let total = usize::try_from(env_number("JARVIS_DIFF_LINES", GENERATED_LINES as u64))
        .expect("a line count");
    let seed = env_number("JARVIS_DIFF_SEED", SEED);
    let vocabulary = vocabulary();
    let mut problems = Vec::new();
    let mut k = 0;
    while k * BATCH < total {
        let mut g = Generator::new(batch_seed(seed, k), &vocabulary);
        let lines: Vec<String> = (0..BATCH.min(total - k * BATCH))
            .map(|_| g.line())
            .collect();
        for (i, v) in read_all(lines.clone()).into_iter().enumerate() {
            match v {
                Verdict::Panicked => {
                    let hook = std::panic::take_hook();
                    std::panic::set_hook(Box::new(|_| {}));
                    let small = minimise(&lines[i], |l| {
                        std::panic::catch_unwind(|| bash::policy_reading(l)).is_err()
                    });
                    std::panic::set_hook(hook);
                    problems.push(format!(
                        "batch {k} line {i}: the analysis panics on {small:?} (from {:?})",
                        lines[i]
                    ));
                }
                Verdict::TooSlow => problems.push(format!(
                    "batch {k} line {i}: the analysis is too slow on {:?}",
                    lines[i]
                )),
                // `JARVIS_DIFF_SHOW_REFUSED=TEXT` lists the lines refused
                // for a reason that contains TEXT.
                Verdict::Refused(why) => {
                    if let Ok(want) = std::env::var("JARVIS_DIFF_SHOW_REFUSED")
                        && why.contains(&want)
                    {
                        eprintln!("refused ({why}): {:?}", lines[i]);
                    }
                }
                Verdict::Found(_) | Verdict::ForkBomb => {}
            }
        }
        k += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A shorter line on which `fails` still holds: pieces are cut out, the
/// largest first, while it does.
fn minimise(line: &str, fails: impl Fn(&str) -> bool) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    let mut size = chars.len() / 2;
    while size > 0 {
        let mut at = 0;
        while at + size <= chars.len() {
            let mut shorter = chars.clone();
            shorter.drain(at..at + size);
            let text: String = shorter.iter().collect();
            if fails(&text) {
                chars = shorter;
            } else {
                at += size;
            }
        }
        size /= 2;
    }
    chars.into_iter().collect()
}

/// What the analysis finds in `JARVIS_DIFF_SHOW` (a line), and what the
/// shell layer read: a diagnostic for a miss the suites report.
#[test]
#[ignore = "a diagnostic for one line"]
fn show_one_line() {
    let Some(line) = std::env::var_os("JARVIS_DIFF_SHOW") else {
        return;
    };
    let line = line.to_string_lossy().into_owned();
    match jarvis_policy::shell::parse(&line, "the line", 0) {
        Ok(script) => {
            for inv in &script.invocations {
                let words: Vec<String> = inv
                    .words
                    .iter()
                    .map(|w| format!("{:?}{}", w.text, if w.literal { "" } else { "*" }))
                    .collect();
                eprintln!("shell: {} {:?}", words.join(" "), inv.context);
            }
        }
        Err(e) => eprintln!("shell: {e}"),
    }
    match bash::policy_reading(&line) {
        Ok(r) => eprintln!(
            "found: {:?}",
            r.all.iter().map(bash::Found::show).collect::<Vec<_>>()
        ),
        Err(e) => eprintln!("refused: {e}"),
    }
    let mut names: BTreeSet<String> = vocabulary().program_names().map(str::to_owned).collect();
    names.extend(bash::name_like_words(&line));
    let sandbox = Sandbox::new("show", &names);
    let job = Job {
        origin: "JARVIS_DIFF_SHOW".into(),
        line,
    };
    for run in sandbox.run(&[&job]) {
        eprintln!("bash ran: {:?}", run.records);
        eprintln!("bash's errors: {:?}", run.stderr);
    }
}
