//! simplejwt's token endpoints beyond login and refresh: `token/verify/`,
//! `token/blacklist/` (also `logout/`), and `logout/all/`.

use serde_json::json;

use super::auth::authenticate;
use super::input::char_fields;
use super::{AppState, HandlerResult, POST, Request, Route, endpoint, reply_no_store};
use crate::error::ApiError;
use crate::revocation::{self, Presented};
use crate::tokens::{TokenError, TokenType};

pub fn routes() -> [Route; 4] {
    [
        endpoint("/api/auth/token/verify", POST, verify),
        endpoint("/api/auth/token/blacklist", POST, blacklist),
        endpoint("/api/auth/logout", POST, blacklist),
        endpoint("/api/auth/logout/all", POST, logout_all),
    ]
}

/// `POST token/verify/ {token}` -> `{}` for a valid token of either type; a
/// refresh token must also be unrevoked.
async fn verify(state: AppState, req: Request) -> HandlerResult {
    let [token] = char_fields(&req.data()?, ["token"])?;
    let token = token.trim();
    let invalid = |e: TokenError| ApiError::token_not_valid(e.message());
    match state.tokens.verify(token, TokenType::Refresh) {
        Ok(claims) => {
            let presented = Presented::from_claims(claims)?;
            let grace = state.config.jwt.rotation_grace_secs as i64;
            revocation::check(&state.store, &presented, state.clock.now(), grace).await?;
        }
        Err(TokenError::WrongType) => {
            state
                .tokens
                .verify(token, TokenType::Access)
                .map_err(invalid)?;
        }
        Err(e) => return Err(invalid(e)),
    }
    reply_no_store(json!({}))
}

/// `POST token/blacklist/ {refresh}` (and `logout/`) -> `{}`; the token never
/// works again, nor does any other token of the same login.
async fn blacklist(state: AppState, req: Request) -> HandlerResult {
    let [refresh] = char_fields(&req.data()?, ["refresh"])?;
    let presented = Presented::verify(&state.tokens, &refresh)?;
    revocation::blacklist(&state.store, presented, state.clock.now()).await?;
    reply_no_store(json!({}))
}

/// `POST logout/all/` with `Authorization: Bearer <access>` -> `{}`: every
/// refresh token of the user stops working.
async fn logout_all(state: AppState, req: Request) -> HandlerResult {
    let user = authenticate(&state, &req).await?;
    revocation::logout_everywhere(&state.store, user.id, state.clock.now()).await?;
    reply_no_store(json!({}))
}
