//! A container as a snapshot target: its settings, its file changes and,
//! when kept, a `docker commit` image it is recreated from (see
//! [`crate::docker`]).

use jarvis_exec::snapshot::{ComposeTarget, ContainerState};

use super::Host;
use super::target::{Capture, SnapshotTarget};
use crate::docker;
use crate::error::GuardError;

/// How a plan names containers to capture.
pub enum Containers<'p> {
    /// One container, by name.
    Named(&'p str),
    /// The existing containers of a Compose project.
    Compose(&'p ComposeTarget),
}

impl SnapshotTarget for ContainerState {
    type Planned<'p> = Containers<'p>;

    fn capture(planned: Containers<'_>, cx: &mut Capture<'_>) -> Result<(), GuardError> {
        match planned {
            Containers::Named(name) => capture_one(name, cx),
            Containers::Compose(project) => {
                for name in docker::containers_of(project)? {
                    // The plan puts named containers before projects, so
                    // one named and in a project, or in two projects, is
                    // captured once.
                    if cx.snapshot.find::<ContainerState>(&name).is_none() {
                        capture_one(&name, cx)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn fingerprint(&self, _: &Host<'_>, _: Option<&str>) -> Result<ContainerState, GuardError> {
        docker::capture(&self.name, None).map(|(s, _)| s)
    }

    fn is_restored(&self, now: &ContainerState) -> bool {
        now.is_as_captured(self)
    }

    fn is_as_left(after: &ContainerState, now: &ContainerState) -> bool {
        now.unchanged_since(after)
    }

    fn describe_change(from: &ContainerState, to: &ContainerState) -> String {
        docker::difference(from, to)
    }

    fn restore(&self, host: &Host<'_>, _: Option<&str>) -> Result<String, GuardError> {
        if !self.exists {
            // The action created it: the rollback removes it.
            docker::remove(&self.name)?;
            return Ok(format!("removed {}, which did not exist before", self.name));
        }
        // Recreating runs a container with the snapshot's settings, so the
        // host policy judges it as the `docker run` it amounts to.
        let line = docker::run_line(self);
        (host.judge)(&line).map_err(|why| {
            GuardError::Policy(format!(
                "recreating {} as `{line}` is denied by the host policy: {why}",
                self.name
            ))
        })?;
        docker::restore(self)
    }

    fn drop_kept(&self) -> Result<Vec<String>, GuardError> {
        docker::drop(self)
    }
}

/// Captures one container, noting the volumes it mounts that the host
/// config does not mark stateful and what else it cannot capture.
fn capture_one(name: &str, cx: &mut Capture<'_>) -> Result<(), GuardError> {
    let (state, notes) = docker::capture(name, cx.keep)?;
    for v in &state.volumes {
        if !cx.plan.volumes().any(|p| p == v) {
            cx.not_captured(format!(
                "volume {v} of {name} is not marked stateful in the host config; its data is not captured"
            ));
        }
    }
    for note in notes {
        cx.not_captured(note);
    }
    cx.snapshot.push(state);
    Ok(())
}
