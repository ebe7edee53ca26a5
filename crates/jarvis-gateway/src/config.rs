//! `jarvis.toml`: hosts, limits, where state lives. Secrets only by
//! reference (an environment variable or a file), never inline.
//!
//! Relative paths are relative to the file's own directory, so a config
//! works from any working directory.
//!
//! The loaded configuration and its small types are here. Reading and
//! checking the file is in `parse`; the sections with settings of their
//! own are in `server`, `llm` and `audit`.

mod audit;
#[cfg(test)]
mod fixtures;
mod llm;
mod parse;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jarvis_core::{ApprovalRule, HostName, RollbackApproval};
use jarvis_exec::{GlobalLimits, HostSpec};
use serde::{Deserialize, Serialize};

pub use audit::{AuditSettings, SignerSpec, WITNESS_BRANCH, WitnessSink, WitnessSpec};
pub use llm::LlmSettings;
pub use server::{ConnectionLimits, ServerSettings};

/// A mistake in a config file, naming the file and what is wrong where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot be read: {source}", .file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("{}: {message}", .file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is wrong.
    #[error("{}: {field}: {message}", .file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The field, dotted (`hosts.nas.known_hosts`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A secret given by reference.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// The environment variable that holds it.
    #[serde(default)]
    pub env: Option<String>,
    /// The file that holds it (first line).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Why a secret given by reference could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable it names is not set (or not UTF-8).
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// The file it names cannot be read.
    #[error("{}: {source}", .file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It names both a variable and a file, or neither.
    #[error("give exactly one of `env` or `file`")]
    Ambiguous,
}

impl SecretRef {
    /// Reads the secret.
    ///
    /// # Errors
    /// A [`SecretError`] naming the variable or file that failed.
    pub fn resolve(&self) -> Result<String, SecretError> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|_| SecretError::Unset(var.clone())),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|t| t.lines().next().unwrap_or("").trim().to_owned())
                .map_err(|source| SecretError::File {
                    file: file.clone(),
                    source,
                }),
            _ => Err(SecretError::Ambiguous),
        }
    }
}

/// A webhook to notify (`[[notify]]`); its URL is a secret (ntfy topics
/// and Discord webhook URLs are credentials), resolved when the server
/// starts.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySpec {
    /// Its name, used in logs and metrics instead of the URL.
    pub name: String,
    /// The payload format.
    pub format: crate::notify::Format,
    /// Where the URL is.
    pub url: SecretRef,
    /// The events it wants; all when empty.
    pub events: Vec<crate::notify::NoticeKind>,
}

/// The runaway-loop brake: the same command for the same host proposed
/// `repeats` times within `window` is held for a person even if the policy
/// would let it run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopBrake {
    /// How many proposals (this one included) trip it.
    pub repeats: u32,
    /// The look-back.
    pub window: Duration,
}

/// What a host's owner says about the third wall (`enforcement` of a
/// host): whether an action may run on it unattended when its kernel
/// cannot confine commands to what the policy judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Unattended actions only where the kernel enforces every right the
    /// guard asks for; otherwise (including when the host cannot be asked)
    /// every action waits for a person. The default: a gap in the policy's
    /// model must not become a gap on a host nobody looked at.
    #[default]
    Required,
    /// The policy alone decides, as on a host without the kernel wall;
    /// what the kernel could not enforce is recorded with each action.
    BestEffort,
}

impl Enforcement {
    /// The word in `jarvis.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Required => "required",
            Enforcement::BestEffort => "best-effort",
        }
    }

    fn parse(word: &str) -> Option<Enforcement> {
        [Enforcement::Required, Enforcement::BestEffort]
            .into_iter()
            .find(|e| e.as_str() == word)
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    /// Where state lives, if the file says.
    pub data_dir: Option<PathBuf>,
    /// The database URL reference, if the file gives one.
    pub database: Option<SecretRef>,
    /// The audit key file, if the file gives one.
    pub audit_key: Option<PathBuf>,
    /// Policy files and directories; the shipped policy when empty.
    pub policy: Vec<PathBuf>,
    /// Limits across hosts.
    pub global: GlobalLimits,
    /// The runaway-loop brake.
    pub loop_brake: LoopBrake,
    /// How long an approval request stays open before it expires.
    pub approval_ttl: Duration,
    /// How long an approved action may wait to start (after a refusal by a
    /// limit, say) before its approval lapses.
    pub run_window: Duration,
    /// The hosts, by name.
    pub hosts: Vec<HostSpec>,
    /// Each host's `enforcement` (see [`Config::enforcement`]); the
    /// executor's [`HostSpec`] has no say in what may run, so the setting
    /// lives here, beside the pipeline that applies it.
    pub enforcement: BTreeMap<HostName, Enforcement>,
    /// The web server.
    pub server: ServerSettings,
    /// Separation of duties for approvals.
    pub approvals: ApprovalRule,
    /// How rollbacks are approved (`[approvals] rollback`): under the same
    /// rule as any action, or by one approver.
    pub rollback_approval: RollbackApproval,
    /// Webhooks for pending approvals, failures and audit breaks.
    pub notify: Vec<NotifySpec>,
    /// The planner's model, if one is configured.
    pub llm: Option<LlmSettings>,
    /// Signed heads of the audit log and the witnesses they are shipped to
    /// (`[audit]`).
    pub audit: AuditSettings,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            file: None,
            data_dir: None,
            database: None,
            audit_key: None,
            policy: Vec::new(),
            global: GlobalLimits::default(),
            loop_brake: LoopBrake {
                repeats: 5,
                window: Duration::from_secs(600),
            },
            approval_ttl: Duration::from_secs(24 * 3600),
            run_window: Duration::from_secs(3600),
            hosts: Vec::new(),
            enforcement: BTreeMap::new(),
            server: ServerSettings::default(),
            approvals: ApprovalRule::default(),
            rollback_approval: RollbackApproval::default(),
            notify: Vec::new(),
            llm: None,
            audit: AuditSettings::default(),
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, and the field where it can.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_owned(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// One host by name.
    pub fn host(&self, name: &HostName) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| &h.name == name)
    }

    /// A host's `enforcement`; [`Enforcement::Required`] for a host the
    /// file does not set it for (or does not name).
    pub fn enforcement(&self, name: &HostName) -> Enforcement {
        self.enforcement.get(name).copied().unwrap_or_default()
    }
}
