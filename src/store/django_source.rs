//! A Django project's SQLite database as a source of users (`latch import
//! django`), opened read-only. Not latch's own database, whatever its backend.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

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
