//! `take`, `restore` and `drop` over several kinds at once: the order of
//! the lists and the rules between targets. Each kind's own work is
//! tested beside it (`git`, `docker`, `files`).

use std::path::{Path, PathBuf};
use std::process::Command;

use jarvis_exec::snapshot::{
    ComposeTarget, DropRequest, PlanTarget, RestoreRequest, SnapshotPlan, SnapshotRequest,
    TargetOutcome,
};
use tempfile::TempDir;

use super::*;
use crate::cmd::Cmd;

const ID: &str = "0191e3c4-7a2b-7c3d-8e4f-5a6b7c8d9e0f";
const ROLLBACK: &str = "0191e3c4-7a2b-7c3d-8e4f-5a6b7c8d9e10";

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with one commit (and an empty `sub/`), a directory in no
/// repository holding `app.conf`, and a state directory.
struct Fixture {
    _tmp: TempDir,
    repo: String,
    loose: String,
    elsewhere: String,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = TempDir::new().expect("temp dir");
    let root = std::fs::canonicalize(tmp.path()).expect("canonical");
    sh(
        &root,
        "mkdir repo loose elsewhere repo/sub && cd repo && git init -q -b main \
         && printf 'one\\n' > a.txt && git add -A && git commit -qm one \
         && printf 'port = 80\\n' > ../loose/app.conf",
    );
    let path = |p: &str| root.join(p).display().to_string();
    Fixture {
        repo: path("repo"),
        loose: path("loose/app.conf"),
        elsewhere: path("elsewhere"),
        state: root.join("state"),
        _tmp: tmp,
    }
}

fn request(action_id: &str, plan: &SnapshotPlan, keep: bool) -> SnapshotRequest {
    SnapshotRequest {
        action_id: action_id.parse().expect("a UUID v7"),
        plan: plan.clone(),
        keep,
        volume_image: None,
    }
}

fn kinds_and_names(s: &Snapshot) -> Vec<(&str, &str)> {
    s.targets().iter().map(|t| (t.kind(), t.name())).collect()
}

#[test]
fn take_captures_each_target_once_and_files_in_a_repository_through_git() {
    let f = fixture();
    let judge = |_: &str| Ok(());
    let host = Host {
        state_dir: &f.state,
        judge: &judge,
    };
    let plan = SnapshotPlan::of([
        PlanTarget::File(format!("{}/a.txt", f.repo)),
        PlanTarget::File(f.loose.clone()),
        PlanTarget::Repo(format!("{}/sub", f.repo)),
        PlanTarget::Repo(f.elsewhere.clone()),
    ]);
    let snap = take(&request(ID, &plan, true), &host).expect("snapshot");
    assert_eq!(
        kinds_and_names(&snap),
        [("repo", f.repo.as_str()), ("file", f.loose.as_str())],
        "the repository once, from its subdirectory and its file"
    );
    assert!(snap.kept && snap.action_id.to_string() == ID);
    assert!(snap.repos().all(|r| r.kept_ref.is_some()));
    assert!(snap.files().all(|f| f.backup.is_some()));
    assert_eq!(snap.not_captured.len(), 1, "{:?}", snap.not_captured);
    assert!(
        snap.not_captured[0].contains(&f.elsewhere)
            && snap.not_captured[0].ends_with("; its files are not captured"),
        "{:?}",
        snap.not_captured
    );
    let dropped = drop(&DropRequest {
        snapshots: vec![snap],
    });
    assert!(dropped.errors.is_empty(), "{dropped:?}");
    assert_eq!(dropped.removed.len(), 2, "{dropped:?}");
}

#[test]
fn a_rollback_checks_stops_on_later_changes_and_restores_in_order() {
    let f = fixture();
    let judge = |_: &str| Ok(());
    let host = Host {
        state_dir: &f.state,
        judge: &judge,
    };
    // The file first in the plan: the rollback still puts the repository
    // back before it.
    let plan = SnapshotPlan::of([
        PlanTarget::File(f.loose.clone()),
        PlanTarget::Repo(f.repo.clone()),
    ]);
    let target = take(&request(ID, &plan, true), &host).expect("snapshot");
    let repo = Path::new(&f.repo);
    sh(
        repo,
        "printf 'two\\n' > a.txt && printf 'port = 81\\n' > ../loose/app.conf",
    );
    let after = take(&request(ID, &plan, false), &host).expect("after");
    let ask = |check_only: bool, force: bool| RestoreRequest {
        action_id: ROLLBACK.parse().expect("a UUID v7"),
        target: target.clone(),
        after: Some(after.clone()),
        force,
        check_only,
        volume_image: None,
    };
    let outcomes = |r: &RestoreReport| -> Vec<(String, TargetOutcome)> {
        r.targets
            .iter()
            .map(|t| (t.kind.clone(), t.outcome))
            .collect()
    };

    let checked = restore(&ask(true, false), &host).expect("check");
    assert_eq!(
        outcomes(&checked),
        [
            ("repo".to_owned(), TargetOutcome::Due),
            ("file".to_owned(), TargetOutcome::Due)
        ]
    );
    assert!(!checked.complete && checked.before.is_none() && checked.after.is_none());

    // A change after the action stops the rollback before anything.
    sh(repo, "printf 'port = 82\\n' > ../loose/app.conf");
    let stopped = restore(&ask(false, false), &host).expect("stopped");
    assert_eq!(
        outcomes(&stopped),
        [
            ("repo".to_owned(), TargetOutcome::Skipped),
            ("file".to_owned(), TargetOutcome::Changed)
        ]
    );
    assert!(
        stopped.targets[1].detail.contains("content of"),
        "{stopped:?}"
    );
    assert!(!stopped.complete && stopped.before.is_none());
    let read = |p: &str| std::fs::read_to_string(p).expect("read");
    assert_eq!(read(&format!("{}/a.txt", f.repo)), "two\n", "left alone");

    // Forced: the present is kept first, then both go back.
    let forced = restore(&ask(false, true), &host).expect("forced");
    assert_eq!(
        outcomes(&forced),
        [
            ("repo".to_owned(), TargetOutcome::Restored),
            ("file".to_owned(), TargetOutcome::Restored)
        ]
    );
    assert!(forced.complete);
    let before = forced.before.clone().expect("the present, kept");
    assert!(before.kept && before.action_id.to_string() == ROLLBACK);
    assert_eq!(kinds_and_names(&before), kinds_and_names(&target));
    assert_eq!(read(&format!("{}/a.txt", f.repo)), "one\n");
    assert_eq!(read(&f.loose), "port = 80\n");
    let fresh = forced.after.clone().expect("the state after");
    assert!(!fresh.kept && target.nothing_to_undo(&fresh));

    // Again: nothing left to do.
    let again = restore(&ask(false, true), &host).expect("again");
    assert!(
        again
            .targets
            .iter()
            .all(|t| t.outcome == TargetOutcome::AlreadyRestored),
        "{again:?}"
    );

    let dropped = drop(&DropRequest {
        snapshots: vec![target, before, again.before.expect("kept")],
    });
    assert!(dropped.errors.is_empty(), "{dropped:?}");
}

