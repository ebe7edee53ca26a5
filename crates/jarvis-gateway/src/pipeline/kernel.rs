//! What the gateway knows of each host's kernel wall: asked of the host's
//! guard, remembered for a while, kept across restarts, and the one verdict
//! (its standing) that proposals, runs and the pages share.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use jarvis_core::{Decision, HostName};
use jarvis_exec::ExecError;
use jarvis_exec::protocol::{CheckReport, EnforcementLevel, KernelEnforcement};
use jarvis_policy::Judgement;
use serde_json::json;

use crate::config::Enforcement;

use super::Gateway;

/// How long what a host's guard said about its kernel counts as current
/// when a proposal depends on it. Twice the server's default host-check
/// period, so a server's periodic checks keep it fresh and a proposal
/// rarely waits on a probe; short enough that a host whose kernel or forced
/// command changed is noticed within minutes, not at the next restart.
pub const KERNEL_FRESH: Duration = Duration::from_secs(120);

/// What a host's guard last said about the host, or why it could not be
/// asked.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The guard's report, or the error of asking it.
    pub report: Result<CheckReport, ExecError>,
    /// When it was learnt, as the store writes times.
    pub learnt_at: String,
}

/// How old a kernel report learnt at `learnt_at` is at `now`, if it is
/// still fresh ([`KERNEL_FRESH`]). A time this side cannot read, or one
/// ahead of `now` (a clock set back since), is never fresh.
fn fresh_for(learnt_at: &str, now: jarvis_store::OffsetDateTime) -> Option<Duration> {
    let at = jarvis_store::parse_time(learnt_at).ok()?;
    Duration::try_from(now - at)
        .ok()
        .filter(|age| *age < KERNEL_FRESH)
}

/// What a host's guard last said of its kernel wall, or why it could not
/// be asked.
#[derive(Debug, Clone)]
pub(super) struct KernelFact {
    known: Result<KernelEnforcement, ExecError>,
    learnt_at: String,
    learnt: Instant,
}

/// What the gateway knows of a host's kernel wall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelKnown {
    /// The host's guard said.
    Reported(KernelEnforcement),
    /// The host's guard could not be asked; why.
    Unreachable(String),
    /// Nobody has asked yet.
    NotChecked,
}

/// A host's kernel wall and what its `enforcement` setting makes of it:
/// the one verdict that proposals, runs, `jarvis hosts check` and the
/// hosts page share, so they cannot disagree.
#[derive(Debug, Clone)]
pub struct KernelStanding {
    /// The host.
    pub host: HostName,
    /// Its owner's setting.
    pub enforcement: Enforcement,
    /// What is known of its kernel wall.
    pub known: KernelKnown,
    /// When that was learnt (`None` when nobody asked).
    pub learnt_at: Option<String>,
}

impl KernelStanding {
    /// Whether the kernel enforces every right the guard asks it for.
    pub fn full(&self) -> bool {
        matches!(&self.known, KernelKnown::Reported(k) if k.level == EnforcementLevel::Full)
    }

    /// Whether an action the policy allows may run without a person: the
    /// kernel holds it to the judgement, or the owner said best-effort.
    pub fn unattended(&self) -> bool {
        self.full() || self.enforcement == Enforcement::BestEffort
    }

    /// What the host said its kernel enforces; `None` when nobody asked
    /// or it did not answer.
    pub fn enforcement_level(&self) -> Option<EnforcementLevel> {
        match &self.known {
            KernelKnown::Reported(k) => Some(k.level),
            KernelKnown::Unreachable(_) | KernelKnown::NotChecked => None,
        }
    }

