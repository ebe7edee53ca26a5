//! What a refused or failed request answers: an HTTP status and a message a
//! person can act on, as a page or as JSON.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
            json: false,
            chrome: None,
            back: None,
        }
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
            | StoreError::Exists(_) => StatusCode::CONFLICT,
            StoreError::ApprovalRefused(_) => StatusCode::FORBIDDEN,
            StoreError::Locked { .. }
            | StoreError::DiskFull { .. }
            | StoreError::ConnectionLost { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store error");
        }
        AppError::new(status, e.to_string())
    }

    pub(crate) fn from_gateway(e: GatewayError) -> AppError {
        let e = match e {
            GatewayError::Store(s) => return AppError::from_store(s),
            other => other,
        };
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
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
            GatewayError::SnapshotFailed { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Policy(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::Model { .. } => StatusCode::BAD_GATEWAY,
        };
        AppError::new(status, e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.json {
            return (self.status, Json(json!({ "error": self.message }))).into_response();
        }
        let heading = self
            .status
            .canonical_reason()
            .unwrap_or("Something went wrong")
            .to_owned();
        let page = ErrorPage {
            chrome: self.chrome.map(|c| *c).unwrap_or_else(|| Chrome {
                title: heading.clone(),
                user: None,
                csrf: String::new(),
                section: Section::Queue,
                flash: None,
                chain_intact: None,
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
