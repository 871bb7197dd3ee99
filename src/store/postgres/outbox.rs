//! The outbox, shared by every instance: a mail is claimed (leased) before
//! it is sent, so that each goes out from one instance at a time.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::{Failure, Postgres, col, exec, query, query_one};
use crate::store::{NewMail, OutboxBacklog, QueuedMail, ResetTokenRef, StoreResult};

/// The database's clock in Unix milliseconds, as the outbox stamps rows.
const NOW_MS: &str = "floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

/// Queues a mail, due at once; `queued_ms` is stamped by the column's default.
pub(super) async fn enqueue(
    tx: &Transaction<'_>,
    mail: &NewMail,
    reset_token_id: Option<i64>,
) -> Result<(), Failure> {
    exec(
        tx,
        "INSERT INTO outbox (recipient, subject, body, reset_token_id, next_attempt_ms, discard_after_ms)
         VALUES ($1, $2, $3, $4, 0, $5)",
        &[
            &mail.recipient,
            &mail.subject,
            &mail.body,
            &reset_token_id,
            &mail.discard_after_ms,
        ],
    )
    .await?;
    Ok(())
}

impl Postgres {
    /// Claims up to `limit` mails due now (oldest first, leaving out the ids
    /// in `except`) by moving their next attempt to the end of the lease,
    /// committed before it answers. Rows another instance is claiming are
    /// skipped, not waited for, so instances claim disjoint sets; a mail
    /// whose sender died is due again when the lease ends. "Now" is the
    /// database's clock, not `_now_ms`: the instances' clocks need not agree
    /// for one's lease to hold against another.
    pub async fn claim_mail(
        &self,
        _now_ms: i64,
        limit: i64,
        lease_ms: i64,
        except: &[i64],
    ) -> StoreResult<Vec<QueuedMail>> {
        let sql = format!(
            "WITH now AS (SELECT {NOW_MS} AS ms),
             claimed AS (
                 UPDATE outbox o SET next_attempt_ms = (SELECT ms FROM now) + $1
                 FROM (SELECT id, next_attempt_ms FROM outbox
                       WHERE next_attempt_ms <= (SELECT ms FROM now) AND NOT (id = ANY($3))
                       ORDER BY next_attempt_ms, id LIMIT $2
                       FOR UPDATE SKIP LOCKED) AS due
                 WHERE o.id = due.id
                 RETURNING o.id, o.recipient, o.subject, o.body, o.attempts,
                           o.reset_token_id, due.next_attempt_ms AS was_due,
                           o.next_attempt_ms AS lease_until)
             SELECT c.id, c.recipient, c.subject, c.body, c.attempts,
                    t.id, t.user_id, t.expires_at, c.lease_until
             FROM claimed c LEFT JOIN reset_tokens t ON t.id = c.reset_token_id
             ORDER BY c.was_due, c.id"
        );
        in_tx!(self, |tx| {
            let rows = query(tx, &sql, &[&lease_ms, &limit, &except]).await?;
            rows.iter().map(queued_mail).collect()
        })
    }

    /// The mail waiting, and for how long the oldest has (by the database's
    /// clock, which stamped it). A scan of the outbox, which is small: for a
    /// metrics scrape, not for requests. A row without its time (0) does not
    /// count.
    pub async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        let sql = format!(
            "SELECT COUNT(*), COALESCE(GREATEST(0, {NOW_MS} - MIN(NULLIF(queued_ms, 0))), 0)
             FROM outbox"
        );
        attempt!(self, |c| {
            let row = query_one(c, &sql, &[]).await?;
            Ok(OutboxBacklog {
                pending: col(&row, 0)?,
                oldest_age_ms: col(&row, 1)?,
            })
        })
    }

    /// When the next attempt is due, if anything but the ids in `except` is queued.
    pub async fn next_mail_due_ms(&self, except: &[i64]) -> StoreResult<Option<i64>> {
        attempt!(self, |c| {
            let row = query_one(
                c,
                "SELECT MIN(next_attempt_ms) FROM outbox WHERE NOT (id = ANY($1))",
                &[&except],
            )
            .await?;
            col(&row, 0)
        })
    }

    /// Forgets a mail: delivered, or never deliverable.
    pub async fn remove_mail(&self, id: i64) -> StoreResult<()> {
        in_tx!(self, |tx| {
            exec(tx, "DELETE FROM outbox WHERE id = $1", &[&id]).await?;
            Ok(())
        })
    }

    /// Records a failed attempt at a mail claimed until `lease_until_ms`;
    /// if the lease ran out and another worker took the mail, nothing.
    pub async fn mail_failed(
        &self,
        id: i64,
        lease_until_ms: i64,
        next_attempt_ms: i64,
        error: String,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            exec(
                tx,
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $2, last_error = $3
                 WHERE id = $1 AND next_attempt_ms = $4",
                &[&id, &next_attempt_ms, &error, &lease_until_ms],
            )
            .await?;
            Ok(())
        })
    }

    /// Drops mail whose link has expired; returns how many.
    pub async fn discard_stale_mail(&self, now_ms: i64) -> StoreResult<usize> {
        in_tx!(self, |c| {
            let gone = exec(
                c,
                "DELETE FROM outbox WHERE discard_after_ms <= $1",
                &[&now_ms],
            )
            .await?;
            Ok(usize::try_from(gone).unwrap_or(usize::MAX))
        })
    }

    /// How many mails are waiting (for tests and diagnostics).
    pub async fn queued_mail_count(&self) -> StoreResult<i64> {
        attempt!(self, |c| {
            let row = query_one(c, "SELECT COUNT(*) FROM outbox", &[]).await?;
            col(&row, 0)
        })
    }
}

fn queued_mail(row: &Row) -> Result<QueuedMail, Failure> {
    let token_id: Option<i64> = col(row, 5)?;
    Ok(QueuedMail {
        id: col(row, 0)?,
        recipient: col(row, 1)?,
        subject: col(row, 2)?,
        body: col(row, 3)?,
        attempts: col(row, 4)?,
        lease_until_ms: col(row, 8)?,
        reset: match token_id {
            Some(token_id) => Some(ResetTokenRef {
                token_id,
                user_id: col(row, 6)?,
                expires_at: col(row, 7)?,
            }),
            None => None,
        },
    })
}