    /// `full`, `partial`, `none` or `unknown`.
    pub fn level_word(&self) -> &'static str {
        self.enforcement_level()
            .map_or("unknown", EnforcementLevel::as_str)
    }

    /// The level in words: `full (Landlock ABI 7)`, `none: switched off
    /// by …`, `partial (Landlock ABI 3): missing …`, `unknown: …`.
    pub fn level(&self) -> String {
        match &self.known {
            KernelKnown::Reported(k) => {
                let abi = k
                    .landlock_abi
                    .map(|v| format!(" (Landlock ABI {v})"))
                    .unwrap_or_default();
                let missing = k.missing.join(", ");
                match k.level {
                    EnforcementLevel::Full => format!("full{abi}"),
                    // What is left out of a partial wall is a list of rights.
                    EnforcementLevel::Partial => format!("partial{abi}: missing {missing}"),
                    // A host with no wall says why in the one entry.
                    EnforcementLevel::None if missing.is_empty() => format!("none{abi}"),
                    EnforcementLevel::None => format!("none{abi}: {missing}"),
                }
            }
            KernelKnown::Unreachable(why) => format!("unknown: the host could not be asked: {why}"),
            KernelKnown::NotChecked => "unknown: not checked yet".into(),
        }
    }

    /// What follows for actions the policy allows on this host.
    pub fn consequence(&self) -> &'static str {
        match (self.full(), self.enforcement) {
            (true, _) => "unattended actions allowed",
            (false, Enforcement::Required) => "every action waits for a person",
            (false, Enforcement::BestEffort) => {
                "unattended actions run without the full kernel wall"
            }
        }
    }

    /// Why an action on this host is held for a person, or (best-effort)
    /// runs without the full wall; `None` when the wall is whole.
    pub fn reason(&self) -> Option<String> {
        if self.full() {
            return None;
        }
        let host = &self.host;
        let level = self.level();
        let what = match &self.known {
            KernelKnown::Reported(k) if k.level == EnforcementLevel::Partial => {
                format!("`{host}` enforces only part of the kernel wall ({level})")
            }
            KernelKnown::Reported(_) => {
                format!("`{host}` cannot enforce the kernel wall ({level})")
            }
            KernelKnown::Unreachable(why) => format!(
                "whether `{host}` can enforce the kernel wall is not known (its guard could not be asked: {why})"
            ),
            KernelKnown::NotChecked => {
                format!(
                    "whether `{host}` can enforce the kernel wall is not known (not checked yet)"
                )
            }
        };
        Some(match self.enforcement {
            Enforcement::Required => format!(
                "{what}; under enforcement = \"required\" every action on it waits for a person"
            ),
            Enforcement::BestEffort => {
                format!("{what}; under enforcement = \"best-effort\" it runs as the policy says")
            }
        })
    }

    /// Applies the setting to a judgement: an action the policy would let
    /// run alone waits for a person instead when the host requires a
    /// kernel wall it lacks (or cannot be asked about). A denial stays a
    /// denial. Where the wall is known to be missing and the action goes
    /// ahead or waits anyway, the reason is added for whoever looks.
    pub fn apply(&self, judgement: &mut Judgement) {
        let Some(why) = self.reason() else {
            return;
        };
        match judgement.decision {
            Decision::Deny => {}
            Decision::Allow if !self.unattended() => judgement.hold(why),
            Decision::Allow | Decision::Approve
                if matches!(self.known, KernelKnown::Reported(_)) =>
            {
                judgement.reasons.push(why)
            }
            Decision::Allow | Decision::Approve => {}
        }
    }

    /// The standing as an audit event records it.
    pub fn audit(&self) -> serde_json::Value {
        json!({
            "enforcement": self.enforcement.as_str(),
            "level": self.level_word(),
            "detail": self.level(),
            "learnt_at": self.learnt_at,
            "unattended_allowed": self.unattended(),
        })
    }
}

