//! Bad input of every kind gets a clear 4xx JSON answer on every endpoint.

use serde_json::json;

use crate::helpers::spawn_app;

const POST_ENDPOINTS: [&str; 5] = [
    "/api/auth/login/",
    "/api/auth/token/refresh/",
    "/api/auth/register/",
    "/api/auth/password/reset/",
    "/api/auth/password/reset/confirm/?uid=MQ&token=x",
];

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let app = spawn_app().await;
    for path in POST_ENDPOINTS {
        for body in ["{", "{\"a\":}", "nul", "{\"a\":\"\\ud800\"}", "\u{feff}{}"] {
            let r = app.post_raw(path, Some("application/json"), body).await;
            assert_eq!(r.status, 400, "{path} {body:?}");
            assert!(
                r.json()["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("JSON parse error - "),
                "{}",
                r.text
            );
        }
        let r = app
            .post_raw(path, Some("application/json"), vec![b'{', 0xff, 0xfe, b'}'])
            .await;
        assert_eq!(r.status, 400, "invalid UTF-8 on {path}");
    }
}

#[tokio::test]
async fn json_that_is_not_an_object() {
    let app = spawn_app().await;
    for path in POST_ENDPOINTS {
        for (body, kind) in [
            ("[]", "list"),
            ("\"s\"", "str"),
            ("12", "int"),
            ("1.5", "float"),
            ("true", "bool"),
        ] {
            let expected = format!(
                r#"{{"non_field_errors":["Invalid data. Expected a dictionary, but got {kind}."]}}"#
            );
            app.post_raw(path, Some("application/json"), body)
                .await
                .assert(400, &expected);
        }
        app.post_raw(path, Some("application/json"), "null")
            .await
            .assert(400, r#"{"non_field_errors":["No data provided"]}"#);
    }
}

#[tokio::test]
async fn wrong_methods_name_the_method_and_list_the_allowed_ones() {
    let app = spawn_app().await;
    for path in POST_ENDPOINTS {
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            let r = app.request(method, path).await;
            r.assert(
                405,
                &format!(r#"{{"detail":"Method \"{method}\" not allowed."}}"#),
            );
            assert_eq!(r.header("allow"), Some("POST, OPTIONS"));
        }
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = app.request(method, "/api/auth/profile/").await;
        r.assert(
            405,
            &format!(r#"{{"detail":"Method \"{method}\" not allowed."}}"#),
        );
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    let r = app.request("FROB", "/api/auth/login/").await;
    r.assert(405, r#"{"detail":"Method \"FROB\" not allowed."}"#);
}

#[tokio::test]
async fn options_lists_the_allowed_methods() {
    let app = spawn_app().await;
    let r = app.request("OPTIONS", "/api/auth/login/").await;
    assert_eq!((r.status, r.header("allow")), (200, Some("POST, OPTIONS")));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api",
        "/api/auth/",
        "/api/auth/nope/",
        "/api/auth/login/extra",
        "/api/auth/login//",
        "/%ff",
        "/api/auth/login/%2e%2e",
    ] {
        app.get(path, None)
            .await
            .assert(404, r#"{"detail":"Not found."}"#);
    }
    app.post_json("/api/auth/logon/", json!({}))
        .await
        .assert(404, r#"{"detail":"Not found."}"#);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_announced_or_chunked() {
    let app = spawn_app().await;
    let big = format!(
        r#"{{"username":"{}","password":"x"}}"#,
        "a".repeat(70 * 1024)
    );
    for path in POST_ENDPOINTS {
        let r = app
            .post_raw(path, Some("application/json"), big.clone())
            .await;
        assert_eq!(r.status, 413, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.json()["detail"].as_str().unwrap().contains("65536"));
    }
    // No Content-Length: the limit is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = app
        .post_raw(
            "/api/auth/login/",
            Some("application/json"),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_eq!(r.status, 413);
    // Just under the limit is fine (and then judged on its content).
    let fits = format!(
        r#"{{"username":"{}","password":"x"}}"#,
        "a".repeat(60 * 1024)
    );
    let r = app
        .post_raw("/api/auth/login/", Some("application/json"), fits)
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn unsupported_media_types_and_missing_content_type() {
    let app = spawn_app().await;
    app.post_raw("/api/auth/login/", Some("text/plain"), "username=a")
        .await
        .assert(
            415,
            r#"{"detail":"Unsupported media type \"text/plain\" in request."}"#,
        );
    // DRF ignores a body that says nothing about its type.
    app.post_raw(
        "/api/auth/login/",
        None,
        r#"{"username":"a","password":"b"}"#,
    )
    .await
    .assert(
        400,
        r#"{"username":["This field is required."],"password":["This field is required."]}"#,
    );
}

#[tokio::test]
async fn odd_unicode_and_deep_json_never_break_anything() {
    let app = spawn_app().await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let r = app
        .post_raw("/api/auth/register/", Some("application/json"), deep)
        .await;
    assert_eq!(r.status, 400);
    let weird = [
        "\u{0}",
        "\u{202e}",
        "\u{fffd}",
        "🙂🙂",
        "a\u{301}",
        "\u{10ffff}",
        "ｆｕｌｌ",
        "\u{1f}",
    ];
    for (i, w) in weird.iter().enumerate() {
        for path in POST_ENDPOINTS {
            let body = json!({"username": w, "email": format!("{w}@example.com"), "password": w,
                              "refresh": w, "new_password": w});
            let r = app.post_json(path, body).await;
            assert!(
                r.status >= 400 && r.status < 500 || r.status == 200 || r.status == 201,
                "{path} {i}: {}",
                r.status
            );
            r.json();
        }
        let r = app
            .get(
                "/api/auth/profile/",
                Some(&format!("Bearer {}", w.escape_unicode())),
            )
            .await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn health_check() {
    let app = spawn_app().await;
    app.get("/healthz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);
    app.post_json("/healthz", json!({}))
        .await
        .assert(405, r#"{"detail":"Method \"POST\" not allowed."}"#);
}

/// Sends raw requests over one connection and returns the raw answers.
async fn one_connection(app: &crate::helpers::TestApp, requests: &[Vec<u8>]) -> Vec<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut answers = Vec::new();
    for request in requests {
        stream.write_all(request).await.unwrap();
        let mut buffer = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        answers.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
    answers
}

fn raw(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn early_answers_leave_the_connection_usable() {
    // An answer given without reading the body (405, 404, 413) drains it, so
    // a client can send its next request on the same connection.
    let app = spawn_app().await;
    let body = vec![b'x'; 70 * 1024];
    let answers = one_connection(
        &app,
        &[
            raw("PUT", "/api/auth/login/", &body[..5000]),
            raw("GET", "/healthz", b""),
            raw("POST", "/nowhere", &body[..5000]),
            raw("GET", "/healthz", b""),
            raw("POST", "/api/auth/login/", &body),
            raw("GET", "/healthz", b""),
        ],
    )
    .await;
    let statuses: Vec<&str> = answers.iter().map(|a| &a[9..12]).collect();
    assert_eq!(
        statuses,
        ["405", "200", "404", "200", "413", "200"],
        "{answers:#?}"
    );
    assert!(answers.iter().all(|a| !a.contains("connection: close")));
}

#[tokio::test]
async fn a_huge_upload_gets_its_413_with_connection_close() {
    let app = spawn_app().await;
    let request = format!(
        "POST /api/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
        5 * 1024 * 1024
    );
    let answer = &one_connection(&app, &[request.into_bytes()]).await[0];
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}
