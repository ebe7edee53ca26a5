//! The client against a real HTTP endpoint on loopback that answers from a
//! script: whole answers (as an endpoint that does not stream), streamed
//! ones with pauses, breaks and malformed chunks, errors and silence.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use super::*;
use crate::model::{Role, ToolCall, Usage};

/// What the scripted endpoint answers to one request.
#[derive(Clone)]
enum Step {
    /// This status, an optional `Retry-After`, this body (as JSON: an
    /// endpoint that does not stream).
    Answer(u16, Option<&'static str>, String),
    /// Nothing, ever.
    Hang,
    /// A 200 as `text/event-stream`, made of these parts in order.
    Stream(Vec<Part>),
}

/// A part of a streamed answer.
#[derive(Clone)]
enum Part {
    /// These bytes, as one write.
    Send(Vec<u8>),
    /// A pause.
    Pause(Duration),
    /// The connection dropped in the middle of the answer.
    Cut,
}

/// One request the endpoint got.
struct Seen {
    authorization: Option<String>,
    body: Value,
}

struct Script {
    steps: Mutex<VecDeque<Step>>,
    /// Answered once the steps run out.
    then: Step,
    seen: Mutex<Vec<Seen>>,
}

struct Endpoint {
    base_url: String,
    script: Arc<Script>,
}

impl Endpoint {
    fn seen(&self) -> Vec<(Option<String>, Value)> {
        self.script
            .seen
            .lock()
            .expect("the script's lock is not poisoned")
            .iter()
            .map(|s| (s.authorization.clone(), s.body.clone()))
            .collect()
    }

    fn settings(&self) -> ModelSettings {
        ModelSettings {
            timeout: Duration::from_secs(5),
            retries: 3,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            ..ModelSettings::new(self.base_url.clone(), "test-model")
        }
    }

    fn model(&self) -> OpenAiModel {
        OpenAiModel::new(self.settings()).expect("valid settings")
    }
}

async fn answer(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    script
        .seen
        .lock()
        .expect("the script's lock is not poisoned")
        .push(Seen {
            authorization,
            body,
        });
    let step = script
        .steps
        .lock()
        .expect("the script's lock is not poisoned")
        .pop_front()
        .unwrap_or_else(|| script.then.clone());
    match step {
        Step::Stream(parts) => stream(parts),
        Step::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Step::Answer(status, retry_after, body) => {
            let mut response = (
                StatusCode::from_u16(status).expect("a valid status"),
                [("content-type", "application/json")],
                body,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(seconds));
            }
            response
        }
    }
}

/// A real HTTP endpoint on loopback answering `steps` in order, then
/// `then` forever.
async fn endpoint(steps: Vec<Step>, then: Step) -> Endpoint {
    let script = Arc::new(Script {
        steps: Mutex::new(steps.into()),
        then,
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the endpoint serves");
    });
    Endpoint {
        base_url: format!("http://{address}/v1"),
        script,
    }
}

/// A streamed answer: the parts written as they come, with their pauses;
/// a cut makes the server drop the connection mid-answer.
fn stream(parts: Vec<Part>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        for part in parts {
            match part {
                Part::Send(bytes) => {
                    if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                        return;
                    }
                }
                Part::Pause(d) => tokio::time::sleep(d).await,
                Part::Cut => {
                    // What was sent reaches the client first: the server
                    // drops what it has not written when the body fails.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                    return;
                }
            }
        }
    });
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response()
}

/// One event carrying `value`.
fn event(value: Value) -> Part {
    Part::Send(format!("data: {value}\n\n").into_bytes())
}

/// Raw bytes of the stream.
fn raw(text: &str) -> Part {
    Part::Send(text.as_bytes().to_vec())
}

fn pause() -> Part {
    Part::Pause(Duration::from_millis(15))
}

/// A chunk whose first choice's delta is `delta`.
fn delta(delta: Value) -> Part {
    event(json!({
        "id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": null}],
        "usage": null
    }))
}

