//! What the server knows of its hosts: each one checked on a schedule, on
//! request, and again as soon as its breaker lets work through; and the
//! rows the hosts page and the API show of them.

use std::time::Duration;

use jarvis_store::OffsetDateTime;

use super::state::{AppState, CHECK_TIMEOUT, Shared};
use super::views::{Connection, Health, HostKernel, HostRow};

pub(super) async fn check_hosts(state: AppState) {
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
pub(super) async fn follow_breakers(state: AppState) {
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
            None
            | Some(
                BreakerStatus::Open { .. }
                | BreakerStatus::Closed { .. }
                | BreakerStatus::Probing { .. },
            ) => {}
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

/// The hosts as the UI and API show them.
pub(crate) fn host_rows(state: &Shared) -> Vec<HostRow> {
    let health = state.health.read().map(|h| h.clone()).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    state
        .gw
        .config()
        .hosts
        .iter()
        .map(|h| {
            let l = &h.limits;
            HostRow {
                name: h.name.to_string(),
                destination: match h.port {
                    Some(p) => format!("{} port {p}", h.destination),
                    None => h.destination.clone(),
                },
                tags: h.tags.clone(),
                health: health.get(h.name.as_str()).cloned().unwrap_or(Health {
                    ok: None,
                    detail: "not checked yet".into(),
                    checked_at: String::new(),
                }),
                breaker: state
                    .gw
                    .executor()
                    .breaker_state(&h.name)
                    .unwrap_or_default(),
                connection: state
                    .gw
                    .executor()
                    .breaker_status(&h.name)
                    .map(|b| Connection::of(&b, now))
                    .unwrap_or_default(),
                shell: match state.gw.host_facts(&h.name).map(|f| f.report) {
                    Some(Ok(r)) => r
                        .bash
                        .unwrap_or_else(|| "no bash: the guard runs nothing on this host".into()),
                    _ => "not known yet".into(),
                },
                kernel: {
                    let k = state.gw.kernel_standing(&h.name);
                    HostKernel {
                        level: k.enforcement_level(),
                        detail: k.level(),
                        enforcement: k.enforcement.as_str().into(),
                        consequence: k.consequence().into(),
                        unattended: k.unattended(),
                        learnt_at: k.learnt_at.unwrap_or_default(),
                    }
                },
                limits: vec![
                    (
                        "default timeout".into(),
                        format!("{}s", l.default_timeout.as_secs()),
                    ),
                    (
                        "max timeout".into(),
                        format!("{}s", l.max_timeout.as_secs()),
                    ),
                    (
                        "output cap".into(),
                        crate::server::views::bytes_text(l.output_cap),
                    ),
                    (
                        "rate".into(),
                        format!("{}/min, burst {}", l.rate_per_minute, l.burst),
                    ),
                    ("concurrency".into(), l.concurrency.to_string()),
                    (
                        "cut off".into(),
                        format!(
                            "after {} failures in a row, for {}",
                            l.breaker_failures,
                            crate::server::views::span_text(
                                i64::try_from(l.breaker_cooldown.as_secs()).unwrap_or(i64::MAX)
                            )
                        ),
                    ),
                ],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_says_each_version_once() {
        let report = |git: Option<&str>, docker: Option<&str>| jarvis_exec::protocol::CheckReport {
            hostname: "nas".into(),
            user: "jarvis".into(),
            policy: vec![],
            policy_rules: 0,
            docker: docker.map(str::to_owned),
            git: git.map(str::to_owned),
            bash: None,
            enforcement: Default::default(),
        };
        assert_eq!(
            checked_words(&report(Some("git version 2.39.5"), Some("27.3.1"))),
            "nas as jarvis; git 2.39.5; docker 27.3.1"
        );
        assert_eq!(
            checked_words(&report(None, Some("Docker version 24.0.5, build 1"))),
            "nas as jarvis; no git; docker 24.0.5, build 1"
        );
    }
}
