//! Why the pipeline did not do what was asked: each refusal and failure
//! in words a person can act on, with what the API and the pages need to
//! answer it.

use std::time::Duration;

use jarvis_core::{ActionId, ActionState, ApprovalRefusal, HostName};
use jarvis_exec::ExecError;
use jarvis_policy::LoadError;
use jarvis_store::StoreError;

/// Why the gateway could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The policy files are wrong.
    #[error("policy: {0}")]
    Policy(#[from] LoadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The action names a host that is not configured.
    #[error("no host named `{0}` is configured (see `jarvis hosts list`)")]
    UnknownHost(String),
    /// The action is not in a state that allows this.
    #[error("action {id} is {state}, so it cannot be {wanted}")]
    WrongState {
        /// The action.
        id: ActionId,
        /// Its state.
        state: ActionState,
        /// What was asked.
        wanted: &'static str,
    },
    /// The approval request is older than the approval TTL.
    #[error("action {id} waited longer than {}s for approval and has expired; propose it again", .ttl.as_secs())]
    Expired {
        /// The action.
        id: ActionId,
        /// The TTL.
        ttl: Duration,
    },
    /// The action was approved but did not start within the run window:
    /// what was judged then may no longer hold, so nothing runs on it.
    #[error("action {id} was approved more than {}s ago and never started, so its approval has lapsed; propose it again", .window.as_secs())]
    ApprovalLapsed {
        /// The action.
        id: ActionId,
        /// The run window.
        window: Duration,
    },
    /// Someone other than who started a conversation tried to continue it.
    #[error(
        "conversation {id} was started by {started_by}; only they may continue it, as what it proposes counts as theirs"
    )]
    NotYourConversation {
        /// The conversation.
        id: jarvis_core::ConversationId,
        /// Who started it.
        started_by: String,
    },
    /// A follow-up to a conversation that has not ended yet.
    #[error("conversation {id} is still going; wait for it to end before saying more")]
    ConversationBusy {
        /// The conversation.
        id: jarvis_core::ConversationId,
    },
    /// A chat message with nothing in it.
    #[error("the message is empty: say what Jarvis should look into")]
    EmptyMessage,
    /// A chat message longer than anyone types.
    #[error("the message is too long: {chars} characters, at most {max}")]
    MessageTooLong {
        /// Its length.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The policy, read again just before running, now denies it.
    #[error("action {id} is denied by the policy as it is now: {}", .reasons.join("; "))]
    NowDenied {
        /// The action.
        id: ActionId,
        /// Why.
        reasons: Vec<String>,
    },
    /// The snapshot plan is not what was approved (the host config
    /// changed); the action went back to `pending_approval`.
    #[error(
        "action {id} would now snapshot differently than approved ({now}); it waits for approval again"
    )]
    PlanChanged {
        /// The action.
        id: ActionId,
        /// The plan now, in words.
        now: String,
    },
    /// The action was allowed to run unattended, but its host, under
    /// `enforcement = "required"`, can no longer confine it with the
    /// kernel; the action went back to `pending_approval`.
    #[error(
        "action {id} was allowed to run unattended, but `{host}` can no longer enforce the kernel wall ({level}); under enforcement = \"required\" it waits for a person"
    )]
    KernelUnenforced {
        /// The action.
        id: ActionId,
        /// Its host.
        host: HostName,
        /// What is known of the host's kernel wall, in words.
        level: String,
    },
    /// The snapshot before the run failed; nothing ran and the action stays
    /// approved.
    #[error("action {id} was not run: its snapshot failed: {source}")]
    SnapshotFailed {
        /// The action.
        id: ActionId,
        /// Why.
        source: ExecError,
    },
    /// A snapshot for this action already exists, so an earlier attempt
    /// got as far as taking it; it is not run on top of that.
    #[error(
        "action {id} already has a snapshot from an earlier attempt that did not finish; propose it again"
    )]
    SnapshotExists {
        /// The action.
        id: ActionId,
    },
    /// The working directory holds a character that acts on a screen
    /// instead of showing (a newline, an escape sequence, a bidi
    /// override): a person approving it would not see what it names.
    #[error("the working directory `{shown}` has {what} at byte {at}; give a plain path")]
    BadCwd {
        /// The directory, made inert for showing.
        shown: String,
        /// The first such character's byte offset.
        at: usize,
        /// The character, named (`U+001B`).
        what: String,
    },
    /// The edit is malformed.
    #[error("edit of `{path}`: {message}")]
    BadEdit {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The planner's model cannot be used.
    #[error("the model: {why}")]
    Model {
        /// Why.
        why: String,
    },
    /// The approval does not count under the approval rule.
    #[error("action {id}: {why}")]
    ApprovalRefused {
        /// The action.
        id: ActionId,
        /// Why.
        why: ApprovalRefusal,
    },
    /// The action cannot be rolled back.
    #[error("action {id} cannot be rolled back: {why}")]
    NoRollback {
        /// The action.
        id: ActionId,
        /// Why.
        why: String,
    },
    /// A rollback would put nothing back: the action changed nothing its
    /// snapshot covers, or all of it is back already. No rollback action
    /// is made.
    #[error("nothing to undo for action {id}: {why}")]
    NothingToUndo {
        /// The action.
        id: ActionId,
        /// Why, as a clause about the action ("it changed nothing that
        /// can be put back").
        why: String,
    },
    /// The executor refused before sending anything; the action stays
    /// approved and can be run again later, unless it was refused as it
    /// was proposed ([`Gateway::start_proposed`]): then it is `denied`.
    #[error("action {id} was not sent: {source}")]
    NotSent {
        /// The action.
        id: ActionId,
        /// Why.
        source: ExecError,
    },
}
