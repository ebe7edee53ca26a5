//! The Jarvis pipeline and its configuration.
//!
//! This crate owns the wiring: `jarvis.toml` ([`config`]), and the one path
//! every action takes from proposal to record ([`pipeline`]): policy
//! judgement, the runaway-loop brake, approvals and their expiry, a fresh
//! policy check before running, admission by the executor, the run, and its
//! result stored with the final state; snapshots before and after a
//! changing action, previews for approvers, rollbacks and retention
//! ([`rollback`]). Over it: the web UI and JSON API ([`server`]) and the
//! MCP server for agents ([`mcp`]), which calls that API.
//!
//! It must never let an action reach a host by any other path than
//! [`pipeline::Gateway::execute`], and never run an action twice: the move
//! to `running` is a compare-and-set in the store.

pub mod auth;
pub mod chat;
pub mod config;
pub mod mcp;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod rollback;
pub mod server;
pub mod witness;

pub use config::{
    Config, ConfigError, ConnectionLimits, LlmSettings, LoopBrake, NotifySpec, SecretRef,
    ServerSettings,
};
pub use pipeline::{Gateway, GatewayError, Proposal, Proposed, Started, Work};
pub use rollback::RolledBack;
