//! The words and classes the templates share: badges, times, spans,
//! sizes, outputs, and an audit event in a line a person reads.

use jarvis_core::text::Span;
use jarvis_core::{ActionState, Decision, Risk, RiskLevel, words};
use jarvis_store::{CapturedOutput, RunEnding};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The class of a risk badge: `risk-low` … `risk-critical`, or `risk-none`
/// when the action was not scored.
pub fn risk_class(risk: &Option<Risk>) -> &'static str {
    match risk {
        Some(r) => risk_level_class(r.level()),
        None => "risk-none",
    }
}

/// The class for a risk level word (`low` … `critical`); `risk-none` for
/// a word that is no level.
pub fn level_class(level: &str) -> &'static str {
    level.parse().map_or("risk-none", risk_level_class)
}

/// The class of a risk level's badge.
pub fn risk_level_class(level: RiskLevel) -> &'static str {
    match level {
        RiskLevel::Low => "risk-low",
        RiskLevel::Medium => "risk-medium",
        RiskLevel::High => "risk-high",
        RiskLevel::Critical => "risk-critical",
    }
}

/// A risk badge's text: `72 · high`, or `unscored`.
pub fn risk_label(risk: &Option<Risk>) -> String {
    match risk {
        Some(r) => format!("{} · {}", r.score(), r.level()),
        None => "unscored".to_owned(),
    }
}

/// The class of a state badge, by what the state means for the reader.
pub fn state_class(state: &ActionState) -> &'static str {
    match state {
        ActionState::Proposed | ActionState::PendingApproval => "state-pending",
        ActionState::Approved | ActionState::Running => "state-running",
        ActionState::Succeeded => "state-ok",
        ActionState::Denied
        | ActionState::Rejected
        | ActionState::Failed
        | ActionState::TimedOut
        | ActionState::Interrupted => "state-bad",
        ActionState::Expired | ActionState::RolledBack => "state-muted",
    }
}

/// The class of a decision badge for a decision's word (`allow`,
/// `approve`, `deny`); `decision-other` for a word that is no decision.
pub fn decision_class(decision: &str) -> &'static str {
    decision
        .parse()
        .map_or("decision-other", |d| decision_badge_class(&d))
}

/// The class of a decision's badge.
pub fn decision_badge_class(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "decision-allow",
        Decision::Approve => "decision-approve",
        Decision::Deny => "decision-deny",
    }
}

/// Captured output as text: invalid UTF-8 becomes U+FFFD.
pub fn output_text(o: &CapturedOutput) -> String {
    String::from_utf8_lossy(&o.data).into_owned()
}

/// What was cut from an output, if anything.
pub fn truncation_note(o: &CapturedOutput) -> Option<String> {
    o.truncated.then(|| {
        format!(
            "Cut at the host's cap: showing the first {} of {} written.",
            bytes_text(o.data.len() as u64),
            bytes_text(o.bytes)
        )
    })
}

/// A span of seconds, short: `45s`, `4m 12s`, `1h 02m`, `2d 3h`.
pub fn span_text(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// The countdown text: `4m 12s left`, or `expired` once `now` reaches
/// `expires` (the script writes the same words).
pub fn remaining(expires: i64, now: i64) -> String {
    let left = expires.saturating_sub(now);
    if left <= 0 {
        "expired".to_owned()
    } else {
        format!("{} left", span_text(left))
    }
}

/// Unix seconds as RFC 3339 (empty if out of range).
pub fn unix_rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn parse_time(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at.trim(), &Rfc3339).ok()
}

