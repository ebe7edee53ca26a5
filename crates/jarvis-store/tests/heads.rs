//! Verification a database writer cannot fool, on both backends: expected
//! checkpoints and signed heads, heads kept off the box, what an action
//! will run committed to in the chain, and where the key may live. Every
//! tampering is done with the database's own client, triggers dropped
//! first, as a writer behind Jarvis's back would.

mod common;
mod forge;

use std::time::Duration;

use common::{Kind, TempDir, TestDb};
use jarvis_core::{
    ActionId, ActionKind, ActionState, FileChange, FileEdit, HostName, PlanTarget, SnapshotPlan,
};
use jarvis_store::{
    AuditEvent, AuditFilter, AuditKey, BreakKind, NewAction, NewEvent, OffsetDateTime, Store,
    StoreError, VerifyOptions, VerifyReport,
};
use serde_json::json;

/// SQL that removes the append-only triggers, as a tamperer would first.
fn drop_triggers(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete;"
        }
        Kind::Postgres => {
            "DROP TRIGGER audit_events_no_change ON audit_events; \
             DROP TRIGGER audit_checkpoints_no_change ON audit_checkpoints;"
        }
    }
}

async fn append(store: &Store, n: usize) {
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
}

/// The whole chain, oldest first.
async fn chain(store: &Store) -> Vec<AuditEvent> {
    let mut events = store
        .events(&AuditFilter {
            limit: Some(100_000),
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    events.reverse();
    events
}

fn breaks_of(report: &VerifyReport, kind: BreakKind) -> Vec<(i64, String)> {
    report
        .breaks
        .iter()
        .filter(|b| b.kind == kind)
        .map(|b| (b.seq, b.what.clone()))
        .collect()
}

fn has(report: &VerifyReport, kind: BreakKind, seq: i64, says: &str) -> bool {
    breaks_of(report, kind)
        .iter()
        .any(|(s, what)| *s == seq && what.contains(says))
}

/// Expects checkpoints every 5 events, a head every minute, and trusts `key`.
fn expecting(key: &str) -> VerifyOptions {
    VerifyOptions {
        trusted: Some(key.to_owned()),
        every: Some(5),
        period: Some(Duration::from_secs(60)),
        ..VerifyOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_checkpoint_is_reported_missing() {
    for db in TestDb::both() {
        let key = AuditKey::ephemeral();
        let public = key.public_hex();
        let store = db.store().await.with_checkpoints(key, 5);
        append(&store, 12).await;
        store
            .sign_head("periodic")
            .await
            .expect("sign")
            .expect("a head");
        let report = store
            .verify_with(&expecting(&public))
            .await
            .expect("verify");
        assert!(report.is_intact(), "{:?} {report:?}", db.kind);
        assert_eq!(report.checkpoints_verified, 3, "5, 10 and the head at 12");

        // The checkpoint at 5: the interval expects it, and the head at 10
        // names it as the one before.
        db.sql(&format!(
            "{} DELETE FROM audit_checkpoints WHERE seq = 5;",
            drop_triggers(db.kind)
        ))
        .expect("tamper");
        let report = store
            .verify_with(&expecting(&public))
            .await
            .expect("verify");
        assert!(
            has(
                &report,
                BreakKind::Missing,
                5,
                "no signed checkpoint at event 5"
            ),
            "{:?}: {:?}",
            db.kind,
            report.breaks
        );
        assert!(
            has(
                &report,
                BreakKind::Missing,
                5,
                "which the head at event 10 follows, is gone"
            ),
            "{:?}: {:?}",
            db.kind,
            report.breaks
        );
        // Without configured expectations, the heads' own say suffices.
        let report = store
            .verify(Some(&AuditKey::ephemeral()))
            .await
            .expect("verify");
        assert!(!report.is_intact());
        let report = store.verify(None).await.expect("verify");
        assert!(
            has(&report, BreakKind::Missing, 5, "is gone"),
            "{:?}",
            report.breaks
        );

        // All of them: nothing in the database says the interval any more;
        // the configured one does.
        db.sql("DELETE FROM audit_checkpoints WHERE seq >= 10;")
            .expect("tamper");
        let report = store
            .verify_with(&expecting(&public))
            .await
            .expect("verify");
        assert!(
            has(
                &report,
                BreakKind::Missing,
                5,
                "and 1 more multiples of 5, to event 10"
            ),
            "{:?}",
            report.breaks
        );
        // The time rule, with the last head gone: events written now are
        // not yet overdue, but they will be.
        let later = VerifyOptions {
            now: Some(OffsetDateTime::now_utc() + Duration::from_secs(200)),
            ..expecting(&public)
        };
        let report = store.verify_with(&later).await.expect("verify");
        assert!(
            has(
                &report,
                BreakKind::Missing,
                1,
                "no signed head covers events 1 to 12"
            ),
            "{:?}",
            report.breaks
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_shorter_than_the_interval_cannot_be_cut_unseen() {
    for db in TestDb::both() {
        let key = AuditKey::ephemeral();
        let public = key.public_hex();
        let store = db.store().await.with_checkpoints(key, 1000);
        append(&store, 10).await;
        store.sign_head("periodic").await.expect("sign");
        append(&store, 5).await;
        let newest = store
            .sign_head("periodic")
            .await
            .expect("sign")
            .expect("a head at 15");
        // What a witness off the box got as the heads were made.
        let witnessed = store.checkpoints().await.expect("heads");
        let events = chain(&store).await;

        // Cut events 13..15 and the head that covers them; move the chain's
        // head back to 12. Far fewer than the interval of 1000.
        db.sql(&format!(
            "{} DELETE FROM audit_checkpoints WHERE seq = 15; DELETE FROM audit_events WHERE seq > 12; \
             UPDATE audit_head SET seq = 12, hash = '{}';",
            drop_triggers(db.kind),
            events[11].hash
        ))
        .expect("tamper");
        let options = VerifyOptions {
            trusted: Some(public.clone()),
            every: Some(1000),
            period: Some(Duration::from_secs(60)),
            ..VerifyOptions::default()
        };
        // Right now events 11 and 12 could still be waiting for their head.
        assert!(
            store
                .verify_with(&options)
                .await
                .expect("verify")
                .is_intact()
        );
        // Once the period has passed, they cannot: a head was due.
        let later = VerifyOptions {
            now: Some(OffsetDateTime::now_utc() + Duration::from_secs(200)),
            ..options.clone()
        };
        let report = store.verify_with(&later).await.expect("verify");
        assert!(
            has(
                &report,
                BreakKind::Missing,
                11,
                "no signed head covers events 11 to 12"
            ),
            "{:?}: {:?}",
            db.kind,
            report.breaks
        );
        // The witness sees it at once.
        let against = VerifyOptions {
            witness: witnessed.clone(),
            ..options.clone()
        };
        let report = store.verify_with(&against).await.expect("verify");
        assert!(
            has(
                &report,
                BreakKind::Missing,
                13,
                &format!(
                    "the witness holds a signed head at event {} but the log ends at event 12",
                    newest.seq
                )
            ),
            "{:?}: {:?}",
            db.kind,
            report.breaks
        );
        assert_eq!(report.witnessed, 1, "the head at 10 is still there");

        // Cut back exactly to the head at 10: the database alone is
        // consistent, at any time; only the witness knows better.
        db.sql(&format!(
            "DELETE FROM audit_events WHERE seq > 10; UPDATE audit_head SET seq = 10, hash = '{}';",
            events[9].hash
        ))
        .expect("tamper");
        assert!(store.verify_with(&later).await.expect("verify").is_intact());
        let report = store
            .verify_with(&VerifyOptions {
                witness: witnessed,
                ..later
            })
            .await
            .expect("verify");
        assert!(
            has(&report, BreakKind::Missing, 11, "its tail was cut off"),
            "{:?}",
            report.breaks
        );
    }
}

/// Rewrites the chain from event 3 on with a forged payload and every hash
/// recomputed, and replaces every checkpoint by one signed again with
/// `key`, linked as Jarvis links them: what someone holding the database
/// and the local key can do.
async fn rechain_and_resign(db: &TestDb, store: &Store, key: &AuditKey) {
    let events = chain(store).await;
    let old = store.checkpoints().await.expect("heads");
    let forged = forge::rechain_and_resign_sql(events, old, key, |e| {
        if e.seq == 3 {
            e.payload = r#"{"i":"forged"}"#.into();
        }
    })
    .await;
    db.sql(&format!("{}{forged}", drop_triggers(db.kind)))
        .expect("tamper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chain_rewritten_and_signed_again_with_the_local_key_fails_against_the_witness() {
    for db in TestDb::both() {
        let dir = TempDir::new("resign");
        let key_file = dir.path().join("audit.key");
        let key = AuditKey::load_or_create(&key_file).expect("key");
        let public = key.public_hex();
        let store = db.store().await.with_checkpoints(key, 5);
        append(&store, 12).await;
        store.sign_head("periodic").await.expect("sign");
        let witnessed = store.checkpoints().await.expect("heads");
        assert_eq!(witnessed.len(), 3);

        let local = AuditKey::load_or_create(&key_file).expect("the key beside the database");
        rechain_and_resign(&db, &store, &local).await;

        // The database alone, even against the operator's key: intact.
        let report = store
            .verify_with(&expecting(&public))
            .await
            .expect("verify");
        assert!(report.is_intact(), "{:?}: {:?}", db.kind, report.breaks);
        assert_eq!(report.checkpoints_verified, 3);
        // Against the heads shipped off the box: every one of them.
        let report = store
            .verify_with(&VerifyOptions {
                witness: witnessed,
                ..expecting(&public)
            })
            .await
            .expect("verify");
        for seq in [5, 10, 12] {
            assert!(
                has(
                    &report,
                    BreakKind::Invalid,
                    seq,
                    "is not what the head the witness holds covers"
                ),
                "{:?} {seq}: {:?}",
                db.kind,
                report.breaks
            );
        }
        assert_eq!(report.witnessed, 0);
        assert_eq!(report.problem.as_ref().map(|p| p.seq), Some(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_witness_head_names_what_the_chain_lost() {
    let db = TestDb::new(Kind::Sqlite);
    let store = db.store().await.with_checkpoints(AuditKey::ephemeral(), 5);
    append(&store, 7).await;
    store.sign_head("periodic").await.expect("sign");
    let heads = store.checkpoints().await.expect("heads");
    for head in &heads {
        assert_eq!(store.missing_head(head).await.expect("ask"), None);
    }
    // A head made behind the witness's back lies between two it holds.
    db.sql(&format!(
        "{} DELETE FROM audit_checkpoints WHERE seq = 7;",
        drop_triggers(db.kind)
    ))
    .expect("tamper");
    let said = store.missing_head(&heads[1]).await.expect("ask");
    assert!(said.is_some_and(|s| s.contains("deleted")), "gone");
    append(&store, 1).await;
    store.sign_head("periodic").await.expect("sign");
    let report = store
        .verify_with(&VerifyOptions {
            witness: heads.clone(),
            ..VerifyOptions::default()
        })
        .await
        .expect("verify");
    assert!(
        has(
            &report,
            BreakKind::Missing,
            7,
            "that the witness holds is gone from the log"
        ),
        "{:?}",
        report.breaks
    );
    // A witness whose heads were written by someone else is no witness.
    let mut forged = heads[0].clone();
    forged.hash = "f".repeat(64);
    let report = store
        .verify_with(&VerifyOptions {
            witness: vec![forged],
            ..VerifyOptions::default()
        })
        .await
        .expect("verify");
    assert!(
        has(
            &report,
            BreakKind::Invalid,
            5,
            "not signed by the operator's key"
        ),
        "{:?}",
        report.breaks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_signer_signs_the_heads() {
    let dir = TempDir::new("signer");
    let key_file = dir.path().join("held-by-the-signer.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key_file)
        .status()
        .expect("openssl");
    assert!(made.success());
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let public = AuditKey::load_or_create(&key_file)
        .expect("read")
        .public_hex();
    let script = dir.path().join("sign");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -e\nt=$(mktemp)\ntrap 'rm -f \"$t\" \"$t.sig\"' EXIT\ncat > \"$t\"\n\
         openssl pkeyutl -sign -inkey \"$1\" -rawin -in \"$t\" -out \"$t.sig\"\n\
         od -An -v -tx1 \"$t.sig\" | tr -d ' \\n'\n",
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    for db in TestDb::both() {
        let signer = AuditKey::command(
            script.clone(),
            vec![key_file.display().to_string()],
            &public,
        )
        .expect("signer");
        let store = db.store().await.with_checkpoints(signer, 5);
        append(&store, 6).await;
        store.sign_head("shutdown").await.expect("sign");
        let report = store
            .verify_with(&expecting(&public))
            .await
            .expect("verify");
        assert!(report.is_intact(), "{:?}", report.breaks);
        assert_eq!(report.checkpoints_verified, 2);
        let heads = store.checkpoints().await.expect("heads");
        assert_eq!(heads[1].reason.as_deref(), Some("shutdown"));
        assert_eq!(heads[1].previous_seq, Some(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_in_the_database_servers_data_directory_is_refused() {
    let db = TestDb::new(Kind::Postgres);
    let store = db.store().await;
    let data = store
        .data_directory()
        .await
        .expect("ask")
        .expect("the test server lets its superuser read data_directory");
    let e = store
        .refuse_key_in_data_directory(&data.join("audit.key"))
        .await
        .expect_err("inside");
    assert!(
        matches!(e, StoreError::Signing(_))
            && e.to_string().contains("data directory")
            && e.to_string().contains(&data.display().to_string()),
        "{e}"
    );
    let elsewhere = TempDir::new("key-elsewhere");
    store
        .refuse_key_in_data_directory(&elsewhere.path().join("audit.key"))
        .await
        .expect("outside");
    // SQLite's file is the gateway's own: its key may sit beside it.
    let lite = TestDb::new(Kind::Sqlite);
    let store = lite.store().await;
    let beside = lite
        .file
        .as_ref()
        .expect("file")
        .with_file_name("audit.key");
    store
        .refuse_key_in_data_directory(&beside)
        .await
        .expect("beside an SQLite file");
}

fn proposal(command: &str) -> NewAction {
    NewAction {
        id: ActionId::new(),
        requester: "agent:test".into(),
        host: Some(HostName::parse("nas").expect("host")),
        command: command.into(),
        cwd: Some("/srv/app".into()),
        timeout_secs: Some(30),
        kind: ActionKind::Command,
        edit: None,
        rollback_of: None,
        plan: Some(SnapshotPlan::of([PlanTarget::Repo("/srv/app".into())])),
        purpose: None,
    }
}

async fn fetch(store: &Store, id: ActionId) -> jarvis_store::ActionRecord {
    store.action(id).await.expect("action")
}

async fn refusals(store: &Store, id: ActionId) -> Vec<serde_json::Value> {
    store
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            kind: Some("action.refused".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .iter()
        .map(|e| serde_json::from_str(&e.payload).expect("json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_an_action_runs_is_committed_to_and_checked() {
    for db in TestDb::both() {
        let store = db.store().await;
        // The chain redacts it; the commitment is over what will run.
        let secret = "PGPASSWORD=hunter2 psql -c 'select 1'";
        let a = store
            .create_action(&proposal(secret))
            .await
            .expect("create");
        let proposed = chain(&store).await.pop().expect("the proposal");
        assert!(
            !proposed.payload.contains("hunter2"),
            "{}",
            proposed.payload
        );
        assert!(proposed.payload.contains("\"commitment\""));
        store.check_commitment(&a).await.expect("as proposed");

        let edit = NewAction {
            kind: ActionKind::Edit,
            command: "edit /etc/motd".into(),
            edit: Some(FileEdit {
                path: "/etc/motd".into(),
                change: FileChange::Content {
                    content: "hello\n".into(),
                },
            }),
            ..proposal("edit /etc/motd")
        };
        let e = store.create_action(&edit).await.expect("create");
        store.check_commitment(&e).await.expect("as proposed");

        for (field, sql) in [
            (
                "command",
                format!(
                    "UPDATE actions SET command = 'rm -rf /srv/app' WHERE id = '{}'",
                    a.id
                ),
            ),
            (
                "cwd",
                format!("UPDATE actions SET cwd = '/' WHERE id = '{}'", a.id),
            ),
            (
                "timeout_secs",
                format!(
                    "UPDATE actions SET timeout_secs = 99999 WHERE id = '{}'",
                    a.id
                ),
            ),
            (
                "plan",
                format!("UPDATE actions SET plan = '{{}}' WHERE id = '{}'", a.id),
            ),
            (
                "host",
                format!("UPDATE actions SET host = 'web-1' WHERE id = '{}'", a.id),
            ),
            // A writer who makes someone else accountable could then
            // approve their own action under self_approval = false.
            (
                "accountable",
                format!(
                    "UPDATE actions SET accountable = 'nobody-real' WHERE id = '{}'",
                    a.id
                ),
            ),
        ] {
            let before = fetch(&store, a.id).await;
            db.sql(&sql).expect("tamper");
            let changed = fetch(&store, a.id).await;
            match store.check_commitment(&changed).await {
                Err(StoreError::Tampered { fields, .. }) => {
                    assert_eq!(fields, [field], "{:?}", db.kind);
                }
                other => panic!("{:?} {field}: {other:?}", db.kind),
            }
            // Put back, it is what was proposed again.
            let restore = format!(
                "UPDATE actions SET command = '{}', cwd = '/srv/app', timeout_secs = 30, plan = '{}', host = 'nas', accountable = '{}' WHERE id = '{}'",
                before.command.replace('\'', "''"),
                before
                    .plan
                    .as_ref()
                    .map(|p| json!(p).to_string())
                    .unwrap_or_default(),
                before.accountable.replace('\'', "''"),
                a.id
            );
            db.sql(&restore).expect("restore");
            store
                .check_commitment(&fetch(&store, a.id).await)
                .await
                .expect("restored");
        }
        let said = refusals(&store, a.id).await;
        assert_eq!(said.len(), 6);
        assert_eq!(said[0]["code"], "stored-fields-changed");

        // The edit's content, not just its path.
        db.sql(&format!(
            "UPDATE actions SET edit = '{}' WHERE id = '{}'",
            json!({ "path": "/etc/motd", "change": { "kind": "content", "content": "owned\n" } }),
            e.id
        ))
        .expect("tamper");
        let err = store
            .check_commitment(&fetch(&store, e.id).await)
            .await
            .expect_err("edit");
        assert!(
            err.to_string()
                .contains("stored fields (edit) no longer match"),
            "{err}"
        );

        // A new snapshot plan is committed to with the event recording it.
        store
            .transition(
                a.id,
                ActionState::Proposed,
                ActionState::Approved,
                "policy",
                None,
                json!({}),
            )
            .await
            .expect("approve");
        let plan = SnapshotPlan::of([
            PlanTarget::Repo("/srv/app".into()),
            PlanTarget::Repo("/etc".into()),
        ]);
        store
            .replan(
                a.id,
                &plan,
                "gateway",
                "the snapshot plan changed since approval",
            )
            .await
            .expect("replan");
        store
            .check_commitment(&fetch(&store, a.id).await)
            .await
            .expect("the new plan");

        // Rewriting the commitment itself breaks the chain at that event.
        let proposed = store
            .events(&AuditFilter {
                action_id: Some(a.id.to_string()),
                kind: Some("action.proposed".into()),
                ..AuditFilter::default()
            })
            .await
            .expect("events")
            .pop()
            .expect("proposal");
        // Rewriting the commitment so it fits a new command breaks the
        // chain at that event.
        let mut payload: serde_json::Value = serde_json::from_str(&proposed.payload).expect("json");
        payload["commitment"]["command"] = json!("0".repeat(64));
        db.sql(&format!(
            "{} UPDATE actions SET command = 'reboot' WHERE id = '{}'; UPDATE audit_events SET payload = '{}' WHERE seq = {};",
            drop_triggers(db.kind),
            a.id,
            jarvis_store::canonical_payload(&payload).replace('\'', "''"),
            proposed.seq
        ))
        .expect("tamper");
        let err = store
            .check_commitment(&fetch(&store, a.id).await)
            .await
            .expect_err("rewritten");
        assert!(
            err.to_string().contains(&format!(
                "event {} that committed to them is no longer as chained",
                proposed.seq
            )),
            "{err}"
        );
        // And removing it leaves nothing to run against.
        db.sql(&format!(
            "UPDATE audit_events SET payload = '{{}}' WHERE seq = {};",
            proposed.seq
        ))
        .expect("tamper");
        let err = store
            .check_commitment(&fetch(&store, a.id).await)
            .await
            .expect_err("gone");
        assert!(err.to_string().contains("carries no commitment"), "{err}");
    }
}
