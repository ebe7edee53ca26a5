//! Running one command under the guard's limits.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jarvis_exec::protocol::{Ending, Frame, Outcome, Refusal, RunRequest, StreamSummary};
use nix::sys::resource::{Resource, setrlimit};
use sha2::{Digest, Sha256};

use crate::tree::Reaper;

/// Host-side limits, set by the forced command line, never by the request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest timeout a request may ask for.
    pub max_timeout: Duration,
    /// RLIMIT_NPROC for the command (processes of the guard's user).
    pub max_procs: u64,
    /// RLIMIT_FSIZE: the largest file the command may write.
    pub max_file_size: u64,
    /// RLIMIT_NOFILE.
    pub max_open_files: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_timeout: Duration::from_secs(3600),
            max_procs: 2048,
            max_file_size: 16 << 30,
            max_open_files: 4096,
        }
    }
}

/// How long a timed-out tree gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// How often the guard proves the client is still there when the command is
/// quiet; a failed write means the gateway is gone and the command dies.
const HEARTBEAT: Duration = Duration::from_secs(1);
const CHUNK: usize = 16 * 1024;

/// Where frames go; a failed write means the client has gone.
pub trait Sink {
    fn send(&mut self, frame: &Frame) -> std::io::Result<()>;
}

impl<W: Write> Sink for W {
    fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        self.write_all(&frame.encode())?;
        self.flush()
    }
}

enum Piece {
    Out(usize, Vec<u8>),
    Eof,
}

#[derive(Default)]
struct Capture {
    summary: StreamSummary,
    hasher: Sha256,
    sent: u64,
}

/// Runs `req`. A refusal comes back as `Err` before anything ran.
pub fn run(
    req: &RunRequest,
    limits: &Limits,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Sink,
) -> Result<Outcome, Refusal> {
    run_with_env(req, &[], limits, stop, out)
}

/// As [`run`], with `extra_env` added to the fixed environment (the guard's
/// own settings for a command it runs itself, such as a preview's git
/// hardening; never anything from the request).
pub fn run_with_env(
    req: &RunRequest,
    extra_env: &[(String, String)],
    limits: &Limits,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Sink,
) -> Result<Outcome, Refusal> {
    let refuse = |code: &str, why: String| Refusal {
        code: code.into(),
        reasons: vec![why],
    };
    let timeout = Duration::from_millis(req.timeout_ms);
    if timeout.is_zero() || timeout > limits.max_timeout {
        return Err(refuse(
            "bad-request",
            format!(
                "timeout of {} ms is outside 1 ms..{} s allowed on this host",
                req.timeout_ms,
                limits.max_timeout.as_secs()
            ),
        ));
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let cwd = req.cwd.clone().unwrap_or_else(|| home.clone());
    if !std::path::Path::new(&cwd).is_dir() {
        return Err(refuse(
            "cwd",
            format!("working directory `{cwd}` is not a directory on this host"),
        ));
    }
    apply_rlimits(limits, timeout)
        .map_err(|e| refuse("spawn", format!("cannot set resource limits: {e}")))?;
    // Orphans of the command come to the guard, not to init, so the guard
    // can find and kill them.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| refuse("spawn", format!("cannot become a child subreaper: {e}")))?;

    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&req.command)
        .current_dir(&cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A fixed environment: nothing of the SSH session (its original
        // command, agent sockets) leaks into the command.
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("JARVIS_ACTION_ID", &req.action_id);
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| refuse("spawn", format!("cannot start /bin/sh: {e}")))?;
    let mut reaper = Reaper::new(child.id());

    let (tx, rx) = mpsc::channel();
    let mut readers = 0;
    for (i, pipe) in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(mut pipe) = pipe else { continue };
        readers += 1;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0; CHUNK];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Piece::Out(i, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Piece::Eof);
        });
    }
    drop(tx);

    let deadline = started + timeout;
    let mut streams = [Capture::default(), Capture::default()];
    let mut status: Option<ExitStatus> = None;
    let mut swept = false;
    let mut timed_out = false;
    let mut client_gone = false;
    let mut open = readers;
    while open > 0 || status.is_none() {
        let now = Instant::now();
        let wait = if timed_out || swept {
            Duration::from_millis(50)
        } else {
            deadline.saturating_duration_since(now).min(HEARTBEAT)
        };
        match rx.recv_timeout(wait) {
            Ok(Piece::Out(i, bytes)) => {
                let c = &mut streams[i];
                c.hasher.update(&bytes);
                c.summary.bytes += bytes.len() as u64;
                let room = req.output_cap.saturating_sub(c.sent);
                let take = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
                if take < bytes.len() {
                    c.summary.truncated = true;
                }
                if take > 0 && !client_gone {
                    let chunk = bytes[..take].to_vec();
                    c.sent += take as u64;
                    let frame = if i == 0 {
                        Frame::Stdout(chunk)
                    } else {
                        Frame::Stderr(chunk)
                    };
                    client_gone = out.send(&frame).is_err();
                }
            }
            Ok(Piece::Eof) => open -= 1,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !client_gone && !swept && !timed_out {
                    client_gone = out.send(&Frame::Heartbeat).is_err();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        if !timed_out && status.is_none() && Instant::now() >= deadline {
            timed_out = true;
            reaper.terminate(TERM_GRACE);
        }
        if client_gone || stop.load(Ordering::Relaxed) {
            // Nobody will read the result; leave nothing running.
            reaper.kill_all();
            let _ = child.wait();
            return Err(refuse(
                "client-gone",
                "the gateway disconnected; the command was killed".into(),
            ));
        }
        // The shell has ended: whatever it left running (background jobs,
        // `nohup`, daemons that hold our pipes open) does not outlive it.
        if status.is_some() && !swept {
            swept = true;
            reaper.kill_all();
        }
    }
    if status.is_none() {
        status = child.wait().ok();
    }
    reaper.kill_all();
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);

    let [stdout, stderr] = streams.map(|c| StreamSummary {
        sha256: hex::encode(c.hasher.finalize()),
        ..c.summary
    });
    let (ending, exit_code, signal) = match status {
        _ if timed_out => (Ending::TimedOut, None, None),
        Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => (Ending::Exited, Some(code), None),
            (None, sig) => (Ending::Signalled, None, sig),
        },
        None => (Ending::Signalled, None, None),
    };
    Ok(Outcome {
        ending,
        exit_code,
        signal,
        duration_ms,
        stdout,
        stderr,
        // The shell itself is not a leftover unless the timeout took it.
        killed: reaper.killed(),
        kernel: None,
    })
}

fn apply_rlimits(limits: &Limits, timeout: Duration) -> nix::Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    setrlimit(Resource::RLIMIT_NPROC, limits.max_procs, limits.max_procs)?;
    setrlimit(
        Resource::RLIMIT_FSIZE,
        limits.max_file_size,
        limits.max_file_size,
    )?;
    setrlimit(
        Resource::RLIMIT_NOFILE,
        limits.max_open_files,
        limits.max_open_files,
    )?;
    // CPU time cannot exceed wall time per core; a margin covers the grace.
    let cpu = timeout.as_secs().saturating_add(5).saturating_mul(4);
    setrlimit(Resource::RLIMIT_CPU, cpu, cpu)
}
