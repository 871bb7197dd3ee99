//! JWTs shaped exactly as djangorestframework-simplejwt 5.5 makes them, so a
//! Django service with the same signing key accepts latch's tokens and the
//! other way round: claims `token_type`, `exp`, `iat`, `jti`, `user_id`, then
//! `aud` and `iss` when configured.
//!
//! HMAC tokens are exactly simplejwt's (no `kid`; one read is ignored). With
//! EdDSA or RS256 every header names its key by `kid` (see `keys.rs`); a
//! token is checked with the key its `kid` names, among the current one and
//! `jwt.previous_public_key_files`, and nothing else.

mod keys;

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde_json::{Map, Value, json};

use crate::config::{JwtAlgorithm, JwtConfig};

pub type Claims = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// Why a token was refused; `message()` is simplejwt's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
    NoExp,
    NoId,
    NoType,
    WrongType,
}

impl TokenError {
    /// Every kind, for the OpenAPI document's list of messages.
    pub const ALL: [TokenError; 6] = [
        TokenError::Invalid,
        TokenError::Expired,
        TokenError::NoExp,
        TokenError::NoId,
        TokenError::NoType,
        TokenError::WrongType,
    ];

    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Invalid => "Token is invalid",
            TokenError::Expired => "Token is expired",
            TokenError::NoExp => "Token has no 'exp' claim",
            TokenError::NoId => "Token has no id",
            TokenError::NoType => "Token has no type",
            TokenError::WrongType => "Token has wrong type",
        }
    }
}

/// A freshly issued refresh + access pair.
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
    /// The claims of `refresh`, as `verify` would return them.
    pub refresh_claims: Claims,
}

/// The keys tokens are checked with.
enum Verifying {
    /// HMAC: the shared secret.
    Secret(DecodingKey),
    /// EdDSA/RS256: the current public key first, then the previous ones.
    Public(Vec<keys::PublicKey>),
}

pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    /// The current key's id, in every header; none with HMAC.
    kid: Option<String>,
    verifying: Verifying,
    /// `{"keys": [...]}`; none with HMAC.
    jwks: Option<Value>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    access_lifetime: i64,
    refresh_lifetime: i64,
}

impl Tokens {
    /// Tokens as `config` describes them. `hmac_secret` is the key of the
    /// HMAC algorithms; EdDSA and RS256 do not use it but read their key
    /// files here. Fails, naming the setting, on a key file that is missing,
    /// unreadable or not a key for `config.algorithm`.
    pub fn new(config: &JwtConfig, hmac_secret: &[u8]) -> anyhow::Result<Tokens> {
        let algorithm = match config.algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::HS384 => Algorithm::HS384,
            JwtAlgorithm::HS512 => Algorithm::HS512,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::RS256 => Algorithm::RS256,
        };
        let (encoding, kid, verifying, jwks) = if config.algorithm.is_asymmetric() {
            let path = config.private_key_file.as_deref().with_context(|| {
                format!(
                    "invalid jwt.private_key_file: jwt.algorithm = {:?} signs with a private key; give its PEM file",
                    config.algorithm
                )
            })?;
            let signing = keys::private_key(config.algorithm, path)?;
            let mut public = vec![signing.public];
            for path in &config.previous_public_key_files {
                let key = keys::previous_public_key(config.algorithm, path)?;
                // The current key listed again (a rotation half done) counts once.
                if public.iter().all(|k| k.kid != key.kid) {
                    public.push(key);
                }
            }
            let jwks = json!({"keys": public.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
            let kid = public[0].kid.clone();
            (
                signing.encoding,
                Some(kid),
                Verifying::Public(public),
                Some(jwks),
            )
        } else {
            (
                EncodingKey::from_secret(hmac_secret),
                None,
                Verifying::Secret(DecodingKey::from_secret(hmac_secret)),
                None,
            )
        };
        let mut validation = Validation::new(algorithm);
        // simplejwt's defaults: `exp` checked by us when missing so that the
        // message can say so; `nbf` checked when present, as PyJWT does; `iss`
        // and `aud` checked by us, as PyJWT does (see `check_iss_aud`).
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        let tokens = Tokens {
            algorithm,
            encoding,
            kid,
            verifying,
            jwks,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_lifetime: i64::try_from(config.access_token_lifetime_secs)
                .unwrap_or(i64::MAX / 2),
            refresh_lifetime: i64::try_from(config.refresh_token_lifetime_secs)
                .unwrap_or(i64::MAX / 2),
        };
        tokens.self_check()?;
        Ok(tokens)
    }

    /// Signs and verifies one token, so that a key which cannot sign stops
    /// latch at start-up rather than failing a login later.
    fn self_check(&self) -> anyhow::Result<()> {
        let mut claims = self.new_claims(TokenType::Access, unix_now());
        self.stamp(&mut claims);
        let token = jsonwebtoken::encode(&self.header(), &claims, &self.encoding)
            .with_context(|| format!("signing a test token with {:?} failed", self.algorithm))?;
        self.verify(&token, TokenType::Access)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("a test token latch signed did not verify: {e:?}"))
    }

