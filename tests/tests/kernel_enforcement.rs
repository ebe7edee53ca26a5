//! The third wall as the gateway sees it: how much of the kernel wall a host
//! enforces (`jarvis hosts check`, the hosts page, the API), and what its
//! `enforcement` setting makes of that. The sandbox's two keys give two
//! hosts on one machine: `sandbox`, whose guard applies Landlock, and
//! `sandbox-nokernel`, whose forced command switches it off.

use std::process::Output;
use std::time::{Duration, Instant};

use jarvis_core::{ActionState, Decision, HostName};
use jarvis_gateway::{Gateway, GatewayError, Proposal, Work};
use jarvis_tests::server::{Agent, Person, Served};
use jarvis_tests::{Env, action_id, sandbox};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

const HOLD: &str = "`sandbox-nokernel` cannot enforce the kernel wall (none: switched off by the host's forced command (--kernel off)); under enforcement = \"required\" every action on it waits for a person";

#[test]
fn hosts_check_shows_the_shell_and_the_kernel_wall() {
    let env = Env::new("kernel-check", "", "").with_nokernel();
    let check = env.jarvis(&["hosts", "check", "sandbox"]);
    assert_eq!(code(&check), 0, "{}", text(&check.stderr));
    let report = text(&check.stdout);
    assert!(report.contains("shell     GNU bash, version "), "{report}");
    assert!(report.contains("kernel    full (Landlock ABI "), "{report}");
    assert!(
        report.contains("enforcement = \"required\": unattended actions allowed"),
        "{report}"
    );

    let check = env.jarvis(&["hosts", "check", "sandbox-nokernel"]);
    assert_eq!(code(&check), 0, "{}", text(&check.stderr));
    let report = text(&check.stdout);
    assert!(
        report
            .contains("kernel    none: switched off by the host's forced command (--kernel off)\n"),
        "{report}"
    );
    assert!(
        report.contains("enforcement = \"required\": every action waits for a person"),
        "{report}"
    );

    env.set_enforcement("sandbox-nokernel", "best-effort");
    let check = env.jarvis(&["hosts", "check", "sandbox-nokernel"]);
    let report = text(&check.stdout);
    assert!(
        report.contains(
            "enforcement = \"best-effort\": unattended actions run without the full kernel wall"
        ),
        "{report}"
    );
    let list = text(&env.jarvis(&["hosts", "list"]).stdout);
    assert!(list.contains("enforcement best-effort"), "{list}");
}

