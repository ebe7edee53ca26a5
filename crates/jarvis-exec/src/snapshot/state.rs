//! What a snapshot holds: the state of each target as the host found it,
//! and how two states of a target compare.

use serde::{Deserialize, Serialize};

use super::{PlanTarget, SnapshotPlan};

/// The state of every target of a plan, as the host found it: the
/// snapshot's manifest.
///
/// Its stored and wire form groups the targets by kind under one key each
/// (`repos`, `containers`, `volumes`, `files`), as manifests stored before
/// the list and guards already installed read them; [`SnapshotWire`] is
/// that form. The list keeps that grouping (see [`TargetState::rank`]), so
/// a manifest read back equals the manifest written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SnapshotWire", into = "SnapshotWire")]
pub struct Snapshot {
    /// The action it was taken for.
    pub action_id: String,
    /// Whether something to restore from was kept (refs, images, copies),
    /// or only fingerprints were taken.
    pub kept: bool,
    /// Grouped by kind in [`TargetState::rank`] order, each kind in the
    /// order the host captured it.
    targets: Vec<TargetState>,
    /// What could not be captured, in plain words (the plan's list plus
    /// what the host found: unmarked volumes, bind mounts, …).
    pub not_captured: Vec<String>,
    /// How long taking it took on the host.
    pub duration_ms: u64,
}

/// A manifest as it is stored and sent: one key per kind of target, each
/// written even when empty, as guards have always written them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotWire {
    action_id: String,
    kept: bool,
    #[serde(default)]
    repos: Vec<RepoState>,
    #[serde(default)]
    containers: Vec<ContainerState>,
    #[serde(default)]
    volumes: Vec<VolumeState>,
    #[serde(default)]
    files: Vec<FileState>,
    #[serde(default)]
    not_captured: Vec<String>,
    duration_ms: u64,
}

impl From<SnapshotWire> for Snapshot {
    fn from(w: SnapshotWire) -> Snapshot {
        // In rank order, so the list is grouped as `push` keeps it.
        let targets = (w.repos.into_iter().map(TargetState::Repo))
            .chain(w.containers.into_iter().map(TargetState::Container))
            .chain(w.volumes.into_iter().map(TargetState::Volume))
            .chain(w.files.into_iter().map(TargetState::File))
            .collect();
        Snapshot {
            action_id: w.action_id,
            kept: w.kept,
            targets,
            not_captured: w.not_captured,
            duration_ms: w.duration_ms,
        }
    }
}

impl From<Snapshot> for SnapshotWire {
    fn from(s: Snapshot) -> SnapshotWire {
        let mut w = SnapshotWire {
            action_id: s.action_id,
            kept: s.kept,
            repos: Vec::new(),
            containers: Vec::new(),
            volumes: Vec::new(),
            files: Vec::new(),
            not_captured: s.not_captured,
            duration_ms: s.duration_ms,
        };
        for t in s.targets {
            match t {
                TargetState::Repo(r) => w.repos.push(r),
                TargetState::Container(c) => w.containers.push(c),
                TargetState::Volume(v) => w.volumes.push(v),
                TargetState::File(f) => w.files.push(f),
            }
        }
        w
    }
}

/// One target of a snapshot, as the host found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// A git repository.
    Repo(RepoState),
    /// A container.
    Container(ContainerState),
    /// A stateful volume.
    Volume(VolumeState),
    /// A file outside repositories.
    File(FileState),
}

impl TargetState {
    /// Where the kind comes in a manifest: the order a snapshot captures
    /// them in (repositories, containers, the volumes they mount, files)
    /// and the order of the stored form.
    fn rank(&self) -> u8 {
        match self {
            TargetState::Repo(_) => 0,
            TargetState::Container(_) => 1,
            TargetState::Volume(_) => 2,
            TargetState::File(_) => 3,
        }
    }

    /// Where the kind comes in a rollback, which differs from the capture
    /// order: repositories and files first, then volumes, and containers
    /// last, so a container recreated from its snapshot (which starts it)
    /// starts on volumes already put back.
    fn restore_rank(&self) -> u8 {
        match self {
            TargetState::Repo(_) => 0,
            TargetState::File(_) => 1,
            TargetState::Volume(_) => 2,
            TargetState::Container(_) => 3,
        }
    }

