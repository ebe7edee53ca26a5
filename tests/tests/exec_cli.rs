//! The pipeline through the `jarvis` binary against the real sandbox host:
//! sshd on loopback, the restricted user, the installed guard.

use std::process::Output;

use jarvis_tests::{Env, marker, sandbox};
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The action id `jarvis run` reports on stderr.
fn action_id(out: &Output) -> String {
    jarvis_tests::action_id(&text(&out.stderr))
}

fn kinds(show: &Value) -> Vec<String> {
    show["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn an_allowed_command_runs_over_ssh_and_is_audited() {
    let env = Env::new("allowed", "", "");
    let m = marker("allowed");
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        &format!("echo {m}; echo to-stderr >&2; id -un"),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{m}\njarvis\n"),
        "output streams to stdout"
    );
    assert!(text(&out.stderr).contains("to-stderr"));
    let id = action_id(&out);
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "succeeded");
    assert_eq!(show["action"]["decision"], "allow");
    assert_eq!(show["run"]["exit_code"], 0);
    assert_eq!(show["run"]["stdout"]["text"], format!("{m}\njarvis\n"));
    assert_eq!(show["run"]["stdout"]["truncated"], false);
    assert_eq!(
        kinds(&show),
        [
            "action.proposed",
            "action.approved",
            "action.running",
            "action.succeeded"
        ]
    );
    // The guard logged it on the host, under the same action id.
    let logged = sandbox().guard_log_lines(&m);
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["action_id"], id.as_str());
    assert_eq!(logged[0]["result"], "ran");
    let verify = env.jarvis(&["audit", "verify"]);
    assert_eq!(code(&verify), 0, "{}", text(&verify.stdout));
}

#[test]
fn an_approval_needing_command_waits_for_jarvis_approve() {
    let env = Env::new("approve", "", "");
    let m = marker("approve");
    let target = format!("/tmp/{m}");
    let out = env.jarvis(&["run", "--host", "sandbox", "--", &format!("touch {target}")]);
    assert_eq!(code(&out), 3, "pending: {}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert_eq!(env.show(&id)["action"]["state"], "pending_approval");
    assert!(
        !std::path::Path::new(&target).exists(),
        "nothing ran before approval"
    );
    assert!(sandbox().guard_log_lines(&m).is_empty());

    let approved = env.jarvis(&["approve", &id[..13], "--reason", "checked"]);
    assert_eq!(code(&approved), 0, "{}", text(&approved.stderr));
    assert!(std::path::Path::new(&target).exists(), "ran after approval");
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "succeeded");
    let approval = show["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "action.approved")
        .expect("an action.approved event");
    assert!(
        approval["actor"]
            .as_str()
            .unwrap_or("")
            .starts_with("local:")
    );
    assert_eq!(approval["payload"]["reason"], "checked");
    // Approving again does not run it twice.
    let again = env.jarvis(&["approve", &id]);
    assert_eq!(code(&again), 2, "{}", text(&again.stderr));
    assert!(text(&again.stderr).contains("succeeded"));
    assert_eq!(sandbox().guard_log_lines(&m).len(), 1);
    let _ = std::fs::remove_file(&target);
}

#[test]
fn a_rejected_action_never_runs() {
    let env = Env::new("reject", "", "");
    let m = marker("reject");
    let out = env.jarvis(&["run", "--host", "sandbox", "--", &format!("touch /tmp/{m}")]);
    let id = text(&out.stdout).trim().to_owned();
    let denied = env.jarvis(&["deny", &id, "--reason", "not today"]);
    assert_eq!(code(&denied), 0, "{}", text(&denied.stderr));
    assert_eq!(env.show(&id)["action"]["state"], "rejected");
    let late = env.jarvis(&["approve", &id]);
    assert_ne!(code(&late), 0);
    assert!(sandbox().guard_log_lines(&m).is_empty());
}

#[test]
fn a_denied_command_never_reaches_the_host() {
    let env = Env::new("denied", "", "");
    let m = marker("denied");
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        &format!("echo {m}; rm -rf /"),
    ]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wipe-root"),
        "{}",
        text(&out.stderr)
    );
    let show = env.show(&action_id(&out));
    assert_eq!(show["action"]["state"], "denied");
    assert!(show["run"].is_null());
    assert!(
        sandbox().guard_log_lines(&m).is_empty(),
        "the guard's log proves nothing was sent"
    );
}

#[test]
fn the_host_policy_refuses_what_the_gateway_allows() {
    let env = Env::new("hostpolicy", "", "");
    let m = marker("hostpolicy");
    // The shipped gateway policy allows `dmesg`; the sandbox's guard.toml does not.
    let cmd = format!("dmesg # {m}");
    let judged = env.jarvis(&["policy", "check", "--", &cmd]);
    assert!(
        text(&judged.stdout).starts_with("allow"),
        "{}",
        text(&judged.stdout)
    );
    let out = env.jarvis(&["run", "--host", "sandbox", "--", &cmd]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("host-keeps-kernel-log"), "{err}");
    let show = env.show(&action_id(&out));
    assert_eq!(show["action"]["state"], "failed");
    assert_eq!(show["run"]["ending"], "refused");
    let logged = sandbox().guard_log_lines(&m);
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["result"], "refused");
    assert_eq!(logged[0]["code"], "host-policy");
}

