//! PostgreSQL going away under a running server: requests that need it get
//! the documented 503 JSON (never a 500), `/readyz` says so, and everything
//! works again once the database is back, on connections made afresh.

use crate::helpers::{PASSWORD, spawn_app_with};
use crate::test_db::{client, fresh_postgres_database, postgres_url};

const UNAVAILABLE: &str = r#"{"detail":"Service temporarily unavailable, try again later."}"#;

/// Refuses new connections to database `name` and ends the open ones: to
/// latch, the server is gone.
async fn cut_off(server: &str, name: &str) {
    let admin = client(server).await;
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap();
}

async fn reconnect(server: &str, name: &str) {
    client(server)
        .await
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_outage_gives_503s_and_latch_recovers_when_it_returns() {
    let Some(server) = postgres_url() else {
        eprintln!("postgres outage: no PostgreSQL (set LATCH_TEST_DATABASE_URL; CI always does)");
        return;
    };
    let url = fresh_postgres_database(&server).await;
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let app = spawn_app_with(|c| {
        c.database.url = Some(url.as_str().into());
        c.database.busy_timeout_ms = 500;
    })
    .await;
    let (access, _) = app.user_with_tokens("ann").await;

    cut_off(&server, &name).await;
    app.register("bob", "bob@example.com", PASSWORD)
        .await
        .assert(503, UNAVAILABLE);
    app.get("/api/auth/profile/", Some(&format!("Bearer {access}")))
        .await
        .assert(503, UNAVAILABLE);
    let login = app.login("ann", PASSWORD).await;
    login.assert(503, UNAVAILABLE);
    assert_eq!(login.header("retry-after"), Some("1"));
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);

    reconnect(&server, &name).await;
    app.register("bob", "bob@example.com", PASSWORD)
        .await
        .assert(201, r#"{"message":"User registered successfully."}"#);
    assert_eq!(app.login("bob", PASSWORD).await.status, 200);
    app.get("/api/auth/profile/", Some(&format!("Bearer {access}")))
        .await
        .assert(
            200,
            r#"{"id":1,"username":"ann","email":"ann@example.com"}"#,
        );
}
