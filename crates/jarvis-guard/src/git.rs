//! Git snapshots, rollbacks and previews on the host.
//!
//! (Being written: see the contract on each function.)

use jarvis_exec::snapshot::{PreviewReport, RepoState};

use crate::preview::PreviewContext;

/// Captures the repository containing `dir`: HEAD, branch, index tree and
/// working-tree tree (tracked and untracked, not ignored), without touching
/// the working tree or the index. With `keep`, a commit holding all of it
/// is kept under `refs/jarvis/snapshots/<action_id>`.
pub fn capture(dir: &str, action_id: &str, keep: bool) -> Result<RepoState, String> {
    let _ = (dir, action_id, keep);
    Err("git snapshots are not built yet".into())
}

/// Whether two states of one repository are the same (HEAD, branch, index,
/// working tree).
pub fn matches(current: &RepoState, other: &RepoState) -> bool {
    current.head == other.head
        && current.branch == other.branch
        && current.index_tree == other.index_tree
        && current.worktree_tree == other.worktree_tree
}

/// What differs between two states, in plain words.
pub fn difference(from: &RepoState, to: &RepoState) -> String {
    let _ = (from, to);
    String::new()
}

/// Puts the repository back to `target` (kept) and verifies it by tree
/// hashes; returns what was done.
pub fn restore(target: &RepoState) -> Result<String, String> {
    let _ = target;
    Err("git rollback is not built yet".into())
}

/// Runs `command` in a private clone of the repository containing `dir`.
pub fn preview(
    dir: &str,
    command: &str,
    cwd: Option<&str>,
    ctx: &PreviewContext<'_>,
) -> Result<PreviewReport, String> {
    let _ = (dir, command, cwd, ctx);
    Err("git previews are not built yet".into())
}

/// Removes a kept snapshot's ref; returns what was removed.
pub fn drop(state: &RepoState) -> Result<Vec<String>, String> {
    let _ = state;
    Ok(Vec::new())
}
