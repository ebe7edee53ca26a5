//! `jarvis.toml`: hosts, limits, where state lives. Secrets only by
//! reference (an environment variable or a file), never inline.
//!
//! Relative paths are relative to the file's own directory, so a config
//! works from any working directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jarvis_core::{ApprovalRule, HostName, RollbackApproval};
use jarvis_exec::snapshot::SnapshotSettings;
use jarvis_exec::{GlobalLimits, HostLimits, HostSpec};
use serde::{Deserialize, Serialize};

/// A mistake in a config file, naming the file and what is wrong where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot be read: {source}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("{}: {message}", .file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is wrong.
    #[error("{}: {field}: {message}", .file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field, dotted (`hosts.nas.known_hosts`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A secret given by reference.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The environment variable that holds it.
    #[serde(default)]
    pub env: Option<String>,
    /// The file that holds it (first line).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Reads the secret.
    ///
    /// # Errors
    /// A message naming the variable or file that failed.
    pub fn resolve(&self) -> Result<String, String> {
        match (&self.env, &self.file) {
            (Some(var), None) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
            }
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|t| t.lines().next().unwrap_or("").trim().to_owned())
                .map_err(|e| format!("{}: {e}", file.display())),
            _ => Err("give exactly one of `env` or `file`".into()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    hosts: BTreeMap<String, RawHost>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    notify: Vec<RawNotify>,
    #[serde(default)]
    llm: Option<RawLlm>,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLlm {
    base_url: String,
    model: String,
    api_key: Option<SecretRef>,
    timeout_secs: Option<u64>,
    retries: Option<u32>,
    max_steps: Option<u32>,
    token_budget: Option<u64>,
}

/// The model behind the planner (`[llm]`): any OpenAI-compatible endpoint.
/// Without it, chat works in direct mode (a message that is a command is
/// proposed as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// The endpoint's base URL, ending in `/v1` for most servers.
    pub base_url: String,
    /// The model's name at that endpoint.
    pub model: String,
    /// Where the API key is; local servers (Ollama, llama.cpp) need none.
    pub api_key: Option<SecretRef>,
    /// How long one completion may take.
    pub timeout: Duration,
    /// Attempts after the first for a rate limit, a server error, a
    /// timeout or a dropped connection.
    pub retries: u32,
    /// Model turns per conversation.
    pub max_steps: u32,
    /// Tokens per conversation, prompt and answers together.
    pub token_budget: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: Option<String>,
    public_url: Option<String>,
    session_hours: Option<u64>,
    trust_forwarded_for: Option<bool>,
    public_metrics: Option<bool>,
    host_check_secs: Option<u64>,
    audit_verify_secs: Option<u64>,
    drain_secs: Option<u64>,
    min_free_mb: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    reserve_connections: Option<usize>,
    max_streams: Option<usize>,
    max_body_kib: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    self_approval: Option<bool>,
    approvers: Option<u32>,
    critical_approvers: Option<u32>,
    rollback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    name: String,
    format: crate::notify::Format,
    url: SecretRef,
    #[serde(default)]
    events: Vec<crate::notify::NoticeKind>,
}

/// The web server's settings (`[server]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Where `jarvis serve` listens unless `--bind` says otherwise.
    pub bind: SocketAddr,
    /// The address people reach the UI at, for links in notifications. An
    /// `https://` URL also makes session cookies `Secure` and turns on HSTS.
    pub public_url: Option<String>,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Whether the client address is taken from `X-Forwarded-For` (only
    /// behind a reverse proxy that sets it; otherwise clients could forge
    /// it to dodge the login limiter).
    pub trust_forwarded_for: bool,
    /// How often each host's reachability is checked.
    pub host_check: Duration,
    /// How often the audit chain is verified in the background.
    pub audit_verify: Duration,
    /// How long a shutdown (SIGTERM, Ctrl-C) waits for runs under way to
    /// finish once it stopped taking requests (`drain_secs`, 30; 0 does
    /// not wait). What still runs then is cut off and recorded
    /// `interrupted`.
    pub drain: Duration,
    /// Whether `/metrics` answers without credentials. Off by default: the
    /// figures name hosts and show what the agent is doing and how often
    /// it is refused, which is not for anyone on the network.
    pub public_metrics: bool,
    /// Below this much free space in the SQLite data directory `/readyz`
    /// says the server is not ready (bytes; `[server] min_free_mb`, 64 by
    /// default, 0 to only probe): a balancer then sends writes elsewhere
    /// before the disk is full, not after.
    pub min_free_bytes: u64,
    /// How long a client may hold a connection and how many it may hold.
    pub connections: ConnectionLimits,
}

/// What bounds the server's connections (`[server]`), so that no client,
/// slow or idle or many, can use up the process's file descriptors and
/// shut everyone else out, health checks included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte to its last header line
    /// (`header_read_timeout_secs`); a slower client (slowloris) is
    /// disconnected.
    pub header_read: Duration,
    /// From a request's headers to its answer, the body's upload included
    /// (`request_timeout_secs`). Live streams are answered at once and
    /// then not bounded in time, only in number.
    pub request: Duration,
    /// How long a kept-alive connection may wait, silent, for its next
    /// request (`idle_timeout_secs`); a new connection for its first.
    pub idle: Duration,
    /// Connections served at once (`max_connections`); beyond it a new
    /// connection is answered 503.
    pub max_connections: usize,
    /// Connections beyond `max_connections` that are still read, one
    /// request each, so `/healthz` and `/readyz` answer while the server
    /// is full (`reserve_connections`); every other path gets the 503.
    pub reserve: usize,
    /// Live streams (server-sent events) at once (`max_streams`), within
    /// `max_connections`; beyond it a stream is refused with 503.
    pub max_streams: usize,
    /// The largest request body in bytes (`max_body_kib`); a larger one is
    /// answered 413.
    pub max_body: usize,
}

impl ConnectionLimits {
    /// Connections beyond every tier that may still be getting their 503
    /// at once; more are closed unanswered.
    pub const TURNING_AWAY: usize = 64;

