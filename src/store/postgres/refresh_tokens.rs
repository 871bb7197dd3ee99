//! Rows about refresh tokens: the ones latch issued (for logout, rotation and
//! revocation), the blacklist, and each user's revocation cut-off. Tokens are
//! known by their `jti`; a token itself is never stored.
//!
//! Every transaction that adds a refresh token row of a user, or revokes
//! some, first locks the user's row (`FOR NO KEY UPDATE`, or an UPDATE of
//! it). So they take turns per user, and each statement after the lock sees
//! what the one before it committed (READ COMMITTED takes a new snapshot per
//! statement): a rotation racing a logout, a password change or another
//! rotation of the same token cannot leave a token the other missed.

use deadpool_postgres::{GenericClient, Transaction};

use super::{Failure, Postgres, col, exec, query_one, query_opt};
use crate::store::{IssuedToken, RefreshState, Rotation, StoreResult, TokenRow, Verdict};

/// Rows are kept this long past their token's expiry, so that no leeway
/// (at most an hour) can bring a revoked token back to life.
const KEEP_AFTER_EXPIRY: i64 = 3600;
/// Expired rows purged per write: more than one write adds, so they never pile up.
const PURGE_BATCH: i64 = 64;

impl Postgres {
    /// Records a refresh token issued at login (it starts a family of its
    /// own), if the user is still active with the password hash the login
    /// verified: a password reset or deactivation that committed while the
    /// password was being checked wins. False, recording nothing, otherwise.
    pub async fn record_login_token(
        &self,
        token: IssuedToken,
        verified_hash: String,
        now: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            // Also the user's lock: a password change waits for this login
            // (and then revokes its token), or this sees the new hash.
            let current = exec(
                tx,
                "UPDATE users SET last_login = $3
                 WHERE id = $1 AND password_hash = $2 AND is_active",
                &[&token.user_id, &verified_hash, &now],
            )
            .await?;
            if current == 1 {
                insert_token(tx, &token, &token.jti).await?;
            }
            purge_expired(tx, now).await?;
            Ok(current == 1)
        })
    }

    /// What the rows say about refresh token `jti` of `user_id`. A read.
    pub async fn refresh_state(&self, user_id: i64, jti: &str) -> StoreResult<RefreshState> {
        attempt!(self, |c| state(c, user_id, jti).await)
    }

    /// Exchanges a refresh token for `new` (same user), in one transaction
    /// that judges the presented token again under the user's lock, so that
    /// of racing rotations outside the grace window exactly one wins. Within
    /// the grace window a retired token gets the successor it was retired
    /// for, never a second live branch. A token latch has no row for gets
    /// one (retired, in a new family with `new`), so that replaying it is
    /// caught like any other. A retired token presented after the grace
    /// window revokes its family.
    pub async fn rotate_refresh_token(
        &self,
        presented: IssuedToken,
        new: IssuedToken,
        now: i64,
        grace: i64,
    ) -> StoreResult<Rotation> {
        let judge =
            |s: &RefreshState| s.verdict(presented.user_id, presented.issued_at, now, grace);
        in_tx!(self, |tx| {
            lock_user(tx, presented.user_id).await?;
            let mut current = state(tx, presented.user_id, &presented.jti).await?;
            if current.row.is_none() && judge(&current) == Verdict::Usable {
                // A rotation elsewhere may have inserted it meanwhile: then
                // its row, as it committed it, decides.
                exec(
                    tx,
                    "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (jti) DO NOTHING",
                    &[
                        &presented.jti,
                        &presented.user_id,
                        &new.jti,
                        &presented.issued_at,
                        &presented.expires_at,
                    ],
                )
                .await?;
                current = state(tx, presented.user_id, &presented.jti).await?;
            }
            match judge(&current) {
                Verdict::Usable => {}
                Verdict::InGrace => {
                    return Ok(match successor(tx, &presented.jti).await? {
                        Some(token) => Rotation::Rotated(token),
                        None => Rotation::Refused(Verdict::Revoked),
                    });
                }
                Verdict::Reused => {
                    let family = current.row.as_ref().map(|r| r.family.as_str());
                    revoke_family(tx, family.unwrap_or(&presented.jti), now).await?;
                    return Ok(Rotation::Refused(Verdict::Reused));
                }
                refused => return Ok(Rotation::Refused(refused)),
            }
            let Some(row) = &current.row else {
                return Ok(Rotation::Refused(Verdict::Invalid));
            };
            let retired = exec(
                tx,
                "UPDATE refresh_tokens SET retired_at = $2, successor = $3
                 WHERE jti = $1 AND retired_at IS NULL AND revoked_at IS NULL",
                &[&presented.jti, &now, &new.jti],
            )
            .await?;
            if retired != 1 {
                return Ok(Rotation::Refused(Verdict::Revoked));
            }
            insert_token(tx, &new, &row.family).await?;
            purge_expired(tx, now).await?;
            Ok(Rotation::Rotated(new.clone()))
        })
    }

    /// Revokes the family of `jti` (a replayed token seen by verify) of
    /// user `user_id`, whose row is locked first: a rotation of the token
    /// on another instance is either done (its successor is revoked too) or
    /// waits and then finds the family revoked.
    pub async fn revoke_family_of(&self, user_id: i64, jti: String, now: i64) -> StoreResult<()> {
        in_tx!(self, |tx| {
            lock_user(tx, user_id).await?;
            match family_of(tx, &jti).await? {
                Some((family, owner)) => {
                    if owner != user_id {
                        lock_user(tx, owner).await?;
                    }
                    revoke_family(tx, &family, now).await
                }
                None => revoke_family(tx, &jti, now).await,
            }
        })
    }

    /// Blacklists `jti` (harmless if it already is) and, when latch issued it,
    /// revokes the rest of its family too: a logout ends the whole login.
    /// The user's row is locked first, so that a rotation of a token latch
    /// has no row for (minted by Django) cannot slip its successor past the
    /// logout: it either finished first (and its successor is revoked with
    /// the family) or runs after and finds the token blacklisted.
    pub async fn blacklist_token(
        &self,
        user_id: i64,
        jti: String,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            lock_user(tx, user_id).await?;
            exec(
                tx,
                "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&jti, &expires_at],
            )
            .await?;
            if let Some((family, owner)) = family_of(tx, &jti).await? {
                if owner != user_id {
                    lock_user(tx, owner).await?;
                }
                revoke_family(tx, &family, now).await?;
            }
            purge_expired(tx, now).await
        })
    }

    /// Revokes every refresh token of the user (logout from everywhere).
    pub async fn revoke_user_tokens(&self, user_id: i64, now: i64) -> StoreResult<()> {
        in_tx!(self, |tx| revoke_all_of_user(tx, user_id, now).await)
    }

    /// How many tokens are blacklisted (for tests and the benchmark's seeding).
    pub async fn blacklisted_count(&self) -> StoreResult<i64> {
        attempt!(self, |c| {
            let row = query_one(c, "SELECT COUNT(*) FROM blacklisted_tokens", &[]).await?;
            col(&row, 0)
        })
    }
}

