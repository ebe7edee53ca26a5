//! One action's page, and the list of every action.

use askama::Template;
use jarvis_core::text::Span;
use jarvis_core::{ActionKind, ActionState};
use jarvis_store::{ActionRecord, AuditEvent, RunRecord, SnapshotRecord};
use serde_json::json;

use super::filters;
use super::layout::{Chrome, Section};
use super::text::{
    actor_words, ago, approvals_text, decision_badge_class, event_line, event_words, output_text,
    pretty_json_text, pretty_value, remaining, risk_class, risk_label, state_class,
    truncation_note, unix_rfc3339, url_encode,
};
use crate::server::story::{Story, reason_spans};

/// `GET /actions/{id}`: everything known about one action.
#[derive(Template)]
#[template(path = "action.html")]
pub struct ActionPage {
    /// The frame.
    pub chrome: Chrome,
    /// The action.
    pub action: ActionRecord,
    /// Who asked, why, what changes and comes back, the deciding reasons.
    pub story: Story,
    /// Its run, once it ended.
    pub run: Option<RunRecord>,
    /// The snapshot taken before it ran.
    pub snapshot: Option<SnapshotRecord>,
    /// Everything the audit knows about it, oldest first.
    pub events: Vec<AuditEvent>,
    /// What the snapshot will capture, one line each.
    pub plan: Vec<String>,
    /// Who approved so far.
    pub approvers: Vec<String>,
    /// How many distinct approvers are needed.
    pub needed: u32,
    /// When its wait ends (Unix seconds): a pending action expires, an
    /// approved one's approval lapses.
    pub expires_at_unix: Option<i64>,
    /// Rollback actions that name this one.
    pub rollbacks: Vec<ActionRecord>,
    /// The snapshot in words, one line per target and what the action did
    /// to it.
    pub snapshot_lines: Vec<String>,
    /// Show approve / deny (pending and the user may decide).
    pub can_decide: bool,
    /// Whether to offer running it now: approved but not started (a limit
    /// refused it, or the server stopped first), and the user may decide.
    pub can_run: bool,
    /// Whether to show the rollback button.
    pub can_roll_back: bool,
    /// Why it cannot be rolled back, or what a rollback will do.
    pub rollback_note: Option<String>,
    /// Now (Unix seconds).
    pub now_unix: i64,
}

impl ActionPage {
    /// Whether the action waits for a person.
    pub fn pending(&self) -> bool {
        self.action.state == ActionState::PendingApproval
    }

    /// The audit sequence number of the last change this page shows: the
    /// live script ignores changes up to it, which arrive late.
    pub fn seen_seq(&self) -> i64 {
        self.events.iter().map(|e| e.seq).max().unwrap_or(0)
    }

    /// Whether output may still arrive live (approved or running, no run
    /// recorded yet): the output blocks are rendered empty for the script.
    pub fn live(&self) -> bool {
        self.run.is_none()
            && matches!(
                self.action.state,
                ActionState::Approved | ActionState::Running
            )
    }

    /// Whether to show the output blocks at all.
    pub fn show_output(&self) -> bool {
        self.run.is_some() || self.live()
    }

    /// The run's stdout as text (lossy UTF-8), empty without a run.
    pub fn stdout_text(&self) -> String {
        self.run
            .as_ref()
            .map(|r| output_text(&r.stdout))
            .unwrap_or_default()
    }

    /// The run's stderr as text (lossy UTF-8), empty without a run.
    pub fn stderr_text(&self) -> String {
        self.run
            .as_ref()
            .map(|r| output_text(&r.stderr))
            .unwrap_or_default()
    }

    /// The countdown text while pending.
    pub fn countdown(&self) -> Option<String> {
        self.expires_at_unix.map(|e| remaining(e, self.now_unix))
    }

    /// The expiry as an RFC 3339 timestamp.
    pub fn expires_iso(&self) -> String {
        self.expires_at_unix.map(unix_rfc3339).unwrap_or_default()
    }

    /// `1 of 2 approvals (alice)` when more than one approval is needed.
    pub fn approvals(&self) -> Option<String> {
        approvals_text(&self.approvers, self.needed)
    }

    /// The edit (for an edit action), pretty-printed.
    pub fn edit_text(&self) -> Option<String> {
        self.action.edit.as_ref().map(|e| pretty_value(&json!(e)))
    }

