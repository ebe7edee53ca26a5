//! A notice as each format sends it (generic JSON, ntfy, Discord), with
//! untrusted text capped, made visible and escaped for where it lands.

use jarvis_core::text::{clip_bytes, clip_chars};
use jarvis_http::reqwest;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::queue::Job;
use super::{Format, Notice, NoticeKind};

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

/// A request body with its headers, ready to send (and to resend).
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

pub(super) fn render(format: Format, job: &Job) -> Rendered {
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

pub(super) fn title(kind: NoticeKind, host: Option<&str>) -> String {
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
    let body = clip_bytes(&text, MAX_NTFY_BODY).into_owned();

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
        "title": clip_chars(&plain_heading, DISCORD_TITLE),
        "description": clip_chars(&description, DISCORD_DESCRIPTION),
        "color": n.kind.discord_color(),
        "timestamp": rfc3339(job.at),
    });
    // Discord refuses the whole message over an embed URL it cannot parse.
    if let Some(link) = job.link.as_deref().filter(|l| is_http_url(l)) {
        embed["url"] = serde_json::Value::String(link.to_owned());
    }
    let body = serde_json::json!({
        "content": clip_chars(&content, DISCORD_CONTENT),
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

/// Untrusted text that may span lines (newlines and tabs kept), through
/// the one table every view shares (`jarvis_core::text`). A stand-in is
/// one character, so truncation never splits one.
fn clean_text(text: &str, max_chars: usize) -> String {
    clip_chars(&jarvis_core::text::inert(text), max_chars).into_owned()
}

/// Untrusted text on one line.
pub(super) fn clean_line(text: &str, max_chars: usize) -> String {
    clip_chars(&jarvis_core::text::inert_line(text), max_chars).into_owned()
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
    use crate::notify::fixtures::*;
    use crate::notify::*;

    use jarvis_core::ActionId;
    use std::time::Duration;

    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

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
        assert_eq!(clip_bytes("ééé", 5), "é…");
        assert_eq!(clip_bytes("ééé", 6), "ééé");
        assert_eq!(clip_bytes("éééé", 6), "é…");
        assert_eq!(code_safe("a`b"), "aˋb");
    }
}
