//! Actions and their lifecycle, each change committed with its audit event.

use jarvis_core::{
    ACCOUNTABLE_STEPS, ActionId, ActionKind, ActionState, Behind, Decision, FileEdit, HostName,
    PreviewReport, Purpose, Risk, SnapshotPlan,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AuditKey;

use crate::audit::{NewEvent, append_locked};
use crate::{Store, StoreError, now};
use time::OffsetDateTime;

/// An action to record as proposed.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// Its id.
    pub id: ActionId,
    /// Who proposed it.
    pub requester: String,
    /// The host it is for.
    pub host: Option<HostName>,
    /// The command line.
    pub command: String,
    /// The directory it runs in on the host, if not the default.
    pub cwd: Option<String>,
    /// Its timeout in seconds, if not the host's default.
    pub timeout_secs: Option<u32>,
    /// What it is.
    pub kind: ActionKind,
    /// For an edit: the path and the change.
    pub edit: Option<FileEdit>,
    /// For a rollback: the action it puts back.
    pub rollback_of: Option<ActionId>,
    /// The snapshot plan an approval binds to.
    pub plan: Option<SnapshotPlan>,
    /// What the proposer says it is for.
    pub purpose: Option<Purpose>,
}

/// What the policy said, recorded with the move out of `proposed`.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The decision.
    pub decision: Decision,
    /// The risk.
    pub risk: Risk,
    /// The reasons.
    pub reasons: Vec<String>,
}

/// An action as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionRecord {
    /// Its id.
    pub id: ActionId,
    /// When it was proposed.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Who proposed it.
    pub requester: String,
    /// The person who answers for it, resolved from the requester when it
    /// was proposed (see [`Store::accountable`]). Approval rules,
    /// per-requester limits and refusals use it.
    pub accountable: String,
    /// The host it is for.
    pub host: Option<HostName>,
    /// The command line.
    pub command: String,
    /// The directory it runs in on the host, if not the default.
    pub cwd: Option<String>,
    /// Its timeout in seconds, if not the host's default.
    pub timeout_secs: Option<u32>,
    /// Where it is in its life.
    pub state: ActionState,
    /// What the policy decided, once it has.
    pub decision: Option<Decision>,
    /// Its risk, once judged.
    pub risk: Option<Risk>,
    /// Why.
    pub reasons: Vec<String>,
    /// How many times it has changed state.
    pub version: i64,
    /// What it is.
    pub kind: ActionKind,
    /// For an edit: the path and the change.
    pub edit: Option<FileEdit>,
    /// For a rollback: the action it puts back.
    pub rollback_of: Option<ActionId>,
    /// The snapshot plan an approval binds to.
    pub plan: Option<SnapshotPlan>,
    /// The preview shown to approvers.
    pub preview: Option<PreviewReport>,
    /// When it last entered `pending_approval`; its approval window runs
    /// from then.
    pub pending_since: Option<String>,
    /// What the proposer says it is for.
    pub purpose: Option<Purpose>,
}