    /// When it was proposed, relative to now (`5 min ago`).
    pub fn created_ago(&self) -> String {
        ago(&self.action.created_at, self.now_unix)
    }
}

/// `GET /actions`: the list of actions with a state filter.
#[derive(Template)]
#[template(path = "actions.html")]
pub struct ActionsPage {
    /// The frame.
    pub chrome: Chrome,
    /// The actions, newest first.
    pub actions: Vec<ActionRecord>,
    /// The state filter; empty = all.
    pub state: String,
    /// The states to offer in the filter.
    pub states: Vec<ActionState>,
    /// The action id to page on from (`before=`), if there are more.
    pub next_before: Option<String>,
}

impl ActionsPage {
    /// The state filtered on, in words.
    pub fn state_words(&self) -> Option<&'static str> {
        ActionState::from_words(&self.state).map(ActionState::label)
    }

    /// The link to the next (older) page.
    pub fn next_href(&self) -> Option<String> {
        self.next_before.as_ref().map(|b| {
            if self.state.is_empty() {
                format!("/actions?before={}", url_encode(b))
            } else {
                format!(
                    "/actions?state={}&before={}",
                    url_encode(&self.state),
                    url_encode(b)
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use jarvis_core::{ActionKind, ActionState};
    use jarvis_store::SnapshotRecord;
    use serde_json::json;

    #[test]
    fn action_page_finished_with_run_snapshot_and_rollback() {
        let mut page = action_page(ActionState::Succeeded, "rm -rf /srv/app/cache");
        page.run = Some(run());
        page.snapshot = Some(SnapshotRecord {
            action_id: page.action.id,
            host: "nas".into(),
            taken_at: "2025-11-23T01:52:59Z".into(),
            manifest: json!({"git": [{"repo": "/srv/app", "head": "abc123"}]}),
            after: Some(json!({"git": []})),
            pruned_at: None,
        });
        let mut rb = action(ActionState::Succeeded, "rollback");
        rb.kind = ActionKind::Rollback;
        rb.rollback_of = Some(page.action.id);
        page.rollbacks = vec![rb.clone()];
        page.can_roll_back = true;
        page.rollback_note = Some("Restores /srv/app to abc123.".into());
        page.plan = vec!["git: /srv/app".into()];
        page.action.preview = Some(typed(json!({
            "kind": "docker",
            "summary": [],
            "diff": "D /srv/app/cache/a",
            "duration_ms": 9
        })));
        page.story = Story::of(&page.action, None);
        let html = render(&page);
        for s in [
            "<span id=\"state\" class=\"badge state-ok\" data-state=\"succeeded\"".to_owned(),
            ">succeeded</span>".into(),
            "<pre id=\"stdout\" class=\"output\">\nremoved 3 files\n</pre>".into(),
            "<pre id=\"stderr\" class=\"output\">".into(),
            "warning: \u{241b}[33mcareful".into(),
            "Cut at the host&#39;s cap".into(),
            "2.3 s".into(),
            format!(
                "<a class=\"btn btn-warn rollback\" href=\"/actions/{}/rollback\">",
                page.action.id
            ),
            "Restores /srv/app to abc123.".into(),
            format!(
                "<ul class=\"rollbacks\">\n    <li><a href=\"/actions/{}\">",
                rb.id
            ),
            "<ol class=\"timeline\">".into(),
            "action.approved".into(),
            "data-seq=\"8\"".into(),
            "Manifest".into(),
            "&#34;head&#34;: &#34;abc123&#34;".into(),
            "<dt>Snapshot plan</dt><dd class=\"plan\">git: /srv/app</dd>".into(),
            "<span class=\"d-del\">D /srv/app/cache/a</span>".into(),
            "title=\"action.approved\">approved</span>".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert!(!html.contains("data-live"));
        assert!(!html.contains('\x1b'));
        assert!(!html.contains("class=\"approve\""));
        assert_csrf(&html, "CSRF-TOKEN-123");
        assert_eq!(html.matches("<li data-seq=").count(), 2);
    }

    #[test]
    fn action_page_running_is_live() {
        for state in [ActionState::Approved, ActionState::Running] {
            let html = render(&action_page(state, "apt-get upgrade -y"));
            assert!(
                html.contains("<pre id=\"stdout\" class=\"output\" data-live=\"1\">\n</pre>"),
                "{html}"
            );
            assert!(html.contains("<pre id=\"stderr\" class=\"output\" data-live=\"1\">\n</pre>"));
            assert!(html.contains(&format!("data-state=\"{state}\"")));
            // The last change it shows, so the script skips late copies.
            let page = action_page(state, "apt-get upgrade -y");
            let html = render(&page);
            assert!(
                html.contains(&format!("data-id=\"{}\" data-seq=\"8\">", page.action.id)),
                "{html}"
            );
        }
        // Nothing ran, nothing will: no output blocks.
        let html = render(&action_page(ActionState::Rejected, "ls"));
        assert!(!html.contains("id=\"stdout\""));
    }

    #[test]
    fn action_page_pending_has_the_decision() {
        let mut page = action_page(ActionState::PendingApproval, "reboot");
        page.can_decide = true;
        page.expires_at_unix = Some(NOW + 30);
        page.approvers = vec!["bob".into()];
        page.needed = 2;
        let html = render(&page);
        let id = page.action.id;
        for s in [
            format!("action=\"/actions/{id}/approve\""),
            format!("formaction=\"/actions/{id}/deny\""),
            "class=\"btn btn-approve approve\"".into(),
            ">30s left</time>".into(),
            "1 of 2 approvals (bob)".into(),
            ">waiting for approval</span>".into(),
        ] {
            assert!(html.contains(&s), "missing {s}");
        }
        assert_csrf(&html, "CSRF-TOKEN-123");
        page.can_decide = false;
        let viewer = render(&page);
        assert!(!viewer.contains("/approve\""));
        assert!(viewer.contains("cannot approve or deny"));
    }

    #[test]
    fn action_page_approved_but_not_started_offers_a_run_until_it_lapses() {
        let mut page = action_page(ActionState::Approved, "docker restart grafana");
        page.can_run = true;
        page.expires_at_unix = Some(NOW + 30 * 60);
        let html = render(&page);
        let id = page.action.id;
        for s in [
            format!("<form class=\"run stack\" method=\"post\" action=\"/actions/{id}/run\">"),
            "id=\"run-window\"".into(),
            "The approval lapses when this reaches zero: <time class=\"countdown\"".into(),
            "class=\"btn btn-primary run\">Run it now</button>".into(),
            ">30m 00s left</time>".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert!(!html.contains("Decision needed"));
        page.can_run = false;
        assert!(!render(&page).contains("run-window"));
    }

    #[test]
    fn action_page_edit() {
        let mut page = action_page(ActionState::PendingApproval, "edit /etc/app.conf");
        page.action.kind = ActionKind::Edit;
        page.action.edit = Some(typed(json!({
            "path": "/etc/app.conf",
            "change": {"kind": "content", "content": "port=80\u{1b}"}
        })));
        let html = render(&page);
        assert!(html.contains("The edit as sent"));
        assert!(html.contains("\\u001b") || html.contains("\u{241b}"));
        assert!(!html.contains('\x1b'));
    }

    #[test]
    fn actions_page() {
        let a = action(ActionState::Failed, "make deploy");
        let page = ActionsPage {
            chrome: chrome(Section::Actions),
            actions: vec![a.clone(), action(ActionState::Succeeded, "uptime")],
            state: "failed".into(),
            states: ActionState::ALL.to_vec(),
            next_before: Some(a.id.to_string()),
        };
        let html = render(&page);
        for s in [
            format!("href=\"/actions/{}\"", a.id),
            "<option value=\"failed\" selected>failed</option>".into(),
            "name=\"state\"".into(),
            "badge state-bad".into(),
            format!("/actions?state=failed&#38;before={}", a.id),
            "aria-current=\"page\">Actions</a>".into(),
        ] {
            assert!(
                html.contains(&s) || html.contains(&s.replace("&#38;", "&amp;")),
                "missing {s}\n{html}"
            );
        }
        assert_eq!(
            page.next_href(),
            Some(format!("/actions?state=failed&before={}", a.id))
        );
        let empty = render(&ActionsPage {
            chrome: chrome(Section::Actions),
            actions: vec![],
            state: String::new(),
            states: vec![],
            next_before: None,
        });
        assert!(empty.contains("No actions"));
    }
}
