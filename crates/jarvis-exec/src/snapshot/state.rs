//! The state of each kind of target as the host found it, and how two
//! states of a target compare.

use serde::{Deserialize, Serialize};

/// A git repository: HEAD, branch, index and working tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoState {
    /// The repository's top level.
    pub path: String,
    /// The commit HEAD points at; `None` in a repository with no commits.
    pub head: Option<String>,
    /// The branch HEAD is on (`refs/heads/main`); `None` when detached.
    pub branch: Option<String>,
    /// The tree of the index.
    pub index_tree: String,
    /// The tree of the working tree: tracked and untracked files, not
    /// ignored ones.
    pub worktree_tree: String,
    /// The commit that holds all of it (kept snapshots only): its tree is
    /// the working tree, its parents HEAD and a commit of the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The ref that keeps `commit` (kept snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_ref: Option<String>,
}

/// A container: its settings, its filesystem changes and, when kept, an
/// image of its filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerState {
    /// Its name, without the leading `/`.
    pub name: String,
    /// Whether a container of that name exists.
    pub exists: bool,
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whether it was running.
    #[serde(default)]
    pub running: bool,
    /// SHA-256 over the settings a rollback restores (see the guard).
    #[serde(default)]
    pub fingerprint: String,
    /// SHA-256 over its `docker diff`.
    #[serde(default)]
    pub changes: String,
    /// Named volumes it mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// The image it was created from, as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The snapshot image (kept snapshots only): `jarvis-snapshots:<tag>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_image: Option<String>,
    /// That image's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_image_id: Option<String>,
    /// `docker inspect` of the container (kept snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect: Option<serde_json::Value>,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeState {
    /// Its name.
    pub name: String,
    /// Whether it exists.
    pub exists: bool,
    /// SHA-256 over a listing of its files (path, size, mode, content hash).
    #[serde(default)]
    pub fingerprint: String,
    /// The archive on the host (kept snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// The archive's size.
    #[serde(default)]
    pub bytes: u64,
}

/// A file outside any repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    /// Its absolute path.
    pub path: String,
    /// Whether it existed.
    pub exists: bool,
    /// SHA-256 of its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Its permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// The copy on the host (kept snapshots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// The one comparison of states that rollbacks rest on: the guard asks it
/// whether a target is already restored or changed since the action, and
/// the gateway whether an action changed anything a rollback would put
/// back. Each kind compares what a rollback restores and nothing else, so
/// "the same" means "a rollback from one to the other would change nothing".
impl RepoState {
    /// Whether HEAD, branch, index and working tree are the same.
    pub fn same_as(&self, other: &RepoState) -> bool {
        self.head == other.head
            && self.branch == other.branch
            && self.index_tree == other.index_tree
            && self.worktree_tree == other.worktree_tree
    }

    /// What differs between `self` and `to`, in words, without the paths
    /// (which only the host can list).
    pub fn difference(&self, to: &RepoState) -> Vec<String> {
        let mut parts = Vec::new();
        if self.head != to.head {
            parts.push(format!(
                "HEAD moved from {} to {}",
                short_commit(self.head.as_deref()),
                short_commit(to.head.as_deref())
            ));
        }
        if self.branch != to.branch {
            parts.push(format!(
                "switched from {} to {}",
                branch_words(self.branch.as_deref()),
                branch_words(to.branch.as_deref())
            ));
        }
        if self.index_tree != to.index_tree {
            parts.push("the staged files changed".into());
        }
        if self.worktree_tree != to.worktree_tree {
            parts.push("files in the working tree changed".into());
        }
        parts
    }
}

/// A commit as people quote it: its first 7 hex digits.
pub fn short_commit(commit: Option<&str>) -> String {
    match commit {
        Some(c) => c.get(..7).unwrap_or(c).to_owned(),
        None => "no commit".into(),
    }
}

