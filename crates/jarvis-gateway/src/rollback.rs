//! Previews for approvers, rollbacks, and snapshot retention: the parts of
//! the pipeline that read or use what snapshots keep.
//!
//! What asking for a rollback returns and how a rollback is recorded are
//! here; each part has its module: the preview an approver sees in
//! `preview`, what a rollback puts back and where its targets stand in
//! `restorable`, asking for one in `request`, running an approved one in
//! `run`, what a person confirms before asking in `offer`, a rollback's
//! report in plain words in `words`, and snapshot retention in `prune`.

mod offer;
mod preview;
mod prune;
mod request;
mod restorable;
mod run;
mod words;

use jarvis_core::{ActionId, ActionKind};
use jarvis_exec::snapshot::RestoreReport;
use jarvis_store::ActionRecord;

pub use offer::{RollbackOffer, StoppedRollback, TargetBack, changed_nothing, comes_back};
pub use preview::preview_text;
pub use words::{describe, outcome_words, stopped_by_changes, stopped_words, target_words};

/// What asking for a rollback did.
#[derive(Debug, Clone)]
pub struct RolledBack {
    /// The rollback action: `succeeded` or `failed` when it ran at once,
    /// `pending_approval` when it waits for approvers, `denied` when it
    /// stopped before changing anything because targets changed since.
    pub rollback: ActionRecord,
    /// The host's report (for a refused one, its check), when the host
    /// was reached.
    pub report: Option<RestoreReport>,
}

/// The command line a rollback is recorded with; the only place that
/// writes it, so [`rollback_forced`] can read it back.
fn rollback_command(original: ActionId, force: bool) -> String {
    format!(
        "rollback {original}{}",
        if force { FORCE_SUFFIX } else { "" }
    )
}

const FORCE_SUFFIX: &str = " --force";

/// Whether a rollback action restores targets changed since its original.
pub fn rollback_forced(rollback: &ActionRecord) -> bool {
    rollback.kind == ActionKind::Rollback && rollback.command.ends_with(FORCE_SUFFIX)
}

/// The clause of [`GatewayError::NothingToUndo`] for an action whose
/// snapshot and recorded after-state are the same.
///
/// [`GatewayError::NothingToUndo`]: crate::pipeline::GatewayError::NothingToUndo
pub const NOTHING_CHANGED: &str = "it changed nothing that can be put back";

/// The clause of [`GatewayError::NothingToUndo`] for an action whose
/// targets are all back as its snapshot found them already.
///
/// [`GatewayError::NothingToUndo`]: crate::pipeline::GatewayError::NothingToUndo
pub const ALREADY_BACK: &str = "everything it changed is already back as the snapshot found it";
