//! What a snapshot of one action must capture. jarvis-exec decides it
//! from the command's scope and the host config before approval; an
//! approval binds to it, so it is stored with the action.
//!
//! A plan is a list of targets. Its stored and wire form groups them by
//! kind under one key each (`repos`, `containers`, …), as plans stored
//! before the list and guards already installed read them; `PlanWire`
//! is that form, and the list keeps its order (see `PlanTarget::rank`),
//! so a plan read back equals the plan written.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// One thing a snapshot captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanTarget {
    /// The git repository of a directory; the host resolves it to its
    /// top level.
    Repo(String),
    /// A container, by name.
    Container(String),
    /// The existing containers of a Compose project.
    Compose(ComposeTarget),
    /// A named volume the host config marks stateful: archived when a
    /// captured container mounts it.
    Volume(String),
    /// A file an edit changes: captured through git when the host finds it
    /// in a repository, copied otherwise.
    File(String),
}

impl PlanTarget {
    /// Where the kind comes in a plan, which is the order a snapshot
    /// captures them in and the order of the stored form: repositories;
    /// containers named, then those of Compose projects (so a container
    /// named and in a project is captured once); volumes, only once every
    /// container is captured, since a volume is archived only when a
    /// captured container mounts it; files last, because one in a
    /// repository joins that repository's capture.
    fn rank(&self) -> u8 {
        match self {
            PlanTarget::Repo(_) => 0,
            PlanTarget::Container(_) => 1,
            PlanTarget::Compose(_) => 2,
            PlanTarget::Volume(_) => 3,
            PlanTarget::File(_) => 4,
        }
    }

    /// What a rollback can put back of it, as a phrase
    /// (`git repository at /srv/app`, `container grafana`).
    pub fn phrase(&self) -> String {
        match self {
            PlanTarget::Repo(r) => format!("git repository at {r}"),
            PlanTarget::Container(c) => format!("container {c}"),
            PlanTarget::Compose(p) => match (&p.project, &p.dir) {
                (Some(n), _) => format!("containers of Compose project {n}"),
                (None, Some(d)) => format!("containers of the Compose project in {d}"),
                (None, None) => "containers of a Compose project".into(),
            },
            PlanTarget::Volume(v) => format!("volume {v} (archived)"),
            PlanTarget::File(f) => format!("copy of {f}"),
        }
    }

    /// The path an approval of it lets a command write beneath, if any.
    fn write_path(&self) -> Option<&str> {
        match self {
            PlanTarget::Repo(path) | PlanTarget::File(path) => Some(path),
            PlanTarget::Compose(c) => c.dir.as_deref(),
            PlanTarget::Container(_) | PlanTarget::Volume(_) => None,
        }
    }
}

/// The order [`SnapshotPlan::settle`] puts a plan in: by kind,
/// then repositories, containers and Compose projects by name. Volumes
/// and files keep the order they came in (the host config's, for
/// volumes), which plans approved and stored already record.
fn settled(a: &PlanTarget, b: &PlanTarget) -> Ordering {
    a.rank().cmp(&b.rank()).then_with(|| match (a, b) {
        (PlanTarget::Repo(x), PlanTarget::Repo(y))
        | (PlanTarget::Container(x), PlanTarget::Container(y)) => x.cmp(y),
        (PlanTarget::Compose(x), PlanTarget::Compose(y)) => x.cmp(y),
        (
            PlanTarget::Repo(_)
            | PlanTarget::Container(_)
            | PlanTarget::Compose(_)
            | PlanTarget::Volume(_)
            | PlanTarget::File(_),
            _,
        ) => Ordering::Equal,
    })
}

/// What a snapshot of one action must capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PlanWire", into = "PlanWire")]
pub struct SnapshotPlan {
    /// Grouped by kind in `PlanTarget::rank` order, each kind in the
    /// order it was added.
    targets: Vec<PlanTarget>,
    /// What the snapshot cannot capture, in plain words. Never empty when
    /// something can change that a rollback would not put back.
    pub not_captured: Vec<String>,
    /// Why there is no snapshot at all, when there is none.
    pub none: Option<NoSnapshot>,
}

