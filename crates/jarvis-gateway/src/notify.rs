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
//!
//! The notices and their settings are here; the queue is in `queue`, the
//! delivery and its retries in `deliver`, the formats in `render`.

mod deliver;
#[cfg(test)]
mod fixtures;
mod queue;
mod render;

use std::fmt;
use std::time::Duration;

use jarvis_core::{ActionId, Risk};
use serde::{Deserialize, Serialize};

pub use queue::Notifier;

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
        self.rule().ceiling(retry)
    }

    /// The waits between attempts, by the rule all outbound HTTP follows.
    pub(crate) fn rule(&self) -> jarvis_http::Backoff {
        jarvis_http::Backoff {
            first: self.first_delay,
            max: self.max_delay,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

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
        // Jittered down by up to half, so webhooks that failed together do
        // not retry together.
        let j = p.rule().wait(4, None);
        assert!(
            j >= Duration::from_secs(8) && j <= Duration::from_secs(16),
            "{j:?}"
        );
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
