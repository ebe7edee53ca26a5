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
//!
//! This file holds capture, comparison and rollback; [`repo`] the hardened
//! git calls on one repository, [`preview`] and [`replay`] previews in a
//! private clone, [`scratch`] the private directories both work in.

use std::path::Path;

use jarvis_core::ActionId;
use jarvis_exec::snapshot::{GIT_REF_PREFIX, RepoState};

use crate::error::GuardError;

mod index;
mod preview;
mod replay;
mod repo;
mod scratch;
#[cfg(test)]
mod timing;

pub use preview::preview;
use repo::{Repo, git_cmd};

/// How many changed paths [`difference`] names.
const LISTED_PATHS: usize = 20;

/// Captures the repository containing `dir`: HEAD, branch, index tree and
/// working-tree tree (tracked and untracked, not ignored), without touching
/// the working tree or the index. With `keep` (the action to keep it for),
/// a commit holding all of it is kept under
/// `refs/jarvis/snapshots/<action_id>`.
pub fn capture(dir: &str, keep: Option<ActionId>) -> Result<RepoState, GuardError> {
    let (repo, state, seed) = Repo::current(Path::new(dir))?;
    match keep {
        Some(action_id) => repo.keep(state, &seed, action_id),
        None => Ok(state),
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

/// Removes a kept snapshot's ref; returns what was removed.
pub fn drop(state: &RepoState) -> Result<Vec<String>, GuardError> {
    let Some(kept_ref) = &state.kept_ref else {
        return Ok(Vec::new());
    };
    // The ref comes from a manifest the gateway sends back, not from an
    // id the protocol parsed: only a ref a capture made (the prefix and an
    // action id) may be deleted, never a branch or a tag.
    let id = kept_ref.strip_prefix(GIT_REF_PREFIX).unwrap_or_default();
    if id.parse::<ActionId>().is_err() {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, SystemTime};

    use tempfile::TempDir;

    use super::*;
    use crate::preview::PreviewContext;
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
        capture(dir, None).expect("capture")
    }

    fn id() -> Option<ActionId> {
        Some(ID.parse().expect("a UUID v7"))
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
            action_id: action_id.parse().expect("a UUID v7"),
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

    /// Stops an `_alone` test run by hand (`--ignored`, `--include-ignored`)
    /// outside [`isolated`]: there it would share a process with other
    /// tests, or find none of the set-up its twin gives it, so a pass
    /// would say nothing.
    fn only_as_child_of(twin: &str) {
        assert!(
            std::env::var_os(CHILD).is_some(),
            "this test only runs as the child of `{twin}`, which starts it in a \
             process of its own; run `{twin}` instead"
        );
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
        let state = capture(&format!("{dir}/sub"), id()).expect("capture");
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
        let state = capture(&dir, None).expect("capture");
        assert_eq!((state.commit, state.kept_ref), (None, None));
        assert_eq!(sh(Path::new(&dir), "git for-each-ref refs/jarvis"), "");
    }

    #[test]
    fn capture_refuses_what_it_cannot_capture() {
        let tmp = TempDir::new().expect("temp dir");
        let plain = tmp.path().join("plain");
        std::fs::create_dir(&plain).expect("dir");
        let plain = plain.to_string_lossy().into_owned();
        let err = capture(&plain, id())
            .expect_err("not a repository")
            .to_string();
        assert_eq!(err, format!("`{plain}` is not inside a git repository"));

        sh(tmp.path(), "git init -q --bare bare.git");
        let err = capture(&format!("{}/bare.git", tmp.path().display()), id())
            .expect_err("bare repository")
            .to_string();
        assert!(err.contains("has no working tree"), "{err}");

        let err = capture(&format!("{plain}/missing"), None)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("is not a directory"), "{err}");
    }

    #[test]
    fn capture_refuses_an_index_with_conflicts() {
        let (_tmp, dir) = fixture();
        sh(
            Path::new(&dir),
            "git merge -q other >/dev/null 2>&1 || true",
        );
        let err = capture(&dir, id()).expect_err("conflicts").to_string();
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
        let state = capture(&dir, id()).expect("capture");
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
        let state = capture(&dir, None).expect("capture");
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
        let state = capture(&dir.to_string_lossy(), id()).expect("capture");
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
        let state = capture(&dir, id()).expect("capture");
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
        let state = capture(&dir, None).expect("capture");
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
            let state = capture(&dir, id()).unwrap_or_else(|e| panic!("{case}: {e}"));
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
        let state = capture(&dir, None).expect("fingerprint");
        assert_eq!(state.index_tree, tree);
        let state = capture(&dir, id()).expect("kept snapshot");
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
            let snap = capture(&dir, id()).expect("capture");
            let before = files(Path::new(&dir));
            sh(Path::new(&dir), script);
            let changed = capture(&dir, None).map_or(true, |now| !matches(&now, &snap));
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
        let snap = capture(&dir, id()).expect("capture");
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
        let snap = capture(&wt_dir, id()).expect("capture");
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
        let snap = capture(&dir, id()).expect("capture");
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
        let snap = capture(&dir, id()).expect("capture");
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
        let snap = capture(&dir, id()).expect("capture");
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
        let snap = capture(&dir, id()).expect("capture");
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
    fn preview_of_a_commit() {
        isolated("preview_of_a_commit_alone", &[]);
    }

    #[test]
    #[ignore = "run by preview_of_a_commit in a process of its own"]
    fn preview_of_a_commit_alone() {
        only_as_child_of("preview_of_a_commit");
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
                "00000000-0000-7000-8000-00000000000a",
                &limits,
                &stop,
                1 << 20,
            ),
        )
        .expect("preview");

        assert_eq!(report.kind.as_str(), "git");
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
            leftover_clones("00000000-0000-7000-8000-00000000000a"),
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
        only_as_child_of("preview_of_a_removal");
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
                "00000000-0000-7000-8000-00000000000b",
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
            &preview_context("00000000-0000-7000-8000-00000000000b", &limits, &stop, 5),
        )
        .expect("capped preview");
        assert!(report.truncated);
        assert!(
            report.output.len() <= 5 && report.diff.len() <= 5,
            "{report:?}"
        );
        assert!(untouched(&dir) == before, "the real repository changed");
        assert_eq!(
            leftover_clones("00000000-0000-7000-8000-00000000000b"),
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
        only_as_child_of("preview_through_a_symbolic_link");
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
                "00000000-0000-7000-8000-00000000000c",
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
        only_as_child_of("preview_in_a_repository_with_no_commits");
        let tmp = TempDir::new().expect("temp dir");
        sh(
            tmp.path(),
            "git init -q -b main r && printf 'a\\n' > r/a.txt && git -C r add a.txt",
        );
        let dir = std::fs::canonicalize(tmp.path().join("r")).expect("path");
        let dir = dir.to_string_lossy().into_owned();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let id = "00000000-0000-7000-8000-00000000000e";
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
        only_as_child_of("preview_of_other_spellings");
        let (tmp, dir) = fixture();
        let before = untouched(&dir);
        let (limits, stop) = (Limits::default(), Arc::new(AtomicBool::new(false)));
        let id = "00000000-0000-7000-8000-00000000000f";
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
        only_as_child_of("planted_programs_do_not_run");
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
        let snap = capture(&dir, id()).expect("capture");
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
                "00000000-0000-7000-8000-00000000000d",
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