// A plan as it is stored and sent: one key per kind of target. Its doc
// comment is the plan's description in the API's OpenAPI document.
/// What a snapshot of the action captures before it runs, which an
/// approval binds to; a kind with nothing to capture is left out.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanWire {
    /// Directories whose git repositories are captured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    repos: Vec<String>,
    /// Containers captured, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    containers: Vec<String>,
    /// Compose projects whose containers are captured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    compose: Vec<ComposeTarget>,
    /// Named volumes archived with a container that mounts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    /// Files an edit changes, copied first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<String>,
    /// What the snapshot cannot capture, in plain words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    not_captured: Vec<String>,
    /// Why there is no snapshot at all, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    none: Option<NoSnapshot>,
}

// A plan is (de)serialised through `PlanWire`, so its schema is the wire
// form's, under the plan's own name.
impl PartialSchema for SnapshotPlan {
    fn schema() -> RefOr<Schema> {
        PlanWire::schema()
    }
}

impl ToSchema for SnapshotPlan {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        PlanWire::schemas(schemas);
    }
}

impl From<PlanWire> for SnapshotPlan {
    fn from(w: PlanWire) -> SnapshotPlan {
        // In rank order, so the list is grouped as `push` keeps it.
        let targets = (w.repos.into_iter().map(PlanTarget::Repo))
            .chain(w.containers.into_iter().map(PlanTarget::Container))
            .chain(w.compose.into_iter().map(PlanTarget::Compose))
            .chain(w.volumes.into_iter().map(PlanTarget::Volume))
            .chain(w.files.into_iter().map(PlanTarget::File))
            .collect();
        SnapshotPlan {
            targets,
            not_captured: w.not_captured,
            none: w.none,
        }
    }
}

impl From<SnapshotPlan> for PlanWire {
    fn from(plan: SnapshotPlan) -> PlanWire {
        let mut w = PlanWire {
            repos: Vec::new(),
            containers: Vec::new(),
            compose: Vec::new(),
            volumes: Vec::new(),
            files: Vec::new(),
            not_captured: plan.not_captured,
            none: plan.none,
        };
        for t in plan.targets {
            match t {
                PlanTarget::Repo(r) => w.repos.push(r),
                PlanTarget::Container(c) => w.containers.push(c),
                PlanTarget::Compose(c) => w.compose.push(c),
                PlanTarget::Volume(v) => w.volumes.push(v),
                PlanTarget::File(f) => w.files.push(f),
            }
        }
        w
    }
}

impl SnapshotPlan {
    /// A plan of `targets`, with nothing said of what it misses.
    pub fn of(targets: impl IntoIterator<Item = PlanTarget>) -> SnapshotPlan {
        let mut plan = SnapshotPlan::default();
        for t in targets {
            plan.push(t);
        }
        plan
    }

    /// Adds a target after the others of its kind.
    pub fn push(&mut self, target: PlanTarget) {
        let at = self.targets.partition_point(|t| t.rank() <= target.rank());
        self.targets.insert(at, target);
    }

    /// Every target, in the order a snapshot captures them
    /// (see `PlanTarget::rank`).
    pub fn targets(&self) -> &[PlanTarget] {
        &self.targets
    }

    /// The directories whose repositories it captures.
    pub fn repos(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().filter_map(|t| match t {
            PlanTarget::Repo(r) => Some(r.as_str()),
            PlanTarget::Container(_)
            | PlanTarget::Compose(_)
            | PlanTarget::Volume(_)
            | PlanTarget::File(_) => None,
        })
    }

    /// The stateful volumes it names.
    pub fn volumes(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().filter_map(|t| match t {
            PlanTarget::Volume(v) => Some(v.as_str()),
            PlanTarget::Repo(_)
            | PlanTarget::Container(_)
            | PlanTarget::Compose(_)
            | PlanTarget::File(_) => None,
        })
    }

    /// The paths an approval of this plan covers for writing: its
    /// repositories and files (compose directories too). The guard lets an
    /// approved command write beneath these and nowhere else it was not
    /// already granted.
    pub fn write_scope(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .targets
            .iter()
            .filter_map(PlanTarget::write_path)
            .map(str::to_owned)
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

/// A Compose project, named or found by its directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
        self.targets.is_empty()
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
        self.targets.iter().map(PlanTarget::phrase).collect()
    }
}

impl SnapshotPlan {
    /// Keeps only the targets `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&PlanTarget) -> bool) {
        self.targets.retain(keep);
    }

    /// Puts the targets in their settled order (by kind, then by name
    /// where names decide), and makes a plan left empty say why there is
    /// no snapshot: `unscoped`, or that nothing could be placed.
    pub fn settle(&mut self, unscoped: &[String]) {
        self.targets.sort_by(settled);
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