/// A branch as people name it: `main` for `refs/heads/main`.
pub fn branch_words(branch: Option<&str>) -> String {
    match branch {
        Some(b) => format!("branch {}", b.strip_prefix("refs/heads/").unwrap_or(b)),
        None => "a detached HEAD".into(),
    }
}

impl ContainerState {
    /// No container of that name: what a snapshot records of one the
    /// action may create, and what the host finds of one that is gone.
    pub fn absent(name: &str) -> ContainerState {
        ContainerState {
            name: name.to_owned(),
            exists: false,
            id: None,
            running: false,
            fingerprint: String::new(),
            changes: String::new(),
            volumes: Vec::new(),
            image: None,
            snapshot_image: None,
            snapshot_image_id: None,
            inspect: None,
        }
    }

    /// Whether this state of a container (as found now, or after the
    /// action) is what `target` captured: the same settings, running or
    /// stopped as it was, and either the same container with the same file
    /// changes or one a rollback recreated from the snapshot image (whose
    /// own process may have written files since, so its changes say
    /// nothing).
    pub fn is_as_captured(&self, target: &ContainerState) -> bool {
        match (self.exists, target.exists) {
            (false, false) => true,
            (true, true) => {
                let untouched = self.id == target.id && self.changes == target.changes;
                let recreated =
                    target.snapshot_image.is_some() && self.image == target.snapshot_image;
                self.fingerprint == target.fingerprint
                    && self.running == target.running
                    && (untouched || recreated)
            }
            _ => false,
        }
    }

    /// Whether this is still exactly the container `after` found: the same
    /// one, settings and file changes. Running or not is left out: a
    /// process that exits or crashes is not someone's later change.
    pub fn unchanged_since(&self, after: &ContainerState) -> bool {
        self.exists == after.exists
            && self.id == after.id
            && self.fingerprint == after.fingerprint
            && self.changes == after.changes
    }

    /// What differs between `self` and `to`, in words.
    pub fn difference(&self, to: &ContainerState) -> Vec<String> {
        match (self.exists, to.exists) {
            (false, false) => return Vec::new(),
            (true, false) => return vec!["it was removed".into()],
            (false, true) => return vec!["it was created".into()],
            (true, true) => {}
        }
        let mut parts = Vec::new();
        let same = self.id == to.id;
        if !same {
            parts.push("it was replaced by another container of the same name".into());
        }
        if self.fingerprint != to.fingerprint {
            parts.push("its settings changed".into());
        }
        if same && self.changes != to.changes {
            parts.push("files inside it changed".into());
        }
        if self.running != to.running {
            parts.push(if to.running {
                "it was started".into()
            } else {
                "it was stopped".into()
            });
        }
        parts
    }
}

impl VolumeState {
    /// Whether it exists in both or neither, with the same files.
    pub fn same_as(&self, other: &VolumeState) -> bool {
        self.exists == other.exists && self.fingerprint == other.fingerprint
    }

    /// What differs between `self` and `to`, in words.
    pub fn difference(&self, to: &VolumeState) -> Vec<String> {
        match (self.exists, to.exists) {
            (true, false) => vec!["it was removed".into()],
            (false, true) => vec!["it was created".into()],
            _ if self.fingerprint != to.fingerprint => vec!["files in it changed".into()],
            _ => Vec::new(),
        }
    }
}

impl FileState {
    /// Whether it exists in both or neither, with the same content and
    /// permissions.
    pub fn same_as(&self, other: &FileState) -> bool {
        self.exists == other.exists && self.sha256 == other.sha256 && self.mode == other.mode
    }

    /// What differs between `self` and `to`, in words.
    pub fn difference(&self, to: &FileState) -> Vec<String> {
        match (self.exists, to.exists) {
            (true, false) => vec!["it was deleted".into()],
            (false, true) => vec!["it was created".into()],
            (false, false) => Vec::new(),
            (true, true) if self.sha256 != to.sha256 => vec!["its content changed".into()],
            (true, true) if self.mode != to.mode => vec!["its permissions changed".into()],
            (true, true) => Vec::new(),
        }
    }
}
