//! The OpenAI-compatible client: [`OpenAiModel`] implements [`Model`] over
//! any `/chat/completions` endpoint (OpenAI, Ollama, llama.cpp, vLLM, …),
//! configured by [`ModelSettings`].
//!
//! It owns the wire format (our [`Message`]s and [`ToolSpec`]s to a chat
//! completion request, the first choice back to a [`Reply`]) and the HTTP
//! exchange: a per-attempt timeout, retries of rate limits (honouring
//! `Retry-After`), server errors, timeouts and dropped connections with
//! capped exponential backoff and jitter, and a clear [`ModelError`] for
//! everything else.
//!
//! The request and answer types and the client are async-openai's. The HTTP
//! exchange is not left to its built-in retry layer, which has a fixed retry
//! count, no per-request timeout and drops the `Retry-After` header and the
//! status of a non-JSON error body: the client installs its own tower
//! service (`Exchange`) that sends each attempt with reqwest, reads the
//! status, headers and body itself, and hands async-openai only successful
//! answers.
//!
//! It must never log, echo or put in an error the endpoint's key (errors
//! name the base URL only), never retry forever (at most `retries + 1`
//! attempts, every wait capped by `max_backoff`), never block its caller
//! beyond `timeout × attempts` plus those waits, and never send a key the
//! caller did not give it (async-openai's defaults read `OPENAI_*`
//! environment variables; every one of them is overridden here).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequest, FunctionCall, FunctionObject,
};
use jarvis_http::reqwest;
use jarvis_http::{Backoff, retry_after};
use reqwest::Body;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use crate::model::{BoxFuture, Message, Model, ModelError, Reply, Role, ToolCall, ToolSpec, Usage};

/// How long one attempt may take unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries after the first attempt unless told otherwise.
pub const DEFAULT_RETRIES: u32 = 5;
/// The first backoff unless told otherwise.
pub const DEFAULT_FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts unless told otherwise.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The longest error message kept from an endpoint's answer.
const MESSAGE_CAP: usize = 500;

/// Where and how to reach a model.
#[derive(Clone, PartialEq)]
pub struct ModelSettings {
    /// The API base, up to and including the version: e.g.
    /// `http://127.0.0.1:11434/v1` for Ollama, `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model's name at that endpoint.
    pub model: String,
    /// The bearer key, already resolved by the caller; `None` sends no
    /// `Authorization` header (Ollama and llama.cpp need none).
    pub api_key: Option<String>,
    /// How long one attempt may take, answer body included.
    pub timeout: Duration,
    /// Retries after the first attempt, for rate limits, server errors,
    /// timeouts and dropped connections.
    pub retries: u32,
    /// The wait before the first retry; it doubles at each retry.
    pub first_backoff: Duration,
    /// The longest wait between two attempts, `Retry-After` included.
    pub max_backoff: Duration,
    /// The sampling temperature; `None` leaves the endpoint's default.
    pub temperature: Option<f32>,
}

impl ModelSettings {
    /// Settings for `model` at `base_url`, with no key, a 120 s timeout,
    /// 5 retries backing off from 1 s to at most 60 s, and the endpoint's
    /// default temperature.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> ModelSettings {
        ModelSettings {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            first_backoff: DEFAULT_FIRST_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            temperature: None,
        }
    }
}

impl fmt::Debug for ModelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("first_backoff", &self.first_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("temperature", &self.temperature)
            .finish()
    }
}

