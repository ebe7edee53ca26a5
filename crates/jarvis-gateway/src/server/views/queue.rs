//! The approval queue, and its list alone for live refresh.

use askama::Template;
use jarvis_core::text::Span;
use jarvis_store::ActionRecord;

use super::filters;
use super::layout::{Chrome, Section};
use super::text::{
    approvals_text, decision_badge_class, remaining, risk_class, risk_label, unix_rfc3339,
};
use crate::server::story::{Story, reason_spans};

/// One pending action in the queue.
#[derive(Debug, Clone)]
pub struct QueueItem {
    /// The action.
    pub action: ActionRecord,
    /// Who asked, why, what changes and comes back, the deciding reasons.
    pub story: Story,
    /// When it expires (Unix seconds), for the countdown.
    pub expires_at_unix: i64,
    /// Who approved so far (two-person rule).
    pub approvers: Vec<String>,
    /// How many distinct approvers are needed.
    pub needed: u32,
}

impl QueueItem {
    /// The countdown text at `now` (`4m 12s left` or `expired`).
    pub fn countdown(&self, now: &i64) -> String {
        remaining(self.expires_at_unix, *now)
    }

    /// The expiry as an RFC 3339 timestamp (for `<time datetime>`).
    pub fn expires_iso(&self) -> String {
        unix_rfc3339(self.expires_at_unix)
    }

    /// `1 of 2 approvals (alice)` when more than one approval is needed.
    pub fn approvals(&self) -> Option<String> {
        approvals_text(&self.approvers, self.needed)
    }
}

/// `GET /`: the approval queue.
#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePage {
    /// The frame.
    pub chrome: Chrome,
    /// Pending actions, newest first.
    pub items: Vec<QueueItem>,
    /// Whether the user may approve or deny.
    pub can_decide: bool,
    /// Now (Unix seconds), for the countdowns.
    pub now_unix: i64,
    /// How many actions are pending in all.
    pub total_pending: u64,
    /// Whether there are more pending than shown.
    pub more: bool,
}

/// `GET /queue/items`: the list inside `#queue-items`, for live refresh.
/// The same markup as in [`QueuePage`] (both include `_queue_list.html`).
#[derive(Template)]
#[template(path = "queue_items.html")]
pub struct QueueItems {
    /// Pending actions, newest first.
    pub items: Vec<QueueItem>,
    /// Whether the user may approve or deny.
    pub can_decide: bool,
    /// The CSRF token for the forms.
    pub csrf: String,
    /// Now (Unix seconds), for the countdowns.
    pub now_unix: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use crate::server::views::*;

    #[test]
    fn queue_page() {
        let mut c = chrome(Section::Queue);
        c.flash = Some(Flash {
            kind: FlashKind::Success,
            text: "Approved.".into(),
        });
        let mut long = item("rm -rf /srv/app/cache");
        long.needed = 1;
        long.approvers = vec![];
        let page = QueuePage {
            chrome: c,
            items: vec![item("systemctl restart nginx"), long],
            can_decide: true,
            now_unix: NOW,
            total_pending: 2,
            more: false,
        };
        let html = render(&page);
        let id = page.items[0].action.id;
        for s in [
            "id=\"queue-items\"".to_owned(),
            format!("<article class=\"card queue-item edge-risk-high\" data-id=\"{id}\""),
            "class=\"risk-badge risk-high\"".into(),
            "72 · high".into(),
            "<ul class=\"reasons decisive\">".into(),
            "<li>deletes files under /srv/app</li>".into(),
            "class=\"comes-back\"".into(),
            "<span class=\"restorable\">git repository at /srv/app</span>".into(),
            "<div class=\"preview-box preview\">".into(),
            "<ul class=\"preview-summary\">\n    <li>1 file changed</li>".into(),
            "<pre class=\"diff\">".into(),
            "<span class=\"d-add\">+port=8080</span>".into(),
            "<span class=\"d-del\">-port=80</span>".into(),
            "<strong class=\"asked-by\" title=\"agent:planner\">agent:planner</strong>".into(),
            format!("<form class=\"decide\" method=\"post\" action=\"/actions/{id}/approve\">"),
            format!("formaction=\"/actions/{id}/deny\""),
            "class=\"implicit-submit\" disabled hidden".into(),
            "name=\"reason\"".into(),
            "class=\"btn btn-approve approve\"".into(),
            "class=\"btn btn-deny deny\"".into(),
            format!("<time class=\"countdown\" data-expires=\"{}\"", NOW + 252),
            ">4m 12s left</time>".into(),
            "1 of 2 approvals (bob)".into(),
            "class=\"flash success\"".into(),
            "aria-current=\"page\">Queue</a>".into(),
            "<script src=\"/static/app.js\" defer></script>".into(),
            "href=\"/static/app.css\"".into(),
            "chain-dot ok".into(),
            "alice".into(),
            "approver".into(),
            "action=\"/logout\"".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert_eq!(html.matches("<article class=\"card queue-item").count(), 2);
        assert_csrf(&html, "CSRF-TOKEN-123");
        assert!(
            !html.contains("return_to"),
            "the queue's forms go on as before"
        );
        assert!(!html.contains("Nothing waiting for you"));
        assert!(!html.contains("cannot approve or deny"));

        // A viewer: no buttons, a note.
        let viewer = render(&QueuePage {
            can_decide: false,
            ..page
        });
        assert!(!viewer.contains("btn-approve"));
        assert!(!viewer.contains("btn-deny"));
        assert!(viewer.contains("cannot approve or deny"));

        // Empty.
        let empty = render(&QueuePage {
            chrome: chrome(Section::Queue),
            items: vec![],
            can_decide: true,
            now_unix: NOW,
            total_pending: 0,
            more: false,
        });
        assert!(empty.contains("Nothing waiting for you"));
    }

    #[test]
    fn queue_fragment_is_the_same_markup() {
        let items = vec![item("uptime")];
        let page = render(&QueuePage {
            chrome: chrome(Section::Queue),
            items: items.clone(),
            can_decide: true,
            now_unix: NOW,
            total_pending: 1,
            more: false,
        });
        let fragment = render(&QueueItems {
            items,
            can_decide: true,
            csrf: "CSRF-TOKEN-123".into(),
            now_unix: NOW,
        });
        assert!(!fragment.contains("<html") && !fragment.contains("<body"));
        assert!(page.contains(fragment.trim()), "{fragment}");
        assert_csrf(&fragment, "CSRF-TOKEN-123");
        let empty = render(&QueueItems {
            items: vec![],
            can_decide: true,
            csrf: "t".into(),
            now_unix: NOW,
        });
        assert!(empty.contains("Nothing waiting for you"));
    }

    #[test]
    fn nobody_told_is_said_on_the_queue() {
        let unheard = Chrome {
            unnotified: true,
            ..chrome(Section::Queue)
        };
        let page = |chrome: Chrome| {
            render(&ErrorPage {
                chrome,
                status: 404,
                heading: "x".into(),
                message: "y".into(),
                back: None,
            })
        };
        let html = page(unheard.clone());
        for s in [
            "<p id=\"notify-missing\" class=\"notice warn\">Nobody will be told when an action waits",
            "<code>[[notify]]</code>",
            "<code>jarvis.toml</code>",
            "<code>approval_needed</code>",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        // Not on every page, and not when someone is told.
        assert!(
            !page(Chrome {
                section: Section::Hosts,
                ..unheard
            })
            .contains("notify-missing")
        );
        assert!(!page(chrome(Section::Queue)).contains("notify-missing"));
    }
}
