//! Previews shown with an approval request: run in throwaway copies, they
//! show the change and leave the real repository and container as they
//! were (compared by hashes before and after).

use jarvis_tests::fixtures::{HostContainer, HostRepo};
use jarvis_tests::{Env, action_id};

/// Proposes `args` and expects it to wait for approval; returns stderr.
fn pending(env: &Env, args: &[&str]) -> String {
    let out = env.jarvis(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    stderr
}

#[test]
fn a_git_preview_shows_the_commit_and_leaves_the_repository_alone() {
    let env = Env::with_snapshots("pv-git", "");
    let repo = HostRepo::new("pv-git");
    let before = repo.state();
    let refs = repo.git(&["show-ref"]);
    let cwd = repo.path.display().to_string();
    let stderr = pending(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--cwd",
            &cwd,
            "--",
            "git commit -qam 'raise the port' && rm notes.txt",
        ],
    );
    assert!(stderr.contains("preview (git)"), "{stderr}");
    assert!(
        stderr.contains("raise the port"),
        "the new commit is named: {stderr}"
    );
    assert!(
        stderr.contains("notes.txt"),
        "the deletion is shown: {stderr}"
    );
    assert!(stderr.contains("snapshot: git repository at"), "{stderr}");
    assert_eq!(repo.state(), before);
    assert_eq!(repo.git(&["show-ref"]), refs);
    let id = action_id(&stderr);
    let left: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .expect("tmp")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("jarvis-preview-") && n.contains(&id))
        .collect();
    assert!(left.is_empty(), "the preview's clone is removed: {left:?}");
}

#[test]
fn a_docker_preview_shows_the_changed_files_and_leaves_the_container_alone() {
    let env = Env::with_snapshots("pv-docker", "");
    let c = HostContainer::new("pv-docker");
    let before = c.fingerprint();
    let stderr = pending(
        &env,
        &[
            "run",
            "--host",
            "sandbox",
            "--",
            &format!(
                "docker exec {} sh -c 'echo hi > /hello; rm /www/index.html; echo done'",
                c.name
            ),
        ],
    );
    assert!(stderr.contains("preview (docker)"), "{stderr}");
    assert!(stderr.contains("A /hello"), "{stderr}");
    assert!(stderr.contains("D /www/index.html"), "{stderr}");
    assert!(
        stderr.contains("done"),
        "the output in the copy is shown: {stderr}"
    );
    assert_eq!(c.fingerprint(), before);
}

#[test]
fn an_edit_preview_is_its_diff_and_writes_nothing() {
    let env = Env::with_snapshots("pv-edit", "");
    let repo = HostRepo::new("pv-edit");
    let before = repo.state();
    let content = env.dir().join("new.conf");
    std::fs::write(&content, "port = 1\n").expect("write");
    let path = repo.file("app.conf");
    let stderr = pending(
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
    assert!(stderr.contains("preview (edit)"), "{stderr}");
    assert!(
        stderr.contains("-port = 8080") && stderr.contains("+port = 1"),
        "{stderr}"
    );
    assert_eq!(repo.state(), before);
}
