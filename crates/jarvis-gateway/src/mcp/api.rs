//! How the MCP tools reach the JSON API: through the router in this
//! process (`jarvis serve`'s `/mcp`, or `jarvis mcp` on the local store),
//! or over HTTP to a running `jarvis serve`.
//!
//! Either way the request is the one an agent would send to `/api/v1` with
//! the same bearer token, so the token's scope, the policy, the limits and
//! the audit log treat an MCP call exactly as an API call.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

/// The longest answer read from the API, in bytes: an action's page with
/// its output and events stays well under it.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// How long one API request may take over HTTP before the tool gives up on
/// it. Waiting for a person is a loop of short requests, not one long one.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the API is.
#[derive(Clone)]
pub enum ApiRoute {
    /// The API's router, called in this process.
    InProcess(axum::Router),
    /// A running `jarvis serve`.
    Remote {
        /// Its base URL, without a trailing slash (`https://jarvis.lan`).
        base: String,
        /// The HTTP client.
        client: jarvis_http::reqwest::Client,
    },
}

/// Why an API request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// The server could not be reached or did not answer in time.
    #[error("the Jarvis server at {url} did not answer: {source}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// Why.
        source: jarvis_http::reqwest::Error,
    },
    /// An answer's body could not be read.
    #[error("the answer to {method} {path} could not be read: {message}")]
    Body {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// Why.
        message: String,
    },
    /// An answer was not JSON.
    #[error("the answer to {method} {path} ({status}) is not JSON: {source}")]
    NotJson {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// Its status.
        status: StatusCode,
        /// Why.
        source: serde_json::Error,
    },
    /// The request could not be made (a token that is not a header value).
    #[error("the request {method} {path} could not be made: {message}")]
    Request {
        /// The request's method.
        method: Method,
        /// The request's path.
        path: String,
        /// Why.
        message: String,
    },
    /// No HTTP client could be configured.
    #[error("no HTTP client for the Jarvis server: {0}")]
    Client(String),
}

/// An API answer: its status and JSON body.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

impl ApiAnswer {
    /// The API's own error text (`{"error": "…"}`), or the status.
    pub fn error_text(&self) -> String {
        self.body
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| self.status.to_string(), str::to_owned)
    }
}

impl ApiRoute {
    /// A route to the server at `base` (`http(s)://host[:port]`).
    ///
    /// # Errors
    /// [`ApiCallError::Client`] if no HTTP client can be configured.
    pub fn remote(base: &str) -> Result<Self, ApiCallError> {
        let client = jarvis_http::client_builder()
            .map_err(|e| ApiCallError::Client(e.to_string()))?
            .timeout(REMOTE_TIMEOUT)
            .build()
            .map_err(|e| ApiCallError::Client(e.to_string()))?;
        Ok(ApiRoute::Remote {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// Sends `method path` with `body` (JSON) as the holder of `token`.
    ///
    /// # Errors
    /// [`ApiCallError`] when no answer came or it was not JSON; an answer
    /// with an error status is an `Ok` for the caller to read.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: &str,
    ) -> Result<ApiAnswer, ApiCallError> {
        let (status, bytes) = match self {
            ApiRoute::InProcess(router) => {
                in_process(router.clone(), method.clone(), path, body, token).await?
            }
            ApiRoute::Remote { base, client } => {
                let url = format!("{base}{path}");
                let unreachable = |source| ApiCallError::Unreachable {
                    url: url.clone(),
                    source,
                };
                let mut request = client.request(method.clone(), &url).bearer_auth(token);
                if let Some(body) = body {
                    request = request.json(body);
                }
                let answer = request.send().await.map_err(unreachable)?;
                let status = answer.status();
                let bytes = answer.bytes().await.map_err(unreachable)?;
                (status, bytes.to_vec())
            }
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|source| ApiCallError::NotJson {
                method,
                path: path.to_owned(),
                status,
                source,
            })?
        };
        Ok(ApiAnswer { status, body })
    }
}

async fn in_process(
    router: axum::Router,
    method: Method,
    path: &str,
    body: Option<&Value>,
    token: &str,
) -> Result<(StatusCode, Vec<u8>), ApiCallError> {
    let failed = |message: String| ApiCallError::Request {
        method: method.clone(),
        path: path.to_owned(),
        message,
    };
    let payload = match body {
        Some(v) => Body::from(serde_json::to_vec(v).map_err(|e| failed(e.to_string()))?),
        None => Body::empty(),
    };
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(payload)
        .map_err(|e| failed(e.to_string()))?;
    let answer = match router.oneshot(request).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| ApiCallError::Body {
            method: method.clone(),
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    Ok((status, bytes.to_vec()))
}
