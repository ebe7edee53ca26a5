//! Private temporary directories for scratch indexes and preview clones.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};

use crate::error::GuardError;

/// A private directory under the system temp dir, removed with all it
/// holds when dropped, errors included.
pub(super) struct Scratch {
    pub(super) path: PathBuf,
}

impl Scratch {
    pub(super) fn new(prefix: &str) -> Result<Scratch, GuardError> {
        let base = std::env::temp_dir();
        let mut last = String::new();
        for _ in 0..8 {
            let path = base.join(format!("{prefix}-{}", random_suffix()));
            // `create` fails on anything already there, a planted symbolic
            // link included.
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch { path }),
                Err(e) => last = format!("cannot create {}: {e}", path.display()),
            }
        }
        Err(GuardError::Host(last))
    }

    pub(super) fn utf8(&self) -> Result<&str, GuardError> {
        self.path.to_str().ok_or_else(|| {
            GuardError::Host(format!(
                "temporary directory {} is not UTF-8",
                self.path.display()
            ))
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.path).is_err() {
            // A command in a preview may have taken away its own write
            // permission on directories.
            allow_removal(&self.path);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn allow_removal(dir: &Path) {
    let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            allow_removal(&entry.path());
        }
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    if OsRng.try_fill_bytes(&mut bytes).is_err() {
        // Unpredictability only guards against squatting on the name;
        // `create` is what keeps the directory private.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = (u64::from(nanos) ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    hex::encode(bytes)
}
