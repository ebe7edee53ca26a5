//! Snapshots and rollbacks end to end: the `jarvis` binary against the
//! sandbox host, with each repository and container made by the test and
//! its state read with plain git and docker.

use jarvis_tests::fixtures::{HostContainer, HostRepo, as_guard_user, docker};
use jarvis_tests::{Env, action_id, marker};

/// Proposes `args` (after `jarvis`), approves it if it waits, and returns
/// the action id once it has run and succeeded.
fn act(env: &Env, args: &[&str]) -> String {
    let out = env.jarvis(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let id = action_id(&stderr);
    if out.status.code() == Some(3) {
        let out = env.jarvis(&["approve", &id]);
        assert!(
            out.status.success(),
            "approve {id} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
    }
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "succeeded", "{show:#}");
    assert!(show["snapshot"].is_object(), "no snapshot taken: {show:#}");
    id
}

/// What `jarvis rollback ID [EXTRA…]` came to.
struct Rollback {
    /// The exit code of the command that ran it (or refused it).
    code: i32,
    /// The host's report, one line per target.
    stdout: String,
    /// What `rollback` and, if it waited, `approve` said.
    stderr: String,
    /// The rollback action's id; empty when it was refused.
    id: String,
}

/// `jarvis rollback ID [EXTRA…]`. Under the default rule a rollback waits
/// for approval like any action; the owner (who may approve their own
/// requests) approves it with `jarvis approve`, which runs it.
fn rollback(env: &Env, id: &str, extra: &[&str]) -> Rollback {
    let mut args = vec!["rollback", id];
    args.extend_from_slice(extra);
    let out = env.jarvis(&args);
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if code != 3 {
        return Rollback {
            code,
            stdout,
            stderr,
            id: String::new(),
        };
    }
    let rb = stdout.trim().to_owned();
    assert!(
        stderr.contains("waits for approval") && stderr.contains(&format!("jarvis approve {rb}")),
        "{stderr}"
    );
    let out = env.jarvis(&["approve", &rb]);
    Rollback {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: format!("{stderr}{}", String::from_utf8_lossy(&out.stderr)),
        id: rb,
    }
}

/// The rollback a refusal names: "rollback ID of ORIGINAL is recorded as
/// refused".
fn refused_rollback(stderr: &str) -> String {
    stderr
        .split("rollback ")
        .filter_map(|rest| rest.split_once(" of "))
        .map(|(id, _)| id.to_owned())
        .find(|id| id.len() == 36)
        .unwrap_or_else(|| panic!("no refused rollback named in: {stderr}"))
}

fn rolled_back(env: &Env, id: &str) {
    let Rollback {
        code,
        stdout,
        stderr,
        ..
    } = rollback(env, id, &[]);
    assert_eq!(code, 0, "rollback of {id} failed:\n{stdout}\n{stderr}");
    assert_eq!(env.show(id)["action"]["state"], "rolled_back");
}

fn git_case(tag: &str, command: &str) {
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let before = repo.state();
    let cwd = repo.path.display().to_string();
    let id = act(
        &env,
        &["run", "--host", "sandbox", "--cwd", &cwd, "--", command],
    );
    assert_ne!(repo.state(), before, "`{command}` changed nothing");
    rolled_back(&env, &id);
    assert_eq!(repo.state(), before, "after rolling back `{command}`");
}

#[test]
fn a_commit_is_rolled_back_to_the_exact_prior_tree() {
    git_case("rb-commit", "git commit -qam 'change the port'");
}

#[test]
fn a_hard_reset_is_rolled_back() {
    git_case("rb-reset", "git reset -q --hard HEAD~1");
}

#[test]
fn a_deleted_untracked_file_comes_back() {
    git_case("rb-untracked", "rm notes.txt");
}

#[test]
fn a_checkout_of_another_branch_is_rolled_back() {
    git_case("rb-checkout", "git stash -q && git checkout -q other");
}

#[test]
fn a_file_edit_is_rolled_back_through_git() {
    let tag = "rb-edit";
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let before = repo.state();
    let content = env.dir().join("new.conf");
    std::fs::write(&content, "port = 9090\nlisten = all\n").expect("write");
    let path = repo.file("app.conf");
    let id = act(
        &env,
        &[
            "edit",
            "--host",
            "sandbox",
            "--content",
            content.to_str().expect("utf-8"),
            &path,
        ],
    );
    assert_eq!(repo.git(&["show", ":app.conf"]), "port = 80");
    assert!(repo.state().contains(&repo.git(&["rev-parse", "HEAD"])));
    assert_ne!(repo.state(), before);
    let show = env.show(&id);
    let manifest = &show["snapshot"]["manifest"];
    assert_eq!(
        manifest["repos"][0]["path"],
        repo.path.display().to_string(),
        "{manifest:#}"
    );
    rolled_back(&env, &id);
    assert_eq!(repo.state(), before);
}

#[test]
fn a_file_edit_outside_a_repository_is_rolled_back_from_a_copy() {
    let tag = "rb-edit-copy";
    let env = Env::with_snapshots(tag, "");
    let dir = std::path::PathBuf::from("/srv/jarvis-demo/tests").join(marker(tag));
    jarvis_tests::fixtures::as_guard_user(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p '{0}' && printf 'a = 1\\n' > '{0}/plain.conf'",
            dir.display()
        ),
    ]);
    let file = dir.join("plain.conf");
    let diff = env.dir().join("change.diff");
    let path = file.display().to_string();
    std::fs::write(
        &diff,
        format!("--- a{path}\n+++ b{path}\n@@ -1 +1 @@\n-a = 1\n+a = 2\n"),
    )
    .expect("write");
    let id = act(
        &env,
        &[
            "edit",
            "--host",
            "sandbox",
            "--diff",
            diff.to_str().expect("utf-8"),
            &path,
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&file).ok().as_deref(),
        Some("a = 2\n")
    );
    let show = env.show(&id);
    assert_eq!(
        show["snapshot"]["manifest"]["files"][0]["path"], path,
        "{show:#}"
    );
    rolled_back(&env, &id);
    assert_eq!(
        std::fs::read_to_string(&file).ok().as_deref(),
        Some("a = 1\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_container_whose_files_changed_is_restored() {
    let env = Env::with_snapshots("rb-files", "");
    let c = HostContainer::new("rb-files");
    let index = c.exec("cat /www/index.html");
    let settings = c.settings();
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!(
                "docker exec {} sh -c 'echo defaced > /www/index.html; echo x > /etc/added'",
                c.name
            ),
        ],
    );
    assert_eq!(c.exec("cat /www/index.html"), "defaced");
    rolled_back(&env, &id);
    assert_eq!(c.exec("cat /www/index.html"), index);
    assert_eq!(c.exec("test -e /etc/added && echo yes || echo no"), "no");
    assert_eq!(c.settings(), settings);
}

