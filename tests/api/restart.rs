use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app_with};

#[tokio::test]
async fn everything_survives_a_restart_on_the_same_database() {
    // No configured secret: latch generates one and must keep it.
    let mut app = spawn_app_with(|c| c.jwt.secret = None).await;
    let (access, refresh) = app.user_with_tokens("alice").await;
    app.restart().await;

    assert_eq!(app.profile(&access).await.status, 200, "tokens stay valid");
    let r = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
    app.register("alice", "other@example.com", PASSWORD)
        .await
        .assert(400, r#"{"error":"Username already exists."}"#);
    let stored: String = app
        .db()
        .query_row(
            "SELECT value FROM settings WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored.len(), 64, "256 bits, hex");
}

#[tokio::test]
async fn a_configured_secret_wins_over_the_stored_one() {
    let mut app = spawn_app_with(|c| c.jwt.secret = None).await;
    let (access, _) = app.user_with_tokens("alice").await;
    app.restart_with(|c| c.jwt.secret = Some("a-different-configured-secret-0123456789".into()))
        .await;
    assert_eq!(app.profile(&access).await.status, 401);
}
