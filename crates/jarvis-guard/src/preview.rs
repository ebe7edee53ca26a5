//! What a preview may use of the guard: its limits and stop flag, the time
//! and output bounds of the request.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::runner::Limits;

/// Bounds for running a command in a preview clone.
pub struct PreviewContext<'a> {
    /// The action being previewed.
    pub action_id: &'a str,
    /// The guard's limits.
    pub limits: &'a Limits,
    /// Set when sshd ends the session.
    pub stop: &'a Arc<AtomicBool>,
    /// Time limit for the command.
    pub timeout: Duration,
    /// Bytes of output and of diff to send back.
    pub cap: u64,
}
