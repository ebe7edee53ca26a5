//! File edits, and copies of files outside any repository so an edit can
//! be rolled back.
//!
//! Files are replaced by writing a temporary file beside them and renaming
//! it over the original, so a reader sees the old or the new content, never
//! half of it.
//!
//! The guard runs as the same user as the agent's commands, so any
//! directory on the way to a file may have become a symbolic link since
//! the edit was judged. A path is therefore walked from `/` one component
//! at a time with `O_NOFOLLOW`, and everything after that (reading, the
//! temporary file, the rename, a removal) happens relative to the directory
//! descriptor the walk ended on. The file changed is the one the judged
//! path names; a link anywhere on the way is refused, and the refusal names
//! the component.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use crate::error::GuardError;
use jarvis_core::ActionId;
use jarvis_exec::snapshot::{FileChange, FileEdit, FileState, PreviewBasis, PreviewReport};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

/// The largest file an edit reads or writes.
const MAX_FILE: u64 = 4 << 20;

/// How many temporary names an edit tries before giving up: a name is
/// taken by anything already there (created exclusively), so a planted
/// file or link only moves the edit on to the next name.
const TEMP_ATTEMPTS: u32 = 16;

/// Directories on the way are opened only to work inside them: `O_PATH`
/// needs search permission alone, and `O_NOFOLLOW` makes a link come back
/// as itself (or fail) rather than lead elsewhere.
const DIR_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn checked_path(path: &str) -> Result<&Path, GuardError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(GuardError::File(format!(
            "`{path}` is not an absolute path"
        )));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(GuardError::File(format!("`{path}` contains `..`")));
    }
    Ok(p)
}

fn os_error(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

/// A directory reached from `/` without following a link, and the last
/// component of the path, which lives in it.
struct Entry {
    dir: OwnedFd,
    name: OsString,
    /// The whole path, for messages.
    shown: String,
}

/// What the walk does with a directory on the way that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Refuse,
    /// Creates it, private to the guard's user (for the guard's own copies).
    Create,
}

/// Opens the directory holding `path`'s last component, one component at a
/// time, refusing links.
fn walk(path: &Path, missing: Missing) -> Result<Entry, GuardError> {
    let shown = path.display().to_string();
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(GuardError::File(format!(
            "`{shown}` is not an absolute path without `..`"
        )));
    }
    let mut names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let name = names
        .pop()
        .ok_or_else(|| GuardError::File(format!("`{shown}` names no file")))?
        .to_owned();
    let mut dir = rustix::fs::openat(rustix::fs::CWD, "/", DIR_FLAGS, Mode::empty())
        .map_err(|e| GuardError::File(format!("cannot open /: {}", os_error(e))))?;
    let mut at = PathBuf::from("/");
    for n in names {
        at.push(n);
        dir = open_dir(&dir, n, &at, &shown, missing)?;
    }
    Ok(Entry { dir, name, shown })
}

/// Opens `name` in `parent` as a directory, never through a link.
fn open_dir(
    parent: &OwnedFd,
    name: &OsStr,
    at: &Path,
    whole: &str,
    missing: Missing,
) -> Result<OwnedFd, GuardError> {
    let mut opened = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty());
    if missing == Missing::Create && opened.as_ref().err() == Some(&Errno::NOENT) {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(e) if e == Errno::EXIST => {}
            Err(e) => {
                return Err(GuardError::File(format!(
                    "cannot create {}: {}",
                    at.display(),
                    os_error(e)
                )));
            }
        }
        opened = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty());
    }
    let linked = || {
        GuardError::File(format!(
            "{} is a symbolic link, so {whole} is not where its path says; an edit follows no link: name the directory the link points to",
            at.display()
        ))
    };
    let not_dir = || {
        GuardError::File(format!(
            "{} (on the way to {whole}) is not a directory",
            at.display()
        ))
    };
    match opened {
        // With O_PATH and O_NOFOLLOW a link may open as itself; what was
        // opened decides, not what the name was a moment ago.
        Ok(fd) => {
            let st = rustix::fs::fstat(&fd).map_err(|e| {
                GuardError::File(format!("cannot read {}: {}", at.display(), os_error(e)))
            })?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Ok(fd),
                FileType::Symlink => Err(linked()),
                _ => Err(not_dir()),
            }
        }
        Err(e) if e == Errno::LOOP || e == Errno::NOTDIR => {
            match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Err(linked()),
                _ => Err(not_dir()),
            }
        }
        Err(e) => Err(GuardError::File(format!(
            "cannot open {}: {}",
            at.display(),
            os_error(e)
        ))),
    }
}

