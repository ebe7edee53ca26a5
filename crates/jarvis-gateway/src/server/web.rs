//! The pages of the web UI: the approval queue, actions, the audit log,
//! hosts and the policy, and the forms that approve, deny and roll back.
//! Every page works without JavaScript; forms post back and redirect.
//!
//! One module per page; what both the pages and the API need is in the
//! server's lower modules (`page`, `lookup`, `audit_filter`, `hosts`,
//! `judge`, `chain`).

mod actions;
mod assets;
mod audit;
mod decide;
mod forms;
mod hosts;
mod policy;
mod queue;
mod rollback;

pub(crate) use actions::{action, actions};
pub(crate) use assets::{css, js, not_found};
pub(crate) use audit::{audit, verify_now};
pub(crate) use decide::{approve, deny, run};
pub(crate) use hosts::{check_host, hosts};
pub(crate) use policy::policy;
pub(crate) use queue::{queue, queue_items};
pub(crate) use rollback::{rollback, rollback_page};
