//! The reset page latch serves at reset.url's path (src/http/reset_page.rs):
//! where it is served, with which headers, and what it is made of. The page
//! at work in a real browser is in reset_page_browser.rs.

use latch::config::ResetPage;

use crate::helpers::{TestApp, TestResponse, spawn_app, spawn_app_with};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const HTML: &str = "text/html; charset=utf-8";
const NOT_FOUND: &str = r#"{"detail":"Not found."}"#;
const SCRIPT: &str = include_str!("../../src/http/reset_page/page.js");
const STYLE: &str = include_str!("../../src/http/reset_page/page.css");

/// The headers every part of the page carries, and its content type.
fn assert_page_headers(r: &TestResponse, content_type: &str, cache_control: &str) {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some(content_type));
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some(cache_control));
}

async fn page(app: &TestApp, path_and_query: &str) -> TestResponse {
    let r = app.get(path_and_query, None).await;
    assert_page_headers(&r, HTML, "no-store");
    r
}

#[tokio::test]
async fn the_mail_link_opens_the_page_and_its_assets_with_strict_headers() {
    let app = spawn_app().await;
    let (uid, token) = app.user_with_reset_link("alice").await;
    // The default reset.url, http://localhost:8000/reset-password, is latch.
    let mail = &app.smtp.received()[0];
    assert!(
        mail.body()
            .contains("http://localhost:8000/reset-password?uid="),
        "{}",
        mail.body()
    );
    for path in ["/reset-password", "/reset-password/"] {
        let r = page(&app, &format!("{path}?uid={uid}&token={token}")).await;
        let html = &r.text;
        assert!(html.starts_with("<!doctype html>"), "{html}");
        assert!(html.contains(r#"<meta charset="utf-8">"#));
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        // The form: two labelled password fields for a new password, a
        // button, the place for the answer, and a word for no JavaScript.
        assert!(html.contains(
            r#"<form id="reset-form" method="post" action="/api/auth/password/reset/confirm/""#
        ));
        for id in ["new-password", "new-password-again"] {
            assert!(html.contains(&format!(r#"<label for="{id}">"#)), "{id}");
            assert!(
                html.contains(&format!(
                    r#"<input id="{id}" name="{}" type="password" autocomplete="new-password""#,
                    id.replace('-', "_")
                )),
                "{id}"
            );
        }
        assert!(html.contains(r#"<button type="submit">"#));
        assert!(html.contains(r#"id="message""#));
        assert!(html.contains("<noscript>") && html.contains("needs JavaScript"));
        // Its own assets only, and no inline code or style.
        assert!(html.contains(r#"<link rel="stylesheet" href="/reset-password/page.css">"#));
        assert!(html.contains(r#"<script src="/reset-password/page.js" defer></script>"#));
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        for banned in [
            "<style",
            "style=",
            "javascript:",
            "http://",
            "https://",
            "//",
            " onclick",
            " onsubmit",
            " onload",
        ] {
            assert!(!html.contains(banned), "{banned:?} in {html}");
        }
        assert!(
            !html.contains(&token),
            "nothing of the query is put in the page"
        );
    }

    let r = app.get("/reset-password/page.js", None).await;
    assert_page_headers(&r, "text/javascript; charset=utf-8", "no-cache");
    assert_eq!(r.text, SCRIPT);
    let r = app.get("/reset-password/page.css", None).await;
    assert_page_headers(&r, "text/css; charset=utf-8", "no-cache");
    assert_eq!(r.text, STYLE);
    // Nothing from elsewhere in them either (the script posts to its form's action).
    for (name, text) in [("page.js", SCRIPT), ("page.css", STYLE)] {
        for banned in [
            "http://",
            "https://",
            "@import",
            "url(",
            "eval(",
            "innerHTML",
        ] {
            assert!(!text.contains(banned), "{banned:?} in {name}");
        }
    }
}

#[tokio::test]
async fn a_link_without_uid_or_token_gets_the_page_saying_it_is_incomplete() {
    let app = spawn_app().await;
    for query in [
        "",
        "?",
        "?uid=MQ",
        "?token=abc",
        "?uid=MQ&token=",
        "?uid=&token=abc",
    ] {
        let r = page(&app, &format!("/reset-password{query}")).await;
        assert!(r.text.contains("This link is incomplete"), "{query}");
        assert!(!r.text.contains("<form"), "{query}");
    }
}

#[tokio::test]
async fn the_page_is_off_when_reset_url_points_elsewhere_or_page_is_false() {
    let elsewhere =
        spawn_app_with(|c| c.reset.url = "https://app.example.com/reset-password".into()).await;
    let off = spawn_app_with(|c| c.reset.page = ResetPage::Off).await;
    for app in [&elsewhere, &off] {
        for path in [
            "/reset-password?uid=MQ&token=abc",
            "/reset-password/",
            "/reset-password/page.js",
            "/reset-password/page.css",
        ] {
            app.get(path, None).await.assert(404, NOT_FOUND);
        }
        app.request("POST", "/reset-password")
            .await
            .assert(404, NOT_FOUND);
    }
}

#[tokio::test]
async fn page_true_serves_it_at_reset_urls_path_wherever_it_points() {
    let app = spawn_app_with(|c| {
        c.reset.url = "https://auth.example.com/account/reset?lang=en".into();
        c.reset.page = ResetPage::On;
    })
    .await;
    let r = page(&app, "/account/reset?lang=en&uid=MQ&token=abc").await;
    assert!(r.text.contains(r#"href="/account/reset/page.css""#));
    assert!(r.text.contains(r#"src="/account/reset/page.js""#));
    assert!(r.text.contains("<form"));
    let r = app.get("/account/reset/page.js", None).await;
    assert_page_headers(&r, "text/javascript; charset=utf-8", "no-cache");
    let r = app.get("/account/reset/page.css", None).await;
    assert_page_headers(&r, "text/css; charset=utf-8", "no-cache");
    app.get("/reset-password?uid=MQ&token=abc", None)
        .await
        .assert(404, NOT_FOUND);

    // A mail links there.
    let email = "alice@example.com";
    app.register("alice", email, crate::helpers::PASSWORD).await;
    app.request_reset(email).await;
    let mail = app
        .smtp
        .wait_for_mail(1, std::time::Duration::from_secs(10))
        .await;
    assert!(
        mail[0]
            .body()
            .contains("https://auth.example.com/account/reset?lang=en&uid=MQ&token="),
        "{}",
        mail[0].body()
    );
}

#[tokio::test]
async fn other_methods_get_the_json_405_head_the_headers_options_the_methods() {
    let app = spawn_app().await;
    for path in [
        "/reset-password?uid=MQ&token=abc",
        "/reset-password/page.js",
        "/reset-password/page.css",
    ] {
        for method in ["POST", "PUT", "PATCH", "DELETE", "FROB"] {
            let r = app.request(method, path).await;
            r.assert(
                405,
                &format!(r#"{{"detail":"Method \"{method}\" not allowed."}}"#),
            );
            assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{path}");
        }
        let get = app.get(path, None).await;
        let head = app.request("HEAD", path).await;
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.text, "", "{path}");
        for name in [
            "content-type",
            "content-length",
            "content-security-policy",
            "cache-control",
            "referrer-policy",
            "x-content-type-options",
        ] {
            assert_eq!(head.header(name), get.header(name), "{path} {name}");
        }
        let r = app.request("OPTIONS", path).await;
        assert_eq!(
            (r.status, r.header("allow")),
            (200, Some("GET, HEAD, OPTIONS"))
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}
