//! A file as a snapshot target: through git when it lies in a repository,
//! as a copy under the guard's state directory otherwise (see
//! [`crate::files`]).

use std::path::Path;

use jarvis_exec::snapshot::FileState;

use super::Host;
use super::target::{Capture, SnapshotTarget};
use crate::error::GuardError;
use crate::{files, git};

impl SnapshotTarget for FileState {
    /// The file's absolute path.
    type Planned<'p> = &'p str;

    fn capture(path: &str, cx: &mut Capture<'_>) -> Result<(), GuardError> {
        // A file in a repository is captured through git (one ref, verified
        // by tree hash on rollback); a file in none is copied.
        let dir = Path::new(path)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/".into());
        match git::capture(&dir, cx.keep) {
            Ok(state) => cx.add_once(state),
            Err(e)
                if matches!(e, GuardError::NotInRepository { .. }) || !Path::new(&dir).is_dir() =>
            {
                let state = files::capture(path, cx.keep, cx.host.state_dir)?;
                cx.snapshot.push(state);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn fingerprint(&self, host: &Host<'_>, _: Option<&str>) -> Result<FileState, GuardError> {
        files::capture(&self.path, None, host.state_dir)
    }

    fn is_restored(&self, now: &FileState) -> bool {
        now.same_as(self)
    }

    fn is_as_left(after: &FileState, now: &FileState) -> bool {
        now.same_as(after)
    }

    fn describe_change(from: &FileState, to: &FileState) -> String {
        files::difference(from, to)
    }

    fn restore(&self, _: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        files::restore(self)
    }

    fn drop_kept(&self) -> Result<Vec<String>, GuardError> {
        files::drop(self)
    }
}
