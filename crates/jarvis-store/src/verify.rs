//! Verification of the audit log, reported as CloudTrail's log file
//! validator reports digest and log files: what is valid, and each break
//! as *invalid* (present but not what was written or signed), *missing*
//! (expected but not there) or a *gap* (a hole in a sequence), with the
//! sequence number it is at.
//!
//! What is expected, besides an unbroken chain of events:
//! - a signed checkpoint at every multiple of the interval (the one signed
//!   into the newest head before it, or the configured one);
//! - each signed head names the head before it, so none can be taken out
//!   of the middle;
//! - no event older than two signed-head periods (and half a minute) goes
//!   without a signed head covering it;
//! - every head a witness off the box holds is still on the chain, with the
//!   same hash and signature: this is what catches a tail cut back to an
//!   older head, or a chain recomputed and re-signed with the local key.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::audit::{AuditEvent, EVENT_COLUMNS, EventRef, ExportLine, GENESIS, canonical_payload};
use crate::heads::{Checkpoint, read_checkpoints, read_checkpoints_sqlite};
use crate::signing::AuditKey;
use crate::{Store, StoreError, parse_time};

/// At most this many breaks are listed one by one; the rest are counted.
const MAX_LISTED: usize = 1000;

/// How late a signed head may be beyond its period before the events it
/// should cover count as unwitnessed: a tick delayed by a busy machine, a
/// slow signer.
const HEAD_GRACE: Duration = Duration::from_secs(30);

/// The kind of a break, in CloudTrail's validator's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// Present but not what was written or signed: an edited event, one
    /// naming another predecessor, a bad or foreign signature, a head or a
    /// witness at odds with the chain.
    Invalid,
    /// Expected but not there: events a head or a witness covers beyond
    /// the log's end, a checkpoint at a multiple of the interval, a head
    /// the next one names, a signed head over events older than its period.
    Missing,
    /// A hole in a sequence: event numbers absent between present ones, a
    /// chain of signed heads that starts over, a head the witness never
    /// got.
    Gap,
}

impl BreakKind {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Invalid => "invalid",
            BreakKind::Missing => "missing",
            BreakKind::Gap => "gap",
        }
    }
}

/// One break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Break {
    /// Its kind.
    pub kind: BreakKind,
    /// The sequence number it is at (the first of a run).
    pub seq: i64,
    /// What is wrong, in words.
    pub what: String,
}

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyProblem {
    /// The sequence number where the chain breaks.
    pub seq: i64,
    /// What is wrong, in words.
    pub what: String,
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    /// Events walked.
    pub events: u64,
    /// The last sequence number seen.
    pub last_seq: i64,
    /// Checkpoints whose signature and hash were checked against the
    /// operator's key.
    pub checkpoints_verified: u64,
    /// Checkpoints seen but not checked, for want of the operator's key.
    pub checkpoints_unchecked: u64,
    /// Heads held by a witness that the chain still holds as signed.
    pub witnessed: u64,
    /// The first break, if any.
    pub problem: Option<VerifyProblem>,
    /// Every break found, in the order found (at most a thousand).
    pub breaks: Vec<Break>,
    /// Breaks found beyond those listed.
    pub unlisted: u64,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }

    /// How many breaks of `kind` were found (listed ones only).
    pub fn count(&self, kind: BreakKind) -> usize {
        self.breaks.iter().filter(|b| b.kind == kind).count()
    }
}

/// What verification expects besides an unbroken chain.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The operator's public key (hex): checkpoints and witnessed heads
    /// must be signed by it. Without it, signatures are checked against
    /// the key each head names, and checkpoints count as unchecked.
    pub trusted: Option<String>,
    /// The checkpoint interval to expect before any signed head says
    /// which one its signer kept; `None` expects none there.
    pub every: Option<i64>,
    /// The signed-head period: events older than twice this (and half a
    /// minute) must be covered by a signed head. `None` skips the rule.
    pub period: Option<Duration>,
    /// The time to judge the period against; now when `None`.
    pub now: Option<OffsetDateTime>,
    /// Heads kept off the box (read from witness sinks), oldest first.
    pub witness: Vec<Checkpoint>,
}

impl VerifyOptions {
    /// Options that check signatures against `key`, if given, and expect
    /// only what the signed heads themselves say.
    pub fn trusting(key: Option<&AuditKey>) -> VerifyOptions {
        VerifyOptions {
            trusted: key.map(AuditKey::public_hex),
            ..VerifyOptions::default()
        }
    }
}

