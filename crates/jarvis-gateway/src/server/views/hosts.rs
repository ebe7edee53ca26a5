//! The hosts page: each host's health, connection, kernel standing and
//! limits.

use askama::Template;
use jarvis_exec::breaker::BreakerStatus;
use jarvis_exec::protocol::EnforcementLevel;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::filters;
use super::layout::{Chrome, Section};
use super::text::plural;

/// One configured host.
#[derive(Debug, Clone)]
pub struct HostRow {
    /// Its name.
    pub name: String,
    /// Where it is reached (`user@addr:port`).
    pub destination: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its last health check.
    pub health: Health,
    /// The circuit breaker's state as `jarvis hosts list` says it
    /// (`closed`, `open for 20s more`, `probing`): the API's word.
    pub breaker: String,
    /// The same, in words for a person.
    pub connection: Connection,
    /// Its limits, name and value.
    pub limits: Vec<(String, String)>,
    /// The shell its guard runs commands with (`bash --version`), or why
    /// there is none.
    pub shell: String,
    /// Its kernel wall and what its `enforcement` makes of it.
    pub kernel: HostKernel,
}

/// A host's kernel wall as the hosts page and the API show it: the same
/// words as `jarvis hosts check`.
#[derive(Debug, Clone, Default)]
pub struct HostKernel {
    /// What its kernel enforces; `None` when nobody asked yet or the host
    /// did not answer.
    pub level: Option<EnforcementLevel>,
    /// The level in words (`full (Landlock ABI 7)`, `none: …`).
    pub detail: String,
    /// The host's setting: `required` or `best-effort`.
    pub enforcement: String,
    /// What follows (`unattended actions allowed`, `every action waits
    /// for a person`).
    pub consequence: String,
    /// Whether an action the policy allows runs without a person.
    pub unattended: bool,
    /// When the host said so; empty when nobody asked yet.
    pub learnt_at: String,
}

impl HostKernel {
    /// `full`, `partial`, `none` or `unknown`.
    pub fn level_word(&self) -> &'static str {
        self.level.map_or("unknown", EnforcementLevel::as_str)
    }

    /// The detail without the level word the badge already shows:
    /// `(Landlock ABI 7)`, `switched off by …`, `not checked yet`.
    pub fn note(&self) -> &str {
        self.detail
            .strip_prefix(self.level_word())
            .unwrap_or(&self.detail)
            .trim_start_matches(':')
            .trim()
    }

    /// The class of the kernel badge: a whole wall is good, a host nobody
    /// asked is unknown, anything less than the whole wall is a warning.
    pub fn class(&self) -> &'static str {
        match self.level {
            Some(EnforcementLevel::Full) => "good",
            None => "unknown",
            Some(EnforcementLevel::Partial | EnforcementLevel::None) => "warn",
        }
    }
}

impl HostRow {
    /// The word on the host's badge: what its connection says while Jarvis
    /// has cut it off or is trying again, otherwise what its last check
    /// found (`healthy`, `unreachable`, `not checked yet`).
    pub fn badge_word(&self) -> &str {
        if self.connection.cut_off() {
            &self.connection.word
        } else {
            self.health.label()
        }
    }

    /// The class of the host's badge.
    pub fn badge_class(&self) -> &'static str {
        if self.connection.cut_off() {
            self.connection.class
        } else {
            self.health.class()
        }
    }
}

/// A host's connection in words: its circuit breaker as a person reads it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `healthy`, `failing`, `cut off` or `trying again`.
    pub word: String,
    /// What follows the word: `after 5 failures in a row`.
    pub detail: String,
    /// While cut off: when Jarvis lets a request through again (RFC 3339).
    pub retry_at: String,
    /// The last failure, in the transport's words (empty when none).
    pub last_error: String,
    /// The badge class: `good`, `warn` or `bad`.
    pub class: &'static str,
}

impl Connection {
    /// The words for a breaker's status, as of `now`.
    pub fn of(status: &BreakerStatus, now: OffsetDateTime) -> Connection {
        let in_a_row = |n: u32| {
            format!(
                "after {n} {} in a row",
                plural(u64::from(n), "failure", "failures")
            )
        };
        match status {
            BreakerStatus::Closed { failures: 0, .. } => Connection {
                word: "healthy".into(),
                detail: "requests go through".into(),
                class: "good",
                ..Connection::default()
            },
            BreakerStatus::Closed {
                failures,
                last_error,
            } => Connection {
                word: "failing".into(),
                detail: format!(
                    "requests go through, but the last {failures} {} failed",
                    plural(u64::from(*failures), "attempt", "attempts"),
                ),
                last_error: last_error.clone(),
                class: "warn",
                ..Connection::default()
            },
            BreakerStatus::Open {
                failures,
                last_error,
                retry_in,
            } => Connection {
                word: "cut off".into(),
                detail: in_a_row(*failures),
                retry_at: (now + *retry_in).format(&Rfc3339).unwrap_or_default(),
                last_error: last_error.clone(),
                class: "bad",
            },
            BreakerStatus::Probing {
                failures,
                last_error,
            } => Connection {
                word: "trying again".into(),
                detail: in_a_row(*failures),
                last_error: last_error.clone(),
                class: "warn",
                ..Connection::default()
            },
        }
    }

