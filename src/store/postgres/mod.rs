//! The PostgreSQL backend: one server shared by any number of latch
//! instances. Connections come from a pool (deadpool); every write is a
//! transaction at READ COMMITTED, run through `transact!` (or `in_tx!`),
//! which retries it on a fresh connection when the server asked for that
//! (serialization failure, deadlock, a lock not had within the busy
//! timeout) or the connection broke, but never once its COMMIT was sent:
//! a COMMIT whose answer was lost may have been applied. Reads, which may
//! run again whatever happened, use `attempt!`.
//!
//! What the instances must agree on is settled by the database, never by an
//! earlier read: unique constraints, row locks (`FOR UPDATE`, and the user's
//! row for anything that adds or revokes the user's refresh tokens), and
//! `SKIP LOCKED` for the outbox.

/// `attempt!(pg, |c| body)`: runs `body` (a `Result<T, Failure>`, where
/// `?` and `return` leave the body) with `c: &Client` from the pool, and
/// again on a fresh connection when it failed in a way worth retrying, up
/// to `ATTEMPTS` times; gives a `StoreResult<T>`. Every statement of the
/// store runs through here or `transact!`; a write never runs here as a
/// statement of its own (autocommit): when its connection breaks, it may
/// have committed, and running it again would not give the same answer.
/// Macros rather than functions taking async closures: a future of such a
/// function cannot be proven `Send` (rustc's higher-ranked auto trait
/// limitation), and warp needs it.
macro_rules! attempt {
    ($pg:expr, |$c:ident| $body:expr) => {{
        let mut tries = 1;
        loop {
            let result = $crate::store::postgres::run(async {
                let client = $pg.pool.get().await?;
                let $c: &deadpool_postgres::Client = &client;
                $body
            })
            .await;
            if let Some(done) = $crate::store::postgres::settle(result, &mut tries).await {
                break done;
            }
        }
    }};
}

/// `transact!(pg, |tx| body)`: `attempt!` with `body` (a
/// `Result<Step<T>, Failure>`) in a transaction, `tx: &Transaction`, that
/// ends as the `Step` says.
macro_rules! transact {
    ($pg:expr, |$tx:ident| $body:expr) => {{
        let mut tries = 1;
        loop {
            let result = $crate::store::postgres::run(async {
                let mut client = $pg.pool.get().await?;
                let owned = client.transaction().await?;
                let step = {
                    let $tx = &owned;
                    $crate::store::postgres::run(async { $body }).await?
                };
                $crate::store::postgres::finish(owned, step).await
            })
            .await;
            if let Some(done) = $crate::store::postgres::settle(result, &mut tries).await {
                break done;
            }
        }
    }};
}

/// `in_tx!(pg, |tx| body)`: `transact!` for a body (a `Result<T, Failure>`)
/// whose transaction commits when it is Ok.
macro_rules! in_tx {
    ($pg:expr, |$tx:ident| $body:expr) => {
        transact!($pg, |$tx| $crate::store::postgres::run(async { $body })
            .await
            .map($crate::store::postgres::Step::Commit))
    };
}

mod connect;
mod error;
mod import;
mod limits;
mod outbox;
mod refresh_tokens;
mod reset_tokens;
mod settings;
mod snapshot;
mod users;

#[cfg(test)]
mod tests;

