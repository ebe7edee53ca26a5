//! Users, sessions, tokens, approvals under a separation-of-duties rule,
//! change notifications and audit search, on both backends.

mod common;

use std::time::Duration;

use common::TestDb;
use jarvis_core::{
    ActionId, ActionState, ApprovalProgress, ApprovalRefusal, ApprovalRule, Decision, HostName,
    PlanTarget, PreviewBasis, PreviewReport, Risk, Role, SnapshotPlan, TokenScope,
};
use jarvis_store::{
    AuditEvent, AuditFilter, ChangeKind, Judged, NewAction, NewEvent, NewSession, Store, StoreError,
};
use serde_json::{Value, json};

fn new_action(requester: &str, cmd: &str) -> NewAction {
    NewAction {
        id: ActionId::new(),
        requester: requester.into(),
        host: Some(HostName::parse("nas").expect("host")),
        command: cmd.into(),
        cwd: None,
        timeout_secs: None,
        kind: jarvis_core::ActionKind::Command,
        edit: None,
        rollback_of: None,
        plan: None,
        purpose: None,
    }
}

/// A pending action proposed by `requester` at `score` (`None`: never judged).
async fn pending(store: &Store, requester: &str, score: Option<u32>) -> ActionId {
    let a = store
        .create_action(&new_action(requester, "systemctl restart nginx"))
        .await
        .expect("create");
    let judged = score.map(|s| Judged {
        decision: Decision::Approve,
        risk: Risk::new(s).expect("risk"),
        reasons: vec!["because".into()],
    });
    store
        .transition(
            a.id,
            ActionState::Proposed,
            ActionState::PendingApproval,
            "gateway",
            judged.as_ref(),
            json!({}),
        )
        .await
        .expect("pending");
    a.id
}