    /// Whether Jarvis keeps requests from the host now (cut off, or one
    /// try out): then that, not the last check, is the host's state.
    pub fn cut_off(&self) -> bool {
        matches!(self.word.as_str(), "cut off" | "trying again")
    }
}

/// A host's last health check.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Reachable or not; `None` = not checked yet.
    pub ok: Option<bool>,
    /// What the check said.
    pub detail: String,
    /// When it was checked.
    pub checked_at: String,
}

impl Health {
    /// The class of the health badge: `good`, `bad` or `unknown`.
    pub fn class(&self) -> &'static str {
        match self.ok {
            Some(true) => "good",
            Some(false) => "bad",
            None => "unknown",
        }
    }

    /// The health in a word or two.
    pub fn label(&self) -> &'static str {
        match self.ok {
            Some(true) => "healthy",
            Some(false) => "unreachable",
            None => "not checked yet",
        }
    }
}

/// `GET /hosts`: the configured hosts.
#[derive(Template)]
#[template(path = "hosts.html")]
pub struct HostsPage {
    /// The frame.
    pub chrome: Chrome,
    /// The hosts.
    pub hosts: Vec<HostRow>,
    /// Whether the reader may check a host now (people who decide).
    pub can_check: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use jarvis_exec::breaker::BreakerStatus;
    use time::OffsetDateTime;

    #[test]
    fn hosts_page() {
        let html = render(&HostsPage {
            chrome: chrome(Section::Hosts),
            hosts: sample_hosts(),
            can_check: true,
        });
        for s in [
            "<article class=\"card host-card\" id=\"host-nas\" data-host=\"nas\">",
            "jarvis@10.0.0.5:22",
            "<span class=\"tag\">storage</span>",
            // Health in words: the badge says what stands now.
            "badge health good\">healthy<",
            "badge health bad\">cut off<",
            "badge health warn\">trying again<",
            "healthy: nas as jarvis; git 2.39.5; docker 27.3.1",
            "unreachable: connection refused",
            "not checked yet",
            "badge connection good\">healthy</span> requests go through</dd>",
            "badge connection bad\">cut off</span> after 5 failures in a row, trying again at <time class=\"ts\" datetime=\"2025-11-23T01:57:45Z\">2025-11-23 01:57:45 UTC</time>; last failure: ssh: connect to host web-1 port 22: Connection refused</dd>",
            "badge connection warn\">trying again</span> after 1 failure in a row</dd>",
            "<th scope=\"row\">output cap</th><td>1.0 MiB</td>",
            "<th scope=\"row\">cut off</th><td>after 5 failures in a row, for 1m 00s</td>",
            "GNU bash, version 5.2.15(1)-release",
            "no bash: the guard runs nothing on this host",
            "badge kernel good\">full</span> (Landlock ABI 7)",
            "badge kernel warn\">none</span> switched off by the host&#39;s forced command (--kernel off)",
            "enforcement = <code>required</code>: every action waits for a person",
            "badge kernel unknown\">unknown</span> not checked yet",
            "enforcement = <code>best-effort</code>: unattended actions run without the full kernel wall",
            // Check now, one form per host, each with the token.
            "<form class=\"check-now\" method=\"post\" action=\"/hosts/nas/check\">",
            "<form class=\"check-now\" method=\"post\" action=\"/hosts/web-1/check\">",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert_eq!(html.matches("class=\"check-now\"").count(), 3);
        assert_csrf(&html, "CSRF-TOKEN-123");
        // No breaker jargon, no raw byte counts.
        for jargon in [">closed<", ">open<", ">probing<", "bytes<", "half-open"] {
            assert!(!html.contains(jargon), "{jargon} in\n{html}");
        }
        let viewer = render(&HostsPage {
            chrome: chrome(Section::Hosts),
            hosts: sample_hosts(),
            can_check: false,
        });
        assert!(!viewer.contains("check-now"));
    }

    #[test]
    fn connections_in_words() {
        let now = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
        let failing = Connection::of(
            &BreakerStatus::Closed {
                failures: 2,
                last_error: "timed out".into(),
            },
            now,
        );
        assert_eq!(failing.word, "failing");
        assert_eq!(
            failing.detail,
            "requests go through, but the last 2 attempts failed"
        );
        assert_eq!(failing.last_error, "timed out");
        assert!(!failing.cut_off());
        let open = Connection::of(
            &BreakerStatus::Open {
                failures: 1,
                last_error: String::new(),
                retry_in: std::time::Duration::from_secs(90),
            },
            now,
        );
        assert_eq!(open.detail, "after 1 failure in a row");
        assert_eq!(open.retry_at, "2025-11-23T01:58:33Z");
        assert!(open.cut_off());
    }
}
