//! The tree an index file names itself: the root of its cache-tree
//! (`TREE`) extension.
//!
//! Git keeps that root valid from a commit, checkout or reset until
//! something is staged, and `git write-tree` on such an index only reads it
//! back. Reading it here spares a capture that git process and a full read
//! of the index. Anything this reader does not fully know, or that
//! `write-tree` would treat on its own terms (conflicts, a split or sparse
//! index), answers `None`, and the capture asks git.
//!
//! Layout: `Documentation/gitformat-index.txt` in git's sources.

/// Size of an entry before its object id: ctime, mtime, dev, ino, mode,
/// uid, gid and size, four bytes each but the times' eight.
const STAT: usize = 40;
/// Flags: the stage of an unmerged entry.
const STAGE: u16 = 0x3000;
/// Flags: two more flag bytes follow (index version 3 and up).
const EXTENDED: u16 = 0x4000;

/// The root tree the index at `bytes` names, as hex, when its cache tree
/// covers every entry; `hash_len` is the repository's object id size.
pub(super) fn cached_tree(bytes: &[u8], hash_len: usize) -> Option<String> {
    if bytes.get(..4)? != b"DIRC" {
        return None;
    }
    let version = be32(bytes, 4)?;
    let count = usize::try_from(be32(bytes, 8)?).ok()?;
    // The checksum (all zeros under `index.skipHash`) ends the file.
    let end = bytes.len().checked_sub(hash_len)?;
    let mut at = skip_entries(bytes.get(..end)?, version, count, hash_len)?;
    let mut tree = None;
    while at < end {
        let signature = bytes.get(at..at + 4)?;
        let size = usize::try_from(be32(bytes, at + 4)?).ok()?;
        let body = bytes.get(at + 8..(at + 8).checked_add(size)?)?;
        match signature {
            b"TREE" => tree = Some(body),
            // The entries are not all in this file (split index), or some
            // stand for whole directories (sparse index).
            b"link" | b"sdir" => return None,
            _ => {}
        }
        at += 8 + size;
    }
    if at != end {
        return None;
    }
    root(tree?, count, hash_len)
}

/// Where the extensions start: past `count` entries from offset 12.
fn skip_entries(bytes: &[u8], version: u32, count: usize, hash_len: usize) -> Option<usize> {
    if !(2..=4).contains(&version) {
        return None;
    }
    let mut at: usize = 12;
    // Version 4 writes each path as a cut of the one before plus a suffix.
    let mut previous_path = 0usize;
    for _ in 0..count {
        let start = at;
        let flags_at = start.checked_add(STAT + hash_len)?;
        let flags = u16::from_be_bytes(bytes.get(flags_at..flags_at + 2)?.try_into().ok()?);
        if flags & STAGE != 0 {
            return None;
        }
        at = flags_at + 2;
        if flags & EXTENDED != 0 {
            if version < 3 {
                return None;
            }
            at += 2;
        }
        if version == 4 {
            let (cut, used) = varint(bytes.get(at..)?)?;
            at += used;
            let suffix = nul(bytes, at)?;
            previous_path = previous_path.checked_sub(cut)? + suffix;
            at += suffix + 1;
        } else {
            let path = nul(bytes, at)?;
            // NULs pad the entry to a multiple of eight bytes, at least one.
            at = start + ((at - start + path + 8) & !7);
        }
        if at > bytes.len() {
            return None;
        }
    }
    Some(at)
}

/// The root of a `TREE` extension: an empty path, its entry count, its
/// subtree count and, when the count is not -1 (invalid), its object id.
fn root(tree: &[u8], count: usize, hash_len: usize) -> Option<String> {
    let (&first, rest) = tree.split_first()?;
    if first != 0 {
        return None;
    }
    let line_end = rest.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&rest[..line_end]).ok()?;
    let (entries, _subtrees) = line.split_once(' ')?;
    // "-1" fails here too: the root is invalid.
    let entries: usize = entries.parse().ok()?;
    if entries != count {
        return None;
    }
    let oid = rest.get(line_end + 1..line_end + 1 + hash_len)?;
    Some(hex::encode(oid))
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Length of the NUL-terminated string at `at`, without its NUL.
fn nul(bytes: &[u8], at: usize) -> Option<usize> {
    bytes.get(at..)?.iter().position(|&b| b == 0)
}

