//! What an action will run, committed to in the chain.
//!
//! The audit log keeps a proposal's command redacted, and an edit as its
//! path alone, so the chain by itself does not say what was approved. A
//! proposal's event therefore carries a commitment: a salted SHA-256 of
//! each field that decides what runs (the unredacted command, `cwd`,
//! timeout, edit, snapshot plan, host, kind, the action a rollback names,
//! who asked and who is accountable).
//! A new snapshot plan is committed to with the event that records it.
//! Before an action runs, its stored fields are hashed again and compared:
//! a database writer who changes what an approved action will run is
//! refused at execution, not discovered later.
//!
//! The salt is there so that no table made in advance maps digests back
//! to commands; a secret that can be guessed can still be confirmed from
//! its digest, as it can from the actions table, which holds it in the
//! clear.

use rand_core::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::actions::{ActionRecord, NewAction};
use crate::audit::{AuditEvent, EVENT_COLUMNS, NewEvent};
use crate::{Store, StoreError, canonical_payload};

/// The fields a proposal commits to, by their names in the commitment.
const FIELDS: [&str; 10] = [
    "command",
    "cwd",
    "timeout_secs",
    "edit",
    "plan",
    "host",
    "kind",
    "rollback_of",
    // Who asked and who answers for it: the approval rule refuses the
    // accountable person, so a writer who changed it could approve alone.
    "requester",
    "accountable",
];

/// The commitment a proposal's event carries, under `commitment`;
/// `accountable` is the person resolved for it in the same transaction.
pub(crate) fn of(new: &NewAction, accountable: &str) -> Value {
    commit(&[
        ("command", json!(new.command)),
        ("cwd", json!(new.cwd)),
        ("timeout_secs", json!(new.timeout_secs)),
        ("edit", json!(new.edit)),
        ("plan", json!(new.plan)),
        (
            "host",
            json!(new.host.as_ref().map(jarvis_core::HostName::to_string)),
        ),
        ("kind", json!(new.kind.as_str())),
        ("rollback_of", json!(new.rollback_of.map(|r| r.to_string()))),
        ("requester", json!(new.requester)),
        ("accountable", json!(accountable)),
    ])
}

/// The commitment to a new snapshot plan, for the event that records it.
pub(crate) fn of_plan(plan: &Value) -> Value {
    commit(&[("plan", plan.clone())])
}

fn commit(fields: &[(&str, Value)]) -> Value {
    let mut salt = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut salt);
    let salt = hex::encode(salt);
    let mut out = serde_json::Map::new();
    for (name, value) in fields {
        out.insert((*name).to_owned(), json!(digest(&salt, name, value)));
    }
    out.insert("salt".into(), json!(salt));
    Value::Object(out)
}

fn digest(salt: &str, field: &str, value: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\n");
    h.update(field.as_bytes());
    h.update(b"\n");
    h.update(canonical_payload(value).as_bytes());
    hex::encode(h.finalize())
}

/// The action's fields as they are stored now, by commitment name.
fn stored(action: &ActionRecord, field: &str) -> Value {
    match field {
        "command" => json!(action.command),
        "cwd" => json!(action.cwd),
        "timeout_secs" => json!(action.timeout_secs),
        "edit" => json!(action.edit),
        "plan" => json!(action.plan),
        "host" => json!(action.host),
        "kind" => json!(action.kind.as_str()),
        "rollback_of" => json!(action.rollback_of.map(|r| r.to_string())),
        "requester" => json!(action.requester),
        "accountable" => json!(action.accountable),
        _ => Value::Null,
    }
}

impl Store {
    /// Checks that what `action` would run is what its proposal (and any
    /// later new snapshot plan) committed to in the chain, and that those
    /// events are still as chained. On a mismatch it records an
    /// `action.refused` event naming the fields and refuses.
    ///
    /// # Errors
    /// [`StoreError::Tampered`] naming the fields that differ (or that no
    /// commitment is on the chain), or a database error.
    pub async fn check_commitment(&self, action: &ActionRecord) -> Result<(), StoreError> {
        let differ = self.uncommitted_fields(action).await?;
        if differ.is_empty() {
            return Ok(());
        }
        self.append(NewEvent {
            actor: "gateway".into(),
            action_id: Some(action.id),
            host: action.host.as_ref().map(jarvis_core::HostName::to_string),
            kind: "action.refused".into(),
            payload: json!({
                "code": "stored-fields-changed",
                "reason": format!("the stored fields ({}) no longer match what was chained when it was proposed", differ.join(", ")),
                "fields": differ,
                "state": action.state.as_str(),
            }),
        })
        .await?;
        Err(StoreError::Tampered {
            id: action.id.to_string(),
            fields: differ,
        })
    }

