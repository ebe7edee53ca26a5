//! The host guard protocol, version 1: what the gateway sends to
//! `jarvis-guard` and what comes back.
//!
//! **Request.** The forced command sees the client's command line in
//! `SSH_ORIGINAL_COMMAND`. A request is `jarvis-guard/1 ` followed by the
//! base64url (no padding) encoding of a JSON [`Request`]. The alphabet of
//! base64url holds no shell metacharacter, so nothing between the gateway and
//! the guard (ssh joining arguments, sshd, a login shell) can change it.
//!
//! **Response.** The guard's stdout carries frames: one kind byte, a 4-byte
//! big-endian length, then that many bytes of payload. The first frame is
//! always [`Frame::Hello`]; the last is [`Frame::Done`], [`Frame::Checked`] or
//! [`Frame::Refused`]. In between, [`Frame::Stdout`] and [`Frame::Stderr`]
//! carry the command's output (only up to the requested cap) and
//! [`Frame::Heartbeat`] lets the guard notice a vanished client: a write
//! that fails means nobody is listening, and it kills the command.
//!
//! This module does no IO: [`Frame::encode`] makes bytes and
//! [`FrameDecoder`] takes them in whatever pieces a pipe delivers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jarvis_core::ActionId;
use serde::{Deserialize, Serialize};

use crate::snapshot::{
    DropReport, DropRequest, EditRequest, PreviewReport, PreviewRequest, RestoreReport,
    RestoreRequest, Snapshot, SnapshotRequest,
};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// What starts every request line.
pub const REQUEST_PREFIX: &str = "jarvis-guard/1 ";

/// The largest frame payload either side accepts; output comes in smaller
/// chunks, so only a broken or hostile peer sends more.
pub const MAX_FRAME: usize = 1 << 20;

/// The largest request line the guard accepts: a 64 KiB command, encoded,
/// with room for the other fields, and under Linux's 128 KiB limit on one
/// environment string (sshd hands the line over in `SSH_ORIGINAL_COMMAND`).
pub const MAX_REQUEST: usize = 120 * 1024;

/// What the gateway asks of the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Run a command line.
    Run(RunRequest),
    /// Say who you are and what the host has (for `jarvis hosts check`).
    Check,
    /// Say only what the kernel wall can enforce here, and whether bash is
    /// there: the cheap question a proposal asks (no policy load, no probes
    /// of Docker or git).
    Kernel,
    /// Snapshot (or fingerprint) what a plan names.
    Snapshot(SnapshotRequest),
    /// Roll targets back to a snapshot.
    Restore(RestoreRequest),
    /// Preview an action in a throwaway clone.
    Preview(PreviewRequest),
    /// Apply a file edit; answered like a run, its output is the diff.
    Edit(EditRequest),
    /// Remove kept snapshots.
    Drop(DropRequest),
    /// Say what the guard's own log holds of one action's run: the
    /// gateway's way back to a run whose link broke or whose gateway
    /// stopped. Reads the log's tail only; no policy load.
    Account(AccountRequest),
}

/// Which action's run [`Request::Account`] asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    /// The gateway's id of the action, as its run request gave it.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
}

/// The guard's account of one action's run, from its own log: what the
/// gateway could not hear because the link broke or the gateway stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAccount {
    /// The action asked about.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// The `started` line: the command existed. `None` when the log holds
    /// no start (it never started, or the start is older than what was
    /// read, see `whole_log`).
    #[serde(default)]
    pub started: Option<AccountStart>,
    /// The line that ended the request: its outcome, or why the guard
    /// stopped or refused it. `None` with a start means the guard itself
    /// ended before it could write one (killed, or the host went down).
    #[serde(default)]
    pub ended: Option<AccountEnd>,
    /// How many bytes of the log's tail were read.
    pub read_bytes: u64,
    /// Whether that was the whole log; when not, an action with no record
    /// may have one further back.
    pub whole_log: bool,
}

/// The guard's `started` line for a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStart {
    /// When, by the host's clock (RFC 3339).
    pub at: String,
    /// What the kernel allowed the command, in one line.
    #[serde(default)]
    pub kernel: Option<String>,
    /// Whether the request said a person approved it.
    #[serde(default)]
    pub approved: bool,
}

