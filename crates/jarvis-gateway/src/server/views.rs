//! The askama views of the web UI: one struct per page (or fragment), the
//! page frame they share ([`Chrome`]), the [`filters::inert`] filter every
//! untrusted text goes through, and the small pure helpers the templates
//! call.
//!
//! Templates live in the workspace's `templates/` directory (see
//! `crates/jarvis-gateway/askama.toml`); the stylesheet and the script are
//! `templates/static/app.css` and `templates/static/app.js`.
//!
//! Everything a command, its output, a preview, a reason, an audit payload
//! or a user name carries was written by someone the gateway does not trust
//! (an AI agent, a host). Templates rely on askama's HTML escaping for
//! markup (no `|safe` anywhere) and on [`filters::inert`] for what escaping
//! leaves alone: terminal escape sequences, carriage returns, NUL and
//! bidirectional overrides, which can make a screen show something other
//! than what will run. The pages carry no inline script or style, so the
//! server's Content-Security-Policy can forbid both.
//!
//! One module per page (or family of pages) holds its views and their
//! tests; [`layout`]'s frame and [`text`]'s words are what they share.

mod action;
mod audit;
mod chat;
mod error;
pub mod filters;
#[cfg(test)]
pub(crate) mod fixtures;
mod hosts;
mod layout;
mod login;
mod policy;
mod queue;
mod rollback;
mod text;

