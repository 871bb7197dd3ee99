//! Users, the import, settings and the login limit.

use super::*;
use crate::store::{ImportWrite, ImportedUser};

#[tokio::test]
async fn users_round_trip_and_unique_violations_are_told_apart() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    assert_eq!(
        store
            .insert_user(new_user("ann", "Ann@x.io"), 7)
            .await
            .unwrap(),
        InsertUser::Created(1)
    );
    assert_eq!(
        store
            .insert_user(new_user("ann", "b@x.io"), 0)
            .await
            .unwrap(),
        InsertUser::UsernameTaken
    );
    assert_eq!(
        store
            .insert_user(new_user("bob", "ANN@x.io"), 0)
            .await
            .unwrap(),
        InsertUser::EmailTaken
    );
    // A blank address has no key, and many users may have none.
    for name in ["carl", "dora"] {
        assert!(matches!(
            store.insert_user(new_user(name, ""), 0).await.unwrap(),
            InsertUser::Created(_)
        ));
    }
    let ann = store.user_by_username("ann").await.unwrap().unwrap();
    assert_eq!(
        (ann.id, ann.email.as_str(), ann.email_key.as_deref()),
        (1, "Ann@x.io", Some("ann@x.io"))
    );
    assert_eq!(
        (
            ann.is_active,
            ann.is_staff,
            ann.is_superuser,
            ann.date_joined,
            ann.last_login
        ),
        (true, false, false, 7, None)
    );
    assert!(store.user_by_username("ANN").await.unwrap().is_none());
    assert_eq!(
        store.user_by_email_key("ann@x.io").await.unwrap(),
        Some(ann.clone())
    );
    assert_eq!(store.user_by_id(1).await.unwrap(), Some(ann));
    let carl = store.user_by_username("carl").await.unwrap().unwrap();
    assert_eq!((carl.email.as_str(), carl.email_key), ("", None));
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["ann", "carl", "dora"]);

    assert!(
        !store
            .upgrade_password_hash(1, "stale".into(), "new".into())
            .await
            .unwrap()
    );
    assert!(
        store
            .upgrade_password_hash(1, "h".into(), "new".into())
            .await
            .unwrap()
    );
    assert!(store.set_password(1, "newer".into(), 10).await.unwrap());
    assert!(!store.set_password(99, "x".into(), 10).await.unwrap());
    assert!(store.set_active(1, false, 10).await.unwrap());
    assert!(!store.set_active(99, false, 10).await.unwrap());
    let ann = store.user_by_id(1).await.unwrap().unwrap();
    assert_eq!(
        (ann.password_hash.as_str(), ann.is_active),
        ("newer", false)
    );
    assert!(store.delete_user(1).await.unwrap());
    assert!(!store.delete_user(1).await.unwrap());
    assert!(store.user_by_id(1).await.unwrap().is_none());
}

#[tokio::test]
async fn ids_of_deleted_users_are_never_handed_out_again() {
    let Some((db, store)) = TestDb::open().await else {
        return;
    };
    store.insert_user(new_user("a", "a@x.io"), 0).await.unwrap();
    store.insert_user(new_user("b", "b@x.io"), 0).await.unwrap();
    assert!(store.delete_user(2).await.unwrap());
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 2);
    // Not even by a store opened again.
    drop(store);
    let store = db.store().await;
    assert_eq!(
        store.insert_user(new_user("c", "c@x.io"), 0).await.unwrap(),
        InsertUser::Created(3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_registrations_racing_for_one_name_or_address_one_wins() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    let by_name = futures_util::future::join_all((0..20).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .insert_user(new_user("ann", &format!("a{n}@x.io")), 0)
                .await
                .unwrap()
        })
    }))
    .await;
    let by_address = futures_util::future::join_all((0..20).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .insert_user(new_user(&format!("bob{n}"), "bob@x.io"), 0)
                .await
                .unwrap()
        })
    }))
    .await;
    for (outcomes, taken) in [
        (by_name, InsertUser::UsernameTaken),
        (by_address, InsertUser::EmailTaken),
    ] {
        let outcomes: Vec<InsertUser> = outcomes.into_iter().map(Result::unwrap).collect();
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, InsertUser::Created(_)))
            .count();
        assert_eq!(created, 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| **o == taken).count(), 19);
    }
}

fn imported(id: i64, name: &str) -> ImportedUser {
    ImportedUser {
        id,
        username: name.into(),
        email: format!("{name}@x.io"),
        email_key: Some(format!("{name}@x.io")),
        password_hash: "pbkdf2_sha256$1$s$h".into(),
        is_active: true,
        is_staff: name == "root",
        is_superuser: false,
        date_joined: 5,
        last_login: Some(6),
    }
}

