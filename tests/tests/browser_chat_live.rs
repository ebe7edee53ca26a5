//! The chat page in headless Chromium shows the model's text while it is
//! written: the in-process app (`support/inprocess.rs`, no sandbox host:
//! the model only talks and lists hosts) and a scripted model endpoint
//! whose gates hold each answer until the test has looked at the page.

use std::time::{Duration, Instant};

use jarvis_core::Role;
use jarvis_tests::browser::{Browser, PHONE};
use jarvis_tests::inprocess::spawn_app;
use jarvis_tests::llm_stub::{LlmStub, STUB_MODEL, Step};
use serde_json::{Value, json};

/// Waits until the stub's answers have reached `n` gates.
async fn wait_gates(stub: &LlmStub, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stub.gates_reached() < n {
        assert!(
            Instant::now() < deadline,
            "the model was not asked in time ({} gates of {n})",
            stub.gates_reached()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The turns being written on the page: (still writing, who, text).
async fn live_turns(browser: &Browser) -> Vec<(bool, String, String)> {
    let found = browser
        .eval(
            "return Array.prototype.map.call(document.querySelectorAll('#conversation .chat-live'), function (t) {\
               return [t.classList.contains('is-writing'),\
                       t.querySelector('.chat-who').textContent,\
                       t.querySelector('.chat-text').textContent];\
             });",
            vec![],
        )
        .await;
    found
        .as_array()
        .map(|turns| {
            turns
                .iter()
                .map(|t| {
                    (
                        t[0].as_bool().unwrap_or(false),
                        t[1].as_str().unwrap_or_default().to_owned(),
                        t[2].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_shows_the_text_as_it_is_written() {
    let first = "Let me see which hosts there are.\u{1b}[2J";
    let first_shown = "Let me see which hosts there are.\u{241b}[2J";
    let (before, after) = ("All <b>fine</b> on the ", "sandbox; nothing to do.");
    let stub = LlmStub::start(vec![
        Step::Gated(Box::new(Step::TextAndCalls(
            first.into(),
            vec![("list_hosts".into(), json!({}))],
        ))),
        Step::text_held(before, after),
    ])
    .await;
    let llm = format!(
        "[llm]\nbase_url = \"{}\"\nmodel = \"{STUB_MODEL}\"\ntimeout_secs = 20\n",
        stub.base_url()
    );
    let app = spawn_app("browser-chat-live", &llm).await;
    let password = "a long enough password for bob";
    let hash = jarvis_gateway::auth::hash_password(password).expect("a password hash");
    app.store
        .create_user("bob", Role::Approver, &hash, "test")
        .await
        .expect("bob is created");

    let mut browser = Browser::start().await;
    browser.set_timeout(Duration::from_secs(30));
    browser.set_size(PHONE.0, PHONE.1).await;
    browser
        .sign_in(
            &format!("{}/chat", app.url),
            "bob",
            password,
            "form#chat-form",
        )
        .await;
    browser
        .fill("form#chat-form textarea[name=prompt]", "is the sandbox ok?")
        .await;
    browser.click("button#chat-send").await;
    browser.wait_for("#conversation").await;
    // The page listens before the model says anything.
    browser.wait_for("html[data-live-chat=open]").await;

    // The first turn: text, then a tool call; its text is whole on the
    // page (inert) while the conversation goes on.
    wait_gates(&stub, 1).await;
    stub.open_gate();
    browser
        .wait_for("#conversation .chat-live:not(.is-writing)")
        .await;
    assert_eq!(
        live_turns(&browser).await,
        [(false, "Jarvis".to_owned(), first_shown.to_owned())]
    );

    // The second turn is shown while it is written: half of it, with the
    // conversation still active.
    wait_gates(&stub, 2).await;
    stub.open_gate();
    wait_gates(&stub, 3).await;
    browser
        .wait_text("#conversation .chat-live.is-writing .chat-text", before)
        .await;
    let turns = live_turns(&browser).await;
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert_eq!(
        turns[1],
        (true, "Jarvis is writing…".to_owned(), before.to_owned()),
        "the markup is shown as text: {turns:?}"
    );
    let state = browser
        .eval(
            "return document.getElementById('conversation-state').getAttribute('data-state')",
            vec![],
        )
        .await;
    assert_eq!(state, json!("active"));
    // The page fetches itself every 3 s while the conversation is active;
    // the turns being written keep their places through it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let kept = live_turns(&browser).await;
    assert_eq!(kept, turns, "after a refresh of the stored entries");

    // The rest; once the conversation ends, the stored page replaces the
    // live turns.
    stub.open_gate();
    let whole = format!("{before}{after}");
    browser.wait_text("#conversation-summary", &whole).await;
    browser.wait_text("#conversation-state", "finished").await;
    assert_eq!(live_turns(&browser).await, []);
    let stored: Value = browser
        .eval(
            "return Array.prototype.map.call(document.querySelectorAll('#conversation .chat-assistant .chat-text'), function (t) { return t.textContent; });",
            vec![],
        )
        .await;
    assert_eq!(stored, json!([first_shown]), "the first turn, stored");
    assert!(
        browser
            .eval(
                "return !document.documentElement.hasAttribute('data-live-chat')",
                vec![]
            )
            .await
            .as_bool()
            .unwrap_or(false),
        "the live stream is closed"
    );
    browser.close().await;
    app.stop().await;
}
