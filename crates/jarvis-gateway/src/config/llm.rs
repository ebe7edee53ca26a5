//! The planner's model (`[llm]`): an OpenAI-compatible endpoint, its key
//! by reference, and how long and how far a conversation may go.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, SecretRef};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLlm {
    base_url: String,
    model: String,
    api_key: Option<SecretRef>,
    timeout_secs: Option<u64>,
    retries: Option<u32>,
    max_steps: Option<u32>,
    token_budget: Option<u64>,
}

/// The model behind the planner (`[llm]`): any OpenAI-compatible endpoint.
/// Without it, chat works in direct mode (a message that is a command is
/// proposed as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// The endpoint's base URL, ending in `/v1` for most servers.
    pub base_url: String,
    /// The model's name at that endpoint.
    pub model: String,
    /// Where the API key is; local servers (Ollama, llama.cpp) need none.
    pub api_key: Option<SecretRef>,
    /// How long the answer may take to begin, and the longest pause
    /// within it once it streams.
    pub timeout: Duration,
    /// Attempts after the first for a rate limit, a server error, a
    /// timeout or a dropped connection.
    pub retries: u32,
    /// Model turns per conversation.
    pub max_steps: u32,
    /// Tokens per conversation, prompt and answers together.
    pub token_budget: u64,
}

/// The most retries `[llm] retries` may ask for.
const MAX_LLM_RETRIES: u32 = 20;

pub(super) fn llm_settings(
    raw: RawLlm,
    abs: &dyn Fn(PathBuf) -> PathBuf,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<LlmSettings, ConfigError> {
    let url = raw.base_url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            "llm.base_url".into(),
            format!("`{url}` must be an http(s) URL such as http://127.0.0.1:11434/v1"),
        ));
    }
    if raw.model.trim().is_empty() {
        return Err(invalid("llm.model".into(), "must name the model".into()));
    }
    let api_key = match raw.api_key {
        Some(k) if k.env.is_some() == k.file.is_some() => {
            return Err(invalid(
                "llm.api_key".into(),
                "give exactly one of `env` or `file`: the key is a secret".into(),
            ));
        }
        Some(k) => Some(SecretRef {
            env: k.env,
            file: k.file.map(abs),
        }),
        None => None,
    };
    let positive = |field: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(invalid(format!("llm.{field}"), "must be at least 1".into())),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(LlmSettings {
        base_url: url,
        model: raw.model,
        api_key,
        timeout: Duration::from_secs(positive("timeout_secs", raw.timeout_secs, 120)?),
        retries: match raw.retries {
            // Every retry may wait up to a minute; more than this is a hung
            // conversation, not resilience.
            Some(n) if n > MAX_LLM_RETRIES => {
                return Err(invalid(
                    "llm.retries".into(),
                    format!("{n} is too many; at most {MAX_LLM_RETRIES}"),
                ));
            }
            Some(n) => n,
            None => jarvis_planner::client::DEFAULT_RETRIES,
        },
        max_steps: u32::try_from(positive("max_steps", raw.max_steps.map(u64::from), 12)?)
            .unwrap_or(u32::MAX),
        token_budget: positive("token_budget", raw.token_budget, 60_000)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::parse;

    #[test]
    fn a_model_endpoint() {
        let c = parse("[llm]\nbase_url = \"http://127.0.0.1:11434/v1/\"\nmodel = \"qwen2.5:7b\"\n")
            .expect("valid");
        let l = c.llm.expect("llm");
        assert_eq!(l.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(l.api_key, None);
        assert_eq!(l.max_steps, 12);
        assert_eq!(l.retries, jarvis_planner::client::DEFAULT_RETRIES);
        let c = parse("[llm]\nbase_url = \"http://h/v1\"\nmodel = \"m\"\nretries = 0\n")
            .expect("valid");
        assert_eq!(c.llm.map(|l| l.retries), Some(0));
        let c = parse(
            "[llm]\nbase_url = \"https://api.openai.com/v1\"\nmodel = \"gpt-4o-mini\"\napi_key = { file = \"keys/openai\" }\n",
        )
        .expect("valid");
        assert_eq!(
            c.llm.and_then(|l| l.api_key).and_then(|k| k.file),
            Some(PathBuf::from("/etc/jarvis/keys/openai"))
        );
    }
}