async fn all_events(store: &Store) -> Vec<AuditEvent> {
    store
        .events(&AuditFilter {
            limit: Some(100_000),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
}

async fn events_of(store: &Store, id: ActionId) -> Vec<AuditEvent> {
    store
        .events(&AuditFilter {
            action_id: Some(id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .expect("events")
}

fn payload(e: &AuditEvent) -> Value {
    serde_json::from_str(&e.payload).expect("payload is JSON")
}

fn rfc3339_in(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn session(id: &str, user: &str, expires_at: String) -> NewSession {
    NewSession {
        id_hash: id.into(),
        user: user.into(),
        csrf: format!("csrf-{id}"),
        expires_at,
        remote: Some("192.0.2.7".into()),
    }
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_created_once_with_valid_names() {
    for db in TestDb::both() {
        let store = db.store().await;
        assert_eq!(store.user_count().await.expect("count"), 0);
        let alice = store
            .create_user("alice", Role::Admin, HASH, "local:root")
            .await
            .expect("create");
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(alice.created_at, alice.password_changed_at);
        store
            .create_user("bob.smith", Role::Viewer, HASH, "user:alice")
            .await
            .expect("create");
        let before = all_events(&store).await.len();

        let e = store
            .create_user("alice", Role::Viewer, HASH, "user:alice")
            .await
            .expect_err("duplicate");
        assert!(matches!(e, StoreError::Exists(_)), "{e}");
        assert_eq!(e.to_string(), "user alice already exists");
        for bad in ["Alice", "", "-x", "a b", "user:x", &"a".repeat(65)] {
            let e = store
                .create_user(bad, Role::Viewer, HASH, "user:alice")
                .await
                .expect_err(bad);
            assert!(matches!(e, StoreError::Invalid(_)), "{bad}: {e}");
        }
        assert_eq!(all_events(&store).await.len(), before, "{:?}", db.kind);

        let users = store.users().await.expect("users");
        let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob.smith"]);
        assert_eq!(store.user_count().await.expect("count"), 2);
        let got = store.user("alice").await.expect("read").expect("alice");
        assert_eq!(got.password_hash, HASH);
        assert!(store.user("carol").await.expect("read").is_none());

        let events = all_events(&store).await;
        let created = events
            .iter()
            .find(|e| e.kind == "user.created")
            .expect("user.created");
        assert!(!created.payload.contains("argon2"), "{}", created.payload);

        let bob = store
            .set_role("bob.smith", Role::Approver, "user:alice")
            .await
            .expect("role");
        assert_eq!(bob.role, Role::Approver);
        let changed = &all_events(&store).await[0];
        assert_eq!(changed.kind, "user.role_changed");
        assert_eq!(payload(changed)["from"], "viewer");
        assert_eq!(payload(changed)["to"], "approver");

        for e in [
            store.set_role("carol", Role::Admin, "x").await.err(),
            store.set_password("carol", HASH, "x").await.err(),
            store.remove_user("carol", "x").await.err(),
        ] {
            assert!(matches!(e, Some(StoreError::NotFound(_))), "{e:?}");
        }
        store
            .remove_user("bob.smith", "user:alice")
            .await
            .expect("remove");
        assert!(store.user("bob.smith").await.expect("read").is_none());
        assert_eq!(all_events(&store).await[0].kind, "user.removed");
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_or_removal_ends_every_session() {
    for db in TestDb::both() {
        let store = db.store().await;
        store
            .create_user("alice", Role::Approver, HASH, "local:root")
            .await
            .expect("create");
        store
            .create_user("bob", Role::Viewer, HASH, "local:root")
            .await
            .expect("create");
        for (id, user) in [("s1", "alice"), ("s2", "alice"), ("s3", "bob")] {
            store
                .create_session(&session(id, user, rfc3339_in(3600)))
                .await
                .expect("session");
        }
        let s = store.session("s1").await.expect("read").expect("live");
        assert_eq!(s.user.name, "alice");
        assert_eq!(s.user.role, Role::Approver);
        assert_eq!(s.csrf, "csrf-s1");
        assert_eq!(s.remote.as_deref(), Some("192.0.2.7"));
        let login = &all_events(&store).await[0];
        assert_eq!(login.kind, "auth.login");
        assert_eq!(login.actor, "user:bob");
        assert!(!login.payload.contains("csrf"), "{}", login.payload);

        // A role change applies to a live session at once.
        store
            .set_role("alice", Role::Viewer, "local:root")
            .await
            .expect("role");
        let s = store.session("s2").await.expect("read").expect("live");
        assert_eq!(s.user.role, Role::Viewer);

        store
            .set_password("alice", "$argon2id$new", "user:alice")
            .await
            .expect("password");
        assert!(store.session("s1").await.expect("read").is_none());
        assert!(store.session("s2").await.expect("read").is_none());
        assert!(store.session("s3").await.expect("read").is_some());
        let changed = &all_events(&store).await[0];
        assert_eq!(changed.kind, "user.password_changed");
        assert_eq!(payload(changed)["sessions_ended"], 2);
        assert!(!changed.payload.contains("argon2"));
        let alice = store.user("alice").await.expect("read").expect("alice");
        assert_eq!(alice.password_hash, "$argon2id$new");

        store
            .remove_user("bob", "local:root")
            .await
            .expect("remove");
        assert!(store.session("s3").await.expect("read").is_none());
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_sessions_are_none_and_pruned() {
    for db in TestDb::both() {
        let store = db.store().await;
        store
            .create_user("alice", Role::Admin, HASH, "local:root")
            .await
            .expect("create");
        store
            .create_session(&session("old", "alice", rfc3339_in(-1)))
            .await
            .expect("session");
        store
            .create_session(&session("new", "alice", rfc3339_in(3600)))
            .await
            .expect("session");
        // Another offset is stored in UTC, and still compared correctly.
        let t = time::OffsetDateTime::now_utc()
            .to_offset(time::UtcOffset::from_hms(-5, 0, 0).expect("offset"))
            + time::Duration::hours(1);
        let zoned = t
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        store
            .create_session(&session("zoned", "alice", zoned))
            .await
            .expect("session");
        let z = store.session("zoned").await.expect("read").expect("live");
        assert!(z.expires_at.ends_with('Z'), "{}", z.expires_at);

        assert!(store.session("old").await.expect("read").is_none());
        assert!(store.session("new").await.expect("read").is_some());
        assert!(store.session("nope").await.expect("read").is_none());

        let e = store
            .create_session(&session("x", "alice", "tomorrow".into()))
            .await
            .expect_err("bad time");
        assert!(matches!(e, StoreError::Invalid(_)), "{e}");
        let e = store
            .create_session(&session("y", "carol", rfc3339_in(60)))
            .await
            .expect_err("no user");
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");

        let before = all_events(&store).await.len();
        assert_eq!(store.prune_sessions().await.expect("prune"), 1);
        assert_eq!(store.prune_sessions().await.expect("prune"), 0);
        assert_eq!(all_events(&store).await.len(), before);

        store
            .end_session("new", "user:alice")
            .await
            .expect("logout");
        assert!(store.session("new").await.expect("read").is_none());
        let logout = &all_events(&store).await[0];
        assert_eq!(logout.kind, "auth.logout");
        assert_eq!(payload(logout)["user"], "alice");
        let e = store
            .end_session("new", "user:alice")
            .await
            .expect_err("gone");
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_authenticate_until_revoked_and_names_are_never_reused() {
    for db in TestDb::both() {
        let store = db.store().await;
        let t = store
            .create_token("ci", TokenScope::Propose, "hash-ci", "user:alice")
            .await
            .expect("create");
        assert_eq!(t.scope, TokenScope::Propose);
        assert_eq!(t.created_by, "user:alice");
        assert!(t.last_used_at.is_none());
        let created = &all_events(&store).await[0];
        assert_eq!(created.kind, "token.created");
        assert_eq!(payload(created)["scope"], "propose");
        assert!(!created.payload.contains("hash-ci"));

        let e = store
            .create_token("ci", TokenScope::Read, "hash-2", "user:alice")
            .await
            .expect_err("duplicate");
        assert_eq!(e.to_string(), "token ci already exists");
        let e = store
            .create_token("CI bot", TokenScope::Read, "hash-3", "user:alice")
            .await
            .expect_err("invalid");
        assert!(matches!(e, StoreError::Invalid(_)), "{e}");

        let before = all_events(&store).await.len();
        let used = store
            .token_by_hash("hash-ci")
            .await
            .expect("read")
            .expect("live");
        let first = used.last_used_at.clone().expect("noted");
        let again = store
            .token_by_hash("hash-ci")
            .await
            .expect("read")
            .expect("live");
        assert_eq!(again.last_used_at.as_deref(), Some(first.as_str()));
        assert_eq!(all_events(&store).await.len(), before, "use is not audited");
        assert!(store.token_by_hash("nope").await.expect("read").is_none());

        let revoked = store
            .revoke_token("ci", "user:alice")
            .await
            .expect("revoke");
        assert!(revoked.revoked_at.is_some());
        assert!(
            store
                .token_by_hash("hash-ci")
                .await
                .expect("read")
                .is_none()
        );
        assert_eq!(all_events(&store).await[0].kind, "token.revoked");
        let n = all_events(&store).await.len();
        store.revoke_token("ci", "user:alice").await.expect("again");
        assert_eq!(all_events(&store).await.len(), n);
        let e = store
            .create_token("ci", TokenScope::Read, "hash-4", "user:alice")
            .await
            .expect_err("revoked names stay taken");
        assert!(matches!(e, StoreError::Exists(_)), "{e}");
        let e = store.revoke_token("nope", "x").await.expect_err("unknown");
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");

        store
            .create_token("a-reader", TokenScope::Read, "hash-r", "user:alice")
            .await
            .expect("create");
        let names: Vec<String> = store
            .tokens()
            .await
            .expect("list")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["a-reader", "ci"]);
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_rule_completes_with_one_approval() {
    for db in TestDb::both() {
        let store = db.store().await;
        let id = pending(&store, "user:alice", Some(95)).await;
        let (a, progress) = store
            .approve(
                id,
                "user:alice",
                Some("looks fine"),
                &ApprovalRule::default(),
            )
            .await
            .expect("approve");
        assert_eq!(progress, ApprovalProgress::Complete);
        assert_eq!(a.state, ActionState::Approved);
        let approved = &events_of(&store, id).await[0];
        assert_eq!(approved.kind, "action.approved");
        assert_eq!(approved.actor, "user:alice");
        assert_eq!(payload(approved)["reason"], "looks fine");
        assert_eq!(payload(approved)["approvers"], json!(["user:alice"]));
        let approvals = store.approvals_of(id).await.expect("approvals");
        assert_eq!(approvals.len(), 1);
        assert_eq!(approvals[0].reason.as_deref(), Some("looks fine"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_two_person_rule_needs_two_others_for_critical_actions() {
    let rule = ApprovalRule {
        self_approval: false,
        critical_approvers: 2,
        approvers: 1,
    };
    for db in TestDb::both() {
        let store = db.store().await;
        let id = pending(&store, "user:alice", Some(90)).await;
        let before = all_events(&store).await.len();

        let e = store
            .approve(id, "user:alice", None, &rule)
            .await
            .expect_err("own request");
        assert!(
            matches!(
                e,
                StoreError::ApprovalRefused(ApprovalRefusal::OwnRequest { .. })
            ),
            "{e}"
        );
        assert_eq!(all_events(&store).await.len(), before, "nothing written");
        assert!(store.approvals_of(id).await.expect("read").is_empty());

        let (a, progress) = store
            .approve(id, "user:bob", Some("first"), &rule)
            .await
            .expect("first");
        assert_eq!(progress, ApprovalProgress::Waiting { more: 1 });
        assert_eq!(a.state, ActionState::PendingApproval);
        let recorded = &events_of(&store, id).await[0];
        assert_eq!(recorded.kind, "action.approval_recorded");
        assert_eq!(recorded.actor, "user:bob");
        assert_eq!(recorded.host.as_deref(), Some("nas"));
        assert_eq!(payload(recorded)["more"], 1);
        assert_eq!(payload(recorded)["approver"], "user:bob");

        let n = all_events(&store).await.len();
        let e = store
            .approve(id, "user:bob", None, &rule)
            .await
            .expect_err("twice");
        assert!(
            matches!(
                e,
                StoreError::ApprovalRefused(ApprovalRefusal::AlreadyApproved { needed: 2, .. })
            ),
            "{e}"
        );
        assert_eq!(all_events(&store).await.len(), n, "nothing written");

        let (a, progress) = store
            .approve(id, "user:carol", None, &rule)
            .await
            .expect("second");
        assert_eq!(progress, ApprovalProgress::Complete);
        assert_eq!(a.state, ActionState::Approved);
        let approved = &events_of(&store, id).await[0];
        assert_eq!(approved.kind, "action.approved");
        assert_eq!(
            payload(approved)["approvers"],
            json!(["user:bob", "user:carol"])
        );
        let who: Vec<String> = store
            .approvals_of(id)
            .await
            .expect("read")
            .into_iter()
            .map(|a| a.approver)
            .collect();
        assert_eq!(who, ["user:bob", "user:carol"]);

        let e = store
            .approve(id, "user:dave", None, &rule)
            .await
            .expect_err("late");
        assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "action {id} is already approved, not pending_approval; someone else acted on it first"
            )
        );

        // Below critical one other person is enough; never judged counts
        // as critical.
        let low = pending(&store, "user:alice", Some(10)).await;
        let (_, progress) = store
            .approve(low, "user:bob", None, &rule)
            .await
            .expect("low");
        assert_eq!(progress, ApprovalProgress::Complete);
        let unjudged = pending(&store, "user:alice", None).await;
        let (_, progress) = store
            .approve(unjudged, "user:bob", None, &rule)
            .await
            .expect("unjudged");
        assert_eq!(progress, ApprovalProgress::Waiting { more: 1 });
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_approvers_have_exactly_one_winner() {
    for db in TestDb::both() {
        let store = db.store().await;
        for _ in 0..10 {
            let id = pending(&store, "agent:x", Some(40)).await;
            let tasks: Vec<_> = ["user:a", "user:b", "user:c"]
                .into_iter()
                .map(|who| {
                    let s = store.clone();
                    tokio::spawn(
                        async move { s.approve(id, who, None, &ApprovalRule::default()).await },
                    )
                })
                .collect();
            let mut complete = 0;
            for t in tasks {
                match t.await.expect("task") {
                    Ok((a, ApprovalProgress::Complete)) => {
                        assert_eq!(a.state, ActionState::Approved);
                        complete += 1;
                    }
                    Ok(other) => panic!("{:?}: unexpected {other:?}", db.kind),
                    Err(StoreError::Conflict { found, .. }) => {
                        assert_eq!(found, ActionState::Approved)
                    }
                    Err(e) => panic!("{:?}: unexpected error {e}", db.kind),
                }
            }
            assert_eq!(complete, 1, "{:?}", db.kind);
            assert_eq!(store.approvals_of(id).await.expect("read").len(), 1);
        }
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_plan_needs_new_approvals() {
    for db in TestDb::both() {
        let store = db.store().await;
        let id = pending(&store, "agent:x", Some(40)).await;
        store
            .approve(id, "user:bob", None, &ApprovalRule::default())
            .await
            .expect("approve");
        store
            .replan(
                id,
                &SnapshotPlan::of([PlanTarget::Repo("/srv/app".into())]),
                "gateway",
                "the plan changed",
            )
            .await
            .expect("replan");
        assert!(store.approvals_of(id).await.expect("read").is_empty());
        let (a, progress) = store
            .approve(id, "user:bob", None, &ApprovalRule::default())
            .await
            .expect("approve the new plan");
        assert_eq!(progress, ApprovalProgress::Complete);
        assert_eq!(a.state, ActionState::Approved);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_changes_are_announced_to_every_clone_and_from_other_processes() {
    for db in TestDb::both() {
        let store = db.store().await;
        let mut rx = store.clone().changes().await.expect("follow the log");
        let a = store
            .create_action(&new_action("agent:x", "uptime"))
            .await
            .expect("create");
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.state), (a.id, ActionState::Proposed));
        assert_eq!(c.host.as_deref(), Some("nas"));
        assert_eq!(c.what, ChangeKind::Created);
        store
            .transition(
                a.id,
                ActionState::Proposed,
                ActionState::PendingApproval,
                "gateway",
                None,
                json!({}),
            )
            .await
            .expect("pending");
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.state), (a.id, ActionState::PendingApproval));
        assert_eq!(c.what, ChangeKind::StateChanged);

        // A refused approval and a refused move announce nothing.
        let rule = ApprovalRule {
            self_approval: false,
            ..ApprovalRule::default()
        };
        assert!(store.approve(a.id, "agent:x", None, &rule).await.is_err());
        assert!(
            store
                .transition(
                    a.id,
                    ActionState::Proposed,
                    ActionState::Denied,
                    "gateway",
                    None,
                    json!({})
                )
                .await
                .is_err()
        );
        // The next announcement is the next change that happened.

        let waiting = ApprovalRule {
            critical_approvers: 2,
            ..ApprovalRule::default()
        };
        store
            .transition(
                a.id,
                ActionState::PendingApproval,
                ActionState::Rejected,
                "user:b",
                None,
                json!({}),
            )
            .await
            .expect("reject");
        assert_eq!(next(&mut rx).await.state, ActionState::Rejected);
        let b = pending(&store, "agent:x", Some(99)).await;
        assert_eq!(next(&mut rx).await.what, ChangeKind::Created);
        assert_eq!(next(&mut rx).await.state, ActionState::PendingApproval);
        store
            .approve(b, "user:b", None, &waiting)
            .await
            .expect("first of two");
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.state), (b, ActionState::PendingApproval));
        assert_eq!(c.what, ChangeKind::ApprovalRecorded);
        store
            .set_preview(b, &PreviewReport::of(PreviewBasis::Git), json!({}))
            .await
            .expect("preview");
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.what), (b, ChangeKind::Preview));

        // A change written by another process (its own store on the same
        // database) is announced too, in order.
        let other = db.store().await;
        let d = pending(&other, "local:ops", Some(40)).await;
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.what), (d, ChangeKind::Created));
        let c = next(&mut rx).await;
        assert_eq!((c.id, c.state), (d, ActionState::PendingApproval));
        assert!(c.seq > 0);
    }
}

/// The next announced change, within a few follow periods.
async fn next(
    rx: &mut tokio::sync::broadcast::Receiver<jarvis_store::ActionChange>,
) -> jarvis_store::ActionChange {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("announced in time")
        .expect("the follower is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_search_ignores_case_and_escapes_wildcards() {
    for db in TestDb::both() {
        let store = db.store().await;
        for (actor, text) in [
            ("agent:one", "Disk 50% full"),
            ("agent:two", "disk 500 full"),
            ("agent:three", "file_name"),
            ("agent:four", "bang! here"),
            ("agent:five", "fileXname"),
        ] {
            store
                .append(NewEvent {
                    actor: actor.into(),
                    action_id: None,
                    host: None,
                    kind: "test.note".into(),
                    payload: json!({ "text": text }),
                })
                .await
                .expect("append");
        }
        let id = pending(&store, "agent:x", Some(10)).await;
        let search = |text: &str| {
            let store = store.clone();
            let text = text.to_owned();
            async move {
                store
                    .events(&AuditFilter {
                        search: Some(text),
                        ..AuditFilter::default()
                    })
                    .await
                    .expect("search")
                    .into_iter()
                    .map(|e| e.actor)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(search("50%").await, ["agent:one"], "{:?}", db.kind);
        assert_eq!(search("DISK 50").await, ["agent:two", "agent:one"]);
        assert_eq!(search("e_n").await, ["agent:three"]);
        assert_eq!(search("g!").await, ["agent:four"]);
        assert_eq!(search("AGENT:TW").await, ["agent:two"]);
        assert_eq!(search("TEST.NOTE").await.len(), 5);
        let short = id.to_string()[..13].to_uppercase();
        assert_eq!(search(&short).await, ["gateway", "agent:x"]);
        assert!(search("nothing like it").await.is_empty());
        // Combined with other filters by AND.
        let hits = store
            .events(&AuditFilter {
                search: Some("disk".into()),
                actor: Some("agent:one".into()),
                ..AuditFilter::default()
            })
            .await
            .expect("search");
        assert_eq!(hits.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ping_and_counts_for_metrics() {
    for db in TestDb::both() {
        let store = db.store().await;
        store.ping().await.expect("ping");
        assert!(store.count_actions_by().await.expect("count").is_empty());
        pending(&store, "agent:x", Some(10)).await;
        pending(&store, "agent:x", Some(20)).await;
        store
            .create_action(&new_action("agent:x", "uptime"))
            .await
            .expect("create");
        let mut counts = store.count_actions_by().await.expect("count");
        counts.sort_by_key(|(s, _, _)| s.as_str());
        assert_eq!(
            counts,
            [
                (ActionState::PendingApproval, Some(Decision::Approve), 2),
                (ActionState::Proposed, None, 1),
            ],
            "{:?}",
            db.kind
        );
        store.close().await;
        assert!(store.ping().await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_admin_is_neither_demoted_nor_removed() {
    for db in TestDb::both() {
        let store = db.store().await;
        store
            .create_user("alice", Role::Admin, HASH, "local:root")
            .await
            .expect("create");
        let before = all_events(&store).await.len();
        for e in [
            store
                .set_role("alice", Role::Viewer, "local:root")
                .await
                .expect_err("last admin demoted"),
            store
                .remove_user("alice", "local:root")
                .await
                .expect_err("last admin removed"),
        ] {
            assert!(matches!(e, StoreError::Invalid(_)), "{e}");
            assert!(e.to_string().contains("last admin"), "{e}");
        }
        assert_eq!(all_events(&store).await.len(), before, "nothing written");
        store
            .create_user("bob", Role::Admin, HASH, "local:root")
            .await
            .expect("create");
        store
            .set_role("alice", Role::Approver, "user:bob")
            .await
            .expect("another admin remains");
        assert!(store.remove_user("bob", "local:root").await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_approval_window_restarts_when_an_action_is_sent_back() {
    for db in TestDb::both() {
        let store = db.store().await;
        let id = pending(&store, "token:planner", Some(40)).await;
        let first = store.action(id).await.expect("action");
        let since = first.pending_since.clone().expect("pending_since is set");
        let (approved, _) = store
            .approve(id, "user:alice", None, &ApprovalRule::default())
            .await
            .expect("approve");
        assert_eq!(approved.pending_since.as_deref(), Some(since.as_str()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = store
            .replan(
                id,
                &SnapshotPlan::of([PlanTarget::Repo("/srv/x".into())]),
                "gateway",
                "plan changed",
            )
            .await
            .expect("replan");
        assert_eq!(again.state, ActionState::PendingApproval);
        let later = again.pending_since.expect("pending_since");
        let parse = |t: &str| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .expect("RFC 3339")
        };
        assert!(
            parse(&later) > parse(&since),
            "{:?}: {since} then {later}",
            db.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conversations_keep_their_messages_and_speak_for_who_started_them() {
    for db in TestDb::both() {
        let store = db.store().await;
        let c = store
            .create_conversation("user:alice", "grafana keeps restarting, fix it")
            .await
            .expect("start");
        assert_eq!(c.state, "active");
        let id = pending(&store, &c.id.requester(), Some(40)).await;
        assert_eq!(
            store
                .add_message(
                    c.id,
                    "user",
                    &json!({ "content": "grafana keeps restarting" }),
                    None
                )
                .await
                .expect("message"),
            1
        );
        assert_eq!(
            store
                .add_message(
                    c.id,
                    "tool",
                    &json!({ "content": "<<<UNTRUSTED>>>" }),
                    Some(id)
                )
                .await
                .expect("message"),
            2
        );
        let messages = store.messages(c.id).await.expect("messages");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].action_id, Some(id));
        assert_eq!(messages[1].content["content"], "<<<UNTRUSTED>>>");
        // The audit log links the message to the action, without its text.
        let linked = events_of(&store, id).await;
        let message = linked
            .iter()
            .find(|e| e.kind == "conversation.message")
            .expect("a linked message event");
        assert!(
            !message.payload.contains("UNTRUSTED"),
            "{}",
            message.payload
        );
        // With self-approval off, the person who asked may not approve what
        // their conversation proposed.
        let rule = ApprovalRule {
            self_approval: false,
            ..ApprovalRule::default()
        };
        let e = store
            .approve(id, "user:alice", None, &rule)
            .await
            .expect_err("own conversation");
        assert!(
            matches!(
                e,
                StoreError::ApprovalRefused(ApprovalRefusal::OwnRequest { .. })
            ),
            "{e}"
        );
        store
            .end_conversation(c.id, "finished", "restarted grafana")
            .await
            .expect("end");
        let ended = store.conversation(c.id).await.expect("read");
        assert_eq!(ended.state, "finished");
        assert!(store.end_conversation(c.id, "exploded", "x").await.is_err());
        assert_eq!(store.conversations(10).await.expect("list").len(), 1);

        // The person says more: active again, the message next in line,
        // and who continued it on the record.
        let seq = store
            .continue_conversation(c.id, "local:alice", "and check loki too")
            .await
            .expect("continue");
        assert_eq!(seq, 3);
        let again = store.conversation(c.id).await.expect("read");
        assert_eq!((again.state.as_str(), again.outcome), ("active", None));
        let messages = store.messages(c.id).await.expect("messages");
        assert_eq!(messages[2].role, "user");
        assert_eq!(messages[2].content["content"], "and check loki too");
        // Not twice at once, and not a conversation that does not exist.
        let e = store
            .continue_conversation(c.id, "local:alice", "and again")
            .await
            .expect_err("still active");
        assert!(matches!(e, StoreError::Invalid(_)), "{e}");
        assert_eq!(store.messages(c.id).await.expect("messages").len(), 3);
        let e = store
            .continue_conversation(jarvis_core::ConversationId::new(), "local:alice", "x")
            .await
            .expect_err("unknown");
        assert!(matches!(e, StoreError::NotFound(_)), "{e}");
        let continued = store
            .events(&AuditFilter {
                kind: Some("conversation.continued".into()),
                ..AuditFilter::default()
            })
            .await
            .expect("events");
        assert_eq!(continued.len(), 1);
        assert_eq!(continued[0].actor, "local:alice");
        let chain = store.verify(None).await.expect("verify");
        assert!(chain.is_intact(), "{:?}: {:?}", db.kind, chain.problem);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conversations_left_active_by_a_dead_process_are_stopped() {
    for db in TestDb::both() {
        let store = db.store().await;
        let c = store
            .create_conversation("user:alice", "check the disks")
            .await
            .expect("start");
        let stopped = store
            .stop_active_conversations("stopped: restarted")
            .await
            .expect("stop");
        assert_eq!(stopped, vec![c.id]);
        let c = store.conversation(c.id).await.expect("read");
        assert_eq!(c.state, "stopped");
        assert_eq!(c.outcome.as_deref(), Some("stopped: restarted"));
        assert!(
            store
                .stop_active_conversations("again")
                .await
                .expect("stop")
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_person_behind_a_token_and_its_conversations_is_accountable() {
    let rule = ApprovalRule {
        self_approval: false,
        critical_approvers: 2,
        approvers: 1,
    };
    for db in TestDb::both() {
        let store = db.store().await;
        store
            .create_token("bot", TokenScope::Propose, &"ab".repeat(32), "user:alice")
            .await
            .expect("token");
        let c = store
            .create_conversation("token:bot", "restart grafana")
            .await
            .expect("start");
        // The conversation was started by a token that alice made: the
        // action it proposes is alice's, two steps down.
        let id = pending(&store, &c.id.requester(), Some(90)).await;
        let action = store.action(id).await.expect("action");
        assert_eq!(action.requester, c.id.requester());
        assert_eq!(action.accountable, "user:alice", "{:?}", db.kind);
        let proposed = events_of(&store, id)
            .await
            .into_iter()
            .find(|e| e.kind == "action.proposed")
            .expect("proposed event");
        assert_eq!(payload(&proposed)["accountable"], "user:alice");

        // Alice may approve it neither in the web UI nor at the gateway's shell.
        for alice in ["user:alice", "local:alice"] {
            let e = store
                .approve(id, alice, None, &rule)
                .await
                .expect_err("alice's own request");
            assert!(
                matches!(
                    &e,
                    StoreError::ApprovalRefused(ApprovalRefusal::OwnRequest { accountable, .. })
                        if accountable == "user:alice"
                ),
                "{e}"
            );
        }
        // Two other people are needed, as for alice's own critical request.
        let (_, progress) = store
            .approve(id, "user:bob", None, &rule)
            .await
            .expect("bob");
        assert_eq!(progress, ApprovalProgress::Waiting { more: 1 });
        let (a, progress) = store
            .approve(id, "user:carol", None, &rule)
            .await
            .expect("carol");
        assert_eq!(
            (progress, a.state),
            (ApprovalProgress::Complete, ActionState::Approved)
        );

        // The token alone, and requesters with nothing (or nothing known)
        // behind them.
        for (requester, accountable) in [
            ("token:bot", "user:alice"),
            ("user:bob", "user:bob"),
            ("local:root", "local:root"),
            ("planner", "planner"),
            ("token:ghost", "token:ghost"),
        ] {
            assert_eq!(
                store.accountable(requester).await.expect("resolve"),
                accountable,
                "{requester}"
            );
        }
        let id = pending(&store, "token:bot", Some(10)).await;
        assert_eq!(
            store.action(id).await.expect("action").accountable,
            "user:alice"
        );
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_proposed_before_the_accountable_column_are_backfilled() {
    for db in TestDb::both() {
        let store = db.store().await;
        store
            .create_token("bot", TokenScope::Propose, &"cd".repeat(32), "local:alice")
            .await
            .expect("token");
        let by_token = store
            .create_conversation("token:bot", "look at the disks")
            .await
            .expect("start");
        let by_carol = store
            .create_conversation("user:carol", "look at the logs")
            .await
            .expect("start");
        let gone = jarvis_core::ConversationId::new().requester();
        let cases = [
            (by_token.id.requester(), "local:alice"),
            (by_carol.id.requester(), "user:carol"),
            ("token:bot".to_owned(), "local:alice"),
            ("user:dave".to_owned(), "user:dave"),
            ("token:ghost".to_owned(), "token:ghost"),
            (gone.clone(), gone.as_str()),
        ];
        let mut ids = Vec::new();
        for (requester, _) in &cases {
            ids.push(pending(&store, requester, Some(20)).await);
        }
        // As the rows were before the migration, then its backfill.
        db.sql("UPDATE actions SET accountable = ''")
            .expect("clear");
        let migration = match db.kind {
            common::Kind::Sqlite => include_str!("../../../migrations/sqlite/0009_accountable.sql"),
            common::Kind::Postgres => {
                include_str!("../../../migrations/postgres/0009_accountable.sql")
            }
        };
        let backfill: Vec<String> = migration
            .split(';')
            .map(|statement| {
                statement
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("--"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .filter(|statement| statement.trim_start().starts_with("UPDATE"))
            .collect();
        assert_eq!(backfill.len(), 3, "{migration}");
        db.sql(&format!("{};", backfill.join(";")))
            .expect("backfill");
        for ((requester, accountable), id) in cases.iter().zip(ids) {
            assert_eq!(
                store.action(id).await.expect("action").accountable,
                *accountable,
                "{:?}: {requester}",
                db.kind
            );
        }
    }
}

/// The statements of one migration file, without its comments.
fn migration_statements(migration: &str) -> Vec<String> {
    migration
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .split(';')
        .filter(|statement| !statement.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn times_written_before_fixed_width_are_rewritten_and_the_log_is_not() {
    for db in TestDb::both() {
        let store = db.store().await;
        let id = pending(&store, "local:alice", Some(20)).await;
        // As the store wrote them before: trailing zeros of the fraction
        // dropped, a whole second without one.
        db.sql(&format!(
            "UPDATE actions SET created_at = '2026-11-23T14:00:00Z', \
             updated_at = '2026-11-23T14:00:00.5Z', pending_since = '2026-11-23T14:00:00.123456Z' \
             WHERE id = '{id}'"
        ))
        .expect("old times");
        let log = db
            .sql("SELECT at || ' ' || hash FROM audit_events ORDER BY seq")
            .expect("log");
        let migration = match db.kind {
            common::Kind::Sqlite => {
                include_str!("../../../migrations/sqlite/0018_fixed_width_times.sql")
            }
            common::Kind::Postgres => {
                include_str!("../../../migrations/postgres/0017_fixed_width_times.sql")
            }
        };
        let statements = migration_statements(migration);
        // Twice: a second pass finds nothing left to rewrite.
        for _ in 0..2 {
            db.sql(&format!("{};", statements.join(";")))
                .unwrap_or_else(|e| panic!("{:?}: {e}", db.kind));
            let times = db
                .sql(&format!(
                    "SELECT created_at || ' ' || updated_at || ' ' || pending_since \
                     FROM actions WHERE id = '{id}'"
                ))
                .expect("times");
            assert_eq!(
                times.trim(),
                "2026-11-23T14:00:00.000000Z 2026-11-23T14:00:00.500000Z \
                 2026-11-23T14:00:00.123456Z",
                "{:?}",
                db.kind
            );
        }
        assert_eq!(
            db.sql("SELECT at || ' ' || hash FROM audit_events ORDER BY seq")
                .expect("log"),
            log,
            "{:?}: the hash-chained log keeps its own text",
            db.kind
        );
        assert!(store.action(id).await.is_ok(), "{:?}", db.kind);
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_askers_own_request_counts_only_as_the_rule_allows() {
    let judged = Judged {
        decision: Decision::Approve,
        risk: Risk::new(60).expect("risk"),
        reasons: vec!["rollback".into()],
    };
    let proposed = |store: Store| async move {
        store
            .create_action(&new_action("local:alice", "rollback x"))
            .await
            .expect("create")
            .id
    };
    for db in TestDb::both() {
        let store = db.store().await;
        // The owner's quick path: the request is the approval.
        let id = proposed(store.clone()).await;
        let (a, progress) = store
            .approve_own_proposal(
                id,
                "local:alice",
                &judged,
                "asked for it",
                &ApprovalRule::default(),
            )
            .await
            .expect("own request");
        assert_eq!(
            (progress, a.state),
            (ApprovalProgress::Complete, ActionState::Approved)
        );
        assert_eq!(a.risk, Some(judged.risk));
        let approved = &events_of(&store, id).await[0];
        assert_eq!(approved.kind, "action.approved");
        assert_eq!(payload(approved)["approvers"], json!(["local:alice"]));
        assert_eq!(store.approvals_of(id).await.expect("read").len(), 1);
        // Again, on an action no longer proposed: refused.
        let e = store
            .approve_own_proposal(
                id,
                "local:alice",
                &judged,
                "again",
                &ApprovalRule::default(),
            )
            .await
            .expect_err("not proposed");
        assert!(matches!(e, StoreError::Conflict { .. }), "{e}");

        // Self-approval off: refused, and nothing is written.
        let id = proposed(store.clone()).await;
        let before = all_events(&store).await.len();
        let rule = ApprovalRule {
            self_approval: false,
            ..ApprovalRule::default()
        };
        let e = store
            .approve_own_proposal(id, "user:alice", &judged, "mine", &rule)
            .await
            .expect_err("own request");
        assert!(
            matches!(
                e,
                StoreError::ApprovalRefused(ApprovalRefusal::OwnRequest { .. })
            ),
            "{e}"
        );
        assert_eq!(all_events(&store).await.len(), before, "nothing written");
        assert_eq!(
            store.action(id).await.expect("action").state,
            ActionState::Proposed
        );

        // A rule that needs two: the asker's counts as one, and it waits.
        let id = proposed(store.clone()).await;
        let rule = ApprovalRule {
            self_approval: true,
            approvers: 2,
            critical_approvers: 2,
        };
        let (a, progress) = store
            .approve_own_proposal(id, "local:alice", &judged, "mine", &rule)
            .await
            .expect("counted");
        assert_eq!(progress, ApprovalProgress::Waiting { more: 1 });
        assert_eq!(a.state, ActionState::PendingApproval);
        assert!(a.pending_since.is_some());
        let e = store
            .approve(id, "user:alice", None, &rule)
            .await
            .expect_err("the same person twice");
        assert!(
            matches!(
                e,
                StoreError::ApprovalRefused(ApprovalRefusal::AlreadyApproved { .. })
            ),
            "{e}"
        );
        let (a, _) = store
            .approve(id, "user:bob", None, &rule)
            .await
            .expect("bob");
        assert_eq!(a.state, ActionState::Approved);
        assert!(store.verify(None).await.expect("verify").is_intact());
    }
}
