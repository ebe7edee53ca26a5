//! What a preview may use of the guard: its limits, kernel wall, host
//! policy and stop flag, the time and output bounds of the request.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use jarvis_core::ActionId;
use jarvis_policy::Policy;

use crate::runner::Host;

/// Bounds for running a command in a preview clone.
pub struct PreviewContext<'a> {
    /// The action being previewed.
    pub action_id: ActionId,
    /// The host's limits and kernel wall.
    pub host: &'a Host<'a>,
    /// The host policy, whose analysis of the replayed line decides what
    /// the kernel lets it execute.
    pub policy: &'a Policy,
    /// Set when sshd ends the session.
    pub stop: &'a Arc<AtomicBool>,
    /// Time limit for the command.
    pub timeout: Duration,
    /// Bytes of output and of diff to send back.
    pub cap: u64,
}