impl ActionRecord {
    fn from_row(row: &AnyRow) -> Result<ActionRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("action {what}: {e}"))
        };
        let id: String = row.try_get("id").map_err(|e| bad("id", &e))?;
        let state: String = row.try_get("state").map_err(|e| bad("state", &e))?;
        let decision: Option<String> = row.try_get("decision").map_err(|e| bad("decision", &e))?;
        let risk: Option<i64> = row.try_get("risk").map_err(|e| bad("risk", &e))?;
        let reasons: String = row.try_get("reasons").map_err(|e| bad("reasons", &e))?;
        let kind: String = row.try_get("kind").map_err(|e| bad("kind", &e))?;
        fn json<T: DeserializeOwned>(row: &AnyRow, name: &str) -> Result<Option<T>, StoreError> {
            let text: Option<String> = row
                .try_get(name)
                .map_err(|e| StoreError::Corrupt(format!("action {name}: {e}")))?;
            text.map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| StoreError::Corrupt(format!("action {name}: {e}")))
            })
            .transpose()
        }
        let rollback_of: Option<String> = row
            .try_get("rollback_of")
            .map_err(|e| bad("rollback_of", &e))?;
        Ok(ActionRecord {
            kind: kind.parse().map_err(|e| bad(&id, &e))?,
            edit: json(row, "edit")?,
            rollback_of: rollback_of
                .map(|r| r.parse())
                .transpose()
                .map_err(|e| bad("rollback_of", &e))?,
            plan: json(row, "plan")?,
            preview: json(row, "preview")?,
            pending_since: row
                .try_get("pending_since")
                .map_err(|e| bad("pending_since", &e))?,
            purpose: json(row, "purpose")?,
            id: id.parse().map_err(|e| bad(&id, &e))?,
            created_at: row
                .try_get("created_at")
                .map_err(|e| bad("created_at", &e))?,
            updated_at: row
                .try_get("updated_at")
                .map_err(|e| bad("updated_at", &e))?,
            requester: row.try_get("requester").map_err(|e| bad("requester", &e))?,
            accountable: row
                .try_get("accountable")
                .map_err(|e| bad("accountable", &e))?,
            host: row
                .try_get::<Option<String>, _>("host")
                .map_err(|e| bad("host", &e))?
                .map(|h| HostName::parse(&h))
                .transpose()
                .map_err(|e| bad("host", &e))?,
            command: row.try_get("command").map_err(|e| bad("command", &e))?,
            cwd: row.try_get("cwd").map_err(|e| bad("cwd", &e))?,
            timeout_secs: row
                .try_get::<Option<i64>, _>("timeout_secs")
                .map_err(|e| bad("timeout_secs", &e))?
                .map(|t| u32::try_from(t).unwrap_or(u32::MAX)),
            state: state.parse().map_err(|e| bad(&id, &e))?,
            decision: decision
                .map(|d| d.parse())
                .transpose()
                .map_err(|e| bad(&id, &e))?,
            risk: risk
                .map(|r| Risk::new(u32::try_from(r).unwrap_or(u32::MAX)))
                .transpose()
                .map_err(|e| bad(&id, &e))?,
            reasons: serde_json::from_str(&reasons).map_err(|e| bad(&id, &e))?,
            version: row.try_get("version").map_err(|e| bad("version", &e))?,
        })
    }
}

/// `value` as the JSON text of column `what`; `None` stays NULL.
pub(crate) fn json_text<T: Serialize>(
    what: &str,
    value: &Option<T>,
) -> Result<Option<String>, StoreError> {
    value
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("{what} cannot be written as JSON: {e}")))
}

const ACTION_COLUMNS: &str = "id, created_at, updated_at, requester, accountable, host, command, cwd, timeout_secs, state, decision, risk, reasons, version, kind, edit, rollback_of, plan, preview, pending_since, purpose";

impl Store {
    /// Records a proposed action and its `action.proposed` event, with the
    /// person accountable for it resolved in the same transaction (so a
    /// token revoked or a conversation ended a moment later changes
    /// nothing).
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed; nothing is written then.
    pub async fn create_action(&self, new: &NewAction) -> Result<ActionRecord, StoreError> {
        self.create_action_keyed(new, None).await
    }

