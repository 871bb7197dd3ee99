use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::refresh_tokens::revoke_all_of_user;
use super::{Failure, Postgres, Step, col, exec, query, query_one, query_opt};
use crate::store::{InsertUser, NewUser, StoreResult, User};

/// What a password change does besides the change: reset links die (their
/// queued mail with them) and every refresh token of the user is revoked.
pub(super) async fn end_sessions(tx: &Transaction<'_>, id: i64, now: i64) -> Result<(), Failure> {
    exec(tx, "DELETE FROM reset_tokens WHERE user_id = $1", &[&id]).await?;
    revoke_all_of_user(tx, id, now).await
}

pub(super) const USER_COLUMNS: &str = "id, username, email, password_hash, is_active, email_key, \
     is_staff, is_superuser, date_joined, last_login";

/// Every user, by id, read on `c` (inside a transaction of the caller's,
/// for the import).
pub(super) async fn all_users(c: &impl GenericClient) -> Result<Vec<User>, Failure> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id");
    query(c, &sql, &[])
        .await?
        .iter()
        .map(user_from_row)
        .collect()
}

pub(super) fn user_from_row(row: &Row) -> Result<User, Failure> {
    Ok(User {
        id: col(row, 0)?,
        username: col(row, 1)?,
        email: col(row, 2)?,
        password_hash: col(row, 3)?,
        is_active: col(row, 4)?,
        email_key: col(row, 5)?,
        is_staff: col(row, 6)?,
        is_superuser: col(row, 7)?,
        date_joined: col(row, 8)?,
        last_login: col(row, 9)?,
    })
}

impl Postgres {
    async fn user_where(
        &self,
        condition: &str,
        value: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        attempt!(self, |c| {
            query_opt(c, &sql, &[value])
                .await?
                .as_ref()
                .map(user_from_row)
                .transpose()
        })
    }

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.user_where("id = $1", &id).await
    }

    /// Exact, case-sensitive match, as Django's default user model does.
    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_where("username = $1", &username).await
    }

    pub async fn user_by_email_key(&self, email_key: &str) -> StoreResult<Option<User>> {
        self.user_where("email_key = $1", &email_key).await
    }

    /// Every user, by id.
    pub async fn users(&self) -> StoreResult<Vec<User>> {
        attempt!(self, |c| all_users(c).await)
    }

    /// The UNIQUE constraints decide who wins a race for a username or an
    /// address, not an earlier read. A blank address is stored with no key.
    /// A transaction, as every write: retried only when it failed before
    /// the COMMIT, never after a lost answer to a COMMIT that may have taken
    /// the row (the answer would be "taken", by the row itself).
    pub async fn insert_user(&self, user: NewUser, now: i64) -> StoreResult<InsertUser> {
        let email_key = (!user.email.is_empty()).then_some(&user.email_key);
        transact!(self, |tx| {
            let inserted = query_one(
                tx,
                "INSERT INTO users (username, email, email_key, password_hash, date_joined)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[
                    &user.username,
                    &user.email,
                    &email_key,
                    &user.password_hash,
                    &now,
                ],
            )
            .await;
            match inserted {
                Ok(row) => Ok(Step::Commit(InsertUser::Created(col(&row, 0)?))),
                Err(failure) => match failure.unique_constraint.as_deref() {
                    Some("users_username_unique") => Ok(Step::Rollback(InsertUser::UsernameTaken)),
                    Some("users_email_key_unique") => Ok(Step::Rollback(InsertUser::EmailTaken)),
                    _ => Err(failure),
                },
            }
        })
    }

    /// Sets a new password hash (an administrator's doing): every reset link
    /// of the user dies and every refresh token is revoked, as after a reset.
    /// False when there is no such user.
    pub async fn set_password(&self, id: i64, new_hash: String, now: i64) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = $2 WHERE id = $1",
                &[&id, &new_hash],
            )
            .await?;
            if changed == 1 {
                end_sessions(tx, id, now).await?;
            }
            Ok(changed == 1)
        })
    }

    /// Lets the user log in again, or not. Deactivating also revokes the
    /// user's refresh tokens and reset links, so that activating the account
    /// later does not bring back the sessions it had. False when there is no
    /// such user.
    pub async fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let changed = exec(
                tx,
                "UPDATE users SET is_active = $2 WHERE id = $1",
                &[&id, &active],
            )
            .await?;
            if changed == 1 && !active {
                end_sessions(tx, id, now).await?;
            }
            Ok(changed == 1)
        })
    }

    /// Deletes the user with its tokens, reset links and their queued mail
    /// (the references cascade). Its id is never handed out again. False
    /// when there is no such user.
    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let deleted = exec(tx, "DELETE FROM users WHERE id = $1", &[&id]).await?;
            Ok(deleted == 1)
        })
    }

    /// Replaces a hash with a stronger one for the same password, unless the
    /// password changed in the meantime (then the newer password wins).
    pub async fn upgrade_password_hash(
        &self,
        id: i64,
        old_hash: String,
        new_hash: String,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
                &[&id, &old_hash, &new_hash],
            )
            .await?;
            Ok(changed == 1)
        })
    }
}
