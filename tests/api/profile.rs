use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::{now, sign, spawn_app};

const NOT_PROVIDED: &str = r#"{"detail":"Authentication credentials were not provided."}"#;
const TWO_VALUES: &str = r#"{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}"#;

fn not_valid(message: &str) -> String {
    format!(
        r#"{{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{{"token_class":"AccessToken","token_type":"access","message":"{message}"}}]}}"#
    )
}

#[tokio::test]
async fn profile_shows_exactly_id_username_email() {
    let app = spawn_app().await;
    app.register("bob", "bob@example.com", "password-1").await;
    app.register("Alice", "Alice.Smith@EXAMPLE.Com", "password-1")
        .await;
    let access = app.login("Alice", "password-1").await.json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.profile(&access).await;
    // The domain part is stored lower-cased, as Django's normalize_email does.
    r.assert(
        200,
        r#"{"id":2,"username":"Alice","email":"Alice.Smith@example.com"}"#,
    );
    let head = app
        .client
        .head(app.url("/api/auth/profile/"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn missing_credentials_and_other_schemes() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("alice").await;
    for header in [
        None,
        Some(""),
        Some("Basic YWxpY2U6cHc="),
        Some(&*format!("bearer {access}")),
        Some("Token abc"),
    ] {
        let r = app.get("/api/auth/profile/", header).await;
        r.assert(401, NOT_PROVIDED);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="api""#),
            "{header:?}"
        );
    }
}

#[tokio::test]
async fn malformed_bearer_headers() {
    let app = spawn_app().await;
    for header in ["Bearer", "Bearer a b", "Bearer  a  b  c"] {
        let r = app.get("/api/auth/profile/", Some(header)).await;
        r.assert(401, TWO_VALUES);
        assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));
    }
}

#[tokio::test]
async fn bad_expired_and_refresh_tokens() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("alice").await;
    let bearer = |t: &str| format!("Bearer {t}");
    app.get("/api/auth/profile/", Some(&bearer("garbage")))
        .await
        .assert(401, &not_valid("Token is invalid"));
    app.get("/api/auth/profile/", Some(&bearer(&format!("{access}x"))))
        .await
        .assert(401, &not_valid("Token is invalid"));
    app.get("/api/auth/profile/", Some(&bearer(&refresh)))
        .await
        .assert(401, &not_valid("Token has wrong type"));
    let expired = sign(
        &json!({"token_type": "access", "exp": now() - 1, "iat": now() - 301, "jti": "ab", "user_id": "1"}),
        Algorithm::HS256,
    );
    let r = app.get("/api/auth/profile/", Some(&bearer(&expired))).await;
    r.assert(401, &not_valid("Token is expired"));
    assert_eq!(r.header("www-authenticate"), Some(r#"Bearer realm="api""#));
}

#[tokio::test]
async fn valid_token_of_a_deleted_or_inactive_user() {
    let app = spawn_app().await;
    let (alice, _) = app.user_with_tokens("alice").await;
    let (bob, _) = app.user_with_tokens("bob").await;
    app.delete_user("alice").await;
    app.deactivate_user("bob").await;
    app.profile(&alice).await.assert(
        401,
        r#"{"detail":"User not found","code":"user_not_found"}"#,
    );
    app.profile(&bob).await.assert(
        401,
        r#"{"detail":"User is inactive","code":"user_inactive"}"#,
    );
    let no_user = sign(
        &json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "ab"}),
        Algorithm::HS256,
    );
    app.profile(&no_user).await.assert(
        401,
        r#"{"detail":"Token contained no recognizable user identification","code":"token_not_valid"}"#,
    );
}

#[tokio::test]
async fn a_new_user_does_not_inherit_a_deleted_users_id() {
    let app = spawn_app().await;
    let (alice, _) = app.user_with_tokens("alice").await;
    app.delete_user("alice").await;
    app.user_with_tokens("mallory").await;
    app.profile(&alice).await.assert(
        401,
        r#"{"detail":"User not found","code":"user_not_found"}"#,
    );
}
