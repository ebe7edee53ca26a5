//! The web server's settings (`[server]`): where it listens and where
//! people reach it, how often it checks hosts and the audit chain, and
//! what bounds its connections.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    bind: Option<String>,
    public_url: Option<String>,
    session_hours: Option<u64>,
    trust_forwarded_for: Option<bool>,
    public_metrics: Option<bool>,
    host_check_secs: Option<u64>,
    audit_verify_secs: Option<u64>,
    drain_secs: Option<u64>,
    mcp_wait_secs: Option<u64>,
    min_free_mb: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    reserve_connections: Option<usize>,
    max_streams: Option<usize>,
    max_body_kib: Option<usize>,
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
    /// How long an MCP `run_command` or `propose_edit` waits for a person
    /// and the run before it answers with the action's id for the agent
    /// to poll (`mcp_wait_secs`, 60). Clients give up on a tool call after
    /// a time of their own; keep it below theirs.
    pub mcp_wait: Duration,
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
            mcp_wait: Duration::from_secs(60),
            public_metrics: false,
            min_free_bytes: 64 << 20,
            connections: ConnectionLimits::default(),
        }
    }
}

pub(super) fn server_settings(
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
        mcp_wait: secs("mcp_wait_secs", raw.mcp_wait_secs, d.mcp_wait, 1)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::parse;

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
}
