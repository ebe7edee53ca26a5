//! Snapshots, rollback, previews and file edits: what the gateway asks of
//! the host guard and what the guard hands back. No IO.
//!
//! A [`SnapshotPlan`] is decided before approval, from the command's scope
//! and the host config, and an approval binds to it. The guard turns a plan
//! into a [`Snapshot`]: with `keep`, something to restore from (a git ref,
//! `docker commit` images, volume archives, file copies); without, only
//! fingerprints of the state, which is what a rollback compares against to
//! notice that a target changed after the action.

use jarvis_policy::scope::Scope;
use serde::{Deserialize, Serialize};

/// The ref namespace that keeps snapshot commits alive through `git gc`.
pub const GIT_REF_PREFIX: &str = "refs/jarvis/snapshots/";

/// The image repository of container snapshots; the tag is
/// `<action id>.<first 12 hex digits of the container id>`.
pub const IMAGE_REPOSITORY: &str = "jarvis-snapshots";

/// What a snapshot of one action must capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotPlan {
    /// Directories whose git repository is captured; the host resolves each
    /// to its top level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<String>,
    /// Containers, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Compose projects whose existing containers are captured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compose: Vec<ComposeTarget>,
    /// Named volumes the host config marks stateful: archived when a
    /// captured container mounts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Files an edit changes: captured through git when the host finds
    /// them in a repository, copied otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// What the snapshot cannot capture, in plain words. Never empty when
    /// something can change that a rollback would not put back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_captured: Vec<String>,
    /// Why there is no snapshot at all, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none: Option<NoSnapshot>,
}

impl SnapshotPlan {
    /// The paths an approval of this plan covers for writing: its
    /// repositories and files (compose directories too). The guard lets an
    /// approved command write beneath these and nowhere else it was not
    /// already granted.
    pub fn write_scope(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .repos
            .iter()
            .chain(&self.files)
            .chain(self.compose.iter().filter_map(|c| c.dir.as_ref()))
            .cloned()
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

/// A Compose project, named or found by its directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeTarget {
    /// `-p NAME`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The project directory (of `-f FILE`, `--project-directory`, or the
    /// working directory), matched against the
    /// `com.docker.compose.project.working_dir` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Why an action takes no snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NoSnapshot {
    /// It only reads.
    ReadOnly,
    /// What it can change could not be established, so a rollback will not
    /// be possible.
    Unscoped {
        /// Why, per command.
        reasons: Vec<String>,
    },
}

impl SnapshotPlan {
    /// Whether the plan captures anything.
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
            && self.containers.is_empty()
            && self.compose.is_empty()
            && self.volumes.is_empty()
            && self.files.is_empty()
    }

    /// One line for an approval request.
    pub fn summary(&self) -> String {
        if self.is_empty() {
            return match &self.none {
                Some(NoSnapshot::ReadOnly) => "no snapshot: the command only reads".into(),
                Some(NoSnapshot::Unscoped { reasons }) => format!(
                    "no snapshot: rollback will not be possible ({})",
                    reasons.join("; ")
                ),
                None => "no snapshot: rollback will not be possible".into(),
            };
        }
        let mut line = format!("snapshot: {}", self.captured().join(", "));
        if !self.not_captured.is_empty() {
            line.push_str(&format!("; not captured: {}", self.not_captured.join("; ")));
        }
        line
    }

    /// What a rollback can put back, one phrase per target
    /// (`container grafana`, `git repository at /srv/app`).
    pub fn captured(&self) -> Vec<String> {
        let mut parts = Vec::new();
        for r in &self.repos {
            parts.push(format!("git repository at {r}"));
        }
        for c in &self.containers {
            parts.push(format!("container {c}"));
        }
        for p in &self.compose {
            parts.push(match (&p.project, &p.dir) {
                (Some(n), _) => format!("containers of Compose project {n}"),
                (None, Some(d)) => format!("containers of the Compose project in {d}"),
                (None, None) => "containers of a Compose project".into(),
            });
        }
        for v in &self.volumes {
            parts.push(format!("volume {v} (archived)"));
        }
        for f in &self.files {
            parts.push(format!("copy of {f}"));
        }
        parts
    }
}

/// What a host's config says about snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSettings {
    /// Repositories captured with every changing action; a path under one
    /// is captured through it.
    pub repos: Vec<String>,
    /// Containers captured with every changing action.
    pub containers: Vec<String>,
    /// Named volumes whose data is archived when a captured container
    /// mounts them.
    pub stateful_volumes: Vec<String>,
    /// The image (with `sh` and `tar`) that archives and restores volumes.
    pub volume_image: Option<String>,
    /// Kept snapshots per host; older ones are pruned.
    pub keep: u32,
    /// Kept snapshots older than this many days are pruned.
    pub max_age_days: Option<u32>,
}

