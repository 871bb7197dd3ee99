//! Rows about refresh tokens: the ones latch issued (for logout, rotation and
//! revocation), the blacklist, and each user's revocation cut-off. Tokens are
//! known by their `jti`; a token itself is never stored.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreResult};

/// A refresh token just issued, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub jti: String,
    pub user_id: i64,
    pub expires_at: i64,
}

/// What the rows say about one presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// None when the user does not exist.
    pub user_active: Option<bool>,
    pub tokens_revoked_before: i64,
    /// None for a token latch has no row for (see `tokens_revoked_before`).
    pub row: Option<TokenRow>,
    pub blacklisted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub user_id: i64,
    pub family: String,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Whether a refresh token may be used, by its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Usable,
    /// Retired by a rotation within the grace window: still usable.
    InGrace,
    /// Retired by a rotation longer ago than the grace window: a replay.
    Reused,
    /// Blacklisted, revoked, or issued before the user's cut-off.
    Revoked,
    /// The user is gone or inactive, or the row belongs to someone else.
    Invalid,
}

impl RefreshState {
    /// `iat` is the token's issue time; `grace` the rotation grace window.
    pub fn verdict(&self, user_id: i64, iat: i64, now: i64, grace: i64) -> Verdict {
        if self.user_active != Some(true) {
            return Verdict::Invalid;
        }
        if self.blacklisted {
            return Verdict::Revoked;
        }
        match &self.row {
            Some(row) if row.user_id != user_id => Verdict::Invalid,
            Some(row) if row.revoked_at.is_some() => Verdict::Revoked,
            Some(TokenRow {
                retired_at: Some(retired),
                ..
            }) => {
                if now.saturating_sub(*retired) < grace {
                    Verdict::InGrace
                } else {
                    Verdict::Reused
                }
            }
            Some(_) => Verdict::Usable,
            None if iat < self.tokens_revoked_before => Verdict::Revoked,
            None => Verdict::Usable,
        }
    }
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The new token was recorded in the presented token's family.
    Rotated,
    /// Not usable; nothing changed (or, for `Reused`, its family was revoked).
    Refused(Verdict),
}

/// Rows are kept this long past their token's expiry, so that no leeway
/// (at most an hour) can bring a revoked token back to life.
const KEEP_AFTER_EXPIRY: i64 = 3600;
/// Expired rows purged per write: more than one write adds, so they never pile up.
const PURGE_BATCH: i64 = 64;

impl Store {
    /// Records a refresh token issued at login; it starts a family of its own.
    pub fn record_refresh_token(&self, token: &IssuedToken, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            insert_token(tx, token, &token.jti)?;
            purge_expired(tx, now)
        })
    }

    /// What the rows say about refresh token `jti` of `user_id`. A read.
    pub fn refresh_state(&self, user_id: i64, jti: &str) -> StoreResult<RefreshState> {
        state(&*self.conn()?, user_id, jti)
    }

    /// Exchanges a refresh token for `new` (same user), in one transaction
    /// that judges the presented token again, so that of racing rotations
    /// outside the grace window exactly one wins. A token latch has no row for
    /// is blacklisted and `new` starts a family; a replayed retired token
    /// revokes its whole family.
    pub fn rotate_refresh_token(
        &self,
        presented_jti: &str,
        presented_iat: i64,
        presented_exp: i64,
        new: &IssuedToken,
        now: i64,
        grace: i64,
    ) -> StoreResult<Rotation> {
        self.in_write_tx(|tx| {
            let current = state(tx, new.user_id, presented_jti)?;
            match current.verdict(new.user_id, presented_iat, now, grace) {
                Verdict::Usable | Verdict::InGrace => {}
                Verdict::Reused => {
                    let family = current.row.as_ref().map(|r| r.family.as_str());
                    revoke_family(tx, family.unwrap_or(presented_jti), now)?;
                    return Ok(Rotation::Refused(Verdict::Reused));
                }
                refused => return Ok(Rotation::Refused(refused)),
            }
            let family = match &current.row {
                Some(row) => {
                    tx.execute(
                        "UPDATE refresh_tokens SET retired_at = ?2
                         WHERE jti = ?1 AND retired_at IS NULL AND revoked_at IS NULL",
                        params![presented_jti, now],
                    )?;
                    row.family.clone()
                }
                None => {
                    blacklist(tx, presented_jti, presented_exp)?;
                    new.jti.clone()
                }
            };
            insert_token(tx, new, &family)?;
            purge_expired(tx, now)?;
            Ok(Rotation::Rotated)
        })
    }

    /// Blacklists `jti` (harmless if it already is) and, when latch issued it,
    /// revokes the rest of its family too: a logout ends the whole login.
    pub fn blacklist_token(&self, jti: &str, expires_at: i64, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            blacklist(tx, jti, expires_at)?;
            let family: Option<String> = tx
                .query_row(
                    "SELECT family FROM refresh_tokens WHERE jti = ?1",
                    [jti],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(family) = family {
                revoke_family(tx, &family, now)?;
            }
            purge_expired(tx, now)
        })
    }

    /// Revokes every refresh token of the user (logout from everywhere).
    pub fn revoke_user_tokens(&self, user_id: i64, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| revoke_all_of_user(tx, user_id, now))
    }

    /// How many tokens are blacklisted (for tests and the benchmark's seeding).
    pub fn blacklisted_count(&self) -> StoreResult<i64> {
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM blacklisted_tokens", [], |r| r.get(0))?)
    }
}

