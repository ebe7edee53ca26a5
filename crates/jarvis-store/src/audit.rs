//! The audit log: append-only events, each chained to its predecessor.
//!
//! An event's hash is SHA-256 over its predecessor's hash, a newline, and
//! the event's canonical encoding (fixed field order, payload with sorted
//! keys, compact), so the chain breaks at the first edited, deleted,
//! inserted or reordered event. Signed heads (`heads`) catch what a chain
//! alone cannot: a chain recomputed after an edit, or a cut-off tail; the
//! verifier (`verify`) checks both.

use std::io::Write;

use jarvis_core::ActionId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::heads::{Checkpoint, insert_checkpoint};
use crate::signing::AuditKey;
use crate::tx::Tx;
use crate::{Backend, Store, StoreError, now, redact, timestamp};

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Who did it: `operator`, `user:alice`, `token:ci`, `gateway`.
    pub actor: String,
    /// The action it is about, if any.
    pub action_id: Option<ActionId>,
    /// The host it is about, if any.
    pub host: Option<String>,
    /// What happened: `action.proposed`, `action.approved`, …
    pub kind: String,
    /// The details. Secrets are redacted before the event is written.
    pub payload: Value,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Who.
    pub actor: String,
    /// The action it is about.
    pub action_id: Option<String>,
    /// The host it is about.
    pub host: Option<String>,
    /// What happened.
    pub kind: String,
    /// The details, as canonical JSON text.
    pub payload: String,
    /// The hash of the previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// An event's fields, borrowed: what the verifier reads, from a stored row
/// or an export line, without copying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventRef<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub action_id: Option<&'a str>,
    pub host: Option<&'a str>,
    pub kind: &'a str,
    pub payload: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl EventRef<'_> {
    pub(crate) fn expected_hash(&self, prev_hash: &str) -> String {
        chain_hash(
            prev_hash,
            &canonical_event(
                self.seq,
                self.at,
                self.actor,
                self.action_id,
                self.host,
                self.kind,
                self.payload,
            ),
        )
    }
}

impl AuditEvent {
    pub(crate) fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            seq: self.seq,
            at: &self.at,
            actor: &self.actor,
            action_id: self.action_id.as_deref(),
            host: self.host.as_deref(),
            kind: &self.kind,
            payload: &self.payload,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    /// The canonical encoding the hash covers.
    pub fn canonical(&self) -> String {
        canonical_event(
            self.seq,
            &self.at,
            &self.actor,
            self.action_id.as_deref(),
            self.host.as_deref(),
            &self.kind,
            &self.payload,
        )
    }

    /// The hash this event should have after `prev_hash`.
    pub fn expected_hash(&self, prev_hash: &str) -> String {
        chain_hash(prev_hash, &self.canonical())
    }

    pub(crate) fn from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
        let get = |e: sqlx::Error| {
            StoreError::Corrupt(format!("an audit event row does not decode: {e}"))
        };
        Ok(AuditEvent {
            seq: row.try_get("seq").map_err(get)?,
            at: row.try_get("at").map_err(get)?,
            actor: row.try_get("actor").map_err(get)?,
            action_id: row.try_get("action_id").map_err(get)?,
            host: row.try_get("host").map_err(get)?,
            kind: row.try_get("kind").map_err(get)?,
            payload: row.try_get("payload").map_err(get)?,
            prev_hash: row.try_get("prev_hash").map_err(get)?,
            hash: row.try_get("hash").map_err(get)?,
        })
    }
}

/// Filters for listing events; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events about this action.
    pub action_id: Option<String>,
    /// Only events by this actor.
    pub actor: Option<String>,
    /// Only events about this host.
    pub host: Option<String>,
    /// Only events of this kind (`action.approved`), or kinds starting with
    /// it when it ends in `.` (`action.`).
    pub kind: Option<String>,
    /// Only events at or after this time ([`crate::parse_time`] reads one
    /// from text).
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Only events whose payload, actor, kind or action id contains this
    /// text, ignoring case (`%` and `_` are plain characters here). On
    /// SQLite only ASCII letters fold case.
    pub search: Option<String>,
    /// Only events at or before this sequence number: a page of the log
    /// that starts at a given event (where verification found a break).
    pub upto: Option<i64>,
    /// At most this many (newest first).
    pub limit: Option<i64>,
    /// Skip this many of the newest first.
    pub offset: Option<i64>,
}