fn alive(pattern: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .expect("pgrep runs");
    text(&out.stdout)
}

#[test]
fn a_timeout_kills_the_whole_remote_process_tree() {
    let env = Env::new("timeout", "", "");
    // Odd durations so that only this test's processes match.
    let n = 600 + (std::process::id() % 300);
    let cmd = format!(
        "sleep {n}1 & nohup sleep {n}2 >/dev/null 2>&1 & setsid sleep {n}3 & (sleep {n}4 &) ; sleep {n}5"
    );
    let out = env.jarvis(&["run", "--host", "sandbox", "--timeout", "2", "--", &cmd]);
    assert_eq!(
        code(&out),
        3,
        "background jobs need approval: {}",
        text(&out.stderr)
    );
    let id = text(&out.stdout).trim().to_owned();
    let started = std::time::Instant::now();
    let ran = env.jarvis(&["approve", &id]);
    assert_eq!(code(&ran), 1, "{}", text(&ran.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "timed_out");
    assert_eq!(show["run"]["ending"], "timed_out");
    assert!(
        show["run"]["killed"].as_u64().unwrap_or(0) >= 5,
        "{}",
        show["run"]
    );
    let left = alive(&format!("sleep {n}[1-5]"));
    assert!(left.is_empty(), "survivors on the host: {left}");
}

#[test]
fn a_finished_command_leaves_nothing_running() {
    let env = Env::new("leftover", "", "");
    let n = 700 + (std::process::id() % 200);
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        &format!("nohup sleep {n}9 >/dev/null 2>&1 & echo started"),
    ]);
    let id = text(&out.stdout).trim().to_owned();
    let ran = env.jarvis(&["approve", &id]);
    assert_eq!(code(&ran), 0, "{}", text(&ran.stderr));
    assert_eq!(env.show(&id)["run"]["killed"], 1);
    assert!(alive(&format!("sleep {n}9")).is_empty());
}

