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
//!   left, then exits;
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
use std::process::{Command, ExitCode};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getppid};

use crate::tree::Reaper;

/// The first argument that makes the guard binary a keeper.
pub const KEEP_ARG: &str = "keep";

/// How often the keeper looks whether its guard is still there: the most a
/// command outlives a killed guard by.
const WATCH: Duration = Duration::from_millis(50);

/// The command that runs `cmd`'s program and arguments under a keeper
/// watching this guard. Only the program and arguments are carried over:
/// the caller sets the environment, directory, process group and pipes on
/// the result, and the keeper passes them on.
pub fn wrap(cmd: &Command) -> Command {
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
    let fail = |why: &str| {
        eprintln!("jarvis-guard: {why}, so nothing ran");
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
    let child = match Command::new(program).args(&args[3..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            return fail(&format!("cannot start {}: {e}", program.to_string_lossy()));
        }
    };
    let shell = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // Waited for with `waitpid(-1)` below, which reaps the orphans that
    // come to the keeper too; the handle itself is not needed.
    drop(child);
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
        std::thread::sleep(WATCH);
    }
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
