//! Settings, layered: built-in defaults, then `auth.toml`, then `LATCH_*`
//! environment variables, then command-line flags (see `load.rs`). Every key
//! of the file has an environment twin: `[smtp] host` is `LATCH_SMTP_HOST`.
//! The types here are the whole list of settings; `auth.toml` at the top of
//! the repository documents each one.

mod database;
mod ephemeral;
mod load;

pub use database::{Location, has_password};
pub use ephemeral::EPHEMERAL_SCRYPT;
pub use load::{Loaded, Overrides, Sources, load, parse_network};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

/// The `database.path` that asks for a private temporary database, removed
/// when the server stops (`--db :memory:`, `--ephemeral`).
pub const MEMORY_DATABASE: &str = ":memory:";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub cors: CorsConfig,
    pub database: DatabaseConfig,
    pub jwt: JwtConfig,
    pub password: PasswordConfig,
    pub reset: ResetConfig,
    pub smtp: SmtpConfig,
    pub mail: MailConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub max_body_bytes: u64,
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: usize,
    pub shutdown_timeout_secs: u64,
    /// PEM certificate chain and private key: with both, latch serves HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 64 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            idle_timeout_secs: 30,
            max_connections: 1024,
            shutdown_timeout_secs: 10,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`) whose pages may call the API; `*` for any.
    #[serde(deserialize_with = "list_lenient")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    /// `postgres://...` (or `sqlite://PATH`); unset: SQLite at `path`.
    pub url: Option<Secret>,
    pub busy_timeout_ms: u64,
    pub pool_size: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("data/auth.db"),
            url: None,
            busy_timeout_ms: 5000,
            pool_size: 16,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    /// Ed25519 signatures; needs `jwt.private_key_file`.
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256; needs `jwt.private_key_file`.
    RS256,
}

impl JwtAlgorithm {
    /// True for the algorithms signed with a private key and checked with a
    /// public one (published in the JWKS).
    pub fn is_asymmetric(self) -> bool {
        matches!(self, JwtAlgorithm::EdDSA | JwtAlgorithm::RS256)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    pub secret: Option<Secret>,
    pub algorithm: JwtAlgorithm,
    /// PEM private key (PKCS#8) for EdDSA and RS256.
    pub private_key_file: Option<PathBuf>,
    /// PEM public keys of earlier signing keys, still accepted and published.
    #[serde(deserialize_with = "list_lenient")]
    pub previous_public_key_files: Vec<PathBuf>,
    /// `iss` claim: set on every token, required on every token checked.
    pub issuer: Option<String>,
    /// `aud` claim: set on every token, required on every token checked.
    pub audience: Option<String>,
    /// Allowed clock skew when checking `exp`, in seconds.
    pub leeway_secs: u64,
    pub access_token_lifetime_secs: u64,
    pub refresh_token_lifetime_secs: u64,
    /// Refresh answers a new refresh token too and retires the presented one.
    pub rotate_refresh_tokens: bool,
    /// How long a retired refresh token may still be presented (concurrent
    /// refreshes) before presenting it counts as reuse.
    pub rotation_grace_secs: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: None,
            algorithm: JwtAlgorithm::HS256,
            private_key_file: None,
            previous_public_key_files: Vec::new(),
            issuer: None,
            audience: None,
            leeway_secs: 0,
            access_token_lifetime_secs: 5 * 60,
            refresh_token_lifetime_secs: 24 * 60 * 60,
            rotate_refresh_tokens: false,
            rotation_grace_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    /// Django's UserAttributeSimilarityValidator (username, email).
    pub reject_similar: bool,
    /// Django's NumericPasswordValidator.
    pub reject_numeric: bool,
    /// Django's CommonPasswordValidator (its list of 20,000).
    pub reject_common: bool,
    pub scrypt_log_n: u8,
    pub scrypt_r: u32,
    pub scrypt_p: u32,
    /// 0 means one per CPU core.
    pub hash_threads: usize,
    pub hash_queue_depth: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            min_length: 8,
            max_length: 4096,
            reject_similar: false,
            reject_numeric: false,
            reject_common: false,
            scrypt_log_n: 14,
            scrypt_r: 8,
            scrypt_p: 5,
            hash_threads: 0,
            hash_queue_depth: 256,
        }
    }
}

impl PasswordConfig {
    /// The scrypt parameters these settings describe, if valid.
    pub fn scrypt_params(&self) -> anyhow::Result<scrypt::Params> {
        scrypt::Params::new(self.scrypt_log_n, self.scrypt_r, self.scrypt_p).map_err(|_| {
            anyhow::anyhow!(
                "invalid password.scrypt_log_n/scrypt_r/scrypt_p: {}/{}/{} are not valid scrypt parameters",
                self.scrypt_log_n,
                self.scrypt_r,
                self.scrypt_p
            )
        })
    }

