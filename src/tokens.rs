//! JWTs shaped exactly as djangorestframework-simplejwt 5.5 makes them, so a
//! Django service with the same signing key accepts latch's tokens and the
//! other way round: claims `token_type`, `exp`, `iat`, `jti`, `user_id`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde_json::{Map, Value, json};

use crate::config::JwtAlgorithm;

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
    /// The refresh token's claims (its `jti` and `exp` are recorded).
    pub refresh_claims: Claims,
}

pub struct Tokens {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_lifetime: i64,
    refresh_lifetime: i64,
}

impl Tokens {
    pub fn new(
        secret: &[u8],
        algorithm: JwtAlgorithm,
        access_lifetime_secs: u64,
        refresh_lifetime_secs: u64,
    ) -> Tokens {
        let algorithm = match algorithm {
            JwtAlgorithm::HS256 => Algorithm::HS256,
            JwtAlgorithm::HS384 => Algorithm::HS384,
            JwtAlgorithm::HS512 => Algorithm::HS512,
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::RS256 => Algorithm::RS256,
        };
        let mut validation = Validation::new(algorithm);
        // simplejwt's defaults: no leeway, and `exp` checked by us when missing
        // so that the message can say so.
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        Tokens {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_lifetime: i64::try_from(access_lifetime_secs).unwrap_or(i64::MAX / 2),
            refresh_lifetime: i64::try_from(refresh_lifetime_secs).unwrap_or(i64::MAX / 2),
        }
    }

    /// What a login returns.
    pub fn issue_pair(&self, user_id: i64) -> TokenPair {
        let now = unix_now();
        let mut refresh = self.new_claims(TokenType::Refresh, now);
        refresh.insert("user_id".into(), json!(user_id.to_string()));
        let access = self.access_from(&refresh, now);
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

    /// Checks signature, algorithm, expiry and the claims simplejwt requires.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        let claims = data.claims;
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
        access
    }

    fn sign(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.encoding)
            .expect("HMAC signing of a JSON map cannot fail")
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
        Tokens::new(SECRET, JwtAlgorithm::HS256, 300, 86400)
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
}
