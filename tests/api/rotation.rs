//! Refresh token rotation with reuse detection (`jwt.rotate_refresh_tokens`):
//! replaying a rotated token, racing refreshes inside and outside the grace
//! window. Time is moved on a manual clock instead of slept through.

use std::sync::Arc;

use futures_util::future::join_all;
use jsonwebtoken::Algorithm;
use latch::clock::ManualClock;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, SmtpServer, TestApp, claims, now, sign, spawn_app_with_clock};

const BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;

async fn rotating_app(grace_secs: u64) -> (TestApp, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let app = spawn_app_with_clock(SmtpServer::start(), clock.clone(), |c| {
        c.jwt.rotate_refresh_tokens = true;
        c.jwt.rotation_grace_secs = grace_secs;
    })
    .await;
    (app, clock)
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value, String) {
    let r = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": token}))
        .await;
    let body = if r.status == 200 {
        r.json()
    } else {
        Value::Null
    };
    (r.status, body, r.text)
}

fn new_refresh(body: &Value) -> String {
    body["refresh"]
        .as_str()
        .expect("a new refresh token")
        .to_string()
}

#[tokio::test]
async fn off_by_default_refresh_answers_only_an_access_token() {
    let app = crate::helpers::spawn_app().await;
    let (_access, token) = app.user_with_tokens("ann").await;
    let (status, body, _) = refresh(&app, &token).await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access"]);
    // The same token keeps working: nothing was retired.
    assert_eq!(refresh(&app, &token).await.0, 200);
}

#[tokio::test]
async fn rotation_answers_a_new_pair_and_retires_the_presented_token() {
    let (app, clock) = rotating_app(10).await;
    let (_access, first) = app.user_with_tokens("ann").await;
    let (status, body, text) = refresh(&app, &first).await;
    assert_eq!(status, 200, "{text}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let second = new_refresh(&body);
    assert_ne!(claims(&second)["jti"], claims(&first)["jti"]);
    assert_eq!(claims(&second)["user_id"], claims(&first)["user_id"]);
    assert_eq!(
        app.profile(body["access"].as_str().unwrap()).await.status,
        200
    );

    // The new token rotates on, long after: it is its own token, not retired.
    clock.advance(60);
    let (status, body, _) = refresh(&app, &second).await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&app, &new_refresh(&body)).await.0, 200);
}

#[tokio::test]
async fn replaying_a_rotated_token_revokes_every_token_of_that_login() {
    let (app, clock) = rotating_app(10).await;
    let (_access, stolen) = app.user_with_tokens("ann").await;
    let other_login = app.login("ann", PASSWORD).await.json()["refresh"]
        .as_str()
        .unwrap()
        .to_string();
    // The victim rotates twice; the attacker kept the first token.
    let (_, body, _) = refresh(&app, &stolen).await;
    let victims = new_refresh(&body);
    clock.advance(30);
    let (_, body, _) = refresh(&app, &victims).await;
    let victims_latest = new_refresh(&body);

    clock.advance(30);
    let (status, _, text) = refresh(&app, &stolen).await;
    assert_eq!((status, text.as_str()), (401, BLACKLISTED));
    // The whole family is dead, the victim's latest token included...
    for token in [&stolen, &victims, &victims_latest] {
        let (status, _, text) = refresh(&app, token).await;
        assert_eq!((status, text.as_str()), (401, BLACKLISTED));
        app.post_json("/api/auth/token/verify/", json!({"token": token}))
            .await
            .assert(401, BLACKLISTED);
    }
    // ...but not the user's other login.
    assert_eq!(refresh(&app, &other_login).await.0, 200);
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_inside_the_grace_window_all_get_the_same_successor() {
    let (app, clock) = rotating_app(10).await;
    let (_access, token) = app.user_with_tokens("ann").await;
    let results = join_all((0..8).map(|_| refresh(&app, &token))).await;
    let mut minted = Vec::new();
    for (status, body, text) in &results {
        assert_eq!(*status, 200, "{text}");
        assert_eq!(
            app.profile(body["access"].as_str().unwrap()).await.status,
            200
        );
        minted.push(new_refresh(body));
    }
    // One successor, handed out to every racer: no second branch of the
    // login that a thief could keep using unnoticed.
    assert!(minted.iter().all(|t| *t == minted[0]), "{minted:?}");
    // Still within the window, a late duplicate gets it too.
    clock.advance(9);
    let (status, body, _) = refresh(&app, &token).await;
    assert_eq!((status, new_refresh(&body)), (200, minted[0].clone()));
    assert_eq!(refresh(&app, &minted[0]).await.0, 200);
}

#[tokio::test]
async fn concurrent_replays_outside_the_grace_window_are_all_refused() {
    let (app, clock) = rotating_app(10).await;
    let (_access, token) = app.user_with_tokens("ann").await;
    let (_, body, _) = refresh(&app, &token).await;
    let successor = new_refresh(&body);
    clock.advance(10);
    let results = join_all((0..8).map(|_| refresh(&app, &token))).await;
    for (status, _, text) in &results {
        assert_eq!((*status, text.as_str()), (401, BLACKLISTED));
    }
    assert_eq!(refresh(&app, &successor).await.0, 401);
}

#[tokio::test]
async fn without_a_grace_window_one_of_racing_refreshes_wins_and_the_race_counts_as_reuse() {
    let (app, _clock) = rotating_app(0).await;
    let (_access, token) = app.user_with_tokens("ann").await;
    let results = join_all((0..8).map(|_| refresh(&app, &token))).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, b, _)| b)
        .collect();
    assert_eq!(winners.len(), 1, "the database settles the race");
    // The losers presented a retired token: the login is revoked.
    assert_eq!(refresh(&app, &new_refresh(winners[0])).await.0, 401);
}

