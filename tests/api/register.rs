use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with};

const CREATED: &str = r#"{"message":"User registered successfully."}"#;
const REQUIRED: &str = r#"{"error":"All fields are required."}"#;
const USERNAME_TAKEN: &str = r#"{"error":"Username already exists."}"#;
const EMAIL_TAKEN: &str = r#"{"error":"Email already exists."}"#;

#[tokio::test]
async fn register_then_log_in() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn password_is_stored_only_as_a_scrypt_phc_hash() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    let hash: String = app.scalar("SELECT password_hash FROM users").await;
    assert!(hash.starts_with("$scrypt$ln=4,r=8,p=1$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    let bytes = app.db.everything().await;
    assert!(
        bytes.windows(hash.len()).any(|w| w == hash.as_bytes()),
        "the rows were searched"
    );
    assert!(
        !bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes())
    );
}

#[tokio::test]
async fn any_missing_or_empty_field() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"email": "a@example.com", "password": PASSWORD}),
        json!({"username": "alice", "password": PASSWORD}),
        json!({"username": "alice", "email": "a@example.com"}),
        json!({"username": "", "email": "a@example.com", "password": PASSWORD}),
        json!({"username": "alice", "email": "", "password": PASSWORD}),
        json!({"username": "alice", "email": "a@example.com", "password": ""}),
        json!({"username": null, "email": "a@example.com", "password": PASSWORD}),
        json!({"username": "alice", "email": "a@example.com", "password": 0}),
    ] {
        app.post_json("/api/auth/register/", body)
            .await
            .assert(400, REQUIRED);
    }
    // Checked first: a missing field wins over a taken username.
    app.register("alice", "a@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    app.post_json(
        "/api/auth/register/",
        json!({"username": "alice", "email": "a@example.com"}),
    )
    .await
    .assert(400, REQUIRED);
}

#[tokio::test]
async fn taken_username_is_reported_before_other_problems() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    app.register("alice", "other@example.com", PASSWORD)
        .await
        .assert(400, USERNAME_TAKEN);
    app.register("alice", "not-an-email", "short")
        .await
        .assert(400, USERNAME_TAKEN);
    app.register("Alice", "alice2@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
}

#[tokio::test]
async fn fields_must_be_strings() {
    let app = spawn_app().await;
    for body in [
        json!({"username": 5, "email": "a@example.com", "password": PASSWORD}),
        json!({"username": "alice", "email": ["a@example.com"], "password": PASSWORD}),
        json!({"username": "alice", "email": "a@example.com", "password": true}),
        json!({"username": {"a": 1}, "email": "a@example.com", "password": PASSWORD}),
    ] {
        app.post_json("/api/auth/register/", body).await.assert(
            400,
            r#"{"error":"Username, email and password must be strings."}"#,
        );
    }
}

#[tokio::test]
async fn usernames_follow_djangos_rules() {
    let app = spawn_app().await;
    let invalid = r#"{"error":"Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."}"#;
    for (i, name) in [
        "has space",
        "semi;colon",
        "  ",
        "emoji🙂",
        "zero\u{200b}width",
        "rtl\u{202e}evil",
        "a/b",
    ]
    .iter()
    .enumerate()
    {
        app.register(name, &format!("u{i}@example.com"), PASSWORD)
            .await
            .assert(400, invalid);
    }
    app.register(&"x".repeat(151), "long@example.com", PASSWORD)
        .await
        .assert(
            400,
            r#"{"error":"Ensure this value has at most 150 characters (it has 151)."}"#,
        );
    for (i, name) in [
        "user.name+tag@host-x_1",
        "Ünïcødé",
        "用户",
        &"y".repeat(150),
    ]
    .iter()
    .enumerate()
    {
        app.register(name, &format!("ok{i}@example.com"), PASSWORD)
            .await
            .assert(201, CREATED);
    }
}