/// An RFC 3339 timestamp as `2025-11-23 01:57:03 UTC`; anything else as it is.
pub fn fmt_time(at: &str) -> String {
    match parse_time(at) {
        Some(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => at.to_owned(),
    }
}

/// How long before `now` the timestamp `at` was: `just now`, `42s ago`,
/// `5 min ago`, `3 h ago`, `2 d ago` (`in 5 min` if ahead of the clock);
/// empty if `at` is not RFC 3339.
pub fn ago(at: &str, now_unix: i64) -> String {
    let Some(t) = parse_time(at) else {
        return String::new();
    };
    let d = now_unix.saturating_sub(t.unix_timestamp());
    let words = |s: i64| match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    match d {
        ..=-10 => format!("in {}", words(-d)),
        -9..=9 => "just now".to_owned(),
        _ => format!("{} ago", words(d)),
    }
}

/// A JSON value pretty-printed.
pub fn pretty_value(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// JSON text pretty-printed; anything else as it is.
pub fn pretty_json_text(s: &str) -> String {
    match serde_json::from_str::<Value>(s) {
        Ok(v) => pretty_value(&v),
        Err(_) => s.to_owned(),
    }
}

/// The longest payload summary, in characters.
const SUMMARY_MAX: usize = 160;

/// A JSON payload on one line of at most 160 characters: an object's
/// fields as `key: value` joined by ` · `, strings unquoted.
pub fn payload_summary(payload: &str) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let line = match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(map)) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}: {}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" · "),
        Ok(Value::Null) => String::new(),
        Ok(v) => scalar(&v),
        Err(_) => payload.to_owned(),
    };
    let line: String = line
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    clip(&line, SUMMARY_MAX)
}

