//! `jarvis policy check | lint | test`.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use jarvis_core::HostName;
use jarvis_policy::{Judgement, Policy, Request, engine};
use serde::Deserialize;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Judge a command (or, with --jsonl, a stream of requests) against the policy.
    ///
    /// Exits 0 when the command was judged, whatever the decision; 2 when the
    /// policy cannot be loaded or the arguments are wrong.
    Check(CheckArgs),
    /// Validate policy files and point at the file, line and field of every mistake.
    Lint(PolicyArgs),
    /// Check every rule's `examples` and `counter_examples`.
    Test(PolicyArgs),
}

#[derive(Args)]
pub struct PolicyArgs {
    /// A policy file or directory of them; repeatable. Default: the shipped policies/.
    #[arg(long = "policy", value_name = "PATH")]
    policy: Vec<PathBuf>,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// The host the command is for.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// The directory the command would run in.
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Print the decision as one JSON object.
    #[arg(long, conflicts_with = "jsonl")]
    json: bool,
    /// Read JSON requests from stdin, one per line; write one decision per line, in order.
    #[arg(long)]
    jsonl: bool,
    /// Show the plan: each program the line runs, its risk, and the tools' own previews.
    #[arg(long, conflicts_with = "jsonl")]
    explain: bool,
    /// The command line. Quote it as one argument; several are joined with spaces.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(args) => check(args),
        PolicyCommand::Lint(args) => lint(&args),
        PolicyCommand::Test(args) => test(&args),
    }
}

