//! Shared helpers of the end-to-end tests: build and run the real `jarvis`
//! binary, provision the sandbox host, and give each test its own config and
//! data directory against it, so every test starts them the same way.

pub mod browser;
pub mod disk;
pub mod exec_faults;
pub mod fixtures;
pub mod inprocess;
pub mod llm_stub;
pub mod mcp;
pub mod server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// A new, empty database on the project's PostgreSQL test server
/// (`scripts/postgres`, started if it is not running), and its URL.
pub fn postgres_database(tag: &str) -> String {
    let out = Command::new(workspace().join("scripts/postgres"))
        .arg("start")
        .output()
        .expect("scripts/postgres runs");
    assert!(
        out.status.success(),
        "scripts/postgres start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let name = format!("jarvis_{}_{}", tag.replace('-', "_"), std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        let out = Command::new("psql")
            .args([
                admin.as_str(),
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-q",
                "-c",
                &sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (server, _) = admin.rsplit_once('/').expect("a database in the URL");
    format!("{server}/{name}")
}

/// A library `Gateway` on `config` with its SQLite store at `db`, and its
/// SSH control sockets in a directory of this process named by `tag` (a
/// test binary's own, so binaries running at once never share a master).
pub async fn gateway(config: &Path, db: &Path, tag: &str) -> jarvis_gateway::Gateway {
    let config = jarvis_gateway::Config::load(config).expect("config loads");
    let store = jarvis_store::Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("store opens");
    let control = std::env::temp_dir().join(format!("jarvis-ssh-{tag}{}", std::process::id()));
    jarvis_gateway::Gateway::open(config, store, &control, true)
        .await
        .expect("gateway opens")
}

/// A proposal of `command` for the host `sandbox` by `requester`, with
/// nothing else set.
pub fn proposal(requester: &str, command: &str) -> jarvis_gateway::Proposal {
    jarvis_gateway::Proposal {
        requester: requester.into(),
        host: jarvis_core::HostName::parse("sandbox").expect("valid"),
        work: jarvis_gateway::Work::Command {
            line: command.into(),
            cwd: None,
        },
        timeout: None,
        purpose: None,
    }
}

/// Proposes `command`, which the policy must let run unattended, as
/// `test`, and runs it; the state it ends in.
///
/// # Errors
/// The gateway's refusal.
pub async fn run_allowed(
    gw: &jarvis_gateway::Gateway,
    command: &str,
) -> Result<jarvis_core::ActionState, jarvis_gateway::GatewayError> {
    let p = gw.propose(proposal("test", command)).await?;
    assert_eq!(
        p.action.state,
        jarvis_core::ActionState::Approved,
        "{:?}",
        p.judgement.reasons
    );
    Ok(gw.execute(p.action.id, "test", &mut |_| {}).await?.state)
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// The `jarvis` binary, built once per test run so tests never use a stale one.
pub fn jarvis_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("jarvis-cli", "jarvis"))
}

/// The `jarvis-guard` binary, built once per test run like [`jarvis_bin`].
pub fn guard_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built("jarvis-guard", "jarvis-guard"))
}