/// How a request ended, as the guard logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AccountEnd {
    /// The command ran to an end the guard measured.
    Ran {
        /// When the guard logged it (RFC 3339).
        at: String,
        /// The outcome, as a `Done` frame would have carried it.
        outcome: Outcome,
    },
    /// The guard refused the request, or stopped the command it had
    /// started (`client-gone`: the gateway disconnected and the command
    /// was killed).
    Refused {
        /// When the guard logged it (RFC 3339).
        at: String,
        /// The refusal's code (`client-gone`, `host-policy`, …).
        code: String,
        /// Why, in plain words.
        #[serde(default)]
        reasons: Vec<String>,
        /// Milliseconds from the start to the kill, where the guard
        /// logged it.
        #[serde(default)]
        duration_ms: Option<u64>,
    },
}

impl AccountEnd {
    /// When the guard logged the end.
    pub fn at(&self) -> &str {
        match self {
            AccountEnd::Ran { at, .. } | AccountEnd::Refused { at, .. } => at,
        }
    }
}

/// One command line to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The gateway's id of the action, for the guard's own log.
    #[serde(deserialize_with = "crate::wire::action_id")]
    pub action_id: ActionId,
    /// The command line, for `bash --noprofile --norc -c` (the shell the
    /// policy models; the guard refuses on a host without bash).
    pub command: String,
    /// The directory to run it in; the user's home when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Wall-clock limit in milliseconds; the whole process tree is killed then.
    pub timeout_ms: u64,
    /// How many bytes of each of stdout and stderr to send back; the rest is
    /// counted and hashed, not sent.
    pub output_cap: u64,
    /// Whether a person approved the action (not the policy alone). The
    /// guard grants an approved action the writes of `scope` and of the
    /// host's own grant for approved actions; an unattended one gets only
    /// what the guard's own analysis of the line finds.
    #[serde(default)]
    pub approved: bool,
    /// The paths the approved plan names (repositories, files, working
    /// directories), which an approved action may write. Ignored unless
    /// `approved`.
    #[serde(default)]
    pub scope: Vec<String>,
}

/// Why a request could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The line does not start with `jarvis-guard/N `.
    #[error("not a Jarvis guard request (it must start with `{REQUEST_PREFIX}`)")]
    Unframed,
    /// The line names another protocol version.
    #[error("protocol version `{0}` is not spoken here (this guard speaks {PROTOCOL_VERSION})")]
    Version(String),
    /// The line is longer than [`MAX_REQUEST`].
    #[error("request of {0} bytes is over the {MAX_REQUEST}-byte limit")]
    TooLong(usize),
    /// The payload is not base64url.
    #[error("request payload is not base64url: {0}")]
    Encoding(String),
    /// The payload is not a request.
    #[error("request payload is not a valid request: {0}")]
    Json(String),
    /// A frame of an unknown kind arrived.
    #[error("unknown frame kind 0x{0:02x}")]
    FrameKind(u8),
    /// A frame announced more than [`MAX_FRAME`] bytes.
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    FrameTooLong(usize),
    /// A frame's payload is not what its kind requires.
    #[error("bad `{kind}` frame: {message}")]
    FramePayload {
        /// The frame kind.
        kind: &'static str,
        /// What was wrong.
        message: String,
    },
}