impl SnapshotPlan {
    /// The plan for a command line whose scope is `scope`.
    pub fn for_command(scope: &Scope, settings: &SnapshotSettings) -> SnapshotPlan {
        if scope.read_only {
            return SnapshotPlan {
                none: Some(NoSnapshot::ReadOnly),
                ..SnapshotPlan::default()
            };
        }
        let mut plan = SnapshotPlan {
            repos: scope.repos.iter().cloned().collect(),
            containers: scope.containers.iter().cloned().collect(),
            compose: scope
                .compose
                .iter()
                .map(|c| ComposeTarget {
                    project: c.project.clone(),
                    dir: c.dir.clone(),
                })
                .collect(),
            ..SnapshotPlan::default()
        };
        plan.add_always(settings);
        if !plan.compose.is_empty() {
            plan.not_captured.push(
                "containers the command adds to a Compose project are not removed by a rollback"
                    .into(),
            );
        }
        plan.not_captured.extend(scope.unscoped.iter().cloned());
        plan.not_captured.extend(scope.remote.iter().cloned());
        plan.settle(&scope.unscoped);
        plan
    }

    /// The plan for an edit of `path`: through its configured repository,
    /// or the file itself (which the host captures through git when it is
    /// in a repository, and as a copy otherwise).
    pub fn for_edit(path: &str, settings: &SnapshotSettings) -> SnapshotPlan {
        let mut plan = SnapshotPlan::default();
        match settings.repos.iter().find(|r| {
            let r = r.trim_end_matches('/');
            path.starts_with(&format!("{r}/"))
        }) {
            Some(repo) => plan.repos.push(repo.clone()),
            None => plan.files.push(path.to_owned()),
        }
        plan.add_always(settings);
        plan.settle(&[]);
        plan
    }

    fn add_always(&mut self, settings: &SnapshotSettings) {
        for r in &settings.repos {
            if !self.repos.contains(r) {
                self.repos.push(r.clone());
            }
        }
        for c in &settings.containers {
            if !self.containers.contains(c) {
                self.containers.push(c.clone());
            }
        }
        if !self.containers.is_empty() || !self.compose.is_empty() {
            self.volumes = settings.stateful_volumes.clone();
        }
    }

    fn settle(&mut self, unscoped: &[String]) {
        self.repos.sort();
        self.containers.sort();
        self.compose.sort();
        if self.is_empty() {
            self.not_captured.clear();
            self.none = Some(NoSnapshot::Unscoped {
                reasons: if unscoped.is_empty() {
                    vec![
                        "what it changes could not be placed in any repository or container".into(),
                    ]
                } else {
                    unscoped.to_vec()
                },
            });
        }
    }
}

/// The state of every target of a plan, as the host found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The action it was taken for.
    pub action_id: String,
    /// Whether something to restore from was kept (refs, images, copies),
    /// or only fingerprints were taken.
    pub kept: bool,
    /// Git repositories.
    #[serde(default)]
    pub repos: Vec<RepoState>,
    /// Containers.
    #[serde(default)]
    pub containers: Vec<ContainerState>,
    /// Stateful volumes.
    #[serde(default)]
    pub volumes: Vec<VolumeState>,
    /// Files outside repositories.
    #[serde(default)]
    pub files: Vec<FileState>,
    /// What could not be captured, in plain words (the plan's list plus
    /// what the host found: unmarked volumes, bind mounts, …).
    #[serde(default)]
    pub not_captured: Vec<String>,
    /// How long taking it took on the host.
    pub duration_ms: u64,
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
        fn each<T>(
            kind: &'static str,
            targets: &[T],
            later: &[T],
            name: impl Fn(&T) -> &str,
            same: impl Fn(&T, &T) -> bool,
            difference: impl Fn(&T, &T) -> Vec<String>,
            out: &mut Vec<TargetComparison>,
        ) {
            for t in targets {
                let changed = later.iter().find(|l| name(l) == name(t)).map(|l| {
                    if same(l, t) {
                        Vec::new()
                    } else {
                        // Never empty when it differs, so "changed" always
                        // says something.
                        let words = difference(t, l);
                        if words.is_empty() {
                            vec!["its state changed".into()]
                        } else {
                            words
                        }
                    }
                });
                out.push(TargetComparison {
                    kind,
                    name: name(t).to_owned(),
                    changed,
                });
            }
        }
        let mut out = Vec::new();
        each(
            "repo",
            &self.repos,
            &later.repos,
            |r| &r.path,
            |l, t| l.same_as(t),
            RepoState::difference,
            &mut out,
        );
        each(
            "file",
            &self.files,
            &later.files,
            |f| &f.path,
            |l, t| l.same_as(t),
            FileState::difference,
            &mut out,
        );
        each(
            "volume",
            &self.volumes,
            &later.volumes,
            |v| &v.name,
            |l, t| l.same_as(t),
            VolumeState::difference,
            &mut out,
        );
        each(
            "container",
            &self.containers,
            &later.containers,
            |c| &c.name,
            |l, t| l.is_as_captured(t),
            ContainerState::difference,
            &mut out,
        );
        out
    }

    /// Whether a rollback to this snapshot from `later` would put nothing
    /// back: every target is in `later`, and as this snapshot found it.
    pub fn nothing_to_undo(&self, later: &Snapshot) -> bool {
        self.compare(later).iter().all(TargetComparison::unchanged)
    }
}

