use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::{TEST_SECRET, claims, now, sign, spawn_app};

const INVALID: &str = r#"{"detail":"Token is invalid","code":"token_not_valid"}"#;
const EXPIRED: &str = r#"{"detail":"Token is expired","code":"token_not_valid"}"#;
const WRONG_TYPE: &str = r#"{"detail":"Token has wrong type","code":"token_not_valid"}"#;

fn refresh_claims(user_id: serde_json::Value, exp: i64) -> serde_json::Value {
    json!({"token_type": "refresh", "exp": exp, "iat": now(), "jti": "0123456789abcdef0123456789abcdef", "user_id": user_id})
}

#[tokio::test]
async fn refresh_gives_a_working_access_token_and_only_that() {
    let app = spawn_app().await;
    let (_, refresh) = app.user_with_tokens("alice").await;
    let r = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["access"]
    );
    let access = body["access"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(
        (c["token_type"].as_str(), c["user_id"].as_str()),
        (Some("access"), Some("1"))
    );
    assert_ne!(c["jti"], claims(&refresh)["jti"]);
    assert_eq!(app.profile(access).await.status, 200);
}

#[tokio::test]
async fn refused_tokens_say_why_in_simplejwt_words() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("alice").await;
    let post = |token: String| {
        let app = &app;
        async move {
            app.post_json("/api/auth/token/refresh", json!({"refresh": token}))
                .await
        }
    };
    post("garbage".into()).await.assert(401, INVALID);
    post(format!("{refresh}x")).await.assert(401, INVALID);
    post(access).await.assert(401, WRONG_TYPE);
    post(sign(
        &refresh_claims(json!("1"), now() - 10),
        Algorithm::HS256,
    ))
    .await
    .assert(401, EXPIRED);
    // Signed with another algorithm (same key) or another key.
    post(sign(
        &refresh_claims(json!("1"), now() + 60),
        Algorithm::HS512,
    ))
    .await
    .assert(401, INVALID);
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &refresh_claims(json!("1"), now() + 60),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-entirely-0123456789"),
    )
    .unwrap();
    post(other_key).await.assert(401, INVALID);
    // alg=none, unsigned.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(refresh_claims(json!("1"), now() + 60).to_string())
    );
    post(none).await.assert(401, INVALID);
    let r = post("garbage".into()).await;
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    let _ = TEST_SECRET;
}

#[tokio::test]
async fn integer_user_id_is_accepted() {
    let app = spawn_app().await;
    app.user_with_tokens("alice").await;
    let token = sign(&refresh_claims(json!(1), now() + 60), Algorithm::HS256);
    let r = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn tokens_of_deleted_inactive_or_unknown_users_are_invalid() {
    let app = spawn_app().await;
    let (_, alice) = app.user_with_tokens("alice").await;
    let (_, bob) = app.user_with_tokens("bob").await;
    app.delete_user("alice").await;
    app.deactivate_user("bob").await;
    for token in [
        alice,
        bob,
        sign(&refresh_claims(json!("999"), now() + 60), Algorithm::HS256),
        sign(
            &refresh_claims(json!("not-a-number"), now() + 60),
            Algorithm::HS256,
        ),
    ] {
        app.post_json("/api/auth/token/refresh/", json!({"refresh": token}))
            .await
            .assert(401, INVALID);
    }
}

#[tokio::test]
async fn missing_blank_or_null_refresh_field() {
    let app = spawn_app().await;
    let path = "/api/auth/token/refresh/";
    app.post_json(path, json!({}))
        .await
        .assert(400, r#"{"refresh":["This field is required."]}"#);
    app.post_json(path, json!({"refresh": ""}))
        .await
        .assert(400, r#"{"refresh":["This field may not be blank."]}"#);
    app.post_json(path, json!({"refresh": null}))
        .await
        .assert(400, r#"{"refresh":["This field may not be null."]}"#);
}