    /// How many threads hash passwords: `hash_threads`, or one per core for 0.
    pub fn hash_threads(&self) -> usize {
        match self.hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResetConfig {
    pub url: String,
    pub token_lifetime_secs: u64,
    /// Key of the reset-token HMAC; generated and kept in the database if unset.
    pub secret: Option<Secret>,
    /// The spec's 400 for an unknown address; false answers 200 as for a known one.
    pub reveal_unknown_email: bool,
    /// At most one reset mail per address per this many seconds.
    pub mail_cooldown_secs: u64,
    /// Whether latch serves the reset page itself, at the path of `url`.
    pub page: ResetPage,
}

impl Default for ResetConfig {
    fn default() -> Self {
        ResetConfig {
            url: "http://localhost:8000/reset-password".into(),
            token_lifetime_secs: 60 * 60,
            secret: None,
            reveal_unknown_email: true,
            mail_cooldown_secs: 60,
            page: ResetPage::Auto,
        }
    }
}

/// `reset.page`: whether latch itself answers the link of the reset mail
/// with a page that sets the new password (`http/reset_page.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetPage {
    /// Served when `reset.url` points at latch itself: its path is
    /// [`ResetPage::DEFAULT_PATH`] and its host is a loopback name or
    /// address (`localhost`, `127.0.0.1`, `::1`) or `server.bind`'s address.
    #[default]
    Auto,
    /// Served at the path of `reset.url`, wherever that points.
    On,
    /// Never served; the link is your front end's business.
    Off,
}

impl ResetPage {
    /// The path of the default `reset.url`, the one `auto` looks for.
    pub const DEFAULT_PATH: &'static str = "/reset-password";
}

/// `"auto"`, `true` or `false`, as written in `auth.toml`.
impl Serialize for ResetPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResetPage::Auto => s.serialize_str("auto"),
            ResetPage::On => s.serialize_bool(true),
            ResetPage::Off => s.serialize_bool(false),
        }
    }
}

/// `"auto"`, `true` or `false`; also the text `"true"` and `"false"`, as an
/// environment variable (`LATCH_RESET_PAGE=true`) arrives.
impl<'de> Deserialize<'de> for ResetPage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ResetPage, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrText {
            Bool(bool),
            Text(String),
        }
        match BoolOrText::deserialize(d) {
            Ok(BoolOrText::Bool(true)) => Ok(ResetPage::On),
            Ok(BoolOrText::Bool(false)) => Ok(ResetPage::Off),
            Ok(BoolOrText::Text(text)) if text == "auto" => Ok(ResetPage::Auto),
            Ok(BoolOrText::Text(text)) if text == "true" => Ok(ResetPage::On),
            Ok(BoolOrText::Text(text)) if text == "false" => Ok(ResetPage::Off),
            _ => Err(serde::de::Error::custom("expected \"auto\", true or false")),
        }
    }
}

impl Config {
    /// The path latch serves the reset page at (`/reset-password`), or
    /// `None` when it does not serve it (see [`ResetPage`]). The path is
    /// `reset.url`'s, without its trailing slash, as routes are keyed.
    pub fn reset_page_path(&self) -> Option<&str> {
        let (host, path) = url_host_and_path(&self.reset.url)?;
        let path = match path.strip_suffix('/') {
            Some("") | None => path,
            Some(trimmed) => trimmed,
        };
        let served = match self.reset.page {
            ResetPage::On => true,
            ResetPage::Off => false,
            ResetPage::Auto => path == ResetPage::DEFAULT_PATH && self.is_this_server(host),
        };
        served.then_some(path)
    }

    /// True when `host` (from a URL) names this server: a loopback name or
    /// address, or the address latch listens on.
    fn is_this_server(&self, host: &str) -> bool {
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == self.server.bind.ip())
    }
}

/// The host (with brackets, for IPv6) and the path (`/` when empty) of an
/// `http(s)://` URL; `None` for anything else.
pub(crate) fn url_host_and_path(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        &host_port[..=host_port.find(']')?]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    Some((host, path))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 1025,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    Smtp,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: String,
    pub file_dir: PathBuf,
    pub retry_max_secs: u64,
    /// How long an instance holds a mail it is sending before another
    /// instance may take it over (if the first died mid-send).
    pub lease_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::Smtp,
            from: "webmaster@localhost".into(),
            file_dir: PathBuf::from("data/mail"),
            retry_max_secs: 300,
            lease_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Off switches every limit below off (for tests).
    pub enabled: bool,
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    pub login_window_secs: u64,
    pub registrations_per_ip: u32,
    pub reset_requests_per_ip: u32,
    pub ip_window_secs: u64,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed.
    #[serde(deserialize_with = "list_lenient")]
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            login_failures_per_account: 5,
            login_failures_per_ip: 50,
            login_window_secs: 15 * 60,
            registrations_per_ip: 20,
            reset_requests_per_ip: 20,
            ip_window_secs: 60 * 60,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `latch=debug,warn`... `RUST_LOG` wins.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `GET /metrics` (Prometheus) is served, never on the API's
    /// address; `None` (an empty value) serves no metrics.
    #[serde(with = "optional_addr")]
    pub bind: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            bind: Some(SocketAddr::from(([127, 0, 0, 1], 9100))),
        }
    }
}

/// An address, or nothing as an empty (or blank) string: a switch and an
/// address in one setting, as text in the file and in the environment.
mod optional_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not an address and port (like 127.0.0.1:9100), nor empty (off)"
            ))
        })
    }
}

/// A value that must never be printed: `{:?}` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Shorter than this, a secret is worth a warning (start-up, `latch check`).
    pub const ADVISED_BYTES: usize = 32;

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Shorter than [`Secret::ADVISED_BYTES`]: guessable, if it was typed.
    pub fn is_short(&self) -> bool {
        self.0.len() < Secret::ADVISED_BYTES
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Only text: environment values reach string settings untouched (see
/// `load.rs`), so a secret is exactly the bytes it was given.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A list, or (handy in an environment variable) one comma-separated string.
fn list_lenient<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    let items = match ListOrString::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    };
    Ok(items.into_iter().map(T::from).collect())
}

#[cfg(test)]
mod tests;
