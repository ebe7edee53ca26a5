//! The guard binary as sshd starts it (a forced command with the request in
//! `SSH_ORIGINAL_COMMAND`), without sshd: the shell it runs, its log, and
//! the kernel wall around each command. These need a kernel with Landlock
//! (ABI 6 or later), which the project's machines have; on one without, the
//! tests fail and say so rather than pass without checking anything.
//!
//! The sandbox end-to-end tests (tests/tests/kernel_wall.rs) check the same
//! through sshd and the gateway.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jarvis_exec::protocol::{
    CheckReport, Ending, EnforcementLevel, Frame, FrameDecoder, Outcome, Request, RunRequest,
};

const GUARD: &str = env!("CARGO_BIN_EXE_jarvis-guard");

/// A host: its policy, log and state in a temporary directory.
struct Host {
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

/// What the guard answered.
#[derive(Debug)]
struct Answer {
    stdout: String,
    stderr: String,
    /// `None` when the guard died without a last word.
    end: Option<Frame>,
}

impl Answer {
    fn outcome(&self) -> &Outcome {
        match &self.end {
            Some(Frame::Done(o)) => o,
            other => panic!("expected a run, got {other:?} (stderr: {})", self.stderr),
        }
    }
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("policy.toml"),
            "[defaults]\ndecision = \"approve\"\n",
        )
        .expect("policy");
        Host {
            dir,
            extra: Vec::new(),
        }
    }

    fn with(mut self, args: &[&str]) -> Host {
        self.extra.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("guard.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log lines are JSON"))
            .collect()
    }

    fn send(&self, request: &Request, env: &[(&str, &str)]) -> Answer {
        let mut cmd = Command::new(GUARD);
        cmd.arg("--policy")
            .arg(self.path("policy.toml"))
            .arg("--log")
            .arg(self.path("guard.log"))
            .arg("--state")
            .arg(self.path("state"))
            .args(&self.extra)
            .env("SSH_ORIGINAL_COMMAND", request.encode())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().expect("guard runs");
        let mut dec = FrameDecoder::new();
        dec.push(&out.stdout);
        let (mut stdout, mut stderr, mut end) = (Vec::new(), Vec::new(), None);
        while let Some(frame) = dec.next_frame().expect("well-formed frames") {
            match frame {
                Frame::Stdout(b) => stdout.extend(b),
                Frame::Stderr(b) => stderr.extend(b),
                Frame::Hello(_) | Frame::Heartbeat => {}
                other @ (Frame::Done(_)
                | Frame::Checked(_)
                | Frame::Kernel(_)
                | Frame::Refused(_)
                | Frame::Snapshotted(_)
                | Frame::Restored(_)
                | Frame::Previewed(_)
                | Frame::Dropped(_)
                | Frame::Account(_)) => end = Some(other),
            }
        }
        stderr.extend(&out.stderr);
        Answer {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            end,
        }
    }

    fn run(&self, command: &str) -> Answer {
        self.run_as(command, false, &[], None)
    }

    fn run_as(&self, command: &str, approved: bool, scope: &[&Path], cwd: Option<&Path>) -> Answer {
        self.send(
            &Request::Run(RunRequest {
                action_id: "0193aaaa-0000-7000-8000-00000000c0de"
                    .parse()
                    .expect("a UUID v7"),
                command: command.into(),
                cwd: cwd.map(|c| c.display().to_string()),
                timeout_ms: 20_000,
                output_cap: 1 << 20,
                approved,
                scope: scope.iter().map(|p| p.display().to_string()).collect(),
            }),
            &[],
        )
    }

    fn check(&self) -> CheckReport {
        match self.send(&Request::Check, &[]).end {
            Some(Frame::Checked(r)) => r,
            other => panic!("expected a check report, got {other:?}"),
        }
    }
}

