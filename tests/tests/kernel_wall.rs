//! The three walls on the real sandbox host, through the `jarvis` binary:
//! the line runs with the shell the policy judged it as, and the kernel
//! holds a command to what the analysis found even where the judgement was
//! wrong. The sandbox installs `jarvis-probe` for that: a program the test
//! policy's knowledge base wrongly calls read-only, which writes, executes
//! another program or connects when asked.

use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use jarvis_tests::{Env, marker, sandbox, workspace};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// An environment whose policy is the shipped one plus a knowledge-base
/// entry that is wrong on purpose: `jarvis-probe` is declared read-only and
/// allowed, so the gateway runs it unattended.
fn env_with_probe(tag: &str) -> Env {
    let env = Env::new(tag, "", "").with_nokernel();
    let policy = env.dir().join("probe.toml");
    std::fs::write(
        &policy,
        "[program.jarvis-probe]\nfamily = \"test\"\neffects = [\"read\"]\n\
         why = \"prints what it is asked to (wrongly believed read-only)\"\n\n\
         [[rule]]\nid = \"test-probe\"\ndecision = \"allow\"\ncommand = [\"jarvis-probe\"]\n\
         reason = \"a read-only probe (so this test's policy says)\"\n",
    )
    .expect("write policy");
    let mut config = std::fs::read_to_string(&env.config).expect("config");
    config.push_str(&format!(
        "\n[policy]\npaths = [\"{}\", \"{}\"]\n",
        workspace().join("policies").display(),
        policy.display()
    ));
    std::fs::write(&env.config, config).expect("config");
    env
}

fn run(env: &Env, host: &str, line: &str) -> Output {
    env.jarvis(&["run", "--host", host, "--", line])
}

#[test]
fn ansi_c_quoting_hides_no_command_from_the_policy() {
    let env = Env::new("dialect", "", "");
    let mark = format!("/tmp/{}", marker("dialect-mark"));
    let line = format!("echo $'\\' ; touch {mark} ; #'");
    let out = run(&env, "sandbox", &line);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("' ; touch {mark} ; #\n"));
    assert!(!std::path::Path::new(&mark).exists());
}

