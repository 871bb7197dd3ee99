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

/// The header timeout is much shorter than the idle timeout, and the
/// trickling clients below send a byte far more often than the idle timeout:
/// only the header timeout can close their connections.
const HEADER_TIMEOUT_SECS: u64 = 1;
const IDLE_TIMEOUT_SECS: u64 = 30;

async fn header_timeout_app() -> TestApp {
    spawn_app_with(|c| {
        c.server.header_read_timeout_secs = HEADER_TIMEOUT_SECS;
        c.server.idle_timeout_secs = IDLE_TIMEOUT_SECS;
    })
    .await
}

/// Starts a request, then sends one more header line every 100 ms, never
/// finishing the headers, until the server closes the connection (or 10 s
/// pass: a failure). Returns how long after connecting the server closed it,
/// and what it sent.
async fn trickle_headers_until_closed(addr: std::net::SocketAddr) -> (Duration, String) {
    const GIVE_UP: Duration = Duration::from_secs(10);
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let start = Instant::now();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    for step in 0.. {
        assert!(
            start.elapsed() < GIVE_UP,
            "the server kept a client that trickled its headers for {GIVE_UP:?}"
        );
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                // Once the server has dropped us, writes start failing.
                let line = format!("X-Slow-{step}: y\r\n");
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }
    (
        start.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

/// Closed by the header timeout: not before it, and long before the idle
/// timeout (the bounds are wide; CI runs on two busy cores).
fn assert_cut_off_by_the_header_timeout(closed_after: Duration) {
    assert!(
        closed_after >= Duration::from_millis(HEADER_TIMEOUT_SECS * 1000 - 100),
        "closed after {closed_after:?}, before the {HEADER_TIMEOUT_SECS} s header timeout"
    );
    assert!(
        closed_after < Duration::from_secs(5),
        "closed only after {closed_after:?} (header timeout {HEADER_TIMEOUT_SECS} s, idle timeout {IDLE_TIMEOUT_SECS} s)"
    );
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_dropped_and_others_are_served() {
    let app = header_timeout_app().await;
    let slow: Vec<_> = (0..20)
        .map(|_| tokio::spawn(trickle_headers_until_closed(app.addr)))
        .collect();

    // Meanwhile the server answers everyone else at once.
    for _ in 0..10 {
        app.get("/healthz", None)
            .await
            .assert(200, r#"{"status":"ok"}"#);
    }

    for client in slow {
        let (closed_after, answer) = client.await.unwrap();
        assert_cut_off_by_the_header_timeout(closed_after);
        assert!(
            !answer.contains("200 OK"),
            "a trickled request was served: {answer}"
        );
    }
}

#[tokio::test]
async fn headers_are_cut_off_after_the_timeout_not_after_the_client_gives_up() {
    let app = header_timeout_app().await;
    let (closed_after, _) = trickle_headers_until_closed(app.addr).await;
    assert_cut_off_by_the_header_timeout(closed_after);
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
    // Two idle connections take both slots (the kernel's accept queue is
    // first come, first served, so they are accepted before the third)...
    let _a = TcpStream::connect(app.addr).await.unwrap();
    let _b = TcpStream::connect(app.addr).await.unwrap();
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

/// The idle timer is armed once per connection and moved on only when it
/// fires: a keep-alive connection in steady use must outlive several idle
/// periods, and still be closed once it falls silent.
#[tokio::test]
async fn a_connection_in_steady_use_outlives_the_idle_timeout_and_is_closed_once_silent() {
    let app = spawn_app_with(|c| c.server.idle_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    for n in 0..12 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&buffer[..read]);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK"),
            "request {n}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "three idle periods in use"
    );
    let silent = Instant::now();
    let rest = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        silent.elapsed() < Duration::from_secs(5),
        "closed once silent"
    );
}
