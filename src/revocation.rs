//! The lifecycle of refresh tokens after they are signed: recorded at login,
//! judged when presented (blacklist, logout, password change, rotation),
//! rotated, blacklisted, revoked for a whole account. The rows are the
//! store's (`store/refresh_tokens.rs`); the rules and their answers are here.
//! Access tokens are not looked up: they die by their short lifetime.

use serde_json::Value;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{IssuedToken, Rotation, Store, StoreError, Verdict};
use crate::tokens::{self, Claims, TokenPair, TokenType, Tokens};

/// A verified refresh token, with the parts revocation looks at.
#[derive(Debug, Clone)]
pub struct Presented {
    pub token: IssuedToken,
    pub claims: Claims,
}

impl Presented {
    /// Verifies `raw` as a refresh token, in simplejwt's words when it is not.
    pub fn verify(tokens: &Tokens, raw: &str) -> Result<Presented, ApiError> {
        let claims = tokens
            .verify(raw.trim(), TokenType::Refresh)
            .map_err(|e| ApiError::token_not_valid(e.message()))?;
        Presented::from_claims(claims)
    }

    /// From claims `Tokens::verify` accepted (so `exp` and `jti` exist).
    pub fn from_claims(claims: Claims) -> Result<Presented, ApiError> {
        let invalid = || ApiError::token_not_valid("Token is invalid");
        let jti = match claims.get("jti") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => return Err(invalid()),
        };
        let token = IssuedToken {
            jti,
            user_id: tokens::user_id(&claims).ok_or_else(invalid)?,
            issued_at: claims.get("iat").and_then(Value::as_i64).unwrap_or(0),
            expires_at: claims
                .get("exp")
                .and_then(Value::as_i64)
                .ok_or_else(invalid)?,
        };
        Ok(Presented { token, claims })
    }
}

/// simplejwt's word for a token that was blacklisted or revoked.
pub const BLACKLISTED: &str = "Token is blacklisted";

/// The reply to a refresh token that may not be used.
fn refusal(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::Revoked | Verdict::Reused => ApiError::token_not_valid(BLACKLISTED),
        _ => ApiError::token_not_valid("Token is invalid"),
    }
}

fn reuse_detected(user_id: i64) {
    tracing::warn!(
        user_id,
        "a rotated refresh token was presented again after the grace window: revoked every token of that login"
    );
}

/// Ok when the token may be used now (without rotating it). A retired token
/// presented after the grace window is a replay wherever it is presented:
/// its login is revoked here too.
pub async fn check(
    store: &Store,
    presented: &Presented,
    now: i64,
    grace: i64,
) -> Result<(), ApiError> {
    let token = &presented.token;
    let state = store.refresh_state(token.user_id, &token.jti).await?;
    match state.verdict(token.user_id, token.issued_at, now, grace) {
        Verdict::Usable | Verdict::InGrace => Ok(()),
        Verdict::Reused => {
            let jti = token.jti.clone();
            store.revoke_family_of(token.user_id, jti, now).await?;
            reuse_detected(token.user_id);
            Err(refusal(Verdict::Reused))
        }
        refused => Err(refusal(refused)),
    }
}

/// The refresh token of `pair`, as the store records it.
fn issued(pair: &TokenPair) -> Result<IssuedToken, ApiError> {
    Presented::from_claims(pair.refresh_claims.clone())
        .map(|p| p.token)
        .map_err(|_| ApiError::Internal("an issued refresh token lacks its claims".into()))
}

/// Records a login's refresh token, so that it can be revoked by family.
/// Refused (the login fails) when the password hash it verified is no longer
/// the user's, or the user was deactivated meanwhile. When the database
/// cannot take the write (a full disk), the login still succeeds: such a
/// token is judged like one latch did not issue (by the blacklist and the
/// user's cut-off), which still covers logout/all and password resets; that
/// case is counted in `metrics`.
pub async fn record_login(
    store: &Store,
    pair: &TokenPair,
    verified_hash: String,
    now: i64,
    metrics: &Metrics,
) -> Result<(), ApiError> {
    let token = issued(pair)?;
    let user_id = token.user_id;
    match store.record_login_token(token, verified_hash, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::no_active_account()),
        Err(StoreError::Unavailable(why)) => {
            metrics.db_unavailable.inc();
            tracing::warn!(user_id, error = %why, "could not record a login's refresh token; it can only be revoked by logout/all or a password change");
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

/// Exchanges a refresh token for a new pair (rotation). Within the grace
/// window a token already exchanged gets the same successor again; after it,
/// presenting it revokes every token of its login.
pub async fn rotate(
    store: &Store,
    tokens: &Tokens,
    presented: Presented,
    now: i64,
    grace: i64,
) -> Result<TokenPair, ApiError> {
    let pair = tokens.issue_pair(presented.token.user_id);
    let new = issued(&pair)?;
    let (user_id, new_jti) = (new.user_id, new.jti.clone());
    let outcome = store
        .rotate_refresh_token(presented.token, new, now, grace)
        .await?;
    match outcome {
        Rotation::Rotated(token) if token.jti == new_jti => Ok(pair),
        Rotation::Rotated(successor) => Ok(tokens.pair_for(
            successor.user_id,
            &successor.jti,
            successor.issued_at,
            successor.expires_at,
        )),
        Rotation::Refused(Verdict::Reused) => {
            reuse_detected(user_id);
            Err(refusal(Verdict::Reused))
        }
        Rotation::Refused(verdict) => Err(refusal(verdict)),
    }
}

/// Blacklists the token (and the rest of its login). Repeating it writes
/// nothing: only the first call takes the database's writer.
pub async fn blacklist(store: &Store, presented: Presented, now: i64) -> Result<(), ApiError> {
    let token = presented.token;
    let state = store.refresh_state(token.user_id, &token.jti).await?;
    let done = state.blacklisted && state.row.as_ref().is_none_or(|r| r.revoked_at.is_some());
    if !done {
        store
            .blacklist_token(token.user_id, token.jti, token.expires_at, now)
            .await?;
    }
    Ok(())
}

/// Revokes every refresh token of the user.
pub async fn logout_everywhere(store: &Store, user_id: i64, now: i64) -> Result<(), ApiError> {
    store.revoke_user_tokens(user_id, now).await?;
    Ok(())
}