    /// What a login returns.
    pub fn issue_pair(&self, user_id: i64) -> TokenPair {
        let now = unix_now();
        self.pair_for(
            user_id,
            &new_jti(),
            now,
            now.saturating_add(self.refresh_lifetime),
        )
    }

    /// A pair whose refresh token has exactly these claims (and a new access
    /// token): signing is deterministic, so the same claims give the same
    /// refresh token again, which rotation's grace window hands out.
    pub fn pair_for(&self, user_id: i64, jti: &str, iat: i64, exp: i64) -> TokenPair {
        let mut refresh = Claims::new();
        refresh.insert("token_type".into(), json!(TokenType::Refresh.as_str()));
        refresh.insert("exp".into(), json!(exp));
        refresh.insert("iat".into(), json!(iat));
        refresh.insert("jti".into(), json!(jti));
        refresh.insert("user_id".into(), json!(user_id.to_string()));
        self.stamp(&mut refresh);
        let access = self.access_from(&refresh, unix_now());
        TokenPair {
            refresh: self.sign(&refresh),
            access: self.sign(&access),
            refresh_claims: refresh,
        }
    }

    /// A new access token carrying the refresh token's claims, as simplejwt's
    /// `RefreshToken.access_token` builds it (everything but type, exp and jti is
    /// copied, `iat` included). `refresh` must already be verified.
    pub fn access_for_refresh(&self, refresh: &Claims) -> String {
        self.sign(&self.access_from(refresh, unix_now()))
    }

    /// The public keys tokens are checked with, as a JWK Set; none with HMAC.
    pub fn jwks(&self) -> Option<Value> {
        self.jwks.clone()
    }

    /// Checks signature, algorithm, key id, expiry and the claims simplejwt
    /// requires.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let key = self.key_for(token).ok_or(TokenError::Invalid)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        let claims = data.claims;
        self.check_iss_aud(&claims)?;
        if !claims.contains_key("exp") {
            return Err(TokenError::NoExp);
        }
        if !claims.contains_key("jti") {
            return Err(TokenError::NoId);
        }
        match claims.get("token_type").and_then(Value::as_str) {
            None => Err(TokenError::NoType),
            Some(t) if t != expected.as_str() => Err(TokenError::WrongType),
            Some(_) => Ok(claims),
        }
    }

    /// The key `token` may be checked with. An HMAC token's `kid` means
    /// nothing (simplejwt ignores it); an asymmetric one must be of the
    /// configured algorithm and name one of our keys.
    fn key_for(&self, token: &str) -> Option<&DecodingKey> {
        match &self.verifying {
            Verifying::Secret(key) => Some(key),
            Verifying::Public(keys) => {
                let header = jsonwebtoken::decode_header(token).ok()?;
                if header.alg != self.algorithm {
                    return None;
                }
                let kid = header.kid?;
                keys.iter().find(|k| k.kid == kid).map(|k| &k.decoding)
            }
        }
    }

    /// PyJWT's checks with simplejwt's ISSUER and AUDIENCE set: `iss` must be
    /// that string; `aud` that string, or a list of strings holding it.
    /// Unset, neither is looked at.
    fn check_iss_aud(&self, claims: &Claims) -> Result<(), TokenError> {
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(TokenError::Invalid);
        }
        if let Some(audience) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => {
                    auds.iter().all(Value::is_string)
                        && auds.iter().any(|a| a.as_str() == Some(audience.as_str()))
                }
                _ => false,
            };
            if !ok {
                return Err(TokenError::Invalid);
            }
        }
        Ok(())
    }

    fn new_claims(&self, kind: TokenType, now: i64) -> Claims {
        let lifetime = match kind {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
        };
        let mut claims = Claims::new();
        claims.insert("token_type".into(), json!(kind.as_str()));
        claims.insert("exp".into(), json!(now.saturating_add(lifetime)));
        claims.insert("iat".into(), json!(now));
        claims.insert("jti".into(), json!(new_jti()));
        claims
    }

    fn access_from(&self, refresh: &Claims, now: i64) -> Claims {
        let mut access = self.new_claims(TokenType::Access, now);
        for (name, value) in refresh {
            if !matches!(name.as_str(), "token_type" | "exp" | "jti") {
                access.insert(name.clone(), value.clone());
            }
        }
        self.stamp(&mut access);
        access
    }

    /// `aud` then `iss`, after the other claims, as simplejwt's
    /// `TokenBackend.encode` adds them (a claim already there keeps its place).
    fn stamp(&self, claims: &mut Claims) {
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), json!(audience));
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), json!(issuer));
        }
    }

    fn header(&self) -> Header {
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        header
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&self.header(), claims, &self.encoding)
            .expect("the key signed a test token at start-up")
    }
}

