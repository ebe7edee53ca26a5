//! The frame every page shares: who is signed in, the navigation, the
//! one-time message a redirect carries, and the audit chain's banner.

use jarvis_core::Role;

/// The page frame: header, navigation, flash message.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page title (before " · Jarvis").
    pub title: String,
    /// Who is signed in; `None` on the login page.
    pub user: Option<SignedIn>,
    /// The CSRF token for the logout form and every form on the page.
    pub csrf: String,
    /// Which navigation entry is current.
    pub section: Section,
    /// A one-off message (after a redirect).
    pub flash: Option<Flash>,
    /// Whether the audit chain verified intact; `None` = not verified yet.
    pub chain_intact: Option<bool>,
    /// What is wrong with the audit chain, in words, when it is broken or
    /// could not be verified: every page shows it in a banner.
    pub chain_problem: Option<String>,
    /// Nobody is told when an action waits (no webhook wants
    /// `approval_needed`); set for people who decide, and shown on the queue.
    pub unnotified: bool,
}

impl Chrome {
    /// The class of the chain-status dot: `ok`, `broken` or `unknown`.
    pub fn chain_class(&self) -> &'static str {
        match self.chain_intact {
            Some(true) => "ok",
            Some(false) => "broken",
            None => "unknown",
        }
    }

    /// The words behind the chain-status dot.
    pub fn chain_label(&self) -> &'static str {
        match self.chain_intact {
            Some(true) => "Audit chain intact",
            Some(false) => "Audit chain BROKEN",
            None => "Audit chain not verified yet",
        }
    }

    /// The heading of the banner a chain in trouble puts on every page.
    pub fn chain_banner_title(&self) -> &'static str {
        match self.chain_intact {
            Some(false) => "The audit log fails verification",
            _ => "The audit log could not be verified",
        }
    }

    /// What the trouble means, under the banner's heading.
    pub fn chain_banner_meaning(&self) -> &'static str {
        match self.chain_intact {
            Some(false) => {
                "Events were changed, removed or added behind Jarvis's back, or an older copy of the database was restored: from that event on, the record of who approved what may not be true."
            }
            _ => {
                "Until it verifies, nobody can tell whether the record of who approved what is true."
            }
        }
    }
}

/// The person signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Their user name.
    pub name: String,
    /// Their role.
    pub role: Role,
}

/// The navigation entries (and the login page, which has none).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Section {
    /// The approval queue (`/`).
    Queue,
    /// Conversations with the planner (`/chat`).
    Chat,
    /// The list of actions.
    Actions,
    /// The audit log.
    Audit,
    /// The hosts.
    Hosts,
    /// The policy and its try-out form.
    Policy,
    /// The sign-in page.
    Login,
}

impl Section {
    /// The section's name, used as a CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Queue => "queue",
            Section::Chat => "chat",
            Section::Actions => "actions",
            Section::Audit => "audit",
            Section::Hosts => "hosts",
            Section::Policy => "policy",
            Section::Login => "login",
        }
    }
}

/// A one-off message shown at the top of a page.
#[derive(Debug, Clone)]
pub struct Flash {
    /// Its colour.
    pub kind: FlashKind,
    /// Its text.
    pub text: String,
}

/// What kind of message a [`Flash`] is.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum FlashKind {
    /// Neutral news.
    Info,
    /// Something worked.
    Success,
    /// Something failed.
    Error,
}

impl FlashKind {
    /// The CSS class (`info`, `success`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            FlashKind::Info => "info",
            FlashKind::Success => "success",
            FlashKind::Error => "error",
        }
    }

    /// The ARIA role: errors interrupt, the rest are polite.
    pub fn aria_role(self) -> &'static str {
        match self {
            FlashKind::Error => "alert",
            FlashKind::Info | FlashKind::Success => "status",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::views::fixtures::*;
    use crate::server::views::*;

    #[test]
    fn signed_out_chrome_and_chain_dot() {
        let mut c = chrome(Section::Queue);
        c.chain_intact = Some(false);
        assert_eq!(c.chain_class(), "broken");
        c.chain_intact = None;
        assert_eq!(c.chain_class(), "unknown");
        let html = render(&ErrorPage {
            chrome: Chrome { user: None, ..c },
            status: 500,
            heading: "x".into(),
            message: "y".into(),
            back: None,
        });
        assert!(!html.contains("/logout"));
        assert!(!html.contains("chain-dot"));
    }
}