#[test]
fn a_wrongly_judged_read_cannot_write_exec_or_connect() {
    let env = env_with_probe("probe");
    let target = format!("/tmp/{}", marker("probe-write"));
    let out = run(&env, "sandbox", &format!("jarvis-probe write {target}"));
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("kernel: read-only"),
        "{}",
        text(&out.stderr)
    );
    assert!(!std::path::Path::new(&target).exists());

    let out = run(&env, "sandbox", "jarvis-probe exec");
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("ran-id"));

    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let out = run(&env, "sandbox", &format!("jarvis-probe connect {port}"));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("connected"));
    assert!(listener.accept().is_err(), "a connection got through");

    // On the same host without the wall (its owner chose best-effort), the
    // same probe does it: the refusals above were the kernel's.
    env.set_enforcement("sandbox-nokernel", "best-effort");
    let out = run(
        &env,
        "sandbox-nokernel",
        &format!("jarvis-probe connect {port}"),
    );
    assert!(
        text(&out.stdout).contains("connected"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_approved_write_lands_in_its_repository_and_nowhere_else() {
    let env = Env::new("approved-scope", "", "");
    let m = marker("scope");
    // Beside the demo repository, owned by the guard's user, and in none of
    // the host's grants for approved actions (home, /tmp, /var/tmp).
    let repo = format!("/srv/jarvis-demo/{m}-repo");
    let outside = format!("/srv/jarvis-demo/{m}-other");
    for dir in [&repo, &outside] {
        std::fs::create_dir(dir).expect("mkdir");
    }
    let sh = |script: &str| {
        let ok = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .expect("sh")
            .success();
        assert!(ok, "{script}");
    };
    sh(&format!(
        "git -C {repo} init -q && chown -R jarvis:jarvis {repo} {outside}"
    ));
    // The person sees the repository named; the other directory is reached
    // through a variable, which they could not have approved.
    let line = format!("cd {repo} && echo ok > f.txt; D={outside}; echo no > $D/f; echo done");
    let err = run_or_approve(&env, &line);
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(
        std::fs::read_to_string(format!("{repo}/f.txt")).expect("written"),
        "ok\n"
    );
    assert!(!std::path::Path::new(&format!("{outside}/f")).exists());
    sh(&format!("rm -rf {repo} {outside}"));
}

/// Runs `line` on `sandbox`, approving it first if it waits for a person;
/// the stderr of whichever command ran it.
fn run_or_approve(env: &Env, line: &str) -> String {
    let out = run(env, "sandbox", line);
    if code(&out) != 3 {
        return text(&out.stderr);
    }
    let id = jarvis_tests::action_id(&text(&out.stderr));
    let approved = env.jarvis(&["approve", &id, "--reason", "test"]);
    format!("{}{}", text(&out.stderr), text(&approved.stderr))
}

#[test]
fn a_command_cannot_kill_its_guard_and_the_timeout_still_takes_its_tree() {
    let env = Env::new("kill-guard", "default_timeout_secs = 3", "");
    let m = marker("kill-guard");
    let late = format!("/tmp/{m}");
    // Whatever the policy makes of it, only the kernel stands between the
    // command and its guard once it runs.
    let line = format!("(sleep 4; echo {m} > {late}) & kill -9 $PPID; echo {m}");
    let err = run_or_approve(&env, &line);
    assert!(err.contains("Operation not permitted"), "{err}");
    let id = jarvis_tests::action_id(&err);
    std::thread::sleep(Duration::from_secs(5));
    assert!(!std::path::Path::new(&late).exists());
    let logged = sandbox().guard_log_lines(&id);
    let started = logged.iter().position(|e| e["result"] == "started");
    let ran = logged.iter().position(|e| e["result"] == "ran");
    assert!(
        matches!((started, ran), (Some(s), Some(r)) if s < r),
        "{logged:?}"
    );

    let started = Instant::now();
    let err = run_or_approve(&env, &format!("sleep 60 & sleep 61 & echo {m}-t; sleep 62"));
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let left = std::process::Command::new("pgrep")
        .args(["-u", "jarvis", "-f", "^sleep 6[012]$"])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        text(&left.stdout)
    );
}

/// What one framed run request got from the guard behind `identity`.
struct GuardRun {
    exit: Option<i32>,
    stdout: String,
    stderr: String,
    kernel: Option<String>,
}

/// Sends `line` to the sandbox's guard over ssh with `identity`, whose
/// forced command decides whether the kernel wall is on.
fn guard_run(identity: &std::path::Path, control: &std::path::Path, line: &str) -> GuardRun {
    use jarvis_exec::protocol::{Frame, FrameDecoder, Request, RunRequest};
    let sb = sandbox();
    let request = Request::Run(RunRequest {
        action_id: "0193aaaa-0000-7000-8000-0000000be419"
            .parse()
            .expect("a UUID v7"),
        command: line.into(),
        cwd: None,
        timeout_ms: 60_000,
        output_cap: 1 << 20,
        approved: false,
        scope: Vec::new(),
    })
    .encode();
    let out = sb.ssh_through(identity, control, &request);
    let mut dec = FrameDecoder::new();
    dec.push(&out.stdout);
    let mut run = GuardRun {
        exit: None,
        stdout: String::new(),
        stderr: String::new(),
        kernel: None,
    };
    let (mut o, mut e) = (Vec::new(), Vec::new());
    while let Ok(Some(frame)) = dec.next_frame() {
        match frame {
            Frame::Stdout(b) => o.extend(b),
            Frame::Stderr(b) => e.extend(b),
            Frame::Done(outcome) => {
                run.exit = outcome.exit_code;
                run.kernel = outcome.kernel;
            }
            Frame::Refused(r) => e.extend(format!("refused: {r:?}").into_bytes()),
            Frame::Hello(_)
            | Frame::Heartbeat
            | Frame::Checked(_)
            | Frame::Kernel(_)
            | Frame::Snapshotted(_)
            | Frame::Restored(_)
            | Frame::Previewed(_)
            | Frame::Dropped(_)
            | Frame::Account(_) => {}
        }
    }
    run.stdout = text(&o);
    run.stderr = text(&e);
    run
}

/// Each everyday read of tests/data/benign-readonly.txt gives the same
/// answer under the kernel wall as without it, on the sandbox through sshd
/// and its guard (the policy allowing each one unattended is
/// crates/jarvis-policy's benign test). A command whose output changes
/// from one run to the next (times, process lists) must match in exit
/// status and must not be refused anything it was not refused without the
/// wall.
#[test]
fn the_kernel_wall_costs_no_everyday_read() {
    let list = std::fs::read_to_string(workspace().join("tests/data/benign-readonly.txt"))
        .expect("benign list");
    let lines: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(lines.len() >= 100, "only {} benign commands", lines.len());
    // Two workers, each with its own pair of masters: the time is spent
    // waiting on ssh and the guard, not computing.
    let first: Vec<&str> = std::thread::scope(|scope| {
        let halves: Vec<_> = lines
            .chunks(lines.len().div_ceil(2))
            .enumerate()
            .map(|(i, chunk)| scope.spawn(move || compare_with_and_without_the_wall(i, chunk)))
            .collect();
        halves
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .map(|(line, _)| line)
            .collect()
    });
    // The tests beside this one change what the host reports while they
    // run (containers, counters); a line the wall really changes differs
    // again once they are done.
    let differ: Vec<String> = compare_with_and_without_the_wall(2, &first)
        .into_iter()
        .map(|(_, why)| why)
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} differ:\n{}",
        differ.len(),
        lines.len(),
        differ.join("\n")
    );
}

