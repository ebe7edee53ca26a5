//! What the API takes and answers, one type per body. Each is the wire
//! shape itself (serialised as it stands) and its own OpenAPI schema, so
//! the document cannot describe a field the server does not send.
//!
//! The records the store keeps (`ActionRecord`, `AuditEvent`, …) are sent
//! as they are and describe themselves; what comes from crates that know
//! nothing of the API (the policy's judgement, a host's rollback report)
//! is copied into a type of its own here, field by field, so a new field
//! there fails to compile here rather than reaching the wire undocumented.

use std::collections::BTreeMap;

use jarvis_core::{ActionId, Decision, FileEdit, Risk};
use jarvis_exec::snapshot::{RestoreReport, RestoredTarget, Snapshot, TargetOutcome};
use jarvis_policy::Judgement;
use jarvis_store::{
    ActionRecord, ApprovalRecord, AuditEvent, CapturedOutput, RunRecord, SnapshotRecord,
    VerifyReport,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A proposal: a command line (or a file edit) for a host, and what the
/// agent says it is for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeBody {
    /// The host, by its name in the configuration (`nas`, `web-1`).
    pub(super) host: String,
    /// The shell command line to run (bash syntax). Give this or `edit`.
    #[serde(default)]
    pub(super) command: Option<String>,
    /// The directory the command runs in on the host; the guard's default
    /// when left out.
    #[serde(default)]
    pub(super) cwd: Option<String>,
    /// How long it may run, in seconds; the host's default when left out,
    /// and never more than the host's `max timeout`.
    #[serde(default)]
    pub(super) timeout_secs: Option<u64>,
    /// A file edit instead of a command: the file's new content or a
    /// unified diff that must apply exactly.
    #[serde(default)]
    pub(super) edit: Option<FileEdit>,
    /// Why the agent asks, shown to the approver (at most 1024 bytes). It
    /// is the agent's word: the policy judges the command, not this.
    #[serde(default)]
    pub(super) reason: String,
    /// What the agent expects it to do, shown to the approver (at most
    /// 1024 bytes).
    #[serde(default)]
    pub(super) expected_effect: String,
}

/// What the policy said of a command line, in the shape of
/// `jarvis policy check --json`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Verdict {
    /// The command line judged.
    command: String,
    /// `allow` runs without a person (within the unattended risk limit),
    /// `approve` waits for one, `deny` never runs.
    decision: Decision,
    /// How dangerous it is.
    risk: Risk,
    /// Why, as sentences for a person. The first says what decided the
    /// verdict; then other refusals, then the findings that set the risk,
    /// riskiest first; commands are quoted as Markdown code spans.
    reasons: Vec<String>,
    /// The ids of the policy rules that matched.
    rules: Vec<String>,
    /// Whether the line could not be read as bash (and so was denied).
    parse_error: bool,
}

impl From<Judgement> for Verdict {
    fn from(j: Judgement) -> Verdict {
        // Every field named: one added to the judgement must be placed
        // here (sent, or left out on purpose) before this compiles.
        let Judgement {
            command,
            decision,
            risk,
            reasons,
            rules,
            parse_error,
            steps: _,
            previews: _,
        } = j;
        Verdict {
            command,
            decision,
            risk,
            reasons,
            rules,
            parse_error,
        }
    }
}

/// The answer to a proposal: the action as recorded, what the policy said
/// and what a snapshot will capture.
#[derive(Serialize, ToSchema)]
pub(crate) struct Proposed {
    /// The action: `approved` (it runs now, in the background),
    /// `pending_approval` (it waits for a person) or `denied`.
    pub(super) action: ActionRecord,
    /// What the policy said.
    pub(super) judgement: Verdict,
    /// What a snapshot will capture before it runs, in a line
    /// (`snapshot: git repository at /srv/app`, `no snapshot: the command
    /// only reads`).
    pub(super) snapshot: String,
    /// When a waiting action expires unless someone decides (Unix
    /// seconds); `null` unless it waits for approval.
    pub(super) expires_at: Option<i64>,
    /// The action's page in the web UI, when `server.public_url` is set.
    pub(super) link: Option<String>,
    /// Only on a `429`: the host limit that refused the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refused: Option<LimitRefusal>,
}

