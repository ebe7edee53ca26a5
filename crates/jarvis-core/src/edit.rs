//! A file edit an action proposes: the path and the change. Stored with
//! the action and sent to the host's guard as it is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A file edit: a path and either its new content or a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileEdit {
    /// Absolute path on the host.
    pub path: String,
    /// The change.
    pub change: FileChange,
}

/// What an edit does to its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FileChange {
    /// Replace (or create) the file with this content.
    Content {
        /// The new content.
        content: String,
    },
    /// Apply this unified diff; it must apply exactly.
    Diff {
        /// The diff.
        diff: String,
    },
}
