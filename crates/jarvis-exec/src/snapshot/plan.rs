//! What a snapshot of one action must capture, decided from the command's
//! scope and the host config before approval.

use jarvis_policy::scope::Scope;
use serde::{Deserialize, Serialize};

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