/// A model behind an OpenAI-compatible chat-completions endpoint.
pub struct OpenAiModel {
    settings: ModelSettings,
    client: Client<OpenAIConfig>,
    endpoint: String,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OpenAiModel {
    /// A client for `settings`. Fails with [`ModelError::Unreachable`] when
    /// the base URL is not an http(s) URL, the key cannot be sent as a
    /// header, or no HTTP client can be built; nothing is sent yet.
    pub fn new(settings: ModelSettings) -> Result<OpenAiModel, ModelError> {
        let base = settings.base_url.trim_end_matches('/').to_owned();
        let endpoint = display_endpoint(&base);
        let invalid = |reason: String| ModelError::Unreachable {
            endpoint: endpoint.clone(),
            reason,
        };
        match reqwest::Url::parse(&base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            Ok(_) | Err(_) => return Err(invalid("the base URL is not an http(s) URL".into())),
        }
        if let Some(key) = &settings.api_key
            && HeaderValue::from_str(&format!("Bearer {key}")).is_err()
        {
            // Never echo the key itself.
            return Err(invalid("the API key is not a valid header value".into()));
        }

        let http = http_client().map_err(|reason| invalid(reason.to_string()))?;
        // Every OpenAIConfig default that reads the environment is
        // overridden: only the caller's key goes out, and only to the
        // caller's endpoint. An empty key is stripped by the exchange.
        let config = OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key(settings.api_key.clone().unwrap_or_default())
            .with_org_id("")
            .with_project_id("");
        let exchange = Exchange {
            inner: Arc::new(ExchangeInner {
                http: http.clone(),
                endpoint: endpoint.clone(),
                key: settings.api_key.clone(),
                timeout: settings.timeout,
                retries: settings.retries,
                backoff: Backoff {
                    first: settings.first_backoff,
                    max: settings.max_backoff,
                },
            }),
        };
        let client = Client::build(http, config).with_http_service(exchange);
        Ok(OpenAiModel {
            settings,
            client,
            endpoint,
        })
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    async fn complete_inner(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> Result<Reply, ModelError> {
        let request = chat_request(&self.settings, messages, tools);
        let answer: Result<WireCompletion, OpenAIError> =
            self.client.chat().create_byot(request).await;
        let completion = answer.map_err(|e| self.model_error(e))?;
        reply_from(completion, &self.endpoint)
    }

    fn model_error(&self, error: OpenAIError) -> ModelError {
        let endpoint = self.endpoint.clone();
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<ModelError>() {
                Ok(ours) => *ours,
                Err(other) => ModelError::Unreachable {
                    endpoint,
                    reason: other.to_string(),
                },
            },
            OpenAIError::JSONDeserialize(e, _body) => ModelError::Malformed {
                endpoint,
                reason: e.to_string(),
            },
            OpenAIError::ApiError(api) => ModelError::Refused {
                endpoint,
                status: api.status_code.as_u16(),
                message: cap(&scrub(
                    &api.api_error.message,
                    self.settings.api_key.as_deref(),
                )),
            },
            OpenAIError::Reqwest(e) => ModelError::Unreachable {
                endpoint,
                reason: error_chain(&e.without_url()),
            },
            other => ModelError::Malformed {
                endpoint,
                reason: format!("the request could not be made: {other}"),
            },
        }
    }
}

impl Model for OpenAiModel {
    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
    ) -> BoxFuture<'a, Result<Reply, ModelError>> {
        Box::pin(self.complete_inner(messages, tools))
    }
}

// ---------------------------------------------------------------------------
// The request and the answer.

/// Our conversation as async-openai's chat completion request.
fn chat_request(
    settings: &ModelSettings,
    messages: &[Message],
    tools: &[ToolSpec],
) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: settings.model.clone(),
        messages: messages.iter().map(wire_message).collect(),
        temperature: settings.temperature,
        // An empty list is left out: some endpoints refuse `"tools": []`.
        tools: (!tools.is_empty()).then(|| tools.iter().map(wire_tool).collect()),
        ..CreateChatCompletionRequest::default()
    }
}

fn wire_message(message: &Message) -> ChatCompletionRequestMessage {
    let text = message.content.clone();
    match message.role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(text),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(text),
            name: None,
        }),
        Role::Assistant => {
            let calls: Vec<ChatCompletionMessageToolCalls> = message
                .tool_calls
                .iter()
                .map(|call| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: call.id.clone(),
                        function: FunctionCall {
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        },
                    })
                })
                .collect();
            // Content is optional only beside tool calls.
            let content = (!text.is_empty() || calls.is_empty())
                .then_some(ChatCompletionRequestAssistantMessageContent::Text(text));
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content,
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..ChatCompletionRequestAssistantMessage::default()
            })
        }
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(text),
            tool_call_id: message.tool_call_id.clone().unwrap_or_default(),
        }),
    }
}

fn wire_tool(tool: &ToolSpec) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: tool.name.to_owned(),
            description: Some(tool.description.to_owned()),
            parameters: Some(tool.parameters.clone()),
            strict: None,
        },
    })
}

