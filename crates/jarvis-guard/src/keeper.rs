//! The keeper: one small process between the guard and a command, so the
//! command's whole tree dies with the guard.
//!
//! The guard is a child subreaper, enforces the timeout and kills what a
//! command leaves behind, but all of that lives in the guard: a `kill -9`
//! of the guard (an OOM kill, a crash) would leave the command running,
//! re-parented to init, past its timeout. So every command starts as
//! `jarvis-guard keep GUARD_PID -- PROGRAM ARGS…`, which
//! - becomes a child subreaper too, so whatever the command leaves
//!   (`setsid`, `nohup … &`, double forks) is re-parented to the keeper
//!   and stays in its subtree, where it can be found;
//! - runs PROGRAM (the confine child, which also asks the kernel to
//!   SIGKILL it when the keeper dies, or bash itself) and reaps every
//!   child that comes to it;
//! - watches its parent: once that is no longer the guard, the guard is
//!   gone, and the keeper SIGKILLs everything below it until nothing is
//!   left, then exits (it sleeps on pidfds of the guard and the command,
//!   so it sees either end at once and adds no latency to a command);
//! - when PROGRAM ends, exits as PROGRAM did (its code, or its signal),
//!   leaving what PROGRAM left to the guard's sweep, which counts it.
//!
//! What it does not cover: processes started outside the command's tree
//! (a container a Docker daemon runs, a job `at` or a systemd unit
//! started), and a keeper killed together with the guard (under the
//! kernel wall a command cannot signal the keeper, which is outside its
//! domain; then the kernel's parent-death signal still kills the
//! command's own process, though not its children).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::process::{Command, ExitCode};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getppid};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::tree::Reaper;

/// The first argument that makes the guard binary a keeper.
pub const KEEP_ARG: &str = "keep";

/// Without pidfds, how often the keeper looks whether its guard or its
/// command ended: the most a command outlives a killed guard by.
const WATCH: Duration = Duration::from_millis(50);

/// With pidfds, how often the keeper reaps the orphans that ended while
/// the command runs.
const REAP: Duration = Duration::from_secs(1);

/// The command that runs `cmd`'s program and arguments under a keeper
/// watching this guard. Only the program and arguments are carried over:
/// the caller sets the environment, directory, process group and pipes on
/// the result, and the keeper passes them on.
pub fn wrap(cmd: &Command) -> Command {
    if cfg!(test) {
        // A unit test runs in the test harness, whose binary is no guard
        // and would take `keep` for a test filter, run nothing and exit 0.
        // The keeper is exercised end to end by tests/tests/faults_guard.rs.
        let mut plain = Command::new(cmd.get_program());
        plain.args(cmd.get_args());
        return plain;
    }
    // The running image, as the confine child does: an upgrade that
    // replaced the binary meanwhile must not start a different guard.
    let mut keeper = Command::new("/proc/self/exe");
    keeper
        .arg(KEEP_ARG)
        .arg(std::process::id().to_string())
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    keeper
}

/// The keeper: `jarvis-guard keep GUARD_PID -- PROGRAM ARGS…`. Exits 126
/// without running anything when it cannot keep (bad arguments, no
/// subreaper, the guard already gone).
pub fn main(args: &[OsString]) -> ExitCode {
    // Whether anyone hears it or not: a guard that is gone has closed the
    // other end of standard error, and `eprintln!` would panic there.
    let fail = |why: &str| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "jarvis-guard: {why}, so nothing ran");
        ExitCode::from(126)
    };
    let (Some(guard), Some(sep), Some(program)) = (args.first(), args.get(1), args.get(2)) else {
        return fail("usage: jarvis-guard keep GUARD_PID -- PROGRAM ARGS…");
    };
    let Some(guard) = guard.to_str().and_then(|g| g.parse::<i32>().ok()) else {
        return fail("the keeper's guard pid is not a number");
    };
    if sep != "--" {
        return fail("usage: jarvis-guard keep GUARD_PID -- PROGRAM ARGS…");
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return fail(&format!("the keeper cannot become a child subreaper: {e}"));
    }
    // The guard may have died before the keeper started watching it.
    if getppid().as_raw() != guard {
        return fail("the guard is gone");
    }
    // The guard as a file descriptor that turns readable when it ends:
    // opened while it is still the parent, so it is that process and no
    // later one that reuses its pid.
    let guard_fd = pidfd_open(Pid::from_raw(guard));
    if getppid().as_raw() != guard {
        return fail("the guard is gone");
    }
    let child = match Command::new(program).args(&args[3..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(&format!("cannot start {}: {e}", program.to_string_lossy()));
        }
    };
    let shell = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // Waited for with `waitpid` below, which reaps the orphans that come to
    // the keeper too; the handle itself is not needed.
    drop(child);
    let shell_fd = pidfd_open(shell);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == shell => {
                return ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == shell => return die_of(sig),
            // An orphan reaped: look again at once, more may be waiting.
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => continue,
            Ok(_) | Err(Errno::ECHILD) => {}
            Err(e) => return fail(&format!("the keeper cannot wait for the command: {e}")),
        }
        if getppid().as_raw() != guard {
            // The guard is gone, and with it the timeout and the sweep:
            // nothing of the command may outlive it.
            Reaper::everything().kill_all();
            return ExitCode::from(137);
        }
        wait_for_either(guard_fd.as_ref(), shell_fd.as_ref());
    }
}

/// A pidfd for `pid`, if this kernel has them (Linux 5.3 and later).
fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.as_raw())?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

/// Sleeps until the guard or the command ends, or `REAP` passes (orphans
/// that ended meanwhile are reaped then, so a long command that leaves
/// many does not fill the process table with zombies). With pidfds the
/// command's end is seen at once, so a short command pays nothing for
/// its keeper; without them, the keeper looks every `WATCH`.
fn wait_for_either(guard: Option<&OwnedFd>, shell: Option<&OwnedFd>) {
    let (Some(guard), Some(shell)) = (guard, shell) else {
        std::thread::sleep(WATCH);
        return;
    };
    let mut fds = [
        PollFd::new(guard, PollFlags::IN),
        PollFd::new(shell, PollFlags::IN),
    ];
    let reap = Timespec {
        tv_sec: REAP.as_secs().try_into().unwrap_or(1),
        tv_nsec: 0,
    };
    // Woken early or interrupted, the loop looks again either way.
    let _ = poll(&mut fds, Some(&reap));
}

/// Ends the keeper by the signal that ended the command, so the guard sees
/// what it would have seen without a keeper.
fn die_of(sig: Signal) -> ExitCode {
    // Default action for the signal (the Rust runtime ignores SIGPIPE, so
    // raising alone would not do).
    let _ = signal_hook::low_level::emulate_default_handler(sig as i32);
    // A signal whose default is not to end a process ends the keeper by
    // the shell's convention.
    ExitCode::from(u8::try_from(128 + sig as i32).unwrap_or(u8::MAX))
}
