//! Lost and interrupted runs keep the host guard's own account (issue 17):
//! when the link to the host breaks mid-run, the action ends `lost`, and
//! once the host answers again its guard says, from its own log, what
//! became of the command (started, killed because the gateway
//! disconnected); a run a restart interrupted is asked about at start-up.
//! The action's state never moves; its run record and the audit log gain
//! the host's account.

use std::time::{Duration, Instant};

use jarvis_core::{ActionState, HostName};
use jarvis_gateway::Gateway;
use jarvis_gateway::server::views::event_line;
use jarvis_tests::exec_faults::Switch;
use jarvis_tests::{Env, marker, proposal, sandbox};
use serde_json::json;

fn sandbox_name() -> HostName {
    HostName::parse("sandbox").expect("valid")
}

async fn open(env: &Env) -> Gateway {
    jarvis_tests::gateway(&env.config, &env.dir().join("jarvis.db"), "fa").await
}

/// A config for the host behind `switch`, its known_hosts kept in the
/// test's own directory.
fn behind(tag: &str, switch: &Switch) -> Env {
    let env = Env::with_host(tag, switch.port, &switch.known_hosts, "", "");
    let kept = env.dir().join("known_hosts");
    std::fs::copy(&switch.known_hosts, &kept).expect("copy known_hosts");
    let text = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        text.replace(
            &switch.known_hosts.display().to_string(),
            &kept.display().to_string(),
        ),
    )
    .expect("config");
    env
}

/// Waits until the guard's log holds a line for `id` that `want` accepts.
/// The `run.guard_account` events of action `id`.
async fn accounts_logged(gw: &Gateway, id: &str) -> Vec<jarvis_store::AuditEvent> {
    gw.store()
        .events(&jarvis_store::AuditFilter {
            action_id: Some(id.to_owned()),
            kind: Some("run.guard_account".into()),
            ..Default::default()
        })
        .await
        .expect("events")
}

