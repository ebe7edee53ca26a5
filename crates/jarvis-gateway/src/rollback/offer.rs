//! What a person confirms before asking for a rollback, from the store
//! alone: what comes back target by target, what does not, how it is
//! approved, and the last rollback that stopped on later changes.

use jarvis_core::{ActionId, ActionKind, ActionState, HostName, Risk};
use jarvis_exec::snapshot::{Snapshot, TargetState, branch_words, short_commit};
use jarvis_store::{ActionRecord, SnapshotRecord};

use super::restorable::Restorable;
use super::words::target_words;
use crate::pipeline::{Gateway, GatewayError};

const ELSEWHERE: &str =
    "anything the command did outside these: other files, services, or other machines it reached";

impl Gateway {
    /// What a rollback of action `id` would put back and what it would
    /// not, from the store alone (the host is not asked): what a person
    /// confirms before asking for it, with the last rollback of it that
    /// stopped on later changes, if that is the latest.
    ///
    /// # Errors
    /// [`GatewayError::NoRollback`] when it cannot be rolled back (no
    /// snapshot, pruned, not finished, already rolled back), or a store
    /// error.
    pub async fn rollback_offer(&self, id: ActionId) -> Result<RollbackOffer, GatewayError> {
        let original = self.store().action(id).await?;
        let Restorable {
            host,
            target,
            after,
            ..
        } = self.restorable(&original).await?;
        let taken_at = self
            .store()
            .snapshot(id)
            .await?
            .map(|s| s.taken_at)
            .unwrap_or_default();
        let mut not_back = target.not_captured.clone();
        if original.kind == ActionKind::Command {
            not_back.push(ELSEWHERE.into());
        }
        let nothing_to_undo = after.as_ref().is_some_and(|a| target.nothing_to_undo(a));
        let of_rollback = original.kind == ActionKind::Rollback;
        let approval = self.rollback_approval_words(&original, false, of_rollback);
        let force_approval = self.rollback_approval_words(&original, true, of_rollback);
        let rollbacks = self.store().rollbacks_of(id).await?;
        let in_progress = rollbacks
            .iter()
            .find(|r| {
                matches!(
                    r.state,
                    ActionState::PendingApproval | ActionState::Approved | ActionState::Running
                )
            })
            .cloned();
        let stopped = match rollbacks.into_iter().last() {
            Some(rb) if rb.state == ActionState::Denied => {
                let events = self
                    .store()
                    .events(&jarvis_store::AuditFilter {
                        action_id: Some(rb.id.to_string()),
                        kind: Some("action.denied".into()),
                        limit: Some(1),
                        ..jarvis_store::AuditFilter::default()
                    })
                    .await?;
                let payload: serde_json::Value = events
                    .first()
                    .and_then(|e| serde_json::from_str(&e.payload).ok())
                    .unwrap_or_default();
                let changed: Vec<(String, String)> = payload["stopped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                        (text("target"), text("changed"))
                    })
                    .collect();
                (!changed.is_empty()).then(|| StoppedRollback {
                    message: rb.reasons.first().cloned().unwrap_or_default(),
                    rollback: rb,
                    changed,
                })
            }
            _ => None,
        };
        Ok(RollbackOffer {
            original,
            host,
            taken_at,
            target,
            after,
            not_back,
            nothing_to_undo,
            approval,
            force_approval,
            stopped,
            in_progress,
        })
    }

    /// How a rollback of `original` (forced or not) is approved, as the
    /// person asking for it reads it before confirming.
    fn rollback_approval_words(
        &self,
        original: &ActionRecord,
        force: bool,
        of_rollback: bool,
    ) -> String {
        let (rule, request_counts) = self.config().approvals.for_rollback(
            self.config().rollback_approval,
            force,
            of_rollback,
        );
        if request_counts {
            return "It runs as soon as you confirm: one approver is enough, and asking for it counts as that approval.".into();
        }
        let needed = rule.needed(original.risk.unwrap_or(Risk::MAX));
        let who = match (needed, rule.self_approval) {
            (1, true) => "one approver (you may approve it yourself)".to_owned(),
            (1, false) => "one approver other than you".to_owned(),
            (n, true) => format!("{n} approvers"),
            (n, false) => format!("{n} approvers other than you"),
        };
        format!(
            "It then waits for approval by {who}, like any action at this risk, and runs once approved."
        )
    }
}

