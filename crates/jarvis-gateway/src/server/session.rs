//! Who is asking: session cookies for people, bearer tokens for agents and
//! scripts; CSRF checks. Signing in and out is in `login`.
//!
//! Cookies hold only random secrets; the store keeps their SHA-256. The
//! session cookie is HttpOnly, SameSite=Strict, and Secure (with the
//! `__Host-` prefix) when the UI is served over TLS. Every state-changing
//! form carries the session's CSRF token; API calls authenticated by a
//! cookie carry it in `X-CSRF-Token`, while bearer-token calls need none
//! (a token is never sent by a browser on its own).

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jarvis_core::Principal;
use serde_json::json;

use super::chain::keep_chain_current;
use super::error::AppError;
use super::state::{AppState, ChainStatus, Shared};
use super::views::{Chrome, Section, SignedIn};
use crate::auth;

/// Someone who has proven who they are.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    /// The session's CSRF token; `None` for bearer tokens.
    pub(crate) csrf: Option<String>,
    /// The digest of the session secret, to end it.
    pub(crate) session: Option<String>,
}

impl Caller {
    pub(crate) fn actor(&self) -> String {
        self.principal.actor()
    }

    /// The header of pages for this caller.
    pub(crate) fn chrome(&self, state: &Shared, title: &str, section: Section) -> Chrome {
        let chain = state.chain_now();
        Chrome {
            title: title.to_owned(),
            user: match &self.principal {
                Principal::User { name, role } => Some(SignedIn {
                    name: name.clone(),
                    role: *role,
                }),
                Principal::Token { .. } | Principal::Local { .. } => None,
            },
            csrf: self.csrf.clone().unwrap_or_default(),
            section,
            flash: None,
            chain_intact: chain.as_ref().and_then(ChainStatus::intact),
            chain_problem: chain.as_ref().and_then(ChainStatus::problem),
            // Said to the people who decide: they are the ones nobody tells.
            unnotified: self.principal.may_decide()
                && !state
                    .notifier
                    .reaches(crate::notify::NoticeKind::ApprovalNeeded),
        }
    }

    /// Refuses (and audits) a state-changing request of a session whose
    /// CSRF token is missing or wrong. Bearer-token callers pass.
    pub(crate) async fn check_csrf(
        &self,
        state: &Shared,
        given: Option<&str>,
        what: &str,
        action: Option<jarvis_core::ActionId>,
    ) -> Result<(), AppError> {
        let Some(expected) = &self.csrf else {
            return Ok(());
        };
        match given {
            Some(g) if auth::csrf_matches(expected, g) => Ok(()),
            _ => {
                state
                    .audit_refusal(
                        &self.actor(),
                        action,
                        "csrf",
                        json!({ "what": what, "token": if given.is_some() { "wrong" } else { "missing" } }),
                    )
                    .await;
                Err(AppError::new(
                    StatusCode::FORBIDDEN,
                    "This form's security token is missing or out of date, so nothing was done. Reload the page and try again.",
                ))
            }
        }
    }

    /// Refuses (and audits) a caller whose role or token scope does not
    /// allow `what`.
    pub(crate) async fn require(
        &self,
        state: &Shared,
        allowed: bool,
        what: &str,
        action: Option<jarvis_core::ActionId>,
    ) -> Result<(), AppError> {
        if allowed {
            return Ok(());
        }
        let (reason, message) = match &self.principal {
            Principal::Token { name, scope } => (
                "token",
                format!(
                    "API token `{name}` (scope {scope}) may not {what}: tokens can read and propose, never decide"
                ),
            ),
            Principal::User { name, role } => {
                ("role", format!("{name} is a {role} and may not {what}"))
            }
            Principal::Local { account } => ("role", format!("{account} may not {what}")),
        };
        state
            .audit_refusal(&self.actor(), action, reason, json!({ "what": what }))
            .await;
        Err(AppError::new(StatusCode::FORBIDDEN, message))
    }
}

