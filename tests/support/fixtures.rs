//! Things on the sandbox host that a test makes for itself and removes
//! afterwards: a git repository owned by the guard's user, and a
//! container. Each reads its state independently of Jarvis (plain git and
//! docker), so tests compare Jarvis's work against ground truth.

use std::path::PathBuf;
use std::process::Command;

use crate::{marker, sandbox};

/// Runs `argv` as the sandbox's guard user (`git` refuses repositories of
/// another owner) and returns its stdout; panics with its stderr on failure.
pub fn as_guard_user(argv: &[&str]) -> String {
    let out = Command::new("runuser")
        .args(["-u", "jarvis", "--"])
        .args(argv)
        .output()
        .expect("runuser runs");
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// A git repository on the sandbox host: two commits on `main`, a branch
/// `other`, a modified tracked file, an untracked file and an ignored one.
pub struct HostRepo {
    /// Its directory.
    pub path: PathBuf,
}

impl HostRepo {
    /// Makes one under the sandbox's scratch directory.
    pub fn new(tag: &str) -> HostRepo {
        sandbox();
        let path = PathBuf::from("/srv/jarvis-demo/tests").join(marker(tag));
        let p = path.display().to_string();
        let script = format!(
            "set -e; mkdir -p '{p}'; cd '{p}'; git init -q -b main .; \
             git config user.name Test; git config user.email test@localhost; \
             printf 'port = 80\\n' > app.conf; printf 'one\\n' > README; printf '*.log\\n' > .gitignore; \
             git add -A; git commit -qm first; \
             git checkout -qb other; printf 'other\\n' > other.txt; git add other.txt; git commit -qm other; \
             git checkout -q main; printf 'two\\n' >> README; git add README; git commit -qm second; \
             printf 'port = 8080\\n' > app.conf; printf 'draft\\n' > notes.txt; printf 'x\\n' > debug.log"
        );
        as_guard_user(&["sh", "-c", &script]);
        HostRepo { path }
    }

    /// `git -C REPO ARGS…` as the guard user.
    pub fn git(&self, args: &[&str]) -> String {
        let p = self.path.display().to_string();
        let mut argv = vec!["git", "-C", p.as_str()];
        argv.extend_from_slice(args);
        as_guard_user(&argv)
    }

    /// A path inside it.
    pub fn file(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    /// Everything a rollback must bring back: HEAD, branch, the index's
    /// tree, and every file outside `.git` with its content hash.
    pub fn state(&self) -> String {
        let p = self.path.display().to_string();
        let head = self.git(&["rev-parse", "HEAD"]);
        let branch = self.git(&["symbolic-ref", "-q", "--short", "HEAD"]);
        let index = self.git(&["write-tree"]);
        let files = as_guard_user(&[
            "sh",
            "-c",
            &format!(
                "cd '{p}' && find . -path ./.git -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum"
            ),
        ]);
        format!("HEAD {head}\nbranch {branch}\nindex {index}\n{files}")
    }
}

impl Drop for HostRepo {
    fn drop(&mut self) {
        let _ = Command::new("rm").arg("-rf").arg(&self.path).status();
    }
}

/// Runs docker as the test (root) and returns stdout; panics on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "`docker {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// A running container of the sandbox image, with settings a rollback must
/// bring back (env, label, restart policy, command).
pub struct HostContainer {
    /// Its name.
    pub name: String,
}

impl HostContainer {
    /// Starts one.
    pub fn new(tag: &str) -> HostContainer {
        sandbox();
        let name = format!("jt-{}", marker(tag));
        docker(&[
            "run",
            "-d",
            "--init",
            "--name",
            &name,
            "--network",
            "none",
            "--label",
            &format!("jarvis.test={name}"),
            "-e",
            "MODE=original",
            "--restart",
            "unless-stopped",
            "jarvis-sandbox/busybox:latest",
            "sh",
            "-c",
            "sleep 100000",
        ]);
        HostContainer { name }
    }

    /// `docker inspect` of it, parsed.
    pub fn inspect(&self) -> serde_json::Value {
        let text = docker(&["inspect", &self.name]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("inspect is JSON");
        v[0].clone()
    }

    /// The settings a rollback restores, for comparison.
    pub fn settings(&self) -> serde_json::Value {
        let i = self.inspect();
        serde_json::json!({
            "cmd": i["Config"]["Cmd"],
            "entrypoint": i["Config"]["Entrypoint"],
            "env": i["Config"]["Env"],
            "labels": i["Config"]["Labels"],
            "restart": i["HostConfig"]["RestartPolicy"],
            "init": i["HostConfig"]["Init"],
            "network": i["HostConfig"]["NetworkMode"],
            "running": i["State"]["Running"],
        })
    }

    /// `docker exec NAME sh -c SCRIPT`.
    pub fn exec(&self, script: &str) -> String {
        docker(&["exec", &self.name, "sh", "-c", script])
    }

    /// Its id and `docker diff`, hashed.
    pub fn fingerprint(&self) -> String {
        let id = docker(&["inspect", "-f", "{{.Id}}", &self.name]);
        let diff = docker(&["diff", &self.name]);
        format!("{id}\n{diff}")
    }
}

impl Drop for HostContainer {
    /// Removes the container and every snapshot image made of it (a commit
    /// keeps the container's labels, and its label names it).
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
        let listed = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter"])
            .arg(format!("label=jarvis.test={}", self.name))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for image in listed.lines().filter(|i| !i.starts_with("jarvis-sandbox/")) {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}
