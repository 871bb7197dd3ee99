//! Refresh tokens and reset links, as the SQLite backend's tests have them,
//! and the races between instances that only a server has.

use super::*;
use crate::store::{IssuedToken, NewMail, Rotation, Verdict};

fn token(jti: &str, issued_at: i64) -> IssuedToken {
    IssuedToken {
        jti: jti.into(),
        user_id: 1,
        issued_at,
        expires_at: issued_at + 1000,
    }
}

async fn login(store: &Postgres, jti: &str, now: i64) {
    assert!(
        store
            .record_login_token(token(jti, now), "h".into(), now)
            .await
            .unwrap()
    );
}

async fn verdict(store: &Postgres, jti: &str, iat: i64, now: i64) -> Verdict {
    store
        .refresh_state(1, jti)
        .await
        .unwrap()
        .verdict(1, iat, now, 10)
}

async fn rotate(store: &Postgres, presented: &str, iat: i64, new: &str, now: i64) -> Rotation {
    store
        .rotate_refresh_token(token(presented, iat), token(new, now), now, 10)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_recorded_token_is_usable_until_revoked() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    login(&store, "a", 100).await;
    assert_eq!(verdict(&store, "a", 100, 100).await, Verdict::Usable);
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().last_login,
        Some(100)
    );
    let nobody = store.refresh_state(2, "a").await.unwrap();
    assert_eq!(
        nobody.verdict(2, 100, 100, 10),
        Verdict::Invalid,
        "no user 2"
    );
    store.revoke_user_tokens(1, 150).await.unwrap();
    assert_eq!(verdict(&store, "a", 100, 150).await, Verdict::Revoked);
    login(&store, "b", 150).await;
    assert_eq!(verdict(&store, "b", 150, 150).await, Verdict::Usable);
    assert_eq!(verdict(&store, "foreign", 150, 151).await, Verdict::Revoked);
    assert_eq!(verdict(&store, "foreign", 151, 151).await, Verdict::Usable);
    // Again within the second: the cut-off stays.
    store.revoke_user_tokens(1, 150).await.unwrap();
    assert_eq!(
        store
            .refresh_state(1, "x")
            .await
            .unwrap()
            .tokens_revoked_before,
        151
    );
}

#[tokio::test]
async fn a_login_is_not_recorded_once_the_password_changed_or_the_user_left() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    assert!(
        !store
            .record_login_token(token("a", 100), "stale".into(), 100)
            .await
            .unwrap()
    );
    assert!(store.refresh_state(1, "a").await.unwrap().row.is_none());
    store
        .upgrade_password_hash(1, "h".into(), "h2".into())
        .await
        .unwrap();
    assert!(
        !store
            .record_login_token(token("b", 100), "h".into(), 100)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_login_token(token("c", 100), "h2".into(), 100)
            .await
            .unwrap()
    );
    store.set_active(1, false, 101).await.unwrap();
    assert_eq!(verdict(&store, "c", 100, 101).await, Verdict::Invalid);
    assert!(
        store
            .refresh_state(1, "c")
            .await
            .unwrap()
            .row
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        !store
            .record_login_token(token("d", 102), "h2".into(), 102)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn blacklisting_revokes_the_family_and_is_idempotent() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    login(&store, "a", 100).await;
    assert_eq!(
        rotate(&store, "a", 100, "b", 101).await,
        Rotation::Rotated(token("b", 101))
    );
    store
        .blacklist_token(1, "b".into(), 1101, 102)
        .await
        .unwrap();
    store
        .blacklist_token(1, "b".into(), 1101, 102)
        .await
        .unwrap();
    assert_eq!(verdict(&store, "b", 101, 103).await, Verdict::Revoked);
    assert_eq!(
        verdict(&store, "a", 100, 103).await,
        Verdict::Revoked,
        "the parent too"
    );
    assert_eq!(store.blacklisted_count().await.unwrap(), 1);
    login(&store, "c", 104).await;
    store.revoke_family_of(1, "c".into(), 105).await.unwrap();
    assert_eq!(verdict(&store, "c", 104, 105).await, Verdict::Revoked);
}