pub(crate) fn cookie_name(state: &Shared, base: &str) -> String {
    if state.settings.behind_tls() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the attributes every Jarvis cookie has.
pub(crate) fn set_cookie(state: &Shared, base: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.settings.behind_tls() {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        cookie_name(state, base)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

pub(super) const SESSION: &str = "jarvis_session";

pub(super) const LOGIN: &str = "jarvis_login";

pub(crate) const FLASH: &str = "jarvis_flash";

/// Finds out who is asking, if anyone.
pub(crate) async fn identify(
    state: &Shared,
    headers: &HeaderMap,
) -> Result<Option<Caller>, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok().and_then(auth::bearer).ok_or_else(|| {
            AppError::new(
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer jrv_…` with an API token from `jarvis tokens add`",
            )
        })?;
        let record = state
            .gw
            .store()
            .token_by_hash(&auth::digest(token))
            .await
            .map_err(AppError::from_store)?;
        return match record {
            Some(t) => Ok(Some(Caller {
                principal: Principal::Token {
                    name: t.name,
                    scope: t.scope,
                },
                csrf: None,
                session: None,
            })),
            None => {
                state.metrics.refused("bad_token");
                Err(AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "this API token is unknown or revoked",
                ))
            }
        };
    }
    let Some(secret) = cookie(headers, &cookie_name(state, SESSION)) else {
        return Ok(None);
    };
    let id_hash = auth::digest(secret);
    let session = state
        .gw
        .store()
        .session(&id_hash)
        .await
        .map_err(AppError::from_store)?;
    Ok(session.map(|s| Caller {
        principal: Principal::User {
            name: s.user.name,
            role: s.user.role,
        },
        csrf: Some(s.csrf),
        session: Some(id_hash),
    }))
}

/// A signed-in person or token for a page: anyone else is sent to sign in.
pub(crate) struct WebUser(pub(crate) Caller);

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match identify(state, &parts.headers).await {
            Ok(Some(c)) => {
                // Every page shows a broken chain: make what it shows current.
                keep_chain_current(state).await;
                Ok(WebUser(c))
            }
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let to = format!("/login?next={}", encode(next));
                Err(Redirect::to(&to).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A signed-in person posting one of the web UI's forms. API tokens are
/// refused (and the refusal audited): they belong to agents and scripts,
/// which have the JSON API, and a form route is where a person's session
/// acts; a token there would act under rules written for people (a chat
/// it started would be proposed for whoever holds the page).
pub(crate) struct FormUser(pub(crate) Caller);

impl FromRequestParts<AppState> for FormUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let WebUser(caller) = WebUser::from_request_parts(parts, state).await?;
        let Principal::Token { name, .. } = &caller.principal else {
            return Ok(FormUser(caller));
        };
        let route = parts.uri.path().to_owned();
        state
            .audit_refusal(
                &caller.actor(),
                None,
                "token_form",
                json!({ "what": "post a web form", "route": route }),
            )
            .await;
        Err(AppError::new(
            StatusCode::FORBIDDEN,
            format!(
                "API token `{name}` may not post the web UI's forms ({route}); tokens use the JSON API under /api/v1"
            ),
        )
        .into_response())
    }
}

/// A signed-in person or token for the API: anyone else gets 401.
pub(crate) struct ApiUser(pub(crate) Caller);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match identify(state, &parts.headers).await {
            Ok(Some(c)) => Ok(ApiUser(c)),
            Ok(None) => Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "sign in, or send `Authorization: Bearer jrv_…` with an API token",
            )
            .json()
            .into_response()),
            Err(e) => Err(e.json().into_response()),
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The client's address: the socket's, or the last `X-Forwarded-For` hop
/// (the one the trusted proxy appended; earlier ones are the client's to
/// forge) when the config says a proxy sets it.
pub(crate) fn client_addr(state: &Shared, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.settings.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; jarvis_session_x=2; jarvis_session=3"),
        );
        assert_eq!(cookie(&h, "jarvis_session"), Some("3"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn encode_escapes_query_characters() {
        assert_eq!(encode("/a?b=c&d"), "/a%3Fb%3Dc%26d");
    }
}