/// Revokes every refresh token of the user issued up to `now`: the rows latch
/// has, and through the cut-off those it has no row for. The cut-off is the
/// next second, since `iat` has whole seconds: a token from this second is
/// revoked too (a later login has a row, which the cut-off does not judge).
pub(super) fn revoke_all_of_user(tx: &Transaction<'_>, user_id: i64, now: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    tx.execute(
        "UPDATE users SET tokens_revoked_before = MAX(tokens_revoked_before, ?2) WHERE id = ?1",
        params![user_id, now.saturating_add(1)],
    )?;
    Ok(())
}

fn state(conn: &rusqlite::Connection, user_id: i64, jti: &str) -> StoreResult<RefreshState> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.is_active, u.tokens_revoked_before,
                r.user_id, r.family, r.retired_at, r.revoked_at,
                EXISTS (SELECT 1 FROM blacklisted_tokens b WHERE b.jti = ?2)
         FROM (SELECT ?1 AS id) AS wanted
         LEFT JOIN users u ON u.id = wanted.id
         LEFT JOIN refresh_tokens r ON r.jti = ?2",
    )?;
    Ok(stmt.query_row(params![user_id, jti], |row| {
        let row_user: Option<i64> = row.get(2)?;
        Ok(RefreshState {
            user_active: row.get(0)?,
            tokens_revoked_before: row.get::<_, Option<i64>>(1)?.unwrap_or(0),
            row: match row_user {
                Some(user_id) => Some(TokenRow {
                    user_id,
                    family: row.get(3)?,
                    retired_at: row.get(4)?,
                    revoked_at: row.get(5)?,
                }),
                None => None,
            },
            blacklisted: row.get(6)?,
        })
    })?)
}

fn insert_token(tx: &Transaction<'_>, token: &IssuedToken, family: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO refresh_tokens (jti, user_id, family, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token.jti, token.user_id, family, token.expires_at],
    )?;
    Ok(())
}

fn blacklist(tx: &Transaction<'_>, jti: &str, expires_at: i64) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![jti, expires_at],
    )?;
    Ok(())
}

fn revoke_family(tx: &Transaction<'_>, family: &str, now: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, now],
    )?;
    Ok(())
}

