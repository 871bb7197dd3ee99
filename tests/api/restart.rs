use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

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
        .scalar("SELECT value FROM settings WHERE key = 'jwt_secret'")
        .await;
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

/// Sends the head of a JSON POST with `Expect: 100-continue` and waits for
/// the server's "100 Continue", which hyper sends when the handler starts
/// reading the body: from then on the request is in flight.
async fn start_post(app: &crate::helpers::TestApp, path: &str, content_length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut interim))
        .await
        .expect("no 100 Continue within 5 s")
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    // Expensive hashing (N=2^17, about half a second) keeps the login busy
    // while shutdown starts.
    let app = crate::helpers::spawn_app_with(|c| c.password.scrypt_log_n = 17).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let body = json!({"username": "alice", "password": PASSWORD}).to_string();
    let mut login = start_post(&app, "/api/auth/login/", body.len()).await;
    login.write_all(body.as_bytes()).await.unwrap();
    let mut probe = [0u8; 1];
    assert!(
        matches!(login.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the login should still be hashing"
    );
    app.shutdown().await;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), login.read_to_end(&mut response))
        .await
        .expect("the connection is closed after the response")
        .unwrap_or_else(|e| panic!("the connection broke before the response: {e}"));
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 200 OK\r\n"),
        "the response arrives: {response}"
    );
}

#[tokio::test]
async fn a_client_that_never_finishes_does_not_hold_shutdown_forever() {
    let app = crate::helpers::spawn_app_with(|c| c.server.shutdown_timeout_secs = 1).await;
    // Its handler waits for the rest of the body (for up to the 10 s body
    // read timeout).
    let mut stuck = start_post(&app, "/api/auth/login/", 100).await;
    stuck.write_all(b"{").await.unwrap();
    let start = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown hung on a stuck client");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?}, not the 1 s shutdown timeout",
        start.elapsed()
    );
    // ...and giving up on it closed its connection rather than leaving it behind.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), stuck.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the stuck connection outlived the shutdown");
}
