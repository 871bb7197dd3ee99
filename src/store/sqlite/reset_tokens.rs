use rusqlite::params;

use super::outbox::enqueue;
use super::users::end_sessions;
use super::{Sqlite, exec};
use crate::store::{LiveResetToken, NewMail, StoreResult};

impl Sqlite {
    /// Creates a reset token and queues the mail that announces it, in one
    /// transaction: either both are kept or neither is. Expired tokens of
    /// every user are swept on the way (with any mail still queued for them).
    pub fn create_reset_token(
        &self,
        user_id: i64,
        expires_at: i64,
        mail: &NewMail,
        now: i64,
    ) -> StoreResult<i64> {
        self.in_write_tx(|tx| insert_token_and_mail(tx, user_id, expires_at, mail, now))
    }

    /// The same write as [`Sqlite::create_reset_token`] (the same rows in the
    /// same tables, committed), undone before the commit: for answers that
    /// must not be told apart from a queued reset mail by their timing.
    /// Nothing remains but a used-up id.
    pub fn reset_decoy_write(&self, mail: &NewMail, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            // There is no user: foreign keys are checked at the commit, when
            // the rows are gone again.
            tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
            let token_id = insert_token_and_mail(tx, 0, now, mail, now)?;
            // The mail goes with its token (ON DELETE CASCADE).
            exec(tx, "DELETE FROM reset_tokens WHERE id = ?1", [token_id])?;
            Ok(())
        })
    }

    pub fn live_reset_tokens(&self, user_id: i64, now: i64) -> StoreResult<Vec<LiveResetToken>> {
        live_tokens(&*self.conn()?, user_id, now)
    }

    /// Sets a new password if reset token `token_id` of this (active) user is
    /// still live, deletes every reset token of the user, so neither this one
    /// nor any other can be used again, and revokes the user's refresh tokens.
    /// Returns false, changing nothing, when the token is not (or no longer)
    /// live or the user was deactivated.
    pub fn reset_password(
        &self,
        user_id: i64,
        token_id: i64,
        new_password_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            if !live_tokens(tx, user_id, now)?
                .iter()
                .any(|t| t.id == token_id)
            {
                return Ok(false);
            }
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND is_active = 1",
                params![user_id, new_password_hash],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            end_sessions(tx, user_id, now)?;
            Ok(true)
        })
    }
}

/// Sweeps expired tokens (and their mail), then inserts a token and its mail.
fn insert_token_and_mail(
    tx: &rusqlite::Connection,
    user_id: i64,
    expires_at: i64,
    mail: &NewMail,
    now: i64,
) -> StoreResult<i64> {
    exec(tx, "DELETE FROM reset_tokens WHERE expires_at <= ?1", [now])?;
    exec(
        tx,
        "INSERT INTO reset_tokens (user_id, expires_at) VALUES (?1, ?2)",
        params![user_id, expires_at],
    )?;
    let token_id = tx.last_insert_rowid();
    enqueue(tx, mail, Some(token_id))?;
    Ok(token_id)
}

fn live_tokens(
    conn: &rusqlite::Connection,
    user_id: i64,
    now: i64,
) -> StoreResult<Vec<LiveResetToken>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, expires_at FROM reset_tokens WHERE user_id = ?1 AND expires_at > ?2",
    )?;
    let rows = stmt.query_map(params![user_id, now], |row| {
        Ok(LiveResetToken {
            id: row.get(0)?,
            expires_at: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> NewMail {
        NewMail {
            recipient: "a@x.io".into(),
            subject: "s".into(),
            body: "b".into(),
            discard_after_ms: i64::MAX,
        }
    }

    #[test]
    fn token_is_single_use_expires_and_takes_its_mail_along() {
        let (_dir, store) = crate::store::sqlite::tests::store_with_user("old");
        let a = store.create_reset_token(1, 100, &mail(), 0).unwrap();
        let b = store.create_reset_token(1, 100, &mail(), 0).unwrap();
        assert_eq!(store.queued_mail_count().unwrap(), 2);
        assert_eq!(store.live_reset_tokens(1, 99).unwrap().len(), 2);
        assert!(
            store.live_reset_tokens(1, 100).unwrap().is_empty(),
            "expired"
        );
        assert!(!store.reset_password(1, a, "new", 100).unwrap(), "expired");
        assert!(
            !store.reset_password(2, a, "new", 50).unwrap(),
            "another user's token"
        );
        assert!(store.reset_password(1, a, "new", 50).unwrap());
        assert!(!store.reset_password(1, a, "newer", 50).unwrap(), "used");
        assert!(
            !store.reset_password(1, b, "newer", 50).unwrap(),
            "password changed"
        );
        assert_eq!(store.user_by_id(1).unwrap().unwrap().password_hash, "new");
        assert_eq!(
            store.queued_mail_count().unwrap(),
            0,
            "mail for dead tokens is dropped"
        );
    }
}
