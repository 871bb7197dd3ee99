//! The ceiling of profile's and refresh's own work, for `bench/`: warp's own
//! server with plain handlers doing exactly what latch's endpoints do
//! (latch's `Tokens` and `Store`, one HS256 verification and one indexed
//! SQLite read inline, then the same JSON), with none of latch's plumbing in
//! the way (connection loop, timeouts, body reading, logging, headers).
//! Usage: reference DB ADDR:PORT SECRET

use std::time::Duration;

use latch::config::{Config, JwtConfig};
use latch::revocation::Presented;
use latch::store::Store;
use latch::tokens::{self, TokenType, Tokens};
use serde_json::json;
use warp::Filter as _;
use warp::http::StatusCode;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (db, addr, secret) = match (args.next(), args.next(), args.next()) {
        (Some(db), Some(addr), Some(secret)) => (db, addr, secret),
        _ => {
            eprintln!("usage: reference DB ADDR:PORT SECRET");
            std::process::exit(2);
        }
    };
    let addr: std::net::SocketAddr = addr.parse().expect("an ADDR:PORT");
    let defaults = Config::default().database;
    let store = Store::open_sqlite(
        db.as_ref(),
        Duration::from_millis(defaults.busy_timeout_ms),
        defaults.pool_size,
    )
    .expect("the database opens");
    let tokens: &'static Tokens = Box::leak(Box::new(
        Tokens::new(&JwtConfig::default(), secret.as_bytes()).expect("HS256 tokens"),
    ));

    let profile_store = store.clone();
    let profile = warp::path!("api" / "auth" / "profile")
        .and(warp::get())
        .and(warp::header::<String>("authorization"))
        .then(move |authorization: String| {
            let store = profile_store.clone();
            async move {
                let id = authorization
                    .strip_prefix("Bearer ")
                    .and_then(|token| tokens.verify(token, TokenType::Access).ok())
                    .and_then(|claims| tokens::user_id(&claims));
                let user = match id {
                    Some(id) => store.user_by_id(id).await.ok().flatten(),
                    None => None,
                };
                match user {
                    Some(u) => warp::reply::with_status(
                        warp::reply::json(
                            &json!({"id": u.id, "username": u.username, "email": u.email}),
                        ),
                        StatusCode::OK,
                    ),
                    None => warp::reply::with_status(
                        warp::reply::json(&json!({})),
                        StatusCode::UNAUTHORIZED,
                    ),
                }
            }
        });

    let refresh = warp::path!("api" / "auth" / "token" / "refresh")
        .and(warp::post())
        .and(warp::body::json())
        .then(move |body: serde_json::Value| {
            let store = store.clone();
            async move {
                let presented = body["refresh"]
                    .as_str()
                    .and_then(|raw| Presented::verify(tokens, raw).ok());
                let usable = match presented {
                    Some(p) => {
                        let t = &p.token;
                        let state = store.refresh_state(t.user_id, &t.jti).await;
                        state
                            .is_ok_and(|s| {
                                s.verdict(t.user_id, t.issued_at, tokens::unix_now(), 10)
                                    .is_usable()
                            })
                            .then_some(p)
                    }
                    None => None,
                };
                match usable {
                    Some(p) => warp::reply::with_status(
                        warp::reply::json(&json!({"access": tokens.access_for_refresh(&p.claims)})),
                        StatusCode::OK,
                    ),
                    None => warp::reply::with_status(
                        warp::reply::json(&json!({})),
                        StatusCode::UNAUTHORIZED,
                    ),
                }
            }
        });

    warp::serve(profile.or(refresh)).run(addr).await;
}
