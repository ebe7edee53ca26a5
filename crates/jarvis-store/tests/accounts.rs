//! The host guard's account of runs the gateway did not hear end, on both
//! backends: which actions are due one, how it is kept (written once, the
//! run the gateway recorded left as it was, the action's state untouched),
//! and its audit event.

mod common;

use common::TestDb;
use jarvis_core::{ActionId, ActionState, HostName};
use jarvis_store::{AuditFilter, CapturedOutput, NewAction, RunRecord, Store};
use serde_json::json;

fn host() -> HostName {
    HostName::parse("nas").expect("host")
}

/// An action of `cmd` on `nas`, moved to `running`.
async fn running(store: &Store, cmd: &str) -> ActionId {
    let a = store
        .create_action(&NewAction {
            id: ActionId::new(),
            requester: "agent:test".into(),
            host: Some(host()),
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
    for (from, to) in [
        (ActionState::Proposed, ActionState::Approved),
        (ActionState::Approved, ActionState::Running),
    ] {
        store
            .transition(a.id, from, to, "test", None, json!({}))
            .await
            .expect("transition");
    }
    a.id
}

fn record(ending: &str, error: Option<&str>) -> RunRecord {
    RunRecord {
        started_at: jarvis_store::now(),
        finished_at: jarvis_store::now(),
        ending: ending.into(),
        exit_code: None,
        signal: None,
        duration_ms: 0,
        killed: 0,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        error: error.map(str::to_owned),
        kernel: None,
        host_account: None,
    }
}

fn killed() -> RunRecord {
    RunRecord {
        duration_ms: 1_500,
        kernel: Some("read-only, runs 1 program, no network".into()),
        ..record(
            "killed-gateway-gone",
            Some("the gateway disconnected; the command was killed"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_are_kept_once_beside_the_run_and_leave_the_state_alone() {
    for db in TestDb::both() {
        let store = db.store().await;
        let lost = running(&store, "sleep 5").await;
        store
            .finish_run(
                lost,
                ActionState::Failed,
                "gateway",
                &record("lost", Some("the link broke")),
            )
            .await
            .expect("finish");
        let cut = running(&store, "sleep 6").await;
        assert_eq!(
            store.interrupt_running("gateway").await.expect("sweep"),
            vec![cut]
        );
        // A run the gateway heard end is never due.
        let heard = running(&store, "true").await;
        store
            .finish_run(
                heard,
                ActionState::Succeeded,
                "gateway",
                &record("exited", None),
            )
            .await
            .expect("finish");
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(
            store.accounts_due(&host(), day, 10).await.expect("due"),
            vec![cut, lost],
            "newest first"
        );
        assert_eq!(
            store.accounts_due(&host(), day, 1).await.expect("due"),
            vec![cut]
        );
        let other = HostName::parse("elsewhere").expect("host");
        assert!(
            store
                .accounts_due(&other, day, 10)
                .await
                .expect("due")
                .is_empty()
        );

        // The lost run stays as the gateway recorded it; the account sits
        // beside it.
        assert!(
            store
                .record_host_account(lost, "nas", &killed(), json!({"found": "ended"}))
                .await
                .expect("record")
        );
        let run = store.run_of(lost).await.expect("read").expect("run");
        assert_eq!(run.ending, "lost");
        let account = run.host_account.expect("the host's account");
        assert_eq!(account.ending, "killed-gateway-gone");
        assert_eq!(account.duration_ms, 1_500);
        assert_eq!(account.kernel, killed().kernel);

        // An interrupted action had no run: the account is its run too.
        let never = record(
            "never-started",
            Some("the host's guard has no record of it: it never started"),
        );
        assert!(
            store
                .record_host_account(cut, "nas", &never, json!({"found": "no-record"}))
                .await
                .expect("record")
        );
        let run = store.run_of(cut).await.expect("read").expect("run");
        assert_eq!(run.ending, "never-started");
        assert_eq!(
            run.host_account.map(|a| a.ending).as_deref(),
            Some("never-started")
        );

        // Written once: a second answer is not kept, and nothing is due.
        assert!(
            !store
                .record_host_account(cut, "nas", &killed(), json!({}))
                .await
                .expect("record")
        );
        assert!(
            store
                .accounts_due(&host(), day, 10)
                .await
                .expect("due")
                .is_empty()
        );
        assert!(db.sql("UPDATE run_accounts SET ending = 'exited'").is_err());

        // The lifecycle did not move; the log says what the host said.
        assert_eq!(
            store.action(lost).await.expect("read").state,
            ActionState::Failed
        );
        assert_eq!(
            store.action(cut).await.expect("read").state,
            ActionState::Interrupted
        );
        for (id, as_run) in [(lost, false), (cut, true)] {
            let events = store
                .events(&AuditFilter {
                    action_id: Some(id.to_string()),
                    kind: Some("run.guard_account".into()),
                    ..Default::default()
                })
                .await
                .expect("events");
            assert_eq!(events.len(), 1, "{events:?}");
            let payload: serde_json::Value =
                serde_json::from_str(&events[0].payload).expect("json");
            assert_eq!(payload["recorded_as_run"], as_run, "{payload}");
        }
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}