impl Gateway {
    /// Asks a host's guard who it is and what the host has, and remembers
    /// what it says of the kernel wall (or that it could not be asked) for
    /// the proposals that follow. The server's periodic host checks come
    /// through here, so they keep what proposals read fresh.
    ///
    /// # Errors
    /// As [`Executor::check`].
    pub async fn check_host(&self, host: &HostName) -> Result<CheckReport, ExecError> {
        let result = self.executor.check(host).await;
        let report = result.clone();
        let kernel = report
            .as_ref()
            .map(|r| r.enforcement.clone())
            .map_err(Clone::clone);
        self.keep_kernel(host, &kernel).await;
        self.learn_kernel(host, kernel);
        let answered = report.is_ok();
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                host.clone(),
                HostFacts {
                    report,
                    learnt_at: jarvis_store::now(),
                },
            );
        if answered {
            // The host answers again: ask it about runs whose end the
            // gateway did not hear while it did not.
            self.settle_accounts_quietly(host).await;
        }
        result
    }

    /// What the host's guard last said (or why it could not be asked),
    /// however old; `None` before anyone asked.
    pub fn host_facts(&self, host: &HostName) -> Option<HostFacts> {
        self.facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    fn learn_kernel(&self, host: &HostName, known: Result<KernelEnforcement, ExecError>) {
        self.remember_kernel(
            host,
            KernelFact {
                known,
                learnt_at: jarvis_store::now(),
                learnt: Instant::now(),
            },
        );
    }

    fn remember_kernel(&self, host: &HostName, fact: KernelFact) {
        self.kernels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.clone(), fact);
    }

    fn kernel_fact(&self, host: &HostName) -> Option<KernelFact> {
        self.kernels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    /// A host's kernel wall as last learnt, and what its `enforcement`
    /// makes of it. Asks nobody.
    pub fn kernel_standing(&self, host: &HostName) -> KernelStanding {
        let fact = self.kernel_fact(host);
        KernelStanding {
            host: host.clone(),
            enforcement: self.config.enforcement(host),
            known: match &fact {
                None => KernelKnown::NotChecked,
                Some(f) => match &f.known {
                    Ok(k) => KernelKnown::Reported(k.clone()),
                    Err(why) => KernelKnown::Unreachable(why.to_string()),
                },
            },
            learnt_at: fact.map(|f| f.learnt_at),
        }
    }

    /// The standing a `decision` on `host` is measured against. Only an
    /// action the policy would let run alone on a host whose owner
    /// requires the kernel wall depends on it, so only then is the host
    /// asked (when nothing, or nothing from the last [`KERNEL_FRESH`], is
    /// known). A best-effort host is never asked on the way: a probe that
    /// fails counts against the host's circuit breaker like a failed run,
    /// and there nothing waits on the answer.
    pub(super) async fn kernel_for(&self, host: &HostName, decision: Decision) -> KernelStanding {
        if decision != Decision::Allow || self.config.enforcement(host) != Enforcement::Required {
            return self.kernel_standing(host);
        }
        let fresh = |gw: &Gateway| {
            gw.kernel_fact(host)
                .is_some_and(|f| f.learnt.elapsed() < KERNEL_FRESH)
        };
        if !fresh(self)
            && let Some(lock) = self.probing.get(host)
        {
            let _probe = lock.lock().await;
            // Someone else's probe may have answered while this one waited,
            // here or in another process sharing the store.
            if !fresh(self) && !self.recall_kernel(host).await {
                // The kernel question, not a whole check: it loads no
                // policy and probes nothing, so a proposal can afford it.
                let known = self.executor.kernel(host).await.map(|r| r.enforcement);
                self.keep_kernel(host, &known).await;
                self.learn_kernel(host, known);
            }
        }
        self.kernel_standing(host)
    }

    /// Learns what `host`'s guard said of its kernel wall less than
    /// [`KERNEL_FRESH`] ago, as another process kept it in the store;
    /// whether there was such an answer. A `jarvis` command lives for one
    /// action, so without this each would ask the host first.
    async fn recall_kernel(&self, host: &HostName) -> bool {
        let Ok(Some(kept)) = self.store.host_kernel(host.as_str()).await else {
            return false;
        };
        if self.executor.connection_id(host).as_ref() != Some(&kept.connection) {
            return false;
        }
        let now = jarvis_store::OffsetDateTime::now_utc();
        let (Some(age), Ok(report)) = (
            fresh_for(&kept.learnt_at, now),
            serde_json::from_str(&kept.report),
        ) else {
            return false;
        };
        let Some(learnt) = Instant::now().checked_sub(age) else {
            return false;
        };
        self.remember_kernel(
            host,
            KernelFact {
                known: Ok(report),
                learnt_at: kept.learnt_at,
                learnt,
            },
        );
        true
    }

    /// Keeps a host's answer about its kernel wall in the store for other
    /// processes ([`Gateway::recall_kernel`]). Only an answer: a host that
    /// could not be asked is asked again by the next one. A cache that
    /// cannot be written costs the next process a question, nothing more.
    async fn keep_kernel(&self, host: &HostName, known: &Result<KernelEnforcement, ExecError>) {
        let (Ok(report), Some(connection)) = (known, self.executor.connection_id(host)) else {
            return;
        };
        let Ok(json) = serde_json::to_string(report) else {
            return;
        };
        if let Err(e) = self
            .store
            .record_host_kernel(host.as_str(), &connection, &json)
            .await
        {
            tracing::warn!(host = %host, error = %e, "cannot keep a host's kernel report");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_policy::{Policy, Request};

    #[test]
    fn a_kept_kernel_report_is_fresh_only_within_its_window_and_never_from_the_future() {
        let now = jarvis_store::parse_time("2026-12-07T10:00:00Z").expect("time");
        let at = |t: &str| fresh_for(t, now);
        assert_eq!(at("2026-12-07T09:59:30Z"), Some(Duration::from_secs(30)));
        assert_eq!(at("2026-12-07T10:00:00Z"), Some(Duration::ZERO));
        assert_eq!(at("2026-12-07T09:58:00Z"), None, "120 s is stale");
        assert_eq!(at("2026-12-07T10:00:01Z"), None, "a clock set back");
        assert_eq!(at("yesterday"), None);
    }

    fn standing(enforcement: Enforcement, known: KernelKnown) -> KernelStanding {
        KernelStanding {
            host: HostName::parse("sandbox-nokernel").expect("name"),
            enforcement,
            known,
            learnt_at: None,
        }
    }

    fn reported(level: EnforcementLevel, abi: Option<u32>, missing: &[&str]) -> KernelKnown {
        KernelKnown::Reported(KernelEnforcement {
            level,
            landlock_abi: abi,
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    fn judged(command: &str) -> Judgement {
        Policy::shipped()
            .expect("the shipped policy loads")
            .judge(&Request::new(command))
    }

    const OFF: &str = "switched off by the host's forced command (--kernel off)";

    #[test]
    fn a_host_without_the_wall_holds_what_the_policy_allows_under_required() {
        let s = standing(
            Enforcement::Required,
            reported(EnforcementLevel::None, None, &[OFF]),
        );
        let mut j = judged("uptime");
        assert_eq!(j.decision, Decision::Allow, "{:?}", j.reasons);
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert_eq!(
            j.reasons[0],
            "`sandbox-nokernel` cannot enforce the kernel wall (none: switched off by the host's forced command (--kernel off)); under enforcement = \"required\" every action on it waits for a person"
        );
        assert_eq!(s.consequence(), "every action waits for a person");
        assert!(!s.unattended());
    }

    #[test]
    fn deny_stays_deny_and_a_pending_action_learns_why() {
        let s = standing(
            Enforcement::Required,
            reported(
                EnforcementLevel::Partial,
                Some(3),
                &["TCP connect and bind (Landlock ABI 4)"],
            ),
        );
        let mut j = judged("rm -rf /");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Deny);
        assert_eq!(j.reasons, before, "a denial needs no word about the kernel");
        let mut j = judged("systemctl restart nginx");
        assert_eq!(j.decision, Decision::Approve, "{:?}", j.reasons);
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert!(
            j.reasons.last().is_some_and(|r| r.contains(
                "enforces only part of the kernel wall (partial (Landlock ABI 3): missing TCP connect and bind (Landlock ABI 4))"
            )),
            "{:?}",
            j.reasons
        );
    }

    #[test]
    fn a_host_that_cannot_be_asked_holds_under_required_only() {
        let unknown = KernelKnown::Unreachable("cannot connect to `x`".into());
        let s = standing(Enforcement::Required, unknown.clone());
        let mut j = judged("uptime");
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Approve);
        assert!(
            j.reasons[0].contains("its guard could not be asked: cannot connect to `x`"),
            "{:?}",
            j.reasons
        );
        assert_eq!(s.level_word(), "unknown");
        // Best-effort: the policy decides, and a guess is no reason.
        let s = standing(Enforcement::BestEffort, unknown);
        let mut j = judged("uptime");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Allow);
        assert_eq!(j.reasons, before);
    }

    #[test]
    fn best_effort_runs_as_the_policy_says_and_says_what_is_missing() {
        let s = standing(
            Enforcement::BestEffort,
            reported(EnforcementLevel::None, None, &[OFF]),
        );
        let mut j = judged("uptime");
        s.apply(&mut j);
        assert_eq!(j.decision, Decision::Allow);
        assert!(
            j.reasons
                .last()
                .is_some_and(|r| r
                    .ends_with("under enforcement = \"best-effort\" it runs as the policy says")),
            "{:?}",
            j.reasons
        );
        assert!(s.unattended());
        assert_eq!(s.audit()["level"], "none");
        assert_eq!(s.audit()["enforcement"], "best-effort");
    }

    #[test]
    fn a_whole_wall_changes_nothing() {
        let s = standing(
            Enforcement::Required,
            reported(EnforcementLevel::Full, Some(7), &[]),
        );
        assert_eq!(s.level(), "full (Landlock ABI 7)");
        assert_eq!(s.consequence(), "unattended actions allowed");
        assert_eq!(s.reason(), None);
        let mut j = judged("uptime");
        let before = j.reasons.clone();
        s.apply(&mut j);
        assert_eq!((j.decision, j.reasons), (Decision::Allow, before));
    }
}