#[tokio::test]
async fn within_the_grace_window_the_same_successor_is_handed_out_again() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    login(&store, "a", 100).await;
    assert_eq!(
        rotate(&store, "a", 100, "b", 100).await,
        Rotation::Rotated(token("b", 100))
    );
    assert_eq!(
        rotate(&store, "a", 100, "c", 109).await,
        Rotation::Rotated(token("b", 100)),
        "no second branch"
    );
    assert!(store.refresh_state(1, "c").await.unwrap().row.is_none());
    assert_eq!(
        rotate(&store, "a", 100, "d", 110).await,
        Rotation::Refused(Verdict::Reused)
    );
    for jti in ["a", "b"] {
        assert_eq!(
            verdict(&store, jti, 100, 111).await,
            Verdict::Revoked,
            "{jti}"
        );
    }
    assert_eq!(
        rotate(&store, "b", 100, "e", 112).await,
        Rotation::Refused(Verdict::Revoked),
        "the successor dies with its family"
    );
}

#[tokio::test]
async fn a_foreign_token_gets_a_retired_row_so_its_replay_is_caught() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    assert_eq!(
        rotate(&store, "django", 100, "b", 100).await,
        Rotation::Rotated(token("b", 100))
    );
    assert_eq!(verdict(&store, "django", 100, 105).await, Verdict::InGrace);
    assert_eq!(verdict(&store, "b", 100, 105).await, Verdict::Usable);
    assert_eq!(
        rotate(&store, "django", 100, "c", 120).await,
        Rotation::Refused(Verdict::Reused)
    );
    assert_eq!(verdict(&store, "b", 100, 121).await, Verdict::Revoked);
}

/// Four rotations of one token at once, from two instances.
async fn race(store: &Postgres, other: &Postgres, presented: &str, grace: i64) -> Vec<Rotation> {
    let outcomes = futures_util::future::join_all((0..4).map(|n| {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let (jti, presented) = (presented.to_string(), token(presented, 100));
        tokio::spawn(async move {
            store
                .rotate_refresh_token(presented, token(&format!("{jti}-n{n}"), 200), 200, grace)
                .await
                .unwrap()
        })
    }))
    .await;
    outcomes.into_iter().map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_rotations_racing_on_two_instances_exactly_one_wins() {
    let Some((db, store)) = store_with_user("h").await else {
        return;
    };
    let other = db.store().await;
    login(&store, "a", 100).await;
    // "django": a token latch has no row for.
    for presented in ["a", "django"] {
        let outcomes = race(&store, &other, presented, 0).await;
        let won = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated(_)))
            .count();
        assert_eq!(won, 1, "{presented}: {outcomes:?}");
        assert!(
            outcomes.contains(&Rotation::Refused(Verdict::Reused)),
            "{outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_racing_within_the_grace_window_get_one_successor() {
    let Some((db, store)) = store_with_user("h").await else {
        return;
    };
    let other = db.store().await;
    login(&store, "a", 100).await;
    for presented in ["a", "django"] {
        let outcomes = race(&store, &other, presented, 10).await;
        let Rotation::Rotated(first) = &outcomes[0] else {
            panic!("{outcomes:?}");
        };
        assert!(
            outcomes
                .iter()
                .all(|o| *o == Rotation::Rotated(first.clone())),
            "{outcomes:?}"
        );
        assert_eq!(verdict(&store, &first.jti, 200, 200).await, Verdict::Usable);
    }
}

#[tokio::test]
async fn expired_rows_are_purged_by_later_writes() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    store
        .blacklist_token(1, "old".into(), 100, 100)
        .await
        .unwrap();
    login(&store, "old-r", 0).await;
    login(&store, "new", 1000 + 3600 + 1).await;
    assert_eq!(store.blacklisted_count().await.unwrap(), 0);
    assert!(store.refresh_state(1, "old-r").await.unwrap().row.is_none());
}

fn mail() -> NewMail {
    NewMail {
        recipient: "a@x.io".into(),
        subject: "s".into(),
        body: "b".into(),
        discard_after_ms: i64::MAX,
    }
}

