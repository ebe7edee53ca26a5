//! Operations: liveness, readiness and Prometheus metrics, and the
//! background work of a running server (expiring approvals, checking
//! hosts, signing the audit chain's head and shipping it to the witnesses,
//! verifying the chain, pruning sessions).

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::task::JoinHandle;

use jarvis_store::{AuditKey, VerifyOptions};

use super::session::ApiUser;
use super::views::Health;
use super::{AppState, CHECK_TIMEOUT, ChainStatus, Shared};
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

async fn check_hosts(state: AppState) {
    for spec in state.gw.config().hosts.clone() {
        check_host(&state, &spec.name).await;
    }
}

/// Keeps each host's health in step with its breaker between the periodic
/// checks, so `/readyz` and the hosts page follow it within a second both
/// ways: a breaker that cut a host off makes it unhealthy at once, and a
/// host that was unhealthy but whose breaker now counts no failure (a run
/// or a probe got through since) is checked again at once rather than at
/// the next period (at most every few seconds, for a host whose check
/// fails for a reason the breaker does not count).
async fn follow_breakers(state: AppState) {
    use jarvis_exec::breaker::BreakerStatus;
    const RECHECK_AFTER: Duration = Duration::from_secs(5);
    for spec in state.gw.config().hosts.clone() {
        let name = spec.name.to_string();
        let known = state.health.read().ok().and_then(|h| h.get(&name).cloned());
        match state.gw.executor().breaker_status(&spec.name) {
            Some(BreakerStatus::Open {
                failures,
                last_error,
                ..
            }) if known.as_ref().is_none_or(|h| h.ok != Some(false)) => {
                let health = Health {
                    ok: Some(false),
                    detail: format!("cut off after {failures} failures in a row: {last_error}"),
                    checked_at: jarvis_store::now(),
                };
                if let Ok(mut h) = state.health.write() {
                    h.insert(name, health);
                }
            }
            Some(BreakerStatus::Closed { failures: 0, .. }) => {
                let stale = known.is_some_and(|h| {
                    h.ok == Some(false)
                        && jarvis_store::parse_time(&h.checked_at)
                            .is_ok_and(|at| time::OffsetDateTime::now_utc() - at >= RECHECK_AFTER)
                });
                if stale {
                    check_host(&state, &spec.name).await;
                }
            }
            _ => {}
        }
    }
}

/// Checks one host now and remembers its health: the periodic checks, and
/// a person's "check now" on the hosts page.
pub(crate) async fn check_host(state: &Shared, host: &jarvis_core::HostName) -> Health {
    // Through the gateway, which remembers what the host says of its
    // kernel wall: these checks are what keeps the proposals' view of
    // every host fresh.
    let checked = tokio::time::timeout(CHECK_TIMEOUT, state.gw.check_host(host)).await;
    let (ok, detail) = match checked {
        Ok(Ok(r)) => (true, checked_words(&r)),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (
            false,
            format!("no answer within {}s", CHECK_TIMEOUT.as_secs()),
        ),
    };
    if !ok {
        tracing::warn!(host = %host, detail, "host check failed");
    }
    let health = Health {
        ok: Some(ok),
        detail,
        checked_at: jarvis_store::now(),
    };
    if let Ok(mut h) = state.health.write() {
        h.insert(host.to_string(), health.clone());
    }
    health
}

/// What a passed check found, in a line: `nas as jarvis; git 2.39.5;
/// docker 27.3.1`. The guard reports `git --version` whole ("git version
/// 2.39.5"), which would read "git git version 2.39.5" after the name.
pub(crate) fn checked_words(r: &jarvis_exec::protocol::CheckReport) -> String {
    let version = |name: &str, v: Option<&str>| match v.map(str::trim) {
        None | Some("") => format!("no {name}"),
        Some(v) => {
            // "git version 2.39.5", "Docker version 24.0.5, build …": the
            // name and the word "version" once is enough.
            let strip = |text: &'_ str, word: &str| -> Option<usize> {
                text.get(..word.len())
                    .filter(|head| head.eq_ignore_ascii_case(word))
                    .map(|_| word.len())
            };
            let mut rest = v;
            if let Some(n) = strip(rest, name) {
                rest = rest[n..].trim_start();
                if let Some(n) = strip(rest, "version") {
                    rest = rest[n..].trim_start_matches([' ', ':']);
                }
            }
            let bare = if rest.is_empty() { v } else { rest };
            format!("{name} {bare}")
        }
    };
    format!(
        "{} as {}; {}; {}",
        r.hostname,
        r.user,
        version("git", r.git.as_deref()),
        version("docker", r.docker.as_deref())
    )
}

