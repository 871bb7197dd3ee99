//! The outbox: queueing, claiming (leases) across instances, backlog.

use super::*;
use crate::store::NewMail;

fn mail(to: &str, discard_after_ms: i64) -> NewMail {
    NewMail {
        recipient: to.into(),
        subject: "s".into(),
        body: "b".into(),
        discard_after_ms,
    }
}

/// Queues plain mail (no reset link) as the store's own writes do.
async fn enqueue_all(store: &Postgres, mails: &[NewMail]) {
    let mails = mails.to_vec();
    in_tx!(store, |tx| {
        for m in &mails {
            super::super::outbox::enqueue(tx, m, None).await?;
        }
        Ok(())
    })
    .unwrap();
}

/// A lease far longer than any test: what is claimed stays claimed.
const HELD: i64 = 600_000;

#[tokio::test]
async fn queue_claim_retry_deliver_and_discard() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    enqueue_all(&store, &[mail("a@x.io", 1_000), mail("b@x.io", 10)]).await;
    assert_eq!(store.next_mail_due_ms(&[]).await.unwrap(), Some(0));

    let first = store.claim_mail(0, 1, HELD, &[]).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].recipient.as_str(), first[0].attempts),
        ("a@x.io", 0)
    );
    assert!(first[0].reset.is_none());
    let others = store.claim_mail(0, 10, HELD, &[]).await.unwrap();
    assert_eq!(others.len(), 1, "the claimed one is leased");
    assert_eq!(others[0].recipient, "b@x.io");
    assert!(store.claim_mail(0, 10, HELD, &[]).await.unwrap().is_empty());
    let lease_end = store.next_mail_due_ms(&[]).await.unwrap().unwrap();
    assert_eq!(
        lease_end,
        first[0].lease_until_ms.min(others[0].lease_until_ms)
    );
    assert!(lease_end > HELD, "the lease ends by the database's clock");
    assert_eq!(
        store
            .next_mail_due_ms(&[first[0].id, others[0].id])
            .await
            .unwrap(),
        None
    );

    // What a worker whose lease ran out records is refused; the holder's
    // record stands.
    store
        .mail_failed(first[0].id, first[0].lease_until_ms + 1, 0, "late".into())
        .await
        .unwrap();
    assert!(store.claim_mail(0, 10, HELD, &[]).await.unwrap().is_empty());
    store
        .mail_failed(
            first[0].id,
            first[0].lease_until_ms,
            0,
            "connection refused".into(),
        )
        .await
        .unwrap();
    let again = store.claim_mail(0, 10, 0, &[]).await.unwrap();
    assert_eq!(
        (again.len(), again[0].id, again[0].attempts),
        (1, first[0].id, 1)
    );
    // A lease that ended (here: at once) makes the mail due again.
    let after_lease = store
        .claim_mail(0, 10, HELD, &[others[0].id])
        .await
        .unwrap();
    assert_eq!(after_lease.len(), 1);
    assert_eq!(after_lease[0].id, first[0].id);

    assert_eq!(
        store.discard_stale_mail(100).await.unwrap(),
        1,
        "b's link expired"
    );
    store.remove_mail(first[0].id).await.unwrap();
    assert_eq!(store.queued_mail_count().await.unwrap(), 0);
    assert_eq!(store.next_mail_due_ms(&[]).await.unwrap(), None);
}

#[tokio::test]
async fn a_claimed_reset_mail_carries_its_token() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    let id = store
        .create_reset_token(1, 300, mail("a@x.io", i64::MAX), 0)
        .await
        .unwrap();
    let claimed = store.claim_mail(0, 10, HELD, &[]).await.unwrap();
    let reset = claimed[0].reset.unwrap();
    assert_eq!(
        (reset.token_id, reset.user_id, reset.expires_at),
        (id, 1, 300)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_claiming_at_once_get_disjoint_sets_covering_all_due_mail() {
    let Some((db, store)) = TestDb::open().await else {
        return;
    };
    let other = db.store().await;
    let mails: Vec<NewMail> = (0..60)
        .map(|n| mail(&format!("{n}@x.io"), i64::MAX))
        .collect();
    enqueue_all(&store, &mails).await;
    for round in 0..3 {
        // Every lease ends: all of it is due again.
        db.raw()
            .await
            .batch_execute("UPDATE outbox SET next_attempt_ms = 0")
            .await
            .unwrap();
        let claimers = [store.clone(), other.clone()].map(|s| {
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = s.claim_mail(0, 7, HELD, &[]).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|m| m.id));
                }
            })
        });
        let [a, b] = claimers;
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            a.len() + b.len(),
            "round {round}: a mail was claimed twice"
        );
        assert_eq!(all.len(), 60, "round {round}: all due mail was claimed");
    }
}

#[tokio::test]
async fn claims_come_oldest_first() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    enqueue_all(
        &store,
        &[
            mail("a", i64::MAX),
            mail("b", i64::MAX),
            mail("c", i64::MAX),
        ],
    )
    .await;
    let claimed = store.claim_mail(0, 3, HELD, &[]).await.unwrap();
    let names: Vec<&str> = claimed.iter().map(|m| m.recipient.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "queued first, claimed first");
    for (mail, next) in claimed.iter().zip([20, 15, 10]) {
        store
            .mail_failed(mail.id, mail.lease_until_ms, next, String::new())
            .await
            .unwrap();
    }
    let order: Vec<String> = store
        .claim_mail(0, 3, HELD, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.recipient)
        .collect();
    assert_eq!(order, ["c", "b", "a"]);
}

#[tokio::test]
async fn backlog_counts_the_waiting_mail_and_ages_the_oldest() {
    let Some((db, store)) = TestDb::open().await else {
        return;
    };
    let empty = store.outbox_backlog().await.unwrap();
    assert_eq!((empty.pending, empty.oldest_age_ms), (0, 0));
    enqueue_all(&store, &[mail("a", i64::MAX), mail("b", i64::MAX)]).await;
    db.raw()
        .await
        .batch_execute(
            "UPDATE outbox SET queued_ms = queued_ms - 3600000 WHERE id = (SELECT MIN(id) FROM outbox)",
        )
        .await
        .unwrap();
    let backlog = store.outbox_backlog().await.unwrap();
    assert_eq!(backlog.pending, 2);
    assert!(
        (3_600_000..3_660_000).contains(&backlog.oldest_age_ms),
        "{backlog:?}"
    );
}
