//! A pending action's live preview runs on the host before anyone approved
//! it. Against the real sandbox host, through the library pipeline (one
//! gateway process, so its rate limits carry from one proposal to the
//! next): spellings of the repository's path that a text replacement
//! missed and sed scripts that write elsewhere leave every file of the real
//! repository and `/tmp` as they were, byte for byte, while a plain edit
//! still gets its diff; and previews count against the host's rate limit
//! like runs, with `action.preview_started` audited before one is sent.
//!
//! Each test uses a repository of its own (`HostRepo`, beside the demo
//! repository under `/srv/jarvis-demo`), so tests running beside it cannot
//! change the bytes it compares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jarvis_core::{ActionState, HostName};
use jarvis_exec::ExecError;
use jarvis_gateway::{Gateway, GatewayError, Proposal, Proposed, Work};
use jarvis_store::AuditFilter;
use jarvis_tests::fixtures::HostRepo;
use jarvis_tests::{Env, marker};

async fn open(env: &Env) -> Gateway {
    jarvis_tests::gateway(&env.config, &env.dir().join("jarvis.db"), "pc").await
}

/// A config whose host `sandbox` snapshots `repo` (so a path in it is in
/// scope for a live preview) with `host_limits` for its limits.
fn env_for(tag: &str, repo: &HostRepo, host_limits: &str) -> Env {
    let env = Env::new(tag, host_limits, "");
    let mut text = std::fs::read_to_string(&env.config).expect("read config");
    text.push_str(&format!(
        "\n[hosts.sandbox.snapshots]\nrepos = [\"{}\"]\n",
        repo.path.display()
    ));
    std::fs::write(&env.config, text).expect("write config");
    env
}

async fn propose(gw: &Gateway, command: &str, cwd: Option<&str>) -> Proposed {
    let p = gw
        .propose(Proposal {
            requester: "agent".into(),
            host: HostName::parse("sandbox").expect("valid"),
            work: Work::Command {
                line: command.into(),
                cwd: cwd.map(str::to_owned),
            },
            timeout: None,
            purpose: None,
        })
        .await
        .expect("proposed");
    assert_eq!(
        p.action.state,
        ActionState::PendingApproval,
        "`{command}` should wait for a person: {:?}",
        p.judgement.reasons
    );
    p
}

/// The preview stored with the action: its kind, summary lines and diff.
fn preview_of(p: &Proposed) -> (String, Vec<String>, String) {
    let v = p.action.preview.clone().expect("a preview is attached");
    (v.kind.as_str().to_owned(), v.summary, v.diff)
}

/// Every file of the repository with its bytes, `.git` included: only git's
/// object store is left out, where capturing the state before a preview
/// adds tree objects (new objects change nothing a repository shows).
fn bytes_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
            if rel == Path::new(".git/objects") {
                continue;
            }
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                walk(root, &path, into);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).expect("read link");
                into.insert(rel, target.into_os_string().into_encoded_bytes());
            } else {
                into.insert(rel, std::fs::read(&path).expect("read file"));
            }
        }
    }
    let mut all = BTreeMap::new();
    walk(dir, dir, &mut all);
    all
}