/// Verifies the chain now and remembers the outcome; a chain that was
/// intact (or not yet verified) and is now broken notifies the webhooks.
pub(crate) async fn verify_chain(state: AppState) {
    refresh_chain(&state).await;
}

pub(crate) async fn refresh_chain(state: &Shared) -> ChainStatus {
    let before = state.chain_intact();
    let started = Instant::now();
    let report = state
        .gw
        .store()
        .verify_with(&verify_options(state).await)
        .await
        .map_err(|e| e.to_string());
    let status = ChainStatus {
        report,
        at: Instant::now(),
        took: started.elapsed(),
    };
    if let Ok(r) = &status.report
        && let Some(problem) = &r.problem
        && before != Some(false)
    {
        tracing::error!(seq = problem.seq, what = %problem.what, "the audit chain is broken");
        state.notifier.notify(Notice::new(
            NoticeKind::AuditBroken,
            format!(
                "the audit chain fails verification at event #{}: {}",
                problem.seq, problem.what
            ),
        ));
    }
    if let Ok(mut c) = state.chain.write() {
        *c = Some(status.clone());
    }
    status
}

/// The shortest time a verification stays current for pages.
const PAGE_FRESH: Duration = Duration::from_secs(10);

/// How long a page waits for a walk of the chain before it shows the last
/// status known (the walk goes on; the next page has its outcome).
const PAGE_WAIT: Duration = Duration::from_secs(2);

/// How long a verification stays current for pages: ten seconds, or twenty
/// times as long as the walk took, so verifying for pages never takes more
/// than about a twentieth of a core however long the chain grows.
pub(crate) fn current_for(status: &ChainStatus) -> Duration {
    PAGE_FRESH.max(status.took.saturating_mul(20))
}

/// Makes the chain's status current before a page is drawn, so the banner
/// every page shows appears within seconds of a break and goes within
/// seconds of a fix (the background verification alone runs every
/// `[server] audit_verify_secs`, five minutes by default, and a page that
/// read only its result stayed red that long after a fix).
///
/// One walk runs at a time; a page waits for it at most [`PAGE_WAIT`] and
/// is drawn with the last status known if it takes longer.
pub(crate) async fn keep_chain_current(state: &AppState) {
    use std::sync::atomic::Ordering;
    let current = |s: &Shared| {
        s.chain_now()
            .is_some_and(|c| c.at.elapsed() < current_for(&c))
    };
    if current(state) {
        return;
    }
    let mut walked = state.chain_walked.subscribe();
    // A walk may have finished between the look above and subscribing.
    if current(state) {
        return;
    }
    if !state.chain_walking.swap(true, Ordering::AcqRel) {
        let walk = Walk(state.clone());
        tokio::spawn(async move {
            refresh_chain(&walk.0).await;
            drop(walk);
        });
    }
    let _ = tokio::time::timeout(PAGE_WAIT, walked.changed()).await;
}

/// A walk of the chain for pages, under way: when it ends, however it
/// ends, the next page may start another, and the pages waiting for it
/// are told.
struct Walk(AppState);

impl Drop for Walk {
    fn drop(&mut self) {
        self.0
            .chain_walking
            .store(false, std::sync::atomic::Ordering::Release);
        self.0.chain_walked.send_modify(|n| *n = n.wrapping_add(1));
    }
}

async fn prune_sessions(state: AppState) {
    if let Err(e) = state.gw.store().prune_sessions().await {
        tracing::warn!(error = %e, "cannot prune expired sessions");
    }
}

/// What the background verification expects: the operator's key; when
/// this server signs heads, the configured checkpoint interval and period;
/// and the heads every reachable witness holds.
async fn verify_options(state: &Shared) -> VerifyOptions {
    let store = state.gw.store();
    let audit = &state.gw.config().audit;
    let signs = store.signing_key().is_some();
    let mut witness = Vec::new();
    for spec in audit.witnesses.clone() {
        match tokio::task::spawn_blocking(move || crate::witness::read_heads(&spec)).await {
            Ok(Ok(heads)) => witness.extend(heads),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read a witness to verify against"),
            Err(e) => tracing::warn!(error = %e, "cannot read a witness to verify against"),
        }
    }
    witness.sort_by_key(|h| h.seq);
    witness.dedup_by(|a, b| a.seq == b.seq && a.signature == b.signature);
    VerifyOptions {
        trusted: state
            .audit_key
            .as_ref()
            .map(AuditKey::public_hex)
            .or_else(|| store.signing_key()),
        // A gateway opened on a store without a key (a library in tests)
        // makes no checkpoints, so none are expected of it.
        every: signs.then_some(audit.checkpoint_every),
        period: signs.then_some(audit.head_period),
        now: None,
        witness,
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
