//! What a run produced, written once with the action's final state; the
//! host guard's own account of a run the gateway did not hear end; the
//! restart sweep; and the look-back the runaway-loop brake needs.

use jarvis_core::{ActionId, ActionState, HostName};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::actions::{ActionRecord, transition_locked};
use crate::{Store, StoreError};

/// One output stream as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CapturedOutput {
    /// The bytes kept (up to the host's cap).
    #[serde(skip)]
    pub data: Vec<u8>,
    /// How many bytes the command wrote in all.
    pub bytes: u64,
    /// Hex SHA-256 of all of them.
    pub sha256: String,
    /// Whether `data` is less than all of them.
    pub truncated: bool,
}

/// How a run ended, as [`RunRecord::ending`] records it: the one list of
/// its words, so whoever writes or reads one names a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnding {
    /// The command exited by itself.
    Exited,
    /// A signal ended it.
    Signalled,
    /// It ran past its timeout and was killed.
    TimedOut,
    /// The host's guard refused it.
    Refused,
    /// The link broke; what happened on the host is in its log.
    Lost,
    /// Refused or failed on this side: nothing reached the host.
    NotSent,
    /// The host never answered.
    Unreachable,
    /// The guard killed the command when the gateway disconnected.
    KilledGatewayGone,
    /// The guard logged the start and nothing after: it was stopped itself.
    GuardGone,
    /// The guard's whole log has no record of it.
    NeverStarted,
    /// Nothing in the part of the guard's log it reads.
    NoRecord,
    /// The guard could not say.
    Unavailable,
}

impl RunEnding {
    /// Every ending, in the order above.
    pub const ALL: [RunEnding; 12] = [
        RunEnding::Exited,
        RunEnding::Signalled,
        RunEnding::TimedOut,
        RunEnding::Refused,
        RunEnding::Lost,
        RunEnding::NotSent,
        RunEnding::Unreachable,
        RunEnding::KilledGatewayGone,
        RunEnding::GuardGone,
        RunEnding::NeverStarted,
        RunEnding::NoRecord,
        RunEnding::Unavailable,
    ];

    /// The word stored in the run's record and its audit event.
    pub fn as_str(self) -> &'static str {
        match self {
            RunEnding::Exited => "exited",
            RunEnding::Signalled => "signalled",
            RunEnding::TimedOut => "timed_out",
            RunEnding::Refused => "refused",
            RunEnding::Lost => "lost",
            RunEnding::NotSent => "not-sent",
            RunEnding::Unreachable => "unreachable",
            RunEnding::KilledGatewayGone => "killed-gateway-gone",
            RunEnding::GuardGone => "guard-gone",
            RunEnding::NeverStarted => "never-started",
            RunEnding::NoRecord => "no-record",
            RunEnding::Unavailable => "unavailable",
        }
    }
}

impl std::fmt::Display for RunEnding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is no [`RunEnding`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run ending `{0}`")]
pub struct UnknownRunEnding(pub String);

impl std::str::FromStr for RunEnding {
    type Err = UnknownRunEnding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunEnding::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownRunEnding(s.to_owned()))
    }
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// When it was sent.
    pub started_at: String,
    /// When its answer came (or the attempt ended).
    pub finished_at: String,
    /// How it ended, a [`RunEnding`]'s word: `exited`, `signalled`,
    /// `timed_out`, `refused` (by the host's guard), `not-sent` (nothing
    /// reached the host), `unreachable` (the host never answered) or
    /// `lost` (the link broke; what happened on the host is in its log).
    /// A host guard's account adds `killed-gateway-gone` (the guard killed
    /// the command when the gateway disconnected), `guard-gone` (it logged
    /// the start and nothing after: the guard itself was stopped),
    /// `never-started`, `no-record` (nothing in the part of its log it
    /// reads) and `unavailable` (it could not say).
    pub ending: String,
    /// The shell's exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Milliseconds it ran on the host.
    pub duration_ms: u64,
    /// Processes it left behind that the guard killed.
    pub killed: u32,
    /// Its stdout.
    pub stdout: CapturedOutput,
    /// Its stderr.
    pub stderr: CapturedOutput,
    /// Why it failed outside the command itself (guard refusal, transport).
    pub error: Option<String>,
    /// What the kernel allowed the command, as the guard said
    /// (`kernel: read-only, runs 3 program files, no network`), or why it
    /// ran without the kernel wall; `None` when nothing ran.
    pub kernel: Option<String>,
    /// The host guard's own account of the run, from its log, asked after
    /// the gateway did not hear it end (the link broke, or the gateway
    /// stopped while it ran); its outputs carry counts and hashes only.
    /// `None` when nobody asked, or the gateway heard the end itself.
    #[schema(no_recursion)]
    pub host_account: Option<Box<RunRecord>>,
}

