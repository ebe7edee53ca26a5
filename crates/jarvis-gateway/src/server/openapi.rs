//! The OpenAPI document of the JSON API, served at
//! `GET /api/v1/openapi.json`.
//!
//! The `/api/v1` router and the document are made together from one list
//! of handlers ([`routes`]), each carrying its own description
//! (`#[utoipa::path]` in `api/`): a route cannot be served without being
//! described, nor described without being served. The bodies' schemas
//! come from the types the handlers send and take.

use std::sync::LazyLock;

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::bodies::{LiveAction, LiveOutput};
use super::api::{actions, decisions, records};
use super::state::AppState;

/// What the document says before any operation.
const INTRO: &str = "\
Jarvis is a guarded execution gateway between AI agents and servers. An agent \
proposes an action (a shell command line, or a file edit) for a named host; \
the policy judges it at once (allow, approve or deny, with a risk score from 0 \
to 100 and reasons); what it allows runs over restricted SSH, what needs a \
person waits in the approval queue, and what it denies never runs. Every step \
is written to a hash-chained audit log, and an action that changed something \
can be rolled back from the snapshot taken before it ran.

An action moves through these states: `proposed`, then `denied` (never runs), \
`pending_approval` (waits for people; then `approved`, `rejected` or \
`expired`) or `approved` (runs unattended); an approved action becomes \
`running` and then `succeeded`, `failed`, `timed_out` or `interrupted` (the \
gateway stopped while it ran); one that changed something may later be \
`rolled_back` by a rollback action that names it.

Agents and scripts authenticate with an API token (`Authorization: Bearer \
jrv_…`, from `jarvis tokens add`): a `read` token reads, a `propose` token \
reads and proposes, and no token approves, denies, runs or rolls back. Those \
decisions are a person's, through a signed-in session (the web UI's cookie, \
with the session's CSRF token in `X-CSRF-Token`). Every refusal and failure \
answers with a JSON body `{\"error\": \"…\"}` that says what went wrong and, \
where there is one, what to do.

Besides the answers each operation lists, any request may be answered `413` \
(its body is over `server.max_body_kib`), `503` with `Retry-After` (the \
server is serving as many connections as it may, or the request took longer \
than `server.request_timeout_secs`, in which case it may have taken effect: \
look before sending it again) or `500`, each with the error body.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Jarvis API", description = INTRO),
    modifiers(&Credentials),
    components(schemas(LiveAction, LiveOutput)),
    tags(
        (name = "actions", description = "Proposing actions and reading them."),
        (name = "decisions", description = "A person's decisions: approve, deny, run, roll back. No token may make them."),
        (name = "audit", description = "The hash-chained audit log and its verification."),
        (name = "hosts", description = "The configured hosts and their standing."),
        (name = "policy", description = "What the policy says of a command, without proposing it."),
        (name = "live", description = "Server-sent events as actions change and run."),
        (name = "document", description = "This description of the API."),
    ),
)]
struct ApiDoc;

/// The two ways to authenticate, named by the operations' requirements:
/// `bearer` lists the token scope an operation needs, `session` the role.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("jrv_…")
                    .description(Some(
                        "An API token from `jarvis tokens add NAME --scope read|propose`. A `read` token reads; a `propose` token reads and proposes. No token decides.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "jarvis_session",
                "A person's session from signing in to the web UI (named `__Host-jarvis_session` when the UI is served over https). Roles: a `viewer` reads; an `approver` also proposes and decides. Requests that change something also send the session's CSRF token in `X-CSRF-Token`.",
            ))),
        );
    }
}

/// The `/api/v1` routes, each with its description, and the document they
/// make. Give each `routes!` the handlers of one path only: it serves
/// every method it is given on every path it is given.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(actions::list, actions::propose))
        .routes(routes!(actions::show))
        .routes(routes!(decisions::approve))
        .routes(routes!(decisions::deny))
        .routes(routes!(decisions::rollback))
        .routes(routes!(decisions::run))
        .routes(routes!(records::audit))
        .routes(routes!(records::verify))
        .routes(routes!(records::hosts))
        .routes(routes!(records::policy_check))
        .routes(routes!(records::whoami))
        .routes(routes!(records::events))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the JSON API, as `GET /api/v1/openapi.json`
/// serves it.
pub fn document() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// Read this document
///
/// The OpenAPI 3.1 description of this API, generated from the handlers
/// and the types they send and take.
///
/// It needs no token: it is the same for every deployment (it names no
/// host, setting or person, and holds no secret), and a client reads it to
/// learn how to authenticate before it has a token.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "document",
    responses((status = 200, description = "The document.", body = serde_json::Value)),
)]
pub(super) async fn openapi_json() -> Response {
    // Made once: it depends on nothing but the code.
    static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(document);
    Json(&*DOCUMENT).into_response()
}
