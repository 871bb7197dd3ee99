use rusqlite::{OptionalExtension, params};

use super::{Sqlite, exec};
use crate::store::StoreResult;

impl Sqlite {
    /// A real, committed write of one small row: proof for `/readyz` that
    /// the database takes writes (not full, not read-only). The row counts
    /// the probes.
    pub fn probe_write(&self) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            exec(
                tx,
                "INSERT INTO settings (key, value) VALUES ('readyz_probe', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )?;
            Ok(())
        })
    }

    /// The keys of the stored settings (not their values).
    pub fn setting_keys(&self) -> StoreResult<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT key FROM settings ORDER BY key")?;
        let keys = stmt.query_map([], |r| r.get(0))?;
        Ok(keys.collect::<Result<_, _>>()?)
    }

    /// Returns the stored value of `key`, storing `candidate` first if there is none.
    /// The bool is true when this call created it. Safe against a concurrent
    /// caller: whoever inserts first wins and both get the same value.
    pub fn setting_or_insert(&self, key: &str, candidate: String) -> StoreResult<(String, bool)> {
        self.in_write_tx(|tx| {
            let existing: Option<String> = tx
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(value) = existing {
                return Ok((value, false));
            }
            let value = candidate;
            exec(
                tx,
                "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok((value, true))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn value_is_created_once_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Sqlite::open(&path, Duration::from_secs(1), 2).unwrap();
        assert_eq!(
            store.setting_or_insert("k", "one".into()).unwrap(),
            ("one".into(), true)
        );
        assert_eq!(
            store.setting_or_insert("k", "two".into()).unwrap(),
            ("one".into(), false)
        );
        drop(store);
        let store = Sqlite::open(&path, Duration::from_secs(1), 2).unwrap();
        assert_eq!(
            store.setting_or_insert("k", "three".into()).unwrap().0,
            "one"
        );
    }
}
