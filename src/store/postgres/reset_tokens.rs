use deadpool_postgres::{GenericClient, Transaction};

use super::outbox::enqueue;
use super::refresh_tokens::lock_user;
use super::users::end_sessions;
use super::{Failure, Postgres, Step, col, exec, query, query_one, query_opt};
use crate::store::{LiveResetToken, NewMail, StoreResult};

impl Postgres {
    /// Creates a reset token and queues the mail that announces it, in one
    /// transaction: either both are kept or neither is. Expired tokens of
    /// every user are swept on the way (with any mail still queued for them).
    pub async fn create_reset_token(
        &self,
        user_id: i64,
        expires_at: i64,
        mail: NewMail,
        now: i64,
    ) -> StoreResult<i64> {
        in_tx!(self, |tx| insert_token_and_mail(
            tx, user_id, expires_at, &mail, now
        )
        .await)
    }

    /// The same write as [`Postgres::create_reset_token`] (the same rows in
    /// the same tables, committed), undone before the commit: for answers
    /// that must not be told apart from a queued reset mail by their timing.
    /// Nothing remains but used-up ids.
    pub async fn reset_decoy_write(&self, mail: NewMail, now: i64) -> StoreResult<()> {
        in_tx!(self, |tx| {
            // There is no user 0: the reference is checked at the commit,
            // when the rows are gone again.
            tx.batch_execute("SET CONSTRAINTS reset_tokens_user_fk DEFERRED")
                .await?;
            let token_id = insert_token_and_mail(tx, 0, now, &mail, now).await?;
            // The mail goes with its token (ON DELETE CASCADE).
            exec(tx, "DELETE FROM reset_tokens WHERE id = $1", &[&token_id]).await?;
            Ok(())
        })
    }

    pub async fn live_reset_tokens(
        &self,
        user_id: i64,
        now: i64,
    ) -> StoreResult<Vec<LiveResetToken>> {
        attempt!(self, |c| live_tokens(c, user_id, now).await)
    }

    /// Uses reset token `token_id` of this (active) user, if still live:
    /// sets the new password, deletes every reset token of the user, so
    /// neither this one nor any other can be used again, and revokes the
    /// user's refresh tokens. False, changing nothing, when the token is not
    /// (or no longer) live or the user was deactivated. The token is taken
    /// first, by deleting it: of two confirmations of one token, the second
    /// waits for the first and then finds nothing to delete.
    pub async fn reset_password(
        &self,
        user_id: i64,
        token_id: i64,
        new_hash: String,
        now: i64,
    ) -> StoreResult<bool> {
        transact!(self, |tx| {
            // The user's lock first, as every writer of the user's sessions
            // takes it: no deadlock with a concurrent password change.
            lock_user(tx, user_id).await?;
            let taken = query_opt(
                tx,
                "DELETE FROM reset_tokens WHERE id = $1 AND user_id = $2 AND expires_at > $3
                 RETURNING id",
                &[&token_id, &user_id, &now],
            )
            .await?;
            if taken.is_none() {
                return Ok(Step::Commit(false));
            }
            let changed = exec(
                tx,
                "UPDATE users SET password_hash = $2 WHERE id = $1 AND is_active",
                &[&user_id, &new_hash],
            )
            .await?;
            if changed == 0 {
                // The token stays: a deactivation takes it anyway.
                return Ok(Step::Rollback(false));
            }
            end_sessions(tx, user_id, now).await?;
            Ok(Step::Commit(true))
        })
    }
}

/// Sweeps expired tokens (and their mail), then inserts a token and its mail.
/// Expired tokens another transaction holds are left for the next sweep.
async fn insert_token_and_mail(
    tx: &Transaction<'_>,
    user_id: i64,
    expires_at: i64,
    mail: &NewMail,
    now: i64,
) -> Result<i64, Failure> {
    exec(
        tx,
        "DELETE FROM reset_tokens WHERE id IN
         (SELECT id FROM reset_tokens WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
        &[&now],
    )
    .await?;
    let row = query_one(
        tx,
        "INSERT INTO reset_tokens (user_id, expires_at) VALUES ($1, $2) RETURNING id",
        &[&user_id, &expires_at],
    )
    .await?;
    let token_id: i64 = col(&row, 0)?;
    enqueue(tx, mail, Some(token_id)).await?;
    Ok(token_id)
}

async fn live_tokens(
    c: &impl GenericClient,
    user_id: i64,
    now: i64,
) -> Result<Vec<LiveResetToken>, Failure> {
    let rows = query(
        c,
        "SELECT id, expires_at FROM reset_tokens WHERE user_id = $1 AND expires_at > $2 ORDER BY id",
        &[&user_id, &now],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LiveResetToken {
                id: col(row, 0)?,
                expires_at: col(row, 1)?,
            })
        })
        .collect()
}
