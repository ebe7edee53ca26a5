//! The model's text in a conversation reaches the pages watching it as it
//! is written: the in-process app (`support/inprocess.rs`) with a scripted
//! model endpoint that streams (`support/llm_stub.rs`), a conversation
//! started through the chat form, and its live stream read as a browser
//! reads it. Nothing here needs the sandbox host: the model only talks.

use std::time::{Duration, Instant};

use jarvis_tests::inprocess::{App, spawn_app};
use jarvis_tests::llm_stub::{LlmStub, STUB_MODEL, Step};
use jarvis_tests::server::client;
use reqwest::StatusCode;
use serde_json::Value;

/// A live stream (`GET /events…`), read as server-sent events.
struct Stream {
    response: reqwest::Response,
    /// What has come and is not yet an event.
    buffer: String,
    /// Everything read, for failure messages.
    seen: String,
}

impl Stream {
    /// Opens `path` with `app`'s approver's session. Once it answers, the
    /// server has subscribed it: nothing sent after is missed.
    async fn open(app: &App, path: &str) -> Stream {
        let response = app
            .approver
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("GET the live stream");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        Stream {
            response,
            buffer: String::new(),
            seen: String::new(),
        }
    }

    /// The next event (name and data), or `None` if none comes before
    /// `within` is up. Keep-alive comments are skipped.
    async fn next(&mut self, within: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, data.join("\n")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk()).await;
            let chunk = match chunk {
                Err(_elapsed) => return None,
                Ok(read) => read
                    .expect("the stream reads")
                    .expect("the stream stays open"),
            };
            let text = String::from_utf8_lossy(&chunk).replace("\r\n", "\n");
            self.seen.push_str(&text);
            self.buffer.push_str(&text);
        }
    }

    /// The next event named `saying` or `said`, skipping the rest (action
    /// changes); panics after `within`.
    async fn next_text(&mut self, within: Duration) -> (String, Value) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((name, data)) = self.next(left).await else {
                panic!("no text came; the stream said:\n{}", self.seen);
            };
            if name == "saying" || name == "said" {
                let data = serde_json::from_str(&data).expect("the event's data is JSON");
                return (name, data);
            }
        }
    }
}

/// Waits until `done` holds, for at most `within`.
async fn wait_until<F, Fut>(what: &str, within: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "no {what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_text_streams_to_its_page_in_pieces_then_whole() {
    let before = "The sandbox has been up for three days; ";
    let after = "its load is low <b>and</b> nothing needs doing.\u{1b}[2J";
    let whole = format!("{before}{after}");
    let stub = LlmStub::start(vec![Step::text_held(before, after)]).await;
    let llm = format!(
        "[llm]\nbase_url = \"{}\"\nmodel = \"{STUB_MODEL}\"\ntimeout_secs = 10\n",
        stub.base_url()
    );
    let app = spawn_app("chat-live", &llm).await;

    // Start a conversation through the chat form, as the page does.
    let started = app
        .approver
        .http
        .post(format!("{}/chat", app.url))
        .form(&[
            ("csrf", app.csrf.as_str()),
            ("prompt", "is the sandbox ok?"),
        ])
        .send()
        .await
        .expect("POST /chat");
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let location = started.headers()["location"]
        .to_str()
        .expect("a location")
        .to_owned();
    let id = location
        .strip_prefix("/chat/")
        .unwrap_or_else(|| panic!("a conversation's page: {location}"))
        .to_owned();

    // Its page's stream, a stream that named no conversation and one that
    // named another: only the first hears the text.
    let mut page = Stream::open(&app, &format!("/events?conversation={id}")).await;
    let mut plain = Stream::open(&app, "/events").await;
    let other = "0192f4c4-5e1a-7c3b-9f00-000000000001";
    let mut elsewhere = Stream::open(&app, &format!("/events?conversation={other}")).await;
    // A stream is for signed-in callers only.
    let anonymous = client()
        .get(format!("{}/events?conversation={id}", app.url))
        .send()
        .await
        .expect("GET without a session");
    assert_ne!(anonymous.status(), StatusCode::OK);

    // The model's answer is held before its first piece until the stream
    // listens, and again halfway.
    wait_until("model request", Duration::from_secs(30), || async {
        stub.gates_reached() == 1
    })
    .await;
    stub.open_gate();
    let mut pieces = Vec::new();
    while pieces.concat() != before {
        let (name, data) = page.next_text(Duration::from_secs(30)).await;
        assert_eq!(name, "saying", "{data}");
        assert_eq!(data["conversation"], id.as_str());
        assert_eq!(data["piece"], pieces.len(), "pieces in order: {data}");
        pieces.push(data["text"].as_str().expect("text").to_owned());
        assert!(before.starts_with(&pieces.concat()), "{pieces:?}");
    }
    assert!(pieces.len() > 1, "the text came in pieces: {pieces:?}");
    // Shown while the answer is still being written.
    let conversation: jarvis_core::ConversationId = id.parse().expect("an id");
    assert_eq!(
        app.store
            .conversation(conversation)
            .await
            .expect("stored")
            .state,
        "active"
    );

    stub.open_gate();
    let said = loop {
        let (name, data) = page.next_text(Duration::from_secs(30)).await;
        assert_eq!(data["conversation"], id.as_str());
        if name == "said" {
            break data;
        }
        assert_eq!(data["piece"], pieces.len(), "{data}");
        pieces.push(data["text"].as_str().expect("text").to_owned());
    };
    // The pieces add up to the whole, which comes as it was said: the page
    // makes it inert, the stream does not change it.
    assert_eq!(pieces.concat(), whole);
    assert_eq!(said["text"], whole.as_str());

    // The conversation ends with the whole text stored once, and no piece
    // of it stored or audited.
    wait_until(
        "end of the conversation",
        Duration::from_secs(30),
        || async {
            app.store
                .conversation(conversation)
                .await
                .expect("stored")
                .state
                != "active"
        },
    )
    .await;
    let messages = app.store.messages(conversation).await.expect("messages");
    let texts: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == "assistant")
        .filter_map(|m| m.content["content"].as_str())
        .collect();
    assert_eq!(texts, [whole.as_str()], "{messages:#?}");
    let audited = app.audit("conversation.message").await;
    assert_eq!(audited.len(), messages.len(), "{audited:#?}");

    // The streams that did not name this conversation heard none of it.
    for stream in [&mut plain, &mut elsewhere] {
        while let Some((name, data)) = stream.next(Duration::from_millis(300)).await {
            assert!(name != "saying" && name != "said", "{name}: {data}");
        }
    }
    app.stop().await;
}
