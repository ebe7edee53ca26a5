//! The attack of someone who holds the database and the local signing key:
//! rewrite events, recompute every hash and the head, and sign every
//! checkpoint again, linked as Jarvis links them. Only a witness off the
//! box can tell. Shared by the store's tests (tests/heads.rs) and the
//! end-to-end witness tests (tests/tests/audit_witness.rs).

use std::collections::HashMap;

use jarvis_store::{AuditEvent, AuditKey, Checkpoint};

/// SQL that drops nothing itself (put `drop_triggers` in front), replaces
/// `events` (oldest first) as `rewrite` changes them with every hash
/// recomputed from the genesis, moves the head, and replaces the
/// checkpoints `old` by ones signed again with `key`.
pub async fn rechain_and_resign_sql(
    events: Vec<AuditEvent>,
    old: Vec<Checkpoint>,
    key: &AuditKey,
    mut rewrite: impl FnMut(&mut AuditEvent),
) -> String {
    let quoted = |s: &str| s.replace('\'', "''");
    let mut sql = String::new();
    let mut prev = "0".repeat(64);
    let mut hashes = HashMap::new();
    for mut e in events {
        rewrite(&mut e);
        e.prev_hash = prev.clone();
        e.hash = e.expected_hash(&prev);
        prev = e.hash.clone();
        hashes.insert(e.seq, e.hash.clone());
        sql.push_str(&format!(
            " UPDATE audit_events SET actor = '{}', payload = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {};",
            quoted(&e.actor),
            quoted(&e.payload),
            e.prev_hash,
            e.hash,
            e.seq
        ));
    }
    sql.push_str(&format!(
        " UPDATE audit_head SET hash = '{prev}'; DELETE FROM audit_checkpoints;"
    ));
    let mut previous: Option<(i64, String)> = None;
    for cp in old {
        let mut forged = Checkpoint {
            hash: hashes[&cp.seq].clone(),
            previous_seq: previous.as_ref().map(|p| p.0),
            previous_signature: previous.as_ref().map(|p| p.1.clone()),
            ..cp
        };
        forged.signature = key
            .sign(forged.signed_message().as_bytes())
            .await
            .expect("sign");
        sql.push_str(&format!(
            " INSERT INTO audit_checkpoints (seq, hash, signed_at, public_key, signature, version, every, reason, previous_seq, previous_signature) \
             VALUES ({}, '{}', '{}', '{}', '{}', {}, {}, '{}', {}, {});",
            forged.seq,
            forged.hash,
            forged.signed_at,
            forged.public_key,
            forged.signature,
            forged.version,
            forged.every.map_or("NULL".into(), |n| n.to_string()),
            forged.reason.clone().unwrap_or_default(),
            forged.previous_seq.map_or("NULL".into(), |n| n.to_string()),
            forged
                .previous_signature
                .as_ref()
                .map_or("NULL".into(), |s| format!("'{s}'")),
        ));
        previous = Some((forged.seq, forged.signature.clone()));
    }
    sql
}