/// Revokes every refresh token of the user issued up to `now`: the rows latch
/// has, and through the cut-off those it has no row for. The cut-off is the
/// next second, since `iat` has whole seconds: a token from this second is
/// revoked too (a later login has a row, which the cut-off does not judge).
/// The user's row is written first, always: that is the user's lock.
pub(super) async fn revoke_all_of_user(
    tx: &Transaction<'_>,
    user_id: i64,
    now: i64,
) -> Result<(), Failure> {
    exec(
        tx,
        "UPDATE users SET tokens_revoked_before = GREATEST(tokens_revoked_before, $2)
         WHERE id = $1",
        &[&user_id, &now.saturating_add(1)],
    )
    .await?;
    exec(
        tx,
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        &[&user_id, &now],
    )
    .await?;
    Ok(())
}

/// Takes the user's lock (see the module's comment) until the commit.
pub(super) async fn lock_user(tx: &Transaction<'_>, user_id: i64) -> Result<(), Failure> {
    query_opt(
        tx,
        "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
        &[&user_id],
    )
    .await?;
    Ok(())
}

async fn state(c: &impl GenericClient, user_id: i64, jti: &str) -> Result<RefreshState, Failure> {
    let row = query_one(
        c,
        "SELECT u.is_active, u.tokens_revoked_before,
                r.user_id, r.family, r.retired_at, r.revoked_at,
                EXISTS (SELECT 1 FROM blacklisted_tokens b WHERE b.jti = $2)
         FROM (SELECT $1::BIGINT AS id) AS wanted
         LEFT JOIN users u ON u.id = wanted.id
         LEFT JOIN refresh_tokens r ON r.jti = $2",
        &[&user_id, &jti],
    )
    .await?;
    let row_user: Option<i64> = col(&row, 2)?;
    Ok(RefreshState {
        user_active: col(&row, 0)?,
        tokens_revoked_before: col::<Option<i64>>(&row, 1)?.unwrap_or(0),
        row: match row_user {
            Some(user_id) => Some(TokenRow {
                user_id,
                family: col(&row, 3)?,
                retired_at: col(&row, 4)?,
                revoked_at: col(&row, 5)?,
            }),
            None => None,
        },
        blacklisted: col(&row, 6)?,
    })
}

