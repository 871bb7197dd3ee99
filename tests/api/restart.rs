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
    let stored: String = app.scalar("SELECT value FROM settings WHERE key = 'jwt_secret'");
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

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    // Expensive hashing (N=2^17, about half a second) keeps the login busy
    // while shutdown starts.
    let app = crate::helpers::spawn_app_with(|c| c.password.scrypt_log_n = 17).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let request = app
        .client
        .post(app.url("/api/auth/login/"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send();
    let in_flight = tokio::spawn(request);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !in_flight.is_finished(),
        "the login should still be hashing"
    );
    app.shutdown().await;
    let response = in_flight.await.unwrap().expect("the response arrives");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_does_not_hold_shutdown_forever() {
    use tokio::io::AsyncWriteExt as _;
    let app = crate::helpers::spawn_app_with(|c| c.server.shutdown_timeout_secs = 1).await;
    let mut stuck = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stuck
        .write_all(b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), app.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown hung on a stuck client");
    // ...and giving up on it closed its connection rather than leaving it behind.
    use tokio::io::AsyncReadExt as _;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        stuck.read_to_end(&mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the stuck connection outlived the shutdown");
}
