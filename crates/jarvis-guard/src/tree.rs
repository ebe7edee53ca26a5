//! Finding and killing every process a command left behind.
//!
//! A process group is not enough: `setsid`, `nohup … &` and double forks
//! leave it. The guard is therefore a child subreaper, so every orphan of
//! the command is re-parented to the guard instead of init, and the tree
//! below the guard's pid in `/proc` is exactly what the command started.
//! Killing is repeated until that tree is empty, because a process can fork
//! between one scan and the next.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// One process below the guard.
struct Proc {
    pid: i32,
    zombie: bool,
}

/// Every process below `root`, read from `/proc`.
fn descendants(root: i32) -> Vec<Proc> {
    let mut parent_of: HashMap<i32, (i32, bool)> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may itself hold spaces and parens.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().unwrap_or("");
        let Some(ppid) = fields.next().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        parent_of.insert(pid, (ppid, state == "Z" || state == "X"));
    }
    let mut below: HashSet<i32> = HashSet::from([root]);
    // Walk until no new process joins; the table is small.
    loop {
        let before = below.len();
        for (&pid, &(ppid, _)) in &parent_of {
            if below.contains(&ppid) {
                below.insert(pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    below.remove(&root);
    below
        .into_iter()
        .map(|pid| Proc {
            pid,
            zombie: parent_of.get(&pid).is_some_and(|&(_, z)| z),
        })
        .collect()
}

/// Kills everything below the calling process (the guard, or a keeper
/// whose guard died) and reaps what it can.
///
/// `shell` is the caller's own child, which `std::process::Child` reaps;
/// reaping it here would take its exit status away. Under the guard that
/// child is the command's keeper, which is not signalled (it ends as soon
/// as the command's shell does, passing on how it ended) unless it
/// outlives everything else.
#[derive(Debug)]
pub struct Reaper {
    me: i32,
    shell: Option<i32>,
    signalled: HashSet<i32>,
}

impl Reaper {
    pub fn new(shell: u32) -> Reaper {
        Reaper {
            me: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            shell: i32::try_from(shell).ok(),
            signalled: HashSet::new(),
        }
    }

    /// A reaper that spares nothing below the caller: a keeper's, once its
    /// guard is gone.
    pub fn everything() -> Reaper {
        Reaper {
            me: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            shell: None,
            signalled: HashSet::new(),
        }
    }

    /// How many distinct processes were still alive and got a signal.
    pub fn killed(&self) -> u32 {
        u32::try_from(self.signalled.len()).unwrap_or(u32::MAX)
    }

    /// Whether anything below the guard is still alive.
    pub fn any_alive(&self) -> bool {
        descendants(self.me).iter().any(|p| !p.zombie)
    }

    /// Sends `signal` to every live process below the guard, once per scan.
    fn signal_all(&mut self, signal: Signal) -> usize {
        let mut hit = 0;
        for p in descendants(self.me) {
            if p.zombie {
                self.reap(p.pid);
                continue;
            }
            if Some(p.pid) == self.shell {
                continue;
            }
            if kill(Pid::from_raw(p.pid), signal).is_ok() {
                self.signalled.insert(p.pid);
                hit += 1;
            }
        }
        hit
    }

    fn reap(&self, pid: i32) {
        if Some(pid) != self.shell {
            // Not our child (yet) is fine: its parent dies in this sweep and
            // it comes to us, to be reaped on a later pass.
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }

    /// Asks politely (SIGTERM), waits up to `grace`, then kills.
    pub fn terminate(&mut self, grace: Duration) {
        if self.signal_all(Signal::SIGTERM) == 0 {
            return;
        }
        let until = Instant::now() + grace;
        while Instant::now() < until && self.any_alive() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_all();
    }

    /// SIGKILLs until nothing below the guard is alive (bounded, so a
    /// process the guard cannot kill cannot hang it forever).
    pub fn kill_all(&mut self) {
        for _ in 0..200 {
            if self.signal_all(Signal::SIGKILL) == 0 && !self.any_alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // A keeper (or shell) still there once all below it is gone
        // (stopped, or ignoring its end) is not waited for.
        if let Some(shell) = self.shell
            && self.any_alive()
        {
            let _ = kill(Pid::from_raw(shell), Signal::SIGKILL);
        }
        for p in descendants(self.me) {
            if p.zombie {
                self.reap(p.pid);
            }
        }
    }
}
