//! How the domain is named to a person.
//!
//! Storage, JSON and the audit log use stable identifiers
//! (`pending_approval`, `token:planner`, `approve`); people read sentences
//! ("waiting for approval", "alice, through her agent token planner",
//! "needs a person"). Every human-facing view — the web pages, the CLI's
//! human output, notifications — takes its words from here, so a state is
//! called the same thing everywhere, and filters a person types accept the
//! words they were shown.

use crate::{ActionState, Behind, Decision, RiskLevel};

impl ActionState {
    /// The state in words, as the web UI and the CLI's human output show it.
    pub fn label(self) -> &'static str {
        match self {
            ActionState::Proposed => "being judged",
            ActionState::Denied => "refused",
            ActionState::PendingApproval => "waiting for approval",
            ActionState::Approved => "approved",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::TimedOut => "timed out",
            ActionState::Interrupted => "interrupted",
            ActionState::RolledBack => "rolled back",
        }
    }

    /// A state from what a person typed in a filter: the stored word
    /// (`pending_approval`), the label (`waiting for approval`), or the
    /// stored word with spaces or dashes (`timed out`, `rolled-back`), in
    /// any case. Short forms people use for the queue (`pending`,
    /// `waiting`) mean waiting for approval.
    pub fn from_words(text: &str) -> Option<ActionState> {
        let norm: String = text
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        if matches!(norm.as_str(), "pending" | "waiting") {
            return Some(ActionState::PendingApproval);
        }
        ActionState::ALL.into_iter().find(|s| {
            s.as_str() == norm
                || s.label()
                    .replace([' ', '-'], "_")
                    .eq_ignore_ascii_case(&norm)
        })
    }
}

impl Decision {
    /// What the decision means for the action, in words: the stored word
    /// `approve` means "a person must approve it", which read on its own
    /// ("policy: approve") sounds like the policy approved it.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Allow => "runs unattended",
            Decision::Approve => "needs a person",
            Decision::Deny => "refused",
        }
    }
}

impl RiskLevel {
    /// The band in words.
    pub fn label(self) -> &'static str {
        match self {
            RiskLevel::Low => "low risk",
            RiskLevel::Medium => "medium risk",
            RiskLevel::High => "high risk",
            RiskLevel::Critical => "critical risk",
        }
    }
}

/// An actor as stored in the audit log (`user:alice`, `local:root`,
/// `token:planner`, `chat:ID`, `planner`), in words. Conversation ids are
/// long and mean nothing to a person: a conversation is "a chat".
pub fn actor(actor: &str) -> String {
    if let Some(name) = actor.strip_prefix("user:") {
        return name.to_owned();
    }
    if let Some(account) = actor.strip_prefix("local:") {
        return format!("{account} (on the gateway)");
    }
    match Behind::of(actor) {
        Some(Behind::Token(name)) => format!("agent token {name}"),
        Some(Behind::Conversation(_)) => "a chat".to_owned(),
        None => match actor {
            "planner" => "the planner".to_owned(),
            "system" => "Jarvis".to_owned(),
            other => other.to_owned(),
        },
    }
}

/// Who asked for an action, in words: the person accountable for it, and
/// how their request reached Jarvis when it was not them directly
/// ("alice, through agent token planner", "alice, in a chat").
pub fn requested_by(requester: &str, accountable: &str) -> String {
    if requester == accountable || crate::person(requester) == crate::person(accountable) {
        return actor(requester);
    }
    let who = actor(accountable);
    match Behind::of(requester) {
        Some(Behind::Conversation(_)) => format!("{who}, in a chat"),
        Some(Behind::Token(name)) => format!("{who}, through agent token {name}"),
        None => format!("{who}, through {}", actor(requester)),
    }
}

/// An audit event's kind (`action.pending_approval`, `snapshot.taken`) in
/// words. Kinds this list does not know read as their parts.
pub fn event(kind: &str) -> String {
    let known = match kind {
        "action.proposed" => "proposed",
        "action.pending_approval" => "waits for approval",
        "action.approval_recorded" => "one approval counted",
        "action.approved" => "approved",
        "action.running" => "started",
        "action.refused" => "refused to start",
        "action.previewed" => "dry run made",
        "action.preview_started" => "dry run started",
        "run.guard_account" => "the host's account of the run",
        "snapshot.taken" => "snapshot taken",
        "snapshot.after" => "state after the run recorded",
        "snapshot.after_failed" => "state after the run not recorded",
        "snapshot.pruned" => "snapshot given up by retention",
        "snapshot.prune_failed" => "snapshot removal failed",
        "snapshot.removed" => "snapshot removed from the host",
        "access.refused" => "access refused",
        "auth.login" => "signed in",
        "auth.logout" => "signed out",
        "conversation.started" => "chat started",
        "conversation.continued" => "chat continued",
        "conversation.message" => "chat message",
        "conversation.ended" => "chat ended",
        "conversation.tool_refused" => "a request of the agent refused",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    if let Some(state) = kind
        .strip_prefix("action.")
        .and_then(|s| s.parse::<ActionState>().ok())
    {
        return state.label().to_owned();
    }
    kind.replace(['.', '_'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_words_that_read_back() {
        for s in ActionState::ALL {
            assert!(!s.label().contains('_'), "{s}: {}", s.label());
            assert_eq!(ActionState::from_words(s.label()), Some(s), "{s}");
            assert_eq!(ActionState::from_words(s.as_str()), Some(s), "{s}");
            assert_eq!(ActionState::from_words(&s.as_str().to_uppercase()), Some(s));
        }
        assert_eq!(
            ActionState::from_words(" Rolled-Back "),
            Some(ActionState::RolledBack)
        );
        assert_eq!(
            ActionState::from_words("pending"),
            Some(ActionState::PendingApproval)
        );
        assert_eq!(ActionState::from_words("finished"), None);
        assert_eq!(ActionState::from_words(""), None);
    }

    #[test]
    fn the_decision_never_reads_as_a_verdict_it_is_not() {
        assert_eq!(Decision::Approve.label(), "needs a person");
        assert!(!Decision::Approve.label().contains("approve"));
    }

    #[test]
    fn events_in_words() {
        assert_eq!(event("action.pending_approval"), "waits for approval");
        assert_eq!(event("action.rolled_back"), "rolled back");
        assert_eq!(event("action.timed_out"), "timed out");
        assert_eq!(event("snapshot.taken"), "snapshot taken");
        assert_eq!(event("token.revoked"), "token revoked");
        for s in ActionState::ALL {
            assert!(!event(&format!("action.{s}")).contains('_'), "{s}");
        }
    }

    #[test]
    fn actors_in_words() {
        assert_eq!(actor("user:alice"), "alice");
        assert_eq!(actor("local:root"), "root (on the gateway)");
        assert_eq!(actor("token:planner"), "agent token planner");
        assert_eq!(actor("chat:01a24b0c-965c-7000-8000-000000000000"), "a chat");
        assert_eq!(actor("planner"), "the planner");
    }

    #[test]
    fn who_asked_names_the_person_first() {
        assert_eq!(requested_by("user:alice", "user:alice"), "alice");
        assert_eq!(
            requested_by("local:alice", "user:alice"),
            "alice (on the gateway)"
        );
        assert_eq!(
            requested_by("token:planner", "user:alice"),
            "alice, through agent token planner"
        );
        assert_eq!(
            requested_by("chat:01a24b0c-965c-7000-8000-000000000000", "user:alice"),
            "alice, in a chat"
        );
        assert_eq!(
            requested_by("chat:01a24b0c-965c-7000-8000-000000000000", "token:bot"),
            "agent token bot, in a chat"
        );
    }
}
