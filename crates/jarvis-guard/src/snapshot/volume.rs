//! A named volume the host config marks stateful, as a snapshot target:
//! archived by a helper container (see [`crate::docker`]).

use jarvis_exec::snapshot::VolumeState;

use super::Host;
use super::target::{Capture, SnapshotTarget};
use crate::docker;
use crate::error::GuardError;

impl SnapshotTarget for VolumeState {
    /// The volume's name.
    type Planned<'p> = &'p str;

    fn capture(name: &str, cx: &mut Capture<'_>) -> Result<(), GuardError> {
        // Only the stateful volumes this action's containers use; the plan
        // puts volumes after containers, so every container is in by now.
        if !cx
            .snapshot
            .containers()
            .any(|c| c.volumes.iter().any(|v| v == name))
        {
            return Ok(());
        }
        let state = docker::capture_volume(name, cx.keep, cx.volume_image, cx.host.state_dir)?;
        cx.snapshot.push(state);
        Ok(())
    }

    fn fingerprint(&self, host: &Host<'_>, image: Option<&str>) -> Result<VolumeState, GuardError> {
        docker::capture_volume(&self.name, None, image, host.state_dir)
    }

    fn is_restored(&self, now: &VolumeState) -> bool {
        now.same_as(self)
    }

    fn is_as_left(after: &VolumeState, now: &VolumeState) -> bool {
        now.same_as(after)
    }

    fn describe_change(from: &VolumeState, to: &VolumeState) -> String {
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

    fn drop_kept(&self) -> Result<Vec<String>, GuardError> {
        docker::drop_volume(self)
    }
}
