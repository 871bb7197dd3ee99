//! Start-up and shutdown: open the database, settle the signing secret, start
//! the hashing pool, the outbox worker and the HTTP server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::RngCore as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::{self, SharedClock};
use crate::config::{Config, Location, Secret};
use crate::http::{self, AppState, Certificates, Readiness, Shared};
use crate::limits::{AccountLimit, ClientIp, Limits};
use crate::mail::{self, Mailer, OutboxHealth};
use crate::metrics::{Metrics, Sources};
use crate::passwords::Hasher;
use crate::reset::ResetLinks;
use crate::store::{self, Store, TemporaryDatabase};
use crate::tokens::Tokens;
use crate::validate::PasswordPolicy;

/// How often the rate limiters forget keys that are back to a full allowance.
const LIMITS_HOUSEKEEPING: Duration = Duration::from_secs(60);

/// A running latch. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    addr: SocketAddr,
    /// Where `GET /metrics` is served, if anywhere.
    metrics_addr: Option<SocketAddr>,
    shutdown_timeout: Duration,
    store: Store,
    stop: watch::Sender<bool>,
    http: JoinHandle<()>,
    /// The metrics listener's connection loop.
    metrics_http: Option<JoinHandle<()>>,
    outbox: JoinHandle<()>,
    housekeeping: Option<JoinHandle<()>>,
    /// The database of `:memory:`, removed by [`Server::shutdown`] (or when
    /// the server is dropped).
    temporary: Option<TemporaryDatabase>,
    /// With `server.tls_cert_file`: what HTTPS serves, reloadable.
    certificates: Option<Arc<Certificates>>,
}

