//! The only module that speaks SQL. Everything above it sees plain Rust types,
//! so the store could move to another engine without touching the handlers.
//!
//! Reads are short indexed lookups and may run inline on the async threads;
//! writes commit with `synchronous=FULL` (an fsync) and are meant to be called
//! through [`Store::write`], which runs them on tokio's blocking pool.

mod outbox;
mod refresh_tokens;
mod reset_tokens;
mod settings;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use rusqlite_migration::{M, Migrations};
use tokio::sync::Semaphore;

pub use outbox::{NewMail, QueuedMail, ResetTokenRef};
pub use refresh_tokens::{IssuedToken, RefreshState, Rotation, TokenRow, Verdict};
pub use reset_tokens::LiveResetToken;
pub use users::{InsertUser, NewUser, User};

type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not take the write or read right now (locked past the
    /// busy timeout, disk full, read-only file, pool exhausted). Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let transient = matches!(
            err.sqlite_error_code(),
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::ReadOnly
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::OutOfMemory
            )
        );
        if transient {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Other(err.to_string())
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(err: r2d2::Error) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/001_initial.sql")),
        M::up(include_str!("migrations/002_token_lifecycle.sql")),
    ])
}

/// A pool of connections to one SQLite file.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite has one writer at a time anyway. Queueing writers here (FIFO,
    /// woken at once) beats letting them poll SQLite's busy handler, and
    /// keeps pooled connections free for the reads that run inline.
    writer: Arc<Semaphore>,
}

impl Store {
    /// Opens (creating if needed) the database file, switches it to WAL and
    /// brings the schema up to date.
    pub fn open(path: &Path, busy_timeout: Duration, pool_size: u32) -> anyhow::Result<Store> {
        use anyhow::Context as _;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating database folder {}", parent.display()))?;
        }
        // WAL is a property of the file, so it is set once, before the pool opens.
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(busy_timeout)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .context("switching the database to WAL mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!(
                "database {} cannot use WAL mode (got {mode:?}); is it on a network filesystem?",
                path.display()
            );
        }
        migrations()
            .to_latest(&mut conn)
            .context("migrating the database schema")?;
        drop(conn);

        let manager = SqliteConnectionManager::file(path).with_init(move |c| {
            c.busy_timeout(busy_timeout)?;
            // FULL: a commit is on disk (WAL fsynced) before we acknowledge it.
            c.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        });
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(busy_timeout.max(Duration::from_secs(1)))
            .build(manager)
            .context("opening the database connection pool")?;
        Ok(Store {
            pool,
            writer: Arc::new(Semaphore::new(1)),
        })
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in a write transaction that takes the write lock up front
    /// (BEGIN IMMEDIATE), so concurrent writers queue on the busy timeout
    /// instead of failing half-way with "database is locked". Every write of
    /// the store goes through here.
    fn in_write_tx<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs a (writing) store call on tokio's blocking pool, one at a time.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        let permit = self
            .writer
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Other("store closed".into()))?;
        // The permit moves into the blocking task: it is held until the write
        // is done, even if the request that asked for it has gone away.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&store)
        })
        .await
        .map_err(|err| StoreError::Other(format!("store task failed: {err}")))?
    }

    /// True when a connection can be had and answers a query.
    pub fn is_healthy(&self) -> bool {
        self.conn()
            .and_then(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .is_ok()
    }
}

/// True when `err` is a UNIQUE constraint violation on `table.column`.
fn is_unique_violation(err: &rusqlite::Error, column: &str) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, Some(msg))
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.ends_with(column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn open_sets_wal_and_creates_parent_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/folder/auth.db");
        let store = Store::open(&path, Duration::from_secs(1), 2).unwrap();
        let conn = store.conn().unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert!(store.is_healthy());
    }
}
