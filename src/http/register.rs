//! `POST register/ {username, email, password}`: the original hand-written
//! view, with the validation Django's user model adds on top.

use serde_json::json;
use warp::http::StatusCode;

use super::input::{ViewField, view_field};
use super::{AppState, HandlerResult, POST, Request, Route, endpoint, reply};
use crate::error::ApiError;
use crate::store::{InsertUser, NewUser};
use crate::validate::{Email, Username};

pub fn routes() -> [Route; 1] {
    [endpoint("/api/auth/register", POST, register)]
}

const USERNAME_TAKEN: &str = "Username already exists.";
const EMAIL_TAKEN: &str = "Email already exists.";

async fn register(state: AppState, req: Request) -> HandlerResult {
    if let Some(limits) = &state.limits {
        limits.registration(state.client_ip(&req))?;
    }
    let data = req.data()?;
    let fields = ["username", "email", "password"].map(|name| view_field(&data, name));
    if fields.contains(&ViewField::Absent) {
        return Err(ApiError::message("All fields are required."));
    }
    let [username, email, password] = fields.map(|f| match f {
        ViewField::Text(text) => Some(text),
        _ => None,
    });
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::message(
            "Username, email and password must be strings.",
        ));
    };

    let username = Username::parse(&username).map_err(ApiError::Message)?;
    // The spec's order of errors: a taken username is reported before any
    // other problem. The INSERT below still decides races.
    if state.store.user_by_username(username.as_str())?.is_some() {
        return Err(ApiError::message(USERNAME_TAKEN));
    }
    let email = Email::parse(&email).map_err(ApiError::Message)?;
    if state.store.user_by_email_key(email.key())?.is_some() {
        return Err(ApiError::message(EMAIL_TAKEN));
    }
    state
        .password_policy
        .check(&password, username.as_str(), email.address())
        .map_err(ApiError::Message)?;

    let now = state.clock.now();
    let user = NewUser {
        username: username.into_string(),
        email: email.address().to_string(),
        email_key: email.key().to_string(),
        password_hash: state.hasher.hash(password).await?,
    };
    match state
        .store
        .write(move |s| s.insert_user(&user, now))
        .await?
    {
        InsertUser::Created(_) => reply(
            StatusCode::CREATED,
            json!({"message": "User registered successfully."}),
        ),
        InsertUser::UsernameTaken => Err(ApiError::message(USERNAME_TAKEN)),
        InsertUser::EmailTaken => Err(ApiError::message(EMAIL_TAKEN)),
    }
}
