//! The requests the gateway sends the guard for snapshots, rollbacks, file
//! edits, previews and drops, and the reports it gets back.

use jarvis_core::ActionId;
use serde::{Deserialize, Serialize};

use jarvis_core::{FileEdit, SnapshotPlan};

use super::Snapshot;

/// Take a snapshot (or only fingerprints) of a plan's targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// The action it is for; names the ref, the images and the copies.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// What to capture.
    pub plan: SnapshotPlan,
    /// Keep what a rollback needs, or only fingerprint the state.
    pub keep: bool,
    /// The image that archives and restores volumes (it needs `sh` and
    /// `tar`); required when the plan names volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_image: Option<String>,
}

/// Put targets back as a snapshot found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The rollback action; its own snapshot of the current state (taken
    /// first, so the rollback can be undone) is kept under this id.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// The snapshot to restore (kept).
    pub target: Snapshot,
    /// The state right after the original action ran. A target that is in
    /// neither this state nor `target`'s has changed since: the rollback
    /// stops and says what changed, unless `force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Snapshot>,
    /// Restore even over later changes (they stay in the fresh snapshot).
    #[serde(default)]
    pub force: bool,
    /// Only say where each target stands (already restored, due, changed
    /// since): take no snapshot and change nothing. The gateway asks this
    /// before a rollback starts, so a rollback that would stop is refused
    /// before it is recorded as running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_only: bool,
    /// As in [`SnapshotRequest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_image: Option<String>,
}

/// How one target of a rollback went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// It already was as the snapshot found it (a retry after a failure
    /// halfway, or the action did not change it).
    AlreadyRestored,
    /// It was put back and verified.
    Restored,
    /// It changed after the action; left alone.
    Changed,
    /// Putting it back failed; the detail says how far it got.
    Failed,
    /// Not tried, because an earlier target failed or changed.
    Skipped,
    /// As the action left it: a rollback would put it back (a check only).
    Due,
}

/// One target of a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoredTarget {
    /// `repo`, `container`, `volume` or `file`.
    pub kind: String,
    /// Its path or name.
    pub name: String,
    /// How it went.
    pub outcome: TargetOutcome,
    /// What was found, done or compared, in plain words.
    pub detail: String,
}

/// What a rollback did on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    /// The snapshot of the state before the rollback; `None` when it
    /// stopped before changing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Snapshot>,
    /// The state after the rollback (fingerprints), for a rollback of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Snapshot>,
    /// Every target, in order.
    pub targets: Vec<RestoredTarget>,
    /// Whether every target is now as the snapshot found it (for a check
    /// only: already was).
    pub complete: bool,
    /// How long it took on the host.
    pub duration_ms: u64,
}

/// Apply an edit (an approved action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The action.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// The edit.
    pub edit: FileEdit,
}

/// What to preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PreviewKind {
    /// Run the command line in a private clone of the repository at
    /// `repo` (its snapshot state), with the repository's path in the line
    /// and the working directory replaced by the clone's.
    Git {
        /// A directory inside the repository.
        repo: String,
        /// The command line.
        command: String,
        /// Its working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    /// Run `docker ARGV…` against a throwaway, network-less clone of
    /// `container` made from an image of it, with `argv[container_arg]`
    /// (the container's name) replaced by the clone's.
    Docker {
        /// The container.
        container: String,
        /// The docker arguments after `docker`.
        argv: Vec<String>,
        /// Which of them names the container.
        container_arg: usize,
    },
    /// Show the edit as a diff against the file as it is.
    Edit {
        /// The edit.
        edit: FileEdit,
    },
}

/// Make a preview of an action that has not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The action.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// What to preview.
    pub preview: PreviewKind,
    /// Time limit for the command in the clone.
    pub timeout_ms: u64,
    /// Bytes of output and of diff to send back.
    pub output_cap: u64,
}

/// Remove kept snapshots (retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRequest {
    /// The snapshots whose refs, images, archives and copies go.
    pub snapshots: Vec<Snapshot>,
}

/// What a drop removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropReport {
    /// Refs, images and files removed (or already gone).
    pub removed: Vec<String>,
    /// What could not be removed, and why.
    pub errors: Vec<String>,
}
