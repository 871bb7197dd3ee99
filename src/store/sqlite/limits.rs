//! The login-failure limit's rows: one GCRA state per account, shared by
//! every process on the database. governor decides the per-address limits in
//! memory; this is the same algorithm, run by the database.

use rusqlite::{OptionalExtension, params};

use super::{Sqlite, exec};
use crate::store::StoreResult;

impl Sqlite {
    /// Takes one of `burst` cells replenished every `interval_ms`, or says
    /// in how many milliseconds one will be free. Runs on the writer, so
    /// the read and the write are one step for every process.
    pub fn login_limit_acquire(
        &self,
        account: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreResult<Result<(), i64>> {
        self.in_write_tx(|tx| {
            let stored: Option<i64> = tx
                .prepare_cached("SELECT tat_ms FROM login_limits WHERE account = ?1")?
                .query_row([account], |r| r.get(0))
                .optional()?;
            let new_tat = stored
                .unwrap_or(now_ms)
                .max(now_ms)
                .saturating_add(interval_ms);
            let earliest = new_tat.saturating_sub(burst.saturating_mul(interval_ms));
            if earliest > now_ms {
                return Ok(Err(earliest - now_ms));
            }
            exec(
                tx,
                "INSERT INTO login_limits (account, tat_ms) VALUES (?1, ?2)
                 ON CONFLICT (account) DO UPDATE SET tat_ms = excluded.tat_ms",
                params![account, new_tat],
            )?;
            Ok(Ok(()))
        })
    }

    /// Gives one cell back: the attempt turned out not to be a failure.
    pub fn login_limit_refund(&self, account: &str, interval_ms: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            exec(
                tx,
                "UPDATE login_limits SET tat_ms = tat_ms - ?2 WHERE account = ?1",
                params![account, interval_ms],
            )?;
            Ok(())
        })
    }

    /// Forgets accounts back at their full allowance; returns how many.
    pub fn purge_login_limits(&self, now_ms: i64) -> StoreResult<u64> {
        self.in_write_tx(|tx| {
            Ok(exec(tx, "DELETE FROM login_limits WHERE tat_ms <= ?1", [now_ms])? as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_refusal_with_the_wait_then_a_refund_and_the_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        for _ in 0..3 {
            assert_eq!(
                store.login_limit_acquire("a", 1_000, 100, 3).unwrap(),
                Ok(())
            );
        }
        assert_eq!(
            store.login_limit_acquire("a", 1_000, 100, 3).unwrap(),
            Err(100)
        );
        assert_eq!(
            store.login_limit_acquire("b", 1_000, 100, 3).unwrap(),
            Ok(()),
            "per account"
        );
        assert_eq!(
            store.login_limit_acquire("a", 1_050, 100, 3).unwrap(),
            Err(50)
        );
        assert_eq!(
            store.login_limit_acquire("a", 1_100, 100, 3).unwrap(),
            Ok(())
        );
        store.login_limit_refund("a", 100).unwrap();
        assert_eq!(
            store.login_limit_acquire("a", 1_100, 100, 3).unwrap(),
            Ok(())
        );
        assert_eq!(
            store.purge_login_limits(1_200).unwrap(),
            1,
            "b is back at full"
        );
        assert_eq!(store.purge_login_limits(1_400).unwrap(), 1);
    }
}
