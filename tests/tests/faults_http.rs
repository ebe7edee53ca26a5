//! Connection hygiene of a real `jarvis serve` (issue 17, item 6): idle and
//! slowloris connections are closed on time while everyone else is
//! served; beyond the connection cap a client gets a 503 that says why and
//! health checks still answer; live streams are not timed out but are
//! bounded in number; a body over the limit gets 413 saying the limit.
//! Small timeouts and caps in each server's config keep every test short.

use std::time::{Duration, Instant};

use jarvis_tests::server::{Agent, Person, Served, client};
use jarvis_tests::{Env, marker};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn served(tag: &str, server: &str) -> Served {
    Served::start(Env::new(tag, "", ""), &format!("[server]\n{server}\n"), &[])
}

fn addr(s: &Served) -> String {
    s.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (end of stream or a
/// reset), or `limit` passes; returns when it closed and what it sent.
async fn closed_within(mut stream: TcpStream, limit: Duration) -> (Option<Duration>, Vec<u8>) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (None, got),
            Ok(Ok(0) | Err(_)) => return (Some(started.elapsed()), got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// One request on a raw connection, reading one whole answer (with a
/// `content-length`); the connection stays open for more.
async fn request(stream: &mut TcpStream, head: &str) -> String {
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .expect("a content-length");
            if got.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_and_slowloris_connections_are_closed_on_time_while_others_are_served() {
    // Header read 2 s, idle 4 s; the cap is well above the attack, so what
    // closes them is the timeouts.
    let s = served(
        "faults-http-slow",
        "header_read_timeout_secs = 2\nidle_timeout_secs = 4\nrequest_timeout_secs = 10\nmax_connections = 400",
    );
    let agent = Agent::new(&s, s.add_token("conn-reader", "read"));
    let at = addr(&s);
    let header_read = Duration::from_secs(2);
    let idle = Duration::from_secs(4);
    // Generous: the server is one of several processes on a small machine.
    let margin = Duration::from_secs(3);

    // 200 connections that never send a byte.
    let mut silent = Vec::new();
    for _ in 0..200 {
        let stream = TcpStream::connect(&at).await.expect("connect");
        silent.push(tokio::spawn(closed_within(stream, Duration::from_secs(20))));
    }
    // 50 slowloris connections: a request's headers one byte a second,
    // never finished.
    let mut slow = Vec::new();
    for i in 0..50 {
        let stream = TcpStream::connect(&at).await.expect("connect");
        slow.push(tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let started = Instant::now();
            let dribble = tokio::spawn(async move {
                let head = format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow-{i}: ");
                for b in head.bytes().chain(std::iter::repeat(b'a')) {
                    if write.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
            let mut buf = [0u8; 256];
            let closed = tokio::time::timeout(Duration::from_secs(20), read.read(&mut buf)).await;
            dribble.abort();
            match closed {
                Ok(Ok(0) | Err(_)) => (Some(started.elapsed()), Vec::new()),
                Ok(Ok(n)) => (Some(started.elapsed()), buf[..n].to_vec()),
                Err(_) => (None, Vec::new()),
            }
        }));
    }
    // 20 connections that make one request, kept alive, then fall silent:
    // the idle timeout, not the header-read one, ends them.
    let mut kept = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&at).await.expect("connect");
        let answer = request(&mut stream, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        kept.push(tokio::spawn(closed_within(stream, Duration::from_secs(20))));
    }

    // Meanwhile everyone else is served, the health check and the API.
    let during = Instant::now();
    let r = client()
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("GET /healthz during the attack");
    assert_eq!(r.status(), StatusCode::OK);
    let (status, actions) = agent.get("/api/v1/actions").await;
    assert_eq!(status, StatusCode::OK, "{actions}");
    assert!(actions.is_array() || actions.is_object(), "{actions}");
    eprintln!(
        "health and an API read answered in {:?} with 270 attack connections open",
        during.elapsed()
    );

    let mut worst = Duration::ZERO;
    for task in silent {
        let (closed, got) = task.await.expect("silent connection");
        let closed = closed.expect("a silent connection is closed");
        assert!(got.is_empty(), "a silent connection gets no answer");
        assert!(
            closed >= header_read - Duration::from_millis(500) && closed <= header_read + margin,
            "a silent connection closed after {closed:?}, the header-read timeout is {header_read:?}"
        );
        worst = worst.max(closed);
    }
    eprintln!("200 silent connections closed, the last after {worst:?}");
    let mut worst = Duration::ZERO;
    for task in slow {
        let (closed, got) = task.await.expect("slowloris connection");
        let closed = closed.expect("a slowloris connection is closed");
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        // Its headers are timed from when the connection opened, however
        // steadily it sends.
        assert!(
            closed <= header_read + margin,
            "a slowloris connection closed after {closed:?}"
        );
        worst = worst.max(closed);
    }
    eprintln!("50 slowloris connections closed, the last after {worst:?}");
    let mut worst = Duration::ZERO;
    for task in kept {
        let (closed, got) = task.await.expect("kept-alive connection");
        let closed = closed.expect("an idle kept-alive connection is closed");
        assert!(got.is_empty());
        assert!(
            closed >= idle - Duration::from_millis(500) && closed <= idle + margin,
            "an idle kept-alive connection closed after {closed:?}, the idle timeout is {idle:?}"
        );
        worst = worst.max(closed);
    }
    eprintln!("20 idle kept-alive connections closed, the last after {worst:?}");

    // And the server is as good as new. (A new client: the agent's own
    // connection has been idle as long as the kept-alive ones, so the
    // server is closing it just now.)
    let (status, _) = Agent::new(&s, agent.token.clone())
        .get("/api/v1/actions")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_clients_get_503_and_health_checks_still_answer() {
    let s = served(
        "faults-http-cap",
        "header_read_timeout_secs = 20\nidle_timeout_secs = 30\nmax_connections = 8\nreserve_connections = 2\nmax_streams = 2",
    );
    let agent = Agent::new(&s, s.add_token("conn-cap", "read"));
    let at = addr(&s);
    // Eight connections that made a request and are kept alive: the cap
    // is reached, and they are certainly accepted and counted.
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(&at).await.expect("connect");
        let answer = request(&mut stream, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }

    // A ninth client is told why it is not served, and when to come back.
    let r = client()
        .get(format!("{}/api/v1/actions", s.url))
        .bearer_auth(&agent.token)
        .send()
        .await
        .expect("GET beyond the cap");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_connections")),
        "{body}"
    );
    // A page is refused in words too.
    let r = client()
        .get(format!("{}/login", s.url))
        .send()
        .await
        .expect("GET a page beyond the cap");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("as many connections")
    );

    // Health checks still answer, each on a connection of its own.
    let r = client()
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("GET /healthz beyond the cap");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("body"), "ok\n");
    let r = client()
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .expect("GET /readyz beyond the cap");
    let ready: Value = r.json().await.expect("readiness JSON");
    assert!(ready.get("ready").is_some(), "{ready}");

    // With the reserve taken as well (two connections that send nothing),
    // a connection gets the 503 at once and is closed. The health checks'
    // connections above were in the reserve too, and the server may not
    // have let them go yet: a connection turned away meanwhile is answered
    // at once, so one that stays silent holds a place of the reserve.
    let mut reserve = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reserve.len() < 2 {
        let mut held = TcpStream::connect(&at).await.expect("connect");
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(1), held.read(&mut byte)).await {
            Err(_) => reserve.push(held),
            Ok(_) => {
                assert!(Instant::now() < deadline, "the reserve never came free");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let mut beyond = TcpStream::connect(&at).await.expect("connect");
    beyond
        .write_all(b"GET /api/v1/actions HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let (closed, got) = closed_within(beyond, Duration::from_secs(5)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(closed.is_some(), "closed after its answer");
    assert!(
        got.starts_with("HTTP/1.1 503") && got.contains("retry-after: 5"),
        "{got}"
    );
    assert!(got.contains("max_connections = 8"), "{got}");

    // When a connection closes, its place is free for the next client.
    drop(held.pop());
    drop(reserve);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Until the server has seen the closes, a new connection may still
        // get its 503 at once, before the request is written; the client
        // then reports the early answer as an error, not as a status.
        let r = client()
            .get(format!("{}/api/v1/actions", s.url))
            .bearer_auth(&agent.token)
            .send()
            .await;
        if r.as_ref().is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused: {:?}",
            r.map(|r| r.status())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens a live stream with a token; its status and the open response.
async fn stream(s: &Served, token: &str) -> reqwest::Response {
    client()
        .get(format!("{}/api/v1/events", s.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /api/v1/events")
}

/// Waits for `needle` in a live stream, up to 10 s.
async fn heard(r: &mut reqwest::Response, needle: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = String::new();
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), r.chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(&String::from_utf8_lossy(&c)),
            Ok(_) => return false,
            Err(_) => {}
        }
        if got.contains(needle) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_outlive_the_timeouts_and_are_capped() {
    let s = served(
        "faults-http-sse",
        "header_read_timeout_secs = 1\nidle_timeout_secs = 1\nrequest_timeout_secs = 1\nmax_streams = 2",
    );
    let reader = s.add_token("conn-sse-read", "read");
    let proposer = Agent::new(&s, s.add_token("conn-sse-propose", "propose"));
    let mut first = stream(&s, &reader).await;
    let mut second = stream(&s, &reader).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);

    // A third is refused, in words, with when to try again.
    let third = stream(&s, &reader).await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()["retry-after"], "5");
    let body: Value = third.json().await.expect("JSON");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_streams")),
        "{body}"
    );

    // Past every timeout (1 s each), both streams still carry what happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Waits for approval: nothing runs on the host.
    let action = proposer
        .propose(&format!("touch /tmp/{}", marker("conn-sse")))
        .await;
    let id = action["id"].as_str().expect("id").to_owned();
    assert!(heard(&mut first, &id).await, "the first stream heard {id}");
    assert!(
        heard(&mut second, &id).await,
        "the second stream heard {id}"
    );

    // A stream that ends gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // What the server writes next tells it the stream is gone.
        proposer
            .propose(&format!("touch /tmp/{}", marker("conn-sse")))
            .await;
        let again = stream(&s, &reader).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_and_slow_uploads_time_out() {
    let s = served(
        "faults-http-body",
        "max_body_kib = 16\nrequest_timeout_secs = 2",
    );
    let proposer = Agent::new(&s, s.add_token("conn-body", "propose"));
    let password = s.add_user("conn-body-alice", "approver");
    let alice = Person::sign_in(&s, "conn-body-alice", &password).await;

    // A JSON body under the limit is read as always.
    let (status, body) = proposer
        .post(
            "/api/v1/policy/check",
            json!({ "command": format!("echo {}", "a".repeat(8 * 1024)) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Over it, the API answers 413 in JSON, naming the limit.
    let (status, body) = proposer
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox", "command": "uptime", "reason": "a".repeat(20 * 1024) }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("16 KiB")),
        "{body}"
    );

    // So does a form, as a page.
    let csrf = alice.csrf("/chat").await;
    let prompt = "b".repeat(20 * 1024);
    let (status, _, page) = alice
        .form(
            "/chat",
            &[("csrf", csrf.as_str()), ("prompt", prompt.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains("16 KiB"), "{page}");

    // And a body with no length given, sent in chunks, once it grows past
    // the limit.
    let mut raw = TcpStream::connect(addr(&s)).await.expect("connect");
    let chunk = "c".repeat(4096);
    let mut sent = format!(
        "POST /api/v1/policy/check HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        proposer.token
    );
    for _ in 0..6 {
        sent.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    sent.push_str("0\r\n\r\n");
    raw.write_all(sent.as_bytes()).await.expect("write");
    let (_, got) = closed_within(raw, Duration::from_secs(10)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(got.contains("16 KiB"), "{got}");

    // A body that stops coming is cut off at the request timeout, with
    // a 503 that says so.
    let mut raw = TcpStream::connect(addr(&s)).await.expect("connect");
    let started = Instant::now();
    raw.write_all(
        format!(
            "POST /api/v1/policy/check HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"command\":",
            proposer.token
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let (_, got) = closed_within(raw, Duration::from_secs(10)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.contains("request_timeout_secs"), "{got}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took <= Duration::from_secs(6),
        "the slow upload was answered after {took:?}; the request timeout is 2 s"
    );
}