/// A file's content and permission bits.
type Found = (Vec<u8>, u32);

/// The entry's content, or `None` if it does not exist.
fn read(e: &Entry) -> Result<Option<Found>, GuardError> {
    let link = || {
        GuardError::File(format!(
            "{} is a symbolic link; edit the file it points to instead",
            e.shown
        ))
    };
    // Looked at before opening, so a device or FIFO is never opened (an
    // open can have effects of its own); confirmed on the open file below.
    match rustix::fs::statat(&e.dir, &e.name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(err) if err == Errno::NOENT => return Ok(None),
        Err(err) => {
            return Err(GuardError::File(format!(
                "cannot read {}: {}",
                e.shown,
                os_error(err)
            )));
        }
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Symlink => return Err(link()),
            _ => {
                return Err(GuardError::File(format!(
                    "{} is not a regular file",
                    e.shown
                )));
            }
        },
    }
    let flags = OFlags::RDONLY
        .union(OFlags::NOFOLLOW)
        .union(OFlags::NONBLOCK)
        .union(OFlags::NOCTTY)
        .union(OFlags::CLOEXEC);
    let fd = match rustix::fs::openat(&e.dir, &e.name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(err) if err == Errno::NOENT => return Ok(None),
        Err(err) if err == Errno::LOOP => return Err(link()),
        Err(err) => {
            return Err(GuardError::File(format!(
                "cannot read {}: {}",
                e.shown,
                os_error(err)
            )));
        }
    };
    let st = rustix::fs::fstat(&fd)
        .map_err(|err| GuardError::File(format!("cannot read {}: {}", e.shown, os_error(err))))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(GuardError::File(format!(
            "{} is not a regular file",
            e.shown
        )));
    }
    let too_big = |len: u64| {
        GuardError::File(format!(
            "{} is {len} bytes, over the {MAX_FILE}-byte limit for edits",
            e.shown
        ))
    };
    let len = u64::try_from(st.st_size).unwrap_or(0);
    if len > MAX_FILE {
        return Err(too_big(len));
    }
    let mut bytes = Vec::new();
    fs::File::from(fd)
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| GuardError::File(format!("cannot read {}: {err}", e.shown)))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(Some((bytes, st.st_mode & 0o7777)))
}

/// Replaces the entry with `bytes` and `mode` atomically.
fn write(e: &Entry, bytes: &[u8], mode: u32) -> Result<(), GuardError> {
    let (tmp, fd) = temporary(e)?;
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::from(fd);
        f.write_all(bytes)?;
        // Created 0600 so nobody reads it half-written; the mode it keeps
        // is set on the descriptor, where no umask applies.
        rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o7777))?;
        f.sync_all()?;
        rustix::fs::renameat(&e.dir, &tmp, &e.dir, &e.name)?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = rustix::fs::unlinkat(&e.dir, &tmp, AtFlags::empty());
        return Err(GuardError::File(format!("cannot write {}: {err}", e.shown)));
    }
    sync_dir(e)
}

/// A new temporary file in the entry's directory, created exclusively:
/// `O_EXCL` with `O_CREAT` fails on anything already there, a link
/// included, so nothing planted at the name is ever written through.
fn temporary(e: &Entry) -> Result<(String, OwnedFd), GuardError> {
    let flags = OFlags::WRONLY
        .union(OFlags::CREATE)
        .union(OFlags::EXCL)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);
    for attempt in 0..TEMP_ATTEMPTS {
        let name = temp_name(attempt);
        match rustix::fs::openat(&e.dir, &name, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((name, fd)),
            Err(err) if err == Errno::EXIST => continue,
            Err(err) => {
                return Err(GuardError::File(format!(
                    "cannot create a temporary file beside {}: {}",
                    e.shown,
                    os_error(err)
                )));
            }
        }
    }
    Err(GuardError::File(format!(
        "cannot write {}: all {TEMP_ATTEMPTS} temporary names beside it are taken",
        e.shown
    )))
}

fn temp_name(attempt: u32) -> String {
    format!(".jarvis-edit-{}-{attempt}", std::process::id())
}

