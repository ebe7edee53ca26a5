//! The executor: admission (rate limits, breaker, concurrency) and the run
//! itself, for every configured host.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jarvis_core::HostName;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::{Breaker, Open};
use crate::host::{GlobalLimits, HostSpec};
use crate::limits::{Limited, RateLimits};
use crate::protocol::{CheckReport, Frame, KernelReport, Outcome, Refusal, Request, RunRequest};
use crate::snapshot::{
    DropReport, DropRequest, EditRequest, FileEdit, PreviewReport, PreviewRequest, RestoreReport,
    RestoreRequest, Snapshot, SnapshotRequest,
};
use crate::transport::{Connection, TransportError};

/// One action to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// The action's id, for the guard's log.
    pub action_id: String,
    /// Where.
    pub host: HostName,
    /// Who asked (rate-limited per requester).
    pub requester: String,
    /// The command line.
    pub command: String,
    /// Where on the host, if not the home directory.
    pub cwd: Option<String>,
    /// Its timeout; the host's default when `None`.
    pub timeout: Option<Duration>,
    /// For a file edit, the edit (then `command` is only its label).
    pub edit: Option<FileEdit>,
    /// Whether a person approved it; the guard widens the kernel's grant to
    /// `scope` only then.
    pub approved: bool,
    /// The paths the approved plan names (see [`RunRequest::scope`]).
    pub scope: Vec<String>,
}

/// A chunk of output as it arrives.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    /// From stdout.
    Stdout(&'a [u8]),
    /// From stderr.
    Stderr(&'a [u8]),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The guard's account.
    pub outcome: Outcome,
    /// Stdout up to the host's output cap.
    pub stdout: Vec<u8>,
    /// Stderr up to the host's output cap.
    pub stderr: Vec<u8>,
    /// The timeout that applied.
    pub timeout: Duration,
}

/// Why the executor did not run a job, or what went wrong running it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecError {
    /// No host of that name is configured.
    #[error("no host named `{0}` is configured")]
    UnknownHost(String),
    /// The job asks for more time than the host allows.
    #[error("timeout of {}s for `{host}` is over its limit of {}s", .asked.as_secs(), .max.as_secs())]
    TimeoutTooLong {
        /// The host.
        host: HostName,
        /// What was asked.
        asked: Duration,
        /// The host's limit.
        max: Duration,
    },
    /// A rate limit refused.
    #[error("rate limit ({}, {} per minute) reached; retry in {:.1}s", .0.scope, .0.per_minute, .0.retry_after.as_secs_f64())]
    RateLimited(Limited),
    /// The host already runs as many actions as it may.
    #[error("`{host}` already runs {concurrency} actions (its limit); none finished within {}s", .waited.as_secs())]
    Busy {
        /// The host.
        host: HostName,
        /// Its concurrency limit.
        concurrency: u32,
        /// How long this job waited.
        waited: Duration,
    },
    /// The host's circuit breaker is open.
    #[error(
        "circuit breaker for `{host}` is open after {} consecutive transport failures (last: {}); next attempt in {}s",
        .open.failures, .open.last_error, .open.retry_in.as_secs()
    )]
    CircuitOpen {
        /// The host.
        host: HostName,
        /// Why.
        open: Open,
    },
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The host's guard refused.
    #[error("the guard on `{host}` refused ({}): {}", .refusal.code, .refusal.reasons.join("; "))]
    Refused {
        /// The host.
        host: HostName,
        /// The guard's reasons.
        refusal: Refusal,
    },
}

impl ExecError {
    /// A stable word for the kind of failure, for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::UnknownHost(_) => "unknown-host",
            ExecError::TimeoutTooLong { .. } => "timeout-too-long",
            ExecError::RateLimited(_) => "rate-limited",
            ExecError::Busy { .. } => "host-busy",
            ExecError::CircuitOpen { .. } => "circuit-open",
            ExecError::Transport(_) => "transport",
            ExecError::Refused { .. } => "guard-refused",
        }
    }
}

