//! Conversations with the planner and their messages.
//!
//! A message is stored whole; the audit log gets its role, size and
//! SHA-256 (in the same transaction), and the action it is about, so a
//! conversation's steps are linked to its actions in the chain without
//! copying model text (which can hold anything) into it.

use jarvis_core::{ActionId, ConversationId};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{NewEvent, WriteTx, append_locked};
use crate::{Store, StoreError, now};

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationRecord {
    /// Its id.
    pub id: ConversationId,
    /// When it started.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Who started it (`user:alice`, `local:root`).
    pub started_by: String,
    /// The first request, shortened.
    pub title: String,
    /// `active`, `finished` or `stopped`.
    pub state: String,
    /// How it ended, in words.
    pub outcome: Option<String>,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRecord {
    /// Its position in the conversation, from 1.
    pub seq: i64,
    /// When.
    pub at: String,
    /// `system`, `user`, `assistant`, `tool` or `event`.
    pub role: String,
    /// The message.
    pub content: Value,
    /// The action it is about, if any.
    pub action_id: Option<ActionId>,
}

const TITLE_CHARS: usize = 120;

impl ConversationRecord {
    fn from_row(row: &AnyRow) -> Result<ConversationRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("conversation {what}: {e}"))
        };
        let id: String = row.try_get("id").map_err(|e| bad("id", &e))?;
        Ok(ConversationRecord {
            id: id.parse().map_err(|e| bad("id", &e))?,
            created_at: row
                .try_get("created_at")
                .map_err(|e| bad("created_at", &e))?,
            updated_at: row
                .try_get("updated_at")
                .map_err(|e| bad("updated_at", &e))?,
            started_by: row
                .try_get("started_by")
                .map_err(|e| bad("started_by", &e))?,
            title: row.try_get("title").map_err(|e| bad("title", &e))?,
            state: row.try_get("state").map_err(|e| bad("state", &e))?,
            outcome: row.try_get("outcome").map_err(|e| bad("outcome", &e))?,
        })
    }
}

impl MessageRecord {
    fn from_row(row: &AnyRow) -> Result<MessageRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("conversation message {what}: {e}"))
        };
        let content: String = row.try_get("content").map_err(|e| bad("content", &e))?;
        let action: Option<String> = row.try_get("action_id").map_err(|e| bad("action_id", &e))?;
        Ok(MessageRecord {
            seq: row.try_get("seq").map_err(|e| bad("seq", &e))?,
            at: row.try_get("at").map_err(|e| bad("at", &e))?,
            role: row.try_get("role").map_err(|e| bad("role", &e))?,
            content: serde_json::from_str(&content).map_err(|e| bad("content", &e))?,
            action_id: action
                .map(|a| a.parse())
                .transpose()
                .map_err(|e| bad("action_id", &e))?,
        })
    }
}

const CONVERSATION_COLUMNS: &str = "id, created_at, updated_at, started_by, title, state, outcome";

/// Stores message `content` as the next of conversation `id`, touches the
/// conversation, and chains its `conversation.message` event, inside the
/// caller's write transaction.
async fn insert_message(
    tx: &mut WriteTx,
    head: &mut (i64, String),
    store: &Store,
    id: ConversationId,
    role: &str,
    content: &Value,
    action: Option<ActionId>,
) -> Result<i64, StoreError> {
    let text = content.to_string();
    let row = sqlx::query(
        "SELECT COALESCE(MAX(m.seq), 0) AS last, c.started_by AS started_by \
         FROM conversations c LEFT JOIN conversation_messages m ON m.conversation_id = c.id \
         WHERE c.id = $1 GROUP BY c.started_by",
    )
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(StoreError::db("reading a conversation"))?
    .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))?;
    let last: i64 = row
        .try_get("last")
        .map_err(|e| StoreError::Corrupt(format!("conversation {id}: {e}")))?;
    let seq = last + 1;
    let at = now();
    sqlx::query(
        "INSERT INTO conversation_messages (conversation_id, seq, at, role, content, action_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(seq)
    .bind(&at)
    .bind(role)
    .bind(&text)
    .bind(action.map(|a| a.to_string()))
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("storing a conversation message"))?;
    sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2")
        .bind(&at)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("touching a conversation"))?;
    let event = NewEvent {
        actor: id.requester(),
        action_id: action,
        host: None,
        kind: "conversation.message".into(),
        payload: json!({
            "conversation": id.to_string(),
            "seq": seq,
            "role": role,
            "bytes": text.len(),
            "sha256": hex::encode(Sha256::digest(text.as_bytes())),
        }),
    };
    append_locked(tx, head, event, store.signer()).await?;
    Ok(seq)
}

