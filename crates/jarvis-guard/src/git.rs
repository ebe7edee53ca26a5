//! Git snapshots, rollbacks and previews on the host.
//!
//! The guard runs as the same user as the agent's commands, so anything in
//! a repository (hooks, filter drivers, an fsmonitor program, a signing
//! program, replace refs) may have been planted by the agent. Every git
//! call therefore goes through [`git_cmd`], which switches off what would
//! make git run a configured program and drops the inherited variables that
//! would point git at another repository, and [`Repo::git`] adds the filter
//! drivers the repository configures to that list.
//!
//! Capturing only reads the working tree and the index: its trees are
//! written from a scratch copy of the index, so the real index is never
//! locked or rewritten and the only trace is new objects. The copy keeps
//! the index's stat data and modification time, so git hashes only what
//! changed (and what it holds racily clean), and the index's own tree is
//! read from its cache tree when git would trust it (see [`index`]).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jarvis_exec::protocol::{Ending, Frame, Outcome, RunRequest};
use jarvis_exec::snapshot::{GIT_REF_PREFIX, PreviewReport, RepoState};

use crate::cmd::{Cmd, Output};
use crate::confine::Grant;
use crate::error::GuardError;
use crate::preview::PreviewContext;
use crate::runner::{self, Sink};

mod index;
mod replay;
#[cfg(test)]
mod timing;

/// A snapshot of a huge tree is slow, not stuck.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Inherited variables that would make git work on another repository,
/// index, object store, ref namespace, configuration or set of programs
/// than the one named.
const FOREIGN_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_EXEC_PATH",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_ATTR_SOURCE",
    "GIT_REPLACE_REF_BASE",
    "GIT_SHALLOW_FILE",
];

/// Configuration that keeps git from running programs from the repository;
/// also given to the command a preview runs.
const NO_HOOKS: &[(&str, &str)] = &[("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")];

/// The rest of what the guard's own git calls switch off.
const PLUMBING: &[(&str, &str)] = &[
    // read-tree would otherwise recurse into submodules, where their own
    // configuration and hooks apply.
    ("submodule.recurse", "false"),
    // commit-tree honours it and would run `gpg.program`.
    ("commit.gpgSign", "false"),
    // log would run `gpg.program` to check signatures.
    ("log.showSignature", "false"),
    ("color.ui", "false"),
    ("core.quotePath", "false"),
];

const SCRATCH_INDEX: &[(&str, &str)] = &[
    // A scratch index in split-index format would leave a new shared index
    // file in the repository.
    ("core.splitIndex", "false"),
    // Nothing reads a scratch index but the guard's next git call, so its
    // checksum is not worth hashing the whole file for on every write
    // (git 2.40 and later; older ones ignore the setting).
    ("index.skipHash", "true"),
];

/// Snapshot commits need no identity from the user's configuration.
const IDENTITY: &[(&str, &str)] = &[
    ("GIT_AUTHOR_NAME", "Jarvis"),
    ("GIT_AUTHOR_EMAIL", "jarvis@localhost"),
    ("GIT_COMMITTER_NAME", "Jarvis"),
    ("GIT_COMMITTER_EMAIL", "jarvis@localhost"),
];

/// The identity a preview clone commits under when the repository has none.
const PREVIEW_IDENTITY: [(&str, &str); 2] = [
    ("user.name", "Jarvis preview"),
    ("user.email", "jarvis@localhost"),
];

/// How many changed paths [`difference`] names.
const LISTED_PATHS: usize = 20;
/// How many new commits a preview's summary names.
const LISTED_COMMITS: usize = 5;

const REFLOG_MESSAGE: &str = "jarvis: back to a snapshot";

/// Captures the repository containing `dir`: HEAD, branch, index tree and
/// working-tree tree (tracked and untracked, not ignored), without touching
/// the working tree or the index. With `keep`, a commit holding all of it
/// is kept under `refs/jarvis/snapshots/<action_id>`.
pub fn capture(dir: &str, action_id: &str, keep: bool) -> Result<RepoState, GuardError> {
    if keep {
        check_action_id(action_id)?;
    }
    let (repo, state, seed) = Repo::current(Path::new(dir))?;
    if keep {
        repo.keep(state, &seed, action_id)
    } else {
        Ok(state)
    }
}

/// Whether two states of one repository are the same (HEAD, branch, index,
/// working tree): [`RepoState::same_as`], the comparison the gateway uses too.
pub fn matches(current: &RepoState, other: &RepoState) -> bool {
    current.same_as(other)
}

/// What differs between two states, in plain words: the gateway's words
/// ([`RepoState::difference`]), with the changed paths of the working tree,
/// which only the host can list.
pub fn difference(from: &RepoState, to: &RepoState) -> String {
    let mut parts = from.difference(to);
    if from.worktree_tree != to.worktree_tree
        && let Ok(paths) = changed_paths(
            Path::new(&from.path),
            &from.worktree_tree,
            &to.worktree_tree,
        )
        && !paths.is_empty()
        && let Some(last) = parts.last_mut()
    {
        // The working tree is the last part of the words.
        *last = format!("{last}: {}", listing(&paths));
    }
    parts.join("; ")
}

/// Puts the repository back to `target` (kept) and verifies it by tree
/// hashes; returns what was done.
pub fn restore(target: &RepoState) -> Result<String, GuardError> {
    check_target(target)?;
    let Some(commit) = target.commit.as_deref() else {
        return Err(GuardError::Repository(format!(
            "the snapshot of {} was not kept: there is nothing to restore from",
            target.path
        )));
    };
    let repo = Repo::open(Path::new(&target.path))?;
    if repo.top != target.path {
        return Err(GuardError::Repository(format!(
            "`{}` is no longer the top level of its repository (git finds `{}`)",
            target.path, repo.top
        )));
    }
    if !repo.has_object(commit)? {
        return Err(GuardError::Repository(format!(
            "snapshot commit {} of {} is gone (pruned?)",
            short(commit),
            target.path
        )));
    }
    put_back(&repo, target)?;
    let (_, now, _) = Repo::current(Path::new(&target.path))?;
    if !matches(&now, target) {
        return Err(GuardError::Repository(format!(
            "{} was put back but does not match the snapshot: {}",
            target.path,
            difference(target, &now)
        )));
    }
    Ok(format!(
        "restored {}, index and working tree; verified by tree hashes (worktree {}, index {})",
        describe_head(target),
        short(&target.worktree_tree),
        short(&target.index_tree)
    ))
}

/// Runs `command` in a private clone of the repository containing `dir`.
///
/// The line that runs there is written anew from the parsed line with
/// every path into the repository pointing into the clone (see
/// [`replay`]); a line with a path that cannot be moved there is refused
/// before anything is cloned or run.
pub fn preview(
    dir: &str,
    command: &str,
    cwd: Option<&str>,
    ctx: &PreviewContext<'_>,
) -> Result<PreviewReport, GuardError> {
    let started = Instant::now();
    let real = Repo::open(Path::new(dir))?;
    if real.top == "/" {
        return Err(GuardError::Repository(
            "cannot preview in a repository whose top level is `/`".into(),
        ));
    }
    let names = real.spellings(dir)?;
    let scratch = Scratch::new(&format!("jarvis-preview-{}", file_name_part(ctx.action_id)))?;
    let clone = scratch.utf8()?;
    let replay = replay::replay(command, cwd, &names, clone)?;
    let before = real.state()?;
    let clone_top = make_clone(&real, &before, clone)?.top;
    replay::check_links(Path::new(clone))?;
    // A directory holding only ignored files was not cloned.
    let _ = std::fs::create_dir_all(&replay.cwd);
    let (outcome, said) = run_command(replay.line, replay.cwd, Path::new(clone), ctx)?;

    let mut report = PreviewReport {
        kind: "git".into(),
        ..PreviewReport::default()
    };
    match Repo::open(Path::new(clone)).and_then(|r| Ok((r.state()?, r))) {
        Ok((after, repo)) => {
            report.summary = summarize(&repo, &before, &after)?;
            let (diff, cut) = truncate(repo.change(&before, &after)?, ctx.cap);
            report.diff = diff;
            report.truncated = cut;
        }
        Err(e) => report.summary.push(format!(
            "the repository could not be read after the command: {e}"
        )),
    }
    report.summary.extend(ending_line(&outcome));
    report.summary.extend(leak_warning(&real, &before));

    let mut output = String::from_utf8_lossy(&said.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&said.stderr));
    let mut clone_names = vec![clone.to_owned(), clone_top];
    clone_names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let (output, cut) = truncate(rewrite(&output, &clone_names, &real.top), ctx.cap);
    report.output = output;
    report.truncated |= cut || outcome.stdout.truncated || outcome.stderr.truncated;
    report.exit_code = outcome.exit_code;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Removes a kept snapshot's ref; returns what was removed.
pub fn drop(state: &RepoState) -> Result<Vec<String>, GuardError> {
    let Some(kept_ref) = &state.kept_ref else {
        return Ok(Vec::new());
    };
    let id = kept_ref.strip_prefix(GIT_REF_PREFIX).unwrap_or_default();
    if check_action_id(id).is_err() {
        return Err(GuardError::Request(format!(
            "refusing to delete `{kept_ref}` in {}: it is not a Jarvis snapshot ref",
            state.path
        )));
    }
    let repo = Repo::open(Path::new(&state.path))?;
    // Deleting a ref that is already gone succeeds.
    repo.run(&["update-ref", "-d", kept_ref])?;
    Ok(vec![format!("{}: {kept_ref}", state.path)])
}

