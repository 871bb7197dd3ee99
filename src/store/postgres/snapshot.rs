//! Every row at once, out of a PostgreSQL database or into an empty one:
//! what `latch migrate-store` moves between backends.

use deadpool_postgres::Transaction;

use super::import::{CHUNK, insert_users};
use super::users::{USER_COLUMNS, user_from_row};
use super::{Failure, Postgres, col, exec, high_water_mark, query, query_one};
use crate::store::{
    IdMarks, OutboxRow, RefreshTokenRow, ResetTokenRow, Snapshot, StoreError, StoreResult, TABLES,
    User, UserRow,
};

/// The tables whose ids come from a sequence, and their high-water marks.
const SEQUENCED: [&str; 3] = ["users", "reset_tokens", "outbox"];

impl Postgres {
    /// Every row, read in one REPEATABLE READ transaction (one moment).
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        in_tx!(self, |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            read_all(tx).await
        })
    }

    /// Rows per table, in the order of [`TABLES`].
    pub async fn table_counts(&self) -> StoreResult<[u64; 7]> {
        attempt!(self, |c| {
            let mut counts = [0; 7];
            for (count, table) in counts.iter_mut().zip(TABLES) {
                let row = query_one(c, &format!("SELECT COUNT(*) FROM {table}"), &[]).await?;
                *count = col::<i64>(&row, 0)? as u64;
            }
            Ok(counts)
        })
    }

    /// Writes `snapshot` into this database, which must have no rows at
    /// all: one transaction, so it is all there or none of it is.
    pub async fn restore(&self, snapshot: &Snapshot) -> StoreResult<()> {
        in_tx!(self, |tx| {
            // No instance may write while the copy goes in.
            tx.batch_execute(&format!(
                "LOCK TABLE {} IN EXCLUSIVE MODE",
                TABLES.join(", ")
            ))
            .await?;
            for table in TABLES {
                let sql = format!("SELECT EXISTS (SELECT 1 FROM {table})");
                if col::<bool>(&query_one(tx, &sql, &[]).await?, 0)? {
                    return Err(Failure::from(StoreError::Other(format!(
                        "the target database is not empty (table {table} has rows); nothing was copied"
                    ))));
                }
            }
            write_all(tx, snapshot).await
        })
    }
}

async fn read_all(tx: &Transaction<'_>) -> Result<Snapshot, Failure> {
    let sql = format!("SELECT {USER_COLUMNS}, tokens_revoked_before FROM users ORDER BY id");
    let users = query(tx, &sql, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(UserRow {
                user: user_from_row(r)?,
                tokens_revoked_before: col(r, 10)?,
            })
        })
        .collect::<Result<_, Failure>>()?;
    let refresh_tokens = query(
        tx,
        "SELECT jti, user_id, family, issued_at, expires_at, retired_at, successor, revoked_at
         FROM refresh_tokens ORDER BY jti",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RefreshTokenRow {
            jti: col(r, 0)?,
            user_id: col(r, 1)?,
            family: col(r, 2)?,
            issued_at: col(r, 3)?,
            expires_at: col(r, 4)?,
            retired_at: col(r, 5)?,
            successor: col(r, 6)?,
            revoked_at: col(r, 7)?,
        })
    })
    .collect::<Result<_, Failure>>()?;
    let reset_tokens = query(
        tx,
        "SELECT id, user_id, expires_at FROM reset_tokens ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(ResetTokenRow {
            id: col(r, 0)?,
            user_id: col(r, 1)?,
            expires_at: col(r, 2)?,
        })
    })
    .collect::<Result<_, Failure>>()?;
    let outbox = query(
        tx,
        "SELECT id, recipient, subject, body, reset_token_id, attempts, next_attempt_ms,
                discard_after_ms, last_error, queued_ms FROM outbox ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(OutboxRow {
            id: col(r, 0)?,
            recipient: col(r, 1)?,
            subject: col(r, 2)?,
            body: col(r, 3)?,
            reset_token_id: col(r, 4)?,
            attempts: col(r, 5)?,
            next_attempt_ms: col(r, 6)?,
            discard_after_ms: col(r, 7)?,
            last_error: col(r, 8)?,
            queued_ms: col(r, 9)?,
        })
    })
    .collect::<Result<_, Failure>>()?;
    let mut marks = [0i64; 3];
    for (mark, table) in marks.iter_mut().zip(SEQUENCED) {
        *mark = high_water_mark(tx, table).await?;
    }
    Ok(Snapshot {
        users,
        refresh_tokens,
        blacklisted_tokens: pairs(
            tx,
            "SELECT jti, expires_at FROM blacklisted_tokens ORDER BY jti",
        )
        .await?,
        reset_tokens,
        outbox,
        settings: query(tx, "SELECT key, value FROM settings ORDER BY key", &[])
            .await?
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
            .collect::<Result<_, Failure>>()?,
        login_limits: pairs(
            tx,
            "SELECT account, tat_ms FROM login_limits ORDER BY account",
        )
        .await?,
        id_marks: IdMarks {
            users: marks[0],
            reset_tokens: marks[1],
            outbox: marks[2],
        },
    })
}