impl Server {
    /// Starts serving on `config.server.bind` (port 0 picks a free port).
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        Server::start_with_clock(config, clock::system()).await
    }

    /// The same, reading the time from `clock` (tests move it by hand).
    pub async fn start_with_clock(config: Config, clock: SharedClock) -> anyhow::Result<Server> {
        let db = &config.database;
        let mut location = db.location()?;
        // Declared before the store, so that on a failed start the store
        // closes before its folder is removed.
        let temporary = match &location {
            Location::Sqlite(path) => temporary_database(path)?,
            Location::Postgres(_) => None,
        };
        if let Some(temporary) = &temporary {
            location = Location::Sqlite(temporary.path().to_path_buf());
        }
        let store = Store::open(
            &location,
            Duration::from_millis(db.busy_timeout_ms),
            db.pool_size,
        )
        .await?;
        let secret = stored_secret(
            &store,
            config.jwt.secret.as_ref(),
            "jwt.secret",
            store::JWT_SECRET,
            temporary.is_some(),
        )
        .await?;
        // With EdDSA/RS256 the key files sign and the secret is unused.
        let tokens = Tokens::new(&config.jwt, secret.as_bytes())?;
        let threads = config.password.hash_threads();
        let hasher = Hasher::new(
            config.password.scrypt_params()?,
            threads,
            config.password.hash_queue_depth,
        )
        .context("starting password hashing threads")?;
        // Not derived from the JWT secret: Django services that share that
        // key to verify tokens must not be able to forge reset links.
        let reset_secret = stored_secret(
            &store,
            config.reset.secret.as_ref(),
            "reset.secret",
            store::RESET_SECRET,
            temporary.is_some(),
        )
        .await?;
        let resets = Arc::new(ResetLinks::new(reset_secret.as_bytes(), &config.reset.url));
        // Names the rows of the per-username login limit (HMACs, not names).
        let limits_secret = generated_secret(&store, store::LIMITS_SECRET).await?;
        let mailer = Mailer::from_config(&config, resets.clone())?;
        let password_policy = Arc::new(PasswordPolicy::from_config(&config.password));

        let certificates = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
            (Some(cert), Some(key)) => Some(Certificates::load(cert, key)?),
            _ => None,
        };
        let tls = certificates.as_ref().map(|c| c.acceptor()).transpose()?;
        let listener = tokio::net::TcpListener::bind(config.server.bind)
            .await
            .with_context(|| format!("binding {}", config.server.bind))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.metrics.bind {
            Some(bind) => Some(tokio::net::TcpListener::bind(bind).await.with_context(|| {
                format!(
                    "binding metrics.bind {bind} (choose another address, or \"\" to serve no metrics)"
                )
            })?),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        // This server's own registry, handed to everything that counts.
        let metrics = Arc::new(Metrics::new());

        let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
        let (stop, stopped) = watch::channel(false);
        let mail_queued = Arc::new(Notify::new());
        let outbox_health = Arc::new(OutboxHealth::default());
        let outbox = tokio::spawn(mail::run_outbox(
            store.clone(),
            mailer,
            mail_queued.clone(),
            mail::OutboxTiming {
                retry_max: Duration::from_secs(config.mail.retry_max_secs),
                lease: Duration::from_secs(config.mail.lease_secs),
                send_time: Duration::from_secs(config.smtp.timeout_secs),
            },
            outbox_health.clone(),
            metrics.clone(),
            stopped.clone(),
        ));
        let accounts = AccountLimit::new(
            store.clone(),
            limits_secret.as_bytes(),
            clock.clone(),
            config.limits.login_failures_per_account,
            config.limits.login_window_secs,
        );
        let limits = Limits::from_config(&config.limits, &config.reset, accounts)
            .map(|limits| Arc::new(limits.count_hits_in(metrics.limit_hits.clone())));
        let housekeeping = limits.clone().map(|limits| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(LIMITS_HOUSEKEEPING);
                loop {
                    tokio::select! {
                        _ = tick.tick() => { limits.housekeeping().await; }
                        _ = stopped.changed() => return,
                    }
                }
            })
        });
        let sources = Arc::new(Sources {
            store: store.clone(),
            hasher: hasher.clone(),
        });
        let state = AppState::new(Shared {
            client_ip: Arc::new(ClientIp::new(&config.limits.trusted_proxies)),
            config: Arc::new(config),
            store: store.clone(),
            tokens: Arc::new(tokens),
            hasher,
            resets,
            password_policy,
            mail_queued,
            clock,
            limits,
            readiness: Readiness::new(outbox_health),
            metrics: metrics.clone(),
        });
        let limits = http::Limits {
            header_read_timeout: Duration::from_secs(state.config.server.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(state.config.server.idle_timeout_secs),
            max_connections: state.config.server.max_connections,
        };
        let metrics_http = metrics_listener.map(|listener| {
            let limits = http::Limits {
                max_connections: http::metrics::MAX_CONNECTIONS,
                ..limits
            };
            let routes = http::metrics::routes(metrics.clone(), sources);
            tokio::spawn(http::serve(
                listener,
                routes,
                limits,
                None,
                None,
                stopped.clone(),
            ))
        });
        let open_connections = Some(metrics.open_connections.clone());
        let http = tokio::spawn(http::serve(
            listener,
            http::routes(state),
            limits,
            tls,
            open_connections,
            stopped,
        ));
        tracing::info!(%addr, hash_threads = threads, "latch is listening");
        if let Some(metrics_addr) = metrics_addr {
            tracing::info!("metrics are served at http://{metrics_addr}/metrics");
        }
        Ok(Server {
            addr,
            metrics_addr,
            shutdown_timeout,
            store,
            stop,
            http,
            metrics_http,
            outbox,
            housekeeping,
            temporary,
            certificates,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `GET /metrics` is served (`metrics.bind`, with the port picked
    /// for port 0); `None` when metrics are off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://ADDR:PORT` (`https://` with TLS), the base of every URL this
    /// server answers.
    pub fn url(&self) -> String {
        let scheme = if self.certificates.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Reads the TLS certificate and key files again (SIGHUP): handshakes
    /// from now on use the new pair, open connections keep theirs. False
    /// when there is no TLS; an error (naming the file) leaves the old pair.
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        match &self.certificates {
            Some(certificates) => certificates.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// True for a throwaway server (`--ephemeral`, `--db :memory:`), whose
    /// data goes when it stops.
    pub fn is_throwaway(&self) -> bool {
        self.temporary.is_some()
    }

    /// The store this server uses (for tests and tooling).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting connections, lets in-flight requests finish (for up
    /// to `server.shutdown_timeout_secs`), stops the outbox worker (queued
    /// mail stays queued for the next start), and removes a temporary
    /// database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // One deadline for everything, so that stopping takes at most the
        // configured time (a service manager's stop timeout counts on it).
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let mut http = self.http;
        if tokio::time::timeout_at(deadline, &mut http).await.is_err() {
            tracing::warn!(
                "requests still in flight after the shutdown timeout; closing their connections"
            );
            http.abort();
        }
        if let Some(mut metrics_http) = self.metrics_http {
            // Scrapes are short; one still running at the deadline is cut.
            if tokio::time::timeout_at(deadline, &mut metrics_http)
                .await
                .is_err()
            {
                metrics_http.abort();
            }
        }
        if let Some(housekeeping) = self.housekeeping {
            housekeeping.abort();
        }
        let mut outbox = self.outbox;
        if tokio::time::timeout_at(deadline, &mut outbox)
            .await
            .is_err()
        {
            outbox.abort();
        }
        if let Some(temporary) = self.temporary {
            // The tasks that held the store have ended or been stopped, so
            // this is (about) its last handle; the writer thread ends with it.
            drop(self.store);
            let dir = temporary.dir().to_path_buf();
            match temporary.remove() {
                Ok(()) => tracing::info!(dir = %dir.display(), "temporary database removed"),
                Err(err) => tracing::warn!(
                    dir = %dir.display(),
                    "could not remove the temporary database: {err}"
                ),
            }
        }
    }
}

/// For the path `:memory:`, a private temporary database (see
/// `store::TemporaryDatabase`), with a note in the log saying where.
fn temporary_database(path: &Path) -> anyhow::Result<Option<TemporaryDatabase>> {
    if !store::is_memory(path) {
        return Ok(None);
    }
    let temporary = TemporaryDatabase::create()?;
    tracing::info!(
        dir = %temporary.dir().display(),
        "using a private temporary database (database.path = {}), removed when latch stops",
        store::MEMORY
    );
    Ok(Some(temporary))
}

/// The configured secret `key`, or the one generated on a first start and
/// kept in the database under `setting` (`temporary`: a database that goes
/// at exit). Its value is never logged.
async fn stored_secret(
    store: &Store,
    configured: Option<&Secret>,
    key: &str,
    setting: &str,
    temporary: bool,
) -> anyhow::Result<String> {
    if let Some(secret) = configured {
        if secret.is_short() {
            tracing::warn!("{key} is shorter than 32 bytes; a longer random secret is safer");
        }
        return Ok(secret.expose().to_string());
    }
    let (secret, created) = store
        .setting_or_insert(setting, random_secret())
        .await
        .with_context(|| format!("reading the stored {key}"))?;
    if created && temporary {
        tracing::info!(
            "no {key} configured: generated a random 256-bit secret for this run (the database is temporary)"
        );
    } else if created {
        tracing::info!(
            "no {key} configured: generated a random 256-bit secret and stored it in the database, so it survives restarts"
        );
    } else {
        tracing::info!("no {key} configured: using the secret stored in the database");
    }
    Ok(secret)
}

/// A secret latch makes and keeps for itself (none can be configured): the
/// first instance to start stores it, the others read the same.
async fn generated_secret(store: &Store, setting: &str) -> anyhow::Result<String> {
    let (secret, _) = store
        .setting_or_insert(setting, random_secret())
        .await
        .with_context(|| format!("reading the stored {setting}"))?;
    Ok(secret)
}

/// 256 random bits, as hex.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
