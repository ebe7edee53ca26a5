//! The OpenAI-compatible client: [`OpenAiModel`] implements [`Model`] over
//! any `/chat/completions` endpoint (OpenAI, Ollama, llama.cpp, vLLM, …),
//! configured by [`ModelSettings`].
//!
//! It owns the wire format (our [`Message`]s and [`ToolSpec`]s to a chat
//! completion request, the answer back to a [`Reply`]) and the HTTP
//! exchange. Every request asks for the answer as a stream (`"stream":
//! true`, with the usage at its end): the text is handed on piece by piece
//! as the server-sent events bring it (`sse`), the pieces of text and tool
//! calls are put back together into the same [`Reply`] the answer sent
//! whole would be (`delta`), and an endpoint that answers the whole
//! completion as plain JSON instead is read as before (`wire`).
//!
//! The exchange (`exchange`) retries rate limits (honouring
//! `Retry-After`), server errors, timeouts and dropped connections with
//! capped exponential backoff and jitter, and an answer that broke off
//! before any of its text was shown; never one whose text was shown in
//! part, which would show it twice. It times the wait for the answer to
//! begin ([`ModelSettings::timeout`]) and each wait between two of its
//! events ([`ModelSettings::idle_timeout`]), not the answer as a whole, so
//! a long answer that keeps coming is never cut.
//!
//! The request types are async-openai's; the HTTP exchange is ours, on
//! jarvis-http's client and retry rule: async-openai's own client reads a
//! stream in a task of its own with no idle timeout, cannot fall back to a
//! plain answer, has a fixed retry count and drops `Retry-After`.
//!
//! It must never log, echo or put in an error the endpoint's key (errors
//! name the base URL only), never retry forever (at most `retries + 1`
//! attempts, every wait capped by `max_backoff`), never hand a piece of
//! text on twice, never hold more than 8 MiB of an
//! answer, and never send a key the caller did not give it.

use std::fmt;
use std::time::Duration;

use jarvis_http::Backoff;
use jarvis_http::reqwest;
use reqwest::header::HeaderValue;

use crate::model::{BoxFuture, Message, Model, ModelError, Reply, Saying, ToolSpec};

mod delta;
mod exchange;
mod sse;
mod wire;

#[cfg(test)]
mod tests;

use exchange::Exchange;

/// How long an answer may take to begin unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a streamed answer may pause unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
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
    /// The bearer key, already resolved by the caller; `None` (or an empty
    /// key) sends no `Authorization` header (Ollama and llama.cpp need
    /// none).
    pub api_key: Option<String>,
    /// How long an attempt may take to begin answering: from sending the
    /// request to the first event of a streamed answer (or the first byte
    /// of a whole one), connecting included.
    pub timeout: Duration,
    /// How long a streamed answer may pause: the longest wait for its next
    /// event once it has begun (for a whole answer, its next piece).
    pub idle_timeout: Duration,
    /// Retries after the first attempt, for rate limits, server errors,
    /// timeouts, dropped connections and answers that broke off before
    /// any of their text was shown.
    pub retries: u32,
    /// The wait before the first retry; it doubles at each retry.
    pub first_backoff: Duration,
    /// The longest wait between two attempts, `Retry-After` included.
    pub max_backoff: Duration,
    /// The sampling temperature; `None` leaves the endpoint's default.
    pub temperature: Option<f32>,
}

impl ModelSettings {
    /// Settings for `model` at `base_url`, with no key, 120 s to begin an
    /// answer and 120 s between two of its events, 5 retries backing off
    /// from 1 s to at most 60 s, and the endpoint's default temperature.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> ModelSettings {
        ModelSettings {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
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
            .field("idle_timeout", &self.idle_timeout)
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
    exchange: Exchange,
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
        let exchange = Exchange {
            http,
            url: format!("{base}/chat/completions"),
            endpoint,
            key: settings.api_key.clone(),
            first_byte: settings.timeout,
            idle: settings.idle_timeout,
            retries: settings.retries,
            backoff: Backoff {
                first: settings.first_backoff,
                max: settings.max_backoff,
            },
        };
        Ok(OpenAiModel { settings, exchange })
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    async fn complete_inner(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
        saying: Saying<'_>,
    ) -> Result<Reply, ModelError> {
        let request = wire::chat_request(&self.settings, messages, tools);
        let body = serde_json::to_vec(&request).map_err(|e| ModelError::Malformed {
            endpoint: self.exchange.endpoint.clone(),
            reason: format!("the request could not be made: {e}"),
        })?;
        self.exchange.complete(&body, saying).await
    }
}

impl Model for OpenAiModel {
    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
        saying: Saying<'a>,
    ) -> BoxFuture<'a, Result<Reply, ModelError>> {
        Box::pin(self.complete_inner(messages, tools, saying))
    }
}

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
