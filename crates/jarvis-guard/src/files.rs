//! File edits, and copies of files outside any repository so an edit can
//! be rolled back.
//!
//! Files are replaced by writing a sibling temporary file and renaming it
//! over the original, so a reader sees the old or the new content, never
//! half of it. Symbolic links are refused: an edit names the file it
//! changes, not a pointer that could lead anywhere.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jarvis_exec::snapshot::{FileChange, FileEdit, FileState, PreviewReport};
use sha2::{Digest, Sha256};

/// The largest file an edit reads or writes.
const MAX_FILE: u64 = 4 << 20;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn checked_path(path: &str) -> Result<&Path, String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("`{path}` is not an absolute path"));
    }
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("`{path}` contains `..`"));
    }
    Ok(p)
}

/// A file's content and permission bits.
type Found = (Vec<u8>, u32);

/// The file's content, or `None` if it does not exist.
fn read(path: &Path) -> Result<Option<Found>, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link; edit the file it points to instead",
            path.display()
        )),
        Ok(m) if !m.is_file() => Err(format!("{} is not a regular file", path.display())),
        Ok(m) if m.len() > MAX_FILE => Err(format!(
            "{} is {} bytes, over the {MAX_FILE}-byte limit for edits",
            path.display(),
            m.len()
        )),
        Ok(m) => fs::read(path)
            .map(|b| Some((b, m.mode() & 0o7777)))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `path` with `bytes` and `mode` atomically.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.jarvis-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

/// The content after an edit, and the content before (empty for a new
/// file).
fn edited(edit: &FileEdit) -> Result<(Option<Found>, String), String> {
    let path = checked_path(&edit.path)?;
    let before = read(path)?;
    let old = match &before {
        Some((bytes, _)) => String::from_utf8(bytes.clone()).map_err(|_| {
            format!(
                "{} is not UTF-8 text; edits change text files only",
                edit.path
            )
        })?,
        None => String::new(),
    };
    let new = match &edit.change {
        FileChange::Content { content } => content.clone(),
        FileChange::Diff { diff } => {
            let patch = diffy::Patch::from_str(diff)
                .map_err(|e| format!("the diff for {} cannot be read: {e}", edit.path))?;
            diffy::apply(&old, &patch).map_err(|e| {
                format!("the diff does not apply to {} as it is now: {e}", edit.path)
            })?
        }
    };
    Ok((before, new))
}

/// A unified diff from `old` to `new`, labelled with the path.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    let mut options = diffy::DiffOptions::new();
    options
        .set_original_filename(format!("a{path}"))
        .set_modified_filename(format!("b{path}"));
    options.create_patch(old, new).to_string()
}

/// Applies an edit; returns the diff of what changed.
pub fn apply(edit: &FileEdit) -> Result<String, String> {
    let (before, new) = edited(edit)?;
    let path = checked_path(&edit.path)?;
    let (old, mode) = match &before {
        Some((bytes, mode)) => (String::from_utf8_lossy(bytes).into_owned(), *mode),
        None => (String::new(), 0o644),
    };
    write(path, new.as_bytes(), mode)?;
    Ok(unified(&edit.path, &old, &new))
}

