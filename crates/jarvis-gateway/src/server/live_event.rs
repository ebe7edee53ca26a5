//! What a browser watching the UI hears about, and how it is put on the
//! wire as a server-sent event. A type of its own so the shared state can
//! hold the channel without depending on the stream's handler.

use axum::response::sse::Event;
use jarvis_core::{ActionId, ConversationId};
use jarvis_store::ActionChange;
use serde::Serialize;

/// Something a browser watching the UI should hear about.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent {
    /// An action was created or changed.
    Action(ActionChange),
    /// A chunk of a running action's output.
    Output {
        /// The action.
        id: ActionId,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// The chunk, as text.
        text: String,
    },
    /// A piece of the text the model is writing in a conversation's
    /// current turn (the planner's `Saying`). Never stored: it reaches only
    /// the streams that asked for its conversation, and the whole text
    /// follows as [`LiveEvent::Said`].
    Saying {
        /// The conversation.
        conversation: ConversationId,
        /// Its place in the turn's text, from 0.
        piece: u32,
        /// The piece (untrusted: the page shows it inert).
        text: String,
    },
    /// The whole text of the turn the pieces were of.
    Said {
        /// The conversation.
        conversation: ConversationId,
        /// The text (untrusted).
        text: String,
    },
}

/// What a live stream asked to hear about besides every action's changes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Interest {
    /// Only this action's changes and output.
    pub(super) action: Option<ActionId>,
    /// The model's text in this conversation.
    pub(super) conversation: Option<ConversationId>,
}

impl LiveEvent {
    /// Whether a stream with `interest` hears this: every action's
    /// changes and output unless it named one action; a conversation's
    /// text only if it named that conversation.
    pub(super) fn concerns(&self, interest: Interest) -> bool {
        match self {
            LiveEvent::Action(ActionChange { id, .. }) | LiveEvent::Output { id, .. } => {
                interest.action.is_none_or(|wanted| wanted == *id)
            }
            LiveEvent::Saying { conversation, .. } | LiveEvent::Said { conversation, .. } => {
                interest.conversation == Some(*conversation)
            }
        }
    }

    pub(super) fn to_sse(&self) -> Option<Event> {
        let (name, data) = match self {
            // The state's words too, so a page shows what the server
            // renders without a copy of the table in the script.
            LiveEvent::Action(c) => (
                "action",
                serde_json::to_value(c).and_then(|mut v| {
                    v["label"] = c.state.label().into();
                    serde_json::to_string(&v)
                }),
            ),
            LiveEvent::Output { id, stream, text } => (
                "output",
                serde_json::to_string(
                    &serde_json::json!({ "id": id, "stream": stream, "text": text }),
                ),
            ),
            LiveEvent::Saying {
                conversation,
                piece,
                text,
            } => (
                "saying",
                serde_json::to_string(&serde_json::json!({
                    "conversation": conversation, "piece": piece, "text": text
                })),
            ),
            LiveEvent::Said { conversation, text } => (
                "said",
                serde_json::to_string(
                    &serde_json::json!({ "conversation": conversation, "text": text }),
                ),
            ),
        };
        data.ok().map(|d| Event::default().event(name).data(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(n: u8) -> ConversationId {
        format!("0192f4c4-5e1a-7c3b-9f00-0000000000{n:02}")
            .parse()
            .expect("a conversation id")
    }

    #[test]
    fn a_conversations_text_reaches_only_streams_that_asked_for_it() {
        let saying = LiveEvent::Saying {
            conversation: conversation(1),
            piece: 0,
            text: "Hel".into(),
        };
        let said = LiveEvent::Said {
            conversation: conversation(1),
            text: "Hello".into(),
        };
        for event in [&saying, &said] {
            assert!(!event.concerns(Interest::default()));
            assert!(!event.concerns(Interest {
                conversation: Some(conversation(2)),
                action: None
            }));
            assert!(event.concerns(Interest {
                conversation: Some(conversation(1)),
                action: None
            }));
        }
        let output = LiveEvent::Output {
            id: "0192f4c4-5e1a-7c3b-9f00-000000000001"
                .parse()
                .expect("an action id"),
            stream: "stdout",
            text: "x".into(),
        };
        // A conversation's page still hears every action.
        assert!(output.concerns(Interest {
            conversation: Some(conversation(1)),
            action: None
        }));
    }

    #[test]
    fn text_goes_on_the_wire_as_it_was_said() {
        let event = LiveEvent::Saying {
            conversation: conversation(1),
            piece: 3,
            text: "<b>\u{1b}[2J".into(),
        };
        let shown = format!("{:?}", event.to_sse().expect("an event"));
        // JSON escapes the control character; the page makes the text
        // inert and never parses it as HTML.
        assert!(shown.contains("saying"), "{shown}");
        assert!(shown.contains(r#"\"piece\":3"#), "{shown}");
        assert!(shown.contains(r"<b>\\u001b[2J"), "{shown}");
    }
}
