//! Under pressure: a full hashing queue answers 503 at once; a mixed load of
//! writers and readers never sees a 500 or "database is locked".

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_full_hashing_queue_answers_503_with_retry_after_at_once() {
    let app = spawn_app_with(|c| {
        c.password.hash_threads = 1;
        c.password.hash_queue_depth = 2;
        c.password.scrypt_log_n = 15;
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let logins = (0..12).map(|_| app.login("alice", PASSWORD));
    let responses = futures_util::future::join_all(logins).await;
    let busy: Vec<_> = responses.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "12 logins against 1 thread + 2 queue slots"
    );
    for r in &busy {
        r.assert(503, r#"{"detail":"Server busy, try again later."}"#);
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // The rest were served normally, and the server is fine afterwards.
    assert!(responses.iter().all(|r| r.status == 200 || r.status == 503));
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn mixed_writers_and_readers_never_see_a_500_or_a_locked_database() {
    let app = spawn_app_with(|c| c.database.busy_timeout_ms = 5000).await;
    let (access, _) = app.user_with_tokens("reader").await;
    for i in 0..5 {
        app.register(
            &format!("reset{i}"),
            &format!("reset{i}@example.com"),
            PASSWORD,
        )
        .await;
    }
    let tasks = (0..120).map(|i| {
        let (app, access) = (&app, &access);
        async move {
            match i % 6 {
                0 => {
                    app.register(
                        &format!("user{i}"),
                        &format!("user{i}@example.com"),
                        PASSWORD,
                    )
                    .await
                }
                1 => {
                    app.request_reset(&format!("reset{}@example.com", i % 5))
                        .await
                }
                2 => {
                    app.confirm_reset("MQ", "not-the-token", "new-password-1")
                        .await
                }
                3 => app.login("reader", PASSWORD).await,
                _ => app.profile(access).await,
            }
        }
    });
    let responses = futures_util::future::join_all(tasks).await;
    let mut statuses = BTreeMap::new();
    for r in &responses {
        *statuses.entry(r.status).or_insert(0) += 1;
        assert!(r.status < 500, "{} {}", r.status, r.text);
        assert!(!r.text.contains("locked"), "{}", r.text);
        r.json();
    }
    assert_eq!(statuses.get(&201), Some(&20), "{statuses:?}");
    let users: i64 = app.scalar("SELECT COUNT(*) FROM users").await;
    assert_eq!(users, 1 + 5 + 20);
}

#[tokio::test]
async fn registrations_spread_over_time_all_land() {
    let app = spawn_app().await;
    let tasks = (0..50).map(|i| {
        let app = &app;
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 3)).await;
            app.post_json(
                "/api/auth/register/",
                json!({"username": format!("u{i}"), "email": format!("u{i}@example.com"), "password": PASSWORD}),
            )
            .await
        }
    });
    let responses = futures_util::future::join_all(tasks).await;
    assert!(responses.iter().all(|r| r.status == 201));
    for i in 0..50 {
        assert_eq!(app.login(&format!("u{i}"), PASSWORD).await.status, 200);
    }
}