impl Store {
    /// Walks the whole chain, its head and its checkpoints; with the
    /// operator's key, checkpoints are checked against it. Expects only
    /// what the signed heads say ([`Store::verify_with`] expects more).
    ///
    /// # Errors
    /// A [`StoreError`] when the database cannot be read; a broken chain is
    /// a report, not an error.
    pub async fn verify(&self, trusted: Option<&AuditKey>) -> Result<VerifyReport, StoreError> {
        self.verify_with(&VerifyOptions::trusting(trusted)).await
    }

    /// Walks the whole chain, its head and its checkpoints, and checks
    /// them against what `options` expect and the heads a witness keeps.
    ///
    /// # Errors
    /// As [`Store::verify`].
    pub async fn verify_with(&self, options: &VerifyOptions) -> Result<VerifyReport, StoreError> {
        if let Some(path) = self.sqlite_path() {
            // sqlx hands SQLite rows one by one from its worker thread; a
            // plain read on a blocking thread is an order of magnitude faster.
            let path = path.to_owned();
            let options = options.clone();
            return tokio::task::spawn_blocking(move || verify_sqlite(&path, options))
                .await
                .map_err(|e| StoreError::Database {
                    doing: "verifying the audit chain",
                    reason: e.to_string(),
                })?;
        }
        // One snapshot: events, head and checkpoints as of one moment, so a
        // concurrent append cannot look like tampering.
        let mut tx = crate::tx::Tx::begin(
            self.pool(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )
        .await
        .map_err(StoreError::db("starting a snapshot of the audit chain"))?;
        let result = verify_in(&mut tx, options).await;
        // A read: nothing to keep. A failed ROLLBACK closes the connection.
        let _ = tx.rollback().await;
        result
    }
}

async fn verify_in(
    conn: &mut sqlx::AnyConnection,
    options: &VerifyOptions,
) -> Result<VerifyReport, StoreError> {
    let checkpoints = read_checkpoints(&mut *conn).await?;
    let mut v = Verifier::new(options.clone(), Some(&checkpoints));
    // Pages keep memory flat on long chains.
    const PAGE: i64 = 20_000;
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT {PAGE}"
        ))
        .bind(after)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::db("reading the audit chain"))?;
        let n = rows.len();
        for row in &rows {
            let e = AuditEvent::from_row(row)?;
            after = e.seq;
            v.event(e.as_ref());
        }
        if (n as i64) < PAGE {
            break;
        }
    }
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::db("reading the audit chain head"))?;
    let bad = |e: sqlx::Error| StoreError::Corrupt(format!("the audit head does not decode: {e}"));
    let seq: i64 = row.try_get("seq").map_err(bad)?;
    let hash: String = row.try_get("hash").map_err(bad)?;
    v.head(seq, &hash);
    Ok(v.finish(&checkpoints))
}

fn sql_text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    match r.get_ref(i) {
        Ok(rusqlite::types::ValueRef::Text(t)) => std::str::from_utf8(t)
            .map_err(|e| StoreError::Corrupt(format!("an audit event holds invalid UTF-8: {e}"))),
        Ok(other) => Err(StoreError::Corrupt(format!(
            "an audit event column holds {:?}, not text",
            other.data_type()
        ))),
        Err(e) => Err(StoreError::Corrupt(format!(
            "an audit event does not decode: {e}"
        ))),
    }
}

fn sql_opt_text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    match r.get_ref(i) {
        Ok(rusqlite::types::ValueRef::Null) => Ok(None),
        _ => sql_text(r, i).map(Some),
    }
}

/// Verifies an SQLite file in one read transaction, rows borrowed, no copies.
fn verify_sqlite(
    path: &std::path::Path,
    options: VerifyOptions,
) -> Result<VerifyReport, StoreError> {
    let db = |e: rusqlite::Error| StoreError::Database {
        doing: "reading the audit chain",
        reason: e.to_string(),
    };
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    let tx = conn.transaction().map_err(db)?;
    let checkpoints = read_checkpoints_sqlite(&tx).map_err(db)?;
    let mut v = Verifier::new(options, Some(&checkpoints));
    {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY seq"
            ))
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            v.event(EventRef {
                seq: r.get(0).map_err(db)?,
                at: sql_text(r, 1)?,
                actor: sql_text(r, 2)?,
                action_id: sql_opt_text(r, 3)?,
                host: sql_opt_text(r, 4)?,
                kind: sql_text(r, 5)?,
                payload: sql_text(r, 6)?,
                prev_hash: sql_text(r, 7)?,
                hash: sql_text(r, 8)?,
            });
        }
    }
    let (seq, hash): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db)?;
    v.head(seq, &hash);
    Ok(v.finish(&checkpoints))
}

