//! Drawing a page for a caller: the template rendered, the frame with who
//! is signed in, and the one-time message a redirect carries in a cookie.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::AppError;
use super::session::{Caller, FLASH, cookie, cookie_name, set_cookie};
use super::state::Shared;
use super::views::{Chrome, Flash, FlashKind, Section};

/// Renders a template, or says which one failed.
pub(crate) fn html(page: &impl Template) -> Result<Html<String>, AppError> {
    page.render().map(Html).map_err(|e| {
        tracing::error!(error = %e, "template failed");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be drawn: {e}"),
        )
    })
}

/// The message carried across a redirect, in a short-lived cookie (not the
/// URL, where a crafted link could put words in Jarvis's mouth).
fn flash_cookie(state: &Shared, kind: FlashKind, text: &str) -> HeaderValue {
    let tag = match kind {
        FlashKind::Info => "i",
        FlashKind::Success => "s",
        FlashKind::Error => "e",
    };
    let value = format!("{tag}.{}", URL_SAFE_NO_PAD.encode(text));
    set_cookie(state, FLASH, &value, 60)
}

fn read_flash(state: &Shared, headers: &HeaderMap) -> Option<Flash> {
    // Only the name this server sets: under TLS that is the `__Host-` one,
    // which another site cannot plant.
    let raw = cookie(headers, &cookie_name(state, FLASH))?;
    let (tag, text) = raw.split_once('.')?;
    let kind = match tag {
        "i" => FlashKind::Info,
        "s" => FlashKind::Success,
        "e" => FlashKind::Error,
        _ => return None,
    };
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    Some(Flash { kind, text })
}

pub(crate) fn redirect_with(state: &Shared, to: &str, kind: FlashKind, text: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, flash_cookie(state, kind, text));
    r
}

/// A page for a caller, with any flash message shown once.
pub(crate) fn page(state: &Shared, headers: &HeaderMap, body: Html<String>) -> Response {
    let mut r = body.into_response();
    if read_flash(state, headers).is_some() {
        r.headers_mut()
            .append(header::SET_COOKIE, set_cookie(state, FLASH, "", 0));
    }
    r
}

pub(crate) fn chrome(
    state: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    title: &str,
    section: Section,
) -> Chrome {
    let mut c = caller.chrome(state, title, section);
    c.flash = read_flash(state, headers);
    c
}
