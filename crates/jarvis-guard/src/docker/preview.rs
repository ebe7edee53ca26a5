//! Live previews of a `docker` command: the command aimed at a throwaway,
//! network-less clone of the container, and what it changed there.

use std::time::{Duration, Instant};

use jarvis_core::ActionId;
use jarvis_core::text::cut_bytes;
use jarvis_exec::snapshot::{PreviewBasis, PreviewReport};
use rand_core::{OsRng, RngCore};
use serde_json::{Map, Value, json};

use super::{changes, check_name, checked, commit, inspect_container};
use super::{remove_container, remove_image};
use crate::cmd::Cmd;
use crate::engine::{DEFAULT_TIMEOUT, Engine, enc};
use crate::error::GuardError;

/// The repository of the images previews clone containers from; the tag is
/// the action id.
pub(super) const PREVIEW_REPOSITORY: &str = "jarvis-previews";

/// Marks preview clones, so a leftover one is recognisable.
const PREVIEW_LABEL: &str = "jarvis.preview";

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
    action_id: ActionId,
    timeout: Duration,
    cap: u64,
) -> Result<PreviewReport, GuardError> {
    let started = Instant::now();
    check_name("container", container)?;
    let clone = format!("jarvis-preview-{}", random_hex(6)?);
    let clone_argv = preview_argv(argv, container_arg, container, &clone)?;
    let engine = Engine::connect()?;
    let original = inspect_container(&engine, container)?.ok_or_else(|| {
        GuardError::Container(format!(
            "container {container} does not exist, so there is nothing to preview against"
        ))
    })?;
    let id = original["Id"].as_str().unwrap_or(container);
    // An `ActionId` displays as hex digits and dashes only, which an image
    // tag may hold.
    let tag = action_id.to_string();
    let image = format!("{PREVIEW_REPOSITORY}:{tag}");
    commit(&engine, id, PREVIEW_REPOSITORY, &tag, false).map_err(|e| {
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
pub(super) fn preview_argv(
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
    let (mut output, exit_code) = match run {
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
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut diff = changes.join("\n");
    let diff_cut = cut_bytes(&mut diff, cap);
    let output_cut = cut_bytes(&mut output, cap);
    Ok(PreviewReport {
        kind: PreviewBasis::Docker,
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

pub(super) fn random_hex(bytes: usize) -> Result<String, GuardError> {
    let mut buf = vec![0u8; bytes];
    OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| GuardError::Host(format!("cannot read random bytes: {e}")))?;
    Ok(hex::encode(buf))
}
