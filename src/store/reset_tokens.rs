use rusqlite::params;
use subtle::ConstantTimeEq;

use super::outbox::{NewMail, enqueue};
use super::{Store, StoreResult};

impl Store {
    /// Stores a reset token digest and the mail that carries the token in one
    /// transaction: either both are kept or neither is. Expired tokens of every
    /// user are swept on the way.
    pub fn create_reset_token(
        &self,
        user_id: i64,
        token_hash: &[u8; 32],
        expires_at: i64,
        mail: &NewMail,
        now: i64,
    ) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            tx.execute("DELETE FROM reset_tokens WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO reset_tokens (user_id, token_hash, expires_at) VALUES (?1, ?2, ?3)",
                params![user_id, &token_hash[..], expires_at],
            )?;
            enqueue(tx, mail)?;
            Ok(())
        })
    }

    /// True when `token_hash` belongs to a live token of this user.
    pub fn reset_token_is_valid(
        &self,
        user_id: i64,
        token_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<bool> {
        let conn = self.conn()?;
        live_token_matches(&conn, user_id, token_hash, now)
    }

    /// Sets a new password if the token is still live, and deletes every reset
    /// token of the user, so this token (and any other) cannot be used again.
    /// Returns false, changing nothing, when the token is not (or no longer) valid.
    pub fn reset_password(
        &self,
        user_id: i64,
        token_hash: &[u8; 32],
        new_password_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            if !live_token_matches(tx, user_id, token_hash, now)? {
                return Ok(false);
            }
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, new_password_hash],
            )?;
            tx.execute("DELETE FROM reset_tokens WHERE user_id = ?1", [user_id])?;
            Ok(true)
        })
    }
}

/// Compares in constant time against every live token of the user (there are
/// few), rather than letting an index lookup on the secret decide.
fn live_token_matches(
    conn: &rusqlite::Connection,
    user_id: i64,
    token_hash: &[u8; 32],
    now: i64,
) -> StoreResult<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT token_hash FROM reset_tokens WHERE user_id = ?1 AND expires_at > ?2",
    )?;
    let mut rows = stmt.query(params![user_id, now])?;
    let mut found = subtle::Choice::from(0);
    while let Some(row) = rows.next()? {
        let stored: Vec<u8> = row.get(0)?;
        found |= stored.as_slice().ct_eq(&token_hash[..]);
    }
    Ok(found.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewUser;
    use std::time::Duration;

    fn mail() -> NewMail {
        NewMail {
            recipient: "a@x.io".into(),
            subject: "s".into(),
            body: "b".into(),
            discard_after_ms: i64::MAX,
        }
    }

    #[test]
    fn token_is_single_use_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let user = NewUser {
            username: "ann".into(),
            email: "a@x.io".into(),
            email_key: "a@x.io".into(),
            password_hash: "old".into(),
        };
        store.insert_user(&user, 0).unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        store.create_reset_token(1, &a, 100, &mail(), 0).unwrap();
        store.create_reset_token(1, &b, 100, &mail(), 0).unwrap();
        assert!(store.reset_token_is_valid(1, &a, 99).unwrap());
        assert!(!store.reset_token_is_valid(1, &a, 100).unwrap(), "expired");
        assert!(
            !store.reset_token_is_valid(1, &[3u8; 32], 0).unwrap(),
            "unknown"
        );
        assert!(!store.reset_password(1, &a, "new", 100).unwrap(), "expired");
        assert!(store.reset_password(1, &a, "new", 50).unwrap());
        assert!(!store.reset_password(1, &a, "newer", 50).unwrap(), "used");
        assert!(
            !store.reset_password(1, &b, "newer", 50).unwrap(),
            "password changed"
        );
        assert_eq!(store.user_by_id(1).unwrap().unwrap().password_hash, "new");
    }
}