/// One line of an export file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// The first line: what the file is.
    Header {
        /// Always `jarvis-audit`.
        format: String,
        /// The export format version.
        version: u32,
    },
    /// An event; `payload` as JSON, re-canonicalised for verification.
    Event {
        /// Its sequence number.
        seq: i64,
        /// When.
        at: String,
        /// Who.
        actor: String,
        /// The action.
        action_id: Option<String>,
        /// The host.
        host: Option<String>,
        /// What.
        kind: String,
        /// The details.
        payload: Value,
        /// The previous event's hash.
        prev_hash: String,
        /// This event's hash.
        hash: String,
    },
    /// A signed checkpoint.
    Checkpoint(Checkpoint),
}

/// The canonical text of an event's payload, which its hash is taken over.
pub use jarvis_core::canonical_json as canonical_payload;

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_string)
}

fn canonical_event(
    seq: i64,
    at: &str,
    actor: &str,
    action: Option<&str>,
    host: Option<&str>,
    kind: &str,
    payload: &str,
) -> String {
    format!(
        "{{\"seq\":{seq},\"at\":{},\"actor\":{},\"action\":{},\"host\":{},\"kind\":{},\"payload\":{payload}}}",
        json_string(at),
        json_string(actor),
        json_opt(action),
        json_opt(host),
        json_string(kind),
    )
}

fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Takes the chain's write lock inside a transaction and returns the head.
///
/// The first statement writes the head row: SQLite then holds its write lock
/// from the start (no read-to-write upgrade that could fail), and PostgreSQL
/// holds the row lock, so concurrent writers queue and the chain never forks.
async fn lock_head(conn: &mut AnyConnection) -> Result<(i64, String), StoreError> {
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("locking the audit chain"))?;
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("reading the audit chain head"))?;
    let seq: i64 = row
        .try_get("seq")
        .map_err(|e| StoreError::Corrupt(format!("the audit head does not decode: {e}")))?;
    let hash: String = row
        .try_get("hash")
        .map_err(|e| StoreError::Corrupt(format!("the audit head does not decode: {e}")))?;
    Ok((seq, hash))
}

pub(crate) use crate::group::WriteTx;

impl Store {
    /// Starts a write: a transaction whose first statement takes the chain
    /// lock. Every writer goes through here, which is what serialises them
    /// (on SQLite, in order, into one group commit: see [`crate::group`]).
    pub(crate) async fn begin_write(&self) -> Result<(WriteTx, (i64, String)), StoreError> {
        let mut tx = match self.group() {
            Some(group) => WriteTx::Shared(
                group
                    .begin()
                    .await
                    .map_err(self.db("starting a transaction"))?,
            ),
            None => WriteTx::Own(
                Tx::begin(self.pool(), "BEGIN")
                    .await
                    .map_err(self.db("starting a transaction"))?,
            ),
        };
        let head = lock_head(&mut tx)
            .await
            .map_err(|e| e.in_database(self.describe()))?;
        Ok((tx, head))
    }
}

/// Appends an event after the head returned by [`lock_head`] in the same
/// transaction, and moves the head.
pub(crate) async fn append_locked(
    conn: &mut AnyConnection,
    head: &mut (i64, String),
    ev: NewEvent,
    key: Option<&(AuditKey, i64)>,
) -> Result<AuditEvent, StoreError> {
    let mut payload = match ev.payload {
        Value::Object(m) => Value::Object(m),
        Value::Null => Value::Object(serde_json::Map::new()),
        other => serde_json::json!({ "value": other }),
    };
    let redactions = redact::redact(&mut payload);
    if !redactions.is_empty() {
        // The redaction is itself on the record: what kind, and where.
        payload["redacted"] = serde_json::to_value(&redactions).unwrap_or(Value::Null);
    }
    let payload = canonical_payload(&payload);
    let action_id = ev.action_id.map(|a| a.to_string());
    let mut event = AuditEvent {
        seq: head.0 + 1,
        at: now(),
        actor: ev.actor,
        action_id,
        host: ev.host,
        kind: ev.kind,
        payload,
        prev_hash: head.1.clone(),
        hash: String::new(),
    };
    event.hash = event.expected_hash(&head.1);
    sqlx::query(
        "INSERT INTO audit_events (seq, at, actor, action_id, host, kind, payload, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.seq)
    .bind(&event.at)
    .bind(&event.actor)
    .bind(&event.action_id)
    .bind(&event.host)
    .bind(&event.kind)
    .bind(&event.payload)
    .bind(&event.prev_hash)
    .bind(&event.hash)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("writing an audit event"))?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(event.seq)
        .bind(&event.hash)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("moving the audit chain head"))?;
    *head = (event.seq, event.hash.clone());
    if let Some((key, every)) = key
        && *every > 0
        && event.seq % every == 0
    {
        insert_checkpoint(conn, key, Some(*every), "interval", event.seq, &event.hash).await?;
    }
    Ok(event)
}

