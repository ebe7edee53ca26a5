//! What a container's settings are, as a rollback sees them: the fields it
//! restores, their fingerprint, and the network endpoints and trimmed
//! inspect data a kept snapshot carries.

use std::collections::{BTreeMap, BTreeSet};

use jarvis_core::canonical_json;
use jarvis_exec::snapshot::ContainerState;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{short, strings};

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

/// `settings of NAME changed: Env, Labels`, naming the fields when both
/// states carry inspect data; `None` when the fingerprints agree.
pub(super) fn settings_difference(from: &ContainerState, to: &ContainerState) -> Option<String> {
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
pub(super) fn fingerprint(inspect: &Value) -> String {
    let settings = settings(inspect)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    sha256_hex(canonical_json(&Value::Object(settings)).as_bytes())
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
pub(super) fn endpoints(inspect: &Value) -> Vec<(String, Value)> {
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
pub(super) fn trim(inspect: &Value) -> Value {
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

pub(super) fn short_id(inspect: &Value) -> &str {
    short(inspect["Id"].as_str().unwrap_or(""))
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

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