/// A chat completion as read from the wire: only what a [`Reply`] needs,
/// and leniently, since OpenAI-compatible servers differ in what else they
/// send (ids, `created`, `object`, `total_tokens`, …). `choices` is required:
/// an answer without it is not a chat completion.
#[derive(Debug, Deserialize)]
struct WireCompletion {
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    /// A JSON string per the protocol; some servers send an object, which
    /// is kept as its JSON text.
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// The first choice as our [`Reply`].
fn reply_from(completion: WireCompletion, endpoint: &str) -> Result<Reply, ModelError> {
    let usage = completion
        .usage
        .map(|u| Usage {
            prompt: u.prompt_tokens.unwrap_or(0),
            completion: u.completion_tokens.unwrap_or(0),
        })
        .unwrap_or_default();
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ModelError::Malformed {
            endpoint: endpoint.to_owned(),
            reason: "the answer has no choices".to_owned(),
        })?;
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, call)| ToolCall {
            // The id is echoed in the tool's answer; a server that gives
            // none gets a stable one.
            id: call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("call_{index}")),
            name: call.function.name,
            arguments: match call.function.arguments {
                Some(Value::String(text)) => text,
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            },
        })
        .collect();
    Ok(Reply {
        message: Message {
            role: Role::Assistant,
            content: choice.message.content.unwrap_or_default(),
            tool_calls,
            tool_call_id: None,
        },
        usage,
    })
}

// ---------------------------------------------------------------------------
// The HTTP exchange.

/// The reqwest client, configured as all of Jarvis's outbound HTTP is
/// ([`jarvis_http::client_builder`]).
fn http_client() -> Result<reqwest::Client, NoClient> {
    jarvis_http::client_builder()
        .map_err(NoClient::Tls)?
        .build()
        .map_err(|e| NoClient::Build(error_chain(&e)))
}

/// Why the planner has no HTTP client to reach its model with.
#[derive(Debug, thiserror::Error)]
enum NoClient {
    #[error(transparent)]
    Tls(jarvis_http::HttpError),
    #[error("no HTTP client: {0}")]
    Build(String),
}

/// The tower service async-openai sends through: each call is one
/// completion, made of up to `retries + 1` attempts. It answers with a
/// successful response only; every failure is a [`ModelError`], boxed in
/// [`OpenAIError::Boxed`] and unboxed again by [`OpenAiModel`].
#[derive(Clone)]
struct Exchange {
    inner: Arc<ExchangeInner>,
}

struct ExchangeInner {
    http: reqwest::Client,
    endpoint: String,
    key: Option<String>,
    timeout: Duration,
    retries: u32,
    backoff: Backoff,
}

impl tower::Service<HttpRequestFactory> for Exchange {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            inner
                .exchange(request)
                .await
                .map_err(|e| OpenAIError::Boxed(Box::new(e)))
        })
    }
}

/// What one attempt came to.
enum Attempt {
    /// A 2xx answer, read whole.
    Answered(reqwest::Response),
    /// A failure worth another attempt, and how long the endpoint asked us
    /// to wait (`Retry-After`), if it did.
    Transient(Transient, Option<Duration>),
    /// A failure no retry can mend.
    Fatal(ModelError),
}

/// A failure worth another attempt.
enum Transient {
    RateLimited,
    ServerError { status: StatusCode, message: String },
    Timeout,
    Dropped(String),
}

impl Transient {
    fn describe(&self) -> String {
        match self {
            Transient::RateLimited => "rate limited (429)".to_owned(),
            Transient::ServerError { status, message } => format!("{status}: {message}"),
            Transient::Timeout => "no answer in time".to_owned(),
            Transient::Dropped(reason) => reason.clone(),
        }
    }
}

