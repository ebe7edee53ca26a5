//! Docker snapshots, rollbacks and previews on the host.
//!
//! (Being written: see the contract on each function.)

use std::path::Path;
use std::time::Duration;

use jarvis_exec::snapshot::{ComposeTarget, ContainerState, PreviewReport, VolumeState};

/// The names of the existing containers of a Compose project.
pub fn containers_of(target: &ComposeTarget) -> Result<Vec<String>, String> {
    let _ = target;
    Err("docker snapshots are not built yet".into())
}

/// Captures a container; with `keep`, its filesystem as the image
/// `jarvis-snapshots:<action_id>.<id12>` and its inspect data. Also returns
/// what it cannot capture (bind mounts, tmpfs).
pub fn capture(
    name: &str,
    action_id: &str,
    keep: bool,
) -> Result<(ContainerState, Vec<String>), String> {
    let _ = (name, action_id, keep);
    Err("docker snapshots are not built yet".into())
}

/// Whether `current` is the container `target` captured, or one a rollback
/// made from it.
pub fn matches_target(current: &ContainerState, target: &ContainerState) -> bool {
    let _ = (current, target);
    false
}

/// Whether `current` is still exactly as `after` found it.
pub fn matches_after(current: &ContainerState, after: &ContainerState) -> bool {
    let _ = (current, after);
    false
}

/// What differs, in plain words.
pub fn difference(from: &ContainerState, to: &ContainerState) -> String {
    let _ = (from, to);
    String::new()
}

/// Recreates the container from a kept snapshot and verifies it.
pub fn restore(target: &ContainerState) -> Result<String, String> {
    let _ = target;
    Err("docker rollback is not built yet".into())
}

/// The `docker run` line equivalent to a kept snapshot's settings, for the
/// host policy to judge before a rollback recreates it.
pub fn run_line(target: &ContainerState) -> String {
    let _ = target;
    String::new()
}

/// Runs `docker argv…` against a throwaway clone of `container`.
pub fn preview(
    container: &str,
    argv: &[String],
    container_arg: usize,
    action_id: &str,
    timeout: Duration,
    cap: u64,
) -> Result<PreviewReport, String> {
    let _ = (container, argv, container_arg, action_id, timeout, cap);
    Err("docker previews are not built yet".into())
}

/// Removes a kept snapshot's image.
pub fn drop(state: &ContainerState) -> Result<Vec<String>, String> {
    let _ = state;
    Ok(Vec::new())
}

/// Captures a named volume; with `keep`, archived under `state_dir`.
pub fn capture_volume(
    name: &str,
    action_id: &str,
    keep: bool,
    image: Option<&str>,
    state_dir: &Path,
) -> Result<VolumeState, String> {
    let _ = (name, action_id, keep, image, state_dir);
    Err("volume snapshots are not built yet".into())
}

/// Whether two states of a volume are the same.
pub fn volume_matches(a: &VolumeState, b: &VolumeState) -> bool {
    a.exists == b.exists && a.fingerprint == b.fingerprint
}

/// Restores a volume from its archive and verifies it.
pub fn restore_volume(target: &VolumeState, image: &str) -> Result<String, String> {
    let _ = (target, image);
    Err("volume rollback is not built yet".into())
}

/// Removes a kept volume archive.
pub fn drop_volume(state: &VolumeState) -> Result<Vec<String>, String> {
    let _ = state;
    Ok(Vec::new())
}
