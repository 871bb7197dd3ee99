//! Start-up and shutdown: open the database, settle the signing secret, start
//! the hashing pool, the outbox worker and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::RngCore as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::mail::{self, Mailer};
use crate::passwords::Hasher;
use crate::reset::ResetLinks;
use crate::store::Store;
use crate::tokens::Tokens;

const SECRET_SETTING: &str = "jwt_secret";

/// A running latch. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    addr: SocketAddr,
    shutdown_timeout: Duration,
    store: Store,
    stop: watch::Sender<bool>,
    http: JoinHandle<()>,
    outbox: JoinHandle<()>,
}

impl Server {
    /// Starts serving on `config.server.bind` (port 0 picks a free port).
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let db = &config.database;
        let store = Store::open(
            &db.path,
            Duration::from_millis(db.busy_timeout_ms),
            db.pool_size,
        )?;
        let secret = signing_secret(&config, &store)?;
        // With EdDSA/RS256 the key files sign; the secret still keys reset links.
        let tokens = Tokens::new(&config.jwt, secret.as_bytes())?;
        let threads = config.password.hash_threads();
        let hasher = Hasher::new(
            config.password.scrypt_params()?,
            threads,
            config.password.hash_queue_depth,
        )
        .context("starting password hashing threads")?;
        let resets = Arc::new(ResetLinks::new(secret.as_bytes(), &config.reset.url));
        let mailer = Mailer::from_config(&config, resets.clone())?;

        let listener = tokio::net::TcpListener::bind(config.server.bind)
            .await
            .with_context(|| format!("binding {}", config.server.bind))?;
        let addr = listener.local_addr()?;

        let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
        let (stop, stopped) = watch::channel(false);
        let mail_queued = Arc::new(Notify::new());
        let outbox = tokio::spawn(mail::run_outbox(
            store.clone(),
            mailer,
            mail_queued.clone(),
            Duration::from_secs(config.mail.retry_max_secs),
            stopped.clone(),
        ));
        let state = AppState {
            config: Arc::new(config),
            store: store.clone(),
            tokens: Arc::new(tokens),
            hasher,
            resets,
            mail_queued,
        };
        let limits = http::Limits {
            header_read_timeout: Duration::from_secs(state.config.server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(state.config.server.idle_timeout_secs),
            max_connections: state.config.server.max_connections,
        };
        let http = tokio::spawn(http::serve(listener, http::routes(state), limits, stopped));
        tracing::info!(%addr, hash_threads = threads, "latch is listening");
        Ok(Server {
            addr,
            shutdown_timeout,
            store,
            stop,
            http,
            outbox,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store this server uses (for tests and tooling).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting connections, lets in-flight requests finish (for up
    /// to `server.shutdown_timeout_secs`), stops the outbox worker (queued
    /// mail stays queued for the next start).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut http = self.http;
        if tokio::time::timeout(self.shutdown_timeout, &mut http)
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still in flight after the shutdown timeout; closing their connections"
            );
            http.abort();
        }
        let mut outbox = self.outbox;
        if tokio::time::timeout(self.shutdown_timeout, &mut outbox)
            .await
            .is_err()
        {
            outbox.abort();
        }
    }
}

/// The configured secret, or the one generated on a first start and kept in
/// the database. Its value is never logged.
fn signing_secret(config: &Config, store: &Store) -> anyhow::Result<String> {
    if let Some(secret) = &config.jwt.secret {
        if secret.expose().len() < 32 {
            tracing::warn!("jwt.secret is shorter than 32 bytes; a longer random secret is safer");
        }
        return Ok(secret.expose().to_string());
    }
    let (secret, created) = store
        .setting_or_insert(SECRET_SETTING, || {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        })
        .context("reading the stored JWT signing secret")?;
    if created {
        tracing::info!(
            "no jwt.secret configured: generated a random 256-bit signing secret and stored it in the database, so tokens stay valid across restarts"
        );
    } else {
        tracing::info!("no jwt.secret configured: using the signing secret stored in the database");
    }
    Ok(secret)
}