impl Request {
    /// The line to send as the SSH command.
    pub fn encode(&self) -> String {
        // Serialising a plain struct of strings and numbers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{REQUEST_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses a line as the guard receives it.
    ///
    /// # Errors
    /// A [`ProtocolError`] saying what is wrong with the line.
    pub fn parse(line: &str) -> Result<Request, ProtocolError> {
        if line.len() > MAX_REQUEST {
            return Err(ProtocolError::TooLong(line.len()));
        }
        let line = line.trim_end_matches(['\n', '\r']);
        let Some(rest) = line.strip_prefix("jarvis-guard/") else {
            return Err(ProtocolError::Unframed);
        };
        let (version, payload) = rest.split_once(' ').unwrap_or((rest, ""));
        if version != PROTOCOL_VERSION.to_string() {
            return Err(ProtocolError::Version(version.chars().take(16).collect()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim())
            .map_err(|e| ProtocolError::Encoding(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| ProtocolError::Json(e.to_string()))
    }
}

/// The guard's greeting, first on every response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the guard speaks.
    pub protocol: u32,
    /// The guard's own version.
    pub guard_version: String,
}

/// What one output stream amounted to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Bytes the command wrote, all of them.
    pub bytes: u64,
    /// Hex SHA-256 of everything the command wrote.
    pub sha256: String,
    /// Whether less than everything was sent back.
    pub truncated: bool,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// It exited by itself.
    Exited,
    /// A signal ended it.
    Signalled,
    /// It ran past its timeout and its process tree was killed.
    TimedOut,
}

/// The guard's account of a finished command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// The shell's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended the shell, when one did.
    pub signal: Option<i32>,
    /// Milliseconds from start to the end of the last process.
    pub duration_ms: u64,
    /// Its standard output.
    pub stdout: StreamSummary,
    /// Its standard error.
    pub stderr: StreamSummary,
    /// Processes still alive when the shell ended or the timeout struck,
    /// which the guard killed (background jobs, `nohup`, daemons).
    pub killed: u32,
    /// What the kernel allowed the command, in one line (`read-only, runs
    /// 3 programs, no network`), or why it ran without the kernel wall.
    /// `None` from a guard that predates it.
    #[serde(default)]
    pub kernel: Option<String>,
}

/// The guard's reason for not running a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// A stable word for the kind of refusal: `host-policy`, `bad-request`,
    /// `cwd`, `log`, `spawn`.
    pub code: String,
    /// Why, in plain words.
    pub reasons: Vec<String>,
}

/// What `Request::Check` finds on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The host's own name for itself.
    pub hostname: String,
    /// The user the guard runs as.
    pub user: String,
    /// The host policy file(s) the guard enforces.
    pub policy: Vec<String>,
    /// How many rules that policy has.
    pub policy_rules: usize,
    /// `docker version` of the server, if Docker answers.
    pub docker: Option<String>,
    /// `git --version`, if git is there.
    pub git: Option<String>,
    /// `bash --version` (first line): the shell every command runs with.
    /// `None` when the host has no bash, and then the guard runs nothing.
    #[serde(default)]
    pub bash: Option<String>,
    /// How much of the kernel wall (Landlock, seccomp) this host enforces.
    #[serde(default)]
    pub enforcement: KernelEnforcement,
}

/// What `Request::Kernel` finds: the part of a check a proposal needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelReport {
    /// Where bash is; `None` when the host has none, and runs nothing.
    pub bash: Option<String>,
    /// How much of the kernel wall the host enforces.
    pub enforcement: KernelEnforcement,
}

/// How much of the kernel wall a host can enforce on the commands its guard
/// runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelEnforcement {
    /// Full, partial or none.
    pub level: EnforcementLevel,
    /// The Landlock ABI version the kernel speaks, if it has Landlock.
    #[serde(default)]
    pub landlock_abi: Option<u32>,
    /// What the kernel cannot enforce here, in words (`TCP connect and bind
    /// (Landlock ABI 4)`, `signal scoping (ABI 6)`, `seccomp`).
    #[serde(default)]
    pub missing: Vec<String>,
}

impl KernelEnforcement {
    /// `full`, `partial: …` or `none: …`, for a line in `hosts check`.
    pub fn describe(&self) -> String {
        let abi = self
            .landlock_abi
            .map(|v| format!(" (Landlock ABI {v})"))
            .unwrap_or_default();
        match self.level {
            EnforcementLevel::Full => format!("full{abi}"),
            level @ (EnforcementLevel::Partial | EnforcementLevel::None) => format!(
                "{}{abi}: missing {}",
                level.as_str(),
                self.missing.join(", ")
            ),
        }
    }
}

/// The three levels of [`KernelEnforcement`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementLevel {
    /// Every right the guard asks the kernel for is enforced.
    Full,
    /// Some are (see `missing`).
    Partial,
    /// None: no Landlock (or the guard was told not to use it).
    #[default]
    None,
}

impl EnforcementLevel {
    /// The word used in reports and on the hosts page.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementLevel::Full => "full",
            EnforcementLevel::Partial => "partial",
            EnforcementLevel::None => "none",
        }
    }
}