use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{
    Client, GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::{NoTls, Row};

use error::Failure;
use error::{describe, message};

pub(crate) use connect::redact;

use super::{StoreError, StoreResult};

/// The schema, one step per file, in order, named as the SQLite steps are:
/// after N steps both schemas mean the same. `latch_schema.version` counts
/// the steps a database has had.
pub(crate) const MIGRATIONS: [(&str, &str); 5] = [
    (
        "001_initial",
        include_str!("../migrations/postgres/001_initial.sql"),
    ),
    (
        "002_token_lifecycle",
        include_str!("../migrations/postgres/002_token_lifecycle.sql"),
    ),
    (
        "003_django_accounts",
        include_str!("../migrations/postgres/003_django_accounts.sql"),
    ),
    (
        "004_outbox_queued_time",
        include_str!("../migrations/postgres/004_outbox_queued_time.sql"),
    ),
    (
        "005_login_limits",
        include_str!("../migrations/postgres/005_login_limits.sql"),
    ),
];

/// The advisory lock that migrations hold (any fixed number; this is
/// "latch" in ASCII): of instances starting together, one migrates.
const MIGRATION_LOCK: i64 = 0x6c_61_74_63_68;

/// Tries of one transaction before the caller hears "unavailable".
const ATTEMPTS: u32 = 3;

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

impl Postgres {
    /// Connects to `url` (`postgres://user:pass@host:port/db?sslmode=…`, see
    /// `connect.rs` for the modes) and brings the schema up to date.
    /// `busy_timeout` bounds the wait for a pooled connection and for a new
    /// one (at least a second), and, as the sessions' `lock_timeout`, the
    /// wait of a statement for a row or table lock (then the call is
    /// "unavailable", as SQLite's busy timeout makes it).
    pub async fn open(url: &str, busy_timeout: Duration, pool_size: u32) -> anyhow::Result<Self> {
        Postgres::connect(url, busy_timeout, pool_size, Migrate::Yes).await
    }

    async fn connect(
        url: &str,
        busy_timeout: Duration,
        pool_size: u32,
        migrating: Migrate,
    ) -> anyhow::Result<Self> {
        let shown = redact(url);
        let mut target = connect::target(url)?;
        let timeout = busy_timeout.max(Duration::from_secs(1));
        if target.config.get_connect_timeout().is_none() {
            target.config.connect_timeout(timeout);
        }
        connect::set_lock_timeout(&mut target.config, busy_timeout);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match target.tls {
            None => Manager::from_config(target.config, NoTls, manager_config),
            Some(tls) => Manager::from_config(
                target.config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1) as usize)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .context("setting up the database connection pool")?;
        let mut client = pool.get().await.map_err(|e| {
            anyhow::anyhow!(
                "connecting to database {shown}: {}",
                message(&Failure::from(e).error)
            )
        })?;
        if migrating == Migrate::No {
            drop(client);
            return Ok(Postgres { pool });
        }
        migrate(&mut client)
            .await
            .with_context(|| format!("migrating the schema of database {shown}"))?;
        Ok(Postgres { pool })
    }

    /// The schema version of the database (0: no latch schema yet), read
    /// without changing anything, and the version this latch knows.
    pub async fn schema_versions(
        url: &str,
        busy_timeout: Duration,
    ) -> anyhow::Result<(usize, usize)> {
        let pg = Postgres::connect(url, busy_timeout, 1, Migrate::No).await?;
        let version = attempt!(pg, |c| {
            let exists =
                query_one(c, "SELECT to_regclass('latch_schema') IS NOT NULL", &[]).await?;
            if !col::<bool>(&exists, 0)? {
                return Ok(0);
            }
            let row = query_one(c, "SELECT version FROM latch_schema", &[]).await?;
            col::<i32>(&row, 0)
        })?;
        Ok((usize::try_from(version).unwrap_or(0), MIGRATIONS.len()))
    }

    /// True when a connection can be had and answers a query.
    pub async fn is_healthy(&self) -> bool {
        attempt!(self, |c| Ok(c.query_one("SELECT 1", &[]).await?)).is_ok()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Migrate {
    Yes,
    No,
}

/// An attempt's outcome: None to try again (after a short, jittered pause),
/// or the answer. Tried [`ATTEMPTS`] times, a retryable failure is
/// "unavailable".
async fn settle<T>(result: Result<T, Failure>, tries: &mut u32) -> Option<StoreResult<T>> {
    match result {
        Ok(value) => Some(Ok(value)),
        Err(failure) if failure.retry && *tries < ATTEMPTS => {
            *tries += 1;
            let pause = rand::random_range(5..=25 * u64::from(*tries));
            tokio::time::sleep(Duration::from_millis(pause)).await;
            None
        }
        Err(Failure {
            retry: true, error, ..
        }) => Some(Err(StoreError::Unavailable(format!(
            "{} (after {ATTEMPTS} attempts)",
            message(&error)
        )))),
        Err(failure) => Some(Err(failure.error)),
    }
}

/// Awaits `f`; its type says what `?` converts to in the async blocks of
/// the macros.
async fn run<T>(f: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    f.await
}

/// Ends a transaction as its body decided. A failed commit is not retried:
/// it may have been applied.
async fn finish<T>(tx: Transaction<'_>, step: Step<T>) -> Result<T, Failure> {
    match step {
        Step::Commit(value) => {
            tx.commit().await.map_err(|e| Failure::from(e).final_())?;
            Ok(value)
        }
        Step::Rollback(value) => {
            tx.rollback().await?;
            Ok(value)
        }
    }
}

/// How a transaction ends.
enum Step<T> {
    Commit(T),
    Rollback(T),
}

/// Brings the schema up to date in one transaction that first takes an
/// advisory lock: of instances opening an empty database together, one
/// migrates and the others wait for it, then find nothing left to do.
async fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    // Not bound by the busy timeout: an instance waits for another's
    // migration (or for the locks a schema step needs) as long as it takes.
    tx.batch_execute("SET LOCAL lock_timeout = 0")
        .await
        .map_err(described)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(described)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS latch_schema (version INTEGER NOT NULL)")
        .await
        .map_err(described)?;
    let rows = tx
        .query("SELECT version FROM latch_schema", &[])
        .await
        .map_err(described)?;
    let version = match rows.as_slice() {
        [] => {
            tx.execute("INSERT INTO latch_schema (version) VALUES (0)", &[])
                .await
                .map_err(described)?;
            0
        }
        [row] => row.get::<_, i32>(0),
        _ => anyhow::bail!("latch_schema has {} rows; it must have one", rows.len()),
    };
    let known = MIGRATIONS.len();
    let version =
        usize::try_from(version).with_context(|| format!("latch_schema says version {version}"))?;
    if version > known {
        anyhow::bail!(
            "the database has schema version {version}, but this latch knows only {known}: it was made by a newer latch"
        );
    }
    if version == known {
        return tx.commit().await.map_err(described);
    }
    for (name, sql) in &MIGRATIONS[version..] {
        tx.batch_execute(sql)
            .await
            .map_err(described)
            .with_context(|| format!("applying schema step {name}"))?;
    }
    tx.execute(
        "UPDATE latch_schema SET version = $1",
        &[&i32::try_from(known)?],
    )
    .await
    .map_err(described)?;
    tx.commit().await.map_err(described)?;
    Ok(())
}

fn described(err: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!(describe(&err))
}

/// The highest id ever handed out by the id sequence of `table` (one of
/// latch's own tables, named by the code), or the largest id in it if that
/// is larger; 0 for a table that never had a row.
async fn high_water_mark(c: &impl GenericClient, table: &str) -> Result<i64, Failure> {
    // The sequence's name comes from the catalog, quoted as needed.
    let sql = format!("SELECT pg_get_serial_sequence('{table}', 'id')");
    let sequence: String = col(&query_one(c, &sql, &[]).await?, 0)?;
    let sql = format!(
        "SELECT GREATEST(CASE WHEN is_called THEN last_value ELSE 0 END,
                         (SELECT COALESCE(MAX(id), 0) FROM {table}))
         FROM {sequence}"
    );
    col(&query_one(c, &sql, &[]).await?, 0)
}

/// A column of a row, a [`Failure`] when it does not have that type.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, Failure> {
    Ok(row.try_get(idx)?)
}

type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Runs a statement through the connection's statement cache: each is
/// parsed once per connection, not on every call.
async fn exec(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, Failure> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

async fn query(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Failure> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

async fn query_opt(
    c: &impl GenericClient,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, Failure> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

async fn query_one(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row, Failure> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}
