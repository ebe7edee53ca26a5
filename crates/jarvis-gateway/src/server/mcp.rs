//! `/mcp`: the MCP server ([`crate::mcp`]) over streamable HTTP, for agents
//! holding an API token.
//!
//! A gate in front of it lets only bearer tokens through (scope `propose`
//! or `read`), answering anyone else 401 before the protocol starts; each
//! tool then calls the JSON API in this process with that same token. A
//! session cookie is no way in: a page in a signed-in browser must not be
//! able to drive an agent's tools.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use jarvis_core::Principal;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::error::AppError;
use super::session::identify;
use super::state::AppState;
use crate::mcp::{ApiRoute, JarvisMcp, McpOptions};

/// The `/mcp` route, calling the API through `api` (the API's routes with
/// their state).
pub(crate) fn routes(state: &AppState, api: Router) -> Router<AppState> {
    let server = JarvisMcp::new(
        ApiRoute::InProcess(api),
        McpOptions {
            token: None,
            wait: state.settings.mcp_wait,
            ui: state.settings.public_url.clone(),
        },
    );
    let stop = stop_token(state);
    // Every request carries a bearer token that a web page cannot read,
    // so a rebound DNS name gains an attacker nothing; the names the
    // server is reached by are the operator's (proxies, public_url), so
    // the SDK's loopback-only Host list would only lock agents out.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .route_layer(middleware::from_fn_with_state(state.clone(), gate))
}

/// A cancellation token that fires when the server begins to stop, so
/// tool calls waiting on a person end with the connections that carry
/// them instead of holding the shutdown.
fn stop_token(state: &AppState) -> CancellationToken {
    let token = CancellationToken::new();
    let mut stopping = state.stopping.subscribe();
    let fire = token.clone();
    tokio::spawn(async move {
        while !*stopping.borrow_and_update() {
            if stopping.changed().await.is_err() {
                break;
            }
        }
        fire.cancel();
    });
    token
}

/// Lets API tokens through; answers anyone else 401.
async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match identify(&state, req.headers()).await {
        Ok(Some(caller)) => match caller.principal {
            Principal::Token { .. } => next.run(req).await,
            Principal::User { .. } | Principal::Local { .. } => unauthorized(),
        },
        Ok(None) => unauthorized(),
        Err(e) => e.json().into_response(),
    }
}

fn unauthorized() -> Response {
    let mut r = AppError::new(
        StatusCode::UNAUTHORIZED,
        "/mcp takes an API token: send `Authorization: Bearer jrv_…` (from `jarvis tokens add NAME --scope propose`)",
    )
    .json()
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}
