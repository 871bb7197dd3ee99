//! The HTTPS ceiling for `bench/`: warp answering a fixed small JSON body,
//! served over the same rustls setup latch uses (`latch::http::Certificates`)
//! and hyper's HTTP/1.1, with nothing else in the way.
//! Usage: bare_tls ADDR:PORT DIR. A self-signed certificate for 127.0.0.1 is
//! made in DIR (cert.pem, key.pem) unless there is one, so that latch can be
//! started on the same files.

use std::path::Path;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use warp::Filter as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args.next().expect("ADDR:PORT").parse()?;
    let dir = args.next().expect("a folder for the certificate");
    let (cert, key) = (
        Path::new(&dir).join("cert.pem"),
        Path::new(&dir).join("key.pem"),
    );
    if !cert.exists() {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
        std::fs::write(&cert, made.cert.pem())?;
        std::fs::write(&key, made.signing_key.serialize_pem())?;
    }
    let acceptor = latch::http::Certificates::load(&cert, &key)?.acceptor()?;
    let body = serde_json::json!({"id": 1, "username": "alice", "email": "alice@example.com"});
    let route = warp::any().map(move || warp::reply::json(&body));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, route) = (acceptor.clone(), route.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = TowerToHyperService::new(warp::service(route));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