fn purge_expired(tx: &Transaction<'_>, now: i64) -> StoreResult<()> {
    let before = now.saturating_sub(KEEP_AFTER_EXPIRY);
    for table in ["refresh_tokens", "blacklisted_tokens"] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE jti IN
                 (SELECT jti FROM {table} WHERE expires_at < ?1 LIMIT ?2)"
            ),
            params![before, PURGE_BATCH],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewUser;
    use std::time::Duration;

    fn store_with_user() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let user = NewUser {
            username: "ann".into(),
            email: "a@x.io".into(),
            email_key: "a@x.io".into(),
            password_hash: "h".into(),
        };
        store.insert_user(&user, 0).unwrap();
        (dir, store)
    }

    fn token(jti: &str, expires_at: i64) -> IssuedToken {
        IssuedToken {
            jti: jti.into(),
            user_id: 1,
            expires_at,
        }
    }

    fn verdict(store: &Store, jti: &str, iat: i64, now: i64) -> Verdict {
        store
            .refresh_state(1, jti)
            .unwrap()
            .verdict(1, iat, now, 10)
    }

    #[test]
    fn a_recorded_token_is_usable_until_revoked() {
        let (_dir, store) = store_with_user();
        store.record_refresh_token(&token("a", 1000), 100).unwrap();
        assert_eq!(verdict(&store, "a", 100, 100), Verdict::Usable);
        assert_eq!(
            store
                .refresh_state(2, "a")
                .unwrap()
                .verdict(2, 100, 100, 10),
            Verdict::Invalid,
            "no user 2"
        );
        store.revoke_user_tokens(1, 150).unwrap();
        assert_eq!(verdict(&store, "a", 100, 150), Verdict::Revoked);
        // A login after the revocation, even within the same second, is unaffected.
        store.record_refresh_token(&token("b", 1000), 150).unwrap();
        assert_eq!(verdict(&store, "b", 150, 150), Verdict::Usable);
        // Tokens latch has no row for are judged by the cut-off.
        assert_eq!(verdict(&store, "foreign", 150, 151), Verdict::Revoked);
        assert_eq!(verdict(&store, "foreign", 151, 151), Verdict::Usable);
    }

    #[test]
    fn blacklisting_revokes_the_family_and_is_idempotent() {
        let (_dir, store) = store_with_user();
        store.record_refresh_token(&token("a", 1000), 100).unwrap();
        let next = token("b", 1000);
        assert_eq!(
            store
                .rotate_refresh_token("a", 100, 1000, &next, 101, 10)
                .unwrap(),
            Rotation::Rotated
        );
        store.blacklist_token("b", 1000, 102).unwrap();
        store.blacklist_token("b", 1000, 102).unwrap();
        assert_eq!(verdict(&store, "b", 101, 103), Verdict::Revoked);
        assert_eq!(
            verdict(&store, "a", 100, 103),
            Verdict::Revoked,
            "the retired sibling is revoked too, even within the grace window"
        );
        assert_eq!(store.blacklisted_count().unwrap(), 1);
    }

    #[test]
    fn replay_after_the_grace_window_revokes_the_family() {
        let (_dir, store) = store_with_user();
        store.record_refresh_token(&token("a", 1000), 100).unwrap();
        let rotate = |presented: &str, new: &str, now| {
            store
                .rotate_refresh_token(presented, 100, 1000, &token(new, 1000), now, 10)
                .unwrap()
        };
        assert_eq!(rotate("a", "b", 100), Rotation::Rotated);
        assert_eq!(rotate("a", "c", 109), Rotation::Rotated, "within grace");
        assert_eq!(rotate("a", "d", 110), Rotation::Refused(Verdict::Reused));
        for jti in ["a", "b", "c"] {
            assert_eq!(verdict(&store, jti, 100, 112), Verdict::Revoked, "{jti}");
        }
        assert_eq!(
            rotate("b", "e", 112),
            Rotation::Refused(Verdict::Revoked),
            "the attacker's descendants die too"
        );
    }

    #[test]
    fn rotating_a_foreign_token_blacklists_it_and_starts_a_family() {
        let (_dir, store) = store_with_user();
        assert_eq!(
            store
                .rotate_refresh_token("django", 100, 1000, &token("b", 1000), 100, 10)
                .unwrap(),
            Rotation::Rotated
        );
        assert_eq!(verdict(&store, "django", 100, 100), Verdict::Revoked);
        assert_eq!(verdict(&store, "b", 100, 100), Verdict::Usable);
    }

    #[test]
    fn expired_rows_are_purged_by_later_writes() {
        let (_dir, store) = store_with_user();
        store.blacklist_token("old", 100, 100).unwrap();
        store
            .record_refresh_token(&token("old-r", 100), 100)
            .unwrap();
        store
            .record_refresh_token(&token("new", 99_999), 100 + KEEP_AFTER_EXPIRY + 1)
            .unwrap();
        assert_eq!(store.blacklisted_count().unwrap(), 0);
        assert!(store.refresh_state(1, "old-r").unwrap().row.is_none());
    }
}
