//! The judgement of a command line before it may touch a host.
//!
//! This crate owns everything between a command string and a [`Judgement`]:
//! parsing it as shell ([`shell`]), finding every program it would run and
//! what each can do ([`analyze`], from the [`kb`] knowledge base), the hard
//! [`guardrails`], the policy [`rules`], [`risk`] scoring, the reasons said
//! for a person (ranked sentences, see [`Judgement::reasons`]), the static
//! dry-run plan ([`dryrun`]), what a line can change ([`scope`]), which
//! decides what a snapshot captures, and what the kernel should let it do
//! on the host ([`confine`]).
//!
//! It must never do IO beyond reading policy files, and it must never allow
//! what it could not understand: a line that does not parse, a program whose
//! name is only known at run time, or an input too large or too deep to judge
//! is denied or sent for approval, never allowed.

pub mod analyze;
pub mod awk;
pub mod catastrophe;
pub mod confine;
pub mod dryrun;
pub mod engine;
pub mod guardrails;
pub mod jq;
pub mod kb;
pub mod options;
pub mod paths;
mod reasons;
pub mod risk;
pub mod rules;
pub mod scope;
pub mod script;
pub mod sed;
pub mod shell;
mod shipped;

pub use engine::{Base, Judgement, Policy, Request, Unreadable};
pub use rules::{LoadError, PolicyError};
