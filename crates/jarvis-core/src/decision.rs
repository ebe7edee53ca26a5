use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the policy says may happen to a proposed action.
///
/// The variants are ordered by strictness, so `max` of two decisions is the
/// stricter one: deny beats approve beats allow.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(
    description = "What the policy says may happen: `allow` runs without a person (within the unattended risk limit), `approve` waits for one, `deny` never runs."
)]
pub enum Decision {
    /// Runs without a person, provided its risk is within the unattended limit.
    Allow,
    /// Waits in the approval queue for a person.
    Approve,
    /// Never runs.
    Deny,
}

impl Decision {
    /// The word used in policy files, JSON and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }

    /// The stricter of two decisions.
    #[must_use]
    pub fn strictest(self, other: Decision) -> Decision {
        self.max(other)
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A word that is not one of `allow`, `approve`, `deny`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown decision `{0}`: expected allow, approve or deny")]
pub struct UnknownDecision(pub String);

impl FromStr for Decision {
    type Err = UnknownDecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Decision::Allow),
            "approve" => Ok(Decision::Approve),
            "deny" => Ok(Decision::Deny),
            other => Err(UnknownDecision(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_order_is_deny_approve_allow() {
        assert_eq!(Decision::Allow.strictest(Decision::Deny), Decision::Deny);
        assert_eq!(
            Decision::Approve.strictest(Decision::Allow),
            Decision::Approve
        );
        assert_eq!(Decision::Deny.strictest(Decision::Approve), Decision::Deny);
    }

    #[test]
    fn round_trips_through_text_and_json() {
        for d in [Decision::Allow, Decision::Approve, Decision::Deny] {
            assert_eq!(d.as_str().parse::<Decision>(), Ok(d));
            let json = serde_json::to_string(&d).expect("serialize");
            assert_eq!(json, format!("\"{d}\""));
        }
        assert!("Allow".parse::<Decision>().is_err());
    }
}
