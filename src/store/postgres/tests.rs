//! Tests against a real PostgreSQL server: the one in
//! `LATCH_TEST_DATABASE_URL` (e.g. from `pg_virtualenv`). Each test makes a
//! database of its own and drops it at the end. Without the variable a test
//! passes with a note, except under CI (`CI=true`), where it fails.

mod accounts;
mod mail;
mod sessions;
mod snapshot;
mod tls;

use std::time::Duration;

use super::*;
use crate::store::{InsertUser, NewUser};

/// A database of its own for one test, dropped when this is.
pub(super) struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

/// The server to test against, or None (with a note) when there is none.
fn server_url() -> Option<String> {
    match std::env::var("LATCH_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL is required under CI: set LATCH_TEST_DATABASE_URL (see .ci/run)")
        }
        _ => {
            eprintln!("LATCH_TEST_DATABASE_URL is not set: PostgreSQL test skipped");
            None
        }
    }
}

/// A plain connection to `url`, for what the store has no call for.
pub(super) async fn connect_raw(url: &str) -> tokio_postgres::Client {
    let target = connect::target(url).unwrap();
    match target.tls {
        None => {
            let (client, conn) = target.config.connect(NoTls).await.unwrap();
            tokio::spawn(conn);
            client
        }
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, conn) = target.config.connect(tls).await.unwrap();
            tokio::spawn(conn);
            client
        }
    }
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (head, query) = match rest.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (rest, String::new()),
    };
    let host = head.split_once('/').map_or(head, |(host, _)| host);
    format!("{scheme}://{host}/{name}{query}")
}

impl TestDb {
    /// A new, empty database (no schema), or None without a server.
    pub async fn empty() -> Option<TestDb> {
        let admin_url = server_url()?;
        let name = format!("latch_t_{:016x}", rand::random::<u64>());
        let admin = connect_raw(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    /// A new database opened (migrated) as a store.
    pub async fn open() -> Option<(TestDb, Postgres)> {
        let db = TestDb::empty().await?;
        let store = db.store().await;
        Some((db, store))
    }

    pub async fn store(&self) -> Postgres {
        Postgres::open(&self.url, Duration::from_secs(5), 4)
            .await
            .unwrap()
    }

    pub async fn raw(&self) -> tokio_postgres::Client {
        connect_raw(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside async: a thread with a runtime of its own.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect_raw(&url).await;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test database {}", self.name);
        }
    }
}

pub(super) fn new_user(name: &str, email: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: email.into(),
        email_key: email.to_lowercase(),
        password_hash: "h".into(),
    }
}

/// A store on a new database with one user, ann (id 1), whose password hash is `hash`.
pub(super) async fn store_with_user(hash: &str) -> Option<(TestDb, Postgres)> {
    let (db, store) = TestDb::open().await?;
    let mut ann = new_user("ann", "a@x.io");
    ann.password_hash = hash.into();
    assert_eq!(
        store.insert_user(ann, 0).await.unwrap(),
        InsertUser::Created(1)
    );
    Some((db, store))
}

async fn schema_version(db: &TestDb) -> Vec<i32> {
    db.raw()
        .await
        .query("SELECT version FROM latch_schema", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_when_three_instances_open_together() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let opened = futures_util::future::join_all(
        (0..3).map(|_| Postgres::open(&db.url, Duration::from_secs(10), 1)),
    )
    .await;
    for result in opened {
        result.unwrap();
    }
    assert_eq!(schema_version(&db).await, vec![MIGRATIONS.len() as i32]);
    db.store().await;
    assert_eq!(schema_version(&db).await, vec![MIGRATIONS.len() as i32]);
    let names: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "001_initial",
            "002_token_lifecycle",
            "003_django_accounts",
            "004_outbox_queued_time",
            "005_login_limits"
        ]
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_latch_is_refused() {
    let Some((db, _store)) = TestDb::open().await else {
        return;
    };
    db.raw()
        .await
        .batch_execute("UPDATE latch_schema SET version = version + 1")
        .await
        .unwrap();
    let err = Postgres::open(&db.url, Duration::from_secs(5), 1)
        .await
        .err()
        .unwrap();
    let err = format!("{err:#}");
    assert!(err.contains("newer latch"), "{err}");
}

#[tokio::test]
async fn mail_waiting_before_the_upgrade_counts_as_queued_at_the_upgrade() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let raw = db.raw().await;
    for (_, sql) in &MIGRATIONS[..3] {
        raw.batch_execute(sql).await.unwrap();
    }
    raw.batch_execute(
        "CREATE TABLE latch_schema (version INTEGER NOT NULL);
         INSERT INTO latch_schema VALUES (3);
         INSERT INTO outbox (recipient, subject, body, next_attempt_ms, discard_after_ms)
             VALUES ('a@x.io', 's', 'b', 0, 1);",
    )
    .await
    .unwrap();
    let store = db.store().await;
    let backlog = store.outbox_backlog().await.unwrap();
    assert_eq!(backlog.pending, 1);
    assert!((0..60_000).contains(&backlog.oldest_age_ms), "{backlog:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_replaced_and_the_call_retried() {
    let Some((db, store)) = store_with_user("h").await else {
        return;
    };
    assert!(store.is_healthy().await);
    db.raw()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db.name],
        )
        .await
        .unwrap();
    assert_eq!(store.user_by_id(1).await.unwrap().unwrap().username, "ann");
}

