//! Putting a container back from a kept snapshot: the policy's view of the
//! recreation as a `docker run` line, the create body, and the recreation
//! itself, verified against the snapshot.

use std::time::{Duration, Instant};

use jarvis_exec::snapshot::ContainerState;
use jarvis_policy::dryrun::quote;
use serde_json::{Map, Value, json};

use super::fingerprint::{endpoints, settings_difference, short_id};
use super::{check_name, checked, look, remove_container, short, strings};
use crate::engine::{DEFAULT_TIMEOUT, Engine, enc};
use crate::error::GuardError;

/// How long a recreated container gets to reach its snapshot's state.
const SETTLE: Duration = Duration::from_secs(5);

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

/// The create body that recreates a captured container from `image`.
pub(super) fn create_body(inspect: &Value, image: &str) -> Value {
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
