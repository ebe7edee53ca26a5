//! The scripted model endpoint (`support/llm_stub.rs`) driven through the
//! planner's real OpenAI-compatible client, so the end-to-end tests built on
//! it can trust what it answers and records: whole answers and streamed
//! ones, breaks, stalls and gates.

use std::time::{Duration, Instant};

use jarvis_planner::client::{ModelSettings, OpenAiModel};
use jarvis_planner::model::{Message, Model, ModelError, Reply, Role, ToolCall, Usage};
use jarvis_planner::tools;
use jarvis_tests::llm_stub::{LlmStub, SCRIPT_ENDED, STUB_MODEL, Sse, Step};
use serde_json::json;

/// The real client against `stub`, with backoffs small enough for a test.
fn model(stub: &LlmStub) -> OpenAiModel {
    OpenAiModel::new(ModelSettings {
        timeout: Duration::from_secs(5),
        retries: 2,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..ModelSettings::new(stub.base_url(), STUB_MODEL)
    })
    .expect("valid settings")
}

/// Asks `model` with `messages` and `tools`: the result, and the pieces of
/// text it handed on as they came.
async fn ask(
    model: &OpenAiModel,
    messages: &[Message],
    tools: &[jarvis_planner::model::ToolSpec],
) -> (Result<Reply, ModelError>, Vec<String>) {
    let mut pieces = Vec::new();
    let result = model
        .complete(messages, tools, &mut |piece: &str| {
            pieces.push(piece.to_owned())
        })
        .await;
    (result, pieces)
}

fn hello() -> Vec<Message> {
    vec![
        Message::system("you are Jarvis"),
        Message::user("how full is the nas?"),
    ]
}

