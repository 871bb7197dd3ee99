//! The login-failure limit's rows: one GCRA state per account, shared by
//! every instance on the database. The read and the write of an account's
//! state are one statement, so they cannot interleave with another
//! instance's: the row lock of the upsert decides. Each step is a
//! transaction of its own, so that a step is run again only when it surely
//! did not commit (an acquire must not count twice).

use super::{Postgres, col, exec, query_opt};
use crate::store::StoreResult;

impl Postgres {
    /// Takes one of `burst` cells replenished every `interval_ms` for
    /// `account`: with `tat` the stored arrival time (or now), the new one
    /// is `max(tat, now) + interval`, allowed when it is at most
    /// `burst * interval` ahead of now, and then stored. Otherwise nothing
    /// changes and the answer is how many milliseconds until a cell is free.
    pub async fn login_limit_acquire(
        &self,
        account: String,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreResult<Result<(), i64>> {
        let window = burst.saturating_mul(interval_ms);
        in_tx!(self, |tx| {
            // A refused upsert keeps the row locked until the commit, so the
            // read sees the state it was refused on. Should the wait come
            // out as nothing all the same, the cell is free: try again.
            for _ in 0..3 {
                let taken = query_opt(
                    tx,
                    "INSERT INTO login_limits AS l (account, tat_ms)
                     SELECT $1, $2::BIGINT + $3::BIGINT WHERE $3::BIGINT - $4::BIGINT <= 0
                     ON CONFLICT (account) DO UPDATE
                     SET tat_ms = GREATEST(l.tat_ms, $2) + $3
                     WHERE GREATEST(l.tat_ms, $2) + $3 - $4 <= $2
                     RETURNING tat_ms",
                    &[&account, &now_ms, &interval_ms, &window],
                )
                .await?;
                if taken.is_some() {
                    return Ok(Ok(()));
                }
                let stored = query_opt(
                    tx,
                    "SELECT tat_ms FROM login_limits WHERE account = $1",
                    &[&account],
                )
                .await?;
                let tat = match &stored {
                    Some(row) => col::<i64>(row, 0)?.max(now_ms),
                    None => now_ms,
                };
                let wait = tat
                    .saturating_add(interval_ms)
                    .saturating_sub(window)
                    .saturating_sub(now_ms);
                if wait > 0 {
                    return Ok(Err(wait));
                }
            }
            Ok(Err(interval_ms.max(1)))
        })
    }

    /// Gives one cell back: the attempt turned out not to be a failure.
    pub async fn login_limit_refund(&self, account: String, interval_ms: i64) -> StoreResult<()> {
        in_tx!(self, |tx| {
            exec(
                tx,
                "UPDATE login_limits SET tat_ms = tat_ms - $2 WHERE account = $1",
                &[&account, &interval_ms],
            )
            .await?;
            Ok(())
        })
    }

    /// Forgets accounts back at their full allowance; returns how many.
    pub async fn purge_login_limits(&self, now_ms: i64) -> StoreResult<u64> {
        in_tx!(self, |tx| {
            exec(
                tx,
                "DELETE FROM login_limits WHERE tat_ms <= $1",
                &[&now_ms],
            )
            .await
        })
    }
}
