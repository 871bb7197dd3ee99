use rusqlite::{OptionalExtension, Row, params};

use super::refresh_tokens::revoke_all_of_user;
use super::{Sqlite, exec, is_unique_violation};
use crate::store::{InsertUser, NewUser, StoreResult, User};

/// What a password change does besides the change: reset links die (their
/// queued mail with them) and every refresh token of the user is revoked.
pub(super) fn end_sessions(tx: &rusqlite::Connection, id: i64, now: i64) -> StoreResult<()> {
    exec(tx, "DELETE FROM reset_tokens WHERE user_id = ?1", [id])?;
    revoke_all_of_user(tx, id, now)
}

pub(super) const USER_COLUMNS: &str = "id, username, email, password_hash, is_active, email_key, \
     is_staff, is_superuser, date_joined, last_login";

/// Every user, by id, read on `conn` (inside a transaction of the caller's,
/// for the import).
pub(super) fn all_users(conn: &rusqlite::Connection) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
    let users = stmt.query_map([], user_from_row)?;
    Ok(users.collect::<Result<_, _>>()?)
}

/// Inserts a whole account with its id (an import, a restore), and its
/// revocation cut-off.
pub(super) fn insert_with_id(
    tx: &rusqlite::Connection,
    u: &User,
    tokens_revoked_before: i64,
) -> rusqlite::Result<usize> {
    exec(
        tx,
        "INSERT INTO users (id, username, email, email_key, password_hash, is_active, is_staff,
             is_superuser, date_joined, last_login, tokens_revoked_before)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            u.id,
            u.username,
            u.email,
            u.email_key,
            u.password_hash,
            u.is_active,
            u.is_staff,
            u.is_superuser,
            u.date_joined,
            u.last_login,
            tokens_revoked_before
        ],
    )
}

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        is_active: row.get(4)?,
        email_key: row.get(5)?,
        is_staff: row.get(6)?,
        is_superuser: row.get(7)?,
        date_joined: row.get(8)?,
        last_login: row.get(9)?,
    })
}

impl Sqlite {
    fn user_where(
        &self,
        condition: &str,
        value: impl rusqlite::ToSql,
    ) -> StoreResult<Option<User>> {
        let conn = self.conn()?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([value], user_from_row).optional()?)
    }

    pub fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        self.user_where("id = ?1", id)
    }

    /// Exact, case-sensitive match, as Django's default user model does.
    pub fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_where("username = ?1", username)
    }

    pub fn user_by_email_key(&self, email_key: &str) -> StoreResult<Option<User>> {
        self.user_where("email_key = ?1", email_key)
    }

    pub fn insert_user(&self, user: &NewUser, now: i64) -> StoreResult<InsertUser> {
        self.in_write_tx(|tx| {
            let inserted = exec(
                tx,
                "INSERT INTO users (username, email, email_key, password_hash, date_joined)
             VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.username,
                    user.email,
                    user.email_key,
                    user.password_hash,
                    now
                ],
            );
            match inserted {
                Ok(_) => Ok(InsertUser::Created(tx.last_insert_rowid())),
                Err(e) if is_unique_violation(&e, "users.username") => {
                    Ok(InsertUser::UsernameTaken)
                }
                Err(e) if is_unique_violation(&e, "users.email_key") => Ok(InsertUser::EmailTaken),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Every user, by id.
    pub fn users(&self) -> StoreResult<Vec<User>> {
        all_users(&*self.conn()?)
    }

    /// Sets a new password hash (an administrator's doing): every reset link
    /// of the user dies and every refresh token is revoked, as after a reset.
    /// False when there is no such user.
    pub fn set_password(&self, id: i64, new_hash: &str, now: i64) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, new_hash],
            )?;
            if changed == 1 {
                end_sessions(tx, id, now)?;
            }
            Ok(changed == 1)
        })
    }

    /// Lets the user log in again, or not. Deactivating also revokes the
    /// user's refresh tokens and reset links, so that activating the account
    /// later does not bring back the sessions it had. False when there is no
    /// such user.
    pub fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            let changed = exec(
                tx,
                "UPDATE users SET is_active = ?2 WHERE id = ?1",
                params![id, active],
            )?;
            if changed == 1 && !active {
                end_sessions(tx, id, now)?;
            }
            Ok(changed == 1)
        })
    }

    /// Deletes the user with its tokens, reset links and their queued mail.
    /// Its id is never handed out again. False when there is no such user.
    pub fn delete_user(&self, id: i64) -> StoreResult<bool> {
        self.in_write_tx(|tx| Ok(exec(tx, "DELETE FROM users WHERE id = ?1", [id])? == 1))
    }

    /// Replaces a hash with a stronger one for the same password, unless the
    /// password changed in the meantime (then the newer password wins).
    pub fn upgrade_password_hash(
        &self,
        id: i64,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
                params![id, old_hash, new_hash],
            )?;
            Ok(changed == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn store() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        (dir, store)
    }

    fn new_user(name: &str, email: &str) -> NewUser {
        NewUser {
            username: name.into(),
            email: email.into(),
            email_key: email.to_lowercase(),
            password_hash: "h".into(),
        }
    }

    #[test]
    fn unique_username_and_email_are_reported_apart() {
        let (_dir, store) = store();
        assert_eq!(
            store.insert_user(&new_user("ann", "a@x.io"), 0).unwrap(),
            InsertUser::Created(1)
        );
        assert_eq!(
            store.insert_user(&new_user("ann", "b@x.io"), 0).unwrap(),
            InsertUser::UsernameTaken
        );
        assert_eq!(
            store.insert_user(&new_user("bob", "A@X.io"), 0).unwrap(),
            InsertUser::EmailTaken
        );
        assert!(
            store.user_by_username("ANN").unwrap().is_none(),
            "usernames are case-sensitive"
        );
        assert_eq!(
            store.user_by_email_key("a@x.io").unwrap().unwrap().username,
            "ann"
        );
    }

    #[test]
    fn hash_upgrade_loses_to_a_password_change() {
        let (_dir, store) = store();
        store.insert_user(&new_user("ann", "a@x.io"), 0).unwrap();
        assert!(!store.upgrade_password_hash(1, "stale", "new").unwrap());
        assert!(store.upgrade_password_hash(1, "h", "new").unwrap());
        assert_eq!(store.user_by_id(1).unwrap().unwrap().password_hash, "new");
    }
}
