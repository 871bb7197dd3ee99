use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    PASSWORD, SmtpServer, TestApp, spawn_app, spawn_app_with, spawn_app_with_smtp, wait_until,
};

const SENT: &str = r#"{"message":"Password reset link sent"}"#;
const DONE: &str = r#"{"message":"Password has been reset"}"#;
const BAD_TOKEN: &str = r#"{"error":"Invalid or expired token"}"#;
const MAIL_WAIT: Duration = Duration::from_secs(5);

/// Registers alice, asks for a reset, returns the (uid, token) from the mail.
async fn reset_link_for_alice(app: &TestApp) -> (String, String) {
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    let mails = app.smtp.wait_for_mail(1, MAIL_WAIT).await;
    mails.last().unwrap().reset_params()
}

#[tokio::test]
async fn full_reset_flow_through_a_real_smtp_server() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let r = app.request_reset("alice@example.com").await;
    r.assert(200, SENT);

    let mails = app.smtp.wait_for_mail(1, MAIL_WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.to, ["alice@example.com"]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Password reset"));
    assert_eq!(mail.header("From").as_deref(), Some("webmaster@localhost"));
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    let body = mail.body();
    assert!(
        body.contains("http://localhost:8000/reset-password?uid=MQ&token="),
        "{body}"
    );
    let (uid, token) = mail.reset_params();
    assert_eq!(uid, "MQ", "Django's urlsafe_base64_encode of user id 1");
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    // Delivered mail leaves the outbox by itself, while its token is alive
    // (using or deleting the token would take the row with it).
    wait_until(
        MAIL_WAIT,
        "delivered mail stayed in the outbox",
        async || app.store().queued_mail_count().await.unwrap() == 0,
    )
    .await;
    let live_tokens: i64 = app.scalar("SELECT COUNT(*) FROM reset_tokens").await;
    assert_eq!(live_tokens, 1, "the token went before its mail was removed");

    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(200, DONE);
    assert_eq!(
        app.login("alice", PASSWORD).await.status,
        401,
        "old password fails"
    );
    assert_eq!(
        app.login("alice", "brand-new-password").await.status,
        200,
        "new one works"
    );
    // Single use.
    app.confirm_reset(&uid, &token, "another-password")
        .await
        .assert(400, BAD_TOKEN);
    assert_eq!(app.login("alice", "brand-new-password").await.status, 200);
    assert_eq!(
        app.store().queued_mail_count().await.unwrap(),
        0,
        "delivered mail leaves the outbox"
    );
}

#[tokio::test]
async fn lookup_is_case_insensitive_and_mail_goes_to_the_stored_address() {
    let app = spawn_app().await;
    app.register("alice", "Alice.Smith@Example.COM", PASSWORD)
        .await;
    // Exactly as typed at registration, and in other cases.
    for (n, typed) in [
        "Alice.Smith@Example.COM",
        "alice.smith@example.com",
        "ALICE.SMITH@EXAMPLE.COM",
    ]
    .iter()
    .enumerate()
    {
        app.request_reset(typed).await.assert(200, SENT);
        let mails = app.smtp.wait_for_mail(n + 1, MAIL_WAIT).await;
        assert_eq!(mails[n].to, ["Alice.Smith@example.com"]);
    }
}