/// Verifies an export file without the database. The head of an export is
/// its last event, so a cut-off tail shows only against a checkpoint.
///
/// # Errors
/// An I/O error reading the file.
pub fn verify_lines(
    input: impl BufRead,
    trusted_public_key: Option<&str>,
) -> std::io::Result<VerifyReport> {
    verify_lines_with(
        input,
        &VerifyOptions {
            trusted: trusted_public_key.map(str::to_owned),
            ..VerifyOptions::default()
        },
    )
}

/// [`verify_lines`] with what `options` expect and a witness's heads.
///
/// # Errors
/// An I/O error reading the file.
pub fn verify_lines_with(
    input: impl BufRead,
    options: &VerifyOptions,
) -> std::io::Result<VerifyReport> {
    let mut v = Verifier::new(options.clone(), None);
    let mut checkpoints = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ExportLine>(&line) {
            Ok(ExportLine::Header { format, version })
                if format == "jarvis-audit" && version == 1 => {}
            Ok(ExportLine::Header { format, version }) => {
                v.fail(
                    BreakKind::Invalid,
                    0,
                    format!(
                        "line {}: not a Jarvis audit export ({format} v{version})",
                        i + 1
                    ),
                );
            }
            Ok(ExportLine::Event {
                seq,
                at,
                actor,
                action_id,
                host,
                kind,
                payload,
                prev_hash,
                hash,
            }) => {
                let payload = canonical_payload(&payload);
                v.event(EventRef {
                    seq,
                    at: &at,
                    actor: &actor,
                    action_id: action_id.as_deref(),
                    host: host.as_deref(),
                    kind: &kind,
                    payload: &payload,
                    prev_hash: &prev_hash,
                    hash: &hash,
                });
            }
            Ok(ExportLine::Checkpoint(cp)) => checkpoints.push(cp),
            Err(e) => v.fail(
                BreakKind::Invalid,
                v.report.last_seq + 1,
                format!("line {} is not an export line: {e}", i + 1),
            ),
        }
    }
    checkpoints.sort_by_key(|c| c.seq);
    let (seq, hash) = (v.report.last_seq, v.last_hash.clone());
    v.head(seq, &hash);
    Ok(v.finish(&checkpoints))
}

/// The chain checks, shared by the database walk and export files.
struct Verifier {
    options: VerifyOptions,
    report: VerifyReport,
    last_hash: String,
    /// The sequence numbers whose hashes later checks need (checkpoints,
    /// witnessed heads); `None` keeps every hash (export files, whose
    /// checkpoints come last).
    wanted: Option<HashSet<i64>>,
    hashes: HashMap<i64, String>,
    /// The event after the newest checkpoint, whose time the period rule
    /// judges; every event's time for export files that need the rule.
    times: HashMap<i64, String>,
    first_uncovered: Option<i64>,
}

impl Verifier {
    fn new(options: VerifyOptions, checkpoints: Option<&[Checkpoint]>) -> Verifier {
        let wanted = checkpoints.map(|cps| {
            cps.iter()
                .map(|c| c.seq)
                .chain(options.witness.iter().map(|w| w.seq))
                .collect()
        });
        let first_uncovered = checkpoints.map(|cps| cps.last().map_or(1, |c| c.seq + 1));
        Verifier {
            options,
            report: VerifyReport::default(),
            last_hash: GENESIS.to_owned(),
            wanted,
            hashes: HashMap::new(),
            times: HashMap::new(),
            first_uncovered,
        }
    }

    fn fail(&mut self, kind: BreakKind, seq: i64, what: String) {
        if self.report.problem.is_none() {
            self.report.problem = Some(VerifyProblem {
                seq,
                what: what.clone(),
            });
        }
        if self.report.breaks.len() < MAX_LISTED {
            self.report.breaks.push(Break { kind, seq, what });
        } else {
            self.report.unlisted += 1;
        }
    }