fn finish(reason: &str) -> Part {
    event(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}], "usage": null}))
}

fn usage(prompt: u64, completion: u64) -> Part {
    event(
        json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}),
    )
}

fn done() -> Part {
    raw("data: [DONE]\n\n")
}

/// `pieces` of text streamed with pauses between them, as OpenAI streams:
/// a role, the text, why it finished, the usage, `[DONE]`.
fn streamed_text(pieces: &[&str]) -> Step {
    let mut parts = vec![delta(json!({"role": "assistant", "content": ""}))];
    for piece in pieces {
        parts.push(pause());
        parts.push(delta(json!({ "content": piece })));
    }
    parts.extend([finish("stop"), usage(12, 3), done()]);
    Step::Stream(parts)
}

/// Asks `model` for `hello()`: the result and the pieces of text handed on.
async fn ask(model: &OpenAiModel) -> (Result<Reply, ModelError>, Vec<String>) {
    let mut pieces = Vec::new();
    let result = model
        .complete(&hello(), &[], &mut |piece: &str| {
            pieces.push(piece.to_owned())
        })
        .await;
    (result, pieces)
}

fn ok(body: Value) -> Step {
    Step::Answer(200, None, body.to_string())
}

fn text_completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
}

fn hello() -> Vec<Message> {
    vec![Message::system("be brief"), Message::user("hello")]
}

#[tokio::test]
async fn a_plain_text_answer() {
    let server = endpoint(vec![], ok(text_completion("Hi there."))).await;
    let reply = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect("an answer");
    assert_eq!(reply.message.role, Role::Assistant);
    assert_eq!(reply.message.content, "Hi there.");
    assert!(reply.message.tool_calls.is_empty());
    assert_eq!(
        reply.usage,
        Usage {
            prompt: 12,
            completion: 3
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    // No key, no Authorization header, and no empty tool list.
    assert_eq!(seen[0].0, None);
    assert!(seen[0].1.get("tools").is_none());
}

#[tokio::test]
async fn tool_calls_come_back_verbatim_with_usage() {
    let body = json!({
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "run_command", "arguments": "{\"host\":\"nas\",\"command\":\"df -h\"}"}},
                    {"id": "call_b", "type": "function",
                     "function": {"name": "list_hosts", "arguments": "{not json"}}
                ]
            },
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    });
    let server = endpoint(vec![], ok(body)).await;
    let reply = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect("an answer");
    assert_eq!(reply.message.content, "");
    assert_eq!(
        reply.message.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "run_command".into(),
                arguments: r#"{"host":"nas","command":"df -h"}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "list_hosts".into(),
                arguments: "{not json".into(),
            },
        ]
    );
    assert_eq!(reply.usage.total(), 120);
}

#[tokio::test]
async fn missing_usage_counts_zero() {
    let mut body = text_completion("ok");
    body.as_object_mut().expect("an object").remove("usage");
    let server = endpoint(vec![], ok(body)).await;
    let reply = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect("an answer");
    assert_eq!(reply.usage, Usage::default());
}

