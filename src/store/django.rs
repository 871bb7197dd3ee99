//! A Django project's SQLite database as a source of users (`latch import
//! django`), opened read-only, and the write that brings them in.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Store, StoreError, StoreResult, exec, is_unique_violation};

/// A row of Django's `auth_user` as Django stored it; times as their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DjangoUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: String,
    pub last_login: Option<String>,
}

/// The users of a Django SQLite database and the highest id it ever handed
/// out (`sqlite_sequence`, above the largest id left when the newest users
/// were deleted).
#[derive(Debug)]
pub struct DjangoTable {
    pub users: Vec<DjangoUser>,
    pub max_id_ever: i64,
}

/// Reads `auth_user` from the SQLite file at `path` without writing to it
/// (read-only, and `immutable` is not claimed: Django may be running).
pub fn read_django_sqlite(path: &Path) -> anyhow::Result<DjangoTable> {
    use anyhow::Context as _;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'auth_user')",
            [],
            |r| r.get(0),
        )
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        has_table,
        "{} has no auth_user table: is it the database of a Django project using django.contrib.auth's User?",
        path.display()
    );
    let mut stmt = conn.prepare(
        "SELECT id, username, email, password, is_active, is_staff, is_superuser, date_joined, last_login
         FROM auth_user ORDER BY id",
    )?;
    let users = stmt
        .query_map([], |row| {
            Ok(DjangoUser {
                id: row.get(0)?,
                username: row.get(1)?,
                email: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                password: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                is_active: flag(row.get(4)?),
                is_staff: flag(row.get(5)?),
                is_superuser: flag(row.get(6)?),
                date_joined: text(row.get(7)?).unwrap_or_default(),
                last_login: text(row.get(8)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading auth_user from {}", path.display()))?;
    // Django makes auth_user with AUTOINCREMENT, so sqlite_sequence exists.
    let sequence: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'auth_user'",
            [],
            |r| r.get(0),
        )
        .optional()
        .with_context(|| format!("reading the id sequence of {}", path.display()))?;
    let max_id = users.iter().map(|u| u.id).max().unwrap_or(0);
    Ok(DjangoTable {
        max_id_ever: sequence.unwrap_or(0).max(max_id),
        users,
    })
}

/// Django keeps booleans as integers in SQLite; be lenient with text.
fn flag(value: Value) -> bool {
    match value {
        Value::Integer(n) => n != 0,
        Value::Real(x) => x != 0.0,
        Value::Text(t) => matches!(t.as_str(), "1" | "true" | "True" | "t"),
        _ => false,
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::Text(t) => Some(t),
        Value::Integer(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A user to bring in with its Django id; every field already checked.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub email_key: Option<String>,
    pub password_hash: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: i64,
    pub last_login: Option<i64>,
}

impl Store {
    /// Inserts `users` with their ids in one transaction, all or none, and
    /// raises the id sequence to `max_id_ever`, so that an account made in
    /// latch later never gets an id Django used. A user that takes a
    /// username, address or id some other account got meanwhile (a race with
    /// a registration) fails the whole write, naming it. `progress` hears
    /// how many are in so far.
    pub fn import_users(
        &self,
        users: &[ImportedUser],
        max_id_ever: i64,
        progress: &dyn Fn(usize),
    ) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            for (n, u) in users.iter().enumerate() {
                let inserted = exec(
                    tx,
                    "INSERT INTO users (id, username, email, email_key, password_hash, is_active,
                         is_staff, is_superuser, date_joined, last_login)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        u.id,
                        u.username,
                        u.email,
                        u.email_key,
                        u.password_hash,
                        u.is_active,
                        u.is_staff,
                        u.is_superuser,
                        u.date_joined,
                        u.last_login
                    ],
                );
                if let Err(err) = inserted {
                    let id_taken = matches!(&err, rusqlite::Error::SqliteFailure(e, _)
                        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY);
                    let taken = ["users.username", "users.email_key"]
                        .into_iter()
                        .find(|column| is_unique_violation(&err, column))
                        .or(id_taken.then_some("id"));
                    return Err(match taken {
                        Some(column) => StoreError::Other(format!(
                            "user {:?} (id {}): its {} was taken by another account while importing; nothing was imported, run the import again",
                            u.username,
                            u.id,
                            column.trim_start_matches("users.")
                        )),
                        None => err.into(),
                    });
                }
                if (n + 1) % 1000 == 0 {
                    progress(n + 1);
                }
            }
            progress(users.len());
            // AUTOINCREMENT keeps its high-water mark here; the inserts above
            // raised it to their largest id, this to Django's.
            exec(
                tx,
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'users'",
                [max_id_ever],
            )?;
            exec(
                tx,
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', ?1
                 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')",
                [max_id_ever],
            )?;
            Ok(())
        })
    }

    /// The highest user id ever handed out (deleted users included).
    pub fn max_user_id_ever(&self) -> StoreResult<i64> {
        let conn = self.conn()?;
        let seq: Option<i64> = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'users'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.unwrap_or(0))
    }
}
