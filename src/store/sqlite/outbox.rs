use rusqlite::{OptionalExtension, params};

use super::{Sqlite, exec};
use crate::store::{NewMail, OutboxBacklog, QueuedMail, ResetTokenRef, StoreResult};

pub(super) fn enqueue(
    conn: &rusqlite::Connection,
    mail: &NewMail,
    reset_token_id: Option<i64>,
) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO outbox (recipient, subject, body, reset_token_id, next_attempt_ms, discard_after_ms, queued_ms)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
        params![mail.recipient, mail.subject, mail.body, reset_token_id, mail.discard_after_ms],
    )?;
    Ok(())
}

fn queued_mail(row: &rusqlite::Row<'_>, lease_until_ms: i64) -> rusqlite::Result<QueuedMail> {
    let token_id: Option<i64> = row.get(5)?;
    Ok(QueuedMail {
        id: row.get(0)?,
        recipient: row.get(1)?,
        subject: row.get(2)?,
        body: row.get(3)?,
        attempts: row.get(4)?,
        lease_until_ms,
        reset: match token_id {
            Some(token_id) => Some(ResetTokenRef {
                token_id,
                user_id: row.get(6)?,
                expires_at: row.get(7)?,
            }),
            None => None,
        },
    })
}

/// Ids as a JSON array, for `json_each`.
fn id_list(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("a list of integers serializes")
}