#[test]
fn a_snapshot_of_fingerprints_only_cannot_be_restored() {
    let f = fixture();
    let judge = |_: &str| Ok(());
    let host = Host {
        state_dir: &f.state,
        judge: &judge,
    };
    let plan = SnapshotPlan::of([PlanTarget::Repo(f.repo.clone())]);
    let target = take(&request(ID, &plan, false), &host).expect("fingerprints");
    let refused = restore(
        &RestoreRequest {
            action_id: ROLLBACK.parse().expect("a UUID v7"),
            target,
            after: None,
            force: true,
            check_only: false,
            volume_image: None,
        },
        &host,
    );
    assert!(
        matches!(refused, Err(GuardError::Request(_))),
        "{refused:?}"
    );
    // A request whose id is not an action id never gets here: it is
    // refused as the line is decoded (`Request::parse`, see account.rs).
    assert!(
        serde_json::from_value::<SnapshotRequest>(serde_json::json!({
            "action_id": "not an id", "plan": {}, "keep": false
        }))
        .is_err_and(|e| e.to_string().contains("`action_id`"))
    );
}

/// The sandbox's image (`sandbox/up`): busybox, nothing pulled.
const IMAGE: &str = "jarvis-sandbox/busybox:latest";

/// Containers and volumes a test made, removed however it ends.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Cmd::new("docker").args(["rm", "-f", c]).output();
        }
        for v in &self.volumes {
            let _ = Cmd::new("docker").args(["volume", "rm", "-f", v]).output();
        }
    }
}

fn docker(args: &[&str]) -> String {
    Cmd::new("docker")
        .args(args)
        .ok()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn containers_are_captured_once_and_only_their_stateful_volumes() {
    let mut made = Made::default();
    // Unique per run, so a run killed halfway does not block the next.
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = |n: &str| format!("jarvis-test-take-{}-{tag}-{n}", std::process::id());
    let project = name("project");
    let (web, worker) = (name("web"), name("worker"));
    let (data, cache, idle) = (name("data"), name("cache"), name("idle"));
    made.containers.extend([web.clone(), worker.clone()]);
    made.volumes
        .extend([data.clone(), cache.clone(), idle.clone()]);
    for v in [&data, &cache, &idle] {
        docker(&["volume", "create", v]);
    }
    let label = format!("com.docker.compose.project={project}");
    let mount = |v: &str| format!("{v}:/{v}");
    let (data_at, cache_at) = (mount(&data), mount(&cache));
    let run = |c: &str, mounts: &[&str]| {
        let mut args = vec!["run", "-d", "--init", "--name", c, "-l", &label];
        for m in mounts {
            args.extend(["-v", m]);
        }
        args.extend([IMAGE, "sleep", "3600"]);
        docker(&args);
    };
    run(&web, &[&data_at, &cache_at]);
    run(&worker, &[&data_at]);
    let tmp = TempDir::new().expect("temp dir");
    let judge = |_: &str| Ok(());
    let host = Host {
        state_dir: tmp.path(),
        judge: &judge,
    };
    // `web` named and in the project; `idle` stateful but mounted by
    // nothing; `cache` mounted but not stateful.
    let plan = SnapshotPlan::of([
        PlanTarget::Volume(idle.clone()),
        PlanTarget::Compose(ComposeTarget {
            project: Some(project.clone()),
            dir: None,
        }),
        PlanTarget::Volume(data.clone()),
        PlanTarget::Container(web.clone()),
    ]);
    let snap = take(
        &SnapshotRequest {
            volume_image: Some(IMAGE.into()),
            ..request(ID, &plan, false)
        },
        &host,
    )
    .expect("snapshot");
    assert_eq!(
        kinds_and_names(&snap),
        [
            ("container", web.as_str()),
            ("container", worker.as_str()),
            ("volume", data.as_str()),
        ]
    );
    let unmarked = format!("volume {cache} of {web} is not marked stateful");
    assert_eq!(
        snap.not_captured
            .iter()
            .filter(|n| n.starts_with(&unmarked))
            .count(),
        1,
        "{:?}",
        snap.not_captured
    );
    assert!(
        !snap.not_captured.iter().any(|n| n.contains(&data)),
        "{:?}",
        snap.not_captured
    );
}