    /// The most sockets the server holds for clients at once: the served
    /// connections, the reserve, and those being turned away.
    pub fn sockets(&self) -> usize {
        self.max_connections
            .saturating_add(self.reserve)
            .saturating_add(Self::TURNING_AWAY)
    }
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        // For a homelab gateway that a few people and agents use: far more
        // connections than they open, well inside the 1,024 descriptors a
        // default systemd unit gets (the database, SSH masters and logs
        // need some too).
        ConnectionLimits {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            max_connections: 512,
            reserve: 16,
            max_streams: 64,
            max_body: 256 * 1024,
        }
    }
}

impl ServerSettings {
    /// Where the web UI is, for links a person follows: `public_url`, or
    /// the address `jarvis serve` listens on (loopback when it listens on
    /// every address: the link is read on the gateway's own terminal).
    pub fn ui_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let mut at = self.bind;
                if at.ip().is_unspecified() {
                    at.set_ip(if at.is_ipv4() {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    } else {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    });
                }
                format!("http://{at}")
            }
        }
    }

    /// Whether people reach the UI over TLS (cookies get `Secure`).
    pub fn behind_tls(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 7878)),
            public_url: None,
            session_ttl: Duration::from_secs(12 * 3600),
            trust_forwarded_for: false,
            host_check: Duration::from_secs(60),
            audit_verify: Duration::from_secs(300),
            drain: Duration::from_secs(30),
            public_metrics: false,
            min_free_bytes: 64 << 20,
            connections: ConnectionLimits::default(),
        }
    }
}

/// A webhook to notify (`[[notify]]`); its URL is a secret (ntfy topics
/// and Discord webhook URLs are credentials), resolved when the server
/// starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySpec {
    /// Its name, used in logs and metrics instead of the URL.
    pub name: String,
    /// The payload format.
    pub format: crate::notify::Format,
    /// Where the URL is.
    pub url: SecretRef,
    /// The events it wants; all when empty.
    pub events: Vec<crate::notify::NoticeKind>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    data_dir: Option<PathBuf>,
    database: Option<SecretRef>,
    audit_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    rate_per_minute: Option<u32>,
    burst: Option<u32>,
    requester_rate_per_minute: Option<u32>,
    requester_burst: Option<u32>,
    loop_repeats: Option<u32>,
    loop_window_secs: Option<u64>,
    approval_ttl_secs: Option<u64>,
    run_window_secs: Option<u64>,
    ssh_master_idle_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    destination: String,
    port: Option<u16>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    limits: RawHostLimits,
    #[serde(default)]
    snapshots: RawSnapshots,
    enforcement: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshots {
    #[serde(default)]
    repos: Vec<String>,
    #[serde(default)]
    containers: Vec<String>,
    #[serde(default)]
    stateful_volumes: Vec<String>,
    volume_image: Option<String>,
    keep: Option<u32>,
    max_age_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostLimits {
    default_timeout_secs: Option<u64>,
    max_timeout_secs: Option<u64>,
    output_cap_bytes: Option<u64>,
    rate_per_minute: Option<u32>,
    burst: Option<u32>,
    concurrency: Option<u32>,
    queue_timeout_secs: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_cooldown_secs: Option<u64>,
}

/// The runaway-loop brake: the same command for the same host proposed
/// `repeats` times within `window` is held for a person even if the policy
/// would let it run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopBrake {
    /// How many proposals (this one included) trip it.
    pub repeats: u32,
    /// The look-back.
    pub window: Duration,
}

/// What a host's owner says about the third wall (`enforcement` of a
/// host): whether an action may run on it unattended when its kernel
/// cannot confine commands to what the policy judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Unattended actions only where the kernel enforces every right the
    /// guard asks for; otherwise (including when the host cannot be asked)
    /// every action waits for a person. The default: a gap in the policy's
    /// model must not become a gap on a host nobody looked at.
    #[default]
    Required,
    /// The policy alone decides, as on a host without the kernel wall;
    /// what the kernel could not enforce is recorded with each action.
    BestEffort,
}

