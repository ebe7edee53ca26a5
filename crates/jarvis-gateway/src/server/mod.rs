//! The axum server of `jarvis serve`: the JSON API, the web UI, sign-in,
//! live updates, notifications and the operations endpoints, all over the
//! one [`Gateway`].
//!
//! Every request that changes something goes through the same pipeline
//! methods the CLI uses; the server adds who may ask (roles, token scopes,
//! CSRF, the login limiter) and never decides what may run.

mod api;
mod audit_filter;
mod chain;
mod chat;
mod conn;
mod error;
mod hosts;
mod judge;
mod limits;
mod live;
mod live_event;
mod login;
mod lookup;
mod mcp;
mod openapi;
mod ops;
mod page;
mod runs;
mod session;
mod state;
mod story;
pub mod views;
mod web;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use jarvis_store::AuditKey;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::auth::{LoginLimiter, LoginLimits};
use crate::config::NotifySpec;
use crate::metrics::Metrics;
use crate::notify::{Notifier, RetryPolicy, Webhook};
use crate::pipeline::Gateway;

pub use live_event::LiveEvent;
pub use openapi::document as openapi_document;
use state::{AppState, Shared};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A webhook's URL cannot be read.
    #[error("webhook `{name}`: its URL cannot be read: {message}")]
    Webhook {
        /// The webhook.
        name: String,
        /// Why.
        message: String,
    },
    /// The audit log cannot be followed for live changes.
    #[error("cannot follow the audit log for changes: {0}")]
    Store(#[from] jarvis_store::StoreError),
    /// The server stopped with an IO error.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// What `jarvis serve` needs besides the gateway.
pub struct ServeOptions {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The operator's audit key, to verify checkpoints in the background.
    pub audit_key: Option<AuditKey>,
}

/// Resolves the configured webhooks' URLs.
///
/// # Errors
/// [`ServerError::Webhook`] naming the webhook whose URL cannot be read.
pub fn webhooks(specs: &[NotifySpec]) -> Result<Vec<Webhook>, ServerError> {
    specs
        .iter()
        .map(|s| {
            let url = s.url.resolve().map_err(|e| ServerError::Webhook {
                name: s.name.clone(),
                message: e.to_string(),
            })?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ServerError::Webhook {
                    name: s.name.clone(),
                    message: "is not an http(s) URL".into(),
                });
            }
            Ok(Webhook {
                name: s.name.clone(),
                format: s.format,
                url,
                events: s.events.clone(),
            })
        })
        .collect()
}

/// Runs the server until `shutdown` resolves: binds, starts the background
/// work (expiry, host checks, audit verification, notifications) and
/// serves.
///
/// # Errors
/// [`ServerError`] when it cannot bind or a webhook URL cannot be read.
pub async fn serve(
    gw: Gateway,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let settings = gw.config().server.clone();
    let hooks = webhooks(&gw.config().notify)?;
    let notifier = Notifier::start(hooks, settings.public_url.clone(), RetryPolicy::default());
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: options.bind,
            source,
        })?;
    let limits = settings.connections.clone();
    let state = app_state(gw, settings, notifier, options.audit_key);
    let changes = state.gw.store().changes().await?;
    let background = ops::start_background(state.clone(), changes);
    let app = router(state.clone());
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "jarvis serve is listening");
    conn::serve(listener, app, limits, {
        let state = state.clone();
        async move {
            shutdown.await;
            // Live streams never end on their own, and the connections
            // that carry them close only when they do.
            let _ = state.stopping.send(true);
        }
    })
    .await;
    // No request comes in any more; let the runs under way finish (a
    // routine restart should not cut work off), up to the grace.
    let running = state.gw.runs_in_flight();
    if running > 0 {
        let grace = state.settings.drain;
        tracing::info!(running, ?grace, "letting the runs under way finish");
        let left = state.gw.drain(grace).await;
        if left > 0 {
            tracing::warn!(
                left,
                "runs still under way when the grace ended: they are cut off"
            );
        }
    }
    for task in background {
        task.abort();
    }
    ops::seal_at_shutdown(&state).await;
    state.gw.close().await;
    Ok(())
}

