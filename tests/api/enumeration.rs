//! Account enumeration: nothing in an answer (body, headers, timing) tells
//! whether a username or an address has an account.

use std::time::Duration;

use crate::helpers::{PASSWORD, TestResponse, spawn_app_with};

/// Header names, without the ones that differ by nature (date).
fn header_names(r: &TestResponse) -> Vec<String> {
    let mut names: Vec<String> = r
        .headers
        .keys()
        .map(|k| k.as_str().to_string())
        .filter(|k| k != "date")
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn unknown_user_and_wrong_password_answer_alike_in_body_and_headers() {
    let app = spawn_app_with(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    app.register("ina", "ina@example.com", PASSWORD).await;
    app.deactivate_user("ina").await;
    let wrong = app.login("ann", "some-password").await;
    for other in [
        app.login("ghost", "some-password").await,
        app.login("ina", PASSWORD).await,
    ] {
        assert_eq!((other.status, &other.text), (wrong.status, &wrong.text));
        assert_eq!(header_names(&other), header_names(&wrong));
        for name in header_names(&other) {
            assert_eq!(other.header(&name), wrong.header(&name), "{name}");
        }
    }
}

#[tokio::test]
async fn unknown_and_inactive_addresses_get_the_spec_400_by_default() {
    let app = spawn_app_with(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    app.deactivate_user("ann").await;
    for email in ["nobody@example.com", "ann@example.com"] {
        app.request_reset(email)
            .await
            .assert(400, r#"{"error":"User with this email does not exist"}"#);
    }
}

#[tokio::test]
async fn with_reveal_unknown_email_off_unknown_and_inactive_addresses_get_the_same_200_and_no_mail()
{
    let app = spawn_app_with(|c| c.reset.reveal_unknown_email = false).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    app.register("ina", "ina@example.com", PASSWORD).await;
    app.deactivate_user("ina").await;
    let known = app.request_reset("ann@example.com").await;
    known.assert(200, r#"{"message":"Password reset link sent"}"#);
    for email in [
        "nobody@example.com",
        "ina@example.com",
        "NOBODY@example.com",
    ] {
        let unknown = app.request_reset(email).await;
        unknown.assert(200, r#"{"message":"Password reset link sent"}"#);
        assert_eq!(header_names(&unknown), header_names(&known));
    }
    // Only the known address got mail, and the decoy writes left nothing.
    let mails = app.smtp.wait_for_mail(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, ["ann@example.com"]);
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM reset_tokens").await,
        1
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM outbox WHERE recipient != 'ann@example.com'")
            .await,
        0
    );
    let (uid, token) = mails[0].reset_params();
    app.confirm_reset(&uid, &token, "another-horse-10")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
    assert_eq!(app.smtp.received().len(), 1);
}