#[tokio::test]
async fn tool_calls_and_text_come_back_through_the_client() {
    let stub = LlmStub::start(vec![
        Step::call("run_command", json!({"host": "nas", "command": "df -h"})),
        Step::RawArguments("list_hosts".into(), "{not json".into()),
        Step::text("The disk is 91% full."),
    ])
    .await;
    let model = model(&stub);

    let (reply, pieces) = ask(&model, &hello(), &tools::specs()).await;
    let reply = reply.expect("a tool call");
    assert!(pieces.is_empty(), "no text: {pieces:?}");
    assert_eq!(reply.message.role, Role::Assistant);
    assert_eq!(reply.message.content, "");
    let [call] = reply.message.tool_calls.as_slice() else {
        panic!("one tool call: {:?}", reply.message.tool_calls);
    };
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_1", "run_command")
    );
    let arguments: serde_json::Value =
        serde_json::from_str(&call.arguments).expect("arguments are JSON text");
    assert_eq!(arguments, json!({"host": "nas", "command": "df -h"}));
    assert_eq!(
        reply.usage,
        Usage {
            prompt: 100,
            completion: 20
        }
    );

    let mut messages = hello();
    messages.push(reply.message.clone());
    messages.push(Message::tool(
        "call_1",
        "<<<UNTRUSTED OUTPUT\n/dev/sda1 91%\n<<<END UNTRUSTED OUTPUT>>>",
    ));
    let reply = ask(&model, &messages, &tools::specs())
        .await
        .0
        .expect("a malformed tool call, verbatim");
    assert_eq!(
        reply.message.tool_calls,
        vec![ToolCall {
            id: "call_2".into(),
            name: "list_hosts".into(),
            arguments: "{not json".into(),
        }]
    );

    let (reply, pieces) = ask(&model, &hello(), &[]).await;
    let reply = reply.expect("text");
    assert_eq!(reply.message.content, "The disk is 91% full.");
    // Streamed in pieces, which add up to the text.
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), "The disk is 91% full.");
    assert!(reply.message.tool_calls.is_empty());

    // Past the script: a final answer, never a hang.
    let reply = ask(&model, &hello(), &[]).await.0.expect("script ended");
    assert_eq!(reply.message.content, SCRIPT_ENDED);
    assert_eq!(stub.remaining(), 0);

    // What the model was shown, request by request.
    let requests = stub.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(stub.request_count(), 4);
    let first = &requests[0];
    assert_eq!(first["model"], STUB_MODEL);
    assert_eq!(
        first["messages"],
        json!([
            {"role": "system", "content": "you are Jarvis"},
            {"role": "user", "content": "how full is the nas?"}
        ])
    );
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .map(|t| t["function"]["name"].as_str().expect("a tool name"))
        .collect();
    assert_eq!(offered, tools::TOOL_NAMES);
    let second = requests[1]["messages"].as_array().expect("messages");
    assert_eq!(second[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_1");
    assert!(
        second[3]["content"]
            .as_str()
            .expect("tool output text")
            .starts_with(tools::OUTPUT_START)
    );
    assert!(requests[2].get("tools").is_none());
}

#[tokio::test]
async fn a_rate_limit_is_retried_and_a_refusal_is_not() {
    let stub = LlmStub::start(vec![
        Step::Status {
            code: 429,
            retry_after: Some(0),
            body: json!({"error": {"message": "slow down"}}).to_string(),
        },
        Step::text("after the wait"),
        Step::error(401, "Incorrect API key provided."),
        Step::text("never reached by the refused call"),
    ])
    .await;
    let model = model(&stub);

    let reply = ask(&model, &hello(), &[]).await.0.expect("an answer");
    assert_eq!(reply.message.content, "after the wait");
    assert_eq!(stub.request_count(), 2);

    let error = ask(&model, &hello(), &[]).await.0.expect_err("refused");
    assert_eq!(
        error,
        ModelError::Refused {
            endpoint: stub.base_url(),
            status: 401,
            message: "Incorrect API key provided.".into(),
        }
    );
    assert_eq!(stub.request_count(), 3);
    assert_eq!(stub.remaining(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_as_failing_not_unreachable() {
    let stub = LlmStub::start(vec![
        Step::error(502, "upstream restarting"),
        Step::text("recovered"),
        Step::error(503, "overloaded"),
        Step::error(503, "overloaded"),
        Step::error(500, "model crashed"),
    ])
    .await;
    let model = model(&stub);

    let reply = ask(&model, &hello(), &[]).await.0.expect("an answer");
    assert_eq!(reply.message.content, "recovered");

    let error = ask(&model, &hello(), &[]).await.0.expect_err("failing");
    assert_eq!(
        error,
        ModelError::Failing {
            endpoint: stub.base_url(),
            status: 500,
            attempts: 3,
            message: "model crashed".into(),
        }
    );
    assert!(error.to_string().contains("kept failing"), "{error}");
    assert_eq!(stub.request_count(), 5);
}

#[tokio::test]
async fn a_hang_times_out_then_closes_the_connection() {
    let stub = LlmStub::start(vec![
        Step::Hang(Duration::from_secs(30)),
        Step::text("second attempt"),
        Step::Hang(Duration::from_millis(50)),
    ])
    .await;
    let settings = ModelSettings {
        timeout: Duration::from_millis(300),
        ..model(&stub).settings().clone()
    };
    let model = OpenAiModel::new(settings).expect("valid settings");

    // The client gives up on the hanging attempt and retries.
    let started = Instant::now();
    let reply = ask(&model, &hello(), &[]).await.0.expect("an answer");
    assert_eq!(reply.message.content, "second attempt");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A short hang ends with the connection closed, no answer.
    let settings = ModelSettings {
        retries: 0,
        timeout: Duration::from_secs(5),
        ..model.settings().clone()
    };
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("closed");
    assert!(matches!(error, ModelError::Unreachable { .. }), "{error:?}");
    assert_eq!(stub.request_count(), 3);
}

#[tokio::test]
async fn the_models_list_and_a_base_url_without_v1() {
    let stub = LlmStub::start(vec![Step::text("no /v1")]).await;
    let models: serde_json::Value = jarvis_tests::server::client()
        .get(format!("{}/models", stub.base_url()))
        .send()
        .await
        .expect("GET /v1/models")
        .json()
        .await
        .expect("a JSON list");
    assert_eq!(models["data"][0]["id"], STUB_MODEL);

    let bare = stub.base_url().trim_end_matches("/v1").to_owned();
    let model = OpenAiModel::new(ModelSettings::new(bare, "other-model")).expect("valid settings");
    let reply = ask(&model, &hello(), &[]).await.0.expect("an answer");
    assert_eq!(reply.message.content, "no /v1");
    assert_eq!(stub.requests()[0]["model"], "other-model");
}

#[tokio::test]
async fn answers_stream_to_a_stream_request_and_come_whole_from_a_plain_endpoint() {
    let text = "The root disk is 91% full; /var/log holds most of it.";
    let stub = LlmStub::start(vec![
        Step::text(text),
        Step::call(
            "run_command",
            json!({"host": "nas", "command": "du -sh /var/log"}),
        ),
        Step::Plain(Box::new(Step::text(text))),
        Step::Plain(Box::new(Step::call("finish", json!({"summary": "ok"})))),
    ])
    .await;
    let model = model(&stub);

    let (reply, pieces) = ask(&model, &hello(), &[]).await;
    assert_eq!(reply.expect("streamed text").message.content, text);
    assert_eq!(pieces.len(), 4, "{pieces:?}");
    assert_eq!(pieces.concat(), text);

    let (reply, pieces) = ask(&model, &hello(), &tools::specs()).await;
    let reply = reply.expect("a streamed tool call");
    assert!(pieces.is_empty());
    assert_eq!(
        reply.message.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "run_command".into(),
            arguments: json!({"host": "nas", "command": "du -sh /var/log"}).to_string(),
        }]
    );
    assert_eq!(
        reply.usage.total(),
        120,
        "the usage comes last in the stream"
    );

    // An endpoint that does not stream answers the same, whole.
    let (reply, pieces) = ask(&model, &hello(), &[]).await;
    assert_eq!(reply.expect("plain text").message.content, text);
    assert_eq!(pieces, [text]);
    let (reply, _) = ask(&model, &hello(), &tools::specs()).await;
    assert_eq!(
        reply.expect("a plain tool call").message.tool_calls[0].id,
        "call_2"
    );

    for request in stub.requests() {
        assert_eq!(request["stream"], true, "{request:#}");
        assert_eq!(request["stream_options"]["include_usage"], true);
    }
}

#[tokio::test]
async fn a_broken_stream_is_asked_again_only_while_nothing_was_shown() {
    let stub = LlmStub::start(vec![
        Step::Stream(vec![
            Sse::Event(json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})),
            Sse::Cut,
        ]),
        Step::text("Second try."),
        Step::Stream(vec![
            Sse::text("Half an "),
            Sse::Pause(Duration::from_millis(20)),
            Sse::Cut,
        ]),
        Step::text("never asked for"),
    ])
    .await;
    let model = model(&stub);

    let (reply, pieces) = ask(&model, &hello(), &[]).await;
    assert_eq!(
        reply.expect("the retry's answer").message.content,
        "Second try."
    );
    assert_eq!(pieces.concat(), "Second try.");
    assert_eq!(stub.request_count(), 2);

    let (error, pieces) = ask(&model, &hello(), &[]).await;
    let error = error.expect_err("broken after text");
    assert!(
        matches!(&error, ModelError::BrokeOffShown { endpoint, .. } if *endpoint == stub.base_url()),
        "{error:?}"
    );
    assert_eq!(pieces, ["Half an "]);
    assert_eq!(stub.request_count(), 3, "not asked again");
    assert_eq!(stub.remaining(), 1);
}