/// Which host limit refused an action as it was proposed.
#[derive(Serialize, ToSchema)]
pub(crate) struct LimitRefusal {
    /// The limit: `rate-limited`, `circuit-open`, `host-busy`,
    /// `too-large`, `timeout-too-long`, `unknown-host`, `transport` or
    /// `guard-refused`.
    pub(super) code: &'static str,
    /// The refusal in words.
    pub(super) reason: String,
    /// Whole seconds to wait before proposing again (also in
    /// `Retry-After`).
    pub(super) retry_after_secs: u64,
}

/// The answer to a proposal sent again with the `Idempotency-Key` of one
/// already made: that action as it stands now.
#[derive(Serialize, ToSchema)]
pub(crate) struct Replayed {
    /// As in a proposal's answer.
    pub(super) expires_at: Option<i64>,
    /// The action the first proposal made, as it stands now.
    pub(super) action: ActionRecord,
    /// Always `true`: nothing new was proposed.
    pub(super) replayed: bool,
    /// As in a proposal's answer.
    pub(super) link: Option<String>,
}

/// The `GET /api/v1/actions` query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only actions in this state (`pending_approval`, `succeeded`, …).
    #[serde(default)]
    #[param(value_type = Option<jarvis_core::ActionState>)]
    pub(super) state: Option<String>,
    /// How many, from 1 to 1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<i64>,
    /// Only actions proposed before this one (its full id): the next page.
    #[serde(default)]
    pub(super) before: Option<ActionId>,
}

/// Actions, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActionList {
    /// The actions.
    pub(super) actions: Vec<ActionRecord>,
}

/// An action with everything known of it.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActionDetail {
    /// The action.
    pub(super) action: ActionRecord,
    /// Its snapshot plan in words (one line; empty when it has none).
    pub(super) plan: Vec<String>,
    /// Its run, once it ran.
    pub(super) run: Option<RunAnswer>,
    /// The snapshot taken before it ran, if one was.
    pub(super) snapshot: Option<SnapshotRecord>,
    /// The approvals counted so far.
    pub(super) approvals: Vec<ApprovalRecord>,
    /// How many distinct people must approve it.
    pub(super) needed_approvers: u32,
    /// The rollback actions that name it.
    pub(super) rollbacks: Vec<ActionRecord>,
    /// Its audit events, oldest first (at most 1000).
    pub(super) events: Vec<AuditEvent>,
}

/// What a run produced.
#[derive(Serialize, ToSchema)]
pub(crate) struct RunAnswer {
    /// When it was sent.
    started_at: String,
    /// When its answer came (or the attempt ended).
    finished_at: String,
    /// How it ended: `exited`, `signalled`, `timed_out`, `refused` (by the
    /// host's guard), `not-sent` (nothing reached the host), `unreachable`
    /// (the host never answered) or `lost` (the link broke: what happened
    /// is in the guard's account, `host_account`).
    ending: String,
    /// The shell's exit code, if it exited.
    exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    signal: Option<i32>,
    /// Milliseconds it ran on the host.
    duration_ms: u64,
    /// Processes it left behind that the guard killed.
    killed: u32,
    /// Its standard output.
    stdout: OutputAnswer,
    /// Its standard error.
    stderr: OutputAnswer,
    /// Why it failed outside the command itself (a guard refusal, the
    /// link).
    error: Option<String>,
    /// What the kernel allowed the command, as the guard said, or why it
    /// ran without the kernel wall.
    kernel: Option<String>,
    /// The host guard's own account of a run the gateway did not hear end;
    /// its outputs carry counts and hashes only.
    host_account: Option<Box<RunRecord>>,
}

impl From<RunRecord> for RunAnswer {
    fn from(r: RunRecord) -> RunAnswer {
        // Every field named, as in `Verdict`.
        let RunRecord {
            started_at,
            finished_at,
            ending,
            exit_code,
            signal,
            duration_ms,
            killed,
            stdout,
            stderr,
            error,
            kernel,
            host_account,
        } = r;
        RunAnswer {
            started_at,
            finished_at,
            ending,
            exit_code,
            signal,
            duration_ms,
            killed,
            stdout: stdout.into(),
            stderr: stderr.into(),
            error,
            kernel,
            host_account,
        }
    }
}

/// One output stream of a run: what was kept of it, as text, and the
/// count and hash of all of it as the host counted.
#[derive(Serialize, ToSchema)]
pub(crate) struct OutputAnswer {
    /// How many bytes the command wrote in all.
    bytes: u64,
    /// Hex SHA-256 of all of them.
    sha256: String,
    /// Whether `text` is less than all of them (the host's output cap).
    truncated: bool,
    /// The bytes kept, as UTF-8 (anything else replaced by U+FFFD).
    text: String,
}

