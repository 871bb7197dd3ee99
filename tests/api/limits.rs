//! Brute-force and abuse limits, attacked as an attacker would: guessing past
//! the limit with the right password, guessing in parallel, spraying one
//! password over many accounts, moving between addresses, forging
//! X-Forwarded-For. Each simulated client has its own source address in
//! 127.0.0.0/8 (Linux routes the whole block to lo).

use std::net::IpAddr;

use futures_util::future::join_all;
use latch::Config;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, TestResponse, spawn_app_with};

const LIMITED: &str = r#"{"detail":"Too many attempts. Try again later."}"#;
const NO_ACCOUNT: &str = r#"{"detail":"No active account found with the given credentials"}"#;

async fn limited_app(customize: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|c| {
        c.limits.enabled = true;
        customize(c);
    })
    .await
}

/// A client whose connections come from `127.0.0.<n>`.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, n]))
        .build()
        .unwrap()
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    body: serde_json::Value,
    forwarded_for: Option<&str>,
) -> TestResponse {
    let mut request = client.post(app.url(path)).json(&body);
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    TestResponse::from(request.send().await.unwrap()).await
}

async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    user: &str,
    password: &str,
) -> TestResponse {
    post(
        app,
        client,
        "/api/auth/login/",
        json!({"username": user, "password": password}),
        None,
    )
    .await
}

fn assert_limited(r: &TestResponse) -> u64 {
    r.assert(429, LIMITED);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    retry
}

