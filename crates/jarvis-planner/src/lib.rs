//! The planner: turns a person's request into actions proposed through the
//! gateway, one at a time, with a language model behind an OpenAI-compatible
//! endpoint.
//!
//! It owns the conversation with the model ([`model`]: messages, the
//! [`model::Model`] trait and its OpenAI-compatible client), the tools the
//! model may call ([`tools`]) and the agent loop ([`agent`]). It reaches
//! hosts only through [`agent::Actions`], which the gateway implements with
//! its one pipeline: the model never sees another way to act, and whatever
//! it proposes is judged, approved and audited like any other request.
//!
//! It must never run anything itself, never treat text from tool output as
//! instructions, and never log or echo the endpoint's key.

pub mod agent;
pub mod client;
pub mod model;
pub mod tools;

pub use tools::Tool;
