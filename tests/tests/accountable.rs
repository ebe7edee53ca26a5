//! Who answers for an action, and rollbacks under the approval rule: an
//! insider's attempts against a two-person rule, each refused. The library
//! pipeline and the `jarvis` binary against the sandbox host (a token's
//! refused web forms are in server_rules.rs, in process).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jarvis_core::{ActionId, ActionState, ApprovalProgress, ApprovalRefusal, HostName, TokenScope};
use jarvis_exec::ExecError;
use jarvis_gateway::{Gateway, GatewayError, Proposal, Work};
use jarvis_store::{ActionRecord, AuditFilter};
use jarvis_tests::fixtures::HostRepo;
use jarvis_tests::{Env, marker};
use serde_json::json;

/// The reviewer's rule: nobody approves their own request, and a critical
/// action needs two people.
const TWO_PERSON: &str = "[approvals]\nself_approval = false\ncritical_approvers = 2\n";

/// `env` with `section` appended to its config.
fn with(env: Env, section: &str) -> Env {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&env.config)
        .expect("open config");
    writeln!(f, "\n{section}").expect("write config");
    env
}

async fn open(env: &Env) -> Gateway {
    jarvis_tests::gateway(&env.config, &env.dir().join("jarvis.db"), "acc").await
}

fn sandbox_host() -> HostName {
    HostName::parse("sandbox").expect("valid")
}

/// Proposes `command` in `repo` as `requester`.
async fn propose_in(gw: &Gateway, repo: &HostRepo, requester: &str, command: &str) -> ActionRecord {
    gw.propose(Proposal {
        requester: requester.into(),
        host: sandbox_host(),
        work: Work::Command {
            line: command.into(),
            cwd: Some(repo.path.display().to_string()),
        },
        timeout: None,
        purpose: None,
    })
    .await
    .expect("propose")
    .action
}

/// Approves `id` by each of `approvers` (the last one completes it) and
/// runs it; it must succeed.
async fn approve_and_run(gw: &Gateway, id: ActionId, approvers: &[&str]) -> ActionRecord {
    for (i, who) in approvers.iter().enumerate() {
        let (_, progress) = gw.approve(id, who, None).await.expect("approve");
        let last = i + 1 == approvers.len();
        assert_eq!(
            progress == ApprovalProgress::Complete,
            last,
            "{who}: {progress:?}"
        );
    }
    let done = gw
        .execute(id, approvers[approvers.len() - 1], &mut |_| {})
        .await
        .expect("run");
    assert_eq!(done.state, ActionState::Succeeded, "{:?}", done.reasons);
    done
}

