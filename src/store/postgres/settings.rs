use super::{Postgres, col, exec, query, query_one, query_opt};
use crate::store::StoreResult;

impl Postgres {
    /// The keys of the stored settings (not their values).
    pub async fn setting_keys(&self) -> StoreResult<Vec<String>> {
        attempt!(self, |c| {
            query(c, "SELECT key FROM settings ORDER BY key", &[])
                .await?
                .iter()
                .map(|r| col(r, 0))
                .collect()
        })
    }

    /// A real, committed write of one small row: proof for `/readyz` that
    /// the database takes writes (not read-only, not out of space). The row
    /// counts the probes.
    pub async fn probe_write(&self) -> StoreResult<()> {
        in_tx!(self, |tx| {
            exec(
                tx,
                "INSERT INTO settings (key, value) VALUES ('readyz_probe', '1')
                 ON CONFLICT (key) DO UPDATE
                 SET value = (settings.value::BIGINT + 1)::TEXT",
                &[],
            )
            .await?;
            Ok(())
        })
    }

    /// Returns the stored value of `key`, storing `candidate` first if there
    /// is none. The bool is true when this call stored it. Of callers racing
    /// (instances started together), the first insert wins: the others wait
    /// for its commit, find the key taken, and read its value (the read is
    /// a statement of its own, so at READ COMMITTED it sees that commit).
    /// In a transaction, so that "stored by this call" is never lost: a try
    /// that failed before the COMMIT took nothing, and a failed COMMIT is
    /// not tried again (a second try would find its own row and say false).
    pub async fn setting_or_insert(
        &self,
        key: &str,
        candidate: String,
    ) -> StoreResult<(String, bool)> {
        in_tx!(self, |tx| {
            let inserted = query_opt(
                tx,
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING value",
                &[&key, &candidate],
            )
            .await?;
            if inserted.is_some() {
                return Ok((candidate.clone(), true));
            }
            let row = query_one(tx, "SELECT value FROM settings WHERE key = $1", &[&key]).await?;
            Ok((col(&row, 0)?, false))
        })
    }
}
