//! `GET /.well-known/jwks.json`: the public keys tokens are signed with, for
//! services that verify latch's tokens themselves. Only with EdDSA or RS256;
//! with an HMAC secret there is nothing to publish and the path is unknown.

use warp::http::{HeaderValue, StatusCode, header};

use super::{AppState, GET, HandlerResult, Request, Route, endpoint};
use crate::error::{ApiError, json_response};

/// The route; served only when tokens are signed with a key pair (see
/// `route_table`).
pub fn route() -> Route {
    endpoint("/.well-known/jwks.json", GET, jwks)
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
