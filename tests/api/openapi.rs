//! `GET /api/openapi.json` and the page that shows it, `GET /api/docs`. That
//! the document lists exactly the route table is checked in
//! `src/http/openapi.rs`; that the server answers as it says, by
//! Schemathesis (`tests/schemathesis/run.sh`).

use crate::helpers::*;

#[tokio::test]
async fn the_document_is_served_with_and_without_the_slash() {
    let app = spawn_app().await;
    for path in ["/api/openapi.json", "/api/openapi.json/"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        let doc = r.json();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["paths"]["/api/auth/login/"]["post"].is_object());
        assert_eq!(
            doc["paths"]["/api/auth/profile/"]["get"]["security"],
            serde_json::json!([{"bearerAuth": []}])
        );
    }
}

/// What the document says of an answer is what the server answers.
#[tokio::test]
async fn documented_bodies_are_the_real_ones() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.json();
    let login = &doc["paths"]["/api/auth/login/"]["post"]["responses"];
    let r = app.login("nobody", "wrong-password").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        login["401"]["content"]["application/json"]["schema"]["properties"]["detail"]["enum"],
        serde_json::json!([r.json()["detail"]])
    );
    let register = &doc["paths"]["/api/auth/register/"]["post"];
    let example = &doc["components"]["schemas"]["Registration"]["examples"][0];
    assert!(register["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    let r = app.post_json("/api/auth/register/", example.clone()).await;
    r.assert(201, r#"{"message":"User registered successfully."}"#);
    let login = &doc["components"]["schemas"]["Credentials"]["examples"][0];
    let r = app.post_json("/api/auth/login/", login.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn the_docs_page_loads_only_latchs_own_script() {
    let app = spawn_app().await;
    for path in ["/api/docs", "/api/docs/"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert!(!csp.contains("http"), "{csp}");
        assert!(
            r.text
                .contains(r#"<script src="/api/docs/redoc.standalone.js">"#)
        );
        assert!(r.text.contains(r#"spec-url="/api/openapi.json""#));
        assert!(
            !r.text.contains("http"),
            "nothing from elsewhere: {}",
            r.text
        );
    }
    let r = app.get("/api/docs/redoc.standalone.js", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(r.text.contains(r#"Version: "2.5.4""#) || r.text.len() > 1_000_000);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let r = app.request("HEAD", "/api/docs").await;
    assert_eq!(r.status, 200);
    let r = app.request("DELETE", "/api/docs").await;
    r.assert(405, r#"{"detail":"Method \"DELETE\" not allowed."}"#);
}