/// Whether a stored snapshot and the state recorded right after its action
/// say the action changed nothing a rollback would put back. `false` when
/// either cannot be read or the after-state was not recorded: then nobody
/// can say.
pub fn changed_nothing(record: &SnapshotRecord) -> bool {
    let Ok(target) = serde_json::from_value::<Snapshot>(record.manifest.clone()) else {
        return false;
    };
    let Some(Ok(after)) = record.after.clone().map(serde_json::from_value::<Snapshot>) else {
        return false;
    };
    target.nothing_to_undo(&after)
}

/// One target of a snapshot, and what a rollback makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetBack {
    /// The target: `container grafana`.
    pub subject: String,
    /// The target and the state it goes back to: `git repository /srv/app
    /// back to e59951b (branch main), uncommitted files included`.
    pub back: String,
    /// What the action changed in it, in words; empty when the action did
    /// not change it (a rollback leaves it as it is), `None` when the
    /// state after the action was not recorded.
    pub changed: Option<Vec<String>>,
}

impl TargetBack {
    /// Whether the action left it as the snapshot found it.
    pub fn unchanged(&self) -> bool {
        self.changed.as_ref().is_some_and(Vec::is_empty)
    }
}

/// What comes back, one entry per target of `snapshot` (taken at `when`,
/// already in words), in the order a rollback restores them, each compared
/// with `after`, the state right after the action.
pub fn comes_back(snapshot: &Snapshot, after: Option<&Snapshot>, when: &str) -> Vec<TargetBack> {
    let compared = after.map(|a| snapshot.compare(a)).unwrap_or_default();
    let changed = |kind: &str, name: &str| {
        compared
            .iter()
            .find(|c| c.kind == kind && c.name == name)
            .and_then(|c| c.changed.clone())
    };
    let gone = |subject: &str| format!("{subject} removed (it did not exist before the action)");
    snapshot
        .in_restore_order()
        .into_iter()
        .map(|t| {
            let subject = target_words(t.kind(), t.name());
            let back = match t {
                TargetState::Repo(r) => format!(
                    "{subject} back to {} ({}), uncommitted files included",
                    short_commit(r.head.as_deref()),
                    branch_words(r.branch.as_deref())
                ),
                TargetState::File(f) if f.exists => {
                    format!("{subject} back to its content of {when}")
                }
                TargetState::Volume(v) if v.exists => {
                    format!("{subject} back to its files of {when}")
                }
                TargetState::Container(c) if c.exists => format!(
                    "{subject} back to its settings and files of {when}, {} (it is recreated from its snapshot, so it restarts)",
                    if c.running { "running" } else { "stopped" }
                ),
                TargetState::File(_) | TargetState::Volume(_) | TargetState::Container(_) => {
                    gone(&subject)
                }
            };
            TargetBack {
                back,
                changed: changed(t.kind(), t.name()),
                subject,
            }
        })
        .collect()
}

/// What a rollback of an action would put back and what it would not;
/// see [`Gateway::rollback_offer`].
#[derive(Debug, Clone)]
pub struct RollbackOffer {
    /// The action it would undo.
    pub original: ActionRecord,
    /// Its host.
    pub host: HostName,
    /// When its snapshot was recorded.
    pub taken_at: String,
    /// The snapshot a rollback goes back to.
    pub target: Snapshot,
    /// The state right after the action, when it was recorded.
    pub after: Option<Snapshot>,
    /// What does not come back, in words.
    pub not_back: Vec<String>,
    /// Whether the action changed nothing a rollback would put back.
    pub nothing_to_undo: bool,
    /// How a rollback is approved, in words.
    pub approval: String,
    /// How a forced rollback is approved, in words.
    pub force_approval: String,
    /// The latest rollback of it, when it stopped on later changes.
    pub stopped: Option<StoppedRollback>,
    /// A rollback of it that waits for approval, is approved or runs.
    pub in_progress: Option<ActionRecord>,
}