impl Enforcement {
    /// The word in `jarvis.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Required => "required",
            Enforcement::BestEffort => "best-effort",
        }
    }

    fn parse(word: &str) -> Option<Enforcement> {
        [Enforcement::Required, Enforcement::BestEffort]
            .into_iter()
            .find(|e| e.as_str() == word)
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// Where state lives, if the file says.
    pub data_dir: Option<PathBuf>,
    /// The database URL reference, if the file gives one.
    pub database: Option<SecretRef>,
    /// The audit key file, if the file gives one.
    pub audit_key: Option<PathBuf>,
    /// Policy files and directories; the shipped policy when empty.
    pub policy: Vec<PathBuf>,
    /// Limits across hosts.
    pub global: GlobalLimits,
    /// The runaway-loop brake.
    pub loop_brake: LoopBrake,
    /// How long an approval request stays open before it expires.
    pub approval_ttl: Duration,
    /// How long an approved action may wait to start (after a refusal by a
    /// limit, say) before its approval lapses.
    pub run_window: Duration,
    /// The hosts, by name.
    pub hosts: Vec<HostSpec>,
    /// Each host's `enforcement` (see [`Config::enforcement`]); the
    /// executor's [`HostSpec`] has no say in what may run, so the setting
    /// lives here, beside the pipeline that applies it.
    pub enforcement: BTreeMap<HostName, Enforcement>,
    /// The web server.
    pub server: ServerSettings,
    /// Separation of duties for approvals.
    pub approvals: ApprovalRule,
    /// How rollbacks are approved (`[approvals] rollback`): under the same
    /// rule as any action, or by one approver.
    pub rollback_approval: RollbackApproval,
    /// Webhooks for pending approvals, failures and audit breaks.
    pub notify: Vec<NotifySpec>,
    /// The planner's model, if one is configured.
    pub llm: Option<LlmSettings>,
    /// Signed heads of the audit log and the witnesses they are shipped to
    /// (`[audit]`).
    pub audit: AuditSettings,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            file: None,
            data_dir: None,
            database: None,
            audit_key: None,
            policy: Vec::new(),
            global: GlobalLimits::default(),
            loop_brake: LoopBrake {
                repeats: 5,
                window: Duration::from_secs(600),
            },
            approval_ttl: Duration::from_secs(24 * 3600),
            run_window: Duration::from_secs(3600),
            hosts: Vec::new(),
            enforcement: BTreeMap::new(),
            server: ServerSettings::default(),
            approvals: ApprovalRule::default(),
            rollback_approval: RollbackApproval::default(),
            notify: Vec::new(),
            llm: None,
            audit: AuditSettings::default(),
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, and the field where it can.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Parses config text as if read from `file`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let abs = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        let invalid = |field: String, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            field,
            message,
        };
        let defaults = Config::default();
        let global_defaults = GlobalLimits::default();
        let l = raw.limits;
        // `field` is the whole dotted name, so a host's limit names its host.
        let positive = |field: String, v: Option<u32>, default: u32| -> Result<u32, ConfigError> {
            match v {
                Some(0) => Err(invalid(field, "must be at least 1".into())),
                Some(n) => Ok(n),
                None => Ok(default),
            }
        };
        // A zero window would expire every approval, or brake nothing, the
        // moment it starts.
        let window = |field: &str, v: Option<u64>, default: Duration| match v {
            Some(0) => Err(invalid(field.into(), "must be at least 1".into())),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        };
        let global = GlobalLimits {
            rate_per_minute: positive(
                "limits.rate_per_minute".into(),
                l.rate_per_minute,
                global_defaults.rate_per_minute,
            )?,
            burst: positive("limits.burst".into(), l.burst, global_defaults.burst)?,
            requester_rate_per_minute: positive(
                "limits.requester_rate_per_minute".into(),
                l.requester_rate_per_minute,
                global_defaults.requester_rate_per_minute,
            )?,
            requester_burst: positive(
                "limits.requester_burst".into(),
                l.requester_burst,
                global_defaults.requester_burst,
            )?,
            // Zero would be ssh's "no persistence": every process would log
            // in again.
            ssh_master_idle: window(
                "limits.ssh_master_idle_secs",
                l.ssh_master_idle_secs,
                global_defaults.ssh_master_idle,
            )?,
        };
        let loop_brake = LoopBrake {
            repeats: positive(
                "limits.loop_repeats".into(),
                l.loop_repeats,
                defaults.loop_brake.repeats,
            )?,
            window: window(
                "limits.loop_window_secs",
                l.loop_window_secs,
                defaults.loop_brake.window,
            )?,
        };
        if let Some(db) = &raw.store.database
            && db.env.is_some() == db.file.is_some()
        {
            return Err(invalid(
                "store.database".into(),
                "give exactly one of `env` (a variable holding the URL) or `file`".into(),
            ));
        }
        let mut hosts = Vec::new();
        let mut enforcement = BTreeMap::new();
        for (name, h) in raw.hosts {
            let field = |f: &str| format!("hosts.{name}.{f}");
            let host = HostName::parse(&name)
                .map_err(|e| invalid(format!("hosts.{name}"), e.to_string()))?;
            if h.destination.trim().is_empty() || h.destination.starts_with('-') {
                return Err(invalid(
                    field("destination"),
                    "must be an ssh destination such as `jarvis@nas.lan` or an alias from ~/.ssh/config".into(),
                ));
            }
            let known_hosts = h.known_hosts.map(abs).ok_or_else(|| {
                invalid(
                    field("known_hosts"),
                    "is required: Jarvis only talks to hosts whose key is pinned in a known_hosts file".into(),
                )
            })?;
            let d = HostLimits::default();
            let r = h.limits;
            let secs =
                |v: Option<u64>, default: Duration| v.map(Duration::from_secs).unwrap_or(default);
            let limits = HostLimits {
                default_timeout: secs(r.default_timeout_secs, d.default_timeout),
                max_timeout: secs(r.max_timeout_secs, d.max_timeout),
                output_cap: r.output_cap_bytes.unwrap_or(d.output_cap),
                rate_per_minute: positive(
                    field("limits.rate_per_minute"),
                    r.rate_per_minute,
                    d.rate_per_minute,
                )?,
                burst: positive(field("limits.burst"), r.burst, d.burst)?,
                concurrency: positive(field("limits.concurrency"), r.concurrency, d.concurrency)?,
                queue_timeout: secs(r.queue_timeout_secs, d.queue_timeout),
                breaker_failures: positive(
                    field("limits.breaker_failures"),
                    r.breaker_failures,
                    d.breaker_failures,
                )?,
                breaker_cooldown: secs(r.breaker_cooldown_secs, d.breaker_cooldown),
            };
            if limits.default_timeout.is_zero() || limits.default_timeout > limits.max_timeout {
                return Err(invalid(
                    field("limits.default_timeout_secs"),
                    format!(
                        "must be between 1 and max_timeout_secs ({})",
                        limits.max_timeout.as_secs()
                    ),
                ));
            }
            let snap = h.snapshots;
            for (i, repo) in snap.repos.iter().enumerate() {
                if !repo.starts_with('/') {
                    return Err(invalid(
                        field(&format!("snapshots.repos[{i}]")),
                        format!("`{repo}` must be an absolute path on the host"),
                    ));
                }
            }
            if !snap.stateful_volumes.is_empty() && snap.volume_image.is_none() {
                return Err(invalid(
                    field("snapshots.volume_image"),
                    "stateful_volumes need an image with `sh` and `tar` that archives them".into(),
                ));
            }
            let snapshots = SnapshotSettings {
                repos: snap
                    .repos
                    .iter()
                    .map(|r| r.trim_end_matches('/').to_owned())
                    .map(|r| if r.is_empty() { "/".to_owned() } else { r })
                    .collect(),
                containers: snap.containers,
                stateful_volumes: snap.stateful_volumes,
                volume_image: snap.volume_image,
                keep: positive(field("snapshots.keep"), snap.keep, 20)?,
                max_age_days: snap.max_age_days,
            };
            let enforced = match h.enforcement.as_deref() {
                None => Enforcement::default(),
                Some(word) => Enforcement::parse(word).ok_or_else(|| {
                    invalid(
                        field("enforcement"),
                        format!("`{word}` is not a setting: \"required\" (the default: without the kernel wall every action waits for a person) or \"best-effort\""),
                    )
                })?,
            };
            enforcement.insert(host.clone(), enforced);
            hosts.push(HostSpec {
                name: host,
                destination: h.destination,
                port: h.port,
                identity: h.identity.map(abs),
                known_hosts,
                tags: h.tags,
                limits,
                snapshots,
            });
        }
        let server = server_settings(raw.server, &invalid)?;
        let rollback_approval = match &raw.approvals.rollback {
            Some(word) => word
                .parse()
                .map_err(|e: jarvis_core::UnknownRollbackApproval| {
                    invalid("approvals.rollback".into(), e.to_string())
                })?,
            None => RollbackApproval::default(),
        };
        let approvals = approval_rule(raw.approvals, &invalid)?;
        let mut notify = Vec::new();
        for (i, n) in raw.notify.into_iter().enumerate() {
            let field = |f: &str| format!("notify[{i}].{f}");
            if n.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty".into()));
            }
            if n.url.env.is_some() == n.url.file.is_some() {
                return Err(invalid(
                    field("url"),
                    "give exactly one of `env` or `file`: a webhook URL is a secret".into(),
                ));
            }
            notify.push(NotifySpec {
                name: n.name,
                format: n.format,
                url: SecretRef {
                    env: n.url.env,
                    file: n.url.file.map(abs),
                },
                events: n.events,
            });
        }
        let llm = match raw.llm {
            Some(l) => Some(llm_settings(l, &abs, &invalid)?),
            None => None,
        };
        let data_dir = raw.store.data_dir.clone().map(abs);
        let (audit, audit_key) = audit_settings(
            raw.audit,
            raw.store.audit_key,
            data_dir.as_deref(),
            &abs,
            &invalid,
        )?;
        Ok(Config {
            server,
            approvals,
            rollback_approval,
            notify,
            llm,
            audit,
            file: Some(file.to_owned()),
            data_dir: raw.store.data_dir.map(abs),
            database: raw.store.database.map(|mut d| {
                d.file = d.file.map(abs);
                d
            }),
            audit_key,
            policy: raw.policy.paths.into_iter().map(abs).collect(),
            global,
            loop_brake,
            approval_ttl: window(
                "limits.approval_ttl_secs",
                l.approval_ttl_secs,
                defaults.approval_ttl,
            )?,
            run_window: window(
                "limits.run_window_secs",
                l.run_window_secs,
                defaults.run_window,
            )?,
            hosts,
            enforcement,
        })
    }

    /// One host by name.
    pub fn host(&self, name: &HostName) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| &h.name == name)
    }

    /// A host's `enforcement`; [`Enforcement::Required`] for a host the
    /// file does not set it for (or does not name).
    pub fn enforcement(&self, name: &HostName) -> Enforcement {
        self.enforcement.get(name).copied().unwrap_or_default()
    }
}

