//! The import's write on SQLite: every user and the id sequence, planned
//! and written under one write lock.

use rusqlite::{Connection, OptionalExtension};

use super::users::{all_users, insert_with_id};
use super::{Sqlite, raise_sequence};
use crate::store::{Holdings, ImportWrite, ImportedUser, StoreError, StoreResult};

impl Sqlite {
    /// What latch holds now (a read, for a dry run).
    pub fn holdings(&self) -> StoreResult<Holdings> {
        holdings(&*self.conn()?)
    }

    /// An import as one write: under the write lock, `plan` sees what latch
    /// holds and decides; the users it returns are inserted with their ids
    /// and the id sequence raised, all or none. Holding the lock from the
    /// plan to the insert, no registration can take a username, address or
    /// id the plan counted as free. `progress` hears how many of how many are in.
    pub fn import_users<T>(
        &self,
        plan: impl FnOnce(Holdings) -> T,
        write: impl FnOnce(&T) -> Option<ImportWrite<'_>>,
        progress: &dyn Fn(usize, usize),
    ) -> StoreResult<T> {
        self.in_write_tx(|tx| {
            let planned = plan(holdings(tx)?);
            if let Some(decided) = write(&planned) {
                insert_users(tx, decided.users, progress)?;
                raise_sequence(tx, "users", decided.id_floor)?;
            }
            Ok(planned)
        })
    }
}

fn holdings(conn: &Connection) -> StoreResult<Holdings> {
    let users = all_users(conn)?;
    let max_id_ever: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'users'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(Holdings {
        users,
        max_id_ever: max_id_ever.unwrap_or(0),
    })
}

fn insert_users(
    tx: &Connection,
    users: &[ImportedUser],
    progress: &dyn Fn(usize, usize),
) -> StoreResult<()> {
    for (n, u) in users.iter().enumerate() {
        let inserted = insert_with_id(tx, u, 0);
        // The plan ran under the same lock, so this is a bug in it (two
        // users of the source sharing a key), said with the user's name.
        if let Err(err) = inserted {
            return Err(StoreError::Other(format!(
                "user {:?} (id {}) could not be inserted: {err}; nothing was imported",
                u.username, u.id
            )));
        }
        if (n + 1) % 1000 == 0 {
            progress(n + 1, users.len());
        }
    }
    progress(users.len(), users.len());
    Ok(())
}
