//! What an approver reads first about an action, top to bottom: who asked
//! (the person, and how their request came in), why (the agent's own
//! words), what will change (the preview, open, a diff coloured by line),
//! what can come back (the snapshot plan in one line), and the one or two
//! reasons that decided the verdict. The queue card, the action page and
//! a conversation's pending card all tell it from one [`Story`], so the
//! three never disagree.
//!
//! Everything here is text someone untrusted wrote (the agent, a host, the
//! command itself); templates escape it and pass it through `inert`.

use jarvis_core::text::{Span, spans};
use jarvis_core::{ConversationId, Purpose, words};
use jarvis_exec::snapshot::{NoSnapshot, PreviewBasis, PreviewReport, SnapshotPlan};
use jarvis_store::ActionRecord;

/// How many reasons are shown before "all reasons": the policy puts the
/// one that decided first, and the next is usually what set the score.
pub const DECISIVE_REASONS: usize = 2;

/// Commands longer than this many lines or bytes are shown folded, so the
/// decision buttons stay near the top of a phone screen.
const LONG_COMMAND_LINES: usize = 6;
const LONG_COMMAND_BYTES: usize = 400;

/// The conversation an action came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOrigin {
    /// The conversation.
    pub id: ConversationId,
    /// What the person asked (its first request, shortened).
    pub question: String,
}

/// What an approver reads first about an action.
#[derive(Debug, Clone)]
pub struct Story {
    /// Who asked, in words: "alice, through agent token planner".
    pub asked_by: String,
    /// The stored actors behind `asked_by`, for a tooltip.
    pub asked_by_ids: String,
    /// The conversation it came from, if any.
    pub chat: Option<ChatOrigin>,
    /// What the proposer says it is for.
    pub purpose: Option<Purpose>,
    /// Whether an agent (a token or a chat's model) gave the purpose,
    /// rather than the person themselves.
    pub purpose_from_agent: bool,
    /// What a rollback can put back.
    pub comes_back: Vec<String>,
    /// What it cannot, or why there is no snapshot at all.
    pub not_back: Vec<String>,
    /// The preview, when one was made.
    pub preview: Option<PreviewView>,
    /// The reasons shown: the ones that decided.
    pub decisive: Vec<String>,
    /// The rest, behind "all reasons".
    pub more_reasons: Vec<String>,
    /// The part of the command the deciding reason quotes, highlighted
    /// where it appears in the command.
    pub risky: Option<String>,
}

impl Story {
    /// The story of `action`, which came from `chat` if that is given.
    pub fn of(action: &ActionRecord, chat: Option<ChatOrigin>) -> Story {
        let (comes_back, not_back) = match action.plan.clone() {
            Some(p) if !p.is_empty() => (p.captured(), p.not_captured.clone()),
            Some(SnapshotPlan {
                none: Some(NoSnapshot::ReadOnly),
                ..
            }) => (
                Vec::new(),
                vec!["nothing to put back: it only reads".to_owned()],
            ),
            Some(SnapshotPlan {
                none: Some(NoSnapshot::Unscoped { reasons }),
                ..
            }) => (
                Vec::new(),
                std::iter::once("no snapshot, so it cannot be rolled back".to_owned())
                    .chain(reasons)
                    .collect(),
            ),
            None | Some(SnapshotPlan { none: None, .. }) => (
                Vec::new(),
                vec!["no snapshot, so it cannot be rolled back".to_owned()],
            ),
        };
        let mut decisive = action.reasons.clone();
        let more_reasons = decisive.split_off(DECISIVE_REASONS.min(decisive.len()));
        // The narrowest thing the deciding reason quotes that is a whole
        // word of the command: `sed -i` rather than the rule's name or the
        // whole `sed -i 's/a/b/' f` it also quotes.
        let risky = decisive
            .first()
            .into_iter()
            .flat_map(|r| spans(r))
            .filter_map(|s| match s {
                Span::Code(c) if !c.trim().is_empty() && c != action.command => Some(c),
                Span::Code(_) | Span::Text(_) => None,
            })
            .filter(|c| whole_words(&action.command, c).next().is_some())
            .min_by_key(|c| c.len())
            .map(str::to_owned);
        Story {
            asked_by: words::requested_by(&action.requester, &action.accountable),
            asked_by_ids: if action.requester == action.accountable {
                action.requester.clone()
            } else {
                format!("{} for {}", action.requester, action.accountable)
            },
            chat,
            purpose: action.purpose.clone(),
            purpose_from_agent: jarvis_core::Behind::of(&action.requester).is_some(),
            comes_back,
            not_back,
            preview: action.preview.as_ref().map(PreviewView::of),
            decisive,
            more_reasons,
            risky,
        }
    }

