//! The pipeline, the API's refusal paths, rollback and live updates, in
//! process: the real gateway and router on a fresh SQLite store, with the
//! host `sandbox` answered by the fake guard (`jarvis_exec::fake`).
//! Nothing here needs the sandbox host, Docker or PostgreSQL; what only a
//! real host shows (the guard, SSH, the kernel wall, git and Docker
//! restores) stays in the sandbox tests.

use std::time::{Duration, Instant};

use jarvis_exec::fake::Reply;
use jarvis_exec::protocol::Request;
use jarvis_tests::inprocess::{App, spawn_app, spawn_app_on};
use jarvis_tests::server::client;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn id_of(action: &Value) -> String {
    action["id"].as_str().expect("an action id").to_owned()
}

fn runs(app: &App) -> Vec<jarvis_exec::protocol::RunRequest> {
    app.guard
        .requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::Run(run) => Some(run),
            Request::Check
            | Request::Kernel
            | Request::Snapshot(_)
            | Request::Restore(_)
            | Request::Preview(_)
            | Request::Edit(_)
            | Request::Drop(_)
            | Request::Account(_) => None,
        })
        .collect()
}

/// Proposes `command`, which the policy lets run alone, and waits for it
/// to end in `state`; `GET /api/v1/actions/ID` then.
async fn ran(app: &App, command: &str, state: &str) -> Value {
    let agent = app.agent();
    let action = agent.propose(command).await;
    assert_eq!(action["state"], "approved", "{action:#}");
    agent.wait_state(&id_of(&action), state).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_command_runs_on_the_host_and_is_audited() {
    let app = spawn_app("ip-allowed", "").await;
    app.guard
        .on_command("uptime", Reply::ok(" 10:00 up 3 days\n"));
    let done = ran(&app, "uptime", "succeeded").await;
    let id = id_of(&done["action"]);
    assert_eq!(done["run"]["stdout"]["text"], " 10:00 up 3 days\n");
    assert_eq!(done["run"]["exit_code"], 0);

    let sent = runs(&app);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].action_id.to_string(), id);
    assert_eq!(sent[0].command, "uptime");
    assert!(
        !sent[0].approved,
        "nobody approved it: the policy let it run"
    );
    assert_eq!(
        app.event_kinds(&id).await,
        [
            "action.proposed",
            "action.approved",
            "action.running",
            "action.succeeded"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_command_never_reaches_the_host() {
    let app = spawn_app("ip-denied", "").await;
    let action = app.agent().propose("rm -rf /").await;
    assert_eq!(action["state"], "denied", "{action:#}");
    let id = id_of(&action);
    assert!(runs(&app).is_empty(), "{:?}", app.guard.requests());
    let kinds = app.event_kinds(&id).await;
    assert_eq!(kinds.first().map(String::as_str), Some("action.proposed"));
    assert!(!kinds.iter().any(|k| k == "action.running"), "{kinds:?}");
    // A person cannot approve it afterwards either.
    let (status, body) = app.approve(&id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert!(runs(&app).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_needs_a_person_waits_then_runs_once_approved() {
    let app = spawn_app("ip-approve", "").await;
    let agent = app.agent();
    let action = agent.propose("touch /tmp/jarvis-inprocess").await;
    assert_eq!(action["state"], "pending_approval", "{action:#}");
    let id = id_of(&action);
    assert!(runs(&app).is_empty(), "nothing runs before the approval");

    let (status, body) = app.approve(&id).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["approved"], true);
    agent.wait_state(&id, "succeeded").await;
    let sent = runs(&app);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].command, "touch /tmp/jarvis-inprocess");
    assert!(sent[0].approved, "the guard is told a person approved it");

    // Approving it again is a conflict, and it does not run twice.
    let (status, body) = app.approve(&id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("already ran"),
        "{body:#}"
    );
    assert_eq!(runs(&app).len(), 1);
    let kinds = app.event_kinds(&id).await;
    for kind in [
        "action.pending_approval",
        "action.approved",
        "action.running",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in {kinds:?}");
    }
    assert_eq!(kinds.last().map(String::as_str), Some("action.succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_end_in_the_state_they_mean() {
    let app = spawn_app("ip-failures", "").await;
    app.guard
        .on_command("echo never", Reply::NeverSent)
        .on_command("echo broken", Reply::Broken)
        .on_command("echo quiet", Reply::Silent)
        .on_command("echo slow", Reply::TimedOut)
        .on_command(
            "echo bad",
            Reply::Exit {
                code: 3,
                stdout: Vec::new(),
                stderr: b"no such thing\n".to_vec(),
            },
        );
    let accounts = |app: &App, id: &str| {
        app.guard
            .count(|r| matches!(r, Request::Account(a) if a.action_id.to_string() == id))
    };

    // Never sent: the host was not reached, so there is nothing to ask it.
    let never = ran(&app, "echo never", "failed").await;
    assert_eq!(never["run"]["ending"], "unreachable", "{never:#}");
    let never = id_of(&never["action"]);

    // Sent, then the link broke or went quiet: it may have run, so the
    // run is `lost` and the guard is asked for its own account (after the
    // state is recorded).
    for command in ["echo broken", "echo quiet"] {
        let lost = ran(&app, command, "failed").await;
        assert_eq!(lost["run"]["ending"], "lost", "{lost:#}");
        let id = id_of(&lost["action"]);
        app.wait_event(&id, "run.guard_account").await;
        assert_eq!(accounts(&app, &id), 1);
    }
    assert_eq!(accounts(&app, &never), 0);

    // The guard's own timeout, and a plain non-zero exit.
    let slow = ran(&app, "echo slow", "timed_out").await;
    assert_eq!(slow["run"]["ending"], "timed_out", "{slow:#}");
    let bad = ran(&app, "echo bad", "failed").await;
    assert_eq!(bad["run"]["ending"], "exited", "{bad:#}");
    assert_eq!(bad["run"]["exit_code"], 3);
    assert_eq!(bad["run"]["stderr"]["text"], "no such thing\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_what_it_must() {
    let app = spawn_app("ip-refusals", "").await;
    let http = client();
    let url = |path: &str| format!("{}{path}", app.url);

    let r = http.get(url("/api/v1/actions")).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(url("/api/v1/actions"))
        .bearer_auth("jrv_not-a-token")
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A read token may not propose; no token may decide.
    let (status, body) = app
        .reader()
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "uptime" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
    let pending = app.agent().propose("touch /tmp/jarvis-refusals").await;
    let id = id_of(&pending);
    let (status, body) = app
        .agent()
        .post(&format!("/api/v1/actions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("never decide"),
        "{body:#}"
    );
    // A person's session without its CSRF token may not either.
    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{id}/approve"),
            "forged",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");

    let (status, body) = app
        .agent()
        .get("/api/v1/actions/0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body:#}");

    let r = http
        .post(url("/api/v1/actions"))
        .bearer_auth(&app.propose_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let (status, v) = app.agent().get(&format!("/api/v1/actions/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["action"]["state"], "pending_approval", "still waiting");
    assert!(runs(&app).is_empty(), "no refusal reached the host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_through_the_api_restores_on_the_host() {
    let app = spawn_app("ip-rollback", "").await;
    let agent = app.agent();
    let (status, body) = agent
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "git commit -qam 'port 9090'", "cwd": "/srv/app" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    assert_eq!(body["action"]["plan"]["repos"], json!(["/srv/app"]));
    let id = id_of(&body["action"]);
    app.approve(&id).await;
    agent.wait_state(&id, "succeeded").await;
    // The state after the run is taken once the run is recorded: waited
    // for, since a rollback compares against it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
        if !v["snapshot"]["after"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "no after-state: {v:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshots = app
        .guard
        .count(|r| matches!(r, Request::Snapshot(s) if s.action_id.to_string() == id));
    assert_eq!(snapshots, 2, "one before the run, one after");

    let (status, body) = app
        .approver
        .api(
            &format!("/api/v1/actions/{id}/rollback"),
            &app.csrf,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body:#}");
    assert_eq!(body["waiting_for_approval"], true);
    let rollback = body["rollback"].clone();
    assert_eq!(rollback["kind"], "rollback");
    assert_eq!(rollback["rollback_of"], id.as_str());
    let rb = id_of(&rollback);
    let restores = |app: &App| {
        app.guard
            .count(|r| matches!(r, Request::Restore(r) if !r.check_only))
    };
    assert_eq!(restores(&app), 0, "nothing is put back before the approval");

    let (status, body) = app.approve(&rb).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    agent.wait_state(&rb, "succeeded").await;
    let original = agent.wait_state(&id, "rolled_back").await;
    assert_eq!(restores(&app), 1);
    let put_back = app
        .guard
        .requests()
        .into_iter()
        .find_map(|r| match r {
            Request::Restore(r) if !r.check_only => Some(r),
            Request::Run(_)
            | Request::Check
            | Request::Kernel
            | Request::Snapshot(_)
            | Request::Restore(_)
            | Request::Preview(_)
            | Request::Edit(_)
            | Request::Drop(_)
            | Request::Account(_) => None,
        })
        .expect("a restore");
    assert_eq!(
        put_back.target.action_id.to_string(),
        id,
        "to the action's snapshot"
    );
    assert_eq!(
        put_back.target.repos().next().map(|r| r.path.as_str()),
        Some("/srv/app")
    );
    assert_eq!(original["rollbacks"][0]["id"], rb.as_str(), "{original:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_announce_a_change_of_state() {
    let app = spawn_app("ip-live", "").await;
    let mut stream = client()
        .get(format!("{}/api/v1/events", app.url))
        .bearer_auth(&app.read_token)
        .send()
        .await
        .expect("GET /api/v1/events");
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .expect("a content type")
            .starts_with("text/event-stream")
    );

    let action = app.agent().propose("uptime").await;
    let id = id_of(&action);
    // Read until the action's `succeeded` comes by; bounded so a missing
    // event fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `succeeded` event for {id}; the stream said:\n{seen}"))
            .expect("the stream reads")
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        let done = seen.split("\n\n").any(|event| {
            event.contains("event: action")
                && event.contains(&id)
                && event.contains("\"state\":\"succeeded\"")
        });
        if done {
            break;
        }
    }
    assert!(seen.contains("event: action"), "{seen}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_its_kernel_wall_holds_allowed_commands_for_a_person() {
    use jarvis_exec::fake::FakeGuard;
    use jarvis_exec::protocol::{Frame, KernelEnforcement, KernelReport};
    // The guard says its kernel enforces nothing; the host's
    // `enforcement = "required"` then lets nothing run unattended.
    let guard = FakeGuard::new("sandbox");
    guard.answer(
        |r| matches!(r, Request::Kernel),
        Reply::Frames {
            output: Vec::new(),
            last: Box::new(Frame::Kernel(KernelReport {
                bash: Some("/usr/bin/bash".into()),
                enforcement: KernelEnforcement::default(),
            })),
        },
    );
    guard.answer(|r| matches!(r, Request::Check), Reply::NeverSent);
    let app = spawn_app_on("ip-kernel", "", guard).await;
    let action = app.agent().propose("uptime").await;
    assert_eq!(action["state"], "pending_approval", "{action:#}");
    assert!(runs(&app).is_empty());
    // A person may still let it run.
    let id = id_of(&action);
    let (status, body) = app.approve(&id).await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    app.agent().wait_state(&id, "succeeded").await;
    assert_eq!(runs(&app).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_see_the_fake_host() {
    let app = spawn_app("ip-ops", "").await;
    let http = client();
    let r = http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("GET /healthz");
    assert_eq!(r.status(), StatusCode::OK);
    ran(&app, "uptime", "succeeded").await;
    let r = http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "metrics are not public"
    );
    let metrics = http
        .get(format!("{}/metrics", app.url))
        .bearer_auth(&app.read_token)
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("jarvis_actions{state=\"succeeded\",decision=\"allow\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jarvis_host_breaker_state{host=\"sandbox\",state=\"closed\"} 1"),
        "{metrics}"
    );
    // The host's first background check answers in its own time: asked
    // until it has, bounded so a host that never answers fails the test.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http
            .get(format!("{}/readyz", app.url))
            .bearer_auth(&app.read_token)
            .send()
            .await
            .expect("GET /readyz");
        let status = ready.status();
        let body: Value = ready.json().await.expect("readyz JSON");
        if status == StatusCode::OK {
            assert_eq!(body["hosts"]["sandbox"]["ok"], true, "{body:#}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.guard.count(|r| matches!(r, Request::Check)) >= 1,
        "readiness comes from the host's guard"
    );
}