#[tokio::test]
async fn no_connection_is_unavailable_and_never_shows_the_password() {
    if server_url().is_none() {
        return;
    }
    // Nothing listens on port 1.
    let err = Postgres::open(
        "postgres://ann:s3cret@127.0.0.1:1/latch?sslmode=disable",
        Duration::from_secs(1),
        1,
    )
    .await
    .err()
    .unwrap();
    let err = format!("{err:#}");
    assert!(!err.contains("s3cret"), "{err}");
    assert!(err.contains("ann:***@127.0.0.1:1"), "{err}");
    let refused = Failure::from(
        tokio_postgres::connect("host=127.0.0.1 port=1 user=ann", NoTls)
            .await
            .err()
            .unwrap(),
    );
    assert!(
        matches!(refused.error, StoreError::Unavailable(_)) && refused.retry,
        "{refused:?}"
    );
    // A connection the server ended is worth another try, on another one.
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let doomed = db.raw().await;
    let pid: i32 = doomed
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    db.raw()
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let ended = Failure::from(doomed.query_one("SELECT 1", &[]).await.err().unwrap());
    assert!(
        matches!(ended.error, StoreError::Unavailable(_)) && ended.retry,
        "{ended:?}"
    );
}

/// Every call's future can move between threads (warp's handlers need that).
#[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
fn futures_are_send(store: Postgres) {
    fn send<T: Send>(_: T) {}
    let token = || -> crate::store::IssuedToken { unimplemented!() };
    let mail = || -> crate::store::NewMail { unimplemented!() };
    send(store.is_healthy());
    send(store.user_by_id(1));
    send(store.user_by_username("a"));
    send(store.user_by_email_key("a"));
    send(store.users());
    send(store.insert_user(new_user("a", "a"), 0));
    send(store.set_password(1, String::new(), 0));
    send(store.set_active(1, true, 0));
    send(store.delete_user(1));
    send(store.upgrade_password_hash(1, String::new(), String::new()));
    send(store.record_login_token(token(), String::new(), 0));
    send(store.refresh_state(1, "a"));
    send(store.rotate_refresh_token(token(), token(), 0, 0));
    send(store.revoke_family_of(0, String::new(), 0));
    send(store.blacklist_token(0, String::new(), 0, 0));
    send(store.revoke_user_tokens(1, 0));
    send(store.blacklisted_count());
    send(store.create_reset_token(1, 0, mail(), 0));
    send(store.reset_decoy_write(mail(), 0));
    send(store.live_reset_tokens(1, 0));
    send(store.reset_password(1, 1, String::new(), 0));
    send(store.claim_mail(0, 1, 1, &[]));
    send(store.outbox_backlog());
    send(store.next_mail_due_ms(&[]));
    send(store.remove_mail(1));
    send(store.mail_failed(1, 0, 0, String::new()));
    send(store.discard_stale_mail(0));
    send(store.queued_mail_count());
    send(store.probe_write());
    send(store.setting_or_insert("k", String::new()));
    send(store.holdings());
    send(store.login_limit_acquire(String::new(), 0, 1, 1));
    send(store.login_limit_refund(String::new(), 1));
    send(store.purge_login_limits(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_kept_waiting_by_a_lock_is_unavailable_after_the_busy_timeout() {
    let Some((db, _store)) = store_with_user("h").await else {
        return;
    };
    let store = Postgres::open(&db.url, Duration::from_millis(300), 2)
        .await
        .unwrap();
    let setting: String = store
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SHOW lock_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting, "300ms");
    // As `latch import django` holds a lock on users, only stronger.
    let mut raw = db.raw().await;
    let holder = raw.transaction().await.unwrap();
    holder
        .batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let waited = tokio::time::timeout(
        Duration::from_secs(10),
        store.set_password(1, "new".into(), 10),
    )
    .await
    .expect("the write waited for the lock long past the busy timeout");
    assert!(
        matches!(waited, Err(StoreError::Unavailable(_))),
        "{waited:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    holder.rollback().await.unwrap();
    assert!(store.set_password(1, "new".into(), 10).await.unwrap());
    assert_eq!(
        store.user_by_id(1).await.unwrap().unwrap().password_hash,
        "new"
    );
}

#[tokio::test]
async fn a_cancelled_statement_is_unavailable_and_not_retried() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    let raw = db.raw().await;
    raw.batch_execute("SET statement_timeout = 50")
        .await
        .unwrap();
    let cancelled = Failure::from(raw.batch_execute("SELECT pg_sleep(5)").await.unwrap_err());
    assert!(
        matches!(cancelled.error, StoreError::Unavailable(_)) && !cancelled.retry,
        "{cancelled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_waits_for_another_past_the_busy_timeout() {
    let Some(db) = TestDb::empty().await else {
        return;
    };
    // Another instance is migrating: it holds the migration lock.
    let mut raw = db.raw().await;
    let holder = raw.transaction().await.unwrap();
    holder
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .unwrap();
    let url = db.url.clone();
    let opening =
        tokio::spawn(async move { Postgres::open(&url, Duration::from_millis(100), 1).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!opening.is_finished(), "it waits, and does not give up");
    holder.commit().await.unwrap();
    opening.await.unwrap().unwrap();
    assert_eq!(schema_version(&db).await, vec![MIGRATIONS.len() as i32]);
}
