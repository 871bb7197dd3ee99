//! `latch migrate-store`: a SQLite database filled through the API, copied
//! to PostgreSQL, and served from there: every user logs in, revocations
//! hold, queued mail goes out, and no id is handed out twice.

use serde_json::json;

use crate::admin::latch_with;
use crate::helpers::{PASSWORD, SmtpServer, TestDb, spawn_sqlite_app_with_smtp};
use crate::test_db::{fresh_postgres_database, postgres_url};

const USERS: usize = 12;

/// `url` without the password of its user info: what a flag may carry.
fn without_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

#[tokio::test]
async fn a_sqlite_database_copied_to_postgresql_serves_every_user() {
    let Some(server) = postgres_url() else {
        eprintln!("migrate-store: no PostgreSQL (set LATCH_TEST_DATABASE_URL; CI always does)");
        return;
    };
    // Filled through the API, with mail waiting (the SMTP server is down).
    let mut old = spawn_sqlite_app_with_smtp(SmtpServer::down(), |_| {}).await;
    for n in 0..USERS {
        old.register(
            &format!("user{n}"),
            &format!("user{n}@example.com"),
            PASSWORD,
        )
        .await
        .assert(201, r#"{"message":"User registered successfully."}"#);
    }
    let login = old.login("user0", PASSWORD).await;
    let revoked_refresh = login.json()["refresh"].as_str().unwrap().to_string();
    let blacklisted = old
        .post_json(
            "/api/auth/token/blacklist/",
            json!({"refresh": revoked_refresh}),
        )
        .await;
    assert_eq!(blacklisted.status, 200, "{}", blacklisted.text);
    old.delete_user("user11").await;
    old.request_reset("user3@example.com").await;
    assert_eq!(old.scalar::<i64>("SELECT COUNT(*) FROM outbox").await, 1);
    let users_before: i64 = old.scalar("SELECT COUNT(*) FROM users").await;
    let path = old.db_path();
    old.stop().await;

    let url = fresh_postgres_database(&server).await;
    let target = TestDb::Postgres { url: url.clone() };
    let from = format!("sqlite://{}", path.display());
    let to = without_password(&url);
    let ran = latch_with(
        &target,
        1,
        &["migrate-store", "--from", &from, "--to", &to],
        "",
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("users                11"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("the counts match"), "{}", ran.stdout);

    // Served from PostgreSQL, with the mail server up.
    let smtp = SmtpServer::start();
    let new = crate::helpers::spawn_app_with_smtp(smtp, |c| {
        c.database.url = Some(url.as_str().into());
    })
    .await;
    assert!(matches!(new.db, TestDb::Postgres { .. }));
    assert_eq!(
        new.scalar::<i64>("SELECT COUNT(*) FROM users").await,
        users_before
    );
    for n in 0..USERS - 1 {
        assert_eq!(
            new.login(&format!("user{n}"), PASSWORD).await.status,
            200,
            "user{n}"
        );
    }
    new.login("user11", PASSWORD).await.assert(
        401,
        r#"{"detail":"No active account found with the given credentials"}"#,
    );
    let refused = new
        .post_json(
            "/api/auth/token/refresh/",
            json!({"refresh": revoked_refresh}),
        )
        .await;
    assert_eq!(
        refused.status, 401,
        "the blacklist came along: {}",
        refused.text
    );
    // The mail that was waiting goes out, its link working.
    let mail = new
        .smtp
        .wait_for_mail(1, std::time::Duration::from_secs(10))
        .await;
    let (uid, token) = mail[0].reset_params();
    new.confirm_reset(&uid, &token, "a-brand-new-horse-3")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
    // A new account gets an id above every one the old database gave out
    // (user11's, deleted, included).
    new.register("newcomer", "newcomer@example.com", PASSWORD)
        .await;
    let id: i64 = new
        .scalar("SELECT id FROM users WHERE username = 'newcomer'")
        .await;
    assert_eq!(id, USERS as i64 + 1);

    // A second copy into the now busy database is refused, changing nothing.
    let again = latch_with(
        &target,
        1,
        &["migrate-store", "--from", &from, "--to", &to],
        "",
    );
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);
    assert_eq!(
        new.scalar::<i64>("SELECT COUNT(*) FROM users").await,
        users_before + 1
    );

    // And back: PostgreSQL to a new SQLite file, served from there.
    let mut new = new;
    new.stop().await;
    let back_dir = tempfile::tempdir().unwrap();
    let back = back_dir.path().join("back.db");
    let back_url = format!("sqlite://{}", back.display());
    let ran = latch_with(
        &target,
        1,
        &["migrate-store", "--from", &to, "--to", &back_url],
        "",
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let served =
        spawn_sqlite_app_with_smtp(SmtpServer::start(), |c| c.database.path = back.clone()).await;
    assert_eq!(served.login("newcomer", PASSWORD).await.status, 200);
    assert_eq!(
        served.login("user3", "a-brand-new-horse-3").await.status,
        200
    );
    served
        .register("latest", "latest@example.com", PASSWORD)
        .await;
    let latest: i64 = served
        .scalar("SELECT id FROM users WHERE username = 'latest'")
        .await;
    assert_eq!(
        latest,
        USERS as i64 + 2,
        "ids go on from PostgreSQL's sequence"
    );
}

#[tokio::test]
async fn a_password_on_the_command_line_is_refused() {
    let db = TestDb::Postgres {
        url: "postgres://u:hunter2@db/x".into(),
    };
    let ran = latch_with(
        &db,
        1,
        &[
            "migrate-store",
            "--from",
            "sqlite://a.db",
            "--to",
            "postgres://u:hunter2@db/x",
        ],
        "",
    );
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("LATCH_DATABASE_URL"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("hunter2"), "{}", ran.stderr);
}