impl Store {
    /// Starts a conversation, with the `conversation.started` event.
    ///
    /// # Errors
    /// A database error; nothing is written then.
    pub async fn create_conversation(
        &self,
        started_by: &str,
        request: &str,
    ) -> Result<ConversationRecord, StoreError> {
        let id = ConversationId::new();
        let title: String = request.trim().chars().take(TITLE_CHARS).collect();
        let at = now();
        let (mut tx, mut head) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO conversations (id, created_at, updated_at, started_by, title, state) \
             VALUES ($1, $2, $2, $3, $4, 'active')",
        )
        .bind(id.to_string())
        .bind(&at)
        .bind(started_by)
        .bind(&title)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("starting a conversation"))?;
        let event = NewEvent {
            actor: started_by.to_owned(),
            action_id: None,
            host: None,
            kind: "conversation.started".into(),
            payload: json!({ "conversation": id.to_string(), "title": title }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a new conversation"))?;
        Ok(ConversationRecord {
            id,
            created_at: at.clone(),
            updated_at: at,
            started_by: started_by.to_owned(),
            title,
            state: "active".into(),
            outcome: None,
        })
    }

    /// Appends a message, with a `conversation.message` event that carries
    /// its role, size, SHA-256 and action, not its text. Returns its seq.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown conversation, or a database
    /// error; nothing is written then.
    pub async fn add_message(
        &self,
        id: ConversationId,
        role: &str,
        content: &Value,
        action: Option<ActionId>,
    ) -> Result<i64, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let seq = insert_message(&mut tx, &mut head, self, id, role, content, action).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a conversation message"))?;
        Ok(seq)
    }

    /// Makes an ended conversation active again with the person's next
    /// message, a `conversation.continued` event naming `by`, and the
    /// message itself, in one transaction. Who may continue it is the
    /// caller's rule; the store only refuses a conversation that is still
    /// active, so two follow-ups cannot run at once. Returns the message's
    /// seq.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Invalid`] when it is still
    /// active, or a database error; nothing is written then.
    pub async fn continue_conversation(
        &self,
        id: ConversationId,
        by: &str,
        text: &str,
    ) -> Result<i64, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let reopened = sqlx::query(
            "UPDATE conversations SET state = 'active', outcome = NULL, updated_at = $1 \
             WHERE id = $2 AND state <> 'active'",
        )
        .bind(now())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("continuing a conversation"))?;
        if reopened.rows_affected() != 1 {
            let exists = sqlx::query("SELECT 1 AS one FROM conversations WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("reading a conversation"))?;
            return Err(match exists {
                Some(_) => StoreError::Invalid(format!(
                    "conversation {id} is still going; wait for it to end before saying more"
                )),
                None => StoreError::NotFound(format!("conversation {id}")),
            });
        }
        let event = NewEvent {
            actor: by.to_owned(),
            action_id: None,
            host: None,
            kind: "conversation.continued".into(),
            payload: json!({ "conversation": id.to_string() }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        let content = json!({ "content": text });
        let seq = insert_message(&mut tx, &mut head, self, id, "user", &content, None).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a conversation's next message"))?;
        Ok(seq)
    }

    /// Ends a conversation (`finished` or `stopped`) with how it ended, and
    /// the `conversation.ended` event.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for another state, [`StoreError::NotFound`],
    /// or a database error.
    pub async fn end_conversation(
        &self,
        id: ConversationId,
        state: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        if state != "finished" && state != "stopped" {
            return Err(StoreError::Invalid(format!(
                "a conversation ends `finished` or `stopped`, not `{state}`"
            )));
        }
        let (mut tx, mut head) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE conversations SET state = $1, outcome = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(state)
        .bind(outcome)
        .bind(now())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("ending a conversation"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
        let event = NewEvent {
            actor: id.requester(),
            action_id: None,
            host: None,
            kind: "conversation.ended".into(),
            payload: json!({ "conversation": id.to_string(), "state": state, "outcome": outcome }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a conversation's end"))
    }

    /// Ends every conversation still `active` as `stopped`, saying why:
    /// what ran them is gone (called only by a process that knows it is
    /// the sole runner). Returns them.
    ///
    /// # Errors
    /// A database error.
    pub async fn stop_active_conversations(
        &self,
        why: &str,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM conversations WHERE state = 'active'")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("listing active conversations"))?;
        let mut stopped = Vec::new();
        for row in rows {
            let id: String = row
                .try_get("id")
                .map_err(|e| StoreError::Corrupt(format!("conversation id: {e}")))?;
            let id: ConversationId = id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("conversation id: {e}")))?;
            self.end_conversation(id, "stopped", why).await?;
            stopped.push(id);
        }
        Ok(stopped)
    }

    /// One conversation.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or a database error.
    pub async fn conversation(&self, id: ConversationId) -> Result<ConversationRecord, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading a conversation"))?
        .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))?;
        ConversationRecord::from_row(&row)
    }

    /// Conversations, newest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn conversations(&self, limit: i64) -> Result<Vec<ConversationRecord>, StoreError> {
        let limit = limit.clamp(1, 10_000);
        sqlx::query(&format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations ORDER BY id DESC LIMIT {limit}"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing conversations"))?
        .iter()
        .map(ConversationRecord::from_row)
        .collect()
    }

    /// A conversation's messages, in order.
    ///
    /// # Errors
    /// A database error.
    pub async fn messages(&self, id: ConversationId) -> Result<Vec<MessageRecord>, StoreError> {
        sqlx::query(
            "SELECT seq, at, role, content, action_id FROM conversation_messages \
             WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("reading a conversation's messages"))?
        .iter()
        .map(MessageRecord::from_row)
        .collect()
    }
}