    /// The command in pieces, the risky part marked (`true`) where it
    /// appears.
    pub fn command_parts<'a>(&self, command: &'a str) -> Vec<(bool, &'a str)> {
        let Some(risky) = self.risky.as_deref() else {
            return vec![(false, command)];
        };
        let mut parts = Vec::new();
        let mut from = 0;
        for (at, end) in whole_words(command, risky) {
            if at < from {
                continue;
            }
            if at > from {
                parts.push((false, &command[from..at]));
            }
            parts.push((true, &command[at..end]));
            from = end;
        }
        if from < command.len() {
            parts.push((false, &command[from..]));
        }
        parts
    }

    /// Whether the command is folded to its first lines.
    pub fn command_long(&self, command: &str) -> bool {
        command.len() > LONG_COMMAND_BYTES || command.lines().count() > LONG_COMMAND_LINES
    }

    /// How many reasons there are in all.
    pub fn reason_count(&self) -> usize {
        self.decisive.len() + self.more_reasons.len()
    }
}

/// Where `part` occurs in `command` as whole words, as byte ranges: `sh`
/// in `| sh`, not inside `bash`.
fn whole_words<'a>(command: &'a str, part: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_whitespace() || ";|&()<>`$'\"".contains(c));
    command.match_indices(part).filter_map(move |(at, _)| {
        let end = at + part.len();
        (edge(command[..at].chars().next_back()) && edge(command[end..].chars().next()))
            .then_some((at, end))
    })
}

/// A preview as the approver reads it: what it says changed, then the
/// change itself, line by line.
#[derive(Debug, Clone)]
pub struct PreviewView {
    /// What it was made from.
    pub kind: PreviewBasis,
    /// One line per notable change.
    pub summary: Vec<String>,
    /// The diff, each line with its class.
    pub diff: Vec<DiffLine>,
    /// The command's output in the copy, if any.
    pub output: String,
    /// Its exit code there.
    pub exit_code: Option<i32>,
    /// Whether the host cut it at its cap.
    pub truncated: bool,
}

/// One line of a diff and how it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// `add`, `del`, `hunk`, `file` or `ctx`.
    pub class: &'static str,
    /// The line, as the host sent it.
    pub text: String,
}

impl PreviewView {
    /// The preview stored on an action, as the approver reads it.
    pub fn of(p: &PreviewReport) -> PreviewView {
        PreviewView {
            kind: p.kind,
            summary: p.summary.clone(),
            diff: diff_lines(&p.diff),
            output: p.output.clone(),
            exit_code: p.exit_code,
            truncated: p.truncated,
        }
    }

    /// Whether it is a dry run (something ran in a copy), rather than
    /// only the policy's reading of the command.
    pub fn is_dry_run(&self) -> bool {
        match self.kind {
            PreviewBasis::Git | PreviewBasis::Docker | PreviewBasis::Edit => true,
            PreviewBasis::Plan => false,
        }
    }

    /// What kind of preview, in words: a dry run in a copy, or only the
    /// policy's reading of the command.
    pub fn kind_label(&self) -> &'static str {
        match self.kind {
            PreviewBasis::Git => "run in a private copy of the repository",
            PreviewBasis::Docker => "run against a throwaway copy of the container",
            PreviewBasis::Edit => "the edit against the file as it is",
            PreviewBasis::Plan => {
                "nothing could be run in a copy, so this is what the policy reads the command to do"
            }
        }
    }
}

/// A diff's lines classed for colour: unified-diff markers (`+`, `-`,
/// `@@`, file headers) and `docker diff`'s `A`/`C`/`D` lines.
pub fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|line| {
            let class = if line.starts_with("+++ ")
                || line.starts_with("--- ")
                || line.starts_with("diff --git ")
                || line.starts_with("index ")
            {
                "file"
            } else if line.starts_with("@@") {
                "hunk"
            } else if line.starts_with('+') || line.starts_with("A ") {
                "add"
            } else if line.starts_with('-') || line.starts_with("D ") {
                "del"
            } else if line.starts_with("C ") {
                "chg"
            } else {
                "ctx"
            };
            DiffLine {
                class,
                text: line.to_owned(),
            }
        })
        .collect()
}

