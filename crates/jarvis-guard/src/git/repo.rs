//! One repository as the guard's own git calls see it: every call hardened
//! against programs the repository could make git run, and the reads and
//! writes snapshots, rollbacks and previews are made of.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use jarvis_core::ActionId;
use jarvis_exec::snapshot::{GIT_REF_PREFIX, RepoState};

use super::index;
use super::is_oid;
use super::preview::LISTED_COMMITS;
use super::scratch::Scratch;
use crate::cmd::{Cmd, Output};
use crate::error::GuardError;
use crate::runner;

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

const REFLOG_MESSAGE: &str = "jarvis: back to a snapshot";

/// `git` in `dir` with the guard's hardening and `config` on top of it.
pub(super) fn git_cmd(dir: &Path, config: &[(String, String)]) -> Cmd {
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

pub(super) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A repository with a working tree, and what git must switch off in it.
pub(super) struct Repo {
    /// Its top level, as git reports it.
    pub(super) top: String,
    /// Its index file.
    pub(super) index: PathBuf,
    /// Hooks, fsmonitor and every filter driver it configures, switched off.
    pub(super) config: Vec<(String, String)>,
    /// Bytes in one of its object ids, when git names a format the guard
    /// knows.
    pub(super) hash_len: Option<usize>,
}

/// Where HEAD is: the commit it names and the branch it is on.
pub(super) struct Head {
    commit: Option<String>,
    branch: Option<String>,
}

/// The repository's index as one read of it found it, to make scratch
/// copies from: its bytes and modification time, or `None` when the
/// repository has no index yet, which git reads as empty.
pub(super) struct Seed(Option<(Vec<u8>, SystemTime)>);

impl Repo {
    pub(super) fn open(dir: &Path) -> Result<Repo, GuardError> {
        Repo::open_at_head(dir, false).map(|(repo, _)| repo)
    }

    /// Opens the repository containing `dir`, with its present state.
    pub(super) fn current(dir: &Path) -> Result<(Repo, RepoState, Seed), GuardError> {
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
    pub(super) fn open_at_head(
        dir: &Path,
        read_head: bool,
    ) -> Result<(Repo, Option<Head>), GuardError> {
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

    pub(super) fn git(&self) -> Cmd {
        git_cmd(Path::new(&self.top), &self.config)
    }

    /// git working on `index` instead of the repository's own index.
    pub(super) fn git_on(&self, index: &Path) -> Cmd {
        let mut config = self.config.clone();
        config.extend(owned(SCRATCH_INDEX));
        git_cmd(Path::new(&self.top), &config).env("GIT_INDEX_FILE", index)
    }

    /// Runs `cmd` to success; failures name the repository.
    pub(super) fn ok(&self, cmd: Cmd) -> Result<String, GuardError> {
        cmd.ok()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))
    }

    pub(super) fn run(&self, args: &[&str]) -> Result<String, GuardError> {
        self.ok(self.git().args(args))
    }

    /// Runs `cmd` for an answer git gives by exit status: `None` on exit 1.
    pub(super) fn probe(&self, cmd: Cmd) -> Result<Option<String>, GuardError> {
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

    pub(super) fn has_object(&self, oid: &str) -> Result<bool, GuardError> {
        let out = self
            .git()
            .args(["cat-file", "-e", oid])
            .output()
            .map_err(|e| GuardError::Repository(format!("in {}: {e}", self.top)))?;
        Ok(out.status.success())
    }

    /// The state of a repository opened without reading HEAD.
    pub(super) fn state(&self) -> Result<RepoState, GuardError> {
        Ok(self.state_at(self.head()?)?.0)
    }

    /// Where HEAD is, asked on its own.
    pub(super) fn head(&self) -> Result<Head, GuardError> {
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
    pub(super) fn state_at(&self, head: Head) -> Result<(RepoState, Seed), GuardError> {
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
    pub(super) fn cached_tree(&self, seed: &Seed) -> Option<String> {
        let (bytes, _) = seed.0.as_ref()?;
        index::cached_tree(bytes, self.hash_len?)
    }

    /// Reads the index: its bytes and modification time through one open
    /// file, so a rewrite by git (a new file renamed over it) gives the old
    /// file or the new one whole, each with its own time.
    pub(super) fn read_index(&self) -> Result<Seed, GuardError> {
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
    pub(super) fn scratch_index(&self, seed: &Seed) -> Result<(Scratch, PathBuf), GuardError> {
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
    pub(super) fn stage(&self, index: &Path, which: &str) -> Result<(), GuardError> {
        self.ok(self.git_on(index).args(["add", which]))
            .map(|_| ())
            .map_err(|e| GuardError::Repository(format!("cannot read the working tree: {e}")))
    }

    pub(super) fn write_tree(&self, index: &Path) -> Result<String, GuardError> {
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
    pub(super) fn keep(
        &self,
        mut state: RepoState,
        seed: &Seed,
        action_id: ActionId,
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
        // An `ActionId` displays as hex digits and dashes only, so this is
        // a well-formed ref name and one ref per action.
        let kept_ref = format!("{GIT_REF_PREFIX}{action_id}");
        self.run(&["update-ref", "-m", &title, &kept_ref, &commit])?;
        state.commit = Some(commit);
        state.kept_ref = Some(kept_ref);
        Ok(state)
    }

    pub(super) fn commit_tree(
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

    pub(super) fn set_head(&self, target: &RepoState) -> Result<(), GuardError> {
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
    pub(super) fn check_out(&self, tree: &str) -> Result<(), GuardError> {
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

    pub(super) fn reset_index(&self, tree: &str) -> Result<(), GuardError> {
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
    pub(super) fn spellings(&self, dir: &str) -> Result<Vec<String>, GuardError> {
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
    pub(super) fn change(
        &self,
        before: &RepoState,
        after: &RepoState,
    ) -> Result<String, GuardError> {
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

    pub(super) fn tree_of(&self, commit: Option<&str>) -> Result<String, GuardError> {
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
    pub(super) fn count_commits(&self, new: &str, old: Option<&str>) -> Result<usize, GuardError> {
        let count = self.ok(self
            .git()
            .args(["rev-list", "--count"])
            .args(commit_range(new, old)))?;
        Ok(count.trim().parse().unwrap_or(0))
    }

    /// `--oneline` lines of the newest [`LISTED_COMMITS`] of them.
    pub(super) fn log_commits(
        &self,
        new: &str,
        old: Option<&str>,
    ) -> Result<Vec<String>, GuardError> {
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
