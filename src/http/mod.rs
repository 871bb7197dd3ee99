//! HTTP routes. A request goes: a path filter picks the endpoint (or the
//! catch-all 404), the endpoint checks the method, reads the body within the
//! size limit and calls its handler; whatever the handler returns becomes
//! JSON in `error.rs`. Whatever part of the body the answer left unread is
//! drained afterwards, so the connection stays usable.

mod auth;
mod docs;
mod health;
mod input;
mod jwks;
pub mod metrics;
mod openapi;
mod password;
mod register;
mod reset_page;
mod serve;
mod tls;
mod tokens;

pub use health::Readiness;
pub use serve::{Limits, peer_addr, serve};
pub use tls::Certificates;

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::Notify;
use warp::filters::BoxedFilter;
use warp::filters::path::FullPath;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{ApiError, json_response};
use crate::limits::{ClientIp, Limits as AbuseLimits};
use crate::metrics::{Metrics, RouteMetrics, UNMATCHED_ROUTE};
use crate::passwords::Hasher;
use crate::reset::ResetLinks;
use crate::store::Store;
use crate::tokens::Tokens;
use crate::validate::PasswordPolicy;

pub use input::Request;
pub use openapi::openapi;

/// What every handler can reach: one reference-counted pointer, cloned once
/// per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
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
    /// What `/readyz` last found, and the outbox's state.
    pub readiness: Readiness,
    /// This server's metrics (see `crate::metrics`).
    pub metrics: Arc<Metrics>,
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