/// The longest silence from a guard at work: it sends a heartbeat every
/// second, so ten missed mean the link is gone.
const HEARTBEATS: Duration = Duration::from_secs(10);

struct HostEntry {
    conn: Connection,
    breaker: Breaker,
    slots: Arc<Semaphore>,
}

/// Sends jobs to hosts.
pub struct Executor {
    hosts: HashMap<HostName, HostEntry>,
    rates: RateLimits,
}

/// Leave to run one job: the host's concurrency slot, held until it ends.
pub struct Admission {
    host: HostName,
    timeout: Duration,
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    /// The timeout that will apply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Executor {
    /// An executor for `hosts`; SSH control sockets go under `control_dir`
    /// (keep it short: a socket path may not exceed 107 bytes).
    pub fn new(hosts: Vec<HostSpec>, global: &GlobalLimits, control_dir: &Path) -> Executor {
        let rates = RateLimits::new(global, &hosts);
        let hosts = hosts
            .into_iter()
            .map(|spec| {
                let entry = HostEntry {
                    breaker: Breaker::new(
                        spec.limits.breaker_failures,
                        spec.limits.breaker_cooldown,
                    ),
                    slots: Arc::new(Semaphore::new(spec.limits.concurrency.max(1) as usize)),
                    conn: Connection::new(spec.clone(), control_dir),
                };
                (spec.name, entry)
            })
            .collect();
        Executor { hosts, rates }
    }

    /// The configured hosts, by name.
    pub fn hosts(&self) -> Vec<&HostSpec> {
        let mut hosts: Vec<_> = self.hosts.values().map(|e| e.conn.spec()).collect();
        hosts.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        hosts
    }

    /// One host's spec.
    pub fn host(&self, name: &HostName) -> Option<&HostSpec> {
        self.hosts.get(name).map(|e| e.conn.spec())
    }

    /// The state of a host's breaker, in words.
    pub fn breaker_state(&self, name: &HostName) -> Option<String> {
        self.hosts.get(name).map(|e| e.breaker.describe())
    }

    /// Where a host's breaker stands.
    pub fn breaker_status(&self, name: &HostName) -> Option<crate::breaker::BreakerStatus> {
        self.hosts.get(name).map(|e| e.breaker.status())
    }

    /// The control socket of a host's open master connection (for
    /// benchmarks and diagnostics that want plain `ssh -S`).
    pub async fn control_socket(&self, name: &HostName) -> Option<std::path::PathBuf> {
        self.hosts.get(name)?.conn.control_socket().await
    }

    fn entry(&self, host: &HostName) -> Result<&HostEntry, ExecError> {
        self.hosts
            .get(host)
            .ok_or_else(|| ExecError::UnknownHost(host.to_string()))
    }

