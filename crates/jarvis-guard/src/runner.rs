//! Running one command under the guard's limits.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jarvis_core::ActionId;
use jarvis_exec::protocol::{
    Ending, EnforcementLevel, Frame, Outcome, Refusal, RunRequest, StreamSummary,
};
use nix::sys::resource::{Resource, setrlimit};
use sha2::{Digest, Sha256};

use crate::confine::{self, Grant, HostGrants, KernelMode};
use crate::keeper;
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

#[derive(Default)]
struct Capture {
    summary: StreamSummary,
    hasher: Sha256,
    sent: u64,
}

/// The host's side of running a command: its limits and kernel wall.
pub struct Host<'a> {
    /// Limits from the forced command line.
    pub limits: &'a Limits,
    /// Whether the kernel wall is applied.
    pub kernel: KernelMode,
    /// What approved actions may write, and what nothing may.
    pub grants: &'a HostGrants,
}

/// Environment names that would make bash run code before the command
/// (`BASH_ENV`, `ENV`), change how it parses (`SHELLOPTS`, `BASHOPTS`,
/// `POSIXLY_CORRECT`) or redefine functions (`BASH_FUNC_*`): never set,
/// whoever asks.
const SHELL_ENV: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "POSIXLY_CORRECT",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
];

/// Git settings every command gets through the environment (command-line
/// scope, above every configuration file), so an allowed `git status` or
/// `git diff` in a repository someone else can write runs none of its
/// programs: no fsmonitor, no hooks, no external diff, no pager. Textconv
/// drivers cannot be switched off by one key; a configured one runs through
/// `/bin/sh`, which the kernel wall does not let a read run.
pub const GIT_HARDENING: &[(&str, &str)] = &[
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("diff.external", ""),
    ("core.pager", "cat"),
];

/// The fixed `PATH` of every command.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_n` and `GIT_CONFIG_VALUE_n` for
/// `pairs`: command-line scope, above every configuration file.
pub fn git_config_env<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<(String, String)> {
    let mut env = vec![("GIT_CONFIG_COUNT".to_owned(), pairs.len().to_string())];
    for (i, (k, v)) in pairs.iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), k.as_ref().to_owned()));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), v.as_ref().to_owned()));
    }
    env
}

/// The bash every command runs with: the shell the policy models. `None`
/// on a host without one, which then runs nothing.
pub fn find_bash() -> Option<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join("bash"))
        .find(|p| p.is_file())
}

