use serde_json::json;

use crate::helpers::{PASSWORD, claims, now, quote, spawn_app, spawn_app_with};

const NO_ACCOUNT: &str = r#"{"detail":"No active account found with the given credentials"}"#;

#[tokio::test]
async fn login_returns_exactly_a_refresh_and_an_access_token() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;

    let r = app.login("alice", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["refresh", "access"]);

    let access = claims(body["access"].as_str().unwrap());
    let refresh = claims(body["refresh"].as_str().unwrap());
    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["user_id"], "1");
    let (iat, exp) = (
        access["iat"].as_i64().unwrap(),
        access["exp"].as_i64().unwrap(),
    );
    assert!((iat - now()).abs() <= 2);
    assert_eq!(exp - iat, 300);
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        86400
    );
}

#[tokio::test]
async fn lifetimes_are_configurable() {
    let app = spawn_app_with(|c| {
        c.jwt.access_token_lifetime_secs = 60;
        c.jwt.refresh_token_lifetime_secs = 120;
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let body = app.login("alice", PASSWORD).await.json();
    let access = claims(body["access"].as_str().unwrap());
    let refresh = claims(body["refresh"].as_str().unwrap());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        60
    );
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        120
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_inactive_user_look_the_same() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.register("bob", "bob@example.com", PASSWORD).await;
    app.deactivate_user("bob").await;

    for (user, password) in [
        ("alice", "wrong-password"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
    ] {
        let r = app.login(user, password).await;
        r.assert(401, NO_ACCOUNT);
        assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));
        assert_eq!(
            r.header("cache-control"),
            None,
            "no tokens, nothing to protect"
        );
    }
}

#[tokio::test]
async fn usernames_are_case_sensitive() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.login("Alice", PASSWORD).await.assert(401, NO_ACCOUNT);
    app.login("ALICE", PASSWORD).await.assert(401, NO_ACCOUNT);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn missing_blank_and_null_fields_are_drf_field_errors() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({}),
            r#"{"username":["This field is required."],"password":["This field is required."]}"#,
        ),
        (
            json!({"username": "a"}),
            r#"{"password":["This field is required."]}"#,
        ),
        (
            json!({"password": "a"}),
            r#"{"username":["This field is required."]}"#,
        ),
        (
            json!({"username": "", "password": "x"}),
            r#"{"username":["This field may not be blank."]}"#,
        ),
        (
            json!({"username": "   ", "password": "x"}),
            r#"{"username":["This field may not be blank."]}"#,
        ),
        (
            json!({"username": null, "password": null}),
            r#"{"username":["This field may not be null."],"password":["This field may not be null."]}"#,
        ),
        (
            json!({"username": ["a"], "password": {"b": 1}}),
            r#"{"username":["Not a valid string."],"password":["Not a valid string."]}"#,
        ),
        (
            json!({"username": true, "password": "x"}),
            r#"{"username":["Not a valid string."]}"#,
        ),
    ];
    for (body, expected) in cases {
        app.post_json("/api/auth/login/", body.clone())
            .await
            .assert(400, expected);
    }
}

