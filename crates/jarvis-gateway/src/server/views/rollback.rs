//! The confirmation before a rollback (the rollback helper's part).

use askama::Template;
use jarvis_core::ActionKind;
use jarvis_store::ActionRecord;

use super::filters;
use super::layout::{Chrome, Section};
use super::text::{asked_by_words, state_class};

/// `GET /actions/{id}/rollback`: what a rollback of the action would put
/// back and what it would not, then Confirm / Cancel; after a rollback of
/// it stopped on later changes, what changed and a second confirmation
/// that forces it. A plain form: it works without JavaScript.
#[derive(Template)]
#[template(path = "rollback.html")]
pub struct RollbackPage {
    /// The frame.
    pub chrome: Chrome,
    /// The action a rollback would undo.
    pub action: ActionRecord,
    /// Its host.
    pub host: String,
    /// When its snapshot was recorded.
    pub taken_at: String,
    /// The targets the action changed (or may have), each with the state
    /// it goes back to.
    pub comes_back: Vec<crate::rollback::TargetBack>,
    /// The targets the action left as they were: a rollback leaves them.
    pub left_alone: Vec<crate::rollback::TargetBack>,
    /// What does not come back.
    pub not_back: Vec<String>,
    /// The action changed nothing a rollback would put back.
    pub nothing_to_undo: bool,
    /// How a rollback is approved, in words.
    pub approval: String,
    /// How a forced one is.
    pub force_approval: String,
    /// The latest rollback of it, when it stopped on later changes.
    pub stopped: Option<crate::rollback::StoppedRollback>,
    /// A rollback of it that waits, is approved or runs: no second one.
    pub in_progress: Option<ActionRecord>,
    /// Whether the viewer may ask for rollbacks.
    pub can_ask: bool,
}

impl RollbackPage {
    /// The kind of action, as the heading names it.
    pub fn kind_words(&self) -> &'static str {
        match self.action.kind {
            ActionKind::Rollback => "rollback",
            ActionKind::Edit => "file edit",
            ActionKind::Command => "command",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use jarvis_core::{ActionKind, ActionState};

    fn rollback_page() -> RollbackPage {
        use crate::rollback::TargetBack;
        let mut original = action(ActionState::Succeeded, "git commit -qam 'port 8080'");
        original.requester = "user:alice".into();
        RollbackPage {
            chrome: chrome(Section::Actions),
            action: original,
            host: "nas".into(),
            taken_at: "2025-11-23T01:52:59Z".into(),
            comes_back: vec![TargetBack {
                subject: "git repository /srv/app".into(),
                back: "git repository /srv/app back to e59951b (branch main), uncommitted files included".into(),
                changed: Some(vec!["HEAD moved from e59951b to 1a2b3c4".into()]),
            }],
            left_alone: vec![TargetBack {
                subject: "container grafana".into(),
                back: "container grafana back to its settings and files of then".into(),
                changed: Some(Vec::new()),
            }],
            not_back: vec!["volume data of grafana is not marked stateful".into()],
            nothing_to_undo: false,
            approval: "It runs as soon as you confirm.".into(),
            force_approval: "It then waits for approval by one approver.".into(),
            stopped: None,
            in_progress: None,
            can_ask: true,
        }
    }

    #[test]
    fn the_rollback_confirmation_lists_what_comes_back_and_asks() {
        let page = rollback_page();
        let html = render(&page);
        let id = page.action.id;
        for s in [
            "<h1>Roll back this command on <span class=\"host\">nas</span>?</h1>".to_owned(),
            "<li>git repository /srv/app back to e59951b (branch main), uncommitted files included <span class=\"what-changed muted\">(this command: HEAD moved from e59951b to 1a2b3c4)</span></li>".into(),
            "so a rollback leaves them: container grafana.".into(),
            "<li>volume data of grafana is not marked stateful</li>".into(),
            format!("<form class=\"rollback confirm stack\" method=\"post\" action=\"/actions/{id}/rollback\">"),
            "<input type=\"hidden\" name=\"csrf\" value=\"CSRF-TOKEN-123\">".into(),
            "<button type=\"submit\" class=\"btn btn-warn rollback confirm\">Roll back</button>".into(),
            format!("<a class=\"btn btn-quiet cancel\" href=\"/actions/{id}\">Cancel</a>"),
            "It runs as soon as you confirm.".into(),
        ] {
            assert!(html.contains(&s), "missing {s}\n{html}");
        }
        assert!(!html.contains("name=\"force\""), "no force before a stop");
        assert_csrf(&html, "CSRF-TOKEN-123");
    }

    #[test]
    fn a_stopped_rollback_shows_what_changed_and_force_on_the_same_page() {
        let mut page = rollback_page();
        let mut rb = action(ActionState::Denied, "rollback x");
        rb.kind = ActionKind::Rollback;
        page.stopped = Some(crate::rollback::StoppedRollback {
            message: "Stopped before changing anything: git repository /srv/app changed since this action ran (HEAD moved from 1a2b3c4 to 9f8e7d6)".into(),
            changed: vec![(
                "git repository /srv/app".into(),
                "HEAD moved from 1a2b3c4 to 9f8e7d6".into(),
            )],
            rollback: rb,
        });
        let html = render(&page);
        for s in [
            "<p class=\"stopped-message\">Stopped before changing anything: git repository /srv/app changed since this action ran (HEAD moved from 1a2b3c4 to 9f8e7d6)</p>",
            "<li><strong>git repository /srv/app</strong>: HEAD moved from 1a2b3c4 to 9f8e7d6</li>",
            "<input type=\"hidden\" name=\"force\" value=\"1\">",
            "overwrites what changed since:</p>",
            "<button type=\"submit\" class=\"btn btn-deny force\">Force the rollback</button>",
            "It then waits for approval by one approver.",
            "Try again without forcing",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert!(!html.contains("rollback confirm stack"), "{html}");
        // A viewer sees what changed but no form.
        page.can_ask = false;
        let html = render(&page);
        assert!(html.contains("stopped-message") && !html.contains("name=\"force\""));
        assert!(html.contains("is recorded as refused"), "{html}");
    }

    #[test]
    fn nothing_to_undo_offers_nothing() {
        let mut page = rollback_page();
        page.nothing_to_undo = true;
        page.left_alone.append(&mut page.comes_back);
        let html = render(&page);
        assert!(
            html.contains("Nothing to undo: it changed nothing that can be put back."),
            "{html}"
        );
        assert!(html.contains("<li>container grafana</li>"), "{html}");
        assert!(!html.contains("<form class=\"rollback"), "{html}");
    }

    #[test]
    fn a_rollback_in_progress_is_linked_not_asked_again() {
        let mut page = rollback_page();
        let mut rb = action(ActionState::PendingApproval, "rollback x");
        rb.kind = ActionKind::Rollback;
        let rb_id = rb.id;
        page.in_progress = Some(rb);
        let html = render(&page);
        assert!(html.contains(&format!(
            "<a class=\"btn\" href=\"/actions/{rb_id}\">See that rollback</a>"
        )));
        assert!(html.contains("is waiting for approval"), "{html}");
        assert!(!html.contains("<form class=\"rollback"), "{html}");
    }
}
