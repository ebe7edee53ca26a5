//! Operations: liveness, readiness and Prometheus metrics, and the
//! background work of a running server (expiring approvals, checking
//! hosts, signing the audit chain's head and shipping it to the witnesses,
//! verifying the chain, pruning sessions).
//!
//! The verification of the chain is in `chain`, the host checks in
//! `hosts`; this module schedules them.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::task::JoinHandle;

use super::chain::verify_chain;
use super::hosts::{check_hosts, follow_breakers};
use super::session::ApiUser;
use super::state::{AppState, Shared};
use crate::metrics::{BreakerGauge, Gauges};
use crate::notify::{Notice, NoticeKind};
use crate::witness::{WitnessError, Witnesses};

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database takes a write, its disk has room, and every
/// host passed its last check. Anyone may ask whether the server is ready,
/// and gets only that (a load balancer needs no more, and host names tell a
/// stranger what to attack); a signed-in person or an API token also gets
/// which part is not, and why the database is not.
///
/// The write probe is a real committed write (see
/// [`jarvis_store::Store::probe_write`]): a `SELECT 1` still answers on a
/// full disk. Every call probes anew, so the answer turns green by itself
/// once space is back.
pub(crate) async fn readyz(
    State(state): State<AppState>,
    caller: Result<ApiUser, Response>,
) -> Response {
    let database = database_readiness(&state).await;
    let mut ready = database["ok"] == true;
    let mut hosts = serde_json::Map::new();
    let health = state.health.read().map(|h| h.clone()).unwrap_or_default();
    for spec in &state.gw.config().hosts {
        let name = spec.name.to_string();
        // Booleans and times only, no error text (that is on the hosts
        // page).
        let entry = match health.get(&name) {
            Some(h) => json!({ "ok": h.ok, "checked_at": h.checked_at }),
            None => json!({ "ok": null }),
        };
        ready &= entry["ok"] == true;
        hosts.insert(name, entry);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = if caller.is_ok() {
        json!({ "ready": ready, "database": database, "hosts": hosts })
    } else {
        json!({ "ready": ready })
    };
    (status, Json(body)).into_response()
}

/// Whether the database takes a write now and has room for more, as
/// `{"ok", "reason"?, "free_bytes"?, "min_free_bytes"?}`.
async fn database_readiness(state: &Shared) -> serde_json::Value {
    let store = state.gw.store();
    let min_free = state.gw.config().server.min_free_bytes;
    let mut out = json!({ "ok": true });
    if let Some(free) = store.free_space() {
        out["free_bytes"] = json!(free.bytes);
        out["min_free_bytes"] = json!(min_free);
        if free.bytes < min_free {
            out["ok"] = json!(false);
            out["reason"] = json!(format!(
                "{} has {} KiB free, under the {} KiB `[server] min_free_mb` asks for",
                free.dir.display(),
                free.bytes >> 10,
                min_free >> 10
            ));
        }
    }
    if let Err(e) = store.probe_write().await {
        tracing::warn!(error = %e, "readiness: the database does not take a write");
        out["ok"] = json!(false);
        out["reason"] = json!(e.to_string());
    }
    out
}

/// `GET /metrics`: Prometheus text format, for any signed-in person or
/// API token (a `read` token is what a scraper needs), or for anyone when
/// `[server] public_metrics` says so.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    caller: Result<ApiUser, Response>,
) -> Response {
    if let Err(refused) = caller
        && !state.gw.config().server.public_metrics
    {
        return refused;
    }
    let actions = match state.gw.store().count_actions_by().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot count actions for metrics");
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
        }
    };
    let pending = actions
        .iter()
        .filter(|(s, _, _)| *s == jarvis_core::ActionState::PendingApproval)
        .map(|(_, _, n)| n)
        .sum();
    let gauges = Gauges {
        actions: actions
            .into_iter()
            .map(|(s, d, n)| (s.to_string(), d.map(|d| d.to_string()), n))
            .collect(),
        breakers: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| {
                let described = state
                    .gw
                    .executor()
                    .breaker_state(&h.name)
                    .unwrap_or_default();
                (h.name.to_string(), breaker_gauge(&described))
            })
            .collect(),
        pending,
        audit_intact: state.chain_intact(),
        notifications: state
            .notifier
            .stats()
            .into_iter()
            .map(|s| {
                (
                    s.name,
                    s.format.as_str().to_owned(),
                    s.delivered,
                    s.failed,
                    s.dropped,
                    s.retries,
                )
            })
            .collect(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
        .into_response()
}

