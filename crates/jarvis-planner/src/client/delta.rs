//! A streamed chat completion put back together: each event's deltas of the
//! first choice (its text, its tool calls by index) and the usage, into the
//! same [`Reply`] the whole answer would have been read as.
//!
//! What a chunk may hold is read leniently, as the whole answer is:
//! servers differ in what else they send (ids, `object`, `logprobs`, a
//! `role` in the first delta, `reasoning_content`, `usage: null` in every
//! chunk), and a chunk with nothing for us is no error. What is there must
//! have its protocol's type: text that is not a string, an index that is
//! not a count, a chunk that is not JSON are malformed, named by the
//! event's number.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::sse::SseEvent;
use super::wire::{WireUsage, arguments_text, fallback_id};
use crate::model::{Message, Reply, Role, ToolCall, Usage};

/// What one event of the stream came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Chunk {
    /// A piece of the answer's text.
    Text(String),
    /// Nothing to show (tool call pieces, usage, a role, a keep-alive).
    Quiet,
    /// `[DONE]`: the answer is complete.
    Done,
}

/// Why an event could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChunkError {
    /// It is not a chat completion chunk; what was wrong.
    Malformed(String),
    /// The endpoint reported an error in the middle of its answer; its
    /// words.
    Reported(String),
}

#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Option<Vec<WireChunkChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolDelta>>,
}

#[derive(Debug, Deserialize)]
struct WireToolDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    /// A piece of the JSON text; an object (a server that sends the call
    /// whole) is taken as its JSON text.
    #[serde(default)]
    arguments: Option<Value>,
}

/// A tool call as far as its pieces have come.
#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// The answer so far.
#[derive(Debug, Default)]
pub(super) struct Assembly {
    text: String,
    /// By the index the server gave them, which is their place in the turn.
    calls: BTreeMap<u32, PartialCall>,
    /// The call the last piece without an index went to.
    last: Option<u32>,
    usage: Option<Usage>,
    /// The first choice said why it finished: the answer is whole even if
    /// the stream ends without `[DONE]`.
    finished: bool,
    /// Events taken, to name one in an error.
    events: u64,
}

impl Assembly {
    /// Takes one event of the stream.
    pub(super) fn take(&mut self, event: &SseEvent) -> Result<Chunk, ChunkError> {
        self.events += 1;
        let n = self.events;
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Chunk::Done);
        }
        let parsed: Result<Value, _> = serde_json::from_str(data);
        if event.name == "error" {
            let words = parsed
                .ok()
                .and_then(|v| endpoint_words(&v))
                .unwrap_or_else(|| data.to_owned());
            return Err(ChunkError::Reported(words));
        }
        let value = parsed.map_err(|e| {
            ChunkError::Malformed(format!("event {n} of the stream is not JSON: {e}"))
        })?;
        if !value.is_object() {
            return Err(ChunkError::Malformed(format!(
                "event {n} of the stream is not a JSON object"
            )));
        }
        if let Some(words) = value.get("error").filter(|e| !e.is_null()) {
            let words = endpoint_words(&value).unwrap_or_else(|| words.to_string());
            return Err(ChunkError::Reported(words));
        }
        let chunk: WireChunk = serde_json::from_value(value).map_err(|e| {
            ChunkError::Malformed(format!(
                "event {n} of the stream is not a chat completion chunk: {e}"
            ))
        })?;
        if let Some(usage) = &chunk.usage {
            // Some servers count as they go: the last count is the total.
            self.usage = Some(usage.usage());
        }
        let mut piece = String::new();
        for choice in chunk.choices.unwrap_or_default() {
            // One answer is asked for; another choice is not ours.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if choice.finish_reason.is_some() {
                self.finished = true;
            }
            let Some(delta) = choice.delta else {
                continue;
            };
            if let Some(content) = delta.content {
                piece.push_str(&content);
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.call_piece(call);
            }
        }
        self.text.push_str(&piece);
        Ok(if piece.is_empty() {
            Chunk::Quiet
        } else {
            Chunk::Text(piece)
        })
    }

    /// Whether the answer is whole: `[DONE]` aside, its first choice said
    /// why it finished.
    pub(super) fn finished(&self) -> bool {
        self.finished
    }

    /// Adds a piece of a tool call to the call it belongs to: the one of
    /// its index; without an index (servers that send each call whole),
    /// a new call when it brings a new id, else the last one.
    fn call_piece(&mut self, piece: WireToolDelta) {
        let id = piece.id.filter(|id| !id.is_empty());
        let index = match piece.index {
            Some(index) => index,
            None => {
                let last = self.last.and_then(|i| self.calls.get(&i).map(|c| (i, c)));
                match (last, &id) {
                    (Some((i, call)), Some(id)) if call.id.as_ref().is_none_or(|own| own == id) => {
                        i
                    }
                    (Some((i, _)), None) => i,
                    (Some(_), Some(_)) | (None, _) => self
                        .calls
                        .last_key_value()
                        .map_or(0, |(i, _)| i.saturating_add(1)),
                }
            }
        };
        self.last = Some(index);
        let call = self.calls.entry(index).or_default();
        if call.id.is_none() {
            call.id = id;
        }
        if let Some(function) = piece.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                // The name comes once; a server that repeats it whole
                // is not asking for it twice.
                if call.name != name {
                    call.name.push_str(&name);
                }
            }
            call.arguments.push_str(&arguments_text(function.arguments));
        }
    }

    /// The answer as a [`Reply`], as [`super::wire::reply_from`] reads the
    /// same answer sent whole.
    pub(super) fn into_reply(self) -> Reply {
        let tool_calls = self
            .calls
            .into_values()
            .enumerate()
            .map(|(position, call)| ToolCall {
                id: fallback_id(call.id, position),
                name: call.name,
                arguments: call.arguments,
            })
            .collect();
        Reply {
            message: Message {
                role: Role::Assistant,
                content: self.text,
                tool_calls,
                tool_call_id: None,
            },
            usage: self.usage.unwrap_or_default(),
        }
    }
}

