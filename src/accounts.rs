//! Creating accounts and setting passwords: the rules that registration, the
//! password reset and the admin commands share, so that each lives once.

use crate::error::ApiError;
use crate::passwords::Hasher;
use crate::store::{InsertUser, NewUser, Store, User};
use crate::validate::{Email, PasswordPolicy, Username};

pub const USERNAME_TAKEN: &str = "Username already exists.";
pub const EMAIL_TAKEN: &str = "Email already exists.";

/// Creates an account after the checks registration makes, in the order the
/// API reports them (a taken username before anything else); the INSERT
/// still settles races. The new user's id.
pub async fn create(
    store: &Store,
    hasher: &Hasher,
    policy: &PasswordPolicy,
    (username, email, password): (&str, &str, String),
    now: i64,
) -> Result<i64, ApiError> {
    let username = Username::parse(username).map_err(ApiError::Message)?;
    if store.user_by_username(username.as_str()).await?.is_some() {
        return Err(ApiError::message(USERNAME_TAKEN));
    }
    let email = Email::parse(email).map_err(ApiError::Message)?;
    if store.user_by_email_key(email.key()).await?.is_some() {
        return Err(ApiError::message(EMAIL_TAKEN));
    }
    let password_hash =
        new_password_hash(hasher, policy, password, username.as_str(), email.address()).await?;
    let user = NewUser {
        username: username.into_string(),
        email: email.address().to_string(),
        email_key: email.key().to_string(),
        password_hash,
    };
    match store.insert_user(user, now).await? {
        InsertUser::Created(id) => Ok(id),
        InsertUser::UsernameTaken => Err(ApiError::message(USERNAME_TAKEN)),
        InsertUser::EmailTaken => Err(ApiError::message(EMAIL_TAKEN)),
    }
}

/// The hash of a new password for this user, once the password policy
/// (which compares it with the username and address) accepts it.
pub async fn new_password_hash(
    hasher: &Hasher,
    policy: &PasswordPolicy,
    password: String,
    username: &str,
    email: &str,
) -> Result<String, ApiError> {
    policy
        .check(&password, username, email)
        .map_err(ApiError::Message)?;
    Ok(hasher.hash(password).await?)
}

/// An administrator sets `user`'s password: the policy applies as to anyone,
/// and the user's sessions and reset links end as after a reset.
pub async fn set_password(
    store: &Store,
    hasher: &Hasher,
    policy: &PasswordPolicy,
    user: &User,
    password: String,
    now: i64,
) -> Result<(), ApiError> {
    let hash = new_password_hash(hasher, policy, password, &user.username, &user.email).await?;
    let id = user.id;
    if !store.set_password(id, hash, now).await? {
        return Err(ApiError::message("User not found"));
    }
    Ok(())
}
