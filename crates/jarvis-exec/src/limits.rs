//! Rate limits (GCRA, through the governor crate): global, per requester and
//! per host.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use jarvis_core::HostName;

use crate::host::{GlobalLimits, HostSpec};

/// Which limit refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// All hosts together.
    Global,
    /// One requester.
    Requester(String),
    /// One host.
    Host(HostName),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Requester(r) => write!(f, "requester `{r}`"),
            Scope::Host(h) => write!(f, "host `{h}`"),
        }
    }
}

/// A refusal by a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Which limit.
    pub scope: Scope,
    /// Its rate, per minute.
    pub per_minute: u32,
    /// When the next action would be let through.
    pub retry_after: Duration,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

// Every limit reads the standard monotonic clock. governor's default clock
// (quanta) calibrates the TSC at its first use, a busy loop of about 10 ms
// that a `jarvis` command, which lives for one action, would pay in full.
type Direct =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;
type Keyed = RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    MonotonicClock,
    NoOpMiddleware<std::time::Instant>,
>;

fn direct(quota: Quota) -> Direct {
    RateLimiter::direct_with_clock(quota, MonotonicClock)
}

/// Every rate limit the executor applies.
pub struct RateLimits {
    clock: MonotonicClock,
    global: (Direct, u32),
    requesters: (Keyed, u32),
    hosts: HashMap<HostName, (Direct, u32)>,
}

impl RateLimits {
    /// Limits for these hosts.
    pub fn new(global: &GlobalLimits, hosts: &[HostSpec]) -> RateLimits {
        RateLimits {
            clock: MonotonicClock,
            global: (
                direct(quota(global.rate_per_minute, global.burst)),
                global.rate_per_minute,
            ),
            requesters: (
                RateLimiter::new(
                    quota(global.requester_rate_per_minute, global.requester_burst),
                    DefaultKeyedStateStore::default(),
                    MonotonicClock,
                ),
                global.requester_rate_per_minute,
            ),
            hosts: hosts
                .iter()
                .map(|h| {
                    let l = &h.limits;
                    (
                        h.name.clone(),
                        (direct(quota(l.rate_per_minute, l.burst)), l.rate_per_minute),
                    )
                })
                .collect(),
        }
    }

    /// Takes one cell from each limit that applies, narrowest last.
    ///
    /// A refusal by a narrow limit has already spent a cell of the wider
    /// ones; that errs on the side of sending less.
    ///
    /// # Errors
    /// [`Limited`] naming the first limit that refused.
    pub fn admit(&self, host: &HostName, requester: &str) -> Result<(), Limited> {
        let now = self.clock.now();
        let refuse = |scope: Scope, per_minute: u32, wait: Duration| Limited {
            scope,
            per_minute,
            retry_after: wait,
        };
        self.global
            .0
            .check()
            .map_err(|n| refuse(Scope::Global, self.global.1, n.wait_time_from(now)))?;
        self.requesters
            .0
            .check_key(&requester.to_owned())
            .map_err(|n| {
                refuse(
                    Scope::Requester(requester.to_owned()),
                    self.requesters.1,
                    n.wait_time_from(now),
                )
            })?;
        if let Some((limiter, per_minute)) = self.hosts.get(host) {
            limiter.check().map_err(|n| {
                refuse(
                    Scope::Host(host.clone()),
                    *per_minute,
                    n.wait_time_from(now),
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostLimits;

    fn host(name: &str, per_minute: u32, burst: u32) -> HostSpec {
        HostSpec {
            name: HostName::parse(name).expect("valid"),
            destination: "x".into(),
            port: None,
            identity: None,
            known_hosts: "/dev/null".into(),
            tags: vec![],
            limits: HostLimits {
                rate_per_minute: per_minute,
                burst,
                ..HostLimits::default()
            },
            snapshots: Default::default(),
        }
    }

    #[test]
    fn each_scope_refuses_with_its_name() {
        let global = GlobalLimits {
            rate_per_minute: 600,
            burst: 5,
            requester_rate_per_minute: 600,
            requester_burst: 3,
            ..GlobalLimits::default()
        };
        let limits = RateLimits::new(&global, &[host("a", 60, 2), host("b", 600, 100)]);
        let a = HostName::parse("a").expect("valid");
        let b = HostName::parse("b").expect("valid");
        assert!(limits.admit(&a, "alice").is_ok());
        assert!(limits.admit(&a, "alice").is_ok());
        let host_refusal = limits
            .admit(&a, "bob")
            .expect_err("host a allows a burst of 2");
        assert_eq!(host_refusal.scope, Scope::Host(a.clone()));
        assert!(host_refusal.retry_after > Duration::ZERO);
        assert!(limits.admit(&b, "alice").is_ok());
        let requester = limits
            .admit(&b, "alice")
            .expect_err("alice's burst of 3 is spent");
        assert_eq!(requester.scope, Scope::Requester("alice".into()));
        // Five global cells are spent by now (two of them by refused calls).
        let global_refusal = limits.admit(&b, "carol").expect_err("global burst of 5");
        assert_eq!(global_refusal.scope, Scope::Global);
    }
}
