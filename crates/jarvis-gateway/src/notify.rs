//! Webhook notifications: generic JSON, ntfy and Discord.
//!
//! This module owns telling people that something needs them: an action
//! waits for approval, an action failed or timed out, the audit chain failed
//! verification. Each notice carries a link to the action (or to the audit
//! page) when the gateway knows its public URL.
//!
//! [`Notifier::notify`] is synchronous and never waits: every webhook has its
//! own worker task fed by a bounded queue, and a full queue drops the notice
//! for that webhook (counted and logged) rather than hold up the pipeline.
//! Workers deliver in order and retry with exponential backoff: 5xx answers,
//! timeouts and connection errors are retried, 429 honours `Retry-After`, any
//! other 4xx gives up at once. Redirects are never followed.
//!
//! It must never:
//! - block or slow the pipeline: a slow or dead webhook delays only itself;
//! - leak a webhook URL: ntfy topics and Discord webhook URLs are
//!   credentials, so logs and errors name a webhook by its `name` only, and
//!   [`Webhook`]'s `Debug` hides the URL;
//! - let untrusted text (commands are written by an AI agent) ping anyone or
//!   inject anything: Discord payloads set `allowed_mentions: {"parse": []}`,
//!   commands sit in a code block with backticks neutralised, other text has
//!   its Markdown escaped; everywhere control characters (ANSI escapes,
//!   carriage returns) and invisible formatting characters (bidi overrides,
//!   zero-width spaces) are replaced by visible placeholders, long text is
//!   cut with an ellipsis, and HTTP header values are reduced to printable
//!   ASCII.
//!
//! # Payloads
//!
//! - `json`: `POST`, `Content-Type: application/json`, body
//!   `{"event", "action_id", "host", "command", "risk": {"score", "level"},
//!   "requester", "summary", "link", "at"}`. Every key is always present;
//!   what is unknown is `null` (`link` is `null` without a public URL). `at`
//!   is RFC 3339 UTC, the moment [`Notifier::notify`] was called.
//! - `ntfy`: `POST` to the topic URL, `Content-Type: text/plain`, body = the
//!   summary then `Host:`, `Command:`, `Risk:`, `Requested by:`, `Action:`,
//!   `Link:` lines (only those known); headers `Title`, `Priority` (`high`
//!   for `approval_needed` and `audit_broken`, `default` otherwise), `Tags`
//!   and `Click` (the link, when there is one).
//! - `discord`: `POST`, JSON `{"content", "embeds": [{"title",
//!   "description", "url", "color"}], "allowed_mentions": {"parse": []}}`
//!   within Discord's limits (content 2000, title 256, description 4096
//!   characters); `url` only when there is a link.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jarvis_core::{ActionId, Risk};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};
use tokio::sync::mpsc;

/// How many notices wait for one webhook before new ones are dropped.
const QUEUE_CAPACITY: usize = 256;
/// Longest command shown, in characters, before the ellipsis.
const MAX_COMMAND: usize = 500;
/// Longest summary shown, in characters.
const MAX_SUMMARY: usize = 1000;
/// Longest host or requester shown, in characters.
const MAX_NAME: usize = 100;
/// Longest HTTP header value sent, in bytes (ASCII only).
const MAX_HEADER: usize = 250;
/// Longest ntfy body, in bytes (ntfy turns longer messages into attachments).
const MAX_NTFY_BODY: usize = 4000;
/// Discord's limits, in characters.
const DISCORD_CONTENT: usize = 2000;
const DISCORD_TITLE: usize = 256;
const DISCORD_DESCRIPTION: usize = 4096;

/// The shape of a webhook's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A generic JSON document (see the module documentation).
    Json,
    /// A plain-text message to an ntfy topic, with ntfy's headers.
    Ntfy,
    /// A Discord webhook message with one embed.
    Discord,
}

impl Format {
    /// The word used in configuration and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ntfy => "ntfy",
            Format::Discord => "discord",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a notice is about. The snake_case names are stable: configuration
/// filters and payloads use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// An action waits for a human decision (`approval_needed`).
    ApprovalNeeded,
    /// An action ran and failed, or could not be run (`action_failed`).
    ActionFailed,
    /// An action ran past its time limit (`action_timed_out`).
    ActionTimedOut,
    /// The audit chain failed verification (`audit_broken`).
    AuditBroken,
}

