//! Bad input everywhere: random methods, paths, headers and bodies (random
//! bytes, deep and huge JSON, wrong types, odd Unicode) at every endpoint.
//! Whatever comes in, the answer is below 500 and JSON. Cases: PROPTEST_CASES
//! (default 256).

use proptest::prelude::*;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, spawn_app};

const PATHS: [&str; 8] = [
    "/api/auth/login/",
    "/api/auth/token/refresh",
    "/api/auth/profile/",
    "/api/auth/register/",
    "/api/auth/password/reset/",
    "/api/auth/password/reset/confirm/",
    "/healthz",
    "/api/auth/",
];
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "FROB",
];
const FIELDS: [&str; 6] = [
    "username",
    "password",
    "email",
    "refresh",
    "new_password",
    "uid",
];

#[derive(Debug, Clone)]
struct Input {
    method: &'static str,
    path: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[\\u{0}-\\u{1f}\\u{202e}\\u{200b}\\u{fffd}\\u{1f600}a-z]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(&FIELDS[..]), inner), 0..6).prop_map(
                |pairs| {
                    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }
            ),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        // Known fields with values of any type.
        prop::collection::vec((prop::sample::select(&FIELDS[..]), json_value()), 0..5).prop_map(
            |pairs| {
                let map: serde_json::Map<String, Value> =
                    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                Value::Object(map).to_string().into_bytes()
            }
        ),
        (1usize..20_000)
            .prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        (1usize..100_000).prop_map(|len| format!(
            r#"{{"username":"{}","password":"x"}}"#,
            "a".repeat(len)
        )
        .into_bytes()),
        "[a-z]{1,8}=[^&]{0,20}(&[a-z_]{1,12}=[^&]{0,20}){0,4}".prop_map(String::into_bytes),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        prop::sample::select(&METHODS[..]),
        prop::sample::select(&PATHS[..]),
        "(\\?[a-z]{1,6}=[A-Za-z0-9%_-]{0,30}(&[a-z]{1,6}=[A-Za-z0-9%_-]{0,30}){0,3})?",
        prop::option::of(prop_oneof![
            Just("application/json".to_string()),
            Just("application/x-www-form-urlencoded".to_string()),
            Just("application/json; charset=latin-1".to_string()),
            Just("multipart/form-data; boundary=x".to_string()),
            "[ -~]{0,30}",
        ]),
        prop::option::of(prop_oneof![
            "Bearer [ -~]{0,200}",
            "[ -~]{0,60}",
            Just("Bearer".to_string())
        ]),
        body(),
    )
        .prop_map(
            |(method, path, query, content_type, authorization, body)| Input {
                method,
                path: format!("{path}{query}"),
                content_type,
                authorization,
                body,
            },
        )
}

async fn send(app: &TestApp, input: &Input) -> Result<(u16, Option<String>, String), String> {
    let method = reqwest::Method::from_bytes(input.method.as_bytes()).unwrap();
    let mut request = app
        .client
        .request(method, app.url(&input.path))
        .body(input.body.clone());
    if let Some(ct) = &input.content_type {
        request = request.header("content-type", ct.as_str());
    }
    if let Some(auth) = &input.authorization {
        request = request.header("authorization", auth.as_str());
    }
    let response = request.send().await.map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, content_type, text))
}

#[test]
fn any_request_gets_a_json_answer_below_500() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(async {
        let app = spawn_app().await;
        app.register("alice", "alice@example.com", PASSWORD).await;
        app
    });
    let config = ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(input in input())| {
        let answer = runtime.block_on(send(&app, &input));
        prop_assert!(answer.is_ok(), "no answer for {:?}: {}", input, answer.as_ref().unwrap_err());
        let (status, content_type, text) = answer.unwrap();
        prop_assert!(status < 500, "{} for {:?}: {}", status, input, text);
        prop_assert_eq!(content_type.as_deref(), Some("application/json"), "{:?}", input);
        if input.method != "HEAD" {
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "not JSON: {:?} for {:?}", text, input);
        }
    });
    // Still healthy afterwards.
    let r = runtime.block_on(app.login("alice", PASSWORD));
    assert_eq!(r.status, 200);
}
