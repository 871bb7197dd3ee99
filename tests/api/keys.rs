//! Asymmetric signing keys: EdDSA and RS256 end to end, the JWKS, forged
//! tokens of every kind refused, a key rotation, iss/aud and leeway.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latch::Config;
use latch::config::JwtAlgorithm;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TEST_SECRET, TestApp, claims, now, sign, spawn_app, spawn_app_with,
};

const INVALID: &str = r#"{"detail":"Token is invalid","code":"token_not_valid"}"#;

// Computed apart from latch: `openssl pkey -outform DER` and RFC 7638 by
// hand in Python (hashlib, json with sorted keys).
const ED_A_KID: &str = "rsmxqqbdTDyrq49v1-Gx0Sj8UTWD0qZVjk0DdcqmvIo";
const ED_A_X: &str = "nywbzDJZUCNdW1xi5zaQn0YCODOWFkn2CVBtELe22is";
const ED_B_KID: &str = "FY1rZvi8UWGncPoc1XWeINr5NxAieOKru7TqAlqTGJw";
const ED_B_X: &str = "3G8O3GPpsA4CLaQCqRQsH2kxgfnY423_qY1f1zMmaXs";
const RSA_A_KID: &str = "Xpypzlqo0ZMhrz_9E85P0nlC8gn-3xyKj5cMYCPLJ28";
const RSA_B_KID: &str = "lIPA8SDFxeikwl-w1p2Nw4oYMsCx3XqIUaLuYJfXxzo";

pub(crate) fn key_file(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys")).join(name)
}

fn read_key(name: &str) -> String {
    std::fs::read_to_string(key_file(name)).unwrap()
}

/// Configures `algorithm` with the private key in `tests/keys/<key>`.
pub(crate) fn with_key(algorithm: JwtAlgorithm, key: &str) -> impl FnOnce(&mut Config) {
    let path = key_file(key);
    move |c| {
        c.jwt.algorithm = algorithm;
        c.jwt.private_key_file = Some(path);
    }
}

/// Signs `claims` as an attacker holding `tests/keys/<key>` would.
pub(crate) fn sign_with_file(
    key: &str,
    algorithm: Algorithm,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let pem = read_key(key);
    let encoding = match algorithm {
        Algorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
            EncodingKey::from_ed_der(key.to_pkcs8_der().unwrap().as_bytes())
        }
        _ => {
            let key =
                <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&pem).unwrap();
            EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes())
        }
    };
    sign_with(&encoding, algorithm, kid, claims)
}

fn sign_with(key: &EncodingKey, algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(String::from);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(crate) fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The DER inside a PEM file.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn token_claims(token_type: &str) -> Value {
    json!({"token_type": token_type, "exp": now() + 60, "iat": now(), "jti": "0123456789abcdef0123456789abcdef", "user_id": "1"})
}

async fn refresh(app: &TestApp, token: &str) -> crate::helpers::TestResponse {
    app.post_json("/api/auth/token/refresh/", json!({"refresh": token}))
        .await
}

/// Every place a token is checked refuses it as invalid: profile and
/// logout/all (access), refresh, verify, blacklist and logout (refresh).
async fn assert_refused(app: &TestApp, name: &str, access: &str, refresh_token: &str) {
    for path in ["/api/auth/profile/", "/api/auth/logout/all/"] {
        let r = if path.ends_with("profile/") {
            app.profile(access).await
        } else {
            app.post_with_bearer(path, access).await
        };
        assert_eq!(r.status, 401, "{name} at {path}: {}", r.text);
        assert_eq!(
            r.json()["messages"][0]["message"],
            "Token is invalid",
            "{name} at {path}"
        );
    }
    let r = refresh(app, refresh_token).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (401, INVALID),
        "{name} at refresh"
    );
    for (path, field, token) in [
        ("/api/auth/token/verify/", "token", access),
        ("/api/auth/token/verify/", "token", refresh_token),
        ("/api/auth/token/blacklist/", "refresh", refresh_token),
        ("/api/auth/logout/", "refresh", refresh_token),
    ] {
        let r = app.post_json(path, json!({ field: token })).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (401, INVALID),
            "{name} at {path}"
        );
    }
}