impl From<CapturedOutput> for OutputAnswer {
    fn from(o: CapturedOutput) -> OutputAnswer {
        let CapturedOutput {
            data,
            bytes,
            sha256,
            truncated,
        } = o;
        OutputAnswer {
            bytes,
            sha256,
            truncated,
            text: String::from_utf8_lossy(&data).into_owned(),
        }
    }
}

/// A decision's body, which may be left empty.
#[derive(Deserialize, Default, ToSchema)]
pub(crate) struct DecisionBody {
    /// Why, recorded with the decision (a denial without one records
    /// "no reason given").
    #[serde(default)]
    pub(super) reason: Option<String>,
    /// For a rollback only: go ahead although what it puts back changed
    /// since the action ran (it then always waits for the full approval
    /// rule).
    #[serde(default)]
    pub(super) force: bool,
}

/// The answer to an approval.
#[derive(Serialize, ToSchema)]
pub(crate) struct Approval {
    /// The action after the approval.
    pub(super) action: ActionRecord,
    /// Whether enough people have approved: it starts now, in the
    /// background.
    pub(super) approved: bool,
    /// How many more distinct approvers it needs (0 once approved).
    pub(super) approvals_still_needed: u32,
}

/// The answer to a run request: the action, started.
#[derive(Serialize, ToSchema)]
pub(crate) struct Started {
    /// The action as it stands (`approved` or `running`); follow it with
    /// `GET /api/v1/actions/{id}`.
    pub(super) action: ActionRecord,
    /// Always `true`.
    pub(super) started: bool,
}

/// An action, as a decision left it.
#[derive(Serialize, ToSchema)]
pub(crate) struct Decided {
    /// The action.
    pub(super) action: ActionRecord,
}

/// What became of a rollback request.
#[derive(Serialize, ToSchema)]
pub(crate) struct RollbackAnswer {
    /// The rollback action: `succeeded` or `failed` when it ran at once,
    /// `pending_approval` when it waits for approvers, `denied` when it
    /// stopped before changing anything.
    pub(super) rollback: ActionRecord,
    /// Whether it waits for approvers (decided like any action).
    pub(super) waiting_for_approval: bool,
    /// Whether it stopped before changing anything, because what it would
    /// put back changed since the action ran.
    pub(super) stopped: bool,
    /// How many distinct approvers it needs, while it waits (else 0).
    pub(super) needed_approvers: u32,
    /// The host's report, when the host was reached.
    pub(super) report: Option<RestoreAnswer>,
    /// The report in words.
    pub(super) summary: Option<String>,
    /// What happened, in a sentence.
    pub(super) outcome: String,
    /// Only when it stopped (`409`): the same sentence, as every refusal
    /// carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

/// What a rollback did on the host, target by target.
#[derive(Serialize, ToSchema)]
pub(crate) struct RestoreAnswer {
    /// The snapshot taken of the state before the rollback (so it can be
    /// rolled back in turn); absent when it stopped before changing
    /// anything. Its shape is the host guard's manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    before: Option<Snapshot>,
    /// The targets' fingerprints after the rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    after: Option<Snapshot>,
    /// Every target, in the order restored.
    targets: Vec<RestoredTargetAnswer>,
    /// Whether every target is now as the snapshot found it.
    complete: bool,
    /// How long it took on the host.
    duration_ms: u64,
}

impl From<RestoreReport> for RestoreAnswer {
    fn from(r: RestoreReport) -> RestoreAnswer {
        let RestoreReport {
            before,
            after,
            targets,
            complete,
            duration_ms,
        } = r;
        RestoreAnswer {
            before,
            after,
            targets: targets.into_iter().map(Into::into).collect(),
            complete,
            duration_ms,
        }
    }
}

/// One target of a rollback.
#[derive(Serialize, ToSchema)]
pub(crate) struct RestoredTargetAnswer {
    /// `repo`, `container`, `volume` or `file`.
    kind: String,
    /// Its path or name.
    name: String,
    /// How it went: `already_restored`, `restored`, `changed` (since the
    /// action: left alone), `failed`, `skipped` (after an earlier failure)
    /// or `due` (a check only: a rollback would put it back).
    #[schema(value_type = String)]
    outcome: TargetOutcome,
    /// What was found, done or compared, in plain words.
    detail: String,
}

impl From<RestoredTarget> for RestoredTargetAnswer {
    fn from(t: RestoredTarget) -> RestoredTargetAnswer {
        let RestoredTarget {
            kind,
            name,
            outcome,
            detail,
        } = t;
        RestoredTargetAnswer {
            kind,
            name,
            outcome,
            detail,
        }
    }
}

/// Audit events, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventList {
    /// The events.
    pub(super) events: Vec<AuditEvent>,
}

