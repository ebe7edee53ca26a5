//! The guard's error: what failed in a snapshot, rollback, preview or file
//! edit, by the thing that failed.
//!
//! Each variant carries the finished sentence the guard has always written
//! to its log and sent to the gateway, and `Display` gives exactly that
//! sentence: the gateway and its tests read these words, so the type only
//! adds a name for the failing thing, never new wording. Code that must
//! tell one failure from another matches a variant, never the text.

use std::path::PathBuf;

/// What went wrong in the guard's own work on the host.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// A host program (git, docker) could not be started, ran out of time
    /// or exited with a failure.
    #[error("{0}")]
    Tool(String),
    /// The directory is in no git repository at all, which a snapshot
    /// takes as "not a repository's files" rather than as a failure.
    #[error("`{}` is not inside a git repository{}", .dir.display(), in_parens(.said.as_deref()))]
    NotInRepository {
        /// The directory asked about.
        dir: PathBuf,
        /// What git said, when it said more than that.
        said: Option<String>,
    },
    /// A git repository could not be opened, read, snapshotted or put back.
    #[error("{0}")]
    Repository(String),
    /// A preview's command line cannot be rewritten to run in the clone.
    #[error("{0}")]
    Replay(String),
    /// The Docker engine could not be reached, answered nonsense, or
    /// refused what was asked.
    #[error("{0}")]
    Engine(String),
    /// A container could not be listed, captured, committed, recreated,
    /// removed or previewed.
    #[error("{0}")]
    Container(String),
    /// A volume could not be captured, archived, restored or removed.
    #[error("{0}")]
    Volume(String),
    /// A file could not be read, edited, copied or put back.
    #[error("{0}")]
    File(String),
    /// The host policy could not be loaded, or denies or cannot read a
    /// command.
    #[error("{0}")]
    Policy(String),
    /// The request names something the guard must not act on: a malformed
    /// action id or name, or a snapshot that holds nothing to restore.
    #[error("{0}")]
    Request(String),
    /// The guard's own footing on the host: its state directory, a private
    /// temporary directory, the system's randomness.
    #[error("{0}")]
    Host(String),
}

fn in_parens(said: Option<&str>) -> String {
    said.map(|s| format!(" ({s})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_in_repository_reads_as_before() {
        let bare = GuardError::NotInRepository {
            dir: "/srv/x".into(),
            said: None,
        };
        assert_eq!(bare.to_string(), "`/srv/x` is not inside a git repository");
        let said = GuardError::NotInRepository {
            dir: "/srv/x".into(),
            said: Some("fatal: dubious ownership".into()),
        };
        assert_eq!(
            said.to_string(),
            "`/srv/x` is not inside a git repository (fatal: dubious ownership)"
        );
    }
}