/// Take a snapshot (or only fingerprints) of a plan's targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// The action it is for; names the ref, the images and the copies.
    pub action_id: String,
    /// What to capture.
    pub plan: SnapshotPlan,
    /// Keep what a rollback needs, or only fingerprint the state.
    pub keep: bool,
    /// The image that archives and restores volumes (it needs `sh` and
    /// `tar`); required when the plan names volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_image: Option<String>,
}

/// Put targets back as a snapshot found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The rollback action; its own snapshot of the current state (taken
    /// first, so the rollback can be undone) is kept under this id.
    pub action_id: String,
    /// The snapshot to restore (kept).
    pub target: Snapshot,
    /// The state right after the original action ran. A target that is in
    /// neither this state nor `target`'s has changed since: the rollback
    /// stops and says what changed, unless `force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Snapshot>,
    /// Restore even over later changes (they stay in the fresh snapshot).
    #[serde(default)]
    pub force: bool,
    /// Only say where each target stands (already restored, due, changed
    /// since): take no snapshot and change nothing. The gateway asks this
    /// before a rollback starts, so a rollback that would stop is refused
    /// before it is recorded as running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_only: bool,
    /// As in [`SnapshotRequest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_image: Option<String>,
}

/// How one target of a rollback went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOutcome {
    /// It already was as the snapshot found it (a retry after a failure
    /// halfway, or the action did not change it).
    AlreadyRestored,
    /// It was put back and verified.
    Restored,
    /// It changed after the action; left alone.
    Changed,
    /// Putting it back failed; the detail says how far it got.
    Failed,
    /// Not tried, because an earlier target failed or changed.
    Skipped,
    /// As the action left it: a rollback would put it back (a check only).
    Due,
}

/// One target of a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoredTarget {
    /// `repo`, `container`, `volume` or `file`.
    pub kind: String,
    /// Its path or name.
    pub name: String,
    /// How it went.
    pub outcome: TargetOutcome,
    /// What was found, done or compared, in plain words.
    pub detail: String,
}

/// What a rollback did on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    /// The snapshot of the state before the rollback; `None` when it
    /// stopped before changing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Snapshot>,
    /// The state after the rollback (fingerprints), for a rollback of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Snapshot>,
    /// Every target, in order.
    pub targets: Vec<RestoredTarget>,
    /// Whether every target is now as the snapshot found it (for a check
    /// only: already was).
    pub complete: bool,
    /// How long it took on the host.
    pub duration_ms: u64,
}

/// A file edit: a path and either its new content or a unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEdit {
    /// Absolute path on the host.
    pub path: String,
    /// The change.
    pub change: FileChange,
}

/// What an edit does to its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FileChange {
    /// Replace (or create) the file with this content.
    Content {
        /// The new content.
        content: String,
    },
    /// Apply this unified diff; it must apply exactly.
    Diff {
        /// The diff.
        diff: String,
    },
}

/// Apply an edit (an approved action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The action.
    pub action_id: String,
    /// The edit.
    pub edit: FileEdit,
}

/// What to preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PreviewKind {
    /// Run the command line in a private clone of the repository at
    /// `repo` (its snapshot state), with the repository's path in the line
    /// and the working directory replaced by the clone's.
    Git {
        /// A directory inside the repository.
        repo: String,
        /// The command line.
        command: String,
        /// Its working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
    },
    /// Run `docker ARGV…` against a throwaway, network-less clone of
    /// `container` made from an image of it, with `argv[container_arg]`
    /// (the container's name) replaced by the clone's.
    Docker {
        /// The container.
        container: String,
        /// The docker arguments after `docker`.
        argv: Vec<String>,
        /// Which of them names the container.
        container_arg: usize,
    },
    /// Show the edit as a diff against the file as it is.
    Edit {
        /// The edit.
        edit: FileEdit,
    },
}