#[tokio::test]
async fn a_stalled_or_malformed_stream_says_what_went_wrong() {
    let stub = LlmStub::start(vec![
        Step::Stream(vec![
            Sse::text("Thinking"),
            Sse::Pause(Duration::from_secs(10)),
        ]),
        Step::Stream(vec![
            Sse::text("ok"),
            Sse::Raw("data: {\"choices\": oops}\n\n".into()),
        ]),
    ])
    .await;
    let settings = ModelSettings {
        idle_timeout: Duration::from_millis(300),
        ..model(&stub).settings().clone()
    };
    let model = OpenAiModel::new(settings).expect("valid settings");

    let started = Instant::now();
    let (error, pieces) = ask(&model, &hello(), &[]).await;
    assert_eq!(
        error.expect_err("stalled"),
        ModelError::BrokeOffShown {
            endpoint: stub.base_url(),
            reason: "nothing came for 300 ms".into()
        }
    );
    assert_eq!(pieces, ["Thinking"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let (error, _) = ask(&model, &hello(), &[]).await;
    let error = error.expect_err("malformed");
    assert!(
        matches!(&error, ModelError::Malformed { reason, .. } if reason.starts_with("event 2 of the stream is not JSON")),
        "{error:?}"
    );
    assert_eq!(stub.request_count(), 2, "neither is asked again");
}

#[tokio::test]
async fn gates_hold_a_streamed_answer_until_the_test_opens_them() {
    let stub = LlmStub::start(vec![Step::text_held("Checking the ", "disk now.")]).await;
    let model = model(&stub);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let heard = seen.clone();
    let answer = tokio::spawn(async move {
        model
            .complete(&hello(), &[], &mut |piece: &str| {
                heard.lock().expect("not poisoned").push_str(piece)
            })
            .await
    });
    let shown = || seen.lock().expect("not poisoned").clone();

    wait_until("the first gate", || stub.gates_reached() == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shown(), "", "nothing before the first gate opens");
    stub.open_gate();
    wait_until("the second gate", || stub.gates_reached() == 2).await;
    wait_until("the first half shown", || shown() == "Checking the ").await;
    assert!(!answer.is_finished(), "the answer is still being written");
    stub.open_gate();
    let reply = answer
        .await
        .expect("the task ends")
        .expect("the whole answer");
    assert_eq!(reply.message.content, "Checking the disk now.");
    assert_eq!(shown(), "Checking the disk now.");
}

/// Waits until `done`, for at most ten seconds.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "no {what} within ten seconds");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
