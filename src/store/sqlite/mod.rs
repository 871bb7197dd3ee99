//! The SQLite backend (the default): one file, WAL, reads inline on the
//! calling thread from a pool, writes serialized through one writer thread
//! that commits them in groups (`writer.rs`).
//!
//! Reads are short indexed lookups and may run inline on the async threads;
//! writes commit with `synchronous=FULL` (an fsync) and are meant to be called
//! through [`Sqlite::write`], which runs them on the writer thread.

mod django;
mod limits;
mod maintenance;
mod outbox;
mod refresh_tokens;
mod reset_tokens;
pub mod settings;
mod snapshot;
mod temporary;
mod users;
mod writer;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

pub use maintenance::{BackupReport, Inspection, backup, inspect, schema_versions};
pub use temporary::{MEMORY, TemporaryDatabase, is_memory};

use super::{StoreError, StoreResult};

type Pool = r2d2::Pool<SqliteConnectionManager>;

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

macro_rules! step {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
        )
    };
}

/// The schema, one step per file, in order; `PRAGMA user_version` counts
/// the steps a database has had.
/// (The PostgreSQL steps have the same names: a test checks.)
pub(crate) const MIGRATIONS: [(&str, &str); 5] = [
    step!("001_initial"),
    step!("002_token_lifecycle"),
    step!("003_django_accounts"),
    step!("004_outbox_queued_time"),
    step!("005_login_limits"),
];

/// Sets WAL mode and says which mode the file is in. Another process
/// switching the same new file at that moment makes SQLite answer "locked"
/// at once, without waiting (its busy handler is not called for this lock):
/// that is retried for as long as the busy timeout allows.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(err)
                if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// Brings the schema up to date in one transaction that takes the write lock
/// before it reads the version: of processes opening a new file together,
/// one migrates and the others wait for it, then find nothing left to do.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    use anyhow::Context as _;
    // A step that rebuilds a table drops the old one: with foreign keys on,
    // that would cascade into the rows pointing at it. The references are
    // checked instead, before the commit.
    conn.pragma_update(None, "foreign_keys", false)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        anyhow::bail!(
            "the database has schema version {version}, but this latch knows only {}: it was made by a newer latch",
            MIGRATIONS.len()
        );
    }
    if version == MIGRATIONS.len() {
        return Ok(());
    }
    for (step, (_, sql)) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)
            .with_context(|| format!("applying schema step {}", step + 1))?;
    }
    let dangling: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    anyhow::ensure!(
        dangling == 0,
        "the schema steps left {dangling} rows pointing at nothing"
    );
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit()?;
    Ok(())
}

/// A pool of connections to one SQLite file, for reads, and the writer
/// thread (`writer.rs`) that commits the writes.
#[derive(Clone)]
pub struct Sqlite {
    pool: Pool,
    /// SQLite has one writer at a time anyway: writes queue here for the
    /// writer thread, which commits those waiting together (one fsync), and
    /// the pooled connections stay free for the reads that run inline.
    writer: crossbeam_channel::Sender<writer::Job>,
}

impl Sqlite {
    /// Opens (creating if needed) the database file, switches it to WAL and
    /// brings the schema up to date.
    pub(crate) fn open(
        path: &Path,
        busy_timeout: Duration,
        pool_size: u32,
    ) -> anyhow::Result<Sqlite> {
        use anyhow::Context as _;
        if is_memory(path) {
            // SQLite would open a private in-memory database per connection,
            // and refuse WAL: say what `:memory:` means here instead.
            anyhow::bail!(
                "database {MEMORY} is a temporary database that only `latch serve` makes (removed when it stops); give a database file"
            );
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating database folder {}", parent.display()))?;
        }
        // WAL is a property of the file, so it is set once, before the pool opens.
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        conn.busy_timeout(busy_timeout)?;
        let mode =
            switch_to_wal(&conn, busy_timeout).context("switching the database to WAL mode")?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!(
                "database {} cannot use WAL mode (got {mode:?}); is it on a network filesystem?",
                path.display()
            );
        }
        migrate(&mut conn).context("migrating the database schema")?;
        drop(conn);

