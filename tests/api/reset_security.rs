//! Reset links: keyed by latch's own secret (a Django service holding the
//! shared JWT key cannot forge them), and unusable by a deactivated user.

use latch::reset::ResetLinks;

use crate::helpers::{PASSWORD, TEST_SECRET, TestApp, spawn_app, spawn_app_with};

const INVALID_TOKEN: &str = r#"{"error":"Invalid or expired token"}"#;

/// Registers ann, asks for a reset, returns (uid, token, token id, expiry).
async fn reset_link(app: &TestApp) -> (String, String, i64, i64) {
    let (uid, token) = app.user_with_reset_link("ann").await;
    let row = app.row("SELECT id, expires_at FROM reset_tokens").await;
    let (id, expires_at) = (row[0].as_i64().unwrap(), row[1].as_i64().unwrap());
    (uid, token, id, expires_at)
}

#[tokio::test]
async fn a_reset_token_cannot_be_forged_with_the_shared_jwt_secret() {
    let app = spawn_app().await;
    let (uid, token, id, expires_at) = reset_link(&app).await;
    // What anyone holding SIGNING_KEY could compute if the key were derived from it.
    let forged = ResetLinks::new(TEST_SECRET.as_bytes(), "http://x").token(id, 1, expires_at);
    assert_ne!(forged, token);
    app.confirm_reset(&uid, &forged, "another-horse-10")
        .await
        .assert(400, INVALID_TOKEN);
    // The generated secret is kept in the database, not the JWT one.
    let stored: String = app
        .scalar("SELECT value FROM settings WHERE key = 'reset_secret'")
        .await;
    assert_eq!(stored.len(), 64);
    assert_eq!(
        ResetLinks::new(stored.as_bytes(), "http://x").token(id, 1, expires_at),
        token
    );
}

#[tokio::test]
async fn a_reset_link_survives_a_restart_and_a_configured_secret_is_used_as_given() {
    let mut app =
        spawn_app_with(|c| c.reset.secret = Some("  reset key with spaces 0123  ".into())).await;
    let (uid, token, id, expires_at) = reset_link(&app).await;
    assert_eq!(
        ResetLinks::new(b"  reset key with spaces 0123  ", "http://x").token(id, 1, expires_at),
        token
    );
    app.restart().await;
    app.confirm_reset(&uid, &token, "another-horse-10")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
}

#[tokio::test]
async fn a_user_deactivated_after_asking_for_a_reset_cannot_complete_it() {
    let app = spawn_app().await;
    let (uid, token, _, _) = reset_link(&app).await;
    app.deactivate_user("ann").await;
    app.confirm_reset(&uid, &token, "another-horse-10")
        .await
        .assert(400, r#"{"error":"Invalid uid"}"#);
    let hash: String = app
        .scalar("SELECT password_hash FROM users WHERE username = 'ann'")
        .await;
    app.execute("UPDATE users SET is_active = true WHERE username = 'ann'")
        .await;
    assert_eq!(
        app.login("ann", PASSWORD).await.status,
        200,
        "password unchanged"
    );
    let after: String = app
        .scalar("SELECT password_hash FROM users WHERE username = 'ann'")
        .await;
    assert_eq!(hash, after);
}