#[tokio::test]
async fn eddsa_and_rs256_log_in_read_the_profile_and_refresh() {
    for (algorithm, key, alg, kid) in [
        (JwtAlgorithm::EdDSA, "ed25519-a.pem", "EdDSA", ED_A_KID),
        (JwtAlgorithm::RS256, "rsa-a.pem", "RS256", RSA_A_KID),
    ] {
        let app = spawn_app_with(with_key(algorithm, key)).await;
        let (access, refresh_token) = app.user_with_tokens("alice").await;
        for token in [&access, &refresh_token] {
            assert_eq!(header(token), json!({"typ": "JWT", "alg": alg, "kid": kid}));
        }
        let names: Vec<String> = claims(&access)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(names, ["token_type", "exp", "iat", "jti", "user_id"]);
        app.profile(&access).await.assert(
            200,
            r#"{"id":1,"username":"alice","email":"alice@example.com"}"#,
        );
        let r = refresh(&app, &refresh_token).await;
        assert_eq!(r.status, 200, "{alg}: {}", r.text);
        let new_access = r.json()["access"].as_str().unwrap().to_string();
        assert_eq!(header(&new_access)["kid"], kid);
        assert_eq!(app.profile(&new_access).await.status, 200);
    }
}

#[tokio::test]
async fn jwks_publishes_public_keys_for_get_and_head_only() {
    let app = spawn_app_with(with_key(JwtAlgorithm::EdDSA, "ed25519-a.pem")).await;
    let r = app.get("/.well-known/jwks.json", None).await;
    r.assert(
        200,
        &json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ED_A_X, "kid": ED_A_KID, "alg": "EdDSA", "use": "sig"}]})
            .to_string(),
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));

    let r = app.request("HEAD", "/.well-known/jwks.json").await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));

    for method in ["POST", "PUT", "DELETE"] {
        let r = app.request(method, "/.well-known/jwks.json").await;
        r.assert(
            405,
            &format!(r#"{{"detail":"Method \"{method}\" not allowed."}}"#),
        );
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }

    let app = spawn_app_with(with_key(JwtAlgorithm::RS256, "rsa-a.pem")).await;
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    let key = &jwks["keys"][0];
    let mut names: Vec<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["alg", "e", "kid", "kty", "n", "use"],
        "no private members"
    );
    assert_eq!(
        (&key["kty"], &key["alg"], &key["e"], &key["kid"]),
        (
            &json!("RSA"),
            &json!("RS256"),
            &json!("AQAB"),
            &json!(RSA_A_KID)
        )
    );
}

#[tokio::test]
async fn with_hmac_there_is_no_jwks_and_tokens_have_no_kid() {
    let app = spawn_app().await;
    for method in ["GET", "POST"] {
        app.request(method, "/.well-known/jwks.json")
            .await
            .assert(404, r#"{"detail":"Not found."}"#);
    }
    let (access, _) = app.user_with_tokens("alice").await;
    assert_eq!(header(&access), json!({"typ": "JWT", "alg": "HS256"}));
}

/// Every kind of forged token, for an app signing with `key`/`algorithm`
/// (public key `public`, kid `kid`): (name, access token, refresh token).
fn forgeries(
    algorithm: Algorithm,
    key: &str,
    public: &str,
    other_key: &str,
    kid: &str,
    raw_public: Vec<u8>,
) -> Vec<(String, String, String)> {
    let mut forged = Vec::new();
    let mut add = |name: &str, make: &dyn Fn(&Value) -> String| {
        forged.push((
            name.to_string(),
            make(&token_claims("access")),
            make(&token_claims("refresh")),
        ));
    };
    for alg in ["none", "None", "NONE", "nOnE"] {
        add(&format!("alg {alg}"), &|claims| {
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            )
        });
    }
    add("another key of the same kind, naming our kid", &|c| {
        sign_with_file(other_key, algorithm, Some(kid), c)
    });
    add("HS256 with an empty key", &|c| {
        sign_with(
            &EncodingKey::from_secret(b""),
            Algorithm::HS256,
            Some(kid),
            c,
        )
    });
    add("signature stripped", &|c| {
        let token = sign_with_file(key, algorithm, Some(kid), c);
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        format!("{unsigned}.")
    });
    add("signature and its dot stripped", &|c| {
        let token = sign_with_file(key, algorithm, Some(kid), c);
        token.rsplit_once('.').unwrap().0.to_string()
    });
    add("signature of another token", &|c| {
        let token = sign_with_file(key, algorithm, Some(kid), c);
        let other = sign_with_file(key, algorithm, Some(kid), &token_claims("other"));
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        format!("{unsigned}.{}", other.rsplit_once('.').unwrap().1)
    });
    add("our key, unknown kid", &|c| {
        sign_with_file(key, algorithm, Some("unknown"), c)
    });
    add("our key, no kid", &|c| {
        sign_with_file(key, algorithm, None, c)
    });
    let public_pem = read_key(public);
    add("HS256 keyed with the public key PEM", &|c| {
        sign_with(
            &EncodingKey::from_secret(public_pem.as_bytes()),
            Algorithm::HS256,
            Some(kid),
            c,
        )
    });
    let spki = pem_der(&public_pem);
    add("HS256 keyed with the public key DER", &|c| {
        sign_with(
            &EncodingKey::from_secret(&spki),
            Algorithm::HS256,
            Some(kid),
            c,
        )
    });
    add("HS256 keyed with the raw public key", &|c| {
        sign_with(
            &EncodingKey::from_secret(&raw_public),
            Algorithm::HS256,
            Some(kid),
            c,
        )
    });
    for hmac in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        add(&format!("{hmac:?} with the HMAC secret"), &|c| {
            sign_with(
                &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
                hmac,
                Some(kid),
                c,
            )
        });
        add(&format!("{hmac:?} with the HMAC secret, no kid"), &|c| {
            sign(c, hmac)
        });
    }
    forged
}

