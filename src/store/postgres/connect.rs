//! From a `postgres://` URL to a connection config and a TLS connector.
//!
//! tokio-postgres knows `sslmode` only up to `require`, and nothing of
//! certificates: latch reads `sslmode` and `sslrootcert` itself, with
//! libpq's meaning, and hands the rest of the URL on.
//!
//! - `disable`: no TLS.
//! - `prefer` (libpq's default, also when absent): TLS if the server offers
//!   it, else plain; the certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked (as with
//!   libpq without a root certificate file): this keeps the traffic from
//!   being read, not from being intercepted.
//! - `verify-full`: TLS, with the chain checked against the Mozilla roots
//!   (webpki-roots), or the certificates in `sslrootcert`, and the name
//!   checked against the host.
//! - `verify-ca` (a chain without a name check) is refused: use `verify-full`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres::config::SslMode;

/// How to reach the server, as a URL said it.
pub(super) struct Target {
    pub config: tokio_postgres::Config,
    /// None: no TLS (`sslmode=disable`).
    pub tls: Option<ClientConfig>,
}

/// Parses `url` (`postgres://` or `postgresql://`). Errors show the URL
/// with its password replaced.
pub(super) fn target(url: &str) -> anyhow::Result<Target> {
    let shown = redact(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        bail!("database URL {shown} does not start with postgres:// or postgresql://");
    }
    let (rest, mode, root_cert) = take_tls_params(url)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
        let cause = std::error::Error::source(&e).map_or(String::new(), |c| format!(": {c}"));
        anyhow!("database URL {shown} is not valid: {e}{cause}")
    })?;
    if config.get_application_name().is_none() {
        config.application_name("latch");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("setting up TLS for the database connection")
    };
    let tls = match mode.as_deref().unwrap_or("prefer") {
        "disable" => {
            if root_cert.is_some() {
                bail!("database URL {shown} gives sslrootcert with sslmode=disable");
            }
            config.ssl_mode(SslMode::Disable);
            None
        }
        mode @ ("prefer" | "require") => {
            if root_cert.is_some() {
                bail!(
                    "database URL {shown} gives sslrootcert with sslmode={mode}, which does not check certificates: use sslmode=verify-full"
                );
            }
            config.ssl_mode(if mode == "prefer" {
                SslMode::Prefer
            } else {
                SslMode::Require
            });
            let verifier = AnyCertificate(provider.clone());
            Some(
                builder()?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth(),
            )
        }
        "verify-full" => {
            config.ssl_mode(SslMode::Require);
            let roots = match root_cert.as_deref() {
                None | Some("system") => RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
                Some(path) => roots_from_file(path)?,
            };
            Some(
                builder()?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        }
        "verify-ca" => bail!(
            "database URL {shown}: sslmode=verify-ca (a certificate chain without a host name check) is not supported; use sslmode=verify-full"
        ),
        other => bail!(
            "database URL {shown}: unknown sslmode {other:?} (use disable, prefer, require or verify-full)"
        ),
    };
    Ok(Target { config, tls })
}

/// Makes the sessions wait at most `busy_timeout` (at least a millisecond:
/// 0 would mean forever) for a lock, through the startup options. Options
/// the URL gave are kept, after this one: a `-c lock_timeout=…` of the URL's
/// own wins.
pub(super) fn set_lock_timeout(config: &mut tokio_postgres::Config, busy_timeout: Duration) {
    let ms = busy_timeout.as_millis().max(1);
    let ours = format!("-c lock_timeout={ms}ms");
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{ours} {given}"),
        _ => ours,
    };
    config.options(options);
}

/// The URL without `sslmode` and `sslrootcert`, and their values.
fn take_tls_params(url: &str) -> anyhow::Result<(String, Option<String>, Option<String>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root_cert) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = form_urlencoded::parse(pair.as_bytes())
            .next()
            .unwrap_or_default();
        match &*key {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" => root_cert = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, root_cert))
}

fn roots_from_file(path: &str) -> anyhow::Result<RootCertStore> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading sslrootcert {path}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        bail!("sslrootcert {path} holds no usable certificate");
    }
    Ok(roots)
}

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced by `***`, for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    // As tokio-postgres reads it: the user part is everything up to the
    // first '@', whatever it holds ('/' and '?' included).
    let (creds, after) = match rest.split_once('@') {
        Some((creds, after)) => match creds.split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), after),
            None => (format!("{creds}@"), after),
        },
        None => (String::new(), rest),
    };
    let (head, query) = match after.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (after, None),
    };
    let head = format!("{creds}{head}");
    let query = query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{prefix}{head}?{q}"),
        None => format!("{prefix}{head}"),
    }
}

/// For `prefer` and `require`: any certificate is taken (libpq's meaning of
/// these modes), but the handshake's signatures are still checked, so the
/// session is encrypted to whoever holds that certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://ann:s3cret@db:5432/latch?sslmode=require"),
            "postgres://ann:***@db:5432/latch?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/latch?user=ann&password=s3cret"),
            "postgresql://db/latch?user=ann&password=***"
        );
        assert_eq!(
            redact("postgres://ann:ab/c?d@db/latch?sslmode=require"),
            "postgres://ann:***@db/latch?sslmode=require"
        );
        for url in [
            "postgres://ann:s3cret@db/latch?sslmode=verify-ca",
            "postgres://ann:s3cret@db/latch?sslmode=bogus",
            "postgres://ann:s3cret@db/latch?sslmode=disable&sslrootcert=/x.pem",
            "postgres://ann:s3cret@db/latch?nonsense=1",
            "mysql://ann:s3cret@db/latch",
        ] {
            let err = format!("{:#}", target(url).err().unwrap());
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn the_lock_timeout_is_the_busy_timeout_and_the_urls_options_stay() {
        let mut plain = target("postgres://a:b@h/d").unwrap().config;
        set_lock_timeout(&mut plain, Duration::from_millis(2500));
        assert_eq!(plain.get_options(), Some("-c lock_timeout=2500ms"));
        let mut zero = target("postgres://a:b@h/d").unwrap().config;
        set_lock_timeout(&mut zero, Duration::ZERO);
        assert_eq!(
            zero.get_options(),
            Some("-c lock_timeout=1ms"),
            "0 is forever"
        );
        let mut given = target("postgres://a:b@h/d?options=-c%20work_mem%3D8MB")
            .unwrap()
            .config;
        set_lock_timeout(&mut given, Duration::from_secs(5));
        assert_eq!(
            given.get_options(),
            Some("-c lock_timeout=5000ms -c work_mem=8MB")
        );
    }

    #[test]
    fn sslmode_decides_tls_and_is_not_passed_on() {
        let plain = target("postgres://a:b@h/d?sslmode=disable&connect_timeout=3").unwrap();
        assert!(plain.tls.is_none());
        assert_eq!(plain.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(
            plain.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        let default = target("postgresql://a:b@h/d").unwrap();
        assert!(default.tls.is_some());
        assert_eq!(default.config.get_ssl_mode(), SslMode::Prefer);
        let required = target("postgres://a:b@h/d?sslmode=require").unwrap();
        assert_eq!(required.config.get_ssl_mode(), SslMode::Require);
        let verified = target("postgres://a:b@h/d?sslmode=verify-full").unwrap();
        assert_eq!(verified.config.get_ssl_mode(), SslMode::Require);
        let err = target("postgres://a:b@h/d?sslmode=verify-ca")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("verify-full"), "{err}");
        let err = target("postgres://a:b@h/d?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("/nonexistent.pem"), "{err:#}");
    }
}
