//! What every handler shares: the gateway, the settings, the notifier and
//! the limiter, the last word on the audit chain and on each host, the
//! live channel, and the runs this server is starting; with the clock in
//! the Unix seconds the pages count in.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jarvis_core::ActionId;
use jarvis_store::{AuditKey, NewEvent, StoreError, VerifyReport};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::auth::LoginLimiter;
use crate::config::ServerSettings;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::pipeline::Gateway;

use super::live_event::LiveEvent;
use super::views;

/// The outcome of the last verification of the audit chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainStatus {
    /// The walk's report, or the store's error that stopped it (shared:
    /// the status is cloned to every page that shows it).
    pub(crate) report: Result<VerifyReport, Arc<StoreError>>,
    /// When it finished.
    pub(crate) at: Instant,
    /// How long the walk took: a long chain is verified less often for
    /// pages (see [`super::chain::keep_chain_current`]).
    pub(crate) took: Duration,
}

impl ChainStatus {
    pub(crate) fn intact(&self) -> Option<bool> {
        self.report.as_ref().ok().map(VerifyReport::is_intact)
    }

    /// What is wrong, in a sentence for the banner every page shows: where
    /// the chain breaks and how many breaks there are, or why it could not
    /// be verified; `None` while it is intact.
    pub(crate) fn problem(&self) -> Option<String> {
        match &self.report {
            Err(e) => Some(format!("Jarvis could not verify it: {e}.")),
            Ok(r) => r.problem.as_ref().map(|p| {
                let breaks = (r.breaks.len() as u64 + r.unlisted).max(1);
                let more = match breaks {
                    1 => String::new(),
                    2 => " One more break follows.".to_owned(),
                    n => format!(" {} more breaks follow.", n - 1),
                };
                format!(
                    "It breaks at event #{}: {}.{more}",
                    p.seq,
                    p.what.trim_end_matches('.')
                )
            }),
        }
    }
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) gw: Gateway,
    pub(crate) settings: ServerSettings,
    pub(crate) metrics: Metrics,
    pub(crate) notifier: Notifier,
    pub(crate) limiter: LoginLimiter,
    pub(crate) audit_key: Option<AuditKey>,
    pub(crate) health: RwLock<BTreeMap<String, views::Health>>,
    pub(crate) chain: RwLock<Option<ChainStatus>>,
    /// Whether a walk of the chain for pages is under way (one at a time).
    pub(crate) chain_walking: std::sync::atomic::AtomicBool,
    /// Counts the walks for pages that finished, so a page can wait for
    /// the one under way.
    pub(crate) chain_walked: tokio::sync::watch::Sender<u64>,
    pub(crate) live: broadcast::Sender<LiveEvent>,
    /// Password checks in flight (argon2 is slow on purpose).
    pub(crate) sign_ins: tokio::sync::Semaphore,
    /// When a locked-out sign-in was last audited, as Unix seconds.
    pub(crate) lock_audited: std::sync::atomic::AtomicI64,
    /// Tells live streams the server is stopping.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// Places for live streams (`max_streams`); each open stream holds one.
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    /// Approved actions this server is starting or running: between an
    /// approval and the move to `running` an action looks approved but not
    /// started, and a page must not offer to run it again then.
    pub(crate) starting: std::sync::Mutex<std::collections::HashSet<ActionId>>,
}

impl Shared {
    /// Whether this server is starting or running `id`.
    pub(crate) fn is_starting(&self, id: ActionId) -> bool {
        self.starting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&id)
    }
}

impl Shared {
    /// Writes an `access.refused` event and counts it: every refusal of a
    /// signed-in or token caller is on the record.
    pub(crate) async fn audit_refusal(
        &self,
        actor: &str,
        action: Option<ActionId>,
        reason: &str,
        detail: Value,
    ) {
        self.metrics.refused(reason);
        // The person who answers for a token's (or conversation's)
        // attempt, so a refusal is theirs to explain; if that cannot be
        // read, the refusal is recorded all the same.
        let accountable = match self.gw.store().accountable(actor).await {
            Ok(person) => person,
            Err(e) => {
                tracing::warn!(error = %e, actor, "who answers for a refused caller is not known");
                actor.to_owned()
            }
        };
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: action,
            host: None,
            kind: "access.refused".into(),
            payload: serde_json::json!({
                "reason": reason,
                "detail": detail,
                "accountable": accountable,
            }),
        };
        if let Err(e) = self.gw.store().append(event).await {
            tracing::error!(error = %e, reason, "could not audit a refusal");
        }
    }

    /// Whether a locked-out sign-in should be audited now: at most once a
    /// minute.
    pub(crate) fn lock_audit_due(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = now_unix();
        let last = self.lock_audited.load(Ordering::Relaxed);
        now - last >= 60
            && self
                .lock_audited
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub(crate) fn chain_intact(&self) -> Option<bool> {
        self.chain
            .read()
            .ok()
            .and_then(|c| c.as_ref().and_then(ChainStatus::intact))
    }

    /// The last verification of the chain, if any.
    pub(crate) fn chain_now(&self) -> Option<ChainStatus> {
        self.chain.read().ok().and_then(|c| c.clone())
    }
}

pub(crate) type AppState = Arc<Shared>;

/// Seconds since the Unix epoch of a time.
pub(crate) fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now_unix() -> i64 {
    unix(std::time::SystemTime::now())
}

/// How long background checks may take before they count as failed.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