#[test]
fn a_container_recreated_with_other_settings_is_restored() {
    let env = Env::with_snapshots("rb-recreate", "");
    let c = HostContainer::new("rb-recreate");
    c.exec("echo kept > /root/state");
    let settings = c.settings();
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!(
                "docker rm -f {0} && docker run -d --name {0} --network none -e MODE=other --label other=1 --restart no jarvis-sandbox/busybox:latest sleep 5000",
                c.name
            ),
        ],
    );
    assert_ne!(c.settings(), settings);
    rolled_back(&env, &id);
    assert_eq!(c.settings(), settings);
    assert_eq!(c.exec("cat /root/state"), "kept");
}

#[test]
fn rollback_twice_without_a_snapshot_and_over_later_changes_are_refused() {
    let tag = "rb-rules";
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let cwd = repo.path.display().to_string();
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--cwd",
            &cwd,
            "--",
            "git commit -qam one",
        ],
    );
    // A change after the action: the rollback stops before anyone is asked
    // to approve it, says what changed, and is recorded as refused.
    repo.git(&["commit", "-q", "--allow-empty", "-m", "later"]);
    let later = repo.state();
    let Rollback { code, stderr, .. } = rollback(&env, &id, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Stopped before changing anything: git repository {} changed since this action ran (HEAD moved",
            repo.path.display()
        )) && stderr.contains(&format!("jarvis rollback {id} --force")),
        "{stderr}"
    );
    let refused = refused_rollback(&stderr);
    assert_eq!(env.show(&refused)["action"]["state"], "denied");
    assert_eq!(env.show(&id)["action"]["state"], "succeeded");
    assert_eq!(repo.state(), later, "a stopped rollback changes nothing");
    // Forced, it restores, and its own snapshot can undo it.
    let Rollback {
        code,
        stderr,
        id: undo,
        ..
    } = rollback(&env, &id, &["--force"]);
    assert_eq!(code, 0, "{stderr}");
    // Twice: refused.
    let Rollback { code, stderr, .. } = rollback(&env, &id, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("already rolled back"), "{stderr}");
    // The rollback itself can be rolled back, back to the later state.
    let Rollback { code, stderr, .. } = rollback(&env, &undo, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(repo.state(), later);
    // Read-only actions take no snapshot, so there is nothing to roll back.
    let out = env.jarvis(&["run", "--host", "sandbox", "--", "uptime"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ro = action_id(&stderr);
    let Rollback { code, stderr, .. } = rollback(&env, &ro, &[]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("no snapshot was taken") && stderr.contains("only reads"),
        "{stderr}"
    );
}

#[test]
fn an_unscoped_change_says_rollback_will_not_be_possible() {
    let env = Env::with_snapshots("rb-unscoped", "");
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        "touch /tmp/jarvis-unscoped-test",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no snapshot: rollback will not be possible"),
        "{stderr}"
    );
}

#[test]
fn a_rollback_that_fails_halfway_finishes_when_run_again() {
    let tag = "rb-halfway";
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let c = HostContainer::new(tag);
    let repo_before = repo.state();
    let files_before = c.exec("ls /www");
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!(
                "git -C {} commit -qam change && docker exec {} rm /www/index.html",
                repo.path.display(),
                c.name
            ),
        ],
    );
    // The container's snapshot image goes missing: the repository (first)
    // is restored, the container fails, the original stays succeeded.
    let show = env.show(&id);
    let image = show["snapshot"]["manifest"]["containers"][0]["snapshot_image"]
        .as_str()
        .expect("snapshot image")
        .to_owned();
    let parked = format!("jarvis-test-parked:{}", marker("img"));
    docker(&["tag", &image, &parked]);
    docker(&["rmi", &image]);
    let Rollback {
        code,
        stdout,
        stderr,
        ..
    } = rollback(&env, &id, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("container {}: could not be put back", c.name))
            && stderr.contains("The rollback failed partway")
            && stderr.contains("Run the rollback again to finish"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        repo.state(),
        repo_before,
        "the repository was restored before the failure"
    );
    assert_eq!(env.show(&id)["action"]["state"], "succeeded");
    // The image is back: the retry skips the repository and finishes.
    docker(&["tag", &parked, &image]);
    docker(&["rmi", &parked]);
    let Rollback {
        code,
        stdout,
        stderr,
        ..
    } = rollback(&env, &id, &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "git repository {}: already as the snapshot found it, left alone",
            repo.path.display()
        )),
        "{stdout}"
    );
    assert_eq!(c.exec("ls /www"), files_before);
    assert_eq!(repo.state(), repo_before);
}

