//! A scripted model endpoint for the planner's end-to-end tests: a real HTTP
//! server on a loopback port that speaks the OpenAI chat-completions
//! protocol and answers each completion request with the next [`Step`] of
//! its script, recording every request so a test can check what the model
//! was shown.
//!
//! A request that says `"stream": true` (the planner's always do) gets its
//! answer as OpenAI streams it: server-sent events (`text/event-stream`,
//! chunked), the text in several pieces and each tool call's arguments in
//! several pieces, [`GAP`] apart, then why it finished, the usage and
//! `[DONE]`. [`Step::Plain`] answers whole JSON all the same (an endpoint
//! that does not stream), and [`Step::Stream`] spells a streamed answer out
//! part by part: breaks, pauses, malformed chunks, and gates a test opens
//! ([`LlmStub::open_gate`]) to look at what was shown in the middle of an
//! answer.
//!
//! It serves `POST /v1/chat/completions` (and `POST /chat/completions`, for
//! a base URL without `/v1`) and `GET /v1/models` (and `GET /models`), the
//! latter listing one model, [`STUB_MODEL`]. Once the script is exhausted it
//! answers the text [`SCRIPT_ENDED`] with `finish_reason` `stop`, so a test
//! whose model loop runs on never hangs. It stops when dropped.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The one model `GET /v1/models` lists, and the `model` of answers to
/// requests that name none.
pub const STUB_MODEL: &str = "stub-model";

/// What the stub answers once its script is exhausted.
pub const SCRIPT_ENDED: &str = "(script ended)";

/// The `usage` of every completion: prompt, completion tokens.
pub const USAGE: (u64, u64) = (100, 20);

/// The pause between two pieces of a streamed answer.
pub const GAP: Duration = Duration::from_millis(20);

/// Into how many pieces a streamed text (or a tool call's arguments) is
/// cut, at most.
const PIECES: usize = 4;

/// A part of a streamed answer ([`Step::Stream`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    /// One event whose data is this JSON (a chunk, an error).
    Event(Value),
    /// These bytes as they are (a comment, `data: [DONE]`, a malformed
    /// line).
    Raw(String),
    /// A pause.
    Pause(Duration),
    /// Waits until the test opens a gate ([`LlmStub::open_gate`]); the
    /// stub's gates open in the order the answers reach them.
    Gate,
    /// The connection dropped in the middle of the answer.
    Cut,
}

impl Sse {
    /// A chunk carrying a piece of the answer's text.
    pub fn text(piece: &str) -> Sse {
        Sse::Event(chunk(json!({ "content": piece }), None))
    }

    /// The chunk that says why the answer finished (`stop`,
    /// `tool_calls`).
    pub fn finish(reason: &str) -> Sse {
        Sse::Event(chunk(json!({}), Some(reason)))
    }

    /// The chunk with the usage ([`USAGE`]), as OpenAI sends it last.
    pub fn usage() -> Sse {
        let (prompt, completion) = USAGE;
        Sse::Event(json!({
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        }))
    }

    /// `data: [DONE]`.
    pub fn done() -> Sse {
        Sse::Raw("data: [DONE]\n\n".into())
    }
}

/// What the stub does with one completion request.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A plain assistant message, `finish_reason` `stop`.
    Text(String),
    /// An assistant turn made of these tool calls (name, arguments), with
    /// ids `call_1`, `call_2`, … counted over the stub's life, the
    /// arguments serialised to JSON text as OpenAI does; `finish_reason`
    /// `tool_calls`.
    Tools(Vec<(String, Value)>),
    /// One tool call whose arguments text is sent verbatim (possibly not
    /// JSON at all).
    RawArguments(String, String),
    /// Text and tool calls in one turn (what a model says before it acts),
    /// numbered as [`Step::Tools`]' are.
    TextAndCalls(String, Vec<(String, Value)>),
    /// An error answer: this status, a `Retry-After` in seconds if given,
    /// and this body (sent as `application/json` when it parses as JSON,
    /// else as plain text).
    Status {
        /// The HTTP status.
        code: u16,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
        /// The body.
        body: String,
    },
    /// No answer: the request is held this long, then the connection is
    /// closed without a response (the client's timeout usually fires
    /// first). The step is used up either way.
    Hang(Duration),
    /// The step's answer as one JSON completion even to a request that
    /// asks for a stream: an endpoint that does not stream.
    Plain(Box<Step>),
    /// A streamed answer made of these parts, in order, whatever the
    /// request asked for.
    Stream(Vec<Sse>),
    /// The step, once the test opens a gate ([`LlmStub::open_gate`]):
    /// nothing of its answer is sent before.
    Gated(Box<Step>),
}

impl Step {
    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Step {
        Step::Text(text.into())
    }

    /// One tool call of `name` with `arguments` (e.g. `json!({…})`).
    pub fn call(name: impl Into<String>, arguments: Value) -> Step {
        Step::Tools(vec![(name.into(), arguments)])
    }

    /// Several tool calls in one turn.
    pub fn calls<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Step {
        Step::Tools(calls.into_iter().map(|(n, a)| (n.into(), a)).collect())
    }

