//! Snapshots, rollback, previews and file edits: what the gateway asks of
//! the host guard and what the guard hands back. No IO.
//!
//! A [`SnapshotPlan`] is decided before approval, from the command's scope
//! and the host config, and an approval binds to it. The guard turns a plan
//! into a [`Snapshot`]: with `keep`, something to restore from (a git ref,
//! `docker commit` images, volume archives, file copies); without, only
//! fingerprints of the state, which is what a rollback compares against to
//! notice that a target changed after the action.

mod manifest;
mod plan;
mod request;
mod state;

pub use jarvis_core::{
    ComposeTarget, FileChange, FileEdit, NoSnapshot, PlanTarget, PreviewBasis, PreviewReport,
    SnapshotPlan,
};
pub use manifest::{Captured, Snapshot, TargetComparison, TargetState};
pub use plan::{SnapshotSettings, plan_for_command, plan_for_edit};
pub use request::{
    DropReport, DropRequest, EditRequest, PreviewKind, PreviewRequest, RestoreReport,
    RestoreRequest, RestoredTarget, SnapshotRequest, TargetOutcome,
};
pub use state::{ContainerState, FileState, RepoState, VolumeState, branch_words, short_commit};

/// The ref namespace that keeps snapshot commits alive through `git gc`.
pub const GIT_REF_PREFIX: &str = "refs/jarvis/snapshots/";

/// The image repository of container snapshots; the tag is
/// `<action id>.<first 12 hex digits of the container id>`.
pub const IMAGE_REPOSITORY: &str = "jarvis-snapshots";

#[cfg(test)]
mod tests {
    use super::*;
    use jarvis_core::ActionId;

    /// The id in the stored manifests below, as the gateway made it.
    fn stored_id() -> ActionId {
        "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f"
            .parse()
            .expect("a UUID v7")
    }

    #[test]
    fn an_empty_plan_says_why_there_is_no_snapshot() {
        let mut plan = SnapshotPlan::default();
        plan.none = Some(NoSnapshot::Unscoped {
            reasons: vec!["`systemctl restart nginx` changes a service".into()],
        });
        assert!(plan.is_empty());
        assert!(
            plan.summary()
                .starts_with("no snapshot: rollback will not be possible")
        );
    }

