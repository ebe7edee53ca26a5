//! A person's night with Jarvis, in headless Chromium: sign in, see an
//! agent's proposal arrive live, read its reasons and preview, approve it,
//! watch it run and its output appear, find it in the audit log, and roll
//! it back (asking, then approving the rollback). Screenshots of the queue, an action and the audit log at phone
//! and desktop widths go to docs/screenshots/ (linked from the README).

use std::time::Duration;

use jarvis_tests::browser::{Browser, DESKTOP, PHONE};
use jarvis_tests::fixtures::HostRepo;
use jarvis_tests::server::Served;
use jarvis_tests::{Env, marker};
use serde_json::{Value, json};

async fn api(http: &reqwest::Client, s: &Served, token: &str, path: &str) -> Value {
    http.get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_watch_audit_and_roll_back_in_the_browser() {
    let tag = "browser";
    let s = Served::start(Env::with_snapshots(tag, ""), "", &[]);
    let password = s.add_user("alice", "approver");
    let token = s.add_token("planner", "propose");
    let repo = HostRepo::new(tag);
    let before = repo.state();
    let m = marker("night");

    let mut browser = Browser::start().await;
    browser.set_timeout(Duration::from_secs(30));
    browser.set_size(PHONE.0, PHONE.1).await;

    // Sign in.
    browser
        .sign_in(&format!("{}/", s.url), "alice", &password, "#queue-items")
        .await;

    // The agent proposes; the queue shows it without a reload.
    let http = jarvis_tests::server::client();
    let command = format!("git commit -qam 'change the port' && echo committed-{m}");
    let proposed: Value = http
        .post(format!("{}/api/v1/actions", s.url))
        .bearer_auth(&token)
        .json(&json!({
            "host": "sandbox",
            "cwd": repo.path,
            "command": command,
            "reason": "the service moved to port 8080",
            "expected_effect": "commits the new port to the config repository",
        }))
        .send()
        .await
        .expect("propose")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        proposed["action"]["state"], "pending_approval",
        "{proposed:#}"
    );
    let id = proposed["action"]["id"].as_str().expect("id").to_owned();
    let item = format!("article.queue-item[data-id=\"{id}\"]");
    browser.wait_for(&item).await;

    // The card tells the story: who asked (the person behind the token),
    // why in the agent's words, what will change (the preview, made on the
    // host right after the proposal and arriving live: open, coloured by
    // line), what can come back, and the reasons that decided.
    browser.wait_for(&format!("{item} .preview pre.diff")).await;
    // On a phone and a desktop alike: every part is on the card and
    // visible, and the decision stays within reach (with the top of the
    // card in view, Approve is on screen however long the card).
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        let asked = browser.text(&format!("{item} .asked-by")).await;
        assert!(
            asked.contains("through agent token planner"),
            "{w}px: {asked}"
        );
        let why = browser.text(&format!("{item} .purpose-reason")).await;
        assert_eq!(why.trim(), "the service moved to port 8080", "{w}px");
        let effect = browser.text(&format!("{item} .purpose-effect")).await;
        assert!(effect.contains("commits the new port"), "{w}px: {effect}");
        let back = browser.text(&format!("{item} .comes-back")).await;
        assert!(
            back.contains("git repository"),
            "{w}px: what can come back: {back}"
        );
        let added = browser.text(&format!("{item} pre.diff span.d-add")).await;
        assert!(
            added.starts_with('+'),
            "{w}px: an added line, coloured: {added}"
        );
        let colour = browser
            .eval(
                "var a = document.querySelector(arguments[0] + ' pre.diff span.d-add');\
                 var c = document.querySelector(arguments[0] + ' pre.diff span.d-ctx')\
                   || document.querySelector(arguments[0] + ' pre.diff');\
                 return getComputedStyle(a).color !== getComputedStyle(c).color;",
                vec![json!(item)],
            )
            .await;
        assert_eq!(colour, json!(true), "{w}px: added lines stand out");
        let reasons = browser
            .text(&format!("{item} ul.reasons.decisive li"))
            .await;
        assert!(
            !reasons.trim().is_empty(),
            "{w}px: the deciding reasons are shown"
        );
        let shown = browser
            .eval(
                "return document.querySelectorAll(arguments[0]).length",
                vec![json!(format!("{item} ul.reasons.decisive li"))],
            )
            .await;
        assert!(
            shown.as_u64().is_some_and(|n| (1..=2).contains(&n)),
            "{w}px: one or two reasons up front: {shown}"
        );
        let risk = browser.text(&format!("{item} .risk-badge")).await;
        assert!(
            risk.chars().any(|c| c.is_ascii_digit()),
            "{w}px: risk badge: {risk}"
        );
        let reach = browser
            .eval(
                "var card = document.querySelector(arguments[0]);\
                 card.scrollIntoView({block: 'start'});\
                 var b = card.querySelector('form.decide button.approve').getBoundingClientRect();\
                 return b.top >= 0 && b.bottom <= window.innerHeight && b.width > 0;",
                vec![json!(item)],
            )
            .await;
        assert_eq!(reach, json!(true), "Approve within reach at {w}x{h}");
    }
    browser.set_size(PHONE.0, PHONE.1).await;
    let preview = browser
        .eval(
            "return document.querySelector(arguments[0]).textContent",
            vec![json!(format!("{item} .preview"))],
        )
        .await;
    assert!(
        preview.as_str().is_some_and(|p| p.contains("port")),
        "the preview shows the change: {preview}"
    );
    browser.shoot("queue").await;

    // Approve; the action page shows it run and its output appear, and
    // never offers to run it again while it starts or runs.
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.click(&format!("{item} button.approve")).await;
    browser.wait_for("#state").await;
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        let offered = browser
            .eval(
                "var s = document.getElementById('state').getAttribute('data-state');\
                 return [s, !!document.querySelector('form.run button.run')];",
                vec![],
            )
            .await;
        assert!(
            offered[0] == "succeeded" || offered[1] == false,
            "{w}px: no \"Run it now\" while it starts or runs: {offered}"
        );
    }
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.wait_text("#state", "succeeded").await;
    browser
        .wait_text("pre#stdout", &format!("committed-{m}"))
        .await;
    assert_ne!(repo.state(), before, "the commit happened on the host");
    browser.shoot("action").await;

    // It is in the audit log, and the chain is intact.
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.goto(&format!("{}/audit?action={id}", s.url)).await;
    browser.wait_for("#chain-status.ok").await;
    let status = browser.text("#chain-status").await;
    assert!(
        status.contains("intact") && !status.contains(" 0 events"),
        "a current verification: {status}"
    );
    browser
        .wait_text("table.audit tbody", "action.approved")
        .await;
    let rows = browser
        .eval(
            "return document.querySelectorAll('table.audit tbody tr').length",
            vec![],
        )
        .await;
    assert!(rows.as_u64().is_some_and(|n| n >= 4), "{rows}");
    browser.shoot("audit").await;

    // Roll it back: the rollback is an action of its own, which waits for
    // approval under the same rule; alice may approve her own request.
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.goto(&format!("{}/actions/{id}", s.url)).await;
    // The button leads to a confirmation of what comes back; confirming asks.
    browser.click("a.rollback").await;
    browser.click("#confirm button.rollback.confirm").await;
    // The page says so in a one-time flash. The changes that made this
    // page reach its live script later, followed from the audit log; they
    // must not reload it (the flash, and a click, would be lost).
    browser.wait_text(".flash.info", "waits for approval").await;
    browser.wait_text("#state", "waiting for approval").await;
    browser.click("form.decide button.approve").await;
    browser.wait_text("#state", "succeeded").await;
    let original = api(&http, &s, &token, &format!("/api/v1/actions/{id}")).await;
    assert_eq!(original["action"]["state"], "rolled_back", "{original:#}");
    assert_eq!(repo.state(), before, "the repository is as it was");
    browser.close().await;
}