/// `bin` of `package` (debug), built unless the test command built the
/// whole workspace already, and its path.
///
/// `scripts/test` builds everything with `--workspace --all-targets` and
/// then sets `JARVIS_TEST_PREBUILT`: building one package again would
/// resolve its features apart (without the fake guard the test harness
/// turns on in jarvis-exec), compile exec, gateway and CLI a second time
/// inside the tests' time, and swap the binary under the other tests. A
/// test run on its own builds just the binary it needs.
fn built(package: &str, bin: &str) -> PathBuf {
    if std::env::var_os("JARVIS_TEST_PREBUILT").is_none() {
        let status = cargo()
            .args(["build", "-q", "-p", package, "--bin", bin])
            .current_dir(workspace())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {bin} failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let path = target.join("debug").join(bin);
    assert!(path.is_file(), "{} is not built", path.display());
    path
}

/// A `cargo` to run from a test, without the variables cargo set for the
/// test itself: a build script that watches one (ring's watches
/// `CARGO_MANIFEST_DIR`) would see it change between this build and the
/// next outside a test, and each would rebuild the TLS stack and all above
/// it for the other.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name == "CARGO_MANIFEST_DIR"
            || name == "CARGO_MANIFEST_PATH"
            || name == "CARGO_CRATE_NAME"
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "CARGO_TARGET_TMPDIR"
            || name == "CARGO_RUSTC_CURRENT_DIR"
            || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_")
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Runs `jarvis ARGS` with `stdin` and returns its output.
pub fn jarvis(args: &[&str], stdin: &[u8]) -> Output {
    jarvis_with_env(args, stdin, &[])
}

/// As [`jarvis`], with the variables `env` set for it.
pub fn jarvis_with_env(args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Output {
    let mut child = Command::new(jarvis_bin())
        .args(args)
        .envs(env.iter().copied())
        // From a directory with no policies/, to show the shipped ones are built in.
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jarvis starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    // Written from a thread so a large input cannot deadlock against output.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("jarvis finishes");
    writer.join().expect("stdin writer");
    out
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates one under the system temp directory.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("jarvis-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The action id in `jarvis: action ID …`, as `run` and `edit` report it
/// on stderr.
pub fn action_id(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .skip_while(|w| *w != "action")
        .nth(1)
        .unwrap_or_else(|| panic!("no action id in: {stderr}"))
        .to_owned()
}

/// A string no other test or run uses, to find a test's own traces in the
/// host's guard log and process table.
pub fn marker(tag: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{n}-{nanos}", std::process::id())
}

/// The local target host that `sandbox/up` provisions.
pub struct Sandbox {
    /// Its sshd port on 127.0.0.1.
    pub port: u16,
    /// The gateway's private key.
    pub identity: PathBuf,
    /// The key of host `sandbox-nokernel`: the same sshd and user, whose
    /// forced command runs the guard with `--kernel off`.
    pub identity_nokernel: PathBuf,
    /// The pinned known_hosts.
    pub known_hosts: PathBuf,
    /// The guard's log on the host.
    pub guard_log: PathBuf,
}

/// Provisions the sandbox host (idempotently, once per test binary: this
/// also installs the guard as just built) and describes it.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        // The guard these tests built, not one sandbox/up would build
        // with its own cargo (and features) underneath them.
        let out = Command::new(workspace().join("sandbox/up"))
            .env("JARVIS_GUARD_BIN", guard_bin())
            .current_dir(workspace())
            .output()
            .expect("sandbox/up runs");
        assert!(
            out.status.success(),
            "sandbox/up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let state = workspace().join("sandbox/.state");
        let ready = std::fs::read_to_string(state.join("ready")).expect("sandbox/.state/ready");
        let field = |k: &str| {
            ready
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("sandbox ready file lacks {k}"))
        };
        Sandbox {
            port: field("port").parse().expect("port is a number"),
            identity: field("identity").into(),
            identity_nokernel: field("identity_nokernel").into(),
            known_hosts: field("known_hosts").into(),
            guard_log: field("guard_log").into(),
        }
    })
}

impl Sandbox {
    /// The guard log's lines that contain `needle`.
    pub fn guard_log_lines(&self, needle: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.guard_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `ssh` to the sandbox with the gateway's key, bypassing Jarvis.
    pub fn ssh(&self, known_hosts: &Path, remote: Option<&str>) -> Output {
        let mut cmd = self.ssh_command(&self.identity, known_hosts, None);
        if let Some(r) = remote {
            cmd.arg(r);
        }
        cmd.output().expect("ssh runs")
    }

    /// Sends `remote` (a framed guard request) with `identity`, whose
    /// forced command decides which guard answers, through a ControlMaster
    /// at `control` kept for two minutes: a master made with one key runs
    /// that key's forced command for every session on it, so each key
    /// needs its own.
    pub fn ssh_through(&self, identity: &Path, control: &Path, remote: &str) -> Output {
        let mut cmd = self.ssh_command(identity, &self.known_hosts, Some(control));
        cmd.arg(remote).output().expect("ssh runs")
    }

    fn ssh_command(&self, identity: &Path, known_hosts: &Path, control: Option<&Path>) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()));
        if let Some(path) = control {
            cmd.args(["-o", "ControlMaster=auto", "-o", "ControlPersist=120"])
                .arg("-o")
                .arg(format!("ControlPath={}", path.display()));
        }
        cmd.arg("-i")
            .arg(identity)
            .args(["-p", &self.port.to_string(), "jarvis@127.0.0.1"])
            .stdin(Stdio::null());
        cmd
    }
}

/// One test's own config and data directory against the sandbox host.
pub struct Env {
    dir: TempDir,
    /// The config file.
    pub config: PathBuf,
}

impl Env {
    /// A config with one host `sandbox`; `host_limits` and `limits` are
    /// TOML lines added to `[hosts.sandbox.limits]` and `[limits]`.
    pub fn new(tag: &str, host_limits: &str, limits: &str) -> Env {
        Env::write(
            tag,
            sandbox().port,
            &sandbox().known_hosts,
            "required",
            host_limits,
            limits,
        )
    }

