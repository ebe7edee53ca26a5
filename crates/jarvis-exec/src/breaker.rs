//! The circuit breaker: after repeated transport failures a host is left
//! alone for a while instead of being hammered, and callers are told why.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the breaker refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Consecutive failures that opened it.
    pub failures: u32,
    /// The last failure, in the transport's words.
    pub last_error: String,
    /// Time left until one probe is let through.
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
    /// One probe is out; everyone else waits for its result.
    Probing {
        failures: u32,
        last_error: String,
    },
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
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures
    /// and stays open for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed {
                failures: 0,
                last_error: String::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-written: every
        // update is one assignment.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// May a request go to the host now?
    ///
    /// # Errors
    /// [`Open`] while the breaker is open, or while a probe is out.
    pub fn admit(&self) -> Result<(), Open> {
        let mut state = self.lock();
        match &*state {
            State::Closed { .. } => Ok(()),
            State::Open {
                since,
                failures,
                last_error,
            } => {
                let waited = since.elapsed();
                if waited >= self.cooldown {
                    *state = State::Probing {
                        failures: *failures,
                        last_error: last_error.clone(),
                    };
                    Ok(())
                } else {
                    Err(Open {
                        failures: *failures,
                        last_error: last_error.clone(),
                        retry_in: self.cooldown - waited,
                    })
                }
            }
            State::Probing {
                failures,
                last_error,
            } => Err(Open {
                failures: *failures,
                last_error: last_error.clone(),
                retry_in: Duration::ZERO,
            }),
        }
    }

    /// The host answered.
    pub fn succeeded(&self) {
        *self.lock() = State::Closed {
            failures: 0,
            last_error: String::new(),
        };
    }

    /// The host could not be reached (not: the command failed).
    pub fn failed(&self, error: &str) {
        let mut state = self.lock();
        let failures = match &*state {
            State::Closed { failures, .. } => failures + 1,
            // A failed probe re-opens at once.
            State::Probing { failures, .. } | State::Open { failures, .. } => {
                (failures + 1).max(self.threshold)
            }
        };
        *state = if failures >= self.threshold {
            State::Open {
                since: Instant::now(),
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
        match &*self.lock() {
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
            } => BreakerStatus::Probing {
                failures: *failures,
                last_error: last_error.clone(),
            },
        }
    }

    /// A short description for `jarvis hosts list`.
    pub fn describe(&self) -> String {
        match &*self.lock() {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            b.failed("connection refused");
            assert!(b.admit().is_ok());
        }
        b.failed("connection refused");
        let open = b.admit().expect_err("third failure opens it");
        assert_eq!(open.failures, 3);
        assert_eq!(open.last_error, "connection refused");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok(), "one probe after the cooldown");
        assert!(b.admit().is_err(), "only one probe at a time");
        b.failed("still refused");
        assert!(b.admit().is_err(), "a failed probe re-opens");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.admit().is_ok());
        b.succeeded();
        assert!(b.admit().is_ok());
        assert_eq!(b.describe(), "closed");
    }

    #[test]
    fn status_says_where_it_stands() {
        let b = Breaker::new(2, Duration::from_secs(60));
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
            other => panic!("{other:?}"),
        }
        let quick = Breaker::new(1, Duration::ZERO);
        quick.failed("timed out");
        assert!(quick.admit().is_ok(), "the cooldown is over: one try");
        assert!(matches!(
            quick.status(),
            BreakerStatus::Probing { failures: 1, .. }
        ));
    }

    #[test]
    fn success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(60));
        b.failed("x");
        b.succeeded();
        b.failed("x");
        assert!(b.admit().is_ok());
    }
}
