//! `POST register/ {username, email, password}`: the original hand-written
//! view, with the validation Django's user model adds on top.

use serde_json::json;
use warp::http::StatusCode;

use super::input::{ViewField, view_field};
use super::{AppState, HandlerResult, POST, Request, Route, endpoint, reply};
use crate::accounts;
use crate::error::ApiError;

pub fn routes() -> [Route; 1] {
    [endpoint("/api/auth/register", POST, register)]
}

pub(super) const ALL_FIELDS_REQUIRED: &str = "All fields are required.";
pub(super) const NOT_STRINGS: &str = "Username, email and password must be strings.";
pub(super) const REGISTERED: &str = "User registered successfully.";

async fn register(state: AppState, req: Request) -> HandlerResult {
    if let Some(limits) = &state.limits {
        limits.registration(state.client_ip(&req))?;
    }
    let data = req.data()?;
    let fields = ["username", "email", "password"].map(|name| view_field(&data, name));
    if fields.contains(&ViewField::Absent) {
        return Err(ApiError::message(ALL_FIELDS_REQUIRED));
    }
    let [username, email, password] = fields.map(|f| match f {
        ViewField::Text(text) => Some(text),
        _ => None,
    });
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::message(NOT_STRINGS));
    };

    let now = state.clock.now();
    let account = (username.as_str(), email.as_str(), password);
    accounts::create(
        &state.store,
        &state.hasher,
        &state.password_policy,
        account,
        now,
    )
    .await?;
    reply(StatusCode::CREATED, json!({ "message": REGISTERED }))
}