/// Runs `req` under `grant` with bash, after `started` has logged it (no
/// log, no run). `extra_env` is added to the fixed environment: the guard's
/// own settings for a command it runs itself, never anything from the
/// request. A refusal comes back as `Err` before anything ran.
pub fn run(
    req: &RunRequest,
    grant: &Grant,
    host: &Host<'_>,
    extra_env: &[(String, String)],
    started: &mut dyn FnMut(&str) -> std::io::Result<()>,
    stop: &Arc<AtomicBool>,
    out: &mut dyn Sink,
) -> Result<Outcome, Refusal> {
    let limits = host.limits;
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
    if let Some((name, _)) = extra_env
        .iter()
        .find(|(k, _)| SHELL_ENV.contains(&k.as_str()) || k.starts_with("BASH_FUNC_"))
    {
        return Err(refuse(
            "bad-request",
            format!("`{name}` would change how bash reads the command; it is never set"),
        ));
    }
    let bash = find_bash().ok_or_else(|| {
        refuse(
            "no-bash",
            "this host has no bash; the guard runs every command with bash, the shell the \
             policy judged it as, and never with another"
                .into(),
        )
    })?;
    apply_rlimits(limits, timeout)
        .map_err(|e| refuse("spawn", format!("cannot set resource limits: {e}")))?;
    // Orphans of the command come to the guard, not to init, so the guard
    // can find and kill them.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| refuse("spawn", format!("cannot become a child subreaper: {e}")))?;

    // A private temporary directory: bash, sort and friends may need one,
    // and it is gone when the command is.
    let tmp = PrivateTmp::new(req.action_id)
        .map_err(|e| refuse("spawn", format!("cannot make a temporary directory: {e}")))?;
    let argv: Vec<OsString> = vec![
        bash.clone().into(),
        "--noprofile".into(),
        "--norc".into(),
        "-c".into(),
        req.command.clone().into(),
    ];
    let enforcement = confine::probe(host.kernel);
    let (cmd, kernel) = if let Some(why) = &grant.waived {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        (cmd, format!("kernel: {why}"))
    } else if enforcement.level == EnforcementLevel::None {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        (cmd, format!("kernel: {}", enforcement.describe()))
    } else {
        let mut resolved = confine::resolve(grant, &bash, Path::new(&cwd), PATH, host.grants);
        let mut line = resolved.describe();
        // Said after the description: the private directory is no write
        // anyone needs to hear about.
        resolved.writes.push(tmp.path.clone());
        if enforcement.level == EnforcementLevel::Partial {
            line.push_str(&format!(" ({})", enforcement.describe()));
        }
        let cmd = confine::wrap(&resolved, &argv)
            .map_err(|e| refuse("spawn", format!("cannot set up the kernel wall: {e}")))?;
        (cmd, line)
    };
    // Between the guard and the command: the keeper, which ends the
    // command's whole tree if the guard dies (see `keeper`).
    let mut cmd = keeper::wrap(&cmd);
    cmd.current_dir(&cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A fixed environment: nothing of the SSH session (its original
        // command, agent sockets) leaks into the command.
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("TMPDIR", &tmp.path)
        .env("JARVIS_ACTION_ID", req.action_id.to_string());
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(git_config_env(GIT_HARDENING));
    cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
    started(&kernel).map_err(|e| {
        refuse(
            "log",
            format!("cannot write the guard's log, so nothing ran: {e}"),
        )
    })?;
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        let program = cmd.get_program().to_string_lossy().into_owned();
        refuse("spawn", format!("cannot start {program}: {e}"))
    })?;
    let mut reaper = Reaper::new(child.id());
    // Turns readable when the keeper ends.
    let ended = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
        .and_then(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        });

    // The command's output and its keeper's end, watched together from
    // this thread: a line that leaves a background job holding the pipes
    // open is swept as soon as its shell ends, not when the next
    // heartbeat is due.
    let mut pipes = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ]
    .map(|p| p.map(std::fs::File::from));
    let mut buf = vec![0; CHUNK];
    let deadline = started + timeout;
    let mut streams = [Capture::default(), Capture::default()];
    let mut status: Option<ExitStatus> = None;
    let mut swept = false;
    let mut timed_out = false;
    let mut client_gone = false;
    while pipes.iter().any(Option::is_some) || status.is_none() {
        let now = Instant::now();
        let wait = if timed_out || swept {
            Duration::from_millis(50)
        } else {
            deadline.saturating_duration_since(now).min(HEARTBEAT)
        };
        // Without a pidfd (Linux before 5.3) a running keeper is looked at
        // every 50 ms, and a quiet command still gets one heartbeat a
        // `wait`.
        let unwatched = status.is_none() && ended.is_none();
        let ready = watch(
            &pipes,
            status.is_none().then_some(ended.as_ref()).flatten(),
            if unwatched {
                wait.min(Duration::from_millis(50))
            } else {
                wait
            },
        );
        match ready {
            None => {
                let quiet = !unwatched || now.elapsed() >= wait;
                if quiet && !client_gone && !swept && !timed_out {
                    client_gone = out.send(&Frame::Heartbeat).is_err();
                }
            }
            Some(readable) => {
                for (i, pipe) in pipes.iter_mut().enumerate() {
                    if !readable[i] {
                        continue;
                    }
                    let Some(file) = pipe else { continue };
                    let n = match file.read(&mut buf) {
                        Ok(0) => {
                            *pipe = None;
                            continue;
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => {
                            *pipe = None;
                            continue;
                        }
                    };
                    let bytes = &buf[..n];
                    let c = &mut streams[i];
                    c.hasher.update(bytes);
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
            }
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
        kernel: Some(kernel),
    })
}

/// Sleeps until one of `pipes` has something to read (or has closed), the
/// keeper behind `pidfd` ends, or `most` passes. `None` when nothing
/// happened for `most`; otherwise which pipes to read.
fn watch(
    pipes: &[Option<std::fs::File>; 2],
    pidfd: Option<&OwnedFd>,
    most: Duration,
) -> Option<[bool; 2]> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = Vec::with_capacity(3);
    let mut which = Vec::with_capacity(2);
    for (i, pipe) in pipes.iter().enumerate() {
        if let Some(file) = pipe {
            fds.push(PollFd::new(file, PollFlags::IN));
            which.push(i);
        }
    }
    if let Some(fd) = pidfd {
        fds.push(PollFd::new(fd, PollFlags::IN));
    }
    let timeout = Timespec {
        tv_sec: most.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: most.subsec_nanos().into(),
    };
    match poll(&mut fds, Some(&timeout)) {
        Ok(0) => None,
        // Interrupted (a signal to stop): the caller looks at everything.
        Err(_) => Some([false, false]),
        Ok(_) => {
            let mut readable = [false, false];
            for (k, i) in which.iter().enumerate() {
                readable[*i] = !fds[k].revents().is_empty();
            }
            Some(readable)
        }
    }
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

/// A directory only this run writes in, removed when the run ends.
struct PrivateTmp {
    path: PathBuf,
}

impl PrivateTmp {
    fn new(action_id: ActionId) -> std::io::Result<PrivateTmp> {
        use std::os::unix::fs::DirBuilderExt as _;
        let base = std::env::temp_dir();
        let mut last = None;
        // `create` fails on an existing name, so a directory planted under
        // a guessed name is never used.
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let path = base.join(format!(
                // An `ActionId` displays as hex digits and dashes only:
                // part of one file name, never a `/`.
                "jarvis-run-{action_id}-{}-{nanos:x}{attempt}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateTmp { path }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no name left")))
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