fn load(args: &PolicyArgs) -> Result<Policy> {
    Ok(Policy::load(&args.policy)?)
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let policy = load(&args.policy)?;
    if args.jsonl {
        if !args.command.is_empty() {
            anyhow::bail!("--jsonl reads requests from standard input; give no COMMAND");
        }
        batch(
            &policy,
            args.host.as_deref(),
            io::stdin().lock(),
            io::stdout(),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.command.is_empty() {
        anyhow::bail!("no command given: jarvis policy check -- 'COMMAND'");
    }
    let host = args
        .host
        .as_deref()
        .map(HostName::parse)
        .transpose()
        .context("--host")?;
    let req = Request {
        command: args.command.join(" "),
        host,
        cwd: args.cwd,
    };
    let j = if args.explain {
        policy.explain(&req)
    } else {
        policy.judge(&req)
    };
    let mut out = io::stdout().lock();
    if args.json {
        if args.explain {
            // The decision's own fields first, in design.md's order, then the plan.
            #[derive(serde::Serialize)]
            struct Explained<'a> {
                #[serde(flatten)]
                judgement: &'a Judgement,
                host: Option<&'a str>,
                steps: &'a [jarvis_policy::engine::Step],
                previews: &'a [jarvis_policy::dryrun::Preview],
            }
            let e = Explained {
                judgement: &j,
                host: req.host.as_ref().map(HostName::as_str),
                steps: &j.steps,
                previews: &j.previews,
            };
            serde_json::to_writer(&mut out, &e)?;
        } else {
            serde_json::to_writer(&mut out, &j)?;
        }
        writeln!(out)?;
    } else {
        // The reasons and the plan quote the command, which may be an
        // agent's.
        let mut out = crate::terminal::Inert::new(out);
        print_human(&mut out, &j, req.host.as_ref(), args.explain)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_human(
    out: &mut impl Write,
    j: &Judgement,
    host: Option<&HostName>,
    explain: bool,
) -> io::Result<()> {
    // The decision's word first (scripts read it), then what it means:
    // "approve" is a person's to give, not the policy's.
    writeln!(
        out,
        "{:<7} risk {} ({}): {}",
        j.decision,
        j.risk.score(),
        j.risk.level(),
        j.decision.label()
    )?;
    writeln!(out, "command: {}", j.command)?;
    if let Some(h) = host {
        writeln!(out, "host:    {h}")?;
    }
    if !j.rules.is_empty() {
        writeln!(out, "rules:   {}", j.rules.join(", "))?;
    }
    // The first reason is the one that decided; the rest follow by risk.
    writeln!(out, "reasons:")?;
    for r in &j.reasons {
        writeln!(out, "  - {r}")?;
    }
    if explain {
        writeln!(out, "plan (each program the line runs):")?;
        for (i, s) in j.steps.iter().enumerate() {
            let via = if s.via.is_empty() {
                String::new()
            } else {
                format!("  via {}", s.via.join(" > "))
            };
            writeln!(
                out,
                "  {}. {}  [{}, risk {}]{via}",
                i + 1,
                s.command,
                s.decision,
                s.risk.score()
            )?;
            for f in &s.findings {
                writeln!(out, "       {f}")?;
            }
        }
        if j.previews.is_empty() {
            writeln!(
                out,
                "preview: none of these tools has a dry-run form; the plan above is the preview"
            )?;
        } else {
            writeln!(out, "previews (the tools' own dry runs):")?;
            for p in &j.previews {
                writeln!(out, "  {}  # {}", p.preview, p.shows)?;
            }
        }
    }
    Ok(())
}

/// One request line of `--jsonl`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestLine {
    command: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
}

/// Request lines longer than this are not read into memory whole.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Lines handed to a judging thread at a time: enough that handing over
/// costs nothing next to judging them, few enough that the threads stay
/// evenly loaded to the last line.
const BATCH_LINES: usize = 256;

/// Batches read ahead of the one being written, per judging thread: the
/// bound on what waits in memory when one batch is slow or the reader of
/// the output is.
const AHEAD_PER_THREAD: usize = 4;

/// Judges a stream of request lines, one decision line each, in order,
/// never stopping at a bad line.
///
/// With more than one core, this thread reads, one judging thread per core
/// judges whole batches, and one more writes them back in input order.
pub fn batch(
    policy: &Policy,
    default_host: Option<&str>,
    input: impl BufRead,
    output: impl Write + Send,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, output);
    let mut reader = BatchReader {
        input,
        numbered: 0,
        batches: 0,
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    if threads == 1 {
        // One core: handing batches between threads would only add work.
        let mut encoded = Vec::new();
        while let Some(b) = reader.next()? {
            b.judge_into(policy, default_host, &mut encoded);
            out.write_all(&encoded)?;
            encoded.clear();
        }
        out.flush()?;
        return Ok(());
    }
    let ahead = threads * AHEAD_PER_THREAD;
    let (batches, to_judge) = mpsc::sync_channel::<Batch>(ahead);
    // Shared by the judging threads alone, so that when they have all
    // stopped (the writer failed) the reader's next send fails too.
    let to_judge = Arc::new(Mutex::new(to_judge));
    let (judged, to_write) = mpsc::channel::<(usize, Option<Vec<u8>>)>();
    // A batch is read only with a credit, and the writer gives one back per
    // batch written: at most `ahead` batches are in memory at once.
    let (credit, credits) = mpsc::sync_channel::<()>(ahead);
    for _ in 0..ahead {
        // The channel has room for every credit.
        let _ = credit.send(());
    }
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let judged = judged.clone();
            let to_judge = Arc::clone(&to_judge);
            scope.spawn(move || {
                loop {
                    let next = match to_judge.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(b) = next else { return };
                    let mut encoded = Vec::new();
                    // `None` stops the writer: it never skips a line.
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        b.judge_into(policy, default_host, &mut encoded);
                    }))
                    .ok()
                    .map(|()| encoded);
                    if judged.send((b.seq, done)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(to_judge);
        drop(judged);
        let writing = scope.spawn(move || write_in_order(&mut out, to_write, &credit));
        let mut read = Ok(());
        // No credit: the writer has stopped.
        while credits.recv().is_ok() {
            match reader.next() {
                Ok(Some(b)) => {
                    if batches.send(b).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    read = Err(e);
                    break;
                }
            }
        }
        // What was read is still judged and written.
        drop(batches);
        writing
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the writing thread failed")))?;
        Ok(read?)
    })
}

/// Writes judged batches as they come, each once those before it are out,
/// and gives a credit back for each.
fn write_in_order(
    out: &mut impl Write,
    judged: mpsc::Receiver<(usize, Option<Vec<u8>>)>,
    credit: &mpsc::SyncSender<()>,
) -> Result<()> {
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0;
    for (seq, encoded) in judged {
        let Some(encoded) = encoded else {
            anyhow::bail!(
                "judging batch {seq} of the request lines failed; nothing after it is judged"
            );
        };
        waiting.insert(seq, encoded);
        while let Some(encoded) = waiting.remove(&next) {
            out.write_all(&encoded)?;
            next += 1;
            // The reader may have stopped at the end of the input.
            let _ = credit.try_send(());
        }
    }
    out.flush()?;
    Ok(())
}

/// Consecutive request lines, kept in one buffer.
struct Batch {
    /// Its place among the batches, from 0.
    seq: usize,
    /// The number of its first line, from 1.
    first: usize,
    text: Vec<u8>,
    /// Each line's bytes in `text`, without its line ending, and whether it
    /// was longer than [`MAX_LINE_BYTES`].
    lines: Vec<(std::ops::Range<usize>, bool)>,
}

impl Batch {
    /// Appends one decision line per request line.
    fn judge_into(&self, policy: &Policy, default_host: Option<&str>, out: &mut Vec<u8>) {
        for (i, (range, truncated)) in self.lines.iter().enumerate() {
            let j = judge_line(
                policy,
                default_host,
                &self.text[range.clone()],
                *truncated,
                self.first + i,
            );
            // Serialising plain structs to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &j);
            out.push(b'\n');
        }
    }
}

/// Cuts the input into batches.
struct BatchReader<R> {
    input: R,
    /// Lines read so far.
    numbered: usize,
    /// Batches made so far.
    batches: usize,
}

impl<R: BufRead> BatchReader<R> {
    /// The next batch, or `None` at the end of the input.
    fn next(&mut self) -> io::Result<Option<Batch>> {
        let mut b = Batch {
            seq: self.batches,
            first: self.numbered + 1,
            text: Vec::new(),
            lines: Vec::with_capacity(BATCH_LINES),
        };
        while b.lines.len() < BATCH_LINES {
            let start = b.text.len();
            let (read, truncated) = read_line_capped(&mut self.input, &mut b.text, MAX_LINE_BYTES)?;
            if read == 0 {
                break;
            }
            while b.text.len() > start && matches!(b.text.last(), Some(b'\n' | b'\r')) {
                b.text.pop();
            }
            b.lines.push((start..b.text.len(), truncated));
        }
        if b.lines.is_empty() {
            return Ok(None);
        }
        self.numbered += b.lines.len();
        self.batches += 1;
        Ok(Some(b))
    }
}

fn judge_line(
    policy: &Policy,
    default_host: Option<&str>,
    line: &[u8],
    truncated: bool,
    n: usize,
) -> Judgement {
    let shown = || String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    if truncated {
        return engine::refused(
            &shown(),
            format!("request line {n} is longer than {MAX_LINE_BYTES} bytes"),
        );
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return engine::refused(&shown(), format!("request line {n} is not valid UTF-8"));
    };
    if text.trim().is_empty() {
        return engine::refused("", format!("request line {n} is empty"));
    }
    let req: RequestLine = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            return engine::refused(
                &shown(),
                format!(
                    "request line {n} is not a request ({e}); expected {{\"command\": \"...\", \"host\": \"optional\"}}"
                ),
            );
        }
    };
    let host = match req
        .host
        .as_deref()
        .or(default_host)
        .map(HostName::parse)
        .transpose()
    {
        Ok(h) => h,
        Err(e) => return engine::refused(&req.command, format!("request line {n}: {e}")),
    };
    policy.judge(&Request {
        command: req.command,
        host,
        cwd: req.cwd,
    })
}