impl RunRecord {
    /// The audit summary of a run: counts and hashes, never the output,
    /// which can hold anything.
    pub fn summary(&self) -> Value {
        json!({
            "ending": self.ending,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "duration_ms": self.duration_ms,
            "killed": self.killed,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error,
            "kernel": self.kernel,
        })
    }

    /// An `action_runs` row.
    fn from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
        RunRecord::decode(row, "run", true)
    }

    /// A `run_accounts` row, whose outputs are counts and hashes only.
    fn from_account_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
        RunRecord::decode(row, "host account of a run,", false)
    }

    /// The columns both tables share; `with_data` when the row keeps the
    /// outputs themselves (and whether each was cut), not only their counts.
    fn decode(row: &AnyRow, table: &str, with_data: bool) -> Result<RunRecord, StoreError> {
        let bad = |what: &str, e: sqlx::Error| StoreError::Corrupt(format!("{table} {what}: {e}"));
        let get = |name: &str| -> Result<String, StoreError> {
            row.try_get(name).map_err(|e| bad(name, e))
        };
        let maybe = |name: &str| -> Result<Option<String>, StoreError> {
            row.try_get(name).map_err(|e| bad(name, e))
        };
        let int =
            |name: &str| -> Result<i64, StoreError> { row.try_get(name).map_err(|e| bad(name, e)) };
        let opt = |name: &str| -> Result<Option<i32>, StoreError> {
            Ok(row
                .try_get::<Option<i64>, _>(name)
                .map_err(|e| bad(name, e))?
                .and_then(|v| i32::try_from(v).ok()))
        };
        let stream = |p: &str| -> Result<CapturedOutput, StoreError> {
            let bytes = u64::try_from(int(&format!("{p}_bytes"))?).unwrap_or(0);
            let (data, truncated) = if with_data {
                (
                    row.try_get(p).map_err(|e| bad(p, e))?,
                    int(&format!("{p}_truncated"))? != 0,
                )
            } else {
                // Nothing of it reached the gateway.
                (Vec::new(), bytes > 0)
            };
            Ok(CapturedOutput {
                data,
                bytes,
                sha256: get(&format!("{p}_sha256"))?,
                truncated,
            })
        };
        Ok(RunRecord {
            started_at: get("started_at")?,
            finished_at: get("finished_at")?,
            ending: get("ending")?,
            exit_code: opt("exit_code")?,
            signal: opt("signal")?,
            duration_ms: u64::try_from(int("duration_ms")?).unwrap_or(0),
            killed: u32::try_from(int("killed")?).unwrap_or(0),
            stdout: stream("stdout")?,
            stderr: stream("stderr")?,
            error: maybe("error")?,
            kernel: maybe("kernel")?,
            host_account: None,
        })
    }
}

/// The lowest UUID v7 text of a millisecond: v7 ids sort by creation time,
/// so "created since" is a range over the primary key.
fn id_floor(unix_ms: u64) -> String {
    let hex = format!("{:012x}", unix_ms & 0xffff_ffff_ffff);
    format!("{}-{}-0000-0000-000000000000", &hex[..8], &hex[8..])
}

/// Stores `run` inside the caller's transaction.
pub(crate) async fn insert_run(
    conn: &mut sqlx::AnyConnection,
    id: ActionId,
    run: &RunRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO action_runs (action_id, started_at, finished_at, ending, exit_code, signal, \
             duration_ms, killed, stdout, stdout_bytes, stdout_sha256, stdout_truncated, \
             stderr, stderr_bytes, stderr_sha256, stderr_truncated, error, kernel) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18)",
    )
    .bind(id.to_string())
    .bind(&run.started_at)
    .bind(&run.finished_at)
    .bind(&run.ending)
    .bind(run.exit_code.map(i64::from))
    .bind(run.signal.map(i64::from))
    .bind(i64::try_from(run.duration_ms).unwrap_or(i64::MAX))
    .bind(i64::from(run.killed))
    .bind(run.stdout.data.clone())
    .bind(i64::try_from(run.stdout.bytes).unwrap_or(i64::MAX))
    .bind(&run.stdout.sha256)
    .bind(i64::from(run.stdout.truncated))
    .bind(run.stderr.data.clone())
    .bind(i64::try_from(run.stderr.bytes).unwrap_or(i64::MAX))
    .bind(&run.stderr.sha256)
    .bind(i64::from(run.stderr.truncated))
    .bind(&run.error)
    .bind(&run.kernel)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("recording a run"))?;
    Ok(())
}

