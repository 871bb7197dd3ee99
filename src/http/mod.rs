//! HTTP routes. A request goes: a path filter picks the endpoint (or the
//! catch-all 404), the endpoint checks the method, reads the body within the
//! size limit and calls its handler; whatever the handler returns becomes
//! JSON in `error.rs`. Whatever part of the body the answer left unread is
//! drained afterwards, so the connection stays usable.

mod auth;
mod input;
mod jwks;
mod password;
mod register;
mod serve;
mod tokens;

pub use serve::{Limits, PeerAddr, serve};

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use serde_json::{Value, json};
use tokio::sync::Notify;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{ApiError, json_response};
use crate::limits::{ClientIp, Limits as AbuseLimits};
use crate::passwords::Hasher;
use crate::reset::ResetLinks;
use crate::store::Store;
use crate::tokens::Tokens;
use crate::validate::PasswordPolicy;

pub use input::Request;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub tokens: Arc<Tokens>,
    pub hasher: Hasher,
    pub resets: Arc<ResetLinks>,
    /// The rules for new passwords, from `config.password`.
    pub password_policy: Arc<PasswordPolicy>,
    /// Poked after mail is queued so the outbox worker sends it at once.
    pub mail_queued: Arc<Notify>,
    pub clock: SharedClock,
    /// None when `[limits] enabled = false`.
    pub limits: Option<Arc<AbuseLimits>>,
    pub client_ip: Arc<ClientIp>,
}

impl AppState {
    /// The client's address for the limits: the peer, or what trusted
    /// proxies say. Unspecified when unknown (only in-process tests).
    pub fn client_ip(&self, req: &Request) -> std::net::IpAddr {
        let peer = req
            .peer
            .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.ip());
        self.client_ip.resolve(peer, &req.headers)
    }
}

pub type HandlerResult = Result<Response, ApiError>;

/// All routes, with JSON for unknown paths and one log line per request.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let mut api = health(&state)
        .or(auth::routes(&state))
        .unify()
        .or(register::routes(&state))
        .unify()
        .or(password::routes(&state))
        .unify()
        .or(tokens::routes(&state))
        .unify()
        .boxed();
    if let Some(jwks) = jwks::routes(&state) {
        api = api.or(jwks).unify().boxed();
    }
    let api = api.or(not_found()).unify().boxed();
    let api = match cors(&state.config.cors.allowed_origins) {
        Some(cors) => api.with(cors).map(warp::Reply::into_response).boxed(),
        None => api,
    };
    api.recover(|rejection: Rejection| async move {
        Ok::<_, std::convert::Infallible>(rejection_reply(rejection))
    })
    .unify()
    .map(|mut response: Response| {
        let headers = response.headers_mut();
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        response
    })
    .with(warp::log::custom(log_request))
}

/// CORS for the configured origins; none configured, no CORS headers at all.
fn cors(origins: &[String]) -> Option<warp::cors::Builder> {
    if origins.is_empty() {
        return None;
    }
    let cors = warp::cors()
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600));
    Some(if origins.iter().any(|o| o == "*") {
        cors.allow_any_origin()
    } else {
        cors.allow_origins(origins.iter().map(String::as_str))
    })
}

/// Turns a rejection into JSON. Every path has a route (unknown ones the
/// catch-all 404), and methods and bodies are judged inside the endpoints,
/// so only CORS refusals are expected here.
fn rejection_reply(rejection: Rejection) -> Response {
    if let Some(forbidden) = rejection.find::<warp::cors::CorsForbidden>() {
        json_response(
            StatusCode::FORBIDDEN,
            &json!({"detail": forbidden.to_string()}),
        )
    } else {
        ApiError::Internal(format!("unhandled rejection: {rejection:?}")).into_response()
    }
}

