//! Witnesses of the audit log: signed heads shipped off the box as they are
//! made, so that whoever can write the database (and even sign with the
//! local key) cannot cut or rewrite the log without it showing, as
//! CloudTrail's digest files in another account do.
//!
//! Two kinds of sink: a file of JSON lines (on another mount, a share, a
//! disk only appended to), and a git repository with one commit per head
//! on a branch (pushed to a remote if configured). Each shipment first asks
//! the store whether the newest head the witness holds is still on the
//! chain as it was signed; if it is not, the chain was cut or rewritten
//! behind the witness, and no head is signed over it: signing would bless
//! the tampering. `jarvis audit verify --witness` reads the heads back.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jarvis_store::{Checkpoint, Store, StoreError};

use crate::config::{WITNESS_BRANCH, WitnessSink, WitnessSpec};

/// What went wrong with a witness.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The sink cannot be read or written.
    #[error("witness `{name}`: {message}")]
    Sink {
        /// The witness.
        name: String,
        /// What failed.
        message: String,
    },
    /// The chain no longer holds the newest head the witness keeps.
    #[error(
        "witness `{name}` holds the signed head at event {seq}, but {what}; no head is signed over this chain until a person has looked (jarvis audit verify --witness {name})"
    )]
    Broken {
        /// The witness.
        name: String,
        /// The head's sequence number.
        seq: i64,
        /// What the chain has instead.
        what: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of one seal: the head signed, and what each witness got.
#[derive(Debug, Default)]
pub struct Sealed {
    /// The head signed now, if the head was not signed already.
    pub signed: Option<Checkpoint>,
    /// Each witness that took heads, and how many.
    pub shipped: Vec<(String, usize)>,
    /// Witnesses that could not be reached; the next seal ships to them
    /// what they missed.
    pub failed: Vec<WitnessError>,
}

/// The configured witnesses.
#[derive(Debug, Clone, Default)]
pub struct Witnesses {
    specs: Vec<WitnessSpec>,
}

impl Witnesses {
    /// The witnesses `specs` name.
    pub fn new(specs: Vec<WitnessSpec>) -> Witnesses {
        Witnesses { specs }
    }

    /// Signs the head of `store`'s chain (unless it is signed already) and
    /// ships every head each witness lacks; a witness that never had one
    /// starts with the newest.
    ///
    /// # Errors
    /// [`WitnessError::Broken`] when a witness's newest head is no longer
    /// on the chain as signed (nothing is signed then), or a store error.
    /// A witness that cannot be reached is no error: it is listed in
    /// [`Sealed::failed`].
    pub async fn seal(&self, store: &Store, reason: &str) -> Result<Sealed, WitnessError> {
        let mut sealed = Sealed::default();
        let mut reachable = Vec::new();
        for spec in &self.specs {
            let s = spec.clone();
            match blocking(spec, move || last_head(&s)).await {
                Ok(last) => reachable.push((spec, last)),
                Err(e) => sealed.failed.push(e),
            }
        }
        for (spec, last) in &reachable {
            if let Some(head) = last
                && let Some(what) = store.missing_head(head).await?
            {
                return Err(WitnessError::Broken {
                    name: spec.name.clone(),
                    seq: head.seq,
                    what,
                });
            }
        }
        sealed.signed = store.sign_head(reason).await?;
        for (spec, last) in reachable {
            let heads = match &last {
                Some(head) => store.checkpoints_after(head.seq).await?,
                None => store.newest_checkpoint().await?.into_iter().collect(),
            };
            if heads.is_empty() {
                continue;
            }
            let s = spec.clone();
            match blocking(spec, move || ship(&s, &heads)).await {
                Ok(n) => sealed.shipped.push((spec.name.clone(), n)),
                Err(e) => sealed.failed.push(e),
            }
        }
        Ok(sealed)
    }
}

/// What failed at a witness's sink, in the words `WitnessError::Sink`
/// carries.
#[derive(Debug, thiserror::Error)]
enum SinkError {
    /// A file of the sink could not be opened, locked, read or written.
    #[error("cannot {doing} {}: {source}", .path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// What should be a signed head is not one.
    #[error("{place} is not a signed head: {source}")]
    NotAHead {
        place: String,
        source: serde_json::Error,
    },
    /// A head that does not encode.
    #[error("a head does not encode: {0}")]
    Encode(serde_json::Error),
    /// A git repository to be made where no directory is.
    #[error("{} does not exist, nor does the directory it would be made in", .0.display())]
    NoParent(PathBuf),
    /// A repository to be read that is not there.
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// git could not run or failed: the command and what it said.
    #[error("{0}")]
    Git(String),
    /// The blocking task doing the work did not finish.
    #[error("{0}")]
    Task(tokio::task::JoinError),
}

impl SinkError {
    fn io(doing: &'static str, path: &Path, source: std::io::Error) -> SinkError {
        SinkError::Io {
            doing,
            path: path.to_owned(),
            source,
        }
    }
}

/// Runs sink IO off the async threads.
async fn blocking<T: Send + 'static>(
    spec: &WitnessSpec,
    work: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, WitnessError> {
    let name = spec.name.clone();
    tokio::task::spawn_blocking(work)
        .await
        .map_err(SinkError::Task)
        .and_then(|r| r)
        .map_err(|e| WitnessError::Sink {
            name,
            message: e.to_string(),
        })
}

/// The witness `arg` names: a configured witness by name, or a path (a
/// directory is a git repository, anything else a file of JSON lines).
pub fn resolve(arg: &str, configured: &[WitnessSpec]) -> WitnessSpec {
    if let Some(spec) = configured.iter().find(|w| w.name == arg) {
        return spec.clone();
    }
    let path = PathBuf::from(arg);
    let sink = if path.is_dir() {
        WitnessSink::Git {
            repo: path,
            branch: WITNESS_BRANCH.to_owned(),
            push: None,
        }
    } else {
        WitnessSink::File(path)
    };
    WitnessSpec {
        name: arg.to_owned(),
        sink,
    }
}

/// Every head the witness holds, oldest first.
///
/// # Errors
/// [`WitnessError::Sink`] when it cannot be read, or holds something that
/// is not a head.
pub fn read_heads(spec: &WitnessSpec) -> Result<Vec<Checkpoint>, WitnessError> {
    let read = match &spec.sink {
        WitnessSink::File(path) => file_heads(path),
        WitnessSink::Git { repo, branch, .. } => git_heads(repo, branch),
    };
    read.map_err(|e| WitnessError::Sink {
        name: spec.name.clone(),
        message: e.to_string(),
    })
}

fn last_head(spec: &WitnessSpec) -> Result<Option<Checkpoint>, SinkError> {
    match &spec.sink {
        WitnessSink::File(path) => match std::fs::File::open(path) {
            Ok(f) => file_last(&f, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SinkError::io("read", path, source)),
        },
        WitnessSink::Git { repo, branch, .. } => git_last(&git_dir(repo)?, branch),
    }
}

fn ship(spec: &WitnessSpec, heads: &[Checkpoint]) -> Result<usize, SinkError> {
    match &spec.sink {
        WitnessSink::File(path) => file_ship(path, heads),
        WitnessSink::Git { repo, branch, push } => git_ship(repo, branch, push.as_deref(), heads),
    }
}

fn head_line(head: &Checkpoint) -> Result<String, SinkError> {
    serde_json::to_string(head).map_err(SinkError::Encode)
}

fn parse_head(text: &str, place: &str) -> Result<Checkpoint, SinkError> {
    serde_json::from_str(text).map_err(|source| SinkError::NotAHead {
        place: place.to_owned(),
        source,
    })
}

// ----- a file of JSON lines --------------------------------------------------

/// The newest complete line of `file`: read from its end, since the file
/// only grows.
fn file_last(file: &std::fs::File, path: &Path) -> Result<Option<Checkpoint>, SinkError> {
    let len = file
        .metadata()
        .map_err(|source| SinkError::io("read", path, source))?
        .len();
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        let mut buf = vec![0u8; usize::try_from(len - start).unwrap_or(0)];
        file.read_exact_at(&mut buf, start)
            .map_err(|source| SinkError::io("read", path, source))?;
        // A line cut short by a crash is no head; the one before it is.
        let complete = match buf.iter().rposition(|b| *b == b'\n') {
            Some(end) => &buf[..end],
            None if start == 0 => return Ok(None),
            None => {
                window *= 4;
                continue;
            }
        };
        let line_start = complete.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
        match line_start {
            Some(i) => {
                let line = String::from_utf8_lossy(&complete[i..]);
                return parse_head(line.trim(), &format!("the last line of {}", path.display()))
                    .map(Some);
            }
            None if start == 0 => {
                let line = String::from_utf8_lossy(complete);
                if line.trim().is_empty() {
                    return Ok(None);
                }
                return parse_head(line.trim(), &format!("the last line of {}", path.display()))
                    .map(Some);
            }
            None => window *= 4,
        }
    }
}

