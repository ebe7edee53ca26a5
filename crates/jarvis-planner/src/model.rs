//! The conversation with a model: messages, tool calls, and the [`Model`]
//! trait the agent loop talks to.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Jarvis's instructions to the model.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// The answer to one tool call.
    Tool,
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The model's id for it, echoed in the answer.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Its arguments as the model wrote them: JSON text that may be
    /// malformed, so it is parsed (and refused) by the tools, not here.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// Its text (empty for an assistant turn made only of tool calls).
    pub content: String,
    /// The tool calls of an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool answer: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A system message.
    pub fn system(text: impl Into<String>) -> Message {
        Message::text(Role::System, text)
    }

    /// A message from the person.
    pub fn user(text: impl Into<String>) -> Message {
        Message::text(Role::User, text)
    }

    /// The answer to tool call `id`.
    pub fn tool(id: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            tool_call_id: Some(id.into()),
            ..Message::text(Role::Tool, text)
        }
    }

    fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool the model may call: its name, what it is for, and a JSON Schema
/// of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Tokens a completion used, as the endpoint counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt: u64,
    /// Tokens of the answer.
    pub completion: u64,
}

impl Usage {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.prompt + self.completion
    }
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Its turn, possibly with tool calls.
    pub message: Message,
    /// What it cost.
    pub usage: Usage,
}

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The endpoint cannot be reached.
    #[error("the model endpoint {endpoint} cannot be reached: {reason}")]
    Unreachable {
        /// The base URL (never the key).
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// No answer began within the timeout, on every attempt.
    #[error("the model at {endpoint} did not answer within {}", span(*.after))]
    Timeout {
        /// The base URL.
        endpoint: String,
        /// The timeout.
        after: Duration,
    },
    /// The answer began and broke off before any of its text was shown
    /// (the connection closed, the stream ended early or reported an
    /// error, or nothing came within the idle timeout), on every attempt.
    #[error(
        "the model at {endpoint} broke off its answer midway ({attempts} attempts; the last: {reason})"
    )]
    BrokeOff {
        /// The base URL.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// What happened the last time.
        reason: String,
    },
    /// The answer broke off after part of its text had been shown. It is
    /// not asked for again: a second answer would show its text a second
    /// time, and not necessarily the same text.
    #[error(
        "the model at {endpoint} broke off its answer after part of it was shown, and was not asked again so that nothing shows twice: {reason}"
    )]
    BrokeOffShown {
        /// The base URL.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// Still rate limited after every retry.
    #[error("the model at {endpoint} is rate limiting; gave up after {attempts} attempts")]
    RateLimited {
        /// The base URL.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The endpoint answered every attempt with a server error (5xx).
    #[error(
        "the model at {endpoint} kept failing: it answered {status} to {attempts} attempts: {message}"
    )]
    Failing {
        /// The base URL.
        endpoint: String,
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// Its last message.
        message: String,
    },
    /// The endpoint refused the request (bad key, unknown model, …).
    #[error("the model at {endpoint} refused the request ({status}): {message}")]
    Refused {
        /// The base URL.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The answer is not a chat completion.
    #[error("the model at {endpoint} answered something that is not a chat completion: {reason}")]
    Malformed {
        /// The base URL.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
}

/// A duration as errors say it: whole seconds, or milliseconds below one.
pub(crate) fn span(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

/// A boxed future, so [`Model`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the text of an answer goes while it is being written: each piece
/// once, in order.
pub type Saying<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A chat-completion model with tool calling.
pub trait Model: Send + Sync {
    /// One completion of `messages`, offering `tools`.
    ///
    /// The answer's text is handed to `saying` as it arrives. The pieces,
    /// joined, are the start of the reply's text, and all of it when the
    /// reply comes back; no piece is ever given twice, so a model that
    /// asks again after a failure may do so only while it has given none
    /// ([`ModelError::BrokeOffShown`] otherwise). A model that cannot
    /// stream may give the text whole, or not at all: the agent loop
    /// passes on whatever of the reply's text it was not given.
    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
        saying: Saying<'a>,
    ) -> BoxFuture<'a, Result<Reply, ModelError>>;
}
