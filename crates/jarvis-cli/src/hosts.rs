//! `jarvis hosts list | check | install-guard`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use jarvis_core::HostName;
use jarvis_exec::{Executor, HostSpec};
use jarvis_gateway::pipeline::{KernelKnown, KernelStanding};

use crate::data::config;

#[derive(Subcommand)]
pub enum HostsCommand {
    /// List the configured hosts and their limits.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Connect to a host, check that its guard answers, and report the host's Docker, git and shell, how much of the kernel wall it enforces, and what its `enforcement` setting makes of that.
    Check {
        /// Print one JSON object (docs/json-output.md).
        #[arg(long)]
        json: bool,
        /// The host's name in the config.
        name: String,
    },
    /// Print the authorized_keys line and the steps to install the guard on a real host.
    InstallGuard {
        /// The gateway's public key file (default: the host's identity file plus `.pub`).
        #[arg(long, value_name = "FILE")]
        public_key: Option<std::path::PathBuf>,
        /// The host's name in the config.
        name: String,
    },
}

fn host(name: &str) -> Result<&'static HostSpec> {
    let name = HostName::parse(name).with_context(|| format!("host name `{name}`"))?;
    let file = config()
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "no config file (give --config FILE)".into());
    config()
        .host(&name)
        .with_context(|| format!("no host named `{name}` in {file}"))
}

