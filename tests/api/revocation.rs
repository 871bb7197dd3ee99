//! token/verify, token/blacklist, logout, logout/all, and revocation by a
//! password reset: a revoked refresh token never mints another access token.

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, claims, now, sign, spawn_app};

const BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
const INVALID: &str = r#"{"detail":"Token is invalid","code":"token_not_valid"}"#;

impl TestApp {
    async fn refresh(&self, refresh: &str) -> crate::helpers::TestResponse {
        self.post_json("/api/auth/token/refresh/", json!({"refresh": refresh}))
            .await
    }

    async fn verify(&self, token: &str) -> crate::helpers::TestResponse {
        self.post_json("/api/auth/token/verify/", json!({"token": token}))
            .await
    }

    async fn blacklist(&self, path: &str, refresh: &str) -> crate::helpers::TestResponse {
        self.post_json(path, json!({"refresh": refresh})).await
    }

    async fn logout_all(&self, access: &str) -> crate::helpers::TestResponse {
        self.post_with_bearer("/api/auth/logout/all/", access).await
    }
}

#[tokio::test]
async fn verify_accepts_valid_tokens_of_either_type_and_refuses_the_rest() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("ann").await;
    app.verify(&access).await.assert(200, "{}");
    app.verify(&refresh).await.assert(200, "{}");
    app.verify("garbage").await.assert(401, INVALID);
    let expired = sign(
        &json!({"token_type": "access", "exp": now() - 1, "iat": now() - 60, "jti": "a", "user_id": "1"}),
        Algorithm::HS256,
    );
    app.verify(&expired).await.assert(
        401,
        r#"{"detail":"Token is expired","code":"token_not_valid"}"#,
    );
    let r = app
        .post_json("/api/auth/token/verify/", json!({"token": " "}))
        .await;
    r.assert(400, r#"{"token":["This field may not be blank."]}"#);
    let r = app.post_json("/api/auth/token/verify/", json!({})).await;
    r.assert(400, r#"{"token":["This field is required."]}"#);
    let r = app.request("GET", "/api/auth/token/verify/").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn a_blacklisted_refresh_token_never_works_again() {
    let app = spawn_app().await;
    let (_access, refresh) = app.user_with_tokens("ann").await;
    app.blacklist("/api/auth/token/blacklist/", &refresh)
        .await
        .assert(200, "{}");
    app.blacklist("/api/auth/token/blacklist/", &refresh)
        .await
        .assert(200, "{}");
    app.refresh(&refresh).await.assert(401, BLACKLISTED);
    app.verify(&refresh).await.assert(401, BLACKLISTED);
    // Only the id and the expiry are kept.
    let row = app
        .row("SELECT jti, expires_at FROM blacklisted_tokens")
        .await;
    let (jti, exp) = (row[0].as_str().unwrap(), row[1].as_i64().unwrap());
    assert_eq!(json!(jti), claims(&refresh)["jti"]);
    assert_eq!(json!(exp), claims(&refresh)["exp"]);
    // Survives a restart: it is in the database, not in memory.
    let mut app = app;
    app.restart().await;
    app.refresh(&refresh).await.assert(401, BLACKLISTED);
}

#[tokio::test]
async fn logout_is_blacklist_and_leaves_other_logins_alone() {
    let app = spawn_app().await;
    let (_a1, phone) = app.user_with_tokens("ann").await;
    let laptop = app.login("ann", PASSWORD).await.json()["refresh"]
        .as_str()
        .unwrap()
        .to_string();
    app.blacklist("/api/auth/logout/", &phone)
        .await
        .assert(200, "{}");
    app.refresh(&phone).await.assert(401, BLACKLISTED);
    assert_eq!(app.refresh(&laptop).await.status, 200);
}

#[tokio::test]
async fn blacklist_refuses_access_tokens_and_garbage() {
    let app = spawn_app().await;
    let (access, _refresh) = app.user_with_tokens("ann").await;
    app.blacklist("/api/auth/token/blacklist/", &access)
        .await
        .assert(
            401,
            r#"{"detail":"Token has wrong type","code":"token_not_valid"}"#,
        );
    app.blacklist("/api/auth/logout/", "garbage")
        .await
        .assert(401, INVALID);
    let r = app.post_json("/api/auth/logout/", json!({})).await;
    r.assert(400, r#"{"refresh":["This field is required."]}"#);
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM blacklisted_tokens")
            .await,
        0
    );
}

#[tokio::test]
async fn logout_all_revokes_every_refresh_token_of_that_user_only() {
    let app = spawn_app().await;
    let (access, first) = app.user_with_tokens("ann").await;
    let second = app.login("ann", PASSWORD).await.json()["refresh"]
        .as_str()
        .unwrap()
        .to_string();
    let (_bob_access, bob) = app.user_with_tokens("bob").await;
    // A token minted elsewhere with the shared key (a Django service).
    let ann_id = claims(&first)["user_id"].clone();
    let foreign = sign(
        &json!({"token_type": "refresh", "exp": now() + 600, "iat": now(), "jti": "0123456789abcdef0123456789abcdef", "user_id": ann_id}),
        Algorithm::HS256,
    );
    assert_eq!(app.refresh(&foreign).await.status, 200);

    app.logout_all(&access).await.assert(200, "{}");
    for token in [&first, &second, &foreign] {
        app.refresh(token).await.assert(401, BLACKLISTED);
    }
    assert_eq!(app.refresh(&bob).await.status, 200, "other users untouched");

    // Logging in afterwards works at once, in the same second too.
    let fresh = app.login("ann", PASSWORD).await.json()["refresh"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.refresh(&fresh).await.status, 200);
    app.verify(&fresh).await.assert(200, "{}");
}

#[tokio::test]
async fn logout_all_needs_a_valid_access_token() {
    let app = spawn_app().await;
    let (_access, refresh) = app.user_with_tokens("ann").await;
    app.post_raw("/api/auth/logout/all/", None, "")
        .await
        .assert(
            401,
            r#"{"detail":"Authentication credentials were not provided."}"#,
        );
    let r = app.logout_all(&refresh).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("Given token not valid for any token type"));
    assert_eq!(app.refresh(&refresh).await.status, 200);
}

#[tokio::test]
async fn a_password_reset_revokes_refresh_tokens_issued_before_it() {
    let app = spawn_app().await;
    let (_access, before) = app.user_with_tokens("ann").await;
    // Asking for a reset alone revokes nothing.
    app.request_reset("ann@example.com").await;
    let mail = app
        .smtp
        .wait_for_mail(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(app.refresh(&before).await.status, 200);

    let (uid, token) = mail[0].reset_params();
    app.confirm_reset(&uid, &token, "another-horse-10")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
    app.refresh(&before).await.assert(401, BLACKLISTED);
    let after = app.login("ann", "another-horse-10").await.json()["refresh"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.refresh(&after).await.status, 200);
}

#[tokio::test]
async fn refresh_for_a_deleted_or_inactive_user_stays_refused() {
    let app = spawn_app().await;
    let (_a, ann) = app.user_with_tokens("ann").await;
    let (_b, bob) = app.user_with_tokens("bob").await;
    app.deactivate_user("ann").await;
    app.delete_user("bob").await;
    app.refresh(&ann).await.assert(401, INVALID);
    app.refresh(&bob).await.assert(401, INVALID);
    app.verify(&ann).await.assert(401, INVALID);
}

#[tokio::test]
async fn every_response_carries_the_hardening_headers() {
    let app = spawn_app().await;
    let (access, _refresh) = app.user_with_tokens("ann").await;
    for r in [
        app.profile(&access).await,
        app.get("/healthz", None).await,
        app.get("/nope", None).await,
        app.login("ann", "wrong-password").await,
        app.request("PUT", "/api/auth/login/").await,
        app.post_raw("/api/auth/login/", Some("application/json"), "{")
            .await,
    ] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert!(r.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn forged_tokens_are_refused_at_verify_blacklist_and_logout() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let (_access, refresh) = app.user_with_tokens("ann").await;
    let c = claims(&refresh);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = b64.encode(c.to_string());
    let mut forged: Vec<(String, String)> = ["none", "None", "NONE", "nOnE"]
        .iter()
        .map(|alg| {
            let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            (format!("alg {alg}"), format!("{header}.{body}."))
        })
        .collect();
    forged.push((
        "HS512 with the real secret".into(),
        sign(&c, Algorithm::HS512),
    ));
    forged.push((
        "HS384 with the real secret".into(),
        sign(&c, Algorithm::HS384),
    ));
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b"another-key"),
    )
    .unwrap();
    forged.push(("another key".into(), other_key));
    let empty_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(b""),
    )
    .unwrap();
    forged.push(("an empty key".into(), empty_key));
    let stripped = refresh.rsplit_once('.').unwrap().0.to_string() + ".";
    forged.push(("stripped signature".into(), stripped));
    for (name, token) in &forged {
        app.verify(token).await.assert(401, INVALID);
        for path in ["/api/auth/token/blacklist/", "/api/auth/logout/"] {
            let r = app.blacklist(path, token).await;
            assert_eq!(
                (r.status, r.text.as_str()),
                (401, INVALID),
                "{name} at {path}"
            );
        }
        let r = app.refresh(token).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (401, INVALID),
            "{name} at refresh"
        );
    }
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM blacklisted_tokens")
            .await,
        0
    );
    assert_eq!(app.refresh(&refresh).await.status, 200);
}

/// A login that verified the old password while a reset committed must not
/// hand out a token that outlives the reset. The stored hash is made costly
/// (then the server restarted with cheap hashing), so the login's check takes
/// far longer than the reset's.
#[tokio::test]
async fn a_login_racing_a_password_reset_does_not_outlive_it() {
    let mut app = crate::helpers::spawn_app_with(|c| {
        c.password.scrypt_log_n = 15;
        c.password.scrypt_p = 1;
    })
    .await;
    let (uid, token) = app.user_with_reset_link("ann").await;
    app.restart_with(|c| {
        c.password.scrypt_log_n = 4;
        c.password.hash_threads = 2;
    })
    .await;
    let (login, confirm) = tokio::join!(
        app.login("ann", PASSWORD),
        app.confirm_reset(&uid, &token, "another-horse-10")
    );
    confirm.assert(200, r#"{"message":"Password has been reset"}"#);
    login.assert(
        401,
        r#"{"detail":"No active account found with the given credentials"}"#,
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM refresh_tokens")
            .await,
        0
    );
}