#[tokio::test]
async fn form_encoded_login_and_surrounding_whitespace_in_the_username() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let form = format!("username=alice&password={PASSWORD}");
    let r = app
        .post_raw(
            "/api/auth/login/",
            Some("application/x-www-form-urlencoded"),
            form,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // DRF's CharField trims the username.
    assert_eq!(app.login("  alice ", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn numeric_username_is_taken_as_text_like_drf() {
    let app = spawn_app().await;
    app.register("12345", "n@example.com", PASSWORD).await;
    let r = app
        .post_json(
            "/api/auth/login/",
            json!({"username": 12345, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn both_paths_with_and_without_trailing_slash() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    for path in ["/api/auth/login/", "/api/auth/login"] {
        let r = app
            .post_json(path, json!({"username": "alice", "password": PASSWORD}))
            .await;
        assert_eq!(r.status, 200, "{path}");
    }
}

#[tokio::test]
async fn weaker_hash_is_upgraded_on_login() {
    // Register under cheap parameters, then restart with stronger ones.
    let mut app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let stored = async |app: &crate::helpers::TestApp| -> String {
        app.scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .await
    };
    assert!(stored(&app).await.starts_with("$scrypt$ln=4,r=8,p=1$"));
    app.restart_with(|c| c.password.scrypt_log_n = 6).await;

    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !stored(&app).await.starts_with("$scrypt$ln=6,r=8,p=1$") {
        assert!(
            std::time::Instant::now() < deadline,
            "hash was not upgraded: {}",
            stored(&app).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The upgraded hash still checks the same password, and only that one.
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
    app.login("alice", "wrong-password")
        .await
        .assert(401, NO_ACCOUNT);
}

#[tokio::test]
async fn imported_django_hashes_log_in_and_are_replaced_by_scrypt() {
    // Made by Django 5.2's make_password for PASSWORD (PBKDF2 with 1000
    // iterations, argon2id with m=64, t=1, p=1): see src/passwords/django.rs.
    let imported = [
        (
            "alice",
            "pbkdf2_sha256$1000$importedalicesalt$Fa/veIosyyMdiIjA845P6sCcj7Q4anLZ8Pp6Yn1kw1o=",
        ),
        (
            "bob",
            "argon2$argon2id$v=19$m=64,t=1,p=1$aW1wb3J0ZWRib2JzYWx0MDAw$4P6839a7zE/vh/T12kOTzXGaBweZpl4aPp+yH69kQRE",
        ),
        ("carol", "!vgbjUxSRdVBFbj4ZVX9TAIp6BmFXY6KXGNXYMosN"),
    ];
    let app = spawn_app().await;
    let stored = async |user: &str| -> String {
        app.scalar(&format!(
            "SELECT password_hash FROM users WHERE username = {}",
            quote(user)
        ))
        .await
    };
    for (user, hash) in imported {
        app.register(user, &format!("{user}@example.com"), PASSWORD)
            .await;
        app.execute(&format!(
            "UPDATE users SET password_hash = {} WHERE username = {}",
            quote(hash),
            quote(user)
        ))
        .await;
        app.login(user, "wrong-password")
            .await
            .assert(401, NO_ACCOUNT);
    }
    // Django's unusable password matches nothing, not even the right one.
    app.login("carol", PASSWORD).await.assert(401, NO_ACCOUNT);
    for user in ["alice", "bob"] {
        assert_eq!(app.login(user, PASSWORD).await.status, 200, "{user}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !stored(user).await.starts_with("$scrypt$ln=4,r=8,p=1$") {
            assert!(
                std::time::Instant::now() < deadline,
                "{user}'s Django hash was not replaced: {}",
                stored(user).await
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(app.login(user, PASSWORD).await.status, 200, "{user}");
        app.login(user, "wrong-password")
            .await
            .assert(401, NO_ACCOUNT);
    }
}

#[tokio::test]
async fn unknown_user_costs_a_full_hash_like_a_wrong_password() {
    // With expensive hashing, an unknown user must not answer markedly faster
    // than a wrong password (a dummy hash is verified). The margin is wide:
    // this checks that the work happens, not how fast it is.
    let app = spawn_app_with(|c| {
        c.password.scrypt_log_n = 12;
        c.password.scrypt_p = 4;
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let time = |user: &'static str| {
        let app = &app;
        async move {
            let mut samples = Vec::new();
            for _ in 0..5 {
                let start = std::time::Instant::now();
                assert_eq!(app.login(user, "wrong-password").await.status, 401);
                samples.push(start.elapsed());
            }
            samples.sort();
            samples[2]
        }
    };
    let (known, unknown) = (time("alice").await, time("nobody").await);
    assert!(
        unknown * 3 > known,
        "unknown user {unknown:?} vs wrong password {known:?}"
    );
}
