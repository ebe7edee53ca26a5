//! The notifier's side of the queue: one bounded queue and worker per
//! webhook, fed without waiting, a full queue dropping (and counting) the
//! notice for that webhook alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::deliver::Worker;
use super::{Format, Notice, NoticeKind, RetryPolicy, Webhook, WebhookStats};

/// How many notices wait for one webhook before new ones are dropped.
const QUEUE_CAPACITY: usize = 256;

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) delivered: AtomicU64,
    pub(super) failed: AtomicU64,
    dropped: AtomicU64,
    pub(super) retries: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A notice as queued: shared by every webhook that wants it.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) notice: Notice,
    pub(super) link: Option<String>,
    pub(super) at: OffsetDateTime,
}

#[derive(Debug)]
struct Target {
    pub(super) name: String,
    pub(super) format: Format,
    events: Vec<NoticeKind>,
    tx: mpsc::Sender<Arc<Job>>,
    pub(super) counters: Arc<Counters>,
}

#[derive(Debug)]
struct Shared {
    targets: Vec<Target>,
    public_url: Option<String>,
}

/// Sends notices to the configured webhooks without ever waiting for them.
/// Cloning is cheap and every clone feeds the same workers; the workers end
/// once every clone is dropped and their queues are drained.
#[derive(Clone, Debug)]
pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    /// Starts one worker task per webhook on the current tokio runtime.
    ///
    /// `public_url` is where people reach the web UI (a trailing slash is
    /// ignored); without it notices carry no link.
    ///
    /// # Panics
    /// When `webhooks` is not empty and this is called outside a tokio
    /// runtime.
    pub fn start(
        webhooks: Vec<Webhook>,
        public_url: Option<String>,
        retry: RetryPolicy,
    ) -> Notifier {
        Notifier::start_with_capacity(webhooks, public_url, retry, QUEUE_CAPACITY)
    }

    fn start_with_capacity(
        webhooks: Vec<Webhook>,
        public_url: Option<String>,
        retry: RetryPolicy,
        capacity: usize,
    ) -> Notifier {
        let public_url = public_url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        let client = if webhooks.is_empty() {
            None
        } else {
            let built = jarvis_http::client_builder()
                .map_err(|e| e.to_string())
                .and_then(|builder| {
                    builder
                        .timeout(retry.timeout)
                        .connect_timeout(retry.timeout)
                        .build()
                        .map_err(|e| e.without_url().to_string())
                });
            match built {
                Ok(client) => Some(client),
                Err(e) => {
                    // Without a client nothing can be sent: the queues stay
                    // closed, so every notice is counted as dropped.
                    tracing::error!(
                        error = %e,
                        "cannot build the HTTP client for webhooks; notices will be dropped"
                    );
                    None
                }
            }
        };
        let mut targets = Vec::with_capacity(webhooks.len());
        for hook in webhooks {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            let counters = Arc::new(Counters::default());
            if let Some(client) = &client {
                let worker = Worker {
                    name: hook.name.clone(),
                    format: hook.format,
                    url: hook.url,
                    client: client.clone(),
                    retry,
                    counters: counters.clone(),
                };
                tokio::spawn(worker.run(rx));
            }
            targets.push(Target {
                name: hook.name,
                format: hook.format,
                events: hook.events,
                tx,
                counters,
            });
        }
        Notifier {
            shared: Arc::new(Shared {
                targets,
                public_url,
            }),
        }
    }

    /// A notifier with no webhooks: every notice goes nowhere.
    pub fn disabled() -> Notifier {
        Notifier {
            shared: Arc::new(Shared {
                targets: Vec::new(),
                public_url: None,
            }),
        }
    }

    /// Whether any webhook is configured.
    pub fn is_enabled(&self) -> bool {
        !self.shared.targets.is_empty()
    }

    /// Whether a notice of `kind` reaches anyone: some webhook is
    /// configured and wants it. When nobody hears of a waiting action, the
    /// web UI says so to the people who decide.
    pub fn reaches(&self, kind: NoticeKind) -> bool {
        self.shared
            .targets
            .iter()
            .any(|t| t.events.is_empty() || t.events.contains(&kind))
    }

    /// Queues the notice for every webhook that wants its kind, and returns
    /// at once. Where a queue is full the notice is dropped for that webhook,
    /// counted and logged. Works outside a runtime too.
    pub fn notify(&self, notice: Notice) {
        let kind = notice.kind;
        let wanted = |t: &&Target| t.events.is_empty() || t.events.contains(&kind);
        if !self.shared.targets.iter().any(|t| wanted(&t)) {
            return;
        }
        let link = self.shared.public_url.as_deref().and_then(|base| {
            match (notice.kind, notice.action_id) {
                (NoticeKind::AuditBroken, _) => Some(format!("{base}/audit")),
                (
                    NoticeKind::ApprovalNeeded
                    | NoticeKind::ActionFailed
                    | NoticeKind::ActionTimedOut,
                    Some(id),
                ) => Some(format!("{base}/actions/{id}")),
                (
                    NoticeKind::ApprovalNeeded
                    | NoticeKind::ActionFailed
                    | NoticeKind::ActionTimedOut,
                    None,
                ) => None,
            }
        });
        let job = Arc::new(Job {
            notice,
            link,
            at: OffsetDateTime::now_utc(),
        });
        for target in self.shared.targets.iter().filter(wanted) {
            match target.tx.try_send(job.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    bump(&target.counters.dropped);
                    tracing::warn!(
                        webhook = %target.name,
                        event = %kind,
                        "webhook queue is full; notice dropped for this webhook"
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    bump(&target.counters.dropped);
                    tracing::warn!(
                        webhook = %target.name,
                        event = %kind,
                        "webhook worker is not running; notice dropped for this webhook"
                    );
                }
            }
        }
    }

    /// The counters of every webhook, in configuration order.
    pub fn stats(&self) -> Vec<WebhookStats> {
        self.shared
            .targets
            .iter()
            .map(|t| WebhookStats {
                name: t.name.clone(),
                format: t.format,
                delivered: t.counters.delivered.load(Ordering::Relaxed),
                failed: t.counters.failed.load(Ordering::Relaxed),
                dropped: t.counters.dropped.load(Ordering::Relaxed),
                retries: t.counters.retries.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::fixtures::*;
    use crate::notify::*;

    use jarvis_core::ActionId;
    use std::time::Duration;

    use std::time::Instant;

    #[tokio::test]
    async fn event_filter_sends_only_wanted_kinds() {
        let (rx, base) = receiver(vec![], None).await;
        let n = Notifier::start(
            vec![
                hook(
                    "audit-only",
                    Format::Json,
                    &format!("{base}/audit"),
                    vec![NoticeKind::AuditBroken],
                ),
                hook("all", Format::Json, &format!("{base}/all"), vec![]),
            ],
            None,
            fast(),
        );
        n.notify(approval(ActionId::new()));
        n.notify(Notice::new(NoticeKind::AuditBroken, "broken"));
        let ok = wait_until(Duration::from_secs(5), || {
            let s = n.stats();
            s[0].delivered == 1 && s[1].delivered == 2
        })
        .await;
        assert!(ok, "{:?}", n.stats());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let seen = rx.seen();
        let audit: Vec<_> = seen.iter().filter(|r| r.path == "/audit").collect();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].json()["event"], "audit_broken");
        assert_eq!(seen.iter().filter(|r| r.path == "/all").count(), 2);
    }

    #[tokio::test]
    async fn notify_never_waits_and_a_slow_webhook_delays_only_itself() {
        let (slow_rx, slow) = receiver(vec![], Some(Reply::hang(Duration::from_secs(5)))).await;
        let (fast_rx, quick) = receiver(vec![], None).await;
        let n = Notifier::start(
            vec![
                hook("slow", Format::Json, &slow, vec![]),
                hook("fast", Format::Ntfy, &quick, vec![]),
            ],
            None,
            RetryPolicy {
                timeout: Duration::from_secs(10),
                ..fast()
            },
        );
        let started = Instant::now();
        for _ in 0..5 {
            n.notify(approval(ActionId::new()));
        }
        let took = started.elapsed();
        assert!(took < Duration::from_millis(50), "notify took {took:?}");

        let ok = wait_until(Duration::from_secs(3), || n.stats()[1].delivered == 5).await;
        assert!(ok, "{:?}", n.stats());
        assert_eq!(fast_rx.seen().len(), 5);
        // The slow webhook is still on its first request.
        assert_eq!(slow_rx.seen().len(), 1);
        assert_eq!(n.stats()[0].delivered, 0);

        // Still immediate while the slow worker hangs.
        let started = Instant::now();
        n.notify(approval(ActionId::new()));
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn full_queue_drops_and_counts() {
        let (_rx, base) = receiver(vec![], Some(Reply::hang(Duration::from_secs(5)))).await;
        let n = Notifier::start_with_capacity(
            vec![hook("stuck", Format::Json, &base, vec![])],
            None,
            fast(),
            2,
        );
        // On the test's single-threaded runtime the worker cannot take a
        // notice before this loop yields: two fit in the queue.
        for _ in 0..10 {
            n.notify(approval(ActionId::new()));
        }
        let s = &n.stats()[0];
        assert_eq!(s.dropped, 8);
        assert_eq!((s.delivered, s.failed), (0, 0));
    }

    #[tokio::test]
    async fn disabled_notifier_does_nothing() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        n.notify(approval(ActionId::new()));
        assert!(n.stats().is_empty());
        assert!(!n.reaches(NoticeKind::ApprovalNeeded));
    }

    #[tokio::test]
    async fn a_waiting_action_reaches_only_a_webhook_that_wants_it() {
        let url = "http://127.0.0.1:9/never";
        let failures = Notifier::start(
            vec![hook(
                "ops",
                Format::Json,
                url,
                vec![NoticeKind::ActionFailed],
            )],
            None,
            fast(),
        );
        assert!(failures.is_enabled());
        assert!(!failures.reaches(NoticeKind::ApprovalNeeded));
        assert!(failures.reaches(NoticeKind::ActionFailed));
        let everything =
            Notifier::start(vec![hook("phone", Format::Ntfy, url, vec![])], None, fast());
        assert!(NoticeKind::ALL.iter().all(|k| everything.reaches(*k)));
    }
}
