//! The audit log's signed heads (`[audit]`): how often they are signed,
//! by a key file or a signer program, and the witnesses they are shipped
//! to, none of them where the database's writer can reach.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    checkpoint_every: Option<i64>,
    head_period_secs: Option<u64>,
    key_file: Option<PathBuf>,
    signer: Option<Vec<String>>,
    signer_public_key: Option<String>,
    #[serde(default)]
    witness: Vec<RawWitness>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWitness {
    name: String,
    file: Option<PathBuf>,
    git: Option<PathBuf>,
    branch: Option<String>,
    push: Option<String>,
}

/// The audit log's signed heads (`[audit]`): how often, with what key, and
/// where they are shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// A checkpoint is signed at every multiple of this many events.
    pub checkpoint_every: i64,
    /// A head is signed at least this often while a process writes, and
    /// verification counts an event older than twice this (and half a
    /// minute) without a signed head as a break.
    pub head_period: Duration,
    /// An external signer instead of a key file.
    pub signer: Option<SignerSpec>,
    /// Where signed heads are shipped as they are made.
    pub witnesses: Vec<WitnessSpec>,
}

impl Default for AuditSettings {
    fn default() -> AuditSettings {
        AuditSettings {
            checkpoint_every: 1000,
            head_period: Duration::from_secs(60),
            signer: None,
            witnesses: Vec::new(),
        }
    }
}

/// A program that signs heads with a key the gateway never reads: it gets
/// the bytes to sign on stdin and prints the ed25519 signature in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its key's public half (hex), which every signature is checked
    /// against and verification trusts.
    pub public_key: String,
}

/// A witness of the audit log (`[[audit.witness]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    /// Its name, for `jarvis audit verify --witness NAME` and messages.
    pub name: String,
    /// Where it keeps the heads.
    pub sink: WitnessSink,
}

/// Where a witness keeps the signed heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessSink {
    /// Appended as JSON lines to a file (on another mount or machine).
    File(PathBuf),
    /// One commit per head on a branch of a git repository (created bare
    /// if missing), pushed to `push` if given.
    Git {
        /// The repository (bare, or a working tree).
        repo: PathBuf,
        /// The branch.
        branch: String,
        /// The remote to push the branch to after each shipment.
        push: Option<String>,
    },
}

/// The branch a git witness keeps heads on unless told otherwise.
pub const WITNESS_BRANCH: &str = "jarvis-audit-heads";