/// The columns of an event, in [`AuditEvent`]'s order.
pub(crate) const EVENT_COLUMNS: &str =
    "seq, at, actor, action_id, host, kind, payload, prev_hash, hash";

impl Store {
    /// Appends one event in its own transaction.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed; nothing is written then.
    pub async fn append(&self, ev: NewEvent) -> Result<AuditEvent, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let event = append_locked(&mut tx, &mut head, ev, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing an audit event"))?;
        Ok(event)
    }

    /// Events matching the filter, newest first.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn events(&self, f: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut push = |clause: &str, value: String, sql: &mut String| {
            binds.push(value);
            sql.push_str(&clause.replace("$?", &format!("${}", binds.len())));
        };
        if let Some(a) = &f.action_id {
            push(" AND action_id = $?", a.clone(), &mut sql);
        }
        if let Some(a) = &f.actor {
            push(" AND actor = $?", a.clone(), &mut sql);
        }
        if let Some(h) = &f.host {
            push(" AND host = $?", h.clone(), &mut sql);
        }
        if let Some(k) = &f.kind {
            if let Some(prefix) = k.strip_suffix('.') {
                push(" AND kind LIKE $?", format!("{prefix}.%"), &mut sql);
            } else {
                push(" AND kind = $?", k.clone(), &mut sql);
            }
        }
        let at = at_in_time_order(self.backend());
        if let Some(t) = f.since {
            push(&format!(" AND {at} >= $?"), at_key(t), &mut sql);
        }
        if let Some(t) = f.until {
            push(&format!(" AND {at} < $?"), at_key(t), &mut sql);
        }
        if let Some(upto) = f.upto {
            // An integer, written in: the binds are text, which PostgreSQL
            // will not compare with a bigint.
            sql.push_str(&format!(" AND seq <= {upto}"));
        }
        if let Some(text) = f.search.as_deref().filter(|t| !t.is_empty()) {
            // One bound pattern, lowered by the database on both sides so the
            // folding agrees with itself on either backend.
            push(
                " AND (LOWER(payload) LIKE LOWER($?) ESCAPE '!' \
                 OR LOWER(actor) LIKE LOWER($?) ESCAPE '!' \
                 OR LOWER(kind) LIKE LOWER($?) ESCAPE '!' \
                 OR LOWER(action_id) LIKE LOWER($?) ESCAPE '!')",
                format!("%{}%", like_escape(text)),
                &mut sql,
            );
        }
        sql.push_str(" ORDER BY seq DESC");
        sql.push_str(&format!(
            " LIMIT {}",
            f.limit.unwrap_or(100).clamp(1, 100_000)
        ));
        sql.push_str(&format!(" OFFSET {}", f.offset.unwrap_or(0).max(0)));
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("listing audit events"))?;
        rows.iter().map(AuditEvent::from_row).collect()
    }

    /// The sequence number of the newest event (0 before the first): one
    /// row, so callers can tell cheaply whether a verification is current.
    ///
    /// # Errors
    /// A database error.
    pub async fn head_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading the audit head"))?;
        row.try_get("seq")
            .map_err(|e| StoreError::Corrupt(format!("audit_head.seq: {e}")))
    }

    /// One event by sequence number.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    pub async fn event(&self, seq: i64) -> Result<AuditEvent, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq = $1"
        ))
        .bind(seq)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading an audit event"))?
        .ok_or_else(|| StoreError::NotFound(format!("audit event {seq}")))?;
        AuditEvent::from_row(&row)
    }

    /// Writes the whole log as JSON lines: a header, every event, every
    /// checkpoint. [`verify_lines`] checks such a file without the database.
    ///
    /// # Errors
    /// A [`StoreError`] when the database cannot be read or the output written.
    pub async fn export(&self, out: &mut impl Write) -> Result<u64, StoreError> {
        let io = |e: std::io::Error| StoreError::Database {
            doing: "writing the export",
            reason: e.to_string(),
        };
        let header = ExportLine::Header {
            format: "jarvis-audit".into(),
            version: 1,
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&header).unwrap_or_default()
        )
        .map_err(io)?;
        let mut n = 0u64;
        let mut after = 0i64;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 20000"
            ))
            .bind(after)
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("reading the audit chain"))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let e = AuditEvent::from_row(row)?;
                after = e.seq;
                let line = ExportLine::Event {
                    seq: e.seq,
                    at: e.at,
                    actor: e.actor,
                    action_id: e.action_id,
                    host: e.host,
                    kind: e.kind,
                    payload: serde_json::from_str(&e.payload).unwrap_or(Value::String(e.payload)),
                    prev_hash: e.prev_hash,
                    hash: e.hash,
                };
                writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default())
                    .map_err(io)?;
                n += 1;
            }
        }
        for cp in self.checkpoints().await? {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&ExportLine::Checkpoint(cp)).unwrap_or_default()
            )
            .map_err(io)?;
        }
        Ok(n)
    }
}

