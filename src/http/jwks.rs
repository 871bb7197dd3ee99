//! `GET /.well-known/jwks.json`: the public keys tokens are signed with, for
//! services that verify latch's tokens themselves. Only with EdDSA or RS256;
//! with an HMAC secret there is nothing to publish and the path is unknown.

use warp::Filter as _;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{AppState, GET, HandlerResult, Request, endpoint};
use crate::error::{ApiError, json_response};

/// The route, or none when tokens are HMAC-signed.
pub fn routes(state: &AppState) -> Option<BoxedFilter<(Response,)>> {
    state.tokens.jwks()?;
    let path = warp::path(".well-known")
        .and(warp::path("jwks.json"))
        .and(warp::path::end())
        .boxed();
    Some(endpoint(path, GET, state, jwks))
}

async fn jwks(state: AppState, _req: Request) -> HandlerResult {
    let keys = state
        .tokens
        .jwks()
        .ok_or_else(|| ApiError::Internal("JWKS route without public keys".into()))?;
    let mut response = json_response(StatusCode::OK, &keys);
    // Verifiers may keep the keys five minutes. After a rotation the new key
    // signs at once; a verifier that meets a kid it does not know fetches
    // the set again (PyJWT's PyJWKClient does).
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