impl NoticeKind {
    /// Every kind, in a stable order.
    pub const ALL: [NoticeKind; 4] = [
        NoticeKind::ApprovalNeeded,
        NoticeKind::ActionFailed,
        NoticeKind::ActionTimedOut,
        NoticeKind::AuditBroken,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::ApprovalNeeded => "approval_needed",
            NoticeKind::ActionFailed => "action_failed",
            NoticeKind::ActionTimedOut => "action_timed_out",
            NoticeKind::AuditBroken => "audit_broken",
        }
    }

    /// Words for people: "approval needed", "audit chain broken".
    pub fn label(self) -> &'static str {
        match self {
            NoticeKind::ApprovalNeeded => "approval needed",
            NoticeKind::ActionFailed => "action failed",
            NoticeKind::ActionTimedOut => "action timed out",
            NoticeKind::AuditBroken => "audit chain broken",
        }
    }

    fn urgent(self) -> bool {
        matches!(self, NoticeKind::ApprovalNeeded | NoticeKind::AuditBroken)
    }

    fn ntfy_tag(self) -> &'static str {
        match self {
            NoticeKind::ApprovalNeeded => "warning",
            NoticeKind::ActionFailed => "x",
            NoticeKind::ActionTimedOut => "hourglass",
            NoticeKind::AuditBroken => "rotating_light",
        }
    }

    fn discord_color(self) -> u32 {
        match self {
            NoticeKind::ApprovalNeeded => 0xF0_B4_29,
            NoticeKind::ActionFailed => 0xE0_3E_3E,
            NoticeKind::ActionTimedOut => 0xF0_8C_28,
            NoticeKind::AuditBroken => 0x8B_00_00,
        }
    }
}

impl fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured webhook. The URL is a secret (it carries ntfy topics and
/// Discord tokens): it is never logged, and `Debug` hides it.
#[derive(Clone)]
pub struct Webhook {
    /// The name used in logs, errors and metrics.
    pub name: String,
    /// The shape of the requests.
    pub format: Format,
    /// Where to POST, already resolved from its secret reference.
    pub url: String,
    /// Which notices to send; empty means all.
    pub events: Vec<NoticeKind>,
}

impl Webhook {
    /// Whether this webhook wants notices of this kind.
    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &"<redacted>")
            .field("events", &self.events)
            .finish()
    }
}

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per notice at most, the first included (0 counts as 1).
    pub attempts: u32,
    /// The wait before the first retry; it doubles after each retry.
    pub first_delay: Duration,
    /// The longest wait between two requests, `Retry-After` included.
    pub max_delay: Duration,
    /// The limit on one request, from connecting to the end of the answer.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, waits of 2 s doubling up to 5 min, 10 s per request.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry), without
    /// jitter: `first_delay * 2^(retry-1)`, at most `max_delay`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Something to tell the approvers. Text fields may come from an agent and
/// are treated as untrusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// The action concerned, if any (it makes the link).
    pub action_id: Option<ActionId>,
    /// The host the action is for.
    pub host: Option<String>,
    /// The command line, as the agent wrote it.
    pub command: Option<String>,
    /// The action's risk.
    pub risk: Option<Risk>,
    /// Who proposed the action.
    pub requester: Option<String>,
    /// One or two sentences for people.
    pub summary: String,
}

impl Notice {
    /// A notice with only a kind and a summary; fill in the rest as known.
    pub fn new(kind: NoticeKind, summary: impl Into<String>) -> Notice {
        Notice {
            kind,
            action_id: None,
            host: None,
            command: None,
            risk: None,
            requester: None,
            summary: summary.into(),
        }
    }
}

/// Delivery counters of one webhook, since the gateway started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookStats {
    /// The webhook's name.
    pub name: String,
    /// The webhook's format.
    pub format: Format,
    /// Notices delivered (a 2xx answer).
    pub delivered: u64,
    /// Notices given up: a 4xx other than 429, or every attempt failed.
    pub failed: u64,
    /// Notices dropped because the webhook's queue was full.
    pub dropped: u64,
    /// Requests repeated after a failed attempt.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A notice as queued: shared by every webhook that wants it.
#[derive(Debug)]
struct Job {
    notice: Notice,
    link: Option<String>,
    at: OffsetDateTime,
}