/// `git` in `dir` with the guard's hardening and `config` on top of it.
fn git_cmd(dir: &Path, config: &[(String, String)]) -> Cmd {
    let mut cmd = Cmd::new("git").cwd(dir).timeout(GIT_TIMEOUT);
    for var in FOREIGN_ENV {
        cmd = cmd.env_remove(var);
    }
    // Configuration through the environment rather than `-c`: a filter
    // driver's name may hold `=`, and messages show the git command itself.
    for (k, v) in runner::git_config_env(config) {
        cmd = cmd.env(k, v);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("LC_ALL", "C")
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A repository with a working tree, and what git must switch off in it.
struct Repo {
    /// Its top level, as git reports it.
    top: String,
    /// Its index file.
    index: PathBuf,
    /// Hooks, fsmonitor and every filter driver it configures, switched off.
    config: Vec<(String, String)>,
    /// Bytes in one of its object ids, when git names a format the guard
    /// knows.
    hash_len: Option<usize>,
}

/// Where HEAD is: the commit it names and the branch it is on.
struct Head {
    commit: Option<String>,
    branch: Option<String>,
}

/// The repository's index as one read of it found it, to make scratch
/// copies from: its bytes and modification time, or `None` when the
/// repository has no index yet, which git reads as empty.
struct Seed(Option<(Vec<u8>, SystemTime)>);

impl Repo {
    fn open(dir: &Path) -> Result<Repo, GuardError> {
        Repo::open_at_head(dir, false).map(|(repo, _)| repo)
    }

    /// Opens the repository containing `dir`, with its present state.
    fn current(dir: &Path) -> Result<(Repo, RepoState, Seed), GuardError> {
        let (repo, head) = Repo::open_at_head(dir, true)?;
        let head = match head {
            Some(head) => head,
            None => repo.head()?,
        };
        let (state, seed) = repo.state_at(head)?;
        Ok((repo, state, seed))
    }

    /// Opens the repository containing `dir`; with `read_head`, the same
    /// git process says where HEAD is when HEAD names a commit.
    fn open_at_head(dir: &Path, read_head: bool) -> Result<(Repo, Option<Head>), GuardError> {
        if !dir.is_dir() {
            return Err(GuardError::Repository(format!(
                "`{}` is not a directory",
                dir.display()
            )));
        }
        let mut probe = git_cmd(dir, &[]).args([
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-path",
            "index",
            "--show-object-format",
        ]);
        if read_head {
            // On an unborn branch, or a HEAD that names no commit, this
            // fails after the lines above, and [`Repo::head`] asks again as
            // it always did. A detached HEAD's full name is `HEAD`.
            probe = probe.args(["HEAD^{commit}", "--symbolic-full-name", "HEAD"]);
        }
        // Both ask git, neither needs the other's answer, and from `dir`
        // git finds the same repository and configuration as from its top
        // level; a filter list from outside any repository is dropped with
        // the error below.
        let (out, filters) = std::thread::scope(|s| {
            let filters = s.spawn(|| configured_filters(dir));
            let out = probe.output();
            let filters = filters.join().unwrap_or_else(|_| {
                Err(GuardError::Repository(
                    "listing the filter drivers failed".into(),
                ))
            });
            (out, filters)
        });
        let out = out?;
        // Only a work tree gets as far as printing its object format.
        let printed = out.stdout.iter().filter(|&&b| b == b'\n').count();
        let answered = out.status.success() || (read_head && printed >= 3);
        if !answered {
            return Err(no_work_tree(dir, &out));
        }
        let text = String::from_utf8(out.stdout).map_err(|_| {
            GuardError::Repository(format!(
                "the repository at `{}` has a path that is not UTF-8",
                dir.display()
            ))
        })?;
        let lines: Vec<&str> = text.lines().collect();
        let (Some(top), Some(index), Some(format)) = (lines.first(), lines.get(1), lines.get(2))
        else {
            return Err(GuardError::Repository(format!(
                "`{}` printed too little in {}",
                probe.display(),
                dir.display()
            )));
        };
        let head = match lines[3..] {
            [commit, name] if out.status.success() && is_oid(commit) => Some(Head {
                commit: Some(commit.to_owned()),
                branch: (name != "HEAD").then(|| name.to_owned()),
            }),
            _ => None,
        };
        let mut config = owned(NO_HOOKS);
        config.extend(owned(PLUMBING));
        // Setting every command of a driver to nothing makes git store and
        // write content as it is, and `required=false` keeps an empty
        // driver from being a failure.
        for name in filters? {
            for (var, value) in [
                ("clean", ""),
                ("smudge", ""),
                ("process", ""),
                ("required", "false"),
            ] {
                config.push((format!("filter.{name}.{var}"), value.to_owned()));
            }
        }
        let hash_len = match *format {
            "sha1" => Some(20),
            "sha256" => Some(32),
            _ => None,
        };
        let repo = Repo {
            top: (*top).to_owned(),
            index: PathBuf::from(index),
            config,
            hash_len,
        };
        Ok((repo, head))
    }

    fn git(&self) -> Cmd {
        git_cmd(Path::new(&self.top), &self.config)
    }

    /// git working on `index` instead of the repository's own index.
    fn git_on(&self, index: &Path) -> Cmd {
        let mut config = self.config.clone();
        config.extend(owned(SCRATCH_INDEX));
        git_cmd(Path::new(&self.top), &config).env("GIT_INDEX_FILE", index)
    }

    /// Runs `cmd` to success; failures name the repository.
    fn ok(&self, cmd: Cmd) -> Result<String, GuardError> {
        cmd.ok()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))
    }

    fn run(&self, args: &[&str]) -> Result<String, GuardError> {
        self.ok(self.git().args(args))
    }

    /// Runs `cmd` for an answer git gives by exit status: `None` on exit 1.
    fn probe(&self, cmd: Cmd) -> Result<Option<String>, GuardError> {
        let out = cmd
            .output()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))?;
        match out.status.code() {
            Some(0) => Ok(Some(
                String::from_utf8_lossy(&out.stdout)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            )),
            Some(1) => Ok(None),
            _ => Err(GuardError::Repository(format!(
                "in {}: {}",
                self.top,
                cmd.failure(&out)
            ))),
        }
    }

    fn has_object(&self, oid: &str) -> Result<bool, GuardError> {
        let out = self
            .git()
            .args(["cat-file", "-e", oid])
            .output()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))?;
        Ok(out.status.success())
    }

    /// The state of a repository opened without reading HEAD.
    fn state(&self) -> Result<RepoState, GuardError> {
        Ok(self.state_at(self.head()?)?.0)
    }

    /// Where HEAD is, asked on its own.
    fn head(&self) -> Result<Head, GuardError> {
        let commit =
            self.probe(
                self.git()
                    .args(["rev-parse", "--verify", "-q", "HEAD^{commit}"]),
            )?;
        let branch = self.probe(self.git().args(["symbolic-ref", "-q", "HEAD"]))?;
        Ok(Head { commit, branch })
    }

    /// The state with HEAD at `head`: both trees from one read of the
    /// index, which is returned for [`Repo::keep`].
    fn state_at(&self, head: Head) -> Result<(RepoState, Seed), GuardError> {
        let seed = self.read_index()?;
        let (_scratch, index) = self.scratch_index(&seed)?;
        let index_tree = match self.cached_tree(&seed) {
            Some(tree) => tree,
            None => self.write_tree(&index)?,
        };
        // The copy carries the index's stat data, so only files whose stat
        // data changed since git last wrote the index, or that git holds
        // racily clean, are read and hashed.
        self.stage(&index, "-A")?;
        let worktree_tree = self.write_tree(&index)?;
        let state = RepoState {
            path: self.top.clone(),
            head: head.commit,
            branch: head.branch,
            index_tree,
            worktree_tree,
            commit: None,
            kept_ref: None,
        };
        Ok((state, seed))
    }

    /// The tree `git write-tree` would give for `seed` without building it.
    fn cached_tree(&self, seed: &Seed) -> Option<String> {
        let (bytes, _) = seed.0.as_ref()?;
        index::cached_tree(bytes, self.hash_len?)
    }

    /// Reads the index: its bytes and modification time through one open
    /// file, so a rewrite by git (a new file renamed over it) gives the old
    /// file or the new one whole, each with its own time.
    fn read_index(&self) -> Result<Seed, GuardError> {
        let failed = |e: std::io::Error| {
            GuardError::Repository(format!(
                "cannot read the index {} of {}: {e}",
                self.index.display(),
                self.top
            ))
        };
        let mut file = match File::open(&self.index) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seed(None)),
            Err(e) => return Err(failed(e)),
        };
        let meta = file.metadata().map_err(failed)?;
        if !meta.is_file() {
            // A device or a pipe planted there would never end.
            return Err(GuardError::Repository(format!(
                "the index {} of {} is not a regular file",
                self.index.display(),
                self.top
            )));
        }
        let modified = meta.modified().map_err(failed)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(failed)?;
        Ok(Seed(Some((bytes, modified))))
    }

    /// A copy of `seed` in a private directory (no file when the
    /// repository has no index).
    fn scratch_index(&self, seed: &Seed) -> Result<(Scratch, PathBuf), GuardError> {
        let scratch = Scratch::new("jarvis-index")?;
        let copy = scratch.path.join("index");
        let Some((bytes, modified)) = &seed.0 else {
            return Ok((scratch, copy));
        };
        let failed = |e: std::io::Error| {
            GuardError::Repository(format!(
                "cannot copy the index {} of {}: {e}",
                self.index.display(),
                self.top
            ))
        };
        let mut out = File::create_new(&copy).map_err(failed)?;
        out.write_all(bytes).map_err(failed)?;
        // Git tells racily clean entries (changed within the timestamp
        // granularity of the index's writing) by comparing their mtime with
        // the index file's; the copy keeps the original's so that test stays
        // as strict as it is on the real index.
        out.set_modified(*modified).map_err(failed)?;
        Ok((scratch, copy))
    }

    /// Updates `index` from the working tree: with `-u` tracked files only,
    /// with `-A` untracked ones too (never ignored ones).
    fn stage(&self, index: &Path, which: &str) -> Result<(), GuardError> {
        self.ok(self.git_on(index).args(["add", which]))
            .map(|_| ())
            .map_err(|e| GuardError::Repository(format!("cannot read the working tree: {e}")))
    }

    fn write_tree(&self, index: &Path) -> Result<String, GuardError> {
        self.ok(self.git_on(index).arg("write-tree")).map_err(|e| {
            let unmerged = self
                .ok(self.git_on(index).args(["ls-files", "--unmerged"]))
                .is_ok_and(|s| !s.is_empty());
            if unmerged {
                GuardError::Repository(format!(
                    "the index of {} has unresolved merge conflicts; no snapshot can be taken",
                    self.top
                ))
            } else {
                e
            }
        })
    }

    /// Keeps `state` under the action's ref: a commit of the working tree
    /// whose parents are HEAD and a commit of the index. `seed` is the
    /// index `state` was taken from.
    fn keep(
        &self,
        mut state: RepoState,
        seed: &Seed,
        action_id: &str,
    ) -> Result<RepoState, GuardError> {
        let head_commit = state.head.clone();
        let head: Vec<&str> = head_commit.as_deref().into_iter().collect();
        let title = format!("jarvis snapshot {action_id}");
        let index_title = format!("{title}: index");
        let index_commit = match self.commit_tree(&state.index_tree, &head, &[&index_title]) {
            Ok(commit) => commit,
            // The tree a cache tree names can be missing from the object
            // store; `write-tree` checks that before trusting it and builds
            // the tree again, which taking it from the index skipped.
            Err(_) if self.cached_tree(seed).is_some() => {
                let (_scratch, index) = self.scratch_index(seed)?;
                state.index_tree = self.write_tree(&index)?;
                self.commit_tree(&state.index_tree, &head, &[&index_title])?
            }
            Err(e) => return Err(e),
        };
        let body = format!(
            "branch: {}\nhead: {}",
            state.branch.as_deref().unwrap_or("(detached)"),
            state.head.as_deref().unwrap_or("(none)")
        );
        let mut parents = head.clone();
        parents.push(&index_commit);
        let commit = self.commit_tree(&state.worktree_tree, &parents, &[&title, &body])?;
        let kept_ref = format!("{GIT_REF_PREFIX}{action_id}");
        self.run(&["update-ref", "-m", &title, &kept_ref, &commit])?;
        state.commit = Some(commit);
        state.kept_ref = Some(kept_ref);
        Ok(state)
    }

    fn commit_tree(
        &self,
        tree: &str,
        parents: &[&str],
        paragraphs: &[&str],
    ) -> Result<String, GuardError> {
        let mut cmd = self.git().args(["commit-tree", tree]);
        for p in parents {
            cmd = cmd.args(["-p", p]);
        }
        for m in paragraphs {
            cmd = cmd.args(["-m", m]);
        }
        for (k, v) in IDENTITY {
            cmd = cmd.env(k, v);
        }
        self.ok(cmd)
    }

    fn set_head(&self, target: &RepoState) -> Result<(), GuardError> {
        let m = REFLOG_MESSAGE;
        match (&target.branch, &target.head) {
            (Some(branch), head) => {
                match head {
                    Some(h) => self.run(&["update-ref", "-m", m, branch, h])?,
                    None => self.run(&["update-ref", "-m", m, "-d", branch])?,
                };
                self.run(&["symbolic-ref", "-m", m, "HEAD", branch])?;
            }
            (None, Some(h)) => {
                self.run(&["update-ref", "-m", m, "--no-deref", "HEAD", h])?;
            }
            (None, None) => {
                return Err(GuardError::Repository(format!(
                    "the snapshot of {} has neither a branch nor a HEAD",
                    self.top
                )));
            }
        }
        Ok(())
    }

    /// Makes the working tree hold exactly `tree`, leaving files that
    /// `tree`'s ignore rules ignore.
    fn check_out(&self, tree: &str) -> Result<(), GuardError> {
        let (_scratch, index) = self.scratch_index(&self.read_index()?)?;
        // Tracked files first, which puts `tree`'s `.gitignore` files back;
        // only then is "untracked" decided, by the rules the snapshot was
        // taken under, so a file ignored then is not removed as untracked
        // because the action changed the rules.
        for which in ["-u", "-A"] {
            self.stage(&index, which)?;
            // With the index describing the working tree, every file in it
            // that is not in `tree` is one read-tree removes.
            self.ok(self
                .git_on(&index)
                .args(["read-tree", "-u", "--reset", tree]))
                .map_err(|e| {
                    GuardError::Repository(format!("cannot write the working tree: {e}"))
                })?;
        }
        Ok(())
    }

    fn reset_index(&self, tree: &str) -> Result<(), GuardError> {
        // `--reset` keeps the stat data of unchanged entries, so the refresh
        // does not rehash every file.
        self.run(&["read-tree", "--reset", tree])?;
        let refresh = self.git().args(["update-index", "-q", "--refresh"]);
        let out = refresh
            .output()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))?;
        // Exit 1 only says some entries differ from the working tree.
        match out.status.code() {
            Some(0 | 1) => Ok(()),
            _ => Err(GuardError::Repository(format!(
                "in {}: {}",
                self.top,
                refresh.failure(&out)
            ))),
        }
    }

    /// The ways a command may name the top level: as git reports it, and as
    /// `dir` spells it when `dir` reaches it through a symbolic link.
    fn spellings(&self, dir: &str) -> Result<Vec<String>, GuardError> {
        let prefix =
            self.ok(git_cmd(Path::new(dir), &self.config).args(["rev-parse", "--show-prefix"]))?;
        let dir = dir.trim_end_matches('/');
        let spelled = match prefix.trim_end_matches('/') {
            "" => Some(dir),
            p => dir.strip_suffix(p).and_then(|d| d.strip_suffix('/')),
        };
        let mut names = vec![self.top.clone()];
        if let Some(s) = spelled
            && s.starts_with('/')
            && s.len() > 1
            && s != self.top
        {
            names.push(s.to_owned());
        }
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Ok(names)
    }

    /// `--stat` and the diff of what changed between two states in this
    /// repository: the working tree, or HEAD when only it moved, or the
    /// index when only it changed.
    fn change(&self, before: &RepoState, after: &RepoState) -> Result<String, GuardError> {
        let (from, to) = if before.worktree_tree != after.worktree_tree {
            (before.worktree_tree.clone(), after.worktree_tree.clone())
        } else if before.head != after.head {
            (
                self.tree_of(before.head.as_deref())?,
                self.tree_of(after.head.as_deref())?,
            )
        } else if before.index_tree != after.index_tree {
            (before.index_tree.clone(), after.index_tree.clone())
        } else {
            return Ok(String::new());
        };
        let diff = |stat: bool| {
            self.ok(self
                .git()
                .args(["diff", "--no-ext-diff", "--no-textconv", "--no-color"])
                .args(stat.then_some("--stat"))
                .args([&from, &to]))
        };
        Ok(format!("{}\n\n{}\n", diff(true)?, diff(false)?))
    }

    fn tree_of(&self, commit: Option<&str>) -> Result<String, GuardError> {
        match commit {
            Some(c) => Ok(format!("{c}^{{tree}}")),
            // Git knows the empty tree without it being stored.
            None => self.ok(self
                .git()
                .args(["hash-object", "-t", "tree", "--stdin"])
                .stdin(Vec::new())),
        }
    }

    /// How many commits are reachable from `new` but not from `old`.
    fn count_commits(&self, new: &str, old: Option<&str>) -> Result<usize, GuardError> {
        let count = self.ok(self
            .git()
            .args(["rev-list", "--count"])
            .args(commit_range(new, old)))?;
        Ok(count.trim().parse().unwrap_or(0))
    }

    /// `--oneline` lines of the newest [`LISTED_COMMITS`] of them.
    fn log_commits(&self, new: &str, old: Option<&str>) -> Result<Vec<String>, GuardError> {
        let log = self.ok(self
            .git()
            .args(["log", "--oneline", "--no-decorate", "--no-color", "-n"])
            .arg(LISTED_COMMITS.to_string())
            .args(commit_range(new, old)))?;
        Ok(log.lines().map(str::to_owned).collect())
    }
}

