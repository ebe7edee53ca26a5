//! Snapshots and rollbacks of every kind of target, in one order and with
//! one set of rules: what a rollback compares, when it stops, and that it
//! snapshots the present before it changes anything.
//!
//! Each kind of target is one module implementing [`SnapshotTarget`]
//! (`repo`, `container`, `volume`, `file`); this file dispatches a plan's
//! and a manifest's lists over them. The orders are the lists' own: a
//! snapshot captures in plan order
//! ([`SnapshotPlan::targets`](jarvis_exec::snapshot::SnapshotPlan::targets)), a
//! rollback restores in [`Snapshot::in_restore_order`], a drop goes in
//! manifest order.

use std::path::Path;
use std::time::Instant;

use jarvis_exec::snapshot::{
    ContainerState, DropReport, DropRequest, FileState, PlanTarget, RepoState, RestoreReport,
    RestoreRequest, RestoredTarget, Snapshot, SnapshotRequest, TargetOutcome, TargetState,
    VolumeState,
};

use crate::error::GuardError;

mod container;
mod file;
mod repo;
mod target;
mod volume;

use container::Containers;
use target::{Capture, SnapshotTarget, Standing};

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

/// Takes a snapshot of a plan's targets, in the plan's order.
pub fn take(req: &SnapshotRequest, host: &Host<'_>) -> Result<Snapshot, GuardError> {
    let started = Instant::now();
    let plan = &req.plan;
    let mut snapshot = Snapshot::new(req.action_id, req.keep);
    snapshot.not_captured = plan.not_captured.clone();
    let mut cx = Capture {
        keep: req.keep.then_some(req.action_id),
        volume_image: req.volume_image.as_deref(),
        host,
        plan,
        snapshot,
    };
    for t in plan.targets() {
        match t {
            PlanTarget::Repo(dir) => RepoState::capture(dir, &mut cx)?,
            PlanTarget::Container(name) => {
                ContainerState::capture(Containers::Named(name), &mut cx)?
            }
            PlanTarget::Compose(project) => {
                ContainerState::capture(Containers::Compose(project), &mut cx)?
            }
            PlanTarget::Volume(name) => VolumeState::capture(name, &mut cx)?,
            PlanTarget::File(path) => FileState::capture(path, &mut cx)?,
        }
    }
    let mut snapshot = cx.snapshot;
    snapshot.duration_ms = elapsed_ms(started);
    Ok(snapshot)
}

/// One target of a rollback and the way to put it back.
type Step<'a> = (
    RestoredTarget,
    Box<dyn Fn() -> Result<String, GuardError> + 'a>,
);

/// Finds where `target` stands and queues its restore.
fn check<'a>(
    target: &'a TargetState,
    after: Option<&'a Snapshot>,
    host: &'a Host<'a>,
    image: Option<&'a str>,
) -> Result<Step<'a>, GuardError> {
    match target {
        TargetState::Repo(t) => check_one(t, after, host, image),
        TargetState::Container(t) => check_one(t, after, host, image),
        TargetState::Volume(t) => check_one(t, after, host, image),
        TargetState::File(t) => check_one(t, after, host, image),
    }
}

fn check_one<'a, T: SnapshotTarget>(
    target: &'a T,
    after: Option<&'a Snapshot>,
    host: &'a Host<'a>,
    image: Option<&'a str>,
) -> Result<Step<'a>, GuardError> {
    let after = after.and_then(|a| a.find::<T>(target.name()));
    let (outcome, detail) = match target.standing(after, host, image)? {
        Standing::Done(d) => (TargetOutcome::AlreadyRestored, d),
        Standing::Due => (TargetOutcome::Skipped, String::new()),
        Standing::Changed(d) => (TargetOutcome::Changed, d),
    };
    Ok((
        target.describe(outcome, detail),
        Box::new(move || target.restore(host, image)),
    ))
}

/// Rolls back to `req.target`: checks every target, stops on a later
/// change unless forced, snapshots the present, then restores in
/// [`Snapshot::in_restore_order`] and stops at the first failure. Every
/// step is safe to repeat. With `check_only` it stops after the check and
/// says where each target stands, having changed nothing.
pub fn restore(req: &RestoreRequest, host: &Host<'_>) -> Result<RestoreReport, GuardError> {
    let started = Instant::now();
    let target = &req.target;
    if !target.kept {
        return Err(GuardError::Request(
            "the snapshot to restore holds fingerprints only, nothing to restore from".into(),
        ));
    }
    let image = req.volume_image.as_deref();
    let after = req.after.as_ref();
    let plan = target
        .in_restore_order()
        .into_iter()
        .map(|t| check(t, after, host, image))
        .collect::<Result<Vec<Step<'_>>, GuardError>>()?;
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
            action_id: req.action_id,
            plan: target.plan(),
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
            action_id: req.action_id,
            plan: target.plan(),
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

/// Removes what kept snapshots hold on the host, each snapshot's targets
/// in manifest order; a target that cannot be dropped is reported and the
/// rest still go.
pub fn drop(req: &DropRequest) -> DropReport {
    let mut report = DropReport::default();
    for s in &req.snapshots {
        for t in s.targets() {
            let dropped = match t {
                TargetState::Repo(r) => r.drop_kept(),
                TargetState::Container(c) => c.drop_kept(),
                TargetState::Volume(v) => v.drop_kept(),
                TargetState::File(f) => f.drop_kept(),
            };
            match dropped {
                Ok(removed) => report.removed.extend(removed),
                Err(e) => report.errors.push(e.to_string()),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests;