#[tokio::test]
async fn the_request_carries_model_messages_tools_and_key() {
    let server = endpoint(vec![], ok(text_completion("done"))).await;
    let settings = ModelSettings {
        api_key: Some("KEY".into()),
        temperature: Some(0.25),
        ..server.settings()
    };
    let model = OpenAiModel::new(settings).expect("valid settings");
    let messages = vec![
        Message::system("you are Jarvis"),
        Message::user("how full is the nas?"),
        Message {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "run_command".into(),
                arguments: r#"{"host":"nas","command":"df -h"}"#.into(),
            }],
            tool_call_id: None,
        },
        Message::tool("call_1", "/dev/sda1 91%"),
    ];
    let tools = [
        ToolSpec {
            name: "run_command",
            description: "Propose a command on a host.",
            parameters: json!({
                "type": "object",
                "properties": {"host": {"type": "string"}, "command": {"type": "string"}},
                "required": ["host", "command"]
            }),
        },
        ToolSpec {
            name: "list_hosts",
            description: "List the hosts.",
            parameters: json!({"type": "object", "properties": {}}),
        },
    ];
    model
        .complete(&messages, &tools, &mut |_: &str| {})
        .await
        .expect("an answer");

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let (authorization, body) = &seen[0];
    assert_eq!(authorization.as_deref(), Some("Bearer KEY"));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["temperature"], 0.25);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "you are Jarvis"},
            {"role": "user", "content": "how full is the nas?"},
            {"role": "assistant", "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": "run_command", "arguments": "{\"host\":\"nas\",\"command\":\"df -h\"}"}
            }]},
            {"role": "tool", "content": "/dev/sda1 91%", "tool_call_id": "call_1"}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "function": {
                "name": "run_command",
                "description": "Propose a command on a host.",
                "parameters": tools[0].parameters
            }},
            {"type": "function", "function": {
                "name": "list_hosts",
                "description": "List the hosts.",
                "parameters": {"type": "object", "properties": {}}
            }}
        ])
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let server = endpoint(
        vec![Step::Answer(
            429,
            Some("1"),
            json!({"error": {"message": "slow down"}}).to_string(),
        )],
        ok(text_completion("after the wait")),
    )
    .await;
    let settings = ModelSettings {
        max_backoff: Duration::from_secs(5),
        ..server.settings()
    };
    let model = OpenAiModel::new(settings).expect("valid settings");
    let started = Instant::now();
    let reply = model
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect("an answer");
    assert_eq!(reply.message.content, "after the wait");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn endless_429s_give_up_after_the_retries() {
    let limited = Step::Answer(
        429,
        None,
        json!({"error": {"message": "rate limited"}}).to_string(),
    );
    let server = endpoint(vec![], limited).await;
    let started = Instant::now();
    let error = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("rate limited");
    assert_eq!(
        error,
        ModelError::RateLimited {
            endpoint: server.base_url.clone(),
            attempts: 4
        }
    );
    assert_eq!(server.seen().len(), 4);
    // 5 + 10 + 20 ms at most, jittered down.
    assert!(started.elapsed() < Duration::from_secs(2));

    // A zero Retry-After is honoured too.
    let server = endpoint(vec![], Step::Answer(429, Some("0"), String::new())).await;
    let settings = ModelSettings {
        retries: 2,
        first_backoff: Duration::from_secs(30),
        ..server.settings()
    };
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("rate limited");
    assert!(matches!(error, ModelError::RateLimited { attempts: 3, .. }));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let failing = Step::Answer(500, None, "upstream exploded".into());
    let server = endpoint(
        vec![failing.clone(), failing],
        ok(text_completion("third time")),
    )
    .await;
    let reply = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect("an answer");
    assert_eq!(reply.message.content, "third time");
    assert_eq!(server.seen().len(), 3);

    // Until the retries run out: then the last error.
    let server = endpoint(vec![], Step::Answer(503, None, "down".into())).await;
    let error = server
        .model()
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("still down");
    assert!(
        matches!(&error, ModelError::Failing { status: 503, attempts: 4, message, .. } if message == "down"),
        "{error:?}"
    );
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn a_401_is_refused_at_once_with_the_endpoints_message() {
    let body = json!({"error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "code": "invalid_api_key"
    }});
    let server = endpoint(vec![], Step::Answer(401, None, body.to_string())).await;
    let settings = ModelSettings {
        api_key: Some("sk-secret-key".into()),
        ..server.settings()
    };
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        ModelError::Refused {
            endpoint: server.base_url.clone(),
            status: 401,
            message: "Incorrect API key provided.".into()
        }
    );
    assert_eq!(server.seen().len(), 1);
    assert!(!error.to_string().contains("sk-secret-key"));

    // Ollama's shape, and a key echoed back is blotted out.
    let body = json!({"error": "model 'sk-secret-key' not found"});
    let server = endpoint(vec![], Step::Answer(404, None, body.to_string())).await;
    let settings = ModelSettings {
        api_key: Some("sk-secret-key".into()),
        ..server.settings()
    };
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, ModelError::Refused { status: 404, message, .. } if message == "model '…' not found"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_a_chat_completion_is_malformed() {
    for body in [
        json!({"nonsense": true}).to_string(),
        json!({"choices": []}).to_string(),
        "<html>hello</html>".to_owned(),
    ] {
        let server = endpoint(vec![], Step::Answer(200, None, body.clone())).await;
        let error = server
            .model()
            .complete(&hello(), &[], &mut |_: &str| {})
            .await
            .expect_err("malformed");
        assert!(
            matches!(&error, ModelError::Malformed { endpoint, .. } if *endpoint == server.base_url),
            "{body}: {error:?}"
        );
        assert_eq!(server.seen().len(), 1, "{body}");
    }
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out() {
    let server = endpoint(vec![], Step::Hang).await;
    let settings = ModelSettings {
        timeout: Duration::from_millis(300),
        retries: 1,
        ..server.settings()
    };
    let started = Instant::now();
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("timed out");
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        ModelError::Timeout {
            endpoint: server.base_url.clone(),
            after: Duration::from_millis(300)
        }
    );
    assert_eq!(server.seen().len(), 2);
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("a bound address");
    drop(listener);
    let base_url = format!("http://{address}/v1");
    let settings = ModelSettings {
        first_backoff: Duration::from_secs(30),
        ..ModelSettings::new(base_url.clone(), "test-model")
    };
    let started = Instant::now();
    let error = OpenAiModel::new(settings)
        .expect("valid settings")
        .complete(&hello(), &[], &mut |_: &str| {})
        .await
        .expect_err("unreachable");
    assert!(
        matches!(&error, ModelError::Unreachable { endpoint, .. } if *endpoint == base_url),
        "{error:?}"
    );
    // Not retried: nothing listens there.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_settings_are_refused_before_sending_anything() {
    let error = OpenAiModel::new(ModelSettings::new("not a url", "m")).expect_err("bad URL");
    assert!(matches!(error, ModelError::Unreachable { .. }));
    let settings = ModelSettings {
        api_key: Some("line\nbreak".into()),
        ..ModelSettings::new("http://127.0.0.1:1/v1", "m")
    };
    let error = OpenAiModel::new(settings).expect_err("bad key");
    assert!(!error.to_string().contains("line"));
    // Credentials in the base URL stay out of errors too.
    assert_eq!(
        display_endpoint("https://user:pw@example.com/v1"),
        "https://example.com/v1"
    );
}

