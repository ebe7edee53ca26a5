//! The scripted model endpoint (`support/llm_stub.rs`) driven through the
//! planner's real OpenAI-compatible client, so the end-to-end tests built on
//! it can trust what it answers and records.

use std::time::{Duration, Instant};

use jarvis_planner::client::{ModelSettings, OpenAiModel};
use jarvis_planner::model::{Message, Model, ModelError, Role, ToolCall, Usage};
use jarvis_planner::tools;
use jarvis_tests::llm_stub::{LlmStub, SCRIPT_ENDED, STUB_MODEL, Step};
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

    let reply = model
        .complete(&hello(), &tools::specs())
        .await
        .expect("a tool call");
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
    let reply = model
        .complete(&messages, &tools::specs())
        .await
        .expect("a malformed tool call, verbatim");
    assert_eq!(
        reply.message.tool_calls,
        vec![ToolCall {
            id: "call_2".into(),
            name: "list_hosts".into(),
            arguments: "{not json".into(),
        }]
    );

    let reply = model.complete(&hello(), &[]).await.expect("text");
    assert_eq!(reply.message.content, "The disk is 91% full.");
    assert!(reply.message.tool_calls.is_empty());

    // Past the script: a final answer, never a hang.
    let reply = model.complete(&hello(), &[]).await.expect("script ended");
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

    let reply = model.complete(&hello(), &[]).await.expect("an answer");
    assert_eq!(reply.message.content, "after the wait");
    assert_eq!(stub.request_count(), 2);

    let error = model.complete(&hello(), &[]).await.expect_err("refused");
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

    let reply = model.complete(&hello(), &[]).await.expect("an answer");
    assert_eq!(reply.message.content, "recovered");

    let error = model.complete(&hello(), &[]).await.expect_err("failing");
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
    let reply = model.complete(&hello(), &[]).await.expect("an answer");
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
        .complete(&hello(), &[])
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
    let reply = model.complete(&hello(), &[]).await.expect("an answer");
    assert_eq!(reply.message.content, "no /v1");
    assert_eq!(stub.requests()[0]["model"], "other-model");
}
