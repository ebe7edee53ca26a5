//! The server's rules over HTTP, in process: what a token may and may not
//! do, approvals (expiry, the two-person rule), idempotent proposals, the
//! audit filters, hostile text rendered inert and cookies behind TLS, each
//! checked in the response and in the audit log.
//! The real router and pipeline on a fresh store, with the fake guard
//! under the executor (`jarvis_tests::inprocess`): none of this depends on
//! what a real host does. What does (the binary's start, sign-in with real
//! password hashes, webhooks, commands' output on a real host) stays in
//! server_http.rs against the sandbox.

use std::time::Duration;

use jarvis_core::{ConversationId, Role, TokenScope};
use jarvis_exec::fake::Reply;
use jarvis_gateway::auth;
use jarvis_tests::inprocess::{App, spawn_app};
use jarvis_tests::server::{Agent, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A command the shipped policy holds for a person.
const PENDING: &str = "touch /tmp/jarvis-rules";

fn id_of(action: &Value) -> String {
    action["id"].as_str().expect("an action id").to_owned()
}

async fn refusals(app: &App, reason: &str) -> Vec<Value> {
    app.audit("access.refused")
        .await
        .into_iter()
        .filter(|e| e["payload"]["reason"] == reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_propose_and_read_but_never_approve() {
    let app = spawn_app("rules-token", "").await;
    let (agent, reader) = (app.agent(), app.reader());
    let action = agent.propose(PENDING).await;
    assert_eq!(action["state"], "pending_approval");
    assert_eq!(action["requester"], "token:planner");
    let id = id_of(&action);

    let (status, body) = agent
        .post(&format!("/api/v1/actions/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("never decide")
    );
    let (status, _) = reader
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "uptime" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = reader.get("/api/v1/actions?state=pending_approval").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["actions"][0]["id"], id.as_str());

    let refused = refusals(&app, "token").await;
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert_eq!(refused[1]["actor"], "token:planner");
    assert_eq!(refused[1]["action_id"], id.as_str());
    let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
    assert_eq!(v["action"]["state"], "pending_approval", "still waiting");

    // An allowed command runs at once and its output is in the record.
    app.guard
        .on_command("echo rules", Reply::ok("rules-token\n"));
    let ran = agent.propose("echo rules").await;
    let done = agent.wait_state(&id_of(&ran), "succeeded").await;
    assert_eq!(done["run"]["stdout"]["text"], "rules-token\n");

    // Paging: newest first, then older than the last one seen.
    let (_, newest) = reader.get("/api/v1/actions?limit=1").await;
    let newest = id_of(&newest["actions"][0]);
    assert_eq!(newest, id_of(&ran));
    let (_, older) = reader
        .get(&format!("/api/v1/actions?limit=1&before={newest}"))
        .await;
    assert_eq!(older["actions"][0]["id"], id.as_str());

    // Revoked: refused at once.
    app.store
        .revoke_token("planner", "local:root")
        .await
        .expect("revoked");
    let (status, _) = agent.get("/api/v1/actions").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_may_not_post_the_web_forms() {
    let app = spawn_app(
        "rules-forms",
        "[approvals]\nself_approval = false\ncritical_approvers = 2\n",
    )
    .await;
    // Made at the gateway's shell, as `jarvis tokens add` does: the
    // operator answers for what it proposes, and the action's page says so.
    let token = auth::new_api_token();
    app.store
        .create_token(
            "bot",
            TokenScope::Propose,
            &auth::digest(&token),
            "local:root",
        )
        .await
        .expect("token created");
    let agent = Agent {
        http: client(),
        url: app.url.clone(),
        token: token.clone(),
    };
    let action = agent.propose(PENDING).await;
    let id = id_of(&action);
    assert_eq!(action["accountable"], "local:root", "{action:#}");
    let carol = app.person("carol", Role::Approver).await;
    let (_, page) = carol.page(&format!("/actions/{id}")).await;
    assert!(
        page.contains(&format!(
            "<dd id=\"accountable\">{}</dd>",
            jarvis_core::words::actor("local:root")
        )),
        "{page}"
    );
    let routes = [
        "/chat".to_owned(),
        format!("/chat/{}", ConversationId::new()),
        format!("/actions/{id}/approve"),
        format!("/actions/{id}/deny"),
        format!("/actions/{id}/run"),
        format!("/actions/{id}/rollback"),
        "/logout".to_owned(),
    ];
    let http = client();
    for route in &routes {
        let r = http
            .post(format!("{}{route}", app.url))
            .bearer_auth(&token)
            .form(&[("prompt", "docker ps"), ("reason", "mine")])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{route}");
        let body = r.text().await.unwrap_or_default();
        assert!(
            body.contains("may not post the web UI") && body.contains("/api/v1"),
            "{route}: {body}"
        );
    }
    // Nothing was started or decided, and every refusal is on the record.
    assert!(app.audit("conversation.started").await.is_empty());
    let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
    assert_eq!(v["action"]["state"], "pending_approval");
    let refused = refusals(&app, "token_form").await;
    assert_eq!(refused.len(), routes.len(), "{refused:#?}");
    assert!(refused.iter().all(|e| e["actor"] == "token:bot"));
    assert!(
        refused
            .iter()
            .any(|e| e["payload"]["detail"]["route"] == "/chat"),
        "{refused:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_approval_says_so() {
    let app = spawn_app("rules-expire", "[limits]\napproval_ttl_secs = 1\n").await;
    let id = id_of(&app.agent().propose(PENDING).await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let csrf = app.approver.csrf("/").await;
    let (status, _, body) = app
        .approver
        .form(&format!("/actions/{id}/approve"), &[("csrf", &csrf)])
        .await;
    // Either this request found it overdue (410) or the sweeper did (409).
    assert!(
        status == StatusCode::GONE || status == StatusCode::CONFLICT,
        "{status} {body}"
    );
    assert!(body.contains("expired"), "{body}");
    app.agent().wait_state(&id, "expired").await;
    assert!(app.guard.commands().is_empty(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_person_rule_refuses_self_approval_and_waits_for_a_second_approver() {
    let app = spawn_app(
        "rules-two",
        "[approvals]\nself_approval = false\napprovers = 2\n",
    )
    .await;
    let (alice, alice_csrf) = (&app.approver, &app.csrf);
    let bob = app.person("bob", Role::Approver).await;
    let carol = app.person("carol", Role::Admin).await;

    // Alice proposes through the API with her session, then tries to approve it.
    let (status, body) = alice
        .api(
            "/api/v1/actions",
            alice_csrf,
            json!({ "host": "sandbox", "command": PENDING }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    let id = id_of(&body["action"]);
    let (status, body) = alice
        .api(
            &format!("/api/v1/actions/{id}/approve"),
            alice_csrf,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("alice is accountable for it")
    );
    assert_eq!(refusals(&app, "self_approval").await.len(), 1);

    // Without the CSRF header a session's API call is refused too.
    let (status, _) = bob
        .api(&format!("/api/v1/actions/{id}/approve"), "", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let csrf = bob.csrf("/").await;
    let (status, body) = bob
        .api(
            &format!("/api/v1/actions/{id}/approve"),
            &csrf,
            json!({ "reason": "ok" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["approvals_still_needed"], 1);
    let (status, body) = bob
        .api(&format!("/api/v1/actions/{id}/approve"), &csrf, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the same person twice: {body:#}"
    );
    assert!(app.guard.commands().is_empty(), "one approval runs nothing");
    let csrf = carol.csrf("/").await;
    let (status, body) = carol
        .api(&format!("/api/v1/actions/{id}/approve"), &csrf, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["approved"], true);
    app.agent().wait_state(&id, "succeeded").await;
    assert_eq!(app.guard.commands(), [PENDING]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_filters_refuse_what_is_not_a_time() {
    let app = spawn_app("rules-audit-time", "").await;
    let victor = app.person("victor", Role::Viewer).await;
    let agent = app.agent();
    let m = "audit-time-mark";
    agent.propose(&format!("touch /tmp/{m}")).await;

    // The API: 400, naming the parameter and the value.
    for (query, name, value) in [
        ("since=garbage", "since", "garbage"),
        ("until=yesterday", "until", "yesterday"),
        (
            "since=2026-11-23T14:00:00%2B0200",
            "since",
            "2026-11-23T14:00:00+0200",
        ),
    ] {
        let (status, body) = agent.get(&format!("/api/v1/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body:#}");
        let error = body["error"].as_str().expect("an error message");
        assert!(
            error.starts_with(&format!("{name}: `{value}` is not a time")),
            "{error}"
        );
    }
    // … and real times in any offset filter.
    let (status, body) = agent
        .get(&format!(
            "/api/v1/audit?q={m}&since=2000-01-01T02:00:00.5%2B02:00"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert!(!body["events"].as_array().expect("events").is_empty());
    let (_, body) = agent
        .get(&format!("/api/v1/audit?q={m}&until=2000-01-01 00:00"))
        .await;
    assert!(body["events"].as_array().expect("events").is_empty());

    // The page: 400, the message on it, and the form as it was sent.
    let (status, page) = victor.page("/audit?host=sandbox&since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    for s in [
        "<p id=\"audit-filter-error\" class=\"flash error\" role=\"alert\">since: `yesterday` is not a time",
        "<form id=\"audit-filter\"",
        "name=\"host\" type=\"text\" value=\"sandbox\"",
        "name=\"since\" type=\"text\" value=\"yesterday\"",
        "aria-invalid=\"true\"",
    ] {
        assert!(page.contains(s), "missing {s}\n{page}");
    }
    assert!(!page.contains("<table class=\"audit\">"), "{page}");
    let (status, page) = victor.page(&format!("/audit?q={m}&since=2000-01-01")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<table class=\"audit\">"), "{page}");
}

/// Posts a proposal of `command` with `key` as its Idempotency-Key.
async fn propose_keyed(agent: &Agent, key: &str, command: &str) -> (StatusCode, Value) {
    let r = agent
        .http
        .post(format!("{}/api/v1/actions", agent.url))
        .bearer_auth(&agent.token)
        .header("idempotency-key", key)
        .json(&json!({ "host": "sandbox", "command": command }))
        .send()
        .await
        .expect("POST");
    let status = r.status();
    (status, r.json().await.expect("JSON"))
}

/// `n` proposals with one key at once.
async fn all_at_once(
    agent: &Agent,
    key: &str,
    command: &str,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (agent, key, command) = (agent.clone(), key.to_owned(), command.to_owned());
        tasks.spawn(async move { propose_keyed(&agent, &key, &command).await });
    }
    tasks.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_proposal_with_its_idempotency_key_makes_one_action() {
    let app = spawn_app("rules-idem", "").await;
    let agent = app.agent();
    let other = app.agent_named("idem-other", TokenScope::Propose).await;
    let command = "systemctl restart grafana-idem";

    // The answer is lost; the client sends the same proposal with the same
    // key: the action it already made, as it stands, not a second one.
    let (status, first) = propose_keyed(&agent, "key-a", command).await;
    assert_eq!(status, StatusCode::CREATED, "{first:#}");
    let id = id_of(&first["action"]);
    let (status, again) = propose_keyed(&agent, "key-a", command).await;
    assert_eq!(status, StatusCode::OK, "{again:#}");
    assert_eq!(again["action"]["id"], json!(id), "{again:#}");
    assert_eq!(again["replayed"], true);
    assert_eq!(again["action"]["state"], "pending_approval");

    // Retries racing each other: exactly one makes the action.
    let racing = all_at_once(&agent, "key-b", command, 8).await;
    let created: Vec<_> = racing
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{racing:#?}");
    let made = created[0].1["action"]["id"].clone();
    for (status, body) in &racing {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::OK,
            "{status}: {body:#}"
        );
        assert_eq!(body["action"]["id"], made, "{body:#}");
    }

    // A key used for another proposal is a client's mistake, not a retry.
    let (status, body) = propose_keyed(&agent, "key-a", "uptime").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("different proposal") && e.contains(&id)),
        "{body:#}"
    );
    // Keys are each requester's own.
    let (status, theirs) = propose_keyed(&other, "key-a", command).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs:#}");
    assert_ne!(theirs["action"]["id"], json!(id));
    // A key that is no key is refused, naming the header.
    for bad in ["", "tab\there", &"k".repeat(256), "clé"] {
        let r = agent
            .http
            .post(format!("{}/api/v1/actions", agent.url))
            .bearer_auth(&agent.token)
            .header("idempotency-key", bad.as_bytes())
            .json(&json!({ "host": "sandbox", "command": command }))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        let body: Value = r.json().await.expect("JSON");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("Idempotency-Key")),
            "{body:#}"
        );
    }

    // Three actions in all: the first, the raced one, the other token's.
    let (_, list) = agent.get("/api/v1/actions?limit=100").await;
    let same = list["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["command"] == json!(command))
        .count();
    assert_eq!(same, 3, "{list:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_with_html_script_and_ansi_render_inert() {
    let app = spawn_app("rules-inert", "").await;
    let agent = app.agent();
    // Pending, so it is in the queue: markup in a path.
    let html = agent
        .propose("touch '/tmp/<script>alert(1)</script><img src=x onerror=alert(2)>'")
        .await;
    assert_eq!(html["state"], "pending_approval", "{html:#}");
    // Denied (control characters are not judged), but shown on its page.
    let ansi = agent
        .propose("echo '<script>alert(3)</script>' \u{1b}[31mred\u{1b}[0m")
        .await;
    assert_eq!(ansi["state"], "denied", "{ansi:#}");
    let pages = [
        "/".to_owned(),
        format!("/actions/{}", id_of(&html)),
        format!("/actions/{}", id_of(&ansi)),
        "/audit?q=script".to_owned(),
    ];
    for path in pages {
        let (status, page) = app.approver.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!page.contains("<script>alert"), "{path} has live script");
        assert!(!page.contains("<img src=x"), "{path} has a live tag");
        assert!(!page.contains('\u{1b}'), "{path} has a raw escape");
        assert!(
            page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"),
            "{path} does not show the markup as text"
        );
    }
    let (_, page) = app
        .approver
        .page(&format!("/actions/{}", id_of(&ansi)))
        .await;
    assert!(
        page.contains('\u{241b}'),
        "the escape is shown as a visible symbol"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_tls_cookies_are_secure_and_host_bound() {
    let app = spawn_app(
        "rules-tls",
        "[server]\npublic_url = \"https://jarvis.home.example\"\n",
    )
    .await;
    let r = client()
        .get(format!("{}/login", app.url))
        .send()
        .await
        .expect("GET /login");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("__Host-jarvis_login="), "{cookie}");
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(r.headers().contains_key("strict-transport-security"));
}
