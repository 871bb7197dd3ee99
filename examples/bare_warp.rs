//! The HTTP ceiling for `bench/`: warp's own server answering a fixed small
//! JSON body on every request, with nothing else in the way.
//! Usage: bare_warp [ADDR:PORT]

use warp::Filter as _;

#[tokio::main]
async fn main() {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".into())
        .parse()
        .expect("an ADDR:PORT");
    let body = serde_json::json!({"id": 1, "username": "alice", "email": "alice@example.com"});
    let route = warp::any().map(move || warp::reply::json(&body));
    warp::serve(route).run(addr).await;
}
