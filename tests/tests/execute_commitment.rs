//! What runs is what was approved: an approved action whose stored command
//! was changed in the database (behind Jarvis's back, with the database's
//! own client) is refused by `Gateway::execute` before anything reaches the
//! host, and the refusal is audited. Against the real sandbox host.

use std::process::Command;

use jarvis_core::ActionState;
use jarvis_gateway::{Gateway, GatewayError};
use jarvis_store::{AuditFilter, StoreError};
use jarvis_tests::{Env, marker, sandbox};

fn sql(db: &std::path::Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn refusal_codes(gw: &Gateway, id: jarvis_core::ActionId) -> Vec<String> {
    gw.store()
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            kind: Some("action.refused".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.payload).expect("json");
            v["code"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_action_whose_stored_command_changed_is_refused_at_execute() {
    let env = Env::new("commitment", "", "");
    let db = env.dir().join("jarvis.db");
    let gw = jarvis_tests::gateway(&env.config, &db, "cm").await;
    let m = marker("commitment");

    // One a person approves, one the policy lets run alone.
    let asked = gw
        .propose(jarvis_tests::proposal(
            "local:agent",
            &format!("touch /tmp/{m}-asked"),
        ))
        .await
        .expect("propose");
    assert_eq!(
        asked.action.state,
        ActionState::PendingApproval,
        "{:?}",
        asked.judgement.reasons
    );
    let (approved, _) = gw
        .approve(asked.action.id, "user:alice", Some("looks fine"))
        .await
        .expect("approve");
    assert_eq!(approved.state, ActionState::Approved);
    let alone = gw
        .propose(jarvis_tests::proposal(
            "local:agent",
            &format!("echo {m}-alone"),
        ))
        .await
        .expect("propose");
    assert_eq!(
        alone.action.state,
        ActionState::Approved,
        "{:?}",
        alone.judgement.reasons
    );

    // Behind Jarvis's back: what they will run is swapped.
    for id in [asked.action.id, alone.action.id] {
        sql(
            &db,
            &format!("UPDATE actions SET command = 'echo {m}-swapped; id' WHERE id = '{id}'"),
        );
        let e = gw
            .execute(id, "user:alice", &mut |_| {})
            .await
            .expect_err("refused");
        let GatewayError::Store(StoreError::Tampered { fields, .. }) = &e else {
            panic!("expected a refusal for the changed command, got {e}")
        };
        assert_eq!(fields, &["command"], "{e}");
        assert!(e.to_string().contains("propose it again"), "{e}");
        assert_eq!(refusal_codes(&gw, id).await, ["stored-fields-changed"]);
        // Still approved, and it stays refused: nothing ran.
        assert_eq!(
            gw.store().action(id).await.expect("action").state,
            ActionState::Approved
        );
        assert!(gw.execute(id, "user:alice", &mut |_| {}).await.is_err());
    }
    assert!(
        sandbox().guard_log_lines(&m).is_empty(),
        "nothing of this test reached the host"
    );

    // An action nobody touched runs as it was approved.
    let fine = gw
        .propose(jarvis_tests::proposal(
            "local:agent",
            &format!("echo {m}-fine"),
        ))
        .await
        .expect("propose");
    let done = gw
        .execute(fine.action.id, "user:alice", &mut |_| {})
        .await
        .expect("runs");
    assert_eq!(done.state, ActionState::Succeeded);
    assert!(!sandbox().guard_log_lines(&format!("{m}-fine")).is_empty());
    assert!(
        sandbox()
            .guard_log_lines(&format!("{m}-swapped"))
            .is_empty()
    );
}
