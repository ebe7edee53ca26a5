//! The executor: admission (rate limits, breaker, concurrency) and the run
//! itself, for every configured host. Snapshots, rollbacks, previews and
//! drops go through the same admission and calls (`snapshots`).

mod snapshots;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jarvis_core::{ActionId, HostName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::breaker::{Breaker, Open, Pass};
use crate::host::{GlobalLimits, HostSpec};
use crate::limits::{Limited, RateLimits};
use crate::protocol::{
    AccountRequest, CheckReport, Frame, KernelReport, MAX_REQUEST, Outcome, Refusal, Request,
    RunAccount, RunRequest,
};
use crate::snapshot::{EditRequest, FileEdit};
use crate::transport::{Connection, Transport, TransportError};

/// One action to send.
#[derive(Debug, Clone)]
pub struct Job {
    /// The action's id, for the guard's log.
    pub action_id: ActionId,
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
    /// The request cannot be sent: encoded, it is longer than the guard
    /// protocol carries in one SSH command line. Nothing was sent, and
    /// sending it again cannot help.
    #[error(
        "the request for `{host}` is {bytes} bytes once encoded, over the {max}-byte limit of one SSH command line; shorten the command (a line with many tabs, quotes or backslashes grows most)"
    )]
    TooLarge {
        /// The host.
        host: HostName,
        /// The encoded request's length.
        bytes: usize,
        /// The limit.
        max: usize,
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
    /// Whether the request may have reached the guard (and so may have
    /// run): only a link that broke after the request was sent. A refusal
    /// by a limit, a request too large to send and a failure on this side
    /// (no `ssh` to start, no temporary directory) never left the gateway.
    pub fn may_have_run(&self) -> bool {
        matches!(self, ExecError::Transport(t) if t.may_have_run())
    }

    /// When a limit of this gateway refused, how long until it may let the
    /// same request through; `None` for failures a wait does not cure.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ExecError::RateLimited(l) => Some(l.retry_after),
            ExecError::Busy { waited, .. } => Some(*waited),
            ExecError::CircuitOpen { open, .. } => Some(open.retry_in),
            ExecError::UnknownHost(_)
            | ExecError::TimeoutTooLong { .. }
            | ExecError::TooLarge { .. }
            | ExecError::Transport(_)
            | ExecError::Refused { .. } => None,
        }
    }

    /// A stable word for the kind of failure, for audit events.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::UnknownHost(_) => "unknown-host",
            ExecError::TimeoutTooLong { .. } => "timeout-too-long",
            ExecError::RateLimited(_) => "rate-limited",
            ExecError::Busy { .. } => "host-busy",
            ExecError::CircuitOpen { .. } => "circuit-open",
            ExecError::TooLarge { .. } => "too-large",
            ExecError::Transport(_) => "transport",
            ExecError::Refused { .. } => "guard-refused",
        }
    }
}

/// The longest silence from a guard at work: it sends a heartbeat every
/// second, so ten missed mean the link is gone.
const HEARTBEATS: Duration = Duration::from_secs(10);

struct HostEntry {
    spec: HostSpec,
    conn: Arc<dyn Transport>,
    breaker: Arc<Breaker>,
    slots: Arc<Semaphore>,
}

/// On whose leave a request goes to the host.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// Its own: it takes a breaker pass of its own.
    Fresh(&'a HostName),
    /// An admitted job's.
    Admitted(&'a Admission),
}

impl Via<'_> {
    fn host(&self) -> &HostName {
        match self {
            Via::Fresh(h) => h,
            Via::Admitted(a) => &a.host,
        }
    }
}

/// Sends jobs to hosts.
pub struct Executor {
    hosts: HashMap<HostName, HostEntry>,
    rates: RateLimits,
}

/// A job the limits that answer at once let through ([`Executor::admit_now`]),
/// waiting for its seat ([`Executor::seat`]). It holds nothing: the rate
/// limits' cells are spent, the breaker was only asked.
#[derive(Debug)]
pub struct Ticket {
    host: HostName,
    timeout: Duration,
}

