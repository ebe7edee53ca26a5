//! The stylesheet and the script, and the answer for any other path.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::error::AppError;

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// `GET /static/app.css`.
pub(crate) async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../../../templates/static/app.css"),
    )
}

/// `GET /static/app.js`.
pub(crate) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../../../templates/static/app.js"),
    )
}

/// Anything else.
pub(crate) async fn not_found() -> AppError {
    AppError::new(StatusCode::NOT_FOUND, "There is no page here.")
}
