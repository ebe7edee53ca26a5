//! Who may sign in and with what: users, their server-side sessions, and
//! the API tokens agents and scripts hold.
//!
//! Secrets never reach the database in the clear: the caller hashes
//! passwords (a slow password hash), session ids and tokens (SHA-256 of a
//! random secret) before they get here, and no audit event carries any of
//! them. Every change that grants or withdraws access commits with its
//! audit event, under the chain's lock like any other writer.

use jarvis_core::{Role, TokenScope};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::audit::{NewEvent, append_locked};
use crate::{Store, StoreError, now};

/// A person who may sign in to the web UI.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// The user name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or
    /// digit.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// The password hash (PHC string) as the caller computed it; never
    /// serialised.
    #[serde(skip)]
    pub password_hash: String,
    /// When the user was created.
    pub created_at: String,
    /// When the password was last set.
    pub password_changed_at: String,
}

impl std::fmt::Debug for UserRecord {
    // By hand, so a logged record never shows the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<hidden>")
            .field("created_at", &self.created_at)
            .field("password_changed_at", &self.password_changed_at)
            .finish()
    }
}

impl UserRecord {
    /// Decodes the user columns, named with `prefix` (`""` or `"u_"`).
    fn from_row(row: &AnyRow, prefix: &str) -> Result<UserRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("user {what}: {e}"))
        };
        let get = |col: &str| -> Result<String, StoreError> {
            row.try_get(format!("{prefix}{col}").as_str())
                .map_err(|e| bad(col, &e))
        };
        let name = get("name")?;
        let role = get("role")?;
        Ok(UserRecord {
            role: role.parse().map_err(|e| bad(&name, &e))?,
            password_hash: get("password_hash")?,
            created_at: get("created_at")?,
            password_changed_at: get("password_changed_at")?,
            name,
        })
    }
}

/// A session to record at sign-in.
#[derive(Clone)]
pub struct NewSession {
    /// Hex SHA-256 of the random secret the cookie holds.
    pub id_hash: String,
    /// The user signing in.
    pub user: String,
    /// The CSRF token forms must echo.
    pub csrf: String,
    /// When it ends, RFC 3339.
    pub expires_at: String,
    /// Where the sign-in came from (the client's address), if known.
    pub remote: Option<String>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// A live session, with its user as stored now (so a role change applies
/// at once).
#[derive(Clone)]
pub struct SessionRecord {
    /// Hex SHA-256 of the cookie's secret.
    pub id_hash: String,
    /// Who is signed in.
    pub user: UserRecord,
    /// The CSRF token forms must echo.
    pub csrf: String,
    /// When the user signed in.
    pub created_at: String,
    /// When it ends, RFC 3339 UTC.
    pub expires_at: String,
    /// Where the sign-in came from, if known.
    pub remote: Option<String>,
}

impl std::fmt::Debug for SessionRecord {
    // By hand, so a logged session never shows its CSRF token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// An API token as stored; its hash is never handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The token's name, as the audit log shows it (`token:NAME`).
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// When it last authenticated a request, to the minute.
    pub last_used_at: Option<String>,
    /// When it was revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<String>,
}

impl TokenRecord {
    fn from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("token {what}: {e}"))
        };
        let name: String = row.try_get("name").map_err(|e| bad("name", &e))?;
        let scope: String = row.try_get("scope").map_err(|e| bad("scope", &e))?;
        Ok(TokenRecord {
            scope: scope.parse().map_err(|e| bad(&name, &e))?,
            created_by: row
                .try_get("created_by")
                .map_err(|e| bad("created_by", &e))?,
            created_at: row
                .try_get("created_at")
                .map_err(|e| bad("created_at", &e))?,
            last_used_at: row
                .try_get("last_used_at")
                .map_err(|e| bad("last_used_at", &e))?,
            revoked_at: row
                .try_get("revoked_at")
                .map_err(|e| bad("revoked_at", &e))?,
            name,
        })
    }
}

const USER_COLUMNS: &str = "name, role, password_hash, created_at, password_changed_at";
const TOKEN_COLUMNS: &str = "name, scope, created_by, created_at, last_used_at, revoked_at";

/// How stale `last_used_at` may get: an update on every request would make
/// each read a write.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// Refuses names that would be ambiguous or unsafe where they appear: in
/// actor strings (`user:NAME`), URLs, log lines and file names.
fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "`{name}` is not a valid {what} name: use 1 to 64 characters of a-z, 0-9, '.', '_' \
             and '-', starting with a letter or digit, so it reads the same in the audit log, \
             URLs and the shell"
        )))
    }
}