/// Reads one line onto the end of `buf`, keeping at most `cap` bytes of
/// it; returns the bytes consumed and whether the line was longer than the
/// cap.
fn read_line_capped(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut truncated = false;
    let start = buf.len();
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, truncated));
        }
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..=i], true),
            None => (chunk, false),
        };
        let room = cap.saturating_sub(buf.len() - start);
        if part.len() > room {
            truncated = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let len = part.len();
        input.consume(len);
        consumed += len;
        if done {
            return Ok((consumed, truncated));
        }
    }
}

fn lint(args: &PolicyArgs) -> Result<ExitCode> {
    // The built-in knowledge is compiled unit by unit as lines need it;
    // lint compiles all of it, so a broken build is said here, not on
    // the line that first needs the broken unit.
    let loaded = Policy::load(&args.policy).and_then(|p| match p.knowledge().check_shipped() {
        Ok(()) => Ok(p),
        Err(errors) => Err(jarvis_policy::LoadError {
            errors: errors
                .into_iter()
                .map(|e| jarvis_policy::PolicyError {
                    file: "(built in)".into(),
                    line: 0,
                    column: 0,
                    field: e.place,
                    message: e.problem,
                })
                .collect(),
        }),
    });
    match loaded {
        Ok(p) => {
            let warnings = warnings(&p);
            for w in &warnings {
                println!("warning: {w}");
            }
            let files = p.sources().len();
            println!(
                "ok: {} rule{} in {files} file{}, {} programs known{}",
                p.rules().rules.len(),
                plural(p.rules().rules.len()),
                plural(files),
                p.knowledge().len(),
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(", {} warning{}", warnings.len(), plural(warnings.len()))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for err in &e.errors {
                println!("error: {err}");
            }
            println!("{} error{}", e.errors.len(), plural(e.errors.len()));
            Ok(ExitCode::from(1))
        }
    }
}

/// Rules that are legal but probably not what the author meant.
fn warnings(p: &Policy) -> Vec<String> {
    use jarvis_core::Decision;
    use jarvis_policy::rules::Prefix;
    const WRAPPERS: &[&str] = &[
        "sudo", "doas", "su", "env", "bash", "sh", "zsh", "dash", "python", "python3", "perl",
        "ruby", "node", "xargs", "eval", "exec", "busybox", "nohup", "timeout", "nice", "ssh",
    ];
    let mut out = Vec::new();
    for r in &p.rules().rules {
        if r.decision != Decision::Allow {
            continue;
        }
        for c in &r.commands {
            let at = format!("{}:{}", r.origin.file.display(), r.origin.line);
            match c {
                Prefix::Any => out.push(format!("{at}: rule `{}` allows every program; only the risk limit stands between an agent and the host", r.id)),
                Prefix::Words { program, path, options }
                    if path.is_empty() && options.is_empty() && WRAPPERS.contains(&program.as_str()) =>
                {
                    out.push(format!(
                    "{at}: rule `{}` allows `{program}`, which runs other programs; what it runs is judged on its own, so this rule adds little",
                    r.id
                    ))
                }
                Prefix::Words { .. } => {}
            }
            if let Some(w) = open_options(p, c, &at, &r.id)
                && !out.contains(&w)
            {
                out.push(w);
            }
        }
    }
    out
}

/// A warning when an allow rule names a program or subcommand whose
/// options no complete table closes: an option nobody listed is then
/// judged by the hand-written knowledge alone, not refused as unknown.
fn open_options(
    p: &Policy,
    command: &jarvis_policy::rules::Prefix,
    at: &str,
    rule: &str,
) -> Option<String> {
    let jarvis_policy::rules::Prefix::Words { program, path, .. } = command else {
        return None;
    };
    // Tables are named by the program as invoked, never by its directory.
    let name = std::path::Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program);
    let kb = p.knowledge();
    let key = kb.node_key(name, path);
    let why = match kb.option_table(&key) {
        Some(t) if t.complete => return None,
        Some(t) => format!(
            "its table, from {}, is incomplete",
            t.version.chars().take(40).collect::<String>().trim_end()
        ),
        None => "it has no option table".to_owned(),
    };
    Some(format!(
        "{at}: rule `{rule}` allows `{key}`, whose options are not a closed list ({why}); an option nobody listed is judged by the hand-written knowledge alone"
    ))
}

fn test(args: &PolicyArgs) -> Result<ExitCode> {
    let p = load(args)?;
    let (count, failures) = p.test_examples();
    for f in &failures {
        println!(
            "FAIL {} rule `{}`: `{}` {}",
            f.origin, f.rule, f.example, f.problem
        );
    }
    println!(
        "{} passed, {} failed",
        count - failures.len(),
        failures.len()
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
