//! The one path every action takes: propose ► judge ► (approve) ► admit ►
//! run ► record. The CLI, the web UI and the planner all call these
//! methods; none reaches a host another way.
//!
//! The gateway itself and its lifecycle are here; each step of the path
//! has its module: `propose`, `decide`, `run`, with what is known of
//! a host's kernel wall in `kernel` and the runs a host accounts for
//! after the fact in `accounts`.

mod accounts;
mod decide;
mod error;
mod kernel;
mod propose;
mod run;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jarvis_core::HostName;
use jarvis_exec::transport::Transport;
use jarvis_exec::{Executor, HostSpec};
use jarvis_policy::Policy;
use jarvis_store::Store;

use crate::config::Config;

use kernel::KernelFact;

pub use accounts::ACCOUNT_LOOKBACK;
pub use error::GatewayError;
pub use kernel::{HostFacts, KERNEL_FRESH, KernelKnown, KernelStanding};
pub(crate) use propose::action_edit;
pub use propose::{Proposal, Proposed, Work};
pub use run::{Started, whole_secs};
pub(crate) use run::{failed_run, time_of};

/// The wired pipeline.
pub struct Gateway {
    config: Config,
    policy: Policy,
    store: Store,
    executor: Executor,
    /// What each host's guard last said about the host (or why it could
    /// not be asked); read by every proposal, so held only for a copy.
    facts: Mutex<HashMap<HostName, HostFacts>>,
    /// What each host's guard last said of its kernel wall, from a check or
    /// the cheaper kernel question a proposal asks.
    kernels: Mutex<HashMap<HostName, KernelFact>>,
    /// One probe at a time per host: proposals that find the same host
    /// stale wait for the first one's answer instead of asking again.
    probing: HashMap<HostName, Arc<tokio::sync::Mutex<()>>>,
    /// Runs under way in this process, so a shutdown can let them finish.
    in_flight: Arc<InFlight>,
}

/// How many runs are under way, and a wake-up for whoever waits for none.
#[derive(Debug, Default)]
struct InFlight {
    runs: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One run under way, from its snapshot to its record; counted while it
/// lives, a panic or a cancelled future included.
pub(crate) struct InFlightRun(Arc<InFlight>);

impl Drop for InFlightRun {
    fn drop(&mut self) {
        if self
            .0
            .runs
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            self.0.idle.notify_waiters();
        }
    }
}

impl Gateway {
    /// Wires the pipeline. With `recover`, actions left `running` are marked
    /// `interrupted` (they never run twice) and those left `proposed`, never
    /// judged, are refused (never run at all): the caller passes it only when
    /// no other process that runs actions on this store is alive, since
    /// their running actions are not lost, just not finished yet.
    ///
    /// # Errors
    /// A policy or store error.
    pub async fn open(
        config: Config,
        store: Store,
        control_dir: &Path,
        recover: bool,
    ) -> Result<Gateway, GatewayError> {
        let executor = Executor::new(config.hosts.clone(), &config.global, control_dir);
        Gateway::open_on(config, store, executor, recover).await
    }

    /// Wires the pipeline as [`Gateway::open`] does, but each configured
    /// host is reached through the transport `make` gives it instead of
    /// SSH (an in-process guard, in tests). Only the way to the host
    /// changes: the hosts, their limits and the policy still come from
    /// `config`, and every action still takes [`Gateway::execute`]'s path,
    /// judged and admitted as before.
    ///
    /// # Errors
    /// As [`Gateway::open`].
    pub async fn open_with_transports(
        config: Config,
        store: Store,
        recover: bool,
        make: impl Fn(&HostSpec) -> Arc<dyn Transport>,
    ) -> Result<Gateway, GatewayError> {
        let executor = Executor::with_transports(config.hosts.clone(), &config.global, make);
        Gateway::open_on(config, store, executor, recover).await
    }

    async fn open_on(
        config: Config,
        store: Store,
        executor: Executor,
        recover: bool,
    ) -> Result<Gateway, GatewayError> {
        let policy = if config.policy.is_empty() {
            Policy::shipped()?
        } else {
            Policy::load(&config.policy)?
        };
        let mut interrupted = Vec::new();
        if recover {
            interrupted = store.interrupt_running("gateway").await?;
            store.refuse_unjudged("gateway").await?;
            store
                .stop_active_conversations(
                    "stopped: Jarvis was restarted while this conversation ran; start it again",
                )
                .await?;
        }
        let probing = config
            .hosts
            .iter()
            .map(|h| (h.name.clone(), Arc::default()))
            .collect();
        let gateway = Gateway {
            config,
            policy,
            store,
            executor,
            facts: Mutex::default(),
            kernels: Mutex::default(),
            probing,
            in_flight: Arc::default(),
        };
        // What the hosts' guards say became of the runs this restart cut
        // short: asked once now, and again at a later successful host
        // check if a host does not answer.
        let mut hosts = Vec::new();
        for id in interrupted {
            if let Some(host) = gateway.store.action(id).await?.host
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        }
        for host in hosts {
            gateway.settle_accounts_quietly(&host).await;
        }
        Ok(gateway)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The executor (for host checks).
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Closes SSH connections.
    pub async fn close(&self) {
        self.executor.close().await;
    }

    /// Counts a run as under way until the returned guard drops.
    pub(crate) fn run_in_flight(&self) -> InFlightRun {
        self.in_flight
            .runs
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightRun(Arc::clone(&self.in_flight))
    }

    /// How many runs are under way in this process.
    pub fn runs_in_flight(&self) -> usize {
        self.in_flight
            .runs
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no run is under way in this process, or `grace` has
    /// passed; returns how many are still running then. A shutdown calls it
    /// after it stopped taking requests, so a routine restart lets work
    /// finish instead of cutting it off (what is still running when the
    /// grace ends is interrupted, and recorded so, as before).
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Registered before the count is read, so a run that ends in
            // between still wakes this.
            let idle = self.in_flight.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let running = self.runs_in_flight();
            if running == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.runs_in_flight();
            }
        }
    }
}
