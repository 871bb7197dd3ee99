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
        attempt!(self, |c| {
            exec(
                c,
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
    /// for its commit, find the key taken, and read its value.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        candidate: String,
    ) -> StoreResult<(String, bool)> {
        attempt!(self, |c| {
            let inserted = query_opt(
                c,
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO NOTHING RETURNING value",
                &[&key, &candidate],
            )
            .await?;
            if inserted.is_some() {
                return Ok((candidate.clone(), true));
            }
            let row = query_one(c, "SELECT value FROM settings WHERE key = $1", &[&key]).await?;
            Ok((col(&row, 0)?, false))
        })
    }
}