    /// An OpenAI-shaped error (`{"error":{"message":…}}`) with `code`.
    pub fn error(code: u16, message: &str) -> Step {
        Step::Status {
            code,
            retry_after: None,
            body: json!({"error": {"message": message, "type": "stub_error"}}).to_string(),
        }
    }

    /// `before` and `after` streamed as one text answer, with a gate
    /// before anything is sent (so a page can start listening) and one
    /// between the two (so a test sees `before` shown while the answer is
    /// still being written). Two [`LlmStub::open_gate`] calls let it end.
    pub fn text_held(before: &str, after: &str) -> Step {
        let mut parts = vec![
            Sse::Event(chunk(json!({"role": "assistant", "content": ""}), None)),
            Sse::Gate,
        ];
        parts.extend(text_parts(before));
        parts.push(Sse::Gate);
        parts.extend(text_parts(after));
        parts.extend([Sse::finish("stop"), Sse::usage(), Sse::done()]);
        Step::Stream(parts)
    }
}

/// What the server's handlers share.
struct Shared {
    script: Mutex<Script>,
    /// Flips to `true` when the stub is dropped, to end hanging requests.
    stopped: watch::Receiver<bool>,
    /// How many gates the test has opened.
    gates: watch::Sender<usize>,
}

struct Script {
    steps: VecDeque<Step>,
    requests: Vec<Value>,
    calls: usize,
    /// How many gates answers have reached.
    gates_reached: usize,
}

impl Shared {
    fn script(&self) -> MutexGuard<'_, Script> {
        // A panicking test thread must not hide the requests from the next.
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running scripted model endpoint, stopped when dropped.
pub struct LlmStub {
    base_url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LlmStub {
    /// Starts serving `script` on a free port of 127.0.0.1. Must be called
    /// within a tokio runtime, which runs the server.
    pub async fn start(script: Vec<Step>) -> LlmStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                steps: script.into(),
                requests: Vec::new(),
                calls: 0,
                gates_reached: 0,
            }),
            stopped,
            gates: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .route("/chat/completions", post(complete))
            .route("/v1/models", get(models))
            .route("/models", get(models))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LlmStub {
            base_url: format!("http://{address}/v1"),
            shared,
            stop,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL to configure.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Every completion request body received, in order (a body that is
    /// not JSON is kept as a JSON string of its text).
    pub fn requests(&self) -> Vec<Value> {
        self.shared.script().requests.clone()
    }

    /// How many completion requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.script().requests.len()
    }

    /// How many steps of the script are left.
    pub fn remaining(&self) -> usize {
        self.shared.script().steps.len()
    }

    /// Opens the next gate ([`Sse::Gate`], [`Step::Gated`]): the first
    /// answer waiting at one (or the next to reach one) goes on.
    pub fn open_gate(&self) {
        self.shared.gates.send_modify(|opened| *opened += 1);
    }

    /// How many gates answers have reached so far (opened or not).
    pub fn gates_reached(&self) -> usize {
        self.shared.script().gates_reached
    }
}

impl Drop for LlmStub {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// `POST …/chat/completions`: records the request and plays the next step,
/// streamed if the request asks for a stream.
async fn complete(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(STUB_MODEL)
        .to_owned();
    let stream = request.get("stream") == Some(&Value::Bool(true));
    let (step, n, first_call) = {
        let mut script = shared.script();
        script.requests.push(request);
        let step = script
            .steps
            .pop_front()
            .unwrap_or_else(|| Step::text(SCRIPT_ENDED));
        let first_call = script.calls + 1;
        script.calls += calls_in(&step);
        (step, script.requests.len(), first_call)
    };
    play(shared, step, stream, n, model, first_call).await
}

/// One step played: the `n`th request's answer, as a stream if `stream`,
/// its tool calls numbered from `first_call`.
fn play(
    shared: Arc<Shared>,
    step: Step,
    stream: bool,
    n: usize,
    model: String,
    first_call: usize,
) -> Pin<Box<dyn Future<Output = Response> + Send>> {
    Box::pin(async move {
        let ids = (first_call..).map(|i| format!("call_{i}"));
        let answer = |message: Value| {
            if stream {
                streamed(&shared, streamed_message(&message))
            } else {
                completion(n, &model, message)
            }
        };
        match step {
            Step::Text(text) => answer(json!({"role": "assistant", "content": text})),
            Step::Tools(calls) => {
                let calls = calls
                    .into_iter()
                    .zip(ids)
                    .map(|((name, arguments), id)| tool_call(&id, &name, &arguments.to_string()))
                    .collect();
                answer(tool_turn(calls))
            }
            Step::RawArguments(name, arguments) => {
                let id = format!("call_{first_call}");
                answer(tool_turn(vec![tool_call(&id, &name, &arguments)]))
            }
            Step::TextAndCalls(text, calls) => {
                let calls = calls
                    .into_iter()
                    .zip(ids)
                    .map(|((name, arguments), id)| tool_call(&id, &name, &arguments.to_string()))
                    .collect();
                let mut message = tool_turn(calls);
                message["content"] = Value::String(text);
                answer(message)
            }
            Step::Gated(inner) => {
                if !pass_gate(&shared).await {
                    return Response::new(Body::new(Broken));
                }
                play(shared.clone(), *inner, stream, n, model.clone(), first_call).await
            }
            Step::Stream(parts) => streamed(&shared, parts),
            Step::Status {
                code,
                retry_after,
                body,
            } => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let kind = if serde_json::from_str::<Value>(&body).is_ok() {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                };
                let mut response = (status, [(CONTENT_TYPE, kind)], body).into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
            Step::Hang(duration) => {
                let mut stopped = shared.stopped.clone();
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
                // A body that fails at once makes the server drop the
                // connection without a complete answer.
                Response::new(Body::new(Broken))
            }
            Step::Plain(inner) => {
                play(shared.clone(), *inner, false, n, model.clone(), first_call).await
            }
        }
    })
}

/// The tool calls a step makes, for the ids of the next ones.
fn calls_in(step: &Step) -> usize {
    match step {
        Step::Tools(calls) => calls.len(),
        Step::RawArguments(..) => 1,
        Step::TextAndCalls(_, calls) => calls.len(),
        Step::Plain(inner) | Step::Gated(inner) => calls_in(inner),
        Step::Text(_) | Step::Status { .. } | Step::Hang(_) | Step::Stream(_) => 0,
    }
}

/// A chunk whose first choice has `delta`, and `finish_reason` if given.
fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": now(),
        "model": STUB_MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    })
}