pub use super::story::{ChatOrigin, Story, reason_spans};
pub use action::{ActionPage, ActionsPage};
pub use audit::{AuditPage, AuditQuery, break_words, chain_status_text};
pub use chat::{
    ChatAction, ChatEntry, ChatPage, ConversationPage, chat_entries, conversation_class,
};
pub use error::{ErrorPage, is_local_path};
pub use hosts::{Connection, Health, HostKernel, HostRow, HostsPage};
pub use layout::{Chrome, Flash, FlashKind, Section, SignedIn};
pub use login::LoginPage;
pub use policy::{HostUnattended, PolicyPage, PolicyTry, RuleView};
pub use queue::{QueueItem, QueueItems, QueuePage};
pub use rollback::RollbackPage;
pub use text::{
    actor_words, ago, approvals_text, asked_by_words, bytes_text, clip, decision_class,
    duration_text, event_line, event_words, first_line, fmt_time, level_class, line_count,
    output_text, payload_summary, pretty_json_text, pretty_value, remaining, risk_class,
    risk_label, short_id, span_text, state_class, truncation_note, unix_rfc3339, url_encode,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use askama::Template;
    use jarvis_core::text::Span;
    use jarvis_core::{ActionId, ActionState, Risk, Role};
    use jarvis_store::SnapshotRecord;
    use serde_json::json;

    #[test]
    fn the_chain_banner_is_on_every_page_for_everyone_signed_in() {
        let trouble = |role: Role| Chrome {
            user: Some(SignedIn {
                name: "victor".into(),
                role,
            }),
            chain_intact: Some(false),
            chain_problem: Some(
                "It breaks at event #42: event 42 was changed <after> it was written.".into(),
            ),
            ..chrome(Section::Queue)
        };
        for role in Role::ALL {
            for html in [
                render(&ErrorPage {
                    chrome: trouble(role),
                    status: 404,
                    heading: "Nothing here".into(),
                    message: "There is no page here.".into(),
                    back: None,
                }),
                render(&HostsPage {
                    chrome: Chrome {
                        section: Section::Hosts,
                        ..trouble(role)
                    },
                    hosts: Vec::new(),
                    can_check: false,
                }),
                render(&sample_policy(trouble(role))),
            ] {
                for s in [
                    "<section id=\"chain-banner\" class=\"trouble-banner broken\" role=\"alert\"",
                    "The audit log fails verification",
                    "It breaks at event #42: event 42 was changed &#60;after&#62; it was written.",
                    "<a href=\"/audit#chain-status\">",
                    "<code>jarvis audit verify</code>",
                ] {
                    assert!(html.contains(s), "{role}: missing {s}\n{html}");
                }
            }
        }
        // A chain that could not be verified is said too, less loudly.
        let html = render(&ErrorPage {
            chrome: Chrome {
                chain_intact: None,
                chain_problem: Some("Jarvis could not verify it: database is locked.".into()),
                ..chrome(Section::Queue)
            },
            status: 404,
            heading: "x".into(),
            message: "y".into(),
            back: None,
        });
        assert!(html.contains("class=\"trouble-banner unknown\""), "{html}");
        assert!(html.contains("The audit log could not be verified"));
        // Intact: no banner; signed out: no banner, whatever the chain.
        let html = render(&sample_policy(chrome(Section::Policy)));
        assert!(!html.contains("chain-banner"));
        let html = render(&ErrorPage {
            chrome: Chrome {
                user: None,
                ..trouble(Role::Admin)
            },
            status: 500,
            heading: "x".into(),
            message: "y".into(),
            back: None,
        });
        assert!(!html.contains("chain-banner"), "{html}");
    }

    #[test]
    fn a_reason_shows_its_code_as_code() {
        let html = render(&ReasonFixture {
            reason: "`rm -r` deletes `` a`b `` and <more>".into(),
        });
        assert_eq!(
            html.trim(),
            "<code>rm -r</code> deletes <code>a`b</code> and &#60;more&#62;"
        );
    }

    /// `_reason.html` alone.
    #[derive(Template)]
    #[template(source = "{% include \"_reason.html\" %}", ext = "html")]
    struct ReasonFixture {
        reason: String,
    }

    /// Writes sample pages for a look in a browser:
    /// `JARVIS_UI_DUMP=/tmp/ui cargo test -p jarvis-gateway dump_sample_pages -- --ignored`,
    /// then serve `/tmp/ui` (e.g. `python3 -m http.server -d /tmp/ui`) so
    /// `/static/app.css` resolves.
    #[test]
    #[ignore = "writes files; run by hand to look at the UI"]
    fn dump_sample_pages() {
        let Ok(dir) = std::env::var("JARVIS_UI_DUMP") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(dir.join("static")).expect("mkdir");
        let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        for f in ["app.css", "app.js"] {
            std::fs::copy(templates.join("static").join(f), dir.join("static").join(f))
                .expect("copy");
        }
        let write = |name: &str, html: String| {
            std::fs::write(dir.join(format!("{name}.html")), html).expect("write");
        };
        let mut critical = item(
            "find /srv/media -name '*.tmp' -mtime +30 -print0 | xargs -0 rm -f && docker compose -f /srv/media/docker-compose.yml restart jellyfin",
        );
        critical.action.risk = Some(Risk::new(91).expect("r"));
        critical.action.preview = Some(typed(json!({
            "kind": "git",
            "summary": ["30 files removed"],
            "diff": "would remove:\n".to_owned() + &"D /srv/media/cache/file.tmp\n".repeat(30),
            "duration_ms": 40
        })));
        critical.story = Story::of(&critical.action, None);
        let mut low = item("df -h");
        low.action.risk = Some(Risk::new(12).expect("r"));
        low.needed = 1;
        low.approvers = vec![];
        low.action.preview = None;
        low.action.plan = None;
        low.action.reasons = vec!["not on the allow list for this host".into()];
        low.story = Story::of(&low.action, None);
        let queue = QueuePage {
            chrome: chrome(Section::Queue),
            items: vec![critical, item("systemctl restart nginx"), low],
            can_decide: true,
            now_unix: NOW,
            total_pending: 3,
            more: false,
        };
        write("queue", render(&queue));
        write(
            "queue-viewer",
            render(&QueuePage {
                can_decide: false,
                ..queue
            }),
        );
        write(
            "queue-empty",
            render(&QueuePage {
                chrome: chrome(Section::Queue),
                items: vec![],
                can_decide: true,
                now_unix: NOW,
                total_pending: 0,
                more: false,
            }),
        );
        let mut done = action_page(
            ActionState::Succeeded,
            "rm -rf /srv/app/cache && systemctl restart app",
        );
        done.run = Some(run());
        done.snapshot = Some(SnapshotRecord {
            action_id: done.action.id,
            host: "nas".into(),
            taken_at: "2025-11-23T01:52:59Z".into(),
            manifest: json!({"git": [{"repo": "/srv/app", "head": "abc123", "stash": "def456"}]}),
            after: Some(json!({"git": []})),
            pruned_at: None,
        });
        done.can_roll_back = true;
        done.rollback_note = Some("Puts /srv/app back to abc123 and the stash def456.".into());
        done.plan = vec!["git: /srv/app (HEAD + working tree)".into()];
        write("action", render(&done));
        write(
            "action-running",
            render(&action_page(ActionState::Running, "apt-get upgrade -y")),
        );
        let mut pending = action_page(ActionState::PendingApproval, "reboot");
        pending.can_decide = true;
        pending.expires_at_unix = Some(NOW + 30);
        pending.approvers = vec!["bob".into()];
        pending.needed = 2;
        write("action-pending", render(&pending));
        write(
            "actions",
            render(&ActionsPage {
                chrome: chrome(Section::Actions),
                actions: ActionState::ALL
                    .iter()
                    .map(|s| action(*s, "journalctl -u nginx --since today | tail -n 200"))
                    .collect(),
                state: String::new(),
                states: ActionState::ALL.to_vec(),
                next_before: Some(ActionId::new().to_string()),
            }),
        );
        let audit = sample_audit();
        write(
            "audit-bad-time",
            render(&AuditPage {
                events: Vec::new(),
                query: AuditQuery {
                    since: "yesterday".into(),
                    ..AuditQuery::default()
                },
                next_offset: None,
                prev_offset: None,
                filter_error: Some(
                    "since: `yesterday` is not a time: use a date (2026-11-23, midnight UTC), a time in UTC (2026-11-23T14:00, 2026-11-23 14:00:00) or RFC 3339 with Z or an offset (2026-11-23T14:00:00Z, 2026-11-23T16:00:00.5+02:00)".into(),
                ),
                bad_fields: vec!["since"],
                ..sample_audit()
            }),
        );
        let trouble = Chrome {
            chain_intact: Some(false),
            chain_problem: Some(
                "It breaks at event #42: event 42 was changed after it was written. One more break follows."
                    .into(),
            ),
            ..chrome(Section::Audit)
        };
        write(
            "audit-broken",
            render(&AuditPage {
                chrome: trouble.clone(),
                ..broken(audit)
            }),
        );
        write("audit", render(&sample_audit()));
        write(
            "hosts",
            render(&HostsPage {
                chrome: chrome(Section::Hosts),
                hosts: sample_hosts(),
                can_check: true,
            }),
        );
        write("policy", render(&sample_policy(chrome(Section::Policy))));
        write(
            "queue-unheard",
            render(&ErrorPage {
                chrome: Chrome {
                    unnotified: true,
                    section: Section::Queue,
                    ..trouble
                },
                status: 409,
                heading: "Already decided".into(),
                message: "This action can no longer be approved: it was approved already. Nothing was done. It was approved by alice 2 min ago.".into(),
                back: Some("/actions".into()),
            }),
        );
        let mut login_chrome = chrome(Section::Login);
        login_chrome.user = None;
        write(
            "login",
            render(&LoginPage {
                chrome: login_chrome.clone(),
                error: Some("Wrong user name or password.".into()),
                no_users: true,
                next: "/".into(),
                username: "alice".into(),
            }),
        );
        write(
            "error",
            render(&ErrorPage {
                chrome: chrome(Section::Actions),
                status: 404,
                heading: "Nothing here".into(),
                message: "Nothing has the id 1234.".into(),
                back: Some("/actions".into()),
            }),
        );
    }

    fn template_files() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut out = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("templates dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let text = std::fs::read_to_string(&path).expect("template text");
                    out.push((path.display().to_string(), text));
                }
            }
        }
        assert!(out.len() >= 10, "templates not found");
        out
    }

    #[test]
    fn the_handler_scan_works() {
        assert!(has_inline_handler("<a onclick=\"x\">"));
        assert!(has_inline_handler("<body\nonload=x>"));
        assert!(!has_inline_handler("<p>go on= and on</p>"));
        assert!(!has_inline_handler("<a data-on=\"x\">"));
    }

    #[test]
    fn templates_are_csp_clean() {
        for (path, text) in template_files() {
            if !path.ends_with(".html") {
                continue;
            }
            let lower = text.to_ascii_lowercase();
            for (i, _) in lower.match_indices("<script") {
                let tag_end = lower[i..].find('>').map_or(lower.len(), |e| i + e);
                assert!(
                    lower[i..tag_end].contains(" src=\"/static/"),
                    "{path}: inline <script>"
                );
                assert!(
                    lower[tag_end..].starts_with("></script>"),
                    "{path}: a <script> with a body"
                );
            }
            assert!(!has_inline_handler(&text), "{path}: inline event handler");
            assert!(!lower.contains("style="), "{path}: style attribute");
            assert!(!lower.contains("<style"), "{path}: <style> block");
            assert!(!lower.contains("javascript:"), "{path}: javascript: URL");
            assert!(
                !text.contains("|safe") && !text.contains("| safe"),
                "{path}: |safe"
            );
            assert!(
                !lower.contains("http://") && !lower.contains("https://"),
                "{path}: external resource"
            );
        }
    }

    #[test]
    fn rendered_pages_are_csp_clean() {
        let pages = [
            render(&QueuePage {
                chrome: chrome(Section::Queue),
                items: vec![item("ls")],
                can_decide: true,
                now_unix: NOW,
                total_pending: 1,
                more: true,
            }),
            render(&action_page(ActionState::Running, "ls")),
        ];
        for html in pages {
            assert!(!has_inline_handler(&html));
            assert!(!html.contains("style="));
            assert_eq!(html.matches("<script").count(), 1);
        }
    }

    #[test]
    fn the_script_only_uses_safe_dom_sinks() {
        let js = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/static/app.js"),
        )
        .expect("app.js");
        // The one innerHTML: the same-origin, server-escaped queue fragment.
        assert_eq!(js.matches(".innerHTML").count(), 1);
        assert!(js.contains("queue.innerHTML = html;"));
        for banned in [
            "eval(",
            "new Function",
            "document.write",
            "outerHTML",
            "insertAdjacentHTML",
            "http://",
            "https://",
            "setTimeout(\"",
            "setInterval(\"",
        ] {
            assert!(!js.contains(banned), "app.js uses {banned}");
        }
        let css = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/static/app.css"),
        )
        .expect("app.css");
        assert!(
            !css.contains("@import") && !css.contains("url("),
            "app.css loads nothing"
        );
    }
}
