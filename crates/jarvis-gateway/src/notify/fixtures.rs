//! What the notifier's tests share: a local webhook receiver that records
//! what it is sent and answers as told, and quick retry settings.

use std::sync::Arc;
use std::time::Duration;

use jarvis_core::{ActionId, Risk};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxHeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use super::*;

#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) headers: AxHeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) at: Instant,
}

impl Recorded {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<&'static str>,
    pub(crate) delay: Duration,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    pub(crate) fn hang(delay: Duration) -> Reply {
        Reply {
            status: 200,
            retry_after: None,
            delay,
        }
    }
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    pub(crate) seen: Arc<Mutex<Vec<Recorded>>>,
    /// Replies in order; once empty, `fallback` (200 when `None`).
    pub(crate) script: Arc<Mutex<VecDeque<Reply>>>,
    pub(crate) fallback: Arc<Mutex<Option<Reply>>>,
}

impl Receiver {
    pub(crate) fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().expect("lock").clone()
    }
}

pub(crate) async fn record(
    State(rx): State<Receiver>,
    uri: axum::http::Uri,
    headers: AxHeaderMap,
    body: Bytes,
) -> Response {
    rx.seen.lock().expect("lock").push(Recorded {
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let reply = rx
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .or_else(|| rx.fallback.lock().expect("lock").clone())
        .unwrap_or_else(|| Reply::status(200));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = AxStatus::from_u16(reply.status).expect("status");
    match reply.retry_after {
        Some(after) => (status, [("retry-after", after)]).into_response(),
        None => status.into_response(),
    }
}

/// A real HTTP receiver on 127.0.0.1; returns its base URL.
pub(crate) async fn receiver(script: Vec<Reply>, fallback: Option<Reply>) -> (Receiver, String) {
    let rx = Receiver {
        script: Arc::new(Mutex::new(script.into())),
        fallback: Arc::new(Mutex::new(fallback)),
        ..Receiver::default()
    };
    let app = Router::new().fallback(record).with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (rx, format!("http://{addr}"))
}

pub(crate) fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        timeout: Duration::from_secs(2),
    }
}

pub(crate) fn hook(name: &str, format: Format, url: &str, events: Vec<NoticeKind>) -> Webhook {
    Webhook {
        name: name.to_owned(),
        format,
        url: url.to_owned(),
        events,
    }
}

pub(crate) fn risk(score: u32) -> Risk {
    Risk::new(score).expect("risk")
}

pub(crate) fn approval(id: ActionId) -> Notice {
    Notice {
        kind: NoticeKind::ApprovalNeeded,
        action_id: Some(id),
        host: Some("nas".to_owned()),
        command: Some("systemctl restart nginx".to_owned()),
        risk: Some(risk(72)),
        requester: Some("agent-7".to_owned()),
        summary: "Restart nginx on nas needs approval.".to_owned(),
    }
}

/// Waits until `done` holds, for at most `limit`.
pub(crate) async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

pub(crate) async fn settled(n: &Notifier, limit: Duration, want: impl Fn(&WebhookStats) -> bool) {
    let ok = wait_until(limit, || n.stats().iter().all(&want)).await;
    assert!(ok, "stats never settled: {:?}", n.stats());
}