#[derive(Debug)]
struct Target {
    name: String,
    format: Format,
    events: Vec<NoticeKind>,
    tx: mpsc::Sender<Arc<Job>>,
    counters: Arc<Counters>,
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
            match reqwest::Client::builder()
                .timeout(retry.timeout)
                .connect_timeout(retry.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("jarvis/", env!("CARGO_PKG_VERSION")))
                .build()
            {
                Ok(client) => Some(client),
                Err(e) => {
                    // Without a client nothing can be sent: the queues stay
                    // closed, so every notice is counted as dropped.
                    tracing::error!(
                        error = %e.without_url(),
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
                (_, Some(id)) => Some(format!("{base}/actions/{id}")),
                (_, None) => None,
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

// ---------------------------------------------------------------------------
// Delivery

struct Worker {
    name: String,
    format: Format,
    /// Secret: never logged.
    url: String,
    client: reqwest::Client,
    retry: RetryPolicy,
    counters: Arc<Counters>,
}

/// What one request came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
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
    async fn run(self, mut rx: mpsc::Receiver<Arc<Job>>) {
        while let Some(job) = rx.recv().await {
            self.deliver(&job).await;
        }
    }

    async fn deliver(&self, job: &Job) {
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
                    let wait = match after {
                        Some(after) => after.min(self.retry.max_delay),
                        None => jitter(self.retry.backoff(attempt), self.retry.max_delay),
                    };
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

    async fn send(&self, request: &Rendered) -> Attempt {
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

/// `Retry-After` as seconds (fractions allowed) or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let secs = (when - OffsetDateTime::now_utc()).as_seconds_f64();
    Some(Duration::from_secs_f64(secs.clamp(0.0, 86_400.0)))
}

/// A little random extra (up to 10 %) so retries of many gateways spread out.
fn jitter(wait: Duration, max: Duration) -> Duration {
    use rand_core::RngCore;
    let fraction = f64::from(rand_core::OsRng.next_u32() % 1000) / 10_000.0;
    wait.mul_f64(1.0 + fraction).min(max.max(wait))
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

// ---------------------------------------------------------------------------
// Rendering

/// A request body with its headers, ready to send (and to resend).
#[derive(Debug, Clone)]
struct Rendered {
    headers: HeaderMap,
    body: Vec<u8>,
}

fn render(format: Format, job: &Job) -> Rendered {
    match format {
        Format::Json => render_json(job),
        Format::Ntfy => render_ntfy(job),
        Format::Discord => render_discord(job),
    }
}

/// The untrusted text fields of a notice, cleaned and capped.
struct Cleaned {
    host: Option<String>,
    command: Option<String>,
    requester: Option<String>,
    summary: String,
}

fn cleaned(notice: &Notice) -> Cleaned {
    Cleaned {
        host: notice.host.as_deref().map(|h| clean_line(h, MAX_NAME)),
        command: notice
            .command
            .as_deref()
            .map(|c| clean_text(c, MAX_COMMAND)),
        requester: notice.requester.as_deref().map(|r| clean_line(r, MAX_NAME)),
        summary: clean_text(&notice.summary, MAX_SUMMARY),
    }
}

fn title(kind: NoticeKind, host: Option<&str>) -> String {
    match host {
        Some(host) => format!("{} on {host}", capitalise(kind.label())),
        None => capitalise(kind.label()),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

fn render_json(job: &Job) -> Rendered {
    let n = &job.notice;
    let c = cleaned(n);
    let body = serde_json::json!({
        "event": n.kind.as_str(),
        "action_id": n.action_id.map(|id| id.to_string()),
        "host": c.host,
        "command": c.command,
        "risk": n.risk.map(|r| serde_json::json!({
            "score": r.score(),
            "level": r.level().as_str(),
        })),
        "requester": c.requester,
        "summary": c.summary,
        "link": job.link,
        "at": rfc3339(job.at),
    });
    Rendered {
        headers: json_headers(),
        body: body.to_string().into_bytes(),
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn render_ntfy(job: &Job) -> Rendered {
    let n = &job.notice;
    let c = cleaned(n);
    let mut text = c.summary.clone();
    if let Some(host) = &c.host {
        text.push_str(&format!("\nHost: {host}"));
    }
    if let Some(command) = &c.command {
        text.push_str(&format!("\nCommand: {command}"));
    }
    if let Some(risk) = n.risk {
        text.push_str(&format!("\nRisk: {risk}"));
    }
    if let Some(requester) = &c.requester {
        text.push_str(&format!("\nRequested by: {requester}"));
    }
    if let Some(id) = n.action_id {
        text.push_str(&format!("\nAction: {id}"));
    }
    if let Some(link) = &job.link {
        text.push_str(&format!("\nLink: {}", clean_line(link, 2000)));
    }
    let body = truncate_bytes(&text, MAX_NTFY_BODY);

    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let title = format!("Jarvis: {}", title(n.kind, c.host.as_deref()));
    put_header(&mut headers, "title", &title);
    put_header(
        &mut headers,
        "priority",
        if n.kind.urgent() { "high" } else { "default" },
    );
    put_header(&mut headers, "tags", n.kind.ntfy_tag());
    if let Some(link) = &job.link {
        put_header(&mut headers, "click", link);
    }
    Rendered {
        headers,
        body: body.into_bytes(),
    }
}

/// Sets a header to an ASCII-safe form of `value`; skips it if nothing
/// sendable is left.
fn put_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    let value = header_safe(value, MAX_HEADER);
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn render_discord(job: &Job) -> Rendered {
    let n = &job.notice;
    let c = cleaned(n);
    let host = c.host.as_deref().map(discord_escape);
    // Embed titles cannot ping or link; content and description are Markdown.
    let plain_heading = title(n.kind, c.host.as_deref());
    let heading = title(n.kind, host.as_deref());

    let mut content = format!("**Jarvis:** {heading}");
    if let Some(risk) = n.risk {
        content.push_str(&format!(" (risk {risk})"));
    }

    let mut description = discord_escape(&c.summary);
    if let Some(host) = &host {
        description.push_str(&format!("\n**Host:** {host}"));
    }
    if let Some(risk) = n.risk {
        description.push_str(&format!("\n**Risk:** {risk}"));
    }
    if let Some(requester) = &c.requester {
        description.push_str(&format!(
            "\n**Requested by:** {}",
            discord_escape(requester)
        ));
    }
    if let Some(id) = n.action_id {
        description.push_str(&format!("\n**Action:** `{id}`"));
    }
    if let Some(command) = &c.command {
        description.push_str(&format!("\n```\n{}\n```", code_safe(command)));
    }

    let mut embed = serde_json::json!({
        "title": truncate_chars(&plain_heading, DISCORD_TITLE),
        "description": truncate_chars(&description, DISCORD_DESCRIPTION),
        "color": n.kind.discord_color(),
        "timestamp": rfc3339(job.at),
    });
    // Discord refuses the whole message over an embed URL it cannot parse.
    if let Some(link) = job.link.as_deref().filter(|l| is_http_url(l)) {
        embed["url"] = serde_json::Value::String(link.to_owned());
    }
    let body = serde_json::json!({
        "content": truncate_chars(&content, DISCORD_CONTENT),
        "embeds": [embed],
        "allowed_mentions": { "parse": [] },
    });
    Rendered {
        headers: json_headers(),
        body: body.to_string().into_bytes(),
    }
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

// ---------------------------------------------------------------------------
// Untrusted text

/// Untrusted text that may span lines (newlines and tabs kept), through
/// the one table every view shares (`jarvis_core::text`). A stand-in is
/// one character, so truncation never splits one.
fn clean_text(text: &str, max_chars: usize) -> String {
    truncate_chars(&jarvis_core::text::inert(text), max_chars)
}

/// Untrusted text on one line.
fn clean_line(text: &str, max_chars: usize) -> String {
    truncate_chars(&jarvis_core::text::inert_line(text), max_chars)
}

/// At most `max` characters, the last one an ellipsis when cut.
fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` bytes, ending in an ellipsis when cut, on a char boundary.
fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Printable ASCII only, for HTTP headers: a few common characters are
/// transliterated, other non-ASCII becomes `?`, controls become spaces.
fn header_safe(text: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_bytes));
    for c in text.chars() {
        let piece: &str = match c {
            ' '..='~' => {
                out.push(c);
                continue;
            }
            '…' => "...",
            '–' | '—' | '−' => "-",
            '‘' | '’' => "'",
            '“' | '”' => "\"",
            c if c.is_control() || c.is_whitespace() => " ",
            _ => "?",
        };
        out.push_str(piece);
    }
    let out = out.trim();
    if out.len() <= max_bytes {
        out.to_owned()
    } else {
        // All ASCII: any byte index is a char boundary.
        format!("{}...", &out[..max_bytes.saturating_sub(3)])
    }
}

/// Escapes Discord Markdown (and mention syntax) in plain text.
fn discord_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '<'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '@'
                | ':'
                | '-'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for inside a Discord code block: a backtick could close the block,
/// so each becomes a look-alike (U+02CB).
fn code_safe(text: &str) -> String {
    text.replace('`', "\u{02CB}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Instant;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap as AxHeaderMap, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};

    #[derive(Clone, Debug)]
    struct Recorded {
        path: String,
        headers: AxHeaderMap,
        body: Vec<u8>,
        at: Instant,
    }

    impl Recorded {
        fn text(&self) -> String {
            String::from_utf8(self.body.clone()).expect("utf-8 body")
        }
        fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).expect("json body")
        }
        fn header(&self, name: &str) -> Option<String> {
            self.headers
                .get(name)
                .map(|v| v.to_str().expect("ascii header").to_owned())
        }
    }

    #[derive(Clone, Debug)]
    struct Reply {
        status: u16,
        retry_after: Option<&'static str>,
        delay: Duration,
    }

    impl Reply {
        fn status(status: u16) -> Reply {
            Reply {
                status,
                retry_after: None,
                delay: Duration::ZERO,
            }
        }
        fn hang(delay: Duration) -> Reply {
            Reply {
                status: 200,
                retry_after: None,
                delay,
            }
        }
    }

    #[derive(Clone, Default)]
    struct Receiver {
        seen: Arc<Mutex<Vec<Recorded>>>,
        /// Replies in order; once empty, `fallback` (200 when `None`).
        script: Arc<Mutex<VecDeque<Reply>>>,
        fallback: Arc<Mutex<Option<Reply>>>,
    }

    impl Receiver {
        fn seen(&self) -> Vec<Recorded> {
            self.seen.lock().expect("lock").clone()
        }
    }

    async fn record(
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
    async fn receiver(script: Vec<Reply>, fallback: Option<Reply>) -> (Receiver, String) {
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

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(2),
        }
    }

    fn hook(name: &str, format: Format, url: &str, events: Vec<NoticeKind>) -> Webhook {
        Webhook {
            name: name.to_owned(),
            format,
            url: url.to_owned(),
            events,
        }
    }

    fn risk(score: u32) -> Risk {
        Risk::new(score).expect("risk")
    }

    fn approval(id: ActionId) -> Notice {
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
    async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done()
    }

    async fn settled(n: &Notifier, limit: Duration, want: impl Fn(&WebhookStats) -> bool) {
        let ok = wait_until(limit, || n.stats().iter().all(&want)).await;
        assert!(ok, "stats never settled: {:?}", n.stats());
    }

    #[tokio::test]
    async fn json_payload_has_every_field_and_the_link() {
        let (rx, base) = receiver(vec![], None).await;
        let n = Notifier::start(
            vec![hook("ops", Format::Json, &format!("{base}/hook"), vec![])],
            Some("https://jarvis.example/".to_owned()),
            fast(),
        );
        let id = ActionId::new();
        n.notify(approval(id));
        settled(&n, Duration::from_secs(5), |s| s.delivered == 1).await;

        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/hook");
        assert_eq!(
            seen[0].header("content-type").as_deref(),
            Some("application/json")
        );
        let v = seen[0].json();
        assert_eq!(v["event"], "approval_needed");
        assert_eq!(v["action_id"], id.to_string());
        assert_eq!(v["host"], "nas");
        assert_eq!(v["command"], "systemctl restart nginx");
        assert_eq!(v["risk"]["score"], 72);
        assert_eq!(v["risk"]["level"], "high");
        assert_eq!(v["requester"], "agent-7");
        assert_eq!(v["summary"], "Restart nginx on nas needs approval.");
        assert_eq!(v["link"], format!("https://jarvis.example/actions/{id}"));
        let at = v["at"].as_str().expect("at");
        OffsetDateTime::parse(at, &Rfc3339).expect("RFC 3339");

        let stats = n.stats();
        assert_eq!(
            stats,
            vec![WebhookStats {
                name: "ops".to_owned(),
                format: Format::Json,
                delivered: 1,
                failed: 0,
                dropped: 0,
                retries: 0,
            }]
        );
    }

    #[tokio::test]
    async fn json_payload_without_public_url_or_details_has_nulls() {
        let (rx, base) = receiver(vec![], None).await;
        let n = Notifier::start(vec![hook("ops", Format::Json, &base, vec![])], None, fast());
        n.notify(Notice::new(
            NoticeKind::AuditBroken,
            "Audit chain broken at event 41.",
        ));
        settled(&n, Duration::from_secs(5), |s| s.delivered == 1).await;
        let v = rx.seen()[0].json();
        assert_eq!(v["event"], "audit_broken");
        for key in ["action_id", "host", "command", "risk", "requester", "link"] {
            assert!(v[key].is_null(), "{key} should be null: {v}");
        }
    }

    #[tokio::test]
    async fn ntfy_sends_text_and_headers() {
        let (rx, base) = receiver(vec![], None).await;
        let n = Notifier::start(
            vec![hook(
                "phone",
                Format::Ntfy,
                &format!("{base}/jarvis-topic"),
                vec![],
            )],
            Some("https://jarvis.example".to_owned()),
            fast(),
        );
        let id = ActionId::new();
        n.notify(approval(id));
        let mut failed = approval(id);
        failed.kind = NoticeKind::ActionFailed;
        n.notify(failed);
        n.notify(Notice::new(NoticeKind::AuditBroken, "Audit chain broken."));
        settled(&n, Duration::from_secs(5), |s| s.delivered == 3).await;

        let seen = rx.seen();
        assert_eq!(seen.len(), 3);
        let first = &seen[0];
        assert_eq!(first.path, "/jarvis-topic");
        assert_eq!(
            first.header("title").as_deref(),
            Some("Jarvis: Approval needed on nas")
        );
        assert_eq!(first.header("priority").as_deref(), Some("high"));
        assert_eq!(first.header("tags").as_deref(), Some("warning"));
        assert_eq!(
            first.header("click"),
            Some(format!("https://jarvis.example/actions/{id}"))
        );
        assert!(
            first
                .header("content-type")
                .expect("content-type")
                .starts_with("text/plain")
        );
        let text = first.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Restart nginx on nas needs approval.");
        assert!(lines.contains(&"Host: nas"), "{text}");
        assert!(
            lines.contains(&"Command: systemctl restart nginx"),
            "{text}"
        );
        assert!(lines.contains(&"Risk: 72 (high)"), "{text}");
        assert!(lines.contains(&"Requested by: agent-7"), "{text}");

        assert_eq!(seen[1].header("priority").as_deref(), Some("default"));
        assert_eq!(
            seen[1].header("title").as_deref(),
            Some("Jarvis: Action failed on nas")
        );
        assert_eq!(seen[2].header("priority").as_deref(), Some("high"));
        assert_eq!(seen[2].header("tags").as_deref(), Some("rotating_light"));
        assert_eq!(
            seen[2].header("click").as_deref(),
            Some("https://jarvis.example/audit")
        );
    }

    #[tokio::test]
    async fn discord_neutralises_mentions_and_escapes() {
        let (rx, base) = receiver(vec![], None).await;
        let n = Notifier::start(
            vec![
                hook("discord", Format::Discord, &base, vec![]),
                hook("json", Format::Json, &base, vec![]),
                hook("ntfy", Format::Ntfy, &base, vec![]),
            ],
            Some("https://jarvis.example".to_owned()),
            fast(),
        );
        let id = ActionId::new();
        let mut notice = approval(id);
        notice.command =
            Some("echo \x1b[31m@everyone `whoami` \u{202E}txt.exe\r\x07 && rm x".to_owned());
        notice.host = Some("nas\x1b[0m".to_owned());
        notice.requester = Some("agent @here".to_owned());
        notice.summary = "Needs approval \x1b]0;owned\x07 [click](https://evil.example)".to_owned();
        n.notify(notice);
        settled(&n, Duration::from_secs(5), |s| s.delivered == 1).await;

        let seen = rx.seen();
        assert_eq!(seen.len(), 3);
        for r in &seen {
            assert!(!r.body.contains(&0x1b), "raw ESC in body: {}", r.text());
            assert!(!r.text().contains('\u{202E}'), "bidi override in body");
            assert!(!r.text().contains('\r'), "carriage return in body");
            for value in r.headers.values() {
                assert!(!value.as_bytes().contains(&0x1b), "raw ESC in a header");
                assert!(value.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)));
            }
            // serde_json escapes controls as \u001b; that must not appear either.
            assert!(!r.text().contains("\\u001b"), "escaped ESC in body");
        }

        let discord = seen
            .iter()
            .find(|r| r.json().get("embeds").is_some())
            .expect("discord request");
        let v = discord.json();
        assert_eq!(v["allowed_mentions"]["parse"], serde_json::json!([]));
        let embed = &v["embeds"][0];
        assert_eq!(embed["url"], format!("https://jarvis.example/actions/{id}"));
        assert_eq!(embed["color"], 0xF0B429);
        let description = embed["description"].as_str().expect("description");
        // The command sits in a code block whose backticks it cannot close.
        assert!(
            description.contains("```\necho ␛[31m@everyone ˋwhoamiˋ"),
            "{description}"
        );
        assert_eq!(description.matches("```").count(), 2, "{description}");
        // Plain text has its Markdown escaped: no masked link survives.
        assert!(
            description.contains("\\[click\\]\\(https\\:"),
            "{description}"
        );
        assert!(description.contains("agent \\@here"), "{description}");
        let content = v["content"].as_str().expect("content");
        assert!(content.chars().count() <= DISCORD_CONTENT);
        assert!(content.contains("Approval needed on nas␛"), "{content}");
        assert!(embed["title"].as_str().expect("title").chars().count() <= DISCORD_TITLE);
    }

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

    #[tokio::test]
    async fn connection_errors_never_show_the_url() {
        // Bind then drop a listener so the port refuses connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let url = format!("http://{addr}/s3cr3t-topic-token");
        let client = reqwest::Client::builder()
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
    fn commands_are_capped_and_controls_made_visible() {
        let long = "x".repeat(2000);
        let out = clean_text(&long, MAX_COMMAND);
        assert_eq!(out.chars().count(), MAX_COMMAND);
        assert!(out.ends_with('…'));
        assert_eq!(clean_line("a\x1b[31mb\r\nc\u{7f}", 100), "a␛[31mb␍␊c␡");
        assert_eq!(clean_text("a\nb\tc\u{200B}", 100), "a\nb\tc\u{FFFD}");
        assert_eq!(clean_line("\u{9b}31m", 100), "\u{FFFD}31m");
        assert_eq!(
            header_safe("Jarvis: nas\x1b[0m — ünïcode…", 100),
            "Jarvis: nas [0m - ?n?code..."
        );
        assert_eq!(header_safe(&"y".repeat(400), MAX_HEADER).len(), MAX_HEADER);
        assert_eq!(truncate_bytes("ééé", 5), "é…");
        assert_eq!(truncate_bytes("ééé", 6), "ééé");
        assert_eq!(truncate_bytes("éééé", 6), "é…");
        assert_eq!(code_safe("a`b"), "aˋb");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.attempts, 6);
        assert_eq!(p.timeout, Duration::from_secs(10));
        assert_eq!(p.backoff(1), Duration::from_secs(2));
        assert_eq!(p.backoff(2), Duration::from_secs(4));
        assert_eq!(p.backoff(5), Duration::from_secs(32));
        assert_eq!(p.backoff(9), Duration::from_secs(300));
        assert_eq!(p.backoff(100), Duration::from_secs(300));
        let j = jitter(Duration::from_secs(10), Duration::from_secs(300));
        assert!(j >= Duration::from_secs(10) && j <= Duration::from_secs(11));
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

    #[test]
    fn kinds_and_formats_use_stable_names() {
        for kind in NoticeKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialise");
            assert_eq!(json, format!("\"{kind}\""));
            let back: NoticeKind = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, kind);
        }
        let f: Vec<Format> =
            serde_json::from_str(r#"["json", "ntfy", "discord"]"#).expect("formats");
        assert_eq!(f, vec![Format::Json, Format::Ntfy, Format::Discord]);
        assert!(serde_json::from_str::<NoticeKind>("\"approval\"").is_err());
    }
}
