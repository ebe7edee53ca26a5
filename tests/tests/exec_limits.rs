//! Limits that live in one gateway process (rate limits, concurrency, the
//! circuit breaker) and the restart sweep, driven through the library
//! pipeline against the real sandbox host.

use std::time::Duration;

use jarvis_core::{ActionId, ActionState, HostName};
use jarvis_exec::ExecError;
use jarvis_gateway::{Gateway, GatewayError};
use jarvis_store::{AuditFilter, NewAction, Store};
use jarvis_tests::{Env, marker, run_allowed, sandbox};

async fn open(env: &Env) -> Gateway {
    jarvis_tests::gateway(&env.config, &env.dir().join("jarvis.db"), "t").await
}

async fn refusals(gw: &Gateway) -> Vec<serde_json::Value> {
    gw.store()
        .events(&AuditFilter {
            kind: Some("action.refused".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
        .iter()
        .map(|e| serde_json::from_str(&e.payload).expect("json"))
        .collect()
}

#[tokio::test]
async fn the_host_rate_limit_refuses_and_says_when_to_retry() {
    let env = Env::new("rate-host", "rate_per_minute = 1\nburst = 2", "");
    let gw = open(&env).await;
    let m = marker("rate");
    for i in 0..2 {
        assert_eq!(
            run_allowed(&gw, &format!("echo {m}-{i}"))
                .await
                .expect("within burst"),
            ActionState::Succeeded
        );
    }
    let third = run_allowed(&gw, &format!("echo {m}-2"))
        .await
        .expect_err("burst spent");
    let GatewayError::NotSent {
        id,
        source: ExecError::RateLimited(limited),
    } = &third
    else {
        panic!("expected a rate limit, got {third}");
    };
    assert!(limited.retry_after > Duration::from_secs(1), "{third}");
    assert!(third.to_string().contains("host `sandbox`"), "{third}");
    // Not sent, still approved, refusal audited.
    assert_eq!(
        gw.store().action(*id).await.expect("action").state,
        ActionState::Approved
    );
    assert!(sandbox().guard_log_lines(&format!("{m}-2")).is_empty());
    let refused = refusals(&gw).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["code"], "rate-limited");
    gw.close().await;
}

#[tokio::test]
async fn an_approval_a_limit_left_unrun_lapses_after_the_run_window() {
    let env = Env::new(
        "run-window",
        "rate_per_minute = 1\nburst = 1",
        "run_window_secs = 1",
    );
    let gw = open(&env).await;
    let m = marker("lapse");
    assert_eq!(
        run_allowed(&gw, &format!("echo {m}-0"))
            .await
            .expect("within burst"),
        ActionState::Succeeded
    );
    let mut refused = Vec::new();
    for i in 1..3 {
        match run_allowed(&gw, &format!("echo {m}-{i}")).await {
            Err(GatewayError::NotSent { id, .. }) => refused.push(id),
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // Pressing run on a lapsed approval expires it, and nothing is sent.
    let lapsed = gw
        .execute(refused[0], "test", &mut |_| {})
        .await
        .expect_err("the approval lapsed");
    assert!(
        matches!(lapsed, GatewayError::ApprovalLapsed { id, .. } if id == refused[0]),
        "{lapsed}"
    );
    assert!(lapsed.to_string().contains("propose it again"), "{lapsed}");
    // The sweeper expires the other, and only it.
    assert_eq!(gw.expire_overdue().await.expect("sweep"), vec![refused[1]]);
    for id in &refused {
        assert_eq!(
            gw.store().action(*id).await.expect("action").state,
            ActionState::Expired
        );
        let expired = gw
            .store()
            .events(&AuditFilter {
                action_id: Some(id.to_string()),
                kind: Some("action.expired".into()),
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        assert_eq!(expired.len(), 1, "{expired:?}");
        assert!(
            expired[0]
                .payload
                .contains("approved but not started within 1s"),
            "{}",
            expired[0].payload
        );
    }
    for i in 1..3 {
        assert!(sandbox().guard_log_lines(&format!("{m}-{i}")).is_empty());
    }
    gw.close().await;
}

#[tokio::test]
async fn the_requester_and_global_rate_limits_apply_across_hosts() {
    let env = Env::new(
        "rate-requester",
        "",
        "requester_rate_per_minute = 1\nrequester_burst = 1",
    );
    let gw = open(&env).await;
    run_allowed(&gw, "echo one").await.expect("first");
    let second = run_allowed(&gw, "echo two")
        .await
        .expect_err("requester limit");
    assert!(second.to_string().contains("requester `test`"), "{second}");

    let env = Env::new("rate-global", "", "rate_per_minute = 1\nburst = 1");
    let gw = open(&env).await;
    run_allowed(&gw, "echo one").await.expect("first");
    let second = run_allowed(&gw, "echo two")
        .await
        .expect_err("global limit");
    assert!(
        second.to_string().contains("rate limit (global"),
        "{second}"
    );
    gw.close().await;
}

#[tokio::test]
async fn the_concurrency_limit_refuses_when_the_host_is_full() {
    let env = Env::new("busy", "concurrency = 1\nqueue_timeout_secs = 1", "");
    let gw = std::sync::Arc::new(open(&env).await);
    let slow = gw
        .propose(jarvis_tests::proposal("test", "sleep 3"))
        .await
        .expect("proposed");
    let runner = {
        let gw = std::sync::Arc::clone(&gw);
        tokio::spawn(async move { gw.execute(slow.action.id, "test", &mut |_| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let err = run_allowed(&gw, "echo waiting")
        .await
        .expect_err("host is full");
    assert!(
        matches!(
            err,
            GatewayError::NotSent {
                source: ExecError::Busy { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("already runs 1 actions"), "{err}");
    let first = runner.await.expect("joins").expect("slow one runs");
    assert_eq!(first.state, ActionState::Succeeded);
    gw.close().await;
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_transport_failures() {
    // A port where nothing listens: every attempt fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let sb = sandbox();
    let env = Env::with_host(
        "breaker",
        closed,
        &sb.known_hosts,
        "breaker_failures = 2\nbreaker_cooldown_secs = 60",
        "",
    );
    let gw = open(&env).await;
    for _ in 0..2 {
        let state = run_allowed(&gw, "echo unreachable")
            .await
            .expect("attempted");
        assert_eq!(state, ActionState::Failed);
    }
    let last = gw
        .store()
        .actions(Some(ActionState::Failed), 1)
        .await
        .expect("actions");
    let run_record = gw
        .store()
        .run_of(last[0].id)
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(run_record.ending, "unreachable");
    assert!(
        run_record
            .error
            .as_deref()
            .unwrap_or("")
            .contains("cannot connect"),
        "{run_record:?}"
    );

    let err = run_allowed(&gw, "echo third")
        .await
        .expect_err("breaker open");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            GatewayError::NotSent {
                source: ExecError::CircuitOpen { .. },
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "circuit breaker for `sandbox` is open after 2 consecutive transport failures"
        ),
        "{text}"
    );
    assert!(text.contains("cannot connect"), "it tells why: {text}");
    let refused = refusals(&gw).await;
    assert_eq!(refused[0]["code"], "circuit-open");
    gw.close().await;
}

#[tokio::test]
async fn actions_running_at_a_restart_are_interrupted_and_never_run_again() {
    let env = Env::new("restart", "", "");
    let m = marker("restart");
    let db = env.dir().join("jarvis.db");
    let id = {
        let store = Store::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("store");
        let id = ActionId::new();
        store
            .create_action(&NewAction {
                id,
                requester: "test".into(),
                host: Some(HostName::parse("sandbox").expect("valid")),
                command: format!("echo {m}"),
                cwd: None,
                timeout_secs: None,
                kind: jarvis_core::ActionKind::Command,
                edit: None,
                rollback_of: None,
                plan: None,
                purpose: None,
            })
            .await
            .expect("created");
        for (from, to) in [
            (ActionState::Proposed, ActionState::Approved),
            (ActionState::Approved, ActionState::Running),
        ] {
            store
                .transition(id, from, to, "test", None, serde_json::json!({}))
                .await
                .expect("moved");
        }
        store.close().await;
        id
    };
    // A new gateway process starts on the same database.
    let gw = open(&env).await;
    let action = gw.store().action(id).await.expect("action");
    assert_eq!(action.state, ActionState::Interrupted);
    let err = gw
        .execute(id, "test", &mut |_| {})
        .await
        .expect_err("not again");
    assert!(
        matches!(
            err,
            GatewayError::WrongState {
                state: ActionState::Interrupted,
                ..
            }
        ),
        "{err}"
    );
    assert!(sandbox().guard_log_lines(&m).is_empty());
    gw.close().await;
}

/// Two gateways on two machines (two data directories, so the file lock
/// beside each sees only itself) sharing one PostgreSQL database: the CLI
/// starting on the second must not take the server's running action for an
/// orphan of a dead process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_on_another_machine_does_not_interrupt_a_running_action() {
    use jarvis_tests::postgres_database;
    use jarvis_tests::server::{Agent, Served};

    let url = postgres_database("runners");
    let server = Served::start(Env::new("runners-a", "", "").on_postgres(&url), "", &[]);
    let agent = Agent::new(&server, server.add_token("planner", "propose"));
    let m = marker("runners");
    let long = agent.propose(&format!("sleep 4; echo {m}")).await;
    let long = long["id"].as_str().expect("id").to_owned();
    agent.wait_state(&long, "running").await;

    // The other machine runs something of its own meanwhile.
    let other = Env::new("runners-b", "", "").on_postgres(&url);
    let out = other.jarvis(&["run", "--host", "sandbox", "--", "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let done = agent.wait_state(&long, "succeeded").await;
    assert_eq!(done["run"]["stdout"]["text"], format!("{m}\n"));
    assert!(
        server.audit("action.interrupted").is_empty(),
        "nothing was taken for an orphan"
    );
}