async fn logged(id: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let since = Instant::now();
    loop {
        if let Some(l) = sandbox().guard_log_lines(id).into_iter().find(&want) {
            return l;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the guard never logged it: {:?}",
            sandbox().guard_log_lines(id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_lost_mid_way_gets_the_guards_account_once_the_host_answers() {
    let scratch = jarvis_tests::TempDir::new("fa-lost-kh");
    let switch = Switch::start(scratch.path(), true).await;
    let env = behind("fa-lost", &switch);
    let gw = open(&env).await;
    let m = marker("fa-lost");
    let p = gw
        .propose(proposal("test", &format!("sleep 5; echo {m}")))
        .await
        .expect("proposed");
    assert_eq!(
        p.action.state,
        ActionState::Approved,
        "{:?}",
        p.judgement.reasons
    );
    let id = p.action.id;
    let ids = id.to_string();
    let cut = async {
        logged(&ids, |l| l["result"] == "started").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        switch.cut();
    };
    let mut quiet = |_: jarvis_exec::Output<'_>| {};
    let (ran, ()) = tokio::join!(gw.execute(id, "test", &mut quiet), cut);
    let record = ran.expect("recorded");
    assert_eq!(record.state, ActionState::Failed);
    // Asked at once, over a link still down: nothing is known yet.
    let run = gw.store().run_of(id).await.expect("read").expect("a run");
    assert_eq!(run.ending, "lost", "{run:?}");
    assert!(run.host_account.is_none(), "{run:?}");

    // The guard noticed the gateway leave and killed the command.
    logged(&ids, |l| l["code"] == "client-gone").await;
    switch.set_up(true);
    gw.check_host(&sandbox_name())
        .await
        .expect("the host answers again");

    let run = gw.store().run_of(id).await.expect("read").expect("a run");
    assert_eq!(run.ending, "lost", "the gateway's own record stays");
    let account = run.host_account.expect("the host's account");
    assert_eq!(account.ending, "killed-gateway-gone", "{account:?}");
    assert!(
        account
            .error
            .as_deref()
            .is_some_and(|e| e.contains("the gateway disconnected")),
        "{account:?}"
    );
    assert!(
        account.duration_ms > 0 && account.duration_ms < 5_000,
        "killed before the sleep was over: {account:?}"
    );
    assert!(account.kernel.is_some(), "{account:?}");
    // Nothing of `echo` ran.
    assert!(
        !sandbox()
            .guard_log_lines(&ids)
            .iter()
            .any(|l| l["result"] == "ran"),
        "{:?}",
        sandbox().guard_log_lines(&ids)
    );
    assert_eq!(
        gw.store().action(id).await.expect("read").state,
        ActionState::Failed,
        "the state does not move"
    );

    let events = accounts_logged(&gw, &ids).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let payload: serde_json::Value = serde_json::from_str(&events[0].payload).expect("json");
    assert!(
        payload["account"]["started"]["at"].is_string(),
        "{payload:#}"
    );
    assert_eq!(
        payload["account"]["ended"]["code"], "client-gone",
        "{payload:#}"
    );
    let line = event_line(&events[0].kind, &events[0].payload);
    assert!(
        line.starts_with("the host's guard says: it started, and was killed after")
            && line.ends_with("because the gateway disconnected"),
        "{line}"
    );

    // Asked once: another check adds nothing.
    gw.check_host(&sandbox_name()).await.expect("answers");
    let again = accounts_logged(&gw, &ids).await;
    assert_eq!(again.len(), 1);

    // What `jarvis actions show --json` and the API show of the run.
    let shown = serde_json::to_value(gw.store().run_of(id).await.expect("read")).expect("json");
    assert_eq!(shown["ending"], "lost", "{shown:#}");
    assert_eq!(
        shown["host_account"]["ending"], "killed-gateway-gone",
        "{shown:#}"
    );
    gw.close().await;
}

#[tokio::test]
async fn a_run_a_restart_interrupted_is_asked_about_at_start_up() {
    let env = Env::with_host("fa-restart", sandbox().port, &sandbox().known_hosts, "", "");
    let gw = open(&env).await;
    let m = marker("fa-restart");
    let p = gw
        .propose(proposal("test", &format!("echo {m}")))
        .await
        .expect("proposed");
    // The gateway stops between `running` and sending: the host never
    // heard of it.
    gw.store()
        .transition(
            p.action.id,
            ActionState::Approved,
            ActionState::Running,
            "test",
            None,
            json!({}),
        )
        .await
        .expect("running");
    gw.close().await;
    drop(gw);

    let gw = open(&env).await;
    let id = p.action.id;
    assert_eq!(
        gw.store().action(id).await.expect("read").state,
        ActionState::Interrupted
    );
    // The guard reads its log's last 8 MiB; the sandbox's log may be
    // longer, and then it says only that far.
    let whole = std::fs::metadata(&sandbox().guard_log).map_or(0, |m| m.len()) < 8 << 20;
    let (ending, said) = if whole {
        (
            "never-started",
            "the host's guard has no record of it: it never started",
        )
    } else {
        (
            "no-record",
            "the host's guard has no record of it in the last 8 MiB of its log",
        )
    };
    let run = gw.store().run_of(id).await.expect("read").expect("a run");
    assert_eq!(run.ending, ending, "{run:?}");
    assert_eq!(run.error.as_deref(), Some(said));
    assert_eq!(run.host_account.map(|a| a.ending).as_deref(), Some(ending));
    let events = accounts_logged(&gw, &id.to_string()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(event_line(&events[0].kind, &events[0].payload), said);
    // The guard logged the question, and nothing ran.
    let lines = sandbox().guard_log_lines(&id.to_string());
    assert!(
        lines
            .iter()
            .any(|l| l["op"] == "account" && l["found"] == "no-record"),
        "{lines:?}"
    );
    assert!(sandbox().guard_log_lines(&m).is_empty());
    gw.close().await;
}
