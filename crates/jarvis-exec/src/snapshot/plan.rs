//! How a host's config and a command's scope decide a snapshot plan (the
//! plan itself, stored with the action, is jarvis-core's).

use jarvis_core::plan::{ComposeTarget, NoSnapshot, PlanTarget, SnapshotPlan};
use jarvis_policy::scope::Scope;
use serde::{Deserialize, Serialize};

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

/// The plan for a command line whose scope is `scope`.
pub fn plan_for_command(scope: &Scope, settings: &SnapshotSettings) -> SnapshotPlan {
    if scope.read_only {
        let mut plan = SnapshotPlan::default();
        plan.none = Some(NoSnapshot::ReadOnly);
        return plan;
    }
    let mut plan = SnapshotPlan::of(
        (scope.repos.iter().cloned().map(PlanTarget::Repo))
            .chain(scope.containers.iter().cloned().map(PlanTarget::Container))
            .chain(scope.compose.iter().map(|c| {
                PlanTarget::Compose(ComposeTarget {
                    project: c.project.clone(),
                    dir: c.dir.clone(),
                })
            })),
    );
    add_always(&mut plan, settings);
    if plan
        .targets()
        .iter()
        .any(|t| matches!(t, PlanTarget::Compose(_)))
    {
        plan.not_captured.push(
            "containers the command adds to a Compose project are not removed by a rollback".into(),
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
pub fn plan_for_edit(path: &str, settings: &SnapshotSettings) -> SnapshotPlan {
    let mut plan = SnapshotPlan::default();
    match settings.repos.iter().find(|r| {
        let r = r.trim_end_matches('/');
        path.starts_with(&format!("{r}/"))
    }) {
        Some(repo) => plan.push(PlanTarget::Repo(repo.clone())),
        None => plan.push(PlanTarget::File(path.to_owned())),
    }
    add_always(&mut plan, settings);
    plan.settle(&[]);
    plan
}

/// Adds what the host config captures with every changing action.
fn add_always(plan: &mut SnapshotPlan, settings: &SnapshotSettings) {
    for r in &settings.repos {
        let repo = PlanTarget::Repo(r.clone());
        if !plan.targets().contains(&repo) {
            plan.push(repo);
        }
    }
    for c in &settings.containers {
        let container = PlanTarget::Container(c.clone());
        if !plan.targets().contains(&container) {
            plan.push(container);
        }
    }
    // Volumes only matter through a container that mounts them.
    let with_containers = plan
        .targets()
        .iter()
        .any(|t| matches!(t, PlanTarget::Container(_) | PlanTarget::Compose(_)));
    if with_containers {
        plan.retain(|t| !matches!(t, PlanTarget::Volume(_)));
        for v in &settings.stateful_volumes {
            plan.push(PlanTarget::Volume(v.clone()));
        }
    }
}
