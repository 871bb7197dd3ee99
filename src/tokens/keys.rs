//! Asymmetric signing keys: the private key read from a PEM file, earlier
//! public keys kept for a rotation, and each public key as a JWK named by its
//! RFC 7638 thumbprint.
//!
//! The PEM parsing is RustCrypto's (`ed25519-dalek`, `rsa`), the crates
//! jsonwebtoken signs with. jsonwebtoken's own PEM loading sits behind its
//! `use_pem` feature (two more crates), and its `Jwk::thumbprint` writes the
//! Ed25519 input without quotes around `crv`, so neither is used.

use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::config::JwtAlgorithm;

/// RSA keys shorter than this are refused (NIST's floor since 2013).
const MIN_RSA_BITS: usize = 2048;

/// The key latch signs with, and its public half.
pub(super) struct SigningKey {
    pub encoding: EncodingKey,
    pub public: PublicKey,
}

/// A public key tokens may be signed with: its kid, the key jsonwebtoken
/// verifies with, and its JWK for the JWKS.
pub(super) struct PublicKey {
    pub kid: String,
    pub decoding: DecodingKey,
    pub jwk: Value,
}

/// What a JWK's required members are made of.
enum Components {
    Ed25519 { x: [u8; 32] },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// Reads the private key in `path` (the setting `jwt.private_key_file`).
pub(super) fn private_key(algorithm: JwtAlgorithm, path: &Path) -> anyhow::Result<SigningKey> {
    const SETTING: &str = "jwt.private_key_file";
    let pem = read(SETTING, path)?;
    let wrong = || not_a_key(SETTING, path, algorithm, &pem, "PRIVATE KEY");
    let (der, components) = match algorithm {
        JwtAlgorithm::EdDSA => {
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).map_err(|_| wrong())?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| anyhow!("{SETTING} {}: {e}", path.display()))?;
            let x = key.verifying_key().to_bytes();
            (der.as_bytes().to_vec(), Components::Ed25519 { x })
        }
        JwtAlgorithm::RS256 => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem))
                .map_err(|_| wrong())?;
            check_rsa_size(SETTING, path, key.n().bits())?;
            key.validate()
                .map_err(|e| anyhow!("{SETTING} {}: not a valid RSA key: {e}", path.display()))?;
            // jsonwebtoken's RSA signer takes PKCS#1 DER.
            let der = key
                .to_pkcs1_der()
                .map_err(|e| anyhow!("{SETTING} {}: {e}", path.display()))?;
            let public = key.to_public_key();
            let components = Components::Rsa {
                n: public.n().to_bytes_be(),
                e: public.e().to_bytes_be(),
            };
            (der.as_bytes().to_vec(), components)
        }
        hmac => bail!("jwt.algorithm = {hmac:?} is an HMAC; it has no private key"),
    };
    let encoding = match algorithm {
        JwtAlgorithm::EdDSA => EncodingKey::from_ed_der(&der),
        _ => EncodingKey::from_rsa_der(&der),
    };
    Ok(SigningKey {
        encoding,
        public: public_key_of(algorithm, components),
    })
}

/// Reads an earlier key's public key (SPKI PEM) from `path`, one of
/// `jwt.previous_public_key_files`.
pub(super) fn previous_public_key(
    algorithm: JwtAlgorithm,
    path: &Path,
) -> anyhow::Result<PublicKey> {
    const SETTING: &str = "jwt.previous_public_key_files";
    let pem = read(SETTING, path)?;
    let wrong = || not_a_key(SETTING, path, algorithm, &pem, "PUBLIC KEY");
    let components = match algorithm {
        JwtAlgorithm::EdDSA => {
            let key =
                ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).map_err(|_| wrong())?;
            Components::Ed25519 { x: key.to_bytes() }
        }
        JwtAlgorithm::RS256 => {
            let key = <rsa::RsaPublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_pem(&pem)
                .map_err(|_| wrong())?;
            check_rsa_size(SETTING, path, key.n().bits())?;
            Components::Rsa {
                n: key.n().to_bytes_be(),
                e: key.e().to_bytes_be(),
            }
        }
        hmac => bail!("jwt.algorithm = {hmac:?} is an HMAC; it has no public keys"),
    };
    Ok(public_key_of(algorithm, components))
}