async fn insert_token(
    tx: &Transaction<'_>,
    token: &IssuedToken,
    family: &str,
) -> Result<(), Failure> {
    exec(
        tx,
        "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &token.jti,
            &token.user_id,
            &family,
            &token.issued_at,
            &token.expires_at,
        ],
    )
    .await?;
    Ok(())
}

/// The token that `jti` was retired for, if that still has a row.
async fn successor(tx: &Transaction<'_>, jti: &str) -> Result<Option<IssuedToken>, Failure> {
    let row = query_opt(
        tx,
        "SELECT s.jti, s.user_id, s.issued_at, s.expires_at
         FROM refresh_tokens p JOIN refresh_tokens s ON s.jti = p.successor
         WHERE p.jti = $1",
        &[&jti],
    )
    .await?;
    row.map(|r| {
        Ok(IssuedToken {
            jti: col(&r, 0)?,
            user_id: col(&r, 1)?,
            issued_at: col(&r, 2)?,
            expires_at: col(&r, 3)?,
        })
    })
    .transpose()
}

/// The login family and the user of the token recorded as `jti`, if it has a row.
async fn family_of(tx: &Transaction<'_>, jti: &str) -> Result<Option<(String, i64)>, Failure> {
    let row = query_opt(
        tx,
        "SELECT family, user_id FROM refresh_tokens WHERE jti = $1",
        &[&jti],
    )
    .await?;
    row.map(|r| Ok((col(&r, 0)?, col(&r, 1)?))).transpose()
}

async fn revoke_family(tx: &Transaction<'_>, family: &str, now: i64) -> Result<(), Failure> {
    exec(
        tx,
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
        &[&family, &now],
    )
    .await?;
    Ok(())
}

/// Deletes a batch of expired rows. Rows another transaction holds are
/// skipped, not waited for: the next write takes them.
async fn purge_expired(tx: &Transaction<'_>, now: i64) -> Result<(), Failure> {
    let before = now.saturating_sub(KEEP_AFTER_EXPIRY);
    for table in ["refresh_tokens", "blacklisted_tokens"] {
        let sql = format!(
            "DELETE FROM {table} WHERE jti IN
             (SELECT jti FROM {table} WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
        );
        exec(tx, &sql, &[&before, &PURGE_BATCH]).await?;
    }
    Ok(())
}