impl Store {
    /// Ends a run: moves the action from `running` to `to`, stores `run`,
    /// and writes the `action.<to>` event with the run's summary, all in one
    /// transaction.
    ///
    /// # Errors
    /// As [`Store::transition`].
    pub async fn finish_run(
        &self,
        id: ActionId,
        to: ActionState,
        actor: &str,
        run: &RunRecord,
    ) -> Result<ActionRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let detail = json!({ "run": run.summary() });
        let record = transition_locked(
            &mut tx,
            &mut head,
            self.signer(),
            id,
            ActionState::Running,
            to,
            actor,
            None,
            detail,
        )
        .await?;
        insert_run(&mut tx, id, run).await?;
        tx.commit().await.map_err(self.db("committing a run"))?;
        Ok(record)
    }

    /// The run of an action, if it reached a host, with the host guard's
    /// account of it where one was asked for.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn run_of(&self, id: ActionId) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM action_runs WHERE action_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("reading a run"))?;
        let Some(mut run) = row.as_ref().map(RunRecord::from_row).transpose()? else {
            return Ok(None);
        };
        run.host_account = self.host_account(id).await?.map(Box::new);
        Ok(Some(run))
    }

    /// The host guard's account of an action's run, if one was recorded.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn host_account(&self, id: ActionId) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM run_accounts WHERE action_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("reading a host's account of a run"))?;
        row.as_ref().map(RunRecord::from_account_row).transpose()
    }

    /// Records the host guard's account of an action's run (`account`,
    /// asked of `host` after the gateway did not hear the run end) with its
    /// `run.guard_account` event carrying `payload`, in one transaction.
    /// An action with no run of its own (the gateway stopped while it ran)
    /// gets the account as its run too; a run the gateway recorded (`lost`)
    /// stays as it is. The action's state does not change: the account is
    /// what the host says happened, not a move of the lifecycle.
    ///
    /// Returns `false`, writing nothing, when an account is already there
    /// (another process asked first): accounts are written once.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed; nothing is written then.
    pub async fn record_host_account(
        &self,
        id: ActionId,
        host: &str,
        account: &RunRecord,
        mut payload: Value,
    ) -> Result<bool, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        // Under the chain lock, so two askers cannot both write.
        let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(id.to_string());
        let already = count("SELECT COUNT(*) FROM run_accounts WHERE action_id = $1")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("reading a host's account of a run"))?;
        if already > 0 {
            tx.rollback()
                .await
                .map_err(self.db("ending a read of a host's account"))?;
            return Ok(false);
        }
        let has_run = count("SELECT COUNT(*) FROM action_runs WHERE action_id = $1")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("reading a run"))?
            > 0;
        sqlx::query(
            "INSERT INTO run_accounts (action_id, host, recorded_at, started_at, finished_at, \
                 ending, exit_code, signal, duration_ms, killed, stdout_bytes, stdout_sha256, \
                 stderr_bytes, stderr_sha256, error, kernel) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(id.to_string())
        .bind(host)
        .bind(crate::now())
        .bind(&account.started_at)
        .bind(&account.finished_at)
        .bind(&account.ending)
        .bind(account.exit_code.map(i64::from))
        .bind(account.signal.map(i64::from))
        .bind(i64::try_from(account.duration_ms).unwrap_or(i64::MAX))
        .bind(i64::from(account.killed))
        .bind(i64::try_from(account.stdout.bytes).unwrap_or(i64::MAX))
        .bind(&account.stdout.sha256)
        .bind(i64::try_from(account.stderr.bytes).unwrap_or(i64::MAX))
        .bind(&account.stderr.sha256)
        .bind(&account.error)
        .bind(&account.kernel)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording a host's account of a run"))?;
        if !has_run {
            insert_run(&mut tx, id, account).await?;
        }
        if let Value::Object(p) = &mut payload {
            p.insert("recorded_as_run".into(), json!(!has_run));
        }
        crate::audit::append_locked(
            &mut tx,
            &mut head,
            crate::NewEvent {
                actor: "gateway".into(),
                action_id: Some(id),
                host: Some(host.to_owned()),
                kind: "run.guard_account".into(),
                payload,
            },
            self.signer(),
        )
        .await?;
        tx.commit()
            .await
            .map_err(self.db("committing a host's account of a run"))?;
        Ok(true)
    }

    /// Actions on `host` whose run the gateway did not hear end (a `lost`
    /// run, or `interrupted`) and whose guard has not been asked about them
    /// yet, newest first: at most `limit`, made since `since` ago. Older
    /// ones have left the part of the guard's log it reads, so asking would
    /// only say there is no record.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn accounts_due(
        &self,
        host: &HostName,
        since: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<ActionId>, StoreError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let from = u64::try_from(now_ms.saturating_sub(since.as_millis())).unwrap_or(0);
        let rows = sqlx::query(
            "SELECT a.id AS id FROM actions a LEFT JOIN action_runs r ON r.action_id = a.id \
             WHERE a.state IN ($3, $5) AND a.id >= $2 AND a.host = $1 \
             AND (a.state = $3 OR r.ending = 'lost') \
             AND NOT EXISTS (SELECT 1 FROM run_accounts x WHERE x.action_id = a.id) \
             ORDER BY a.id DESC LIMIT $4",
        )
        .bind(host.as_str())
        .bind(id_floor(from))
        .bind(ActionState::Interrupted.as_str())
        .bind(i64::from(limit))
        // A lost run leaves its action failed: with the states first, the
        // (state, id) index finds the few candidates, where a scan of the
        // week's actions read every one at each host check.
        .bind(ActionState::Failed.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("finding runs to ask a host about"))?;
        rows.iter()
            .map(|row| {
                let id: String = row
                    .try_get("id")
                    .map_err(|e| StoreError::Corrupt(format!("action id: {e}")))?;
                id.parse::<ActionId>()
                    .map_err(|e| StoreError::Corrupt(format!("action id `{id}`: {e}")))
            })
            .collect()
    }

    /// Marks every `running` action `interrupted`: the process that ran it
    /// is gone, so its result will never come, and it must not run again.
    /// Call once at start-up, before any new action runs.
    ///
    /// # Errors
    /// A [`StoreError`]; actions already handled stay handled.
    pub async fn interrupt_running(&self, actor: &str) -> Result<Vec<ActionId>, StoreError> {
        self.move_all(
            ActionState::Running,
            ActionState::Interrupted,
            actor,
            "the gateway stopped while it ran; its result is unknown and it is not run again",
        )
        .await
    }

    /// Refuses every action still `proposed`: stored, but never judged,
    /// because the gateway that stored it stopped first. Judging it now
    /// would act on a request whose proposer got no answer and may well
    /// have sent it again, so it is refused, saying so, and never runs.
    /// Called only by a process that finds itself the sole runner, as for
    /// [`Store::interrupt_running`].
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn refuse_unjudged(&self, actor: &str) -> Result<Vec<ActionId>, StoreError> {
        self.move_all(
            ActionState::Proposed,
            ActionState::Denied,
            actor,
            "the gateway stopped before it judged this proposal; nothing ran; propose it again",
        )
        .await
    }

    /// Moves every action in `from` to `to` with `reason`, one transition
    /// each; those another process moved meanwhile are left to it.
    async fn move_all(
        &self,
        from: ActionState,
        to: ActionState,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<ActionId>, StoreError> {
        let mut done = Vec::new();
        for action in self.actions(Some(from), 100_000).await? {
            let moved = self
                .transition(
                    action.id,
                    from,
                    to,
                    actor,
                    None,
                    json!({ "reason": reason }),
                )
                .await;
            match moved {
                Ok(_) => done.push(action.id),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// How many actions with exactly this host and command were proposed
    /// in the last `window` (the runaway-loop brake's look-back).
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn recent_repeats(
        &self,
        host: Option<&HostName>,
        command: &str,
        window: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let since = u64::try_from(now_ms.saturating_sub(window.as_millis())).unwrap_or(0);
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM actions WHERE id >= $1 AND command = $2 \
             AND COALESCE(host, '') = $3",
        )
        .bind(id_floor(since))
        .bind(command)
        .bind(host.map(HostName::as_str).unwrap_or(""))
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::db("counting repeated actions"))?;
        let n: i64 = row
            .try_get("n")
            .map_err(|e| StoreError::Corrupt(format!("count: {e}")))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_floor_sorts_with_real_ids() {
        let id = ActionId::new().to_string();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        assert!(id_floor(now_ms - 1000) <= id);
        assert!(id_floor(now_ms + 1000) > id);
    }
}