/// The lines of `lines` whose answer under the wall differs from the one
/// without it, each with how. Each runs without the wall, then with it, and, when the two
/// differ, without it again: if the walled answer matches either, it is the
/// same; if the runs on either side agree, the output is stable and the
/// walled one should have matched; if they do not, it changes by itself
/// (times, process lists), and only the exit status and no new refusal
/// count.
fn compare_with_and_without_the_wall<'a>(
    worker: usize,
    lines: &[&'a str],
) -> Vec<(&'a str, String)> {
    let sb = sandbox();
    let dir = jarvis_tests::TempDir::new(&format!("benign{worker}"));
    let walled_master = dir.path().join("walled");
    let open_master = dir.path().join("open");
    let denial = |s: &str| s.contains("Permission denied") || s.contains("Operation not permitted");
    let mut differ = Vec::new();
    'line: for line in lines {
        let mut last = String::new();
        // Other tests run beside this one and move system-wide counters
        // (inodes, Docker's goroutines); a difference must hold in three
        // rounds to count.
        for _ in 0..3 {
            let open_a = guard_run(&sb.identity_nokernel, &open_master, line);
            let walled = guard_run(&sb.identity, &walled_master, line);
            if !walled
                .kernel
                .as_deref()
                .is_some_and(|k| k.contains("read-only"))
            {
                differ.push((
                    *line,
                    format!(
                        "`{line}` did not run under the wall: {:?} {}",
                        walled.kernel, walled.stderr
                    ),
                ));
                continue 'line;
            }
            if open_a.exit == walled.exit && open_a.stdout == walled.stdout {
                continue 'line;
            }
            let open_b = guard_run(&sb.identity_nokernel, &open_master, line);
            if open_b.exit == walled.exit && open_b.stdout == walled.stdout {
                continue 'line;
            }
            let stable = open_a.stdout == open_b.stdout && open_a.exit == open_b.exit;
            let refused_more = denial(&walled.stderr) && !denial(&open_a.stderr);
            if !stable && open_a.exit == walled.exit && !refused_more {
                continue 'line;
            }
            last = format!(
                "`{line}`: without the wall exit {:?}, with it exit {:?}; first differing line: {}; stderr with it {:?}",
                open_a.exit,
                walled.exit,
                first_difference(&open_a.stdout, &walled.stdout),
                walled.stderr.chars().take(400).collect::<String>(),
            );
        }
        differ.push((*line, last));
    }
    for master in [&walled_master, &open_master] {
        let _ = std::process::Command::new("ssh")
            .arg("-o")
            .arg(format!("ControlPath={}", master.display()))
            .args(["-O", "exit", "jarvis@127.0.0.1"])
            .output();
    }
    differ
}