/// Parses a stored or given RFC 3339 time. The store's own timestamps drop
/// trailing zeros of the fraction, so they do not compare as text.
/// Refuses to leave the deployment without an admin: nobody could then
/// manage people from the web UI's side, and the mistake is easy to make.
/// Runs under the write lock, so two admins demoting each other at once
/// cannot both succeed.
async fn keep_an_admin(
    tx: &mut sqlx::AnyConnection,
    name: &str,
    what: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db("counting admins"))?;
    let admins: i64 = row
        .try_get("n")
        .map_err(|e| StoreError::Corrupt(format!("admin count: {e}")))?;
    if admins <= 1 {
        return Err(StoreError::Invalid(format!(
            "{name} is the last admin and cannot be {what}; add another admin first (`jarvis users add NAME --role admin`)"
        )));
    }
    Ok(())
}

/// A stored time, read by the store's one parser.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    crate::parse_time(text).ok()
}

impl Store {
    /// Creates a user, with the `user.created` event (name and role; never
    /// the hash).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name, [`StoreError::Exists`] when
    /// the name is taken, or a database error; nothing is written then.
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        actor: &str,
    ) -> Result<UserRecord, StoreError> {
        check_name("user", name)?;
        let (mut tx, mut head) = self.begin_write().await?;
        // Checked under the chain lock, so two creators cannot both pass.
        if find_user(&mut tx, name).await?.is_some() {
            return Err(StoreError::Exists(format!("user {name}")));
        }
        let at = now();
        sqlx::query(
            "INSERT INTO users (name, role, password_hash, created_at, password_changed_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("creating a user"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "user.created".into(),
            payload: json!({ "name": name, "role": role.as_str() }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a new user"))?;
        Ok(UserRecord {
            name: name.to_owned(),
            role,
            password_hash: password_hash.to_owned(),
            created_at: at.clone(),
            password_changed_at: at,
        })
    }

    /// One user, if there is one by that name.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StoreError::db("connecting"))?;
        find_user(&mut conn, name).await
    }

    /// Every user, by name.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("listing users"))?
            .iter()
            .map(|r| UserRecord::from_row(r, ""))
            .collect()
    }

    /// How many users there are (none means the first must be created
    /// from the gateway's own shell).
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("counting users"))?;
        let n: i64 = row
            .try_get("n")
            .map_err(|e| StoreError::Corrupt(format!("user count: {e}")))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Sets a user's password hash and signs them out everywhere (their
    /// sessions are deleted in the same transaction), with the
    /// `user.password_changed` event.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, or a database error;
    /// nothing is written then.
    pub async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE name = $3",
        )
        .bind(password_hash)
        .bind(now())
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("changing a password"))?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("user {name}")));
        }
        let ended = delete_sessions_of(&mut tx, name).await?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "user.password_changed".into(),
            payload: json!({ "name": name, "sessions_ended": ended }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a password change"))
    }

    /// Gives a user another role, with the `user.role_changed` event (from,
    /// to). Their sessions stay: a session reads the role afresh on every
    /// request.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, or a database error;
    /// nothing is written then.
    pub async fn set_role(
        &self,
        name: &str,
        role: Role,
        actor: &str,
    ) -> Result<UserRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let Some(mut user) = find_user(&mut tx, name).await? else {
            return Err(StoreError::NotFound(format!("user {name}")));
        };
        if user.role == Role::Admin && role != Role::Admin {
            keep_an_admin(&mut tx, name, "demoted").await?;
        }
        sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
            .bind(role.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("changing a role"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "user.role_changed".into(),
            payload: json!({ "name": name, "from": user.role.as_str(), "to": role.as_str() }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a role change"))?;
        user.role = role;
        Ok(user)
    }

    /// Removes a user and their sessions, with the `user.removed` event.
    /// What they did stays in the audit log under their name.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, or a database error;
    /// nothing is written then.
    pub async fn remove_user(&self, name: &str, actor: &str) -> Result<(), StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let Some(user) = find_user(&mut tx, name).await? else {
            return Err(StoreError::NotFound(format!("user {name}")));
        };
        if user.role == Role::Admin {
            keep_an_admin(&mut tx, name, "removed").await?;
        }
        let ended = delete_sessions_of(&mut tx, name).await?;
        sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing a user"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "user.removed".into(),
            payload: json!({ "name": name, "role": user.role.as_str(), "sessions_ended": ended }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a user's removal"))
    }

    /// Records a sign-in, with the `auth.login` event (user and remote
    /// address; never the session id or CSRF token).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when `expires_at` is not RFC 3339,
    /// [`StoreError::NotFound`] for an unknown user, or a database error;
    /// nothing is written then.
    pub async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let expires = parse_time(&s.expires_at).ok_or_else(|| {
            StoreError::Invalid(format!(
                "a session's end `{}` is not an RFC 3339 time (2025-01-31T12:00:00Z)",
                s.expires_at
            ))
        })?;
        // Stored as every other time here: UTC, fixed width.
        let expires_at = crate::timestamp(expires);
        let (mut tx, mut head) = self.begin_write().await?;
        if find_user(&mut tx, &s.user).await?.is_none() {
            return Err(StoreError::NotFound(format!("user {}", s.user)));
        }
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_name, csrf, created_at, expires_at, remote) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.user)
        .bind(&s.csrf)
        .bind(now())
        .bind(&expires_at)
        .bind(&s.remote)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("recording a session"))?;
        let event = NewEvent {
            actor: format!("user:{}", s.user),
            action_id: None,
            host: None,
            kind: "auth.login".into(),
            payload: json!({ "user": s.user, "remote": s.remote }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit().await.map_err(self.db("committing a sign-in"))
    }

    /// The live session whose cookie secret hashes to `id_hash`, with its
    /// user as stored now; `None` when there is none, it has expired, or its
    /// user is gone.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when its end time does not parse, or a
    /// database error.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.csrf, s.created_at, s.expires_at, s.remote, \
             u.name AS u_name, u.role AS u_role, u.password_hash AS u_password_hash, \
             u.created_at AS u_created_at, u.password_changed_at AS u_password_changed_at \
             FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("reading a session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("session {what}: {e}"))
        };
        let expires_at: String = row
            .try_get("expires_at")
            .map_err(|e| bad("expires_at", &e))?;
        let expires = parse_time(&expires_at)
            .ok_or_else(|| bad("expires_at", &format!("`{expires_at}` is not RFC 3339")))?;
        if expires <= OffsetDateTime::now_utc() {
            return Ok(None);
        }
        Ok(Some(SessionRecord {
            id_hash: row.try_get("id_hash").map_err(|e| bad("id_hash", &e))?,
            user: UserRecord::from_row(&row, "u_")?,
            csrf: row.try_get("csrf").map_err(|e| bad("csrf", &e))?,
            created_at: row
                .try_get("created_at")
                .map_err(|e| bad("created_at", &e))?,
            remote: row.try_get("remote").map_err(|e| bad("remote", &e))?,
            expires_at,
        }))
    }

    /// Signs a session out, with the `auth.logout` event.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such session (expired ones
    /// count until pruned), or a database error.
    pub async fn end_session(&self, id_hash: &str, actor: &str) -> Result<(), StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let row = sqlx::query("SELECT user_name FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("reading a session"))?
            .ok_or_else(|| StoreError::NotFound("the session".into()))?;
        let user: String = row
            .try_get("user_name")
            .map_err(|e| StoreError::Corrupt(format!("session user: {e}")))?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("ending a session"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "auth.logout".into(),
            payload: json!({ "user": user }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit().await.map_err(self.db("committing a sign-out"))
    }

    /// Deletes expired sessions (no audit event: nothing was granted or
    /// withdrawn) and returns how many.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn prune_sessions(&self) -> Result<u64, StoreError> {
        // Times are compared parsed, not as text (see `parse_time`).
        let rows = sqlx::query("SELECT id_hash, expires_at FROM sessions")
            .fetch_all(self.pool())
            .await
            .map_err(StoreError::db("listing sessions"))?;
        let now = OffsetDateTime::now_utc();
        let mut expired = Vec::new();
        for row in &rows {
            let bad = |e: sqlx::Error| StoreError::Corrupt(format!("session: {e}"));
            let id: String = row.try_get("id_hash").map_err(bad)?;
            let end: String = row.try_get("expires_at").map_err(bad)?;
            // One whose end does not parse can never be used: it goes too.
            if parse_time(&end).is_none_or(|t| t <= now) {
                expired.push(id);
            }
        }
        if expired.is_empty() {
            return Ok(0);
        }
        let (mut tx, _) = self.begin_write().await?;
        let mut n = 0;
        for id in &expired {
            n += sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("pruning sessions"))?
                .rows_affected();
        }
        tx.commit()
            .await
            .map_err(self.db("committing pruned sessions"))?;
        Ok(n)
    }

    /// Creates an API token from its hash, with the `token.created` event
    /// (name and scope).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a bad name, [`StoreError::Exists`] when
    /// a token, even a revoked one, has the name (so the log's `token:NAME`
    /// always means one token), or a database error; nothing is written
    /// then.
    pub async fn create_token(
        &self,
        name: &str,
        scope: TokenScope,
        token_hash: &str,
        actor: &str,
    ) -> Result<TokenRecord, StoreError> {
        check_name("token", name)?;
        let (mut tx, mut head) = self.begin_write().await?;
        let taken = sqlx::query("SELECT name FROM api_tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("looking up a token"))?;
        if taken.is_some() {
            return Err(StoreError::Exists(format!("token {name}")));
        }
        let at = now();
        sqlx::query(
            "INSERT INTO api_tokens (name, scope, token_hash, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(token_hash)
        .bind(actor)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("creating a token"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "token.created".into(),
            payload: json!({ "name": name, "scope": scope.as_str() }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a new token"))?;
        Ok(TokenRecord {
            name: name.to_owned(),
            scope,
            created_by: actor.to_owned(),
            created_at: at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The unrevoked token with this hash, if any, noting its use (at most
    /// once a minute, without an audit event).
    ///
    /// # Errors
    /// A [`StoreError`] when it cannot be read.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(StoreError::db("looking up a token"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut token = TokenRecord::from_row(&row)?;
        let stale = token
            .last_used_at
            .as_deref()
            .and_then(parse_time)
            .is_none_or(|t| OffsetDateTime::now_utc() - t >= LAST_USED_GRANULARITY);
        if stale {
            let at = now();
            // A hint for the token list, not a record: failing to note it
            // (the database busy, say) must not refuse the request.
            if self.note_token_use(&token.name, &at).await.is_ok() {
                token.last_used_at = Some(at);
            }
        }
        Ok(Some(token))
    }

    /// Notes when a token was last used, in turn with the other writes.
    async fn note_token_use(&self, name: &str, at: &str) -> Result<(), StoreError> {
        let (mut tx, _) = self.begin_write().await?;
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("noting a token's use"))?;
        tx.commit().await.map_err(self.db("noting a token's use"))
    }

    /// Every token, revoked ones included, by name.
    ///
    /// # Errors
    /// A [`StoreError`] naming what failed.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::db("listing tokens"))?
        .iter()
        .map(TokenRecord::from_row)
        .collect()
    }

    /// Revokes a token, with the `token.revoked` event. Revoking a revoked
    /// token changes nothing and writes nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown token, or a database error.
    pub async fn revoke_token(&self, name: &str, actor: &str) -> Result<TokenRecord, StoreError> {
        let (mut tx, mut head) = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("looking up a token"))?
        .ok_or_else(|| StoreError::NotFound(format!("token {name}")))?;
        let mut token = TokenRecord::from_row(&row)?;
        if token.revoked_at.is_some() {
            return Ok(token);
        }
        let at = now();
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2")
            .bind(&at)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("revoking a token"))?;
        let event = NewEvent {
            actor: actor.to_owned(),
            action_id: None,
            host: None,
            kind: "token.revoked".into(),
            payload: json!({ "name": name, "scope": token.scope.as_str() }),
        };
        append_locked(&mut tx, &mut head, event, self.signer()).await?;
        tx.commit()
            .await
            .map_err(self.db("committing a revoked token"))?;
        token.revoked_at = Some(at);
        Ok(token)
    }
}

async fn find_user(
    conn: &mut sqlx::AnyConnection,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db("reading a user"))?
        .map(|r| UserRecord::from_row(&r, ""))
        .transpose()
}

async fn delete_sessions_of(conn: &mut sqlx::AnyConnection, name: &str) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::db("ending a user's sessions"))?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in [
            "alice",
            "a",
            "0ps",
            "bob.smith",
            "ci_bot-2",
            &"a".repeat(64),
        ] {
            assert!(check_name("user", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            ".a",
            "_a",
            "a b",
            "a:b",
            "é",
            &"a".repeat(65),
        ] {
            let e = check_name("user", bad).expect_err(bad);
            assert!(matches!(e, StoreError::Invalid(_)), "{bad}");
            assert!(e.to_string().contains("not a valid user name"), "{e}");
        }
    }

    #[test]
    fn stored_times_do_not_sort_as_text_but_parse() {
        // Why sessions compare parsed times: a whole second has no fraction.
        let whole = "2025-01-01T00:00:00Z";
        let later = "2025-01-01T00:00:00.5Z";
        assert!(whole > later);
        assert!(parse_time(whole) < parse_time(later));
    }

    #[test]
    fn debug_hides_secrets() {
        let u = UserRecord {
            name: "a".into(),
            role: Role::Admin,
            password_hash: "$argon2id$secret".into(),
            created_at: String::new(),
            password_changed_at: String::new(),
        };
        assert!(!format!("{u:?}").contains("argon2"));
        assert!(!serde_json::to_string(&u).expect("json").contains("argon2"));
    }
}
