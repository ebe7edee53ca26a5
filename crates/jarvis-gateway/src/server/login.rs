//! Signing in and out: the sign-in page, the password check behind the
//! login limiter, and the session it starts or ends.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jarvis_store::NewSession;
use serde::Deserialize;
use serde_json::json;

use super::error::AppError;
use super::page::html;
use super::session::{
    FormUser, LOGIN, SESSION, client_addr, cookie, cookie_name, identify, set_cookie,
};
use super::state::{AppState, Shared};
use super::views::{Chrome, LoginPage, Section};
use crate::auth;

/// Where to go after signing in: only a path on this site, so a crafted
/// link cannot bounce a person elsewhere.
fn safe_next(next: &str) -> &str {
    if super::views::is_local_path(next) {
        next
    } else {
        "/"
    }
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

fn login_chrome(csrf: String) -> Chrome {
    Chrome {
        title: "Sign in".into(),
        user: None,
        csrf,
        section: Section::Login,
        flash: None,
        chain_intact: None,
        chain_problem: None,
        unnotified: false,
    }
}

async fn render_login(
    state: &Shared,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<String>,
) -> Result<Response, AppError> {
    let csrf = auth::csrf_token();
    let no_users = state
        .gw
        .store()
        .user_count()
        .await
        .map_err(AppError::from_store)?
        == 0;
    let page = LoginPage {
        chrome: login_chrome(csrf.clone()),
        error,
        no_users,
        next: safe_next(next).to_owned(),
        username: username.to_owned(),
    };
    let mut response = (status, html(&page)?).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(state, LOGIN, &csrf, 3600));
    Ok(response)
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = q.next.unwrap_or_else(|| "/".into());
    if let Ok(Some(_)) = identify(&state, &headers).await {
        return Ok(Redirect::to(safe_next(&next)).into_response());
    }
    render_login(&state, StatusCode::OK, &next, "", None).await
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let addr = client_addr(&state, &headers, peer);
    // What the audit log keeps of a name typed by anyone: bounded.
    let user = jarvis_core::text::truncate_chars(form.username.trim(), 64).to_owned();
    let store = state.gw.store();
    let audit = |kind: &'static str| jarvis_store::NewEvent {
        actor: "anonymous".into(),
        action_id: None,
        host: None,
        kind: kind.into(),
        payload: json!({ "user": user, "remote": addr.to_string() }),
    };
    // At most two password checks at once: argon2 is meant to be slow, and
    // a burst of guesses must neither stall the server nor all pass the
    // limiter before the first failure is counted.
    let _permit =
        state.sign_ins.acquire().await.map_err(|_| {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping")
        })?;
    if let Err(locked) = state.limiter.check(&user, addr, Instant::now()) {
        state.metrics.login("locked");
        // A locked-out guesser must not be able to fill the audit log: one
        // event a minute says the lock is being hit, the metric counts all.
        if state.lock_audit_due() {
            store
                .append(audit("auth.login_locked"))
                .await
                .map_err(AppError::from_store)?;
        }
        let wait = locked.retry_after;
        let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        let when = if seconds < 120 {
            format!("{seconds} second(s)")
        } else {
            format!("{} minute(s)", seconds.div_ceil(60))
        };
        return render_login(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &form.next,
            &user,
            Some(format!("Too many failed sign-ins. Try again in {when}.")),
        )
        .await;
    }
    let csrf_ok = cookie(&headers, &cookie_name(&state, LOGIN))
        .is_some_and(|c| auth::csrf_matches(c, &form.csrf));
    if !csrf_ok {
        // No password was tried, so nothing is counted against the name: a
        // stranger without the form's token could otherwise slow anyone's
        // sign-in at will.
        state.metrics.refused("csrf");
        store
            .append(audit("auth.csrf_refused"))
            .await
            .map_err(AppError::from_store)?;
        return render_login(
            &state,
            StatusCode::FORBIDDEN,
            &form.next,
            &user,
            Some("The sign-in form expired or did not come from this site. Try again.".into()),
        )
        .await;
    }
    let record = store.user(&user).await.map_err(AppError::from_store)?;
    let hash = record.as_ref().map(|u| u.password_hash.clone());
    let password = form.password.clone();
    let verified = tokio::task::spawn_blocking(move || match hash {
        Some(h) => auth::verify_password(&h, &password),
        None => {
            auth::burn_verify(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(record) = record.filter(|_| verified) else {
        state.limiter.failed(&user, addr, Instant::now());
        state.metrics.login("failed");
        store
            .append(audit("auth.login_failed"))
            .await
            .map_err(AppError::from_store)?;
        return render_login(
            &state,
            StatusCode::UNAUTHORIZED,
            &form.next,
            &user,
            Some("Wrong user name or password.".into()),
        )
        .await;
    };
    state.limiter.succeeded(&user, addr);
    let secret = auth::new_secret();
    let ttl = state.settings.session_ttl;
    store
        .create_session(&NewSession {
            id_hash: auth::digest(&secret),
            user: record.name.clone(),
            csrf: auth::csrf_token(),
            expires_at: jarvis_store::timestamp(time::OffsetDateTime::now_utc() + ttl),
            remote: Some(addr.to_string()),
        })
        .await
        .map_err(AppError::from_store)?;
    state.metrics.login("ok");
    let mut response = Redirect::to(safe_next(&form.next)).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION, &secret, ttl.as_secs()),
    );
    h.append(header::SET_COOKIE, set_cookie(&state, LOGIN, "", 0));
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    FormUser(caller): FormUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    caller
        .check_csrf(&state, form.csrf.as_deref(), "sign out", None)
        .await?;
    if let Some(id_hash) = &caller.session {
        state
            .gw
            .store()
            .end_session(id_hash, &caller.actor())
            .await
            .map_err(AppError::from_store)?;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, SESSION, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/actions/1"), "/actions/1");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("/\t/evil.example"), "/");
    }
}
