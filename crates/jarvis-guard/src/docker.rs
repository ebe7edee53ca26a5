//! Docker snapshots, rollbacks and previews on the host.
//!
//! A container is captured as its settings (a fingerprint over what a
//! rollback restores), its filesystem changes (a hash of `docker diff`) and,
//! when kept, a `docker commit` image plus the inspect data that recreates
//! it. A rollback recreates the container from that image with those
//! settings. Volumes are listed, archived and restored by short-lived helper
//! containers. The engine is reached over its API (see `engine`); helpers
//! and the commands of previews go through the `docker` CLI.

use std::collections::BTreeSet;
use std::time::Duration;

use jarvis_core::ActionId;
use jarvis_exec::snapshot::{ComposeTarget, ContainerState, IMAGE_REPOSITORY};
use serde_json::{Value, json};

use crate::engine::{DEFAULT_TIMEOUT, Engine, Reply, enc};
use crate::error::GuardError;

mod fingerprint;
mod preview;
mod restore;
mod volume;

use fingerprint::{fingerprint, settings_difference, sha256_hex, trim};
pub use preview::preview;
pub use restore::{restore, run_line};
pub use volume::{capture_volume, drop_volume, restore_volume};

/// A commit copies every changed file of the container.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(600);
/// Seconds a container's processes get to stop before they are killed.
const STOP_GRACE: u64 = 10;
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_DIR: &str = "com.docker.compose.project.working_dir";