/// Makes a rename or removal in the entry's directory durable.
fn sync_dir(e: &Entry) -> Result<(), GuardError> {
    let flags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::CLOEXEC);
    match rustix::fs::openat(&e.dir, ".", flags, Mode::empty()) {
        Ok(dir) => rustix::fs::fsync(&dir).map_err(|err| {
            GuardError::File(format!(
                "{} was written but its directory could not be synced: {}",
                e.shown,
                os_error(err)
            ))
        }),
        // A directory the guard may write but not read cannot be opened for
        // fsync; the file itself was synced before the rename.
        Err(err) if err == Errno::ACCESS => Ok(()),
        Err(err) => Err(GuardError::File(format!(
            "{} was written but its directory could not be opened to sync it: {}",
            e.shown,
            os_error(err)
        ))),
    }
}

/// Removes the entry (never what a link there points to); whether it was
/// there.
fn remove(e: &Entry, flags: AtFlags) -> Result<bool, GuardError> {
    match rustix::fs::unlinkat(&e.dir, &e.name, flags) {
        Ok(()) => {}
        Err(err) if err == Errno::NOENT => return Ok(false),
        Err(err) => {
            return Err(GuardError::File(format!(
                "cannot remove {}: {}",
                e.shown,
                os_error(err)
            )));
        }
    }
    sync_dir(e)?;
    Ok(true)
}

