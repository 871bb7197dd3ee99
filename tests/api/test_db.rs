//! The database a test server runs on: a SQLite file in the test's folder,
//! or, with `LATCH_TEST_BACKEND=postgres`, a fresh database of its own on the
//! PostgreSQL server at `LATCH_TEST_DATABASE_URL` (`.ci/run` starts one with
//! `pg_virtualenv`). Tests read and arrange rows through it in SQL that both
//! engines take.

use std::path::{Path, PathBuf};

use latch::Config;
use serde_json::Value;

use crate::helpers::in_ci;

/// The PostgreSQL server for tests, if one is given; under CI its absence
/// fails the test that needs it.
pub fn postgres_url() -> Option<String> {
    match std::env::var("LATCH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !in_ci(),
                "LATCH_TEST_DATABASE_URL is not set: under CI every test runs with a PostgreSQL server (.ci/run starts one)"
            );
            None
        }
    }
}

/// True when the suite runs its servers on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("LATCH_TEST_BACKEND").as_deref() == Ok("postgres")
}

#[derive(Clone)]
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { url: String },
}

impl TestDb {
    /// The backend the suite runs on, fresh for one test.
    pub async fn create(dir: &Path) -> TestDb {
        if on_postgres() {
            let server =
                postgres_url().expect("LATCH_TEST_BACKEND=postgres needs LATCH_TEST_DATABASE_URL");
            TestDb::Postgres {
                url: fresh_postgres_database(&server).await,
            }
        } else {
            TestDb::Sqlite(dir.join("auth.db"))
        }
    }

    /// The database `config` points at.
    pub fn of(config: &Config) -> TestDb {
        match &config.database.url {
            None => TestDb::Sqlite(config.database.path.clone()),
            Some(url) => TestDb::Postgres {
                url: url.expose().to_string(),
            },
        }
    }

    /// Points `config` at this database.
    pub fn configure(&self, config: &mut Config) {
        match self {
            TestDb::Sqlite(path) => {
                config.database.path = path.clone();
                config.database.url = None;
            }
            TestDb::Postgres { url } => config.database.url = Some(url.as_str().into()),
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        match self {
            TestDb::Sqlite(path) => sqlite(path).execute(sql, []).unwrap() as u64,
            TestDb::Postgres { url } => client(url).await.execute(sql, &[]).await.unwrap(),
        }
    }

    /// The first row a query returns, as JSON values (integers, text, null;
    /// booleans as PostgreSQL gives them, so select `CASE WHEN b THEN 1 ELSE
    /// 0 END` to compare both).
    pub async fn row(&self, sql: &str) -> Vec<Value> {
        match self {
            TestDb::Sqlite(path) => {
                let conn = sqlite(path);
                let mut stmt = conn.prepare(sql).unwrap();
                let columns = stmt.column_count();
                stmt.query_row([], |r| {
                    Ok((0..columns)
                        .map(|i| match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(n) => n.into(),
                            rusqlite::types::ValueRef::Real(x) => x.into(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned().into()
                            }
                            rusqlite::types::ValueRef::Blob(b) => hex::encode(b).into(),
                        })
                        .collect())
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            TestDb::Postgres { url } => {
                let row = client(url)
                    .await
                    .query_one(sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                (0..row.len()).map(|i| pg_value(&row, i)).collect()
            }
        }
    }
}

impl TestDb {
    /// Everything the database holds, to search for what must never be
    /// stored: the SQLite file and its write-ahead log as they are on disk,
    /// or every row of every table as PostgreSQL shows it.
    pub async fn everything(&self) -> Vec<u8> {
        match self {
            TestDb::Sqlite(path) => {
                let mut bytes = std::fs::read(path).unwrap();
                bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
                bytes
            }
            TestDb::Postgres { url } => {
                let client = client(url).await;
                let tables = client
                    .query(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
                        &[],
                    )
                    .await
                    .unwrap();
                let mut text = String::new();
                for table in tables {
                    let name: String = table.get(0);
                    let sql =
                        format!("SELECT COALESCE(string_agg(t::text, E'\\n'), '') FROM {name} t");
                    text.push_str(
                        &client
                            .query_one(&sql, &[])
                            .await
                            .unwrap()
                            .get::<_, String>(0),
                    );
                }
                text.into_bytes()
            }
        }
    }
}

fn sqlite(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// A connection for one query (tests make few).
pub async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    tokio::spawn(connection);
    client
}

fn pg_value(row: &tokio_postgres::Row, i: usize) -> Value {
    use tokio_postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    match ty {
        Type::INT8 => row
            .get::<_, Option<i64>>(i)
            .map_or(Value::Null, Value::from),
        Type::INT4 => row
            .get::<_, Option<i32>>(i)
            .map_or(Value::Null, Value::from),
        Type::INT2 => row
            .get::<_, Option<i16>>(i)
            .map_or(Value::Null, Value::from),
        Type::BOOL => row
            .get::<_, Option<bool>>(i)
            .map_or(Value::Null, Value::from),
        Type::FLOAT8 => row
            .get::<_, Option<f64>>(i)
            .map_or(Value::Null, Value::from),
        Type::TEXT | Type::VARCHAR | Type::NAME => row
            .get::<_, Option<String>>(i)
            .map_or(Value::Null, Value::from),
        other => panic!("test_db: no JSON for a column of type {other}"),
    }
}

/// Creates a database no other test uses on the server at `server` and
/// returns its URL. The server is a throwaway one, so nothing is dropped.
pub async fn fresh_postgres_database(server: &str) -> String {
    let name = format!("latch_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    client(server)
        .await
        .execute(&format!("CREATE DATABASE {name}"), &[])
        .await
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    with_database(server, &name)
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    let base = match before_query[scheme_end..].find('/') {
        Some(slash) => &before_query[..scheme_end + slash],
        None => before_query,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