    fn event(&mut self, e: EventRef<'_>) {
        self.report.events += 1;
        let expected = self.report.last_seq + 1;
        if e.seq != expected {
            if e.seq > expected {
                self.fail(
                    BreakKind::Gap,
                    expected,
                    format!(
                        "events {expected} to {} are missing: deleted, or the chain was renumbered",
                        e.seq - 1
                    ),
                );
            } else {
                self.fail(
                    BreakKind::Invalid,
                    e.seq,
                    format!(
                        "event {} comes after event {}: events were reordered or duplicated",
                        e.seq, self.report.last_seq
                    ),
                );
            }
        } else if e.prev_hash != self.last_hash {
            self.fail(
                BreakKind::Invalid,
                e.seq,
                format!(
                    "event {} does not follow event {}: it names a different predecessor (inserted, deleted or swapped)",
                    e.seq,
                    e.seq - 1
                ),
            );
        } else if e.expected_hash(e.prev_hash) != e.hash {
            self.fail(
                BreakKind::Invalid,
                e.seq,
                format!(
                    "event {} was changed after it was written: its hash does not match its contents",
                    e.seq
                ),
            );
        }
        self.report.last_seq = e.seq;
        self.last_hash.clear();
        self.last_hash.push_str(e.hash);
        if self.wanted.as_ref().is_none_or(|w| w.contains(&e.seq)) {
            self.hashes.insert(e.seq, e.hash.to_owned());
        }
        let keep_time = match self.first_uncovered {
            Some(first) => e.seq == first,
            None => self.options.period.is_some(),
        };
        if keep_time {
            self.times.insert(e.seq, e.at.to_owned());
        }
    }

    fn head(&mut self, seq: i64, hash: &str) {
        if seq != self.report.last_seq || hash != self.last_hash {
            let kind = if seq > self.report.last_seq {
                BreakKind::Missing
            } else {
                BreakKind::Invalid
            };
            self.fail(
                kind,
                self.report.last_seq.min(seq) + 1,
                format!(
                    "the chain head records {seq} events but the log ends at event {}: events were cut off or added behind Jarvis's back",
                    self.report.last_seq
                ),
            );
        }
    }

    fn finish(mut self, checkpoints: &[Checkpoint]) -> VerifyReport {
        for cp in checkpoints {
            self.checkpoint(cp);
        }
        self.links(checkpoints);
        self.intervals(checkpoints);
        self.period(checkpoints);
        let witness = std::mem::take(&mut self.options.witness);
        self.witness(&witness, checkpoints);
        self.report
    }

    /// The head's own checks: within the log, over the event it names, by
    /// the operator's key.
    fn checkpoint(&mut self, cp: &Checkpoint) {
        if cp.seq > self.report.last_seq {
            self.fail(
                BreakKind::Missing,
                self.report.last_seq + 1,
                format!(
                    "a signed checkpoint covers event {} but the log ends at event {}: its tail was cut off",
                    cp.seq, self.report.last_seq
                ),
            );
            return;
        }
        if self.hashes.get(&cp.seq) != Some(&cp.hash) {
            self.fail(
                BreakKind::Invalid,
                cp.seq,
                format!(
                    "event {} differs from what the checkpoint signed: the chain was rewritten",
                    cp.seq
                ),
            );
            return;
        }
        match self.options.trusted.clone() {
            Some(key) if key != cp.public_key => self.fail(
                BreakKind::Invalid,
                cp.seq,
                format!(
                    "the checkpoint at event {} was signed by another key, not the operator's",
                    cp.seq
                ),
            ),
            Some(_) if !cp.signature_holds() => self.fail(
                BreakKind::Invalid,
                cp.seq,
                format!("the checkpoint at event {} has a bad signature", cp.seq),
            ),
            Some(_) => self.report.checkpoints_verified += 1,
            None => self.report.checkpoints_unchecked += 1,
        }
    }