    /// As [`Store::create_action`], with the idempotency `key` the
    /// proposal came with recorded in the same transaction. If its
    /// requester already used the key, nothing is written and the answer
    /// is [`StoreError::KeyUsed`] naming the action the key made: writers
    /// hold the chain's lock while they look, so of two requests with one
    /// key exactly one creates.
    ///
    /// # Errors
    /// [`StoreError::KeyUsed`], or a [`StoreError`] naming what failed.
    pub async fn create_action_keyed(
        &self,
        new: &NewAction,
        key: Option<&str>,
    ) -> Result<ActionRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let at = now();
        if let Some(key) = key
            && let Some(action) = keyed(&mut tx, &new.requester, key).await?
        {
            tx.rollback()
                .await
                .map_err(self.db("ending a replayed proposal"))?;
            return Err(StoreError::KeyUsed {
                key: key.to_owned(),
                action,
            });
        }
        let accountable = accountable(&mut tx, &new.requester).await?;
        // Two strings: serialising them cannot fail.
        let purpose = new
            .purpose
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok());
        sqlx::query(
            "INSERT INTO actions (id, created_at, updated_at, requester, accountable, host, command, cwd, \
             timeout_secs, state, reasons, version, kind, edit, rollback_of, plan, purpose) \
             VALUES ($1, $2, $2, $3, $13, $4, $5, $6, $7, $8, '[]', 0, $9, $10, $11, $12, $14)",
        )
        .bind(new.id.to_string())
        .bind(&at)
        .bind(&new.requester)
        .bind(new.host.as_ref().map(HostName::to_string))
        .bind(&new.command)
        .bind(&new.cwd)
        .bind(new.timeout_secs.map(i64::from))
        .bind(ActionState::Proposed.as_str())
        .bind(new.kind.as_str())
        .bind(json_text("edit", &new.edit)?)
        .bind(new.rollback_of.map(|r| r.to_string()))
        .bind(json_text("plan", &new.plan)?)
        .bind(&accountable)
        .bind(purpose)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording a proposed action"))?;
        let event = NewEvent {
            actor: new.requester.clone(),
            action_id: Some(new.id),
            host: new.host.as_ref().map(HostName::to_string),
            kind: "action.proposed".into(),
            payload: json!({
                "accountable": accountable,
                "command": new.command,
                "cwd": new.cwd,
                "timeout_secs": new.timeout_secs,
                "kind": new.kind.as_str(),
                "rollback_of": new.rollback_of.map(|r| r.to_string()),
                "plan": new.plan,
                "purpose": new.purpose,
                // What will run, unredacted, hashed: checked before it runs.
                "commitment": crate::commitment::of(new, &accountable),
            }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        if let Some(key) = key {
            sqlx::query(
                "INSERT INTO idempotency_keys (requester, idem_key, action_id, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&new.requester)
            .bind(key)
            .bind(new.id.to_string())
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording an idempotency key"))?;
        }
        let record = fetch(&mut tx, new.id).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a proposed action"))?;
        Ok(record)
    }

    /// The action `requester` proposed with idempotency `key`, if any.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn action_for_key(
        &self,
        requester: &str,
        key: &str,
    ) -> Result<Option<ActionRecord>, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("connecting"))?;
        match keyed(&mut conn, requester, key).await? {
            Some(id) => Ok(Some(fetch(&mut conn, id).await?)),
            None => Ok(None),
        }
    }

    /// Moves an action from `from` to `to`, recording `judged` if given, and
    /// writes the `action.<to>` event with `detail` in the same transaction.
    ///
    /// Writers are serialised by the audit chain's lock, so of two people
    /// acting on one action at once exactly one wins; the other gets
    /// [`StoreError::Conflict`] naming the state it found.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] when the action is
    /// no longer in `from`, [`StoreError::IllegalTransition`] when the
    /// lifecycle forbids the move, or a database error; nothing is written
    /// in any of these cases.
    pub async fn transition(
        &self,
        id: ActionId,
        from: ActionState,
        to: ActionState,
        actor: &str,
        judged: Option<&Judged>,
        detail: Value,
    ) -> Result<ActionRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let record = transition_locked(
            &mut tx,
            &mut head,
            self.signer(),
            id,
            from,
            to,
            actor,
            judged,
            detail,
        )
        .await?;
        tx.commit()
            .await
            .map_err(self.db("committing an action's change"))?;
        Ok(record)
    }

    /// The person accountable for what `requester` asks: the requester's
    /// [`Behind`] chain followed to its end (a conversation to whoever
    /// started it, a token to the person who made it). A requester with
    /// nothing behind it answers for itself, and so does one whose record
    /// is gone.
    ///
    /// # Errors
    /// A database error.
    pub async fn accountable(&self, requester: &str) -> Result<String, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("connecting"))?;
        accountable(&mut conn, requester).await
    }

    /// One action.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    pub async fn action(&self, id: ActionId) -> Result<ActionRecord, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("connecting"))?;
        fetch(&mut conn, id).await
    }

    /// The action whose id is `text` or starts with it (at least 4
    /// characters), so short ids work wherever an id is asked for.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] or [`StoreError::Ambiguous`].
    pub async fn resolve_action(&self, text: &str) -> Result<ActionId, StoreError> {
        let prefix = text.trim().to_ascii_lowercase();
        if let Ok(id) = prefix.parse::<ActionId>() {
            return Ok(id);
        }
        if prefix.len() < 4 || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NotFound(format!(
                "an action with the id {text} (give at least 4 hex characters of an action id)"
            )));
        }
        let rows = sqlx::query("SELECT id FROM actions WHERE id LIKE $1 ORDER BY id LIMIT 6")
            .bind(format!("{prefix}%"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("looking up an action id"))?;
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>("id").ok())
            .collect();
        match ids.as_slice() {
            [] => Err(StoreError::NotFound(format!(
                "an action whose id starts with {text}"
            ))),
            [one] => one
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("action id {one}: {e}"))),
            many => Err(StoreError::Ambiguous {
                prefix: text.to_owned(),
                matches: many.join(", "),
            }),
        }
    }

    /// Actions, newest first, optionally only those in `state`.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn actions(
        &self,
        state: Option<ActionState>,
        limit: i64,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        self.actions_before(state, None, limit).await
    }

    /// As [`Store::actions`], only those older than `before` (for paging:
    /// ids are UUID v7, so they sort by time).
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn actions_before(
        &self,
        state: Option<ActionState>,
        before: Option<ActionId>,
        limit: i64,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let limit = limit.clamp(1, 100_000);
        // "~" sorts after every hyphenated UUID: no bound.
        let before = before.map_or_else(|| "~".to_owned(), |b| b.to_string());
        let rows = match state {
            Some(s) => sqlx::query(&format!(
                "SELECT {ACTION_COLUMNS} FROM actions WHERE state = $1 AND id < $2 ORDER BY id DESC LIMIT {limit}"
            ))
            .bind(s.as_str())
            .bind(before)
            .fetch_all(self.pool())
            .await,
            None => sqlx::query(&format!(
                "SELECT {ACTION_COLUMNS} FROM actions WHERE id < $1 ORDER BY id DESC LIMIT {limit}"
            ))
            .bind(before)
            .fetch_all(self.pool())
            .await,
        }
        .map_err(StoreError::db("listing actions"))?;
        rows.iter().map(ActionRecord::from_row).collect()
    }

    /// Up to `limit` actions in `state` whose wait began in `before`'s
    /// second or earlier, oldest first: a pending action's wait began when
    /// it entered the queue (`pending_since`; an action stored before that
    /// was kept counts as overdue at once, as the gateway's deadline reads
    /// it), any other's at its last change. Served by an index, so asking
    /// when nothing is overdue costs next to nothing however many wait.
    /// The caller checks each one's exact deadline: a row from later in
    /// that second may not be due yet.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn overdue(
        &self,
        state: ActionState,
        before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let limit = limit.clamp(1, 10_000);
        // Stored times are RFC 3339 with a fraction of varying length, so
        // they do not order as text within a second. The next whole second
        // (`2026-12-07T00:54:18` for any time in :17) is a prefix of no
        // time before it and sorts after every one of them, so "less than
        // it" is exactly "in :17 or earlier", and the index serves it.
        let next_second = before.replace_nanosecond(0).unwrap_or(before) + time::Duration::SECOND;
        let cutoff: String = crate::timestamp(next_second).chars().take(19).collect();
        let (column, or_null) = if state == ActionState::PendingApproval {
            ("pending_since", " OR pending_since IS NULL")
        } else {
            ("updated_at", "")
        };
        let rows = sqlx::query(&format!(
            "SELECT {ACTION_COLUMNS} FROM actions WHERE state = $1 AND ({column} < $2{or_null}) \
             ORDER BY {column} LIMIT {limit}"
        ))
        .bind(state.as_str())
        .bind(cutoff)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing overdue actions"))?;
        rows.iter().map(ActionRecord::from_row).collect()
    }

    /// How many actions there are in each state with each decision, for
    /// metrics. Combinations with no action are left out.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn count_actions_by(
        &self,
    ) -> Result<Vec<(ActionState, Option<Decision>, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, decision, COUNT(*) AS n FROM actions GROUP BY state, decision \
             ORDER BY state, decision",
        )
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("counting actions"))?;
        rows.iter()
            .map(|row| {
                let bad =
                    |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("action count: {e}"));
                let state: String = row.try_get("state").map_err(|e| bad(&e))?;
                let decision: Option<String> = row.try_get("decision").map_err(|e| bad(&e))?;
                let n: i64 = row.try_get("n").map_err(|e| bad(&e))?;
                Ok((
                    state.parse().map_err(|e| bad(&e))?,
                    decision
                        .map(|d| d.parse())
                        .transpose()
                        .map_err(|e| bad(&e))?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }
}

/// [`Store::accountable`] on a connection the caller holds.
pub(crate) async fn accountable(
    conn: &mut AnyConnection,
    requester: &str,
) -> Result<String, StoreError> {
    let mut who = requester.to_owned();
    for _ in 0..ACCOUNTABLE_STEPS {
        let (sql, key) = match Behind::of(&who) {
            None => break,
            Some(Behind::Conversation(id)) => (
                "SELECT started_by AS who FROM conversations WHERE id = $1",
                id.to_owned(),
            ),
            Some(Behind::Token(name)) => (
                "SELECT created_by AS who FROM api_tokens WHERE name = $1",
                name.to_owned(),
            ),
        };
        let row = sqlx::query(sql)
            .bind(&key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::db("reading who is behind a requester"))?;
        let Some(row) = row else { break };
        who = row
            .try_get::<String, _>("who")
            .map_err(|e| StoreError::Corrupt(format!("who is behind {who}: {e}")))?;
    }
    Ok(who)
}

/// The action `requester`'s idempotency `key` made, if any.
async fn keyed(
    conn: &mut AnyConnection,
    requester: &str,
    key: &str,
) -> Result<Option<ActionId>, StoreError> {
    let row = sqlx::query(
        "SELECT action_id FROM idempotency_keys WHERE requester = $1 AND idem_key = $2",
    )
    .bind(requester)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("looking up an idempotency key"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row
        .try_get("action_id")
        .map_err(|e| StoreError::Corrupt(format!("an idempotency key's action: {e}")))?;
    id.parse().map(Some).map_err(|_| {
        StoreError::Corrupt(format!("an idempotency key names `{id}`, not an action id"))
    })
}

pub(crate) async fn fetch(
    conn: &mut sqlx::AnyConnection,
    id: ActionId,
) -> Result<ActionRecord, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ACTION_COLUMNS} FROM actions WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("reading an action"))?
    .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
    ActionRecord::from_row(&row)
}