/// One unit of the guard's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame: the guard's versions.
    Hello(Hello),
    /// A chunk of the command's stdout.
    Stdout(Vec<u8>),
    /// A chunk of the command's stderr.
    Stderr(Vec<u8>),
    /// Nothing to say; proves the client still listens.
    Heartbeat,
    /// Last frame of a run.
    Done(Outcome),
    /// Last frame of a check.
    Checked(CheckReport),
    /// Last frame of a kernel question.
    Kernel(KernelReport),
    /// Last frame of a refused request.
    Refused(Refusal),
    /// Last frame of a snapshot.
    Snapshotted(Snapshot),
    /// Last frame of a rollback.
    Restored(RestoreReport),
    /// Last frame of a preview.
    Previewed(PreviewReport),
    /// Last frame of a drop.
    Dropped(DropReport),
    /// Last frame of an account request.
    Account(RunAccount),
}

const HELLO: u8 = b'H';
const STDOUT: u8 = b'O';
const STDERR: u8 = b'E';
const HEARTBEAT: u8 = b'K';
const DONE: u8 = b'D';
const CHECKED: u8 = b'C';
const REFUSED: u8 = b'R';
const SNAPSHOTTED: u8 = b'S';
const RESTORED: u8 = b'B';
const PREVIEWED: u8 = b'P';
const DROPPED: u8 = b'X';
const KERNEL: u8 = b'L';
const ACCOUNT: u8 = b'A';

impl Frame {
    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Hello(h) => (HELLO, json(h).into()),
            Frame::Stdout(b) => (STDOUT, b.as_slice().into()),
            Frame::Stderr(b) => (STDERR, b.as_slice().into()),
            Frame::Heartbeat => (HEARTBEAT, Vec::new().into()),
            Frame::Done(o) => (DONE, json(o).into()),
            Frame::Checked(c) => (CHECKED, json(c).into()),
            Frame::Kernel(k) => (KERNEL, json(k).into()),
            Frame::Refused(r) => (REFUSED, json(r).into()),
            Frame::Snapshotted(r) => (SNAPSHOTTED, json(r).into()),
            Frame::Restored(r) => (RESTORED, json(r).into()),
            Frame::Previewed(r) => (PREVIEWED, json(r).into()),
            Frame::Dropped(r) => (DROPPED, json(r).into()),
            Frame::Account(r) => (ACCOUNT, json(r).into()),
        };
        let mut out = Vec::with_capacity(5 + payload.len());
        out.push(kind);
        // Payloads are bounded by MAX_FRAME by every producer.
        out.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&payload);
        out
    }

    /// Whether this frame ends a response.
    pub fn is_last(&self) -> bool {
        !matches!(
            self,
            Frame::Hello(_) | Frame::Stdout(_) | Frame::Stderr(_) | Frame::Heartbeat
        )
    }
}

