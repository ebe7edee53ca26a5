//! What the executor knows about a host: how to reach it and its limits.

use std::path::PathBuf;
use std::time::Duration;

use jarvis_core::HostName;
use serde::Serialize;

/// One target host.
#[derive(Debug, Clone, Serialize)]
pub struct HostSpec {
    /// Its name in Jarvis.
    pub name: HostName,
    /// What `ssh` is given: `user@address`, an address, or an alias from
    /// `~/.ssh/config`.
    pub destination: String,
    /// A port, when not the destination's default.
    pub port: Option<u16>,
    /// The private key to log in with; only this key is offered.
    pub identity: Option<PathBuf>,
    /// The pinned `known_hosts` file: the host key must be in it, and only
    /// this file is consulted.
    pub known_hosts: PathBuf,
    /// Free labels (`nas`, `prod`).
    pub tags: Vec<String>,
    /// Its limits.
    pub limits: HostLimits,
    /// What to snapshot, and how long to keep it.
    pub snapshots: crate::snapshot::SnapshotSettings,
}

/// Per-host limits.
#[derive(Debug, Clone, Serialize)]
pub struct HostLimits {
    /// The timeout of an action that names none.
    pub default_timeout: Duration,
    /// The longest timeout an action may ask for.
    pub max_timeout: Duration,
    /// Bytes of each of stdout and stderr kept; the rest is counted and
    /// hashed on the host.
    pub output_cap: u64,
    /// Actions per minute sent to this host (GCRA: evenly replenished).
    pub rate_per_minute: u32,
    /// How many may be sent at once after a quiet spell.
    pub burst: u32,
    /// Actions running on the host at the same time.
    pub concurrency: u32,
    /// How long an action waits for a free slot before it is refused.
    pub queue_timeout: Duration,
    /// Consecutive transport failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses before it lets one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for HostLimits {
    fn default() -> HostLimits {
        HostLimits {
            default_timeout: Duration::from_secs(60),
            max_timeout: Duration::from_secs(3600),
            output_cap: 1 << 20,
            rate_per_minute: 60,
            burst: 10,
            concurrency: 4,
            queue_timeout: Duration::from_secs(30),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Limits across hosts.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalLimits {
    /// Actions per minute across all hosts.
    pub rate_per_minute: u32,
    /// Burst across all hosts.
    pub burst: u32,
    /// Actions per minute from one requester (a person, the planner).
    pub requester_rate_per_minute: u32,
    /// Burst for one requester.
    pub requester_burst: u32,
    /// How long a host's SSH master stays with no session before it exits
    /// (ControlPersist). It outlives the `jarvis` process that started it,
    /// so the next one within this time pays no handshake; it also bounds
    /// how long a master lingers after the last process that used it.
    pub ssh_master_idle: Duration,
}

impl Default for GlobalLimits {
    fn default() -> GlobalLimits {
        GlobalLimits {
            rate_per_minute: 240,
            burst: 40,
            requester_rate_per_minute: 60,
            requester_burst: 10,
            ssh_master_idle: Duration::from_secs(300),
        }
    }
}
