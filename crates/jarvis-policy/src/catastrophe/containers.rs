//! Containers given the host's directories: what `docker run` would do
//! inside, with its bind mounts mapped back to the host paths.

// Named so, because `code` is what this module calls the code it reads.

use super::lines::quoted_line;
use super::{Call, Reading};

/// `docker run` options that take a value as the next word.
const RUN_VALUE_OPTIONS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--annotation",
    "--blkio-weight",
    "--cap-add",
    "--cap-drop",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "-c",
    "--cpu-shares",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--device",
    "--device-cgroup-rule",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--env-file",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-timeout",
    "-h",
    "--hostname",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "-l",
    "--label",
    "--label-file",
    "--link",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-swap",
    "--mount",
    "--name",
    "--network",
    "--net",
    "--network-alias",
    "--pid",
    "--platform",
    "-p",
    "--publish",
    "--pull",
    "--restart",
    "--runtime",
    "--security-opt",
    "--shm-size",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "-u",
    "--user",
    "--ulimit",
    "--userns",
    "--uts",
    "-v",
    "--volume",
    "--volumes-from",
    "-w",
    "--workdir",
    "--pod",
    "--secret",
    "--arch",
    "--os",
];

/// Global options of the container CLIs that take a value.
pub(super) const GLOBAL_VALUE_OPTIONS: &[&str] = &[
    "-H",
    "--host",
    "-c",
    "--context",
    "--config",
    "-l",
    "--log-level",
    "--tlscacert",
    "--tlscert",
    "--tlskey",
    "--url",
    "--connection",
    "--root",
    "--runroot",
    "--namespace",
    "-n",
    "--storage-driver",
    "--cgroup-manager",
];

/// `docker run -v /:/host alpine rm -rf /host`: what the container runs,
/// with each writable bind mount's container path mapped back to the
/// host's; with `--privileged` the host's devices are the container's, and
/// with `--pid=host` too, what it runs may reach the host whole.
pub(super) fn container_run(call: &Call, r: &mut Reading) {
    let args = call.args;
    let mut i = 0;
    while i < args.len() && args[i].text.starts_with('-') {
        if GLOBAL_VALUE_OPTIONS.contains(&args[i].text.as_str()) {
            i += 1;
        }
        i += 1;
    }
    match args.get(i).map(|a| a.text.as_str()) {
        Some("run") => i += 1,
        Some("container") if args.get(i + 1).is_some_and(|a| a.text == "run") => i += 2,
        _ => return,
    }
    let mut mounts: Vec<(String, String)> = Vec::new();
    let mut privileged = false;
    let mut host_pid = false;
    let mut entrypoint: Option<String> = None;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if !t.starts_with('-') {
            break;
        }
        let (name, value) = match t.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (t, None),
        };
        let value = if value.is_none() && RUN_VALUE_OPTIONS.contains(&name) {
            i += 1;
            args.get(i).map(|a| a.text.clone())
        } else {
            value
        };
        match (name, value) {
            ("-v" | "--volume", Some(v)) => {
                let parts: Vec<&str> = v.split(':').collect();
                if let [src, dst, rest @ ..] = parts.as_slice()
                    && src.starts_with('/')
                    && !rest
                        .iter()
                        .any(|o| o.split(',').any(|o| o == "ro" || o == "readonly"))
                {
                    mounts.push(((*src).to_owned(), (*dst).to_owned()));
                }
            }
            ("--mount", Some(v)) => {
                let mut src = None;
                let mut dst = None;
                let mut read_only = false;
                for part in v.split(',') {
                    match part.split_once('=') {
                        Some(("source" | "src", s)) => src = Some(s.to_owned()),
                        Some(("target" | "dst" | "destination", d)) => dst = Some(d.to_owned()),
                        Some(("readonly" | "ro", "true" | "1")) => read_only = true,
                        None if matches!(part, "readonly" | "ro") => read_only = true,
                        _ => {}
                    }
                }
                if let (Some(s), Some(d)) = (src, dst)
                    && s.starts_with('/')
                    && !read_only
                {
                    mounts.push((s, d));
                }
            }
            ("--privileged", _) => privileged = true,
            ("--pid", Some(v)) if v == "host" => host_pid = true,
            ("--entrypoint", Some(v)) => entrypoint = Some(v),
            _ => {}
        }
        i += 1;
    }
    // The image, then what it runs.
    let Some(command) = args.get(i + 1..) else {
        return;
    };
    let mut words: Vec<String> = entrypoint.into_iter().collect();
    words.extend(command.iter().map(|w| w.text.clone()));
    if words.is_empty() {
        return;
    }
    if privileged && host_pid {
        r.lines.push(quoted_line(&words));
    }
    if privileged {
        mounts.push(("/dev".into(), "/dev".into()));
        mounts.push(("/proc/sysrq-trigger".into(), "/proc/sysrq-trigger".into()));
    }
    let mut mapped_any = false;
    let mapped: Vec<String> = words
        .iter()
        .map(|w| {
            let m = map_mounts(w, &mounts);
            mapped_any |= m != *w || mounts.iter().any(|(s, d)| s == d && w.contains(d.as_str()));
            m
        })
        .collect();
    if mapped_any {
        r.lines.push(quoted_line(&mapped));
    }
}

/// Replaces each container path that starts a path in `word` by the host
/// path mounted there.
fn map_mounts(word: &str, mounts: &[(String, String)]) -> String {
    let mut out = word.to_owned();
    for (src, dst) in mounts {
        let dst = dst.trim_end_matches('/');
        if dst.is_empty() || src == dst {
            continue;
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(at) = rest.find(dst) {
            let before = rest[..at].chars().last();
            let after = rest[at + dst.len()..].chars().next();
            let starts = before.is_none_or(|c| " \t'\"=:;(&|".contains(c));
            let ends = after.is_none_or(|c| "/ \t'\";*)&|".contains(c));
            result.push_str(&rest[..at]);
            if starts && ends {
                let src = if after == Some('/') {
                    src.trim_end_matches('/')
                } else {
                    src.as_str()
                };
                result.push_str(src);
            } else {
                result.push_str(dst);
            }
            rest = &rest[at + dst.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catastrophe::tests::read_line;

    #[test]
    fn containers_map_their_mounts_back() {
        let r = read_line(
            "docker",
            &["run", "-v", "/:/host", "alpine", "rm", "-rf", "/host"],
        );
        assert_eq!(r.lines, vec!["'rm' '-rf' '/'"]);
        let r = read_line(
            "docker",
            &["run", "--rm", "-v", "/:/host:ro", "alpine", "ls", "/host"],
        );
        assert!(r.lines.is_empty(), "{r:?}");
        let r = read_line(
            "docker",
            &[
                "run",
                "-v",
                "/srv/data:/data",
                "alpine",
                "rm",
                "-rf",
                "/data/x",
            ],
        );
        assert_eq!(r.lines, vec!["'rm' '-rf' '/srv/data/x'"]);
        let r = read_line(
            "docker",
            &[
                "run",
                "--mount",
                "type=bind,source=/,target=/h",
                "alpine",
                "sh",
                "-c",
                "rm -rf /h/*",
            ],
        );
        assert_eq!(r.lines, vec!["'sh' '-c' 'rm -rf /*'"]);
        assert_eq!(
            map_mounts("/hostile /host/etc", &[("/".into(), "/host".into())]),
            "/hostile /etc"
        );
    }
}
