//! Runs whose end the gateway did not hear: the host's guard asked for its
//! own account of each, and what it says recorded as the run's record.

use std::time::{Duration, SystemTime};

use jarvis_core::HostName;
use jarvis_exec::ExecError;
use jarvis_exec::protocol::{AccountEnd, Ending, RunAccount, StreamSummary};
use jarvis_store::{CapturedOutput, RunEnding, RunRecord};
use serde_json::json;

use super::Gateway;
use super::error::GatewayError;
use super::run::{run_ending, stored_time, unavailable_record};

/// How far back the gateway asks hosts about runs it did not hear end; a
/// guard reads only its log's tail, so older runs would have no record.
pub const ACCOUNT_LOOKBACK: Duration = Duration::from_secs(7 * 24 * 3600);

/// At most this many runs are asked about per host at a time, newest first.
const ACCOUNTS_PER_ASK: u32 = 20;

/// How long one round of asking a host about runs may take, so a run's
/// record or a host check is not held up by a host that answers slowly.
const ACCOUNT_BUDGET: Duration = Duration::from_secs(10);

/// How long after a run's timeout its guard's silence counts: a guard
/// that logged the start and no end by then was itself stopped (the host's
/// clock may also differ from the gateway's by this much).
const ACCOUNT_GRACE: Duration = Duration::from_secs(60);

/// What the host guard's account of a run (`account`) makes of it, as a
/// run record whose outputs are counts and hashes only (`data` is never
/// sent). `None` while it may not be final: started, no end yet, and its
/// `timeout` and [`ACCOUNT_GRACE`] not yet over since the start, by `now`.
pub(crate) fn account_record(
    account: &RunAccount,
    timeout: Duration,
    now: SystemTime,
) -> Option<RunRecord> {
    let asked = jarvis_store::now();
    let start_at = account.started.as_ref().map(|s| s.at.clone());
    let end_at = account.ended.as_ref().map(|e| e.at().to_owned());
    let between = |from: &Option<String>, to: &Option<String>| {
        let from = stored_time(from.as_deref()?)?;
        let to = stored_time(to.as_deref()?)?;
        to.duration_since(from).ok()
    };
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut run = RunRecord {
        started_at: start_at
            .clone()
            .or_else(|| end_at.clone())
            .unwrap_or_else(|| asked.clone()),
        finished_at: end_at.clone().unwrap_or_else(|| asked.clone()),
        ending: String::new(),
        exit_code: None,
        signal: None,
        duration_ms: between(&start_at, &end_at).map(ms).unwrap_or(0),
        killed: 0,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        error: None,
        kernel: account.started.as_ref().and_then(|s| s.kernel.clone()),
        host_account: None,
    };
    match (&account.started, &account.ended) {
        (_, Some(AccountEnd::Ran { outcome: o, .. })) => {
            run.ending = run_ending(o.ending).as_str().into();
            run.exit_code = o.exit_code;
            run.signal = o.signal;
            run.duration_ms = o.duration_ms;
            run.killed = o.killed;
            let counted = |s: &StreamSummary| CapturedOutput {
                data: Vec::new(),
                bytes: s.bytes,
                sha256: s.sha256.clone(),
                // Nothing of it reached the gateway.
                truncated: s.bytes > 0,
            };
            run.stdout = counted(&o.stdout);
            run.stderr = counted(&o.stderr);
            run.kernel = o.kernel.clone().or(run.kernel);
            run.error = (o.ending == Ending::TimedOut)
                .then(|| "timed out; the guard killed its whole process tree".to_owned());
        }
        (
            started,
            Some(AccountEnd::Refused {
                code,
                reasons,
                duration_ms,
                ..
            }),
        ) => {
            if let Some(d) = duration_ms {
                run.duration_ms = *d;
            }
            let why = reasons.join("; ");
            let (ending, error) = match (started, code.as_str()) {
                (Some(_), "client-gone") => (
                    RunEnding::KilledGatewayGone,
                    if why.is_empty() {
                        "the gateway disconnected; the command was killed".to_owned()
                    } else {
                        why
                    },
                ),
                (Some(_), _) => (
                    RunEnding::Refused,
                    format!("the host's guard stopped it after it started ({code}): {why}"),
                ),
                (None, _) => (
                    RunEnding::Refused,
                    format!("the host's guard refused it before it started ({code}): {why}"),
                ),
            };
            run.ending = ending.as_str().into();
            run.error = Some(error);
        }
        (Some(start), None) => {
            let since = stored_time(&start.at)
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if since < timeout + ACCOUNT_GRACE {
                return None;
            }
            run.ending = RunEnding::GuardGone.as_str().into();
            run.error = Some(
                "the host's guard logged its start and nothing after: the guard itself was \
                 stopped (killed, or the host went down) while the command ran"
                    .into(),
            );
        }
        (None, None) if account.whole_log => {
            run.ending = RunEnding::NeverStarted.as_str().into();
            run.error = Some("the host's guard has no record of it: it never started".into());
        }
        (None, None) => {
            run.ending = RunEnding::NoRecord.as_str().into();
            run.error = Some(format!(
                "the host's guard has no record of it in the last {} MiB of its log",
                account.read_bytes >> 20
            ));
        }
    }
    Some(run)
}

