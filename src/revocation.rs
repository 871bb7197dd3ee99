//! The lifecycle of refresh tokens after they are signed: recorded at login,
//! judged when presented (blacklist, logout, password change, rotation),
//! rotated, blacklisted, revoked for a whole account. The rows are the
//! store's (`store/refresh_tokens.rs`); the rules and their answers are here.
//! Access tokens are not looked up: they die by their short lifetime.

use serde_json::Value;

use crate::error::ApiError;
use crate::store::{IssuedToken, Rotation, Store, StoreError, Verdict};
use crate::tokens::{self, Claims, TokenPair, Tokens};

/// The parts of a verified refresh token that revocation looks at.
#[derive(Debug, Clone)]
pub struct Presented {
    pub user_id: i64,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

impl Presented {
    /// From claims `Tokens::verify` accepted (so `exp` and `jti` exist).
    pub fn from_claims(claims: &Claims) -> Result<Presented, ApiError> {
        let invalid = || ApiError::token_not_valid("Token is invalid");
        let jti = match claims.get("jti") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(invalid()),
        };
        Ok(Presented {
            user_id: tokens::user_id(claims).ok_or_else(invalid)?,
            jti,
            iat: claims.get("iat").and_then(Value::as_i64).unwrap_or(0),
            exp: claims
                .get("exp")
                .and_then(Value::as_i64)
                .ok_or_else(invalid)?,
        })
    }
}

/// The reply to a refresh token that may not be used.
fn refusal(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::Revoked | Verdict::Reused => ApiError::token_not_valid("Token is blacklisted"),
        _ => ApiError::token_not_valid("Token is invalid"),
    }
}

/// Ok when the token may be used now (without rotating it).
pub fn check(store: &Store, token: &Presented, now: i64, grace: i64) -> Result<(), ApiError> {
    let state = store.refresh_state(token.user_id, &token.jti)?;
    match state.verdict(token.user_id, token.iat, now, grace) {
        Verdict::Usable | Verdict::InGrace => Ok(()),
        refused => Err(refusal(refused)),
    }
}

fn issued(pair: &TokenPair, user_id: i64) -> Option<IssuedToken> {
    let claims = &pair.refresh_claims;
    Some(IssuedToken {
        jti: claims.get("jti")?.as_str()?.to_string(),
        user_id,
        expires_at: claims.get("exp")?.as_i64()?,
    })
}

/// Records a login's refresh token, so that it can be revoked by family.
/// When the database cannot take the write (a full disk), the login still
/// succeeds: such a token is judged like one latch did not issue (by the
/// blacklist and the user's cut-off), which still covers logout and resets.
pub async fn record_login(
    store: &Store,
    pair: &TokenPair,
    user_id: i64,
    now: i64,
) -> Result<(), ApiError> {
    let Some(token) = issued(pair, user_id) else {
        return Err(ApiError::Internal(
            "issued refresh token lacks jti or exp".into(),
        ));
    };
    match store
        .write(move |s| s.record_refresh_token(&token, now))
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::Unavailable(why)) => {
            tracing::warn!(user_id, error = %why, "could not record a login's refresh token; it can only be revoked by logout/all or a password change");
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Exchanges a refresh token for a new pair (rotation). A retired token
/// presented again after the grace window revokes every token of its login.
pub async fn rotate(
    store: &Store,
    tokens: &Tokens,
    presented: Presented,
    now: i64,
    grace: i64,
) -> Result<TokenPair, ApiError> {
    let pair = tokens.issue_pair(presented.user_id);
    let new = issued(&pair, presented.user_id)
        .ok_or_else(|| ApiError::Internal("issued refresh token lacks jti or exp".into()))?;
    let user_id = presented.user_id;
    let outcome = store
        .write(move |s| {
            s.rotate_refresh_token(
                &presented.jti,
                presented.iat,
                presented.exp,
                &new,
                now,
                grace,
            )
        })
        .await?;
    match outcome {
        Rotation::Rotated => Ok(pair),
        Rotation::Refused(Verdict::Reused) => {
            tracing::warn!(
                user_id,
                "a rotated refresh token was presented again after the grace window: revoked every token of that login"
            );
            Err(refusal(Verdict::Reused))
        }
        Rotation::Refused(verdict) => Err(refusal(verdict)),
    }
}

/// Blacklists the token (and the rest of its login). Harmless if repeated.
pub async fn blacklist(store: &Store, token: Presented, now: i64) -> Result<(), ApiError> {
    store
        .write(move |s| s.blacklist_token(&token.jti, token.exp, now))
        .await?;
    Ok(())
}

/// Revokes every refresh token of the user.
pub async fn logout_everywhere(store: &Store, user_id: i64, now: i64) -> Result<(), ApiError> {
    store
        .write(move |s| s.revoke_user_tokens(user_id, now))
        .await?;
    Ok(())
}