/// The names of the existing containers of a Compose project.
pub fn containers_of(target: &ComposeTarget) -> Result<Vec<String>, GuardError> {
    let label = match (&target.project, &target.dir) {
        (Some(project), _) => format!("{COMPOSE_PROJECT}={project}"),
        (None, Some(_)) => COMPOSE_DIR.to_owned(),
        (None, None) => {
            return Err(GuardError::Container(
                "a Compose project needs a name or a directory".into(),
            ));
        }
    };
    let filters = json!({ "label": [label] }).to_string();
    let engine = Engine::connect()?;
    let list = checked(
        engine.call(
            "GET",
            &format!("/containers/json?all=true&filters={}", enc(&filters)),
            None,
            DEFAULT_TIMEOUT,
        )?,
        "cannot list the containers of a Compose project",
    )?;
    let dir = target.dir.as_deref().map(|d| d.trim_end_matches('/'));
    let mut names: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            dir.is_none_or(|d| {
                c["Labels"][COMPOSE_DIR]
                    .as_str()
                    .is_some_and(|v| v.trim_end_matches('/') == d)
            })
        })
        .filter_map(|c| {
            // Linked containers are listed under `/other/alias` too.
            strings(&c["Names"])
                .map(|n| n.trim_start_matches('/'))
                .find(|n| !n.contains('/'))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Captures a container; with `keep` (the action to keep it for), its
/// filesystem as the image `jarvis-snapshots:<action_id>.<id12>` and its
/// inspect data. Also returns what it cannot capture (bind mounts, tmpfs).
pub fn capture(
    name: &str,
    keep: Option<ActionId>,
) -> Result<(ContainerState, Vec<String>), GuardError> {
    check_name("container", name)?;
    let engine = Engine::connect()?;
    let mut state = look(&engine, name)?;
    let notes = state
        .inspect
        .as_ref()
        .map(|i| not_captured(name, i))
        .unwrap_or_default();
    match (&state.id, keep) {
        (Some(id), Some(action_id)) => {
            // An `ActionId` displays as hex digits and dashes only, which
            // an image tag may hold.
            let tag = format!("{action_id}.{}", short(id));
            let image_id = commit(&engine, id, IMAGE_REPOSITORY, &tag, true).map_err(|e| {
                GuardError::Container(format!("cannot snapshot container {name}: {e}"))
            })?;
            state.snapshot_image = Some(format!("{IMAGE_REPOSITORY}:{tag}"));
            state.snapshot_image_id = Some(image_id);
        }
        // Inspect data is only for restoring, and it is the bulk of a state.
        _ => state.inspect = None,
    }
    Ok((state, notes))
}

/// What differs, in plain words.
pub fn difference(from: &ContainerState, to: &ContainerState) -> String {
    let name = &to.name;
    match (from.exists, to.exists) {
        (false, false) => return String::new(),
        (true, false) => return format!("{name} was removed"),
        (false, true) => return format!("{name} was created"),
        (true, true) => {}
    }
    let mut parts = Vec::new();
    let same = from.id == to.id;
    if !same {
        let id = |s: &ContainerState| s.id.as_deref().map(short).unwrap_or("?").to_owned();
        parts.push(format!(
            "{name} is another container now (id {} → {})",
            id(from),
            id(to)
        ));
    }
    if let Some(settings) = settings_difference(from, to) {
        parts.push(settings);
    }
    if same && from.changes != to.changes {
        parts.push(format!("files of {name} changed"));
    }
    parts.join("; ")
}

/// Stops and removes the container `name`, if there is one (a rollback of
/// an action that created it). Whether there was one.
pub fn remove(name: &str) -> Result<bool, GuardError> {
    remove_container(&Engine::connect()?, name, false)
}

/// Removes a kept snapshot's image.
pub fn drop(state: &ContainerState) -> Result<Vec<String>, GuardError> {
    let Some(image) = &state.snapshot_image else {
        return Ok(Vec::new());
    };
    let engine = Engine::connect()?;
    let what = format!("snapshot image {image} of {}", state.name);
    Ok(vec![if remove_image(&engine, image, &what)? {
        format!("image {image}")
    } else {
        format!("image {image} (already gone)")
    }])
}

/// Inspect data, or `None` when there is no such container.
fn inspect_container(engine: &Engine, name: &str) -> Result<Option<Value>, GuardError> {
    let reply = engine.call(
        "GET",
        &format!("/containers/{}/json", enc(name)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    if reply.status == 404 {
        return Ok(None);
    }
    checked(reply, &format!("cannot inspect container {name}")).map(Some)
}

/// The container as it is now, with its trimmed inspect data.
fn look(engine: &Engine, name: &str) -> Result<ContainerState, GuardError> {
    let Some(inspect) = inspect_container(engine, name)? else {
        return Ok(ContainerState::absent(name));
    };
    let id = inspect["Id"]
        .as_str()
        .ok_or_else(|| GuardError::Container(format!("inspect of container {name} has no id")))?;
    let changes = changes(engine, id)?;
    let volumes = inspect["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .filter_map(|m| m["Name"].as_str().map(str::to_owned))
        .collect();
    Ok(ContainerState {
        name: name.to_owned(),
        exists: true,
        id: Some(id.to_owned()),
        running: inspect["State"]["Running"] == true,
        fingerprint: fingerprint(&inspect),
        changes: sha256_hex(changes.join("\n").as_bytes()),
        volumes,
        image: inspect["Config"]["Image"].as_str().map(str::to_owned),
        snapshot_image: None,
        snapshot_image_id: None,
        inspect: Some(trim(&inspect)),
    })
}

/// `docker diff` of a container: `A /path`, `C /path`, `D /path`, sorted by
/// path.
fn changes(engine: &Engine, container: &str) -> Result<Vec<String>, GuardError> {
    let list = checked(
        engine.call(
            "GET",
            &format!("/containers/{}/changes", enc(container)),
            None,
            DEFAULT_TIMEOUT,
        )?,
        &format!("cannot list the file changes of container {container}"),
    )?;
    let mut entries: Vec<(&str, &str)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let kind = match c["Kind"].as_u64() {
                Some(0) => "C",
                Some(1) => "A",
                Some(2) => "D",
                _ => "?",
            };
            (c["Path"].as_str().unwrap_or(""), kind)
        })
        .collect();
    entries.sort_unstable();
    Ok(entries
        .into_iter()
        .map(|(path, kind)| format!("{kind} {path}"))
        .collect())
}

/// One plain sentence per part of a container a snapshot leaves out.
fn not_captured(name: &str, inspect: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    let mut tmpfs: BTreeSet<&str> = inspect["HostConfig"]["Tmpfs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, _)| path.as_str())
        .collect();
    for m in inspect["Mounts"].as_array().into_iter().flatten() {
        let target = m["Destination"].as_str().unwrap_or("?");
        match m["Type"].as_str().unwrap_or("") {
            "bind" => notes.push(format!(
                "bind mount {} → {target} of {name}: host files are not captured",
                m["Source"].as_str().unwrap_or("?")
            )),
            "tmpfs" => {
                tmpfs.insert(target);
            }
            // Docker names anonymous volumes with 64 hex digits.
            "volume"
                if m["Name"]
                    .as_str()
                    .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                notes.push(format!(
                    "anonymous volume at {target} of {name}: its files are not captured, and a rollback gives it a new, empty one"
                ))
            }
            _ => {}
        }
    }
    notes.extend(
        tmpfs
            .into_iter()
            .map(|path| format!("tmpfs at {path} of {name}: its files are not captured")),
    );
    notes
}

/// `docker commit`; returns the image id.
fn commit(
    engine: &Engine,
    id: &str,
    repo: &str,
    tag: &str,
    pause: bool,
) -> Result<String, GuardError> {
    let body = checked(
        engine.call(
            "POST",
            &format!(
                "/commit?container={}&repo={}&tag={}&pause={pause}",
                enc(id),
                enc(repo),
                enc(tag)
            ),
            None,
            COMMIT_TIMEOUT,
        )?,
        &format!("commit to {repo}:{tag} failed"),
    )?;
    body["Id"].as_str().map(str::to_owned).ok_or_else(|| {
        GuardError::Container(format!(
            "the engine committed {repo}:{tag} but did not say its id"
        ))
    })
}

/// Removes a container, stopping it first (a preview clone is killed
/// outright, with its anonymous volumes). Whether there was one.
fn remove_container(engine: &Engine, name: &str, throwaway: bool) -> Result<bool, GuardError> {
    if !throwaway {
        // A failed stop is not fatal: the forced removal below kills it.
        engine.call(
            "POST",
            &format!("/containers/{}/stop?t={STOP_GRACE}", enc(name)),
            None,
            DEFAULT_TIMEOUT + Duration::from_secs(STOP_GRACE),
        )?;
    }
    let reply = engine.call(
        "DELETE",
        &format!("/containers/{}?force=true&v={throwaway}", enc(name)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    match reply.status {
        404 => Ok(false),
        _ if reply.ok() => Ok(true),
        _ => Err(GuardError::Container(format!(
            "cannot remove container {name}: {}",
            reply.message()
        ))),
    }
}

/// Removes an image by name; `what` names it in errors. Whether there was
/// one.
fn remove_image(engine: &Engine, image: &str, what: &str) -> Result<bool, GuardError> {
    let reply = engine.call(
        "DELETE",
        &format!("/images/{}", enc(image)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    match reply.status {
        404 => Ok(false),
        _ if reply.ok() => Ok(true),
        409 => Err(GuardError::Container(format!(
            "{what} is still used by a container, so it stays: {}",
            reply.message()
        ))),
        _ => Err(GuardError::Container(format!(
            "cannot remove {what}: {}",
            reply.message()
        ))),
    }
}

/// The body of a successful reply, or `what` with the engine's words.
fn checked(reply: Reply, what: &str) -> Result<Value, GuardError> {
    if reply.ok() {
        Ok(reply.body)
    } else {
        Err(GuardError::Engine(format!("{what}: {}", reply.message())))
    }
}

/// Container and volume names as Docker allows them; anything else could
/// bend a request path or a `-v` spec.
fn check_name(kind: &str, name: &str) -> Result<(), GuardError> {
    let mut chars = name.chars();
    let ok = name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(GuardError::Request(format!(
            "`{name}` is not a valid {kind} name"
        )))
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// The strings of a JSON array (none for anything else).
fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Cmd;
    use fingerprint::endpoints;
    use preview::{PREVIEW_REPOSITORY, preview_argv, random_hex};
    use restore::create_body;

    /// The sandbox's image (`sandbox/up`): busybox, nothing pulled.
    const IMAGE: &str = "jarvis-sandbox/busybox:latest";

    /// What a test made, removed when it ends however it ends: containers
    /// first, since they hold images, networks and volumes.
    #[derive(Default)]
    struct Scratch {
        containers: Vec<String>,
        images: Vec<String>,
        networks: Vec<String>,
        volumes: Vec<String>,
    }

    impl Scratch {
        fn new() -> Scratch {
            match Engine::connect() {
                Ok(engine) => assert!(!engine.api_version().is_empty(), "no API version"),
                Err(e) => panic!("these tests need a running Docker engine (sandbox/up): {e}"),
            }
            Scratch::default()
        }

        fn name(&self) -> String {
            format!("jarvis-test-{}", random_hex(5).expect("random name"))
        }

        /// `docker run -d` of a new container; returns its name.
        fn run(&mut self, flags: &[&str], command: &[&str]) -> String {
            let name = self.name();
            self.containers.push(name.clone());
            docker(
                &[
                    &["run", "-d", "--init", "--name", &name],
                    flags,
                    &[IMAGE],
                    command,
                ]
                .concat(),
            );
            name
        }

        /// Snapshot images of `states`, removed after the containers.
        fn keep_images(&mut self, states: &[&ContainerState]) {
            self.images
                .extend(states.iter().filter_map(|s| s.snapshot_image.clone()));
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let quiet = |args: &[&str]| {
                let _ = Cmd::new("docker").args(args).output();
            };
            for c in &self.containers {
                quiet(&["rm", "-f", "-v", c]);
            }
            for i in &self.images {
                quiet(&["rmi", "-f", i]);
            }
            for n in &self.networks {
                quiet(&["network", "rm", n]);
            }
            for v in &self.volumes {
                quiet(&["volume", "rm", "-f", v]);
            }
        }
    }

    fn docker(args: &[&str]) -> String {
        Cmd::new("docker")
            .args(args)
            .ok()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn action_id() -> ActionId {
        ActionId::new()
    }

    fn current(name: &str) -> ContainerState {
        capture(name, None).expect("capture").0
    }

    fn inspect(name: &str, format: &str) -> String {
        docker(&["inspect", "--format", format, name])
    }

    fn image_exists(image: &str) -> bool {
        Cmd::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn capture_leaves_the_container_untouched_and_drop_removes_its_image() {
        let mut t = Scratch::new();
        let project = t.name();
        let dir = format!("/srv/{project}");
        let name = t.run(
            &[
                "-v",
                "/tmp:/host-tmp:ro",
                "--tmpfs",
                "/scratch",
                "-l",
                &format!("{COMPOSE_PROJECT}={project}"),
                "-l",
                &format!("{COMPOSE_DIR}={dir}"),
            ],
            &["sleep", "3600"],
        );
        docker(&["exec", &name, "sh", "-c", "echo x > /file"]);
        let aid = action_id();

        let before = current(&name);
        assert!(before.exists && before.running && before.inspect.is_none());
        let (kept, notes) = capture(&name, Some(aid)).expect("capture");
        t.keep_images(&[&kept]);
        assert_eq!((&kept.id, &kept.changes), (&before.id, &before.changes));
        assert_eq!(kept.fingerprint, before.fingerprint);
        let id = kept.id.clone().expect("id");
        let image = format!("{IMAGE_REPOSITORY}:{aid}.{}", &id[..12]);
        assert_eq!(kept.snapshot_image.as_deref(), Some(image.as_str()));
        assert_eq!(
            kept.snapshot_image_id.as_deref(),
            Some(docker(&["image", "inspect", "--format", "{{.Id}}", &image]).as_str())
        );
        let size = serde_json::to_string(&kept).expect("json").len();
        assert!(size < 32 << 10, "a kept state is {size} bytes");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("bind mount /tmp → /host-tmp of") && n.contains(&name)),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.starts_with("tmpfs at /scratch")),
            "{notes:?}"
        );

        let after = current(&name);
        assert!(after.unchanged_since(&before) && after.is_as_captured(&kept));
        assert_eq!(difference(&before, &after), "");
        assert_eq!(
            inspect(&name, "{{.State.Running}} {{.State.Paused}}"),
            "true false"
        );

        let wanted = vec![name.clone()];
        let by_project = ComposeTarget {
            project: Some(project.clone()),
            dir: None,
        };
        assert_eq!(containers_of(&by_project), Ok(wanted.clone()));
        let by_dir = ComposeTarget {
            project: None,
            dir: Some(format!("{dir}/")),
        };
        assert_eq!(containers_of(&by_dir), Ok(wanted));

        assert_eq!(drop(&kept), Ok(vec![format!("image {image}")]));
        assert!(!image_exists(&image));
        assert_eq!(
            drop(&kept),
            Ok(vec![format!("image {image} (already gone)")])
        );

        let missing = current(&t.name());
        assert!(!missing.exists);
    }

    #[test]
    fn restore_brings_back_the_files_of_a_changed_container() {
        let mut t = Scratch::new();
        let name = t.run(&[], &["sleep", "3600"]);
        docker(&["exec", &name, "sh", "-c", "echo one > /data.txt"]);
        let (target, _) = capture(&name, Some(action_id())).expect("capture");
        t.keep_images(&[&target]);

        docker(&[
            "exec",
            &name,
            "sh",
            "-c",
            "echo two > /data.txt; rm /bin/ls; echo new > /new.txt",
        ]);
        let changed = current(&name);
        assert!(!changed.is_as_captured(&target));
        assert_eq!(
            difference(&target, &changed),
            format!("files of {name} changed")
        );

        let detail = restore(&target).expect("restore");
        assert!(
            detail.starts_with(&format!("recreated {name} from jarvis-snapshots:"))
                && detail.ends_with("; running; verified"),
            "{detail}"
        );
        assert_eq!(docker(&["exec", &name, "cat", "/data.txt"]), "one");
        docker(&["exec", &name, "ls", "/"]);
        assert!(docker(&["exec", &name, "sh", "-c", "test -e /new.txt || echo gone"]) == "gone");
        let restored = current(&name);
        assert!(restored.is_as_captured(&target));
        assert!(!restored.unchanged_since(&target));

        let again = restore(&target).expect("restore again");
        assert!(again.ends_with("verified"), "{again}");
        assert!(current(&name).is_as_captured(&target));
        assert_eq!(docker(&["exec", &name, "cat", "/data.txt"]), "one");
    }

    #[test]
    fn restore_brings_back_the_settings_of_a_replaced_container() {
        let mut t = Scratch::new();
        let (first, second) = (t.name(), t.name());
        for n in [&first, &second] {
            docker(&["network", "create", n]);
            t.networks.push(n.clone());
        }
        let name = t.run(
            &[
                "-e",
                "MODE=a",
                "-l",
                "app=one",
                "--restart",
                "unless-stopped",
                "--network",
                &first,
                "--network-alias",
                "web-alias",
            ],
            &["sleep", "3600"],
        );
        docker(&[
            "network",
            "connect",
            "--alias",
            "second-alias",
            &second,
            &name,
        ]);
        let (target, _) = capture(&name, Some(action_id())).expect("capture");
        t.keep_images(&[&target]);
        let original = inspect(
            &name,
            "{{json .Config.Env}} {{json .Config.Labels}} {{json .HostConfig.RestartPolicy}} {{json .Config.Cmd}}",
        );

        docker(&["rm", "-f", &name]);
        docker(&[
            "create",
            "--name",
            &name,
            "-e",
            "MODE=b",
            "-l",
            "app=two",
            "--restart",
            "no",
            IMAGE,
            "sleep",
            "100",
        ]);
        let engine = Engine::connect().expect("engine");
        let replaced = look(&engine, &name).expect("look");
        assert!(!replaced.is_as_captured(&target));
        let words = difference(&target, &replaced);
        assert!(
            words.contains(&format!("{name} is another container now (id ")),
            "{words}"
        );
        assert!(
            words.contains(&format!(
                "settings of {name} changed: Cmd, Env, Init, Labels, NetworkMode, Networks, RestartPolicy"
            )),
            "{words}"
        );

        restore(&target).expect("restore");
        assert_eq!(
            inspect(
                &name,
                "{{json .Config.Env}} {{json .Config.Labels}} {{json .HostConfig.RestartPolicy}} {{json .Config.Cmd}}",
            ),
            original
        );
        let restored = current(&name);
        assert!(restored.running);
        assert_eq!(restored.fingerprint, target.fingerprint);
        assert!(restored.is_as_captured(&target));
        let aliases = inspect(
            &name,
            &format!(
                "{{{{index .NetworkSettings.Networks \"{first}\" | json}}}} {{{{index .NetworkSettings.Networks \"{second}\" | json}}}}"
            ),
        );
        assert!(
            aliases.contains("web-alias") && aliases.contains("second-alias"),
            "{aliases}"
        );
        assert_eq!(
            run_line(&target),
            format!(
                "docker run -d --name {name} --network {first} --restart unless-stopped {} sleep 3600",
                target.snapshot_image.as_deref().unwrap_or("")
            )
        );
    }

    #[test]
    fn a_container_that_never_ran_is_restored_stopped() {
        let mut t = Scratch::new();
        let network = t.name();
        docker(&["network", "create", &network]);
        t.networks.push(network.clone());
        let name = t.name();
        t.containers.push(name.clone());
        docker(&[
            "create",
            "--name",
            &name,
            "--network",
            &network,
            "--network-alias",
            "db",
            IMAGE,
            "sleep",
            "3600",
        ]);
        let (target, _) = capture(&name, Some(action_id())).expect("capture");
        t.keep_images(&[&target]);
        assert!(!target.running);
        docker(&["start", &name]);
        assert_eq!(current(&name).fingerprint, target.fingerprint);
        restore(&target).expect("restore");
        let restored = current(&name);
        assert!(!restored.running && restored.is_as_captured(&target));
    }

    #[test]
    fn restore_fails_clearly_without_its_image() {
        let mut t = Scratch::new();
        let name = t.run(&[], &["sleep", "3600"]);
        let (target, _) = capture(&name, Some(action_id())).expect("capture");
        let image = target.snapshot_image.clone().expect("image");
        docker(&["rmi", &image]);
        let err = restore(&target).expect_err("no image").to_string();
        assert_eq!(
            err,
            format!("snapshot image {image} of {name} is gone or was replaced")
        );
        assert_eq!(current(&name).id, target.id, "the container was left alone");
    }

    #[test]
    fn preview_runs_in_a_clone_and_leaves_the_container_alone() {
        let mut t = Scratch::new();
        let name = t.run(&["-l", "com.docker.compose.project=x"], &["sleep", "3600"]);
        let before = current(&name);
        let aid = action_id();
        let argv: Vec<String> = [
            "exec",
            "-it",
            &name,
            "sh",
            "-c",
            "echo hi > /hello; rm /bin/ls; echo done; echo oops >&2",
        ]
        .map(String::from)
        .into();
        let report = preview(&name, &argv, 2, aid, Duration::from_secs(60), 4096).expect("preview");
        assert_eq!(report.kind.as_str(), "docker");
        assert_eq!(report.diff, "C /bin\nD /bin/ls\nA /hello");
        let diff: Vec<&str> = report.diff.lines().collect();
        assert!(
            diff.contains(&"A /hello") && diff.contains(&"D /bin/ls"),
            "{diff:?}"
        );
        assert_eq!(report.output, "done\noops\n");
        assert_eq!(report.exit_code, Some(0));
        assert!(!report.truncated);
        assert!(
            report.summary[0]
                .ends_with(&format!("paths changed in a network-less clone of {name}")),
            "{:?}",
            report.summary
        );
        assert!(current(&name).unchanged_since(&before));
        assert!(!image_exists(&format!("{PREVIEW_REPOSITORY}:{aid}")));
        let clones = docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=jarvis.preview=1",
            "--filter",
            "label=com.docker.compose.project=",
        ]);
        assert_eq!(clones, "", "a preview clone was left behind");

        let stop: Vec<String> = ["stop", "-t", "1", &name].map(String::from).into();
        let report = preview(&name, &stop, 3, aid, Duration::from_secs(60), 10).expect("preview");
        assert!(
            report
                .summary
                .contains(&"the clone is running → stopped".to_owned()),
            "{:?}",
            report.summary
        );
        assert!(report.truncated && report.output.len() == 10, "{report:?}");
        assert!(current(&name).unchanged_since(&before));
        assert!(current(&name).running);
        t.images.push(format!("{PREVIEW_REPOSITORY}:{aid}"));
    }

    #[test]
    fn previews_refuse_what_could_reach_past_the_clone() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let id: ActionId = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
            .parse()
            .expect("a UUID v7");
        let t = Duration::from_secs(5);
        let err = preview(
            "web",
            &argv(&["exec", "--privileged", "web", "sh"]),
            2,
            id,
            t,
            10,
        )
        .expect_err("privileged")
        .to_string();
        assert!(err.contains("--privileged"), "{err}");
        let err = preview("web", &argv(&["rm", "web"]), 1, id, t, 10)
            .expect_err("rm")
            .to_string();
        assert_eq!(err, "no live preview for `docker rm`");
        for (words, at) in [
            (&["stop", "other", "web"][..], 2),
            (&["stop", "web", "other"][..], 1),
            (&["exec", "--env-file", "/etc/shadow", "web", "env"][..], 3),
            (&["exec", "web", "env"][..], 2),
        ] {
            assert!(
                preview_argv(&argv(words), at, "web", "clone").is_err(),
                "{words:?}"
            );
        }
        assert_eq!(
            preview_argv(
                &argv(&[
                    "exec", "-it", "-e", "-t", "--tty", "-itu", "root", "-w/x", "web", "ls", "-t"
                ]),
                8,
                "web",
                "clone"
            ),
            Ok(argv(&[
                "exec", "-e", "-t", "-u", "root", "-w/x", "clone", "ls", "-t"
            ]))
        );
        assert_eq!(
            preview_argv(&argv(&["stop", "-t", "5", "web"]), 3, "web", "clone"),
            Ok(argv(&["stop", "-t", "5", "clone"]))
        );
    }

    #[test]
    fn volumes_round_trip_through_their_archive() {
        let mut t = Scratch::new();
        let volume = t.name();
        t.volumes.push(volume.clone());
        docker(&["volume", "create", &volume]);
        let mount = format!("{volume}:/v");
        docker(&[
            "run",
            "--rm",
            "-v",
            &mount,
            IMAGE,
            "sh",
            "-c",
            "echo one > /v/a; chmod 600 /v/a; mkdir /v/d; echo two > /v/d/b; ln -s a /v/link; touch /v/.hidden",
        ]);
        let state_dir = tempfile::tempdir().expect("tempdir");
        let aid = action_id();
        let kept =
            capture_volume(&volume, Some(aid), Some(IMAGE), state_dir.path()).expect("capture");
        let archive = kept.archive.clone().expect("archive");
        assert!(kept.exists && kept.bytes > 0);
        let meta = std::fs::metadata(&archive).expect("archive");
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            nix::unistd::getuid().as_raw()
        );
        let same = capture_volume(&volume, None, Some(IMAGE), state_dir.path()).expect("capture");
        assert!(same.same_as(&kept) && same.archive.is_none());

        docker(&[
            "run",
            "--rm",
            "-v",
            &mount,
            IMAGE,
            "sh",
            "-c",
            "echo changed > /v/a; rm /v/d/b /v/.hidden; echo x > /v/new; chmod 700 /v/d",
        ]);
        let changed =
            capture_volume(&volume, None, Some(IMAGE), state_dir.path()).expect("capture");
        assert!(!changed.same_as(&kept));

        let detail = restore_volume(&kept, IMAGE).expect("restore");
        assert!(
            detail.starts_with(&format!("restored volume {volume} from {archive}")),
            "{detail}"
        );
        let back = capture_volume(&volume, None, Some(IMAGE), state_dir.path()).expect("capture");
        assert!(back.same_as(&kept));
        assert_eq!(
            docker(&[
                "run",
                "--rm",
                "-v",
                &mount,
                IMAGE,
                "sh",
                "-c",
                "cat /v/a /v/d/b; ls -A /v"
            ]),
            "one\ntwo\n.hidden\na\nd\nlink"
        );

        assert_eq!(drop_volume(&kept), Ok(vec![format!("archive {archive}")]));
        assert!(
            !state_dir
                .path()
                .join("volumes")
                .join(aid.to_string())
                .exists()
        );
        let err = restore_volume(&kept, IMAGE)
            .expect_err("archive gone")
            .to_string();
        assert!(err.ends_with("is missing"), "{err}");

        assert!(
            !capture_volume(&t.name(), None, Some(IMAGE), state_dir.path())
                .expect("capture")
                .exists
        );
        let err = capture_volume(&volume, None, None, state_dir.path())
            .expect_err("no image")
            .to_string();
        assert!(err.contains("no helper image"), "{err}");
    }

    fn sample_inspect(id: &str, hostname: &str, aliases: &[&str]) -> Value {
        json!({
            "Id": id,
            "Name": "/web",
            "Config": {
                "Hostname": hostname, "Image": "nginx", "Env": ["A=1"], "Cmd": ["nginx", "-g", "daemon off;"],
                "Entrypoint": ["/docker-entrypoint.sh", "--quiet"], "User": "www", "Labels": {"b": "2", "a": "1"},
            },
            "HostConfig": {
                "Privileged": true, "CapAdd": ["NET_ADMIN"], "Binds": ["/srv/www:/usr/share/nginx/html:ro"],
                "NetworkMode": "front", "PidMode": "host", "IpcMode": "private",
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}],
                "SecurityOpt": ["seccomp=unconfined"], "Dns": [], "Links": ["/db:/web/database"],
            },
            "NetworkSettings": {"Networks": {
                "back": {"Aliases": aliases, "IPAddress": "10.0.0.7", "IPAMConfig": {"IPv4Address": "10.0.0.7"}},
                "front": {"Aliases": null, "IPAddress": "10.1.0.3", "MacAddress": "02:42"},
            }},
        })
    }

    #[test]
    fn fingerprints_ignore_what_docker_picks_itself() {
        let a = sample_inspect("aaaaaaaaaaaa1111", "aaaaaaaaaaaa", &["web", "aaaaaaaaaaaa"]);
        let mut b = sample_inspect("bbbbbbbbbbbb2222", "bbbbbbbbbbbb", &["bbbbbbbbbbbb", "web"]);
        b["NetworkSettings"]["Networks"]["back"]["IPAddress"] = json!("10.0.0.8");
        b["HostConfig"]["Dns"] = Value::Null;
        b["Config"]["Image"] = json!("jarvis-snapshots:x");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&trim(&a)), fingerprint(&a));
        b["Config"]["Hostname"] = json!("named");
        b["HostConfig"]["RestartPolicy"]["Name"] = json!("always");
        assert_ne!(fingerprint(&a), fingerprint(&b));
        let state = |inspect: &Value| ContainerState {
            name: "web".into(),
            exists: true,
            id: inspect["Id"].as_str().map(str::to_owned),
            running: true,
            fingerprint: fingerprint(inspect),
            changes: String::new(),
            volumes: Vec::new(),
            image: None,
            snapshot_image: None,
            snapshot_image_id: None,
            inspect: Some(trim(inspect)),
        };
        assert_eq!(
            difference(&state(&a), &state(&b)),
            "web is another container now (id aaaaaaaaaaaa → bbbbbbbbbbbb); settings of web changed: Hostname, RestartPolicy"
        );
        let gone = ContainerState {
            exists: false,
            ..state(&a)
        };
        assert_eq!(difference(&state(&a), &gone), "web was removed");
        assert!(gone.is_as_captured(&gone) && !state(&a).is_as_captured(&gone));

        let body = create_body(&a, "jarvis-snapshots:t");
        assert_eq!(body["Image"], "jarvis-snapshots:t");
        assert!(body.get("Hostname").is_none());
        assert_eq!(body["HostConfig"]["Links"], json!(["db:database"]));
        let order: Vec<String> = endpoints(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, ["front", "back"]);
        assert_eq!(
            endpoints(&a)[1].1,
            json!({"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.0.0.7"}})
        );
    }

    #[test]
    fn run_lines_show_the_security_relevant_settings() {
        let target = ContainerState {
            name: "web".into(),
            exists: true,
            id: Some("aaaaaaaaaaaa1111".into()),
            running: true,
            fingerprint: String::new(),
            changes: String::new(),
            volumes: Vec::new(),
            image: Some("nginx".into()),
            snapshot_image: Some("jarvis-snapshots:t".into()),
            snapshot_image_id: None,
            inspect: Some(sample_inspect("aaaaaaaaaaaa1111", "aaaaaaaaaaaa", &[])),
        };
        assert_eq!(
            run_line(&target),
            "docker run -d --privileged --name web --cap-add NET_ADMIN --device /dev/fuse:/dev/fuse:rwm \
             -v /srv/www:/usr/share/nginx/html:ro --network front --pid host -p 127.0.0.1:8080:80/tcp \
             --security-opt seccomp=unconfined -u www --restart on-failure:3 \
             --entrypoint /docker-entrypoint.sh jarvis-snapshots:t --quiet nginx -g 'daemon off;'"
        );
    }
}
