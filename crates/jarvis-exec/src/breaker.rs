//! The circuit breaker: after repeated transport failures a host is left
//! alone for a while instead of being hammered, and callers are told why.
//!
//! Once the cooldown is over, one request is let through to try the host
//! again (the probe) and everyone else waits for its verdict. The probe is
//! a [`Pass`]: whoever holds it either reports how the host answered
//! ([`Breaker::succeeded`], [`Breaker::failed`]) or drops it, and a pass
//! dropped without a verdict (the request was refused by a later limit,
//! failed locally before anything was sent, or its future was cancelled)
//! gives the probe back, so the next request tries. A breaker is
//! `Probing` only while the pass that probes is alive.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why the breaker refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Consecutive failures that opened it.
    pub failures: u32,
    /// The last failure, in the transport's words.
    pub last_error: String,
    /// Time left until one probe is let through (zero while a probe is out).
    pub retry_in: Duration,
}

#[derive(Debug)]
enum State {
    Closed {
        failures: u32,
        last_error: String,
    },
    Open {
        since: Instant,
        failures: u32,
        last_error: String,
    },
    /// Probe `probe` is out; everyone else waits for its result.
    Probing {
        probe: u64,
        /// When the breaker opened; kept so a probe given back leaves it
        /// open with the cooldown already over.
        since: Instant,
        failures: u32,
        last_error: String,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// The id the next probe gets: a late pass from an earlier probe must
    /// not give back a later one.
    next_probe: u64,
}

/// Where a breaker stands, for a person reading about the host: the web
/// UI's hosts page says "healthy", "cut off after 5 failures, retrying at
/// 12:03" or "trying again" from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerStatus {
    /// Requests go through; `failures` consecutive ones failed lately
    /// (fewer than it takes to cut the host off).
    Closed {
        /// Consecutive failures since the last success.
        failures: u32,
        /// The last failure, in the transport's words (empty if none).
        last_error: String,
    },
    /// The host is left alone until `retry_in` has passed.
    Open {
        /// Consecutive failures that cut it off.
        failures: u32,
        /// The last failure, in the transport's words.
        last_error: String,
        /// Time left until one request is let through to try again.
        retry_in: Duration,
    },
    /// One request is out to try the host again; the others wait for it.
    Probing {
        /// Consecutive failures before this try.
        failures: u32,
        /// The last failure, in the transport's words.
        last_error: String,
    },
}

/// One host's breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Leave from the breaker for one request to the host. While the breaker
/// is closed it is only a token; after the cooldown it is the one probe,
/// and dropping it without a verdict gives the probe back.
#[derive(Debug)]
#[must_use = "dropping a pass at once gives its probe back unused"]
pub struct Pass {
    breaker: Arc<Breaker>,
    probe: Option<u64>,
}

