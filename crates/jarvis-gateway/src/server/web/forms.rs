//! What the deciding forms carry, and the checks before they act: the
//! CSRF token and the caller's right to decide, each refusal audited and
//! shown on a page that leads back.

use axum::http::HeaderMap;
use jarvis_core::{ActionId, ConversationId};
use serde::Deserialize;

use crate::server::error::AppError;
use crate::server::lookup::resolve;
use crate::server::page::chrome;
use crate::server::session::Caller;
use crate::server::state::Shared;
use crate::server::views::{Chrome, Section};

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    pub(super) csrf: Option<String>,
    #[serde(default)]
    pub(super) reason: Option<String>,
    #[serde(default)]
    pub(super) force: Option<String>,
    /// The page the form was on, when that is not where the decision would
    /// lead (a conversation's page).
    #[serde(default)]
    pub(super) return_to: Option<String>,
}

impl DecisionForm {
    pub(super) fn reason(&self) -> Option<&str> {
        self.reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
    }

    /// The conversation page to go back to after deciding on `action`.
    pub(super) fn conversation_page(&self, action: ActionId) -> Option<String> {
        conversation_return(self.return_to.as_deref()?, action)
    }
}

/// `/chat/ID`, rebuilt from the parsed conversation id and pointing at
/// `action`'s card, or nothing for any other text. The form field is the
/// client's to forge: taking only this one shape, and never echoing it,
/// keeps it from sending anyone off the site or elsewhere on it.
fn conversation_return(return_to: &str, action: ActionId) -> Option<String> {
    let id: ConversationId = return_to.strip_prefix("/chat/")?.parse().ok()?;
    Some(format!("/chat/{id}#action-{action}"))
}

/// Checks CSRF and role for a decision on `id`, answering in pages.
pub(super) async fn decision_allowed(
    state: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    form: &DecisionForm,
    what: &str,
    text: &str,
) -> Result<(ActionId, Chrome), AppError> {
    let frame = chrome(state, caller, headers, "Not done", Section::Queue);
    let back = Some(format!("/actions/{text}"));
    let id = resolve(state, text)
        .await
        .map_err(|e| e.page(frame.clone(), Some("/".into())))?;
    caller
        .check_csrf(state, form.csrf.as_deref(), what, Some(id))
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    caller
        .require(state, caller.principal.may_decide(), what, Some(id))
        .await
        .map_err(|e| e.page(frame.clone(), back))?;
    Ok((id, frame))
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: Option<String>,
}

/// Lets a form post through that only people who decide may make: its
/// CSRF token and the caller's role are checked (each refusal audited), a
/// refusal shown on a page that leads `back`.
pub(super) async fn deciders_form(
    state: &Shared,
    caller: &Caller,
    form: &CsrfOnly,
    what: &str,
    frame: Chrome,
    back: &str,
) -> Result<(), AppError> {
    let back = Some(back.to_owned());
    caller
        .check_csrf(state, form.csrf.as_deref(), what, None)
        .await
        .map_err(|e| e.page(frame.clone(), back.clone()))?;
    caller
        .require(state, caller.principal.may_decide(), what, None)
        .await
        .map_err(|e| e.page(frame, back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_conversation_page_is_a_place_to_return_to() {
        let action = ActionId::new();
        let chat = ConversationId::new();
        let want = Some(format!("/chat/{chat}#action-{action}"));
        assert_eq!(conversation_return(&format!("/chat/{chat}"), action), want);
        // Another spelling of the id comes back in the one the server writes.
        let simple = chat.to_string().replace('-', "");
        assert_eq!(
            conversation_return(&format!("/chat/{simple}"), action),
            want
        );
        for bad in [
            String::new(),
            "/".into(),
            "/chat".into(),
            "/chat/".into(),
            "/chat/not-an-id".into(),
            "https://evil.example".into(),
            "//evil.example".into(),
            "/\\evil.example".into(),
            format!("https://evil.example/chat/{chat}"),
            format!("//evil.example/chat/{chat}"),
            format!("/chat/{chat}/../../actions"),
            format!("/chat/{chat}?next=//evil.example"),
            format!("/chat/{chat}#elsewhere"),
            format!("/chat/{chat}\r\nLocation: //evil.example"),
            format!(" /chat/{chat}"),
            // A UUID, but not v7: not an id Jarvis makes.
            "/chat/6ba7b810-9dad-41d1-80b4-00c04fd430c8".into(),
        ] {
            assert_eq!(conversation_return(&bad, action), None, "{bad:?}");
        }
    }
}
