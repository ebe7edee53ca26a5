//! Snapshots, rollback, previews and file edits: what the gateway asks of
//! the host guard and what the guard hands back. No IO.
//!
//! A [`SnapshotPlan`] is decided before approval, from the command's scope
//! and the host config, and an approval binds to it. The guard turns a plan
//! into a [`Snapshot`]: with `keep`, something to restore from (a git ref,
//! `docker commit` images, volume archives, file copies); without, only
//! fingerprints of the state, which is what a rollback compares against to
//! notice that a target changed after the action.

mod plan;
mod request;
mod state;

pub use plan::{ComposeTarget, NoSnapshot, SnapshotPlan, SnapshotSettings};
pub use request::{
    DropReport, DropRequest, EditRequest, FileChange, FileEdit, PreviewKind, PreviewReport,
    PreviewRequest, RestoreReport, RestoreRequest, RestoredTarget, SnapshotRequest, TargetOutcome,
};
pub use state::{
    ContainerState, FileState, RepoState, Snapshot, TargetComparison, VolumeState, branch_words,
    short_commit,
};

/// The ref namespace that keeps snapshot commits alive through `git gc`.
pub const GIT_REF_PREFIX: &str = "refs/jarvis/snapshots/";

/// The image repository of container snapshots; the tag is
/// `<action id>.<first 12 hex digits of the container id>`.
pub const IMAGE_REPOSITORY: &str = "jarvis-snapshots";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_says_why_there_is_no_snapshot() {
        let plan = SnapshotPlan {
            none: Some(NoSnapshot::Unscoped {
                reasons: vec!["`systemctl restart nginx` changes a service".into()],
            }),
            ..SnapshotPlan::default()
        };
        assert!(plan.is_empty());
        assert!(
            plan.summary()
                .starts_with("no snapshot: rollback will not be possible")
        );
    }

    #[test]
    fn a_plan_lists_targets_and_what_it_misses() {
        let plan = SnapshotPlan {
            repos: vec!["/srv/app".into()],
            containers: vec!["web".into()],
            not_captured: vec!["volume data is not marked stateful".into()],
            ..SnapshotPlan::default()
        };
        let s = plan.summary();
        assert!(s.contains("git repository at /srv/app"), "{s}");
        assert!(s.contains("container web"), "{s}");
        assert!(s.contains("not captured: volume data"), "{s}");
    }

    fn repo(head: &str, tree: &str) -> RepoState {
        RepoState {
            path: "/srv/app".into(),
            head: Some(head.into()),
            branch: Some("refs/heads/main".into()),
            index_tree: tree.into(),
            worktree_tree: tree.into(),
            commit: None,
            kept_ref: None,
        }
    }

    fn container(id: &str, changes: &str, running: bool) -> ContainerState {
        ContainerState {
            name: "grafana".into(),
            exists: true,
            id: Some(id.into()),
            running,
            fingerprint: "settings".into(),
            changes: changes.into(),
            volumes: Vec::new(),
            image: Some("grafana/grafana".into()),
            snapshot_image: None,
            snapshot_image_id: None,
            inspect: None,
        }
    }

    fn snapshot(repos: Vec<RepoState>, containers: Vec<ContainerState>) -> Snapshot {
        Snapshot {
            action_id: "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f".into(),
            kept: true,
            repos,
            containers,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_restart_that_changed_nothing_has_nothing_to_undo() {
        // `docker restart`: the same container, settings and files, still
        // running. A kept snapshot carries its image and settings, which
        // the comparison leaves out.
        let mut kept = container("c1", "d1", true);
        kept.snapshot_image = Some("jarvis-snapshots:x.c1".into());
        kept.inspect = Some(serde_json::json!({"Id": "c1"}));
        let before = snapshot(vec![repo("e59951b0", "t1")], vec![kept]);
        let after = snapshot(
            vec![repo("e59951b0", "t1")],
            vec![container("c1", "d1", true)],
        );
        assert!(before.nothing_to_undo(&after));
        assert!(
            before
                .compare(&after)
                .iter()
                .all(TargetComparison::unchanged)
        );
    }

    #[test]
    fn each_kind_of_change_is_something_to_undo_and_says_what() {
        let before = snapshot(
            vec![repo("e59951b0", "t1")],
            vec![container("c1", "d1", true)],
        );
        let cases: [(Snapshot, &str, &str); 5] = [
            (
                snapshot(
                    vec![repo("1a2b3c4d", "t2")],
                    vec![container("c1", "d1", true)],
                ),
                "repo",
                "HEAD moved from e59951b to 1a2b3c4",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c1", "d2", true)],
                ),
                "container",
                "files inside it changed",
            ),
            (
                // A stop changes nothing but whether it runs: a rollback
                // starts it again, so there is something to undo.
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c1", "d1", false)],
                ),
                "container",
                "it was stopped",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![container("c2", "d1", true)],
                ),
                "container",
                "it was replaced by another container of the same name",
            ),
            (
                snapshot(
                    vec![repo("e59951b0", "t1")],
                    vec![ContainerState {
                        exists: false,
                        id: None,
                        ..container("c1", "", false)
                    }],
                ),
                "container",
                "it was removed",
            ),
        ];
        for (after, kind, words) in cases {
            assert!(!before.nothing_to_undo(&after), "{words}");
            let changed: Vec<TargetComparison> = before
                .compare(&after)
                .into_iter()
                .filter(|c| !c.unchanged())
                .collect();
            assert_eq!(changed.len(), 1, "{words}: {changed:?}");
            assert_eq!(changed[0].kind, kind);
            assert!(
                changed[0]
                    .changed
                    .as_ref()
                    .is_some_and(|c| c.contains(&words.to_owned())),
                "{words}: {changed:?}"
            );
        }
    }

    #[test]
    fn a_target_missing_from_the_later_state_is_not_nothing_to_undo() {
        let before = snapshot(vec![repo("e59951b0", "t1")], Vec::new());
        let after = snapshot(Vec::new(), Vec::new());
        let compared = before.compare(&after);
        assert_eq!(compared[0].changed, None);
        assert!(!before.nothing_to_undo(&after));
    }

    #[test]
    fn a_container_recreated_from_its_snapshot_counts_as_restored() {
        let mut target = container("c1", "d1", true);
        target.snapshot_image = Some("jarvis-snapshots:x.c1".into());
        let mut recreated = container("c9", "written-by-its-process", true);
        recreated.image = target.snapshot_image.clone();
        assert!(recreated.is_as_captured(&target));
        // Stopped, it is not as captured: a rollback starts it.
        recreated.running = false;
        assert!(!recreated.is_as_captured(&target));
        // A process that exited is not someone's later change.
        let after = container("c1", "d2", true);
        let mut exited = after.clone();
        exited.running = false;
        assert!(exited.unchanged_since(&after));
    }

    #[test]
    fn files_and_volumes_compare_content_and_existence() {
        let file = FileState {
            path: "/etc/app.conf".into(),
            exists: true,
            sha256: Some("a".into()),
            mode: Some(0o644),
            backup: Some("/var/lib/jarvis/x".into()),
        };
        let copy = FileState {
            backup: None,
            ..file.clone()
        };
        assert!(copy.same_as(&file));
        let edited = FileState {
            sha256: Some("b".into()),
            ..copy.clone()
        };
        assert_eq!(file.difference(&edited), vec!["its content changed"]);
        let gone = FileState {
            exists: false,
            sha256: None,
            mode: None,
            ..copy
        };
        assert_eq!(file.difference(&gone), vec!["it was deleted"]);
        let volume = VolumeState {
            name: "data".into(),
            exists: true,
            fingerprint: "f1".into(),
            archive: Some("/var/lib/jarvis/v".into()),
            bytes: 10,
        };
        let same = VolumeState {
            archive: None,
            bytes: 0,
            ..volume.clone()
        };
        assert!(same.same_as(&volume));
        let changed = VolumeState {
            fingerprint: "f2".into(),
            ..same
        };
        assert_eq!(volume.difference(&changed), vec!["files in it changed"]);
    }

    #[test]
    fn a_check_only_request_reads_as_before_for_old_guards() {
        // Without check_only the request is what guards before it read.
        let request = RestoreRequest {
            action_id: "x".into(),
            target: Snapshot::default(),
            after: None,
            force: false,
            check_only: false,
            volume_image: None,
        };
        let text = serde_json::to_string(&request).unwrap_or_default();
        assert!(!text.contains("check_only"), "{text}");
        let checked = RestoreRequest {
            check_only: true,
            ..request
        };
        let text = serde_json::to_string(&checked).unwrap_or_default();
        let back: RestoreRequest = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(back.check_only);
    }

    #[test]
    fn plans_round_trip_and_reject_unknown_fields() {
        let plan = SnapshotPlan {
            compose: vec![ComposeTarget {
                project: Some("demo".into()),
                dir: None,
            }],
            ..SnapshotPlan::default()
        };
        let text = serde_json::to_string(&plan).unwrap_or_default();
        let back: SnapshotPlan = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, plan);
        assert!(serde_json::from_str::<SnapshotPlan>(r#"{"repo":["/x"]}"#).is_err());
    }
}