fn file_ship(path: &Path, heads: &[Checkpoint]) -> Result<usize, SinkError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // No directory is made: a witness whose mount is gone must fail, not
    // fill the directory the mount would cover.
    let mut file = options
        .open(path)
        .map_err(|source| SinkError::io("open", path, source))?;
    // Another process (the server, a command) may ship at the same time.
    file.lock()
        .map_err(|source| SinkError::io("lock", path, source))?;
    let after = file_last(&file, path)?.map_or(i64::MIN, |h| h.seq);
    let mut text = String::new();
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 0 {
        let mut last = [0u8; 1];
        file.read_exact_at(&mut last, len - 1)
            .map_err(|source| SinkError::io("read", path, source))?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    let mut n = 0;
    for head in heads.iter().filter(|h| h.seq > after) {
        text.push_str(&head_line(head)?);
        text.push('\n');
        n += 1;
    }
    if n > 0 {
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|source| SinkError::io("write", path, source))?;
    }
    Ok(n)
}

fn file_heads(path: &Path) -> Result<Vec<Checkpoint>, SinkError> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| SinkError::io("read", path, source))?;
    let mut heads = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Checkpoint>(line) {
            Ok(h) => heads.push(h),
            // A shipment cut short by a crash; the next one started a new line.
            Err(e) if e.is_eof() => {}
            Err(source) => {
                return Err(SinkError::NotAHead {
                    place: format!("line {} of {}", i + 1, path.display()),
                    source,
                });
            }
        }
    }
    heads.sort_by_key(|h| h.seq);
    Ok(heads)
}