fn breaker_gauge(described: &str) -> BreakerGauge {
    if described.starts_with("open") {
        BreakerGauge::Open
    } else if described.starts_with("half") {
        BreakerGauge::HalfOpen
    } else {
        BreakerGauge::Closed
    }
}

/// Starts the background work, reacting to `changes`; the handles are
/// aborted at shutdown.
pub(crate) fn start_background(
    state: AppState,
    changes: tokio::sync::broadcast::Receiver<jarvis_store::ActionChange>,
) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(super::live::watch_changes(state.clone(), changes)),
        tokio::spawn(every(state.clone(), Duration::from_secs(15), expire)),
        tokio::spawn(every(state.clone(), state.settings.host_check, check_hosts)),
        tokio::spawn(every(
            state.clone(),
            Duration::from_secs(1),
            follow_breakers,
        )),
        tokio::spawn(every(
            state.clone(),
            state.settings.audit_verify,
            verify_chain,
        )),
        tokio::spawn(sign_heads(state.clone())),
        tokio::spawn(every(state, Duration::from_secs(3600), prune_sessions)),
    ]
}

async fn every<F, Fut>(state: AppState, period: Duration, work: F)
where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        work(state.clone()).await;
    }
}

async fn expire(state: AppState) {
    match state.gw.expire_overdue().await {
        Ok(ids) if !ids.is_empty() => {
            tracing::info!(count = ids.len(), "pending approvals expired")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot expire overdue approvals"),
    }
}

async fn prune_sessions(state: AppState) {
    if let Err(e) = state.gw.store().prune_sessions().await {
        tracing::warn!(error = %e, "cannot prune expired sessions");
    }
}

/// Signs the chain's head when the server starts and at least every
/// `[audit] head_period_secs` after, shipping each head to the witnesses;
/// a store without a key (a library gateway in tests) signs nothing.
async fn sign_heads(state: AppState) {
    if state.gw.store().signing_key().is_none() {
        return;
    }
    let witnesses = Witnesses::new(state.gw.config().audit.witnesses.clone());
    let mut tick = tokio::time::interval(state.gw.config().audit.head_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reason = "startup";
    loop {
        tick.tick().await;
        seal(&state, &witnesses, reason).await;
        reason = "periodic";
    }
}

/// Signs the head a last time once the server has stopped taking
/// requests, so the events of its last moments are covered and shipped.
pub(crate) async fn seal_at_shutdown(state: &Shared) {
    if state.gw.store().signing_key().is_none() {
        return;
    }
    let witnesses = Witnesses::new(state.gw.config().audit.witnesses.clone());
    seal(state, &witnesses, "shutdown").await;
}

async fn seal(state: &Shared, witnesses: &Witnesses, reason: &str) {
    match witnesses.seal(state.gw.store(), reason).await {
        Ok(sealed) => {
            for e in &sealed.failed {
                tracing::warn!(error = %e, "a witness missed signed heads; the next seal ships them");
            }
            if let Some(head) = &sealed.signed {
                tracing::debug!(seq = head.seq, reason, "signed the audit chain's head");
            }
        }
        Err(e @ WitnessError::Broken { .. }) => {
            tracing::error!(error = %e, "the audit chain no longer holds a witnessed head");
            // Said once per break: every tick finds it again.
            if !WITNESS_BROKEN.swap(true, std::sync::atomic::Ordering::Relaxed) {
                state
                    .notifier
                    .notify(Notice::new(NoticeKind::AuditBroken, e.to_string()));
            }
        }
        Err(e) => tracing::error!(error = %e, reason, "cannot sign the audit chain's head"),
    }
}

/// Whether a witnessed head was found missing from the chain (notified once).
static WITNESS_BROKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