/// Files in `/tmp` whose names start with `prefix`.
fn in_tmp(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/tmp")
        .expect("read /tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

async fn preview_events(gw: &Gateway, id: jarvis_core::ActionId) -> Vec<String> {
    gw.store()
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .into_iter()
        .rev()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("action.preview"))
        .collect()
}

#[tokio::test]
async fn spellings_and_sed_writes_leave_the_repository_and_tmp_untouched() {
    let repo = HostRepo::new("pv-confined");
    let env = env_for("pv-confined", &repo, "");
    let gw = open(&env).await;
    let top = repo.path.display().to_string();
    let rel = top
        .strip_prefix("/srv/jarvis-demo/")
        .expect("test repositories live under the demo directory");
    let before = bytes_of(&repo.path);
    let mark = format!("outside-{}", marker("pvc"));

    // Each spelling names the repository's app.conf; replayed on the
    // parsed words, each lands in the clone and shows as a diff there.
    for spelled in [
        format!("/srv//jarvis-demo/{rel}/app.conf"),
        format!("/srv/./jarvis-demo/{rel}/app.conf"),
        format!("/srv/jarvis-de''mo/{rel}/app.conf"),
        format!("/srv/jarvis-demo/{rel}/../{}/./app.conf", repo_name(&top)),
    ] {
        let p = propose(&gw, &format!("echo hacked > {spelled}"), None).await;
        let (kind, summary, diff) = preview_of(&p);
        assert_eq!(kind, "git", "{spelled}: {summary:?}");
        assert!(
            diff.contains("-port = 8080") && diff.contains("+hacked"),
            "{spelled}: {diff}"
        );
        assert_eq!(
            preview_events(&gw, p.action.id).await,
            ["action.preview_started", "action.previewed"],
            "started is audited before the preview is sent"
        );
        assert!(
            bytes_of(&repo.path) == before,
            "{spelled} reached the real repository"
        );
    }

    // Scripts that write a file outside the clone are not replayed; the
    // action still waits, with the plan and the reason.
    let writes = [
        (
            format!("sed -i 's/port/hacked/w /tmp/{mark}-a' {top}/app.conf"),
            None,
        ),
        (
            format!("sed -i 's/port/hacked/w /tmp/{mark}-b' app.conf"),
            Some(top.as_str()),
        ),
        (
            format!("sed -i 's/port/hacked/w/tmp/{mark}-c' app.conf"),
            Some(top.as_str()),
        ),
        (
            format!("sed -i -e 's/port/hacked/' -e 'w /tmp/{mark}-d' {top}/app.conf"),
            None,
        ),
    ];
    for (command, cwd) in &writes {
        let p = propose(&gw, command, *cwd).await;
        let (kind, summary, _) = preview_of(&p);
        assert_eq!(kind, "plan", "{command}: {summary:?}");
        assert!(
            summary[0].starts_with("no live preview: the host refused it")
                && summary[0].contains("not replayed"),
            "{command}: {summary:?}"
        );
        assert!(
            bytes_of(&repo.path) == before,
            "{command} reached the real repository"
        );
        assert_eq!(
            in_tmp(&mark),
            Vec::<String>::new(),
            "{command} wrote in /tmp"
        );
    }

    // A plain edit inside the repository still gets its live diff.
    let p = propose(&gw, &format!("sed -i 's/8080/9090/' {top}/app.conf"), None).await;
    let (kind, summary, diff) = preview_of(&p);
    assert_eq!(kind, "git", "{summary:?}");
    assert!(
        diff.contains("-port = 8080") && diff.contains("+port = 9090"),
        "{diff}"
    );
    assert!(
        bytes_of(&repo.path) == before,
        "the real repository changed"
    );
    assert_eq!(in_tmp(&mark), Vec::<String>::new());
    gw.close().await;
}

/// The last component of the repository's path.
fn repo_name(top: &str) -> &str {
    top.rsplit('/').next().unwrap_or(top)
}

#[tokio::test]
async fn previews_count_against_the_hosts_rate_limit() {
    let repo = HostRepo::new("pv-rate");
    let env = env_for("pv-rate", &repo, "rate_per_minute = 1\nburst = 2");
    let gw = open(&env).await;
    let top = repo.path.display().to_string();
    let before = bytes_of(&repo.path);

    // The host lets two acts through a minute: two previews take them.
    for n in 0..2 {
        let p = propose(&gw, &format!("sed -i 's/8080/80{n}/' {top}/app.conf"), None).await;
        let (kind, summary, _) = preview_of(&p);
        assert_eq!(kind, "git", "{summary:?}");
        assert_eq!(
            preview_events(&gw, p.action.id).await,
            ["action.preview_started", "action.previewed"]
        );
    }
    // The third proposal still waits for a person, with the plan and the
    // limit that refused its preview; nothing was sent, so nothing started.
    let p = propose(&gw, &format!("sed -i 's/8080/802/' {top}/app.conf"), None).await;
    let (kind, summary, _) = preview_of(&p);
    assert_eq!(kind, "plan", "{summary:?}");
    assert!(
        summary[0]
            .starts_with("no live preview: rate limit (host `sandbox`, 1 per minute) reached"),
        "{summary:?}"
    );
    assert_eq!(preview_events(&gw, p.action.id).await, ["action.previewed"]);

    // The budget the previews spent is the runs' budget too: once approved,
    // the action is refused by the same limit and left approved.
    gw.approve(p.action.id, "local:operator", None)
        .await
        .expect("approved");
    let err = gw
        .execute(p.action.id, "local:operator", &mut |_| {})
        .await
        .expect_err("the host's budget is spent");
    let GatewayError::NotSent {
        source: ExecError::RateLimited(limited),
        ..
    } = &err
    else {
        panic!("expected the host's rate limit, got {err}");
    };
    assert!(err.to_string().contains("host `sandbox`"), "{err}");
    assert!(limited.retry_after.as_secs() > 1, "{err}");
    assert_eq!(
        gw.store().action(p.action.id).await.expect("action").state,
        ActionState::Approved
    );
    assert!(
        bytes_of(&repo.path) == before,
        "the real repository changed"
    );
    gw.close().await;
}
