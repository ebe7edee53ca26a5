//! Faults on the way to a host (issue 17, items 2 and 3): a breaker whose
//! probe is refused or abandoned must not cut a healthy host off for good,
//! and failures on the gateway's own side (a request too large for one SSH
//! command line, no `ssh` to start) are never the host's: they do not count
//! against its breaker and are never recorded as "lost".

use std::time::Duration;

use jarvis_core::{ActionState, HostName};
use jarvis_exec::ExecError;
use jarvis_exec::breaker::BreakerStatus;
use jarvis_gateway::{Gateway, GatewayError};
use jarvis_tests::exec_faults::Switch;
use jarvis_tests::server::{Agent, Served};
use jarvis_tests::{Env, marker, run_allowed, sandbox};
use reqwest::StatusCode;
use serde_json::json;

async fn open(env: &Env) -> Gateway {
    jarvis_tests::gateway(&env.config, &env.dir().join("jarvis.db"), "fx").await
}

fn sandbox_name() -> HostName {
    HostName::parse("sandbox").expect("valid")
}

/// A host behind a switch that starts off: one failed run opens its
/// breaker for a second.
async fn cut_off(tag: &str, host_limits: &str) -> (Env, Switch, Gateway) {
    let scratch = jarvis_tests::TempDir::new(&format!("{tag}-kh"));
    let switch = Switch::start(scratch.path(), false).await;
    // The known_hosts file must outlive the scratch directory's guard.
    let env = Env::with_host(
        tag,
        switch.port,
        &switch.known_hosts,
        &format!("breaker_failures = 1\nbreaker_cooldown_secs = 1\n{host_limits}"),
        "",
    );
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
    let gw = open(&env).await;
    let state = run_allowed(&gw, "echo unreachable")
        .await
        .expect("attempted");
    assert_eq!(state, ActionState::Failed);
    assert!(
        matches!(
            gw.executor().breaker_status(&sandbox_name()),
            Some(BreakerStatus::Open { .. })
        ),
        "{:?}",
        gw.executor().breaker_state(&sandbox_name())
    );
    (env, switch, gw)
}

