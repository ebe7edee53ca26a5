//! The server over HTTP: the JSON API, sign-in, and every refusal a
//! security reviewer asks about, each checked in the response and in the
//! audit log. A real `jarvis serve` against the sandbox host; the rules
//! that do not depend on a real host (tokens, approvals, idempotency, the
//! audit filters) are in server_rules.rs, in process.

use std::time::{Duration, Instant};

use jarvis_tests::server::{Agent, Person, Served, client, csrf_of};
use jarvis_tests::{Env, marker, sandbox};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

/// A pending command that does nothing harmful on the sandbox.
fn pending_command(m: &str) -> String {
    format!("touch /tmp/{m}")
}

fn refusals(s: &Served, reason: &str) -> Vec<Value> {
    s.audit("access.refused")
        .into_iter()
        .filter(|e| e["payload"]["reason"] == reason)
        .collect()
}

fn served(tag: &str, extra: &str) -> Served {
    Served::start(Env::new(tag, "", ""), extra, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_sent_to_sign_in_and_pages_are_hardened() {
    let s = served("http-anon", "");
    let http = client();
    let r = http.get(format!("{}/", s.url)).send().await.expect("GET /");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login?next=/");
    let r = http
        .get(format!("{}/api/v1/actions", s.url))
        .send()
        .await
        .expect("GET api");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(format!("{}/login", s.url))
        .send()
        .await
        .expect("GET /login");
    let h = r.headers().clone();
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("x-request-id"));
    let body = r.text().await.expect("body");
    assert!(
        body.contains("jarvis users add NAME --role admin"),
        "a first start tells the operator how to add a user"
    );
    // A bad bearer token is refused outright, not treated as anonymous.
    let r = http
        .get(format!("{}/api/v1/actions", s.url))
        .bearer_auth("jrv_not-a-real-token")
        .send()
        .await
        .expect("GET api");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The server's variable `name` as its process sees it.
fn served_var(s: &Served, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{}/environ", s.pid())).expect("environ");
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// The server restarts itself once with glibc's allocator tuned to give
/// memory back (same process, so a service manager's pid stays right),
/// and leaves an operator's own tuning alone.
#[test]
fn the_server_tunes_its_allocator_unless_the_operator_did() {
    let s = served("http-malloc", "");
    let tuned = served_var(&s, "GLIBC_TUNABLES").expect("the server set its tunables");
    assert!(tuned.contains("glibc.malloc.arena_max=2"), "{tuned}");
    let own = Served::start(
        Env::new("http-malloc-own", "", ""),
        "",
        &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")],
    );
    assert_eq!(
        served_var(&own, "GLIBC_TUNABLES").as_deref(),
        Some("glibc.malloc.arena_max=4")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_cookie_and_failures_are_limited_and_audited() {
    let s = served("http-login", "");
    let password = s.add_user("alice", "approver");
    let http = client();
    let page = http
        .get(format!("{}/login", s.url))
        .send()
        .await
        .expect("login");
    let csrf = csrf_of(&page.text().await.expect("page"));

    // Without the form's token: refused.
    let r = http
        .post(format!("{}/login", s.url))
        .form(&[
            ("username", "alice"),
            ("password", password.as_str()),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let page = http
        .get(format!("{}/login", s.url))
        .send()
        .await
        .expect("login");
    let csrf2 = csrf_of(&page.text().await.expect("page"));
    assert_ne!(csrf, csrf2);
    let r = http
        .post(format!("{}/login", s.url))
        .form(&[
            ("username", "alice"),
            ("password", password.as_str()),
            ("csrf", &csrf2),
            ("next", "/hosts"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/hosts");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("jarvis_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    assert_eq!(s.audit("auth.login").len(), 1);
    let page = http
        .get(format!("{}/hosts", s.url))
        .send()
        .await
        .expect("hosts");
    let csrf = csrf_of(&page.text().await.expect("page"));
    let r = http
        .post(format!("{}/logout", s.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http.get(format!("{}/", s.url)).send().await.expect("GET /");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed out");
    assert_eq!(s.audit("auth.logout").len(), 1);

    // A stranger without the form's token: refused, and nothing counted
    // against the name (five of these once locked a person out).
    let stranger = client();
    for _ in 0..8 {
        let r = stranger
            .post(format!("{}/login", s.url))
            .form(&[
                ("username", "alice"),
                ("password", "wrong-password"),
                ("csrf", "forged"),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // Each audited, with the one without a token above.
    assert_eq!(s.audit("auth.csrf_refused").len(), 9);
    let sign_in = |who: &reqwest::Client, pw: String| {
        let (who, url) = (who.clone(), s.url.clone());
        async move {
            let page = who.get(format!("{url}/login")).send().await.expect("login");
            let csrf = csrf_of(&page.text().await.expect("page"));
            who.post(format!("{url}/login"))
                .form(&[("username", "alice"), ("password", &pw), ("csrf", &csrf)])
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        sign_in(&client(), password.clone()).await,
        303,
        "not locked out"
    );

    // Wrong passwords: 401 each, then the name is slowed down, even for
    // the right password, and never locked out: after the wait it works.
    let mallory = client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(sign_in(&mallory, "wrong-password".into()).await);
    }
    statuses.push(sign_in(&mallory, password.clone()).await);
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{statuses:?}");
    assert_eq!(s.audit("auth.login_failed").len(), 5);
    assert_eq!(
        s.audit("auth.login_locked").len(),
        1,
        "audited once a minute, not per attempt"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        sign_in(&client(), password.clone()).await,
        303,
        "after the wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_in_the_ui_runs_the_action_and_bad_approvals_are_refused() {
    let s = served("http-approve", "");
    let alice = Person::sign_in(&s, "alice", &s.add_user("alice", "approver")).await;
    let victor = Person::sign_in(&s, "victor", &s.add_user("victor", "viewer")).await;
    let agent = Agent::new(&s, s.add_token("planner", "propose"));
    let m = marker("approve");
    let id = agent.propose(&pending_command(&m)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let approve = format!("/actions/{id}/approve");

    // The queue shows it to both.
    let (status, queue) = victor.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(queue.contains(&id) && queue.contains(&m));
    assert!(
        !queue.contains("button class=\"approve\""),
        "a viewer gets no buttons"
    );

    // A viewer may not approve; a forged or missing token is refused.
    let csrf = victor.csrf("/").await;
    let (status, _, body) = victor.form(&approve, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("viewer"), "{body}");
    let (status, _, _) = alice.form(&approve, &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = alice.form(&approve, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refusals(&s, "role").len(), 1);
    assert_eq!(refusals(&s, "csrf").len(), 2);
    assert_eq!(
        agent.get(&format!("/api/v1/actions/{id}")).await.1["action"]["state"],
        "pending_approval"
    );

    // The real approval runs it.
    let csrf = alice.csrf(&format!("/actions/{id}")).await;
    let (status, headers, _) = alice
        .form(&approve, &[("csrf", &csrf), ("reason", "looks fine")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/actions/{id}"));
    let done = agent.wait_state(&id, "succeeded").await;
    let approved = done["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "action.approved")
        .expect("approved event")
        .clone();
    assert_eq!(approved["actor"], "user:alice");
    let (_, page) = alice.page(&format!("/actions/{id}")).await;
    assert!(page.contains("data-state=\"succeeded\""), "{page}");

    // Already decided, vanished, and an unknown id: clear messages.
    let (status, _, body) = alice.form(&approve, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("succeeded"), "{body}");
    let vanished = "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f";
    let (status, _, body) = alice
        .form(&format!("/actions/{vanished}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("does not exist"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_audit_search_and_webhooks() {
    // A webhook receiver: a plain TCP server that records request bodies.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(16);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(head) = text.find("\r\n\r\n") {
                        let len = text[..head]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= head + 4 + len {
                            let _ = tx.send(text[head + 4..].to_string()).await;
                            break;
                        }
                    }
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let s = Served::start(
        Env::new("http-ops", "", ""),
        "[server]\npublic_url = \"http://jarvis.test\"\nhost_check_secs = 1\naudit_verify_secs = 1\n\n[[notify]]\nname = \"test\"\nformat = \"json\"\nurl = { env = \"JARVIS_TEST_HOOK\" }\n",
        &[("JARVIS_TEST_HOOK", hook.as_str())],
    );
    let agent = Agent::new(&s, s.add_token("planner", "propose"));
    let m = marker("ops");
    let id = agent.propose(&pending_command(&m)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let body = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the webhook fired")
        .expect("a body");
    let notice: Value = serde_json::from_str(&body).expect("json webhook");
    assert_eq!(notice["event"], "approval_needed");
    assert_eq!(notice["action_id"], id.as_str());
    assert_eq!(notice["link"], format!("http://jarvis.test/actions/{id}"));

    // An action proposed with the CLI beside the server (another process
    // on the same database) reaches the server's webhooks too.
    let cli = s.env.jarvis(&[
        "run",
        "--host",
        "sandbox",
        "--",
        &pending_command(&marker("ops-cli")),
    ]);
    let from_cli = String::from_utf8_lossy(&cli.stdout).trim().to_owned();
    assert_eq!(
        from_cli.len(),
        36,
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let body = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the webhook fired for the CLI's action")
        .expect("a body");
    let notice: Value = serde_json::from_str(&body).expect("json webhook");
    assert_eq!(notice["event"], "approval_needed");
    assert_eq!(notice["action_id"], from_cli.as_str());

    let http = client();
    let get = |path: &str| http.get(format!("{}{path}", s.url)).send();
    assert_eq!(
        get("/healthz").await.expect("healthz").status(),
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get("/readyz").await.expect("readyz");
        if r.status() == StatusCode::OK {
            // A stranger learns ready or not, and no host's name.
            let v: Value = r.json().await.expect("json");
            assert_eq!(v, json!({ "ready": true }));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            r.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The figures are for someone holding credentials: a read token.
    let scraper = Agent::new(&s, s.add_token("prometheus", "read"));
    let detail: Value = http
        .get(format!("{}/readyz", s.url))
        .bearer_auth(&scraper.token)
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["hosts"]["sandbox"]["ok"], true, "{detail}");
    assert_eq!(detail["database"]["ok"], true, "{detail}");
    assert_eq!(
        get("/metrics").await.expect("metrics").status(),
        StatusCode::UNAUTHORIZED
    );
    let metrics = http
        .get(format!("{}/metrics", s.url))
        .bearer_auth(&scraper.token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for family in [
        "jarvis_actions{state=\"pending_approval\"",
        "jarvis_http_requests_total{",
        "jarvis_host_breaker_open{host=\"sandbox\"} 0",
        "jarvis_notifications_total{",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from:\n{metrics}"
        );
    }

    let (status, found) = agent.get(&format!("/api/v1/audit?q={m}")).await;
    assert_eq!(status, StatusCode::OK);
    let events = found["events"].as_array().expect("events");
    assert!(
        !events.is_empty() && events.iter().all(|e| e["action_id"] == id.as_str()),
        "{found:#}"
    );
    let (status, verify) = agent.get("/api/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verify["intact"], true, "{verify:#}");
    assert!(
        verify["report"]["events"].as_u64() >= Some(4),
        "a current verification: {verify:#}"
    );
    assert!(
        s.log().lines().any(|l| l.contains("\"request_id\"")),
        "JSON logs with request ids"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_action_a_limit_refused_can_be_run_from_its_page() {
    let s = Served::start(
        Env::new(
            "http-run",
            "concurrency = 1\nqueue_timeout_secs = 1",
            "run_window_secs = 8",
        ),
        "",
        &[],
    );
    let alice = Person::sign_in(&s, "alice", &s.add_user("alice", "approver")).await;
    let agent = Agent::new(&s, s.add_token("planner", "propose"));
    let m = marker("run");
    let busy = agent.propose("sleep 4").await;
    assert_eq!(busy["state"], "approved", "{busy:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let propose = |command: String| {
        let agent = &agent;
        async move {
            agent.propose(&command).await["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let id = propose(format!("echo {m}")).await;
    let late = propose(format!("echo {m}-late")).await;
    // The host's one slot is taken: each waits a second, then is refused
    // and stays approved.
    for id in [&id, &late] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, v) = agent.get(&format!("/api/v1/actions/{id}")).await;
            let refused = v["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "action.refused"));
            if refused {
                assert_eq!(v["action"]["state"], "approved", "{v:#}");
                break;
            }
            assert!(Instant::now() < deadline, "never refused: {v:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (_, page) = alice.page(&format!("/actions/{id}")).await;
    assert!(page.contains("form class=\"run"), "a run button: {page}");
    assert!(
        page.contains("The approval lapses when this reaches zero"),
        "{page}"
    );
    agent
        .wait_state(busy["id"].as_str().expect("id"), "succeeded")
        .await;
    let csrf = csrf_of(&page);
    let (status, _, _) = alice
        .form(&format!("/actions/{id}/run"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let done = agent.wait_state(&id, "succeeded").await;
    assert_eq!(done["run"]["stdout"]["text"], format!("{m}\n"));
    // A token may not.
    let (status, _) = agent
        .post(&format!("/api/v1/actions/{id}/run"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Past the run window the approval has lapsed: running it is refused
    // (410), it is expired, and nothing reached the host.
    let (_, v) = agent.get(&format!("/api/v1/actions/{late}")).await;
    let approved_at = v["action"]["updated_at"].as_str().expect("updated_at");
    let approved_at = jarvis_store::parse_time(approved_at).expect("a time");
    let lapses = std::time::SystemTime::from(approved_at) + Duration::from_secs(8);
    if let Ok(wait) = lapses.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait + Duration::from_millis(200)).await;
    }
    let (status, _, body) = alice
        .form(&format!("/actions/{late}/run"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("approval has lapsed"), "{body}");
    let gone = agent.wait_state(&late, "expired").await;
    assert!(gone["run"].is_null(), "{gone:#}");
    assert!(sandbox().guard_log_lines(&format!("{m}-late")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deciding_on_a_conversation_page_returns_to_it_and_nowhere_else() {
    let s = served("http-return-to", "");
    let alice = Person::sign_in(&s, "alice", &s.add_user("alice", "approver")).await;
    let bob = Person::sign_in(&s, "bob", &s.add_user("bob", "approver")).await;
    let agent = Agent::new(&s, s.add_token("planner", "propose"));

    // Bob asks in direct mode (no model): the command waits for a person,
    // inline on the conversation's page with the queue's forms.
    let m = marker("return-to");
    let csrf = bob.csrf("/chat").await;
    let (status, headers, body) = bob
        .form(
            "/chat",
            &[("csrf", &csrf), ("prompt", &pending_command(&m))],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let chat = headers[LOCATION].to_str().expect("location").to_owned();
    assert!(chat.starts_with("/chat/"), "{chat}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let (_, page) = alice.page(&chat).await;
        if page.contains("name=\"return_to\"") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no pending action shown:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let at = page.find("<article id=\"action-").expect("an action card") + 20;
    let id = page[at..at + 36].to_owned();
    assert!(
        page.contains(&format!(
            "<input type=\"hidden\" name=\"return_to\" value=\"{chat}\">"
        )),
        "{page}"
    );

    // Approving there comes back there, at the action's card.
    let csrf = csrf_of(&page);
    let (status, headers, _) = alice
        .form(
            &format!("/actions/{id}/approve"),
            &[("csrf", &csrf), ("return_to", &chat)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{chat}#action-{id}"));
    let (_, back) = alice.page(&chat).await;
    assert!(back.contains("Approved. It is running now"), "{back}");
    agent.wait_state(&id, "succeeded").await;

    // Anything but a conversation's path goes where the form would have
    // gone without it: the action's page after approving, the queue after
    // denying.
    for (decision, return_to) in [
        ("approve", "https://evil.example"),
        ("approve", "//evil.example"),
        ("approve", "/\\evil.example"),
        ("deny", "//evil.example/chat/x"),
        ("deny", "/actions"),
    ] {
        let other = agent.propose(&pending_command(&marker("return-to"))).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let (status, headers, body) = alice
            .form(
                &format!("/actions/{other}/{decision}"),
                &[("csrf", &csrf), ("return_to", return_to)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{return_to}: {body}");
        let want = match decision {
            "approve" => format!("/actions/{other}"),
            _ => "/".to_owned(),
        };
        assert_eq!(headers[LOCATION], want.as_str(), "{decision} {return_to}");
    }

    // Denying from the conversation comes back to it too.
    let other = agent.propose(&pending_command(&marker("return-to"))).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, headers, _) = alice
        .form(
            &format!("/actions/{other}/deny"),
            &[("csrf", &csrf), ("return_to", &chat)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("{chat}#action-{other}"));
}

/// The conversation page at `chat` once the conversation has finished.
async fn finished(person: &Person, chat: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = person.page(chat).await;
        if page.contains("data-state=\"finished\">finished</span>") {
            return page;
        }
        assert!(Instant::now() < deadline, "never finished:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_started_a_conversation_says_more_on_its_page_and_nobody_else_can() {
    let s = served("http-follow-up", "");
    let alice = Person::sign_in(&s, "alice", &s.add_user("alice", "approver")).await;
    let bob = Person::sign_in(&s, "bob", &s.add_user("bob", "approver")).await;
    let m = marker("follow-up");

    // Direct mode: a read-only command runs and the conversation ends.
    let csrf = alice.csrf("/chat").await;
    let (status, headers, body) = alice
        .form(
            "/chat",
            &[("csrf", &csrf), ("prompt", &format!("echo {m}-1"))],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let chat = headers[LOCATION].to_str().expect("location").to_owned();
    let page = finished(&alice, &chat).await;
    assert!(page.contains("id=\"reply-form\""), "{page}");
    // Bob sees it, with no way to speak through it.
    let (_, seen) = bob.page(&chat).await;
    assert!(!seen.contains("reply-form"), "{seen}");

    // Bob's post is refused and audited; nothing is added.
    let bobs = csrf_of(&seen);
    let (status, _, body) = bob
        .form(&chat, &[("csrf", &bobs), ("prompt", "rm -rf /srv")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("only they may continue it"), "{body}");
    let refused = refusals(&s, "not_starter");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["actor"], "user:bob");

    // Alice goes on: a second command in the same conversation.
    let csrf = csrf_of(&page);
    let (status, headers, body) = alice
        .form(
            &chat,
            &[("csrf", &csrf), ("prompt", &format!("echo {m}-2"))],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[LOCATION], format!("{chat}#conversation-end"));
    let page = finished(&alice, &chat).await;
    assert_eq!(page.matches("<article id=\"action-").count(), 2, "{page}");
    assert!(page.contains(&format!("echo {m}-2")), "{page}");
    assert!(!page.contains("rm -rf /srv"), "{page}");
    assert_eq!(s.audit("conversation.continued").len(), 1);

    // An empty message and a forged form change nothing.
    let (status, _, _) = alice
        .form(&chat, &[("csrf", &csrf), ("prompt", "   ")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = alice
        .form(&chat, &[("csrf", "forged"), ("prompt", "uptime")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(s.audit("conversation.continued").len(), 1);
}