    /// Its kind as reports name it: `repo`, `container`, `volume`, `file`
    /// (as in [`RestoredTarget`](super::RestoredTarget)).
    pub fn kind(&self) -> &'static str {
        match self {
            TargetState::Repo(_) => RepoState::KIND,
            TargetState::Container(_) => ContainerState::KIND,
            TargetState::Volume(_) => VolumeState::KIND,
            TargetState::File(_) => FileState::KIND,
        }
    }

    /// Its path or name.
    pub fn name(&self) -> &str {
        match self {
            TargetState::Repo(r) => r.name(),
            TargetState::Container(c) => c.name(),
            TargetState::Volume(v) => v.name(),
            TargetState::File(f) => f.name(),
        }
    }

    /// The plan target that captures it again.
    pub fn planned(&self) -> PlanTarget {
        match self {
            TargetState::Repo(r) => PlanTarget::Repo(r.path.clone()),
            TargetState::Container(c) => PlanTarget::Container(c.name.clone()),
            TargetState::Volume(v) => PlanTarget::Volume(v.name.clone()),
            TargetState::File(f) => PlanTarget::File(f.path.clone()),
        }
    }

    /// This target compared with its state in `later`.
    fn compare(&self, later: &Snapshot) -> TargetComparison {
        match self {
            TargetState::Repo(t) => compare_one(t, later, RepoState::same_as),
            TargetState::File(t) => compare_one(t, later, FileState::same_as),
            TargetState::Volume(t) => compare_one(t, later, VolumeState::same_as),
            TargetState::Container(t) => compare_one(t, later, ContainerState::is_as_captured),
        }
    }
}

/// One kind of state a snapshot holds: how reports name it, and how to
/// find it in a manifest's list.
pub trait Captured: Sized + Into<TargetState> + 'static {
    /// The kind as reports name it (`repo`, `container`, …).
    const KIND: &'static str;
    /// Its path or name, unique among targets of its kind in a snapshot.
    fn name(&self) -> &str;
    /// `target`, when it is of this kind.
    fn of(target: &TargetState) -> Option<&Self>;
    /// What differs between `self` and `to`, in words, as the gateway
    /// says it (the guard adds what only the host can see).
    fn difference(&self, to: &Self) -> Vec<String>;
}

impl Snapshot {
    /// An empty manifest for `action_id`.
    pub fn new(action_id: impl Into<String>, kept: bool) -> Snapshot {
        Snapshot {
            action_id: action_id.into(),
            kept,
            ..Snapshot::default()
        }
    }

    /// Adds a target after the others of its kind.
    pub fn push(&mut self, target: impl Into<TargetState>) {
        let target = target.into();
        let at = self.targets.partition_point(|t| t.rank() <= target.rank());
        self.targets.insert(at, target);
    }

    /// `self` with `target` added, for building a manifest in one
    /// expression.
    #[must_use]
    pub fn with(mut self, target: impl Into<TargetState>) -> Snapshot {
        self.push(target);
        self
    }

    /// Every target, in the order they were captured
    /// (see [`TargetState::rank`]).
    pub fn targets(&self) -> &[TargetState] {
        &self.targets
    }

    /// Every target in the order a rollback restores them
    /// (see [`TargetState::restore_rank`]).
    pub fn in_restore_order(&self) -> Vec<&TargetState> {
        let mut targets: Vec<&TargetState> = self.targets.iter().collect();
        // Stable: targets of one kind keep their capture order.
        targets.sort_by_key(|t| t.restore_rank());
        targets
    }

    /// The targets of one kind, in capture order.
    pub fn all<T: Captured>(&self) -> impl Iterator<Item = &T> {
        self.targets.iter().filter_map(T::of)
    }

    /// The target of kind `T` named `name`.
    pub fn find<T: Captured>(&self, name: &str) -> Option<&T> {
        self.all::<T>().find(|t| t.name() == name)
    }

    /// The git repositories.
    pub fn repos(&self) -> impl Iterator<Item = &RepoState> {
        self.all()
    }

    /// The containers.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerState> {
        self.all()
    }

    /// The stateful volumes.
    pub fn volumes(&self) -> impl Iterator<Item = &VolumeState> {
        self.all()
    }

    /// The files outside repositories.
    pub fn files(&self) -> impl Iterator<Item = &FileState> {
        self.all()
    }

    /// Each target by its path or name under its kind's stored key, with
    /// what was not captured and how long it took: what the audit log
    /// records of a snapshot.
    pub fn outline(&self) -> serde_json::Value {
        fn names<T: Captured>(s: &Snapshot) -> Vec<&str> {
            s.all::<T>().map(Captured::name).collect()
        }
        serde_json::json!({
            "repos": names::<RepoState>(self),
            "containers": names::<ContainerState>(self),
            "volumes": names::<VolumeState>(self),
            "files": names::<FileState>(self),
            "not_captured": self.not_captured,
            "duration_ms": self.duration_ms,
        })
    }

    /// The plan that captures the same targets again: what a rollback
    /// snapshots before it changes anything, and after.
    pub fn plan(&self) -> SnapshotPlan {
        SnapshotPlan::of(self.targets.iter().map(TargetState::planned))
    }
}

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