#[test]
fn an_approval_binds_to_the_snapshot_plan_it_showed() {
    let tag = "rb-plan";
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let cwd = repo.path.display().to_string();
    let out = env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--cwd",
        &cwd,
        "--",
        "git commit -qam x",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // The host config now snapshots another container with every action.
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        config.replace(
            "[hosts.sandbox.snapshots]\n",
            "[hosts.sandbox.snapshots]\ncontainers = [\"jarvis-demo-worker\"]\n",
        ),
    )
    .expect("config");
    let before = repo.state();
    let out = env.jarvis(&["approve", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("would now snapshot differently"),
        "{stderr}"
    );
    assert_eq!(env.show(&id)["action"]["state"], "pending_approval");
    assert_eq!(repo.state(), before, "nothing ran");
}

#[test]
fn a_restart_that_changed_nothing_has_nothing_to_undo() {
    let env = Env::with_snapshots("rb-nothing", "");
    let c = HostContainer::new("rb-nothing");
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!("docker restart -t 1 {}", c.name),
        ],
    );
    let fingerprint = c.fingerprint();
    // Asked anyway: it says so, and no rollback is made or recorded.
    let out = env.jarvis(&["rollback", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("nothing to undo: it changed nothing that can be put back"),
        "{stderr}"
    );
    assert!(!stderr.contains("Rolled back"), "{stderr}");
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "succeeded");
    let kinds: Vec<&str> = show["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"action.rolled_back"), "{kinds:?}");
    assert_eq!(c.fingerprint(), fingerprint, "the container was left alone");
    let listed = env.jarvis(&["actions", "list", "--json"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&format!("rollback {id}")),
        "no rollback action was made"
    );
}