pub fn run(cmd: HostsCommand) -> Result<ExitCode> {
    match cmd {
        HostsCommand::List { json } => {
            for h in &config().hosts {
                let enforcement = config().enforcement(&h.name);
                if json {
                    let mut line = serde_json::to_value(h)?;
                    line["enforcement"] = enforcement.as_str().into();
                    println!("{line}");
                } else {
                    let l = &h.limits;
                    println!(
                        "{:<12} {}{}  tags [{}]  timeout {}s (max {}s)  output cap {} B  {}/min burst {}  concurrency {}  enforcement {}",
                        h.name,
                        h.destination,
                        h.port.map(|p| format!(":{p}")).unwrap_or_default(),
                        h.tags.join(", "),
                        l.default_timeout.as_secs(),
                        l.max_timeout.as_secs(),
                        l.output_cap,
                        l.rate_per_minute,
                        l.burst,
                        l.concurrency,
                        enforcement
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        HostsCommand::Check { json, name } => {
            let spec = host(&name)?.clone();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let control = crate::actions::control_dir()?;
                let exec = Executor::new(vec![spec.clone()], &config().global, &control);
                let started = std::time::Instant::now();
                let result = exec.check(&spec.name).await;
                exec.close().await;
                let took = started.elapsed().as_millis();
                if json {
                    return check_json(&spec.name, result, took);
                }
                match result {
                    Ok(r) => {
                        println!("host      {} ({}@{})", spec.name, r.user, r.hostname);
                        println!("guard     answers, {took} ms");
                        println!(
                            "policy    {} ({} rules)",
                            r.policy.join(", "),
                            r.policy_rules
                        );
                        println!(
                            "docker    {}",
                            r.docker.as_deref().unwrap_or("not available")
                        );
                        println!("git       {}", r.git.as_deref().unwrap_or("not available"));
                        println!(
                            "shell     {}",
                            r.bash
                                .as_deref()
                                .unwrap_or("no bash: the guard runs nothing on this host")
                        );
                        // The verdict the pipeline applies to every
                        // proposal for this host, from the same report.
                        let kernel = KernelStanding {
                            host: spec.name.clone(),
                            enforcement: config().enforcement(&spec.name),
                            known: KernelKnown::Reported(r.enforcement),
                            learnt_at: None,
                        };
                        println!("kernel    {}", kernel.level());
                        println!(
                            "          enforcement = \"{}\": {}",
                            kernel.enforcement,
                            kernel.consequence()
                        );
                        Ok(ExitCode::SUCCESS)
                    }
                    Err(e) => {
                        eprintln!("jarvis: {} check failed: {e}", spec.name);
                        let kernel = KernelStanding {
                            host: spec.name.clone(),
                            enforcement: config().enforcement(&spec.name),
                            known: KernelKnown::Unreachable(e.to_string()),
                            learnt_at: None,
                        };
                        if !kernel.unattended() {
                            eprintln!(
                                "jarvis: under enforcement = \"{}\", {} until it answers",
                                kernel.enforcement,
                                kernel.consequence()
                            );
                        }
                        Ok(ExitCode::from(1))
                    }
                }
            })
        }
        HostsCommand::InstallGuard { public_key, name } => {
            let spec = host(&name)?;
            let key_file = match public_key {
                Some(k) => k,
                None => match &spec.identity {
                    Some(id) => {
                        let mut p = id.clone().into_os_string();
                        p.push(".pub");
                        p.into()
                    }
                    None => bail!("host `{name}` has no identity file; give --public-key FILE"),
                },
            };
            let key = std::fs::read_to_string(&key_file).with_context(|| {
                format!(
                    "cannot read the gateway's public key {}",
                    key_file.display()
                )
            })?;
            let key = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            print!("{}", install_steps(&key, &name));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `hosts check --json`: the guard's report, or why it did not answer,
/// and the verdict the pipeline draws for the host's actions from it.
fn check_json(
    host: &HostName,
    result: Result<jarvis_exec::protocol::CheckReport, jarvis_exec::ExecError>,
    took_ms: u128,
) -> Result<ExitCode> {
    let known = match &result {
        Ok(r) => KernelKnown::Reported(r.enforcement.clone()),
        Err(e) => KernelKnown::Unreachable(e.to_string()),
    };
    let kernel = KernelStanding {
        host: host.clone(),
        enforcement: config().enforcement(host),
        known,
        learnt_at: None,
    };
    let (reachable, report, error) = match &result {
        Ok(r) => (true, serde_json::to_value(r)?, serde_json::Value::Null),
        Err(e) => {
            eprintln!("jarvis: {host} check failed: {e}");
            (
                false,
                serde_json::Value::Null,
                serde_json::json!({ "code": e.code(), "reason": e.to_string() }),
            )
        }
    };
    crate::json::print(&serde_json::json!({
        "host": host,
        "reachable": reachable,
        "took_ms": u64::try_from(took_ms).unwrap_or(u64::MAX),
        "report": report,
        "error": error,
        "kernel": {
            "level": kernel.level_word(),
            "detail": kernel.level(),
            "enforcement": kernel.enforcement.as_str(),
            "unattended": kernel.unattended(),
            "consequence": kernel.consequence(),
        },
    }))?;
    Ok(ExitCode::from(if reachable { 0 } else { 1 }))
}

fn install_steps(key: &str, host: &str) -> String {
    format!(
        r#"# Install the Jarvis guard on `{host}` (as root on that host):
#
# 1. A dedicated user, reachable by key only:
useradd --create-home --shell /bin/sh jarvis && usermod -p '*' jarvis
# 2. The guard binary (build it with `cargo build --release -p jarvis-guard`),
#    owned by root so the jarvis user cannot replace it:
install -o root -g root -m 0755 jarvis-guard /usr/local/bin/jarvis-guard
# 3. The host's own policy (deny rules the gateway cannot override) and the log:
install -d -o root -g root -m 0755 /etc/jarvis /var/log/jarvis
install -o root -g root -m 0644 guard.toml /etc/jarvis/guard.toml
install -o jarvis -g jarvis -m 0640 /dev/null /var/log/jarvis/guard.log
# 4. The key, in a root-owned file the jarvis user cannot edit. In sshd_config:
#      Match User jarvis
#          AuthorizedKeysFile /etc/ssh/authorized_keys/%u
#          DisableForwarding yes
#          PermitTTY no
#    then `systemctl reload ssh`. The one line of /etc/ssh/authorized_keys/jarvis:
restrict,command="exec /usr/local/bin/jarvis-guard --policy /etc/jarvis/guard.toml --log /var/log/jarvis/guard.log" {key} jarvis-gateway
#    The guard runs every command with bash (install it if the host has
#    none) under a Landlock and seccomp ruleset (Linux 6.12 or later for the
#    whole wall). Approved actions may also write beneath the home
#    directory, /tmp and /var/tmp; to choose instead, add one
#    `--approved-writes DIR` per directory. `--kernel off` switches the wall
#    off; the gateway then holds every action on this host for a person
#    unless the host says `enforcement = "best-effort"` in jarvis.toml.
# 5. On the gateway, pin the host key and check (it reports the shell and
#    what the host's kernel enforces):
#      ssh-keyscan -t ed25519 HOST > known_hosts   (compare the fingerprint out of band)
#      jarvis hosts check {host}
# Membership in the docker group is root-equivalent: grant it only if the
# agent must manage containers, and keep the guard's deny rules strict.
"#
    )
}