fn read(setting: &str, path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {setting} {}", path.display()))
}

fn check_rsa_size(setting: &str, path: &Path, bits: usize) -> anyhow::Result<()> {
    if bits < MIN_RSA_BITS {
        bail!(
            "invalid {setting}: {} is a {bits}-bit RSA key; RS256 needs at least {MIN_RSA_BITS} bits",
            path.display()
        );
    }
    Ok(())
}

/// The error for a file that is not the key expected, saying what it seems to hold.
fn not_a_key(
    setting: &str,
    path: &Path,
    algorithm: JwtAlgorithm,
    pem: &str,
    wanted_label: &str,
) -> anyhow::Error {
    let (kind, make) = match algorithm {
        JwtAlgorithm::EdDSA => ("an Ed25519", "openssl genpkey -algorithm ed25519"),
        _ => (
            "an RSA",
            "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048",
        ),
    };
    let found = match pem_label(pem) {
        Some(label) if label == wanted_label => format!("it is a PEM {label}, but not {kind} one"),
        Some("ENCRYPTED PRIVATE KEY") => {
            "it is encrypted; decrypt it with `openssl pkey -in FILE -out NEW_FILE`".into()
        }
        Some(label) => format!("it is a PEM {label}"),
        None => "it is not PEM".into(),
    };
    let expected = if wanted_label == "PUBLIC KEY" {
        format!(
            "{kind} public key in PEM (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` writes)"
        )
    } else {
        format!("{kind} private key in PKCS#8 PEM (as `{make}` writes)")
    };
    anyhow!(
        "invalid {setting}: {} must hold {expected} for jwt.algorithm = {algorithm:?}; {found}",
        path.display()
    )
}

/// `PRIVATE KEY` for a file starting `-----BEGIN PRIVATE KEY-----`.
fn pem_label(pem: &str) -> Option<&str> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &pem[start..];
    rest.find("-----").map(|end| &rest[..end])
}

fn public_key_of(algorithm: JwtAlgorithm, components: Components) -> PublicKey {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let (mut jwk, decoding) = match &components {
        Components::Ed25519 { x } => (
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}),
            // jsonwebtoken's Ed25519 verifier takes the 32 raw bytes.
            DecodingKey::from_ed_der(x),
        ),
        Components::Rsa { n, e } => (
            json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
            DecodingKey::from_rsa_raw_components(n, e),
        ),
    };
    let kid = thumbprint(&jwk);
    let alg = match algorithm {
        JwtAlgorithm::EdDSA => "EdDSA",
        _ => "RS256",
    };
    let members = jwk.as_object_mut().expect("built as an object");
    members.insert("kid".into(), json!(kid));
    members.insert("alg".into(), json!(alg));
    members.insert("use".into(), json!("sig"));
    PublicKey { kid, decoding, jwk }
}

/// RFC 7638: base64url SHA-256 of the required members, in lexicographic
/// order, without whitespace. Every value here is base64url or a fixed
/// name, so none needs escaping.
fn thumbprint(jwk: &Value) -> String {
    let member = |name: &str| jwk[name].as_str().expect("required member");
    let canonical = match member("kty") {
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv"),
            member("x")
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            member("e"),
            member("n")
        ),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_rsa_example() {
        // RFC 7638, section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn thumbprint_matches_rfc_8037_ed25519_example() {
        // RFC 8037, appendix A.3.
        let jwk = json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        assert_eq!(
            thumbprint(&jwk),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc_8037_private_key_gives_its_public_key_and_kid() {
        // RFC 8037, appendix A.1 (d) in PKCS#8 PEM, as openssl writes it.
        let d = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let seed: [u8; 32] = d.try_into().unwrap();
        let pem = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(Default::default())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem.as_bytes()).unwrap();
        let key = private_key(JwtAlgorithm::EdDSA, &path).unwrap();
        assert_eq!(
            key.public.jwk["x"],
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(
            key.public.kid,
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn pem_label_names_the_block() {
        assert_eq!(
            pem_label("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n"),
            Some("PUBLIC KEY")
        );
        assert_eq!(pem_label("not pem"), None);
    }
}
