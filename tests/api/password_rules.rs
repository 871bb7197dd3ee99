//! The password rules (`[password]`) at both places a password is chosen:
//! registration and reset confirmation. The rules themselves are checked
//! against Django in `src/validate/password.rs`.

use std::time::Duration;

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

const CREATED: &str = r#"{"message":"User registered successfully."}"#;
const DONE: &str = r#"{"message":"Password has been reset"}"#;
const TOO_LONG: &str =
    r#"{"error":"This password is too long. It must contain at most 4096 characters."}"#;
const SIMILAR_USERNAME: &str = r#"{"error":"The password is too similar to the username."}"#;
const SIMILAR_EMAIL: &str = r#"{"error":"The password is too similar to the email address."}"#;
const COMMON: &str = r#"{"error":"This password is too common."}"#;
const NUMERIC: &str = r#"{"error":"This password is entirely numeric."}"#;

/// Registers `username` with [`PASSWORD`] and returns the (uid, token) of a
/// reset link mailed to `email`.
async fn reset_link(app: &TestApp, username: &str, email: &str) -> (String, String) {
    app.register(username, email, PASSWORD)
        .await
        .assert(201, CREATED);
    let r = app.request_reset(email).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mails = app.smtp.wait_for_mail(1, Duration::from_secs(5)).await;
    mails.last().unwrap().reset_params()
}

#[tokio::test]
async fn maximum_length_at_register_and_reset_confirm() {
    let app = spawn_app().await;
    let too_long = "é".repeat(4097);
    let longest = "é".repeat(4096);
    app.register("alice", "alice@example.com", &too_long)
        .await
        .assert(400, TOO_LONG);
    app.register("bob", "bob@example.com", &longest)
        .await
        .assert(201, CREATED);
    assert_eq!(app.login("bob", &longest).await.status, 200);

    let (uid, token) = reset_link(&app, "alice", "alice@example.com").await;
    app.confirm_reset(&uid, &token, &too_long)
        .await
        .assert(400, TOO_LONG);
    // A refused password leaves the link usable.
    app.confirm_reset(&uid, &token, &longest)
        .await
        .assert(200, DONE);
    assert_eq!(app.login("alice", &longest).await.status, 200);
}

#[tokio::test]
async fn maximum_length_is_configurable() {
    let app = spawn_app_with(|c| {
        c.password.min_length = 1;
        c.password.max_length = 1;
    })
    .await;
    app.register("alice", "alice@example.com", "ab")
        .await
        .assert(
            400,
            r#"{"error":"This password is too long. It must contain at most 1 character."}"#,
        );
    app.register("alice", "alice@example.com", "€")
        .await
        .assert(201, CREATED);
}

#[tokio::test]
async fn similar_passwords_at_register_and_reset_confirm() {
    let app = spawn_app_with(|c| c.password.reject_similar = true).await;
    app.register("alice", "alice@example.com", "alice123")
        .await
        .assert(400, SIMILAR_USERNAME);
    app.register("carol", "john.smith@example.com", "smith2024")
        .await
        .assert(400, SIMILAR_EMAIL);

    // At reset, against the account's stored username and email.
    let (uid, token) = reset_link(&app, "carol", "john.smith@example.com").await;
    app.confirm_reset(&uid, &token, "CAROL-123")
        .await
        .assert(400, SIMILAR_USERNAME);
    app.confirm_reset(&uid, &token, "examplecom")
        .await
        .assert(400, SIMILAR_EMAIL);
    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(200, DONE);
}

#[tokio::test]
async fn common_passwords_at_register_and_reset_confirm() {
    let app = spawn_app_with(|c| c.password.reject_common = true).await;
    // Compared as Django does: lower-cased, surrounding spaces stripped.
    for common in [" PASSWORD ", "p@ssw0rd", "ILoveYou"] {
        app.register("alice", "alice@example.com", common)
            .await
            .assert(400, COMMON);
    }

    let (uid, token) = reset_link(&app, "bob", "bob@example.com").await;
    app.confirm_reset(&uid, &token, "Password1")
        .await
        .assert(400, COMMON);
    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(200, DONE);
}

#[tokio::test]
async fn numeric_passwords_at_register_and_reset_confirm() {
    let app = spawn_app_with(|c| c.password.reject_numeric = true).await;
    for numeric in ["98765432109", "١٢٣٤٥٦٧٨"] {
        app.register("alice", "alice@example.com", numeric)
            .await
            .assert(400, NUMERIC);
    }
    app.register("alice", "alice@example.com", "2468-1357")
        .await
        .assert(201, CREATED);

    let (uid, token) = reset_link(&app, "bob", "bob@example.com").await;
    app.confirm_reset(&uid, &token, "24681357")
        .await
        .assert(400, NUMERIC);
    app.confirm_reset(&uid, &token, "2468-1357")
        .await
        .assert(200, DONE);
}

#[tokio::test]
async fn first_failure_in_djangos_order() {
    let app = spawn_app_with(|c| {
        c.password.reject_similar = true;
        c.password.reject_common = true;
        c.password.reject_numeric = true;
    })
    .await;
    let too_short =
        r#"{"error":"This password is too short. It must contain at least 8 characters."}"#;
    for (username, password, error) in [
        ("12345678", "12345678", SIMILAR_USERNAME),
        ("alice", "1234", too_short),
        ("alice", "87654321", COMMON),
        ("alice", "24681357", NUMERIC),
    ] {
        app.register(username, "alice@example.com", password)
            .await
            .assert(400, error);
    }
}

#[tokio::test]
async fn rules_are_off_by_default() {
    let app = spawn_app().await;
    // Similar to the username, common and entirely numeric: all accepted.
    app.register("alice", "alice@example.com", "alice123")
        .await
        .assert(201, CREATED);
    app.register("bob", "bob@example.com", "12345678")
        .await
        .assert(201, CREATED);
    let (uid, token) = reset_link(&app, "carol", "carol@example.com").await;
    app.confirm_reset(&uid, &token, "password")
        .await
        .assert(200, DONE);
    assert_eq!(app.login("carol", "password").await.status, 200);
}
