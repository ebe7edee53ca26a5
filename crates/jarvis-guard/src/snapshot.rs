//! Snapshots and rollbacks of every kind of target, in one order and with
//! one set of rules: what a rollback compares, when it stops, and that it
//! snapshots the present before it changes anything.

use std::path::Path;
use std::time::Instant;

use jarvis_exec::snapshot::{
    ContainerState, DropReport, DropRequest, FileState, RepoState, RestoreReport, RestoreRequest,
    RestoredTarget, Snapshot, SnapshotPlan, SnapshotRequest, TargetOutcome, VolumeState,
};

use crate::error::GuardError;
use crate::{docker, files, git};

/// What the host offers snapshot work beyond the request.
pub struct Host<'a> {
    /// Where volume archives and file copies go.
    pub state_dir: &'a Path,
    /// Judges a command line with the host policy; `Err` says why it is
    /// denied. A rollback recreating a container is judged as the
    /// equivalent `docker run`.
    pub judge: &'a dyn Fn(&str) -> Result<(), GuardError>,
}

fn elapsed_ms(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn is_uuidish(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Takes a snapshot of a plan's targets.
pub fn take(req: &SnapshotRequest, host: &Host<'_>) -> Result<Snapshot, GuardError> {
    let started = Instant::now();
    if !is_uuidish(&req.action_id) {
        return Err(GuardError::Request(format!(
            "`{}` is not an action id",
            req.action_id
        )));
    }
    let plan = &req.plan;
    let id = req.action_id.as_str();
    let mut snap = Snapshot {
        action_id: id.to_owned(),
        kept: req.keep,
        not_captured: plan.not_captured.clone(),
        ..Snapshot::default()
    };
    for dir in &plan.repos {
        match git::capture(dir, id, req.keep) {
            Ok(state) => {
                if !snap.repos.iter().any(|r| r.path == state.path) {
                    snap.repos.push(state);
                }
            }
            Err(e @ GuardError::NotInRepository { .. }) => snap
                .not_captured
                .push(format!("{e}; its files are not captured")),
            Err(e) => return Err(e),
        }
    }
    let mut names: Vec<String> = plan.containers.clone();
    for project in &plan.compose {
        for name in docker::containers_of(project)? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for name in &names {
        let (state, notes) = docker::capture(name, id, req.keep)?;
        for v in &state.volumes {
            if !plan.volumes.contains(v) {
                snap.not_captured.push(format!(
                    "volume {v} of {name} is not marked stateful in the host config; its data is not captured"
                ));
            }
        }
        snap.not_captured.extend(notes);
        snap.containers.push(state);
    }
    for volume in &plan.volumes {
        // Only the stateful volumes this action's containers use.
        if !snap.containers.iter().any(|c| c.volumes.contains(volume)) {
            continue;
        }
        snap.volumes.push(docker::capture_volume(
            volume,
            id,
            req.keep,
            req.volume_image.as_deref(),
            host.state_dir,
        )?);
    }
    for path in &plan.files {
        // A file in a repository is captured through git (one ref, verified
        // by tree hash on rollback); a file in none is copied.
        let dir = Path::new(path)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/".into());
        match git::capture(&dir, id, req.keep) {
            Ok(state) => {
                if !snap.repos.iter().any(|r| r.path == state.path) {
                    snap.repos.push(state);
                }
            }
            Err(e)
                if matches!(e, GuardError::NotInRepository { .. }) || !Path::new(&dir).is_dir() =>
            {
                snap.files
                    .push(files::capture(path, id, req.keep, host.state_dir)?)
            }
            Err(e) => return Err(e),
        }
    }
    snap.duration_ms = elapsed_ms(started);
    Ok(snap)
}

/// The plan that captures the same targets as a snapshot did.
fn plan_of(s: &Snapshot) -> SnapshotPlan {
    SnapshotPlan {
        repos: s.repos.iter().map(|r| r.path.clone()).collect(),
        containers: s.containers.iter().map(|c| c.name.clone()).collect(),
        volumes: s.volumes.iter().map(|v| v.name.clone()).collect(),
        files: s.files.iter().map(|f| f.path.clone()).collect(),
        ..SnapshotPlan::default()
    }
}

/// One kind of target, as the rollback rules see it.
trait Target: Sized {
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn now(&self, host: &Host<'_>, volume_image: Option<&str>) -> Result<Self, GuardError>;
    fn is_target(current: &Self, target: &Self) -> bool;
    fn is_after(current: &Self, after: &Self) -> bool;
    fn difference(from: &Self, to: &Self) -> String;
    fn restore(&self, host: &Host<'_>, volume_image: Option<&str>) -> Result<String, GuardError>;
}

impl Target for RepoState {
    const KIND: &'static str = "repo";
    fn name(&self) -> &str {
        &self.path
    }
    fn now(&self, _: &Host<'_>, _: Option<&str>) -> Result<Self, GuardError> {
        git::capture(&self.path, "", false)
    }
    fn is_target(current: &Self, target: &Self) -> bool {
        current.same_as(target)
    }
    fn is_after(current: &Self, after: &Self) -> bool {
        current.same_as(after)
    }
    fn difference(from: &Self, to: &Self) -> String {
        git::difference(from, to)
    }
    fn restore(&self, _: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        git::restore(self)
    }
}

impl Target for ContainerState {
    const KIND: &'static str = "container";
    fn name(&self) -> &str {
        &self.name
    }
    fn now(&self, _: &Host<'_>, _: Option<&str>) -> Result<Self, GuardError> {
        docker::capture(&self.name, "", false).map(|(s, _)| s)
    }
    fn is_target(current: &Self, target: &Self) -> bool {
        current.is_as_captured(target)
    }
    fn is_after(current: &Self, after: &Self) -> bool {
        current.unchanged_since(after)
    }
    fn difference(from: &Self, to: &Self) -> String {
        docker::difference(from, to)
    }
    fn restore(&self, host: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        if !self.exists {
            // The action created it: the rollback removes it.
            docker::remove(&self.name)?;
            return Ok(format!("removed {}, which did not exist before", self.name));
        }
        let line = docker::run_line(self);
        (host.judge)(&line).map_err(|why| {
            GuardError::Policy(format!(
                "recreating {} as `{line}` is denied by the host policy: {why}",
                self.name
            ))
        })?;
        docker::restore(self)
    }
}

impl Target for VolumeState {
    const KIND: &'static str = "volume";
    fn name(&self) -> &str {
        &self.name
    }
    fn now(&self, host: &Host<'_>, image: Option<&str>) -> Result<Self, GuardError> {
        docker::capture_volume(&self.name, "", false, image, host.state_dir)
    }
    fn is_target(current: &Self, target: &Self) -> bool {
        current.same_as(target)
    }
    fn is_after(current: &Self, after: &Self) -> bool {
        current.same_as(after)
    }
    fn difference(from: &Self, to: &Self) -> String {
        from.difference(to).join("; ")
    }
    fn restore(&self, _: &Host<'_>, image: Option<&str>) -> Result<String, GuardError> {
        let image = image.ok_or_else(|| {
            GuardError::Volume(format!(
                "no volume image is configured for this host, so volume {} cannot be restored",
                self.name
            ))
        })?;
        docker::restore_volume(self, image)
    }
}

impl Target for FileState {
    const KIND: &'static str = "file";
    fn name(&self) -> &str {
        &self.path
    }
    fn now(&self, host: &Host<'_>, _: Option<&str>) -> Result<Self, GuardError> {
        files::capture(&self.path, "", false, host.state_dir)
    }
    fn is_target(current: &Self, target: &Self) -> bool {
        current.same_as(target)
    }
    fn is_after(current: &Self, after: &Self) -> bool {
        current.same_as(after)
    }
    fn difference(from: &Self, to: &Self) -> String {
        files::difference(from, to)
    }
    fn restore(&self, _: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        files::restore(self)
    }
}

/// Where one target stands before a rollback.
enum Standing {
    /// Already as the snapshot found it.
    Done(String),
    /// As the action left it: to be restored.
    Due,
    /// Changed since the action (or unknown): the words say how, without
    /// naming the target (the report does).
    Changed(String),
}

fn standing<T: Target>(
    target: &T,
    after: Option<&T>,
    host: &Host<'_>,
    image: Option<&str>,
) -> Result<Standing, GuardError> {
    let now = target.now(host, image)?;
    if T::is_target(&now, target) {
        return Ok(Standing::Done(format!(
            "{} is already as the snapshot found it",
            target.name()
        )));
    }
    match after {
        Some(after) if T::is_after(&now, after) => Ok(Standing::Due),
        Some(after) => Ok(Standing::Changed(T::difference(after, &now))),
        None => Ok(Standing::Changed(
            "its state right after the action was not recorded, so later changes cannot be ruled out"
                .into(),
        )),
    }
}

/// One target of a rollback and the way to put it back.
type Step<'a> = (
    RestoredTarget,
    Box<dyn Fn() -> Result<String, GuardError> + 'a>,
);

/// Finds where each target stands and queues its restore.
fn check<'a, T: Target>(
    targets: &'a [T],
    after: Option<&'a [T]>,
    host: &'a Host<'a>,
    image: Option<&'a str>,
    plan: &mut Vec<Step<'a>>,
) -> Result<(), GuardError> {
    for t in targets {
        let after_t = after.and_then(|a| a.iter().find(|x| x.name() == t.name()));
        let (outcome, detail) = match standing(t, after_t, host, image)? {
            Standing::Done(d) => (TargetOutcome::AlreadyRestored, d),
            Standing::Due => (TargetOutcome::Skipped, String::new()),
            Standing::Changed(d) => (TargetOutcome::Changed, d),
        };
        plan.push((
            RestoredTarget {
                kind: T::KIND.into(),
                name: t.name().to_owned(),
                outcome,
                detail,
            },
            Box::new(move || t.restore(host, image)),
        ));
    }
    Ok(())
}

/// Rolls back to `req.target`: checks every target, stops on a later
/// change unless forced, snapshots the present, then restores in order and
/// stops at the first failure. Every step is safe to repeat. With
/// `check_only` it stops after the check and says where each target
/// stands, having changed nothing.
pub fn restore(req: &RestoreRequest, host: &Host<'_>) -> Result<RestoreReport, GuardError> {
    let started = Instant::now();
    let target = &req.target;
    if !target.kept {
        return Err(GuardError::Request(
            "the snapshot to restore holds fingerprints only, nothing to restore from".into(),
        ));
    }
    if !is_uuidish(&req.action_id) {
        return Err(GuardError::Request(format!(
            "`{}` is not an action id",
            req.action_id
        )));
    }
    let image = req.volume_image.as_deref();
    let after = req.after.as_ref();
    let mut plan: Vec<Step<'_>> = Vec::new();
    check(
        &target.repos,
        after.map(|a| a.repos.as_slice()),
        host,
        image,
        &mut plan,
    )?;
    check(
        &target.files,
        after.map(|a| a.files.as_slice()),
        host,
        image,
        &mut plan,
    )?;
    check(
        &target.volumes,
        after.map(|a| a.volumes.as_slice()),
        host,
        image,
        &mut plan,
    )?;
    check(
        &target.containers,
        after.map(|a| a.containers.as_slice()),
        host,
        image,
        &mut plan,
    )?;
    let changed = plan
        .iter()
        .any(|(t, _)| t.outcome == TargetOutcome::Changed);

    if req.check_only {
        let targets: Vec<RestoredTarget> = plan
            .into_iter()
            .map(|(mut t, _)| {
                if t.outcome == TargetOutcome::Skipped {
                    t.outcome = TargetOutcome::Due;
                }
                t
            })
            .collect();
        return Ok(RestoreReport {
            before: None,
            after: None,
            complete: targets
                .iter()
                .all(|t| t.outcome == TargetOutcome::AlreadyRestored),
            targets,
            duration_ms: elapsed_ms(started),
        });
    }
    if changed && !req.force {
        return Ok(RestoreReport {
            before: None,
            after: None,
            targets: plan.into_iter().map(|(t, _)| t).collect(),
            complete: false,
            duration_ms: elapsed_ms(started),
        });
    }
    // The present first, so this rollback can itself be rolled back.
    let before = take(
        &SnapshotRequest {
            action_id: req.action_id.clone(),
            plan: plan_of(target),
            keep: true,
            volume_image: req.volume_image.clone(),
        },
        host,
    )?;
    let mut failed = false;
    let mut targets = Vec::new();
    for (mut t, restore) in plan {
        if t.outcome != TargetOutcome::AlreadyRestored {
            if failed {
                t.outcome = TargetOutcome::Skipped;
                t.detail = "not tried: an earlier target failed".into();
            } else {
                match restore() {
                    Ok(detail) => {
                        t.outcome = TargetOutcome::Restored;
                        t.detail = detail;
                    }
                    Err(e) => {
                        failed = true;
                        t.outcome = TargetOutcome::Failed;
                        t.detail = e.to_string();
                    }
                }
            }
        }
        targets.push(t);
    }
    let after = take(
        &SnapshotRequest {
            action_id: req.action_id.clone(),
            plan: plan_of(target),
            keep: false,
            volume_image: req.volume_image.clone(),
        },
        host,
    )
    .ok();
    Ok(RestoreReport {
        before: Some(before),
        after,
        complete: !failed,
        targets,
        duration_ms: elapsed_ms(started),
    })
}

/// Removes what kept snapshots hold on the host.
pub fn drop(req: &DropRequest) -> DropReport {
    let mut report = DropReport::default();
    let mut note = |r: Result<Vec<String>, GuardError>| match r {
        Ok(removed) => report.removed.extend(removed),
        Err(e) => report.errors.push(e.to_string()),
    };
    for s in &req.snapshots {
        for r in &s.repos {
            note(git::drop(r));
        }
        for c in &s.containers {
            note(docker::drop(c));
        }
        for v in &s.volumes {
            note(docker::drop_volume(v));
        }
        for f in &s.files {
            note(files::drop(f));
        }
    }
    report
}
