//! One chat, end to end in headless Chromium: a person asks in the chat
//! page, the planner (a scripted model endpoint) runs a read-only command
//! unattended, proposes one that needs approval, which the person approves
//! from the conversation itself, and finishes with a summary; the answer
//! to a follow-up shows on the page while it is being written. Screenshots
//! of the conversation at phone and desktop widths go to docs/screenshots/.

use std::time::{Duration, Instant};

use jarvis_tests::browser::{Browser, DESKTOP, PHONE};
use jarvis_tests::llm_stub::{LlmStub, STUB_MODEL, Step};
use jarvis_tests::server::Served;
use jarvis_tests::{Env, marker};
use serde_json::{Value, json};

/// One action card of the conversation on screen, found by its command.
#[derive(Debug)]
struct Card {
    id: String,
    state: String,
    can_approve: bool,
}

async fn card(browser: &Browser, command: &str) -> Option<Card> {
    let found = browser
        .eval(
            "var cards = document.querySelectorAll('article.chat-action[data-id]');\
             for (var i = 0; i < cards.length; i++) {\
               var c = cards[i];\
               var cmd = c.querySelector('pre.command');\
               if (!cmd || cmd.textContent.trim() !== arguments[0]) continue;\
               var st = c.querySelector('.state[data-state]');\
               return { id: c.getAttribute('data-id'),\
                        state: st ? st.getAttribute('data-state') : '',\
                        approve: !!c.querySelector('form.decide button.approve') };\
             }\
             return null;",
            vec![json!(command)],
        )
        .await;
    match found {
        Value::Object(o) => Some(Card {
            id: o["id"].as_str().unwrap_or_default().to_owned(),
            state: o["state"].as_str().unwrap_or_default().to_owned(),
            can_approve: o["approve"].as_bool().unwrap_or(false),
        }),
        _ => None,
    }
}