/// Where two outputs part, line by line, so a failure shows the
/// difference rather than a shared prefix.
fn first_difference(open: &str, walled: &str) -> String {
    let (mut a, mut b) = (open.lines(), walled.lines());
    let mut number = 1;
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => number += 1,
            (None, None) => return "none (the outputs differ only in line endings)".into(),
            (x, y) => return format!("line {number}: without {x:?}, with {y:?}"),
        }
    }
}

/// Under the wall an action nobody approved writes nothing, so a policy
/// that would let a write run alone has it wait for a person instead of
/// failing on the host.
#[test]
fn a_write_the_policy_would_allow_alone_waits_for_a_person() {
    let env = Env::new("write-waits", "", "");
    let policy = env.dir().join("lenient.toml");
    std::fs::write(
        &policy,
        "[defaults]\nauto_allow_max_risk = 100\n\n\
         [[rule]]\nid = \"test-touch\"\ndecision = \"allow\"\ncommand = [\"touch\"]\n\
         reason = \"this test's policy lets touch run alone\"\n",
    )
    .expect("write policy");
    let mut config = std::fs::read_to_string(&env.config).expect("config");
    config.push_str(&format!("\n[policy]\npaths = [\"{}\"]\n", policy.display()));
    std::fs::write(&env.config, config).expect("config");
    let target = format!("/tmp/{}", marker("write-waits"));
    let out = run(&env, "sandbox", &format!("touch {target}"));
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(
        err.contains("the kernel wall lets an action write only"),
        "{err}"
    );
    assert!(!std::path::Path::new(&target).exists());
    let id = jarvis_tests::action_id(&err);
    let approved = env.jarvis(&["approve", &id, "--reason", "test"]);
    assert_eq!(code(&approved), 0, "{}", text(&approved.stderr));
    assert!(std::path::Path::new(&target).exists());
    let _ = std::fs::remove_file(&target);
}

/// An edit names a file, not a way to one: a symbolic link anywhere on the
/// path is refused on the host, and the file it leads to is not touched.
#[test]
fn an_edit_through_a_linked_directory_is_refused() {
    let env = Env::new("edit-link", "", "");
    let m = marker("edit-link");
    let real = format!("/srv/jarvis-demo/{m}-real");
    let link = format!("/srv/jarvis-demo/{m}-link");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::write(format!("{real}/app.conf"), "port = 80\n").expect("write");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let ok = std::process::Command::new("chown")
        .args(["-R", "jarvis:jarvis", &real])
        .status()
        .expect("chown")
        .success();
    assert!(ok);
    let content = env.dir().join("new.conf");
    std::fs::write(&content, "port = 9090\n").expect("write");
    let out = env.jarvis(&[
        "edit",
        "--host",
        "sandbox",
        "--content",
        content.to_str().expect("utf-8"),
        &format!("{link}/app.conf"),
    ]);
    let mut err = text(&out.stderr);
    if code(&out) == 3 {
        let id = jarvis_tests::action_id(&err);
        err.push_str(&text(
            &env.jarvis(&["approve", &id, "--reason", "test"]).stderr,
        ));
    }
    assert!(err.contains("link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(format!("{real}/app.conf")).expect("read"),
        "port = 80\n"
    );
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_dir_all(&real);
}
