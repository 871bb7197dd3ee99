use crate::helpers::{spawn_app, spawn_app_with};

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/login/"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn configured_origins_get_cors_headers_others_a_json_403() {
    let app =
        spawn_app_with(|c| c.cors.allowed_origins = vec!["https://app.example.com".into()]).await;
    let ok = preflight(&app, "https://app.example.com").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");

    let simple = app
        .client
        .get(app.url("/api/auth/profile/"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), 401);
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );

    let refused = preflight(&app, "https://evil.example").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["content-type"], "application/json");
    assert_eq!(
        refused.text().await.unwrap(),
        r#"{"detail":"CORS request forbidden: origin not allowed"}"#
    );
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() {
    let app = spawn_app().await;
    let r = preflight(&app, "https://app.example.com").await;
    assert_eq!(r.status(), 200, "an ordinary OPTIONS answer");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
