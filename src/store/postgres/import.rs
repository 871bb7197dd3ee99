//! The import's write on PostgreSQL: every user and the id sequence, planned
//! and written in one transaction that keeps registrations out meanwhile.

use deadpool_postgres::GenericClient;

use super::users::all_users;
use super::{Failure, Postgres, high_water_mark, query_one};
use crate::store::{Holdings, ImportWrite, StoreError, StoreResult, User};

/// Users inserted per statement (and per progress report).
pub(super) const CHUNK: usize = 1000;

impl Postgres {
    /// What latch holds now (a read, for a dry run).
    pub async fn holdings(&self) -> StoreResult<Holdings> {
        attempt!(self, |c| holdings(c).await)
    }

    /// An import as one transaction: under a lock on the users table that
    /// lets reads through but no other write, `plan` sees what latch holds
    /// and decides; the users it returns are inserted with their ids and the
    /// id sequence raised, all or none. Holding the lock from the plan to
    /// the insert, no registration (of any instance) can take a username,
    /// address or id the plan counted as free. `progress` hears how many of
    /// how many are in. Not retried: `plan` runs once.
    pub async fn import_users<T>(
        &self,
        plan: impl FnOnce(Holdings) -> T,
        write: impl FnOnce(&T) -> Option<ImportWrite<'_>>,
        progress: &dyn Fn(usize, usize),
    ) -> StoreResult<T> {
        let mut client = self.pool.get().await.map_err(Failure::from)?;
        let tx = client.transaction().await.map_err(Failure::from)?;
        tx.batch_execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .await
            .map_err(Failure::from)?;
        let held = holdings(&tx).await?;
        let high_water = held.max_id_ever;
        let planned = plan(held);
        if let Some(decided) = write(&planned) {
            for (n, chunk) in decided.users.chunks(CHUNK).enumerate() {
                let chunk: Vec<(&User, i64)> = chunk.iter().map(|u| (u, 0)).collect();
                insert_users(&tx, &chunk).await?;
                progress(n * CHUNK + chunk.len(), decided.users.len());
            }
            if decided.users.is_empty() {
                progress(0, 0);
            }
            let top = decided.users.iter().map(|u| u.id).max().unwrap_or(0);
            let raised = top.max(decided.id_floor);
            if raised > high_water {
                query_one(
                    &tx,
                    "SELECT setval(pg_get_serial_sequence('users', 'id'), $1, true)",
                    &[&raised],
                )
                .await?;
            }
        }
        tx.commit().await.map_err(|e| Failure::from(e).final_())?;
        Ok(planned)
    }
}

async fn holdings(c: &impl GenericClient) -> Result<Holdings, Failure> {
    Ok(Holdings {
        users: all_users(c).await?,
        max_id_ever: high_water_mark(c, "users").await?,
    })
}

/// One statement for a chunk of whole accounts with their ids, column by
/// column; each with its `tokens_revoked_before`.
pub(super) async fn insert_users(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[(&User, i64)],
) -> Result<(), Failure> {
    let users: Vec<&User> = rows.iter().map(|(u, _)| *u).collect();
    let revoked: Vec<i64> = rows.iter().map(|(_, r)| *r).collect();
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let usernames: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
    let keys: Vec<Option<&str>> = users.iter().map(|u| u.email_key.as_deref()).collect();
    let hashes: Vec<&str> = users.iter().map(|u| u.password_hash.as_str()).collect();
    let active: Vec<bool> = users.iter().map(|u| u.is_active).collect();
    let staff: Vec<bool> = users.iter().map(|u| u.is_staff).collect();
    let superuser: Vec<bool> = users.iter().map(|u| u.is_superuser).collect();
    let joined: Vec<i64> = users.iter().map(|u| u.date_joined).collect();
    let last_login: Vec<Option<i64>> = users.iter().map(|u| u.last_login).collect();
    let inserted = tx
        .execute(
            "INSERT INTO users (id, username, email, email_key, password_hash, is_active,
                 is_staff, is_superuser, date_joined, last_login, tokens_revoked_before)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                 $6::BOOLEAN[], $7::BOOLEAN[], $8::BOOLEAN[], $9::BIGINT[], $10::BIGINT[],
                 $11::BIGINT[])",
            &[
                &ids,
                &usernames,
                &emails,
                &keys,
                &hashes,
                &active,
                &staff,
                &superuser,
                &joined,
                &last_login,
                &revoked,
            ],
        )
        .await;
    // The plan ran under the same lock, so this is a bug in it (two users
    // of the source sharing a key).
    inserted.map(drop).map_err(|err| {
        let (first, last) = (ids.first().unwrap_or(&0), ids.last().unwrap_or(&0));
        StoreError::Other(format!(
            "the users with ids {first} to {last} could not be inserted: {}; nothing was imported",
            super::describe(&err)
        ))
        .into()
    })
}
