use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The identity of an action: a UUID v7, so ids sort by creation time and a
/// short unique prefix is enough to name one on the command line.
///
/// Its `Display` is always the 36-character hyphenated form in lowercase,
/// hex digits and dashes only, whatever spelling it was parsed from: the
/// guard names git refs, image tags, directories and files with it as it
/// is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(
    value_type = String,
    format = "uuid",
    description = "An action's id: a UUID v7, so ids sort by the time actions were proposed."
)]
pub struct ActionId(Uuid);

/// A string that is not a UUID v7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an action id: expected a UUID v7 such as 0192f4c4-5e1a-7c3b-9f00-1a2b3c4d5e6f"
)]
pub struct ActionIdError(pub String);

impl ActionId {
    /// A fresh id for an action proposed now.
    #[allow(clippy::new_without_default)] // a default id would hide that it is random
    pub fn new() -> ActionId {
        ActionId(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl FromStr for ActionId {
    type Err = ActionIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = Uuid::parse_str(s).map_err(|_| ActionIdError(s.to_owned()))?;
        if uuid.get_version_num() != 7 {
            return Err(ActionIdError(s.to_owned()));
        }
        Ok(ActionId(uuid))
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What the one who proposed an action says it is for, told to the person
/// who decides. It is the agent's word, never evidence: the policy judges
/// the command, not this, and views show it as untrusted text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Purpose {
    /// Why it is needed ("the worker restarts every few minutes").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What it will read or change ("restarts the worker container").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expected_effect: String,
}

/// A purpose too long to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {field} is {len} bytes; at most {max} are kept")]
pub struct PurposeError {
    /// `reason` or `expected_effect`.
    pub field: &'static str,
    /// Its length in bytes.
    pub len: usize,
    /// The most allowed.
    pub max: usize,
}

impl Purpose {
    /// The most bytes of each field: a few sentences, which is what an
    /// approver reads on a phone.
    pub const MAX_BYTES: usize = 1024;

    /// A purpose from what a proposer sent, trimmed; `None` when both are
    /// empty.
    ///
    /// # Errors
    /// [`PurposeError`] when a field is longer than [`Purpose::MAX_BYTES`].
    pub fn new(reason: &str, expected_effect: &str) -> Result<Option<Purpose>, PurposeError> {
        let check = |field: &'static str, text: &str| {
            let text = text.trim();
            if text.len() > Purpose::MAX_BYTES {
                Err(PurposeError {
                    field,
                    len: text.len(),
                    max: Purpose::MAX_BYTES,
                })
            } else {
                Ok(text.to_owned())
            }
        };
        let purpose = Purpose {
            reason: check("reason", reason)?,
            expected_effect: check("expected_effect", expected_effect)?,
        };
        Ok((!purpose.reason.is_empty() || !purpose.expected_effect.is_empty()).then_some(purpose))
    }
}

/// What an action does on its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A shell command line.
    Command,
    /// A file edit: a path and new content or a unified diff.
    Edit,
    /// Putting back the snapshot of an earlier action, which it names.
    Rollback,
}

/// A word that names no action kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action kind `{0}` (command, edit or rollback)")]
pub struct UnknownActionKind(pub String);

impl ActionKind {
    /// The word used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Command => "command",
            ActionKind::Edit => "edit",
            ActionKind::Rollback => "rollback",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = UnknownActionKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ActionKind::Command, ActionKind::Edit, ActionKind::Rollback]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownActionKind(s.to_owned()))
    }
}

/// Where an action is in its life.
///
/// Only [`ActionState::transition`] decides which moves are legal; stores and
/// executors ask it instead of encoding the graph again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(description = "Where an action is in its life.")]
pub enum ActionState {
    /// Just proposed; the policy has not decided yet.
    Proposed,
    /// The policy denied it, or (a rollback) it was refused before it
    /// started because what it would put back changed since; it never runs.
    Denied,
    /// Waiting for a person to approve or reject it.
    PendingApproval,
    /// Cleared to run, by policy or by a person.
    Approved,
    /// A person rejected it.
    Rejected,
    /// Nobody decided in time, or it was approved but never started in time.
    Expired,
    /// Running on its host.
    Running,
    /// Ran and exited 0.
    Succeeded,
    /// Ran and failed (non-zero exit or transport error).
    Failed,
    /// Killed because it ran past its timeout.
    TimedOut,
    /// Was running when the gateway stopped; never run again.
    Interrupted,
    /// Its change was put back by a rollback action.
    RolledBack,
}

/// A move the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an action that is {from} cannot become {to}")]
pub struct IllegalTransition {
    /// The state the action was in.
    pub from: ActionState,
    /// The state that was asked for.
    pub to: ActionState,
}

/// A word that names no action state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action state `{0}`")]
pub struct UnknownActionState(pub String);

