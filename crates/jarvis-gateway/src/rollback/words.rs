//! A rollback's report in plain words: each target named, what happened
//! to it, and what the rollback came to, for the run's output, the CLI and
//! the web UI.

use jarvis_core::ActionState;
use jarvis_exec::snapshot::{RestoreReport, RestoredTarget, TargetOutcome};

use super::RolledBack;

/// A target named in words, as a report or a snapshot names it:
/// `git repository /srv/app`, `container grafana`.
pub fn target_words(kind: &str, name: &str) -> String {
    match kind {
        "repo" => format!("git repository {name}"),
        "container" => format!("container {name}"),
        "volume" => format!("volume {name}"),
        "file" => format!("file {name}"),
        other => format!("{other} {name}"),
    }
}

/// Whether a rollback's report stops it: a target changed since the
/// action.
pub fn stopped_by_changes(report: &RestoreReport) -> bool {
    report
        .targets
        .iter()
        .any(|t| t.outcome == TargetOutcome::Changed)
}

/// Each target that changed since the action, in words, and what changed.
pub(super) fn changed_since(report: &RestoreReport) -> Vec<(String, String)> {
    report
        .targets
        .iter()
        .filter(|t| t.outcome == TargetOutcome::Changed)
        .map(|t| (target_words(&t.kind, &t.name), what_changed(t).to_owned()))
        .collect()
}

/// What changed in a target since the action, as the host said it.
fn what_changed(t: &RestoredTarget) -> &str {
    // Guards before the check-only request prefixed their words.
    t.detail
        .strip_prefix("changed after the action: ")
        .unwrap_or(&t.detail)
}

/// "Stopped before changing anything: container grafana changed since this
/// action ran (files of grafana changed)", for a report that stopped on
/// later changes.
pub fn stopped_words(report: &RestoreReport) -> String {
    let parts: Vec<String> = changed_since(report)
        .into_iter()
        .map(|(target, what)| {
            if what.is_empty() {
                format!("{target} changed since this action ran")
            } else {
                format!("{target} changed since this action ran ({what})")
            }
        })
        .collect();
    format!("Stopped before changing anything: {}", parts.join("; "))
}

