//! `jarvis audit` on a fresh data directory, as a new user would use it.

use std::process::Command;
use std::time::Duration;

use jarvis_core::{ActionId, ActionState, HostName};
use jarvis_store::{NewAction, OffsetDateTime, Store, parse_time};
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
                purpose: None,
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

/// The `at` of every event, oldest first, as `audit list --json` prints it.
fn times(dir: &TempDir) -> Vec<(i64, String)> {
    let (code, out, err) = audit(dir, &["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let mut all: Vec<(i64, String)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["seq"].as_i64().expect("seq"),
                v["at"].as_str().expect("at").to_owned(),
            )
        })
        .collect();
    all.reverse();
    all
}

/// The sequence numbers `audit list` prints with these filter flags, oldest
/// first.
fn seqs(dir: &TempDir, flags: &[&str]) -> Vec<i64> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(flags);
    let (code, out, err) = audit(dir, &args);
    assert_eq!(code, 0, "{flags:?}: {err}");
    let mut found: Vec<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json line")["seq"]
                .as_i64()
                .expect("seq")
        })
        .collect();
    found.reverse();
    found
}

/// `t` written in another offset: the same instant, as a clock `hours`
/// ahead of UTC shows it.
fn in_offset(t: OffsetDateTime, hours: i64) -> String {
    let shifted = if hours >= 0 {
        t + Duration::from_secs(hours.unsigned_abs() * 3600)
    } else {
        t - Duration::from_secs(hours.unsigned_abs() * 3600)
    };
    let utc = jarvis_store::timestamp(shifted);
    let sign = if hours >= 0 { '+' } else { '-' };
    format!(
        "{}{sign}{:02}:00",
        utc.trim_end_matches('Z'),
        hours.unsigned_abs()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_compares_times_whatever_their_offset_or_precision() {
    let dir = TempDir::new("audit-cli-times");
    seed(&dir).await;
    let all = times(&dir);
    assert_eq!(all.len(), 7);
    let parsed: Vec<(i64, OffsetDateTime)> = all
        .iter()
        .map(|(seq, at)| (*seq, parse_time(at).expect("a stored time")))
        .collect();
    let at_or_after = |bound: OffsetDateTime| -> Vec<i64> {
        parsed
            .iter()
            .filter(|(_, t)| *t >= bound)
            .map(|(s, _)| *s)
            .collect()
    };
    let before = |bound: OffsetDateTime| -> Vec<i64> {
        parsed
            .iter()
            .filter(|(_, t)| *t < bound)
            .map(|(s, _)| *s)
            .collect()
    };

    // The fourth event's time written with +02:00 and -05:00: the same
    // instant, so the same split, although as text it sorts elsewhere.
    let fourth = parsed[3].1;
    let east = in_offset(fourth, 2);
    let west = in_offset(fourth, -5);
    assert!(east.ends_with("+02:00") && west.ends_with("-05:00"));
    assert_eq!(seqs(&dir, &["--since", &east]), at_or_after(fourth));
    assert_eq!(seqs(&dir, &["--until", &west]), before(fourth));
    assert_eq!(
        seqs(&dir, &["--since", &west, "--until", &east]),
        Vec::<i64>::new()
    );
    assert_eq!(seqs(&dir, &["--since", &east]), vec![4, 5, 6, 7]);

    // A whole second without a fraction: stored times within that second
    // carry one, and still count as after it.
    let first = &all[0].1;
    let whole = format!("{}Z", &first[..19]);
    assert_eq!(seqs(&dir, &["--since", &whole]), vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(seqs(&dir, &["--until", &whole]), Vec::<i64>::new());
    let no_offset = format!("{} {}", &first[..10], &first[11..19]);
    assert_eq!(
        seqs(&dir, &["--since", &no_offset]),
        vec![1, 2, 3, 4, 5, 6, 7]
    );

    // What is not a time names the flag and the value.
    for (flag, value) in [
        ("--since", "yesterday"),
        ("--until", "2026-11-23T14:00:00+0200"),
    ] {
        let (code, out, err) = audit(&dir, &["list", flag, value]);
        assert_eq!(code, 2, "{out}");
        assert!(
            err.contains(&format!(
                "jarvis: {flag}: `{value}` is not a time: use a date"
            )) && err.contains("RFC 3339"),
            "{err}"
        );
    }
}