    #[test]
    fn a_plan_lists_targets_and_what_it_misses() {
        let mut plan = SnapshotPlan::of([
            PlanTarget::Container("web".into()),
            PlanTarget::Repo("/srv/app".into()),
        ]);
        plan.not_captured = vec!["volume data is not marked stateful".into()];
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
        let mut snap = Snapshot::new(stored_id(), true);
        for c in containers {
            snap.push(c);
        }
        for r in repos {
            snap.push(r);
        }
        snap
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
            action_id: ActionId::new(),
            target: Snapshot::new(stored_id(), true),
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
        let plan = SnapshotPlan::of([PlanTarget::Compose(ComposeTarget {
            project: Some("demo".into()),
            dir: None,
        })]);
        let text = serde_json::to_string(&plan).unwrap_or_default();
        let back: SnapshotPlan = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, plan);
        assert!(serde_json::from_str::<SnapshotPlan>(r#"{"repo":["/x"]}"#).is_err());
    }

    /// The grouped shapes plans and manifests had before they were lists,
    /// derived as they were: what stored rows and installed guards hold.
    mod grouped {
        use serde::{Deserialize, Serialize};

        use super::super::{ComposeTarget, NoSnapshot};
        use super::super::{ContainerState, FileState, RepoState, VolumeState};

        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Plan {
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub repos: Vec<String>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub containers: Vec<String>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub compose: Vec<ComposeTarget>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub volumes: Vec<String>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub files: Vec<String>,
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub not_captured: Vec<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub none: Option<NoSnapshot>,
        }

        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Manifest {
            pub action_id: String,
            pub kept: bool,
            #[serde(default)]
            pub repos: Vec<RepoState>,
            #[serde(default)]
            pub containers: Vec<ContainerState>,
            #[serde(default)]
            pub volumes: Vec<VolumeState>,
            #[serde(default)]
            pub files: Vec<FileState>,
            #[serde(default)]
            pub not_captured: Vec<String>,
            pub duration_ms: u64,
        }
    }

    /// Stored plans, as the grouped shape wrote them.
    const STORED_PLANS: &[&str] = &[
        r#"{}"#,
        r#"{"none":{"kind":"read_only"}}"#,
        r#"{"none":{"kind":"unscoped","reasons":["`systemctl restart nginx` changes a service"]}}"#,
        r#"{"repos":["/srv/app"]}"#,
        r#"{"repos":["/srv/app","/srv/b"],"containers":["grafana","web"],"compose":[{"project":"demo"},{"dir":"/srv/stack"}],"volumes":["zeta","data"],"not_captured":["containers the command adds to a Compose project are not removed by a rollback","`systemctl` changes a service"]}"#,
        r#"{"volumes":["data"],"files":["/etc/app.conf","/etc/b.conf"]}"#,
    ];

    /// Stored manifests, as the grouped shape wrote them.
    const STORED_MANIFESTS: &[&str] = &[
        r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":false,"repos":[],"containers":[],"volumes":[],"files":[],"not_captured":[],"duration_ms":0}"#,
        r#"{"action_id":"0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f","kept":true,"repos":[{"path":"/srv/app","head":"e59951b0e59951b0e59951b0e59951b0e59951b0","branch":"refs/heads/main","index_tree":"t1","worktree_tree":"t2","commit":"c1","kept_ref":"refs/jarvis/snapshots/0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f"},{"path":"/srv/new","head":null,"branch":null,"index_tree":"t3","worktree_tree":"t3"}],"containers":[{"name":"grafana","exists":true,"id":"c1","running":true,"fingerprint":"f","changes":"d","volumes":["data"],"image":"grafana/grafana","snapshot_image":"jarvis-snapshots:x.c1","snapshot_image_id":"sha256:1","inspect":{"Config":{"Env":["A=1"]},"Id":"c1"}},{"name":"worker","exists":false,"running":false,"fingerprint":"","changes":""}],"volumes":[{"name":"data","exists":true,"fingerprint":"f1","archive":"/var/lib/jarvis/volumes/x/data.tar","bytes":10240}],"files":[{"path":"/etc/app.conf","exists":true,"sha256":"ab","mode":420,"backup":"/var/lib/jarvis/files/x/ab"},{"path":"/etc/gone.conf","exists":false}],"not_captured":["bind mount /srv/data of grafana"],"duration_ms":812}"#,
        r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":false,"repos":[],"containers":[],"volumes":[],"files":[{"path":"/etc/motd","exists":true,"sha256":"ab","mode":420}],"not_captured":[],"duration_ms":3}"#,
    ];

    #[test]
    fn stored_plans_read_back_byte_for_byte() {
        for text in STORED_PLANS {
            let plan: SnapshotPlan =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again = serde_json::to_string(&plan).unwrap_or_default();
            assert_eq!(&again, text);
            // And the grouped shape reads what the list writes.
            let old: grouped::Plan =
                serde_json::from_str(&again).unwrap_or_else(|e| panic!("{again}: {e}"));
            assert_eq!(serde_json::to_string(&old).unwrap_or_default(), again);
            let back: SnapshotPlan = serde_json::from_str(&again).unwrap_or_default();
            assert_eq!(back, plan, "a plan read back equals the plan written");
        }
    }

    #[test]
    fn stored_manifests_read_back_byte_for_byte() {
        for text in STORED_MANIFESTS {
            let snap: Snapshot =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again = serde_json::to_string(&snap).unwrap_or_default();
            assert_eq!(&again, text);
            let old: grouped::Manifest =
                serde_json::from_str(&again).unwrap_or_else(|e| panic!("{again}: {e}"));
            assert_eq!(serde_json::to_string(&old).unwrap_or_default(), again);
            let back: Snapshot =
                serde_json::from_str(&again).unwrap_or_else(|e| panic!("{again}: {e}"));
            assert_eq!(
                back, snap,
                "a manifest read back equals the manifest written"
            );
        }
        // The id reads as the id the gateway made, and writes as the same
        // string.
        let kept: Snapshot = serde_json::from_str(STORED_MANIFESTS[1]).expect("stored manifest");
        assert_eq!(kept.action_id, stored_id());
        assert_eq!(
            kept.action_id.to_string(),
            "0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f"
        );
        // Missing lists read as empty, as before.
        let short: Snapshot = serde_json::from_str(
            r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":true,"duration_ms":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(short.targets().is_empty() && short.not_captured.is_empty());
    }

    #[test]
    fn unknown_or_missing_fields_are_refused_as_before() {
        for text in [r#"{"repo":["/x"]}"#, r#"{"repos":["/x"],"zfs":["tank"]}"#] {
            assert!(
                serde_json::from_str::<SnapshotPlan>(text).is_err(),
                "{text}"
            );
            assert!(
                serde_json::from_str::<grouped::Plan>(text).is_err(),
                "{text}"
            );
        }
        for text in [
            r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":true,"duration_ms":1,"repo":[]}"#,
            r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":true}"#,
            r#"{"kept":true,"duration_ms":1}"#,
            r#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","kept":true,"duration_ms":1,"repos":[{"path":"/x"}]}"#,
        ] {
            assert!(serde_json::from_str::<Snapshot>(text).is_err(), "{text}");
            assert!(
                serde_json::from_str::<grouped::Manifest>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_manifest_whose_action_id_is_not_an_id_is_refused_naming_it() {
        let good = STORED_MANIFESTS[1];
        for bad in [
            "",
            "a",
            "x/../../etc",
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        ] {
            let text = good.replacen("0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f", bad, 1);
            let err = serde_json::from_str::<Snapshot>(&text).expect_err(bad);
            assert!(err.to_string().contains("`action_id`"), "{err}");
        }
    }

    #[test]
    fn a_built_plan_writes_what_the_grouped_plan_wrote() {
        // Targets pushed out of kind order still group as the stored
        // shape does, each kind in the order it came.
        let plan = SnapshotPlan::of([
            PlanTarget::File("/etc/a".into()),
            PlanTarget::Volume("zeta".into()),
            PlanTarget::Container("web".into()),
            PlanTarget::Repo("/srv/app".into()),
            PlanTarget::Volume("data".into()),
            PlanTarget::Compose(ComposeTarget {
                project: None,
                dir: Some("/srv/stack".into()),
            }),
            PlanTarget::Repo("/srv/b".into()),
        ]);
        let old = grouped::Plan {
            repos: vec!["/srv/app".into(), "/srv/b".into()],
            containers: vec!["web".into()],
            compose: vec![ComposeTarget {
                project: None,
                dir: Some("/srv/stack".into()),
            }],
            volumes: vec!["zeta".into(), "data".into()],
            files: vec!["/etc/a".into()],
            ..grouped::Plan::default()
        };
        assert_eq!(
            serde_json::to_string(&plan).unwrap_or_default(),
            serde_json::to_string(&old).unwrap_or_default()
        );
        let kinds: Vec<&str> = plan
            .targets()
            .iter()
            .map(|t| match t {
                PlanTarget::Repo(_) => "repo",
                PlanTarget::Container(_) => "container",
                PlanTarget::Compose(_) => "compose",
                PlanTarget::Volume(_) => "volume",
                PlanTarget::File(_) => "file",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "repo",
                "repo",
                "container",
                "compose",
                "volume",
                "volume",
                "file"
            ],
            "capture order"
        );
        assert_eq!(
            plan.write_scope(),
            ["/etc/a", "/srv/app", "/srv/b", "/srv/stack"]
        );
    }

    #[test]
    fn a_manifest_keeps_capture_order_and_restores_in_its_own() {
        let file = FileState {
            path: "/etc/app.conf".into(),
            exists: true,
            sha256: Some("a".into()),
            mode: Some(0o644),
            backup: None,
        };
        let volume = VolumeState {
            name: "data".into(),
            exists: true,
            fingerprint: "f1".into(),
            archive: None,
            bytes: 0,
        };
        // A file's repository is found after the containers are captured.
        let snap = Snapshot::new(stored_id(), false)
            .with(repo("e59951b0", "t1"))
            .with(container("c1", "d1", true))
            .with(volume.clone())
            .with(file.clone())
            .with(RepoState {
                path: "/srv/other".into(),
                ..repo("e59951b0", "t1")
            });
        let captured: Vec<(&str, &str)> = snap
            .targets()
            .iter()
            .map(|t| (t.kind(), t.name()))
            .collect();
        assert_eq!(
            captured,
            [
                ("repo", "/srv/app"),
                ("repo", "/srv/other"),
                ("container", "grafana"),
                ("volume", "data"),
                ("file", "/etc/app.conf"),
            ]
        );
        let restored: Vec<(&str, &str)> = snap
            .in_restore_order()
            .into_iter()
            .map(|t| (t.kind(), t.name()))
            .collect();
        assert_eq!(
            restored,
            [
                ("repo", "/srv/app"),
                ("repo", "/srv/other"),
                ("file", "/etc/app.conf"),
                ("volume", "data"),
                ("container", "grafana"),
            ]
        );
        let compared: Vec<&str> = snap.compare(&snap).iter().map(|c| c.kind).collect();
        assert_eq!(compared, ["repo", "repo", "file", "volume", "container"]);
        // The grouped shape of the same manifest, and the plan that takes
        // it again.
        let old = grouped::Manifest {
            action_id: stored_id().to_string(),
            repos: vec![
                repo("e59951b0", "t1"),
                RepoState {
                    path: "/srv/other".into(),
                    ..repo("e59951b0", "t1")
                },
            ],
            containers: vec![container("c1", "d1", true)],
            volumes: vec![volume],
            files: vec![file],
            ..grouped::Manifest::default()
        };
        assert_eq!(
            serde_json::to_string(&snap).unwrap_or_default(),
            serde_json::to_string(&old).unwrap_or_default()
        );
        assert_eq!(
            serde_json::to_value(snap.plan()).unwrap_or_default(),
            serde_json::json!({
                "repos": ["/srv/app", "/srv/other"],
                "containers": ["grafana"],
                "volumes": ["data"],
                "files": ["/etc/app.conf"],
            })
        );
    }

    #[test]
    fn plans_for_commands_and_edits_are_what_they_were() {
        use jarvis_policy::scope::{ComposeRef, Scope};
        let settings = SnapshotSettings {
            repos: vec!["/srv/z".into(), "/srv/a".into()],
            containers: vec!["db".into()],
            stateful_volumes: vec!["zeta".into(), "data".into()],
            ..SnapshotSettings::default()
        };
        let scope = Scope {
            repos: ["/srv/b".to_owned()].into(),
            containers: ["web".to_owned()].into(),
            compose: [ComposeRef {
                project: Some("demo".into()),
                dir: None,
            }]
            .into(),
            unscoped: vec!["`systemctl` changes a service".into()],
            ..Scope::default()
        };
        let plan = plan_for_command(&scope, &settings);
        assert_eq!(
            serde_json::to_value(&plan).unwrap_or_default(),
            serde_json::json!({
                "repos": ["/srv/a", "/srv/b", "/srv/z"],
                "containers": ["db", "web"],
                "compose": [{"project": "demo"}],
                // The host config's order: plans approved before keep it.
                "volumes": ["zeta", "data"],
                "not_captured": [
                    "containers the command adds to a Compose project are not removed by a rollback",
                    "`systemctl` changes a service",
                ],
            })
        );
        let edit = plan_for_edit("/etc/app.conf", &SnapshotSettings::default());
        assert_eq!(
            serde_json::to_value(&edit).unwrap_or_default(),
            serde_json::json!({"files": ["/etc/app.conf"]})
        );
        let in_repo = plan_for_edit("/srv/a/x.conf", &settings);
        assert_eq!(
            serde_json::to_value(&in_repo).unwrap_or_default(),
            serde_json::json!({"repos": ["/srv/a", "/srv/z"], "containers": ["db"], "volumes": ["zeta", "data"]})
        );
        let nothing = plan_for_command(
            &Scope {
                unscoped: vec!["`systemctl` changes a service".into()],
                ..Scope::default()
            },
            &SnapshotSettings::default(),
        );
        assert_eq!(
            serde_json::to_value(&nothing).unwrap_or_default(),
            serde_json::json!({"none": {"kind": "unscoped", "reasons": ["`systemctl` changes a service"]}})
        );
    }
}