/// Waits until the card of `command` is in `state`.
async fn wait_card(browser: &Browser, command: &str, state: &str) -> Card {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut last = None;
    loop {
        if let Some(c) = card(browser, command).await {
            if c.state == state {
                return c;
            }
            last = Some(c);
        }
        assert!(
            Instant::now() < deadline,
            "the card of `{command}` did not reach {state} on {}: last {last:?}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the model says to the follow-up, in two halves: the stub holds
/// the answer between them until the test has seen the first on the page.
const FOLLOW_UP_BEFORE: &str = "Yes: the mark ";
const FOLLOW_UP_AFTER: &str = "is still there.";
const FOLLOW_UP_ANSWER: &str = "Yes: the mark is still there.";

/// Waits until the stub's answers have reached `n` gates.
async fn wait_gates(stub: &LlmStub, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(45);
    while stub.gates_reached() < n {
        assert!(
            Instant::now() < deadline,
            "the model was not asked in time ({} gates of {n})",
            stub.gates_reached()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_proposes_waits_for_approval_and_finishes_in_the_browser() {
    let m = marker("chat");
    let file = format!("/tmp/jarvis-{m}");
    let touch = format!("touch {file}");
    let remove = format!("rm -f {file}");
    let summary = format!("The sandbox is up and I left the mark {file}.");
    let stub = LlmStub::start(vec![
        Step::call(
            "propose_command",
            json!({
                "host": "sandbox",
                "command": "uptime",
                "reason": "see how long the host has been up and its load",
                "expected_effect": "reads the uptime; changes nothing"
            }),
        ),
        Step::call(
            "propose_command",
            json!({
                "host": "sandbox",
                "command": touch,
                "reason": "leave a mark that the host was checked",
                "expected_effect": "creates an empty file in /tmp"
            }),
        ),
        Step::call(
            "propose_command",
            json!({
                "host": "sandbox",
                "command": remove,
                "reason": "tidy up the mark",
                "expected_effect": "removes the file again"
            }),
        ),
        Step::call("finish", json!({ "summary": summary })),
        // The follow-up, answered with the whole conversation as history,
        // streamed and held halfway.
        Step::text_held(FOLLOW_UP_BEFORE, FOLLOW_UP_AFTER),
    ])
    .await;
    let llm = format!(
        "[llm]\nbase_url = \"{}\"\nmodel = \"{STUB_MODEL}\"\ntimeout_secs = 5\n",
        stub.base_url()
    );
    let s = Served::start(Env::new("browser-chat", "", ""), &llm, &[]);
    let password = s.add_user("alice", "approver");

    let mut browser = Browser::start().await;
    browser.set_timeout(Duration::from_secs(45));
    browser.set_size(PHONE.0, PHONE.1).await;

    // Sign in, landing on the chat page.
    browser
        .sign_in(
            &format!("{}/chat", s.url),
            "alice",
            &password,
            "form#chat-form",
        )
        .await;
    assert!(
        browser
            .eval("return !document.getElementById('direct-mode')", vec![])
            .await
            .as_bool()
            .unwrap_or(false),
        "a model is configured: no direct-mode note"
    );

    // Ask.
    browser
        .fill(
            "form#chat-form textarea[name=prompt]",
            "check that the sandbox is up, then leave a mark in /tmp",
        )
        .await;
    browser.click("button#chat-send").await;
    browser.wait_for("#conversation").await;
    let url = browser.url().await;
    let conversation = url
        .rsplit_once("/chat/")
        .map(|(_, id)| id.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("a conversation page: {url}"));
    browser
        .wait_text("#conversation .chat-user", "leave a mark in /tmp")
        .await;

    // The read-only command ran unattended; the change waits for a person,
    // with the queue's buttons right in the conversation.
    let up = wait_card(&browser, "uptime", "succeeded").await;
    let pending = wait_card(&browser, &touch, "pending_approval").await;
    assert!(pending.can_approve, "an approver sees approve: {pending:?}");
    assert!(!up.can_approve, "nothing to approve on a finished action");
    let state = browser.text("#conversation-state").await;
    assert!(state.contains("active"), "{state}");
    let selector = format!("article.chat-action[data-id=\"{}\"]", pending.id);
    let up_selector = format!("article.chat-action[data-id=\"{}\"]", up.id);
    assert!(
        !std::path::Path::new(&file).exists(),
        "nothing ran before the approval"
    );
    // On a phone and a desktop: the pending card tells the queue's story
    // (the agent's reason, the risk and the reasons that decided), and the
    // finished one shows what it printed, inline.
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        let reasons = browser.text(&format!("{selector} ul.reasons")).await;
        assert!(
            !reasons.trim().is_empty(),
            "{w}px: the policy's reasons are shown"
        );
        let risk = browser.text(&format!("{selector} .risk-badge")).await;
        assert!(
            risk.chars().any(|c| c.is_ascii_digit()),
            "{w}px: risk badge: {risk}"
        );
        let why = browser.text(&format!("{selector} .purpose-reason")).await;
        assert_eq!(
            why.trim(),
            "leave a mark that the host was checked",
            "{w}px"
        );
        let asked = browser.text(&format!("{selector} .asked-by")).await;
        assert!(asked.contains("alice"), "{w}px: who asked: {asked}");
        let printed = browser.text(&format!("{up_selector} .chat-output")).await;
        assert!(
            printed.contains("load"),
            "{w}px: uptime's output, inline: {printed}"
        );
    }
    browser.set_size(PHONE.0, PHONE.1).await;
    browser.shoot("chat").await;

    // Approve from the conversation: the form comes back to it, at the
    // action's card, which then shows the run.
    browser.set_size(PHONE.0, PHONE.1).await;
    browser
        .click(&format!("{selector} form.decide button.approve"))
        .await;
    browser
        .wait_text("p.flash", "the conversation goes on with its result")
        .await;
    let url = browser
        .eval("return location.pathname + location.hash", vec![])
        .await;
    assert_eq!(
        url,
        json!(format!("/chat/{conversation}#action-{}", pending.id))
    );
    // Deny the next step with a reason: the model hears the person's words.
    let tidy = wait_card(&browser, &remove, "pending_approval").await;
    let tidy_selector = format!("article.chat-action[data-id=\"{}\"]", tidy.id);
    browser
        .fill(
            &format!("{tidy_selector} input[name=reason]"),
            "keep the mark for the audit",
        )
        .await;
    browser
        .click(&format!("{tidy_selector} form.decide button.deny"))
        .await;
    browser.wait_text("#conversation-state", "finished").await;
    browser.wait_text("#conversation-summary", &summary).await;
    let heard = stub.requests().iter().any(|r| {
        r["messages"].as_array().is_some_and(|m| {
            m.iter().any(|m| {
                m["role"] == "tool"
                    && m["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("keep the mark for the audit"))
            })
        })
    });
    assert!(heard, "the deny reason reached the model");
    // And the conversation shows it with the action, at either size.
    for (w, h) in [PHONE, DESKTOP] {
        browser.set_size(w, h).await;
        browser
            .wait_text(
                &format!("{tidy_selector} .people-said"),
                "alice rejected it: keep the mark for the audit",
            )
            .await;
    }
    browser.set_size(PHONE.0, PHONE.1).await;
    let done = wait_card(&browser, &touch, "succeeded").await;
    assert_eq!(done.id, pending.id);
    assert!(!done.can_approve);
    let state = browser
        .eval(
            "return document.getElementById('conversation-state').getAttribute('data-state')",
            vec![],
        )
        .await;
    assert_eq!(state, json!("finished"));
    assert!(
        std::path::Path::new(&file).exists(),
        "the approved command ran on the host: {file}"
    );

    // Say more, from the reply box under the answer.
    browser
        .fill("form#reply-form textarea#prompt", "did the mark stay?")
        .await;
    browser.click("button#reply-send").await;
    // The answer's text shows while it is written, before the turn ends.
    browser.wait_for("html[data-live-chat=open]").await;
    wait_gates(&stub, 1).await;
    stub.open_gate();
    wait_gates(&stub, 2).await;
    browser
        .wait_text(
            "#conversation .chat-live.is-writing .chat-text",
            FOLLOW_UP_BEFORE.trim_end(),
        )
        .await;
    let state = browser
        .eval(
            "return document.getElementById('conversation-state').getAttribute('data-state')",
            vec![],
        )
        .await;
    assert_eq!(state, json!("active"), "shown before the turn ended");
    stub.open_gate();
    browser
        .wait_text("#conversation-summary", FOLLOW_UP_ANSWER)
        .await;
    browser.wait_text("#conversation-state", "finished").await;
    let asked = stub.requests();
    let last = asked.last().expect("the follow-up request");
    let said: Vec<&str> = last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        said,
        [
            "check that the sandbox is up, then leave a mark in /tmp",
            "did the mark stay?"
        ]
    );

    // Both actions are the conversation's, and it is listed on /chat.
    for id in [&up.id, &pending.id] {
        let shown = s.env.show(id);
        assert_eq!(
            shown["action"]["requester"],
            json!(format!("chat:{conversation}")),
            "{shown:#}"
        );
    }
    browser.goto(&format!("{}/chat", s.url)).await;
    browser
        .wait_for(&format!(
            "#conversations li[data-id=\"{conversation}\"] a[href=\"/chat/{conversation}\"]"
        ))
        .await;
    assert_eq!(stub.remaining(), 0, "the whole script was used");
    browser.close().await;
    let _ = std::fs::remove_file(&file);
}

/// The chat form over plain HTTP: the CSRF token and the role are checked
/// (and refusals audited), and without a model a command is proposed as is
/// and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_forms_are_guarded_and_direct_mode_runs_a_command() {
    use jarvis_tests::server::Person;
    use reqwest::StatusCode;

    let s = Served::start(Env::new("chat-forms", "", ""), "", &[]);
    let alice_password = s.add_user("alice", "approver");
    let vic_password = s.add_user("vic", "viewer");
    let alice = Person::sign_in(&s, "alice", &alice_password).await;
    let vic = Person::sign_in(&s, "vic", &vic_password).await;

    let (status, page) = alice.page("/chat").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"chat-form\""), "{page}");
    assert!(page.contains("id=\"direct-mode\""), "no model: {page}");

    // Without the form's token, nothing starts.
    let (status, _, _) = alice.form("/chat", &[("prompt", "uptime")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A viewer has no form, and a forged post is refused.
    let (_, page) = vic.page("/chat").await;
    assert!(!page.contains("chat-form"), "{page}");
    let csrf = vic.csrf("/chat").await;
    let (status, _, _) = vic
        .form("/chat", &[("csrf", &csrf), ("prompt", "uptime")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refused: Vec<_> = s
        .audit("access.refused")
        .into_iter()
        .filter(|e| e.to_string().contains("start conversations"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");

    // An empty message is refused as such.
    let csrf = alice.csrf("/chat").await;
    let (status, _, _) = alice
        .form("/chat", &[("csrf", &csrf), ("prompt", "   ")])
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Direct mode: the command is proposed as is, runs, and the
    // conversation finishes.
    let (status, headers, _) = alice
        .form("/chat", &[("csrf", &csrf), ("prompt", "uptime")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a location")
        .to_owned();
    assert!(to.starts_with("/chat/"), "{to}");
    let deadline = Instant::now() + Duration::from_secs(45);
    let page = loop {
        let (status, page) = alice.page(&to).await;
        assert_eq!(status, StatusCode::OK);
        if !page.contains("id=\"conversation-state\" class=\"badge state-running\"") {
            break page;
        }
        assert!(Instant::now() < deadline, "still active: {page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        page.contains("data-state=\"finished\">finished</span>"),
        "{page}"
    );
    assert!(page.contains("class=\"card chat-action"), "{page}");
    assert!(
        page.contains("data-state=\"succeeded\">succeeded</span>"),
        "{page}"
    );
    assert!(page.contains("<code>uptime</code>"), "{page}");

    // A conversation that does not exist, or is not an id, is a 404.
    for path in [
        "/chat/not-an-id",
        "/chat/01900000-0000-7000-8000-000000000000",
    ] {
        assert_eq!(alice.page(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}
