//! Forgotten passwords: `POST password/reset/ {email}` mails a link carrying
//! `uid` and `token`; `POST password/reset/confirm/?uid=..&token=.. {new_password}`
//! sets the new password.
//!
//! The token is 256 random bits. Only its SHA-256 digest is stored; it works
//! once, expires, and dies with any password change. `uid` is Django's
//! `urlsafe_base64_encode` of the decimal user id (user 1 is `MQ`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use warp::Filter as _;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::input::{ViewField, view_field};
use super::{AppState, HandlerResult, POST, Request, api_path, endpoint, reply};
use crate::error::ApiError;
use crate::store::NewMail;
use crate::tokens::unix_now;
use crate::validate::{check_new_password, email_lookup_key};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    endpoint(api_path(&["password", "reset"]), POST, state, request_reset)
        .or(endpoint(
            api_path(&["password", "reset", "confirm"]),
            POST,
            state,
            confirm_reset,
        ))
        .unify()
        .boxed()
}

const INVALID_TOKEN: &str = "Invalid or expired token";

async fn request_reset(state: AppState, req: Request) -> HandlerResult {
    let email = match view_field(&req.data()?, "email") {
        ViewField::Absent => return Err(ApiError::message("Email is required")),
        ViewField::NotText => return Err(ApiError::message("Email must be a string")),
        ViewField::Text(email) => email,
    };
    let user = state
        .store
        .user_by_email_key(&email_lookup_key(&email))?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::message("User with this email does not exist"))?;

    let token = new_token();
    let now = unix_now();
    let lifetime = state.config.reset.token_lifetime_secs as i64;
    let expires_at = now.saturating_add(lifetime);
    let link = reset_link(&state.config.reset.url, &encode_uid(user.id), &token);
    let mail = NewMail {
        recipient: user.email.clone(),
        subject: "Password reset".into(),
        body: format!(
            "Click the link to reset your password: {link}\n\n\
             The link works once and expires in {} minutes. If you did not ask \
             to reset your password, ignore this email.\n",
            (lifetime + 59) / 60
        ),
        discard_after_ms: expires_at.saturating_mul(1000),
    };
    let digest = digest(&token);
    // The token and its mail are stored together, then the 200 is sent.
    state
        .store
        .write(move |s| s.create_reset_token(user.id, &digest, expires_at, &mail, now))
        .await?;
    state.mail_queued.notify_one();
    reply(
        StatusCode::OK,
        json!({"message": "Password reset link sent"}),
    )
}

async fn confirm_reset(state: AppState, req: Request) -> HandlerResult {
    let non_empty = |name| req.query_param(name).filter(|v| !v.is_empty());
    let (Some(uid), Some(token)) = (non_empty("uid"), non_empty("token")) else {
        return Err(ApiError::message("Missing parameters"));
    };
    let user = match decode_uid(&uid) {
        Some(id) => state.store.user_by_id(id)?,
        None => None,
    }
    .ok_or_else(|| ApiError::message("Invalid uid"))?;
    let digest = digest(&token);
    let now = unix_now();
    if !state.store.reset_token_is_valid(user.id, &digest, now)? {
        return Err(ApiError::message(INVALID_TOKEN));
    }

    let new_password = match view_field(&req.data()?, "new_password") {
        ViewField::Absent => return Err(ApiError::message("New password is required")),
        ViewField::NotText => return Err(ApiError::message("New password must be a string")),
        ViewField::Text(password) => password,
    };
    check_new_password(&new_password, state.config.password.min_length)
        .map_err(ApiError::Message)?;
    let new_hash = state.hasher.hash(new_password).await?;
    // Checked again inside the write: of two racing confirmations, one wins.
    let changed = state
        .store
        .write(move |s| s.reset_password(user.id, &digest, &new_hash, now))
        .await?;
    if !changed {
        return Err(ApiError::message(INVALID_TOKEN));
    }
    reply(
        StatusCode::OK,
        json!({"message": "Password has been reset"}),
    )
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Django's `urlsafe_base64_encode(force_bytes(pk))`.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The inverse; tolerant of padding, as Django's decoder is.
pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn reset_link(base: &str, uid: &str, token: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}uid={uid}&token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_djangos_encoding() {
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(encode_uid(42), "NDI");
        assert_eq!(decode_uid("MQ"), Some(1));
        assert_eq!(decode_uid("MQ=="), Some(1));
        assert_eq!(decode_uid("NDI"), Some(42));
        for bad in [
            "",
            "!!",
            "YQ",
            "LTE",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw",
        ] {
            assert_eq!(decode_uid(bad), None, "{bad}"); // YQ = "a", LTE = "-1", then overflow
        }
    }

    #[test]
    fn tokens_are_256_bit_url_safe_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
    }

    #[test]
    fn link_appends_to_any_base() {
        assert_eq!(
            reset_link("http://x/reset", "MQ", "t"),
            "http://x/reset?uid=MQ&token=t"
        );
        assert_eq!(
            reset_link("http://x/r?lang=uk", "MQ", "t"),
            "http://x/r?lang=uk&uid=MQ&token=t"
        );
    }
}