/// The audit chain's verification.
#[derive(Serialize, ToSchema)]
pub(crate) struct Verification {
    /// Whether the chain is intact.
    pub(super) intact: bool,
    /// What was walked and every break found.
    pub(super) report: VerifyReport,
}

/// Who the credentials sent are.
#[derive(Serialize, ToSchema)]
pub(crate) struct WhoAmI {
    /// As the audit log names them: `token:NAME`, `user:NAME`.
    pub(super) actor: String,
    /// Whether they may propose actions.
    pub(super) may_propose: bool,
    /// Whether they may approve, deny, run and roll back (people only).
    pub(super) may_decide: bool,
}

/// The configured hosts.
#[derive(Serialize, ToSchema)]
pub(crate) struct HostList {
    /// The hosts, in the configuration's order.
    pub(super) hosts: Vec<HostAnswer>,
}

/// A host as the gateway knows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct HostAnswer {
    /// Its name, as proposals give it.
    pub(super) name: String,
    /// Where it is reached over SSH.
    pub(super) destination: String,
    /// Its tags.
    pub(super) tags: Vec<String>,
    /// Its last health check.
    pub(super) health: HostHealth,
    /// The circuit breaker: `closed`, `open for 20s more` or `probing`.
    pub(super) breaker: String,
    /// Its limits by name (`default timeout`, `max timeout`, `output cap`,
    /// `rate`, `concurrency`, `cut off`), in words.
    pub(super) limits: BTreeMap<String, String>,
    /// The shell its guard runs commands with, or why there is none.
    pub(super) shell: String,
    /// Its kernel wall and what its `enforcement` setting makes of it.
    pub(super) kernel: HostKernelAnswer,
}

/// A host's last health check.
#[derive(Serialize, ToSchema)]
pub(crate) struct HostHealth {
    /// Reachable or not; `null` when not checked yet.
    pub(super) ok: Option<bool>,
    /// What the check said (`nas as jarvis; git 2.39.5; docker 27.3.1`).
    pub(super) detail: String,
    /// When it was checked; empty when not yet.
    pub(super) checked_at: String,
}

/// What a host's kernel enforces of the rules the guard derives for each
/// action.
#[derive(Serialize, ToSchema)]
pub(crate) struct HostKernelAnswer {
    /// `full`, `partial`, `none` or `unknown` (nobody asked yet).
    pub(super) level: &'static str,
    /// The level in words (`full (Landlock ABI 7)`).
    pub(super) detail: String,
    /// The host's setting: `required` or `best-effort`.
    pub(super) enforcement: String,
    /// Whether an action the policy allows runs without a person.
    pub(super) unattended: bool,
    /// What follows, in words (`every action waits for a person`).
    pub(super) consequence: String,
    /// When the host said so; `null` when nobody asked yet.
    pub(super) learnt_at: Option<String>,
}

/// A command to judge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyBody {
    /// The command line.
    pub(super) command: String,
    /// The host it would run on, for rules that name hosts.
    #[serde(default)]
    pub(super) host: Option<String>,
}

/// What the policy says of a command, in the shape of `jarvis policy
/// check --json`.
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyAnswer {
    /// The command line judged.
    pub(super) command: String,
    /// `allow`, `approve` or `deny`.
    #[schema(value_type = Decision)]
    pub(super) decision: String,
    /// How dangerous it is.
    #[schema(value_type = Risk)]
    pub(super) risk: RiskWords,
    /// Why, as sentences for a person, what decided first.
    pub(super) reasons: Vec<String>,
    /// The ids of the policy rules that matched.
    pub(super) rules: Vec<String>,
    /// Whether the line could not be read as bash (and so was denied).
    pub(super) parse_error: bool,
}

/// A risk as the policy page's check words it; the same JSON as [`Risk`].
#[derive(Serialize)]
pub(crate) struct RiskWords {
    pub(super) score: u32,
    pub(super) level: String,
}