/// The user id a token names: simplejwt 5.5 writes it as a string; older
/// versions and other issuers wrote an integer. Both are accepted.
pub fn user_id(claims: &Claims) -> Option<i64> {
    match claims.get("user_id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// 32 lowercase hex characters, like Python's `uuid4().hex`.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

    fn tokens() -> Tokens {
        tokens_with(|_| {})
    }

    fn tokens_with(customize: impl FnOnce(&mut JwtConfig)) -> Tokens {
        let mut config = JwtConfig {
            access_token_lifetime_secs: 300,
            refresh_token_lifetime_secs: 86400,
            ..JwtConfig::default()
        };
        customize(&mut config);
        Tokens::new(&config, SECRET).unwrap()
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    }

    fn signed(claims: Value, alg: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    #[test]
    fn pair_has_exactly_simplejwt_claims() {
        let pair = tokens().issue_pair(42);
        for (token, kind, lifetime) in [
            (&pair.access, "access", 300),
            (&pair.refresh, "refresh", 86400),
        ] {
            let claims = payload(token);
            let keys: Vec<&str> = claims
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["token_type", "exp", "iat", "jti", "user_id"]);
            assert_eq!(claims["token_type"], kind);
            assert_eq!(claims["user_id"], "42");
            assert_eq!(
                claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
                lifetime
            );
            let jti = claims["jti"].as_str().unwrap();
            assert!(
                jti.len() == 32
                    && jti
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_ne!(payload(&pair.access)["jti"], payload(&pair.refresh)["jti"]);
    }

    #[test]
    fn verify_reports_simplejwt_reasons() {
        let t = tokens();
        let pair = t.issue_pair(1);
        assert!(t.verify(&pair.access, TokenType::Access).is_ok());
        assert_eq!(
            t.verify(&pair.access, TokenType::Refresh),
            Err(TokenError::WrongType)
        );
        assert_eq!(
            t.verify("garbage", TokenType::Access),
            Err(TokenError::Invalid)
        );
        assert_eq!(t.verify("", TokenType::Access), Err(TokenError::Invalid));

        let now = unix_now();
        let base = json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1"});
        let without = |key: &str| {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove(key);
            signed(c, Algorithm::HS256)
        };
        assert_eq!(
            t.verify(&without("exp"), TokenType::Access),
            Err(TokenError::NoExp)
        );
        assert_eq!(
            t.verify(&without("jti"), TokenType::Access),
            Err(TokenError::NoId)
        );
        assert_eq!(
            t.verify(&without("token_type"), TokenType::Access),
            Err(TokenError::NoType)
        );

        let mut expired = base.clone();
        expired["exp"] = json!(now - 1);
        assert_eq!(
            t.verify(&signed(expired, Algorithm::HS256), TokenType::Access),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn other_algorithms_keys_and_alg_none_are_invalid() {
        let t = tokens();
        let now = unix_now();
        let claims = json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1"});
        let hs512 = signed(claims.clone(), Algorithm::HS512);
        assert_eq!(
            t.verify(&hs512, TokenType::Access),
            Err(TokenError::Invalid)
        );

        let other_key = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap();
        assert_eq!(
            t.verify(&other_key, TokenType::Access),
            Err(TokenError::Invalid)
        );

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims.to_string())
        );
        assert_eq!(t.verify(&none, TokenType::Access), Err(TokenError::Invalid));

        let mut tampered = t.issue_pair(1).access;
        tampered.push('x');
        assert_eq!(
            t.verify(&tampered, TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn access_from_refresh_copies_claims_like_simplejwt() {
        let t = tokens();
        let refresh = t
            .verify(&t.issue_pair(7).refresh, TokenType::Refresh)
            .unwrap();
        let access = t.access_for_refresh(&refresh);
        let claims = t.verify(&access, TokenType::Access).unwrap();
        assert_eq!(claims["user_id"], "7");
        assert_eq!(claims["iat"], refresh["iat"]);
        assert_ne!(claims["jti"], refresh["jti"]);
    }

    #[test]
    fn user_id_accepts_string_or_integer() {
        let claims = |v: Value| json!({ "user_id": v }).as_object().unwrap().clone();
        assert_eq!(user_id(&claims(json!("12"))), Some(12));
        assert_eq!(user_id(&claims(json!(12))), Some(12));
        assert_eq!(user_id(&claims(json!("x"))), None);
        assert_eq!(user_id(&claims(json!(null))), None);
        assert_eq!(user_id(&Claims::new()), None);
    }

    // Asymmetric keys. The kids below were computed apart from latch, with
    // `openssl pkey -outform DER` and Python's hashlib (RFC 7638 by hand).

    const ED_A_KID: &str = "rsmxqqbdTDyrq49v1-Gx0Sj8UTWD0qZVjk0DdcqmvIo";
    const ED_A_X: &str = "nywbzDJZUCNdW1xi5zaQn0YCODOWFkn2CVBtELe22is";
    const ED_B_KID: &str = "FY1rZvi8UWGncPoc1XWeINr5NxAieOKru7TqAlqTGJw";
    const RSA_A_KID: &str = "Xpypzlqo0ZMhrz_9E85P0nlC8gn-3xyKj5cMYCPLJ28";

    fn key_file(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keys")
            .join(name)
    }

    fn asymmetric(algorithm: JwtAlgorithm, key: &str) -> impl FnOnce(&mut JwtConfig) {
        let path = key_file(key);
        move |c| {
            c.algorithm = algorithm;
            c.private_key_file = Some(path);
        }
    }

    fn header(token: &str) -> Value {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    }

    fn member_names(jwk: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hmac_tokens_have_no_kid_and_there_is_no_jwks() {
        let t = tokens();
        assert_eq!(t.jwks(), None);
        let pair = t.issue_pair(1);
        assert_eq!(header(&pair.access), json!({"typ": "JWT", "alg": "HS256"}));
        // simplejwt ignores a kid on an HMAC token; so does latch.
        let now = unix_now();
        let mut with_kid = Header::new(Algorithm::HS256);
        with_kid.kid = Some("whatever".into());
        let token = jsonwebtoken::encode(
            &with_kid,
            &json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1"}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(t.verify(&token, TokenType::Access).is_ok());
    }

    #[test]
    fn eddsa_header_names_the_rfc_7638_thumbprint_and_jwks_has_only_public_members() {
        let t = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-a.pem"));
        let pair = t.issue_pair(3);
        for token in [&pair.access, &pair.refresh] {
            assert_eq!(
                header(token),
                json!({"typ": "JWT", "alg": "EdDSA", "kid": ED_A_KID})
            );
        }
        assert_eq!(
            t.verify(&pair.refresh, TokenType::Refresh).unwrap(),
            pair.refresh_claims
        );
        assert!(t.verify(&pair.access, TokenType::Access).is_ok());
        let jwks = t.jwks().unwrap();
        assert_eq!(
            jwks,
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ED_A_X, "kid": ED_A_KID, "alg": "EdDSA", "use": "sig"}]})
        );
    }

    #[test]
    fn rs256_header_names_the_thumbprint_and_jwks_has_n_and_e_only() {
        let t = tokens_with(asymmetric(JwtAlgorithm::RS256, "rsa-a.pem"));
        let pair = t.issue_pair(3);
        assert_eq!(
            header(&pair.access),
            json!({"typ": "JWT", "alg": "RS256", "kid": RSA_A_KID})
        );
        assert!(t.verify(&pair.access, TokenType::Access).is_ok());
        let jwks = t.jwks().unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            member_names(&keys[0]),
            ["alg", "e", "kid", "kty", "n", "use"]
        );
        assert_eq!(keys[0]["kty"], "RSA");
        assert_eq!(keys[0]["e"], "AQAB");
        assert_eq!(keys[0]["kid"], RSA_A_KID);
        // 2048 bits, base64url without padding.
        assert_eq!(keys[0]["n"].as_str().unwrap().len(), 342);
    }

    #[test]
    fn previous_public_keys_are_published_and_verify_by_kid() {
        let old = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-a.pem"));
        let old_token = old.issue_pair(5).access;
        let t = tokens_with(|c| {
            asymmetric(JwtAlgorithm::EdDSA, "ed25519-b.pem")(c);
            // The current key listed too (a rotation half done) counts once.
            c.previous_public_key_files =
                vec![key_file("ed25519-a.pub.pem"), key_file("ed25519-b.pub.pem")];
        });
        assert!(t.verify(&old_token, TokenType::Access).is_ok());
        assert_eq!(header(&t.issue_pair(5).access)["kid"], ED_B_KID);
        let kids: Vec<Value> = t.jwks().unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids, [ED_B_KID, ED_A_KID]);

        // Without A listed, A's tokens are refused.
        let b_only = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-b.pem"));
        assert_eq!(
            b_only.verify(&old_token, TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn asymmetric_tokens_need_a_known_kid_and_the_configured_algorithm() {
        let t = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-a.pem"));
        let now = unix_now();
        let claims = json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1"});
        let a = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-a.pem"));
        let signed_by_a = |kid: Option<&str>| {
            let mut h = Header::new(Algorithm::EdDSA);
            h.kid = kid.map(String::from);
            jsonwebtoken::encode(&h, &claims, &a.encoding).unwrap()
        };
        assert!(
            t.verify(&signed_by_a(Some(ED_A_KID)), TokenType::Access)
                .is_ok()
        );
        for forged in [
            signed_by_a(None),
            signed_by_a(Some("unknown")),
            signed_by_a(Some("")),
        ] {
            assert_eq!(
                t.verify(&forged, TokenType::Access),
                Err(TokenError::Invalid)
            );
        }
        // Key B, naming A's kid.
        let b = tokens_with(asymmetric(JwtAlgorithm::EdDSA, "ed25519-b.pem"));
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(ED_A_KID.into());
        let forged = jsonwebtoken::encode(&h, &claims, &b.encoding).unwrap();
        assert_eq!(
            t.verify(&forged, TokenType::Access),
            Err(TokenError::Invalid)
        );
        // HS256 keyed with the public key's raw bytes, naming its kid.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(ED_A_KID.into());
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(ED_A_X)
            .unwrap();
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(&x)).unwrap();
        assert_eq!(
            t.verify(&forged, TokenType::Access),
            Err(TokenError::Invalid)
        );
        // The HMAC secret handed to Tokens::new signs nothing with EdDSA.
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(SECRET)).unwrap();
        assert_eq!(
            t.verify(&forged, TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn iss_and_aud_follow_simplejwts_claims_and_are_required_when_configured() {
        let t = tokens_with(|c| {
            c.issuer = Some("https://auth.example.com".into());
            c.audience = Some("example-api".into());
        });
        let pair = t.issue_pair(9);
        for token in [&pair.refresh, &pair.access] {
            let claims = payload(token);
            let names: Vec<&str> = claims
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                names,
                ["token_type", "exp", "iat", "jti", "user_id", "aud", "iss"]
            );
            assert_eq!(claims["aud"], "example-api");
            assert_eq!(claims["iss"], "https://auth.example.com");
        }
        assert_eq!(
            pair.refresh_claims,
            payload(&pair.refresh).as_object().unwrap().clone()
        );
        let refreshed = t.access_for_refresh(&pair.refresh_claims);
        let names: Vec<String> = payload(&refreshed)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            names,
            ["token_type", "exp", "iat", "jti", "user_id", "aud", "iss"]
        );
        assert!(t.verify(&refreshed, TokenType::Access).is_ok());

        let now = unix_now();
        let base = json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1",
                          "aud": "example-api", "iss": "https://auth.example.com"});
        let with = |key: &str, value: Option<Value>| {
            let mut c = base.clone();
            match value {
                Some(v) => c[key] = v,
                None => drop(c.as_object_mut().unwrap().remove(key)),
            }
            signed(c, Algorithm::HS256)
        };
        assert!(
            t.verify(
                &with("aud", Some(json!(["other", "example-api"]))),
                TokenType::Access
            )
            .is_ok()
        );
        for bad in [
            with("iss", None),
            with("iss", Some(json!("https://evil.example.com"))),
            with("iss", Some(json!(["https://auth.example.com"]))),
            with("aud", None),
            with("aud", Some(json!("other-api"))),
            with("aud", Some(json!(["other-api"]))),
            with("aud", Some(json!(["example-api", 1]))),
        ] {
            assert_eq!(t.verify(&bad, TokenType::Access), Err(TokenError::Invalid));
        }
        // Expiry is judged first, as PyJWT does.
        let mut expired = base.clone();
        expired["exp"] = json!(now - 10);
        expired["iss"] = json!("https://evil.example.com");
        assert_eq!(
            t.verify(&signed(expired, Algorithm::HS256), TokenType::Access),
            Err(TokenError::Expired)
        );

        // Not configured: a foreign token's aud and iss are not looked at.
        assert!(
            tokens()
                .verify(&with("aud", Some(json!("other-api"))), TokenType::Access)
                .is_ok()
        );
        assert!(
            tokens()
                .verify(&with("iss", Some(json!(7))), TokenType::Access)
                .is_ok()
        );
    }

    #[test]
    fn leeway_forgives_a_second_of_clock_skew_on_exp_and_nbf_only_when_configured() {
        let now = unix_now();
        let claims = |extra: Value| {
            let mut c = json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "a", "user_id": "1"});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            signed(c, Algorithm::HS256)
        };
        let expired = claims(json!({"exp": now - 1}));
        let not_yet = claims(json!({"nbf": now + 2}));
        let strict = tokens();
        assert_eq!(
            strict.verify(&expired, TokenType::Access),
            Err(TokenError::Expired)
        );
        assert_eq!(
            strict.verify(&not_yet, TokenType::Access),
            Err(TokenError::Invalid)
        );
        assert!(
            strict
                .verify(&claims(json!({"nbf": now - 1})), TokenType::Access)
                .is_ok()
        );

        let lenient = tokens_with(|c| c.leeway_secs = 5);
        assert!(lenient.verify(&expired, TokenType::Access).is_ok());
        assert!(lenient.verify(&not_yet, TokenType::Access).is_ok());
        assert_eq!(
            lenient.verify(&claims(json!({"exp": now - 10})), TokenType::Access),
            Err(TokenError::Expired)
        );
        assert_eq!(
            lenient.verify(&claims(json!({"nbf": now + 10})), TokenType::Access),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn bad_key_files_stop_start_up_naming_the_setting() {
        let config = |algorithm, key: &str, previous: &[&str]| JwtConfig {
            algorithm,
            private_key_file: Some(key_file(key)),
            previous_public_key_files: previous.iter().map(|p| key_file(p)).collect(),
            ..JwtConfig::default()
        };
        let (ed, rsa) = (JwtAlgorithm::EdDSA, JwtAlgorithm::RS256);
        let private = "jwt.private_key_file";
        let previous = "jwt.previous_public_key_files";
        for (config, setting, detail) in [
            (config(ed, "missing.pem", &[]), private, "No such file"),
            (config(ed, "rsa-a.pem", &[]), private, "not an Ed25519 one"),
            (config(rsa, "ed25519-a.pem", &[]), private, "not an RSA one"),
            (
                config(ed, "ed25519-a.pub.pem", &[]),
                private,
                "it is a PEM PUBLIC KEY",
            ),
            (config(ed, "README.md", &[]), private, "it is not PEM"),
            (config(rsa, "rsa-1024.pem", &[]), private, "1024-bit"),
            (
                config(ed, "ed25519-encrypted.pem", &[]),
                private,
                "it is encrypted",
            ),
            (
                config(ed, "ed25519-a.pem", &["rsa-a.pub.pem"]),
                previous,
                "not an Ed25519 one",
            ),
            (
                config(ed, "ed25519-a.pem", &["ed25519-b.pem"]),
                previous,
                "it is a PEM PRIVATE KEY",
            ),
            (
                config(rsa, "rsa-a.pem", &["gone.pub.pem"]),
                previous,
                "gone.pub.pem",
            ),
        ] {
            let message = format!("{:#}", Tokens::new(&config, SECRET).err().expect("refused"));
            assert!(
                message.contains(setting) && message.contains(detail),
                "{message}"
            );
        }
    }

    #[test]
    fn the_same_refresh_claims_sign_to_the_same_token() {
        let t = tokens();
        let pair = t.issue_pair(7);
        let c = &pair.refresh_claims;
        let again = t.pair_for(
            7,
            c["jti"].as_str().unwrap(),
            c["iat"].as_i64().unwrap(),
            c["exp"].as_i64().unwrap(),
        );
        assert_eq!(again.refresh, pair.refresh);
        assert_eq!(again.refresh_claims, pair.refresh_claims);
    }
}