/// All routes, with JSON for unknown paths, one log line per request, and
/// each request counted in the server's metrics under its route.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    let routes = route_table(state.tokens.jwks().is_some())
        .into_iter()
        .chain(reset_page::routes(&state.config).into_iter().flatten());
    let table = Arc::new(RouteTable::new(routes, &state.metrics));
    let api = dispatch(state.clone(), table.clone());
    let api = match cors(&state.config.cors.allowed_origins) {
        Some(cors) => count_cors_answers(api.with(cors).map(warp::Reply::into_response), table),
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

/// Every endpoint; the JWKS only when tokens are signed with a key pair
/// (with an HMAC secret there is no public key, and the path is unknown).
/// The OpenAPI document lists exactly these (see the test in `openapi.rs`).
fn route_table(with_jwks: bool) -> Vec<Route> {
    let mut table: Vec<Route> = health::routes()
        .into_iter()
        .chain(auth::routes())
        .chain(register::routes())
        .chain(password::routes())
        .chain(tokens::routes())
        .chain(openapi::routes())
        .chain(docs::routes())
        .collect();
    if with_jwks {
        table.push(jwks::route());
    }
    table
}

/// Counts the answers warp's CORS wrapper gives itself, without calling the
/// endpoint: preflights (200 with `Access-Control-Allow-Methods`) and
/// refused origins (403, which no endpoint answers). Every other request is
/// counted by `dispatch`. Only installed when CORS is configured.
fn count_cors_answers<F>(api: F, table: Arc<RouteTable>) -> BoxedFilter<(Response,)>
where
    F: Filter<Extract = (Response,), Error = Rejection> + Clone + Send + Sync + 'static,
{
    let answered = api
        .recover(|rejection: Rejection| async move {
            Ok::<_, std::convert::Infallible>(rejection_reply(rejection))
        })
        .unify();
    warp::any()
        .map(std::time::Instant::now)
        .and(warp::path::full())
        .and(answered)
        .map(
            move |started: std::time::Instant, path: FullPath, response: Response| {
                let by_cors = response.status() == StatusCode::FORBIDDEN
                    || response
                        .headers()
                        .contains_key(header::ACCESS_CONTROL_ALLOW_METHODS);
                if by_cors {
                    table
                        .metrics_for(path.as_str())
                        .record(response.status(), started.elapsed());
                }
                response
            },
        )
        .boxed()
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

/// Handles one endpoint's requests.
type Handler = Arc<dyn Fn(AppState, Request) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// An endpoint: its path (without the trailing slash, which is optional),
/// the methods it answers (others get a 405 naming them; OPTIONS lists what
/// is allowed), and its handler. A path is fixed, or
/// comes from the configuration (the reset page's).
pub(crate) struct Route {
    path: Cow<'static, str>,
    methods: &'static [Method],
    handler: Handler,
}

pub(crate) fn endpoint<H, Fut>(
    path: impl Into<Cow<'static, str>>,
    methods: &'static [Method],
    handler: H,
) -> Route
where
    H: Fn(AppState, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Route {
        path: path.into(),
        methods,
        handler: Arc::new(move |state, request| Box::pin(handler(state, request))),
    }
}

/// The endpoints by path (without the trailing slash), each with its
/// metrics, made once at start-up.
struct RouteTable {
    endpoints: HashMap<Cow<'static, str>, Arc<Endpoint>>,
    unmatched: Arc<RouteMetrics>,
}

/// A route and the handles its requests are counted with.
struct Endpoint {
    methods: &'static [Method],
    handler: Handler,
    metrics: RouteMetrics,
}

impl RouteTable {
    fn new(routes: impl IntoIterator<Item = Route>, metrics: &Metrics) -> RouteTable {
        let endpoints = routes
            .into_iter()
            .map(|route| {
                let endpoint = Endpoint {
                    methods: route.methods,
                    handler: route.handler,
                    metrics: metrics.route(route.path.clone()),
                };
                (route.path, Arc::new(endpoint))
            })
            .fold(HashMap::new(), |mut table, (path, endpoint)| {
                // A configured path (the reset page's) must never shadow one
                // of latch's own; configuration validation refuses them, and
                // this keeps a new route from slipping past that list.
                let taken = table.insert(path.clone(), endpoint).is_some();
                assert!(!taken, "two routes on the path {path}");
                table
            });
        RouteTable {
            endpoints,
            unmatched: Arc::new(metrics.route(UNMATCHED_ROUTE)),
        }
    }

    /// The endpoint serving `path`, with or without its trailing slash.
    fn find(&self, path: &str) -> Option<&Arc<Endpoint>> {
        let key = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        self.endpoints.get(key)
    }

    fn metrics_for(&self, path: &str) -> &RouteMetrics {
        self.find(path).map_or(&self.unmatched, |e| &e.metrics)
    }
}

/// Every request: its endpoint is looked up by path in one step (not tried
/// route after route), then answered; unknown paths get the JSON 404. The
/// lookup also gives the handles the request is counted with, once answered
/// (a request whose client hangs up before its answer is not counted).
fn dispatch(state: AppState, table: Arc<RouteTable>) -> BoxedFilter<(Response,)> {
    let limit = state.config.server.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(state.config.server.body_read_timeout_secs);
    // Built only from filters that never reject, so every request ends here.
    warp::path::full()
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(raw_query())
        .and(warp::body::stream())
        .then(
            move |path: FullPath, method: Method, headers, query: String, body| {
                let started = std::time::Instant::now();
                let found = table
                    .find(path.as_str())
                    .cloned()
                    .ok_or_else(|| table.unmatched.clone());
                let state = state.clone();
                async move {
                    let endpoint = match found {
                        Ok(endpoint) => endpoint,
                        Err(unmatched) => {
                            let body = std::pin::pin!(body);
                            let announced = input::announced_length(&headers);
                            let response =
                                finish_body(announced, body, ApiError::NotFound.into_response())
                                    .await;
                            unmatched.record(response.status(), started.elapsed());
                            return response;
                        }
                    };
                    let call = Call {
                        state,
                        methods: endpoint.methods,
                        allow: allow_header(endpoint.methods),
                        limit,
                        body_timeout,
                        metrics: &endpoint.metrics,
                    };
                    let request = (method, headers, query, peer_addr());
                    let handler = &endpoint.handler;
                    let response = call
                        .respond(|state, request| handler(state, request), request, body)
                        .await;
                    endpoint
                        .metrics
                        .record(response.status(), started.elapsed());
                    response
                }
            },
        )
        .boxed()
}

/// What an endpoint needs to answer one request.
struct Call<'a> {
    state: AppState,
    methods: &'static [Method],
    allow: &'static str,
    limit: u64,
    body_timeout: std::time::Duration,
    /// Where refusals for a busy hasher or database are counted.
    metrics: &'a RouteMetrics,
}

impl Call<'_> {
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
        let metrics = self.metrics;
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
                // A body already here (or none) is read without arming the
                // body timeout; one still on its way gets the deadline.
                let mut reading =
                    std::pin::pin!(input::read_body(announced, body.as_mut(), self.limit));
                let body = match futures_util::poll!(reading.as_mut()) {
                    std::task::Poll::Ready(read) => read,
                    std::task::Poll::Pending => tokio::time::timeout(self.body_timeout, reading)
                        .await
                        .unwrap_or(Err(ApiError::BodyTimeout)),
                }?;
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
            result.unwrap_or_else(|err| {
                match err {
                    ApiError::Busy => metrics.count_hash_busy(),
                    ApiError::Unavailable(_) => metrics.count_db_unavailable(),
                    _ => {}
                }
                err.into_response()
            })
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

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