/// What an audit event says, on one line in words: the part a person
/// reads first (a decision's deciding reason, a person's own words, how a
/// run ended, what a snapshot covers) rather than the record's fields,
/// which stay one click away. Kinds without words here fall back to
/// [`payload_summary`].
pub fn event_line(kind: &str, payload: &str) -> String {
    let Ok(Value::Object(p)) = serde_json::from_str::<Value>(payload) else {
        return payload_summary(payload);
    };
    let text = |key: &str| p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
    let list = |key: &str| -> Vec<String> {
        p.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    // Reasons quote code as Markdown spans; a one-line summary is plain.
    let first_reason = || {
        list("reasons").into_iter().next().map(|r| {
            jarvis_core::text::spans(&r)
                .into_iter()
                .map(|s| match s {
                    Span::Text(t) | Span::Code(t) => t,
                })
                .collect::<String>()
        })
    };
    let risk = || {
        let r = p.get("risk")?;
        Some(format!(
            "risk {} ({})",
            r.get("score")?.as_u64()?,
            r.get("level")?.as_str()?
        ))
    };
    let said = |verb: &str| {
        let who = list("approvers")
            .iter()
            .map(|a| words::actor(a))
            .collect::<Vec<_>>()
            .join(" and ");
        match (who.is_empty(), text("reason")) {
            (false, Some(r)) => Some(format!("{who} {verb} it: {r}")),
            (false, None) => Some(format!("{who} {verb} it, giving no reason")),
            (true, Some(r)) => Some(format!("“{r}”")),
            (true, None) => None,
        }
    };
    let line = match kind {
        "action.proposed" => p
            .get("purpose")
            .and_then(|v| v.get("reason"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|r| format!("the agent's reason: “{r}”"))
            .or_else(|| text("rollback_of").map(|o| format!("to roll back {}", short_id(o))))
            .or_else(|| text("command").map(|c| format!("to run {c}"))),
        "action.pending_approval" | "action.approved" | "action.denied" | "action.refused" => {
            said(if kind == "action.denied" {
                "rejected"
            } else {
                "approved"
            })
            .or_else(|| match (risk(), first_reason()) {
                (Some(r), Some(why)) => Some(format!("{r}: {why}")),
                (None, Some(why)) => Some(why),
                (r, None) => r,
            })
        }
        "action.previewed" => {
            let summary = list("summary");
            (!summary.is_empty()).then(|| summary.join("; "))
        }
        "action.running" => p
            .get("timeout_secs")
            .and_then(Value::as_u64)
            .map(|t| format!("with a timeout of {t} s"))
            .or_else(|| text("rollback_of").map(|o| format!("putting back {}", short_id(o)))),
        "snapshot.after" => Some(
            "the state right after the run, kept to tell later changes from this action's"
                .to_owned(),
        ),
        "snapshot.after_failed" => text("error").map(|e| {
            format!("the state right after the run could not be read, so a rollback cannot tell later changes apart: {e}")
        }),
        "action.succeeded" | "action.failed" | "action.interrupted" | "action.lost" => {
            p.get("run").map(|run| {
                let took = run
                    .get("duration_ms")
                    .and_then(Value::as_u64)
                    .map(|ms| format!(" after {}", duration_text(ms)))
                    .unwrap_or_default();
                match (
                    run.get("exit_code").and_then(Value::as_i64),
                    run.get("error").and_then(Value::as_str),
                ) {
                    (_, Some(e)) => format!("{e}{took}"),
                    (Some(c), None) => format!("exit code {c}{took}"),
                    (None, None) => format!(
                        "{}{took}",
                        run.get("ending").and_then(Value::as_str).unwrap_or("ended")
                    ),
                }
            })
        }
        "run.guard_account" => p.get("run").map(guard_account_line),
        "snapshot.taken" => {
            let parts: Vec<String> = [
                ("repos", "git repository"),
                ("containers", "container"),
                ("volumes", "volume"),
                ("files", "file"),
            ]
            .iter()
            .flat_map(|(key, noun)| list(key).into_iter().map(move |x| format!("{noun} {x}")))
            .collect();
            Some(if parts.is_empty() {
                "nothing to capture".to_owned()
            } else {
                parts.join(", ")
            })
        }
        "action.rolled_back" => {
            text("rollback").map(|r| format!("put back by rollback {}", short_id(r)))
        }
        "snapshot.pruned" => text("why").map(str::to_owned),
        "snapshot.prune_failed" => match (text("why"), text("error")) {
            (Some(why), Some(e)) => Some(format!(
                "{why}; the host could not remove it, so it is kept: {e}"
            )),
            (_, e) => e.map(|e| format!("the host could not remove it, so it is kept: {e}")),
        },
        "snapshot.removed" => {
            let removed = list("removed");
            Some(if removed.is_empty() {
                "the host had nothing of it left".to_owned()
            } else {
                removed.join(", ")
            })
        }
        "conversation.message" => text("role").map(|r| {
            match r {
                "user" => "what the person said",
                // Direct mode answers without a model, so neither names one.
                "assistant" => "the answer",
                "action" => "an action's result, as the conversation was told it",
                _ => "a message",
            }
            .to_owned()
        }),
        _ => None,
    };
    match line {
        Some(l) => clip(&l.replace(['\n', '\t'], " "), SUMMARY_MAX),
        None => payload_summary(payload),
    }
}

/// `s` cut to `max` characters, with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    jarvis_core::text::clip_chars(s, max).into_owned()
}

/// An action id's first 13 characters (`0193a1b2-c3d4`).
pub fn short_id(id: &str) -> String {
    jarvis_core::text::truncate_chars(id, 13).to_owned()
}

/// The approvals so far when more than one is needed:
/// `1 of 2 approvals (alice)`.
pub fn approvals_text(approvers: &[String], needed: u32) -> Option<String> {
    (needed >= 2).then(|| {
        let mut s = format!("{} of {needed} approvals", approvers.len());
        if !approvers.is_empty() {
            s.push_str(&format!(" ({})", approvers.join(", ")));
        }
        s
    })
}

/// How many lines a text has.
pub fn line_count(s: &str) -> usize {
    s.lines().count()
}

/// An actor (`user:alice`, `token:planner`) in words.
pub fn actor_words(actor: &str) -> String {
    words::actor(actor)
}

/// Who asked for an action, in words: the person, and the agent token or
/// chat they asked through.
pub fn asked_by_words(requester: &str, accountable: &str) -> String {
    words::requested_by(requester, accountable)
}

/// What the host's guard said became of a run the gateway did not hear
/// end (the `run` of a `run.guard_account` event), in one sentence.
fn guard_account_line(run: &Value) -> String {
    let num = |key: &str| run.get(key).and_then(Value::as_i64);
    let error = run.get("error").and_then(Value::as_str).unwrap_or_default();
    let took = run
        .get("duration_ms")
        .and_then(Value::as_u64)
        .map(duration_text)
        .unwrap_or_default();
    let ending = run
        .get("ending")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let said = match ending.parse::<RunEnding>() {
        Ok(RunEnding::KilledGatewayGone) => {
            format!("it started, and was killed after {took} because the gateway disconnected")
        }
        Ok(RunEnding::Exited) => match num("exit_code") {
            Some(c) => format!("it ran to its end: exit code {c} after {took}"),
            None => format!("it ran to its end after {took}"),
        },
        Ok(RunEnding::Signalled) => match num("signal") {
            Some(sig) => format!("it ran and was ended by signal {sig} after {took}"),
            None => format!("it ran and was ended by a signal after {took}"),
        },
        Ok(RunEnding::TimedOut) => format!("it ran past its timeout and was killed after {took}"),
        Ok(RunEnding::GuardGone) => {
            "it started, and the guard itself stopped before it could say how it ended".into()
        }
        // These say all in their own words.
        Ok(
            RunEnding::NeverStarted
            | RunEnding::NoRecord
            | RunEnding::Unavailable
            | RunEnding::Refused,
        ) if !error.is_empty() => {
            return error.to_owned();
        }
        Ok(
            RunEnding::NeverStarted
            | RunEnding::NoRecord
            | RunEnding::Unavailable
            | RunEnding::Refused
            | RunEnding::Lost
            | RunEnding::NotSent
            | RunEnding::Unreachable,
        )
        | Err(_) => format!("it ended: {}", ending.replace('-', " ")),
    };
    format!("the host's guard says: {said}")
}

/// An audit event's kind in words.
pub fn event_words(kind: &str) -> String {
    words::event(kind)
}

/// The first non-blank line of `s`, cut to fit a summary.
pub fn first_line(s: &str) -> String {
    clip(
        s.lines().find(|l| !l.trim().is_empty()).unwrap_or_default(),
        80,
    )
}

/// A byte count as `512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`.
pub fn bytes_text(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.1} GiB", f / (K * K * K))
    }
}