#[tokio::test]
async fn an_import_inserts_with_ids_and_raises_the_sequence_to_the_floor() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    let users = vec![imported(5, "root"), imported(7, "eve")];
    let heard = std::sync::Mutex::new(Vec::new());
    let planned = store
        .import_users(
            |held| {
                assert_eq!(held.users.len(), 1);
                assert_eq!(held.max_id_ever, 1);
                users.clone()
            },
            |users| {
                Some(ImportWrite {
                    users,
                    id_floor: 100,
                })
            },
            &|done, of| heard.lock().unwrap().push((done, of)),
        )
        .await
        .unwrap();
    assert_eq!(planned.len(), 2);
    assert_eq!(*heard.lock().unwrap(), [(2, 2)]);
    let root = store.user_by_id(5).await.unwrap().unwrap();
    assert_eq!((root.is_staff, root.last_login), (true, Some(6)));
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 100);
    assert_eq!(
        store
            .insert_user(new_user("new", "new@x.io"), 0)
            .await
            .unwrap(),
        InsertUser::Created(101)
    );

    // A plan that clashes (a bug in it) imports nothing, and says why.
    let clash = vec![imported(200, "zed"), imported(201, "ann")];
    let err = store
        .import_users(
            |_| clash.clone(),
            |u| {
                Some(ImportWrite {
                    users: u,
                    id_floor: 0,
                })
            },
            &|_, _| {},
        )
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("nothing was imported"), "{err}");
    assert!(store.user_by_id(200).await.unwrap().is_none());
    // A plan that writes nothing changes nothing.
    store
        .import_users(|_| (), |_| None, &|_, _| panic!("nothing to hear"))
        .await
        .unwrap();
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 101);
}

#[tokio::test]
async fn an_import_past_the_sequence_takes_its_highest_id() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 0);
    let users: Vec<ImportedUser> = (1..=2500)
        .map(|n| imported(n * 2, &format!("u{n}")))
        .collect();
    let heard = std::sync::Mutex::new(Vec::new());
    store
        .import_users(
            |_| users,
            |users| Some(ImportWrite { users, id_floor: 0 }),
            &|done, of| heard.lock().unwrap().push((done, of)),
        )
        .await
        .unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [(1000, 2500), (2000, 2500), (2500, 2500)]
    );
    assert_eq!(store.holdings().await.unwrap().max_id_ever, 5000);
    assert_eq!(store.users().await.unwrap().len(), 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_racing_instances_agree_on_one_value() {
    let Some((db, store)) = TestDb::open().await else {
        return;
    };
    let other = db.store().await;
    let outcomes = futures_util::future::join_all((0..10).map(|n| {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tokio::spawn(async move { store.setting_or_insert("k", format!("v{n}")).await.unwrap() })
    }))
    .await;
    let outcomes: Vec<(String, bool)> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes.iter().filter(|(_, stored)| *stored).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().all(|(v, _)| *v == outcomes[0].0),
        "{outcomes:?}"
    );
    assert_eq!(
        store.setting_or_insert("k", "late".into()).await.unwrap(),
        (outcomes[0].0.clone(), false)
    );

    store.probe_write().await.unwrap();
    store.probe_write().await.unwrap();
    let probes: String = db
        .raw()
        .await
        .query_one("SELECT value FROM settings WHERE key = 'readyz_probe'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(probes, "2");
}

#[tokio::test]
async fn a_burst_then_refusal_with_the_wait_then_a_refund_and_the_purge() {
    let Some((_db, store)) = TestDb::open().await else {
        return;
    };
    let acquire = |account: &str, now| store.login_limit_acquire(account.into(), now, 100, 3);
    for _ in 0..3 {
        assert_eq!(acquire("a", 1_000).await.unwrap(), Ok(()));
    }
    assert_eq!(acquire("a", 1_000).await.unwrap(), Err(100));
    assert_eq!(acquire("b", 1_000).await.unwrap(), Ok(()), "per account");
    assert_eq!(acquire("a", 1_050).await.unwrap(), Err(50));
    assert_eq!(acquire("a", 1_100).await.unwrap(), Ok(()));
    store.login_limit_refund("a".into(), 100).await.unwrap();
    assert_eq!(acquire("a", 1_100).await.unwrap(), Ok(()));
    assert_eq!(
        store.purge_login_limits(1_200).await.unwrap(),
        1,
        "b is back at full"
    );
    assert_eq!(store.purge_login_limits(1_400).await.unwrap(), 1);
    assert_eq!(
        store
            .login_limit_acquire("z".into(), 0, 100, 0)
            .await
            .unwrap(),
        Err(100),
        "no burst, no attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_three_bursts_racing_from_two_instances_exactly_one_burst_passes() {
    let Some((db, store)) = TestDb::open().await else {
        return;
    };
    let other = db.store().await;
    let burst = 5;
    let outcomes = futures_util::future::join_all((0..3 * burst).map(|n| {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tokio::spawn(async move {
            store
                .login_limit_acquire("acct".into(), 10_000, 1_000, burst)
                .await
                .unwrap()
        })
    }))
    .await;
    let outcomes: Vec<Result<(), i64>> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        burst as usize
    );
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(()) | Err(1..))),
        "{outcomes:?}"
    );
    store
        .login_limit_refund("acct".into(), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_limit_acquire("acct".into(), 10_000, 1_000, burst)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .login_limit_acquire("acct".into(), 10_000, 1_000, burst)
            .await
            .unwrap(),
        Err(1_000)
    );
}