#[test]
fn debug_hides_the_key() {
    let settings = ModelSettings {
        api_key: Some("sk-very-secret".into()),
        ..ModelSettings::new("https://api.openai.com/v1", "gpt-4o-mini")
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("sk-very-secret"), "{shown}");
    assert!(shown.contains(r#"api_key: Some("…")"#), "{shown}");
    let model = OpenAiModel::new(settings).expect("valid settings");
    assert!(!format!("{model:?}").contains("sk-very-secret"));
    let none = format!("{:?}", ModelSettings::new("http://x/v1", "m"));
    assert!(none.contains("api_key: None"), "{none}");
}

#[tokio::test]
async fn a_streamed_answer_hands_its_text_on_piece_by_piece() {
    let server = endpoint(vec![], streamed_text(&["The disk ", "is 91% ", "full."])).await;
    let (reply, pieces) = ask(&server.model()).await;
    let reply = reply.expect("an answer");
    assert_eq!(pieces, ["The disk ", "is 91% ", "full."]);
    assert_eq!(reply.message.content, "The disk is 91% full.");
    assert_eq!(reply.message.role, Role::Assistant);
    assert!(reply.message.tool_calls.is_empty());
    assert_eq!(
        reply.usage,
        Usage {
            prompt: 12,
            completion: 3
        }
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_whole_answer_is_handed_on_once_whole() {
    let server = endpoint(vec![], ok(text_completion("Hi there."))).await;
    let (reply, pieces) = ask(&server.model()).await;
    assert_eq!(reply.expect("an answer").message.content, "Hi there.");
    assert_eq!(pieces, ["Hi there."]);
}

#[tokio::test]
async fn streamed_tool_calls_are_the_same_reply_as_a_whole_answer() {
    let whole = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "run_command", "arguments": "{\"host\":\"nas\",\"command\":\"df -h\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "list_hosts", "arguments": "{not json"}}
        ]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20}
    });
    let streamed = Step::Stream(vec![
        delta(json!({"role": "assistant", "content": "Look"})),
        pause(),
        delta(json!({"content": "ing."})),
        delta(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "run_command", "arguments": ""}}]}),
        ),
        pause(),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"host\":\"na"}}]})),
        delta(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "list_hosts", "arguments": "{not "}}]}),
        ),
        pause(),
        delta(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "s\",\"command\":\"df -h\"}"}}]}),
        ),
        delta(json!({"tool_calls": [{"index": 1, "function": {"arguments": "json"}}]})),
        finish("tool_calls"),
        usage(100, 20),
        done(),
    ]);
    let server = endpoint(vec![ok(whole)], streamed).await;
    let model = server.model();
    let (first, whole_pieces) = ask(&model).await;
    let (second, pieces) = ask(&model).await;
    let (first, second) = (first.expect("whole"), second.expect("streamed"));
    assert_eq!(second, first);
    assert_eq!(second.message.tool_calls.len(), 2);
    assert_eq!(second.usage.total(), 120);
    assert_eq!(whole_pieces, ["Looking."]);
    assert_eq!(pieces, ["Look", "ing."]);
}

