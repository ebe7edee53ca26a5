//! A scripted model endpoint for the planner's end-to-end tests: a real HTTP
//! server on a loopback port that speaks the OpenAI chat-completions
//! protocol and answers each completion request with the next [`Step`] of
//! its script, recording every request so a test can check what the model
//! was shown.
//!
//! It serves `POST /v1/chat/completions` (and `POST /chat/completions`, for
//! a base URL without `/v1`) and `GET /v1/models` (and `GET /models`), the
//! latter listing one model, [`STUB_MODEL`]. Once the script is exhausted it
//! answers the text [`SCRIPT_ENDED`] with `finish_reason` `stop`, so a test
//! whose model loop runs on never hangs. It stops when dropped.

use std::collections::VecDeque;
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
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The one model `GET /v1/models` lists, and the `model` of answers to
/// requests that name none.
pub const STUB_MODEL: &str = "stub-model";

/// What the stub answers once its script is exhausted.
pub const SCRIPT_ENDED: &str = "(script ended)";

/// The `usage` of every completion: prompt, completion tokens.
pub const USAGE: (u64, u64) = (100, 20);

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
}

/// What the server's handlers share.
struct Shared {
    script: Mutex<Script>,
    /// Flips to `true` when the stub is dropped, to end hanging requests.
    stopped: watch::Receiver<bool>,
}

struct Script {
    steps: VecDeque<Step>,
    requests: Vec<Value>,
    calls: usize,
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
            }),
            stopped,
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
}

impl Drop for LlmStub {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// `POST …/chat/completions`: records the request and plays the next step.
async fn complete(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(STUB_MODEL)
        .to_owned();
    let (step, n, first_call) = {
        let mut script = shared.script();
        script.requests.push(request);
        let step = script
            .steps
            .pop_front()
            .unwrap_or_else(|| Step::text(SCRIPT_ENDED));
        let first_call = script.calls + 1;
        script.calls += match &step {
            Step::Tools(calls) => calls.len(),
            Step::RawArguments(..) => 1,
            Step::Text(_) | Step::Status { .. } | Step::Hang(_) => 0,
        };
        (step, script.requests.len(), first_call)
    };
    let ids = (first_call..).map(|i| format!("call_{i}"));
    match step {
        Step::Text(text) => completion(n, &model, json!({"role": "assistant", "content": text})),
        Step::Tools(calls) => {
            let calls = calls
                .into_iter()
                .zip(ids)
                .map(|((name, arguments), id)| tool_call(&id, &name, &arguments.to_string()))
                .collect();
            completion(n, &model, tool_turn(calls))
        }
        Step::RawArguments(name, arguments) => {
            let id = format!("call_{first_call}");
            completion(
                n,
                &model,
                tool_turn(vec![tool_call(&id, &name, &arguments)]),
            )
        }
        Step::Status {
            code,
            retry_after,
            body,
        } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
    }
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
