//! Domain types of Jarvis and the rules that govern them.
//!
//! This crate owns the vocabulary every other crate speaks: [`Decision`],
//! [`Risk`], [`HostName`], [`ActionId`] and the [`ActionState`] machine with
//! its legal transitions, who may do what ([`Role`], [`Principal`],
//! [`ApprovalRule`]), how untrusted text is shown and shortened ([`text`]),
//! the canonical JSON hashes are taken over ([`canonical_json`]), what an
//! action would change and what its snapshot captures, as stored with it
//! ([`FileEdit`], [`PreviewReport`], [`SnapshotPlan`]), and how the domain
//! is named to a person ([`words`]). Values are parsed, not
//! validated: once a `Risk` or a `HostName` exists it is valid, so callers
//! never re-check it.
//!
//! It must never do IO (no files, no network, no clock beyond what UUID v7
//! generation needs) and never depend on another Jarvis crate: it sits at the
//! bottom of the dependency graph.

mod access;
mod action;
mod canonical;
mod conversation;
mod decision;
pub mod edit;
mod host;
pub mod plan;
pub mod preview;
mod risk;
pub mod text;
pub mod words;

pub use access::{
    ACCOUNTABLE_STEPS, ApprovalProgress, ApprovalRefusal, ApprovalRule, Behind, Principal, Role,
    RollbackApproval, TokenScope, UnknownRole, UnknownRollbackApproval, UnknownScope, person,
};
pub use action::{
    ActionId, ActionIdError, ActionKind, ActionState, IllegalTransition, Purpose, PurposeError,
    UnknownActionKind, UnknownActionState,
};
pub use canonical::canonical_json;
pub use conversation::{
    CHAT_PREFIX, ConversationId, ConversationIdError, ConversationState, UnknownConversationState,
};
pub use decision::{Decision, UnknownDecision};
pub use edit::{FileChange, FileEdit};
pub use host::{HostName, HostNameError};
pub use plan::{ComposeTarget, NoSnapshot, PlanTarget, SnapshotPlan};
pub use preview::{PreviewBasis, PreviewReport};
pub use risk::{Risk, RiskError, RiskLevel, UnknownRiskLevel};
