//! Docker snapshots, rollbacks and previews on the host.
//!
//! A container is captured as its settings (a fingerprint over what a
//! rollback restores), its filesystem changes (a hash of `docker diff`) and,
//! when kept, a `docker commit` image plus the inspect data that recreates
//! it. A rollback recreates the container from that image with those
//! settings. Volumes are listed, archived and restored by short-lived helper
//! containers. The engine is reached over its API (see `engine`); helpers
//! and the commands of previews go through the `docker` CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jarvis_exec::snapshot::{
    ComposeTarget, ContainerState, IMAGE_REPOSITORY, PreviewReport, VolumeState,
};
use jarvis_policy::dryrun::quote;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::cmd::Cmd;
use crate::engine::{DEFAULT_TIMEOUT, Engine, Reply, enc};
use crate::error::GuardError;

/// The repository of the images previews clone containers from; the tag is
/// the action id.
const PREVIEW_REPOSITORY: &str = "jarvis-previews";
/// Marks preview clones, so a leftover one is recognisable.
const PREVIEW_LABEL: &str = "jarvis.preview";
/// A commit copies every changed file of the container.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(600);
/// Seconds a container's processes get to stop before they are killed.
const STOP_GRACE: u64 = 10;
/// How long a recreated container gets to reach its snapshot's state.
const SETTLE: Duration = Duration::from_secs(5);
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_DIR: &str = "com.docker.compose.project.working_dir";

/// Settings under `Config` that a rollback restores; see [`fingerprint`].
const CONFIG_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "Labels",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Hostname",
    "Domainname",
    "Tty",
    "OpenStdin",
    "StopSignal",
    "Healthcheck",
    "Volumes",
];

/// Settings under `HostConfig` that a rollback restores; see
/// [`fingerprint`].
const HOST_FIELDS: &[&str] = &[
    "Binds",
    "Mounts",
    "PortBindings",
    "RestartPolicy",
    "NetworkMode",
    "Privileged",
    "CapAdd",
    "CapDrop",
    "Devices",
    "Init",
    "Memory",
    "NanoCpus",
    "CpuShares",
    "ExtraHosts",
    "Dns",
    "LogConfig",
    "AutoRemove",
    "ReadonlyRootfs",
    "Tmpfs",
    "SecurityOpt",
    "PidMode",
    "IpcMode",
    "UsernsMode",
    "Sysctls",
    "ShmSize",
];

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