/// The stored `at` as text that sorts in time order, to compare with
/// [`at_key`]. The store writes times fixed width now (`…:05.000000Z`), but
/// the log is append-only and hash-chained over the text it was written
/// with, and events from before dropped the fraction's trailing zeros
/// (`…:05Z`, `…:05.5Z`), where `.` sorting before `Z` put 05.5 before 05.
/// So both are brought to one form: no `Z`, no trailing zeros of a
/// fraction, no bare `.`. Then one time is a prefix of a later one (`…:05`
/// < `…:05.5`) and fractions compare as their digits do: byte order is time
/// order.
fn at_in_time_order(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "(CASE WHEN at LIKE '%.%' THEN RTRIM(RTRIM(REPLACE(at, 'Z', ''), '0'), '.') \
             ELSE REPLACE(at, 'Z', '') END)"
        }
        // PostgreSQL compares text by the database's collation, which may
        // skip punctuation; `C` is byte order, as SQLite's default is.
        Backend::Postgres => {
            "(CASE WHEN at LIKE '%.%' THEN RTRIM(RTRIM(REPLACE(at, 'Z', ''), '0'), '.') \
             ELSE REPLACE(at, 'Z', '') END) COLLATE \"C\""
        }
    }
}

/// A filter's bound as [`at_in_time_order`] writes times. Stored times
/// have microseconds, so a bound between two of them is rounded up to the
/// next: a stored time is at or after it exactly when it is at or after
/// the bound.
fn at_key(t: OffsetDateTime) -> String {
    let spare = t.nanosecond() % 1000;
    let t = if spare == 0 {
        t
    } else {
        t.checked_add(time::Duration::nanoseconds(i64::from(1000 - spare)))
            .unwrap_or(t)
    };
    // In the form `at_in_time_order` gives stored times: `timestamp` always
    // writes six digits of fraction, which go when they are all zeros.
    let text = timestamp(t);
    let text = text.trim_end_matches('Z').trim_end_matches('0');
    text.trim_end_matches('.').to_owned()
}

/// `text` as a LIKE pattern that matches only itself, with `!` as the
/// escape character (a backslash would mean different things to the two
/// backends' string literals).
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_payload_sorts_keys_and_is_compact() {
        let v: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"d": [1, "x"], "c": null}}"#).expect("json");
        assert_eq!(
            canonical_payload(&v),
            r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#
        );
    }

    #[test]
    fn like_patterns_escape_wildcards_and_the_escape() {
        assert_eq!(like_escape("50%_a!b"), "50!%!_a!!b");
        assert_eq!(like_escape("plain"), "plain");
    }

    #[test]
    fn bounds_round_up_to_the_stored_microseconds_and_drop_the_z() {
        let key = |s: &str| at_key(crate::parse_time(s).expect(s));
        assert_eq!(key("2026-11-23T16:00:00+02:00"), "2026-11-23T14:00:00");
        assert_eq!(key("2026-11-23T14:00:00.5Z"), "2026-11-23T14:00:00.5");
        assert_eq!(
            key("2026-11-23T14:00:00.0000001Z"),
            "2026-11-23T14:00:00.000001"
        );
        assert_eq!(key("2026-11-23T23:59:59.9999999Z"), "2026-11-24T00:00:00");
    }

    #[test]
    fn canonical_event_has_a_fixed_shape() {
        let c = canonical_event(3, "t", "a\"b", None, Some("nas"), "k", "{}");
        assert_eq!(
            c,
            r#"{"seq":3,"at":"t","actor":"a\"b","action":null,"host":"nas","kind":"k","payload":{}}"#
        );
    }
}