/// Git's offset varint (`varint.c`): seven bits a byte, most significant
/// first, each continuation adding one. Returns the value and its length.
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut used = 0;
    let mut byte = *bytes.first()?;
    let mut value = usize::from(byte & 0x7f);
    while byte & 0x80 != 0 {
        used += 1;
        byte = *bytes.get(used)?;
        value = value
            .checked_add(1)?
            .checked_mul(128)?
            .checked_add(usize::from(byte & 0x7f))?;
    }
    Some((value, used + 1))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tempfile::TempDir;

    use super::*;

    use crate::git::tests::sh as git;

    fn read(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(".git/index")).expect("index")
    }

    /// A committed repository with nested directories and long and short
    /// paths (padding and version 4's shared prefixes), in `format`.
    fn repo(format: &str) -> TempDir {
        let tmp = TempDir::new().expect("temp dir");
        git(
            tmp.path(),
            &format!(
                "git init -q -b main --object-format={format} . \
                 && mkdir -p a/b/c d && printf 1 > a/b/c/one && printf 2 > a/b/two \
                 && printf 3 > d/a-rather-longer-name-than-the-others.txt && printf 4 > x \
                 && git add -A && git commit -qm one"
            ),
        );
        tmp
    }

    #[test]
    fn reads_the_root_git_would_write_in_each_index_version() {
        for (format, hash_len) in [("sha1", 20), ("sha256", 32)] {
            let tmp = repo(format);
            let dir = tmp.path();
            for version in [2, 3, 4] {
                git(dir, &format!("git update-index --index-version {version}"));
                if version == 3 {
                    // A skip-worktree entry carries the extended flags.
                    git(dir, "git update-index --skip-worktree x");
                }
                let expected = git(dir, "git write-tree");
                assert_eq!(
                    cached_tree(&read(dir), hash_len).as_deref(),
                    Some(expected.as_str()),
                    "{format}, version {version}"
                );
            }
        }
    }

    #[test]
    fn answers_none_when_git_would_have_to_build_the_tree() {
        let tmp = repo("sha1");
        let dir = tmp.path();
        git(dir, "printf changed > x && git add x");
        assert_eq!(cached_tree(&read(dir), 20), None, "staged since the commit");

        git(dir, "git write-tree");
        assert!(cached_tree(&read(dir), 20).is_some());
        assert_eq!(cached_tree(&read(dir), 32), None, "wrong hash size");

        // Git leaves the root invalid while an entry is only intended.
        git(
            dir,
            "printf 5 > later && git add -N later && git write-tree",
        );
        assert_eq!(cached_tree(&read(dir), 20), None, "intent to add");
        git(dir, "git rm -q --cached later && git write-tree");

        git(
            dir,
            "git config core.splitIndex true && git update-index --split-index",
        );
        assert_eq!(cached_tree(&read(dir), 20), None, "split index");
    }

    #[test]
    fn answers_none_for_conflicts_and_for_what_is_not_an_index() {
        let tmp = repo("sha1");
        let dir = tmp.path();
        git(
            dir,
            "git checkout -qb other && printf o > x && git commit -qam other \
             && git checkout -q main && printf m > x && git commit -qam main \
             && (git merge -q other >/dev/null 2>&1 || true)",
        );
        assert_eq!(cached_tree(&read(dir), 20), None, "unmerged entries");

        git(dir, "git merge --abort && git write-tree");
        let good = read(dir);
        assert!(cached_tree(&good, 20).is_some());
        for cut in [0, 3, 12, 40, good.len() / 2, good.len() - 21] {
            assert_eq!(cached_tree(&good[..cut], 20), None, "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(cached_tree(&bad, 20), None, "signature");
        let mut bad = good.clone();
        bad[11] = bad[11].wrapping_add(1);
        assert_eq!(cached_tree(&bad, 20), None, "entry count");
        assert_eq!(cached_tree(&[0xff; 64], 20), None);
    }

    #[test]
    fn varints_are_git_s() {
        // Values and encodings from git's varint.c.
        assert_eq!(varint(&[0x00]), Some((0, 1)));
        assert_eq!(varint(&[0x7f]), Some((127, 1)));
        assert_eq!(varint(&[0x80, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0x80, 0x7f]), Some((255, 2)));
        assert_eq!(varint(&[0x81, 0x00]), Some((256, 2)));
        assert_eq!(varint(&[0x80]), None);
        assert_eq!(varint(&[0xff; 20]), None);
    }
}
