//! The policy page.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use jarvis_core::Risk;
use serde::Deserialize;

use crate::server::error::AppError;
use crate::server::judge::try_policy;
use crate::server::page::{chrome, html, page};
use crate::server::session::WebUser;
use crate::server::state::AppState;
use crate::server::views::{HostUnattended, PolicyPage, RuleView, Section};

#[derive(Deserialize)]
pub(crate) struct PolicyQuery {
    #[serde(default)]
    command: String,
    #[serde(default)]
    host: String,
}

/// `GET /policy`: the loaded policy files and a box to try a command.
pub(crate) async fn policy(
    State(state): State<AppState>,
    WebUser(caller): WebUser,
    headers: HeaderMap,
    Query(q): Query<PolicyQuery>,
) -> Result<Response, AppError> {
    let frame = chrome(&state, &caller, &headers, "Policy", Section::Policy);
    let result = if q.command.trim().is_empty() {
        None
    } else {
        Some(
            try_policy(&state, &q.command, &q.host)
                .map_err(|e| e.page(frame.clone(), Some("/policy".into())))?,
        )
    };
    let rules = state.gw.policy().rules();
    let max_risk = rules.defaults.auto_allow_max_risk;
    let body = html(&PolicyPage {
        chrome: frame,
        default_verdict: rules.defaults.decision.label().to_owned(),
        default_decision: rules.defaults.decision.to_string(),
        max_risk,
        max_risk_level: Risk::new(u32::from(max_risk))
            .map(|r| r.level().label().to_owned())
            .unwrap_or_default(),
        rules: rules.rules.iter().map(RuleView::of).collect(),
        unattended: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| {
                let k = state.gw.kernel_standing(&h.name);
                HostUnattended {
                    name: h.name.to_string(),
                    unattended: k.unattended(),
                    consequence: k.consequence().to_owned(),
                }
            })
            .collect(),
        files: state
            .gw
            .policy()
            .sources()
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        hosts: state
            .gw
            .config()
            .hosts
            .iter()
            .map(|h| h.name.to_string())
            .collect(),
        command: q.command,
        host: q.host,
        result,
    })?;
    Ok(page(&state, &headers, body))
}