#[test]
fn output_is_capped_with_its_full_size_and_hash_recorded() {
    use sha2::Digest;
    let env = Env::new("cap", "output_cap_bytes = 1000", "");
    let out = env.jarvis(&["run", "--host", "sandbox", "--", "seq 1 100000"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 1000, "only the cap reaches the terminal");
    let full: String = (1..=100_000).map(|i| format!("{i}\n")).collect();
    let show = env.show(&action_id(&out));
    let stdout = &show["run"]["stdout"];
    assert_eq!(stdout["truncated"], true);
    assert_eq!(stdout["bytes"], full.len());
    assert_eq!(
        stdout["sha256"],
        hex::encode(sha2::Sha256::digest(full.as_bytes()))
    );
    assert_eq!(stdout["text"].as_str().map(str::len), Some(1000));
    assert!(
        text(&out.stderr).contains("stdout truncated: kept 1000 of 588895 bytes"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_loop_brake_holds_a_repeated_command_for_approval() {
    let env = Env::new("loop", "", "loop_repeats = 3\nloop_window_secs = 600");
    let cmd = format!("echo {}", marker("loop"));
    for _ in 0..2 {
        let out = env.jarvis(&["run", "--host", "sandbox", "--", &cmd]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    }
    let third = env.jarvis(&["run", "--host", "sandbox", "--", &cmd]);
    assert_eq!(code(&third), 3, "{}", text(&third.stderr));
    assert!(
        text(&third.stderr).contains("runaway-loop brake"),
        "{}",
        text(&third.stderr)
    );
    let other = env.jarvis(&["run", "--host", "sandbox", "--", "echo something else"]);
    assert_eq!(code(&other), 0, "only the repeated command is held");
}

#[test]
fn interactive_logins_and_unframed_commands_are_refused_by_the_guard() {
    let sb = sandbox();
    let login = sb.ssh(&sb.known_hosts, None);
    assert_eq!(login.status.code(), Some(1), "{}", text(&login.stderr));
    assert!(text(&login.stderr).contains("interactive logins are not allowed"));
    let m = marker("unframed");
    let plain = sb.ssh(&sb.known_hosts, Some(&format!("touch /tmp/{m}")));
    assert_eq!(plain.status.code(), Some(1));
    assert!(text(&plain.stderr).contains("not a Jarvis guard request"));
    assert!(!std::path::Path::new(&format!("/tmp/{m}")).exists());
    assert_eq!(sb.guard_log_lines(&m)[0]["code"], "unframed");
}

#[test]
fn a_changed_host_key_is_refused_loudly() {
    let sb = sandbox();
    let env0 = Env::new("hostkey-probe", "", "");
    // A known_hosts that pins some other key for the sandbox's address.
    let key = env0.dir().join("other_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let pinned = env0.dir().join("known_hosts");
    let line = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&pinned, format!("[127.0.0.1]:{} {line}\n", sb.port)).expect("write");
    let env = Env::with_host("hostkey", sb.port, &pinned, "", "");
    let check = env.jarvis(&["hosts", "check", "sandbox"]);
    assert_eq!(code(&check), 1);
    let err = text(&check.stderr);
    assert!(
        err.contains("host key of `sandbox` does not match"),
        "{err}"
    );
    let m = marker("hostkey");
    let out = env.jarvis(&["run", "--host", "sandbox", "--", &format!("echo {m}")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(sandbox().guard_log_lines(&m).is_empty());
}

#[test]
fn hosts_list_check_and_install_guard() {
    let env = Env::new("hosts", "concurrency = 2", "");
    let list = env.jarvis(&["hosts", "list"]);
    assert!(
        text(&list.stdout).contains("sandbox"),
        "{}",
        text(&list.stdout)
    );
    assert!(text(&list.stdout).contains("concurrency 2"));
    let check = env.jarvis(&["hosts", "check", "sandbox"]);
    assert_eq!(code(&check), 0, "{}", text(&check.stderr));
    let report = text(&check.stdout);
    assert!(report.contains("jarvis@"), "{report}");
    assert!(report.contains("guard.toml (3 rules)"), "{report}");
    assert!(
        report.contains("docker    2") || report.contains("docker    1"),
        "{report}"
    );
    assert!(report.contains("git version"), "{report}");
    let install = env.jarvis(&["hosts", "install-guard", "sandbox"]);
    let steps = text(&install.stdout);
    assert!(
        steps.contains("restrict,command=\"exec /usr/local/bin/jarvis-guard"),
        "{steps}"
    );
    assert!(steps.contains("ssh-ed25519 "));
}

/// Whether `s` holds anything that acts on a terminal instead of showing:
/// ESC, BEL, a carriage return, a bidi override.
fn acts_on_a_terminal(s: &str) -> bool {
    s.chars()
        .any(|c| c != '\n' && c != '\t' && jarvis_core::text::is_unsafe(c))
}

#[test]
fn agent_text_reaches_the_terminal_inert() {
    let env = Env::new("inert", "", "");
    // Output that clears the screen and rewrites the line above.
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        r"printf '\033[2J\033[1Apending: none\r\n'",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // Into a pipe the output goes as the host sent it.
    assert!(text(&out.stdout).contains('\u{1b}'));
    let ran = action_id(&out);

    // A command line that carries escapes itself: denied, but recorded.
    let hidden = "echo \u{1b}]0;owned\u{7} ok \u{202e}txt.exe";
    let out = env.jarvis(&["run", "--host", "sandbox", "--", hidden]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        !acts_on_a_terminal(&text(&out.stderr)),
        "{:?}",
        text(&out.stderr)
    );
    let denied = action_id(&out);

    let list = env.jarvis(&["actions", "list"]);
    assert!(list.status.success());
    let listed = text(&list.stdout);
    assert!(!acts_on_a_terminal(&listed), "{listed:?}");
    assert!(
        listed.contains("echo \u{241b}]0;owned\u{2407} ok \u{fffd}txt.exe"),
        "{listed}"
    );

    for id in [&ran, &denied] {
        let show = env.jarvis(&["actions", "show", id]);
        assert!(show.status.success());
        let shown = text(&show.stdout);
        assert!(!acts_on_a_terminal(&shown), "{shown:?}");
    }
    let shown = text(&env.jarvis(&["actions", "show", &ran]).stdout);
    assert!(
        shown.contains("\u{241b}[2J\u{241b}[1Apending: none\u{240d}"),
        "{shown}"
    );
    // The machine form keeps the bytes, escaped by JSON.
    assert_eq!(
        env.show(&ran)["run"]["stdout"]["text"],
        "\u{1b}[2J\u{1b}[1Apending: none\r\n"
    );
}

#[test]
fn a_working_directory_with_control_characters_is_refused_at_proposal() {
    let env = Env::new("cwd-controls", "", "");
    for cwd in ["/srv\u{1b}[2J", "/srv\nrm -rf /", "/srv/\u{202e}ppa"] {
        let out = env.jarvis(&["run", "--host", "sandbox", "--cwd", cwd, "--", "ls"]);
        assert_eq!(code(&out), 2, "{cwd:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("the working directory"), "{err}");
        assert!(err.contains("give a plain path"), "{err}");
        assert!(!acts_on_a_terminal(&err), "{err:?}");
    }
    let list = env.jarvis(&["actions", "list"]);
    assert_eq!(text(&list.stdout), "", "nothing was recorded");
}