/// `text` cut into at most [`PIECES`] pieces on character boundaries.
fn pieces(text: &str) -> Vec<&str> {
    let chars = text.chars().count();
    let size = chars.div_ceil(PIECES).max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.char_indices().nth(size).map_or(rest.len(), |(i, _)| i);
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// `text` as pieces of the answer's text, [`GAP`] apart.
fn text_parts(text: &str) -> Vec<Sse> {
    pieces(text)
        .into_iter()
        .flat_map(|piece| [Sse::Pause(GAP), Sse::text(piece)])
        .collect()
}

/// An assistant message as OpenAI streams it: a role, the text in pieces,
/// each tool call's name and then its arguments in pieces, why it
/// finished, the usage, `[DONE]`.
fn streamed_message(message: &Value) -> Vec<Sse> {
    let mut parts = vec![Sse::Event(chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    if let Some(text) = message["content"].as_str() {
        parts.extend(text_parts(text));
    }
    let calls = message["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (index, call) in calls.iter().enumerate() {
        parts.push(Sse::Event(chunk(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}]}),
            None,
        )));
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        for piece in pieces(arguments) {
            parts.push(Sse::Pause(GAP));
            parts.push(Sse::Event(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            )));
        }
    }
    let reason = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    parts.extend([Sse::finish(reason), Sse::usage(), Sse::done()]);
    parts
}

/// Reaches the next gate and waits until the test opens it: `false` if
/// the stub stopped first.
async fn pass_gate(shared: &Shared) -> bool {
    let gate = {
        let mut script = shared.script();
        script.gates_reached += 1;
        script.gates_reached
    };
    let mut opened = shared.gates.subscribe();
    let mut stopped = shared.stopped.clone();
    tokio::select! {
        _ = opened.wait_for(|o| *o >= gate) => true,
        _ = stopped.wait_for(|s| *s) => false,
    }
}

/// A `text/event-stream` answer playing `parts`, from a task of its own so
/// that pauses and gates hold the answer, not the server.
fn streamed(shared: &Arc<Shared>, parts: Vec<Sse>) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut stopped = shared.stopped.clone();
        for part in parts {
            let bytes = match part {
                Sse::Event(value) => format!("data: {value}\n\n"),
                Sse::Raw(text) => text,
                Sse::Pause(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    continue;
                }
                Sse::Gate => {
                    if !pass_gate(&shared).await {
                        return;
                    }
                    continue;
                }
                Sse::Cut => {
                    // What was sent reaches the client first: the server
                    // drops what it has not written when the body fails.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tx
                        .send(Err(std::io::Error::other("the stub cuts the answer")))
                        .await;
                    return;
                }
            };
            if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                // The client went away.
                return;
            }
        }
    });
    (
        [(CONTENT_TYPE, "text/event-stream")],
        Body::new(Streamed(rx)),
    )
        .into_response()
}

/// `GET …/models`.
async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{"id": STUB_MODEL, "object": "model", "created": now(), "owned_by": "jarvis-tests"}]
    }))
    .into_response()
}

fn tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

fn tool_turn(calls: Vec<Value>) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}

/// A chat completion whose one choice is `message`.
fn completion(n: usize, model: &str, message: Value) -> Response {
    let finish_reason = if message.get("tool_calls").is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let (prompt, completion) = USAGE;
    axum::Json(json!({
        "id": format!("chatcmpl-stub-{n}"),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    }))
    .into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A response body fed by a channel; an error in it drops the connection.
struct Streamed(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|bytes| bytes.map(http_body::Frame::data)))
    }
}

/// A response body that fails when first read.
struct Broken;

impl HttpBody for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other(
            "the stub closes the connection",
        ))))
    }
}
