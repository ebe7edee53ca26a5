//! `jarvis audit` on a fresh data directory, as a new user would use it.

use std::process::Command;

use jarvis_core::{ActionId, ActionState, HostName};
use jarvis_store::{NewAction, Store};
use jarvis_tests::{TempDir, jarvis_bin};
use serde_json::json;

fn audit(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(jarvis_bin())
        .arg("audit")
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("JARVIS_DATABASE_URL")
        .env_remove("JARVIS_AUDIT_KEY")
        .output()
        .expect("jarvis runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Seeds the data directory the way the gateway will: actions and their
/// transitions, with the operator's key signing checkpoints.
async fn seed(dir: &TempDir) -> Vec<ActionId> {
    let url = format!("sqlite://{}", dir.path().join("jarvis.db").display());
    let key = jarvis_store::AuditKey::load_or_create(&dir.path().join("audit.key")).expect("key");
    let store = Store::connect(&url)
        .await
        .expect("store")
        .with_checkpoints(key, 4);
    let mut ids = Vec::new();
    for (cmd, host) in [
        ("docker ps", "nas"),
        ("systemctl restart grafana", "web-1"),
        ("uptime", "nas"),
    ] {
        let a = store
            .create_action(&NewAction {
                id: ActionId::new(),
                requester: "agent:chat".into(),
                host: Some(HostName::parse(host).expect("host")),
                command: cmd.into(),
                cwd: None,
                timeout_secs: None,
                kind: jarvis_core::ActionKind::Command,
                edit: None,
                rollback_of: None,
                plan: None,
            })
            .await
            .expect("create");
        store
            .transition(
                a.id,
                ActionState::Proposed,
                ActionState::PendingApproval,
                "gateway",
                None,
                json!({}),
            )
            .await
            .expect("pending");
        ids.push(a.id);
    }
    store
        .transition(
            ids[1],
            ActionState::PendingApproval,
            ActionState::Approved,
            "operator",
            None,
            json!({"reason": "planned"}),
        )
        .await
        .expect("approve");
    store.close().await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_cli_on_a_fresh_data_directory() {
    let dir = TempDir::new("audit-cli");
    // Empty first: the database is created on the fly.
    let (code, out, err) = audit(&dir, &["verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("intact: the log is empty"), "{out}");
    let (code, out, _) = audit(&dir, &["list"]);
    assert_eq!((code, out.trim()), (0, "no events match"));

    let ids = seed(&dir).await;

    // list, newest first, with filters and pages
    let (code, out, _) = audit(&dir, &["list"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    assert!(
        lines[0].contains("action.approved") && lines[0].contains("operator"),
        "{out}"
    );
    assert!(
        lines[6].contains("action.proposed") && lines[6].contains("docker ps"),
        "{out}"
    );
    let (_, out, _) = audit(&dir, &["list", "--host", "web-1"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = audit(&dir, &["list", "--kind", "action.proposed", "--limit", "2"]);
    assert!(out.contains("(more: --page 2)"), "{out}");
    let (_, out, _) = audit(
        &dir,
        &[
            "list",
            "--kind",
            "action.proposed",
            "--limit",
            "2",
            "--page",
            "2",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    let (_, out, _) = audit(&dir, &["list", "--actor", "operator", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json line");
    assert_eq!(v["payload"]["reason"], "planned");
    let (code, _, err) = audit(&dir, &["list", "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a time"), "{err}");

    // show by short id, and by sequence number
    let full = ids[1].to_string();
    let prefix = &full[..full.len() - 4];
    let (code, out, err) = audit(&dir, &["show", prefix]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("state    approved") && out.contains("systemctl restart grafana"),
        "{out}"
    );
    let (code, out, _) = audit(&dir, &["show", "1"]);
    assert_eq!(code, 0);
    assert!(out.contains("kind     action.proposed"), "{out}");
    let (code, _, err) = audit(&dir, &["show", "99"]);
    assert_eq!(code, 2);
    assert!(err.contains("audit event 99 does not exist"), "{err}");

    // verify, with the checkpoint signed by the operator's key
    let (code, out, _) = audit(&dir, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("intact: 7 events") && out.contains("1 signed checkpoints match"),
        "{out}"
    );

    // export, then verify the file offline
    let export = dir.path().join("export.jsonl");
    let (code, _, err) = audit(
        &dir,
        &[
            "export",
            "--format",
            "jsonl",
            "--output",
            export.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = audit(&dir, &["verify", "--file", export.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 7 events"), "{out}");

    // tamper behind Jarvis's back: verify names the event and exits 1
    let db = dir.path().join("jarvis.db");
    let status = Command::new("sqlite3")
        .arg(&db)
        .arg("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'someone-else' WHERE seq = 5;")
        .status()
        .expect("sqlite3");
    assert!(status.success());
    let (code, out, _) = audit(&dir, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("BROKEN at event 5: event 5 was changed after it was written"),
        "{out}"
    );
    // … and the export taken before still verifies: it is a copy.
    let (code, _, _) = audit(&dir, &["verify", "--file", export.to_str().expect("path")]);
    assert_eq!(code, 0);
}
