//! The tools' arguments, as the model sees them: each field's doc comment
//! is its description in the tool's JSON Schema, so it is written for a
//! model choosing what to send.

use schemars::JsonSchema;
use serde::Deserialize;

/// `check_command`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckCommand {
    /// The command line to judge, as bash would read it (pipes, `&&`,
    /// redirections and all).
    pub command: String,
    /// The host it would run on, as `list_hosts` names it; its tags can
    /// change the judgement. Leave it out to judge with no host.
    #[serde(default)]
    pub host: Option<String>,
}

/// `run_command`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    /// The host to run on, as `list_hosts` names it.
    pub host: String,
    /// The command line, run by bash on the host. Prefer one plain command
    /// to a script: it is judged as written, and what the policy cannot
    /// read is refused or sent to a person.
    pub command: String,
    /// The working directory on the host (default: the home directory of
    /// the host's restricted user).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Seconds before the whole process tree is killed (default: the
    /// host's timeout; the host's limit caps it).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Why it is needed, in one sentence. A person reads it when the
    /// command needs approval; a clear reason gets a faster answer.
    #[serde(default)]
    pub reason: Option<String>,
    /// What it will read or change, in one sentence, for the same person.
    #[serde(default)]
    pub expected_effect: Option<String>,
}

/// `get_action`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetAction {
    /// The action's id, as `run_command` or `propose_edit` returned it.
    pub id: String,
}

/// `propose_edit`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeEdit {
    /// The host the file is on, as `list_hosts` names it.
    pub host: String,
    /// The file's absolute path on the host.
    pub path: String,
    /// The file's whole new content (it is created if it does not exist).
    /// Give this or `diff`, not both.
    #[serde(default)]
    pub content: Option<String>,
    /// A unified diff against the file as it is now; it must apply
    /// exactly. Give this or `content`, not both.
    #[serde(default)]
    pub diff: Option<String>,
    /// Why the change is needed, in one sentence, for the person who
    /// approves it.
    #[serde(default)]
    pub reason: Option<String>,
    /// What the change will do, in one sentence, for the same person.
    #[serde(default)]
    pub expected_effect: Option<String>,
}
