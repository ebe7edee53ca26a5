//! The command dies with its guard (issue 17, item 4): `kill -9` of the
//! guard on the host mid-run leaves nothing of the command running (its
//! shell, a background job, an orphaned double fork), long before the
//! command's own timeout, and the action is recorded as what it was: a run
//! whose link was lost.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jarvis_tests::exec_faults::{Proc, process, processes};
use jarvis_tests::{Env, sandbox};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The action a command's process runs for, from its environment.
fn action_of(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"JARVIS_ACTION_ID="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The guard process `p` runs under: the nearest ancestor named
/// `jarvis-guard` (the keeper and the confine child run as `exe`).
fn guard_of(p: &Proc) -> Option<Proc> {
    let mut at = process(p.ppid)?;
    for _ in 0..16 {
        if at.comm == "jarvis-guard" {
            return Some(at);
        }
        at = process(at.ppid)?;
    }
    None
}

#[test]
fn killing_the_guard_mid_run_kills_the_whole_command() {
    let env = Env::new("faults-guard-kill", "", "");
    // A number no other test's sleep uses, so what is left can be told.
    let u = std::process::id() % 100_000;
    let mark = |n: u32| format!("sleep {n}.{u:05}");
    let command = format!("({} &); {} & {}", mark(42), mark(41), mark(40));
    // Built (once) before the clock starts.
    let jarvis = jarvis_tests::jarvis_bin();
    let started = Instant::now();
    let config = env.config.to_str().expect("utf-8").to_owned();
    // A line the policy lets run alone (backgrounded sleeps are harmless).
    let run = Command::new(jarvis)
        .args([
            "--config",
            &config,
            "run",
            "--host",
            "sandbox",
            "--timeout",
            "10",
            "--",
        ])
        .arg(&command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jarvis run starts");

    // Wait until all three sleeps run on the host.
    let pattern = format!(".{u:05}");
    let running = loop {
        let found: Vec<Proc> = processes(&pattern)
            .into_iter()
            .filter(|p| p.cmdline.starts_with("sleep 4"))
            .collect();
        if found.len() == 3 {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the command never started: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let main = running
        .iter()
        .find(|p| p.cmdline == mark(40))
        .expect("the foreground sleep");
    let guard = guard_of(main).expect("the command runs under a guard");
    let id = action_of(main.pid).expect("the command knows its action");
    let kill = Command::new("kill")
        .args(["-9", &guard.pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let killed = Instant::now();

    // Nothing of it is left, and long before its 10 s timeout: the kernel
    // kills the shell with its keeper's death, and the keeper kills the
    // rest (the background job, the orphan of the subshell).
    loop {
        let left = processes(&pattern)
            .into_iter()
            .filter(|p| p.cmdline.starts_with("sleep 4"))
            .collect::<Vec<_>>();
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "still running {:?} after the guard was killed: {left:?}",
            killed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone_after = killed.elapsed();

    let out = run.wait_with_output().expect("jarvis run ends");
    assert!(!out.status.success(), "{}", text(&out.stderr));
    // After the timeout would have struck, still nothing.
    let until = started + Duration::from_secs(11);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    assert!(
        processes(&pattern)
            .iter()
            .all(|p| !p.cmdline.starts_with("sleep 4")),
        "something came back"
    );

    // Recorded honestly: it started on the host (the guard logged it), and
    // the gateway lost the link mid-run, so it may have run.
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "failed", "{show:#}");
    assert_eq!(show["run"]["ending"], "lost", "{show:#}");
    let logged = sandbox().guard_log_lines(&id);
    assert!(
        logged.iter().any(|l| l["result"] == "started"),
        "the guard logged the start: {logged:?}"
    );
    eprintln!("the command was gone {gone_after:?} after its guard was killed");
}