#[tokio::test]
async fn a_reset_token_is_single_use_expires_and_takes_its_mail_along() {
    let Some((_db, store)) = store_with_user("old").await else {
        return;
    };
    login_with(&store, "old").await;
    let a = store.create_reset_token(1, 100, mail(), 0).await.unwrap();
    let b = store.create_reset_token(1, 100, mail(), 0).await.unwrap();
    assert_eq!(store.queued_mail_count().await.unwrap(), 2);
    assert_eq!(store.live_reset_tokens(1, 99).await.unwrap().len(), 2);
    assert!(
        store.live_reset_tokens(1, 100).await.unwrap().is_empty(),
        "expired"
    );
    assert!(
        !store.reset_password(1, a, "new".into(), 100).await.unwrap(),
        "expired"
    );
    assert!(
        !store.reset_password(2, a, "new".into(), 50).await.unwrap(),
        "not user 2's"
    );
    assert!(store.reset_password(1, a, "new".into(), 50).await.unwrap());
    assert!(
        !store
            .reset_password(1, a, "newer".into(), 50)
            .await
            .unwrap(),
        "used"
    );
    assert!(
        !store
            .reset_password(1, b, "newer".into(), 50)
            .await
            .unwrap(),
        "superseded"
    );
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().password_hash,
        "new"
    );
    assert_eq!(
        store.queued_mail_count().await.unwrap(),
        0,
        "their mail is gone"
    );
    assert_eq!(
        verdict(&store, "l", 0, 60).await,
        Verdict::Revoked,
        "sessions ended"
    );

    // A deactivated user's link does nothing, and stays for the deactivation to take.
    store.set_active(1, false, 60).await.unwrap();
    let c = store.create_reset_token(1, 200, mail(), 60).await.unwrap();
    assert!(!store.reset_password(1, c, "x".into(), 61).await.unwrap());
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().password_hash,
        "new"
    );
    assert_eq!(store.live_reset_tokens(1, 61).await.unwrap().len(), 1);
}

async fn login_with(store: &Postgres, hash: &str) {
    assert!(
        store
            .record_login_token(token("l", 0), hash.into(), 0)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_instances_confirming_one_link_exactly_one_succeeds() {
    let Some((db, store)) = store_with_user("old").await else {
        return;
    };
    let other = db.store().await;
    for round in 0..5 {
        let id = store.create_reset_token(1, 1000, mail(), 0).await.unwrap();
        let outcomes = futures_util::future::join_all([store.clone(), other.clone()].map(|s| {
            tokio::spawn(async move {
                s.reset_password(1, id, format!("p{round}"), 10)
                    .await
                    .unwrap()
            })
        }))
        .await;
        let won = outcomes
            .into_iter()
            .filter(|o| *o.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_decoy_write_leaves_nothing_behind() {
    let Some((db, store)) = store_with_user("h").await else {
        return;
    };
    store.reset_decoy_write(mail(), 10).await.unwrap();
    store.reset_decoy_write(mail(), 10).await.unwrap();
    let raw = db.raw().await;
    let count = async |table: &str| -> i64 {
        raw.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!((count("reset_tokens").await, count("outbox").await), (0, 0));
    let id = store.create_reset_token(1, 100, mail(), 10).await.unwrap();
    assert_eq!(id, 3, "the decoys used up ids, as real requests do");
    // The reference is checked as ever for a real token.
    assert!(store.create_reset_token(42, 100, mail(), 10).await.is_err());
}

/// A logout of a token latch has no row for (one Django minted) racing its
/// rotation on another instance: the logout either comes first (the
/// rotation finds the token blacklisted) or waits for the rotation and
/// revokes the successor with the family. Never does a successor live on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_racing_the_rotation_of_a_foreign_token_leaves_no_live_successor() {
    let Some((db, store)) = store_with_user("h").await else {
        return;
    };
    let other = db.store().await;
    let (mut rotated, mut refused) = (0, 0);
    for round in 0..30 {
        let (presented, successor) = (format!("django-{round}"), format!("next-{round}"));
        let rotation = tokio::spawn({
            let (store, presented, successor) =
                (store.clone(), presented.clone(), successor.clone());
            async move {
                store
                    .rotate_refresh_token(token(&presented, 100), token(&successor, 200), 200, 10)
                    .await
                    .unwrap()
            }
        });
        let logout = tokio::spawn({
            let (other, presented) = (other.clone(), presented.clone());
            async move {
                other
                    .blacklist_token(1, presented, 1100, 200)
                    .await
                    .unwrap()
            }
        });
        let (rotation, logout) = tokio::join!(rotation, logout);
        logout.unwrap();
        match rotation.unwrap() {
            Rotation::Rotated(new) => {
                assert_eq!(new.jti, successor);
                assert_eq!(
                    verdict(&store, &successor, 200, 201).await,
                    Verdict::Revoked,
                    "round {round}: the successor outlived the logout"
                );
                rotated += 1;
            }
            Rotation::Refused(_) => refused += 1,
        }
        assert_eq!(
            verdict(&store, &presented, 100, 201).await,
            Verdict::Revoked,
            "round {round}"
        );
    }
    eprintln!("rotation first: {rotated}, logout first: {refused}");
}