/// The server's shared state over `gw`.
fn app_state(
    gw: Gateway,
    settings: crate::config::ServerSettings,
    notifier: Notifier,
    audit_key: Option<AuditKey>,
) -> AppState {
    let (live, _) = broadcast::channel(1024);
    let streams = Arc::new(tokio::sync::Semaphore::new(
        settings.connections.max_streams,
    ));
    Arc::new(Shared {
        gw,
        settings,
        metrics: Metrics::default(),
        notifier,
        limiter: LoginLimiter::new(LoginLimits::default()),
        audit_key,
        health: RwLock::new(BTreeMap::new()),
        chain: RwLock::new(None),
        chain_walking: std::sync::atomic::AtomicBool::new(false),
        chain_walked: tokio::sync::watch::channel(0).0,
        live,
        sign_ins: tokio::sync::Semaphore::new(2),
        lock_audited: std::sync::atomic::AtomicI64::new(0),
        stopping: tokio::sync::watch::channel(false).0,
        streams,
        starting: std::sync::Mutex::default(),
    })
}

/// The JSON API over a gateway, to call in this process: what `jarvis mcp`
/// serves on the local store when no server is configured. The same
/// routes, checks and pipeline as `jarvis serve`'s `/api/v1`; none of the
/// server's background work (notifications, host checks, audit
/// verification, expiry), which a running server does.
pub struct LocalApi {
    state: AppState,
}

impl LocalApi {
    /// The API over `gw`.
    pub fn new(gw: Gateway) -> LocalApi {
        let settings = gw.config().server.clone();
        let notifier = Notifier::start(
            Vec::new(),
            settings.public_url.clone(),
            RetryPolicy::default(),
        );
        LocalApi {
            state: app_state(gw, settings, notifier, None),
        }
    }

    /// Its routes, to call with `tower::ServiceExt::oneshot`.
    pub fn router(&self) -> Router {
        api_routes().with_state(self.state.clone())
    }

    /// Lets the runs its calls started finish, up to `grace`, then closes
    /// the store.
    pub async fn close(&self, grace: std::time::Duration) {
        self.state.gw.drain(grace).await;
        self.state.gw.close().await;
    }
}

/// The JSON API's routes, built with their OpenAPI document from one list
/// of handlers: every route it answers is described (served at
/// /api/v1/openapi.json).
fn api_routes() -> Router<AppState> {
    openapi::routes().into()
}

/// Every route.
pub(crate) fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(web::queue))
        .route("/queue/items", get(web::queue_items))
        .route("/chat", get(chat::index).post(chat::start))
        .route("/chat/{id}", get(chat::show).post(chat::reply))
        .route("/actions", get(web::actions))
        .route("/actions/{id}", get(web::action))
        .route("/actions/{id}/approve", post(web::approve))
        .route("/actions/{id}/deny", post(web::deny))
        .route(
            "/actions/{id}/rollback",
            get(web::rollback_page).post(web::rollback),
        )
        .route("/actions/{id}/run", post(web::run))
        .route("/audit", get(web::audit))
        .route("/audit/verify", post(web::verify_now))
        .route("/hosts", get(web::hosts))
        .route("/hosts/{name}/check", post(web::check_host))
        .route("/policy", get(web::policy))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/events", get(live::events))
        .route("/static/app.css", get(web::css))
        .route("/static/app.js", get(web::js));
    let api = api_routes();
    let mcp = mcp::routes(&state, api.clone().with_state(state.clone()));
    let operations = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(mcp)
        .merge(operations)
        .fallback(web::not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), observe))
        // `bound_body` has read the body and answered 413 over the limit
        // already; the extractors' own limit is only a second line.
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.connections.max_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::bound_body,
        ))
        // Outside `bound_body`: a slow upload counts against the request.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::bound_time,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), harden))
        .with_state(state)
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives each request an id (or keeps a sane one a proxy set), logs it as
/// one JSON line and counts it.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "request"
        );
    });
    state
        .metrics
        .http_request(method.as_str(), &route, status, elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    response
}

/// The content security policy: no inline script or style, nothing from
/// elsewhere, never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// Security headers on every response, including errors.
async fn harden(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    // Pages and API answers hold commands and output: never cached.
    set(header::CACHE_CONTROL, "no-store");
    if state.settings.behind_tls() {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}
