//! Rows about refresh tokens: the ones latch issued (for logout, rotation and
//! revocation), the blacklist, and each user's revocation cut-off. Tokens are
//! known by their `jti`; a token itself is never stored.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Sqlite, exec};
use crate::store::{IssuedToken, RefreshState, Rotation, StoreResult, TokenRow, Verdict};

/// Rows are kept this long past their token's expiry, so that no leeway
/// (at most an hour) can bring a revoked token back to life.
const KEEP_AFTER_EXPIRY: i64 = 3600;
/// Expired rows purged per write: more than one write adds, so they never pile up.
const PURGE_BATCH: i64 = 64;

impl Sqlite {
    /// Records a refresh token issued at login (it starts a family of its
    /// own), if the user is still active with the password hash the login
    /// verified: a password reset or deactivation that committed while the
    /// password was being checked wins. False, recording nothing, otherwise.
    pub fn record_login_token(
        &self,
        token: &IssuedToken,
        verified_hash: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.in_write_tx(|tx| {
            let inserted = exec(
                tx,
                "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at)
                 SELECT ?1, ?2, ?1, ?3, ?4 WHERE EXISTS
                 (SELECT 1 FROM users WHERE id = ?2 AND password_hash = ?5 AND is_active = 1)",
                params![
                    token.jti,
                    token.user_id,
                    token.issued_at,
                    token.expires_at,
                    verified_hash
                ],
            )?;
            if inserted == 1 {
                exec(
                    tx,
                    "UPDATE users SET last_login = ?2 WHERE id = ?1",
                    params![token.user_id, now],
                )?;
            }
            purge_expired(tx, now)?;
            Ok(inserted == 1)
        })
    }

    /// What the rows say about refresh token `jti` of `user_id`. A read.
    pub fn refresh_state(&self, user_id: i64, jti: &str) -> StoreResult<RefreshState> {
        state(&*self.conn()?, user_id, jti)
    }

    /// Exchanges a refresh token for `new` (same user), in one transaction
    /// that judges the presented token again, so that of racing rotations
    /// outside the grace window exactly one wins. Within the grace window a
    /// retired token gets the successor it was retired for, never a second
    /// live branch. A token latch has no row for gets one (retired, in a new
    /// family with `new`), so that replaying it is caught like any other. A
    /// retired token presented after the grace window revokes its family.
    pub fn rotate_refresh_token(
        &self,
        presented: &IssuedToken,
        new: &IssuedToken,
        now: i64,
        grace: i64,
    ) -> StoreResult<Rotation> {
        self.in_write_tx(|tx| {
            let current = state(tx, presented.user_id, &presented.jti)?;
            match current.verdict(presented.user_id, presented.issued_at, now, grace) {
                Verdict::Usable => {}
                Verdict::InGrace => {
                    let successor: Option<String> = tx.query_row(
                        "SELECT successor FROM refresh_tokens WHERE jti = ?1",
                        [&presented.jti],
                        |r| r.get(0),
                    )?;
                    return match successor.map(|jti| issued(tx, &jti)).transpose()?.flatten() {
                        Some(token) => Ok(Rotation::Rotated(token)),
                        None => Ok(Rotation::Refused(Verdict::Revoked)),
                    };
                }
                Verdict::Reused => {
                    let family = current.row.as_ref().map(|r| r.family.as_str());
                    revoke_family(tx, family.unwrap_or(&presented.jti), now)?;
                    return Ok(Rotation::Refused(Verdict::Reused));
                }
                refused => return Ok(Rotation::Refused(refused)),
            }
            let family = match &current.row {
                Some(row) => row.family.clone(),
                None => {
                    insert_token(tx, presented, &new.jti)?;
                    new.jti.clone()
                }
            };
            let retired = exec(
                tx,
                "UPDATE refresh_tokens SET retired_at = ?2, successor = ?3
                 WHERE jti = ?1 AND retired_at IS NULL AND revoked_at IS NULL",
                params![presented.jti, now, new.jti],
            )?;
            if retired != 1 {
                return Ok(Rotation::Refused(Verdict::Revoked));
            }
            insert_token(tx, new, &family)?;
            purge_expired(tx, now)?;
            Ok(Rotation::Rotated(new.clone()))
        })
    }

