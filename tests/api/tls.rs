//! HTTPS served by latch itself: the API over TLS with a certificate the
//! test made, a certificate renewed on disk picked up on reload (SIGHUP)
//! without dropping open connections, and a broken pair refused.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with};
use crate::process::Process;

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM
/// files into `dir`; returns the certificate's PEM (what clients trust).
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let pem = made.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, pem)
}

/// A client that trusts only `pem`.
fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn spawn_tls_app(cert: &Path, key: &Path) -> TestApp {
    let (cert, key) = (cert.to_path_buf(), key.to_path_buf());
    spawn_app_with(move |c| {
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
        c.server.header_read_timeout_secs = 1;
    })
    .await
}

#[tokio::test]
async fn the_api_is_served_over_https_and_plain_http_gets_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = make_certificate(dir.path());
    let app = spawn_tls_app(&cert, &key).await;
    let client = client_trusting(&pem);
    let base = format!("https://127.0.0.1:{}", app.addr.port());

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.version(), reqwest::Version::HTTP_11);
    let r = client
        .post(format!("{base}/api/auth/register/"))
        .json(&serde_json::json!({"username": "ann", "email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let login = client
        .post(format!("{base}/api/auth/login/"))
        .json(&serde_json::json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // Plain HTTP on the TLS port is not a TLS handshake: the connection ends
    // without an HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", app.addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that trusts another certificate refuses the server's.
    let (_, _, other) = make_certificate(tempfile::tempdir().unwrap().path());
    assert!(
        client_trusting(&other)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_client_that_stalls_in_the_handshake_is_dropped_like_a_slow_header() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = make_certificate(dir.path());
    let app = spawn_tls_app(&cert, &key).await;
    let addr = app.addr;
    let closed = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Half a TLS record header, then nothing.
        socket.write_all(&[0x16, 0x03]).unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = socket.read(&mut buf);
        (started.elapsed(), read.map_err(|e| e.kind()))
    })
    .await
    .unwrap();
    assert!(
        matches!(closed.1, Ok(0)),
        "the server closed it: {closed:?}"
    );
    assert!(
        closed.0 < Duration::from_secs(5),
        "within the 1 s header timeout: {closed:?}"
    );
}

#[tokio::test]
async fn a_renewed_certificate_serves_new_connections_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, old_pem) = make_certificate(dir.path());
    let app = spawn_tls_app(&cert, &key).await;
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    let old_client = client_trusting(&old_pem);
    assert_eq!(
        old_client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Renewal: new files on disk, then the reload SIGHUP triggers.
    let (_, _, new_pem) = make_certificate(dir.path());
    assert!(app.reload_tls().unwrap());

    let new_client = client_trusting(&new_pem);
    assert_eq!(
        new_client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A new connection of a client that knows only the old certificate is
    // refused: new handshakes get the new one...
    assert!(
        client_trusting(&old_pem)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
    // ...while the connection the old client kept open still serves it.
    assert_eq!(
        old_client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_broken_pair_is_refused_at_start_and_on_reload_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = make_certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = make_certificate(other.path());

    // At start-up: a key that is not the certificate's, a missing file.
    let mut config = crate::helpers::test_config(&tempfile::tempdir().unwrap(), 1);
    config.server.tls_cert_file = Some(cert.clone());
    config.server.tls_key_file = Some(other_key.clone());
    let err = format!(
        "{:#}",
        latch::Server::start(config.clone()).await.err().unwrap()
    );
    assert!(
        err.contains("is not the key of server.tls_cert_file"),
        "{err}"
    );
    config.server.tls_key_file = Some(dir.path().join("missing.pem"));
    let err = format!("{:#}", latch::Server::start(config).await.err().unwrap());
    assert!(err.contains("reading server.tls_key_file"), "{err}");

    // On reload: garbage in the certificate file changes nothing.
    let app = spawn_tls_app(&cert, &key).await;
    std::fs::write(&cert, "not a certificate").unwrap();
    let err = format!("{:#}", app.reload_tls().unwrap_err());
    assert!(err.contains("server.tls_cert_file"), "{err}");
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    let fresh = client_trusting(&pem);
    assert_eq!(
        fresh
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn sighup_makes_the_running_binary_pick_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = make_certificate(dir.path());
    let latch = Process::start(
        dir.path(),
        &[],
        &[
            ("LATCH_SERVER_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("LATCH_SERVER_TLS_KEY_FILE", key.to_str().unwrap()),
        ],
    );
    let first = latch.first_stdout_line();
    assert!(
        first.starts_with("listening on https://127.0.0.1:"),
        "{first}"
    );
    let port = latch.addr().rsplit(':').next().unwrap().to_string();
    let (_, _, new_pem) = make_certificate(dir.path());
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &latch.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    latch.wait_for("SIGHUP: reloaded the TLS certificate and key");
    let r = client_trusting(&new_pem)
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "still running, with the new certificate");
}
