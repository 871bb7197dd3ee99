//! Every row at once, out of a SQLite database or into an empty one: what
//! `latch migrate-store` moves between backends.

use rusqlite::{Connection, OptionalExtension, params};

use super::users::{USER_COLUMNS, insert_with_id, user_from_row};
use super::{Sqlite, exec, raise_sequence};
use crate::store::{
    IdMarks, OutboxRow, RefreshTokenRow, ResetTokenRow, Snapshot, StoreError, StoreResult, TABLES,
    UserRow,
};

impl Sqlite {
    /// Every row, read in one transaction (one consistent moment).
    pub fn snapshot(&self) -> StoreResult<Snapshot> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let snapshot = read_all(&tx)?;
        tx.commit()?;
        Ok(snapshot)
    }

    /// Rows per table, in the order of [`TABLES`].
    pub fn table_counts(&self) -> StoreResult<[u64; 7]> {
        let conn = self.conn()?;
        let mut counts = [0; 7];
        for (count, table) in counts.iter_mut().zip(TABLES) {
            *count = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        }
        Ok(counts)
    }

    /// Writes `snapshot` into this database, which must have no rows at
    /// all: one transaction, so it is all there or none of it is.
    pub fn restore(&self, snapshot: &Snapshot) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            for table in TABLES {
                let any: bool = tx.query_row(
                    &format!("SELECT EXISTS (SELECT 1 FROM {table})"),
                    [],
                    |r| r.get(0),
                )?;
                if any {
                    return Err(StoreError::Other(format!(
                        "the target database is not empty (table {table} has rows); nothing was copied"
                    )));
                }
            }
            write_all(tx, snapshot)
        })
    }
}

fn read_all(tx: &Connection) -> StoreResult<Snapshot> {
    let mut users = tx.prepare(&format!(
        "SELECT {USER_COLUMNS}, tokens_revoked_before FROM users ORDER BY id"
    ))?;
    let users = users
        .query_map([], |r| {
            Ok(UserRow {
                user: user_from_row(r)?,
                tokens_revoked_before: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut tokens = tx.prepare(
        "SELECT jti, user_id, family, issued_at, expires_at, retired_at, successor, revoked_at
         FROM refresh_tokens ORDER BY jti",
    )?;
    let refresh_tokens = tokens
        .query_map([], |r| {
            Ok(RefreshTokenRow {
                jti: r.get(0)?,
                user_id: r.get(1)?,
                family: r.get(2)?,
                issued_at: r.get(3)?,
                expires_at: r.get(4)?,
                retired_at: r.get(5)?,
                successor: r.get(6)?,
                revoked_at: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut resets = tx.prepare("SELECT id, user_id, expires_at FROM reset_tokens ORDER BY id")?;
    let reset_tokens = resets
        .query_map([], |r| {
            Ok(ResetTokenRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                expires_at: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut mail = tx.prepare(
        "SELECT id, recipient, subject, body, reset_token_id, attempts, next_attempt_ms,
                discard_after_ms, last_error, queued_ms FROM outbox ORDER BY id",
    )?;
    let outbox = mail
        .query_map([], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                recipient: r.get(1)?,
                subject: r.get(2)?,
                body: r.get(3)?,
                reset_token_id: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_ms: r.get(6)?,
                discard_after_ms: r.get(7)?,
                last_error: r.get(8)?,
                queued_ms: r.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let pairs = |sql: &str| -> StoreResult<Vec<(String, i64)>> {
        let mut stmt = tx.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let mut settings = tx.prepare("SELECT key, value FROM settings ORDER BY key")?;
    let settings = settings
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mark = |table: &str| -> StoreResult<i64> {
        let seq: Option<i64> = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .optional()?;
        let max: Option<i64> =
            tx.query_row(&format!("SELECT MAX(id) FROM {table}"), [], |r| r.get(0))?;
        Ok(seq.unwrap_or(0).max(max.unwrap_or(0)))
    };
    Ok(Snapshot {
        users,
        refresh_tokens,
        blacklisted_tokens: pairs("SELECT jti, expires_at FROM blacklisted_tokens ORDER BY jti")?,
        reset_tokens,
        outbox,
        settings,
        login_limits: pairs("SELECT account, tat_ms FROM login_limits ORDER BY account")?,
        id_marks: IdMarks {
            users: mark("users")?,
            reset_tokens: mark("reset_tokens")?,
            outbox: mark("outbox")?,
        },
    })
}

fn write_all(tx: &Connection, s: &Snapshot) -> StoreResult<()> {
    for row in &s.users {
        insert_with_id(tx, &row.user, row.tokens_revoked_before)?;
    }
    for t in &s.refresh_tokens {
        exec(
            tx,
            "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, retired_at, successor, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![t.jti, t.user_id, t.family, t.issued_at, t.expires_at, t.retired_at, t.successor, t.revoked_at],
        )?;
    }
    for (jti, expires_at) in &s.blacklisted_tokens {
        exec(
            tx,
            "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES (?1, ?2)",
            params![jti, expires_at],
        )?;
    }
    for t in &s.reset_tokens {
        exec(
            tx,
            "INSERT INTO reset_tokens (id, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![t.id, t.user_id, t.expires_at],
        )?;
    }
    for m in &s.outbox {
        exec(
            tx,
            "INSERT INTO outbox (id, recipient, subject, body, reset_token_id, attempts,
                 next_attempt_ms, discard_after_ms, last_error, queued_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                m.id,
                m.recipient,
                m.subject,
                m.body,
                m.reset_token_id,
                m.attempts,
                m.next_attempt_ms,
                m.discard_after_ms,
                m.last_error,
                m.queued_ms
            ],
        )?;
    }
    for (key, value) in &s.settings {
        exec(
            tx,
            "INSERT INTO settings (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
    }
    for (account, tat) in &s.login_limits {
        exec(
            tx,
            "INSERT INTO login_limits (account, tat_ms) VALUES (?1, ?2)",
            params![account, tat],
        )?;
    }
    // The id high-water marks; the outbox has no AUTOINCREMENT (a reused
    // mail id is harmless) and needs none.
    raise_sequence(tx, "users", s.id_marks.users)?;
    raise_sequence(tx, "reset_tokens", s.id_marks.reset_tokens)
}