/// Method, path (never the query: a reset link's token travels there),
/// status and latency. Headers and bodies are never logged.
fn log_request(info: warp::log::Info<'_>) {
    tracing::info!(
        target: "latch::http",
        method = %info.method(),
        path = %info.path(),
        status = info.status().as_u16(),
        latency_ms = format_args!("{:.3}", info.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
}

/// An endpoint at `path` answering `methods` with `handler`. Other methods get
/// a 405 naming them; OPTIONS lists what is allowed.
pub(crate) fn endpoint<H, Fut>(
    path: BoxedFilter<()>,
    methods: &'static [Method],
    state: &AppState,
    handler: H,
) -> BoxedFilter<(Response,)>
where
    H: Fn(AppState, Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let allow: &'static str = allow_header(methods);
    let state = state.clone();
    let limit = state.config.server.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(state.config.server.body_read_timeout_secs);
    path.and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::body::stream())
        .then(
            move |method: Method, headers, query: String, peer: Option<PeerAddr>, body| {
                let call = Call {
                    state: state.clone(),
                    methods,
                    allow,
                    limit,
                    body_timeout,
                };
                let request = (method, headers, query, peer.map(|p| p.0));
                call.respond(handler.clone(), request, body)
            },
        )
        .boxed()
}

/// What an endpoint needs to answer one request.
struct Call {
    state: AppState,
    methods: &'static [Method],
    allow: &'static str,
    limit: u64,
    body_timeout: std::time::Duration,
}

impl Call {
    async fn respond<H, Fut, S, B>(
        self,
        handler: H,
        (method, headers, query, peer): (
            Method,
            warp::http::HeaderMap,
            String,
            Option<std::net::SocketAddr>,
        ),
        body: S,
    ) -> Response
    where
        H: Fn(AppState, Request) -> Fut,
        Fut: Future<Output = HandlerResult>,
        S: futures_util::Stream<Item = Result<B, warp::Error>>,
        B: bytes::Buf,
    {
        let mut body = std::pin::pin!(body);
        let announced = input::announced_length(&headers);
        let allowed = self.methods.contains(&method)
            || (method == Method::HEAD && self.methods.contains(&Method::GET));
        let response = if method == Method::OPTIONS {
            options_reply(self.allow)
        } else if !allowed {
            ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: self.allow,
            }
            .into_response()
        } else {
            let result = async {
                let reading = input::read_body(announced, body.as_mut(), self.limit);
                let body = tokio::time::timeout(self.body_timeout, reading)
                    .await
                    .unwrap_or(Err(ApiError::BodyTimeout))?;
                let request = Request {
                    headers,
                    query,
                    body,
                    peer,
                };
                // A panic must still give the client a JSON answer.
                AssertUnwindSafe(handler(self.state, request))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(ApiError::Internal("handler panicked".into())))
            }
            .await;
            result.unwrap_or_else(ApiError::into_response)
        };
        finish_body(announced, body, response).await
    }
}

/// Drains whatever the answer left of the request body (see `input::drain`);
/// when that is not possible, tells the client the connection closes.
async fn finish_body<S, B>(
    announced: Option<u64>,
    body: std::pin::Pin<&mut S>,
    mut response: Response,
) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    if !input::drain(announced, body).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Unknown paths: 404, after draining the body like any other early answer.
fn not_found() -> BoxedFilter<(Response,)> {
    // Built only from filters that never reject, so every path ends here.
    warp::header::headers_cloned()
        .map(|headers: warp::http::HeaderMap| input::announced_length(&headers))
        .and(warp::body::stream())
        .then(|announced, body| async move {
            let body = std::pin::pin!(body);
            finish_body(announced, body, ApiError::NotFound.into_response()).await
        })
        .boxed()
}

/// The raw query string, empty when there is none.
fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

fn allow_header(methods: &'static [Method]) -> &'static str {
    if methods.contains(&Method::GET) {
        "GET, HEAD, OPTIONS"
    } else {
        "POST, OPTIONS"
    }
}

fn options_reply(allow: &'static str) -> Response {
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "renders": ["application/json"],
            "parses": ["application/json", "application/x-www-form-urlencoded"],
        }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A 200/201 JSON reply.
pub(crate) fn reply(status: StatusCode, body: Value) -> HandlerResult {
    Ok(json_response(status, &body))
}

/// A reply carrying tokens or personal data: never to be cached.
pub(crate) fn reply_no_store(body: Value) -> HandlerResult {
    let mut response = json_response(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `/api/auth/<name>` with or without a trailing slash (warp treats both alike).
pub(crate) fn api_path(segments: &'static [&'static str]) -> BoxedFilter<()> {
    let mut filter = warp::path("api").and(warp::path("auth")).boxed();
    for segment in segments {
        filter = filter.and(warp::path(*segment)).boxed();
    }
    filter.and(warp::path::end()).boxed()
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];

/// `GET /healthz`: 200 once the database answers.
fn health(state: &AppState) -> BoxedFilter<(Response,)> {
    let path = warp::path("healthz").and(warp::path::end()).boxed();
    endpoint(
        path,
        GET,
        state,
        |state: AppState, _req: Request| async move {
            if state.store.is_healthy() {
                reply(StatusCode::OK, json!({"status": "ok"}))
            } else {
                Ok(json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "unavailable"}),
                ))
            }
        },
    )
}