impl ExchangeInner {
    async fn exchange(&self, request: HttpRequestFactory) -> Result<reqwest::Response, ModelError> {
        let attempts = self.retries.saturating_add(1);
        let mut attempt = 1;
        loop {
            let (transient, retry_after) = match self.attempt(&request).await {
                Attempt::Answered(response) => return Ok(response),
                Attempt::Fatal(error) => return Err(error),
                Attempt::Transient(transient, retry_after) => (transient, retry_after),
            };
            if attempt >= attempts {
                return Err(self.give_up(transient, attempts));
            }
            let wait = self.backoff.wait(attempt, retry_after);
            tracing::warn!(
                endpoint = %self.endpoint,
                attempt,
                of = attempts,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "model endpoint: {}; retrying",
                transient.describe(),
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One request, answer body included, within the timeout.
    async fn attempt(&self, factory: &HttpRequestFactory) -> Attempt {
        let mut request = match factory.build().await {
            Ok(request) => request,
            Err(e) => {
                return Attempt::Fatal(ModelError::Malformed {
                    endpoint: self.endpoint.clone(),
                    reason: format!("the request could not be built: {e}"),
                });
            }
        };
        if self.key.is_none() {
            // async-openai always writes `Bearer <key>`, even an empty one.
            request.headers_mut().remove(AUTHORIZATION);
        }
        let exchange = async {
            let response = self.http.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let (status, headers, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_elapsed) => return Attempt::Transient(Transient::Timeout, None),
            Ok(Err(e)) if e.is_connect() => {
                return Attempt::Fatal(ModelError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    reason: error_chain(&e.without_url()),
                });
            }
            Ok(Err(e)) if e.is_timeout() => return Attempt::Transient(Transient::Timeout, None),
            Ok(Err(e)) => {
                return Attempt::Transient(Transient::Dropped(error_chain(&e.without_url())), None);
            }
            Ok(Ok(answer)) => answer,
        };

        if status.is_success() {
            let mut rebuilt = http::Response::new(Body::from(body));
            *rebuilt.status_mut() = status;
            *rebuilt.headers_mut() = headers;
            return Attempt::Answered(reqwest::Response::from(rebuilt));
        }
        let retry_after = retry_after(&headers);
        let message = cap(&scrub(&error_message(status, &body), self.key.as_deref()));
        if status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Transient(Transient::RateLimited, retry_after)
        } else if status.is_server_error() {
            Attempt::Transient(Transient::ServerError { status, message }, retry_after)
        } else {
            Attempt::Fatal(ModelError::Refused {
                endpoint: self.endpoint.clone(),
                status: status.as_u16(),
                message,
            })
        }
    }

    /// The error after the last attempt failed with `last`.
    fn give_up(&self, last: Transient, attempts: u32) -> ModelError {
        let endpoint = self.endpoint.clone();
        match last {
            Transient::RateLimited => ModelError::RateLimited { endpoint, attempts },
            Transient::Timeout => ModelError::Timeout {
                endpoint,
                after: self.timeout,
            },
            Transient::ServerError { status, message } => ModelError::Failing {
                endpoint,
                status: status.as_u16(),
                attempts,
                message,
            },
            Transient::Dropped(reason) => ModelError::Unreachable {
                endpoint,
                reason: format!("{reason} ({attempts} attempts)"),
            },
        }
    }
}

/// The endpoint's own words for a failure: OpenAI's
/// `{"error":{"message":…}}`, Ollama's `{"error":"…"}`, a `message` field,
/// else the body's text, else the status's reason.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<Value>(body) {
        let found = json
            .pointer("/error/message")
            .or_else(|| json.get("error"))
            .or_else(|| json.get("message"))
            .and_then(Value::as_str);
        if let Some(message) = found {
            return message.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no message").to_owned()
    } else {
        text
    }
}

/// `text` with the key, should the endpoint echo it, blotted out.
fn scrub(text: &str, key: Option<&str>) -> String {
    match key {
        Some(key) if !key.is_empty() => text.replace(key, "…"),
        _ => text.to_owned(),
    }
}

/// `text` cut to [`MESSAGE_CAP`] characters.
fn cap(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_CAP) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// An error and its sources, `: `-separated (reqwest's own message alone
/// rarely says what went wrong: "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The base URL as errors show it: without any user or password in it.
fn display_endpoint(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            // Both only fail for URLs that cannot have credentials.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_owned()
        }
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::Instant;

    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use serde_json::json;

    use super::*;

    /// What the scripted endpoint answers to one request.
    #[derive(Clone)]
    enum Step {
        /// This status, an optional `Retry-After`, this body.
        Answer(u16, Option<&'static str>, String),
        /// Nothing, ever.
        Hang,
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

    async fn answer(
        State(script): State<Arc<Script>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
        model.complete(&messages, &tools).await.expect("an answer");

        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        let (authorization, body) = &seen[0];
        assert_eq!(authorization.as_deref(), Some("Bearer KEY"));
        assert_eq!(body["model"], "test-model");
        assert_eq!(body["temperature"], 0.25);
        assert!(body.get("stream").is_none());
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
        let reply = model.complete(&hello(), &[]).await.expect("an answer");
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
            .await
            .expect("an answer");
        assert_eq!(reply.message.content, "third time");
        assert_eq!(server.seen().len(), 3);

        // Until the retries run out: then the last error.
        let server = endpoint(vec![], Step::Answer(503, None, "down".into())).await;
        let error = server
            .model()
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
                .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
            .complete(&hello(), &[])
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
}