#[tokio::test]
async fn rotated_tokens_can_be_blacklisted_and_are_revoked_by_logout_all_and_reset() {
    let (app, _clock) = rotating_app(10).await;
    let (access, token) = app.user_with_tokens("ann").await;
    let (_, body, _) = refresh(&app, &token).await;
    let rotated = new_refresh(&body);
    app.post_json("/api/auth/logout/", json!({"refresh": rotated}))
        .await
        .assert(200, "{}");
    assert_eq!(refresh(&app, &rotated).await.0, 401);
    assert_eq!(
        refresh(&app, &token).await.0,
        401,
        "the retired parent dies with its login, even inside the grace window"
    );

    let login = app.login("ann", PASSWORD).await.json();
    let (_, body, _) = refresh(&app, login["refresh"].as_str().unwrap()).await;
    let rotated = new_refresh(&body);
    app.post_with_bearer("/api/auth/logout/all/", &access)
        .await
        .assert(200, "{}");
    assert_eq!(refresh(&app, &rotated).await.0, 401);

    let login = app.login("ann", PASSWORD).await.json();
    let (_, body, _) = refresh(&app, login["refresh"].as_str().unwrap()).await;
    let rotated = new_refresh(&body);
    app.request_reset("ann@example.com").await;
    let mail = app
        .smtp
        .wait_for_mail(1, std::time::Duration::from_secs(10))
        .await;
    let (uid, reset_token) = mail[0].reset_params();
    app.confirm_reset(&uid, &reset_token, "another-horse-10")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
    assert_eq!(refresh(&app, &rotated).await.0, 401);
}

#[tokio::test]
async fn a_replayed_token_minted_elsewhere_is_caught_like_our_own() {
    let (app, clock) = rotating_app(10).await;
    let (_access, ours) = app.user_with_tokens("ann").await;
    // A Django service with the shared key minted this one.
    let foreign = sign(
        &json!({"token_type": "refresh", "exp": now() + 600, "iat": now(), "jti": "fedcba9876543210fedcba9876543210", "user_id": claims(&ours)["user_id"]}),
        Algorithm::HS256,
    );
    let (status, body, _) = refresh(&app, &foreign).await;
    assert_eq!(status, 200);
    let successor = new_refresh(&body);
    let (status, body, _) = refresh(&app, &foreign).await;
    assert_eq!(
        (status, new_refresh(&body)),
        (200, successor.clone()),
        "within the grace window"
    );
    clock.advance(10);
    let (status, _, text) = refresh(&app, &foreign).await;
    assert_eq!((status, text.as_str()), (401, BLACKLISTED));
    assert_eq!(
        refresh(&app, &successor).await.0,
        401,
        "its login is revoked"
    );
    assert_eq!(refresh(&app, &ours).await.0, 200, "other logins are not");
}

#[tokio::test]
async fn verify_of_a_replayed_token_revokes_its_login_too() {
    let (app, clock) = rotating_app(10).await;
    let (_access, token) = app.user_with_tokens("ann").await;
    let (_, body, _) = refresh(&app, &token).await;
    let successor = new_refresh(&body);
    clock.advance(10);
    app.post_json("/api/auth/token/verify/", json!({"token": token}))
        .await
        .assert(401, BLACKLISTED);
    assert_eq!(refresh(&app, &successor).await.0, 401);
}