/// The endpoint's own words in a JSON error: OpenAI's
/// `{"error":{"message":…}}`, Ollama's `{"error":"…"}`, or a `message`.
pub(super) fn endpoint_words(json: &Value) -> Option<String> {
    json.pointer("/error/message")
        .or_else(|| json.get("error"))
        .or_else(|| json.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(value: Value) -> SseEvent {
        SseEvent {
            name: String::new(),
            data: value.to_string(),
        }
    }

    fn raw(text: &str) -> SseEvent {
        SseEvent {
            name: String::new(),
            data: text.to_owned(),
        }
    }

    fn delta(delta: Value) -> SseEvent {
        data(
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": null}], "usage": null}),
        )
    }

    #[test]
    fn text_comes_out_piece_by_piece_and_whole_at_the_end() {
        let mut a = Assembly::default();
        assert_eq!(
            a.take(&delta(json!({"role": "assistant", "content": ""}))),
            Ok(Chunk::Quiet)
        );
        assert_eq!(
            a.take(&delta(json!({"content": "The disk "}))),
            Ok(Chunk::Text("The disk ".into()))
        );
        assert_eq!(
            a.take(&delta(json!({"content": "is 91% full."}))),
            Ok(Chunk::Text("is 91% full.".into()))
        );
        assert!(!a.finished());
        assert_eq!(
            a.take(&data(
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            )),
            Ok(Chunk::Quiet)
        );
        assert!(a.finished());
        assert_eq!(
            a.take(&data(json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}))),
            Ok(Chunk::Quiet)
        );
        assert_eq!(a.take(&raw("[DONE]")), Ok(Chunk::Done));
        let reply = a.into_reply();
        assert_eq!(reply.message.content, "The disk is 91% full.");
        assert!(reply.message.tool_calls.is_empty());
        assert_eq!(
            reply.usage,
            Usage {
                prompt: 9,
                completion: 4
            }
        );
    }

    #[test]
    fn tool_calls_are_assembled_by_index_from_their_pieces() {
        let mut a = Assembly::default();
        for event in [
            delta(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "run_command", "arguments": ""}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"host\":"}}]})),
            // A second call starts while the first is not done.
            delta(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "list_hosts"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"nas\",\"command\":\"df -h\"}"}}]}),
            ),
            delta(json!({"tool_calls": [{"index": 1, "function": {"arguments": "{not json"}}]})),
        ] {
            assert_eq!(a.take(&event), Ok(Chunk::Quiet));
        }
        let reply = a.into_reply();
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
        // No usage in the stream counts zero, as a whole answer without one.
        assert_eq!(reply.usage, Usage::default());
    }

    #[test]
    fn calls_without_an_index_or_an_id_still_come_together() {
        let mut a = Assembly::default();
        for event in [
            // Whole calls, one per chunk, with no index; the name repeated.
            delta(
                json!({"tool_calls": [{"id": "x1", "function": {"name": "finish", "arguments": {"summary": "ok"}}}]}),
            ),
            delta(
                json!({"tool_calls": [{"id": "x1", "function": {"name": "finish", "arguments": ""}}]}),
            ),
            delta(
                json!({"tool_calls": [{"id": "x2", "function": {"name": "list_hosts", "arguments": "{}"}}]}),
            ),
            // Indexed, with no id at all.
            delta(
                json!({"tool_calls": [{"index": 7, "function": {"name": "read_", "arguments": "{\"id\":"}}]}),
            ),
            delta(
                json!({"tool_calls": [{"index": 7, "function": {"name": "action", "arguments": "\"a\"}"}}]}),
            ),
        ] {
            assert_eq!(a.take(&event), Ok(Chunk::Quiet));
        }
        let calls = a.into_reply().message.tool_calls;
        let seen: Vec<(&str, &str, &str)> = calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("x1", "finish", r#"{"summary":"ok"}"#),
                ("x2", "list_hosts", "{}"),
                ("call_2", "read_action", r#"{"id":"a"}"#),
            ]
        );
    }

    #[test]
    fn other_choices_and_unknown_fields_are_left_alone() {
        let mut a = Assembly::default();
        let event = data(json!({
            "id": "x", "object": "chat.completion.chunk", "system_fingerprint": "fp",
            "choices": [
                {"index": 1, "delta": {"content": "not ours"}},
                {"index": 0, "delta": {"content": "ours", "reasoning_content": "hmm", "refusal": null}, "logprobs": null}
            ]
        }));
        assert_eq!(a.take(&event), Ok(Chunk::Text("ours".into())));
        assert_eq!(a.take(&data(json!({"object": "ping"}))), Ok(Chunk::Quiet));
        assert_eq!(a.into_reply().message.content, "ours");
    }

    #[test]
    fn malformed_chunks_say_which_and_what() {
        let cases = [
            (
                raw("{\"choices\": [{\"delta\": {\"content\": \"cut"),
                "event 1 of the stream is not JSON",
            ),
            (raw("[1, 2]"), "event 1 of the stream is not a JSON object"),
            (
                delta(json!({"content": 42})),
                "event 1 of the stream is not a chat completion chunk: invalid type: integer `42`, expected a string",
            ),
            (
                delta(json!({"tool_calls": [{"index": -1}]})),
                "event 1 of the stream is not a chat completion chunk: invalid value: integer `-1`",
            ),
            (
                data(json!({"choices": "none"})),
                "event 1 of the stream is not a chat completion chunk: invalid type: string \"none\"",
            ),
        ];
        for (event, want) in cases {
            let mut a = Assembly::default();
            match a.take(&event) {
                Err(ChunkError::Malformed(reason)) => {
                    assert!(reason.starts_with(want), "{reason}")
                }
                other => panic!("{event:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_in_any_pieces_never_panics() {
        use super::super::sse::Decoder;
        // Bytes a stream is made of, and some that break it.
        let alphabet: &[u8] = b"data: event{}[]\"\\,:0123456789-content tool_calls index choices delta\n\r\xff\xc3\xa9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3000 {
            let len = usize::try_from(next() % 96).unwrap_or(0);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[usize::try_from(next()).unwrap_or(0) % alphabet.len()])
                .collect();
            let mut decoder = Decoder::default();
            let mut assembly = Assembly::default();
            let mut events = Vec::new();
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                let take = (usize::try_from(next()).unwrap_or(0) % 7 + 1).min(rest.len());
                if decoder.feed(&rest[..take], &mut events).is_err() {
                    break;
                }
                rest = &rest[take..];
            }
            let _ = decoder.finish(&mut events);
            for event in &events {
                let _ = assembly.take(event);
            }
            let _ = assembly.into_reply();
        }
        // Well-formed chunks of odd shapes, whole.
        for odd in [
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 4_000_000_000u64, "function": {"arguments": 1}}]}}]}),
            json!({"choices": [{"delta": {"tool_calls": [{}, {"id": ""}, {"function": {}}]}}]}),
            json!({"choices": [{"delta": null, "finish_reason": null}], "usage": {}}),
            json!({"choices": null, "usage": null}),
        ] {
            let mut a = Assembly::default();
            let _ = a.take(&data(odd));
            let _ = a.into_reply();
        }
    }

    #[test]
    fn an_error_in_the_stream_is_reported_in_the_endpoints_words() {
        let mut a = Assembly::default();
        assert_eq!(
            a.take(&data(
                json!({"error": {"message": "upstream overloaded", "code": 503}})
            )),
            Err(ChunkError::Reported("upstream overloaded".into()))
        );
        let named = SseEvent {
            name: "error".into(),
            data: "model unloaded".into(),
        };
        assert_eq!(
            a.take(&named),
            Err(ChunkError::Reported("model unloaded".into()))
        );
        // `error: null` beside a chunk is no error.
        assert_eq!(
            a.take(&data(
                json!({"error": null, "choices": [{"delta": {"content": "ok"}}]})
            )),
            Ok(Chunk::Text("ok".into()))
        );
    }
}