#[tokio::test]
async fn forged_tokens_are_refused_with_eddsa() {
    let app = spawn_app_with(with_key(JwtAlgorithm::EdDSA, "ed25519-a.pem")).await;
    let (access, _) = app.user_with_tokens("alice").await;
    assert_eq!(app.profile(&access).await.status, 200);
    let raw = URL_SAFE_NO_PAD.decode(ED_A_X).unwrap();
    let mut forged = forgeries(
        Algorithm::EdDSA,
        "ed25519-a.pem",
        "ed25519-a.pub.pem",
        "ed25519-b.pem",
        ED_A_KID,
        raw,
    );
    // RS256 when EdDSA is configured, naming our kid or its own.
    for kid in [ED_A_KID, RSA_A_KID] {
        forged.push((
            format!("RS256 naming {kid}"),
            sign_with_file(
                "rsa-a.pem",
                Algorithm::RS256,
                Some(kid),
                &token_claims("access"),
            ),
            sign_with_file(
                "rsa-a.pem",
                Algorithm::RS256,
                Some(kid),
                &token_claims("refresh"),
            ),
        ));
    }
    for (name, access, refresh_token) in &forged {
        assert_refused(&app, name, access, refresh_token).await;
    }
}

#[tokio::test]
async fn forged_tokens_are_refused_with_rs256() {
    let app = spawn_app_with(with_key(JwtAlgorithm::RS256, "rsa-a.pem")).await;
    let (access, _) = app.user_with_tokens("alice").await;
    assert_eq!(app.profile(&access).await.status, 200);
    // The raw public key: PKCS#1 RSAPublicKey, the BIT STRING inside the SPKI.
    let spki = pem_der(&read_key("rsa-a.pub.pem"));
    let raw = spki[spki.len() - 270..].to_vec();
    assert_eq!(
        &raw[..4],
        &[0x30, 0x82, 0x01, 0x0a],
        "RSAPublicKey SEQUENCE"
    );
    let mut forged = forgeries(
        Algorithm::RS256,
        "rsa-a.pem",
        "rsa-a.pub.pem",
        "rsa-b.pem",
        RSA_A_KID,
        raw,
    );
    for kid in [RSA_A_KID, ED_A_KID] {
        forged.push((
            format!("EdDSA naming {kid}"),
            sign_with_file(
                "ed25519-a.pem",
                Algorithm::EdDSA,
                Some(kid),
                &token_claims("access"),
            ),
            sign_with_file(
                "ed25519-a.pem",
                Algorithm::EdDSA,
                Some(kid),
                &token_claims("refresh"),
            ),
        ));
    }
    for (name, access, refresh_token) in &forged {
        assert_refused(&app, name, access, refresh_token).await;
    }
}

