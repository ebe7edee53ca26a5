//! Delivering one webhook's notices in order: each attempt's answer
//! classified, retried with backoff (honouring `Retry-After`) or given up,
//! and errors told without the webhook's URL.

use std::sync::Arc;
use std::time::Duration;

use jarvis_http::reqwest;
use jarvis_http::retry_after;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::sync::mpsc;

use super::queue::{Counters, Job, bump};
use super::render::{Rendered, clean_line, render};
use super::{Format, RetryPolicy};

pub(super) struct Worker {
    pub(super) name: String,
    pub(super) format: Format,
    /// Secret: never logged.
    pub(super) url: String,
    pub(super) client: reqwest::Client,
    pub(super) retry: RetryPolicy,
    pub(super) counters: Arc<Counters>,
}

/// What one request came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Attempt {
    Delivered,
    /// Worth another try, after `after` when the server said so.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// Will not get better by retrying.
    GiveUp(String),
}

impl Worker {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Arc<Job>>) {
        while let Some(job) = rx.recv().await {
            self.deliver(&job).await;
        }
    }

    pub(super) async fn deliver(&self, job: &Job) {
        let request = render(self.format, job);
        let attempts = self.retry.attempts.max(1);
        let event = job.notice.kind;
        for attempt in 1..=attempts {
            match self.send(&request).await {
                Attempt::Delivered => {
                    bump(&self.counters.delivered);
                    tracing::debug!(webhook = %self.name, %event, attempt, "notice delivered");
                    return;
                }
                Attempt::GiveUp(why) => {
                    bump(&self.counters.failed);
                    tracing::warn!(
                        webhook = %self.name, %event, attempt,
                        "webhook refused the notice, giving up: {why}"
                    );
                    return;
                }
                Attempt::Retry { after, why } => {
                    if attempt == attempts {
                        bump(&self.counters.failed);
                        tracing::warn!(
                            webhook = %self.name, %event,
                            "notice not delivered after {attempts} attempts, giving up: {why}"
                        );
                        return;
                    }
                    let wait = self.retry.rule().wait(attempt, after);
                    bump(&self.counters.retries);
                    tracing::info!(
                        webhook = %self.name, %event, attempt,
                        "notice not delivered ({why}); retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    pub(super) async fn send(&self, request: &Rendered) -> Attempt {
        let result = self
            .client
            .post(&self.url)
            .headers(request.headers.clone())
            .body(request.body.clone())
            .send()
            .await;
        match result {
            Ok(response) => classify(response.status(), response.headers()),
            Err(e) => Attempt::Retry {
                after: None,
                why: describe_error(e, &self.url, self.retry.timeout),
            },
        }
    }
}

/// Sorts an HTTP answer into delivered, retry or give up.
fn classify(status: StatusCode, headers: &HeaderMap) -> Attempt {
    if status.is_success() {
        Attempt::Delivered
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Attempt::Retry {
            after: retry_after(headers),
            why: format!("HTTP {status}"),
        }
    } else if status.is_server_error() {
        Attempt::Retry {
            after: None,
            why: format!("HTTP {status}"),
        }
    } else if status.is_redirection() {
        Attempt::GiveUp(format!("HTTP {status} (redirects are not followed)"))
    } else {
        Attempt::GiveUp(format!("HTTP {status}"))
    }
}

/// Why a request failed, without the URL: reqwest puts it in its errors, and
/// the URL is a secret.
fn describe_error(e: reqwest::Error, url: &str, timeout: Duration) -> String {
    let what = if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let e = e.without_url();
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let text = if detail.is_empty() {
        what
    } else {
        format!("{what}: {detail}")
    };
    // Belt and braces: no layer below should quote the URL, but if one does
    // it must not reach the log.
    let text = if url.is_empty() {
        text
    } else {
        text.replace(url, "<webhook url>")
    };
    clean_line(&text, 300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::*;
    use crate::notify::*;

    use jarvis_core::ActionId;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
    use std::time::Duration;

    #[tokio::test]
    async fn server_errors_are_retried_until_delivered() {
        let (rx, base) = receiver(vec![Reply::status(500), Reply::status(503)], None).await;
        let n = Notifier::start(
            vec![hook("flaky", Format::Json, &base, vec![])],
            None,
            fast(),
        );
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.delivered == 1).await;
        assert_eq!(rx.seen().len(), 3);
        let s = &n.stats()[0];
        assert_eq!((s.delivered, s.failed, s.retries), (1, 0, 2));
    }

    #[tokio::test]
    async fn client_error_gives_up_at_once() {
        let (rx, base) = receiver(vec![], Some(Reply::status(404))).await;
        let n = Notifier::start(
            vec![hook("wrong", Format::Discord, &base, vec![])],
            None,
            fast(),
        );
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.failed == 1).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(rx.seen().len(), 1);
        let s = &n.stats()[0];
        assert_eq!((s.delivered, s.failed, s.retries), (0, 1, 0));
    }

    #[tokio::test]
    async fn persistent_server_errors_give_up_after_all_attempts() {
        let (rx, base) = receiver(vec![], Some(Reply::status(502))).await;
        let n = Notifier::start(
            vec![hook("down", Format::Ntfy, &base, vec![])],
            None,
            fast(),
        );
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.failed == 1).await;
        assert_eq!(rx.seen().len(), 4);
        assert_eq!(n.stats()[0].retries, 3);
    }

    #[tokio::test]
    async fn too_many_requests_honours_retry_after() {
        let (rx, base) = receiver(
            vec![Reply {
                status: 429,
                retry_after: Some("1"),
                delay: Duration::ZERO,
            }],
            None,
        )
        .await;
        let retry = RetryPolicy {
            max_delay: Duration::from_secs(3),
            ..fast()
        };
        let n = Notifier::start(
            vec![hook("limited", Format::Discord, &base, vec![])],
            None,
            retry,
        );
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.delivered == 1).await;
        let seen = rx.seen();
        assert_eq!(seen.len(), 2);
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_millis(900), "waited {waited:?}");
        assert_eq!(n.stats()[0].retries, 1);
    }

    #[tokio::test]
    async fn timeouts_are_retried_then_given_up() {
        let (rx, base) = receiver(vec![], Some(Reply::hang(Duration::from_secs(5)))).await;
        let retry = RetryPolicy {
            attempts: 2,
            timeout: Duration::from_millis(200),
            ..fast()
        };
        let n = Notifier::start(vec![hook("slow", Format::Json, &base, vec![])], None, retry);
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.failed == 1).await;
        assert_eq!(rx.seen().len(), 2);
        assert_eq!(n.stats()[0].retries, 1);
    }

    #[tokio::test]
    async fn connection_errors_never_show_the_url() {
        // Bind then drop a listener so the port refuses connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let url = format!("http://{addr}/s3cr3t-topic-token");
        let client = jarvis_http::client_builder()
            .expect("TLS configuration")
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let err = client.post(&url).send().await.expect_err("refused");
        assert!(
            err.to_string().contains("s3cr3t"),
            "reqwest quotes the URL: {err}"
        );
        let text = describe_error(err, &url, Duration::from_secs(2));
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.starts_with("cannot connect"), "{text}");

        let n = Notifier::start(
            vec![hook("gone", Format::Json, &url, vec![])],
            None,
            RetryPolicy {
                attempts: 2,
                ..fast()
            },
        );
        n.notify(approval(ActionId::new()));
        settled(&n, Duration::from_secs(5), |s| s.failed == 1).await;
        assert_eq!(n.stats()[0].retries, 1);
        assert!(!format!("{:?}", hook("x", Format::Ntfy, &url, vec![])).contains("s3cr3t"));
    }

    #[test]
    fn answers_are_classified() {
        let none = HeaderMap::new();
        assert_eq!(classify(StatusCode::NO_CONTENT, &none), Attempt::Delivered);
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &none),
            Attempt::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &none),
            Attempt::GiveUp(_)
        ));
        assert!(matches!(
            classify(StatusCode::FOUND, &none),
            Attempt::GiveUp(_)
        ));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2.5"));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h),
            Attempt::Retry {
                after: Some(Duration::from_millis(2500)),
                why: "HTTP 429 Too Many Requests".to_owned()
            }
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h),
            Attempt::Retry { after: None, .. }
        ));
    }
}