impl Sqlite {
    /// Claims up to `limit` mails due at `now_ms` (oldest first, leaving out
    /// the ids in `except`) for `lease_ms`: their next attempt moves to the
    /// end of the lease, committed before any is sent. Another worker (of
    /// this or another process) does not take them meanwhile; if this one
    /// dies mid-send, they are due again when the lease ends.
    pub fn claim_mail(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
        except: &[i64],
    ) -> StoreResult<Vec<QueuedMail>> {
        let except = id_list(except);
        self.in_write_tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT o.id, o.recipient, o.subject, o.body, o.attempts, t.id, t.user_id, t.expires_at
                 FROM outbox o LEFT JOIN reset_tokens t ON t.id = o.reset_token_id
                 WHERE o.next_attempt_ms <= ?1 AND o.id NOT IN (SELECT value FROM json_each(?3))
                 ORDER BY o.next_attempt_ms, o.id LIMIT ?2",
            )?;
            let until = now_ms.saturating_add(lease_ms);
            let claimed: Vec<QueuedMail> = stmt
                .query_map(params![now_ms, limit, except], |row| queued_mail(row, until))?
                .collect::<Result<_, _>>()?;
            for mail in &claimed {
                exec(
                    tx,
                    "UPDATE outbox SET next_attempt_ms = ?2 WHERE id = ?1",
                    params![mail.id, until],
                )?;
            }
            Ok(claimed)
        })
    }

    /// The mail waiting, and for how long the oldest has (by SQLite's
    /// clock, which stamped it). A scan of the outbox, which is small: for
    /// a metrics scrape, not for requests. A row without its time (0, from
    /// an older latch still running during an upgrade) does not count.
    pub fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT COUNT(*),
                    COALESCE(MAX(0, CAST(unixepoch('subsec') * 1000 AS INTEGER) - MIN(NULLIF(queued_ms, 0))), 0)
             FROM outbox",
            [],
            |r| {
                Ok(OutboxBacklog {
                    pending: r.get(0)?,
                    oldest_age_ms: r.get(1)?,
                })
            },
        )?)
    }

    /// When the next attempt is due, if anything but the ids in `except` is queued.
    pub fn next_mail_due_ms(&self, except: &[i64]) -> StoreResult<Option<i64>> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT MIN(next_attempt_ms) FROM outbox
                 WHERE id NOT IN (SELECT value FROM json_each(?1))",
                [id_list(except)],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Forgets a mail: delivered, or never deliverable.
    pub fn remove_mail(&self, id: i64) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            exec(tx, "DELETE FROM outbox WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Records a failed attempt at a mail claimed until `lease_until_ms`;
    /// if the lease ran out and another worker took the mail, nothing.
    pub fn mail_failed(
        &self,
        id: i64,
        lease_until_ms: i64,
        next_attempt_ms: i64,
        error: &str,
    ) -> StoreResult<()> {
        self.in_write_tx(|tx| {
            exec(
                tx,
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
                 WHERE id = ?1 AND next_attempt_ms = ?4",
                params![id, next_attempt_ms, error, lease_until_ms],
            )?;
            Ok(())
        })
    }

    /// Drops mail whose link has expired; returns how many.
    pub fn discard_stale_mail(&self, now_ms: i64) -> StoreResult<usize> {
        self.in_write_tx(|tx| {
            Ok(exec(
                tx,
                "DELETE FROM outbox WHERE discard_after_ms <= ?1",
                [now_ms],
            )?)
        })
    }

    /// How many mails are waiting (for tests and diagnostics).
    pub fn queued_mail_count(&self) -> StoreResult<i64> {
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn queue_retry_deliver_and_discard() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let mail = |to: &str, discard| NewMail {
            recipient: to.into(),
            subject: "s".into(),
            body: "b".into(),
            discard_after_ms: discard,
        };
        enqueue(&store.conn().unwrap(), &mail("a@x.io", 1_000), None).unwrap();
        enqueue(&store.conn().unwrap(), &mail("b@x.io", 10), None).unwrap();
        assert_eq!(store.next_mail_due_ms(&[]).unwrap(), Some(0));

        let due = store.claim_mail(5, 1, 1_000, &[]).unwrap();
        assert_eq!(due.len(), 1, "the limit holds");
        let others = store.claim_mail(5, 10, 1_000, &[]).unwrap();
        assert_eq!(others.len(), 1, "the claimed one is not due while leased");
        assert_ne!(others[0].id, due[0].id);
        assert!(store.claim_mail(5, 10, 1_000, &[]).unwrap().is_empty());
        assert_eq!(
            store.next_mail_due_ms(&[]).unwrap(),
            Some(1_005),
            "the lease's end"
        );
        let both = [due[0].id, others[0].id];
        assert_eq!(store.next_mail_due_ms(&both).unwrap(), None);
        store
            .mail_failed(due[0].id, due[0].lease_until_ms + 1, 7, "a lease not ours")
            .unwrap();
        store
            .mail_failed(
                due[0].id,
                due[0].lease_until_ms,
                5_000,
                "connection refused",
            )
            .unwrap();
        let again = store.claim_mail(1_005, 10, 1_000, &[]).unwrap();
        assert_eq!(
            again.len(),
            1,
            "a lease that ran out is due again; the failed one waits"
        );
        assert_eq!(again[0].id, others[0].id);
        assert!(
            store
                .claim_mail(1_005, 10, 1_000, &[again[0].id])
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.discard_stale_mail(100).unwrap(), 1);
        let due = store.claim_mail(5_000, 10, 1_000, &[]).unwrap();
        assert_eq!((due.len(), due[0].attempts), (1, 1));
        store.remove_mail(due[0].id).unwrap();
        assert_eq!(store.queued_mail_count().unwrap(), 0);
    }

    #[test]
    fn backlog_counts_the_waiting_mail_and_ages_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let empty = store.outbox_backlog().unwrap();
        assert_eq!((empty.pending, empty.oldest_age_ms), (0, 0));
        let mail = NewMail {
            recipient: "a@x.io".into(),
            subject: "s".into(),
            body: "b".into(),
            discard_after_ms: i64::MAX,
        };
        let conn = store.conn().unwrap();
        enqueue(&conn, &mail, None).unwrap();
        enqueue(&conn, &mail, None).unwrap();
        // The first one was queued an hour ago.
        conn.execute(
            "UPDATE outbox SET queued_ms = queued_ms - 3600000 WHERE id = (SELECT MIN(id) FROM outbox)",
            [],
        )
        .unwrap();
        let backlog = store.outbox_backlog().unwrap();
        assert_eq!(backlog.pending, 2);
        assert!(
            (3_600_000..3_660_000).contains(&backlog.oldest_age_ms),
            "{backlog:?}"
        );
    }
}
