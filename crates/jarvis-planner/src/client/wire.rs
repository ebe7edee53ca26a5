//! The wire format: our conversation as a chat completion request, and a
//! whole (not streamed) chat completion back as a [`Reply`].

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionCall, FunctionObject,
};
use serde::Deserialize;
use serde_json::Value;

use super::ModelSettings;
use crate::model::{Message, ModelError, Reply, Role, ToolCall, ToolSpec, Usage};

/// Our conversation as a chat completion request that asks for the answer
/// as a stream, with its usage at the end (without `include_usage` an
/// OpenAI stream carries no usage, and the token budget would count none).
pub(super) fn chat_request(
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
        stream: Some(true),
        stream_options: Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            ..ChatCompletionStreamOptions::default()
        }),
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
pub(super) struct WireCompletion {
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

/// Tokens as the endpoint counted them; either count may be missing.
#[derive(Debug, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl WireUsage {
    pub(super) fn usage(&self) -> Usage {
        Usage {
            prompt: self.prompt_tokens.unwrap_or(0),
            completion: self.completion_tokens.unwrap_or(0),
        }
    }
}

/// A tool call's arguments as text: a JSON string as it is, an object (or
/// anything else) as its JSON text, nothing as nothing.
pub(super) fn arguments_text(arguments: Option<Value>) -> String {
    match arguments {
        Some(Value::String(text)) => text,
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The id a tool call gets when the server gave it none: stable, from its
/// place in the turn, since the id is echoed in the tool's answer.
pub(super) fn fallback_id(id: Option<String>, position: usize) -> String {
    id.filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{position}"))
}

/// The first choice of a whole answer as our [`Reply`].
pub(super) fn reply_from(completion: WireCompletion, endpoint: &str) -> Result<Reply, ModelError> {
    let usage = completion
        .usage
        .as_ref()
        .map(WireUsage::usage)
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
        .map(|(position, call)| ToolCall {
            id: fallback_id(call.id, position),
            name: call.function.name,
            arguments: arguments_text(call.function.arguments),
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