    /// Revokes the family of `jti` (a replayed token seen by verify).
    pub fn revoke_family_of(&self, jti: &str, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            let family = family_of(tx, jti)?;
            revoke_family(tx, family.as_deref().unwrap_or(jti), now)
        })
    }

    /// Blacklists `jti` (harmless if it already is) and, when latch issued it,
    /// revokes the rest of its family too: a logout ends the whole login.
    pub fn blacklist_token(&self, jti: &str, expires_at: i64, now: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            blacklist(tx, jti, expires_at)?;
            if let Some(family) = family_of(tx, jti)? {
                revoke_family(tx, &family, now)?;
            }
            purge_expired(tx, now)
        })
    }

    /// Revokes every refresh token of the user (logout from everywhere).
    /// Repeated within a second it changes nothing, and costs no sync.
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
pub(super) fn revoke_all_of_user(tx: &Connection, user_id: i64, now: i64) -> StoreResult<()> {
    exec(
        tx,
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    exec(
        tx,
        "UPDATE users SET tokens_revoked_before = ?2 WHERE id = ?1 AND tokens_revoked_before < ?2",
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

fn insert_token(tx: &Connection, token: &IssuedToken, family: &str) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.jti,
            token.user_id,
            family,
            token.issued_at,
            token.expires_at
        ],
    )?;
    Ok(())
}

/// The token recorded as `jti`, if it has a row.
fn issued(tx: &Connection, jti: &str) -> StoreResult<Option<IssuedToken>> {
    Ok(tx
        .query_row(
            "SELECT user_id, issued_at, expires_at FROM refresh_tokens WHERE jti = ?1",
            [jti],
            |r| {
                Ok(IssuedToken {
                    jti: jti.to_string(),
                    user_id: r.get(0)?,
                    issued_at: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            },
        )
        .optional()?)
}

fn blacklist(tx: &Connection, jti: &str, expires_at: i64) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![jti, expires_at],
    )?;
    Ok(())
}

/// The login family of the token recorded as `jti`, if it has a row.
fn family_of(tx: &Connection, jti: &str) -> StoreResult<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT family FROM refresh_tokens WHERE jti = ?1",
            [jti],
            |r| r.get(0),
        )
        .optional()?)
}

fn revoke_family(tx: &Connection, family: &str, now: i64) -> StoreResult<()> {
    exec(
        tx,
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL",
        params![family, now],
    )?;
    Ok(())
}