    /// A config with one host `sandbox` and `snapshots` as TOML lines of
    /// `[hosts.sandbox.snapshots]`.
    pub fn with_snapshots(tag: &str, snapshots: &str) -> Env {
        let env = Env::new(tag, "", "");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&env.config)
            .expect("open config");
        writeln!(f, "\n[hosts.sandbox.snapshots]\n{snapshots}").expect("write config");
        env
    }

    /// As [`Env::new`] with another port and known_hosts (to test failures).
    ///
    /// Its `sandbox` is `enforcement = "best-effort"`: these tests are about
    /// what a run meets on a host that is down or not who it claims, and
    /// under "required" a host that cannot be asked holds every action for
    /// a person before any run is tried.
    pub fn with_host(
        tag: &str,
        port: u16,
        known_hosts: &Path,
        host_limits: &str,
        limits: &str,
    ) -> Env {
        Env::write(tag, port, known_hosts, "best-effort", host_limits, limits)
    }

    /// Writes the config: the host `sandbox` with `enforcement`.
    fn write(
        tag: &str,
        port: u16,
        known_hosts: &Path,
        enforcement: &str,
        host_limits: &str,
        limits: &str,
    ) -> Env {
        let sb = sandbox();
        let dir = TempDir::new(tag);
        let config = dir.path().join("jarvis.toml");
        let text = format!(
            "[store]\ndata_dir = \"data\"\n\n[limits]\n{limits}\n\n[hosts.sandbox]\n\
             destination = \"jarvis@127.0.0.1\"\nport = {port}\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\
             tags = [\"test\"]\nenforcement = \"{enforcement}\"\n\n[hosts.sandbox.limits]\n{host_limits}\n",
            sb.identity.display(),
            known_hosts.display(),
        );
        std::fs::write(&config, text).expect("write config");
        Env { dir, config }
    }

    /// Adds the host `sandbox-nokernel`: the sandbox's sshd and user with
    /// the second key, whose forced command runs the guard with `--kernel
    /// off`, so the host reports no kernel wall. Its `enforcement` is
    /// "required" until [`Env::set_enforcement`] says otherwise. (Not in
    /// every config: tests of a one-host setup, such as chat's direct
    /// mode, rely on `sandbox` being the only host.)
    pub fn with_nokernel(self) -> Env {
        let sb = sandbox();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("open config");
        writeln!(
            f,
            "\n[hosts.sandbox-nokernel]\ndestination = \"jarvis@127.0.0.1\"\nport = {}\n\
             identity = \"{}\"\nknown_hosts = \"{}\"\ntags = [\"test\", \"no-kernel-wall\"]\n\
             enforcement = \"required\"",
            sb.port,
            sb.identity_nokernel.display(),
            sb.known_hosts.display(),
        )
        .expect("write config");
        self
    }

    /// Sets `enforcement` of `host` (`required` or `best-effort`) in the
    /// config, for the next `jarvis` this test starts.
    pub fn set_enforcement(&self, host: &str, enforcement: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let section = format!("[hosts.{host}]\n");
        let start = text
            .find(&section)
            .unwrap_or_else(|| panic!("no {section} in the config"));
        let line = text[start..]
            .find("enforcement = ")
            .map(|i| start + i)
            .expect("every host of the config has an enforcement line");
        let end = line + text[line..].find('\n').expect("a whole line");
        let text = format!(
            "{}enforcement = \"{enforcement}\"{}",
            &text[..line],
            &text[end..]
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Keeps its state in the PostgreSQL database at `url` (given by file,
    /// as a secret) instead of SQLite in its data directory.
    pub fn on_postgres(self, url: &str) -> Env {
        let file = self.dir().join("database-url");
        std::fs::write(&file, url).expect("write the database URL");
        let text = std::fs::read_to_string(&self.config).expect("read config");
        let text = text.replacen(
            "[store]\n",
            &format!("[store]\ndatabase = {{ file = \"{}\" }}\n", file.display()),
            1,
        );
        std::fs::write(&self.config, text).expect("write config");
        self
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `jarvis --config CONFIG ARGS`.
    pub fn jarvis(&self, args: &[&str]) -> Output {
        self.jarvis_with_env(&[], args)
    }

    /// Runs `jarvis --config CONFIG ARGS` with the variables `env` set.
    pub fn jarvis_with_env(&self, env: &[(&str, &Path)], args: &[&str]) -> Output {
        let mut all = vec!["--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        jarvis_with_env(&all, b"", env)
    }

    /// `jarvis tokens add NAME --scope SCOPE`; returns the printed token.
    pub fn add_token(&self, name: &str, scope: &str) -> String {
        let out = self.jarvis(&["tokens", "add", name, "--scope", scope]);
        assert!(
            out.status.success(),
            "tokens add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The audit events of `kind`, newest first, as the CLI reads them.
    pub fn audit(&self, kind: &str) -> Vec<serde_json::Value> {
        let out = self.jarvis(&["audit", "list", "--kind", kind, "--json"]);
        assert!(
            out.status.success(),
            "audit list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `jarvis actions show ID --json`, parsed.
    pub fn show(&self, id: &str) -> serde_json::Value {
        let out = self.jarvis(&["actions", "show", id, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("show --json is JSON")
    }
}