fn refused_as_own(e: &GatewayError) -> bool {
    matches!(
        e,
        GatewayError::ApprovalRefused {
            why: ApprovalRefusal::OwnRequest { .. },
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_conversation_a_token_started_proposes_is_the_tokens_makers() {
    let env = with(Env::new("acc-chat", "", ""), TWO_PERSON);
    let gw = Arc::new(open(&env).await);
    gw.store()
        .create_token("bot", TokenScope::Propose, &"ef".repeat(32), "user:alice")
        .await
        .expect("token");
    // A conversation the token started (in direct mode: the message is a
    // command, proposed as is and waited on).
    let m = marker("acc-chat");
    let chat = tokio::spawn({
        let gw = gw.clone();
        let prompt = format!("touch /tmp/{m}");
        async move { gw.chat("token:bot", &prompt, None, &mut |_| {}).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let action = loop {
        let pending = gw
            .store()
            .actions(Some(ActionState::PendingApproval), 10)
            .await
            .expect("actions");
        if let Some(a) = pending.into_iter().find(|a| a.command.contains(&m)) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "the conversation proposed nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        action.requester.starts_with("chat:"),
        "{}",
        action.requester
    );
    assert_eq!(action.accountable, "user:alice");
    // The token's maker may not approve it, from the web UI or the shell.
    for alice in ["user:alice", "local:alice"] {
        let e = gw
            .approve(action.id, alice, None)
            .await
            .expect_err("the maker's own request");
        assert!(refused_as_own(&e), "{e}");
        assert!(e.to_string().contains("user:alice is accountable"), "{e}");
    }
    // Someone else approves; the conversation sees it run and finishes.
    approve_and_run(&gw, action.id, &["user:bob"]).await;
    let outcome = chat.await.expect("joined").expect("chat");
    assert!(outcome.finished, "{}", outcome.summary);
    gw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_alone_can_neither_roll_back_nor_get_the_change_back() {
    let tag = "acc-rollback";
    let env = with(Env::with_snapshots(tag, ""), TWO_PERSON);
    let gw = open(&env).await;
    let repo = HostRepo::new(tag);
    let before = repo.state();
    // Carol's change, approved by Bob.
    let change = propose_in(
        &gw,
        &repo,
        "user:carol",
        "git commit -qam 'change the port'",
    )
    .await;
    assert_eq!(change.state, ActionState::PendingApproval);
    approve_and_run(&gw, change.id, &["user:bob"]).await;
    let changed = repo.state();
    assert_ne!(changed, before);

    // Alice asks for a rollback: it waits, at the change's risk at least,
    // and she cannot approve or run it herself.
    let asked = gw
        .rollback(change.id, "local:alice", false)
        .await
        .expect("asked");
    let rb = asked.rollback;
    assert_eq!(rb.state, ActionState::PendingApproval, "{:?}", rb.reasons);
    assert!(asked.report.is_none());
    assert_eq!(rb.accountable, "local:alice");
    assert!(rb.risk >= change.risk, "{:?} < {:?}", rb.risk, change.risk);
    assert_eq!(repo.state(), changed, "nothing ran");
    for alice in ["local:alice", "user:alice"] {
        let e = gw.approve(rb.id, alice, None).await.expect_err("her own");
        assert!(refused_as_own(&e), "{e}");
    }
    let e = gw
        .execute(rb.id, "local:alice", &mut |_| {})
        .await
        .expect_err("not approved");
    assert!(matches!(e, GatewayError::WrongState { .. }), "{e}");
    // Not a second one while it waits.
    let e = gw
        .rollback(change.id, "local:alice", true)
        .await
        .expect_err("one at a time");
    assert!(e.to_string().contains("must be decided"), "{e}");
    // Another approver: it runs, and the change is undone.
    let done = approve_and_run(&gw, rb.id, &["user:bob"]).await;
    assert_eq!(done.state, ActionState::Succeeded);
    assert_eq!(repo.state(), before);
    assert_eq!(
        gw.store().action(change.id).await.expect("read").state,
        ActionState::RolledBack
    );

    // Alice rolls back the rollback, which would put the change back: the
    // full rule, so again not alone.
    let again = gw
        .rollback(rb.id, "local:alice", false)
        .await
        .expect("asked")
        .rollback;
    assert_eq!(again.state, ActionState::PendingApproval);
    assert!(
        again
            .reasons
            .iter()
            .any(|r| r.contains("full approval rule")),
        "{:?}",
        again.reasons
    );
    let e = gw
        .approve(again.id, "user:alice", None)
        .await
        .expect_err("her own");
    assert!(refused_as_own(&e), "{e}");
    assert_eq!(repo.state(), before, "the change is not back");
    approve_and_run(&gw, again.id, &["user:bob"]).await;
    assert_eq!(repo.state(), changed);

    // Each step is in the chain: who asked, who approved.
    let approved = gw
        .store()
        .events(&AuditFilter {
            kind: Some("action.approved".into()),
            action_id: Some(again.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].actor, "user:bob");
    assert!(gw.store().verify(None).await.expect("verify").is_intact());
    gw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_one_approver_force_and_a_rollback_of_a_rollback_still_need_the_full_rule() {
    let tag = "acc-one";
    let env = with(
        Env::with_snapshots(tag, ""),
        "[approvals]\nself_approval = false\napprovers = 2\nrollback = \"one-approver\"\n",
    );
    let gw = open(&env).await;
    let repo = HostRepo::new(tag);
    let before = repo.state();
    let change = propose_in(&gw, &repo, "user:carol", "git commit -qam one").await;
    approve_and_run(&gw, change.id, &["user:bob", "user:dave"]).await;
    let changed = repo.state();

    // A plain rollback: one approver, someone other than Alice.
    let rb = gw
        .rollback(change.id, "local:alice", false)
        .await
        .expect("asked")
        .rollback;
    assert_eq!(rb.state, ActionState::PendingApproval);
    let rule = gw.approval_rule(&rb).await.expect("rule");
    assert_eq!(rule.needed(rb.risk.expect("judged")), 1);
    let e = gw
        .approve(rb.id, "user:alice", None)
        .await
        .expect_err("own");
    assert!(refused_as_own(&e), "{e}");
    approve_and_run(&gw, rb.id, &["user:bob"]).await;
    assert_eq!(repo.state(), before);

    // Its rollback puts the change back: two others, as for any action.
    let again = gw
        .rollback(rb.id, "local:alice", false)
        .await
        .expect("asked")
        .rollback;
    let rule = gw.approval_rule(&again).await.expect("rule");
    assert_eq!(rule.needed(again.risk.expect("judged")), 2);
    approve_and_run(&gw, again.id, &["user:bob", "user:dave"]).await;
    assert_eq!(repo.state(), changed);

    // A forced rollback overwrites what changed since: two others too.
    let later = propose_in(
        &gw,
        &repo,
        "user:carol",
        "git commit -q --allow-empty -m two",
    )
    .await;
    approve_and_run(&gw, later.id, &["user:bob", "user:dave"]).await;
    let changed_again = repo.state();
    let forced = gw
        .rollback(later.id, "local:alice", true)
        .await
        .expect("asked")
        .rollback;
    assert_eq!(forced.state, ActionState::PendingApproval);
    assert!(jarvis_gateway::rollback::rollback_forced(&forced));
    let rule = gw.approval_rule(&forced).await.expect("rule");
    assert_eq!(rule.needed(forced.risk.expect("judged")), 2);
    let (_, progress) = gw.approve(forced.id, "user:bob", None).await.expect("bob");
    assert_eq!(progress, ApprovalProgress::Waiting { more: 1 });
    let (_, progress) = gw
        .approve(forced.id, "user:dave", None)
        .await
        .expect("dave");
    assert_eq!(progress, ApprovalProgress::Complete);

    // Approved to put back `later`, it puts back nothing else: pointed at
    // another action behind Jarvis's back, it is refused before it runs.
    let db = env.dir().join("jarvis.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(
            "UPDATE actions SET rollback_of = '{}' WHERE id = '{}'",
            change.id, forced.id
        ))
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = gw
        .execute(forced.id, "user:dave", &mut |_| {})
        .await
        .expect_err("another action named");
    // The proposal's commitment names it; the command does too.
    let why = e.to_string();
    assert!(
        why.contains("rollback_of") || why.contains("does not name the action"),
        "{why}"
    );
    assert_eq!(repo.state(), changed_again, "nothing ran");
    gw.close().await;
}

#[test]
fn the_owners_quick_path_and_what_it_does_not_cover() {
    let tag = "acc-quick";
    let env = with(
        Env::with_snapshots(tag, ""),
        "[approvals]\nrollback = \"one-approver\"\n",
    );
    let repo = HostRepo::new(tag);
    let before = repo.state();
    let cwd = repo.path.display().to_string();
    let commit = |message: &str| {
        let out = env.jarvis(&[
            "run",
            "--host",
            "sandbox",
            "--cwd",
            &cwd,
            "--",
            &format!("git commit -q --allow-empty -m {message}"),
        ]);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = env.jarvis(&["approve", &id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        id
    };
    // The owner's own request is the approval: it runs at once.
    let first = commit("one");
    let out = env.jarvis(&["rollback", &first]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("succeeded"), "{stderr}");
    assert_eq!(repo.state(), before);
    // Forced, it waits for an approval, and says how to give it.
    let second = commit("two");
    let changed = repo.state();
    let out = env.jarvis(&["rollback", &second, "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let rb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        stderr.contains("waits for approval") && stderr.contains(&format!("jarvis approve {rb}")),
        "{stderr}"
    );
    assert_eq!(repo.state(), changed, "nothing ran");
    let out = env.jarvis(&["approve", &rb]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("put back as the snapshot found it"),
        "the host's report is the output"
    );
    assert_eq!(env.show(&second)["action"]["state"], "rolled_back");
    assert_eq!(env.show(&rb)["action"]["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_persons_conversations_share_one_requester_limit() {
    let env = Env::new(
        "acc-limits",
        "",
        "requester_rate_per_minute = 1\nrequester_burst = 1",
    );
    let gw = open(&env).await;
    let store = gw.store();
    let first = store
        .create_conversation("user:alice", "check the disks")
        .await
        .expect("start");
    let second = store
        .create_conversation("local:alice", "check the load")
        .await
        .expect("start");
    let bobs = store
        .create_conversation("user:bob", "check the time")
        .await
        .expect("start");
    let m = marker("acc-limits");
    let run = async |requester: String, n: u32| {
        let p = gw
            .propose(Proposal {
                requester,
                host: sandbox_host(),
                work: Work::Command {
                    line: format!("echo {m}-{n}"),
                    cwd: None,
                },
                timeout: None,
                purpose: None,
            })
            .await
            .expect("propose");
        assert_eq!(
            p.action.state,
            ActionState::Approved,
            "{:?}",
            p.judgement.reasons
        );
        gw.execute(p.action.id, "gateway", &mut |_| {}).await
    };
    let ran = run(first.id.requester(), 1)
        .await
        .expect("within the burst");
    assert_eq!(ran.state, ActionState::Succeeded);
    // Alice's second conversation is still Alice.
    let refused = run(second.id.requester(), 2)
        .await
        .expect_err("alice's burst is spent");
    assert!(
        matches!(
            &refused,
            GatewayError::NotSent {
                source: ExecError::RateLimited(_),
                ..
            }
        ),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("requester `alice`"),
        "{refused}"
    );
    // Bob has his own.
    let ran = run(bobs.id.requester(), 3).await.expect("bob's own limit");
    assert_eq!(ran.state, ActionState::Succeeded);
    let refusals = store
        .events(&AuditFilter {
            kind: Some("action.refused".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("events");
    assert_eq!(refusals.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&refusals[0].payload).expect("json");
    assert_eq!(payload["code"], json!("rate-limited"));
    gw.close().await;
}
