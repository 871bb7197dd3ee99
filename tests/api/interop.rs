//! Interoperability with the real djangorestframework-simplejwt: a Django
//! service with the same signing key accepts latch's tokens, latch accepts
//! Django's, and both refuse bad tokens in the same words. With EdDSA and
//! RS256, PyJWT and simplejwt (JWK_URL) verify latch's tokens with its JWKS.
//!
//! Needs Python with tests/interop/requirements.txt installed: set
//! LATCH_INTEROP_PYTHON to that interpreter (`.ci/run` does). Without it the
//! test says so and passes, unless LATCH_REQUIRE_INTEROP=1 or CI=true: then
//! it fails.

use std::io::Write as _;
use std::process::{Command, Stdio};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use latch::config::JwtAlgorithm;

use crate::helpers::{TEST_SECRET, claims, in_ci, now, sign, spawn_app, spawn_app_with};
use crate::keys::{header, sign_with_file, with_key};

pub fn python() -> Option<String> {
    let python = std::env::var("LATCH_INTEROP_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_simplejwt = Command::new(&python)
        .args(["-c", "import rest_framework_simplejwt"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_simplejwt {
        return Some(python);
    }
    let required = std::env::var("LATCH_REQUIRE_INTEROP").as_deref() == Ok("1");
    assert!(
        !required && !in_ci(),
        "LATCH_REQUIRE_INTEROP=1 or CI=true, but {python} cannot import rest_framework_simplejwt"
    );
    eprintln!(
        "interop test skipped: install tests/interop/requirements.txt and set LATCH_INTEROP_PYTHON"
    );
    None
}

fn ask_simplejwt(python: &str, job: &Value) -> Value {
    ask(python, "simplejwt_oracle.py", job)
}

/// Runs `tests/interop/<script>` with `job` as JSON on stdin; its JSON answer.
pub fn ask(python: &str, script: &str, job: &Value) -> Value {
    let script = format!("{}/tests/interop/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn claim_names(token: &str) -> Vec<String> {
    let mut names: Vec<String> = claims(token).as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

#[tokio::test]
async fn latch_and_simplejwt_accept_each_others_tokens() {
    let Some(python) = python() else { return };
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("alice").await;
    let access_claims = json!({"token_type": "access", "iat": now() - 400, "jti": "0123456789abcdef0123456789abcdef", "user_id": "1"});
    let with = |key: &str, value: Value| {
        let mut c = access_claims.clone();
        c[key] = value;
        c
    };
    let bad_access = json!({
        "garbage": "not-a-token",
        "tampered": format!("{access}x"),
        "refresh_as_access": refresh,
        "expired": sign(&with("exp", json!(now() - 100)), Algorithm::HS256),
        "other_algorithm": sign(&with("exp", json!(now() + 100)), Algorithm::HS512),
        "no_type": sign(&json!({"exp": now() + 100, "jti": "ab", "user_id": "1"}), Algorithm::HS256),
    });
    let answer = ask_simplejwt(
        &python,
        &json!({
            "secret": TEST_SECRET, "user_id": 1, "username": "alice",
            "latch_access": access, "latch_refresh": refresh, "bad_access": bad_access,
        }),
    );

    // simplejwt reads latch's tokens, and authenticates a request with one.
    assert_eq!(answer["latch_access"]["ok"], true, "{answer}");
    assert_eq!(answer["latch_refresh"]["ok"], true, "{answer}");
    assert_eq!(
        answer["latch_access_authenticates"],
        json!({"ok": true, "user_id": 1})
    );
    assert_eq!(answer["latch_access"]["payload"]["user_id"], "1");

    // Same claim names both ways.
    let django_access = answer["django_access"].as_str().unwrap();
    let django_refresh = answer["django_refresh"].as_str().unwrap();
    assert_eq!(claim_names(&access), claim_names(django_access));
    assert_eq!(claim_names(&refresh), claim_names(django_refresh));

    // latch accepts simplejwt's tokens.
    let r = app.profile(django_access).await;
    r.assert(
        200,
        r#"{"id":1,"username":"alice","email":"alice@example.com"}"#,
    );
    let r = app
        .post_json(
            "/api/auth/token/refresh/",
            json!({"refresh": django_refresh}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Both refuse the same tokens with the same message.
    for (name, token) in bad_access.as_object().unwrap() {
        let verdict = &answer["bad_access"][name];
        assert_eq!(verdict["ok"], false, "simplejwt accepted {name}");
        let r = app.profile(token.as_str().unwrap()).await;
        assert_eq!(r.status, 401, "{name}");
        assert_eq!(
            r.json()["messages"][0]["message"],
            verdict["message"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn pyjwt_and_simplejwt_verify_eddsa_and_rs256_tokens_with_the_jwks() {
    let Some(python) = python() else { return };
    for (algorithm, key, other_key, issuer, audience) in [
        (
            JwtAlgorithm::EdDSA,
            "ed25519-a.pem",
            "ed25519-b.pem",
            None,
            None,
        ),
        (
            JwtAlgorithm::RS256,
            "rsa-a.pem",
            "rsa-b.pem",
            Some("https://auth.example.com"),
            Some("example-api"),
        ),
    ] {
        let app = spawn_app_with(|c| {
            with_key(algorithm, key)(c);
            c.jwt.issuer = issuer.map(String::from);
            c.jwt.audience = audience.map(String::from);
        })
        .await;
        let (access, refresh) = app.user_with_tokens("alice").await;
        let r = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let kid = header(&access)["kid"].clone();
        let alg = header(&access)["alg"].clone();
        // Signed by another key under our kid: PyJWT must see through it.
        let forged = sign_with_file(
            other_key,
            serde_json::from_value(alg.clone()).unwrap(),
            kid.as_str(),
            &claims(&access),
        );
        let job = json!({
            "jwks": r.json(), "jwks_url": app.url("/.well-known/jwks.json"),
            "algorithm": alg, "issuer": issuer, "audience": audience,
            "user_id": 1, "username": "alice",
            "tokens": {"access": access, "refresh": refresh},
            "forged": {"other_key": forged},
        });
        // The script fetches the JWKS from this test's server: off the runtime.
        let answer = {
            let python = python.clone();
            tokio::task::spawn_blocking(move || ask(&python, "jwks_oracle.py", &job))
                .await
                .unwrap()
        };
        for (name, token) in [("access", &access), ("refresh", &refresh)] {
            let verdict = &answer["pyjwt"][name];
            assert_eq!(verdict["ok"], true, "{alg} {name}: {answer}");
            assert_eq!((&verdict["kid"], &verdict["alg"]), (&kid, &alg), "{name}");
            assert_eq!(verdict["claims"], claims(token), "{alg} {name}");
            let names = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(names(&verdict["claims"]), names(&claims(token)));
        }
        assert_eq!(claims(&access)["iss"].as_str(), issuer);
        let refused = &answer["pyjwt_forged"]["other_key"];
        assert_eq!(refused["ok"], false, "{answer}");
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .starts_with("InvalidSignatureError"),
            "{refused}"
        );
        assert_eq!(
            answer["simplejwt_authenticates"],
            json!({"ok": true, "user_id": 1}),
            "{alg}"
        );
    }
}

/// A Django SECRET_KEY full of punctuation (with leading zeros and a trailing
/// space) given to the real binary through the environment signs tokens that
/// simplejwt accepts, and the other way round: it reaches the HMAC byte for byte.
#[tokio::test]
async fn a_punctuation_heavy_secret_from_the_environment_interoperates() {
    let Some(python) = python() else { return };
    const KEY: &str = "0123 django-insecure-#k$&^a(=+)_!@%*[1, 2]{a = 1}'\"\\,;:` ";
    let dir = tempfile::tempdir().unwrap();
    let latch = crate::process::Process::start(
        dir.path(),
        &["--smtp-port", "1"],
        &[
            ("LATCH_JWT_SECRET", KEY),
            ("LATCH_PASSWORD_SCRYPT_LOG_N", "4"),
            ("LATCH_PASSWORD_SCRYPT_P", "1"),
        ],
    );
    let base = format!("http://{}", latch.addr());
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let r = post(
        "/api/auth/register/",
        json!({"username": "alice", "email": "alice@example.com", "password": "correct-horse-9"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let pair: Value = post(
        "/api/auth/login/",
        json!({"username": "alice", "password": "correct-horse-9"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let answer = ask_simplejwt(
        &python,
        &json!({
            "secret": KEY, "user_id": 1, "username": "alice",
            "latch_access": pair["access"], "latch_refresh": pair["refresh"], "bad_access": {},
        }),
    );
    assert_eq!(answer["latch_access"]["ok"], true, "{answer}");
    assert_eq!(answer["latch_refresh"]["ok"], true, "{answer}");
    let r = post(
        "/api/auth/token/refresh/",
        json!({"refresh": answer["django_refresh"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "latch accepts simplejwt's token");
}