    /// Decides whether `job` may be sent now: its timeout, the breaker, the
    /// rate limits, and a concurrency slot (waited for up to the host's
    /// queue timeout). Nothing is sent.
    ///
    /// # Errors
    /// The [`ExecError`] that refused.
    pub async fn admit(&self, job: &Job) -> Result<Admission, ExecError> {
        let entry = self.entry(&job.host)?;
        let limits = &entry.conn.spec().limits;
        let timeout = job.timeout.unwrap_or(limits.default_timeout);
        if timeout > limits.max_timeout || timeout.is_zero() {
            return Err(ExecError::TimeoutTooLong {
                host: job.host.clone(),
                asked: timeout,
                max: limits.max_timeout,
            });
        }
        entry
            .breaker
            .admit()
            .map_err(|open| ExecError::CircuitOpen {
                host: job.host.clone(),
                open,
            })?;
        if let Err(limited) = self.rates.admit(&job.host, &job.requester) {
            return Err(ExecError::RateLimited(limited));
        }
        let slot = tokio::time::timeout(
            limits.queue_timeout,
            Arc::clone(&entry.slots).acquire_owned(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ExecError::Busy {
            host: job.host.clone(),
            concurrency: limits.concurrency,
            waited: limits.queue_timeout,
        })?;
        Ok(Admission {
            host: job.host.clone(),
            timeout,
            _slot: slot,
        })
    }

    /// Runs an admitted job, passing output to `on_output` as it arrives.
    ///
    /// # Errors
    /// [`ExecError::Refused`] when the guard refused (nothing ran),
    /// [`ExecError::Transport`] when the host could not be reached or the
    /// link broke.
    pub async fn run(
        &self,
        admission: Admission,
        job: &Job,
        on_output: &mut (dyn FnMut(Output<'_>) + Send),
    ) -> Result<Execution, ExecError> {
        let entry = self.entry(&admission.host)?;
        let cap = entry.conn.spec().limits.output_cap;
        let request = match &job.edit {
            Some(edit) => Request::Edit(EditRequest {
                action_id: job.action_id.clone(),
                edit: edit.clone(),
            }),
            None => Request::Run(RunRequest {
                action_id: job.action_id.clone(),
                command: job.command.clone(),
                cwd: job.cwd.clone(),
                timeout_ms: u64::try_from(admission.timeout.as_millis()).unwrap_or(u64::MAX),
                output_cap: cap,
                approved: job.approved,
                scope: job.scope.clone(),
            }),
        };
        let captured = Mutex::new((Vec::new(), Vec::new()));
        let mut on_frame = |frame: &Frame| {
            let mut c = captured
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The guard caps what it sends; the gateway holds it to the cap
            // too, so a misbehaving host cannot fill its memory.
            let (buf, bytes, is_stdout) = match frame {
                Frame::Stdout(b) => (&mut c.0, b, true),
                Frame::Stderr(b) => (&mut c.1, b, false),
                _ => return,
            };
            let room = usize::try_from(cap)
                .unwrap_or(usize::MAX)
                .saturating_sub(buf.len());
            let bytes = &bytes[..bytes.len().min(room)];
            buf.extend_from_slice(bytes);
            on_output(if is_stdout {
                Output::Stdout(bytes)
            } else {
                Output::Stderr(bytes)
            });
        };
        let last = entry
            .conn
            .exchange(&request, HEARTBEATS, &mut on_frame)
            .await;
        let last = self.record(entry, last)?;
        let (stdout, stderr) = captured
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last {
            Frame::Done(outcome) => Ok(Execution {
                outcome,
                stdout,
                stderr,
                timeout: admission.timeout,
            }),
            Frame::Refused(refusal) => Err(ExecError::Refused {
                host: admission.host,
                refusal,
            }),
            other => Err(ExecError::Transport(TransportError::Protocol {
                host: admission.host.to_string(),
                detail: format!("a run ended with {other:?}"),
            })),
        }
    }

    /// Asks a host's guard who it is and what the host has.
    ///
    /// # Errors
    /// [`ExecError::UnknownHost`], [`ExecError::CircuitOpen`] or a transport
    /// failure.
    pub async fn check(&self, host: &HostName) -> Result<CheckReport, ExecError> {
        match self
            .call(host, &Request::Check, Duration::from_secs(20))
            .await?
        {
            Frame::Checked(report) => Ok(report),
            other => Err(Self::unexpected(host, "check", &other)),
        }
    }

    /// Asks a host's guard only what its kernel enforces: no policy load,
    /// no probes, so a proposal can afford it.
    ///
    /// # Errors
    /// As [`Executor::check`].
    pub async fn kernel(&self, host: &HostName) -> Result<KernelReport, ExecError> {
        match self
            .call(host, &Request::Kernel, Duration::from_secs(20))
            .await?
        {
            Frame::Kernel(report) => Ok(report),
            other => Err(Self::unexpected(host, "kernel question", &other)),
        }
    }

    /// Sends one request that answers with a single report (check,
    /// snapshot, rollback, preview, drop) and returns that last frame; a
    /// refusal is an error. The breaker applies; rate limits do not: these
    /// ride on an admitted action or a person's command, and a preview
    /// brings its own admission. `silence` bounds the wait for any frame.
    async fn call(
        &self,
        host: &HostName,
        request: &Request,
        silence: Duration,
    ) -> Result<Frame, ExecError> {
        let entry = self.entry(host)?;
        entry
            .breaker
            .admit()
            .map_err(|open| ExecError::CircuitOpen {
                host: host.clone(),
                open,
            })?;
        let last = entry.conn.exchange(request, silence, &mut |_| {}).await;
        match self.record(entry, last)? {
            Frame::Refused(refusal) => Err(ExecError::Refused {
                host: host.clone(),
                refusal,
            }),
            frame => Ok(frame),
        }
    }

    fn unexpected(host: &HostName, what: &str, frame: &Frame) -> ExecError {
        ExecError::Transport(TransportError::Protocol {
            host: host.to_string(),
            detail: format!("a {what} ended with {frame:?}"),
        })
    }

    /// Takes a snapshot (or, without `keep`, fingerprints) on a host.
    ///
    /// # Errors
    /// As [`Executor::check`], or the guard's refusal.
    pub async fn snapshot(
        &self,
        host: &HostName,
        request: SnapshotRequest,
    ) -> Result<Snapshot, ExecError> {
        match self
            .call(host, &Request::Snapshot(request), HEARTBEATS)
            .await?
        {
            Frame::Snapshotted(s) => Ok(s),
            other => Err(Self::unexpected(host, "snapshot", &other)),
        }
    }

    /// Rolls targets back on a host.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn restore(
        &self,
        host: &HostName,
        request: RestoreRequest,
    ) -> Result<RestoreReport, ExecError> {
        match self
            .call(host, &Request::Restore(request), HEARTBEATS)
            .await?
        {
            Frame::Restored(r) => Ok(r),
            other => Err(Self::unexpected(host, "rollback", &other)),
        }
    }

    /// Makes a preview on the admitted job's host, with the admission's
    /// timeout. A preview acts on the host before anyone approved the
    /// action, so it is admitted like a run ([`Executor::admit`]: rate
    /// limits, breaker, a concurrency slot) and holds the host's slot until
    /// its report is in.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn preview(
        &self,
        admission: Admission,
        mut request: PreviewRequest,
    ) -> Result<PreviewReport, ExecError> {
        request.timeout_ms = u64::try_from(admission.timeout.as_millis()).unwrap_or(u64::MAX);
        let host = &admission.host;
        match self
            .call(host, &Request::Preview(request), HEARTBEATS)
            .await?
        {
            Frame::Previewed(p) => Ok(p),
            other => Err(Self::unexpected(host, "preview", &other)),
        }
    }

    /// Removes kept snapshots on a host.
    ///
    /// # Errors
    /// As [`Executor::snapshot`].
    pub async fn drop_snapshots(
        &self,
        host: &HostName,
        request: DropRequest,
    ) -> Result<DropReport, ExecError> {
        match self.call(host, &Request::Drop(request), HEARTBEATS).await? {
            Frame::Dropped(d) => Ok(d),
            other => Err(Self::unexpected(host, "drop", &other)),
        }
    }

    fn record(
        &self,
        entry: &HostEntry,
        result: Result<Frame, TransportError>,
    ) -> Result<Frame, ExecError> {
        match result {
            Ok(frame) => {
                entry.breaker.succeeded();
                Ok(frame)
            }
            Err(e) => {
                entry.breaker.failed(&e.to_string());
                Err(e.into())
            }
        }
    }

    /// Closes every master connection.
    pub async fn close(&self) {
        for entry in self.hosts.values() {
            entry.conn.close().await;
        }
    }
}