async fn pairs(tx: &Transaction<'_>, sql: &str) -> Result<Vec<(String, i64)>, Failure> {
    query(tx, sql, &[])
        .await?
        .iter()
        .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
        .collect()
}

async fn write_all(tx: &Transaction<'_>, s: &Snapshot) -> Result<(), Failure> {
    let users: Vec<(&User, i64)> = s
        .users
        .iter()
        .map(|row| (&row.user, row.tokens_revoked_before))
        .collect();
    for chunk in users.chunks(CHUNK) {
        insert_users(tx, chunk).await?;
    }
    for t in &s.refresh_tokens {
        exec(
            tx,
            "INSERT INTO refresh_tokens (jti, user_id, family, issued_at, expires_at, retired_at, successor, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&t.jti, &t.user_id, &t.family, &t.issued_at, &t.expires_at, &t.retired_at, &t.successor, &t.revoked_at],
        )
        .await?;
    }
    for (jti, expires_at) in &s.blacklisted_tokens {
        exec(
            tx,
            "INSERT INTO blacklisted_tokens (jti, expires_at) VALUES ($1, $2)",
            &[jti, expires_at],
        )
        .await?;
    }
    for t in &s.reset_tokens {
        exec(
            tx,
            "INSERT INTO reset_tokens (id, user_id, expires_at) VALUES ($1, $2, $3)",
            &[&t.id, &t.user_id, &t.expires_at],
        )
        .await?;
    }
    for m in &s.outbox {
        exec(
            tx,
            "INSERT INTO outbox (id, recipient, subject, body, reset_token_id, attempts,
                 next_attempt_ms, discard_after_ms, last_error, queued_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &m.id,
                &m.recipient,
                &m.subject,
                &m.body,
                &m.reset_token_id,
                &m.attempts,
                &m.next_attempt_ms,
                &m.discard_after_ms,
                &m.last_error,
                &m.queued_ms,
            ],
        )
        .await?;
    }
    for (key, value) in &s.settings {
        exec(
            tx,
            "INSERT INTO settings (key, value) VALUES ($1, $2)",
            &[key, value],
        )
        .await?;
    }
    for (account, tat) in &s.login_limits {
        exec(
            tx,
            "INSERT INTO login_limits (account, tat_ms) VALUES ($1, $2)",
            &[account, tat],
        )
        .await?;
    }
    let marks = [s.id_marks.users, s.id_marks.reset_tokens, s.id_marks.outbox];
    for (table, mark) in SEQUENCED.into_iter().zip(marks) {
        // The next id is above the mark (setval's third argument: "the
        // value was used"); an empty history starts at 1.
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST($1::BIGINT, 1), $1::BIGINT > 0)"
        );
        query_one(tx, &sql, &[&mark]).await?;
    }
    Ok(())
}