/// One target of a snapshot, compared with a later state of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetComparison {
    /// `repo`, `container`, `volume` or `file`, as in [`RestoredTarget`].
    pub kind: &'static str,
    /// Its path or name.
    pub name: String,
    /// What changed from the snapshot to the later state, in words; empty
    /// when a rollback would put nothing back. `None` when the later state
    /// does not have the target, so nobody can say.
    pub changed: Option<Vec<String>>,
}

impl TargetComparison {
    /// Whether a rollback would leave this target as it is.
    pub fn unchanged(&self) -> bool {
        self.changed.as_ref().is_some_and(Vec::is_empty)
    }
}

impl Snapshot {
    /// Every target of this snapshot compared with its state in `later`
    /// (the state right after the action, usually), in the order a
    /// rollback restores them: what a rollback to this snapshot would put
    /// back.
    pub fn compare(&self, later: &Snapshot) -> Vec<TargetComparison> {
        self.in_restore_order()
            .into_iter()
            .map(|t| t.compare(later))
            .collect()
    }

    /// Whether a rollback to this snapshot from `later` would put nothing
    /// back: every target is in `later`, and as this snapshot found it.
    pub fn nothing_to_undo(&self, later: &Snapshot) -> bool {
        self.compare(later).iter().all(TargetComparison::unchanged)
    }
}

/// `target` compared with its state in `later`, where `same(later, target)`
/// says a rollback would put nothing back.
fn compare_one<T: Captured>(
    target: &T,
    later: &Snapshot,
    same: impl Fn(&T, &T) -> bool,
) -> TargetComparison {
    let changed = later.find::<T>(target.name()).map(|l| {
        if same(l, target) {
            Vec::new()
        } else {
            // Never empty when it differs, so "changed" always says
            // something.
            let words = target.difference(l);
            if words.is_empty() {
                vec!["its state changed".into()]
            } else {
                words
            }
        }
    });
    TargetComparison {
        kind: T::KIND,
        name: target.name().to_owned(),
        changed,
    }
}

impl From<RepoState> for TargetState {
    fn from(state: RepoState) -> TargetState {
        TargetState::Repo(state)
    }
}

impl Captured for RepoState {
    const KIND: &'static str = "repo";
    fn name(&self) -> &str {
        &self.path
    }
    fn of(target: &TargetState) -> Option<&RepoState> {
        match target {
            TargetState::Repo(s) => Some(s),
            TargetState::Container(_) | TargetState::Volume(_) | TargetState::File(_) => None,
        }
    }
    fn difference(&self, to: &RepoState) -> Vec<String> {
        RepoState::difference(self, to)
    }
}

impl From<ContainerState> for TargetState {
    fn from(state: ContainerState) -> TargetState {
        TargetState::Container(state)
    }
}

impl Captured for ContainerState {
    const KIND: &'static str = "container";
    fn name(&self) -> &str {
        &self.name
    }
    fn of(target: &TargetState) -> Option<&ContainerState> {
        match target {
            TargetState::Container(s) => Some(s),
            TargetState::Repo(_) | TargetState::Volume(_) | TargetState::File(_) => None,
        }
    }
    fn difference(&self, to: &ContainerState) -> Vec<String> {
        ContainerState::difference(self, to)
    }
}

impl From<VolumeState> for TargetState {
    fn from(state: VolumeState) -> TargetState {
        TargetState::Volume(state)
    }
}

impl Captured for VolumeState {
    const KIND: &'static str = "volume";
    fn name(&self) -> &str {
        &self.name
    }
    fn of(target: &TargetState) -> Option<&VolumeState> {
        match target {
            TargetState::Volume(s) => Some(s),
            TargetState::Repo(_) | TargetState::Container(_) | TargetState::File(_) => None,
        }
    }
    fn difference(&self, to: &VolumeState) -> Vec<String> {
        VolumeState::difference(self, to)
    }
}

impl From<FileState> for TargetState {
    fn from(state: FileState) -> TargetState {
        TargetState::File(state)
    }
}

impl Captured for FileState {
    const KIND: &'static str = "file";
    fn name(&self) -> &str {
        &self.path
    }
    fn of(target: &TargetState) -> Option<&FileState> {
        match target {
            TargetState::File(s) => Some(s),
            TargetState::Repo(_) | TargetState::Container(_) | TargetState::Volume(_) => None,
        }
    }
    fn difference(&self, to: &FileState) -> Vec<String> {
        FileState::difference(self, to)
    }
}