impl Pass {
    /// Whether this pass is the probe that tries a host cut off before.
    pub fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(probe) = self.probe {
            self.breaker.release(probe);
        }
    }
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures
    /// and stays open for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                state: State::Closed {
                    failures: 0,
                    last_error: String::new(),
                },
                next_probe: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the state half-written: every
        // update is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Would a request be let through now? Changes nothing: admission asks
    /// this before its other limits and takes the [`Pass`] only once they
    /// all let the request through, so a request refused later never holds
    /// the probe.
    ///
    /// # Errors
    /// [`Open`] while the breaker is open, or while a probe is out.
    pub fn check(&self) -> Result<(), Open> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Result<(), Open> {
        match self.refusal(&self.lock().state, now) {
            Some(open) => Err(open),
            None => Ok(()),
        }
    }

    /// Why a request would be refused in `state` at `now`, if it would.
    fn refusal(&self, state: &State, now: Instant) -> Option<Open> {
        match state {
            State::Closed { .. } => None,
            State::Open {
                since,
                failures,
                last_error,
            } => {
                let waited = now.saturating_duration_since(*since);
                (waited < self.cooldown).then(|| Open {
                    failures: *failures,
                    last_error: last_error.clone(),
                    retry_in: self.cooldown - waited,
                })
            }
            State::Probing {
                failures,
                last_error,
                ..
            } => Some(Open {
                failures: *failures,
                last_error: last_error.clone(),
                retry_in: Duration::ZERO,
            }),
        }
    }

    /// Lets one request go to the host now: a plain pass while the breaker
    /// is closed, the probe once an open breaker's cooldown is over.
    ///
    /// # Errors
    /// [`Open`] while the breaker is open, or while a probe is out.
    pub fn pass(self: &Arc<Self>) -> Result<Pass, Open> {
        self.pass_at(Instant::now())
    }

    fn pass_at(self: &Arc<Self>, now: Instant) -> Result<Pass, Open> {
        let mut inner = self.lock();
        if let Some(open) = self.refusal(&inner.state, now) {
            return Err(open);
        }
        let probe = match &inner.state {
            State::Open {
                since,
                failures,
                last_error,
            } => {
                let probe = inner.next_probe;
                inner.state = State::Probing {
                    probe,
                    since: *since,
                    failures: *failures,
                    last_error: last_error.clone(),
                };
                inner.next_probe += 1;
                Some(probe)
            }
            State::Closed { .. } | State::Probing { .. } => None,
        };
        Ok(Pass {
            breaker: Arc::clone(self),
            probe,
        })
    }

    /// A probe given back without a verdict: nothing is known of the host
    /// that was not known before, so the breaker is open again with its
    /// cooldown over, and the next request probes. A pass from an earlier
    /// probe, whose breaker has moved on since, changes nothing.
    fn release(&self, probe: u64) {
        let mut inner = self.lock();
        if let State::Probing {
            probe: out,
            since,
            failures,
            last_error,
        } = &inner.state
            && *out == probe
        {
            inner.state = State::Open {
                since: *since,
                failures: *failures,
                last_error: last_error.clone(),
            };
        }
    }

    /// The host answered.
    pub fn succeeded(&self) {
        self.lock().state = State::Closed {
            failures: 0,
            last_error: String::new(),
        };
    }

    /// The host could not be reached (not: the command failed, nor a
    /// failure on this side before anything was sent).
    pub fn failed(&self, error: &str) {
        self.failed_at(error, Instant::now());
    }

    fn failed_at(&self, error: &str, now: Instant) {
        let mut inner = self.lock();
        let failures = match &inner.state {
            State::Closed { failures, .. } => failures + 1,
            // A failed probe re-opens at once.
            State::Probing { failures, .. } | State::Open { failures, .. } => {
                (failures + 1).max(self.threshold)
            }
        };
        inner.state = if failures >= self.threshold {
            State::Open {
                since: now,
                failures,
                last_error: error.to_owned(),
            }
        } else {
            State::Closed {
                failures,
                last_error: error.to_owned(),
            }
        };
    }

    /// Where the breaker stands now.
    pub fn status(&self) -> BreakerStatus {
        match &self.lock().state {
            State::Closed {
                failures,
                last_error,
            } => BreakerStatus::Closed {
                failures: *failures,
                last_error: last_error.clone(),
            },
            State::Open {
                since,
                failures,
                last_error,
            } => BreakerStatus::Open {
                failures: *failures,
                last_error: last_error.clone(),
                retry_in: self.cooldown.saturating_sub(since.elapsed()),
            },
            State::Probing {
                failures,
                last_error,
                ..
            } => BreakerStatus::Probing {
                failures: *failures,
                last_error: last_error.clone(),
            },
        }
    }

    /// A short description for `jarvis hosts list`.
    pub fn describe(&self) -> String {
        match &self.lock().state {
            State::Closed { failures: 0, .. } => "closed".into(),
            State::Closed {
                failures,
                last_error,
            } => {
                format!("closed ({failures} recent failures, last: {last_error})")
            }
            State::Open { since, .. } => format!(
                "open for {}s more",
                self.cooldown.saturating_sub(since.elapsed()).as_secs()
            ),
            State::Probing { .. } => "probing".into(),
        }
    }

    /// The probe out now, if any (for the model tests).
    #[cfg(test)]
    fn probe_out(&self) -> Option<u64> {
        match &self.lock().state {
            State::Probing { probe, .. } => Some(*probe),
            State::Closed { .. } | State::Open { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn breaker(threshold: u32, cooldown: Duration) -> Arc<Breaker> {
        Arc::new(Breaker::new(threshold, cooldown))
    }

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = breaker(3, Duration::from_millis(50));
        for _ in 0..2 {
            b.failed("connection refused");
            assert!(b.pass().is_ok());
        }
        b.failed("connection refused");
        let open = b.pass().expect_err("third failure opens it");
        assert_eq!(open.failures, 3);
        assert_eq!(open.last_error, "connection refused");
        std::thread::sleep(Duration::from_millis(60));
        let probe = b.pass().expect("one probe after the cooldown");
        assert!(probe.is_probe());
        assert!(b.pass().is_err(), "only one probe at a time");
        b.failed("still refused");
        drop(probe);
        assert!(b.pass().is_err(), "a failed probe re-opens");
        std::thread::sleep(Duration::from_millis(60));
        let probe = b.pass().expect("a probe again");
        b.succeeded();
        drop(probe);
        assert!(!b.pass().expect("closed").is_probe());
        assert_eq!(b.describe(), "closed");
    }

    #[test]
    fn a_probe_given_back_without_a_verdict_lets_the_next_request_probe() {
        let b = breaker(1, Duration::from_secs(60));
        let t0 = Instant::now();
        b.failed_at("connection refused", t0);
        let later = t0 + Duration::from_secs(61);
        let probe = b.pass_at(later).expect("the cooldown is over");
        assert_eq!(
            b.check_at(later).expect_err("one probe at a time").retry_in,
            Duration::ZERO
        );
        // Refused by a rate limit, cancelled, or failed before sending.
        drop(probe);
        assert!(b.check_at(later).is_ok(), "nothing was learnt: try again");
        let again = b.pass_at(later).expect("the next request probes");
        assert!(again.is_probe());
        assert!(matches!(b.status(), BreakerStatus::Probing { .. }));
    }

    #[test]
    fn a_late_pass_does_not_give_back_a_later_probe() {
        let b = breaker(1, Duration::ZERO);
        let t0 = Instant::now();
        b.failed_at("x", t0);
        let first = b.pass_at(t0).expect("probe");
        // A request admitted before the breaker opened answers: closed.
        b.succeeded();
        b.failed_at("y", t0);
        let second = b.pass_at(t0).expect("a new probe");
        drop(first);
        assert_eq!(b.probe_out(), second.probe, "the new probe stays out");
        drop(second);
        assert_eq!(b.probe_out(), None);
    }

    #[test]
    fn status_says_where_it_stands() {
        let b = breaker(2, Duration::from_secs(60));
        assert_eq!(
            b.status(),
            BreakerStatus::Closed {
                failures: 0,
                last_error: String::new()
            }
        );
        b.failed("connection refused");
        assert!(matches!(
            b.status(),
            BreakerStatus::Closed { failures: 1, .. }
        ));
        b.failed("connection refused");
        match b.status() {
            BreakerStatus::Open {
                failures,
                last_error,
                retry_in,
            } => {
                assert_eq!(failures, 2);
                assert_eq!(last_error, "connection refused");
                assert!(retry_in <= Duration::from_secs(60) && retry_in > Duration::from_secs(50));
            }
            other @ (BreakerStatus::Closed { .. } | BreakerStatus::Probing { .. }) => {
                panic!("{other:?}")
            }
        }
        let quick = breaker(1, Duration::ZERO);
        quick.failed("timed out");
        let _probe = quick.pass().expect("the cooldown is over: one try");
        assert!(matches!(
            quick.status(),
            BreakerStatus::Probing { failures: 1, .. }
        ));
    }

    #[test]
    fn success_resets_the_count() {
        let b = breaker(2, Duration::from_secs(60));
        b.failed("x");
        b.succeeded();
        b.failed("x");
        assert!(b.pass().is_ok());
    }

    /// One thing that can happen to a breaker: a request asks for a pass,
    /// a request holding one ends (the host answered, it could not be
    /// reached, or nothing was learnt: a later limit refused it, it failed
    /// on this side, its future was dropped), or time passes.
    #[derive(Debug, Clone)]
    enum Step {
        Ask,
        Answered(usize),
        Unreachable(usize),
        NoVerdict(usize),
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Ask),
            2 => (0..8usize).prop_map(Step::Answered),
            3 => (0..8usize).prop_map(Step::Unreachable),
            3 => (0..8usize).prop_map(Step::NoVerdict),
            2 => (0..30u64).prop_map(Step::Wait),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// No sequence of requests, verdicts, drops and waits leaves the
        /// breaker probing with nobody holding the probe, or keeps a host
        /// cut off once every request ended and the cooldown passed.
        #[test]
        fn the_breaker_never_wedges(
            threshold in 1u32..4,
            cooldown in 0u64..20,
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let b = breaker(threshold, Duration::from_secs(cooldown));
            let t0 = Instant::now();
            let mut now = t0;
            let mut held: Vec<Pass> = Vec::new();
            for s in steps {
                match s {
                    Step::Ask => {
                        if let Ok(p) = b.pass_at(now) {
                            held.push(p);
                        }
                    }
                    Step::Answered(i) if !held.is_empty() => {
                        let p = held.remove(i % held.len());
                        b.succeeded();
                        drop(p);
                    }
                    Step::Unreachable(i) if !held.is_empty() => {
                        let p = held.remove(i % held.len());
                        b.failed_at("unreachable", now);
                        drop(p);
                    }
                    Step::NoVerdict(i) if !held.is_empty() => {
                        drop(held.remove(i % held.len()));
                    }
                    Step::Wait(secs) => now += Duration::from_secs(secs),
                    Step::Answered(_) | Step::Unreachable(_) | Step::NoVerdict(_) => {}
                }
                // Probing only while the pass that probes is held; ids are
                // never reused, so that pass is the one probe out.
                if let Some(out) = b.probe_out() {
                    prop_assert!(
                        held.iter().any(|p| p.probe == Some(out)),
                        "probing, but nobody holds probe {out}"
                    );
                }
            }
            held.clear();
            prop_assert_eq!(b.probe_out(), None);
            let after = now + Duration::from_secs(cooldown);
            prop_assert!(b.pass_at(after).is_ok(), "{}", b.describe());
        }
    }
}
