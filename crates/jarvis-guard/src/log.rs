//! The guard's own log: one JSON line per request, on the host, where the
//! gateway cannot rewrite it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// An open log file; lines are appended with one `write` each so that
/// concurrent guards never interleave inside a line.
pub struct GuardLog {
    file: File,
}

impl GuardLog {
    pub fn open(path: &Path) -> std::io::Result<GuardLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(GuardLog { file })
    }

    /// Writes `entry` with the time, the peer and the guard's pid added,
    /// and waits until it is on disk.
    pub fn write(&mut self, entry: Value) -> std::io::Result<()> {
        self.append(entry)?;
        self.file.sync_data()
    }

    /// Writes `entry` as [`GuardLog::write`] does, without waiting for the
    /// disk: readers of the log see it at once, and it survives the guard,
    /// but not a crash of the host in the seconds before the filesystem
    /// commits it.
    pub fn append(&mut self, mut entry: Value) -> std::io::Result<()> {
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        entry["at"] = json!(at);
        entry["pid"] = json!(std::process::id());
        if let Ok(peer) = std::env::var("SSH_CLIENT") {
            entry["peer"] = json!(peer);
        }
        let mut line = serde_json::to_vec(&entry).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line)
    }
}