/// Milliseconds as `850 ms`, `12.3 s`, `2 min 05 s`.
pub fn duration_text(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use crate::server::views::*;
    use jarvis_core::{ActionState, Risk};
    use jarvis_store::CapturedOutput;
    use serde_json::{Value, json};

    #[test]
    fn countdowns_and_spans() {
        assert_eq!(remaining(NOW + 252, NOW), "4m 12s left");
        assert_eq!(remaining(NOW + 5, NOW), "5s left");
        assert_eq!(remaining(NOW + 3_725, NOW), "1h 02m left");
        assert_eq!(remaining(NOW + 90_000, NOW), "1d 1h left");
        assert_eq!(remaining(NOW, NOW), "expired");
        assert_eq!(remaining(NOW - 10, NOW), "expired");
        assert_eq!(remaining(i64::MIN, i64::MAX), "expired");
        assert_eq!(span_text(-3), "0s");
    }

    #[test]
    fn times() {
        assert_eq!(fmt_time("2025-11-23T01:57:03Z"), "2025-11-23 01:57:03 UTC");
        assert_eq!(
            fmt_time("2025-11-23T02:57:03.123456+01:00"),
            "2025-11-23 01:57:03 UTC"
        );
        assert_eq!(fmt_time("yesterday"), "yesterday");
        assert_eq!(unix_rfc3339(NOW), "2025-11-23T01:57:03Z");
        assert_eq!(ago("2025-11-23T01:57:00Z", NOW), "just now");
        assert_eq!(ago("2025-11-23T01:56:03Z", NOW), "1 min ago");
        assert_eq!(ago("2025-11-23T01:56:30Z", NOW), "33s ago");
        assert_eq!(ago("2025-11-22T22:57:03Z", NOW), "3 h ago");
        assert_eq!(ago("2025-11-20T01:57:03Z", NOW), "3 d ago");
        assert_eq!(ago("2025-11-23T02:07:03Z", NOW), "in 10 min");
        assert_eq!(ago("garbage", NOW), "");
    }

    #[test]
    fn badges() {
        assert_eq!(risk_class(&Some(Risk::new(10).expect("r"))), "risk-low");
        assert_eq!(risk_class(&Some(Risk::new(45).expect("r"))), "risk-medium");
        assert_eq!(risk_class(&Some(Risk::new(72).expect("r"))), "risk-high");
        assert_eq!(
            risk_class(&Some(Risk::new(95).expect("r"))),
            "risk-critical"
        );
        assert_eq!(risk_class(&None), "risk-none");
        assert_eq!(risk_label(&Some(Risk::new(72).expect("r"))), "72 · high");
        assert_eq!(risk_label(&None), "unscored");
        assert_eq!(level_class("critical"), "risk-critical");
        assert_eq!(level_class("bogus"), "risk-none");
        assert_eq!(state_class(&ActionState::PendingApproval), "state-pending");
        assert_eq!(state_class(&ActionState::Running), "state-running");
        assert_eq!(state_class(&ActionState::Succeeded), "state-ok");
        assert_eq!(state_class(&ActionState::Failed), "state-bad");
        assert_eq!(state_class(&ActionState::RolledBack), "state-muted");
        for s in ActionState::ALL {
            assert!(state_class(&s).starts_with("state-"));
        }
        assert_eq!(decision_class("deny"), "decision-deny");
        assert_eq!(decision_class("allow"), "decision-allow");
    }

    #[test]
    fn texts() {
        assert_eq!(
            approvals_text(&["alice".into()], 2).as_deref(),
            Some("1 of 2 approvals (alice)")
        );
        assert_eq!(approvals_text(&[], 2).as_deref(), Some("0 of 2 approvals"));
        assert_eq!(approvals_text(&[], 1), None);
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 * 1024 * 1024 + 200_000), "3.2 MiB");
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(12_345), "12.3 s");
        assert_eq!(duration_text(125_000), "2 min 05 s");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            short_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            "0193a1b2-c3d4"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(line_count("a\nb\nc"), 3);
        assert!(is_local_path("/actions/1"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("javascript:alert(1)"));
    }

    #[test]
    fn events_read_as_what_a_person_wants_to_know() {
        let line = |kind: &str, p: Value| event_line(kind, &p.to_string());
        assert_eq!(
            line(
                "action.approved",
                json!({"approvers": ["user:alice"], "reason": "quiet hour", "from": "pending_approval"})
            ),
            "alice approved it: quiet hour"
        );
        assert_eq!(
            line("action.denied", json!({"approvers": ["user:bob"]})),
            "bob rejected it, giving no reason"
        );
        assert_eq!(
            line(
                "action.pending_approval",
                json!({"risk": {"score": 45, "level": "medium"}, "reasons": ["it restarts", "no rule"]})
            ),
            "risk 45 (medium): it restarts"
        );
        assert_eq!(
            line(
                "action.pending_approval",
                json!({"reasons": ["`docker restart` starts a container"]})
            ),
            "docker restart starts a container"
        );
        assert_eq!(
            line(
                "action.succeeded",
                json!({"run": {"exit_code": 0, "duration_ms": 764, "error": null}})
            ),
            "exit code 0 after 764 ms"
        );
        assert_eq!(
            line(
                "snapshot.taken",
                json!({"repos": ["/srv/c"], "containers": ["web"], "files": []})
            ),
            "git repository /srv/c, container web"
        );
        assert_eq!(
            line(
                "action.previewed",
                json!({"summary": ["HEAD a → b", "1 file changed"]})
            ),
            "HEAD a → b; 1 file changed"
        );
        assert_eq!(
            line(
                "action.proposed",
                json!({"purpose": {"reason": "port moved\nto 8080"}})
            ),
            "the agent's reason: “port moved to 8080”"
        );
        assert_eq!(
            line(
                "run.guard_account",
                json!({"run": {"ending": "killed-gateway-gone", "duration_ms": 1520,
                    "error": "the gateway disconnected; the command was killed"}})
            ),
            "the host's guard says: it started, and was killed after 1.5 s because the gateway disconnected"
        );
        assert_eq!(
            line(
                "run.guard_account",
                json!({"run": {"ending": "exited", "exit_code": 0, "duration_ms": 5004}})
            ),
            "the host's guard says: it ran to its end: exit code 0 after 5.0 s"
        );
        assert_eq!(
            line(
                "run.guard_account",
                json!({"run": {"ending": "never-started",
                    "error": "the host's guard has no record of it: it never started"}})
            ),
            "the host's guard has no record of it: it never started"
        );
        assert_eq!(
            line(
                "run.guard_account",
                json!({"run": {"ending": "guard-gone"}})
            ),
            "the host's guard says: it started, and the guard itself stopped before it could say how it ended"
        );
        assert_eq!(
            line(
                "action.proposed",
                json!({"command": "rollback 01a2512a-6abe-745b", "rollback_of": "01a2512a-6abe-745b",
                    "commitment": {"accountable": "a80f"}})
            ),
            "to roll back 01a2512a-6abe"
        );
        assert_eq!(
            line(
                "action.proposed",
                json!({"command": "docker ps", "commitment": {"accountable": "a80f"}})
            ),
            "to run docker ps"
        );
        assert_eq!(
            line(
                "action.running",
                json!({"from": "approved", "to": "running", "rollback_of": "01a2512a-6abe-745b"})
            ),
            "putting back 01a2512a-6abe"
        );
        assert!(
            line("snapshot.after", json!({"recorded": true}))
                .starts_with("the state right after the run")
        );
        // Unknown kinds and shapes fall back to the fields, never to nothing.
        assert_eq!(line("host.checked", json!({"host": "nas"})), "host: nas");
        assert_eq!(event_line("action.approved", "not json"), "not json");
    }

    #[test]
    fn payloads() {
        let p = json!({"command": "ls\n-l", "exit_code": 0, "none": null}).to_string();
        assert_eq!(payload_summary(&p), "command: ls -l · exit_code: 0");
        assert_eq!(payload_summary("not json"), "not json");
        assert_eq!(payload_summary("null"), "");
        assert_eq!(
            payload_summary(&json!({"x": "y".repeat(300)}).to_string())
                .chars()
                .count(),
            160
        );
        assert_eq!(pretty_json_text("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_json_text("plain"), "plain");
    }

    #[test]
    fn outputs() {
        let o = CapturedOutput {
            data: vec![b'o', b'k', 0xff],
            bytes: 3,
            sha256: String::new(),
            truncated: false,
        };
        assert_eq!(output_text(&o), "ok\u{fffd}");
        assert_eq!(truncation_note(&o), None);
        let cut = output("abc", true);
        assert_eq!(
            truncation_note(&cut).as_deref(),
            Some("Cut at the host's cap: showing the first 3 B of 9.8 KiB written.")
        );
    }

    #[test]
    fn event_kinds_in_words() {
        assert_eq!(event_words("action.pending_approval"), "waits for approval");
        assert_eq!(event_words("action.rolled_back"), "rolled back");
        assert_eq!(
            event_words("action.approval_recorded"),
            "one approval counted"
        );
        assert_eq!(event_words("auth.login"), "signed in");
    }
}
