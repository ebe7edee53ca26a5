//! Signed heads of the audit chain (checkpoints).
//!
//! A head is signed at every multiple of the interval, in the transaction
//! of the event that reaches it, and whenever a process asks (periodically,
//! at start, at shutdown). Each head signs its place in the chain *and* the
//! head signed before it, so the heads form a chain of their own: deleting
//! one from the database shows at the next, and only the newest can be cut
//! without a trace in the database itself. That newest head is what a
//! witness off the box keeps (see the gateway's `witness` module).

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::canonical_payload;
use crate::signing::{AuditKey, checkpoint_message};
use crate::{Store, StoreError, now};

/// The form of head every new checkpoint is written in.
pub const HEAD_VERSION: u32 = 2;

/// A signed snapshot of the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The head's sequence number when signed.
    pub seq: i64,
    /// The head's hash when signed.
    pub hash: String,
    /// When.
    pub signed_at: String,
    /// The signer's ed25519 public key, hex.
    pub public_key: String,
    /// The signature over [`Checkpoint::signed_message`], hex.
    pub signature: String,
    /// 1: the signature covers `SEQ:HASH` only (written before heads were
    /// chained); 2: it covers every field below as well.
    #[serde(default = "first_version")]
    pub version: u32,
    /// The checkpoint interval (in events) the signer kept: the next
    /// checkpoint is due at the next multiple of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<i64>,
    /// Why it was signed: `interval`, `periodic`, `startup`, `shutdown`,
    /// `exit` (a command-line process ending), `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The head signed before this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_seq: Option<i64>,
    /// That head's signature, so a head put in its place shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_signature: Option<String>,
}

fn first_version() -> u32 {
    1
}

impl Checkpoint {
    /// The text the signature covers.
    pub fn signed_message(&self) -> String {
        if self.version < 2 {
            return checkpoint_message(self.seq, &self.hash);
        }
        format!(
            "jarvis-audit-head:v2:{}",
            canonical_payload(&json!({
                "seq": self.seq,
                "hash": self.hash,
                "signed_at": self.signed_at,
                "every": self.every,
                "reason": self.reason,
                "previous_seq": self.previous_seq,
                "previous_signature": self.previous_signature,
            }))
        )
    }

    /// Whether the signature is `public_key`'s over [`Checkpoint::signed_message`].
    pub fn signature_holds(&self) -> bool {
        crate::signing::verify_signature(&self.public_key, &self.signed_message(), &self.signature)
    }
}

const HEAD_COLUMNS: &str = "seq, hash, signed_at, public_key, signature, version, every, reason, previous_seq, previous_signature";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Checkpoint, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt(format!("a checkpoint does not decode: {e}"));
    let version: i64 = r.try_get("version").map_err(get)?;
    Ok(Checkpoint {
        seq: r.try_get("seq").map_err(get)?,
        hash: r.try_get("hash").map_err(get)?,
        signed_at: r.try_get("signed_at").map_err(get)?,
        public_key: r.try_get("public_key").map_err(get)?,
        signature: r.try_get("signature").map_err(get)?,
        version: u32::try_from(version).unwrap_or(0),
        every: r.try_get("every").map_err(get)?,
        reason: r.try_get("reason").map_err(get)?,
        previous_seq: r.try_get("previous_seq").map_err(get)?,
        previous_signature: r.try_get("previous_signature").map_err(get)?,
    })
}

/// Every checkpoint, oldest first.
pub(crate) async fn read_checkpoints(
    conn: &mut AnyConnection,
) -> Result<Vec<Checkpoint>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_checkpoints ORDER BY seq"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("reading audit checkpoints"))?;
    rows.iter().map(from_row).collect()
}

/// Reads checkpoints from an SQLite file in the verifier's read
/// transaction.
pub(crate) fn read_checkpoints_sqlite(
    tx: &rusqlite::Transaction<'_>,
) -> Result<Vec<Checkpoint>, rusqlite::Error> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {HEAD_COLUMNS} FROM audit_checkpoints ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let version: i64 = r.get(5)?;
        out.push(Checkpoint {
            seq: r.get(0)?,
            hash: r.get(1)?,
            signed_at: r.get(2)?,
            public_key: r.get(3)?,
            signature: r.get(4)?,
            version: u32::try_from(version).unwrap_or(0),
            every: r.get(6)?,
            reason: r.get(7)?,
            previous_seq: r.get(8)?,
            previous_signature: r.get(9)?,
        });
    }
    Ok(out)
}

