//! The store on both backends: lifecycle, concurrency, the chain, and
//! tampering behind Jarvis's back with the databases' own clients.

mod common;

use common::{Kind, TestDb};
use jarvis_core::{ActionId, ActionState, Decision, HostName, Risk};
use jarvis_store::{
    AuditFilter, AuditKey, Judged, NewAction, NewEvent, OffsetDateTime, Store, StoreError,
    verify_lines,
};
use serde_json::json;

fn new_action(cmd: &str) -> NewAction {
    NewAction {
        id: ActionId::new(),
        requester: "agent:test".into(),
        host: Some(HostName::parse("nas").expect("host")),
        command: cmd.into(),
        cwd: None,
        timeout_secs: None,
        kind: jarvis_core::ActionKind::Command,
        edit: None,
        rollback_of: None,
        plan: None,
        purpose: None,
    }
}

fn judged(decision: Decision, score: u32) -> Judged {
    Judged {
        decision,
        risk: Risk::new(score).expect("risk"),
        reasons: vec!["because".into()],
    }
}

/// A new action of `cmd`, judged to wait for a person.
async fn waiting(store: &Store, cmd: &str) -> jarvis_store::ActionRecord {
    let a = store.create_action(&new_action(cmd)).await.expect("create");
    store
        .transition(
            a.id,
            ActionState::Proposed,
            ActionState::PendingApproval,
            "gateway",
            Some(&judged(Decision::Approve, 45)),
            json!({}),
        )
        .await
        .expect("pending")
}