/// Leave to run one job: the host's concurrency slot and the breaker's
/// pass (after a cooldown, the probe), held until it ends. Dropped unused
/// (a later check refused the job, or the caller's future was cancelled),
/// it gives both back, and a probe it held goes to the next request.
pub struct Admission {
    host: HostName,
    timeout: Duration,
    _pass: Pass,
    _slot: OwnedSemaphorePermit,
}

impl Admission {
    /// The timeout that will apply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Executor {
    /// An executor for `hosts`; SSH control sockets go under `control_dir`,
    /// which must be private to the user (see
    /// [`transport::master::prepare_control_dir`](crate::transport::master::prepare_control_dir))
    /// and short (a socket path is at most
    /// [`MAX_SOCKET_PATH`](crate::transport::master::MAX_SOCKET_PATH) bytes).
    pub fn new(hosts: Vec<HostSpec>, global: &GlobalLimits, control_dir: &Path) -> Executor {
        let idle = global.ssh_master_idle;
        Executor::with_transports(hosts, global, |spec| {
            Arc::new(Connection::new(spec.clone(), control_dir, idle))
        })
    }

    /// An executor for `hosts` whose requests go through the transports
    /// `make` gives, one per host (an in-process guard in tests). Limits,
    /// the breaker and admission are the same as [`Executor::new`]'s: only
    /// the way to the host is swapped.
    pub fn with_transports(
        hosts: Vec<HostSpec>,
        global: &GlobalLimits,
        make: impl Fn(&HostSpec) -> Arc<dyn Transport>,
    ) -> Executor {
        let rates = RateLimits::new(global, &hosts);
        let hosts = hosts
            .into_iter()
            .map(|spec| {
                let entry = HostEntry {
                    breaker: Arc::new(Breaker::new(
                        spec.limits.breaker_failures,
                        spec.limits.breaker_cooldown,
                    )),
                    slots: Arc::new(Semaphore::new(spec.limits.concurrency.max(1) as usize)),
                    conn: make(&spec),
                    spec: spec.clone(),
                };
                (spec.name, entry)
            })
            .collect();
        Executor { hosts, rates }
    }

    /// The configured hosts, by name.
    pub fn hosts(&self) -> Vec<&HostSpec> {
        let mut hosts: Vec<_> = self.hosts.values().map(|e| &e.spec).collect();
        hosts.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        hosts
    }

    /// One host's spec.
    pub fn host(&self, name: &HostName) -> Option<&HostSpec> {
        self.hosts.get(name).map(|e| &e.spec)
    }

    /// The state of a host's breaker, in words.
    pub fn breaker_state(&self, name: &HostName) -> Option<String> {
        self.hosts.get(name).map(|e| e.breaker.describe())
    }

    /// Where a host's breaker stands.
    pub fn breaker_status(&self, name: &HostName) -> Option<crate::breaker::BreakerStatus> {
        self.hosts.get(name).map(|e| e.breaker.status())
    }

    /// The control socket of a host's master, if one is live (for
    /// benchmarks and diagnostics that want plain `ssh -S`).
    pub async fn control_socket(&self, name: &HostName) -> Option<std::path::PathBuf> {
        self.hosts.get(name)?.conn.control_socket().await
    }

    /// A digest of what defines the connection to a host now
    /// ([`Transport::connection_id`]).
    pub fn connection_id(&self, name: &HostName) -> Option<String> {
        self.hosts.get(name)?.conn.connection_id()
    }

    fn entry(&self, host: &HostName) -> Result<&HostEntry, ExecError> {
        self.hosts
            .get(host)
            .ok_or_else(|| ExecError::UnknownHost(host.to_string()))
    }

