//! Conversations with the planner: their identity, and the requester name
//! under which their actions are proposed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity of a conversation: a UUID v7, like an action's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(Uuid);

/// A string that is not a conversation id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a conversation id: expected a UUID v7")]
pub struct ConversationIdError(pub String);

impl ConversationId {
    /// A fresh id for a conversation started now.
    #[allow(clippy::new_without_default)] // a default id would hide that it is random
    pub fn new() -> ConversationId {
        ConversationId(Uuid::now_v7())
    }

    /// The requester its actions are proposed as: `chat:ID`. The pipeline
    /// treats it like any other requester; approval rules count it as the
    /// person who started the conversation.
    pub fn requester(&self) -> String {
        format!("{CHAT_PREFIX}{self}")
    }
}

/// Where a conversation stands: going on, or ended one of two ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationState {
    /// The planner may still act in it.
    Active,
    /// The planner came to an answer.
    Finished,
    /// It was stopped before an answer (a limit, an error, a person).
    Stopped,
}

impl ConversationState {
    /// The word the store keeps and the UI shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Active => "active",
            ConversationState::Finished => "finished",
            ConversationState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ConversationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not one of `active`, `finished`, `stopped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown conversation state `{0}`: expected active, finished or stopped")]
pub struct UnknownConversationState(pub String);

impl FromStr for ConversationState {
    type Err = UnknownConversationState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ConversationState::Active,
            ConversationState::Finished,
            ConversationState::Stopped,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .ok_or_else(|| UnknownConversationState(s.to_owned()))
    }
}

/// The prefix of a conversation's requester name.
pub const CHAT_PREFIX: &str = "chat:";

impl FromStr for ConversationId {
    type Err = ConversationIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = Uuid::parse_str(s).map_err(|_| ConversationIdError(s.to_owned()))?;
        if uuid.get_version_num() != 7 {
            return Err(ConversationIdError(s.to_owned()));
        }
        Ok(ConversationId(uuid))
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_their_words() {
        for s in [
            ConversationState::Active,
            ConversationState::Finished,
            ConversationState::Stopped,
        ] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert!("paused".parse::<ConversationState>().is_err());
    }

    #[test]
    fn ids_round_trip_and_name_their_requester() {
        let id = ConversationId::new();
        assert_eq!(id.to_string().parse::<ConversationId>(), Ok(id));
        assert_eq!(id.requester(), format!("chat:{id}"));
        assert!("not-an-id".parse::<ConversationId>().is_err());
    }
}