impl ActionState {
    /// Every state, in lifecycle order.
    pub const ALL: [ActionState; 12] = [
        ActionState::Proposed,
        ActionState::Denied,
        ActionState::PendingApproval,
        ActionState::Approved,
        ActionState::Rejected,
        ActionState::Expired,
        ActionState::Running,
        ActionState::Succeeded,
        ActionState::Failed,
        ActionState::TimedOut,
        ActionState::Interrupted,
        ActionState::RolledBack,
    ];

    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: ActionState) -> bool {
        use ActionState::*;
        matches!(
            (self, to),
            (Proposed, Denied | PendingApproval | Approved)
                | (PendingApproval, Approved | Rejected | Expired)
                | (Approved, Running)
                // Approved, but it never started within the run window (a
                // limit refused it and nobody pressed run again in time).
                | (Approved, Expired)
                // What was approved (command, host, snapshot plan) changed
                // before it ran: a person is asked again.
                | (Approved, PendingApproval)
                // Refused before it started, nothing sent that changes
                // anything: a rollback whose targets changed since the
                // action it undoes (unless forced).
                | (Approved, Denied)
                | (Running, Succeeded | Failed | TimedOut | Interrupted)
                | (Succeeded | Failed | TimedOut, RolledBack)
        )
    }

    /// The state after moving to `to`.
    ///
    /// # Errors
    /// [`IllegalTransition`] when the lifecycle forbids the move.
    pub fn transition(self, to: ActionState) -> Result<ActionState, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// Whether its run is still ahead of it (proposed, waiting or approved
    /// but not started): pages then speak of what *will* run and change.
    pub fn is_ahead(self) -> bool {
        matches!(
            self,
            ActionState::Proposed | ActionState::PendingApproval | ActionState::Approved
        )
    }

    /// Whether nothing more can happen to the action except, for some, a rollback.
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            ActionState::Proposed
                | ActionState::PendingApproval
                | ActionState::Approved
                | ActionState::Running
        )
    }

    /// The word used in storage, JSON and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Proposed => "proposed",
            ActionState::Denied => "denied",
            ActionState::PendingApproval => "pending_approval",
            ActionState::Approved => "approved",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Failed => "failed",
            ActionState::TimedOut => "timed_out",
            ActionState::Interrupted => "interrupted",
            ActionState::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionState {
    type Err = UnknownActionState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownActionState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::ActionState::*;
    use super::*;

    #[test]
    fn a_purpose_is_trimmed_bounded_and_absent_when_empty() {
        assert_eq!(Purpose::new(" ", ""), Ok(None));
        let p = Purpose::new(" the worker restarts ", "restarts it")
            .expect("fits")
            .expect("given");
        assert_eq!(p.reason, "the worker restarts");
        let long = "x".repeat(Purpose::MAX_BYTES + 1);
        let e = Purpose::new("", &long).expect_err("too long");
        assert_eq!(e.field, "expected_effect");
        assert!(e.to_string().contains("1025 bytes"), "{e}");
        // Stored as JSON without the empty field.
        let only = Purpose::new("why", "").expect("fits").expect("given");
        assert_eq!(
            serde_json::to_value(&only).expect("json"),
            serde_json::json!({"reason": "why"})
        );
    }

    #[test]
    fn the_lifecycle_of_design_md() {
        let legal = [
            (Proposed, Denied),
            (Proposed, PendingApproval),
            (Proposed, Approved),
            (PendingApproval, Approved),
            (PendingApproval, Rejected),
            (PendingApproval, Expired),
            (Approved, Running),
            (Approved, Expired),
            (Approved, PendingApproval),
            (Approved, Denied),
            (Running, Succeeded),
            (Running, Failed),
            (Running, TimedOut),
            (Running, Interrupted),
            (Succeeded, RolledBack),
            (Failed, RolledBack),
            (TimedOut, RolledBack),
        ];
        for from in ActionState::ALL {
            for to in ActionState::ALL {
                assert_eq!(
                    from.can_become(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn illegal_moves_name_both_states() {
        let err = Denied.transition(Running).expect_err("illegal");
        assert_eq!(
            err.to_string(),
            "an action that is denied cannot become running"
        );
        assert_eq!(
            Interrupted.transition(Running).map_err(|e| e.to),
            Err(Running)
        );
    }

    #[test]
    fn states_round_trip_as_words() {
        for s in ActionState::ALL {
            assert_eq!(s.as_str().parse::<ActionState>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).expect("ser"), format!("\"{s}\""));
        }
    }

    #[test]
    fn ids_are_v7_and_sort_by_time() {
        let a = ActionId::new();
        let b = ActionId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<ActionId>(), Ok(a));
        assert!(
            "0192f4c4-5e1a-4c3b-9f00-1a2b3c4d5e6f"
                .parse::<ActionId>()
                .is_err()
        );
        assert!("nope".parse::<ActionId>().is_err());
    }

    proptest::proptest! {
        /// Any v7 id, however it was spelt, displays as hex digits and
        /// dashes: one path component, a valid git ref name and image tag.
        #[test]
        fn ids_display_as_hex_and_dashes(bytes: [u8; 16], upper: bool, braced: bool) {
            let uuid = uuid::Builder::from_random_bytes(bytes)
                .with_version(uuid::Version::SortRand)
                .into_uuid();
            let mut text = uuid.hyphenated().to_string();
            if upper {
                text = text.to_uppercase();
            }
            if braced {
                text = format!("{{{text}}}");
            }
            let id: ActionId = text.parse().expect("a UUID v7");
            let shown = id.to_string();
            proptest::prop_assert_eq!(shown.len(), 36);
            proptest::prop_assert!(
                shown.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f' | b'-')),
                "{}", shown
            );
        }
    }
}
