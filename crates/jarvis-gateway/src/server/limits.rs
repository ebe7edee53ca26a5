//! What bounds one request: its time (`request_timeout_secs`) and its
//! body's size (`max_body_kib`), and the answers that say which bound was
//! met. The connection-level bounds are in `conn`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::error::AppError;
use super::state::AppState;

/// What `Retry-After` says on a 503 for a full server: long enough for
/// idle connections to time out or a stream to end, short enough that a
/// person retrying by hand is not kept waiting.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// How much of a body over the limit is read and dropped before the 413
/// is sent: closing a socket with unread bytes makes the kernel reset the
/// connection, and a reset can overtake the answer, so the client would
/// see "connection reset" instead of why. Beyond this the client is
/// abusive and gets the reset.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// How long that reading may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Whether a request is for the JSON API, and so is answered in JSON.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// The health endpoints, answered even when the server is full.
pub(crate) fn is_health(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// A 503 with `Retry-After`, as JSON for the API and a page otherwise.
pub(crate) fn unavailable(path: &str, message: String) -> Response {
    let error = AppError::new(StatusCode::SERVICE_UNAVAILABLE, message).headed("Busy");
    let mut r = if is_api(path) { error.json() } else { error }.into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

/// The answer to a request on a connection beyond `max_connections` that
/// is not a health check: JSON for the API, plain text otherwise (it is
/// made outside the router, so without the headers a page needs).
pub(crate) fn full(path: &str) -> Response<Body> {
    let message = "Jarvis is serving as many connections as it may (server.max_connections); try again in a few seconds.";
    let mut r = if is_api(path) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Answers a request that takes longer than `request_timeout_secs` from
/// its headers to its answer (its body's upload included) with a 503.
///
/// The handler runs on a task of its own and is left to finish when the
/// answer is given up on: dropped at an arbitrary await it could leave
/// half a change behind (a proposal stored and never judged); finished, it
/// leaves a whole one, which the 503 says may have happened. A slow upload
/// ends with its connection, which the 503 closes.
///
/// A live stream is not cut off: its answer is its stream, which starts at
/// once, and the time bounded here ends with the answer's start.
pub(crate) async fn bound_time(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limit = state.settings.connections.request;
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let handler = tokio::spawn(next.run(req));
    match tokio::time::timeout(limit, handler).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(%method, %path, error = %e, "a request's handler failed");
            let error = AppError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Jarvis failed while answering this request; the log says where.",
            );
            if is_api(&path) { error.json() } else { error }.into_response()
        }
        Err(_) => {
            tracing::warn!(%method, %path, limit_secs = limit.as_secs(), "request timed out");
            let mut r = unavailable(
                &path,
                format!(
                    "Jarvis did not finish this request within {} s (server.request_timeout_secs). It may have taken effect: look before you send it again.",
                    limit.as_secs()
                ),
            );
            // Its body may be half read: the connection cannot carry
            // another request.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
    }
}

/// Reads a request's body before the handler does, so a body over
/// `max_body_kib` is answered 413 saying the limit, whichever route it
/// was sent to and however that route reads its body.
pub(crate) async fn bound_body(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let max = state.settings.connections.max_body;
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut kept = Vec::new();
    let mut over = declared.is_some_and(|n| n > max as u64);
    if !over {
        // Within the request's time: `bound_time` answers when it is up,
        // and the body, given up on here, is dropped with its connection.
        let read = tokio::time::timeout(state.settings.connections.request, async {
            while let Some(frame) = body.frame().await {
                // Trailers: no route reads them.
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                if kept.len() + data.len() > max {
                    return Ok(true);
                }
                kept.extend_from_slice(&data);
            }
            Ok::<_, axum::Error>(false)
        })
        .await;
        over = match read {
            Ok(Ok(over)) => over,
            Ok(Err(e)) => {
                let error = AppError::new(
                    StatusCode::BAD_REQUEST,
                    format!("The request's body could not be read: {e}."),
                );
                return if is_api(parts.uri.path()) {
                    error.json()
                } else {
                    error
                }
                .into_response();
            }
            Err(_) => {
                return unavailable(
                    parts.uri.path(),
                    "The request's body did not arrive in time (server.request_timeout_secs)."
                        .into(),
                );
            }
        };
    }
    if over {
        tracing::info!(path = %parts.uri.path(), max, "request body over the limit");
        // A client waiting for `100 Continue` has sent nothing to drain.
        let waits = parts
            .headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits {
            drain(body).await;
        }
        return too_large(parts.uri.path(), max);
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

/// Reads and drops what is left of a body, within [`DRAIN_BYTES`] and
/// [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut dropped = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            dropped += frame.data_ref().map_or(0, |d| d.len());
            if dropped > DRAIN_BYTES {
                return;
            }
        }
    })
    .await;
}

/// The 413 for a body over `max` bytes, saying the limit.
fn too_large(path: &str, max: usize) -> Response {
    let limit = if max.is_multiple_of(1024) {
        format!("{} KiB", max / 1024)
    } else {
        format!("{max} bytes")
    };
    let error = AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "The request's body is larger than the {limit} Jarvis accepts (server.max_body_kib)."
        ),
    )
    .headed("Too large");
    let mut r = if is_api(path) { error.json() } else { error }.into_response();
    // What is left of the body may not have been read: the connection
    // cannot carry another request.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
