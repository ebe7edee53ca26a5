//! Execution of Jarvis actions on hosts.
//!
//! This crate owns the way an approved action reaches a host: the host guard
//! [`protocol`] (shared with `jarvis-guard`), the [`snapshot`] plan an
//! approval binds to and the messages of snapshots, rollbacks, previews and
//! edits (also shared; the host does the work), and, with the `transport`
//! feature, the SSH transport over multiplexed OpenSSH connections, the
//! per-host, per-requester and global rate limits, the per-host concurrency
//! limit, output capture and the circuit breaker. The executor reaches a
//! host through a [`transport::Transport`]; the `fake-guard` feature adds
//! an in-process one for tests (`fake`).
//!
//! It must never decide *whether* an action may run: that is the policy's
//! and the approver's, and the gateway asks them before calling in here. It
//! only refuses for its own reasons (limits, an open breaker), and says so.

pub mod protocol;
pub mod snapshot;
mod wire;

#[cfg(feature = "transport")]
pub mod breaker;
#[cfg(feature = "transport")]
mod executor;
#[cfg(any(test, feature = "fake-guard"))]
pub mod fake;
#[cfg(feature = "transport")]
pub mod host;
#[cfg(feature = "transport")]
pub mod limits;
#[cfg(feature = "transport")]
pub mod transport;

#[cfg(feature = "transport")]
pub use executor::{Admission, ExecError, Execution, Executor, Job, Output, Ticket};
#[cfg(feature = "transport")]
pub use host::{GlobalLimits, HostLimits, HostSpec};