/// Captures a container; with `keep`, its filesystem as the image
/// `jarvis-snapshots:<action_id>.<id12>` and its inspect data. Also returns
/// what it cannot capture (bind mounts, tmpfs).
pub fn capture(
    name: &str,
    action_id: &str,
    keep: bool,
) -> Result<(ContainerState, Vec<String>), GuardError> {
    check_name("container", name)?;
    if keep {
        check_action_id(action_id)?;
    }
    let engine = Engine::connect()?;
    let mut state = look(&engine, name)?;
    let notes = state
        .inspect
        .as_ref()
        .map(|i| not_captured(name, i))
        .unwrap_or_default();
    match (&state.id, keep) {
        (Some(id), true) => {
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

/// `settings of NAME changed: Env, Labels`, naming the fields when both
/// states carry inspect data; `None` when the fingerprints agree.
fn settings_difference(from: &ContainerState, to: &ContainerState) -> Option<String> {
    if from.fingerprint == to.fingerprint {
        return None;
    }
    let fields = match (&from.inspect, &to.inspect) {
        (Some(a), Some(b)) => {
            let (a, b) = (settings(a), settings(b));
            let keys: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
            keys.into_iter()
                .filter(|k| a.get(k) != b.get(k))
                .collect::<Vec<_>>()
        }
        _ => Vec::new(),
    };
    Some(if fields.is_empty() {
        format!("settings of {} changed", to.name)
    } else {
        format!("settings of {} changed: {}", to.name, fields.join(", "))
    })
}

/// Recreates the container from a kept snapshot and verifies it.
pub fn restore(target: &ContainerState) -> Result<String, GuardError> {
    let name = &target.name;
    check_name("container", name)?;
    let (Some(image), Some(image_id), Some(inspect)) = (
        &target.snapshot_image,
        &target.snapshot_image_id,
        &target.inspect,
    ) else {
        return Err(GuardError::Container(format!(
            "the snapshot of {name} holds no image and settings to recreate it from"
        )));
    };
    let engine = Engine::connect()?;
    let found = engine.call(
        "GET",
        &format!("/images/{}/json", enc(image)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    if !found.ok() || found.body["Id"].as_str() != Some(image_id) {
        return Err(GuardError::Container(format!(
            "snapshot image {image} of {name} is gone or was replaced"
        )));
    }
    let endpoints = endpoints(inspect);
    // Checked before anything is removed: a missing network would leave
    // no container at all.
    for (network, _) in &endpoints {
        let reply = engine.call(
            "GET",
            &format!("/networks/{}", enc(network)),
            None,
            DEFAULT_TIMEOUT,
        )?;
        if reply.status == 404 {
            return Err(GuardError::Container(format!(
                "network {network} of {name} is gone; create it again, then retry the rollback"
            )));
        }
    }
    remove_container(&engine, name, false)?;
    let mut body = create_body(inspect, image);
    let mut endpoints = endpoints.into_iter();
    // API versions before 1.44 take one network at create; the others are
    // connected afterwards.
    if let Some((network, config)) = endpoints.next() {
        body["NetworkingConfig"] =
            json!({ "EndpointsConfig": Map::from_iter([(network, config)]) });
    }
    let created = checked(
        engine.call(
            "POST",
            &format!("/containers/create?name={}", enc(name)),
            Some(&body),
            DEFAULT_TIMEOUT,
        )?,
        &format!("cannot recreate {name} from {image}"),
    )?;
    let id = created["Id"].as_str().ok_or_else(|| {
        GuardError::Container(format!("the engine created {name} but did not say its id"))
    })?;
    for (network, config) in endpoints {
        checked(
            engine.call(
                "POST",
                &format!("/networks/{}/connect", enc(&network)),
                Some(&json!({ "Container": id, "EndpointConfig": config })),
                DEFAULT_TIMEOUT,
            )?,
            &format!("recreated {name} but cannot connect it to network {network}"),
        )?;
    }
    if target.running {
        checked(
            engine.call(
                "POST",
                &format!("/containers/{}/start", enc(id)),
                None,
                DEFAULT_TIMEOUT,
            )?,
            &format!("recreated {name} but cannot start it"),
        )?;
    }
    let state = |running: bool| if running { "running" } else { "stopped" };
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = look(&engine, name)?;
        let image_ok = now.image.as_deref() == Some(image.as_str());
        if now.fingerprint == target.fingerprint && image_ok && now.running == target.running {
            return Ok(format!(
                "recreated {name} from {image} with its settings (fingerprint {}…); {}; verified",
                short(&target.fingerprint),
                state(target.running)
            ));
        }
        if Instant::now() >= deadline {
            let mut problems: Vec<String> = settings_difference(target, &now).into_iter().collect();
            if !image_ok {
                problems.push(format!(
                    "its image is {}",
                    now.image.as_deref().unwrap_or("unknown")
                ));
            }
            if now.running != target.running {
                problems.push(format!(
                    "it is {}, the snapshot's was {}",
                    state(now.running),
                    state(target.running)
                ));
            }
            return Err(GuardError::Container(format!(
                "recreated {name} from {image}, but it does not match its snapshot: {}",
                problems.join("; ")
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `docker run` line equivalent to a kept snapshot's settings, for the
/// host policy to judge before a rollback recreates it.
///
/// It carries what the policy weighs (privileges, capabilities, devices,
/// mounts, namespaces, ports, user, restart policy, command), not the
/// environment: that may hold secrets, and the line is shown and logged.
pub fn run_line(target: &ContainerState) -> String {
    let inspect = target.inspect.clone().unwrap_or(Value::Null);
    let (config, host) = (&inspect["Config"], &inspect["HostConfig"]);
    let mut words: Vec<String> = ["docker", "run", "-d"].map(String::from).into();
    if host["Privileged"] == true {
        words.push("--privileged".into());
    }
    let mut flag = |name: &str, value: String| words.extend([name.to_owned(), value]);
    flag("--name", target.name.clone());
    for cap in strings(&host["CapAdd"]) {
        flag("--cap-add", cap.into());
    }
    for cap in strings(&host["CapDrop"]) {
        flag("--cap-drop", cap.into());
    }
    for d in host["Devices"].as_array().into_iter().flatten() {
        let part = |k: &str| d[k].as_str().unwrap_or("").to_owned();
        flag(
            "--device",
            format!(
                "{}:{}:{}",
                part("PathOnHost"),
                part("PathInContainer"),
                part("CgroupPermissions")
            ),
        );
    }
    for bind in strings(&host["Binds"]) {
        flag("-v", bind.into());
    }
    for m in host["Mounts"].as_array().into_iter().flatten() {
        let mut spec = format!("type={}", m["Type"].as_str().unwrap_or("volume"));
        if let Some(source) = m["Source"].as_str().filter(|s| !s.is_empty()) {
            spec.push_str(&format!(",source={source}"));
        }
        spec.push_str(&format!(",target={}", m["Target"].as_str().unwrap_or("")));
        if m["ReadOnly"] == true {
            spec.push_str(",readonly");
        }
        flag("--mount", spec);
    }
    for (path, options) in host["Tmpfs"].as_object().into_iter().flatten() {
        match options.as_str().filter(|o| !o.is_empty()) {
            Some(o) => flag("--tmpfs", format!("{path}:{o}")),
            None => flag("--tmpfs", path.clone()),
        }
    }
    for from in strings(&host["VolumesFrom"]) {
        flag("--volumes-from", from.into());
    }
    if let Some(mode) = host["NetworkMode"]
        .as_str()
        .filter(|m| !["", "default", "bridge"].contains(m))
    {
        flag("--network", mode.into());
    }
    for (option, key) in [
        ("--pid", "PidMode"),
        ("--ipc", "IpcMode"),
        ("--uts", "UTSMode"),
        ("--userns", "UsernsMode"),
    ] {
        if let Some(mode) = host[key]
            .as_str()
            .filter(|m| !["", "private", "shareable"].contains(m))
        {
            flag(option, mode.into());
        }
    }
    for (port, bindings) in host["PortBindings"].as_object().into_iter().flatten() {
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let host_port = b["HostPort"].as_str().unwrap_or("");
            flag(
                "-p",
                match ip {
                    "" => format!("{host_port}:{port}"),
                    ip => format!("{ip}:{host_port}:{port}"),
                },
            );
        }
    }
    for option in strings(&host["SecurityOpt"]) {
        flag("--security-opt", option.into());
    }
    for (key, value) in host["Sysctls"].as_object().into_iter().flatten() {
        flag(
            "--sysctl",
            format!("{key}={}", value.as_str().unwrap_or("")),
        );
    }
    if let Some(user) = config["User"].as_str().filter(|u| !u.is_empty()) {
        flag("-u", user.into());
    }
    let restart = &host["RestartPolicy"];
    if let Some(policy) = restart["Name"].as_str().filter(|p| !["", "no"].contains(p)) {
        match restart["MaximumRetryCount"].as_u64().filter(|n| *n > 0) {
            Some(n) => flag("--restart", format!("{policy}:{n}")),
            None => flag("--restart", policy.into()),
        }
    }
    let mut entrypoint = strings(&config["Entrypoint"]);
    if let Some(first) = entrypoint.next() {
        flag("--entrypoint", first.into());
    }
    let image = target
        .snapshot_image
        .as_deref()
        .or(target.image.as_deref())
        .unwrap_or("IMAGE");
    words.push(image.into());
    // `--entrypoint` takes one word; the rest of it comes before the command.
    words.extend(entrypoint.map(str::to_owned));
    words.extend(strings(&config["Cmd"]).map(str::to_owned));
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// Runs `docker argv…` against a throwaway clone of `container`.
///
/// The clone is made from a commit of the container (not paused: the
/// container is not touched), with its command, environment, user and
/// working directory but no network, mounts, ports, devices or extra
/// privileges, so what the command does stays inside it. The clone and its
/// image are removed afterwards, also when the preview fails.
pub fn preview(
    container: &str,
    argv: &[String],
    container_arg: usize,
    action_id: &str,
    timeout: Duration,
    cap: u64,
) -> Result<PreviewReport, GuardError> {
    let started = Instant::now();
    check_name("container", container)?;
    check_action_id(action_id)?;
    let clone = format!("jarvis-preview-{}", random_hex(6)?);
    let clone_argv = preview_argv(argv, container_arg, container, &clone)?;
    let engine = Engine::connect()?;
    let original = inspect_container(&engine, container)?.ok_or_else(|| {
        GuardError::Container(format!(
            "container {container} does not exist, so there is nothing to preview against"
        ))
    })?;
    let id = original["Id"].as_str().unwrap_or(container);
    let image = format!("{PREVIEW_REPOSITORY}:{action_id}");
    commit(&engine, id, PREVIEW_REPOSITORY, action_id, false).map_err(|e| {
        GuardError::Container(format!(
            "cannot make an image of {container} to preview on: {e}"
        ))
    })?;
    let result = run_in_clone(
        &engine,
        &original,
        &image,
        &clone,
        &clone_argv,
        timeout,
        cap,
    );
    let cleanup: Vec<String> = [
        remove_container(&engine, &clone, true).err(),
        remove_image(&engine, &image, &format!("preview image {image}")).err(),
    ]
    .into_iter()
    .flatten()
    .map(|e| e.to_string())
    .collect();
    match result {
        Ok(mut report) => {
            report
                .summary
                .extend(cleanup.into_iter().map(|e| format!("cleanup failed: {e}")));
            report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok(report)
        }
        Err(e) if cleanup.is_empty() => Err(e),
        Err(e) => Err(GuardError::Container(format!(
            "{e}; cleanup failed too: {}",
            cleanup.join("; ")
        ))),
    }
}

/// The short flags (as letters) and long flags that take a value, of each
/// docker subcommand a clone can preview.
fn preview_flags(sub: &str) -> Option<(&'static str, &'static [&'static str])> {
    match sub {
        "exec" => Some(("euw", &["--env", "--user", "--workdir", "--detach-keys"])),
        "stop" | "restart" => Some(("st", &["--signal", "--time"])),
        "kill" => Some(("s", &["--signal"])),
        "start" => Some(("", &["--detach-keys", "--checkpoint", "--checkpoint-dir"])),
        _ => None,
    }
}

/// `argv` aimed at the clone: the container's name replaced, terminal
/// flags dropped (there is no terminal), and refused when it could reach
/// past the clone: another container, `--privileged`, a host file.
fn preview_argv(
    argv: &[String],
    container_arg: usize,
    container: &str,
    clone: &str,
) -> Result<Vec<String>, GuardError> {
    let sub = argv.first().map(String::as_str).unwrap_or("");
    let (short_values, long_values) = preview_flags(sub)
        .ok_or_else(|| GuardError::Container(format!("no live preview for `docker {sub}`")))?;
    if container_arg == 0 || argv.get(container_arg).map(String::as_str) != Some(container) {
        return Err(GuardError::Container(format!(
            "`docker {}` does not name {container} where the preview expects it",
            argv.join(" ")
        )));
    }
    let elsewhere = |word: &str| {
        GuardError::Container(format!(
            "`docker {sub}` names `{word}` besides {container}; a preview runs against that one container only"
        ))
    };
    let exec = sub == "exec";
    let mut out = vec![sub.to_owned()];
    let mut words = argv[1..container_arg].iter();
    while let Some(word) = words.next() {
        let (flag, inline_value) = match word.split_once('=') {
            Some((f, _)) if word.starts_with("--") => (f, true),
            _ => (word.as_str(), false),
        };
        if flag == "--privileged" && word != "--privileged=false" {
            return Err(GuardError::Container(format!(
                "a preview does not run `docker {sub} --privileged`"
            )));
        }
        if flag == "--env-file" {
            return Err(GuardError::Container(
                "a preview does not read files of the host (`--env-file`); pass the variables with `-e`"
                    .into(),
            ));
        }
        let takes_value;
        if flag.starts_with("--") {
            if exec && (flag == "--tty" || flag == "--interactive") {
                continue;
            }
            takes_value = !inline_value && long_values.contains(&flag);
            out.push(word.clone());
        } else if let Some(letters) = flag.strip_prefix('-').filter(|l| !l.is_empty()) {
            // A cluster like `-it` or `-itu root`: the letters before the
            // first one that takes a value are switches.
            let at = letters.find(|c| short_values.contains(c));
            let (switches, rest) = letters.split_at(at.unwrap_or(letters.len()));
            takes_value = rest.len() == 1;
            let switches: String = switches
                .chars()
                .filter(|c| !(exec && "it".contains(*c)))
                .collect();
            if switches.is_empty() && rest.is_empty() {
                continue;
            }
            out.push(format!("-{switches}{rest}"));
        } else {
            return Err(elsewhere(word));
        }
        if takes_value && let Some(value) = words.next() {
            out.push(value.clone());
        }
    }
    out.push(clone.to_owned());
    let rest = &argv[container_arg + 1..];
    if let (false, Some(word)) = (exec, rest.first()) {
        return Err(elsewhere(word));
    }
    out.extend(rest.iter().cloned());
    Ok(out)
}

/// Creates and (when the original runs) starts the clone, runs the command
/// and reports what it changed.
fn run_in_clone(
    engine: &Engine,
    original: &Value,
    image: &str,
    clone: &str,
    argv: &[String],
    timeout: Duration,
    cap: u64,
) -> Result<PreviewReport, GuardError> {
    let name = original["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/');
    checked(
        engine.call(
            "POST",
            &format!("/containers/create?name={}", enc(clone)),
            Some(&clone_body(original, image)),
            DEFAULT_TIMEOUT,
        )?,
        &format!("cannot create a clone of {name}"),
    )?;
    let was_running = original["State"]["Running"] == true;
    if was_running {
        checked(
            engine.call(
                "POST",
                &format!("/containers/{}/start", enc(clone)),
                None,
                DEFAULT_TIMEOUT,
            )?,
            &format!("cannot start the clone of {name}"),
        )?;
    }
    let clone_state = || -> Result<(bool, String), GuardError> {
        let inspect = inspect_container(engine, clone)?
            .ok_or_else(|| GuardError::Container(format!("the clone of {name} vanished")))?;
        let state = &inspect["State"];
        Ok((
            state["Running"] == true,
            state["StartedAt"].as_str().unwrap_or("").to_owned(),
        ))
    };
    let before = clone_state()?;
    let run = Cmd::new("docker").args(argv).timeout(timeout).output();
    let after = clone_state()?;
    let changes = changes(engine, clone)?;

    let mut summary = Vec::new();
    let (output, exit_code) = match run {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (text, out.status.code())
        }
        Err(e) => {
            summary.push(e.to_string());
            (String::new(), None)
        }
    };
    summary.push(match changes.len() {
        0 => format!("no file changed in a clone of {name}"),
        1 => format!("1 path changed in a network-less clone of {name}"),
        n => format!("{n} paths changed in a network-less clone of {name}"),
    });
    let word = |running: bool| if running { "running" } else { "stopped" };
    if was_running && !before.0 {
        summary.push(format!(
            "the clone stopped before the command ran (it may need the network or volumes of {name})"
        ));
    }
    if before.0 != after.0 {
        summary.push(format!(
            "the clone is {} → {}",
            word(before.0),
            word(after.0)
        ));
    } else if before.1 != after.1 {
        summary.push(format!("the clone was restarted and is {}", word(after.0)));
    }
    let mounts: Vec<&str> = original["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["Destination"].as_str())
        .collect();
    if !mounts.is_empty() {
        summary.push(format!(
            "the clone has none of the mounts of {name} ({})",
            mounts.join(", ")
        ));
    }
    let (diff, diff_cut) = cut(changes.join("\n"), cap);
    let (output, output_cut) = cut(output, cap);
    Ok(PreviewReport {
        kind: "docker".into(),
        summary,
        diff,
        output,
        exit_code,
        truncated: diff_cut || output_cut,
        duration_ms: 0,
    })
}

/// The create body of a preview clone.
fn clone_body(original: &Value, image: &str) -> Value {
    let config = &original["Config"];
    let host = &original["HostConfig"];
    let mut labels: Map<String, Value> = config["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            // `docker commit` copies the container's labels into the image
            // and a container inherits its image's labels, so leaving the
            // Compose labels out is not enough: emptied, they keep the clone
            // out of the project.
            let v = if k.starts_with("com.docker.compose.") {
                json!("")
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    labels.insert(PREVIEW_LABEL.into(), json!("1"));
    json!({
        "Image": image,
        "Cmd": config["Cmd"],
        "Entrypoint": config["Entrypoint"],
        "Env": config["Env"],
        "WorkingDir": config["WorkingDir"],
        "User": config["User"],
        // A shell kept alive by an open stdin would exit at once without them.
        "Tty": config["Tty"],
        "OpenStdin": config["OpenStdin"],
        "StopSignal": config["StopSignal"],
        "Labels": labels,
        "HostConfig": {
            "NetworkMode": "none",
            "RestartPolicy": { "Name": "no" },
            "Privileged": false,
            "Init": host["Init"],
            // The original's limits bound the clone as well.
            "Memory": host["Memory"],
            "NanoCpus": host["NanoCpus"],
            "CpuShares": host["CpuShares"],
            "PidsLimit": host["PidsLimit"],
        },
    })
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

/// Captures a named volume; with `keep`, archived under `state_dir`.
pub fn capture_volume(
    name: &str,
    action_id: &str,
    keep: bool,
    image: Option<&str>,
    state_dir: &Path,
) -> Result<VolumeState, GuardError> {
    check_name("volume", name)?;
    if keep {
        check_action_id(action_id)?;
    }
    let engine = Engine::connect()?;
    let found = engine.call(
        "GET",
        &format!("/volumes/{}", enc(name)),
        None,
        DEFAULT_TIMEOUT,
    )?;
    let mut state = VolumeState {
        name: name.to_owned(),
        exists: found.status != 404,
        fingerprint: String::new(),
        archive: None,
        bytes: 0,
    };
    if !state.exists {
        return Ok(state);
    }
    checked(found, &format!("cannot inspect volume {name}"))?;
    let image = image.ok_or_else(|| {
        GuardError::Volume(format!(
            "volume {name} cannot be captured: no helper image (volume_image) is configured"
        ))
    })?;
    state.fingerprint = volume_fingerprint(name, image)?;
    if keep {
        let archive = archive_volume(name, image, &state_dir.join("volumes").join(action_id))?;
        state.bytes = std::fs::metadata(&archive)
            .map_err(|e| {
                GuardError::Volume(format!(
                    "archive {} of volume {name}: {e}",
                    archive.display()
                ))
            })?
            .len();
        state.archive = Some(archive.display().to_string());
    }
    Ok(state)
}

/// Restores a volume from its archive and verifies it. A volume the
/// snapshot did not find is removed.
pub fn restore_volume(target: &VolumeState, image: &str) -> Result<String, GuardError> {
    let name = &target.name;
    check_name("volume", name)?;
    if !target.exists {
        let engine = Engine::connect()?;
        let reply = engine.call(
            "DELETE",
            &format!("/volumes/{}", enc(name)),
            None,
            DEFAULT_TIMEOUT,
        )?;
        return match reply.status {
            404 => Ok(format!(
                "volume {name} does not exist, as when the snapshot was taken"
            )),
            _ if reply.ok() => Ok(format!(
                "removed volume {name}, which did not exist when the snapshot was taken"
            )),
            _ => Err(GuardError::Volume(format!(
                "cannot remove volume {name}: {}",
                reply.message()
            ))),
        };
    }
    let archive = Path::new(target.archive.as_deref().unwrap_or(""));
    let (Some(dir), Some(file)) = (
        archive.parent(),
        archive.file_name().and_then(|f| f.to_str()),
    ) else {
        return Err(GuardError::Volume(format!(
            "the snapshot of volume {name} kept no archive"
        )));
    };
    if !archive.is_file() {
        return Err(GuardError::Volume(format!(
            "archive {} of volume {name} is missing",
            archive.display()
        )));
    }
    // The globs catch dot files; one that matches nothing stays literal,
    // which `rm -f` ignores.
    let script = r#"cd /v && rm -rf -- * .[!.]* ..?* && tar -xf "/in/$1" -C /v"#;
    helper(
        image,
        &[
            format!("{name}:/v"),
            format!("{}:/in:ro", mount_source(dir)?),
        ],
        script,
        &[file],
    )
    .ok()
    .map_err(|e| {
        GuardError::Volume(format!(
            "cannot restore volume {name} from {}: {e}",
            archive.display()
        ))
    })?;
    let now = volume_fingerprint(name, image)?;
    if now != target.fingerprint {
        return Err(GuardError::Volume(format!(
            "restored volume {name} from {}, but its files do not match the snapshot (fingerprint {} → {})",
            archive.display(),
            short(&target.fingerprint),
            short(&now)
        )));
    }
    Ok(format!(
        "restored volume {name} from {} ({} bytes); its files match the snapshot (fingerprint {}…)",
        archive.display(),
        target.bytes,
        short(&now)
    ))
}

/// Removes a kept volume archive.
pub fn drop_volume(state: &VolumeState) -> Result<Vec<String>, GuardError> {
    let Some(archive) = &state.archive else {
        return Ok(Vec::new());
    };
    let path = Path::new(archive);
    let removed = match std::fs::remove_file(path) {
        Ok(()) => format!("archive {archive}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("archive {archive} (already gone)")
        }
        Err(e) => {
            return Err(GuardError::Volume(format!(
                "cannot remove archive {archive} of volume {}: {e}",
                state.name
            )));
        }
    };
    // The per-action directory goes with its last archive; while others
    // remain, removing it fails, as it should.
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(vec![removed])
}

/// Archives a volume as `dir/NAME.tar` with a helper container.
fn archive_volume(name: &str, image: &str, dir: &Path) -> Result<PathBuf, GuardError> {
    let dir = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::canonicalize(dir))
        .map_err(|e| {
            GuardError::Volume(format!(
                "cannot prepare {} for volume {name}: {e}",
                dir.display()
            ))
        })?;
    let owner = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
    // The helper runs as root: the archive is handed to the guard's user,
    // and appears under its name only once complete.
    let script = r#"tar -cf "/out/.$1.part" -C /v . && chown "$2" "/out/.$1.part" && mv "/out/.$1.part" "/out/$1.tar""#;
    helper(
        image,
        &[
            format!("{name}:/v:ro"),
            format!("{}:/out", mount_source(&dir)?),
        ],
        script,
        &[name, &owner],
    )
    .ok()
    .map_err(|e| GuardError::Volume(format!("cannot archive volume {name}: {e}")))?;
    Ok(dir.join(format!("{name}.tar")))
}

/// Lists the files of a volume, as a helper container sees them: path,
/// type, mode, owner, size and content hash; SHA-256 over the list.
fn volume_fingerprint(name: &str, image: &str) -> Result<String, GuardError> {
    const LISTING: &str = r#"set -o pipefail
cd /v && find . | LC_ALL=C sort | while IFS= read -r p; do
  if [ -L "$p" ]; then echo "l $(stat -c %u:%g "$p") $p -> $(readlink "$p")"
  elif [ -f "$p" ]; then echo "f $(stat -c '%a %u:%g %s' "$p") $(sha256sum < "$p" | cut -d' ' -f1) $p"
  elif [ -d "$p" ]; then echo "d $(stat -c '%a %u:%g' "$p") $p"
  else echo "o $(stat -c '%a %u:%g %F' "$p") $p"
  fi
done"#;
    let listing = helper(image, &[format!("{name}:/v:ro")], LISTING, &[])
        .ok()
        .map_err(|e| GuardError::Volume(format!("cannot list the files of volume {name}: {e}")))?;
    Ok(sha256_hex(listing.as_bytes()))
}

/// `docker run` of a short-lived helper container: root (it must read and
/// restore every file and owner), no network, nothing pulled.
fn helper(image: &str, volumes: &[String], script: &str, args: &[&str]) -> Cmd {
    let mut cmd = Cmd::new("docker").args([
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--user",
        "0:0",
        "--label",
        "jarvis.helper=1",
        "--entrypoint",
        "sh",
    ]);
    for v in volumes {
        cmd = cmd.args(["-v", v]);
    }
    cmd.arg(image).args(["-c", script, "sh"]).args(args)
}

/// A host directory as the source of `-v SOURCE:TARGET`, where a colon
/// would end it early.
fn mount_source(dir: &Path) -> Result<&str, GuardError> {
    dir.to_str()
        .filter(|d| d.starts_with('/') && !d.contains(':'))
        .ok_or_else(|| {
            GuardError::Volume(format!(
                "{} cannot be mounted into a helper container",
                dir.display()
            ))
        })
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

/// SHA-256 over the settings a rollback restores, as canonical JSON (keys
/// sorted, unset values left out):
///
/// - from `Config`: Cmd, Entrypoint, Env, Labels, WorkingDir, User,
///   ExposedPorts, Hostname (unless it is Docker's default, the short id),
///   Domainname, Tty, OpenStdin, StopSignal, Healthcheck, Volumes;
/// - from `HostConfig`: Binds, Mounts, PortBindings, RestartPolicy,
///   NetworkMode, Privileged, CapAdd, CapDrop, Devices, Init, Memory,
///   NanoCpus, CpuShares, ExtraHosts, Dns, LogConfig, AutoRemove,
///   ReadonlyRootfs, Tmpfs, SecurityOpt, PidMode, IpcMode, UsernsMode,
///   Sysctls, ShmSize;
/// - `Networks`: each network the container is in, with its configured
///   aliases (without the short id Docker adds itself) and static
///   addresses.
///
/// Not the image (a rollback recreates from the snapshot image), the id,
/// creation time or state, nor runtime addresses.
fn fingerprint(inspect: &Value) -> String {
    let settings = settings(inspect)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    sha256_hex(canonical(&Value::Object(settings)).as_bytes())
}

/// The settings of [`fingerprint`], by field name.
fn settings(inspect: &Value) -> BTreeMap<&'static str, Value> {
    let short_id = short_id(inspect);
    let mut out = BTreeMap::new();
    for (section, fields) in [("Config", CONFIG_FIELDS), ("HostConfig", HOST_FIELDS)] {
        for &field in fields {
            let value = &inspect[section][field];
            let default_hostname = field == "Hostname" && value.as_str() == Some(short_id);
            if !is_unset(value) && !default_hostname {
                out.insert(field, value.clone());
            }
        }
    }
    let networks: Map<String, Value> = networks(inspect)
        .map(|(network, endpoint)| {
            let mut config = endpoint_config(inspect, endpoint);
            config.retain(|k, _| k == "Aliases" || k == "IPAMConfig");
            (network.clone(), Value::Object(config))
        })
        .collect();
    if !networks.is_empty() {
        out.insert("Networks", Value::Object(networks));
    }
    out
}

fn networks(inspect: &Value) -> impl Iterator<Item = (&String, &Value)> {
    inspect["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
}

/// The configured part of a network endpoint: aliases (sorted, without the
/// short id Docker adds itself at start), static addresses, links, driver
/// options. Runtime addresses and ids are left out.
fn endpoint_config(inspect: &Value, endpoint: &Value) -> Map<String, Value> {
    let short_id = short_id(inspect);
    let mut aliases: Vec<&str> = strings(&endpoint["Aliases"])
        .filter(|a| *a != short_id)
        .collect();
    aliases.sort_unstable();
    aliases.dedup();
    let mut ipam = endpoint["IPAMConfig"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    ipam.retain(|_, v| !is_unset(v));
    let mut config = Map::new();
    for (key, value) in [
        ("Aliases", json!(aliases)),
        ("IPAMConfig", Value::Object(ipam)),
        ("Links", endpoint["Links"].clone()),
        ("DriverOpts", endpoint["DriverOpts"].clone()),
    ] {
        if !is_unset(&value) {
            config.insert(key.into(), value);
        }
    }
    config
}

/// The networks to attach at recreation, the one of `NetworkMode` first;
/// none when the container uses the host's, another container's or no
/// network stack.
fn endpoints(inspect: &Value) -> Vec<(String, Value)> {
    let mode = inspect["HostConfig"]["NetworkMode"].as_str().unwrap_or("");
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Vec::new();
    }
    let primary = if mode.is_empty() || mode == "default" {
        "bridge"
    } else {
        mode
    };
    let mut list: Vec<(String, Value)> = networks(inspect)
        .map(|(n, ep)| (n.clone(), Value::Object(endpoint_config(inspect, ep))))
        .collect();
    list.sort_by(|a, b| (a.0 != primary, &a.0).cmp(&(b.0 != primary, &b.0)));
    list
}

/// Inspect data cut to what restoring and comparing need, so a kept state
/// stays small: it travels back on an SSH command line.
fn trim(inspect: &Value) -> Value {
    let networks: Map<String, Value> = networks(inspect)
        .map(|(n, ep)| (n.clone(), Value::Object(endpoint_config(inspect, ep))))
        .collect();
    json!({
        "Id": inspect["Id"],
        "Name": inspect["Name"],
        "Config": inspect["Config"],
        "HostConfig": inspect["HostConfig"],
        "Mounts": inspect["Mounts"],
        "NetworkSettings": { "Networks": networks },
    })
}

/// The create body that recreates a captured container from `image`.
fn create_body(inspect: &Value, image: &str) -> Value {
    let mut body = inspect["Config"].as_object().cloned().unwrap_or_default();
    body.insert("Image".into(), json!(image));
    // The old container's default hostname was its id; the new one gets
    // its own, as `settings` expects.
    if body.get("Hostname").and_then(Value::as_str) == Some(short_id(inspect)) {
        body.remove("Hostname");
    }
    let mut host = inspect["HostConfig"].clone();
    // Inspect shows links as `/other:/name/alias`; create takes `other:alias`.
    if let Some(links) = host.get_mut("Links").and_then(Value::as_array_mut) {
        for link in links.iter_mut() {
            if let Some((other, alias)) = link.as_str().and_then(|l| l.split_once(':')) {
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                *link = json!(format!("{}:{alias}", other.trim_start_matches('/')));
            }
        }
    }
    body.insert("HostConfig".into(), host);
    Value::Object(body)
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

/// Action ids become image tags and directory names: hex and dashes only.
fn check_action_id(id: &str) -> Result<(), GuardError> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_hexdigit())
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(GuardError::Request(format!(
            "`{id}` is not an action id (hex digits and dashes)"
        )))
    }
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

fn short_id(inspect: &Value) -> &str {
    short(inspect["Id"].as_str().unwrap_or(""))
}

/// The strings of a JSON array (none for anything else).
fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Null, `""`, `[]` and `{}`: what the engine shows for a setting not made,
/// in more than one way.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// JSON with object keys sorted at every level, whatever order the map
/// type keeps.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut members: Vec<(&String, &Value)> = o.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{}:{}", json!(k), canonical(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn random_hex(bytes: usize) -> Result<String, GuardError> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| GuardError::Host(format!("cannot read /dev/urandom: {e}")))?;
    Ok(hex::encode(buf))
}

/// `s` cut to at most `cap` bytes on a character boundary; whether it was.
fn cut(mut s: String, cap: u64) -> (String, bool) {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if s.len() <= cap {
        return (s, false);
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn action_id() -> String {
        let h = random_hex(16).expect("random id");
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn current(name: &str) -> ContainerState {
        capture(name, "", false).expect("capture").0
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
        let (kept, notes) = capture(&name, &aid, true).expect("capture");
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
        assert!(capture(&name, "not-an-id!", true).is_err());
    }

    #[test]
    fn restore_brings_back_the_files_of_a_changed_container() {
        let mut t = Scratch::new();
        let name = t.run(&[], &["sleep", "3600"]);
        docker(&["exec", &name, "sh", "-c", "echo one > /data.txt"]);
        let (target, _) = capture(&name, &action_id(), true).expect("capture");
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
        let (target, _) = capture(&name, &action_id(), true).expect("capture");
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
        let (target, _) = capture(&name, &action_id(), true).expect("capture");
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
        let (target, _) = capture(&name, &action_id(), true).expect("capture");
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
        let report =
            preview(&name, &argv, 2, &aid, Duration::from_secs(60), 4096).expect("preview");
        assert_eq!(report.kind, "docker");
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
        let report = preview(&name, &stop, 3, &aid, Duration::from_secs(60), 10).expect("preview");
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
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
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
            capture_volume(&volume, &aid, true, Some(IMAGE), state_dir.path()).expect("capture");
        let archive = kept.archive.clone().expect("archive");
        assert!(kept.exists && kept.bytes > 0);
        let meta = std::fs::metadata(&archive).expect("archive");
        assert_eq!(
            std::os::unix::fs::MetadataExt::uid(&meta),
            nix::unistd::getuid().as_raw()
        );
        let same =
            capture_volume(&volume, "", false, Some(IMAGE), state_dir.path()).expect("capture");
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
            capture_volume(&volume, "", false, Some(IMAGE), state_dir.path()).expect("capture");
        assert!(!changed.same_as(&kept));

        let detail = restore_volume(&kept, IMAGE).expect("restore");
        assert!(
            detail.starts_with(&format!("restored volume {volume} from {archive}")),
            "{detail}"
        );
        let back =
            capture_volume(&volume, "", false, Some(IMAGE), state_dir.path()).expect("capture");
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
        assert!(!state_dir.path().join("volumes").join(&aid).exists());
        let err = restore_volume(&kept, IMAGE)
            .expect_err("archive gone")
            .to_string();
        assert!(err.ends_with("is missing"), "{err}");

        assert!(
            !capture_volume(&t.name(), "", false, Some(IMAGE), state_dir.path())
                .expect("capture")
                .exists
        );
        let err = capture_volume(&volume, "", false, None, state_dir.path())
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
