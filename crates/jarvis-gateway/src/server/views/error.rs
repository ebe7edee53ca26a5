//! The page a refused or failed request shows.

use askama::Template;

use super::filters;
use super::layout::{Chrome, Section};

/// An error page (404, 403, 500…).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The frame.
    pub chrome: Chrome,
    /// The HTTP status.
    pub status: u16,
    /// A short heading.
    pub heading: String,
    /// What went wrong and what to do.
    pub message: String,
    /// A link to go back to.
    pub back: Option<String>,
}

impl ErrorPage {
    /// The back link if it is a path on this site (`/…` but not `//…`),
    /// so an error page never links elsewhere.
    pub fn back_href(&self) -> Option<&str> {
        self.back.as_deref().filter(|b| is_local_path(b))
    }
}

/// Whether `s` is a path on this site: starts with one `/`, no backslash,
/// no control characters.
pub fn is_local_path(s: &str) -> bool {
    s.starts_with('/')
        && !s.starts_with("//")
        && !s.contains('\\')
        && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;

    #[test]
    fn error_page() {
        let mut page = ErrorPage {
            chrome: chrome(Section::Queue),
            status: 409,
            heading: "Already decided".into(),
            message: "This action can no longer be approved: it was approved already. Nothing was done. It was approved by alice 2 min ago.".into(),
            back: Some("/actions".into()),
        };
        let html = render(&page);
        for s in [
            "<section class=\"card error-card\" data-status=\"409\">",
            "<h1>Already decided</h1>",
            "It was approved by alice 2 min ago.",
            "href=\"/actions\"",
            "Code 409, for whoever runs this Jarvis.",
        ] {
            assert!(html.contains(s), "missing {s}\n{html}");
        }
        assert!(!html.contains(">409<"), "the number is no headline: {html}");
        assert!(!html.contains("Conflict"));
        page.back = Some("https://evil.example/".into());
        let html = render(&page);
        assert!(!html.contains("evil.example"));
    }
}