fn json(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Turns a byte stream back into frames, however it was split.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Adds bytes as they arrive.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that do not yet make a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, if one has arrived.
    ///
    /// # Errors
    /// A [`ProtocolError`] for an unknown kind, an oversized frame or a
    /// payload that does not parse; the stream cannot be trusted after it.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let kind = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(ProtocolError::FrameTooLong(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
        let frame = match kind {
            HELLO => Frame::Hello(parse(&payload, "hello")?),
            STDOUT => Frame::Stdout(payload),
            STDERR => Frame::Stderr(payload),
            HEARTBEAT => Frame::Heartbeat,
            DONE => Frame::Done(parse(&payload, "done")?),
            CHECKED => Frame::Checked(parse(&payload, "checked")?),
            KERNEL => Frame::Kernel(parse(&payload, "kernel")?),
            REFUSED => Frame::Refused(parse(&payload, "refused")?),
            SNAPSHOTTED => Frame::Snapshotted(parse(&payload, "snapshotted")?),
            RESTORED => Frame::Restored(parse(&payload, "restored")?),
            PREVIEWED => Frame::Previewed(parse(&payload, "previewed")?),
            DROPPED => Frame::Dropped(parse(&payload, "dropped")?),
            ACCOUNT => Frame::Account(parse(&payload, "account")?),
            other => return Err(ProtocolError::FrameKind(other)),
        };
        Ok(Some(frame))
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    payload: &[u8],
    kind: &'static str,
) -> Result<T, ProtocolError> {
    serde_json::from_slice(payload).map_err(|e| ProtocolError::FramePayload {
        kind,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id as the gateway makes them.
    const ID: &str = "0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10";

    fn id() -> ActionId {
        ID.parse().expect("a UUID v7")
    }

    fn run(command: &str) -> Request {
        Request::Run(RunRequest {
            action_id: id(),
            command: command.into(),
            cwd: Some("/srv".into()),
            timeout_ms: 5_000,
            output_cap: 1024,
            approved: false,
            scope: Vec::new(),
        })
    }

    #[test]
    fn requests_round_trip_through_a_shell_safe_line() {
        for req in [
            run("echo 'a b' | tr a-z A-Z; $(id) `x` \"q\"\n"),
            Request::Check,
            Request::Account(AccountRequest { action_id: id() }),
        ] {
            let line = req.encode();
            assert!(
                line[REQUEST_PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{line}"
            );
            assert_eq!(Request::parse(&line).ok(), Some(req));
        }
    }

    #[test]
    fn bad_request_lines_say_what_is_wrong() {
        assert_eq!(Request::parse("uptime"), Err(ProtocolError::Unframed));
        assert_eq!(Request::parse(""), Err(ProtocolError::Unframed));
        assert_eq!(
            Request::parse("jarvis-guard/2 e30"),
            Err(ProtocolError::Version("2".into()))
        );
        assert!(matches!(
            Request::parse("jarvis-guard/1 !!!"),
            Err(ProtocolError::Encoding(_))
        ));
        let unknown = format!(
            "{REQUEST_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(br#"{"op":"run","command":"id","sudo":true}"#)
        );
        assert!(matches!(
            Request::parse(&unknown),
            Err(ProtocolError::Json(_))
        ));
        let long = format!("{REQUEST_PREFIX}{}", "A".repeat(MAX_REQUEST));
        assert!(matches!(
            Request::parse(&long),
            Err(ProtocolError::TooLong(_))
        ));
    }

    /// `json` with its `action_id` (and a restore target's) set to `id`, as
    /// a request line.
    fn line_with_id(json: &str, id: &serde_json::Value) -> String {
        let mut value: serde_json::Value = serde_json::from_str(json).expect("JSON");
        value["action_id"] = id.clone();
        if value.get("target").is_some() {
            value["target"]["action_id"] = id.clone();
        }
        format!(
            "{REQUEST_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(value.to_string())
        )
    }

    #[test]
    fn a_request_whose_action_id_is_not_an_id_is_refused_naming_it() {
        use crate::snapshot::{Snapshot, SnapshotPlan};
        let snapshot = Request::Snapshot(SnapshotRequest {
            action_id: id(),
            plan: SnapshotPlan::default(),
            keep: true,
            volume_image: None,
        });
        let restore = Request::Restore(RestoreRequest {
            action_id: id(),
            target: Snapshot::new(id(), true),
            after: None,
            force: false,
            check_only: true,
            volume_image: None,
        });
        let requests = [
            serde_json::to_string(&run("id")).expect("JSON"),
            serde_json::to_string(&Request::Account(AccountRequest { action_id: id() }))
                .expect("JSON"),
            serde_json::to_string(&snapshot).expect("JSON"),
            serde_json::to_string(&restore).expect("JSON"),
            // Written out, so the test names no edit type.
            r#"{"op":"edit","action_id":"","edit":{"path":"/etc/motd","change":{"kind":"content","content":"hi\n"}}}"#.into(),
            r#"{"op":"preview","action_id":"","preview":{"kind":"git","repo":"/srv/app","command":"true"},"timeout_ms":1,"output_cap":1}"#.into(),
        ];
        for json in &requests {
            // With a real id it reads, and the id is on the wire as the
            // string it always was.
            let good = line_with_id(json, &serde_json::json!(ID));
            let parsed = Request::parse(&good).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert!(
                serde_json::to_string(&parsed)
                    .expect("JSON")
                    .contains(&format!(r#""action_id":"{ID}""#)),
                "{json}"
            );
            for bad in [
                serde_json::json!(""),
                serde_json::json!("0193"),
                serde_json::json!("a"),
                serde_json::json!("../../etc/passwd"),
                serde_json::json!("refs/heads/main"),
                // A UUID, but not a version 7 one, so not the gateway's.
                serde_json::json!("6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
                serde_json::json!("0193a7c2-6c1e-4d43-9f00-3b5e2a1c4d10"),
                serde_json::json!(7),
                serde_json::json!(null),
            ] {
                let err = Request::parse(&line_with_id(json, &bad))
                    .expect_err(&format!("{json} with {bad}"));
                let ProtocolError::Json(message) = &err else {
                    panic!("{json} with {bad}: {err:?}");
                };
                assert!(message.contains("`action_id`"), "{message}");
            }
        }
        // A hostile id is not repeated whole.
        let long = "x".repeat(10_000);
        let err = Request::parse(&line_with_id(&requests[0], &serde_json::json!(long)))
            .expect_err("not an id");
        assert!(err.to_string().len() < 400, "{err}");
    }

    #[test]
    fn frames_survive_any_split() {
        let frames = vec![
            Frame::Hello(Hello {
                protocol: 1,
                guard_version: "0.1.0".into(),
            }),
            Frame::Stdout(b"hello\n".to_vec()),
            Frame::Heartbeat,
            Frame::Stderr(vec![0, 255, 10]),
            Frame::Done(Outcome {
                ending: Ending::Exited,
                exit_code: Some(0),
                signal: None,
                duration_ms: 3,
                stdout: StreamSummary::default(),
                stderr: StreamSummary::default(),
                killed: 0,
                kernel: Some("read-only, runs 1 program, no network".into()),
            }),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for step in [1, 2, 5, 7, 4096] {
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(step) {
                dec.push(chunk);
                while let Some(f) = dec.next_frame().expect("valid stream") {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split every {step} bytes");
            assert_eq!(dec.pending(), 0);
        }
    }

    #[test]
    fn accounts_round_trip_as_frames() {
        let outcome = Outcome {
            ending: Ending::Signalled,
            exit_code: None,
            signal: Some(9),
            duration_ms: 1200,
            stdout: StreamSummary::default(),
            stderr: StreamSummary::default(),
            killed: 2,
            kernel: None,
        };
        let start = AccountStart {
            at: "2026-12-07T04:00:00.5Z".into(),
            kernel: Some("read-only, runs 1 program, no network".into()),
            approved: true,
        };
        let accounts = [
            RunAccount {
                action_id: ActionId::new(),
                started: Some(start.clone()),
                ended: Some(AccountEnd::Refused {
                    at: "2026-12-07T04:00:02Z".into(),
                    code: "client-gone".into(),
                    reasons: vec!["the gateway disconnected; the command was killed".into()],
                    duration_ms: Some(1500),
                }),
                read_bytes: 4096,
                whole_log: true,
            },
            RunAccount {
                action_id: ActionId::new(),
                started: Some(start),
                ended: Some(AccountEnd::Ran {
                    at: "2026-12-07T04:00:02Z".into(),
                    outcome,
                }),
                read_bytes: 8 << 20,
                whole_log: false,
            },
            RunAccount {
                action_id: ActionId::new(),
                started: None,
                ended: None,
                read_bytes: 0,
                whole_log: true,
            },
        ];
        for account in accounts {
            let frame = Frame::Account(account);
            let mut dec = FrameDecoder::new();
            dec.push(&frame.encode());
            assert_eq!(dec.next_frame().expect("valid"), Some(frame.clone()));
            assert!(frame.is_last());
        }
        // An account from a later guard with more to say still reads.
        let later = br#"{"action_id":"0193a7c2-6c1e-7d43-9f00-3b5e2a1c4d10","started":null,"read_bytes":1,"whole_log":true,"more":1}"#;
        let mut wire = vec![ACCOUNT];
        wire.extend_from_slice(&(later.len() as u32).to_be_bytes());
        wire.extend_from_slice(later);
        let mut dec = FrameDecoder::new();
        dec.push(&wire);
        assert!(matches!(dec.next_frame(), Ok(Some(Frame::Account(a))) if a.action_id == id()));
    }

    #[test]
    fn hostile_frames_are_errors_not_allocations() {
        let mut dec = FrameDecoder::new();
        dec.push(&[b'O', 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            dec.next_frame(),
            Err(ProtocolError::FrameTooLong(_))
        ));
        let mut dec = FrameDecoder::new();
        dec.push(&[b'Z', 0, 0, 0, 0]);
        assert_eq!(dec.next_frame(), Err(ProtocolError::FrameKind(b'Z')));
        let mut dec = FrameDecoder::new();
        dec.push(&[b'D', 0, 0, 0, 2, b'{', b'}']);
        assert!(matches!(
            dec.next_frame(),
            Err(ProtocolError::FramePayload { kind: "done", .. })
        ));
    }
}
