//! The one trait every kind of snapshot target implements, and what a
//! snapshot carries from one target to the next while it is taken.

use jarvis_core::ActionId;
use jarvis_exec::snapshot::{Captured, RestoredTarget, Snapshot, SnapshotPlan, TargetOutcome};

use super::Host;
use crate::error::GuardError;

/// A snapshot being taken: the request's terms, and what is captured so
/// far, which later targets read (a volume is archived only when a
/// captured container mounts it; a repository is captured once however
/// many targets lie in it).
pub struct Capture<'a> {
    /// The action the snapshot is for, when what a rollback needs is kept
    /// (it names the refs, images and copies); `None` to fingerprint only.
    pub keep: Option<ActionId>,
    /// The image that archives volumes.
    pub volume_image: Option<&'a str>,
    /// The host's state directory and policy.
    pub host: &'a Host<'a>,
    /// The plan being captured.
    pub plan: &'a SnapshotPlan,
    /// What is captured so far.
    pub snapshot: Snapshot,
}

impl Capture<'_> {
    /// Adds `state` unless a target of its kind and name is already
    /// captured (two directories of one repository, a file in a captured
    /// repository).
    pub fn add_once<T: Captured>(&mut self, state: T) {
        if self.snapshot.find::<T>(state.name()).is_none() {
            self.snapshot.push(state);
        }
    }

    /// Notes what the snapshot cannot capture, in plain words.
    pub fn not_captured(&mut self, note: String) {
        self.snapshot.not_captured.push(note);
    }
}

/// One kind of snapshot target on the host: how it is captured,
/// fingerprinted, compared, restored, dropped and described. `take`,
/// `restore` and `drop` hold the rules that are the same for every kind
/// (the order, when a rollback stops, the snapshot of the present before
/// it changes anything) and call these for the rest.
pub trait SnapshotTarget: Captured {
    /// What a plan names to capture targets of this kind.
    type Planned<'p>;

    /// Captures what `planned` names into `cx.snapshot` (which may be
    /// another kind: a file in a repository is captured through git),
    /// noting there what it cannot capture.
    fn capture(planned: Self::Planned<'_>, cx: &mut Capture<'_>) -> Result<(), GuardError>;

    /// The target as it is now, fingerprints only (nothing kept): what
    /// the rollback comparisons read.
    fn fingerprint(&self, host: &Host<'_>, volume_image: Option<&str>) -> Result<Self, GuardError>;

    /// Whether `now` is as this snapshot of it found it.
    fn is_restored(&self, now: &Self) -> bool;

    /// Whether `now` is still as the action left it (`after`).
    fn is_as_left(after: &Self, now: &Self) -> bool;

    /// What changed from `from` to `to`, in plain words, without naming
    /// the target (the report does).
    fn describe_change(from: &Self, to: &Self) -> String;

    /// Puts it back as this snapshot found it and verifies it; says what
    /// was done. Safe to repeat after a failure halfway.
    fn restore(&self, host: &Host<'_>, volume_image: Option<&str>) -> Result<String, GuardError>;

    /// Removes what a kept snapshot of it holds on the host; says what
    /// was removed.
    fn drop_kept(&self) -> Result<Vec<String>, GuardError>;

    /// The target as a rollback's report names it, with how it went.
    fn describe(&self, outcome: TargetOutcome, detail: String) -> RestoredTarget {
        RestoredTarget {
            kind: Self::KIND.into(),
            name: self.name().to_owned(),
            outcome,
            detail,
        }
    }

    /// Where it stands before a rollback, `after` being its state right
    /// after the action when that was recorded.
    fn standing(
        &self,
        after: Option<&Self>,
        host: &Host<'_>,
        volume_image: Option<&str>,
    ) -> Result<Standing, GuardError> {
        let now = self.fingerprint(host, volume_image)?;
        if self.is_restored(&now) {
            return Ok(Standing::Done(format!(
                "{} is already as the snapshot found it",
                self.name()
            )));
        }
        match after {
            Some(after) if Self::is_as_left(after, &now) => Ok(Standing::Due),
            Some(after) => Ok(Standing::Changed(Self::describe_change(after, &now))),
            None => Ok(Standing::Changed(
                "its state right after the action was not recorded, so later changes cannot be ruled out"
                    .into(),
            )),
        }
    }
}

/// Where one target stands before a rollback.
pub enum Standing {
    /// Already as the snapshot found it.
    Done(String),
    /// As the action left it: to be restored.
    Due,
    /// Changed since the action (or unknown): the words say how, without
    /// naming the target (the report does).
    Changed(String),
}
