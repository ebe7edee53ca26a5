//! What the policy says of a command, asked the way the pipeline asks it:
//! the policy page's box and the API's policy check share it.

use axum::http::StatusCode;
use jarvis_policy::Request;

use super::error::AppError;
use super::state::Shared;
use super::views::PolicyTry;

/// Judges a command as the pipeline would, for the policy page and API.
pub(crate) fn try_policy(state: &Shared, command: &str, host: &str) -> Result<PolicyTry, AppError> {
    let host_name =
        match host.trim() {
            "" => None,
            h => Some(jarvis_core::HostName::parse(h).map_err(|e| {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("host: {e}"))
            })?),
        };
    let j = state.gw.policy().judge(&Request {
        command: command.to_owned(),
        host: host_name,
        cwd: None,
    });
    Ok(PolicyTry {
        command: command.to_owned(),
        host: host.to_owned(),
        decision: j.decision.to_string(),
        verdict: j.decision.label().to_owned(),
        risk_score: u32::from(j.risk.score()),
        risk_level: j.risk.level().to_string(),
        reasons: j.reasons,
        rules: j.rules,
        parse_error: j.parse_error,
    })
}
