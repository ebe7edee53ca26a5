//! The sign-in page.

use askama::Template;

use super::filters;
use super::layout::{Chrome, Section};

/// `GET /login`: the sign-in form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The frame (no user).
    pub chrome: Chrome,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// No user exists yet: explain how to create the first one.
    pub no_users: bool,
    /// Where to go after signing in (a local path).
    pub next: String,
    /// The user name typed last time.
    pub username: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;

    #[test]
    fn login_page() {
        let mut c = chrome(Section::Login);
        c.user = None;
        c.title = "Sign in".into();
        let html = render(&LoginPage {
            chrome: c.clone(),
            error: Some("Wrong user name or password".into()),
            no_users: true,
            next: "/actions/x".into(),
            username: "bob\"><b>".into(),
        });
        for s in [
            "<form id=\"login\"",
            "id=\"username\"",
            "id=\"password\"",
            "id=\"login-submit\"",
            "id=\"login-error\"",
            "name=\"next\"",
            "No users exist yet. On the gateway, run: <code>jarvis users add NAME --role admin</code> — it prints the password once.",
        ] {
            assert!(html.contains(s), "missing {s}");
        }
        assert!(!html.contains("bob\"><b>"));
        assert!(
            !html.contains("class=\"nav\""),
            "no navigation before sign-in"
        );
        assert_csrf(&html, "CSRF-TOKEN-123");
        let plain = render(&LoginPage {
            chrome: c,
            error: None,
            no_users: false,
            next: String::new(),
            username: String::new(),
        });
        assert!(!plain.contains("login-error") && !plain.contains("No users exist"));
    }
}