/// Signs the head `seq`/`hash` and stores it, linked to the newest head
/// before it. The caller holds the chain's lock, which is what makes "the
/// newest head" one head.
pub(crate) async fn insert_checkpoint(
    conn: &mut AnyConnection,
    key: &AuditKey,
    every: Option<i64>,
    reason: &str,
    seq: i64,
    hash: &str,
) -> Result<Checkpoint, StoreError> {
    let previous = sqlx::query(
        "SELECT seq, signature FROM audit_checkpoints WHERE seq < $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(seq)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("reading the newest audit checkpoint"))?;
    let (previous_seq, previous_signature) = match previous {
        Some(r) => {
            let bad = |e: sqlx::Error| {
                StoreError::Corrupt(format!("the newest checkpoint does not decode: {e}"))
            };
            (
                Some(r.try_get::<i64, _>("seq").map_err(bad)?),
                Some(r.try_get::<String, _>("signature").map_err(bad)?),
            )
        }
        None => (None, None),
    };
    let mut cp = Checkpoint {
        seq,
        hash: hash.to_owned(),
        signed_at: now(),
        public_key: key.public_hex(),
        signature: String::new(),
        version: HEAD_VERSION,
        every,
        reason: Some(reason.to_owned()),
        previous_seq,
        previous_signature,
    };
    cp.signature = key.sign(cp.signed_message().as_bytes()).await?;
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, signed_at, public_key, signature, version, every, reason, previous_seq, previous_signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(cp.seq)
    .bind(&cp.hash)
    .bind(&cp.signed_at)
    .bind(&cp.public_key)
    .bind(&cp.signature)
    .bind(i64::from(cp.version))
    .bind(cp.every)
    .bind(&cp.reason)
    .bind(cp.previous_seq)
    .bind(&cp.previous_signature)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("writing an audit checkpoint"))?;
    Ok(cp)
}

impl Store {
    /// Signs the current head now with the store's key, unless it is
    /// already signed or the log is empty; `reason` is recorded in the
    /// signed head (`periodic`, `startup`, `shutdown`, `exit`, `manual`).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the store has no key
    /// ([`Store::with_checkpoints`]), [`StoreError::Signing`] when the key
    /// cannot sign, or a database error.
    pub async fn sign_head(&self, reason: &str) -> Result<Option<Checkpoint>, StoreError> {
        let Some((key, every)) = self.signer() else {
            return Err(StoreError::Invalid(
                "this store has no audit key to sign the head with".into(),
            ));
        };
        let (mut tx, (seq, hash)) = self.begin_write().await?;
        let exists = sqlx::query("SELECT seq FROM audit_checkpoints WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("reading audit checkpoints"))?;
        if seq == 0 || exists.is_some() {
            return Ok(None);
        }
        let cp = insert_checkpoint(&mut tx, key, Some(*every), reason, seq, &hash).await?;
        tx.commit()
            .await
            .map_err(self.db("committing an audit checkpoint"))?;
        Ok(Some(cp))
    }

    /// Checkpoints after `seq`, oldest first: what a witness has not got
    /// yet.
    ///
    /// # Errors
    /// A database error.
    pub async fn checkpoints_after(&self, seq: i64) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_checkpoints WHERE seq > $1 ORDER BY seq"
        ))
        .bind(seq)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading audit checkpoints"))?;
        rows.iter().map(from_row).collect()
    }

    /// The newest checkpoint, if any.
    ///
    /// # Errors
    /// A database error.
    pub async fn newest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {HEAD_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading audit checkpoints"))?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every checkpoint, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.checkpoints_after(0).await
    }

    /// Whether the log still holds `head` as it was signed: the event at
    /// its sequence number with its hash, and the checkpoint itself. `None`
    /// when it does; otherwise what is different, in words. A witness asks
    /// this of the newest head it keeps before it takes another: a chain
    /// cut or rewritten behind it must not be signed again.
    ///
    /// # Errors
    /// A database error.
    pub async fn missing_head(&self, head: &Checkpoint) -> Result<Option<String>, StoreError> {
        let event = sqlx::query("SELECT hash FROM audit_events WHERE seq = $1")
            .bind(head.seq)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("reading an audit event"))?;
        let bad =
            |e: sqlx::Error| StoreError::Corrupt(format!("an audit event does not decode: {e}"));
        match event {
            None => {
                return Ok(Some(format!(
                    "the log no longer has event {}, which a signed head covers: its tail was cut off",
                    head.seq
                )));
            }
            Some(r) if r.try_get::<String, _>("hash").map_err(bad)? != head.hash => {
                return Ok(Some(format!(
                    "event {} is not the one the signed head covers: the chain was rewritten",
                    head.seq
                )));
            }
            Some(_) => {}
        }
        let stored = sqlx::query("SELECT signature FROM audit_checkpoints WHERE seq = $1")
            .bind(head.seq)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("reading audit checkpoints"))?;
        Ok(match stored {
            None => Some(format!(
                "the signed head at event {} is gone from the log: it was deleted",
                head.seq
            )),
            Some(r) if r.try_get::<String, _>("signature").map_err(bad)? != head.signature => {
                Some(format!(
                    "the signed head at event {} was replaced by another signature",
                    head.seq
                ))
            }
            Some(_) => None,
        })
    }
}
