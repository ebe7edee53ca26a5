//! Previews of a git command: the line replayed in a private clone of the
//! repository, under the kernel wall, and what it changed there.

use std::path::Path;
use std::time::Instant;

use jarvis_core::text::cut_bytes;
use jarvis_exec::protocol::{Ending, Frame, Outcome, RunRequest};
use jarvis_exec::snapshot::{PreviewBasis, PreviewReport, RepoState};

use super::repo::{Repo, owned};
use super::scratch::Scratch;
use super::{branch_name, changed_paths, difference, matches, put_back, replay, short_commit};
use crate::confine::Grant;
use crate::error::GuardError;
use crate::preview::PreviewContext;
use crate::runner::{self, Sink};

/// The identity a preview clone commits under when the repository has none.
const PREVIEW_IDENTITY: [(&str, &str); 2] = [
    ("user.name", "Jarvis preview"),
    ("user.email", "jarvis@localhost"),
];

/// How many new commits a preview's summary names.
pub(super) const LISTED_COMMITS: usize = 5;

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
    let cap = usize::try_from(ctx.cap).unwrap_or(usize::MAX);
    let real = Repo::open(Path::new(dir))?;
    if real.top == "/" {
        return Err(GuardError::Repository(
            "cannot preview in a repository whose top level is `/`".into(),
        ));
    }
    let names = real.spellings(dir)?;
    // An `ActionId` displays as hex digits and dashes only: part of one
    // file name, never a `/`.
    let scratch = Scratch::new(&format!("jarvis-preview-{}", ctx.action_id))?;
    let clone = scratch.utf8()?;
    let replay = replay::replay(command, cwd, &names, clone)?;
    let before = real.state()?;
    let clone_top = make_clone(&real, &before, clone)?.top;
    replay::check_links(Path::new(clone))?;
    // A directory holding only ignored files was not cloned.
    let _ = std::fs::create_dir_all(&replay.cwd);
    let (outcome, said) = run_command(replay.line, replay.cwd, Path::new(clone), ctx)?;

    let mut report = PreviewReport::of(PreviewBasis::Git);
    match Repo::open(Path::new(clone)).and_then(|r| Ok((r.state()?, r))) {
        Ok((after, repo)) => {
            report.summary = summarize(&repo, &before, &after)?;
            report.diff = repo.change(&before, &after)?;
            report.truncated = cut_bytes(&mut report.diff, cap);
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
    report.output = rewrite(&output, &clone_names, &real.top);
    let cut = cut_bytes(&mut report.output, cap);
    report.truncated |= cut || outcome.stdout.truncated || outcome.stderr.truncated;
    report.exit_code = outcome.exit_code;
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
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
            Frame::Hello(_)
            | Frame::Heartbeat
            | Frame::Done(_)
            | Frame::Checked(_)
            | Frame::Kernel(_)
            | Frame::Refused(_)
            | Frame::Snapshotted(_)
            | Frame::Restored(_)
            | Frame::Previewed(_)
            | Frame::Dropped(_)
            | Frame::Account(_) => {}
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
        action_id: ctx.action_id,
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

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `id` reduced to what is safe in a file name.
#[cfg(test)]
mod tests {
    use super::*;

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
}