async fn event_count(store: &Store) -> usize {
    store
        .events(&AuditFilter {
            limit: Some(100_000),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_with_one_event_per_transition() {
    for db in TestDb::both() {
        let store = db.store().await;
        let a = store
            .create_action(&new_action("systemctl restart nginx"))
            .await
            .expect("create");
        assert_eq!(a.state, ActionState::Proposed);
        let a = store
            .transition(
                a.id,
                ActionState::Proposed,
                ActionState::PendingApproval,
                "gateway",
                Some(&judged(Decision::Approve, 45)),
                json!({}),
            )
            .await
            .expect("pending");
        assert_eq!(a.decision, Some(Decision::Approve));
        assert_eq!(a.risk.map(|r| r.score()), Some(45));
        let a = store
            .transition(
                a.id,
                ActionState::PendingApproval,
                ActionState::Approved,
                "user:alice",
                None,
                json!({"reason": "ok"}),
            )
            .await
            .expect("approve");
        assert_eq!(a.state, ActionState::Approved);
        assert_eq!(a.version, 2);
        let events = store
            .events(&AuditFilter {
                action_id: Some(a.id.to_string()),
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "action.approved",
                "action.pending_approval",
                "action.proposed"
            ],
            "{:?}",
            db.kind
        );
        assert_eq!(events[0].actor, "user:alice");
        assert_eq!(events[0].host.as_deref(), Some("nas"));
        assert!(events[0].payload.contains("\"reason\":\"ok\""));
        // A page of the log that starts at an event (a break, shown in place).
        let older = store
            .events(&AuditFilter {
                action_id: Some(a.id.to_string()),
                upto: Some(events[1].seq),
                ..AuditFilter::default()
            })
            .await
            .expect("events up to one");
        assert_eq!(
            older.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [events[1].seq, events[2].seq],
            "{:?}",
            db.kind
        );

        // An illegal move and a stale one are refused, and write nothing.
        let before = event_count(&store).await;
        let e = store
            .transition(
                a.id,
                ActionState::Approved,
                ActionState::Succeeded,
                "gateway",
                None,
                json!({}),
            )
            .await
            .expect_err("approved cannot become succeeded");
        assert!(matches!(e, StoreError::IllegalTransition { .. }), "{e}");
        assert!(e.to_string().contains("cannot become succeeded"), "{e}");
        let e = store
            .transition(
                a.id,
                ActionState::PendingApproval,
                ActionState::Rejected,
                "user:bob",
                None,
                json!({}),
            )
            .await
            .expect_err("stale");
        assert_eq!(
            e.to_string(),
            format!(
                "action {} is already approved, not pending_approval; someone else acted on it first",
                a.id
            )
        );
        assert_eq!(event_count(&store).await, before);
        assert_eq!(
            store.action(a.id).await.expect("read").state,
            ActionState::Approved
        );
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_have_exactly_one_winner() {
    for db in TestDb::both() {
        let store = db.store().await;
        for _ in 0..15 {
            let a = store
                .create_action(&new_action("docker restart grafana"))
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
            let moves = [
                ActionState::Approved,
                ActionState::Rejected,
                ActionState::Expired,
            ];
            let tasks: Vec<_> = moves
                .into_iter()
                .map(|to| {
                    let s = store.clone();
                    tokio::spawn(async move {
                        s.transition(
                            a.id,
                            ActionState::PendingApproval,
                            to,
                            "racer",
                            None,
                            json!({}),
                        )
                        .await
                    })
                })
                .collect();
            let mut wins = 0;
            for t in tasks {
                match t.await.expect("task") {
                    Ok(_) => wins += 1,
                    Err(StoreError::Conflict { found, .. }) => {
                        assert_ne!(found, ActionState::PendingApproval)
                    }
                    Err(e) => panic!("{:?}: unexpected error {e}", db.kind),
                }
            }
            assert_eq!(wins, 1, "{:?}", db.kind);
        }
        let report = store.verify(None).await.expect("verify");
        assert!(report.is_intact(), "{report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_fork_the_chain() {
    for db in TestDb::both() {
        // Two stores on one database stand for two gateway processes.
        let stores = [db.store().await, db.store().await];
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let s = stores[t % 2].clone();
                tokio::spawn(async move {
                    for i in 0..40 {
                        s.append(NewEvent {
                            actor: format!("writer:{t}"),
                            action_id: None,
                            host: None,
                            kind: "test.append".into(),
                            payload: json!({ "i": i }),
                        })
                        .await
                        .expect("append");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let report = stores[0].verify(None).await.expect("verify");
        assert!(report.is_intact(), "{:?}: {report:?}", db.kind);
        assert_eq!(report.events, 320);
        assert_eq!(report.last_seq, 320);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_are_redacted_and_the_redaction_recorded() {
    for db in TestDb::both() {
        let store = db.store().await;
        let a = store
            .create_action(&new_action("PGPASSWORD=hunter2 psql -h db -c 'select 1'"))
            .await
            .expect("create");
        let events = store
            .events(&AuditFilter {
                action_id: Some(a.id.to_string()),
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        let p = &events[0].payload;
        assert!(!p.contains("hunter2"), "{p}");
        assert!(p.contains("PGPASSWORD=[REDACTED]"), "{p}");
        assert!(
            p.contains(r#""redacted":[{"field":"command","kind":"secret assignment"}]"#),
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_ids_resolve() {
    for db in TestDb::both() {
        let store = db.store().await;
        let a = store
            .create_action(&new_action("uptime"))
            .await
            .expect("create");
        let full = a.id.to_string();
        assert_eq!(store.resolve_action(&full).await.expect("full"), a.id);
        // UUID v7 ids share their leading time bits, so the unique part is
        // at the end for ids made in the same millisecond; any unique
        // prefix works, however long.
        let unique = (4..=full.len())
            .map(|n| &full[..n])
            .find(|p| !p.ends_with('-'))
            .expect("a prefix");
        assert_eq!(store.resolve_action(unique).await.expect("prefix"), a.id);
        let b = store
            .create_action(&new_action("uptime"))
            .await
            .expect("create");
        let common: String = full
            .chars()
            .zip(b.id.to_string().chars())
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| x)
            .collect();
        if common.len() >= 4 && !common.ends_with('-') {
            assert!(matches!(
                store.resolve_action(&common).await,
                Err(StoreError::Ambiguous { .. })
            ));
        }
        assert!(matches!(
            store.resolve_action("ffffffff").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.resolve_action("ab").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

/// Writes `n` events and returns a store with checkpoints every 5 events.
async fn chain(db: &TestDb, key: AuditKey, n: usize) -> Store {
    let store = db.store().await.with_checkpoints(key, 5);
    for i in 0..n {
        store
            .append(NewEvent {
                actor: "operator".into(),
                action_id: None,
                host: Some("nas".into()),
                kind: "test.event".into(),
                payload: json!({ "i": i }),
            })
            .await
            .expect("append");
    }
    store
}

fn problem(report: &jarvis_store::VerifyReport) -> (i64, String) {
    let p = report.problem.as_ref().expect("a break is reported");
    (p.seq, p.what.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_refuses_edits_of_the_log() {
    for db in TestDb::both() {
        // Six events: the checkpoint at 5 gives the last statement a row.
        let _store = chain(&db, AuditKey::ephemeral(), 6).await;
        for sql in [
            "UPDATE audit_events SET payload = '{}' WHERE seq = 2",
            "DELETE FROM audit_events WHERE seq = 3",
            "UPDATE audit_checkpoints SET hash = 'x'",
        ] {
            let e = db.sql(sql).expect_err("refused");
            assert!(e.contains("append-only"), "{:?} {sql}: {e}", db.kind);
        }
        if db.kind == Kind::Postgres {
            let e = db.sql("TRUNCATE audit_events").expect_err("refused");
            assert!(e.contains("append-only"), "{e}");
        }
    }
}

/// SQL that removes the append-only triggers, as a tamperer would first.
fn drop_triggers(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER audit_checkpoints_no_delete;"
        }
        Kind::Postgres => {
            "DROP TRIGGER audit_events_no_change ON audit_events; \
             DROP TRIGGER audit_checkpoints_no_change ON audit_checkpoints;"
        }
    }
}

/// SQL that rewrites the chain from the start with event 3 forged and every
/// hash recomputed, head included: only signed checkpoints can tell.
fn recompute_with_forgery(events: &[jarvis_store::AuditEvent]) -> String {
    let mut prev = "0".repeat(64);
    let mut sql = String::new();
    for e in events {
        let mut e = e.clone();
        if e.seq == 3 {
            e.payload = r#"{"i":"forged"}"#.into();
        }
        e.prev_hash = prev.clone();
        e.hash = e.expected_hash(&prev);
        prev = e.hash.clone();
        sql.push_str(&format!(
            " UPDATE audit_events SET payload = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {};",
            e.payload, e.prev_hash, e.hash, e.seq
        ));
    }
    sql + &format!(" UPDATE audit_head SET hash = '{prev}';")
}

type Tamper = fn(&[jarvis_store::AuditEvent]) -> String;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tampering_behind_jarvis_back_is_named_by_verify() {
    // Each case: what is done to a 12-event chain (checkpoints at 5 and 10)
    // with the database's own client, and where and how verify names it.
    let cases: [(&str, Tamper, i64, &str); 6] = [
        (
            "edited payload",
            |_| "UPDATE audit_events SET payload = '{\"i\":99}' WHERE seq = 7;".into(),
            7,
            "event 7 was changed after it was written",
        ),
        (
            "deleted event",
            |_| "DELETE FROM audit_events WHERE seq = 4;".into(),
            4,
            "events 4 to 4 are missing",
        ),
        (
            "swapped events",
            |_| {
                "UPDATE audit_events SET seq = -1 WHERE seq = 5; UPDATE audit_events SET seq = 5 WHERE seq = 6; \
                 UPDATE audit_events SET seq = 6 WHERE seq = -1;"
                .into()
            },
            5,
            "event 5 does not follow event 4",
        ),
        (
            "tail cut off",
            |_| "DELETE FROM audit_events WHERE seq > 9;".into(),
            10,
            "chain head records 12 events",
        ),
        (
            "tail cut off, head moved to match",
            |ev| {
                format!(
                    "DELETE FROM audit_events WHERE seq > 9; UPDATE audit_head SET seq = 9, hash = '{}';",
                    ev[8].hash
                )
            },
            10,
            "a signed checkpoint covers event 10",
        ),
        (
            "chain recomputed after a forgery",
            recompute_with_forgery,
            5,
            "differs from what the checkpoint signed",
        ),
    ];
    for kind in [Kind::Sqlite, Kind::Postgres] {
        for (name, tamper, seq, says) in cases {
            let db = TestDb::new(kind);
            let store = chain(&db, AuditKey::ephemeral(), 12).await;
            assert!(store.verify(None).await.expect("verify").is_intact());
            let mut events = store
                .events(&AuditFilter {
                    limit: Some(1000),
                    ..AuditFilter::default()
                })
                .await
                .expect("events");
            events.reverse();
            db.sql(&format!("{} {}", drop_triggers(kind), tamper(&events)))
                .expect("tamper");
            let (at, what) = problem(&store.verify(None).await.expect("verify"));
            assert_eq!(at, seq, "{kind:?} {name}: {what}");
            assert!(what.contains(says), "{kind:?} {name}: {what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoints_are_checked_against_the_operators_key() {
    for db in TestDb::both() {
        let key = AuditKey::ephemeral();
        let key_again = AuditKey::ephemeral();
        let store = chain(&db, key, 11).await;
        let report = store.verify(None).await.expect("verify");
        assert!(report.is_intact());
        assert_eq!(report.checkpoints_unchecked, 2);
        // Against a different key, the checkpoints do not count.
        let (seq, what) = problem(&store.verify(Some(&key_again)).await.expect("verify"));
        assert_eq!(seq, 5);
        assert!(what.contains("signed by another key"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_verify_offline() {
    for db in TestDb::both() {
        let key = AuditKey::ephemeral();
        let public = key.public_hex();
        let store = chain(&db, key, 12).await;
        let mut out = Vec::new();
        assert_eq!(store.export(&mut out).await.expect("export"), 12);
        let report = verify_lines(out.as_slice(), Some(&public)).expect("read");
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.checkpoints_verified, 2);
        // An edited line in the file.
        let text = String::from_utf8(out)
            .expect("utf-8")
            .replacen("\"i\":3", "\"i\":4", 1);
        let (seq, what) = problem(&verify_lines(text.as_bytes(), Some(&public)).expect("read"));
        assert_eq!(seq, 4);
        assert!(what.contains("changed after it was written"), "{what}");
        // A file cut short before a checkpoint it still carries.
        let cut: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("\"seq\":12,"))
            .collect();
        let report = verify_lines(cut.join("\n").as_bytes(), Some(&public)).expect("read");
        assert!(report.problem.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_is_a_clear_error_and_writes_nothing() {
    use std::io::Write;
    let db = TestDb::new(Kind::Sqlite);
    chain(&db, AuditKey::ephemeral(), 2).await;
    let store = db
        .store_waiting(std::time::Duration::from_millis(300))
        .await
        .with_checkpoints(AuditKey::ephemeral(), 5);
    // Another process holds the write lock.
    let mut holder = std::process::Command::new("sqlite3")
        .arg(db.file.as_ref().expect("file"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sqlite3");
    let stdin = holder.stdin.as_mut().expect("stdin");
    writeln!(stdin, "BEGIN EXCLUSIVE; INSERT INTO audit_head (id, seq, hash) SELECT 2, 0, 'x' WHERE 0; SELECT 'locked';").expect("write");
    stdin.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = store
        .append(NewEvent {
            actor: "operator".into(),
            action_id: None,
            host: None,
            kind: "test.locked".into(),
            payload: json!({}),
        })
        .await
        .expect_err("locked");
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked by another process"), "{e}");
    drop(holder.stdin.take());
    let _ = holder.wait();
    let report = store.verify(None).await.expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.events, 2, "nothing half-written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_privileges_refuse_edits_even_without_the_triggers() {
    let db = TestDb::new(Kind::Postgres);
    let _store = chain(&db, AuditKey::ephemeral(), 3).await;
    // A gateway role as a deployment would create it: it may read and
    // append, nothing else. The triggers are gone; the privileges remain.
    let role = format!("jarvis_app_{}", std::process::id());
    db.sql(&format!(
        "DROP TRIGGER audit_events_no_change ON audit_events; \
         DROP ROLE IF EXISTS {role}; CREATE ROLE {role}; \
         GRANT SELECT, INSERT ON audit_events TO {role};"
    ))
    .expect("setup");
    for sql in [
        "UPDATE audit_events SET payload = '{}' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 3",
    ] {
        let e = db
            .sql(&format!("SET ROLE {role}; {sql}"))
            .expect_err("refused");
        assert!(e.contains("permission denied"), "{sql}: {e}");
    }
    db.sql(&format!(
        "SET ROLE {role}; SELECT count(*) FROM audit_events"
    ))
    .expect("it may read");
    let _ = db.sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// Moves a fresh action through to `running` and ends it `succeeded`.
async fn succeeded(store: &Store, cmd: &str) -> ActionId {
    let a = store.create_action(&new_action(cmd)).await.expect("create");
    for (from, to) in [
        (ActionState::Proposed, ActionState::Approved),
        (ActionState::Approved, ActionState::Running),
    ] {
        store
            .transition(a.id, from, to, "test", None, json!({}))
            .await
            .expect("transition");
    }
    store
        .finish_run(a.id, ActionState::Succeeded, "test", &run())
        .await
        .expect("finish");
    // What the kernel allowed is kept with the run.
    let kept = store.run_of(a.id).await.expect("read").expect("a run");
    assert_eq!(kept.kernel, run().kernel);
    a.id
}

fn run() -> jarvis_store::RunRecord {
    jarvis_store::RunRecord {
        started_at: jarvis_store::now(),
        finished_at: jarvis_store::now(),
        ending: "exited".into(),
        exit_code: Some(0),
        signal: None,
        duration_ms: 1,
        killed: 0,
        stdout: Default::default(),
        stderr: Default::default(),
        error: None,
        kernel: Some("kernel: read-only, runs 2 program files, no network".into()),
        host_account: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_are_written_once_and_a_rollback_ends_both_actions_together() {
    for db in TestDb::both() {
        let store = db.store().await;
        let id = succeeded(&store, "git commit -am x").await;
        store
            .record_snapshot(id, "nas", &json!({"repos": []}), json!({"repos": 0}))
            .await
            .expect("snapshot");
        store
            .record_after(id, &json!({"after": 1}))
            .await
            .expect("after");
        // The database's own client first: a store call refused below
        // leaves its rollback to the pool, which a client may race.
        for sql in [
            "UPDATE snapshots SET manifest = '{}'",
            "UPDATE snapshots SET after = '{}'",
            "DELETE FROM snapshots",
        ] {
            let e = db.sql(sql).expect_err("refused");
            assert!(e.contains("snapshot"), "{:?} {sql}: {e}", db.kind);
        }
        assert!(
            store
                .record_snapshot(id, "nas", &json!({}), json!({}))
                .await
                .is_err(),
            "one snapshot per action"
        );
        assert!(store.record_after(id, &json!({"after": 2})).await.is_err());
        let s = store.snapshot(id).await.expect("read").expect("exists");
        assert_eq!(s.after, Some(json!({"after": 1})));

        // The rollback's own run and the original's move commit together.
        let mut rb = new_action(&format!("rollback {id}"));
        rb.kind = jarvis_core::ActionKind::Rollback;
        rb.rollback_of = Some(id);
        let rb = store.create_action(&rb).await.expect("rollback");
        for (from, to) in [
            (ActionState::Proposed, ActionState::Approved),
            (ActionState::Approved, ActionState::Running),
        ] {
            store
                .transition(rb.id, from, to, "test", None, json!({}))
                .await
                .expect("transition");
        }
        // Against a stale expectation of the original, nothing is written.
        let stale = store
            .finish_rollback(
                rb.id,
                ActionState::Succeeded,
                &run(),
                id,
                ActionState::Failed,
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
        assert_eq!(
            store.action(rb.id).await.expect("rb").state,
            ActionState::Running
        );
        store
            .finish_rollback(
                rb.id,
                ActionState::Succeeded,
                &run(),
                id,
                ActionState::Succeeded,
            )
            .await
            .expect("rollback ends");
        assert_eq!(
            store.action(id).await.expect("original").state,
            ActionState::RolledBack
        );
        let of = store.rollbacks_of(id).await.expect("rollbacks");
        assert_eq!(of.len(), 1);
        assert_eq!(of[0].rollback_of, Some(id));
        store
            .mark_pruned(id, "test", json!({"why": "retention"}))
            .await
            .expect("pruned");
        assert!(store.mark_pruned(id, "test", json!({})).await.is_err());
        // The host could not remove it: kept again, and pruned again later.
        store
            .unmark_pruned(id, "test", json!({"error": "no such repository"}))
            .await
            .expect("unpruned");
        assert!(store.unmark_pruned(id, "test", json!({})).await.is_err());
        assert_eq!(store.kept_snapshots("nas").await.expect("kept"), vec![id]);
        store
            .mark_pruned(id, "test", json!({"why": "retention"}))
            .await
            .expect("pruned again");
        let report = store.verify(None).await.expect("verify");
        assert!(
            report.problem.is_none(),
            "the chain holds: {:?}",
            report.problem
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_filters_compare_times_not_text_on_both_backends() {
    // As the store wrote times before they were fixed width: the
    // fraction's trailing zeros dropped, so text order and time order
    // disagree within a second. The log is append-only, so such events stay
    // beside the fixed-width ones written since (seq 7 to 12: the same
    // times again).
    let stored = [
        "2026-11-23T13:59:59.999999Z",
        "2026-11-23T14:00:00Z",
        "2026-11-23T14:00:00.000001Z",
        "2026-11-23T14:00:00.5Z",
        "2026-11-23T14:00:01Z",
        "2026-11-23T14:00:01.25Z",
    ];
    let t = |s: &str| Some(jarvis_store::parse_time(s).expect(s));
    let cases: [(Option<OffsetDateTime>, Option<OffsetDateTime>, &[i64]); 9] = [
        (t("2026-11-23T14:00:00Z"), None, &[2, 3, 4, 5, 6]),
        (None, t("2026-11-23T14:00:00Z"), &[1]),
        (t("2026-11-23T14:00:00.5Z"), None, &[4, 5, 6]),
        (None, t("2026-11-23 14:00:01"), &[1, 2, 3, 4]),
        (t("2026-11-23T16:00:00.000001+02:00"), None, &[3, 4, 5, 6]),
        (t("2026-11-23T09:00:00.0000001-05:00"), None, &[3, 4, 5, 6]),
        (None, t("2026-11-23T14:00:00.0000001Z"), &[1, 2]),
        (t("2026-11-23"), t("2026-11-24"), &[1, 2, 3, 4, 5, 6]),
        (
            t("2026-11-23T14:00Z"),
            t("2026-11-23T15:00:01+01:00"),
            &[2, 3, 4],
        ),
    ];
    for db in TestDb::both() {
        let store = db.store().await;
        let fixed =
            stored.map(|at| jarvis_store::timestamp(jarvis_store::parse_time(at).expect(at)));
        for (seq, at) in (1i64..).zip(
            stored
                .iter()
                .copied()
                .chain(fixed.iter().map(String::as_str)),
        ) {
            db.sql(&format!(
                "INSERT INTO audit_events (seq, at, actor, kind, payload, prev_hash, hash) \
                 VALUES ({seq}, '{at}', 'test', 'test.event', '{{}}', '', '')"
            ))
            .unwrap_or_else(|e| panic!("{:?}: insert: {e}", db.kind));
        }
        for (since, until, want) in &cases {
            let found: Vec<i64> = store
                .events(&AuditFilter {
                    since: *since,
                    until: *until,
                    ..AuditFilter::default()
                })
                .await
                .expect("events")
                .iter()
                .rev()
                .map(|e| e.seq)
                .collect();
            let want: Vec<i64> = want
                .iter()
                .copied()
                .chain(want.iter().map(|seq| seq + 6))
                .collect();
            assert_eq!(
                found, want,
                "{:?}: since {since:?} until {until:?}",
                db.kind
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_is_sole_and_the_others_wait_for_its_recovery() {
    use std::time::Duration;
    for db in TestDb::both() {
        let first_store = db.store().await;
        let mut first = first_store.claim_runner().await.expect("claim");
        assert!(first.is_sole(), "{:?}", db.kind);
        if db.kind == Kind::Sqlite {
            // One machine: the caller's file lock beside the database decides.
            continue;
        }
        // A second process (on any machine) waits while the first recovers.
        let second_store = db.store().await;
        let waiting = tokio::spawn(async move { second_store.claim_runner().await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "waits for the recovery");
        first.share().await.expect("share");
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("let in once shared")
            .expect("task")
            .expect("claim");
        assert!(!second.is_sole());
        let third = db.store().await.claim_runner().await.expect("claim");
        assert!(!third.is_sole(), "two runners hold it");

        // When they are gone (a process that dies lets go the same way),
        // the next runner is alone again.
        drop((first, second, third));
        let next = db.store().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let claim = next.claim_runner().await.expect("claim");
            if claim.is_sole() {
                break;
            }
            drop(claim);
            assert!(std::time::Instant::now() < deadline, "never let go");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overdue_actions_are_found_to_the_second_and_only_they() {
    for db in TestDb::both() {
        let store = db.store().await;
        let mut pending = Vec::new();
        for cmd in ["a", "b", "c"] {
            pending.push(waiting(&store, cmd).await.id);
        }
        // Two waited since 10:00:00 (one with a fraction, one without:
        // as text they do not order as times within that second); the
        // third is waiting now. One approved action, approved at 09:00.
        for (id, since) in [
            (pending[0], "2026-06-01T10:00:00.5Z"),
            (pending[1], "2026-06-01T10:00:00Z"),
        ] {
            db.sql(&format!(
                "UPDATE actions SET pending_since = '{since}' WHERE id = '{id}'"
            ))
            .expect("set pending_since");
        }
        let approved = store.create_action(&new_action("d")).await.expect("create");
        for (from, to) in [
            (ActionState::Proposed, ActionState::PendingApproval),
            (ActionState::PendingApproval, ActionState::Approved),
        ] {
            store
                .transition(approved.id, from, to, "gateway", None, json!({}))
                .await
                .expect("approve");
        }
        db.sql(&format!(
            "UPDATE actions SET updated_at = '2026-06-01T09:00:00.25Z' WHERE id = '{}'",
            approved.id
        ))
        .expect("set updated_at");

        let at = |s: &str| jarvis_store::parse_time(s).expect("time");
        let ids = |v: Vec<jarvis_store::ActionRecord>| {
            let mut ids: Vec<ActionId> = v.into_iter().map(|a| a.id).collect();
            ids.sort();
            ids
        };
        let found = store
            .overdue(
                ActionState::PendingApproval,
                at("2026-06-01T09:59:59.9Z"),
                100,
            )
            .await
            .expect("overdue");
        assert!(found.is_empty(), "a second before: {:?}", db.kind);
        // Both waits began in the cutoff's second, the one with a fraction
        // later than it: both come back, for the caller's exact check.
        let found = store
            .overdue(
                ActionState::PendingApproval,
                at("2026-06-01T10:00:00.2Z"),
                100,
            )
            .await
            .expect("overdue");
        let mut both = vec![pending[0], pending[1]];
        both.sort();
        assert_eq!(ids(found), both, "{:?}", db.kind);
        let found = store
            .overdue(ActionState::Approved, at("2026-06-01T09:30:00Z"), 100)
            .await
            .expect("overdue");
        assert_eq!(ids(found), vec![approved.id], "{:?}", db.kind);
        let found = store
            .overdue(ActionState::Approved, at("2026-06-01T08:59:59.99Z"), 100)
            .await
            .expect("overdue");
        assert!(found.is_empty(), "{:?}", db.kind);
        let found = store
            .overdue(ActionState::PendingApproval, OffsetDateTime::now_utc(), 1)
            .await
            .expect("overdue");
        assert_eq!(found.len(), 1, "the limit holds: {:?}", db.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_proposal_left_unjudged_by_a_crash_is_refused_at_recovery() {
    for db in TestDb::both() {
        let store = db.store().await;
        let stranded = store
            .create_action(&new_action("touch /tmp/x"))
            .await
            .expect("create");
        let judged_one = waiting(&store, "uptime").await;
        let refused = store.refuse_unjudged("gateway").await.expect("recover");
        assert_eq!(refused, vec![stranded.id], "{:?}", db.kind);
        let a = store.action(stranded.id).await.expect("action");
        assert_eq!(a.state, ActionState::Denied);
        let events = store
            .events(&AuditFilter {
                action_id: Some(stranded.id.to_string()),
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        assert!(
            events[0].payload.contains("before it judged"),
            "{:?}",
            events[0]
        );
        assert_eq!(
            store.action(judged_one.id).await.expect("action").state,
            ActionState::PendingApproval,
            "what was judged is left alone"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_makes_one_action_per_requester() {
    for db in TestDb::both() {
        let store = std::sync::Arc::new(db.store().await);
        // Eight at once with one key: one creates, the others are told
        // which action the key made, and nothing else is written.
        let before = event_count(&store).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = std::sync::Arc::clone(&store);
            tasks.spawn(async move {
                store
                    .create_action_keyed(&new_action("uptime"), Some("k-1"))
                    .await
            });
        }
        let results = tasks.join_all().await;
        let made: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "{:?}: {results:?}", db.kind);
        let id = made[0].id;
        for r in &results {
            match r {
                Ok(a) => assert_eq!(a.id, id),
                Err(StoreError::KeyUsed { key, action }) => {
                    assert_eq!((key.as_str(), *action), ("k-1", id));
                }
                Err(e) => panic!("{:?}: {e}", db.kind),
            }
        }
        assert_eq!(event_count(&store).await, before + 1, "{:?}", db.kind);
        let found = store
            .action_for_key("agent:test", "k-1")
            .await
            .expect("lookup");
        assert_eq!(found.map(|a| a.id), Some(id));
        // Another requester's key space is its own.
        let mut theirs = new_action("uptime");
        theirs.requester = "agent:other".into();
        let other = store
            .create_action_keyed(&theirs, Some("k-1"))
            .await
            .expect("their own key");
        assert_ne!(other.id, id);
        assert!(
            store
                .action_for_key("agent:test", "k-2")
                .await
                .expect("lookup")
                .is_none()
        );
    }
}

/// A host's kernel report is one row per host: the latest answer, with the
/// connection it came over, replacing the one before; no audit event.
#[tokio::test]
async fn a_host_kernel_report_is_replaced_by_the_next_answer() {
    for db in TestDb::both() {
        let store = db.store().await;
        assert_eq!(store.host_kernel("nas").await.expect("read"), None);
        let before = event_count(&store).await;
        store
            .record_host_kernel("nas", "conn-a", r#"{"level":"full"}"#)
            .await
            .expect("recorded");
        store
            .record_host_kernel("nas", "conn-b", r#"{"level":"none"}"#)
            .await
            .expect("replaced");
        let kept = store.host_kernel("nas").await.expect("read").expect("kept");
        assert_eq!(
            (kept.connection.as_str(), kept.report.as_str()),
            ("conn-b", r#"{"level":"none"}"#),
            "{:?}",
            db.kind
        );
        assert!(jarvis_store::parse_time(&kept.learnt_at).is_ok());
        assert_eq!(store.host_kernel("other").await.expect("read"), None);
        assert_eq!(event_count(&store).await, before, "{:?}", db.kind);
    }
}