/// Where the edit's file is, its content before (`None` for a new file)
/// and the content after the edit.
fn edited(edit: &FileEdit) -> Result<(Entry, Option<Found>, String), GuardError> {
    let entry = walk(checked_path(&edit.path)?, Missing::Refuse)?;
    let before = read(&entry)?;
    let old = match &before {
        Some((bytes, _)) => String::from_utf8(bytes.clone()).map_err(|_| {
            GuardError::File(format!(
                "{} is not UTF-8 text; edits change text files only",
                edit.path
            ))
        })?,
        None => String::new(),
    };
    let new = match &edit.change {
        FileChange::Content { content } => content.clone(),
        FileChange::Diff { diff } => {
            let patch = diffy::Patch::from_str(diff).map_err(|e| {
                GuardError::File(format!("the diff for {} cannot be read: {e}", edit.path))
            })?;
            diffy::apply(&old, &patch).map_err(|e| {
                GuardError::File(format!(
                    "the diff does not apply to {} as it is now: {e}",
                    edit.path
                ))
            })?
        }
    };
    Ok((entry, before, new))
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
pub fn apply(edit: &FileEdit) -> Result<String, GuardError> {
    // Read and written through the one directory descriptor, so the file
    // replaced is the file whose content the diff was applied to.
    let (entry, before, new) = edited(edit)?;
    let (old, mode) = match &before {
        Some((bytes, mode)) => (String::from_utf8_lossy(bytes).into_owned(), *mode),
        None => (String::new(), 0o644),
    };
    write(&entry, new.as_bytes(), mode)?;
    Ok(unified(&edit.path, &old, &new))
}

/// The edit as a diff against the file as it is now; nothing is written.
pub fn preview(edit: &FileEdit, cap: u64) -> Result<PreviewReport, GuardError> {
    let started = Instant::now();
    let (_entry, before, new) = edited(edit)?;
    let old = before
        .as_ref()
        .map(|(b, _)| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let mut diff = unified(&edit.path, &old, &new);
    let truncated =
        jarvis_core::text::cut_bytes(&mut diff, usize::try_from(cap).unwrap_or(usize::MAX));
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
        kind: PreviewBasis::Edit,
        summary,
        diff,
        output: String::new(),
        exit_code: None,
        truncated,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Where copies of an action's files go: under the state directory as it
/// really is (the guard's own configuration names it, links and all), then
/// walked like any edited path.
fn backup_dir(state_dir: &Path, action_id: ActionId) -> Result<PathBuf, GuardError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let state = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .and_then(|()| fs::canonicalize(state_dir))
        .map_err(|e| {
            GuardError::File(format!(
                "cannot find the state directory {}: {e}",
                state_dir.display()
            ))
        })?;
    // An `ActionId` displays as hex digits and dashes only: one path
    // component, never `..` or a `/`.
    Ok(state.join("files").join(action_id.to_string()))
}

/// Captures a file; with `keep` (the action to keep it for), a copy goes
/// under the guard's state directory.
pub fn capture(
    path: &str,
    keep: Option<ActionId>,
    state_dir: &Path,
) -> Result<FileState, GuardError> {
    let found = read(&walk(checked_path(path)?, Missing::Refuse)?)?;
    let mut state = FileState {
        path: path.to_owned(),
        exists: found.is_some(),
        sha256: found.as_ref().map(|(b, _)| sha256(b)),
        mode: found.as_ref().map(|(_, m)| *m),
        backup: None,
    };
    if let Some(action_id) = keep
        && let Some((bytes, _)) = &found
    {
        // The hash names the copy, so two files of one action never clash.
        let copy =
            backup_dir(state_dir, action_id)?.join(state.sha256.as_deref().unwrap_or("copy"));
        let shown = copy.display().to_string();
        write(&walk(checked_path(&shown)?, Missing::Create)?, bytes, 0o600)?;
        state.backup = Some(shown);
    }
    Ok(state)
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
pub fn restore(target: &FileState) -> Result<String, GuardError> {
    let entry = walk(checked_path(&target.path)?, Missing::Refuse)?;
    if !target.exists {
        remove(&entry, AtFlags::empty())?;
        return Ok(format!(
            "removed {}, which did not exist before",
            target.path
        ));
    }
    let backup = target
        .backup
        .as_deref()
        .ok_or_else(|| GuardError::File(format!("no copy of {} was kept", target.path)))?;
    let kept = walk(checked_path(backup)?, Missing::Refuse)
        .and_then(|copy| read(&copy))
        .map_err(|e| {
            GuardError::File(format!("the copy of {} cannot be read: {e}", target.path))
        })?;
    let Some((bytes, _)) = kept else {
        return Err(GuardError::File(format!(
            "the copy of {} ({backup}) is gone",
            target.path
        )));
    };
    if Some(sha256(&bytes)) != target.sha256 {
        return Err(GuardError::File(format!(
            "the copy of {} ({backup}) was changed since it was taken",
            target.path
        )));
    }
    write(&entry, &bytes, target.mode.unwrap_or(0o644))?;
    let now = read(&entry)?;
    if now.as_ref().map(|(b, _)| sha256(b)) != target.sha256 {
        return Err(GuardError::File(format!(
            "{} does not hold the restored content",
            target.path
        )));
    }
    Ok(format!(
        "restored {} (sha256 {}); verified",
        target.path,
        target.sha256.as_deref().map(|s| &s[..12]).unwrap_or("")
    ))
}

/// Removes a kept copy, and its action's directory once empty.
pub fn drop(state: &FileState) -> Result<Vec<String>, GuardError> {
    let Some(backup) = &state.backup else {
        return Ok(Vec::new());
    };
    let copy = checked_path(backup)?;
    match walk(copy, Missing::Refuse) {
        Ok(entry) => {
            remove(&entry, AtFlags::empty())?;
        }
        // The action's directory is already gone with the copy in it.
        Err(_) if !copy.parent().is_some_and(Path::exists) => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = copy.parent()
        && let Ok(entry) = walk(dir, Missing::Refuse)
    {
        // Other copies of the action may still be in it.
        let _ = remove(&entry, AtFlags::REMOVEDIR);
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
        let before =
            capture(&file.display().to_string(), Some(ActionId::new()), &state).expect("capture");
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
        let err = apply(&edit(&file, FileChange::Diff { diff: patch }))
            .expect_err("must fail")
            .to_string();
        assert!(err.contains("does not apply"), "{err}");
        assert_eq!(fs::read_to_string(&file).ok().as_deref(), Some("one\n"));
    }

    #[test]
    fn a_new_file_is_removed_by_a_rollback_and_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("new.conf");
        let before = capture(
            &file.display().to_string(),
            Some(ActionId::new()),
            dir.path(),
        )
        .expect("capture");
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
        .expect_err("must fail")
        .to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    fn content(text: &str) -> FileChange {
        FileChange::Content {
            content: text.into(),
        }
    }

    #[test]
    fn an_edit_through_a_linked_directory_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        fs::write(real.join("app.conf"), b"port = 80\n").expect("write");
        let link = dir.path().join("linked");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");

        let through = link.join("app.conf");
        for change in [
            content("port = 1\n"),
            FileChange::Diff {
                diff: unified(&through.display().to_string(), "port = 80\n", "port = 1\n"),
            },
        ] {
            let err = apply(&edit(&through, change))
                .expect_err("a linked parent is refused")
                .to_string();
            assert!(
                err.starts_with(&format!("{} is a symbolic link", link.display())),
                "the refusal names the linked component: {err}"
            );
        }
        let err = preview(&edit(&through, content("x\n")), 1 << 16)
            .expect_err("preview too")
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        let err = capture(
            &through.display().to_string(),
            Some(ActionId::new()),
            dir.path(),
        )
        .expect_err("capture too")
        .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");

        assert_eq!(
            fs::read(real.join("app.conf")).expect("read"),
            b"port = 80\n"
        );
        let names: Vec<_> = fs::read_dir(&real)
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["app.conf"], "no temporary file was left beside it");
    }

    #[test]
    fn a_link_as_the_last_component_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target.conf");
        fs::write(&target, b"keep\n").expect("write");
        let link = dir.path().join("app.conf");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = apply(&edit(&link, content("changed\n")))
            .expect_err("must fail")
            .to_string();
        assert_eq!(
            err,
            format!(
                "{} is a symbolic link; edit the file it points to instead",
                link.display()
            )
        );
        let before = FileState {
            path: link.display().to_string(),
            exists: false,
            sha256: None,
            mode: None,
            backup: None,
        };
        assert_eq!(fs::read(&target).expect("read"), b"keep\n");
        // A rollback to "did not exist" removes what is at the path, the
        // link, and never the file it points to.
        restore(&before).expect("restore");
        assert!(fs::symlink_metadata(&link).is_err(), "the link is gone");
        assert_eq!(fs::read(&target).expect("read"), b"keep\n");
    }

    #[test]
    fn a_file_planted_at_the_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.conf");
        fs::write(&file, b"port = 80\n").expect("write");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"victim\n").expect("write");
        // The first names the edit would try: a link to another file and a
        // file of someone else's.
        std::os::unix::fs::symlink(&victim, dir.path().join(temp_name(0))).expect("symlink");
        fs::write(dir.path().join(temp_name(1)), b"planted\n").expect("write");

        apply(&edit(&file, content("port = 8080\n"))).expect("the edit uses a free name");
        assert_eq!(fs::read(&file).expect("read"), b"port = 8080\n");
        assert_eq!(fs::read(&victim).expect("read"), b"victim\n");
        assert_eq!(
            fs::read(dir.path().join(temp_name(1))).expect("read"),
            b"planted\n"
        );
        assert!(
            !dir.path().join(temp_name(2)).exists(),
            "the temporary file was renamed over the target"
        );

        for n in 2..TEMP_ATTEMPTS {
            fs::write(dir.path().join(temp_name(n)), b"planted\n").expect("write");
        }
        let err = apply(&edit(&file, content("port = 1\n")))
            .expect_err("every name taken")
            .to_string();
        assert!(err.contains("temporary names beside it are taken"), "{err}");
        assert_eq!(fs::read(&file).expect("read"), b"port = 8080\n");
        assert_eq!(fs::read(&victim).expect("read"), b"victim\n");
    }

    #[test]
    fn an_edit_keeps_the_mode_and_copies_stay_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("run.sh");
        fs::write(&file, b"echo one\n").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o751)).expect("chmod");
        let state = dir.path().join("state");
        fs::create_dir(&state).expect("state dir");
        let before =
            capture(&file.display().to_string(), Some(ActionId::new()), &state).expect("capture");
        apply(&edit(&file, content("echo two\n"))).expect("apply");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&file), 0o751);
        let copy = PathBuf::from(before.backup.clone().expect("a copy"));
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(mode(copy.parent().expect("its directory")), 0o700);
        restore(&before).expect("restore");
        assert_eq!(fs::read(&file).expect("read"), b"echo one\n");
        assert_eq!(mode(&file), 0o751);
        assert_eq!(drop(&before).expect("drop"), [copy.display().to_string()]);
        assert!(
            !copy.parent().expect("dir").exists(),
            "the empty directory went too"
        );
    }

    #[test]
    fn fifos_and_directories_are_not_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        // A FIFO with no writer would block an ordinary open for ever.
        let err = apply(&edit(&fifo, content("x")))
            .expect_err("a FIFO")
            .to_string();
        assert!(err.ends_with("is not a regular file"), "{err}");
        let err = apply(&edit(dir.path(), content("x")))
            .expect_err("a directory")
            .to_string();
        assert!(err.ends_with("is not a regular file"), "{err}");
        let err = apply(&edit(&fifo.join("below"), content("x")))
            .expect_err("below a FIFO")
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }
}
