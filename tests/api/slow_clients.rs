//! Slow-loris clients are dropped after the configured timeouts and do not
//! hold up anyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

async fn quick_app() -> TestApp {
    spawn_app_with(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.body_read_timeout_secs = 1;
        c.server.idle_timeout_secs = 3;
    })
    .await
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut buffer)).await;
    assert!(
        read.is_ok(),
        "the server did not close the connection within {limit:?}"
    );
    String::from_utf8_lossy(&buffer).into_owned()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_dropped_and_others_are_served() {
    let app = quick_app().await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHo")
            .await
            .unwrap();
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        for step in 0..25 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            for stream in &mut slow {
                // Once the server has dropped us, writes start failing.
                let _ = stream
                    .write_all(format!("X-Slow-{step}: y\r\n").as_bytes())
                    .await;
            }
        }
        slow
    });

    // Meanwhile the server answers everyone else at once.
    for _ in 0..10 {
        app.get("/healthz", None)
            .await
            .assert(200, r#"{"status":"ok"}"#);
    }

    let mut slow = trickle.await.unwrap();
    for stream in &mut slow {
        let answer = read_until_closed(stream, Duration::from_secs(5)).await;
        assert!(
            !answer.contains("200 OK"),
            "a trickled request was served: {answer}"
        );
    }
}

#[tokio::test]
async fn headers_are_cut_off_after_the_timeout_not_after_the_client_gives_up() {
    let app = quick_app().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let start = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // Keep trickling for up to 10 s; the server must hang up long before.
    let mut closed_after = None;
    for step in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(start.elapsed());
                break;
            }
            _ => {}
        }
        let _ = stream
            .write_all(format!("X-{step}: y\r\n").as_bytes())
            .await;
    }
    let closed_after = closed_after.expect("the server never closed the connection");
    assert!(
        closed_after < Duration::from_secs(5),
        "closed only after {closed_after:?}"
    );
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_a_json_408() {
    let app = quick_app().await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/auth/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"detail":"The request body did not arrive in time."}"#),
        "{answer}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_their_turn() {
    let app = spawn_app_with(|c| {
        c.server.max_connections = 2;
        c.server.idle_timeout_secs = 1;
    })
    .await;
    // Two idle connections take both slots...
    let _a = TcpStream::connect(app.addr).await.unwrap();
    let _b = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so a third request is served only once the idle timeout frees one.
    let start = Instant::now();
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "served at once: the limit did not hold"
    );
}

#[tokio::test]
async fn a_request_that_takes_longer_than_the_timeout_to_answer_is_not_cut_off() {
    // One hashing thread and expensive hashes: the last of ten logins waits
    // well over the 1 s timeout for its turn, while its client sits quietly.
    let app = spawn_app_with(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.idle_timeout_secs = 1;
        c.password.hash_threads = 1;
        c.password.scrypt_log_n = 17;
    })
    .await;
    app.register("alice", "alice@example.com", crate::helpers::PASSWORD)
        .await;
    let start = Instant::now();
    let logins = (0..10).map(|_| app.login("alice", crate::helpers::PASSWORD));
    let responses = futures_util::future::join_all(logins).await;
    assert!(responses.iter().all(|r| r.status == 200));
    assert!(
        start.elapsed() > Duration::from_secs(1),
        "not slow enough to prove anything: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_anything_is_closed() {
    let app = spawn_app_with(|c| c.server.idle_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_http2_prior_knowledge_client_is_turned_away_at_once() {
    // HTTP/2 would escape the header read timeout (it is an HTTP/1 setting),
    // so latch speaks HTTP/1.1 only. Default timeouts: header 10 s, idle 30 s.
    let app = spawn_app_with(|_| {}).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection was still open 3 s after the HTTP/2 preface (got {answer:?})"
    );
    // An HTTP/2 server answers the preface with a SETTINGS frame: a 3-byte
    // length, then type 0x4.
    assert!(
        !(answer.len() >= 9 && answer[3] == 0x4),
        "an HTTP/2 SETTINGS frame came back: {answer:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}