#[tokio::test]
async fn usernames_are_nfkc_normalized_before_storing_and_comparing() {
    let app = spawn_app().await;
    // Full-width "ｂｏｂ" is stored as "bob"...
    app.register("ｂｏｂ", "bob@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    // ...so plain "bob" is taken, and both spellings log in.
    app.register("bob", "bob2@example.com", PASSWORD)
        .await
        .assert(400, USERNAME_TAKEN);
    let access = app.login("bob", PASSWORD).await.json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.profile(&access).await.json()["username"], "bob");
    assert_eq!(app.login("ｂｏｂ", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn emails_are_validated_and_unique_case_insensitively() {
    let app = spawn_app().await;
    for (i, email) in [
        "plain",
        "a@",
        "@example.com",
        "a b@example.com",
        "a@example",
        "Name <a@example.com>",
    ]
    .iter()
    .enumerate()
    {
        app.register(&format!("u{i}"), email, PASSWORD)
            .await
            .assert(400, r#"{"error":"Enter a valid email address."}"#);
    }
    app.register("alice", "Alice@Example.com", PASSWORD)
        .await
        .assert(201, CREATED);
    app.register("alice2", "alice@example.COM", PASSWORD)
        .await
        .assert(400, EMAIL_TAKEN);
    app.register("alice3", "ALICE@EXAMPLE.COM", PASSWORD)
        .await
        .assert(400, EMAIL_TAKEN);
}

#[tokio::test]
async fn short_passwords_are_refused_and_the_minimum_is_configurable() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", "1234567")
        .await
        .assert(
            400,
            r#"{"error":"This password is too short. It must contain at least 8 characters."}"#,
        );
    app.register("alice", "alice@example.com", "12345678")
        .await
        .assert(201, CREATED);

    let app = spawn_app_with(|c| c.password.min_length = 12).await;
    app.register("alice", "alice@example.com", "12345678901")
        .await
        .assert(
            400,
            r#"{"error":"This password is too short. It must contain at least 12 characters."}"#,
        );
}

#[tokio::test]
async fn passwords_with_nul_are_refused_since_login_would_refuse_them() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", "long-enough\u{0}password")
        .await
        .assert(400, r#"{"error":"Null characters are not allowed."}"#);
}

#[tokio::test]
async fn a_refused_registration_stores_nothing() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", "short").await;
    app.register("alice", "bad-email", PASSWORD).await;
    let users: i64 = app.scalar("SELECT COUNT(*) FROM users").await;
    assert_eq!(users, 0);
    app.register("alice", "alice@example.com", PASSWORD)
        .await
        .assert(201, CREATED);
}

#[tokio::test]
async fn form_encoded_registration() {
    let app = spawn_app().await;
    let form = format!("username=alice&email=alice%40example.com&password={PASSWORD}");
    app.post_raw(
        "/api/auth/register",
        Some("application/x-www-form-urlencoded"),
        form,
    )
    .await
    .assert(201, CREATED);
}

#[tokio::test]
async fn twenty_simultaneous_registrations_of_one_username() {
    let app = spawn_app().await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            app.register("racer", &format!("racer{i}@example.com"), PASSWORD)
                .await
        }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let created = responses.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one wins");
    for r in responses.iter().filter(|r| r.status != 201) {
        r.assert(400, USERNAME_TAKEN);
    }
    let users: i64 = app.scalar("SELECT COUNT(*) FROM users").await;
    assert_eq!(users, 1);
}

#[tokio::test]
async fn simultaneous_registrations_of_one_email() {
    let app = spawn_app().await;
    let attempts = (0..10).map(|i| {
        let app = &app;
        async move {
            app.register(&format!("user{i}"), "same@example.com", PASSWORD)
                .await
        }
    });
    let responses = futures_util::future::join_all(attempts).await;
    assert_eq!(responses.iter().filter(|r| r.status == 201).count(), 1);
    for r in responses.iter().filter(|r| r.status != 201) {
        r.assert(400, EMAIL_TAKEN);
    }
}
