//! Reading `jarvis.toml`: the file's raw shape, and its checks into a
//! [`Config`] in the file's order. `[store]`, `[limits]`, the hosts,
//! `[approvals]` and `[[notify]]` are checked here; the other sections by
//! their own modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jarvis_core::{ApprovalRule, HostName, RollbackApproval};
use jarvis_exec::snapshot::SnapshotSettings;
use jarvis_exec::{GlobalLimits, HostLimits, HostSpec};
use serde::Deserialize;

use super::audit::{RawAudit, audit_settings};
use super::llm::{RawLlm, llm_settings};
use super::server::{RawServer, server_settings};
use super::{Config, ConfigError, Enforcement, LoopBrake, NotifySpec, SecretRef};

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

impl Config {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::parse;

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
