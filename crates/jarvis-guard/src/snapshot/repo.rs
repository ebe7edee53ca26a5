//! A git repository as a snapshot target: HEAD, branch, index and working
//! tree, kept as one commit under a ref (see [`crate::git`]).

use jarvis_exec::snapshot::RepoState;

use super::Host;
use super::target::{Capture, SnapshotTarget};
use crate::error::GuardError;
use crate::git;

impl SnapshotTarget for RepoState {
    /// A directory inside the repository.
    type Planned<'p> = &'p str;

    fn capture(dir: &str, cx: &mut Capture<'_>) -> Result<(), GuardError> {
        match git::capture(dir, cx.keep) {
            Ok(state) => cx.add_once(state),
            Err(e @ GuardError::NotInRepository { .. }) => {
                cx.not_captured(format!("{e}; its files are not captured"));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn fingerprint(&self, _: &Host<'_>, _: Option<&str>) -> Result<RepoState, GuardError> {
        git::capture(&self.path, None)
    }

    fn is_restored(&self, now: &RepoState) -> bool {
        now.same_as(self)
    }

    fn is_as_left(after: &RepoState, now: &RepoState) -> bool {
        now.same_as(after)
    }

    fn describe_change(from: &RepoState, to: &RepoState) -> String {
        git::difference(from, to)
    }

    fn restore(&self, _: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        git::restore(self)
    }

    fn drop_kept(&self) -> Result<Vec<String>, GuardError> {
        git::drop(self)
    }
}
