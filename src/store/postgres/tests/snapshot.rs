//! `latch migrate-store`'s two ends: every row out of one database, into
//! another.

use super::*;
use crate::store::{IdMarks, IssuedToken, NewMail};

fn token(jti: &str) -> IssuedToken {
    IssuedToken {
        jti: jti.into(),
        user_id: 1,
        issued_at: 100,
        expires_at: 10_000,
    }
}

#[tokio::test]
async fn a_snapshot_restored_into_an_empty_database_reads_back_the_same() {
    let Some((_db, store)) = store_with_user("h").await else {
        return;
    };
    for name in ["bob", "cleo"] {
        store
            .insert_user(new_user(name, &format!("{name}@x.io")), 5)
            .await
            .unwrap();
    }
    // The highest id leaves: only the sequence remembers it.
    assert!(store.delete_user(3).await.unwrap());
    assert!(
        store
            .record_login_token(token("a"), "h".into(), 100)
            .await
            .unwrap()
    );
    store
        .rotate_refresh_token(token("a"), token("b"), 101, 10)
        .await
        .unwrap();
    store
        .blacklist_token(1, "gone".into(), 10_000, 102)
        .await
        .unwrap();
    let mail = NewMail {
        recipient: "bob@x.io".into(),
        subject: "s".into(),
        body: "b".into(),
        discard_after_ms: i64::MAX,
    };
    let reset = store.create_reset_token(2, 5_000, mail, 103).await.unwrap();
    store
        .setting_or_insert("jwt_secret", "s3cret".into())
        .await
        .unwrap();
    assert_eq!(
        store
            .login_limit_acquire("acct".into(), 1_000, 100, 3)
            .await
            .unwrap(),
        Ok(())
    );

    let taken = store.snapshot().await.unwrap();
    assert_eq!(taken.counts(), [2, 2, 1, 1, 1, 1, 1]);
    assert_eq!(
        taken.id_marks,
        IdMarks {
            users: 3,
            reset_tokens: reset,
            outbox: 1
        }
    );
    assert_eq!(store.table_counts().await.unwrap(), taken.counts());

    let Some((_copy_db, copy)) = TestDb::open().await else {
        return;
    };
    let fresh = copy.snapshot().await.unwrap();
    assert_eq!(
        (fresh.counts(), fresh.id_marks),
        ([0; 7], IdMarks::default()),
        "a fresh database has no row and has handed out no id"
    );
    copy.restore(&taken).await.unwrap();
    assert_eq!(copy.snapshot().await.unwrap(), taken);
    assert_eq!(copy.table_counts().await.unwrap(), taken.counts());
    assert_eq!(
        copy.insert_user(new_user("dan", "d@x.io"), 0)
            .await
            .unwrap(),
        InsertUser::Created(4),
        "not the deleted user's id"
    );

    // Into a database with rows: refused, and nothing changes.
    let before = copy.snapshot().await.unwrap();
    let err = copy.restore(&taken).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(copy.snapshot().await.unwrap(), before);
}