fn commit_range(new: &str, old: Option<&str>) -> Vec<String> {
    let mut range = vec![new.to_owned()];
    range.extend(old.map(|o| format!("^{o}")));
    range
}

/// Why `dir` has no working tree git can work on.
fn no_work_tree(dir: &Path, out: &Output) -> GuardError {
    let in_git_dir = git_cmd(dir, &[])
        .args(["rev-parse", "--git-dir"])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git_dir {
        return GuardError::Repository(format!(
            "`{}` has no working tree (a bare repository, or inside a .git directory)",
            dir.display()
        ));
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let said = said.trim();
    GuardError::NotInRepository {
        dir: dir.to_owned(),
        said: (!said.is_empty() && !said.contains("not a git repository")).then(|| said.to_owned()),
    }
}

/// The names of the filter drivers the configuration defines (all scopes
/// but the system's, includes followed).
fn configured_filters(dir: &Path) -> Result<Vec<String>, GuardError> {
    let cmd = git_cmd(dir, &[]).args(["config", "-z", "--name-only", "--get-regexp", r"^filter\."]);
    let out = cmd.output()?;
    match out.status.code() {
        Some(0) => {}
        Some(1) => return Ok(Vec::new()),
        _ => {
            return Err(GuardError::Repository(format!(
                "in {}: {}",
                dir.display(),
                cmd.failure(&out)
            )));
        }
    }
    let mut names: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|key| {
            let key = std::str::from_utf8(key).ok()?;
            let (name, _var) = key.strip_prefix("filter.")?.rsplit_once('.')?;
            Some(name.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Brings the repository to `target`: HEAD and branch, working tree, index.
/// Every step sets an absolute state, so running it again after a failure
/// halfway finishes the job.
fn put_back(repo: &Repo, target: &RepoState) -> Result<(), GuardError> {
    repo.set_head(target)?;
    // Conditional includes (`includeIf "onbranch:…"`) can bring in filter
    // drivers, so those to switch off are listed again now that HEAD is
    // where it stays.
    let repo = Repo::open(Path::new(&repo.top))?;
    repo.check_out(&target.worktree_tree)?;
    repo.reset_index(&target.index_tree)
}

/// Paths that differ between two trees, as `M path`, `A path`, `D path`.
fn changed_paths(dir: &Path, from: &str, to: &str) -> Result<Vec<String>, GuardError> {
    let out = git_cmd(dir, &[])
        .args(["diff-tree", "-r", "-z", "--name-status", from, to])
        .ok()?;
    let mut fields = out.split('\0').filter(|f| !f.is_empty());
    let mut paths = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        paths.push(format!("{status} {path}"));
    }
    Ok(paths)
}

fn listing(paths: &[String]) -> String {
    let mut text = paths
        .iter()
        .take(LISTED_PATHS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > LISTED_PATHS {
        text.push_str(&format!(", … and {} more", paths.len() - LISTED_PATHS));
    }
    text
}

/// Makes an empty directory `into` a clone of `real` in the state `state`:
/// its objects are `real`'s (shared, read-only to the clone), its branches
/// and tags copies, and it has no remote through which a command could
/// reach `real`.
fn make_clone(real: &Repo, state: &RepoState, into: &str) -> Result<Repo, GuardError> {
    real.ok(real.git().args([
        "clone",
        "--shared",
        "--no-checkout",
        "--quiet",
        // No hooks or other files from a template directory.
        "--template=",
        "--",
        &real.top,
        into,
    ]))?;
    let clone = Repo::open(Path::new(into))?;
    clone.run(&["remote", "remove", "origin"])?;
    // Refs are copied rather than fetched: a fetch would run upload-pack in
    // the real repository, and the objects are already shared.
    let refs = real.run(&[
        "for-each-ref",
        "--format=update %(refname) %(objectname)",
        "refs/heads",
        "refs/tags",
        "refs/remotes",
    ])?;
    // update-ref takes an empty line for a broken command.
    let updates: String = refs.lines().map(|l| format!("{l}\n")).collect();
    clone.ok(clone
        .git()
        .args(["update-ref", "--stdin"])
        .stdin(updates.into_bytes()))?;
    for (key, fallback) in PREVIEW_IDENTITY {
        let value = real.probe(real.git().args(["config", key]))?;
        clone.run(&["config", key, value.as_deref().unwrap_or(fallback)])?;
    }
    put_back(&clone, state)?;
    Ok(clone)
}

/// Output frames of a preview's command, kept in memory.
#[derive(Default)]
struct Said {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Sink for Said {
    fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        match frame {
            Frame::Stdout(bytes) => self.stdout.extend_from_slice(bytes),
            Frame::Stderr(bytes) => self.stderr.extend_from_slice(bytes),
            _ => {}
        }
        Ok(())
    }
}

/// Runs a preview's `command` in the clone under a kernel ruleset that
/// lets it write only inside `clone`, use no network and execute only what
/// the host policy's analysis of the line names.
fn run_command(
    command: String,
    cwd: String,
    clone: &Path,
    ctx: &PreviewContext<'_>,
) -> Result<(Outcome, Said), GuardError> {
    let confinement = ctx
        .policy
        .confinement(&command, Some(&cwd))
        .map_err(|why| GuardError::Policy(format!("the preview command cannot be read: {why}")))?;
    let grant = Grant::preview(&confinement, clone);
    let req = RunRequest {
        action_id: ctx.action_id.to_owned(),
        command,
        cwd: Some(cwd),
        timeout_ms: u64::try_from(ctx.timeout.as_millis()).unwrap_or(u64::MAX),
        output_cap: ctx.cap,
        approved: false,
        scope: Vec::new(),
    };
    let env = owned(&[("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_TERMINAL_PROMPT", "0")]);
    let mut said = Said::default();
    let outcome = runner::run(
        &req,
        &grant,
        ctx.host,
        &env,
        &mut |_| Ok(()),
        ctx.stop,
        &mut said,
    )
    .map_err(|r| {
        GuardError::Policy(format!(
            "the preview command was refused: {}",
            r.reasons.join("; ")
        ))
    })?;
    Ok((outcome, said))
}

/// The preview's summary lines for a change from `before` to `after`.
fn summarize(
    clone: &Repo,
    before: &RepoState,
    after: &RepoState,
) -> Result<Vec<String>, GuardError> {
    let mut lines = Vec::new();
    if before.head != after.head {
        lines.push(format!(
            "HEAD {} → {}",
            short_commit(before.head.as_deref()),
            short_commit(after.head.as_deref())
        ));
        if let Some(new) = after.head.as_deref() {
            let log = clone.log_commits(new, before.head.as_deref())?;
            lines.extend(log.into_iter().map(|l| format!("  {l}")));
            let count = clone.count_commits(new, before.head.as_deref())?;
            if count > LISTED_COMMITS {
                lines.push(format!("  … and {} more", count - LISTED_COMMITS));
            }
        }
        if let Some(old) = before.head.as_deref() {
            let left = clone.count_commits(old, after.head.as_deref())?;
            if left > 0 {
                lines.push(format!("  {} no longer on HEAD", plural(left, "commit")));
            }
        }
    }
    if before.branch != after.branch {
        lines.push(format!(
            "branch {} → {}",
            branch_name(before.branch.as_deref()),
            branch_name(after.branch.as_deref())
        ));
    }
    if before.index_tree != after.index_tree {
        lines.push("index changed".into());
    }
    if before.worktree_tree != after.worktree_tree {
        let n = changed_paths(
            Path::new(&clone.top),
            &before.worktree_tree,
            &after.worktree_tree,
        )
        .map_err(|e| GuardError::Repository(format!("in {}: {e}", clone.top)))?
        .len();
        lines.push(format!("{} changed in the working tree", plural(n, "file")));
    }
    if lines.is_empty() {
        lines.push("no change to the repository".into());
    }
    Ok(lines)
}

fn ending_line(outcome: &Outcome) -> Option<String> {
    match outcome.ending {
        Ending::Exited => None,
        Ending::TimedOut => Some("the command ran out of time and was killed".into()),
        Ending::Signalled => Some(match outcome.signal {
            Some(s) => format!("the command was killed by signal {s}"),
            None => "the command was killed by a signal".into(),
        }),
    }
}

/// A warning when the real repository changed while the preview ran: the
/// command reached it some way its words did not show, or someone else
/// worked on it meanwhile.
fn leak_warning(real: &Repo, before: &RepoState) -> Option<String> {
    // Opened again: a command that reached it may have configured filters.
    match Repo::open(Path::new(&real.top)).and_then(|r| r.state()) {
        Ok(now) if matches(before, &now) => None,
        Ok(now) => Some(format!(
            "warning: the real repository changed while the preview ran: {}",
            difference(before, &now)
        )),
        Err(e) => Some(format!(
            "warning: the real repository could not be read after the preview: {e}"
        )),
    }
}

/// `text` with every occurrence of one of `names` (longest first) replaced
/// by `to`, in one pass so a replacement is never rewritten again. Only for
/// output shown to people (the clone's paths named as the repository's):
/// what runs is written from parsed words, never by replacing text.
fn rewrite(text: &str, names: &[String], to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match names
            .iter()
            .find(|n| !n.is_empty() && rest.starts_with(n.as_str()))
        {
            Some(name) => {
                out.push_str(to);
                rest = &rest[name.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `text` cut to at most `cap` bytes on a character boundary, and whether
/// it was cut.
fn truncate(mut text: String, cap: u64) -> (String, bool) {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if text.len() <= cap {
        return (text, false);
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// An action id names a ref and a directory: UUID-like, hex digits and
/// dashes only.
fn check_action_id(id: &str) -> Result<(), GuardError> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_hexdigit())
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(GuardError::Request(format!(
            "action id `{id}` cannot name a snapshot: only hex digits and dashes are allowed"
        )))
    }
}

/// A restore target comes from the gateway; everything in it that reaches
/// git's command line must be what a capture produces, never an option.
fn check_target(t: &RepoState) -> Result<(), GuardError> {
    if !t.path.starts_with('/') {
        return Err(GuardError::Request(format!(
            "snapshot path `{}` is not absolute",
            t.path
        )));
    }
    let oids = [
        Some(&t.index_tree),
        Some(&t.worktree_tree),
        t.head.as_ref(),
        t.commit.as_ref(),
    ];
    if let Some(bad) = oids.into_iter().flatten().find(|o| !is_oid(o)) {
        return Err(GuardError::Request(format!(
            "the snapshot of {} names `{bad}`, which is not an object id",
            t.path
        )));
    }
    if let Some(b) = &t.branch
        && !b.starts_with("refs/")
    {
        return Err(GuardError::Request(format!(
            "the snapshot of {} names branch `{b}`, which is not a ref",
            t.path
        )));
    }
    Ok(())
}

fn is_oid(s: &str) -> bool {
    matches!(s.len(), 40 | 64)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn short(oid: &str) -> &str {
    oid.get(..7).unwrap_or(oid)
}

fn short_commit(oid: Option<&str>) -> &str {
    oid.map_or("(no commit)", short)
}

fn branch_name(branch: Option<&str>) -> &str {
    branch.map_or("detached HEAD", |b| {
        b.strip_prefix("refs/heads/").unwrap_or(b)
    })
}

fn describe_head(t: &RepoState) -> String {
    match (t.branch.as_deref(), t.head.as_deref()) {
        (Some(b), Some(h)) => format!("HEAD {} on {}", short(h), branch_name(Some(b))),
        (Some(b), None) => format!("unborn branch {}", branch_name(Some(b))),
        (None, h) => format!("detached HEAD {}", short_commit(h)),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `id` reduced to what is safe in a file name.
fn file_name_part(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect()
}

/// A private directory under the system temp dir, removed with all it
/// holds when dropped, errors included.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(prefix: &str) -> Result<Scratch, GuardError> {
        let base = std::env::temp_dir();
        let mut last = String::new();
        for _ in 0..8 {
            let path = base.join(format!("{prefix}-{}", random_suffix()));
            // `create` fails on anything already there, a planted symbolic
            // link included.
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Scratch { path }),
                Err(e) => last = format!("cannot create {}: {e}", path.display()),
            }
        }
        Err(GuardError::Host(last))
    }

    fn utf8(&self) -> Result<&str, GuardError> {
        self.path.to_str().ok_or_else(|| {
            GuardError::Host(format!(
                "temporary directory {} is not UTF-8",
                self.path.display()
            ))
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.path).is_err() {
            // A command in a preview may have taken away its own write
            // permission on directories.
            allow_removal(&self.path);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn allow_removal(dir: &Path) {
    let is_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            allow_removal(&entry.path());
        }
    }
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 8];
    let random = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // Unpredictability only guards against squatting on the name;
        // `create` is what keeps the directory private.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = (u64::from(nanos) ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    use tempfile::TempDir;

    use super::*;
    use crate::runner::Limits;

    const ID: &str = "0191e3c4-7a2b-7c3d-8e4f-5a6b7c8d9e0f";
    /// Set in the test process a preview test runs in (see [`isolated`]).
    const CHILD: &str = "JARVIS_GIT_TEST_CHILD";

    /// Runs a shell script in `dir` as a user would: plain git, hooks,
    /// filters and all. Shared by the tests and the timing of `git/`.
    pub(super) fn sh(dir: &Path, script: &str) -> String {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "`{script}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// A repository on `main` with three commits, a branch `other` whose
    /// `b.txt` conflicts with main's, an untracked and an ignored file.
    fn fixture() -> (TempDir, String) {
        let tmp = TempDir::new().expect("temp dir");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).expect("repo dir");
        sh(
            &dir,
            "git init -q -b main \
             && printf 'alpha\\n' > a.txt && printf 'bravo\\n' > b.txt \
             && mkdir sub && printf 'charlie\\n' > sub/c.txt && printf '*.log\\n' > .gitignore \
             && git add -A && git commit -qm one \
             && printf 'alpha 2\\n' >> a.txt && git commit -qam two \
             && git checkout -qb other && printf 'bravo other\\n' > b.txt && printf 'o\\n' > o.txt \
             && git add -A && git commit -qm other && git checkout -q main \
             && printf 'bravo main\\n' > b.txt && git commit -qam three \
             && printf 'untracked\\n' > untracked.txt && printf 'ignored\\n' > debug.log",
        );
        let dir = std::fs::canonicalize(&dir).expect("canonical path");
        (tmp, dir.to_string_lossy().into_owned())
    }

    /// Every file under `dir` but `.git`, with its content.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                if path.is_dir() {
                    walk(root, &path, into);
                } else {
                    let name = path.strip_prefix(root).unwrap_or(&path);
                    into.insert(
                        name.to_string_lossy().into_owned(),
                        std::fs::read(&path).expect("read file"),
                    );
                }
            }
        }
        let mut all = BTreeMap::new();
        walk(dir, dir, &mut all);
        all
    }

    /// Everything of a repository a snapshot or preview must not change:
    /// files, the index file byte for byte, refs, HEAD.
    fn untouched(dir: &str) -> (BTreeMap<String, Vec<u8>>, Vec<u8>, String) {
        let dir = Path::new(dir);
        let index = std::fs::read(dir.join(".git/index")).expect("index");
        let refs = sh(dir, "git show-ref; cat .git/HEAD");
        (files(dir), index, refs)
    }

    fn current(dir: &str) -> RepoState {
        capture(dir, "", false).expect("capture")
    }

    fn preview_context<'a>(
        action_id: &'a str,
        limits: &'a Limits,
        stop: &'a Arc<AtomicBool>,
        cap: u64,
    ) -> PreviewContext<'a> {
        // Tests run a handful of previews; leaking their host and policy
        // keeps the context's borrows simple. The kernel wall needs the
        // guard's own binary (it re-executes itself), which a unit test is
        // not: crates/jarvis-guard/tests/ and tests/ check it through the
        // real binary.
        let grants: &'static crate::confine::HostGrants = Box::leak(Box::default());
        let host = Box::leak(Box::new(crate::runner::Host {
            limits,
            kernel: crate::confine::KernelMode::Off,
            grants,
        }));
        let policy = Box::leak(Box::new(
            jarvis_policy::Policy::shipped().expect("shipped policy"),
        ));
        PreviewContext {
            action_id,
            host,
            policy,
            stop,
            timeout: Duration::from_secs(30),
            cap,
        }
    }

    fn leftover_clones(action_id: &str) -> Vec<PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .expect("temp dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(&format!("jarvis-preview-{action_id}-"))
                })
            })
            .collect()
    }

    /// Runs the ignored test `name` alone in a test process of its own,
    /// with `env`: the runner, like the guard it serves, kills every process
    /// below it and sets process-wide limits, which would hit the git
    /// processes of tests running beside it.
    fn isolated(name: &str, env: &[(&str, &Path)]) {
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = Command::new(exe);
        cmd.args([
            &format!("git::tests::{name}"),
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD, "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("child test runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }

    fn in_child() -> bool {
        std::env::var_os(CHILD).is_some()
    }

    #[test]
    fn capture_leaves_the_working_tree_and_index_as_they_were() {
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        sh(
            d,
            "printf 'staged\\n' >> a.txt && git add a.txt && printf 'unstaged\\n' >> a.txt",
        );
        let before = untouched(&dir);
        let state = capture(&format!("{dir}/sub"), ID, true).expect("capture");
        let (files_after, index_after, refs_after) = untouched(&dir);
        assert_eq!(files_after, before.0);
        assert_eq!(index_after, before.1, ".git/index changed");
        let new_refs: Vec<&str> = refs_after
            .lines()
            .filter(|l| !before.2.contains(l))
            .collect();
        let commit = state.commit.clone().expect("kept commit");
        assert_eq!(new_refs, [format!("{commit} {GIT_REF_PREFIX}{ID}")]);

        assert_eq!(state.path, dir);
        assert_eq!(
            state.head.as_deref(),
            Some(sh(d, "git rev-parse HEAD").as_str())
        );
        assert_eq!(state.branch.as_deref(), Some("refs/heads/main"));
        assert_eq!(state.index_tree, sh(d, "git write-tree"));
        let staged = sh(d, &format!("git show {}:a.txt", state.index_tree));
        assert!(staged.ends_with("staged"), "{staged}");
        let listed = sh(
            d,
            &format!("git ls-tree -r --name-only {}", state.worktree_tree),
        );
        assert!(
            listed.contains("untracked.txt") && !listed.contains("debug.log"),
            "{listed}"
        );
        let worktree = sh(d, &format!("git show {}:a.txt", state.worktree_tree));
        assert!(worktree.ends_with("staged\nunstaged"), "{worktree}");

        assert_eq!(
            state.kept_ref.as_deref(),
            Some(format!("{GIT_REF_PREFIX}{ID}").as_str())
        );
        assert_eq!(
            sh(d, &format!("git rev-parse {GIT_REF_PREFIX}{ID}")),
            commit
        );
        assert_eq!(
            sh(d, &format!("git rev-parse {commit}^{{tree}}")),
            state.worktree_tree
        );
        assert_eq!(
            sh(d, &format!("git rev-parse {commit}^1")),
            state.head.clone().unwrap_or_default()
        );
        assert_eq!(
            sh(d, &format!("git rev-parse {commit}^2^{{tree}}")),
            state.index_tree
        );
        let message = sh(d, &format!("git log -1 --format=%an%n%B {commit}"));
        assert!(
            message.starts_with(&format!("Jarvis\njarvis snapshot {ID}")),
            "{message}"
        );
        assert!(message.contains("branch: refs/heads/main"), "{message}");
    }

    #[test]
    fn capture_without_keep_makes_no_ref() {
        let (_tmp, dir) = fixture();
        let state = capture(&dir, "not an id", false).expect("capture");
        assert_eq!((state.commit, state.kept_ref), (None, None));
        assert_eq!(sh(Path::new(&dir), "git for-each-ref refs/jarvis"), "");
    }

    #[test]
    fn capture_refuses_what_it_cannot_capture() {
        let tmp = TempDir::new().expect("temp dir");
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).expect("dir");
        let plain = plain.to_string_lossy().into_owned();
        let err = capture(&plain, ID, true)
            .expect_err("not a repository")
            .to_string();
        assert_eq!(err, format!("`{plain}` is not inside a git repository"));

        sh(tmp.path(), "git init -q --bare bare.git");
        let err = capture(&format!("{}/bare.git", tmp.path().display()), ID, true)
            .expect_err("bare repository")
            .to_string();
        assert!(err.contains("has no working tree"), "{err}");

        let err = capture(&format!("{plain}/missing"), ID, false)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");

        let (_tmp, dir) = fixture();
        for bad in ["", "../../heads/main", "-x", "abc def"] {
            let err = capture(&dir, bad, true).expect_err("bad id").to_string();
            assert!(err.contains("cannot name a snapshot"), "{err}");
        }
    }

    #[test]
    fn capture_refuses_an_index_with_conflicts() {
        let (_tmp, dir) = fixture();
        sh(
            Path::new(&dir),
            "git merge -q other >/dev/null 2>&1 || true",
        );
        let err = capture(&dir, ID, true).expect_err("conflicts").to_string();
        assert_eq!(
            err,
            format!("the index of {dir} has unresolved merge conflicts; no snapshot can be taken")
        );
    }

    /// The trees plain git makes from a copy of the index: `write-tree`,
    /// then `add -A` and `write-tree` again.
    fn trees_by_plain_git(dir: &Path) -> (String, String) {
        let out = sh(
            dir,
            "t=$(mktemp -d) && { [ ! -e .git/index ] || cp -p .git/index $t/index; } \
             && export GIT_INDEX_FILE=$t/index GIT_OPTIONAL_LOCKS=0 \
             && git write-tree && git add -A && git write-tree; s=$?; rm -rf $t; exit $s",
        );
        let (index, worktree) = out.split_once('\n').expect("two trees");
        (index.to_owned(), worktree.to_owned())
    }

    fn mtime(path: &Path) -> SystemTime {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    fn show(dir: &Path, tree: &str, path: &str) -> String {
        sh(dir, &format!("git show {tree}:{path}"))
    }

    /// A file rewritten with the same size, inode and mtime (ctime not
    /// trusted) looks unchanged to git's stat check; only its racy-git
    /// check, an entry no older than the index file, makes git read it.
    /// `index_age` is how much older than that entry the index file is
    /// made to look.
    fn same_stat_rewrite(index_age: i64) -> (TempDir, String) {
        let (tmp, dir) = fixture();
        let t = 1_700_000_000i64;
        sh(
            Path::new(&dir),
            &format!(
                "git config core.trustctime false \
                 && touch -d @{t} a.txt && git update-index -q --refresh \
                 && printf 'ALPHA\\nALPHA 2\\n' > a.txt && touch -d @{t} a.txt \
                 && touch -d @{} .git/index",
                t + index_age
            ),
        );
        (tmp, dir)
    }

    #[test]
    fn capture_reads_a_racily_clean_file_that_kept_its_size_and_mtime() {
        // The index written in the very second of the entry's mtime.
        let (_tmp, dir) = same_stat_rewrite(0);
        let d = Path::new(&dir);
        let before = untouched(&dir);
        let index_mtime = mtime(&d.join(".git/index"));
        let state = capture(&dir, ID, true).expect("capture");
        assert_eq!(show(d, &state.worktree_tree, "a.txt"), "ALPHA\nALPHA 2");
        assert_eq!(show(d, &state.index_tree, "a.txt"), "alpha\nalpha 2");
        let after = untouched(&dir);
        assert!(after.0 == before.0, "files changed");
        assert!(after.1 == before.1, ".git/index changed");
        assert_eq!(mtime(&d.join(".git/index")), index_mtime);
    }

    #[test]
    fn capture_trusts_the_stat_data_git_trusts() {
        // The same rewrite with the index written ten seconds later: git
        // trusts the unchanged stat data and does not read the file, which
        // shows the copied index brought its stat cache along. Git's own
        // view agrees.
        let (_tmp, dir) = same_stat_rewrite(10);
        let d = Path::new(&dir);
        sh(d, "GIT_OPTIONAL_LOCKS=0 git diff-files --quiet");
        let state = capture(&dir, "", false).expect("capture");
        assert_eq!(show(d, &state.worktree_tree, "a.txt"), "alpha\nalpha 2");
        assert_eq!(
            (state.index_tree.clone(), state.worktree_tree.clone()),
            trees_by_plain_git(d)
        );
    }

    #[test]
    fn capture_without_an_index_takes_every_file_not_ignored() {
        let tmp = TempDir::new().expect("temp dir");
        sh(
            tmp.path(),
            "git init -q -b main r && cd r && printf 'a\\n' > a.txt && mkdir s \
             && printf 'b\\n' > s/b.txt && printf '*.log\\n' > .gitignore && printf 'x\\n' > x.log",
        );
        let dir = std::fs::canonicalize(tmp.path().join("r")).expect("path");
        let state = capture(&dir.to_string_lossy(), ID, true).expect("capture");
        assert!(!dir.join(".git/index").exists(), "an index was written");
        assert_eq!(
            state.index_tree,
            sh(&dir, "git hash-object -t tree /dev/null")
        );
        let listed = sh(
            &dir,
            &format!("git ls-tree -r --name-only {}", state.worktree_tree),
        );
        assert_eq!(listed, ".gitignore\na.txt\ns/b.txt");
        assert_eq!(
            (state.head, state.branch.as_deref()),
            (None, Some("refs/heads/main"))
        );
        assert_eq!(
            (state.index_tree, state.worktree_tree),
            trees_by_plain_git(&dir)
        );
    }

    #[test]
    fn capture_reads_a_locked_index_as_last_written() {
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        sh(
            d,
            "printf 'staged\\n' >> a.txt && git add a.txt && printf 'more\\n' >> b.txt",
        );
        let expected = trees_by_plain_git(d);
        // Another git command in the middle of rewriting the index.
        std::fs::write(d.join(".git/index.lock"), b"half-written").expect("lock");
        let before = untouched(&dir);
        let state = capture(&dir, ID, true).expect("capture");
        assert_eq!((state.index_tree, state.worktree_tree), expected);
        assert!(untouched(&dir).1 == before.1, ".git/index changed");
        assert_eq!(
            std::fs::read(d.join(".git/index.lock")).expect("lock"),
            b"half-written"
        );
    }

    #[test]
    fn capture_keeps_untracked_and_ignored_files_as_git_add_does() {
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        sh(
            d,
            "printf 'build/\\n' >> .gitignore && mkdir -p build/out new/deep empty \
             && printf 'o\\n' > build/out/o.txt && printf 'n\\n' > new/deep/n.txt \
             && printf 'kept\\n' > kept.log && git add -f kept.log && printf 'more\\n' >> kept.log \
             && printf 'x\\n' > sub/other.log && rm b.txt",
        );
        let state = capture(&dir, "", false).expect("capture");
        let listed = sh(
            d,
            &format!("git ls-tree -r --name-only {}", state.worktree_tree),
        );
        assert_eq!(
            listed,
            ".gitignore\na.txt\nkept.log\nnew/deep/n.txt\nsub/c.txt\nuntracked.txt"
        );
        assert_eq!(show(d, &state.worktree_tree, "kept.log"), "kept\nmore");
        assert_eq!(
            (state.index_tree, state.worktree_tree),
            trees_by_plain_git(d)
        );
    }

    #[test]
    fn capture_reads_head_as_git_names_it() {
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        let git_says = || {
            let commit = sh(d, "git rev-parse --verify -q 'HEAD^{commit}' || true");
            let branch = sh(d, "git symbolic-ref -q HEAD || true");
            (
                (!commit.is_empty()).then_some(commit),
                (!branch.is_empty()).then_some(branch),
            )
        };
        for (case, script) in [
            ("on a branch", "true"),
            ("detached", "git checkout -q --detach"),
            (
                "through a symbolic ref",
                "git checkout -q main && git symbolic-ref refs/heads/alias refs/heads/main \
                 && git symbolic-ref HEAD refs/heads/alias",
            ),
            (
                "on an unborn branch",
                "git symbolic-ref HEAD refs/heads/main && git checkout -q --orphan fresh",
            ),
        ] {
            sh(d, script);
            let state = capture(&dir, ID, true).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(
                (state.head.clone(), state.branch.clone()),
                git_says(),
                "{case}"
            );
            assert_eq!(
                (state.index_tree, state.worktree_tree),
                trees_by_plain_git(d),
                "{case}"
            );
            sh(d, &format!("git update-ref -d {GIT_REF_PREFIX}{ID}"));
        }
    }

    #[test]
    fn a_kept_snapshot_writes_the_index_tree_when_its_object_is_gone() {
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        let tree = sh(d, "git rev-parse 'HEAD^{tree}'");
        sh(d, &format!("rm .git/objects/{}/{}", &tree[..2], &tree[2..]));
        let state = capture(&dir, "", false).expect("fingerprint");
        assert_eq!(state.index_tree, tree);
        let state = capture(&dir, ID, true).expect("kept snapshot");
        assert_eq!(state.index_tree, tree);
        sh(d, &format!("git cat-file -e {tree}"));
        let commit = state.commit.expect("kept commit");
        assert_eq!(sh(d, &format!("git rev-parse {commit}^2^{{tree}}")), tree);
    }

    #[test]
    fn restore_undoes_each_kind_of_change() {
        let changes = [
            (
                "a new commit",
                "printf 'more\\n' >> a.txt && git commit -qam more",
            ),
            ("an edit", "printf 'edit\\n' >> b.txt"),
            (
                "a staged edit",
                "printf 'staged\\n' >> b.txt && git add b.txt",
            ),
            ("a hard reset", "git reset -q --hard HEAD~1"),
            ("deleting an untracked file", "rm untracked.txt"),
            (
                "new untracked files",
                "printf 'n\\n' > new.txt && mkdir -p d/e && printf 'f\\n' > d/e/f.txt",
            ),
            ("checking out another branch", "git checkout -q other"),
            ("detaching HEAD", "git checkout -q --detach HEAD~2"),
            (
                "a merge with conflicts",
                "git merge -q other >/dev/null 2>&1 || true",
            ),
            ("removing a tracked file", "git rm -q sub/c.txt"),
        ];
        for (what, script) in changes {
            let (_tmp, dir) = fixture();
            let snap = capture(&dir, ID, true).expect("capture");
            let before = files(Path::new(&dir));
            sh(Path::new(&dir), script);
            let changed = capture(&dir, "", false).map_or(true, |now| !matches(&now, &snap));
            assert!(changed, "{what} changed nothing");

            let detail = restore(&snap).unwrap_or_else(|e| panic!("after {what}: {e}"));
            assert!(detail.starts_with("restored HEAD"), "{detail}");
            assert!(matches(&current(&dir), &snap), "after {what}");
            assert_eq!(files(Path::new(&dir)), before, "after {what}");
            assert!(
                !Path::new(&dir).join("d").exists(),
                "after {what}: d/ is left"
            );
        }
    }

    #[test]
    fn restore_leaves_files_ignored_in_the_snapshot_even_when_no_longer_ignored() {
        let (_tmp, dir) = fixture();
        let snap = capture(&dir, ID, true).expect("capture");
        let before = files(Path::new(&dir));
        sh(
            Path::new(&dir),
            "printf '' > .gitignore && printf 'later\\n' > later.log",
        );
        restore(&snap).expect("restore");
        let mut after = files(Path::new(&dir));
        let later = after.remove("later.log");
        assert_eq!(after, before);
        // Created after the snapshot, and ignored only by the rules put back.
        assert_eq!(later, Some(b"later\n".to_vec()));
    }

    #[test]
    fn restore_in_a_linked_worktree() {
        let (tmp, dir) = fixture();
        sh(Path::new(&dir), "git worktree add -q ../wt other");
        let wt = std::fs::canonicalize(tmp.path().join("wt")).expect("worktree");
        let wt_dir = wt.to_string_lossy().into_owned();
        let main_before = untouched(&dir);
        let snap = capture(&wt_dir, ID, true).expect("capture");
        let before = files(&wt);
        sh(
            &wt,
            "printf 'w\\n' >> o.txt && git add o.txt && git commit -qm wt && printf 'n\\n' > n.txt",
        );
        restore(&snap).expect("restore");
        assert!(matches(&current(&wt_dir), &snap));
        assert_eq!(files(&wt), before);
        // The main working tree shares the snapshot ref, nothing else.
        let (main_files, main_index, _) = untouched(&dir);
        assert_eq!((main_files, main_index), (main_before.0, main_before.1));
    }

    #[test]
    fn restore_twice_is_harmless() {
        let (_tmp, dir) = fixture();
        let snap = capture(&dir, ID, true).expect("capture");
        let before = files(Path::new(&dir));
        sh(
            Path::new(&dir),
            "git checkout -q other && printf 'x\\n' > x.txt",
        );
        restore(&snap).expect("first restore");
        let detail = restore(&snap).expect("second restore");
        assert!(detail.contains("on main"), "{detail}");
        assert!(matches(&current(&dir), &snap));
        assert_eq!(files(Path::new(&dir)), before);
    }

    #[test]
    fn restore_brings_back_a_repository_with_no_commits() {
        let tmp = TempDir::new().expect("temp dir");
        sh(
            tmp.path(),
            "git init -q -b main r && printf 'a\\n' > r/a.txt",
        );
        let dir = std::fs::canonicalize(tmp.path().join("r")).expect("path");
        let dir = dir.to_string_lossy().into_owned();
        let snap = capture(&dir, ID, true).expect("capture");
        assert_eq!(snap.head, None);
        assert_eq!(snap.branch.as_deref(), Some("refs/heads/main"));
        sh(
            Path::new(&dir),
            "git add -A && git commit -qm first && printf 'b\\n' > b.txt",
        );

        let detail = restore(&snap).expect("restore");
        assert!(
            detail.starts_with("restored unborn branch main"),
            "{detail}"
        );
        assert_eq!(
            sh(
                Path::new(&dir),
                "git rev-parse -q --verify HEAD || echo none"
            ),
            "none"
        );
        assert_eq!(sh(Path::new(&dir), "git status --porcelain"), "?? a.txt");
    }

    #[test]
    fn restore_fails_clearly_when_the_snapshot_is_gone() {
        let (_tmp, dir) = fixture();
        let snap = capture(&dir, ID, true).expect("capture");
        sh(
            Path::new(&dir),
            &format!(
                "git update-ref -d {GIT_REF_PREFIX}{ID} && git reflog expire --expire-unreachable=now --all \
                 && git gc -q --prune=now"
            ),
        );
        let err = restore(&snap).expect_err("gone").to_string();
        let commit = snap.commit.clone().unwrap_or_default();
        assert_eq!(
            err,
            format!(
                "snapshot commit {} of {dir} is gone (pruned?)",
                &commit[..7]
            )
        );

        let err = restore(&current(&dir)).expect_err("not kept").to_string();
        assert!(err.contains("was not kept"), "{err}");

        let forged = RepoState {
            head: Some("--output=/tmp/x".into()),
            ..snap.clone()
        };
        let err = restore(&forged).expect_err("forged").to_string();
        assert!(err.contains("not an object id"), "{err}");
    }

    #[test]
    fn drop_removes_only_the_snapshot_ref() {
        let (_tmp, dir) = fixture();
        let snap = capture(&dir, ID, true).expect("capture");
        let removed = super::drop(&snap).expect("drop");
        assert_eq!(removed, [format!("{dir}: {GIT_REF_PREFIX}{ID}")]);
        assert_eq!(sh(Path::new(&dir), "git for-each-ref refs/jarvis"), "");
        super::drop(&snap).expect("dropping again is fine");

        let branch = RepoState {
            kept_ref: Some("refs/heads/main".into()),
            ..snap
        };
        let err = super::drop(&branch)
            .expect_err("not a snapshot ref")
            .to_string();
        assert!(
            err.starts_with("refusing to delete `refs/heads/main`"),
            "{err}"
        );
        assert_ne!(
            sh(Path::new(&dir), "git rev-parse -q --verify refs/heads/main"),
            ""
        );
    }

    #[test]
    fn difference_says_what_changed() {
        let (_tmp, dir) = fixture();
        let from = current(&dir);
        assert_eq!(difference(&from, &from), "");
        sh(
            Path::new(&dir),
            "git checkout -q other && printf 'e\\n' >> a.txt && rm o.txt && printf 'n\\n' > new.txt \
             && git add a.txt",
        );
        let to = current(&dir);
        let said = difference(&from, &to);
        let head = |s: &RepoState| s.head.clone().unwrap_or_default()[..7].to_owned();
        assert!(
            said.starts_with(&format!(
                "HEAD moved from {} to {}; ",
                head(&from),
                head(&to)
            )),
            "{said}"
        );
        assert!(
            said.contains("switched from branch main to branch other; the staged files changed; "),
            "{said}"
        );
        // From main's working tree to other's, edited: b.txt differs too.
        assert!(
            said.ends_with("files in the working tree changed: M a.txt, M b.txt, A new.txt"),
            "{said}"
        );

        sh(
            Path::new(&dir),
            "for i in $(seq 1 25); do printf x > f$i.txt; done",
        );
        let said = difference(&to, &current(&dir));
        assert!(said.ends_with(", … and 5 more"), "{said}");

        let missing = RepoState {
            worktree_tree: "1".repeat(40),
            ..to.clone()
        };
        // A tree git cannot list: the change without its paths.
        let said = difference(&to, &missing);
        assert_eq!(said, "files in the working tree changed");
    }

    #[test]
    fn rewrite_replaces_in_one_pass_longest_first() {
        let names = vec!["/srv/app-real".to_owned(), "/srv/app".to_owned()];
        assert_eq!(
            rewrite(
                "cd /srv/app && cat /srv/app-real/x /srv/apple",
                &names,
                "/tmp/c/srv/app"
            ),
            "cd /tmp/c/srv/app && cat /tmp/c/srv/app/x /tmp/c/srv/apple"
        );
    }

    #[test]
    fn truncate_cuts_on_a_character_boundary() {
        assert_eq!(truncate("abc".into(), 3), ("abc".into(), false));
        assert_eq!(truncate("a→b".into(), 2), ("a".into(), true));
        assert_eq!(truncate("abc".into(), 0), (String::new(), true));
    }

    #[test]
    fn preview_of_a_commit() {
        isolated("preview_of_a_commit_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_of_a_commit in a process of its own"]
    fn preview_of_a_commit_alone() {
        if !in_child() {
            return;
        }
        let (_tmp, dir) = fixture();
        sh(Path::new(&dir), "printf 'alpha edit\\n' >> a.txt");
        let before = untouched(&dir);
        let head = sh(Path::new(&dir), "git rev-parse --short=7 HEAD");
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let report = preview(
            &dir,
            &format!(
                "git -C {dir} commit -qam 'preview commit' && git -C {dir} log -1 --format=%s"
            ),
            None,
            &preview_context(
                "00000000-0000-0000-0000-00000000000a",
                &limits,
                &stop,
                1 << 20,
            ),
        )
        .expect("preview");

        assert_eq!(report.kind, "git");
        assert!(
            report.summary[0].starts_with(&format!("HEAD {head} → ")),
            "{:?}",
            report.summary
        );
        assert!(
            report.summary[1].ends_with(" preview commit"),
            "{:?}",
            report.summary
        );
        assert_eq!(
            report.summary[2..],
            ["index changed"],
            "{:?}",
            report.summary
        );
        assert!(report.diff.contains("a.txt | 1 +"), "{}", report.diff);
        assert!(report.diff.contains("+alpha edit"), "{}", report.diff);
        assert_eq!(report.output, "preview commit\n");
        assert_eq!((report.exit_code, report.truncated), (Some(0), false));

        assert!(untouched(&dir) == before, "the real repository changed");
        assert_eq!(
            leftover_clones("00000000-0000-0000-0000-00000000000a"),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn preview_of_a_removal() {
        isolated("preview_of_a_removal_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_of_a_removal in a process of its own"]
    fn preview_of_a_removal_alone() {
        if !in_child() {
            return;
        }
        let (_tmp, dir) = fixture();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let command =
            format!("rm {dir}/a.txt; echo out; ls ../untracked.txt; echo err >&2; exit 3");
        let cwd = format!("{dir}/sub");
        let report = preview(
            &dir,
            &command,
            Some(&cwd),
            &preview_context(
                "00000000-0000-0000-0000-00000000000b",
                &limits,
                &stop,
                1 << 20,
            ),
        )
        .expect("preview");
        assert_eq!(report.summary, ["1 file changed in the working tree"]);
        assert!(report.diff.contains("deleted file mode"), "{}", report.diff);
        assert!(report.diff.contains("-alpha 2"), "{}", report.diff);
        assert_eq!(report.output, "out\n../untracked.txt\nerr\n");
        assert_eq!(report.exit_code, Some(3));
        assert!(untouched(&dir) == before, "the real repository changed");

        let report = preview(
            &dir,
            &command,
            Some(&cwd),
            &preview_context("00000000-0000-0000-0000-00000000000b", &limits, &stop, 5),
        )
        .expect("capped preview");
        assert!(report.truncated);
        assert!(
            report.output.len() <= 5 && report.diff.len() <= 5,
            "{report:?}"
        );
        assert!(untouched(&dir) == before, "the real repository changed");
        assert_eq!(
            leftover_clones("00000000-0000-0000-0000-00000000000b"),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn preview_through_a_symbolic_link() {
        isolated("preview_through_a_symbolic_link_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_through_a_symbolic_link in a process of its own"]
    fn preview_through_a_symbolic_link_alone() {
        if !in_child() {
            return;
        }
        let (tmp, dir) = fixture();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let link = link.to_string_lossy().into_owned();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let report = preview(
            &format!("{link}/sub"),
            &format!("rm {link}/b.txt && git -C {link} status --short"),
            Some(&link),
            &preview_context(
                "00000000-0000-0000-0000-00000000000c",
                &limits,
                &stop,
                1 << 20,
            ),
        )
        .expect("preview");
        assert_eq!(report.summary, ["1 file changed in the working tree"]);
        assert_eq!(report.output, " D b.txt\n?? untracked.txt\n");
        assert!(untouched(&dir) == before, "the real repository changed");
    }

    #[test]
    fn preview_in_a_repository_with_no_commits() {
        isolated("preview_in_a_repository_with_no_commits_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_in_a_repository_with_no_commits in a process of its own"]
    fn preview_in_a_repository_with_no_commits_alone() {
        if !in_child() {
            return;
        }
        let tmp = TempDir::new().expect("temp dir");
        sh(
            tmp.path(),
            "git init -q -b main r && printf 'a\\n' > r/a.txt && git -C r add a.txt",
        );
        let dir = std::fs::canonicalize(tmp.path().join("r")).expect("path");
        let dir = dir.to_string_lossy().into_owned();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let id = "00000000-0000-0000-0000-00000000000e";
        let err = preview(
            &dir,
            &format!("git -C {dir} commit -qm first"),
            Some("/"),
            &preview_context(id, &limits, &stop, 1 << 20),
        )
        .expect_err("a working directory outside the repository")
        .to_string();
        assert_eq!(
            err,
            "the working directory / is outside the repository, so the line is not replayed"
        );
        let report = preview(
            &dir,
            &format!("git -C {dir} commit -qm first"),
            None,
            &preview_context(id, &limits, &stop, 1 << 20),
        )
        .expect("preview");
        assert!(
            report.summary[0].starts_with("HEAD (no commit) → "),
            "{report:?}"
        );
        assert!(report.summary[1].ends_with(" first"), "{report:?}");
        // a.txt was staged already: the commit changes neither index nor files.
        assert_eq!(report.summary.len(), 2, "{report:?}");
        assert!(report.diff.contains("+a"), "{report:?}");
        assert!(untouched(&dir) == before, "the real repository changed");
        assert_eq!(leftover_clones(id), Vec::<PathBuf>::new());
    }

    #[test]
    fn preview_of_other_spellings() {
        isolated("preview_of_other_spellings_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_of_other_spellings in a process of its own"]
    fn preview_of_other_spellings_alone() {
        if !in_child() {
            return;
        }
        let (tmp, dir) = fixture();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let id = "00000000-0000-0000-0000-00000000000f";
        let ctx = preview_context(id, &limits, &stop, 1 << 20);
        let (parent, name) = dir.rsplit_once('/').expect("a parent");
        let quoted = format!("{}''{}", &name[..1], &name[1..]);
        for spelled in [
            format!("{parent}//{name}"),
            format!("{parent}/./{name}"),
            format!("{parent}/{quoted}"),
            format!("{parent}/{name}/sub/.."),
        ] {
            let report = preview(&dir, &format!("echo hacked > {spelled}/a.txt"), None, &ctx)
                .unwrap_or_else(|e| panic!("{spelled}: {e}"));
            assert_eq!(
                report.summary,
                ["1 file changed in the working tree"],
                "{spelled}"
            );
            assert!(
                report.diff.contains("+hacked"),
                "{spelled}: {}",
                report.diff
            );
            assert!(
                untouched(&dir) == before,
                "{spelled} reached the real repository"
            );
        }

        let outside = tmp.path().join("outside");
        for command in [
            format!("echo hacked > {}", outside.display()),
            format!("sed -i 's/alpha/x/w {}' {dir}/a.txt", outside.display()),
            format!("sed -i 's/alpha/x/w {}' a.txt", outside.display()),
            "echo hacked > ../outside".to_owned(),
            format!("cp {dir}/a.txt {dir}/../outside"),
        ] {
            let err = preview(&dir, &command, Some(&dir), &ctx)
                .expect_err(&command)
                .to_string();
            assert!(err.contains("not replayed"), "{command}: {err}");
            assert!(!outside.exists(), "{command} wrote outside the clone");
        }
        assert!(untouched(&dir) == before, "the real repository changed");

        std::os::unix::fs::symlink(&outside, Path::new(&dir).join("link")).expect("symlink");
        let err = preview(&dir, &format!("echo x > {dir}/link"), None, &ctx)
            .expect_err("a link out of the clone")
            .to_string();
        assert!(err.contains("the link link → "), "{err}");
        assert!(
            !outside.exists(),
            "a write followed the link out of the clone"
        );
        assert_eq!(leftover_clones(id), Vec::<PathBuf>::new());
    }

    #[test]
    fn planted_programs_do_not_run() {
        let home = TempDir::new().expect("home");
        isolated(
            "planted_programs_do_not_run_alone",
            &[("HOME", home.path())],
        );
    }

    #[test]
    #[ignore = "run by planted_programs_do_not_run in a process of its own, with its own HOME"]
    fn planted_programs_do_not_run_alone() {
        if !in_child() {
            return;
        }
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
        let marks = home.join("marks");
        std::fs::create_dir(&marks).expect("marks");
        let (_tmp, dir) = fixture();
        let d = Path::new(&dir);
        sh(
            d,
            "printf '* filter=evil\\n*.md filter=evilproc\\n' > .gitattributes && printf 'm\\n' > r.md && git add -A && git commit -qm attributes",
        );
        let m = marks.display();
        // Each planted program leaves a file named after itself.
        let plant = format!(
            "set -e
             hooks={home}/hooks && mkdir -p $hooks .git/hooks
             for h in pre-commit post-commit post-checkout post-index-change reference-transaction pre-auto-gc; do
               printf '#!/bin/sh\\ntouch {m}/hook-%s\\n' $h > $hooks/$h; cp $hooks/$h .git/hooks/$h
             done
             chmod +x $hooks/* .git/hooks/*
             git config --global core.hooksPath $hooks
             printf '#!/bin/sh\\ntouch {m}/$(basename $0)\\nexit 1\\n' > {home}/fsmonitor
             cp {home}/fsmonitor {home}/gpg && cp {home}/fsmonitor {home}/textconv && chmod +x {home}/fsmonitor {home}/gpg {home}/textconv
             git config core.fsmonitor {home}/fsmonitor
             git config commit.gpgSign true && git config gpg.program {home}/gpg
             git config log.showSignature true
             git config filter.evil.clean 'touch {m}/clean; cat' && git config filter.evil.smudge 'touch {m}/smudge; cat'
             git config filter.evil.required true
             git config filter.evilproc.process 'touch {m}/process' && git config filter.evilproc.required true
             git config diff.evil.textconv {home}/textconv && printf '*.txt diff=evil\\n' > .git/info/attributes",
            home = home.display()
        );
        sh(d, &plant);
        let marked = || {
            std::fs::read_dir(&marks)
                .expect("marks")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };

        sh(d, "printf 'edit\\n' >> a.txt && printf 'e\\n' >> r.md");
        let snap = capture(&dir, ID, true).expect("capture");
        sh(
            d,
            "printf 'later\\n' >> a.txt && printf 'l\\n' >> r.md && rm untracked.txt",
        );
        restore(&snap).expect("restore");
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let report = preview(
            &dir,
            &format!("printf 'p\\n' >> {dir}/r.md && git -C {dir} commit -qam preview"),
            None,
            &preview_context(
                "00000000-0000-0000-0000-00000000000d",
                &limits,
                &stop,
                1 << 20,
            ),
        )
        .expect("preview");
        assert_eq!(report.exit_code, Some(0), "{report:?}");
        assert!(
            report.summary.iter().any(|l| l.ends_with(" preview")),
            "{report:?}"
        );
        super::drop(&snap).expect("drop");
        assert_eq!(marked(), Vec::<String>::new(), "planted programs ran");

        // The plants work when git runs as a user runs it.
        sh(
            d,
            "printf 'x\\n' >> a.txt && git add a.txt && (git diff --cached a.txt >/dev/null 2>&1 || true) \
             && (git commit -qm signed >/dev/null 2>&1 || true) && git checkout -q HEAD -- a.txt \
             && printf 'x\\n' >> r.md && (git add r.md 2>/dev/null || true)",
        );
        let ran = marked();
        for name in [
            "clean",
            "smudge",
            "process",
            "fsmonitor",
            "gpg",
            "textconv",
            "hook-pre-commit",
            "hook-post-index-change",
        ] {
            assert!(
                ran.contains(&name.to_owned()),
                "{name} did not run as planted: {ran:?}"
            );
        }
    }
}