/// The report as lines for the run's output and the CLI: one per target,
/// in plain words.
pub fn describe(report: &RestoreReport) -> String {
    let stopped = report.before.is_none();
    let mut out = String::new();
    for t in &report.targets {
        let target = target_words(&t.kind, &t.name);
        let line = match t.outcome {
            TargetOutcome::AlreadyRestored => {
                format!("{target}: already as the snapshot found it, left alone")
            }
            TargetOutcome::Restored => {
                format!("{target}: put back as the snapshot found it, and checked")
            }
            TargetOutcome::Changed => format!(
                "{target}: changed since this action ran ({}), left alone",
                what_changed(t)
            ),
            TargetOutcome::Failed => format!("{target}: could not be put back: {}", t.detail),
            TargetOutcome::Skipped if stopped => format!("{target}: not touched"),
            TargetOutcome::Skipped => {
                format!("{target}: not tried, because an earlier one could not be put back")
            }
            // In a check that stops on another target, nothing is put back.
            TargetOutcome::Due if stopped_by_changes(report) => format!("{target}: not touched"),
            TargetOutcome::Due => {
                format!("{target}: as the action left it, a rollback puts it back")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// What a finished rollback came to, in one or two sentences: the flash
/// after it and the CLI's last line. `rb` is the rollback's id, for the
/// way to undo it.
pub fn outcome_words(done: &RolledBack, error: Option<&str>) -> String {
    let rb = &done.rollback;
    let Some(report) = &done.report else {
        return match rb.state {
            ActionState::PendingApproval => {
                "The rollback waits for approval; it runs once approved.".into()
            }
            ActionState::Proposed
            | ActionState::Denied
            | ActionState::Approved
            | ActionState::Rejected
            | ActionState::Expired
            | ActionState::Running
            | ActionState::Succeeded
            | ActionState::Failed
            | ActionState::TimedOut
            | ActionState::Interrupted
            | ActionState::RolledBack => format!(
                "The rollback failed before the host answered: {}",
                error.unwrap_or("no report came back")
            ),
        };
    };
    let named = |outcome: TargetOutcome| -> Vec<String> {
        report
            .targets
            .iter()
            .filter(|t| t.outcome == outcome)
            .map(|t| target_words(&t.kind, &t.name))
            .collect()
    };
    match rb.state {
        ActionState::Denied => stopped_words(report),
        ActionState::Succeeded => {
            let restored = named(TargetOutcome::Restored);
            let already = named(TargetOutcome::AlreadyRestored);
            let one = |list: &[String], a: &'static str, many: &'static str| {
                if list.len() == 1 { a } else { many }
            };
            let mut text = if restored.is_empty() {
                format!(
                    "Rolled back: {} {} already as the snapshot found {}, so nothing was changed.",
                    and_list(&already),
                    one(&already, "was", "were"),
                    one(&already, "it", "them"),
                )
            } else if already.is_empty() {
                format!(
                    "Rolled back: {} {} back as the snapshot found {}.",
                    and_list(&restored),
                    one(&restored, "is", "are"),
                    one(&restored, "it", "them"),
                )
            } else {
                format!(
                    "Rolled back: {} {} back as the snapshot found {} ({} already {}).",
                    and_list(&restored),
                    one(&restored, "is", "are"),
                    one(&restored, "it", "them"),
                    and_list(&already),
                    one(&already, "was", "were"),
                )
            };
            text.push_str(" What it replaced is kept in the rollback's own snapshot, so the rollback can be undone too.");
            text
        }
        ActionState::Proposed
        | ActionState::PendingApproval
        | ActionState::Approved
        | ActionState::Rejected
        | ActionState::Expired
        | ActionState::Running
        | ActionState::Failed
        | ActionState::TimedOut
        | ActionState::Interrupted
        | ActionState::RolledBack
            if report.before.is_none() =>
        {
            stopped_words(report)
        }
        ActionState::Proposed
        | ActionState::PendingApproval
        | ActionState::Approved
        | ActionState::Rejected
        | ActionState::Expired
        | ActionState::Running
        | ActionState::Failed
        | ActionState::TimedOut
        | ActionState::Interrupted
        | ActionState::RolledBack => stopped_why(report),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => "nothing".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

pub(super) fn stopped_why(report: &RestoreReport) -> String {
    if report.before.is_none() {
        format!(
            "{}. Force the rollback to put them back anyway (it snapshots the present first).",
            stopped_words(report)
        )
    } else {
        let failed: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Failed)
            .map(|t| {
                format!(
                    "{} could not be put back ({})",
                    target_words(&t.kind, &t.name),
                    t.detail
                )
            })
            .collect();
        let restored: Vec<String> = report
            .targets
            .iter()
            .filter(|t| t.outcome == TargetOutcome::Restored)
            .map(|t| target_words(&t.kind, &t.name))
            .collect();
        let mut text = format!("The rollback failed partway: {}.", failed.join("; "));
        if !restored.is_empty() {
            text.push_str(&format!(" {} was put back.", and_list(&restored)));
        }
        text.push_str(
            " Run the rollback again to finish: what was put back is recognised and left alone.",
        );
        text
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_core::{ActionId, ActionKind};
    use jarvis_exec::snapshot::Snapshot;
    use jarvis_store::ActionRecord;

    fn target(kind: &str, name: &str, outcome: TargetOutcome, detail: &str) -> RestoredTarget {
        RestoredTarget {
            kind: kind.into(),
            name: name.into(),
            outcome,
            detail: detail.into(),
        }
    }

    fn report(targets: Vec<RestoredTarget>, before: bool) -> RestoreReport {
        RestoreReport {
            before: before.then(|| Snapshot::new(ActionId::new(), false)),
            after: None,
            complete: targets.iter().all(|t| {
                matches!(
                    t.outcome,
                    TargetOutcome::Restored | TargetOutcome::AlreadyRestored
                )
            }),
            targets,
            duration_ms: 5,
        }
    }

    fn record(state: ActionState) -> ActionRecord {
        ActionRecord {
            id: ActionId::new(),
            created_at: "2025-11-23T01:52:59Z".into(),
            updated_at: "2025-11-23T01:52:59Z".into(),
            requester: "local:alice".into(),
            accountable: "local:alice".into(),
            host: Some(jarvis_core::HostName::parse("nas").expect("a host name")),
            command: "rollback x".into(),
            cwd: None,
            timeout_secs: None,
            state,
            decision: None,
            risk: None,
            reasons: Vec::new(),
            version: 1,
            kind: ActionKind::Rollback,
            edit: None,
            rollback_of: None,
            plan: None,
            preview: None,
            pending_since: None,
            purpose: None,
        }
    }

    #[test]
    fn a_drift_refusal_says_it_stopped_and_what_changed() {
        let r = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Skipped, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Changed,
                    "settings of grafana changed",
                ),
            ],
            false,
        );
        assert!(stopped_by_changes(&r));
        assert_eq!(
            stopped_words(&r),
            "Stopped before changing anything: container grafana changed since this action ran (settings of grafana changed)"
        );
        // Old guards' prefix is not repeated.
        let old = report(
            vec![target(
                "repo",
                "/srv/app",
                TargetOutcome::Changed,
                "changed after the action: HEAD moved a → b",
            )],
            false,
        );
        assert_eq!(
            stopped_words(&old),
            "Stopped before changing anything: git repository /srv/app changed since this action ran (HEAD moved a → b)"
        );
        let checked = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Due, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Changed,
                    "files changed",
                ),
            ],
            false,
        );
        assert!(describe(&checked).starts_with("git repository /srv/app: not touched\n"));
        let lines = describe(&r);
        assert!(
            lines.contains("git repository /srv/app: not touched\n"),
            "{lines}"
        );
        assert!(
            lines.contains("container grafana: changed since this action ran (settings of grafana changed), left alone"),
            "{lines}"
        );
        let done = RolledBack {
            rollback: record(ActionState::Denied),
            report: Some(r),
        };
        assert!(
            outcome_words(&done, None)
                .starts_with("Stopped before changing anything: container grafana")
        );
    }

    #[test]
    fn a_finished_rollback_says_what_is_back_in_plain_words() {
        let r = report(
            vec![
                target(
                    "repo",
                    "/srv/app",
                    TargetOutcome::Restored,
                    "restored HEAD 1234567 (tree abc)",
                ),
                target("container", "grafana", TargetOutcome::AlreadyRestored, ""),
            ],
            true,
        );
        let done = RolledBack {
            rollback: record(ActionState::Succeeded),
            report: Some(r.clone()),
        };
        let words = outcome_words(&done, None);
        assert_eq!(
            words,
            "Rolled back: git repository /srv/app is back as the snapshot found it (container grafana already was). What it replaced is kept in the rollback's own snapshot, so the rollback can be undone too."
        );
        for internal in ["tree", "fingerprint", "FAILED", "restored HEAD"] {
            assert!(!words.contains(internal), "{internal} in {words}");
        }
        let lines = describe(&r);
        assert_eq!(
            lines,
            "git repository /srv/app: put back as the snapshot found it, and checked\ncontainer grafana: already as the snapshot found it, left alone\n"
        );
    }

    #[test]
    fn a_rollback_that_failed_partway_says_how_to_finish() {
        let r = report(
            vec![
                target("repo", "/srv/app", TargetOutcome::Restored, ""),
                target(
                    "container",
                    "grafana",
                    TargetOutcome::Failed,
                    "snapshot image jarvis-snapshots:x of grafana is gone or was replaced",
                ),
                target("volume", "data", TargetOutcome::Skipped, ""),
            ],
            true,
        );
        let done = RolledBack {
            rollback: record(ActionState::Failed),
            report: Some(r.clone()),
        };
        let words = outcome_words(&done, None);
        assert!(
            words.starts_with("The rollback failed partway: container grafana could not be put back (snapshot image"),
            "{words}"
        );
        assert!(
            words.contains("git repository /srv/app was put back"),
            "{words}"
        );
        assert!(
            words.contains("Run the rollback again to finish"),
            "{words}"
        );
        assert!(
            describe(&r)
                .contains("volume data: not tried, because an earlier one could not be put back"),
        );
        let unreachable = RolledBack {
            rollback: record(ActionState::Failed),
            report: None,
        };
        assert_eq!(
            outcome_words(&unreachable, Some("ssh: connection refused")),
            "The rollback failed before the host answered: ssh: connection refused"
        );
    }

    #[test]
    fn targets_are_named_in_words() {
        assert_eq!(target_words("repo", "/srv/app"), "git repository /srv/app");
        assert_eq!(target_words("file", "/etc/x"), "file /etc/x");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