    /// Each chained head names the one before it.
    fn links(&mut self, checkpoints: &[Checkpoint]) {
        let by_seq: HashMap<i64, &Checkpoint> = checkpoints.iter().map(|c| (c.seq, c)).collect();
        for (i, cp) in checkpoints.iter().enumerate() {
            if cp.version < 2 {
                continue;
            }
            let before = i.checked_sub(1).map(|j| &checkpoints[j]);
            match (cp.previous_seq, before) {
                (None, None) => {}
                (None, Some(b)) => self.fail(
                    BreakKind::Gap,
                    cp.seq,
                    format!(
                        "the signed head at event {} starts a new chain of heads although the head at event {} is before it: heads were removed and the chain started over",
                        cp.seq, b.seq
                    ),
                ),
                (Some(p), _) => match by_seq.get(&p) {
                    None => self.fail(
                        BreakKind::Missing,
                        p,
                        format!(
                            "the signed head at event {p}, which the head at event {} follows, is gone: it was deleted",
                            cp.seq
                        ),
                    ),
                    Some(prev) if Some(&prev.signature) != cp.previous_signature.as_ref() => {
                        self.fail(
                            BreakKind::Invalid,
                            p,
                            format!(
                                "the signed head at event {p} is not the one the head at event {} follows: it was signed again",
                                cp.seq
                            ),
                        );
                    }
                    Some(_) => {
                        if let Some(b) = before.filter(|b| b.seq != p) {
                            self.fail(
                                BreakKind::Invalid,
                                b.seq,
                                format!(
                                    "the signed head at event {} is outside the chain of heads: the head at event {} follows the one at event {p}",
                                    b.seq, cp.seq
                                ),
                            );
                        }
                    }
                },
            }
        }
    }

    /// A checkpoint at every multiple of the interval in force.
    fn intervals(&mut self, checkpoints: &[Checkpoint]) {
        let last = self.report.last_seq;
        let mut every = self.options.every.filter(|n| *n > 0);
        let mut after = 0i64;
        let within: Vec<&Checkpoint> = checkpoints.iter().filter(|c| c.seq <= last).collect();
        for next in within.iter().map(|c| Some(*c)).chain([None]) {
            let until = next.map_or(last, |c| c.seq - 1);
            if let Some(n) = every {
                let first = (after / n + 1) * n;
                if first <= until {
                    let count = (until / n) - (after / n);
                    let more = if count > 1 {
                        format!(
                            " (and {} more multiples of {n}, to event {})",
                            count - 1,
                            (until / n) * n
                        )
                    } else {
                        String::new()
                    };
                    self.fail(
                        BreakKind::Missing,
                        first,
                        format!(
                            "no signed checkpoint at event {first}{more}, though one is due at every multiple of {n}: it was deleted, or the writer did not sign"
                        ),
                    );
                }
            }
            if let Some(c) = next {
                every = c.every.filter(|n| *n > 0).or(every);
                after = c.seq;
            }
        }
    }

    /// Events older than the signed-head period are covered by a head.
    fn period(&mut self, checkpoints: &[Checkpoint]) {
        let Some(period) = self.options.period else {
            return;
        };
        let last = self.report.last_seq;
        let within: Vec<&Checkpoint> = checkpoints.iter().filter(|c| c.seq <= last).collect();
        // Heads written before they were chained keep no period: a log
        // from then is judged from its first chained head on.
        if within.last().is_some_and(|c| c.version < 2) {
            return;
        }
        let covered = within.last().map_or(0, |c| c.seq);
        if covered >= last {
            return;
        }
        let first = covered + 1;
        let Some(at) = self.times.get(&first).cloned() else {
            return;
        };
        let Ok(written) = parse_time(&at) else {
            self.fail(
                BreakKind::Invalid,
                first,
                format!("event {first} has no readable time (`{at}`)"),
            );
            return;
        };
        let now = self.options.now.unwrap_or_else(OffsetDateTime::now_utc);
        let allowed = period * 2 + HEAD_GRACE;
        if now - written > allowed {
            self.fail(
                BreakKind::Missing,
                first,
                format!(
                    "no signed head covers events {first} to {last}, and event {first} was written at {at}, more than {}s ago (a head is due every {}s): a head signed since was deleted, or the process that wrote them stopped without signing",
                    allowed.as_secs(),
                    period.as_secs()
                ),
            );
        }
    }