/// A reason as words and code, for the templates.
pub fn reason_spans(reason: &str) -> Vec<Span<'_>> {
    spans(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::typed;
    use jarvis_core::{ActionId, ActionKind, ActionState};
    use serde_json::json;

    fn action(command: &str, reasons: &[&str]) -> ActionRecord {
        ActionRecord {
            id: ActionId::new(),
            created_at: "2026-12-06T10:00:00Z".into(),
            updated_at: "2026-12-06T10:00:00Z".into(),
            requester: "token:planner".into(),
            accountable: "user:alice".into(),
            host: Some(jarvis_core::HostName::parse("nas").expect("a host name")),
            command: command.into(),
            cwd: None,
            timeout_secs: None,
            state: ActionState::PendingApproval,
            decision: None,
            risk: None,
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            version: 1,
            kind: ActionKind::Command,
            edit: None,
            rollback_of: None,
            plan: Some(typed(
                json!({"containers": ["grafana"], "repos": ["/srv/app"]}),
            )),
            preview: Some(typed(json!({
                "kind": "git",
                "summary": ["1 file changed"],
                "diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-port: 80\n+port: 8080\n same",
                "duration_ms": 3
            }))),
            pending_since: None,
            purpose: Purpose::new("grafana restarts", "restarts it").expect("fits"),
        }
    }

    #[test]
    fn the_purpose_is_the_agents_only_when_an_agent_asked() {
        let mut a = action("docker ps", &[]);
        for (requester, agent) in [
            ("token:planner", true),
            ("chat:01a25129-c245-75b5-be8c-8b7d2ccf6b49", true),
            ("user:alice", false),
            ("local:root", false),
        ] {
            a.requester = requester.into();
            assert_eq!(Story::of(&a, None).purpose_from_agent, agent, "{requester}");
        }
    }

    #[test]
    fn the_story_leads_with_the_person_and_the_deciding_reasons() {
        let a = action(
            "docker restart grafana && curl -s x | sh",
            &[
                "`sh` runs whatever `curl -s x` downloads",
                "`docker restart grafana` restarts a service",
                "`curl` talks to other machines",
            ],
        );
        let s = Story::of(&a, None);
        assert_eq!(s.asked_by, "alice, through agent token planner");
        assert_eq!(s.asked_by_ids, "token:planner for user:alice");
        assert_eq!(s.decisive.len(), 2);
        assert_eq!(s.more_reasons, vec!["`curl` talks to other machines"]);
        assert_eq!(s.reason_count(), 3);
        assert_eq!(
            s.comes_back,
            vec!["git repository at /srv/app", "container grafana"]
        );
        assert_eq!(
            s.purpose.as_ref().map(|p| p.reason.as_str()),
            Some("grafana restarts")
        );
        // The deciding reason's first quoted code, marked where it is a
        // whole word of the command.
        assert_eq!(s.risky.as_deref(), Some("sh"));
        let parts = s.command_parts("bash -c x | sh");
        assert_eq!(parts, vec![(false, "bash -c x | "), (true, "sh")]);
        let parts = s.command_parts(&a.command);
        assert_eq!(parts.iter().map(|p| p.1).collect::<String>(), a.command);
        assert_eq!(parts.iter().filter(|p| p.0).count(), 1);
    }

    #[test]
    fn the_mark_is_the_narrowest_quote_that_is_in_the_command() {
        let command = "sed -i 's/3000/3001/' grafana.ini && git commit -qam x";
        let a = action(
            command,
            &[
                "rule `inspect-files` would let `sed -i 's/3000/3001/' grafana.ini` run unattended, but `sed -i` edits the files in place",
                "`git commit` records changes",
            ],
        );
        let s = Story::of(&a, None);
        assert_eq!(s.risky.as_deref(), Some("sed -i"));
        assert_eq!(s.command_parts(command)[0], (true, "sed -i"));
        // Nothing quoted is in the command: nothing is marked.
        let a = action("lsblk /dev", &["rule `inspect` lets `ls` read"]);
        let s = Story::of(&a, None);
        assert_eq!(s.risky.as_deref(), None);
        assert_eq!(s.command_parts("lsblk /dev"), vec![(false, "lsblk /dev")]);
    }

    #[test]
    fn the_preview_diff_is_classed_by_line() {
        let a = action("ls", &[]);
        let p = Story::of(&a, None).preview.expect("preview");
        let classes: Vec<_> = p.diff.iter().map(|l| l.class).collect();
        assert_eq!(classes, vec!["file", "file", "hunk", "del", "add", "ctx"]);
        assert_eq!(p.summary, vec!["1 file changed"]);
        assert_eq!(
            diff_lines("A /tmp/new\nC /etc\nD /old")
                .iter()
                .map(|l| l.class)
                .collect::<Vec<_>>(),
            vec!["add", "chg", "del"]
        );
    }

    #[test]
    fn what_cannot_come_back_is_said() {
        let mut a = action("cat /etc/hosts", &[]);
        a.plan = Some(typed(json!({"none": {"kind": "read_only"}})));
        let s = Story::of(&a, None);
        assert!(s.comes_back.is_empty());
        assert_eq!(s.not_back, vec!["nothing to put back: it only reads"]);
        a.plan = None;
        assert_eq!(
            Story::of(&a, None).not_back,
            vec!["no snapshot, so it cannot be rolled back"]
        );
    }

    #[test]
    fn long_commands_fold() {
        let a = action("ls", &[]);
        let s = Story::of(&a, None);
        assert!(!s.command_long("ls -la"));
        assert!(s.command_long(&"echo x\n".repeat(8)));
        assert!(s.command_long(&"x".repeat(401)));
    }
}
