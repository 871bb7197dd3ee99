//! The metrics listener (`metrics.bind`): `GET /metrics` in Prometheus's
//! text format, and JSON 404s for anything else. It runs on the same
//! connection loop as the API (timeouts, a connection limit, graceful
//! shutdown), on an address of its own.

use std::convert::Infallible;
use std::sync::Arc;

use warp::Filter;
use warp::filters::path::FullPath;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

use crate::error::ApiError;
use crate::metrics::{Metrics, Sources};

/// Prometheus's text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// At most this many scrapers at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 16;

pub fn routes(
    metrics: Arc<Metrics>,
    sources: Arc<Sources>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    warp::path::full()
        .and(warp::method())
        .then(move |path: FullPath, method: Method| {
            let (metrics, sources) = (metrics.clone(), sources.clone());
            async move {
                let path = path.as_str();
                if path != "/metrics" && path != "/metrics/" {
                    return ApiError::NotFound.into_response();
                }
                if method != Method::GET && method != Method::HEAD {
                    return ApiError::MethodNotAllowed {
                        method: method.to_string(),
                        allow: "GET, HEAD",
                    }
                    .into_response();
                }
                let text = metrics.render(&sources).await;
                let mut response = Response::new(text.into());
                *response.status_mut() = StatusCode::OK;
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                response
            }
        })
}
