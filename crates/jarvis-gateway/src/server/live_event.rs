//! What a browser watching the UI hears about, and how it is put on the
//! wire as a server-sent event. A type of its own so the shared state can
//! hold the channel without depending on the stream's handler.

use axum::response::sse::Event;
use jarvis_core::ActionId;
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
}

impl LiveEvent {
    pub(super) fn id(&self) -> ActionId {
        match self {
            LiveEvent::Action(c) => c.id,
            LiveEvent::Output { id, .. } => *id,
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
        };
        data.ok().map(|d| Event::default().event(name).data(d))
    }
}