#[test]
fn a_change_while_the_rollback_waits_refuses_it_before_it_starts() {
    let tag = "rb-wait-drift";
    let env = Env::with_snapshots(tag, "");
    let repo = HostRepo::new(tag);
    let cwd = repo.path.display().to_string();
    let id = act(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--cwd",
            &cwd,
            "--",
            "git commit -qam one",
        ],
    );
    // Nothing changed yet: it waits for approval (the default rule).
    let out = env.jarvis(&["rollback", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let rb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // While it waits, someone edits a tracked file.
    as_guard_user(&[
        "sh",
        "-c",
        &format!("printf 'port = 9999\\n' > '{}'", repo.file("app.conf")),
    ]);
    let later = repo.state();
    let out = env.jarvis(&["approve", &rb]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Stopped before changing anything: git repository {} changed since this action ran (",
            repo.path.display()
        )) && stderr.contains("app.conf")
            && stderr.contains(&format!("jarvis rollback {id} --force")),
        "{stderr}"
    );
    let show = env.show(&rb);
    assert_eq!(show["action"]["state"], "denied", "refused, not failed");
    assert!(show["run"].is_null(), "it never ran: {show:#}");
    let kinds: Vec<&str> = show["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"action.running"), "{kinds:?}");
    assert_eq!(repo.state(), later, "nothing was changed");
    // The refused rollback does not block a forced one.
    let Rollback { code, stderr, .. } = rollback(&env, &id, &["--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(env.show(&id)["action"]["state"], "rolled_back");
}

/// The kinds of `id`'s events, oldest first, as `actions show` lists them.
fn event_kinds(env: &Env, id: &str) -> Vec<String> {
    env.show(id)["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Retention records a snapshot as given up before the host removes it,
/// so nothing is ever offered for rollback that the host no longer holds;
/// what the host could not remove is kept on the record, to be tried again.
#[test]
fn retention_records_before_the_host_removes_and_keeps_what_it_could_not() {
    let env = Env::with_snapshots("prune", "keep = 1");
    let (first, second) = (HostRepo::new("prune-a"), HostRepo::new("prune-b"));
    let commit = |repo: &HostRepo| {
        let cwd = repo.path.display().to_string();
        act(
            &env,
            &[
                "run",
                "--host",
                "sandbox",
                "--cwd",
                &cwd,
                "--",
                "git commit -qam 'change the port'",
            ],
        )
    };
    let a = commit(&first);
    let kept = format!("refs/jarvis/snapshots/{a}");
    assert!(first.git(&["for-each-ref", &kept]).contains(&a));
    // The second snapshot makes the first one too many: pruned, in order.
    let b = commit(&second);
    let pruned = env.show(&a)["snapshot"]["pruned_at"].clone();
    assert!(pruned.is_string(), "{pruned}");
    let kinds = event_kinds(&env, &a);
    let at = |k: &str| kinds.iter().position(|x| x == k);
    assert!(
        matches!((at("snapshot.pruned"), at("snapshot.removed")), (Some(p), Some(r)) if p < r),
        "{kinds:?}"
    );
    assert_eq!(
        first.git(&["for-each-ref", &kept]),
        "",
        "the host removed it"
    );
    let refused = rollback(&env, &a, &[]);
    assert!(
        refused.code != 0 && refused.stderr.contains("was pruned at"),
        "gone is gone: {}",
        refused.stderr
    );

    // A host that cannot remove it (its repository went away): the record
    // keeps it, says why, and the next pruning tries again.
    let p = second.path.display().to_string();
    as_guard_user(&["mv", &p, &format!("{p}.moved")]);
    let third = HostRepo::new("prune-c");
    let _c = commit(&third);
    as_guard_user(&["mv", &format!("{p}.moved"), &p]);
    assert!(env.show(&b)["snapshot"]["pruned_at"].is_null());
    let kinds = event_kinds(&env, &b);
    assert!(
        kinds.iter().any(|k| k == "snapshot.pruned")
            && kinds.last().map(String::as_str) == Some("snapshot.prune_failed"),
        "{kinds:?}"
    );
    let out = env.jarvis(&["snapshots", "prune", "--host", "sandbox"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.show(&b)["snapshot"]["pruned_at"].is_string());
    assert_eq!(
        second.git(&["for-each-ref", &format!("refs/jarvis/snapshots/{b}")]),
        ""
    );
}
