//! A small real file system that a test fills: a tmpfs mounted for the
//! test (it runs as root, as CI does) and unmounted when dropped, also
//! when the test fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size on a directory of its own.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB on a fresh directory named after `tag`.
    pub fn mount(tag: &str, kib: u64) -> Tmpfs {
        let dir = std::env::temp_dir().join(crate::marker(tag));
        std::fs::create_dir_all(&dir).expect("create the mount point");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("mount runs")
            .success();
        assert!(ok, "mounting a {kib} KiB tmpfs needs root (as CI has)");
        Tmpfs { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a file that takes every byte left (until ENOSPC), and
    /// returns its path; removing it gives the space back.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("create the filler");
        // Big pieces first, then small ones for what is left.
        for size in [64 << 10, 4 << 10, 512] {
            let piece = vec![0u8; size];
            while f.write_all(&piece).and_then(|()| f.flush()).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }

    /// Bytes free on it.
    pub fn free(&self) -> u64 {
        let out = Command::new("stat")
            .args(["-f", "-c", "%a %S"])
            .arg(&self.dir)
            .output()
            .expect("stat runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text
            .split_whitespace()
            .map(|w| w.parse::<u64>().unwrap_or(0));
        words.next().unwrap_or(0) * words.next().unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily if a process still holds a file on it: it goes when that
        // process lets go, and never outlives the test's machine state.
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
