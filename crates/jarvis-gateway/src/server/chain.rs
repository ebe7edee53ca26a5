//! The audit chain's status as the server shows it: verified in the
//! background and before pages are drawn, kept current without walking
//! the chain more than a sliver of a core allows, and a new break told to
//! the webhooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jarvis_store::{AuditKey, VerifyOptions};

use super::state::{AppState, ChainStatus, Shared};
use crate::notify::{Notice, NoticeKind};

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
        .map_err(Arc::new);
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

/// The chain's status: the last verification while it is current (no
/// event since, and under thirty seconds old), otherwise verified again.
/// Reading the head is one row; the walk is fast (about a million events a
/// second on SQLite), and a stale green is worse than a short wait.
pub(crate) async fn chain_status(state: &Shared) -> ChainStatus {
    let cached = state.chain.read().ok().and_then(|c| c.clone());
    let head = state.gw.store().head_seq().await.ok();
    match cached {
        Some(c)
            if c.at.elapsed() < Duration::from_secs(30)
                && c.report.as_ref().ok().map(|r| r.last_seq) == head =>
        {
            c
        }
        _ => crate::server::chain::refresh_chain(state).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_chain_in_a_sentence() {
        use jarvis_store::{Break, BreakKind, VerifyProblem, VerifyReport};
        let status = |report| ChainStatus {
            report,
            at: std::time::Instant::now(),
            took: Duration::from_millis(3),
        };
        assert_eq!(status(Ok(VerifyReport::default())).problem(), None);
        let first = Break {
            kind: BreakKind::Invalid,
            seq: 5,
            what: "event 5 was changed after it was written".into(),
        };
        let one = VerifyReport {
            problem: Some(VerifyProblem {
                seq: 5,
                what: first.what.clone(),
            }),
            breaks: vec![first.clone()],
            ..VerifyReport::default()
        };
        assert_eq!(
            status(Ok(one.clone())).problem().as_deref(),
            Some("It breaks at event #5: event 5 was changed after it was written.")
        );
        let many = VerifyReport {
            breaks: vec![first.clone(), first],
            unlisted: 2,
            ..one
        };
        assert_eq!(
            status(Ok(many)).problem().as_deref(),
            Some(
                "It breaks at event #5: event 5 was changed after it was written. 3 more breaks follow."
            )
        );
        assert_eq!(
            status(Err(Arc::new(jarvis_store::StoreError::Invalid(
                "database is locked".into()
            ))))
            .problem()
            .as_deref(),
            Some("Jarvis could not verify it: database is locked.")
        );
        // A long walk is repeated less often for pages.
        assert_eq!(
            current_for(&status(Ok(VerifyReport::default()))),
            Duration::from_secs(10)
        );
        let slow = ChainStatus {
            took: Duration::from_secs(2),
            ..status(Ok(VerifyReport::default()))
        };
        assert_eq!(current_for(&slow), Duration::from_secs(40));
    }
}