// ----- a git repository ---------------------------------------------------------

/// The git directory of `repo`, made (bare) if nothing is there yet; its
/// parent must exist, as a mount point would.
fn git_dir(repo: &Path) -> Result<PathBuf, SinkError> {
    if !repo.exists() {
        if repo
            .parent()
            .is_some_and(|p| !p.as_os_str().is_empty() && !p.is_dir())
        {
            return Err(SinkError::NoParent(repo.to_owned()));
        }
        let out = Command::new("git")
            .args(["init", "--bare", "-q"])
            .arg(repo)
            .output()
            .map_err(|e| SinkError::Git(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(SinkError::Git(format!(
                "git init {}: {}",
                repo.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    let dot = repo.join(".git");
    Ok(if dot.is_dir() { dot } else { repo.to_owned() })
}

/// Runs git on `dir` with a fixed identity and no prompts; stdout, or
/// stderr as the error.
fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<String, SinkError> {
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Jarvis")
        .env("GIT_AUTHOR_EMAIL", "jarvis@localhost")
        .env("GIT_COMMITTER_NAME", "Jarvis")
        .env("GIT_COMMITTER_EMAIL", "jarvis@localhost")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| SinkError::Git(format!("cannot run git: {e}")))?;
    if let (Some(data), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(data)
            .map_err(|e| SinkError::Git(format!("git {}: {e}", args.join(" "))))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SinkError::Git(format!("git {}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(SinkError::Git(format!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn branch_tip(dir: &Path, branch: &str) -> Result<Option<String>, SinkError> {
    // `rev-parse -q --verify` exits 1 and says nothing for a missing ref.
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args([
            "rev-parse",
            "-q",
            "--verify",
            &format!("refs/heads/{branch}"),
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SinkError::Git(format!("cannot run git: {e}")))?;
    let tip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    match out.status.code() {
        Some(0) if !tip.is_empty() => Ok(Some(tip)),
        Some(1) if out.stderr.is_empty() => Ok(None),
        _ => Err(SinkError::Git(format!(
            "{} is not a git repository: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

fn git_last(dir: &Path, branch: &str) -> Result<Option<Checkpoint>, SinkError> {
    let Some(tip) = branch_tip(dir, branch)? else {
        return Ok(None);
    };
    let text = git(dir, &["show", &format!("{tip}:head.json")], None)?;
    parse_head(&text, &format!("head.json of {tip}")).map(Some)
}

fn git_ship(
    repo: &Path,
    branch: &str,
    push: Option<&str>,
    heads: &[Checkpoint],
) -> Result<usize, SinkError> {
    let dir = git_dir(repo)?;
    let reference = format!("refs/heads/{branch}");
    // Another process may commit at the same time: the ref moves only from
    // the tip this one saw, and a loser starts again from the new tip.
    let mut attempts = 0;
    let shipped = loop {
        attempts += 1;
        let mut tip = branch_tip(&dir, branch)?;
        let after = match &tip {
            Some(_) => git_last(&dir, branch)?.map_or(i64::MIN, |h| h.seq),
            None => i64::MIN,
        };
        let start = tip.clone();
        let mut n = 0;
        for head in heads.iter().filter(|h| h.seq > after) {
            let line = head_line(head)?;
            let blob = git(
                &dir,
                &["hash-object", "-w", "--stdin"],
                Some(line.as_bytes()),
            )?;
            let tree = git(
                &dir,
                &["mktree"],
                Some(format!("100644 blob {blob}\thead.json\n").as_bytes()),
            )?;
            let mut args = vec!["commit-tree", tree.as_str()];
            if let Some(parent) = &tip {
                args.extend(["-p", parent.as_str()]);
            }
            let message = format!("{line}\n");
            tip = Some(git(&dir, &args, Some(message.as_bytes()))?);
            n += 1;
        }
        let Some(new) = tip.filter(|_| n > 0) else {
            break 0;
        };
        let old = start.unwrap_or_default();
        match git(&dir, &["update-ref", &reference, &new, &old], None) {
            Ok(_) => break n,
            Err(e) if attempts >= 3 => return Err(e),
            Err(_) => continue,
        }
    };
    if let Some(remote) = push {
        git(
            &dir,
            &["push", "-q", remote, &format!("{reference}:{reference}")],
            None,
        )?;
    }
    Ok(shipped)
}

fn git_heads(repo: &Path, branch: &str) -> Result<Vec<Checkpoint>, SinkError> {
    if !repo.exists() {
        return Err(SinkError::Missing(repo.to_owned()));
    }
    let dir = git_dir(repo)?;
    if branch_tip(&dir, branch)?.is_none() {
        return Ok(Vec::new());
    }
    // Each commit's message is its head; %x1e separates them.
    let log = git(
        &dir,
        &[
            "log",
            "--reverse",
            "--format=%H%n%B%x1e",
            &format!("refs/heads/{branch}"),
        ],
        None,
    )?;
    let mut heads = Vec::new();
    for record in log.split('\x1e') {
        let record = record.trim();
        if record.is_empty() {
            continue;
        }
        let (commit, body) = record.split_once('\n').unwrap_or((record, ""));
        heads.push(parse_head(body.trim(), &format!("commit {commit}"))?);
    }
    heads.sort_by_key(|h| h.seq);
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: i64) -> Checkpoint {
        Checkpoint {
            seq,
            hash: format!("{seq:064}"),
            signed_at: "2026-11-23T14:00:00Z".into(),
            public_key: "00".repeat(32),
            signature: "11".repeat(64),
            version: 2,
            every: Some(1000),
            reason: Some("periodic".into()),
            previous_seq: (seq > 1).then_some(seq - 1),
            previous_signature: None,
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jarvis-witness-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn spec(name: &str, sink: WitnessSink) -> WitnessSpec {
        WitnessSpec {
            name: name.into(),
            sink,
        }
    }

    #[test]
    fn a_file_witness_appends_what_it_lacks_and_reads_it_back() {
        let dir = temp("file");
        let w = spec("usb", WitnessSink::File(dir.join("heads.jsonl")));
        assert_eq!(last_head(&w).expect("empty"), None);
        assert_eq!(ship(&w, &[head(1), head(2)]).expect("ship"), 2);
        // Heads it has are not written twice.
        assert_eq!(ship(&w, &[head(1), head(2), head(3)]).expect("ship"), 1);
        assert_eq!(last_head(&w).expect("last").map(|h| h.seq), Some(3));
        // A line cut short by a crash is skipped, and the next shipment
        // starts on a line of its own.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("heads.jsonl"))
            .expect("open");
        f.write_all(br#"{"seq":4,"hash":"#).expect("write");
        assert_eq!(last_head(&w).expect("last").map(|h| h.seq), Some(3));
        assert_eq!(ship(&w, &[head(4)]).expect("ship"), 1);
        let seqs: Vec<i64> = read_heads(&w)
            .expect("read")
            .iter()
            .map(|h| h.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        // Anything else in the file is named.
        std::fs::write(dir.join("heads.jsonl"), "{\"seq\":1}\nnot a head\n").expect("write");
        let e = read_heads(&w).expect_err("garbage").to_string();
        assert!(e.contains("line 1") && e.contains("usb"), "{e}");
        // A missing mount is an error, not a new directory.
        let gone = spec("gone", WitnessSink::File(dir.join("mnt/usb/heads.jsonl")));
        assert!(ship(&gone, &[head(1)]).is_err());
        assert!(!dir.join("mnt").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_git_witness_commits_one_head_at_a_time_and_pushes() {
        let dir = temp("git");
        let remote = dir.join("offsite.git");
        let out = Command::new("git")
            .args(["init", "--bare", "-q"])
            .arg(&remote)
            .status()
            .expect("git");
        assert!(out.success());
        let repo = dir.join("witness.git");
        let w = spec(
            "git",
            WitnessSink::Git {
                repo: repo.clone(),
                branch: WITNESS_BRANCH.into(),
                push: Some(remote.display().to_string()),
            },
        );
        assert_eq!(last_head(&w).expect("made bare"), None);
        assert_eq!(ship(&w, &[head(5), head(10)]).expect("ship"), 2);
        assert_eq!(ship(&w, &[head(10), head(12)]).expect("ship"), 1);
        let count = git(
            &repo,
            &["rev-list", "--count", "refs/heads/jarvis-audit-heads"],
            None,
        )
        .expect("count");
        assert_eq!(count, "3", "a commit per head");
        assert_eq!(last_head(&w).expect("last").map(|h| h.seq), Some(12));
        let seqs: Vec<i64> = read_heads(&w)
            .expect("read")
            .iter()
            .map(|h| h.seq)
            .collect();
        assert_eq!(seqs, [5, 10, 12]);
        // The remote has the branch too, and reads as a witness itself.
        let pushed = resolve(remote.to_str().expect("utf-8"), &[]);
        let seqs: Vec<i64> = read_heads(&pushed)
            .expect("read the remote")
            .iter()
            .map(|h| h.seq)
            .collect();
        assert_eq!(seqs, [5, 10, 12]);
        // A path that is no directory reads as a file; a name, as configured.
        assert!(matches!(
            resolve("/nonexistent/heads.jsonl", &[]).sink,
            WitnessSink::File(_)
        ));
        assert_eq!(resolve("git", std::slice::from_ref(&w)), w);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