    /// The fields of `action` that differ from their commitment, or a word
    /// on why there is nothing to compare with; empty when all match.
    async fn uncommitted_fields(&self, action: &ActionRecord) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE action_id = $1 ORDER BY seq"
        ))
        .bind(action.id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading an action's audit events"))?;
        let mut committed: std::collections::HashMap<&str, (String, String)> =
            std::collections::HashMap::new();
        let mut proposed = false;
        for row in &rows {
            let event = AuditEvent::from_row(row)?;
            let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
            let Some(commitment) = payload.get("commitment").and_then(Value::as_object) else {
                continue;
            };
            if event.kind == "action.proposed" {
                proposed = true;
            } else if !proposed {
                continue;
            }
            if !self.still_chained(&event).await? {
                return Ok(vec![format!(
                    "all: event {} that committed to them is no longer as chained",
                    event.seq
                )]);
            }
            let Some(salt) = commitment.get("salt").and_then(Value::as_str) else {
                continue;
            };
            for field in FIELDS {
                if let Some(d) = commitment.get(field).and_then(Value::as_str) {
                    committed.insert(field, (salt.to_owned(), d.to_owned()));
                }
            }
        }
        if !proposed {
            return Ok(vec![
                "all: its proposal carries no commitment (it is gone, or from before commitments)"
                    .into(),
            ]);
        }
        Ok(FIELDS
            .iter()
            .filter(|field| match committed.get(*field) {
                Some((salt, d)) => digest(salt, field, &stored(action, field)) != *d,
                None => true,
            })
            .map(|f| (*f).to_owned())
            .collect())
    }

    /// Whether `event` hashes to its stored hash and the chain goes on
    /// from it: the next event names it, or it is the head.
    async fn still_chained(&self, event: &AuditEvent) -> Result<bool, StoreError> {
        if event.expected_hash(&event.prev_hash) != event.hash {
            return Ok(false);
        }
        let bad =
            |e: sqlx::Error| StoreError::Corrupt(format!("an audit event does not decode: {e}"));
        // The head first: if it is past this event, the next event exists
        // whatever is appended meanwhile.
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading the audit chain head"))?;
        if head.try_get::<i64, _>("seq").map_err(bad)? == event.seq {
            return Ok(head.try_get::<String, _>("hash").map_err(bad)? == event.hash);
        }
        let next = sqlx::query("SELECT prev_hash FROM audit_events WHERE seq = $1")
            .bind(event.seq + 1)
            .fetch_optional(self.pool())
            .await
            .map_err(StoreError::db("reading an audit event"))?;
        Ok(match next {
            Some(r) => r.try_get::<String, _>("prev_hash").map_err(bad)? == event.hash,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commitment_covers_every_field_under_its_own_salt() {
        let plan = json!({"repos": ["/srv/app"]});
        let a = commit(&[("command", json!("rm -rf /tmp/x")), ("plan", plan.clone())]);
        let b = commit(&[("command", json!("rm -rf /tmp/x")), ("plan", plan)]);
        // Salted: the same command never gives the same digest twice.
        assert_ne!(a["command"], b["command"]);
        let salt = a["salt"].as_str().expect("salt");
        assert_eq!(
            a["command"],
            json!(digest(salt, "command", &json!("rm -rf /tmp/x")))
        );
        assert_ne!(
            a["command"],
            json!(digest(salt, "command", &json!("rm -rf /tmp/y")))
        );
        // The field's name is hashed too: a digest cannot move fields.
        assert_ne!(
            digest(salt, "command", &json!("x")),
            digest(salt, "cwd", &json!("x"))
        );
        assert_eq!(of_plan(&json!(null)).as_object().map(|m| m.len()), Some(2));
    }
}