// The types below are described, not built here: the error body comes
// from `AppError` (server/error.rs) and the live events from
// `LiveEvent::to_sse` (server/live_event.rs). tests/tests/openapi.rs holds
// real answers against them.

/// Why a request did nothing: every refusal and failure of the API
/// answers with this body.
#[derive(ToSchema)]
#[schema(as = Error)]
#[expect(dead_code, reason = "described for the document; AppError writes it")]
pub(crate) struct ErrorBody {
    /// What went wrong and, where there is one, what to do about it.
    error: String,
}

/// A rollback that cannot go ahead: either it stopped before changing
/// anything (the refused rollback, with `stopped: true` and the reason in
/// `error`), or there is nothing to roll back (only `error`).
#[derive(ToSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "described for the document")]
pub(crate) enum RollbackConflict {
    /// The rollback stopped; it is recorded as `denied`.
    Stopped(Box<RollbackAnswer>),
    /// Nothing to roll back, or nothing to undo.
    Refused(ErrorBody),
}

/// The data of an `action` event: an action was proposed, changed state,
/// had an approval counted or a preview attached.
#[derive(ToSchema)]
#[expect(dead_code, reason = "described for the document; LiveEvent writes it")]
pub(crate) struct LiveAction {
    #[serde(flatten)]
    change: jarvis_store::ActionChange,
    /// The state in words, as the web UI shows it (`waiting for
    /// approval`).
    label: String,
}

/// The data of an `output` event: a chunk of a running action's output.
#[derive(ToSchema)]
#[expect(dead_code, reason = "described for the document; LiveEvent writes it")]
pub(crate) struct LiveOutput {
    /// The action.
    id: ActionId,
    /// `stdout` or `stderr`.
    stream: String,
    /// The chunk, as text.
    text: String,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn value(v: impl Serialize) -> Value {
        serde_json::to_value(v).expect("serialises")
    }

    #[test]
    fn a_verdict_is_the_judgement_as_it_serialises() {
        let judgement = Judgement {
            command: "rm -rf /srv/old".into(),
            decision: Decision::Approve,
            risk: Risk::new(72).expect("a score"),
            reasons: vec!["`rm -r` deletes a tree".into()],
            rules: vec!["rm-needs-a-person".into()],
            parse_error: false,
            steps: Vec::new(),
            previews: Vec::new(),
        };
        assert_eq!(value(Verdict::from(judgement.clone())), value(&judgement));
    }

    fn run(stdout: &[u8], host_account: Option<RunRecord>) -> RunRecord {
        let output = |data: &[u8]| CapturedOutput {
            data: data.to_vec(),
            bytes: 9000,
            sha256: "ab".repeat(32),
            truncated: true,
        };
        RunRecord {
            started_at: "2026-11-23T14:00:00.000000Z".into(),
            finished_at: "2026-11-23T14:00:01.000000Z".into(),
            ending: "exited".into(),
            exit_code: Some(3),
            signal: None,
            duration_ms: 1000,
            killed: 1,
            stdout: output(stdout),
            stderr: output(b"\xff not utf-8\n"),
            error: None,
            kernel: Some("kernel: read-only".into()),
            host_account: host_account.map(Box::new),
        }
    }

    #[test]
    fn a_run_answers_as_its_record_with_the_output_as_text() {
        let record = run(b"up 3 days\n", Some(run(b"", None)));
        // What the answer always was: the record, each output's text added.
        let mut expected = value(&record);
        expected["stdout"]["text"] = json!("up 3 days\n");
        expected["stderr"]["text"] = json!("\u{fffd} not utf-8\n");
        assert_eq!(value(RunAnswer::from(record)), expected);
    }

    #[test]
    fn a_restore_answers_as_the_hosts_report() {
        let target = |outcome| RestoredTarget {
            kind: "repo".into(),
            name: "/srv/app".into(),
            outcome,
            detail: "HEAD back at a1b2c3d".into(),
        };
        let id = jarvis_core::ActionId::new();
        for (before, after) in [
            (None, None),
            (
                Some(Snapshot::new(id, true)),
                Some(Snapshot::new(id, false)),
            ),
        ] {
            let report = RestoreReport {
                before,
                after,
                targets: vec![
                    target(TargetOutcome::Restored),
                    target(TargetOutcome::Changed),
                ],
                complete: false,
                duration_ms: 120,
            };
            assert_eq!(value(RestoreAnswer::from(report.clone())), value(&report));
        }
    }
}
