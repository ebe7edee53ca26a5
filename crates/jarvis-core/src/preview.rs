//! What an approver is shown an action would change: a dry run on the
//! host, or the policy's reading when nothing could run in a copy. Stored
//! with the action.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a preview was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PreviewBasis {
    /// The command ran in a private clone of the repository.
    Git,
    /// The command ran against a throwaway copy of the container.
    Docker,
    /// The edit as a diff against the file as it is.
    Edit,
    /// Nothing could run in a copy: the policy's reading of the command.
    Plan,
}

impl PreviewBasis {
    /// Its stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewBasis::Git => "git",
            PreviewBasis::Docker => "docker",
            PreviewBasis::Edit => "edit",
            PreviewBasis::Plan => "plan",
        }
    }
}

impl std::fmt::Display for PreviewBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewReport {
    /// What it was made from.
    pub kind: PreviewBasis,
    /// One line per notable change (`HEAD a1b2c3d → d4e5f6a`, `branch
    /// main → other`, `3 files changed`), for the approval list.
    pub summary: Vec<String>,
    /// The change itself: `git diff --stat` and the diff, `docker diff`,
    /// or the edit's unified diff.
    pub diff: String,
    /// The command's output in the clone (stdout then stderr).
    #[serde(default)]
    pub output: String,
    /// Its exit code there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Whether diff or output were cut at the cap.
    #[serde(default)]
    pub truncated: bool,
    /// How long the preview took on the host.
    pub duration_ms: u64,
}

impl PreviewReport {
    /// A preview made from `kind` that found nothing yet.
    pub fn of(kind: PreviewBasis) -> PreviewReport {
        PreviewReport {
            kind,
            summary: Vec::new(),
            diff: String::new(),
            output: String::new(),
            exit_code: None,
            truncated: false,
            duration_ms: 0,
        }
    }
}
