//! A Django project's SQLite database as a source of users (`latch import
//! django`), opened read-only, and the write that brings them in.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::users::all_users;
use super::{Store, StoreError, StoreResult, User, exec};

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

/// What latch holds when an import is planned: every user and the highest
/// id ever handed out (deleted users included).
pub struct Holdings {
    pub users: Vec<User>,
    pub max_id_ever: i64,
}

/// What to write, as an import's plan decided it: these users, and the id
/// sequence raised to `id_floor`.
pub struct ImportWrite<'a> {
    pub users: &'a [ImportedUser],
    pub id_floor: i64,
}

impl Store {
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
                raise_id_floor(tx, decided.id_floor)?;
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

/// AUTOINCREMENT keeps its high-water mark in sqlite_sequence: the inserts
/// raised it to their largest id, this to `floor`.
fn raise_id_floor(tx: &Connection, floor: i64) -> StoreResult<()> {
    exec(
        tx,
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'users'",
        [floor],
    )?;
    exec(
        tx,
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'users', ?1
         WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'users')",
        [floor],
    )?;
    Ok(())
}