#[tokio::test]
async fn reset_request_errors() {
    let app = spawn_app().await;
    let path = "/api/auth/password/reset/";
    for body in [json!({}), json!({"email": ""}), json!({"email": null})] {
        app.post_json(path, body)
            .await
            .assert(400, r#"{"error":"Email is required"}"#);
    }
    app.request_reset("nobody@example.com")
        .await
        .assert(400, r#"{"error":"User with this email does not exist"}"#);
    app.request_reset("not an address")
        .await
        .assert(400, r#"{"error":"User with this email does not exist"}"#);
    assert_eq!(app.store().queued_mail_count().await.unwrap(), 0);
}

#[tokio::test]
async fn reset_url_is_configurable() {
    let app =
        spawn_app_with(|c| c.reset.url = "https://app.example.org/account/reset".into()).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    let body = app.smtp.wait_for_mail(1, MAIL_WAIT).await[0].body();
    assert!(
        body.contains("https://app.example.org/account/reset?uid=MQ&token="),
        "{body}"
    );
}

#[tokio::test]
async fn missing_parameters_and_bad_uids() {
    let app = spawn_app().await;
    let (uid, token) = reset_link_for_alice(&app).await;
    let confirm = |query: String| {
        let app = &app;
        async move {
            app.post_json(
                &format!("/api/auth/password/reset/confirm/{query}"),
                json!({"new_password": "new-password-1"}),
            )
            .await
        }
    };
    let missing = r#"{"error":"Missing parameters"}"#;
    for query in [
        "".to_string(),
        format!("?uid={uid}"),
        format!("?token={token}"),
        format!("?uid=&token={token}"),
        format!("?uid={uid}&token="),
    ] {
        confirm(query).await.assert(400, missing);
    }
    for bad_uid in ["Mg", "garbage!", "YQ", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"] {
        confirm(format!("?uid={bad_uid}&token={token}"))
            .await
            .assert(400, r#"{"error":"Invalid uid"}"#);
    }
    confirm(format!("?uid={uid}&token=wrong-token"))
        .await
        .assert(400, BAD_TOKEN);
    // The real link still works afterwards, also without the trailing slash.
    let r = app
        .post_json(
            &format!("/api/auth/password/reset/confirm?uid={uid}&token={token}"),
            json!({"new_password": "new-password-1"}),
        )
        .await;
    r.assert(200, DONE);
}

#[tokio::test]
async fn short_or_missing_new_password_changes_nothing() {
    let app = spawn_app().await;
    let (uid, token) = reset_link_for_alice(&app).await;
    let path = format!("/api/auth/password/reset/confirm/?uid={uid}&token={token}");
    app.post_json(&path, json!({}))
        .await
        .assert(400, r#"{"error":"New password is required"}"#);
    app.post_json(&path, json!({"new_password": ""}))
        .await
        .assert(400, r#"{"error":"New password is required"}"#);
    app.post_json(&path, json!({"new_password": "short"}))
        .await
        .assert(
            400,
            r#"{"error":"This password is too short. It must contain at least 8 characters."}"#,
        );
    assert_eq!(
        app.login("alice", PASSWORD).await.status,
        200,
        "old password unchanged"
    );
    // The link was not used up by the failures.
    app.confirm_reset(&uid, &token, "long-enough-now")
        .await
        .assert(200, DONE);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = spawn_app().await;
    let (uid, token) = reset_link_for_alice(&app).await;
    let past = crate::helpers::now() - 1;
    app.execute(&format!("UPDATE reset_tokens SET expires_at = {past}"))
        .await;
    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(400, BAD_TOKEN);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let app = spawn_app_with(|c| c.reset.token_lifetime_secs = 1).await;
    let (uid, token) = reset_link_for_alice(&app).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(400, BAD_TOKEN);
}

#[tokio::test]
async fn a_password_change_invalidates_every_other_link() {
    let app = spawn_app().await;
    let (uid, first) = reset_link_for_alice(&app).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    let (_, second) = app.smtp.wait_for_mail(2, MAIL_WAIT).await[1].reset_params();
    assert_ne!(first, second);
    app.confirm_reset(&uid, &second, "brand-new-password")
        .await
        .assert(200, DONE);
    app.confirm_reset(&uid, &first, "another-password-2")
        .await
        .assert(400, BAD_TOKEN);
}

#[tokio::test]
async fn a_token_is_bound_to_its_user() {
    let app = spawn_app().await;
    let (_, alice_token) = reset_link_for_alice(&app).await;
    app.register("bob", "bob@example.com", PASSWORD).await;
    app.confirm_reset("Mg", &alice_token, "brand-new-password")
        .await
        .assert(400, BAD_TOKEN);
    assert_eq!(app.login("bob", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn reset_tokens_are_never_stored() {
    // SMTP down, so the mail sits in the outbox while we look at the files.
    let app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    let queued_body: String = app.scalar("SELECT body FROM outbox").await;
    assert!(
        queued_body.contains("{reset_link}") && !queued_body.contains("token="),
        "{queued_body}"
    );
    let files_while_queued = app.db.everything().await;
    let address = b"alice@example.com";
    assert!(
        files_while_queued
            .windows(address.len())
            .any(|w| w == address),
        "the rows were searched"
    );

    app.smtp.come_up();
    let (_, token) = app.smtp.wait_for_mail(1, MAIL_WAIT).await[0].reset_params();
    for bytes in [files_while_queued, app.db.everything().await] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token found on disk"
        );
    }
}

#[tokio::test]
async fn mail_for_a_dead_token_is_dropped_from_the_queue() {
    let app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    assert_eq!(app.store().queued_mail_count().await.unwrap(), 1);
    // Tokens die when used, expired or superseded; their queued mail goes with them.
    app.execute("DELETE FROM reset_tokens").await;
    assert_eq!(app.store().queued_mail_count().await.unwrap(), 0);
}

#[tokio::test]
async fn simultaneous_confirmations_of_one_link_one_wins() {
    let app = spawn_app().await;
    let (uid, token) = reset_link_for_alice(&app).await;
    let attempts = (0..8).map(|i| {
        let (app, uid, token) = (&app, &uid, &token);
        async move {
            app.confirm_reset(uid, token, &format!("new-password-{i}"))
                .await
        }
    });
    let responses = futures_util::future::join_all(attempts).await;
    assert_eq!(responses.iter().filter(|r| r.status == 200).count(), 1);
    for r in responses.iter().filter(|r| r.status != 200) {
        r.assert(400, BAD_TOKEN);
    }
}
