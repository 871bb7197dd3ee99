//! The TLS modes against a TLS front of the test's own: it answers
//! PostgreSQL's SSLRequest, speaks TLS with a certificate made here for
//! "localhost", and relays the session to the test server in plain. So the
//! checks do not depend on how the server is set up.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::config::Host;

use super::*;

/// The SSLRequest message: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

/// Starts the front; returns its port and the certificate's PEM.
async fn tls_front(upstream: (String, u16)) -> (u16, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = made.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(made.cert.der().to_vec())], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                socket.read_exact(&mut request).await.ok()?;
                if request != SSL_REQUEST {
                    return None;
                }
                socket.write_all(b"S").await.ok()?;
                let mut tls = acceptor.accept(socket).await.ok()?;
                let mut server = TcpStream::connect(upstream).await.ok()?;
                tokio::io::copy_bidirectional(&mut tls, &mut server)
                    .await
                    .ok()
            });
        }
    });
    (port, pem)
}

/// The test database's URL through the front, as `host`, with `params`.
fn through(db: &TestDb, port: u16, host: &str, params: &str) -> String {
    let url = db.url.split_once('?').map_or(db.url.as_str(), |(u, _)| u);
    let (scheme, rest) = url.split_once("://").unwrap();
    let (creds, rest) = rest.rsplit_once('@').unwrap();
    let (_, path) = rest.split_once('/').unwrap();
    format!("{scheme}://{creds}@{host}:{port}/{path}?{params}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_encrypt_and_verify_full_checks_chain_and_name() {
    let Some((db, _store)) = TestDb::open().await else {
        return;
    };
    let config = connect::target(&db.url).unwrap().config;
    let host = match &config.get_hosts()[0] {
        Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => panic!("the test server must be reached over TCP"),
    };
    let (port, pem) = tls_front((host, config.get_ports()[0])).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pem).unwrap();
    let ca = ca.display();

    let open = async |url: String| Postgres::open(&url, Duration::from_secs(5), 1).await;
    for params in [
        "sslmode=require".to_string(),
        "sslmode=prefer".to_string(),
        format!("sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let store = open(through(&db, port, "localhost", &params))
            .await
            .unwrap_or_else(|e| panic!("{params}: {e:#}"));
        assert!(store.is_healthy().await, "{params}");
    }
    for (host, params, why) in [
        (
            "localhost",
            "sslmode=verify-full".to_string(),
            "not from a public root",
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            "not for that name",
        ),
    ] {
        let err = open(through(&db, port, host, &params)).await.err();
        let err = format!("{:#}", err.expect(why));
        assert!(err.contains("certificate"), "{why}: {err}");
    }
    // The front speaks only TLS: no TLS is tried with sslmode=disable.
    assert!(
        open(through(&db, port, "localhost", "sslmode=disable"))
            .await
            .is_err()
    );
}