fn server_settings(
    raw: RawServer,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<ServerSettings, ConfigError> {
    let d = ServerSettings::default();
    let connections = connection_limits(&raw, invalid)?;
    let bind = match raw.bind {
        Some(b) => b.parse().map_err(|_| {
            invalid(
                "server.bind".into(),
                format!("`{b}` is not an address and port such as 127.0.0.1:7878"),
            )
        })?,
        None => d.bind,
    };
    if let Some(u) = &raw.public_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(invalid(
            "server.public_url".into(),
            format!("`{u}` must start with https:// (or http:// on a trusted network)"),
        ));
    }
    let secs = |field: &str, v: Option<u64>, default: Duration, unit: u64| match v {
        Some(0) => Err(invalid(
            format!("server.{field}"),
            "must be at least 1".into(),
        )),
        Some(n) => Ok(Duration::from_secs(n.saturating_mul(unit))),
        None => Ok(default),
    };
    Ok(ServerSettings {
        bind,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        session_ttl: secs("session_hours", raw.session_hours, d.session_ttl, 3600)?,
        trust_forwarded_for: raw.trust_forwarded_for.unwrap_or(false),
        public_metrics: raw.public_metrics.unwrap_or(false),
        min_free_bytes: raw
            .min_free_mb
            .map_or(d.min_free_bytes, |mb| mb.saturating_mul(1 << 20)),
        host_check: secs("host_check_secs", raw.host_check_secs, d.host_check, 1)?,
        audit_verify: secs(
            "audit_verify_secs",
            raw.audit_verify_secs,
            d.audit_verify,
            1,
        )?,
        drain: raw.drain_secs.map_or(d.drain, Duration::from_secs),
        connections,
    })
}