pub(super) fn audit_settings(
    raw: RawAudit,
    store_key: Option<PathBuf>,
    data_dir: Option<&Path>,
    abs: &dyn Fn(PathBuf) -> PathBuf,
    invalid: &dyn Fn(String, String) -> ConfigError,
) -> Result<(AuditSettings, Option<PathBuf>), ConfigError> {
    let d = AuditSettings::default();
    let checkpoint_every = match raw.checkpoint_every {
        Some(n) if n < 1 => {
            return Err(invalid(
                "audit.checkpoint_every".into(),
                "must be at least 1 (events between checkpoints)".into(),
            ));
        }
        Some(n) => n,
        None => d.checkpoint_every,
    };
    let head_period = match raw.head_period_secs {
        Some(0) => {
            return Err(invalid(
                "audit.head_period_secs".into(),
                "must be at least 1".into(),
            ));
        }
        Some(n) => Duration::from_secs(n),
        None => d.head_period,
    };
    let key_file = match (store_key, raw.key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "audit.key_file".into(),
                "the key file is given twice (also as store.audit_key); keep one".into(),
            ));
        }
        (a, b) => a.or(b).map(abs),
    };
    let signer = match (raw.signer, raw.signer_public_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "audit.signer_public_key".into(),
                "is required with a signer: the public key (64 hex digits) its signatures are checked against".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "audit.signer".into(),
                "is missing: signer_public_key belongs to a signer command".into(),
            ));
        }
        (Some(command), Some(public_key)) => {
            let Some((program, args)) = command.split_first() else {
                return Err(invalid(
                    "audit.signer".into(),
                    "must name a program, then its arguments".into(),
                ));
            };
            if key_file.is_some() {
                return Err(invalid(
                    "audit.signer".into(),
                    "give a signer or a key file, not both".into(),
                ));
            }
            let public_key = public_key.trim().to_ascii_lowercase();
            if public_key.len() != 64 || !public_key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "audit.signer_public_key".into(),
                    format!("`{public_key}` is not an ed25519 public key in hex (64 digits)"),
                ));
            }
            // A bare name is looked up on PATH; a path is the config's.
            let program = PathBuf::from(program);
            let program = if program.components().count() > 1 {
                abs(program)
            } else {
                program
            };
            Some(SignerSpec {
                program,
                args: args.to_vec(),
                public_key,
            })
        }
    };
    let mut witnesses: Vec<WitnessSpec> = Vec::new();
    for (i, w) in raw.witness.into_iter().enumerate() {
        let field = |f: &str| format!("audit.witness[{i}].{f}");
        if w.name.trim().is_empty() {
            return Err(invalid(field("name"), "must not be empty".into()));
        }
        if witnesses.iter().any(|o| o.name == w.name) {
            return Err(invalid(
                field("name"),
                format!("`{}` names two witnesses", w.name),
            ));
        }
        let sink = match (w.file, w.git) {
            (Some(file), None) => {
                if w.branch.is_some() || w.push.is_some() {
                    return Err(invalid(
                        field("branch"),
                        "branch and push belong to a git witness".into(),
                    ));
                }
                WitnessSink::File(abs(file))
            }
            (None, Some(repo)) => WitnessSink::Git {
                repo: abs(repo),
                branch: w.branch.unwrap_or_else(|| WITNESS_BRANCH.to_owned()),
                push: w.push,
            },
            _ => {
                return Err(invalid(
                    field("file"),
                    "give exactly one of `file` (JSON lines) or `git` (a repository)".into(),
                ));
            }
        };
        // A witness beside the database is one more thing its writer can
        // rewrite.
        let place = match &sink {
            WitnessSink::File(p) => p,
            WitnessSink::Git { repo, .. } => repo,
        };
        if let Some(dir) = data_dir
            && place.starts_with(dir)
        {
            return Err(invalid(
                field(if matches!(sink, WitnessSink::File(_)) {
                    "file"
                } else {
                    "git"
                }),
                format!(
                    "{} is inside the data directory {}: a witness must live where the database's writer cannot reach (another mount, another machine)",
                    place.display(),
                    dir.display()
                ),
            ));
        }
        witnesses.push(WitnessSpec { name: w.name, sink });
    }
    Ok((
        AuditSettings {
            checkpoint_every,
            head_period,
            signer,
            witnesses,
        },
        key_file,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::parse;

    #[test]
    fn audit_heads_keys_and_witnesses() {
        let c = parse(
            r#"
            [store]
            data_dir = "/var/lib/jarvis"
            [audit]
            checkpoint_every = 100
            head_period_secs = 30
            signer = ["bin/jarvis-sign", "--slot", "2"]
            signer_public_key = "AB12000000000000000000000000000000000000000000000000000000000000"
            [[audit.witness]]
            name = "usb"
            file = "/mnt/usb/jarvis-heads.jsonl"
            [[audit.witness]]
            name = "offsite"
            git = "/srv/witness.git"
            push = "origin"
            "#,
        )
        .expect("valid");
        assert_eq!(c.audit.checkpoint_every, 100);
        assert_eq!(c.audit.head_period, Duration::from_secs(30));
        let signer = c.audit.signer.as_ref().expect("signer");
        assert_eq!(signer.program, Path::new("/etc/jarvis/bin/jarvis-sign"));
        assert_eq!(signer.args, ["--slot", "2"]);
        assert!(signer.public_key.starts_with("ab12"));
        assert_eq!(
            c.audit.witnesses,
            vec![
                WitnessSpec {
                    name: "usb".into(),
                    sink: WitnessSink::File("/mnt/usb/jarvis-heads.jsonl".into()),
                },
                WitnessSpec {
                    name: "offsite".into(),
                    sink: WitnessSink::Git {
                        repo: "/srv/witness.git".into(),
                        branch: WITNESS_BRANCH.into(),
                        push: Some("origin".into()),
                    },
                },
            ]
        );
        let d = parse("").expect("empty");
        assert_eq!(d.audit, AuditSettings::default());
        let k = parse("[audit]\nkey_file = \"keys/audit.key\"\n").expect("key file");
        assert_eq!(
            k.audit_key.as_deref(),
            Some(Path::new("/etc/jarvis/keys/audit.key"))
        );
        let bare = parse(&format!(
            "[audit]\nsigner = [\"jarvis-sign\"]\nsigner_public_key = \"{}\"\n",
            "0".repeat(64)
        ))
        .expect("on PATH");
        assert_eq!(
            bare.audit.signer.map(|s| s.program),
            Some(PathBuf::from("jarvis-sign"))
        );
    }

    #[test]
    fn audit_mistakes_name_the_field() {
        let key = "0".repeat(64);
        let cases = [
            ("[audit]\ncheckpoint_every = 0\n".to_owned(), "audit.checkpoint_every"),
            ("[audit]\nhead_period_secs = 0\n".to_owned(), "audit.head_period_secs"),
            ("[audit]\nsigner = [\"s\"]\n".to_owned(), "audit.signer_public_key"),
            (format!("[audit]\nsigner_public_key = \"{key}\"\n"), "audit.signer"),
            (format!("[audit]\nsigner = []\nsigner_public_key = \"{key}\"\n"), "audit.signer"),
            ("[audit]\nsigner = [\"s\"]\nsigner_public_key = \"beef\"\n".to_owned(), "audit.signer_public_key"),
            (
                format!("[audit]\nkey_file = \"k\"\nsigner = [\"s\"]\nsigner_public_key = \"{key}\"\n"),
                "audit.signer",
            ),
            ("[store]\naudit_key = \"a\"\n[audit]\nkey_file = \"b\"\n".to_owned(), "audit.key_file"),
            ("[[audit.witness]]\nname = \"w\"\n".to_owned(), "audit.witness[0].file"),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\ngit = \"b\"\n".to_owned(),
                "audit.witness[0].file",
            ),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\nbranch = \"b\"\n".to_owned(),
                "audit.witness[0].branch",
            ),
            (
                "[[audit.witness]]\nname = \"w\"\nfile = \"a\"\n[[audit.witness]]\nname = \"w\"\nfile = \"b\"\n".to_owned(),
                "audit.witness[1].name",
            ),
            (
                "[store]\ndata_dir = \"/var/lib/jarvis\"\n[[audit.witness]]\nname = \"w\"\nfile = \"/var/lib/jarvis/heads.jsonl\"\n".to_owned(),
                "audit.witness[0].file",
            ),
            (
                "[store]\ndata_dir = \"state\"\n[[audit.witness]]\nname = \"w\"\ngit = \"state/witness\"\n".to_owned(),
                "audit.witness[0].git",
            ),
            ("[audit]\nwitnesses = []\n".to_owned(), "witnesses"),
        ];
        for (text, field) in cases {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
    }
}