/// A program no knowledge base knows, that does what its first argument
/// says: the stand-in for a tool the analysis believes is read-only.
fn probe(dir: &Path) -> PathBuf {
    let path = dir.join("probe");
    std::fs::write(
        &path,
        "#!/bin/bash\ncase $1 in\n\
         write) echo written > \"$2\" && echo wrote ;;\n\
         exec) /usr/bin/id -u && echo ran-id ;;\n\
         connect) exec 3<>\"/dev/tcp/127.0.0.1/$2\" && echo connected ;;\n\
         esac\n",
    )
    .expect("probe");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn the_kernel_wall_is_there_on_this_host_and_off_when_the_host_says_so() {
    let report = Host::new().check();
    assert_eq!(
        report.enforcement.level,
        EnforcementLevel::Full,
        "this machine's kernel should enforce the whole wall: {:?}",
        report.enforcement
    );
    assert!(report.enforcement.landlock_abi.unwrap_or(0) >= 6);
    assert!(report.bash.as_deref().unwrap_or("").contains("bash"));
    let off = Host::new().with(&["--kernel", "off"]).check();
    assert_eq!(off.enforcement.level, EnforcementLevel::None);
    assert!(off.enforcement.describe().contains("--kernel off"));
}

#[test]
fn bash_runs_the_line_so_ansi_c_quoting_hides_nothing() {
    // The policy reads `$'\' ; touch MARK ; #'` as one echo; dash would have
    // run `touch`. With the wall off too, to show the shell alone closes it.
    for host in [Host::new(), Host::new().with(&["--kernel", "off"])] {
        let mark = host.path("MARK");
        let answer = host.run(&format!("echo $'\\' ; touch {} ; #'", mark.display()));
        assert_eq!(answer.outcome().exit_code, Some(0), "{answer:?}");
        assert_eq!(answer.stdout, format!("' ; touch {} ; #\n", mark.display()));
        assert!(!mark.exists());
    }
}

#[test]
fn the_guard_s_environment_does_not_reach_bash() {
    let host = Host::new().with(&["--kernel", "off"]);
    let evil = host.path("evil.sh");
    let mark = host.path("sourced");
    std::fs::write(&evil, format!("touch {}\n", mark.display())).expect("write");
    let req = Request::Run(RunRequest {
        action_id: "0193aaaa-0000-7000-8000-00000000c0de"
            .parse()
            .expect("a UUID v7"),
        command: "echo $SHELLOPTS; shopt -q extglob && echo extglob".into(),
        cwd: None,
        timeout_ms: 10_000,
        output_cap: 1 << 20,
        approved: false,
        scope: Vec::new(),
    });
    let evil = evil.display().to_string();
    let answer = host.send(
        &req,
        &[
            ("BASH_ENV", &evil),
            ("ENV", &evil),
            ("SHELLOPTS", "xtrace"),
            ("BASHOPTS", "extglob"),
        ],
    );
    assert_eq!(answer.outcome().exit_code, Some(1), "{answer:?}");
    assert!(!answer.stdout.contains("xtrace"), "{answer:?}");
    assert!(!answer.stderr.contains("+ echo"), "{answer:?}");
    assert!(!mark.exists(), "BASH_ENV was sourced");
}

#[test]
fn an_unattended_command_writes_nothing_even_where_the_line_says() {
    let host = Host::new();
    let target = host.path("target");
    std::fs::create_dir(&target).expect("mkdir");
    let file = target.join("f");
    let answer = host.run(&format!("echo hi > {0}; touch {0}.2", file.display()));
    let out = answer.outcome();
    assert_ne!(out.exit_code, Some(0));
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert!(
        out.kernel.as_deref().unwrap_or("").contains("read-only"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&target).expect("dir").count(), 0);
}

#[test]
fn a_tool_wrongly_believed_read_only_cannot_write_exec_or_connect() {
    let host = Host::new();
    let probe = probe(host.dir.path());
    let outside = host.path("outside");
    let answer = host.run(&format!("{} write {}", probe.display(), outside.display()));
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert!(!answer.stdout.contains("wrote"));
    assert!(!outside.exists());

    let answer = host.run(&format!("{} exec", probe.display()));
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert!(!answer.stdout.contains("ran-id"));

    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let answer = host.run(&format!("{} connect {port}", probe.display()));
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert!(!answer.stdout.contains("connected"));
    assert!(listener.accept().is_err(), "a connection got through");

    // The same probe on a host without the wall does all three, so the
    // refusals above are the kernel's.
    let open = Host::new().with(&["--kernel", "off"]);
    let answer = open.run(&format!("{} connect {port}", probe.display()));
    assert!(answer.stdout.contains("connected"), "{answer:?}");
    let answer = open.run(&format!("{} write {}", probe.display(), outside.display()));
    assert!(answer.stdout.contains("wrote"), "{answer:?}");
}

#[test]
fn udp_and_raw_sockets_need_a_network_effect() {
    let host = Host::new();
    let answer = host.run(
        "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)' \
         2>&1 | tail -1",
    );
    assert!(answer.stdout.contains("Permission denied"), "{answer:?}");
    let answer = host.run("python3 -c 'import socket; socket.socket(socket.AF_UNIX)' && echo ok");
    assert!(answer.stdout.contains("ok"), "{answer:?}");
}

#[test]
fn an_approved_command_writes_its_scope_and_nothing_else() {
    let host = Host::new().with(&["--approved-writes", "/nonexistent-grant"]);
    let repo = host.path("repo");
    let elsewhere = host.path("elsewhere");
    std::fs::create_dir(&repo).expect("mkdir");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let answer = host.run_as(
        &format!("echo new > {}/f && echo ok", repo.display()),
        true,
        &[&repo],
        Some(host.dir.path()),
    );
    assert!(answer.stdout.contains("ok"), "{answer:?}");
    assert_eq!(std::fs::read_to_string(repo.join("f")).expect("f"), "new\n");
    // `elsewhere` is neither in the scope nor named by the line as written
    // (the analysis sees `$D`), nor the working directory.
    let answer = host.run_as(
        &format!("D={}; echo new > $D/f", elsewhere.display()),
        true,
        &[&repo],
        Some(&repo),
    );
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert!(!elsewhere.join("f").exists());
}

#[test]
fn no_command_writes_the_guard_s_own_files_even_approved() {
    let host = Host::new().with(&["--approved-writes", "/"]);
    let log = host.path("guard.log");
    let policy = host.path("policy.toml");
    let before = std::fs::read(&policy).expect("policy");
    let answer = host.run_as(
        &format!(
            "echo x >> {}; echo '[[rule]]' >> {}",
            log.display(),
            policy.display()
        ),
        true,
        &[host.dir.path()],
        Some(host.dir.path()),
    );
    assert!(answer.stderr.contains("Permission denied"), "{answer:?}");
    assert_eq!(std::fs::read(&policy).expect("policy"), before);
    assert!(
        host.log().iter().all(|e| e.get("x").is_none()),
        "log lines stay JSON"
    );
}

#[test]
fn a_command_cannot_kill_its_guard_and_the_guard_logs_it_first() {
    let host = Host::new();
    let late = host.path("late");
    let answer = host.run(&format!(
        "(sleep 3; touch {}) & kill -9 $PPID; echo still-here",
        late.display()
    ));
    assert!(answer.stdout.contains("still-here"), "{answer:?}");
    assert!(
        answer.stderr.contains("Operation not permitted"),
        "{answer:?}"
    );
    // The guard swept the background job when the shell ended: it did not
    // wait for it (the file is not there yet), and it never comes.
    assert!(answer.outcome().killed >= 1, "{answer:?}");
    assert!(!late.exists(), "the guard waited for the background job");
    std::thread::sleep(Duration::from_secs(4));
    assert!(!late.exists());
    let log = host.log();
    let started_at = log
        .iter()
        .position(|e| e["result"] == "started")
        .expect("a started line");
    let ran_at = log
        .iter()
        .position(|e| e["result"] == "ran")
        .expect("a result line");
    assert!(started_at < ran_at);
    assert_eq!(
        log[started_at]["command_sha256"].as_str().map(str::len),
        Some(64)
    );
}

#[test]
fn the_started_line_is_written_even_when_the_command_kills_its_guard() {
    // With the wall off, the command can kill the guard (this is what the
    // wall prevents); the started line is on disk all the same. The shell's
    // parent is the keeper; the guard is the keeper's parent.
    let host = Host::new().with(&["--kernel", "off"]);
    let answer = host.send(
        &Request::Run(RunRequest {
            action_id: "0193aaaa-0000-7000-8000-00000000dead"
                .parse()
                .expect("a UUID v7"),
            command: "kill -9 $(cut -d' ' -f4 /proc/$PPID/stat)".into(),
            cwd: None,
            timeout_ms: 10_000,
            output_cap: 1024,
            approved: false,
            scope: Vec::new(),
        }),
        &[],
    );
    assert!(answer.end.is_none(), "the guard survived: {answer:?}");
    let log = host.log();
    assert!(
        log.iter().any(|e| e["result"] == "started"
            && e["action_id"] == "0193aaaa-0000-7000-8000-00000000dead"),
        "{log:?}"
    );
}

#[test]
fn a_started_line_that_cannot_be_written_runs_nothing() {
    // A log that refuses the started line (a full disk) keeps the command
    // from ever running. The wall is off, so only that stands in its way.
    let host = Host::new().with(&["--kernel", "off", "--log", "/dev/full"]);
    let mark = host.path("ran");
    let answer = host.run(&format!("touch {}", mark.display()));
    match &answer.end {
        Some(Frame::Refused(r)) => assert_eq!(r.code, "log", "{answer:?}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!mark.exists(), "the command ran without its started line");
}

#[test]
fn a_background_job_holding_the_pipes_is_swept_when_its_shell_ends() {
    // The job keeps the output pipes open; the guard does not wait for
    // them to see that the shell has ended, and kills what it left.
    let host = Host::new();
    let answer = host.run("sleep 30 & echo done");
    let out = answer.outcome();
    assert_eq!(answer.stdout, "done\n", "{answer:?}");
    assert_eq!(out.killed, 1, "{out:?}");
}

#[test]
fn the_timeout_still_kills_the_whole_confined_tree() {
    let host = Host::new();
    let req = Request::Run(RunRequest {
        action_id: "0193aaaa-0000-7000-8000-00000000c0de"
            .parse()
            .expect("a UUID v7"),
        command: "sleep 30 & sleep 30 & sleep 30".into(),
        cwd: None,
        timeout_ms: 1_000,
        output_cap: 1024,
        approved: false,
        scope: Vec::new(),
    });
    let started = Instant::now();
    let answer = host.send(&req, &[]);
    assert_eq!(answer.outcome().ending, Ending::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    let left = Command::new("pgrep")
        .args(["-f", "^sleep 30$"])
        .output()
        .expect("pgrep");
    assert!(left.stdout.is_empty(), "left running: {:?}", left);
}

#[test]
fn git_reads_run_no_repository_code() {
    // The environment alone switches off hooks, fsmonitor, pagers and
    // external diffs; a textconv driver has no switch, and the kernel wall
    // stops it (it runs through /bin/sh, which a `git diff` may not exec).
    git_reads_in_a_hostile_repository(&Host::new().with(&["--kernel", "off"]), false);
    git_reads_in_a_hostile_repository(&Host::new(), true);
}

fn git_reads_in_a_hostile_repository(host: &Host, textconv: bool) {
    let repo = host.path("repo");
    let mark = host.path("hook-ran");
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    std::fs::create_dir(&repo).expect("mkdir");
    git(&["init", "-q"]);
    std::fs::write(repo.join("a"), "one\n").expect("write");
    git(&["add", "a"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "a",
    ]);
    std::fs::write(repo.join("a"), "two\n").expect("write");
    let hostile = format!("sh -c 'touch {}'", mark.display());
    git(&["config", "core.fsmonitor", &hostile]);
    git(&["config", "core.pager", &hostile]);
    git(&["config", "diff.external", &hostile]);
    if textconv {
        git(&["config", "diff.evil.textconv", &hostile]);
        std::fs::write(repo.join(".gitattributes"), "* diff=evil\n").expect("write");
    }
    let hooks = repo.join(".git/hooks");
    std::fs::write(
        hooks.join("post-index-change"),
        format!("#!/bin/sh\ntouch {}\n", mark.display()),
    )
    .expect("hook");
    std::fs::set_permissions(
        hooks.join("post-index-change"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    for line in ["git status", "git diff", "git log -p -1", "git diff --stat"] {
        let answer = host.run_as(line, false, &[], Some(&repo));
        assert!(!mark.exists(), "`{line}` ran repository code: {answer:?}");
    }
}

#[test]
fn an_approved_line_that_raises_privilege_runs_without_the_wall_and_says_so() {
    let host = Host::new();
    let line = "sudo -n true 2>/dev/null; echo done";
    let approved = host.run_as(line, true, &[], None);
    let kernel = approved.outcome().kernel.clone().unwrap_or_default();
    assert!(kernel.contains("not applied"), "{kernel}");
    // Nobody approved it: the wall holds, and a setuid program gains
    // nothing under it.
    let unattended = host.run(line);
    let kernel = unattended.outcome().kernel.clone().unwrap_or_default();
    assert!(kernel.contains("read-only"), "{kernel}");
}