/// The connection limits of `[server]`: every one at least 1 (a zero
/// timeout or cap would shut every client out), and no more streams than
/// connections.
fn connection_limits(
    raw: &RawServer,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<ConnectionLimits, ConfigError> {
    let d = ConnectionLimits::default();
    let at_least_one = |field: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err(invalid(
            format!("server.{field}"),
            "must be at least 1".into(),
        )),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let secs = |field: &str, v: Option<u64>, default: Duration| match v {
        Some(0) => Err(invalid(
            format!("server.{field}"),
            "must be at least 1".into(),
        )),
        Some(n) => Ok(Duration::from_secs(n)),
        None => Ok(default),
    };
    let limits = ConnectionLimits {
        header_read: secs(
            "header_read_timeout_secs",
            raw.header_read_timeout_secs,
            d.header_read,
        )?,
        request: secs("request_timeout_secs", raw.request_timeout_secs, d.request)?,
        idle: secs("idle_timeout_secs", raw.idle_timeout_secs, d.idle)?,
        max_connections: at_least_one("max_connections", raw.max_connections, d.max_connections)?,
        reserve: at_least_one("reserve_connections", raw.reserve_connections, d.reserve)?,
        max_streams: at_least_one("max_streams", raw.max_streams, d.max_streams)?,
        max_body: at_least_one("max_body_kib", raw.max_body_kib, d.max_body / 1024)?
            .saturating_mul(1024),
    };
    if limits.max_streams > limits.max_connections {
        return Err(invalid(
            "server.max_streams".into(),
            format!(
                "{} is more than max_connections ({}): every stream holds a connection",
                limits.max_streams, limits.max_connections
            ),
        ));
    }
    Ok(limits)
}

/// The most retries `[llm] retries` may ask for.
const MAX_LLM_RETRIES: u32 = 20;

fn llm_settings(
    raw: RawLlm,
    abs: &dyn Fn(PathBuf) -> PathBuf,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<LlmSettings, ConfigError> {
    let url = raw.base_url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            "llm.base_url".into(),
            format!("`{url}` must be an http(s) URL such as http://127.0.0.1:11434/v1"),
        ));
    }
    if raw.model.trim().is_empty() {
        return Err(invalid("llm.model".into(), "must name the model".into()));
    }
    let api_key = match raw.api_key {
        Some(k) if k.env.is_some() == k.file.is_some() => {
            return Err(invalid(
                "llm.api_key".into(),
                "give exactly one of `env` or `file`: the key is a secret".into(),
            ));
        }
        Some(k) => Some(SecretRef {
            env: k.env,
            file: k.file.map(abs),
        }),
        None => None,
    };
    let positive = |field: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(invalid(format!("llm.{field}"), "must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(LlmSettings {
        base_url: url,
        model: raw.model,
        api_key,
        timeout: Duration::from_secs(positive("timeout_secs", raw.timeout_secs, 120)?),
        retries: match raw.retries {
            // Every retry may wait up to a minute; more than this is a hung
            // conversation, not resilience.
            Some(n) if n > MAX_LLM_RETRIES => {
                return Err(invalid(
                    "llm.retries".into(),
                    format!("{n} is too many; at most {MAX_LLM_RETRIES}"),
                ));
            }
            Some(n) => n,
            None => jarvis_planner::client::DEFAULT_RETRIES,
        },
        max_steps: u32::try_from(positive("max_steps", raw.max_steps.map(u64::from), 12)?)
            .unwrap_or(u32::MAX),
        token_budget: positive("token_budget", raw.token_budget, 60_000)?,
    })
}