#[tokio::test]
async fn a_key_rotation_keeps_old_tokens_working_and_signs_with_the_new_key() {
    let mut app = spawn_app_with(with_key(JwtAlgorithm::EdDSA, "ed25519-a.pem")).await;
    let (old_access, old_refresh) = app.user_with_tokens("alice").await;
    assert_eq!(header(&old_access)["kid"], ED_A_KID);

    app.restart_with(|c| {
        with_key(JwtAlgorithm::EdDSA, "ed25519-b.pem")(c);
        c.jwt.previous_public_key_files = vec![key_file("ed25519-a.pub.pem")];
    })
    .await;
    assert_eq!(
        app.profile(&old_access).await.status,
        200,
        "A's access token"
    );
    let r = refresh(&app, &old_refresh).await;
    assert_eq!(r.status, 200, "A's refresh token: {}", r.text);
    assert_eq!(
        header(r.json()["access"].as_str().unwrap())["kid"],
        ED_B_KID
    );
    let new_access = app.login("alice", PASSWORD).await.json()["access"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(header(&new_access)["kid"], ED_B_KID);
    assert_eq!(app.profile(&new_access).await.status, 200);
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    let published: Vec<(&str, &str)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["x"].as_str().unwrap()))
        .collect();
    assert_eq!(published, [(ED_B_KID, ED_B_X), (ED_A_KID, ED_A_X)]);

    // A retired: its tokens stop working, B's go on.
    app.restart_with(|c| c.jwt.previous_public_key_files.clear())
        .await;
    assert_eq!(app.profile(&old_access).await.status, 401);
    assert_eq!(app.profile(&new_access).await.status, 200);
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rs256_rotation_publishes_both_keys() {
    let mut app = spawn_app_with(with_key(JwtAlgorithm::RS256, "rsa-a.pem")).await;
    let (old_access, _) = app.user_with_tokens("alice").await;
    app.restart_with(|c| {
        with_key(JwtAlgorithm::RS256, "rsa-b.pem")(c);
        c.jwt.previous_public_key_files = vec![key_file("rsa-a.pub.pem")];
    })
    .await;
    assert_eq!(app.profile(&old_access).await.status, 200);
    let jwks = app.get("/.well-known/jwks.json", None).await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [RSA_B_KID, RSA_A_KID]);
}

#[tokio::test]
async fn issuer_and_audience_are_set_and_enforced() {
    let app = spawn_app_with(|c| {
        with_key(JwtAlgorithm::EdDSA, "ed25519-a.pem")(c);
        c.jwt.issuer = Some("https://auth.example.com".into());
        c.jwt.audience = Some("example-api".into());
    })
    .await;
    let (access, refresh_token) = app.user_with_tokens("alice").await;
    for token in [&access, &refresh_token] {
        let c = claims(token);
        let names: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["token_type", "exp", "iat", "jti", "user_id", "aud", "iss"]
        );
        assert_eq!(
            (&c["iss"], &c["aud"]),
            (&json!("https://auth.example.com"), &json!("example-api"))
        );
    }
    assert_eq!(app.profile(&access).await.status, 200);
    let r = refresh(&app, &refresh_token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        claims(r.json()["access"].as_str().unwrap())["iss"],
        "https://auth.example.com"
    );

    let with = |token_type: &str, iss: Option<&str>, aud: Option<&str>| {
        let mut c = token_claims(token_type);
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = json!(aud);
        }
        sign_with_file("ed25519-a.pem", Algorithm::EdDSA, Some(ED_A_KID), &c)
    };
    let good = (Some("https://auth.example.com"), Some("example-api"));
    assert_eq!(
        app.profile(&with("access", good.0, good.1)).await.status,
        200
    );
    for (name, iss, aud) in [
        ("no iss", None, good.1),
        ("another iss", Some("https://evil.example.com"), good.1),
        ("no aud", good.0, None),
        ("another aud", good.0, Some("other-api")),
    ] {
        assert_refused(
            &app,
            name,
            &with("access", iss, aud),
            &with("refresh", iss, aud),
        )
        .await;
    }
}

#[tokio::test]
async fn leeway_accepts_a_token_expired_a_second_ago_only_when_configured() {
    let expired_by = |secs: i64| {
        let mut c = token_claims("access");
        c["exp"] = json!(now() - secs);
        sign(&c, Algorithm::HS256)
    };
    let app = spawn_app().await;
    app.user_with_tokens("alice").await;
    let r = app.profile(&expired_by(1)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["messages"][0]["message"], "Token is expired");

    let app = spawn_app_with(|c| c.jwt.leeway_secs = 5).await;
    app.user_with_tokens("alice").await;
    assert_eq!(app.profile(&expired_by(1)).await.status, 200);
    let r = app.profile(&expired_by(30)).await;
    assert_eq!(r.json()["messages"][0]["message"], "Token is expired");
}
