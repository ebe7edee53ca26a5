//! A snapshot's manifest: the state of every target of a plan, as a list,
//! stored and sent in the grouped shape it always had; and how a manifest
//! compares with a later state of the same targets.

use jarvis_core::ActionId;
use serde::{Deserialize, Serialize};

use super::{ContainerState, FileState, PlanTarget, RepoState, SnapshotPlan, VolumeState};

/// The state of every target of a plan, as the host found it: the
/// snapshot's manifest.
///
/// Its stored and wire form groups the targets by kind under one key each
/// (`repos`, `containers`, `volumes`, `files`), as manifests stored before
/// the list and guards already installed read them; `SnapshotWire` is
/// that form. The list keeps that grouping (see `TargetState::rank`), so
/// a manifest read back equals the manifest written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SnapshotWire", into = "SnapshotWire")]
pub struct Snapshot {
    /// The action it was taken for.
    pub action_id: ActionId,
    /// Whether something to restore from was kept (refs, images, copies),
    /// or only fingerprints were taken.
    pub kept: bool,
    /// Grouped by kind in `TargetState::rank` order, each kind in the
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
    // Written as the id's string, as manifests always were.
    #[serde(deserialize_with = "crate::wire::action_id")]
    action_id: ActionId,
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
    pub fn new(action_id: ActionId, kept: bool) -> Snapshot {
        Snapshot {
            action_id,
            kept,
            targets: Vec::new(),
            not_captured: Vec::new(),
            duration_ms: 0,
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
    /// (see `TargetState::rank`).
    pub fn targets(&self) -> &[TargetState] {
        &self.targets
    }

    /// Every target in the order a rollback restores them
    /// (see `TargetState::restore_rank`).
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

/// One target of a snapshot, compared with a later state of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetComparison {
    /// `repo`, `container`, `volume` or `file`, as in [`RestoredTarget`](super::RestoredTarget).
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