fn purge_expired(tx: &Connection, now: i64) -> StoreResult<()> {
    let before = now.saturating_sub(KEEP_AFTER_EXPIRY);
    for table in ["refresh_tokens", "blacklisted_tokens"] {
        exec(
            tx,
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
    use std::time::Duration;

    fn store_with_user() -> (tempfile::TempDir, Sqlite) {
        crate::store::sqlite::tests::store_with_user("h")
    }

    fn token(jti: &str, issued_at: i64) -> IssuedToken {
        IssuedToken {
            jti: jti.into(),
            user_id: 1,
            issued_at,
            expires_at: issued_at + 1000,
        }
    }

    fn login(store: &Sqlite, jti: &str, now: i64) {
        assert!(
            store
                .record_login_token(&token(jti, now), "h", now)
                .unwrap()
        );
    }

    fn verdict(store: &Sqlite, jti: &str, iat: i64, now: i64) -> Verdict {
        store
            .refresh_state(1, jti)
            .unwrap()
            .verdict(1, iat, now, 10)
    }

    fn rotate(store: &Sqlite, presented: &str, iat: i64, new: &str, now: i64) -> Rotation {
        store
            .rotate_refresh_token(&token(presented, iat), &token(new, now), now, 10)
            .unwrap()
    }

    #[test]
    fn a_recorded_token_is_usable_until_revoked() {
        let (_dir, store) = store_with_user();
        login(&store, "a", 100);
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
        login(&store, "b", 150);
        assert_eq!(verdict(&store, "b", 150, 150), Verdict::Usable);
        // Tokens latch has no row for are judged by the cut-off.
        assert_eq!(verdict(&store, "foreign", 150, 151), Verdict::Revoked);
        assert_eq!(verdict(&store, "foreign", 151, 151), Verdict::Usable);
    }

    #[test]
    fn a_login_is_not_recorded_once_the_password_changed_or_the_user_left() {
        let (_dir, store) = store_with_user();
        assert!(
            !store
                .record_login_token(&token("a", 100), "stale-hash", 100)
                .unwrap()
        );
        assert!(store.refresh_state(1, "a").unwrap().row.is_none());
        store.upgrade_password_hash(1, "h", "h2").unwrap();
        assert!(
            !store
                .record_login_token(&token("b", 100), "h", 100)
                .unwrap()
        );
        assert!(
            store
                .record_login_token(&token("c", 100), "h2", 100)
                .unwrap()
        );
    }

    #[test]
    fn blacklisting_revokes_the_family_and_is_idempotent() {
        let (_dir, store) = store_with_user();
        login(&store, "a", 100);
        assert_eq!(
            rotate(&store, "a", 100, "b", 101),
            Rotation::Rotated(token("b", 101))
        );
        store.blacklist_token("b", 1101, 102).unwrap();
        store.blacklist_token("b", 1101, 102).unwrap();
        assert_eq!(verdict(&store, "b", 101, 103), Verdict::Revoked);
        assert_eq!(
            verdict(&store, "a", 100, 103),
            Verdict::Revoked,
            "the retired parent is revoked too, even within the grace window"
        );
        assert_eq!(store.blacklisted_count().unwrap(), 1);
    }

    #[test]
    fn within_the_grace_window_the_same_successor_is_handed_out_again() {
        let (_dir, store) = store_with_user();
        login(&store, "a", 100);
        assert_eq!(
            rotate(&store, "a", 100, "b", 100),
            Rotation::Rotated(token("b", 100))
        );
        assert_eq!(
            rotate(&store, "a", 100, "c", 109),
            Rotation::Rotated(token("b", 100)),
            "no second branch"
        );
        assert!(store.refresh_state(1, "c").unwrap().row.is_none());
        assert_eq!(
            rotate(&store, "a", 100, "d", 110),
            Rotation::Refused(Verdict::Reused)
        );
        for jti in ["a", "b"] {
            assert_eq!(verdict(&store, jti, 100, 111), Verdict::Revoked, "{jti}");
        }
        assert_eq!(
            rotate(&store, "b", 100, "e", 112),
            Rotation::Refused(Verdict::Revoked),
            "the successor dies with its family"
        );
    }

    #[test]
    fn a_foreign_token_gets_a_retired_row_so_its_replay_is_caught() {
        let (_dir, store) = store_with_user();
        assert_eq!(
            rotate(&store, "django", 100, "b", 100),
            Rotation::Rotated(token("b", 100))
        );
        assert_eq!(verdict(&store, "django", 100, 105), Verdict::InGrace);
        assert_eq!(verdict(&store, "b", 100, 105), Verdict::Usable);
        assert_eq!(
            rotate(&store, "django", 100, "c", 120),
            Rotation::Refused(Verdict::Reused)
        );
        assert_eq!(verdict(&store, "b", 100, 121), Verdict::Revoked);
    }

    #[test]
    fn of_rotations_racing_on_separate_connections_exactly_one_wins() {
        let (dir, store) = store_with_user();
        login(&store, "a", 100);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let outcomes: Vec<Rotation> = (0..4)
            .map(|n| {
                let barrier = barrier.clone();
                let path = dir.path().join("t.db");
                std::thread::spawn(move || {
                    let store = Sqlite::open(&path, Duration::from_secs(5), 1).unwrap();
                    barrier.wait();
                    store
                        .rotate_refresh_token(
                            &token("a", 100),
                            &token(&format!("n{n}"), 200),
                            200,
                            0,
                        )
                        .unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let won = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated(_)))
            .count();
        assert_eq!(won, 1, "{outcomes:?}");
        assert!(outcomes.contains(&Rotation::Refused(Verdict::Reused)));
    }

    #[test]
    fn expired_rows_are_purged_by_later_writes() {
        let (_dir, store) = store_with_user();
        store.blacklist_token("old", 100, 100).unwrap();
        login(&store, "old-r", 0);
        login(&store, "new", 1000 + KEEP_AFTER_EXPIRY + 1);
        assert_eq!(store.blacklisted_count().unwrap(), 0);
        assert!(store.refresh_state(1, "old-r").unwrap().row.is_none());
    }
}