#[tokio::test]
async fn a_probe_a_rate_limit_refuses_does_not_cut_the_host_off() {
    // One action a minute: the failed run above spent it.
    let (_env, switch, gw) = cut_off("fx-probe-rate", "rate_per_minute = 1\nburst = 1").await;
    switch.set_up(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The cooldown is over; this request would have been the probe, but
    // the rate limit refuses it.
    let err = run_allowed(&gw, "echo refused")
        .await
        .expect_err("rate limited");
    assert!(
        matches!(
            err,
            GatewayError::NotSent {
                source: ExecError::RateLimited(_),
                ..
            }
        ),
        "{err}"
    );
    // The host is not left "probing" with nobody probing: the next request
    // (a host check, which no rate limit holds) tries it, and it answers.
    assert!(
        !matches!(
            gw.executor().breaker_status(&sandbox_name()),
            Some(BreakerStatus::Probing { .. })
        ),
        "{:?}",
        gw.executor().breaker_state(&sandbox_name())
    );
    gw.check_host(&sandbox_name())
        .await
        .expect("the host answers a check");
    assert_eq!(
        gw.executor().breaker_state(&sandbox_name()).as_deref(),
        Some("closed")
    );
    gw.close().await;
}

#[tokio::test]
async fn a_probe_whose_caller_gives_up_does_not_cut_the_host_off() {
    let (_env, switch, gw) = cut_off("fx-probe-drop", "").await;
    switch.set_up(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A host check under a timeout too short for any answer: its future is
    // dropped while it holds the probe (as the server's background checks
    // are, under their own timeout).
    let gave_up =
        tokio::time::timeout(Duration::from_millis(1), gw.check_host(&sandbox_name())).await;
    assert!(gave_up.is_err(), "no answer within a millisecond");
    // The probe went back with the dropped future: the next request tries.
    let state = run_allowed(&gw, &format!("echo {}", marker("fx-drop")))
        .await
        .expect("the next request probes");
    assert_eq!(state, ActionState::Succeeded);
    assert_eq!(
        gw.executor().breaker_state(&sandbox_name()).as_deref(),
        Some("closed")
    );
    gw.close().await;
}

/// An allowed line of 65,007 bytes, mostly tabs: under the policy's 64 KiB
/// limit, but twice that once JSON escapes each tab, and more once the
/// request is base64-encoded for the SSH command line (the kernel refuses
/// an argument over 128 KiB with E2BIG).
fn tab_line(m: &str) -> String {
    let head = format!("echo {m}");
    let mut line = head.clone();
    line.push_str(&"\t".repeat(65_007 - head.len() - 2));
    line.push_str("ok");
    assert_eq!(line.len(), 65_007);
    line
}

#[tokio::test]
async fn requests_too_large_to_send_are_refused_at_proposal_and_never_trip_the_breaker() {
    let served = Served::start(
        Env::new(
            "fx-e2big",
            "breaker_failures = 2\nbreaker_cooldown_secs = 600",
            "",
        ),
        "",
        &[],
    );
    let agent = Agent::new(&served, served.add_token("fx-agent", "propose"));
    let m = marker("fx-e2big");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = agent
            .post(
                "/api/v1/actions",
                json!({ "host": "sandbox", "command": tab_line(&m) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body:#}");
        assert_eq!(body["action"]["state"], "denied", "{body:#}");
        let first = body["judgement"]["reasons"][0].as_str().unwrap_or("");
        assert!(
            first.contains("cannot be sent") && first.contains("SSH command line"),
            "the reason says why: {first}"
        );
        ids.push(body["action"]["id"].as_str().expect("id").to_owned());
    }
    // Nothing reached the host, nothing was run or recorded as lost, and
    // the host was never counted against.
    assert!(sandbox().guard_log_lines(&m).is_empty());
    for id in &ids {
        let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
        assert_eq!(v["action"]["state"], "denied", "{v:#}");
        assert!(v["run"].is_null(), "no run, so none lost: {v:#}");
    }
    let (_, hosts) = agent.get("/api/v1/hosts").await;
    assert_eq!(hosts["hosts"][0]["breaker"], "closed", "{hosts:#}");
    let ok = agent.propose(&format!("echo {m}-after")).await;
    let done = agent
        .wait_state(ok["id"].as_str().expect("id"), "succeeded")
        .await;
    assert_eq!(done["action"]["state"], "succeeded");
}

#[tokio::test]
async fn a_gateway_without_ssh_fails_locally_and_blames_no_host() {
    // No `ssh` on the server's PATH, and a control directory of its own
    // (no other test's master to open sessions on): every attempt fails on
    // this side, starting the master.
    let env = Env::with_host(
        "fx-nossh",
        sandbox().port,
        &sandbox().known_hosts,
        "breaker_failures = 2\nbreaker_cooldown_secs = 600",
        "",
    );
    let runtime = env.dir().join("run");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    let runtime = runtime.to_str().expect("utf-8 path").to_owned();
    let served = Served::start(
        env,
        "",
        &[
            ("PATH", "/nonexistent"),
            ("XDG_RUNTIME_DIR", runtime.as_str()),
        ],
    );
    let agent = Agent::new(&served, served.add_token("fx-nossh", "propose"));
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = agent.propose(&format!("echo nossh-{i}")).await;
        ids.push(a["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let v = agent.wait_state(id, "failed").await;
        assert_eq!(v["run"]["ending"], "not-sent", "{v:#}");
        let error = v["run"]["error"].as_str().unwrap_or("");
        assert!(error.contains("nothing was sent"), "{error}");
    }
    let (_, hosts) = agent.get("/api/v1/hosts").await;
    assert_eq!(hosts["hosts"][0]["breaker"], "closed", "{hosts:#}");
}

#[tokio::test]
async fn proposals_a_rate_limit_refuses_get_429_and_leave_no_runnable_approval() {
    let served = Served::start(
        Env::new("fx-429", "rate_per_minute = 1\nburst = 2", ""),
        "",
        &[],
    );
    let agent = Agent::new(&served, served.add_token("fx-429", "propose"));
    let m = marker("fx-429");
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for i in 0..5 {
        let r = agent
            .http
            .post(format!("{}/api/v1/actions", agent.url))
            .bearer_auth(&agent.token)
            .json(&json!({ "host": "sandbox", "command": format!("echo {m}-{i}") }))
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body: serde_json::Value = r.json().await.expect("JSON");
        let id = body["action"]["id"].as_str().expect("id").to_owned();
        if i < 2 {
            assert_eq!(status, StatusCode::CREATED, "{body:#}");
            assert_eq!(body["action"]["state"], "approved", "{body:#}");
            admitted.push(id);
            continue;
        }
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body:#}");
        let wait = retry_after.expect("a Retry-After in whole seconds");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(body["refused"]["code"], "rate-limited", "{body:#}");
        assert_eq!(body["refused"]["retry_after_secs"], wait, "{body:#}");
        assert_eq!(body["action"]["state"], "denied", "{body:#}");
        let first = body["action"]["reasons"][0].as_str().unwrap_or("");
        assert!(
            first.starts_with("refused when proposed: rate limit (host `sandbox`"),
            "{first}"
        );
        refused.push(id);
    }
    for id in &admitted {
        agent.wait_state(id, "succeeded").await;
    }
    // Nothing refused is left to run: no approved row, no run button, and
    // nothing of it reached the host.
    let (_, approved) = agent.get("/api/v1/actions?state=approved").await;
    let approved = approved.to_string();
    for id in &refused {
        assert!(!approved.contains(id.as_str()), "{id} is still approved");
        let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
        assert_eq!(v["action"]["state"], "denied", "{v:#}");
        assert!(v["run"].is_null(), "{v:#}");
    }
    for i in 2..5 {
        assert!(sandbox().guard_log_lines(&format!("{m}-{i}")).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_hears_that_a_limit_refused_its_proposal() {
    use jarvis_tests::llm_stub::{LlmStub, STUB_MODEL, Step};
    let m = marker("fx-chat");
    let propose = |command: String| {
        Step::call(
            "propose_command",
            json!({
                "host": "sandbox",
                "command": command,
                "reason": "see the host",
                "expected_effect": "a line of output",
            }),
        )
    };
    let stub = LlmStub::start(vec![
        propose(format!("echo {m}-0")),
        propose(format!("echo {m}-1")),
        Step::call("finish", json!({ "summary": "The second was refused." })),
    ])
    .await;
    let env = Env::new("fx-chat", "rate_per_minute = 1\nburst = 1", "");
    let mut text = std::fs::read_to_string(&env.config).expect("config");
    text.push_str(&format!(
        "\n[llm]\nbase_url = \"{}\"\nmodel = \"{STUB_MODEL}\"\ntimeout_secs = 10\n",
        stub.base_url()
    ));
    std::fs::write(&env.config, text).expect("config");
    let config = env.config.to_str().expect("utf-8").to_owned();
    let prompt = format!("say hello twice {m}");
    let out = tokio::task::spawn_blocking(move || {
        jarvis_tests::jarvis(&["--config", &config, "chat", &prompt], b"")
    })
    .await
    .expect("chat");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let answer = requests[2]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].to_string())
        .expect("a tool answer");
    assert!(answer.contains("denied"), "{answer}");
    assert!(answer.contains("refused when proposed"), "{answer}");
    assert!(answer.contains("a limit of the host"), "{answer}");
    assert!(sandbox().guard_log_lines(&format!("{m}-1")).is_empty());
}

/// `/readyz` as a token sees it.
async fn ready(agent: &Agent) -> (StatusCode, serde_json::Value) {
    agent.get("/readyz").await
}

/// Waits (at most `within`) for `/readyz` to answer `want`, and says how
/// long it took.
async fn ready_becomes(agent: &Agent, want: StatusCode, within: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let (status, body) = ready(agent).await;
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "/readyz stayed {status} (wanted {want}) for {within:?}: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_breaker_both_ways_between_checks() {
    let scratch = jarvis_tests::TempDir::new("fx-ready-kh");
    let switch = Switch::start(scratch.path(), true).await;
    let env = Env::with_host(
        "fx-ready",
        switch.port,
        &switch.known_hosts,
        "breaker_failures = 1\nbreaker_cooldown_secs = 2\n",
        "",
    );
    // The periodic check runs once, at start, and not again during the
    // test: whatever /readyz does after that follows the breaker.
    let served = Served::start(env, "[server]\nhost_check_secs = 3600\n", &[]);
    let agent = Agent::new(&served, served.add_token("fx-ready", "propose"));
    ready_becomes(&agent, StatusCode::OK, Duration::from_secs(30)).await;
    let m = marker("fx-ready");
    let propose = |command: String| {
        let agent = &agent;
        async move {
            let r = agent
                .http
                .post(format!("{}/api/v1/actions", agent.url))
                .bearer_auth(&agent.token)
                .json(&json!({ "host": "sandbox", "command": command }))
                .send()
                .await
                .expect("POST");
            let body: serde_json::Value = r.json().await.expect("JSON");
            body["action"]["id"].as_str().expect("id").to_owned()
        }
    };

    // The host goes away, SSH master and all; one failed run cuts it off,
    // and /readyz says so long before the next periodic check.
    switch.cut();
    let failed = propose(format!("echo {m}-down")).await;
    agent.wait_state(&failed, "failed").await;
    ready_becomes(
        &agent,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(5),
    )
    .await;
    let (_, body) = ready(&agent).await;
    assert_eq!(body["hosts"]["sandbox"]["ok"], false, "{body:#}");

    // It comes back; after the cooldown a run is the probe, gets through,
    // and /readyz is green again without waiting for the periodic check.
    switch.set_up(true);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let back = propose(format!("echo {m}-up")).await;
    agent.wait_state(&back, "succeeded").await;
    ready_becomes(&agent, StatusCode::OK, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_lets_the_runs_under_way_finish() {
    let mut served = Served::start(
        Env::new("fx-drain", "", ""),
        "[server]\ndrain_secs = 20\n",
        &[],
    );
    let agent = Agent::new(&served, served.add_token("fx-drain", "propose"));
    let m = marker("fx-drain");
    let action = agent.propose(&format!("sleep 3; echo {m}")).await;
    let id = action["id"].as_str().expect("id").to_owned();
    agent.wait_state(&id, "running").await;

    // A routine restart: the service manager asks the server to stop while
    // the command runs. It stops taking requests, lets the run finish and
    // record itself, then exits.
    let status = served.stop(Duration::from_secs(30));
    assert!(status.success(), "{status}: {}", served.log());
    assert!(
        served.log().contains("letting the runs under way finish"),
        "{}",
        served.log()
    );
    let shown = served.env.show(&id);
    assert_eq!(shown["action"]["state"], "succeeded", "{shown:#}");
    assert!(
        shown["run"]["stdout"]["text"]
            .as_str()
            .or_else(|| shown["run"]["stdout"].as_str())
            .is_some_and(|o| o.contains(&m)),
        "{shown:#}"
    );
}
