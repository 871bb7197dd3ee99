//! HTTPS: rustls (with ring, which the binary carries for SMTP already),
//! HTTP/1.1 only. The certificate and key are read from PEM files at start-up
//! and again on [`Certificates::reload`] (SIGHUP): new handshakes get the new
//! pair, connections already open keep theirs, and a pair that does not load
//! leaves the old one in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The certificate chain and key being served, and where they come from.
#[derive(Debug)]
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Arc<Certificates>> {
        let pair = load_pair(cert_file, key_file)?;
        Ok(Arc::new(Certificates {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Reads the files again. On success new handshakes use the new pair; on
    /// failure nothing changes and the error says why.
    pub fn reload(&self) -> anyhow::Result<()> {
        let pair = load_pair(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// The acceptor for the listener: TLS 1.2 and 1.3, ALPN `http/1.1`.
    pub fn acceptor(self: &Arc<Self>) -> anyhow::Result<TlsAcceptor> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn load_pair(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading server.tls_cert_file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading server.tls_cert_file {}", cert_file.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "server.tls_cert_file {} holds no PEM certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "reading server.tls_key_file {} (a PEM private key)",
            key_file.display()
        )
    })?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .with_context(|| format!("server.tls_key_file {}", key_file.display()))?;
    let pair = CertifiedKey::new(chain, signing_key);
    pair.keys_match().with_context(|| {
        format!(
            "server.tls_key_file {} is not the key of server.tls_cert_file {}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(pair)
}
