//! Risk scoring: one number from 0 to 100 per command and per line.
//!
//! The score is deterministic and comes only from the facts in
//! [`crate::analyze`]: the strongest finding sets the floor, and a few
//! aggravating circumstances add to it. A model may later raise a risk, never
//! lower it; that is the gateway's business, not this module's.

use jarvis_core::Risk;

use crate::analyze::{Command, Finding};
use crate::kb::Effect;

/// The risk of one command.
pub fn command_risk(c: &Command) -> Risk {
    let floor = c
        .findings
        .iter()
        .map(|f| i64::from(f.risk))
        .max()
        .unwrap_or(5);
    let mut score = floor;
    let changes = |f: &&Finding| !matches!(f.effect, Effect::Read);
    // Each further kind of change is one more way for it to go wrong.
    let mut kinds: Vec<Effect> = c
        .findings
        .iter()
        .filter(changes)
        .map(|f| f.effect)
        .collect();
    kinds.sort();
    kinds.dedup();
    score += 5 * (kinds.len().saturating_sub(1).min(3) as i64);
    // A change made as root reaches further than the same change as a user.
    if c.privileged && c.findings.iter().any(|f| changes(&f)) {
        score += 10;
    }
    // Background jobs outlive the action and its timeout.
    if c.via.iter().any(|v| v == "background &") {
        score += 5;
    }
    Risk::saturating(score)
}

/// The risk of a whole line: its riskiest command.
pub fn line_risk<'a>(commands: impl IntoIterator<Item = &'a Command>) -> Risk {
    commands
        .into_iter()
        .map(command_risk)
        .max_by_key(|r| r.score())
        .unwrap_or(Risk::NONE)
}