    /// Whether `job` can be sent to its host at all: its host is
    /// configured, its timeout is within the host's limit and its request
    /// fits one SSH command line. Asks no limit and sends nothing, so a
    /// proposal can be refused at once for what no later attempt can cure.
    ///
    /// # Errors
    /// [`ExecError::UnknownHost`], [`ExecError::TimeoutTooLong`] or
    /// [`ExecError::TooLarge`].
    pub fn fits(&self, job: &Job) -> Result<Duration, ExecError> {
        let entry = self.entry(&job.host)?;
        let limits = &entry.spec.limits;
        let timeout = job.timeout.unwrap_or(limits.default_timeout);
        if timeout > limits.max_timeout || timeout.is_zero() {
            return Err(ExecError::TimeoutTooLong {
                host: job.host.clone(),
                asked: timeout,
                max: limits.max_timeout,
            });
        }
        let bytes = Self::request(job, timeout, limits.output_cap)
            .encode()
            .len();
        if bytes > MAX_REQUEST {
            return Err(ExecError::TooLarge {
                host: job.host.clone(),
                bytes,
                max: MAX_REQUEST,
            });
        }
        Ok(timeout)
    }

    /// Decides whether `job` may be sent now: [`Executor::admit_now`],
    /// then [`Executor::seat`]. Nothing is sent.
    ///
    /// # Errors
    /// The [`ExecError`] that refused.
    pub async fn admit(&self, job: &Job) -> Result<Admission, ExecError> {
        let ticket = self.admit_now(job)?;
        self.seat(ticket).await
    }

    /// The part of admission that answers at once: whether the job fits
    /// ([`Executor::fits`]), whether the breaker would let it through, and
    /// the rate limits (whose cell it spends). A proposal asks this before
    /// it answers, so the proposer hears of a limit then.
    ///
    /// The breaker is only asked here: its pass is taken by
    /// [`Executor::seat`], once every other limit let the job through, so
    /// a probe is never held by a job that a limit then refuses.
    ///
    /// # Errors
    /// The [`ExecError`] that refused.
    pub fn admit_now(&self, job: &Job) -> Result<Ticket, ExecError> {
        let timeout = self.fits(job)?;
        let entry = self.entry(&job.host)?;
        entry
            .breaker
            .check()
            .map_err(|open| ExecError::CircuitOpen {
                host: job.host.clone(),
                open,
            })?;
        if let Err(limited) = self.rates.admit(&job.host, &job.requester) {
            return Err(ExecError::RateLimited(limited));
        }
        Ok(Ticket {
            host: job.host.clone(),
            timeout,
        })
    }