#[tokio::test]
async fn a_stream_broken_before_any_text_is_asked_again() {
    let broken = Step::Stream(vec![
        delta(json!({"role": "assistant", "content": ""})),
        delta(
            json!({"tool_calls": [{"index": 0, "id": "call_x", "function": {"name": "list_hosts", "arguments": "{"}}]}),
        ),
        pause(),
        Part::Cut,
    ]);
    let server = endpoint(vec![broken], streamed_text(&["Second ", "try."])).await;
    let (reply, pieces) = ask(&server.model()).await;
    let reply = reply.expect("the second attempt's answer");
    assert_eq!(reply.message.content, "Second try.");
    // The first attempt's half a tool call is gone.
    assert!(reply.message.tool_calls.is_empty());
    assert_eq!(pieces, ["Second ", "try."]);
    assert_eq!(server.seen().len(), 2);

    // Broken every time: the error says so and how often.
    let server = endpoint(
        vec![],
        Step::Stream(vec![delta(json!({"role": "assistant"})), Part::Cut]),
    )
    .await;
    let (error, pieces) = ask(&server.model()).await;
    let error = error.expect_err("broken");
    assert!(
        matches!(&error, ModelError::BrokeOff { attempts: 4, reason, .. } if reason.starts_with("the connection broke")),
        "{error:?}"
    );
    assert!(pieces.is_empty());
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn a_stream_broken_after_text_is_an_error_not_a_second_answer() {
    let broken = Step::Stream(vec![
        delta(json!({"role": "assistant", "content": "Let me "})),
        pause(),
        delta(json!({"content": "check"})),
        Part::Cut,
    ]);
    let server = endpoint(vec![broken], streamed_text(&["never shown"])).await;
    let (error, pieces) = ask(&server.model()).await;
    let error = error.expect_err("broken after text");
    assert!(
        matches!(&error, ModelError::BrokeOffShown { endpoint, reason } if *endpoint == server.base_url && reason.starts_with("the connection broke")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("not asked again so that nothing shows twice"),
        "{error}"
    );
    assert_eq!(pieces, ["Let me ", "check"]);
    assert_eq!(server.seen().len(), 1, "not asked again");
}

#[tokio::test]
async fn a_stream_must_finish_or_say_done() {
    // It said why it finished: the answer is whole without `[DONE]`.
    let server = endpoint(
        vec![],
        Step::Stream(vec![delta(json!({"content": "ok"})), finish("stop")]),
    )
    .await;
    let (reply, _) = ask(&server.model()).await;
    assert_eq!(reply.expect("whole").message.content, "ok");

    // It stopped after text without either: broken off.
    let server = endpoint(
        vec![],
        Step::Stream(vec![delta(json!({"content": "half"}))]),
    )
    .await;
    let (error, pieces) = ask(&server.model()).await;
    assert_eq!(
        error.expect_err("ended early"),
        ModelError::BrokeOffShown {
            endpoint: server.base_url.clone(),
            reason: "the stream ended before the answer did".into()
        }
    );
    assert_eq!(pieces, ["half"]);

    // An empty stream, every time.
    let server = endpoint(vec![], Step::Stream(vec![raw(": nothing\n\n")])).await;
    let settings = ModelSettings {
        retries: 1,
        ..server.settings()
    };
    let (error, _) = ask(&OpenAiModel::new(settings).expect("valid settings")).await;
    assert_eq!(
        error.expect_err("empty"),
        ModelError::BrokeOff {
            endpoint: server.base_url.clone(),
            attempts: 2,
            reason: "the stream ended before the answer began".into()
        }
    );
}

#[tokio::test]
async fn a_malformed_chunk_is_named_and_not_asked_again() {
    let cases: [(Vec<Part>, &str); 4] = [
        (
            vec![
                delta(json!({"content": "a"})),
                raw("data: {\"choices\": [\n\n"),
            ],
            "event 2 of the stream is not JSON",
        ),
        (
            vec![delta(json!({"content": 7}))],
            "event 1 of the stream is not a chat completion chunk: invalid type: integer `7`, expected a string",
        ),
        (
            vec![raw("data: \"just a string\"\n\n")],
            "event 1 of the stream is not a JSON object",
        ),
        (
            vec![Part::Send(b"data: {\"choices\": \xff}\n\n".to_vec())],
            "line 1 of the event stream is not UTF-8 text",
        ),
    ];
    for (parts, want) in cases {
        let server = endpoint(vec![Step::Stream(parts)], streamed_text(&["never"])).await;
        let (error, _) = ask(&server.model()).await;
        let error = error.expect_err("malformed");
        assert!(
            matches!(&error, ModelError::Malformed { reason, .. } if reason.starts_with(want)),
            "{want}: {error:?}"
        );
        assert_eq!(server.seen().len(), 1, "{want}: not asked again");
    }
}

#[tokio::test]
async fn an_error_in_the_stream_is_retried_until_text_was_shown() {
    let reported = || {
        Step::Stream(vec![
            delta(json!({"role": "assistant"})),
            event(json!({"error": {"message": "upstream overloaded"}})),
        ])
    };
    let server = endpoint(vec![reported()], streamed_text(&["fine"])).await;
    let (reply, _) = ask(&server.model()).await;
    assert_eq!(reply.expect("an answer").message.content, "fine");
    assert_eq!(server.seen().len(), 2);

    let server = endpoint(vec![], reported()).await;
    let (error, _) = ask(&server.model()).await;
    assert_eq!(
        error.expect_err("always overloaded"),
        ModelError::BrokeOff {
            endpoint: server.base_url.clone(),
            attempts: 4,
            reason: "the endpoint reported an error in its answer: upstream overloaded".into()
        }
    );

    let server = endpoint(
        vec![Step::Stream(vec![
            delta(json!({"content": "Part"})),
            raw("event: error\ndata: model unloaded\n\n"),
        ])],
        streamed_text(&["never"]),
    )
    .await;
    let (error, pieces) = ask(&server.model()).await;
    assert!(
        matches!(error, Err(ModelError::BrokeOffShown { ref reason, .. }) if reason.ends_with("model unloaded")),
        "{error:?}"
    );
    assert_eq!(pieces, ["Part"]);
}

#[tokio::test]
async fn a_stream_that_goes_quiet_times_out_between_events() {
    let idle = |server: &Endpoint| ModelSettings {
        idle_timeout: Duration::from_millis(200),
        ..server.settings()
    };
    // Quiet before any text: asked again.
    let stalled = Step::Stream(vec![
        delta(json!({"role": "assistant"})),
        Part::Pause(Duration::from_secs(5)),
        delta(json!({"content": "too late"})),
        done(),
    ]);
    let server = endpoint(vec![stalled], streamed_text(&["in ", "time"])).await;
    let model = OpenAiModel::new(idle(&server)).expect("valid settings");
    let started = Instant::now();
    let (reply, pieces) = ask(&model).await;
    assert_eq!(reply.expect("an answer").message.content, "in time");
    assert_eq!(pieces, ["in ", "time"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Quiet after text: an error naming the wait.
    let stalled = Step::Stream(vec![
        delta(json!({"content": "I will"})),
        Part::Pause(Duration::from_secs(5)),
        done(),
    ]);
    let server = endpoint(vec![stalled], streamed_text(&["never"])).await;
    let model = OpenAiModel::new(idle(&server)).expect("valid settings");
    let started = Instant::now();
    let (error, pieces) = ask(&model).await;
    assert_eq!(
        error.expect_err("stalled"),
        ModelError::BrokeOffShown {
            endpoint: server.base_url.clone(),
            reason: "nothing came for 200 ms".into()
        }
    );
    assert_eq!(pieces, ["I will"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Slow but steady is never cut: each pause is under the idle timeout,
    // all of them together well over it.
    let mut parts = vec![delta(json!({"role": "assistant"}))];
    for _ in 0..8 {
        parts.push(Part::Pause(Duration::from_millis(100)));
        parts.push(delta(json!({"content": "."})));
    }
    parts.extend([finish("stop"), done()]);
    let server = endpoint(vec![], Step::Stream(parts)).await;
    let model = OpenAiModel::new(idle(&server)).expect("valid settings");
    let (reply, pieces) = ask(&model).await;
    assert_eq!(reply.expect("an answer").message.content, "........");
    assert_eq!(pieces.len(), 8);
}

#[tokio::test]
async fn keep_alives_alone_are_no_answer() {
    let mut parts = Vec::new();
    for _ in 0..20 {
        parts.push(raw(": keep-alive\n\n"));
        parts.push(Part::Pause(Duration::from_millis(50)));
    }
    let server = endpoint(vec![], Step::Stream(parts)).await;
    let settings = ModelSettings {
        timeout: Duration::from_millis(300),
        retries: 0,
        ..server.settings()
    };
    let started = Instant::now();
    let (error, _) = ask(&OpenAiModel::new(settings).expect("valid settings")).await;
    assert_eq!(
        error.expect_err("no answer"),
        ModelError::Timeout {
            endpoint: server.base_url.clone(),
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_answer_past_the_cap_is_refused_not_held() {
    let piece = "x".repeat(1024 * 1024);
    let mut parts = Vec::new();
    for _ in 0..9 {
        parts.push(delta(json!({ "content": piece })));
    }
    parts.push(done());
    let server = endpoint(vec![], Step::Stream(parts)).await;
    let (error, pieces) = ask(&server.model()).await;
    assert!(
        matches!(&error, Err(ModelError::Malformed { reason, .. }) if reason == "the answer is longer than 8 MiB"),
        "{:?}",
        error.as_ref().map(|r| r.message.content.len())
    );
    assert!(pieces.len() <= 8);
    assert_eq!(server.seen().len(), 1);
}