        let setup = move |c: &mut Connection| {
            c.busy_timeout(busy_timeout)?;
            c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            c.pragma_update(None, "mmap_size", MMAP_BYTES)?;
            // FULL: a commit is on disk (WAL fsynced) before we acknowledge it.
            c.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        };
        let manager = SqliteConnectionManager::file(path).with_init(setup);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(busy_timeout.max(Duration::from_secs(1)))
            .build(manager)
            .context("opening the database connection pool")?;
        let mut writer_conn = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        setup(&mut writer_conn)?;
        // The writer thread's own handle has no way to queue writes (it would
        // wait for itself), so that the thread ends with the last real handle.
        let (unconnected, _) = crossbeam_channel::bounded(0);
        let for_writer = Sqlite {
            pool: pool.clone(),
            writer: unconnected,
        };
        let writer =
            writer::spawn(for_writer, writer_conn).context("starting the writer thread")?;
        Ok(Sqlite { pool, writer })
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` as one write, all or nothing: every write of the store goes
    /// through here. On the writer thread it is a savepoint of the batch
    /// being committed; elsewhere (start-up, tests, tools) a transaction of
    /// its own that takes the write lock up front (BEGIN IMMEDIATE), so that
    /// concurrent writers queue on the busy timeout instead of failing
    /// half-way with "database is locked".
    fn in_write_tx<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        if writer::batching() {
            return writer::in_batch(f);
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs a (writing) store call on the writer thread and answers once it
    /// is committed (on disk). A write whose caller went away still runs.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Sqlite) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (job, answer) = writer::job(f);
        self.writer
            .send(job)
            .map_err(|_| StoreError::Other("the writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("a write failed on the writer thread".into()))?
    }

    /// True when a connection can be had and answers a query.
    pub fn is_healthy(&self) -> bool {
        self.conn()
            .and_then(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
            .is_ok()
    }
}

/// `Connection::execute` through the connection's statement cache: the
/// store's statements are parsed once per connection, not on every call.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Raises the AUTOINCREMENT high-water mark of `table` (kept in
/// sqlite_sequence) to at least `floor`: no id up to it is handed out.
fn raise_sequence(tx: &Connection, table: &str, floor: i64) -> StoreResult<()> {
    exec(
        tx,
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?2) WHERE name = ?1",
        rusqlite::params![table, floor],
    )?;
    exec(
        tx,
        "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
        rusqlite::params![table, floor],
    )?;
    Ok(())
}

/// Statements a connection keeps parsed (the store has a few dozen).
const STATEMENT_CACHE: usize = 64;
/// Reads of a large database go through memory mapping (the OS page cache,
/// shared, no copy) rather than a read call per page.
const MMAP_BYTES: i64 = 1 << 30;

/// True when `err` is a UNIQUE constraint violation on `table.column`.
fn is_unique_violation(err: &rusqlite::Error, column: &str) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, Some(msg))
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && msg.ends_with(column))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::NewUser;

    /// A store on a temporary file with one user, ann (id 1), whose password
    /// hash is `hash`.
    pub(crate) fn store_with_user(hash: &str) -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let user = NewUser {
            username: "ann".into(),
            email: "a@x.io".into(),
            email_key: "a@x.io".into(),
            password_hash: hash.into(),
        };
        store.insert_user(&user, 0).unwrap();
        (dir, store)
    }

    #[test]
    fn migrations_apply_in_order_once_and_refuse_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        conn.pragma_update(None, "user_version", MIGRATIONS.len() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer latch"), "{err}");
    }

    #[test]
    fn mail_waiting_before_the_upgrade_counts_as_queued_at_the_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (_, step) in &MIGRATIONS[..3] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO outbox (recipient, subject, body, next_attempt_ms, discard_after_ms)
                 VALUES ('a@x.io', 's', 'b', 0, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let age_ms: i64 = conn
            .query_row(
                "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) - queued_ms FROM outbox",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!((0..60_000).contains(&age_ms), "{age_ms}");
    }

    #[test]
    fn rebuilding_the_users_table_keeps_rows_references_and_the_id_high_water_mark() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(MIGRATIONS[1].1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO users (id, username, email, email_key, password_hash, date_joined, tokens_revoked_before)
                 VALUES (1, 'ann', 'Ann@x.io', 'ann@x.io', 'h', 10, 7), (5, 'bob', 'b@x.io', 'b@x.io', 'h', 11, 0);
             DELETE FROM users WHERE id = 5;
             INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at) VALUES ('j', 1, 'j', 1, 2);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row: (String, String, i64, i64) = conn
            .query_row(
                "SELECT username, email, tokens_revoked_before, (SELECT COUNT(*) FROM refresh_tokens WHERE user_id = 1) FROM users WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("ann".into(), "Ann@x.io".into(), 7, 1));
        conn.execute_batch(
            "INSERT INTO users (username, email, email_key, password_hash, date_joined) VALUES ('new', '', NULL, 'h', 0), ('new2', '', NULL, 'h', 0)",
        )
        .unwrap();
        let id: i64 = conn
            .query_row("SELECT id FROM users WHERE username = 'new'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(id, 6, "the id of deleted bob (5) is not handed out again");
        // A blank address has no key, and a real one must have one.
        let mismatched = conn.execute(
            "INSERT INTO users (username, email, email_key, password_hash, date_joined) VALUES ('x', 'x@x.io', NULL, 'h', 0)",
            [],
        );
        assert!(mismatched.is_err());
        // The cascade still works through the rebuilt table.
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM users WHERE id = 1;")
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM refresh_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn open_sets_wal_and_creates_parent_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/folder/auth.db");
        let store = Sqlite::open(&path, Duration::from_secs(1), 2).unwrap();
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

#[cfg(test)]
mod concurrent_open {
    use super::*;

    /// Several processes (here: connections on threads, which SQLite locks
    /// alike) opening one new file at once: exactly one migrates it, and all
    /// of them open it.
    #[test]
    fn stores_opened_together_on_a_new_file_migrate_it_exactly_once() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let opened: Vec<_> = (0..4)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Sqlite::open(&path, Duration::from_secs(10), 1).map(|_| ())
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            for result in opened {
                result.unwrap_or_else(|e| panic!("round {round}: {e:#}"));
            }
        }
    }
}