    /// The rest of admission: a concurrency slot on the host (waited for up
    /// to its queue timeout), then the breaker's pass. A job whose future
    /// is dropped while it waits for a slot holds nothing.
    ///
    /// # Errors
    /// [`ExecError::Busy`], or [`ExecError::CircuitOpen`] when the breaker
    /// opened (or another job took the probe) while this one waited.
    pub async fn seat(&self, ticket: Ticket) -> Result<Admission, ExecError> {
        let entry = self.entry(&ticket.host)?;
        let limits = &entry.spec.limits;
        let slot = tokio::time::timeout(
            limits.queue_timeout,
            Arc::clone(&entry.slots).acquire_owned(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or(ExecError::Busy {
            host: ticket.host.clone(),
            concurrency: limits.concurrency,
            waited: limits.queue_timeout,
        })?;
        // Then the slot goes back as this returns.
        let pass = entry
            .breaker
            .pass()
            .map_err(|open| ExecError::CircuitOpen {
                host: ticket.host.clone(),
                open,
            })?;
        Ok(Admission {
            host: ticket.host,
            timeout: ticket.timeout,
            _pass: pass,
            _slot: slot,
        })
    }

    /// The guard request that runs `job`.
    fn request(job: &Job, timeout: Duration, output_cap: u64) -> Request {
        match &job.edit {
            Some(edit) => Request::Edit(EditRequest {
                action_id: job.action_id,
                edit: edit.clone(),
            }),
            None => Request::Run(RunRequest {
                action_id: job.action_id,
                command: job.command.clone(),
                cwd: job.cwd.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                output_cap,
                approved: job.approved,
                scope: job.scope.clone(),
            }),
        }
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
        let cap = entry.spec.limits.output_cap;
        let request = Self::request(job, admission.timeout, cap);
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
                Frame::Hello(_)
                | Frame::Heartbeat
                | Frame::Done(_)
                | Frame::Checked(_)
                | Frame::Kernel(_)
                | Frame::Refused(_)
                | Frame::Snapshotted(_)
                | Frame::Restored(_)
                | Frame::Previewed(_)
                | Frame::Dropped(_)
                | Frame::Account(_) => return,
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
            other @ (Frame::Hello(_)
            | Frame::Stdout(_)
            | Frame::Stderr(_)
            | Frame::Heartbeat
            | Frame::Checked(_)
            | Frame::Kernel(_)
            | Frame::Snapshotted(_)
            | Frame::Restored(_)
            | Frame::Previewed(_)
            | Frame::Dropped(_)
            | Frame::Account(_)) => Err(ExecError::Transport(TransportError::Protocol {
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
        let answer = self
            .call(Via::Fresh(host), &Request::Check, Duration::from_secs(20))
            .await?;
        let Frame::Checked(report) = answer else {
            return Err(Self::unexpected(host, "check", &answer));
        };
        Ok(report)
    }

    /// Asks a host's guard only what its kernel enforces: no policy load,
    /// no probes, so a proposal can afford it.
    ///
    /// # Errors
    /// As [`Executor::check`].
    pub async fn kernel(&self, host: &HostName) -> Result<KernelReport, ExecError> {
        let answer = self
            .call(Via::Fresh(host), &Request::Kernel, Duration::from_secs(20))
            .await?;
        let Frame::Kernel(report) = answer else {
            return Err(Self::unexpected(host, "kernel question", &answer));
        };
        Ok(report)
    }

    /// Asks a host's guard what its own log says of an action's run: the
    /// way back to a run whose link broke or whose gateway stopped. The
    /// guard reads its log's tail only, so this is cheap; the breaker
    /// applies, rate limits do not (nothing runs).
    ///
    /// # Errors
    /// As [`Executor::check`]; a guard that predates the question refuses
    /// it (`bad-request`).
    pub async fn account(
        &self,
        host: &HostName,
        action_id: ActionId,
    ) -> Result<RunAccount, ExecError> {
        let request = Request::Account(AccountRequest { action_id });
        let answer = self
            .call(Via::Fresh(host), &request, Duration::from_secs(20))
            .await?;
        let Frame::Account(account) = answer else {
            return Err(Self::unexpected(host, "account question", &answer));
        };
        Ok(account)
    }

    /// Sends one request that answers with a single report (check,
    /// snapshot, rollback, preview, drop) and returns that last frame; a
    /// refusal is an error. The breaker applies; rate limits do not: these
    /// ride on an admitted action or a person's command, and a preview
    /// brings its own admission. A request made for an admitted job rides
    /// on its admission's pass (which may be the probe), so it is not
    /// refused while that job itself probes. `silence` bounds the wait for
    /// any frame.
    async fn call(
        &self,
        via: Via<'_>,
        request: &Request,
        silence: Duration,
    ) -> Result<Frame, ExecError> {
        let host = via.host();
        let entry = self.entry(host)?;
        // Held until the answer is in; dropped with this future (a caller's
        // timeout), a probe goes back to the next request.
        let _pass = match via {
            Via::Fresh(_) => Some(
                entry
                    .breaker
                    .pass()
                    .map_err(|open| ExecError::CircuitOpen {
                        host: host.clone(),
                        open,
                    })?,
            ),
            Via::Admitted(_) => None,
        };
        let last = entry.conn.exchange(request, silence, &mut |_| {}).await;
        let frame = self.record(entry, last)?;
        if let Frame::Refused(refusal) = frame {
            return Err(ExecError::Refused {
                host: host.clone(),
                refusal,
            });
        }
        Ok(frame)
    }

    fn unexpected(host: &HostName, what: &str, frame: &Frame) -> ExecError {
        ExecError::Transport(TransportError::Protocol {
            host: host.to_string(),
            detail: format!("a {what} ended with {frame:?}"),
        })
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
            // Nothing left this side: the host is not to blame.
            Err(e) if e.is_local() => Err(e.into()),
            Err(e) => {
                entry.breaker.failed(&e.to_string());
                Err(e.into())
            }
        }
    }

    /// Releases nothing, and says why: the SSH masters stay, since other
    /// `jarvis` processes share them, and each exits by itself once idle
    /// for [`GlobalLimits::ssh_master_idle`].
    pub async fn close(&self) {}
}