/// Make a preview of an action that has not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The action.
    pub action_id: String,
    /// What to preview.
    pub preview: PreviewKind,
    /// Time limit for the command in the clone.
    pub timeout_ms: u64,
    /// Bytes of output and of diff to send back.
    pub output_cap: u64,
}

/// A preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewReport {
    /// `git`, `docker` or `edit`.
    pub kind: String,
    /// One line per notable change (`HEAD a1b2c3d → d4e5f6a`, `branch
    /// main → other`, `3 files changed`), for the approval list.
    pub summary: Vec<String>,
    /// The change itself: `git diff --stat` and the diff, `docker diff`,
    /// or the edit's unified diff.
    pub diff: String,
    /// The command's output in the clone (stdout then stderr).
    #[serde(default)]
    pub output: String,
    /// Its exit code there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Whether diff or output were cut at the cap.
    #[serde(default)]
    pub truncated: bool,
    /// How long the preview took on the host.
    pub duration_ms: u64,
}

/// Remove kept snapshots (retention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRequest {
    /// The snapshots whose refs, images, archives and copies go.
    pub snapshots: Vec<Snapshot>,
}

/// What a drop removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropReport {
    /// Refs, images and files removed (or already gone).
    pub removed: Vec<String>,
    /// What could not be removed, and why.
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_says_why_there_is_no_snapshot() {
        let plan = SnapshotPlan {
            none: Some(NoSnapshot::Unscoped {
                reasons: vec!["`systemctl restart nginx` changes a service".into()],
            }),
            ..SnapshotPlan::default()
        };
        assert!(plan.is_empty());
        assert!(
            plan.summary()
                .starts_with("no snapshot: rollback will not be possible")
        );
    }

    #[test]
    fn a_plan_lists_targets_and_what_it_misses() {
        let plan = SnapshotPlan {
            repos: vec!["/srv/app".into()],
            containers: vec!["web".into()],
            not_captured: vec!["volume data is not marked stateful".into()],
            ..SnapshotPlan::default()
        };
        let s = plan.summary();
        assert!(s.contains("git repository at /srv/app"), "{s}");
        assert!(s.contains("container web"), "{s}");
        assert!(s.contains("not captured: volume data"), "{s}");
    }

    fn repo(head: &str, tree: &str) -> RepoState {
        RepoState {
            path: "/srv/app".into(),
            head: Some(head.into()),
            branch: Some("refs/heads/main".into()),
            index_tree: tree.into(),
            worktree_tree: tree.into(),
            commit: None,
            kept_ref: None,
        }
    }

    fn container(id: &str, changes: &str, running: bool) -> ContainerState {
        ContainerState {
            name: "grafana".into(),
            exists: true,
            id: Some(id.into()),
            running,
            fingerprint: "settings".into(),
            changes: changes.into(),
            volumes: Vec::new(),
            image: Some("grafana/grafana".into()),
            snapshot_image: None,
            snapshot_image_id: None,
            inspect: None,
        }
    }

    fn snapshot(repos: Vec<RepoState>, containers: Vec<ContainerState>) -> Snapshot {
        Snapshot {
            action_id: "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f".into(),
            kept: true,
            repos,
            containers,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_restart_that_changed_nothing_has_nothing_to_undo() {
        // `docker restart`: the same container, settings and files, still
        // running. A kept snapshot carries its image and settings, which
        // the comparison leaves out.
        let mut kept = container("c1", "d1", true);
        kept.snapshot_image = Some("jarvis-snapshots:x.c1".into());
        kept.inspect = Some(serde_json::json!({"Id": "c1"}));
        let before = snapshot(vec![repo("e59951b0", "t1")], vec![kept]);
        let after = snapshot(
            vec![repo("e59951b0", "t1")],
            vec![container("c1", "d1", true)],
        );
        assert!(before.nothing_to_undo(&after));
        assert!(
            before
                .compare(&after)
                .iter()
                .all(TargetComparison::unchanged)
        );
    }

    #[test]
    fn each_kind_of_change_is_something_to_undo_and_says_what() {
        let before = snapshot(
            vec![repo("e59951b0", "t1")],
            vec![container("c1", "d1", true)],
        );
        let cases: [(Snapshot, &str, &str); 5] = [
            (
                snapshot(
                    vec![repo("1a2b3c4d", "t2")],
                    vec![container("c1", "d1", true)],
                ),
                "repo",
                "HEAD moved from e59951b to 1a2b3c4",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c1", "d2", true)],
                ),
                "container",
                "files inside it changed",
            ),
            (
                // A stop changes nothing but whether it runs: a rollback
                // starts it again, so there is something to undo.
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c1", "d1", false)],
                ),
                "container",
                "it was stopped",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c2", "d1", true)],
                ),
                "container",
                "it was replaced by another container of the same name",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![ContainerState {
                        exists: false,
                        id: None,
                        ..container("c1", "", false)
                    }],
                ),
                "container",
                "it was removed",
            ),
        ];
        for (after, kind, words) in cases {
            assert!(!before.nothing_to_undo(&after), "{words}");
            let changed: Vec<TargetComparison> = before
                .compare(&after)
                .into_iter()
                .filter(|c| !c.unchanged())
                .collect();
            assert_eq!(changed.len(), 1, "{words}: {changed:?}");
            assert_eq!(changed[0].kind, kind);
            assert!(
                changed[0]
                    .changed
                    .as_ref()
                    .is_some_and(|c| c.contains(&words.to_owned())),
                "{words}: {changed:?}"
            );
        }
    }

    #[test]
    fn a_target_missing_from_the_later_state_is_not_nothing_to_undo() {
        let before = snapshot(vec![repo("e59951b0", "t1")], Vec::new());
        let after = snapshot(Vec::new(), Vec::new());
        let compared = before.compare(&after);
        assert_eq!(compared[0].changed, None);
        assert!(!before.nothing_to_undo(&after));
    }

    #[test]
    fn a_container_recreated_from_its_snapshot_counts_as_restored() {
        let mut target = container("c1", "d1", true);
        target.snapshot_image = Some("jarvis-snapshots:x.c1".into());
        let mut recreated = container("c9", "written-by-its-process", true);
        recreated.image = target.snapshot_image.clone();
        assert!(recreated.is_as_captured(&target));
        // Stopped, it is not as captured: a rollback starts it.
        recreated.running = false;
        assert!(!recreated.is_as_captured(&target));
        // A process that exited is not someone's later change.
        let after = container("c1", "d2", true);
        let mut exited = after.clone();
        exited.running = false;
        assert!(exited.unchanged_since(&after));
    }

    #[test]
    fn files_and_volumes_compare_content_and_existence() {
        let file = FileState {
            path: "/etc/app.conf".into(),
            exists: true,
            sha256: Some("a".into()),
            mode: Some(0o644),
            backup: Some("/var/lib/jarvis/x".into()),
        };
        let copy = FileState {
            backup: None,
            ..file.clone()
        };
        assert!(copy.same_as(&file));
        let edited = FileState {
            sha256: Some("b".into()),
            ..copy.clone()
        };
        assert_eq!(file.difference(&edited), vec!["its content changed"]);
        let gone = FileState {
            exists: false,
            sha256: None,
            mode: None,
            ..copy
        };
        assert_eq!(file.difference(&gone), vec!["it was deleted"]);
        let volume = VolumeState {
            name: "data".into(),
            exists: true,
            fingerprint: "f1".into(),
            archive: Some("/var/lib/jarvis/v".into()),
            bytes: 10,
        };
        let same = VolumeState {
            archive: None,
            bytes: 0,
            ..volume.clone()
        };
        assert!(same.same_as(&volume));
        let changed = VolumeState {
            fingerprint: "f2".into(),
            ..same
        };
        assert_eq!(volume.difference(&changed), vec!["files in it changed"]);
    }

    #[test]
    fn a_check_only_request_reads_as_before_for_old_guards() {
        // Without check_only the request is what guards before it read.
        let request = RestoreRequest {
            action_id: "x".into(),
            target: Snapshot::default(),
            after: None,
            force: false,
            check_only: false,
            volume_image: None,
        };
        let text = serde_json::to_string(&request).unwrap_or_default();
        assert!(!text.contains("check_only"), "{text}");
        let checked = RestoreRequest {
            check_only: true,
            ..request
        };
        let text = serde_json::to_string(&checked).unwrap_or_default();
        let back: RestoreRequest = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.check_only);
    }

    #[test]
    fn plans_round_trip_and_reject_unknown_fields() {
        let plan = SnapshotPlan {
            compose: vec![ComposeTarget {
                project: Some("demo".into()),
                dir: None,
            }],
            ..SnapshotPlan::default()
        };
        let text = serde_json::to_string(&plan).unwrap_or_default();
        let back: SnapshotPlan = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, plan);
        assert!(serde_json::from_str::<SnapshotPlan>(r#"{"repo":["/x"]}"#).is_err());
    }
}
