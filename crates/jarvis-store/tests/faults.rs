//! Faults: a killed process, a full disk, dropped PostgreSQL connections.
//! Each must leave the log whole: every event either fully there or not at
//! all, the chain intact, and every action's state backed by its events.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Kind, TempDir, TestDb};
use jarvis_store::{AuditFilter, NewEvent, Store, StoreError};
use serde_json::json;

/// Every action's state matches the last event about it.
async fn actions_match_events(store: &Store) {
    let actions = store.actions(None, 100_000).await.expect("actions");
    let events = store
        .events(&AuditFilter {
            limit: Some(100_000),
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    for a in &actions {
        let last = events
            .iter()
            .find(|e| e.action_id.as_deref() == Some(&a.id.to_string()))
            .unwrap_or_else(|| panic!("action {} has no event", a.id));
        assert_eq!(last.kind, format!("action.{}", a.state), "action {}", a.id);
    }
}

fn victim_binary() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "jarvis-store",
            "--example",
            "append_loop",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the append_loop example failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")).to_owned()
        });
    target.join("debug/examples/append_loop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leaves_no_torn_event() {
    let bin = victim_binary();
    for db in TestDb::both() {
        let store = db.store().await;
        for round in 0..3 {
            let mut child = Command::new(&bin)
                .arg(&db.url)
                .spawn()
                .expect("victim starts");
            // Let it write for a while, then kill it without warning,
            // mid-transaction as likely as not.
            let start = Instant::now();
            loop {
                let n = store.verify(None).await.expect("verify").events;
                if n > 40 * (round + 1) || start.elapsed() > Duration::from_secs(20) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
            let report = store.verify(None).await.expect("verify");
            assert!(
                report.is_intact(),
                "{:?} round {round}: {report:?}",
                db.kind
            );
            actions_match_events(&store).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_writes_nothing() {
    let dir = TempDir::new("full-disk");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount runs");
    assert!(
        mounted.success(),
        "this test mounts a 512 KiB tmpfs and needs root (as CI has)"
    );
    let url = format!("sqlite://{}", dir.path().join("jarvis.db").display());
    let result = async {
        let store = Store::connect(&url).await.expect("store");
        let mut written = 0u64;
        let err = loop {
            match store
                .append(NewEvent {
                    actor: "operator".into(),
                    action_id: None,
                    host: None,
                    kind: "test.fill".into(),
                    payload: json!({ "output": "y".repeat(4000) }),
                })
                .await
            {
                Ok(_) => written += 1,
                Err(e) => break e,
            }
            assert!(written < 10_000, "the disk never filled");
        };
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("disk holding the database is full"),
            "{err}"
        );
        let report = store.verify(None).await.expect("verify still reads");
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.events, written, "nothing half-written");
        store.close().await;
    }
    .await;
    let _ = Command::new("umount").arg(dir.path()).status();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_postgres_connections_never_tear_the_chain() {
    let db = TestDb::new(Kind::Postgres);
    let store = db.store().await;
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = store.clone();
            tokio::spawn(async move {
                let (mut ok, mut lost) = (0u64, 0u64);
                for i in 0..150 {
                    match s
                        .append(NewEvent {
                            actor: format!("writer:{t}"),
                            action_id: None,
                            host: None,
                            kind: "test.append".into(),
                            payload: json!({ "i": i }),
                        })
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(StoreError::ConnectionLost { .. }) => lost += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                (ok, lost)
            })
        })
        .collect();
    // Kill the writers' server connections again and again.
    for _ in 0..15 {
        let _ = db.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (mut ok, mut lost) = (0, 0);
    for w in writers {
        let (o, l) = w.await.expect("writer");
        ok += o;
        lost += l;
    }
    assert!(
        lost > 0,
        "no connection was dropped mid-write; the test proved nothing"
    );
    let report = store.verify(None).await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    // Every acknowledged event is there. A connection dropped during COMMIT
    // may have committed without the client hearing back, so up to `lost`
    // more may be there too, each whole.
    assert!(
        report.events >= ok && report.events <= ok + lost,
        "{} events for {ok} acknowledged and {lost} lost",
        report.events
    );
}
