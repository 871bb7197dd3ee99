//! Login, token refresh and profile: simplejwt's `TokenObtainPairView`,
//! `TokenRefreshView` and a view behind `JWTAuthentication`.

use serde_json::json;
use warp::http::header;

use super::input::char_fields;
use super::{AppState, GET, HandlerResult, POST, Request, Route, endpoint, reply_no_store};
use crate::error::ApiError;
use crate::revocation::{self, Presented};
use crate::store::User;
use crate::tokens::{self, TokenType};
use crate::validate::normalize_username;

pub fn routes() -> [Route; 3] {
    [
        endpoint("/api/auth/login", POST, login),
        endpoint("/api/auth/token/refresh", POST, refresh),
        endpoint("/api/auth/profile", GET, profile),
    ]
}

/// `POST login/ {username, password}` -> `{"refresh", "access"}`.
async fn login(state: AppState, req: Request) -> HandlerResult {
    let [username, password] = char_fields(&req.data()?, ["username", "password"])?;
    // DRF trims the username field; the password is checked exactly as sent.
    let username = normalize_username(username.trim());
    // Past the limit, refused whether or not the password is right; an
    // unknown username is limited exactly like a real one.
    // A saturated hasher answers Busy before anything is reserved, so that
    // such a flood leaves no trace in the limiters.
    if state.hasher.is_saturated() {
        return Err(ApiError::Busy);
    }
    let attempt = match &state.limits {
        Some(limits) => Some(
            limits
                .login_attempt(state.client_ip(&req), &username)
                .await?,
        ),
        None => None,
    };
    let checked = check_credentials(&state, &username, &password).await;
    if let (Some(limits), Some(attempt)) = (&state.limits, attempt) {
        match &checked {
            Ok(None) => drop(attempt),
            Ok(Some(_)) | Err(_) => limits.login_not_failed(attempt).await,
        }
    }
    let Some((user, needs_rehash)) = checked? else {
        state.metrics.login_failures.inc();
        return Err(ApiError::no_active_account());
    };
    let pair = state.tokens.issue_pair(user.id);
    let now = state.clock.now();
    let hash = user.password_hash.clone();
    revocation::record_login(&state.store, &pair, hash, now, &state.metrics)
        .await
        .inspect_err(|err| {
            // The password or the user changed meanwhile: a failed login too.
            if matches!(err, ApiError::Unauthorized(_)) {
                state.metrics.login_failures.inc();
            }
        })?;
    // After the record, which is conditional on the hash it verified.
    if needs_rehash {
        upgrade_hash_later(&state, &user, password);
    }
    reply_no_store(json!({"refresh": pair.refresh, "access": pair.access}))
}

/// The active user these credentials belong to, if any, and whether its
/// hash wants upgrading. Every way of failing costs one password
/// verification, so the time taken does not tell unknown usernames,
/// inactive users and wrong passwords apart. (A user still on an imported
/// Django hash costs that hash's time until the first login replaces it:
/// about a latch hash's for Django's default PBKDF2, see BENCHMARKS.md.)
async fn check_credentials(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Option<(User, bool)>, ApiError> {
    let Some(user) = state.store.user_by_username(username).await? else {
        state.hasher.verify_dummy(password.to_string()).await?;
        return Ok(None);
    };
    let verified = state
        .hasher
        .verify(password.to_string(), user.password_hash.clone())
        .await?;
    if !verified.matches || !user.is_active {
        return Ok(None);
    }
    Ok(Some((user, verified.needs_rehash)))
}

/// Re-hashes a password stored with other parameters than the configured
/// ones. Runs after the login has been answered; a failure only means it is
/// tried again at the next login.
fn upgrade_hash_later(state: &AppState, user: &User, password: String) {
    let (state, id, old_hash) = (state.clone(), user.id, user.password_hash.clone());
    tokio::spawn(async move {
        let new_hash = match state.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(err) => {
                return tracing::debug!(user_id = id, error = %err, "password hash upgrade skipped");
            }
        };
        match state
            .store
            .upgrade_password_hash(id, old_hash, new_hash)
            .await
        {
            Ok(true) => tracing::info!(
                user_id = id,
                "upgraded password hash to the configured scrypt parameters"
            ),
            Ok(false) => {}
            Err(err) => tracing::warn!(user_id = id, error = %err, "password hash upgrade failed"),
        }
    });
}

/// `POST token/refresh/ {refresh}` -> `{"access"}`, or with rotation on
/// `{"access", "refresh"}` and the presented token retired.
async fn refresh(state: AppState, req: Request) -> HandlerResult {
    let [refresh] = char_fields(&req.data()?, ["refresh"])?;
    let presented = Presented::verify(&state.tokens, &refresh)?;
    let jwt = &state.config.jwt;
    let (now, grace) = (state.clock.now(), jwt.rotation_grace_secs as i64);
    if jwt.rotate_refresh_tokens {
        let pair = revocation::rotate(&state.store, &state.tokens, presented, now, grace).await?;
        return reply_no_store(json!({"access": pair.access, "refresh": pair.refresh}));
    }
    // A token outlives nothing: its user must still exist and be active, and
    // it must not be blacklisted or revoked.
    revocation::check(&state.store, &presented, now, grace).await?;
    let access = state.tokens.access_for_refresh(&presented.claims);
    reply_no_store(json!({ "access": access }))
}

/// `GET profile/` with `Authorization: Bearer <access>` -> `{"id", "username", "email"}`.
async fn profile(state: AppState, req: Request) -> HandlerResult {
    let user = authenticate(&state, &req).await?;
    reply_no_store(json!({"id": user.id, "username": user.username, "email": user.email}))
}

// simplejwt's words for the refusals of `authenticate` beyond the token's own.
pub(super) const BAD_AUTHORIZATION_HEADER: (&str, &str) = (
    "Authorization header must contain two space-delimited values",
    "bad_authorization_header",
);
pub(super) const NO_USER_ID: &str = "Token contained no recognizable user identification";
pub(super) const USER_NOT_FOUND: (&str, &str) = ("User not found", "user_not_found");
pub(super) const USER_INACTIVE: (&str, &str) = ("User is inactive", "user_inactive");

/// simplejwt's `JWTAuthentication`, step by step and in its words.
pub(super) async fn authenticate(state: &AppState, req: &Request) -> Result<User, ApiError> {
    let raw = req
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let parts: Vec<&[u8]> = raw
        .split(u8::is_ascii_whitespace)
        .filter(|p| !p.is_empty())
        .collect();
    // No header, or another scheme: this authenticator does not apply.
    if parts.first() != Some(&&b"Bearer"[..]) {
        return Err(ApiError::not_authenticated());
    }
    if parts.len() != 2 {
        let (detail, code) = BAD_AUTHORIZATION_HEADER;
        return Err(ApiError::authentication_failed(detail, code));
    }
    let token = std::str::from_utf8(parts[1])
        .map_err(|_| ApiError::access_token_not_valid("Token is invalid"))?;
    let claims = state
        .tokens
        .verify(token, TokenType::Access)
        .map_err(|e| ApiError::access_token_not_valid(e.message()))?;
    let id = tokens::user_id(&claims).ok_or_else(|| ApiError::token_not_valid(NO_USER_ID))?;
    let refused = |(detail, code)| Err(ApiError::authentication_failed(detail, code));
    match state.store.user_by_id(id).await? {
        None => refused(USER_NOT_FOUND),
        Some(user) if !user.is_active => refused(USER_INACTIVE),
        Some(user) => Ok(user),
    }
}