/// The edit as a diff against the file as it is now; nothing is written.
pub fn preview(edit: &FileEdit, cap: u64) -> Result<PreviewReport, String> {
    let started = Instant::now();
    let (before, new) = edited(edit)?;
    let old = before
        .as_ref()
        .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let mut diff = unified(&edit.path, &old, &new);
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let truncated = diff.len() > cap;
    if truncated {
        let mut end = cap;
        while !diff.is_char_boundary(end) {
            end -= 1;
        }
        diff.truncate(end);
    }
    let summary = match (&before, old == new) {
        (None, _) => vec![format!("creates {} ({} bytes)", edit.path, new.len())],
        (Some(_), true) => vec![format!("no change to {}", edit.path)],
        (Some(_), false) => {
            let (added, removed) = diff.lines().fold((0, 0), |(a, r), l| {
                if l.starts_with('+') && !l.starts_with("+++") {
                    (a + 1, r)
                } else if l.starts_with('-') && !l.starts_with("---") {
                    (a, r + 1)
                } else {
                    (a, r)
                }
            });
            vec![format!(
                "{}: {added} lines added, {removed} removed",
                edit.path
            )]
        }
    };
    Ok(PreviewReport {
        kind: "edit".into(),
        summary,
        diff,
        output: String::new(),
        exit_code: None,
        truncated,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

fn backup_dir(state_dir: &Path, action_id: &str) -> PathBuf {
    state_dir.join("files").join(action_id)
}

/// Captures a file; with `keep`, a copy goes under the guard's state
/// directory.
pub fn capture(
    path: &str,
    action_id: &str,
    keep: bool,
    state_dir: &Path,
) -> Result<FileState, String> {
    let p = checked_path(path)?;
    let found = read(p)?;
    let mut state = FileState {
        path: path.to_owned(),
        exists: found.is_some(),
        sha256: found.as_ref().map(|(b, _)| sha256(b)),
        mode: found.as_ref().map(|(_, m)| *m),
        backup: None,
    };
    if keep && let Some((bytes, _)) = &found {
        let dir = backup_dir(state_dir, action_id);
        fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create backup directory {}: {e}", dir.display()))?;
        // The hash names the copy, so two files of one action never clash.
        let copy = dir.join(state.sha256.as_deref().unwrap_or("copy"));
        write(&copy, bytes, 0o600)?;
        state.backup = Some(copy.display().to_string());
    }
    Ok(state)
}

/// Whether two states of a file are the same.
pub fn matches(a: &FileState, b: &FileState) -> bool {
    a.exists == b.exists && a.sha256 == b.sha256 && a.mode == b.mode
}

/// What differs, in words.
pub fn difference(from: &FileState, to: &FileState) -> String {
    match (from.exists, to.exists) {
        (true, false) => format!("{} was deleted", from.path),
        (false, true) => format!("{} was created", from.path),
        (false, false) => String::new(),
        (true, true) if from.sha256 != to.sha256 => format!("content of {} changed", from.path),
        (true, true) if from.mode != to.mode => format!("permissions of {} changed", from.path),
        _ => String::new(),
    }
}

/// Puts a file back from its copy (or removes it, if it did not exist) and
/// verifies the content hash.
pub fn restore(target: &FileState) -> Result<String, String> {
    let path = checked_path(&target.path)?;
    if !target.exists {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", target.path)),
        }
        return Ok(format!(
            "removed {}, which did not exist before",
            target.path
        ));
    }
    let backup = target
        .backup
        .as_deref()
        .ok_or_else(|| format!("no copy of {} was kept", target.path))?;
    let bytes = fs::read(backup)
        .map_err(|e| format!("the copy of {} ({backup}) cannot be read: {e}", target.path))?;
    if Some(sha256(&bytes)) != target.sha256 {
        return Err(format!(
            "the copy of {} ({backup}) was changed since it was taken",
            target.path
        ));
    }
    write(path, &bytes, target.mode.unwrap_or(0o644))?;
    let now = read(path)?;
    if now.as_ref().map(|(b, _)| sha256(b)) != target.sha256 {
        return Err(format!(
            "{} does not hold the restored content",
            target.path
        ));
    }
    Ok(format!(
        "restored {} (sha256 {}); verified",
        target.path,
        target.sha256.as_deref().map(|s| &s[..12]).unwrap_or("")
    ))
}

/// Removes a kept copy.
pub fn drop(state: &FileState) -> Result<Vec<String>, String> {
    let Some(backup) = &state.backup else {
        return Ok(Vec::new());
    };
    match fs::remove_file(backup) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {backup}: {e}")),
    }
    if let Some(dir) = Path::new(backup).parent() {
        let _ = fs::remove_dir(dir);
    }
    Ok(vec![backup.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(path: &Path, change: FileChange) -> FileEdit {
        FileEdit {
            path: path.display().to_string(),
            change,
        }
    }

    #[test]
    fn content_and_diff_edits_apply_and_roll_back_from_a_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let file = dir.path().join("app.conf");
        fs::write(&file, "port = 80\nhost = a\n").expect("write");
        let before = capture(&file.display().to_string(), "0-1", true, &state).expect("capture");
        let diff = apply(&edit(
            &file,
            FileChange::Content {
                content: "port = 8080\nhost = a\n".into(),
            },
        ))
        .expect("apply");
        assert!(diff.contains("-port = 80\n+port = 8080"), "{diff}");
        let patch = unified(
            &file.display().to_string(),
            "port = 8080\nhost = a\n",
            "port = 8080\nhost = b\n",
        );
        apply(&edit(&file, FileChange::Diff { diff: patch })).expect("diff applies");
        assert_eq!(
            fs::read_to_string(&file).ok().as_deref(),
            Some("port = 8080\nhost = b\n")
        );
        restore(&before).expect("restore");
        assert_eq!(
            fs::read_to_string(&file).ok().as_deref(),
            Some("port = 80\nhost = a\n")
        );
        assert!(!drop(&before).expect("drop").is_empty());
    }

    #[test]
    fn a_diff_that_does_not_apply_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, "one\n").expect("write");
        let patch = unified("/f", "two\n", "three\n");
        let err = apply(&edit(&file, FileChange::Diff { diff: patch })).expect_err("must fail");
        assert!(err.contains("does not apply"), "{err}");
        assert_eq!(fs::read_to_string(&file).ok().as_deref(), Some("one\n"));
    }

    #[test]
    fn a_new_file_is_removed_by_a_rollback_and_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("new.conf");
        let before =
            capture(&file.display().to_string(), "0-2", true, dir.path()).expect("capture");
        assert!(!before.exists);
        let p = preview(
            &edit(
                &file,
                FileChange::Content {
                    content: "x\n".into(),
                },
            ),
            1 << 16,
        )
        .expect("preview");
        assert!(p.summary[0].starts_with("creates"), "{p:?}");
        assert!(!file.exists(), "a preview writes nothing");
        apply(&edit(
            &file,
            FileChange::Content {
                content: "x\n".into(),
            },
        ))
        .expect("apply");
        restore(&before).expect("restore");
        assert!(!file.exists());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).expect("symlink");
        let err = apply(&edit(
            &link,
            FileChange::Content {
                content: "x".into(),
            },
        ))
        .expect_err("must fail");
        assert!(err.contains("symbolic link"), "{err}");
    }
}