impl RollbackOffer {
    /// What comes back, with the snapshot's time as `when` gives it.
    pub fn comes_back(&self, when: &str) -> Vec<TargetBack> {
        comes_back(&self.target, self.after.as_ref(), when)
    }
}

/// A rollback refused because targets changed since its action.
#[derive(Debug, Clone)]
pub struct StoppedRollback {
    /// The refused rollback.
    pub rollback: ActionRecord,
    /// "Stopped before changing anything: …".
    pub message: String,
    /// Each changed target and what changed in it, in words.
    pub changed: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_exec::snapshot::{ContainerState, RepoState};
    use serde_json::json;

    #[test]
    fn what_comes_back_names_each_target_and_the_state_it_returns_to() {
        let repo = RepoState {
            path: "/srv/app".into(),
            head: Some("e59951b0c0ffee".into()),
            branch: Some("refs/heads/main".into()),
            index_tree: "i1".into(),
            worktree_tree: "w1".into(),
            commit: Some("k".into()),
            kept_ref: Some("refs/jarvis/snapshots/x".into()),
        };
        let grafana = ContainerState {
            name: "grafana".into(),
            exists: true,
            id: Some("c1".into()),
            running: true,
            fingerprint: "f".into(),
            changes: "d".into(),
            volumes: Vec::new(),
            image: None,
            snapshot_image: Some("jarvis-snapshots:x.c1".into()),
            snapshot_image_id: None,
            inspect: None,
        };
        let created = ContainerState::absent("worker");
        let before = Snapshot::new(ActionId::new(), true)
            .with(grafana.clone())
            .with(created.clone())
            .with(repo.clone());
        let after = Snapshot::new(ActionId::new(), false)
            .with(RepoState {
                head: Some("1a2b3c4d".into()),
                ..repo
            })
            .with(ContainerState {
                snapshot_image: None,
                ..grafana
            })
            .with(ContainerState {
                exists: true,
                id: Some("c2".into()),
                running: true,
                ..created
            });
        let back = comes_back(&before, Some(&after), "2025-11-23 01:52:59 UTC");
        assert_eq!(
            back[0].back,
            "git repository /srv/app back to e59951b (branch main), uncommitted files included"
        );
        assert_eq!(
            back[0].changed,
            Some(vec!["HEAD moved from e59951b to 1a2b3c4".to_owned()])
        );
        assert_eq!(
            back[1].back,
            "container grafana back to its settings and files of 2025-11-23 01:52:59 UTC, running (it is recreated from its snapshot, so it restarts)"
        );
        assert!(back[1].unchanged(), "the action did not touch grafana");
        assert_eq!(
            back[2].back,
            "container worker removed (it did not exist before the action)"
        );
        assert_eq!(back[2].changed, Some(vec!["it was created".to_owned()]));
        // Without the after-state nobody can say what the action changed.
        assert!(
            comes_back(&before, None, "then")
                .iter()
                .all(|t| t.changed.is_none())
        );
    }

    #[test]
    fn a_stored_snapshot_and_after_state_say_whether_anything_changed() {
        let repo = RepoState {
            path: "/srv/app".into(),
            head: Some("e59951b0".into()),
            branch: None,
            index_tree: "i1".into(),
            worktree_tree: "w1".into(),
            commit: Some("k".into()),
            kept_ref: None,
        };
        let snap = Snapshot::new(ActionId::new(), true).with(repo.clone());
        let mut record = SnapshotRecord {
            action_id: ActionId::new(),
            host: "nas".into(),
            taken_at: "2025-11-23T01:52:59Z".into(),
            manifest: json!(snap),
            after: Some(json!(Snapshot::new(ActionId::new(), false).with(
                RepoState {
                    commit: None,
                    ..repo.clone()
                }
            ))),
            pruned_at: None,
        };
        assert!(changed_nothing(&record));
        record.after = Some(json!(Snapshot::new(ActionId::new(), false).with(
            RepoState {
                worktree_tree: "w2".into(),
                ..repo
            }
        )));
        assert!(!changed_nothing(&record));
        record.after = None;
        assert!(!changed_nothing(&record), "unknown is not nothing");
    }
}