#[tokio::test]
async fn past_the_account_limit_even_the_right_password_is_refused_from_any_address() {
    let app = limited_app(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let attacker = client_from(10);
    for _ in 0..5 {
        login_from(&app, &attacker, "ann", "guess")
            .await
            .assert(401, NO_ACCOUNT);
    }
    assert_limited(&login_from(&app, &attacker, "ann", PASSWORD).await);
    // The per-account limit holds across client addresses, the owner's too.
    assert_limited(&login_from(&app, &client_from(11), "ann", PASSWORD).await);
    // Other accounts are not affected.
    app.register("bob", "bob@example.com", PASSWORD).await;
    assert_eq!(
        login_from(&app, &attacker, "bob", PASSWORD).await.status,
        200
    );
}

#[tokio::test]
async fn an_unknown_username_is_limited_exactly_like_a_real_one() {
    let app = limited_app(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let mut answers = Vec::new();
    for user in ["ann", "ghost"] {
        let client = client_from(if user == "ann" { 20 } else { 21 });
        for _ in 0..5 {
            login_from(&app, &client, user, "guess")
                .await
                .assert(401, NO_ACCOUNT);
        }
        let r = login_from(&app, &client, user, "guess").await;
        assert_limited(&r);
        answers.push((
            r.status,
            r.text.clone(),
            r.header("retry-after").map(str::to_string),
        ));
    }
    assert_eq!(answers[0], answers[1], "status, body and Retry-After alike");
}

#[tokio::test]
async fn concurrent_guesses_cannot_share_the_last_free_attempts() {
    let app = limited_app(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let attacker = client_from(30);
    let answers = join_all((0..20).map(|_| login_from(&app, &attacker, "ann", "guess"))).await;
    let tried = answers.iter().filter(|r| r.status == 401).count();
    let refused = answers.iter().filter(|r| r.status == 429).count();
    assert_eq!((tried, refused), (5, 15));
}

#[tokio::test]
async fn spraying_one_password_over_many_accounts_hits_the_address_limit() {
    let app = limited_app(|c| c.limits.login_failures_per_ip = 10).await;
    let sprayer = client_from(40);
    for n in 0..10 {
        login_from(&app, &sprayer, &format!("user{n}"), "Summer2026!")
            .await
            .assert(401, NO_ACCOUNT);
    }
    assert_limited(&login_from(&app, &sprayer, "user10", "Summer2026!").await);
    // Another address still may try.
    login_from(&app, &client_from(41), "user10", "Summer2026!")
        .await
        .assert(401, NO_ACCOUNT);
}

#[tokio::test]
async fn successful_logins_do_not_count_against_the_limits() {
    let app = limited_app(|c| c.limits.login_failures_per_ip = 3).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let client = client_from(50);
    for _ in 0..20 {
        assert_eq!(login_from(&app, &client, "ann", PASSWORD).await.status, 200);
    }
}

#[tokio::test]
async fn registrations_and_reset_requests_are_limited_per_address() {
    let app = limited_app(|c| {
        c.limits.registrations_per_ip = 3;
        c.limits.reset_requests_per_ip = 3;
    })
    .await;
    let client = client_from(60);
    for n in 0..3 {
        let body = json!({"username": format!("u{n}"), "email": format!("u{n}@example.com"), "password": PASSWORD});
        assert_eq!(
            post(&app, &client, "/api/auth/register/", body, None)
                .await
                .status,
            201
        );
    }
    let body = json!({"username": "u3", "email": "u3@example.com", "password": PASSWORD});
    assert_limited(&post(&app, &client, "/api/auth/register/", body.clone(), None).await);
    assert_eq!(
        post(&app, &client_from(61), "/api/auth/register/", body, None)
            .await
            .status,
        201
    );

    for n in 0..3 {
        let body = json!({"email": format!("nobody{n}@example.com")});
        assert_eq!(
            post(&app, &client, "/api/auth/password/reset/", body, None)
                .await
                .status,
            400
        );
    }
    let body = json!({"email": "u0@example.com"});
    assert_limited(&post(&app, &client, "/api/auth/password/reset/", body, None).await);
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM reset_tokens").await,
        0
    );
}

#[tokio::test]
async fn a_reset_mail_goes_to_one_address_at_most_once_per_cooldown() {
    let app = limited_app(|_| {}).await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    for _ in 0..3 {
        app.request_reset("ANN@example.com")
            .await
            .assert(200, r#"{"message":"Password reset link sent"}"#);
    }
    let mails = app
        .smtp
        .wait_for_mail(1, std::time::Duration::from_secs(10))
        .await;
    assert_eq!(mails.len(), 1);
    // One token, so one mail was ever queued (each reset mail has its token).
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM reset_tokens").await,
        1
    );
}

#[tokio::test]
async fn one_setting_switches_every_limit_off() {
    let app = spawn_app_with(|c| {
        c.limits.login_failures_per_account = 1;
        c.limits.login_failures_per_ip = 1;
        c.limits.registrations_per_ip = 1;
    })
    .await;
    assert!(
        !app.config.limits.enabled,
        "the test harness switches limits off"
    );
    app.register("ann", "ann@example.com", PASSWORD).await;
    app.register("bob", "bob@example.com", PASSWORD)
        .await
        .assert(201, r#"{"message":"User registered successfully."}"#);
    for _ in 0..10 {
        app.login("ann", "guess").await.assert(401, NO_ACCOUNT);
    }
    assert_eq!(app.login("ann", PASSWORD).await.status, 200);
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // Not trusted: the header is ignored, so rotating it does not help.
    let app = limited_app(|c| c.limits.login_failures_per_ip = 2).await;
    let client = client_from(80);
    for n in 0..2 {
        let xff = format!("198.51.100.{n}");
        let body = json!({"username": format!("a{n}"), "password": "x"});
        post(&app, &client, "/api/auth/login/", body, Some(&xff))
            .await
            .assert(401, NO_ACCOUNT);
    }
    let body = json!({"username": "a9", "password": "x"});
    assert_limited(
        &post(
            &app,
            &client,
            "/api/auth/login/",
            body,
            Some("198.51.100.9"),
        )
        .await,
    );

    // Behind a trusted proxy: the right-most untrusted entry is the client.
    let app = limited_app(|c| {
        c.limits.login_failures_per_ip = 2;
        c.limits.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let proxy = client_from(81);
    for n in 0..2 {
        // A client prepending its own entry does not change who it is.
        let xff = format!("6.6.6.{n}, 203.0.113.7");
        let body = json!({"username": format!("b{n}"), "password": "x"});
        post(&app, &proxy, "/api/auth/login/", body, Some(&xff))
            .await
            .assert(401, NO_ACCOUNT);
    }
    let body = json!({"username": "b9", "password": "x"});
    assert_limited(
        &post(
            &app,
            &proxy,
            "/api/auth/login/",
            body.clone(),
            Some("203.0.113.7"),
        )
        .await,
    );
    // Another client behind the same proxy has its own allowance.
    post(&app, &proxy, "/api/auth/login/", body, Some("203.0.113.8"))
        .await
        .assert(401, NO_ACCOUNT);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_logs_one_warning_naming_the_setting() {
    use crate::process::Process;
    let dir = tempfile::tempdir().unwrap();
    let latch = Process::start(
        dir.path(),
        &["--smtp-port", "1"],
        &[
            ("LATCH_PASSWORD_SCRYPT_LOG_N", "4"),
            ("LATCH_PASSWORD_SCRYPT_P", "1"),
        ],
    );
    let base = format!("http://{}", latch.addr());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client
            .post(format!("{base}/api/auth/login/"))
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"username": "ann", "password": "guess"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // Every request's log line is in, so a second warning would be too.
    let start = std::time::Instant::now();
    while latch.output().matches("status=401").count() < 3 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let output = latch.output();
    assert_eq!(
        output.matches("limits.trusted_proxies").count(),
        1,
        "{output}"
    );
    assert!(
        !output.contains("203.0.113.9"),
        "the claimed address is not logged"
    );
}