impl Gateway {
    /// Asks `host`'s guard for its own account of each recent run there
    /// whose end the gateway did not hear (a `lost` run, an `interrupted`
    /// action; [`Store::accounts_due`]) and records what it says
    /// ([`Store::record_host_account`]): the action's state stays, its run
    /// record gains the host's figures and the log a `run.guard_account`
    /// event. Stops at the first question the host does not answer; what
    /// is left is asked at the next call. A guard that cannot say (one
    /// that predates the question) is recorded as such, so it is not asked
    /// for ever. Returns how many accounts were recorded.
    ///
    /// # Errors
    /// A store error.
    pub async fn settle_accounts(&self, host: &HostName) -> Result<usize, GatewayError> {
        let due = self
            .store
            .accounts_due(host, ACCOUNT_LOOKBACK, ACCOUNTS_PER_ASK)
            .await?;
        let mut recorded = 0;
        for id in due {
            let asked = self.executor.account(host, id).await;
            let (run, payload) = match asked {
                Ok(account) => {
                    let action = self.store.action(id).await?;
                    let timeout = action
                        .timeout_secs
                        .map(|s| Duration::from_secs(u64::from(s)))
                        .or_else(|| self.config.host(host).map(|h| h.limits.default_timeout))
                        .unwrap_or(ACCOUNT_LOOKBACK);
                    // Started with no end yet may be a guard still at work
                    // (or one that has not noticed the gateway left): asked
                    // again later, until its timeout makes the silence
                    // final.
                    let Some(run) = account_record(&account, timeout, SystemTime::now()) else {
                        continue;
                    };
                    let payload = json!({ "account": account, "run": run.summary() });
                    (run, payload)
                }
                Err(ExecError::Refused { refusal, .. }) => {
                    let run = unavailable_record(&refusal);
                    (
                        run.clone(),
                        json!({ "refusal": refusal, "run": run.summary() }),
                    )
                }
                // The host does not answer (yet): the rest waits too.
                Err(_) => break,
            };
            if self
                .store
                .record_host_account(id, host.as_str(), &run, payload)
                .await?
            {
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    /// [`Gateway::settle_accounts`] within [`ACCOUNT_BUDGET`], saying what
    /// went wrong in the log instead of failing the caller, whose own work
    /// (a run's record, a host check) is done and stands.
    pub(super) async fn settle_accounts_quietly(&self, host: &HostName) {
        match tokio::time::timeout(ACCOUNT_BUDGET, self.settle_accounts(host)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(host = %host, recorded = n, "host accounts of runs recorded")
            }
            Ok(Err(e)) => {
                tracing::warn!(host = %host, error = %e, "cannot record a host's account of a run")
            }
            Err(_) => tracing::warn!(
                host = %host,
                budget_secs = ACCOUNT_BUDGET.as_secs(),
                "a host's accounts of runs took too long; the rest are asked later"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_core::ActionId;

    fn account(started: Option<&str>, ended: Option<AccountEnd>, whole_log: bool) -> RunAccount {
        RunAccount {
            action_id: ActionId::new(),
            started: started.map(|at| jarvis_exec::protocol::AccountStart {
                at: at.into(),
                kernel: Some("read-only, runs 1 program, no network".into()),
                approved: false,
            }),
            ended,
            read_bytes: 8 << 20,
            whole_log,
        }
    }

    fn at(t: &str) -> SystemTime {
        stored_time(t).expect("time")
    }

    #[test]
    fn a_guard_account_becomes_a_run_record_in_the_guards_figures() {
        let minute = Duration::from_secs(60);
        let now = at("2026-12-07T04:10:00Z");
        let gone = account(
            Some("2026-12-07T04:00:00Z"),
            Some(AccountEnd::Refused {
                at: "2026-12-07T04:00:01.5Z".into(),
                code: "client-gone".into(),
                reasons: vec!["the gateway disconnected; the command was killed".into()],
                duration_ms: None,
            }),
            true,
        );
        let run = account_record(&gone, minute, now).expect("final");
        assert_eq!(run.ending, "killed-gateway-gone");
        // Without a logged length, the two lines' times give it.
        assert_eq!(run.duration_ms, 1_500);
        assert_eq!(run.started_at, "2026-12-07T04:00:00Z");
        assert_eq!(
            run.error.as_deref(),
            Some("the gateway disconnected; the command was killed")
        );
        assert!(run.kernel.is_some());

        let outcome = jarvis_exec::protocol::Outcome {
            ending: Ending::Exited,
            exit_code: Some(3),
            signal: None,
            duration_ms: 42,
            stdout: StreamSummary {
                bytes: 5,
                sha256: "ab".into(),
                truncated: false,
            },
            stderr: StreamSummary::default(),
            killed: 1,
            kernel: Some("k".into()),
        };
        let ran = account(
            Some("2026-12-07T04:00:00Z"),
            Some(AccountEnd::Ran {
                at: "2026-12-07T04:00:01Z".into(),
                outcome,
            }),
            true,
        );
        let run = account_record(&ran, minute, now).expect("final");
        assert_eq!(
            (
                run.ending.as_str(),
                run.exit_code,
                run.duration_ms,
                run.killed
            ),
            ("exited", Some(3), 42, 1)
        );
        // Counted on the host, never sent: marked as not all here.
        assert!(run.stdout.truncated && run.stdout.data.is_empty() && run.stdout.bytes == 5);

        // Started, no end: not final while the guard may still be at work.
        let silent = account(Some("2026-12-07T04:09:30Z"), None, true);
        assert_eq!(account_record(&silent, minute, now), None);
        let silent = account(Some("2026-12-07T04:00:00Z"), None, true);
        let run = account_record(&silent, minute, now).expect("final by now");
        assert_eq!(run.ending, "guard-gone");

        let refused = account(
            None,
            Some(AccountEnd::Refused {
                at: "2026-12-07T04:00:00Z".into(),
                code: "host-policy".into(),
                reasons: vec!["the host policy denies this command".into()],
                duration_ms: None,
            }),
            true,
        );
        let run = account_record(&refused, minute, now).expect("final");
        assert_eq!(run.ending, "refused");
        assert!(run.error.is_some_and(|e| e.contains("before it started")));

        let none = account(None, None, true);
        let run = account_record(&none, minute, now).expect("final");
        assert_eq!(run.ending, "never-started");
        assert_eq!(
            run.error.as_deref(),
            Some("the host's guard has no record of it: it never started")
        );
        let none = account(None, None, false);
        let run = account_record(&none, minute, now).expect("final");
        assert_eq!(run.ending, "no-record");
        assert!(run.error.is_some_and(|e| e.contains("last 8 MiB")));
    }
}
