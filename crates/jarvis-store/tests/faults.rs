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
    // Without the variables cargo set for this test: ring's build script
    // watches CARGO_MANIFEST_DIR, and a build that saw it changed would
    // rebuild the TLS stack here and again in the next build outside.
    let status = Command::new(cargo)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_MANIFEST_PATH")
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

/// A small tmpfs mounted on a fresh directory, unmounted when dropped
/// (also when the test fails).
struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = TempDir::new(tag);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "this test mounts a {size} tmpfs and needs root (as CI has)"
        );
        Tmpfs(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn filler(i: usize) -> NewEvent {
    NewEvent {
        actor: format!("writer:{}", i % 8),
        action_id: None,
        host: None,
        kind: "test.fill".into(),
        payload: json!({ "output": format!("{i}").repeat(1000) }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_is_a_clear_error_keeps_every_acknowledged_write_and_passes() {
    let fs = Tmpfs::mount("full-disk", "1m");
    // Room given back later: the disk fills with this file on it.
    let spare = fs.path().join("spare");
    std::fs::write(&spare, vec![0u8; 256 << 10]).expect("spare file");
    let db = fs.path().join("jarvis.db");
    let url = format!("sqlite://{}", db.display());
    let store = Store::connect(&url).await.expect("store");
    // Eight writers at once until each is refused, as a server under load.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let s = store.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..10_000 {
                    match s.append(filler(i * 8 + w)).await {
                        Ok(ev) => acked.push((ev.seq, ev.hash)),
                        Err(e) => return (acked, e),
                    }
                }
                panic!("the disk never filled");
            })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        let (mine, err) = w.await.expect("writer");
        acked.extend(mine);
        assert!(matches!(err, StoreError::NoSpace { .. }), "{err}");
        if let StoreError::NoSpace { database, .. } = &err {
            assert!(database.contains(&db.display().to_string()), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("is full") && text.contains("nothing was written"),
                "{text}"
            );
        }
    }
    assert!(
        !acked.is_empty(),
        "nothing was written before the disk filled"
    );
    // Another process's view (a connection of its own): every write that
    // was acknowledged is there, as acknowledged, and nothing else is.
    let other = Store::connect(&url).await.expect("a second store");
    let report = other.verify(None).await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, acked.len() as u64, "acknowledged = stored");
    for (seq, hash) in &acked {
        assert_eq!(&other.event(*seq).await.expect("acked event").hash, hash);
    }
    // The probe says what a write would meet.
    let probe = store.probe_write().await;
    assert!(
        matches!(probe, Err(StoreError::NoSpace { .. })),
        "{probe:?}"
    );
    // Space comes back: the same store writes again, without a restart,
    // and the other sees it.
    std::fs::remove_file(&spare).expect("free the spare room");
    store.probe_write().await.expect("the probe passes again");
    let ev = store.append(filler(0)).await.expect("writes pass again");
    assert_eq!(other.event(ev.seq).await.expect("seen").hash, ev.hash);
    assert!(other.verify(None).await.expect("verify").is_intact());
    other.close().await;
    store.close().await;
    drop(fs);
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