#[test]
fn without_the_kernel_wall_every_action_waits_for_a_person_under_required() {
    let env = Env::new("kernel-required", "", "").with_nokernel();
    // What the policy lets run alone where the kernel holds it...
    let out = env.jarvis(&["run", "--host", "sandbox", "--", "uptime"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        env.show(&action_id(&text(&out.stderr)))["action"]["decision"],
        "allow"
    );

    // ...waits where it cannot, and says why.
    let out = env.jarvis(&["run", "--host", "sandbox-nokernel", "--", "uptime"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains(HOLD), "{err}");
    assert!(err.contains("waiting for approval"), "{err}");
    let id = action_id(&err);
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "pending_approval");
    assert_eq!(show["action"]["decision"], "approve");
    assert_eq!(show["action"]["reasons"][0], HOLD);
    assert!(show["run"].is_null(), "nothing ran: {show:#}");
    assert!(
        sandbox().guard_log_lines(&id).is_empty(),
        "the host never saw it"
    );
    let pending = show["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "action.pending_approval")
        .expect("the move to pending is audited");
    assert_eq!(pending["payload"]["kernel"]["level"], "none");
    assert_eq!(pending["payload"]["kernel"]["enforcement"], "required");

    // A person approves, and it runs.
    let approve = env.jarvis(&["approve", &id]);
    assert_eq!(code(&approve), 0, "{}", text(&approve.stderr));
    assert!(
        text(&approve.stdout).contains(" up "),
        "{}",
        text(&approve.stdout)
    );
    let show = env.show(&id);
    assert_eq!(show["action"]["state"], "succeeded");
    let logged = sandbox().guard_log_lines(&id);
    assert!(
        logged.iter().any(|l| l["result"] == "ran"),
        "the guard ran it: {logged:?}"
    );

    // A denial stays a denial: nothing about the kernel, nothing sent.
    let out = env.jarvis(&["run", "--host", "sandbox-nokernel", "--", "rm -rf /"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(!err.contains("kernel wall"), "{err}");
}

#[test]
fn best_effort_lets_the_policy_decide_and_records_the_wall() {
    let env = Env::new("kernel-best-effort", "", "").with_nokernel();
    env.set_enforcement("sandbox-nokernel", "best-effort");
    let out = env.jarvis(&["run", "--host", "sandbox-nokernel", "--", "uptime"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(text(&out.stdout).contains(" up "), "{}", text(&out.stdout));
    let show = env.show(&action_id(&err));
    assert_eq!(show["action"]["decision"], "allow");
    assert_eq!(show["action"]["state"], "succeeded");
    let events = show["events"].as_array().expect("events");
    let running = events
        .iter()
        .find(|e| e["kind"] == "action.running")
        .expect("running");
    assert_eq!(running["payload"]["kernel"]["enforcement"], "best-effort");
    // What the guard said the run had (no wall, and why) is kept with the
    // run and in its audit event, and said on the CLI's last line.
    let line = show["run"]["kernel"].as_str().unwrap_or("");
    assert!(line.contains("switched off"), "{show:#}");
    let done = events
        .iter()
        .find(|e| e["kind"] == "action.succeeded")
        .expect("succeeded");
    assert_eq!(done["payload"]["run"]["kernel"], line);
    assert!(err.contains("switched off"), "{err}");
}

async fn open(config: &std::path::Path, db: &std::path::Path) -> Gateway {
    jarvis_tests::gateway(config, db, "k").await
}

#[tokio::test]
async fn an_unattended_action_whose_host_lost_the_wall_goes_back_to_a_person() {
    let env = Env::new("kernel-lost", "", "");
    let db = env.dir().join("lost.db");
    let host = HostName::parse("sandbox").expect("name");
    let gw = open(&env.config, &db).await;
    let proposed = gw
        .propose(Proposal {
            requester: "test".into(),
            host: host.clone(),
            work: Work::Command {
                line: "uptime".into(),
                cwd: None,
            },
            timeout: None,
            purpose: None,
        })
        .await
        .expect("proposed");
    assert_eq!(proposed.action.state, ActionState::Approved);
    assert_eq!(proposed.action.decision, Some(Decision::Allow));
    gw.close().await;

    // The same host, now reached through a forced command with the kernel
    // wall switched off: as if its owner had changed it since.
    let text = std::fs::read_to_string(&env.config).expect("config");
    let lost = env.dir().join("lost.toml");
    std::fs::write(
        &lost,
        text.replacen(
            &format!("identity = \"{}\"", sandbox().identity.display()),
            &format!("identity = \"{}\"", sandbox().identity_nokernel.display()),
            1,
        ),
    )
    .expect("write config");
    let gw = open(&lost, &db).await;
    let id = proposed.action.id;
    let err = gw
        .execute(id, "test", &mut |_| {})
        .await
        .expect_err("not run");
    assert!(
        matches!(err, GatewayError::KernelUnenforced { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("`sandbox` can no longer enforce the kernel wall (none: switched off"),
        "{err}"
    );
    let action = gw.store().action(id).await.expect("action");
    assert_eq!(action.state, ActionState::PendingApproval);
    assert_eq!(action.decision, Some(Decision::Approve));
    assert!(
        action.reasons[0].contains("under enforcement = \"required\" every action on it waits"),
        "{:?}",
        action.reasons
    );
    assert!(gw.store().run_of(id).await.expect("run").is_none());
    assert!(sandbox().guard_log_lines(&id.to_string()).is_empty());

    // Once a person approves, it runs, with the rights of an approved action.
    gw.approve(id, "alice", None).await.expect("approved");
    let done = gw.execute(id, "alice", &mut |_| {}).await.expect("ran");
    assert_eq!(done.state, ActionState::Succeeded);
    gw.close().await;
}

/// A `jarvis` command lives for one action: what another process learnt of
/// a host's kernel wall over the same connection, less than a couple of
/// minutes ago, is taken from the store instead of asking the host again.
#[tokio::test]
async fn a_fresh_answer_kept_in_the_store_is_not_asked_again() {
    let env = Env::new("kernel-kept", "", "");
    let db = env.dir().join("kept.db");
    let gw = open(&env.config, &db).await;
    let first = gw
        .propose(jarvis_tests::proposal("test", "uptime"))
        .await
        .expect("proposed");
    assert_eq!(first.action.state, ActionState::Approved);
    let kept = gw
        .store()
        .host_kernel("sandbox")
        .await
        .expect("read")
        .expect("the host's answer is kept");
    let report: Value = serde_json::from_str(&kept.report).expect("json");
    assert_eq!(report["level"], "full", "{report}");
    // Another answer kept over the same connection, as if the host had
    // lost its wall since: a new gateway believes it without asking.
    gw.store()
        .record_host_kernel(
            "sandbox",
            &kept.connection,
            &json!({"level": "none", "missing": ["a test's word"]}).to_string(),
        )
        .await
        .expect("recorded");
    gw.close().await;

    let gw = open(&env.config, &db).await;
    let second = gw
        .propose(jarvis_tests::proposal("test", "uptime"))
        .await
        .expect("proposed");
    assert_eq!(second.action.state, ActionState::PendingApproval);
    assert!(
        second
            .judgement
            .reasons
            .iter()
            .any(|r| r.contains("a test's word")),
        "{:?}",
        second.judgement.reasons
    );
    gw.close().await;
}

#[tokio::test]
async fn the_hosts_page_and_the_api_show_the_kernel_wall() {
    let s = Served::start(Env::new("kernel-http", "", "").with_nokernel(), "", &[]);
    let agent = Agent::new(&s, s.add_token("agent", "propose"));
    // The server checks every host when it starts; wait for both answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    let hosts = loop {
        let (status, body) = agent.get("/api/v1/hosts").await;
        assert_eq!(status, StatusCode::OK, "{body:#}");
        let hosts = body["hosts"].as_array().cloned().unwrap_or_default();
        if hosts.len() == 2 && hosts.iter().all(|h| h["kernel"]["level"] != "unknown") {
            break hosts;
        }
        assert!(Instant::now() < deadline, "never checked: {body:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let of = |name: &str| -> Value {
        hosts
            .iter()
            .find(|h| h["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {hosts:#?}"))
    };
    let full = of("sandbox");
    assert_eq!(full["kernel"]["level"], "full", "{full:#}");
    assert_eq!(full["kernel"]["enforcement"], "required");
    assert_eq!(full["kernel"]["unattended"], true);
    assert!(
        full["shell"]
            .as_str()
            .is_some_and(|b| b.starts_with("GNU bash")),
        "{full:#}"
    );
    let none = of("sandbox-nokernel");
    assert_eq!(none["kernel"]["level"], "none", "{none:#}");
    assert_eq!(
        none["kernel"]["detail"],
        "none: switched off by the host's forced command (--kernel off)"
    );
    assert_eq!(none["kernel"]["unattended"], false);
    assert_eq!(
        none["kernel"]["consequence"],
        "every action waits for a person"
    );

    let alice = Person::sign_in(&s, "alice", &s.add_user("alice", "approver")).await;
    let (status, page) = alice.page("/hosts").await;
    assert_eq!(status, StatusCode::OK);
    for want in [
        "badge kernel good\">full</span> (Landlock ABI ",
        "badge kernel warn\">none</span> switched off by the host&#39;s forced command (--kernel off)",
        "enforcement = <code>required</code>: every action waits for a person",
        "enforcement = <code>required</code>: unattended actions allowed",
    ] {
        assert!(page.contains(want), "{want} missing from:\n{page}");
    }

    // The API proposes through the same pipeline: the same hold.
    let (status, body) = agent
        .post(
            "/api/v1/actions",
            json!({ "host": "sandbox-nokernel", "command": "uptime" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    assert_eq!(body["action"]["state"], "pending_approval", "{body:#}");
    assert_eq!(body["action"]["reasons"][0], HOLD);
}
