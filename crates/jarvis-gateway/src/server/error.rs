//! What a refused or failed request answers: an HTTP status and a message a
//! person can act on, as a page or as JSON.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jarvis_core::ActionState;
use jarvis_exec::ExecError;
use jarvis_store::StoreError;
use serde_json::json;

use super::views::{Chrome, ErrorPage, Section};
use crate::pipeline::GatewayError;

/// A request that did not do what was asked, and why.
#[derive(Debug)]
pub(crate) struct AppError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// The page's heading when the status's own words would not say what
    /// happened ("Already approved" rather than "Conflict").
    heading: Option<String>,
    json: bool,
    // Boxed: most errors carry no frame, and the error travels in every Result.
    chrome: Option<Box<Chrome>>,
    back: Option<String>,
}

impl AppError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            message: message.into(),
            heading: None,
            json: false,
            chrome: None,
            back: None,
        }
    }

    /// Heads the page with `heading` instead of the status's words.
    pub(crate) fn headed(mut self, heading: impl Into<String>) -> AppError {
        self.heading = Some(heading.into());
        self
    }

    /// Adds a sentence to the message (who decided, what to do).
    pub(crate) fn and(mut self, sentence: &str) -> AppError {
        if !sentence.is_empty() {
            self.message = format!("{} {sentence}", self.message.trim_end());
        }
        self
    }

    /// Answer as JSON `{"error": …}`.
    pub(crate) fn json(mut self) -> AppError {
        self.json = true;
        self
    }

    /// Answer as a page inside this frame, with a link back.
    pub(crate) fn page(mut self, chrome: Chrome, back: Option<String>) -> AppError {
        self.chrome = Some(Box::new(chrome));
        self.back = back;
        self
    }

    pub(crate) fn from_store(e: StoreError) -> AppError {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Ambiguous { .. } | StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Conflict { .. }
            | StoreError::IllegalTransition { .. }
            | StoreError::Exists(_)
            | StoreError::KeyUsed { .. } => StatusCode::CONFLICT,
            StoreError::ApprovalRefused(_) => StatusCode::FORBIDDEN,
            // The request was fine; the database could not keep it.
            // Nothing was written, so the client may send it again once
            // space is back.
            StoreError::NoSpace { .. } => StatusCode::INSUFFICIENT_STORAGE,
            StoreError::Locked { .. }
            | StoreError::Unwritable { .. }
            | StoreError::ConnectionLost { .. } => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Connect { .. }
            | StoreError::Migrate { .. }
            | StoreError::Database { .. }
            | StoreError::Corrupt(_)
            | StoreError::Signing(_)
            | StoreError::Tampered { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store error");
        } else if e.is_unwritable() {
            tracing::error!(error = %e, "the database refused a write");
        }
        match &e {
            // Someone decided while this person was reading the page.
            StoreError::Conflict { found, .. } => {
                let (heading, now) = moved_on(*found);
                AppError::new(
                    status,
                    format!("Someone else acted on this action first: {now}. Nothing was done."),
                )
                .headed(heading)
            }
            StoreError::Connect { .. }
            | StoreError::Migrate { .. }
            | StoreError::Locked { .. }
            | StoreError::NoSpace { .. }
            | StoreError::Unwritable { .. }
            | StoreError::ConnectionLost { .. }
            | StoreError::Database { .. }
            | StoreError::NotFound(_)
            | StoreError::Ambiguous { .. }
            | StoreError::IllegalTransition { .. }
            | StoreError::Corrupt(_)
            | StoreError::KeyUsed { .. }
            | StoreError::Exists(_)
            | StoreError::Invalid(_)
            | StoreError::ApprovalRefused(_)
            | StoreError::Signing(_)
            | StoreError::Tampered { .. } => AppError::new(status, e.to_string()),
        }
    }

    pub(crate) fn from_gateway(e: GatewayError) -> AppError {
        if let GatewayError::Store(s) = e {
            return AppError::from_store(s);
        }
        let status = match &e {
            GatewayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::UnknownHost(_)
            | GatewayError::BadEdit { .. }
            | GatewayError::BadCwd { .. }
            | GatewayError::EmptyMessage
            | GatewayError::MessageTooLong { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            GatewayError::WrongState { .. }
            | GatewayError::NowDenied { .. }
            | GatewayError::PlanChanged { .. }
            | GatewayError::KernelUnenforced { .. }
            | GatewayError::SnapshotExists { .. }
            | GatewayError::NoRollback { .. }
            | GatewayError::NothingToUndo { .. }
            | GatewayError::ConversationBusy { .. } => StatusCode::CONFLICT,
            GatewayError::Expired { .. } | GatewayError::ApprovalLapsed { .. } => StatusCode::GONE,
            GatewayError::ApprovalRefused { .. } | GatewayError::NotYourConversation { .. } => {
                StatusCode::FORBIDDEN
            }
            GatewayError::NotSent { source, .. } => match source {
                ExecError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                ExecError::UnknownHost(_)
                | ExecError::TimeoutTooLong { .. }
                | ExecError::Busy { .. }
                | ExecError::CircuitOpen { .. }
                | ExecError::TooLarge { .. }
                | ExecError::Transport(_)
                | ExecError::Refused { .. } => StatusCode::SERVICE_UNAVAILABLE,
            },
            GatewayError::SnapshotFailed { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Policy(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Model { .. } => StatusCode::BAD_GATEWAY,
        };
        let heading = match &e {
            GatewayError::WrongState { state, .. } => Some(moved_on(*state).0.to_owned()),
            GatewayError::Expired { .. } => Some("Expired before anyone decided".into()),
            GatewayError::ApprovalLapsed { .. } => Some("The approval lapsed".into()),
            GatewayError::NowDenied { .. } => Some("The policy refuses it now".into()),
            GatewayError::PlanChanged { .. } => Some("Changed since it was approved".into()),
            GatewayError::KernelUnenforced { .. } => Some("The host cannot fence it in".into()),
            GatewayError::NoRollback { .. } => Some("Nothing to roll back".into()),
            GatewayError::ConversationBusy { .. } => Some("The conversation is still going".into()),
            GatewayError::NotSent { source, .. } => Some(match source {
                ExecError::RateLimited(_) => "Too many actions at once".into(),
                ExecError::UnknownHost(_)
                | ExecError::TimeoutTooLong { .. }
                | ExecError::Busy { .. }
                | ExecError::CircuitOpen { .. }
                | ExecError::TooLarge { .. }
                | ExecError::Transport(_)
                | ExecError::Refused { .. } => "Not sent to the host".into(),
            }),
            GatewayError::Policy(_)
            | GatewayError::Store(_)
            | GatewayError::UnknownHost(_)
            | GatewayError::NotYourConversation { .. }
            | GatewayError::EmptyMessage
            | GatewayError::MessageTooLong { .. }
            | GatewayError::SnapshotFailed { .. }
            | GatewayError::SnapshotExists { .. }
            | GatewayError::BadCwd { .. }
            | GatewayError::BadEdit { .. }
            | GatewayError::Model { .. }
            | GatewayError::ApprovalRefused { .. }
            | GatewayError::NothingToUndo { .. } => None,
        };
        let message = match &e {
            GatewayError::WrongState { state, wanted, .. } => format!(
                "This action can no longer be {wanted}: {}. Nothing was done.",
                moved_on(*state).1
            ),
            other @ (GatewayError::Policy(_)
            | GatewayError::Store(_)
            | GatewayError::UnknownHost(_)
            | GatewayError::Expired { .. }
            | GatewayError::ApprovalLapsed { .. }
            | GatewayError::NotYourConversation { .. }
            | GatewayError::ConversationBusy { .. }
            | GatewayError::EmptyMessage
            | GatewayError::MessageTooLong { .. }
            | GatewayError::NowDenied { .. }
            | GatewayError::PlanChanged { .. }
            | GatewayError::KernelUnenforced { .. }
            | GatewayError::SnapshotFailed { .. }
            | GatewayError::SnapshotExists { .. }
            | GatewayError::BadCwd { .. }
            | GatewayError::BadEdit { .. }
            | GatewayError::Model { .. }
            | GatewayError::ApprovalRefused { .. }
            | GatewayError::NoRollback { .. }
            | GatewayError::NothingToUndo { .. }
            | GatewayError::NotSent { .. }) => other.to_string(),
        };
        let error = AppError::new(status, message);
        match heading {
            Some(h) => error.headed(h),
            None => error,
        }
    }
}

/// Where an action went while someone meant to act on it: a page's
/// heading, and the sentence that says so.
pub(crate) fn moved_on(state: ActionState) -> (&'static str, &'static str) {
    match state {
        ActionState::Proposed => ("Still being judged", "it is still being judged"),
        ActionState::PendingApproval => ("Still waiting", "it is still waiting for approval"),
        ActionState::Approved => ("Already decided", "it was approved already"),
        ActionState::Rejected => ("Already decided", "it was rejected already"),
        ActionState::Expired => ("Already decided", "it expired already"),
        ActionState::Denied => ("Already decided", "the policy refused it"),
        ActionState::Running => ("Running now", "it is running now"),
        ActionState::Succeeded => ("Already ran", "it already ran and succeeded"),
        ActionState::Failed => ("Already ran", "it already ran and failed"),
        ActionState::TimedOut => ("Already ran", "it already ran and timed out"),
        ActionState::Interrupted => ("Already ran", "it was interrupted while it ran"),
        ActionState::RolledBack => ("Already ran", "it ran and was rolled back"),
    }
}

/// What a status means for the person who got it, as the heading of an
/// error page (the number itself means nothing to most people).
pub(crate) fn status_words(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "That request could not be read",
        StatusCode::UNAUTHORIZED => "Sign in first",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Nothing here",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::GONE => "Too late",
        StatusCode::UNPROCESSABLE_ENTITY => "Not accepted",
        StatusCode::TOO_MANY_REQUESTS => "Too many at once",
        StatusCode::BAD_GATEWAY => "A host or the model failed",
        StatusCode::SERVICE_UNAVAILABLE => "Not available right now",
        StatusCode::INSUFFICIENT_STORAGE => "The gateway's disk is full",
        _ => "Something went wrong",
    }
}

/// Who decided an action, in a sentence ("It was approved by alice 2 min
/// ago."),
/// for a page that refuses to decide it again; empty when the log names
/// no decision.
pub(crate) async fn decided(state: &super::state::Shared, id: jarvis_core::ActionId) -> String {
    let events = state
        .gw
        .store()
        .events(&jarvis_store::AuditFilter {
            action_id: Some(id.to_string()),
            kind: Some("action.".into()),
            limit: Some(200),
            ..jarvis_store::AuditFilter::default()
        })
        .await
        .unwrap_or_default();
    let now = super::state::now_unix();
    events
        .iter()
        .find_map(|e| {
            let who = jarvis_core::words::actor(&e.actor);
            let when = match super::views::ago(&e.at, now) {
                w if w.is_empty() => w,
                w => format!(" {w}"),
            };
            let state = e.kind.strip_prefix("action.")?.parse().ok()?;
            Some(match state {
                ActionState::Approved => format!("It was approved by {who}{when}."),
                ActionState::Rejected => format!("It was rejected by {who}{when}."),
                ActionState::Expired => format!("It expired{when}, before anyone decided."),
                ActionState::Denied => format!("The policy refused it{when}."),
                ActionState::Proposed
                | ActionState::PendingApproval
                | ActionState::Running
                | ActionState::Succeeded
                | ActionState::Failed
                | ActionState::TimedOut
                | ActionState::Interrupted
                | ActionState::RolledBack => return None,
            })
        })
        .unwrap_or_default()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.json {
            return (self.status, Json(json!({ "error": self.message }))).into_response();
        }
        let heading = self
            .heading
            .unwrap_or_else(|| status_words(self.status).to_owned());
        let page = ErrorPage {
            chrome: self.chrome.map(|c| *c).unwrap_or_else(|| Chrome {
                title: heading.clone(),
                user: None,
                csrf: String::new(),
                section: Section::Queue,
                flash: None,
                chain_intact: None,
                chain_problem: None,
                unnotified: false,
            }),
            status: self.status.as_u16(),
            heading,
            message: self.message,
            back: self.back,
        };
        match askama::Template::render(&page) {
            Ok(body) => (self.status, axum::response::Html(body)).into_response(),
            // The error page itself failed: plain text, not another page.
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                (self.status, page.message).into_response()
            }
        }
    }
}