/// [`Store::transition`] inside a write transaction the caller commits.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn transition_locked(
    tx: &mut AnyConnection,
    head: &mut (i64, String),
    signer: Option<&(AuditKey, i64)>,
    id: ActionId,
    from: ActionState,
    to: ActionState,
    actor: &str,
    judged: Option<&Judged>,
    detail: Value,
) -> Result<ActionRecord, StoreError> {
    let current = fetch(tx, id).await?;
    if current.state != from {
        return Err(StoreError::Conflict {
            id: id.to_string(),
            expected: from,
            found: current.state,
        });
    }
    from.transition(to)
        .map_err(|source| StoreError::IllegalTransition {
            id: id.to_string(),
            source,
        })?;
    let at = now();
    let (decision, risk, reasons) = match judged {
        Some(j) => (
            Some(j.decision.as_str()),
            Some(i64::from(j.risk.score())),
            serde_json::to_string(&j.reasons).unwrap_or_else(|_| "[]".into()),
        ),
        None => (
            current.decision.map(Decision::as_str),
            current.risk.map(|r| i64::from(r.score())),
            serde_json::to_string(&current.reasons).unwrap_or_else(|_| "[]".into()),
        ),
    };
    // The approval window runs from the latest entry into the queue.
    let updated = sqlx::query(
        "UPDATE actions SET state = $1, updated_at = $2, decision = $3, risk = $4, reasons = $5, \
             version = version + 1, \
             pending_since = CASE WHEN $1 = 'pending_approval' THEN $2 ELSE pending_since END \
             WHERE id = $6 AND version = $7",
    )
    .bind(to.as_str())
    .bind(&at)
    .bind(decision)
    .bind(risk)
    .bind(&reasons)
    .bind(id.to_string())
    .bind(current.version)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::db("changing an action's state"))?;
    if updated.rows_affected() != 1 {
        // Only a writer bypassing the chain lock could get here.
        let found = fetch(tx, id).await?.state;
        return Err(StoreError::Conflict {
            id: id.to_string(),
            expected: from,
            found,
        });
    }
    let mut payload = json!({ "from": from.as_str(), "to": to.as_str() });
    if let Some(j) = judged {
        payload["decision"] = json!(j.decision.as_str());
        payload["risk"] = json!({ "score": j.risk.score(), "level": j.risk.level().as_str() });
        payload["reasons"] = json!(j.reasons);
    }
    if let Value::Object(extra) = detail {
        for (k, v) in extra {
            payload[k] = v;
        }
    }
    let event = NewEvent {
        actor: actor.to_owned(),
        action_id: Some(id),
        host: current.host.as_ref().map(HostName::to_string),
        kind: format!("action.{}", to.as_str()),
        payload,
    };
    append_locked(tx, head, event, signer).await?;
    let record = fetch(tx, id).await?;
    Ok(record)
}