    /// Every head a witness keeps is still on the chain as it was signed,
    /// and every head signed in the stretch the witness saw reached it.
    fn witness(&mut self, witness: &[Checkpoint], checkpoints: &[Checkpoint]) {
        if witness.is_empty() {
            return;
        }
        let by_seq: HashMap<i64, &Checkpoint> = checkpoints.iter().map(|c| (c.seq, c)).collect();
        let last = self.report.last_seq;
        for w in witness {
            let signed = match &self.options.trusted {
                Some(key) => *key == w.public_key && w.signature_holds(),
                None => w.signature_holds(),
            };
            if !signed {
                self.fail(
                    BreakKind::Invalid,
                    w.seq,
                    format!(
                        "the witness's head at event {} is not signed by the operator's key: the witness itself was written to",
                        w.seq
                    ),
                );
                continue;
            }
            if w.seq > last {
                self.fail(
                    BreakKind::Missing,
                    last + 1,
                    format!(
                        "the witness holds a signed head at event {} but the log ends at event {last}: its tail was cut off",
                        w.seq
                    ),
                );
                continue;
            }
            if self.hashes.get(&w.seq) != Some(&w.hash) {
                self.fail(
                    BreakKind::Invalid,
                    w.seq,
                    format!(
                        "event {} is not what the head the witness holds covers: the chain was rewritten after the head was shipped (and re-signed, if its checkpoints still verify)",
                        w.seq
                    ),
                );
                continue;
            }
            match by_seq.get(&w.seq) {
                None => self.fail(
                    BreakKind::Missing,
                    w.seq,
                    format!(
                        "the signed head at event {} that the witness holds is gone from the log: it was deleted",
                        w.seq
                    ),
                ),
                Some(cp) if cp.signature != w.signature => self.fail(
                    BreakKind::Invalid,
                    w.seq,
                    format!(
                        "the signed head at event {} is not the one the witness holds: it was signed again",
                        w.seq
                    ),
                ),
                Some(_) => self.report.witnessed += 1,
            }
        }
        // Shipping sends every head after the witness's newest, so within
        // the stretch it saw, a head it lacks was made behind its back.
        let held: HashSet<i64> = witness.iter().map(|w| w.seq).collect();
        let (first, newest) = (
            witness.iter().map(|w| w.seq).min().unwrap_or(0),
            witness.iter().map(|w| w.seq).max().unwrap_or(0),
        );
        for cp in checkpoints {
            if cp.seq > first && cp.seq < newest && !held.contains(&cp.seq) {
                self.fail(
                    BreakKind::Gap,
                    cp.seq,
                    format!(
                        "the witness never got the signed head at event {}: it was made behind the gateway's back",
                        cp.seq
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use crate::heads::HEAD_VERSION;

    const AT: &str = "2026-11-23T14:00:00Z";

    fn events(n: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = AuditEvent {
                    seq,
                    at: AT.into(),
                    actor: "operator".into(),
                    action_id: None,
                    host: None,
                    kind: "test.event".into(),
                    payload: format!("{{\"i\":{seq}}}"),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.expected_hash(&prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    /// Heads at `seqs`, each linked to the one before it in the list.
    async fn heads(key: &AuditKey, events: &[AuditEvent], seqs: &[i64]) -> Vec<Checkpoint> {
        let mut out: Vec<Checkpoint> = Vec::new();
        for &seq in seqs {
            let before = out.last();
            let mut cp = Checkpoint {
                seq,
                hash: events[usize::try_from(seq - 1).expect("seq")].hash.clone(),
                signed_at: AT.into(),
                public_key: key.public_hex(),
                signature: String::new(),
                version: HEAD_VERSION,
                every: Some(5),
                reason: Some("periodic".into()),
                previous_seq: before.map(|b| b.seq),
                previous_signature: before.map(|b| b.signature.clone()),
            };
            cp.signature = key
                .sign(cp.signed_message().as_bytes())
                .await
                .expect("sign");
            out.push(cp);
        }
        out
    }

    fn export(events: &[AuditEvent], heads: &[Checkpoint]) -> String {
        let mut lines = vec![r#"{"type":"header","format":"jarvis-audit","version":1}"#.to_owned()];
        for e in events {
            lines.push(
                serde_json::to_string(&ExportLine::Event {
                    seq: e.seq,
                    at: e.at.clone(),
                    actor: e.actor.clone(),
                    action_id: None,
                    host: None,
                    kind: e.kind.clone(),
                    payload: serde_json::from_str(&e.payload).expect("json"),
                    prev_hash: e.prev_hash.clone(),
                    hash: e.hash.clone(),
                })
                .expect("line"),
            );
        }
        for h in heads {
            lines.push(serde_json::to_string(&ExportLine::Checkpoint(h.clone())).expect("line"));
        }
        lines.join("\n")
    }

    fn kinds(r: &VerifyReport) -> Vec<(BreakKind, i64)> {
        r.breaks.iter().map(|b| (b.kind, b.seq)).collect()
    }

    fn run(text: &str, options: &VerifyOptions) -> VerifyReport {
        verify_lines_with(text.as_bytes(), options).expect("read")
    }

    #[tokio::test]
    async fn each_break_has_its_kind_and_place() {
        let key = AuditKey::ephemeral();
        let trusting = VerifyOptions {
            trusted: Some(key.public_hex()),
            ..VerifyOptions::default()
        };
        let ev = events(12);
        let all = heads(&key, &ev, &[5, 7, 10, 12]).await;
        let r = run(&export(&ev, &all), &trusting);
        assert!(r.is_intact(), "{:?}", r.breaks);
        assert_eq!(r.checkpoints_verified, 4);

        // A head taken out of the middle: the next names it (missing).
        let without_7: Vec<Checkpoint> = all.iter().filter(|h| h.seq != 7).cloned().collect();
        let r = run(&export(&ev, &without_7), &trusting);
        assert_eq!(kinds(&r), [(BreakKind::Missing, 7)], "{:?}", r.breaks);

        // The checkpoint at a multiple of the interval (5, signed into it).
        let without_10: Vec<Checkpoint> = all.iter().filter(|h| h.seq != 10).cloned().collect();
        let r = run(&export(&ev, &without_10), &trusting);
        assert_eq!(
            kinds(&r),
            [(BreakKind::Missing, 10), (BreakKind::Missing, 10)],
            "named by the next head and due by the interval: {:?}",
            r.breaks
        );

        // Heads that start over after earlier ones: a gap.
        let restarted = [
            heads(&key, &ev, &[5]).await,
            heads(&key, &ev, &[10, 12]).await,
        ]
        .concat();
        let r = run(&export(&ev, &restarted), &trusting);
        assert_eq!(kinds(&r), [(BreakKind::Gap, 10)], "{:?}", r.breaks);

        // Events missing from the middle: a gap where they were.
        let holed: Vec<AuditEvent> = ev.iter().filter(|e| e.seq != 3).cloned().collect();
        let r = run(&export(&holed, &all), &trusting);
        assert_eq!(kinds(&r)[0], (BreakKind::Gap, 3), "{:?}", r.breaks);

        // A head by another key: invalid.
        let other = AuditKey::ephemeral();
        let foreign = [all[..3].to_vec(), heads(&other, &ev, &[12]).await].concat();
        let r = run(&export(&ev, &foreign), &trusting);
        assert!(
            kinds(&r).contains(&(BreakKind::Invalid, 12)),
            "{:?}",
            r.breaks
        );
    }

    #[tokio::test]
    async fn the_period_and_the_witness_are_judged_too() {
        let key = AuditKey::ephemeral();
        let ev = events(12);
        let signed = heads(&key, &ev, &[5, 10]).await;
        // Events 11 and 12 were written at AT; judged a day later, a head
        // over them was due long ago.
        let late = VerifyOptions {
            period: Some(Duration::from_secs(60)),
            now: Some(crate::parse_time("2026-11-24").expect("time")),
            ..VerifyOptions::default()
        };
        let r = run(&export(&ev, &signed), &late);
        assert_eq!(kinds(&r), [(BreakKind::Missing, 11)], "{:?}", r.breaks);
        // Judged within the period, they may still be waiting for it.
        let soon = VerifyOptions {
            now: Some(crate::parse_time("2026-11-23T14:01:00Z").expect("time")),
            ..late.clone()
        };
        assert!(run(&export(&ev, &signed), &soon).is_intact());

        // The witness got 5, 7 and 12; the log has 5, 10 and 12 instead.
        let shipped = heads(&key, &ev, &[5, 7, 12]).await;
        let replaced = [
            shipped[..1].to_vec(),
            heads(&key, &ev, &[10]).await,
            shipped[2..].to_vec(),
        ]
        .concat();
        let r = run(
            &export(&ev, &replaced),
            &VerifyOptions {
                witness: shipped,
                ..VerifyOptions::default()
            },
        );
        let found = kinds(&r);
        assert!(found.contains(&(BreakKind::Missing, 7)), "{:?}", r.breaks);
        assert!(found.contains(&(BreakKind::Gap, 10)), "{:?}", r.breaks);
        // 5 and 12 are as shipped; the chain of heads says what is wrong.
        assert_eq!(r.witnessed, 2);
    }
}
