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

/// Every process below `root`.
fn descendants(root: i32) -> Vec<Proc> {
    match walk_children(root) {
        Some(below) => below,
        None => scan_all(root),
    }
}

/// The tree below `root`, from each thread's `children` list in `/proc`:
/// a few reads per process in the tree, where [`scan_all`] reads every
/// process on the host (on a busy host, milliseconds per pass, and the
/// guard makes several passes per command). `None` when the kernel keeps
/// no such list (it needs `CONFIG_PROC_CHILDREN`).
///
/// A list read while processes come and go can miss one, as a scan can;
/// the callers repeat until a pass finds nothing.
fn walk_children(root: i32) -> Option<Vec<Proc>> {
    let own = std::fs::read_to_string(format!("/proc/{root}/task/{root}/children"));
    if own
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return None;
    }
    let mut seen = HashSet::from([root]);
    let mut below = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        // Children are listed by the thread that forked them.
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in list
                .split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok())
            {
                if seen.insert(child) {
                    queue.push(child);
                    below.push(child);
                }
            }
        }
    }
    Some(
        below
            .into_iter()
            .map(|pid| Proc {
                pid,
                zombie: stat_of(pid).is_some_and(|(_, zombie)| zombie),
            })
            .collect(),
    )
}

/// A process's parent and whether it is a zombie, from `/proc/PID/stat`.
fn stat_of(pid: i32) -> Option<(i32, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may itself hold spaces and parens.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("");
    let ppid = fields.next()?.parse::<i32>().ok()?;
    Some((ppid, state == "Z" || state == "X"))
}

/// Every process below `root`, from every process's parent in `/proc`.
fn scan_all(root: i32) -> Vec<Proc> {
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
        if let Some(stat) = stat_of(pid) {
            parent_of.insert(pid, stat);
        }
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

    /// Sends `signal` to every live process below the guard, once per scan:
    /// how many it hit, and whether the scan found anything alive (the
    /// spared shell too).
    fn signal_all(&mut self, signal: Signal) -> (usize, bool) {
        let mut hit = 0;
        let mut alive = false;
        for p in descendants(self.me) {
            if p.zombie {
                self.reap(p.pid);
                continue;
            }
            alive = true;
            if Some(p.pid) == self.shell {
                continue;
            }
            if kill(Pid::from_raw(p.pid), signal).is_ok() {
                self.signalled.insert(p.pid);
                hit += 1;
            }
        }
        (hit, alive)
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
        if self.signal_all(Signal::SIGTERM).0 == 0 {
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
            // A scan that found nothing alive has also reaped what it saw,
            // and nothing is left that could start another process: one
            // look is enough (the sweep of every command ends here).
            if self.signal_all(Signal::SIGKILL) == (0, false) {
                return;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pids(mut procs: Vec<Proc>) -> Vec<i32> {
        procs.sort_by_key(|p| p.pid);
        procs.into_iter().map(|p| p.pid).collect()
    }

    #[test]
    fn the_children_walk_finds_what_a_full_scan_finds() {
        // A shell with two sleepers, one of them a grandchild. Only its own
        // tree is looked at and killed: other tests of this binary run
        // processes of their own meanwhile.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & (sleep 30 & wait) & wait"])
            .spawn()
            .expect("sh starts");
        let shell = i32::try_from(child.id()).expect("pid fits");
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut walked = Vec::new();
        while Instant::now() < deadline {
            walked = pids(walk_children(shell).expect("this kernel lists children"));
            if walked.len() >= 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let scanned = pids(scan_all(shell));
        let from_me = pids(walk_children(me).expect("this kernel lists children"));
        for pid in walked.iter().chain([&shell]) {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let _ = child.wait();
        assert_eq!(walked.len(), 3, "subshell and two sleepers: {walked:?}");
        assert_eq!(walked, scanned);
        assert!(from_me.contains(&shell), "{from_me:?}");
        assert!(walked.iter().all(|p| from_me.contains(p)), "{from_me:?}");
    }
}