fn approval_rule(
    raw: RawApprovals,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<ApprovalRule, ConfigError> {
    let d = ApprovalRule::default();
    let count = |field: &str, v: Option<u32>, default: u32| match v {
        Some(n) if !(1..=5).contains(&n) => Err(invalid(
            format!("approvals.{field}"),
            format!("{n} is out of range: between 1 and 5 distinct approvers"),
        )),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(ApprovalRule {
        self_approval: raw.self_approval.unwrap_or(d.self_approval),
        approvers: count("approvers", raw.approvers, d.approvers)?,
        critical_approvers: count(
            "critical_approvers",
            raw.critical_approvers,
            d.critical_approvers,
        )?,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    checkpoint_every: Option<i64>,
    head_period_secs: Option<u64>,
    key_file: Option<PathBuf>,
    signer: Option<Vec<String>>,
    signer_public_key: Option<String>,
    #[serde(default)]
    witness: Vec<RawWitness>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWitness {
    name: String,
    file: Option<PathBuf>,
    git: Option<PathBuf>,
    branch: Option<String>,
    push: Option<String>,
}

/// The audit log's signed heads (`[audit]`): how often, with what key, and
/// where they are shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// A checkpoint is signed at every multiple of this many events.
    pub checkpoint_every: i64,
    /// A head is signed at least this often while a process writes, and
    /// verification counts an event older than twice this (and half a
    /// minute) without a signed head as a break.
    pub head_period: Duration,
    /// An external signer instead of a key file.
    pub signer: Option<SignerSpec>,
    /// Where signed heads are shipped as they are made.
    pub witnesses: Vec<WitnessSpec>,
}

impl Default for AuditSettings {
    fn default() -> AuditSettings {
        AuditSettings {
            checkpoint_every: 1000,
            head_period: Duration::from_secs(60),
            signer: None,
            witnesses: Vec::new(),
        }
    }
}

/// A program that signs heads with a key the gateway never reads: it gets
/// the bytes to sign on stdin and prints the ed25519 signature in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its key's public half (hex), which every signature is checked
    /// against and verification trusts.
    pub public_key: String,
}

/// A witness of the audit log (`[[audit.witness]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    /// Its name, for `jarvis audit verify --witness NAME` and messages.
    pub name: String,
    /// Where it keeps the heads.
    pub sink: WitnessSink,
}

/// Where a witness keeps the signed heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessSink {
    /// Appended as JSON lines to a file (on another mount or machine).
    File(PathBuf),
    /// One commit per head on a branch of a git repository (created bare
    /// if missing), pushed to `push` if given.
    Git {
        /// The repository (bare, or a working tree).
        repo: PathBuf,
        /// The branch.
        branch: String,
        /// The remote to push the branch to after each shipment.
        push: Option<String>,
    },
}

/// The branch a git witness keeps heads on unless told otherwise.
pub const WITNESS_BRANCH: &str = "jarvis-audit-heads";

fn audit_settings(
    raw: RawAudit,
    store_key: Option<PathBuf>,
    data_dir: Option<&Path>,
    abs: &dyn Fn(PathBuf) -> PathBuf,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<(AuditSettings, Option<PathBuf>), ConfigError> {
    let d = AuditSettings::default();
    let checkpoint_every = match raw.checkpoint_every {
        Some(n) if n < 1 => {
            return Err(invalid(
                "audit.checkpoint_every".into(),
                "must be at least 1 (events between checkpoints)".into(),
            ));
        }
        Some(n) => n,
        None => d.checkpoint_every,
    };
    let head_period = match raw.head_period_secs {
        Some(0) => {
            return Err(invalid(
                "audit.head_period_secs".into(),
                "must be at least 1".into(),
            ));
        }
        Some(n) => Duration::from_secs(n),
        None => d.head_period,
    };
    let key_file = match (store_key, raw.key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "audit.key_file".into(),
                "the key file is given twice (also as store.audit_key); keep one".into(),
            ));
        }
        (a, b) => a.or(b).map(abs),
    };
    let signer = match (raw.signer, raw.signer_public_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "audit.signer_public_key".into(),
                "is required with a signer: the public key (64 hex digits) its signatures are checked against".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "audit.signer".into(),
                "is missing: signer_public_key belongs to a signer command".into(),
            ));
        }
        (Some(command), Some(public_key)) => {
            let Some((program, args)) = command.split_first() else {
                return Err(invalid(
                    "audit.signer".into(),
                    "must name a program, then its arguments".into(),
                ));
            };
            if key_file.is_some() {
                return Err(invalid(
                    "audit.signer".into(),
                    "give a signer or a key file, not both".into(),
                ));
            }
            let public_key = public_key.trim().to_ascii_lowercase();
            if public_key.len() != 64 || !public_key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "audit.signer_public_key".into(),
                    format!("`{public_key}` is not an ed25519 public key in hex (64 digits)"),
                ));
            }
            // A bare name is looked up on PATH; a path is the config's.
            let program = PathBuf::from(program);
            let program = if program.components().count() > 1 {
                abs(program)
            } else {
                program
            };
            Some(SignerSpec {
                program,
                args: args.to_vec(),
                public_key,
            })
        }
    };
    let mut witnesses: Vec<WitnessSpec> = Vec::new();
    for (i, w) in raw.witness.into_iter().enumerate() {
        let field = |f: &str| format!("audit.witness[{i}].{f}");
        if w.name.trim().is_empty() {
            return Err(invalid(field("name"), "must not be empty".into()));
        }
        if witnesses.iter().any(|o| o.name == w.name) {
            return Err(invalid(
                field("name"),
                format!("`{}` names two witnesses", w.name),
            ));
        }
        let sink = match (w.file, w.git) {
            (Some(file), None) => {
                if w.branch.is_some() || w.push.is_some() {
                    return Err(invalid(
                        field("branch"),
                        "branch and push belong to a git witness".into(),
                    ));
                }
                WitnessSink::File(abs(file))
            }
            (None, Some(repo)) => WitnessSink::Git {
                repo: abs(repo),
                branch: w.branch.unwrap_or_else(|| WITNESS_BRANCH.to_owned()),
                push: w.push,
            },
            _ => {
                return Err(invalid(
                    field("file"),
                    "give exactly one of `file` (JSON lines) or `git` (a repository)".into(),
                ));
            }
        };
        // A witness beside the database is one more thing its writer can
        // rewrite.
        let place = match &sink {
            WitnessSink::File(p) => p,
            WitnessSink::Git { repo, .. } => repo,
        };
        if let Some(dir) = data_dir
            && place.starts_with(dir)
        {
            return Err(invalid(
                field(if matches!(sink, WitnessSink::File(_)) {
                    "file"
                } else {
                    "git"
                }),
                format!(
                    "{} is inside the data directory {}: a witness must live where the database's writer cannot reach (another mount, another machine)",
                    place.display(),
                    dir.display()
                ),
            ));
        }
        witnesses.push(WitnessSpec { name: w.name, sink });
    }
    Ok((
        AuditSettings {
            checkpoint_every,
            head_period,
            signer,
            witnesses,
        },
        key_file,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/jarvis/jarvis.toml"), text)
    }

    #[test]
    fn a_host_with_relative_paths_and_limits() {
        let c = parse(
            r#"
            [store]
            database = { env = "JARVIS_DATABASE_URL" }
            [limits]
            loop_repeats = 3
            [hosts.nas]
            destination = "jarvis@nas.lan"
            port = 2222
            identity = "keys/id_ed25519"
            known_hosts = "/etc/jarvis/known_hosts"
            tags = ["storage"]
            [hosts.nas.limits]
            concurrency = 1
            output_cap_bytes = 4096
            "#,
        )
        .expect("valid");
        let nas = &c.hosts[0];
        assert_eq!(nas.name.as_str(), "nas");
        assert_eq!(
            nas.identity.as_deref(),
            Some(Path::new("/etc/jarvis/keys/id_ed25519"))
        );
        assert_eq!(nas.limits.concurrency, 1);
        assert_eq!(nas.limits.output_cap, 4096);
        assert_eq!(
            nas.limits.rate_per_minute,
            HostLimits::default().rate_per_minute
        );
        assert_eq!(c.loop_brake.repeats, 3);
        assert_eq!(
            c.database.and_then(|d| d.env).as_deref(),
            Some("JARVIS_DATABASE_URL")
        );
    }

    #[test]
    fn approval_windows_default_and_must_not_be_zero() {
        let c = parse("[limits]\nrun_window_secs = 600\n").expect("valid");
        assert_eq!(c.run_window, Duration::from_secs(600));
        assert_eq!(c.approval_ttl, Config::default().approval_ttl);
        for field in [
            "approval_ttl_secs",
            "run_window_secs",
            "loop_window_secs",
            "ssh_master_idle_secs",
        ] {
            let e = parse(&format!("[limits]\n{field} = 0\n")).expect_err("zero");
            let e = e.to_string();
            assert!(
                e.contains(&format!("limits.{field}")) && e.contains("at least 1"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_ssh_master_idle_time_defaults_and_is_set() {
        let d = parse("").expect("valid").global.ssh_master_idle;
        assert_eq!(d, Duration::from_secs(300));
        let c = parse("[limits]\nssh_master_idle_secs = 30\n").expect("valid");
        assert_eq!(c.global.ssh_master_idle, Duration::from_secs(30));
    }

    #[test]
    fn connection_limits_default_and_set() {
        let d = parse("").expect("valid").server.connections;
        assert_eq!(d, ConnectionLimits::default());
        assert_eq!(d.header_read, Duration::from_secs(10));
        assert_eq!((d.max_connections, d.max_streams), (512, 64));
        let c = parse(
            "[server]\nheader_read_timeout_secs = 2\nrequest_timeout_secs = 5\nidle_timeout_secs = 3\nmax_connections = 40\nreserve_connections = 4\nmax_streams = 2\nmax_body_kib = 16\n",
        )
        .expect("valid")
        .server
        .connections;
        assert_eq!(
            c,
            ConnectionLimits {
                header_read: Duration::from_secs(2),
                request: Duration::from_secs(5),
                idle: Duration::from_secs(3),
                max_connections: 40,
                reserve: 4,
                max_streams: 2,
                max_body: 16 * 1024,
            }
        );
    }

    #[test]
    fn server_approvals_and_webhooks() {
        let c = parse(
            r#"
            [server]
            bind = "0.0.0.0:8080"
            public_url = "https://jarvis.home.lan/"
            [approvals]
            self_approval = false
            critical_approvers = 2
            [[notify]]
            name = "phone"
            format = "ntfy"
            url = { file = "secrets/ntfy-url" }
            events = ["approval_needed"]
            "#,
        )
        .expect("valid");
        assert_eq!(c.server.bind.port(), 8080);
        assert!(c.server.behind_tls());
        assert_eq!(
            c.server.public_url.as_deref(),
            Some("https://jarvis.home.lan")
        );
        assert!(!c.approvals.self_approval);
        assert_eq!(c.approvals.critical_approvers, 2);
        assert_eq!(c.approvals.approvers, 1);
        assert_eq!(c.rollback_approval, RollbackApproval::SameRule);
        let quick = parse("[approvals]\nrollback = \"one-approver\"\n").expect("valid");
        assert_eq!(quick.rollback_approval, RollbackApproval::OneApprover);
        assert_eq!(
            c.notify[0].url.file.as_deref(),
            Some(Path::new("/etc/jarvis/secrets/ntfy-url"))
        );
        assert!(!Config::default().server.behind_tls());
    }

    #[test]
    fn a_model_endpoint() {
        let c = parse("[llm]\nbase_url = \"http://127.0.0.1:11434/v1/\"\nmodel = \"qwen2.5:7b\"\n")
            .expect("valid");
        let l = c.llm.expect("llm");
        assert_eq!(l.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(l.api_key, None);
        assert_eq!(l.max_steps, 12);
        assert_eq!(l.retries, jarvis_planner::client::DEFAULT_RETRIES);
        let c = parse("[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nretries = 0\n")
            .expect("valid");
        assert_eq!(c.llm.map(|l| l.retries), Some(0));
        let c = parse(
            "[llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"gpt-4o-mini\"\napi_key = { file = \"keys/openai\" }\n",
        )
        .expect("valid");
        assert_eq!(
            c.llm.and_then(|l| l.api_key).and_then(|k| k.file),
            Some(PathBuf::from("/etc/jarvis/keys/openai"))
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let cases = [
            (
                "[hosts.nas]\ndestination = \"nas\"\n",
                "hosts.nas.known_hosts",
            ),
            (
                "[hosts.nas]\ndestination = \"-oProxyCommand=x\"\nknown_hosts = \"k\"\n",
                "hosts.nas.destination",
            ),
            (
                "[hosts.\"bad name\"]\ndestination = \"x\"\nknown_hosts = \"k\"\n",
                "hosts.bad name",
            ),
            (
                "[store]\ndatabase = { env = \"A\", file = \"b\" }\n",
                "store.database",
            ),
            ("[limits]\nburst = 0\n", "limits.burst"),
            (
                "[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nretries = 100\n",
                "llm.retries",
            ),
            ("[server]\nbind = \"localhost\"\n", "server.bind"),
            (
                "[server]\nheader_read_timeout_secs = 0\n",
                "server.header_read_timeout_secs",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
            (
                "[server]\nmax_connections = 8\nmax_streams = 9\n",
                "server.max_streams",
            ),
            ("[server]\nmax_body_kib = 0\n", "server.max_body_kib"),
            (
                "[server]\npublic_url = \"jarvis.lan\"\n",
                "server.public_url",
            ),
            (
                "[approvals]\ncritical_approvers = 0\n",
                "approvals.critical_approvers",
            ),
            ("[approvals]\nrollback = \"anyone\"\n", "approvals.rollback"),
            (
                "[[notify]]\nname = \"x\"\nformat = \"json\"\nurl = {}\n",
                "notify[0].url",
            ),
            (
                "[llm]\nbase_url = \"localhost:11434\"\nmodel = \"m\"\n",
                "llm.base_url",
            ),
            (
                "[llm]\nbase_url = \"http://x/v1\"\nmodel = \"m\"\napi_key = \"sk-inline\"\n",
                "api_key",
            ),
            (
                "[hosts.nas]\ndestination = \"x\"\nknown_hosts = \"k\"\n[hosts.nas.limits]\ndefault_timeout_secs = 9000\n",
                "hosts.nas.limits.default_timeout_secs",
            ),
        ];
        for (text, field) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(field), "{err} should name {field}");
            assert!(err.starts_with("/etc/jarvis/jarvis.toml"), "{err}");
        }
    }

    #[test]
    fn enforcement_is_required_unless_the_host_says_best_effort() {
        let c = parse(
            r#"
            [hosts.nas]
            destination = "jarvis@nas.lan"
            known_hosts = "k"
            [hosts.pi]
            destination = "jarvis@pi.lan"
            known_hosts = "k"
            enforcement = "best-effort"
            [hosts.vm]
            destination = "jarvis@vm.lan"
            known_hosts = "k"
            enforcement = "required"
            "#,
        )
        .expect("valid");
        let of = |h: &str| c.enforcement(&HostName::parse(h).expect("name"));
        assert_eq!(of("nas"), Enforcement::Required);
        assert_eq!(of("pi"), Enforcement::BestEffort);
        assert_eq!(of("vm"), Enforcement::Required);
        assert_eq!(of("elsewhere"), Enforcement::Required);
        for word in ["off", "Best-Effort", "best_effort", ""] {
            let err = parse(&format!(
                "[hosts.pi]\ndestination = \"x\"\nknown_hosts = \"k\"\nenforcement = \"{word}\"\n"
            ))
            .expect_err(word)
            .to_string();
            assert!(
                err.contains("hosts.pi.enforcement")
                    && err.contains(&format!("`{word}`"))
                    && err.contains("best-effort"),
                "{err}"
            );
        }
        let err =
            parse("[hosts.pi]\ndestination = \"x\"\nknown_hosts = \"k\"\nenforcement = false\n")
                .expect_err("a boolean")
                .to_string();
        assert!(err.contains("enforcement"), "{err}");
    }

    #[test]
    fn audit_heads_keys_and_witnesses() {
        let c = parse(
            r#"
            [store]
            data_dir = "/var/lib/jarvis"
            [audit]
            checkpoint_every = 100
            head_period_secs = 30
            signer = ["bin/jarvis-sign", "--slot", "2"]
            signer_public_key = "AB12000000000000000000000000000000000000000000000000000000000000"
            [[audit.witness]]
            name = "usb"
            file = "/mnt/usb/jarvis-heads.jsonl"
            [[audit.witness]]
            name = "offsite"
            git = "/srv/witness.git"
            push = "origin"
            "#,
        )
        .expect("valid");
        assert_eq!(c.audit.checkpoint_every, 100);
        assert_eq!(c.audit.head_period, Duration::from_secs(30));
        let signer = c.audit.signer.as_ref().expect("signer");
        assert_eq!(signer.program, Path::new("/etc/jarvis/bin/jarvis-sign"));
        assert_eq!(signer.args, ["--slot", "2"]);
        assert!(signer.public_key.starts_with("ab12"));
        assert_eq!(
            c.audit.witnesses,
            vec![
                WitnessSpec {
                    name: "usb".into(),
                    sink: WitnessSink::File("/mnt/usb/jarvis-heads.jsonl".into()),
                },
                WitnessSpec {
                    name: "offsite".into(),
                    sink: WitnessSink::Git {
                        repo: "/srv/witness.git".into(),
                        branch: WITNESS_BRANCH.into(),
                        push: Some("origin".into()),
                    },
                },
            ]
        );
        let d = parse("").expect("empty");
        assert_eq!(d.audit, AuditSettings::default());
        let k = parse("[audit]\nkey_file = \"keys/audit.key\"\n").expect("key file");
        assert_eq!(
            k.audit_key.as_deref(),
            Some(Path::new("/etc/jarvis/keys/audit.key"))
        );
        let bare = parse(&format!(
            "[audit]\nsigner = [\"jarvis-sign\"]\nsigner_public_key = \"{}\"\n",
            "0".repeat(64)
        ))
        .expect("on PATH");
        assert_eq!(
            bare.audit.signer.map(|s| s.program),
            Some(PathBuf::from("jarvis-sign"))
        );
    }

    #[test]
    fn audit_mistakes_name_the_field() {
        let key = "0".repeat(64);
        let cases = [
            ("[audit]\ncheckpoint_every = 0\n".to_owned(), "audit.checkpoint_every"),
            ("[audit]\nhead_period_secs = 0\n".to_owned(), "audit.head_period_secs"),
            ("[audit]\nsigner = [\"s\"]\n".to_owned(), "audit.signer_public_key"),
            (format!("[audit]\nsigner_public_key = \"{key}\"\n"), "audit.signer"),
            (format!("[audit]\nsigner = []\nsigner_public_key = \"{key}\"\n"), "audit.signer"),
            ("[audit]\nsigner = [\"s\"]\nsigner_public_key = \"beef\"\n".to_owned(), "audit.signer_public_key"),
            (
                format!("[audit]\nkey_file = \"k\"\nsigner = [\"s\"]\nsigner_public_key = \"{key}\"\n"),
                "audit.signer",
            ),
            ("[store]\naudit_key = \"a\"\n[audit]\nkey_file = \"b\"\n".to_owned(), "audit.key_file"),
            ("[[audit.witness]]\nname = \"w\"\n".to_owned(), "audit.witness[0].file"),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\ngit = \"b\"\n".to_owned(),
                "audit.witness[0].file",
            ),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\nbranch = \"b\"\n".to_owned(),
                "audit.witness[0].branch",
            ),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\n[[audit.witness]]\nname = \"w\"\nfile = \"b\"\n".to_owned(),
                "audit.witness[1].name",
            ),
            (
                "[store]\ndata_dir = \"/var/lib/jarvis\"\n[[audit.witness]]\nname = \"w\"\nfile = \"/var/lib/jarvis/heads.jsonl\"\n".to_owned(),
                "audit.witness[0].file",
            ),
            (
                "[store]\ndata_dir = \"state\"\n[[audit.witness]]\nname = \"w\"\ngit = \"state/witness\"\n".to_owned(),
                "audit.witness[0].git",
            ),
            ("[audit]\nwitnesses = []\n".to_owned(), "witnesses"),
        ];
        for (text, field) in cases {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn unknown_fields_and_inline_secrets_are_refused() {
        let err = parse(
            "[hosts.nas]\ndestination = \"x\"\nknown_hosts = \"k\"\npassword = \"hunter2\"\n",
        )
        .expect_err("unknown field")
        .to_string();
        assert!(err.contains("password"), "{err}");
        let err = parse("[store]\ndatabase = \"postgres://u:p@db/jarvis\"\n")
            .expect_err("inline URL")
            .to_string();
        assert!(err.contains("database"), "{err}");
    }
}
