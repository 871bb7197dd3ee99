//! Forgotten passwords: `POST password/reset/ {email}` mails a link carrying
//! `uid` and `token`; `POST password/reset/confirm/?uid=..&token=.. {new_password}`
//! sets the new password. How tokens are made is in `crate::reset`.

use serde_json::json;
use warp::http::StatusCode;

use super::input::{ViewField, view_field};
use super::{AppState, HandlerResult, POST, Request, Route, endpoint, reply};
use crate::accounts;
use crate::error::ApiError;
use crate::reset::{LINK_PLACEHOLDER, decode_uid};
use crate::store::NewMail;
use crate::validate::email_lookup_key;

pub fn routes() -> [Route; 2] {
    [
        endpoint("/api/auth/password/reset", POST, request_reset),
        endpoint("/api/auth/password/reset/confirm", POST, confirm_reset),
    ]
}

// The `error` texts of the two views, also listed in the OpenAPI document.
pub(super) const EMAIL_REQUIRED: &str = "Email is required";
pub(super) const EMAIL_NOT_STRING: &str = "Email must be a string";
pub(super) const UNKNOWN_EMAIL: &str = "User with this email does not exist";
pub(super) const LINK_SENT: &str = "Password reset link sent";
pub(super) const MISSING_PARAMETERS: &str = "Missing parameters";
pub(super) const INVALID_UID: &str = "Invalid uid";
pub(super) const INVALID_TOKEN: &str = "Invalid or expired token";
pub(super) const PASSWORD_REQUIRED: &str = "New password is required";
pub(super) const PASSWORD_NOT_STRING: &str = "New password must be a string";
pub(super) const PASSWORD_RESET: &str = "Password has been reset";

async fn request_reset(state: AppState, req: Request) -> HandlerResult {
    if let Some(limits) = &state.limits {
        limits.reset_request(state.client_ip(&req))?;
    }
    let email = match view_field(&req.data()?, "email") {
        ViewField::Absent => return Err(ApiError::message(EMAIL_REQUIRED)),
        ViewField::NotText => return Err(ApiError::message(EMAIL_NOT_STRING)),
        ViewField::Text(email) => email,
    };
    let now = state.clock.now();
    let email_key = email_lookup_key(&email);
    let user = state
        .store
        .user_by_email_key(&email_key)
        .await?
        .filter(|u| u.is_active);
    let Some(user) = user else {
        if state.config.reset.reveal_unknown_email {
            return Err(ApiError::message(UNKNOWN_EMAIL));
        }
        return link_not_sent(&state, &email, now).await;
    };
    let cooled_down = state
        .limits
        .as_ref()
        .is_none_or(|l| l.reset_mail_allowed(&email_key));
    if !cooled_down {
        return link_not_sent(&state, &user.email, now).await;
    }

    let (mail, expires_at) = reset_mail(&state, &user.email, now);
    // The token and its mail are stored together, then the 200 is sent.
    let stored = state
        .store
        .create_reset_token(user.id, expires_at, mail, now)
        .await;
    if let Err(err) = stored {
        if let Some(limits) = &state.limits {
            limits.reset_mail_not_sent(&email_key);
        }
        return Err(err.into());
    }
    state.mail_queued.notify_one();
    link_sent()
}

fn link_sent() -> HandlerResult {
    reply(StatusCode::OK, json!({ "message": LINK_SENT }))
}

/// The answer for an address that gets no mail (unknown when it must not be
/// revealed, or within its cooldown): the same 200, after the same write as
/// queueing the mail, undone, so that neither the answer nor its timing
/// tells the cases apart.
async fn link_not_sent(state: &AppState, email: &str, now: i64) -> HandlerResult {
    let (mail, _) = reset_mail(state, email, now);
    state.store.reset_decoy_write(mail, now).await?;
    link_sent()
}

/// The reset mail to `recipient` (its link filled in at sending), and when
/// its token expires.
fn reset_mail(state: &AppState, recipient: &str, now: i64) -> (NewMail, i64) {
    let lifetime = state.config.reset.token_lifetime_secs as i64;
    let expires_at = now.saturating_add(lifetime);
    let mail = NewMail {
        recipient: recipient.to_string(),
        subject: "Password reset".into(),
        body: format!(
            "Click the link to reset your password: {LINK_PLACEHOLDER}\n\n\
             The link works once and expires in {} minutes. If you did not ask \
             to reset your password, ignore this email.\n",
            (lifetime + 59) / 60
        ),
        discard_after_ms: expires_at.saturating_mul(1000),
    };
    (mail, expires_at)
}

async fn confirm_reset(state: AppState, req: Request) -> HandlerResult {
    let data = req.data()?;
    let non_empty = |name| req.query_param(name).filter(|v| !v.is_empty());
    let (Some(uid), Some(token)) = (non_empty("uid"), non_empty("token")) else {
        return Err(ApiError::message(MISSING_PARAMETERS));
    };
    // A user deactivated after asking for the link cannot use it.
    let user = match decode_uid(&uid) {
        Some(id) => state.store.user_by_id(id).await?,
        None => None,
    }
    .filter(|u| u.is_active)
    .ok_or_else(|| ApiError::message(INVALID_UID))?;
    let now = state.clock.now();
    let live = state.store.live_reset_tokens(user.id, now).await?;
    let token_id = state
        .resets
        .find(&token, user.id, &live)
        .ok_or_else(|| ApiError::message(INVALID_TOKEN))?;

    let new_password = match view_field(&data, "new_password") {
        ViewField::Absent => return Err(ApiError::message(PASSWORD_REQUIRED)),
        ViewField::NotText => return Err(ApiError::message(PASSWORD_NOT_STRING)),
        ViewField::Text(password) => password,
    };
    let new_hash = accounts::new_password_hash(
        &state.hasher,
        &state.password_policy,
        new_password,
        &user.username,
        &user.email,
    )
    .await?;
    // Checked again inside the write: of two racing confirmations, one wins.
    let changed = state
        .store
        .reset_password(user.id, token_id, new_hash, now)
        .await?;
    if !changed {
        return Err(ApiError::message(INVALID_TOKEN));
    }
    reply(StatusCode::OK, json!({ "message": PASSWORD_RESET }))
}
