//! Reading the layers (defaults, file, environment, flags) into one `Config`,
//! then checking what types alone cannot.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};

use super::{Config, ephemeral};

/// Values given on the command line; `None` leaves the layers below alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
    pub db: Option<PathBuf>,
    /// `--database-url`: never with a password in it (see `load`).
    pub database_url: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// `--ephemeral`: a throwaway server for tests (see `ephemeral.rs`).
    pub ephemeral: bool,
}

/// Where the settings come from. `env` is passed in (not read here) so that
/// loading is a pure function that tests can drive.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// An explicit `--config`: it must exist.
    pub config_file: Option<PathBuf>,
    /// Read if present and no explicit file was given.
    pub default_config_file: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub overrides: Overrides,
}

/// A loaded configuration and the warnings (and notes, to log at info
/// level) worth logging once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

const ENV_PREFIX: &str = "LATCH_";

pub fn load(sources: Sources) -> anyhow::Result<Loaded> {
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    // Every layer above the defaults, kept apart from them so that what the
    // user set (in any layer) can be told from a default, and where.
    let mut figment = Figment::new();

    let file = match (&sources.config_file, &sources.default_config_file) {
        (Some(path), _) => {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            Some(path.clone())
        }
        (None, Some(path)) if path.is_file() => Some(path.clone()),
        _ => None,
    };
    if let Some(path) = &file {
        figment = figment.merge(Toml::file_exact(path));
    }

    // LATCH_SMTP_HOST -> smtp.host, looked up in the list of real keys so that
    // keys with underscores (max_body_bytes) stay whole and typos are caught.
    let known = env_names();
    for (name, value) in &sources.env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        match known.get(&rest.to_ascii_lowercase()) {
            Some(EnvKey { path, scalar }) => {
                // Numbers and switches are parsed; everything else (text,
                // secrets, paths, lists) is taken byte for byte, so that
                // `0123` or `"quoted"` stay what they are.
                let value: figment::value::Value = if *scalar {
                    value.parse().expect("parsing is infallible")
                } else {
                    value.clone().into()
                };
                figment = figment.merge(Named(name, (path.as_str(), value)));
            }
            None => warnings.push(format!(
                "ignoring unknown environment variable {name}: it matches no setting"
            )),
        }
    }

    let o = &sources.overrides;
    if let Some(bind) = o.bind {
        figment = figment.merge(Named("--bind", ("server.bind", bind.to_string())));
    }
    if let Some(db) = &o.db {
        figment = figment.merge(Named("--db", ("database.path", db.clone())));
    }
    if let Some(url) = &o.database_url {
        if super::has_password(url) {
            bail!(
                "--database-url must not hold a password: other users can read a command line (ps). \
                 Give the URL in LATCH_DATABASE_URL or database.url in auth.toml instead"
            );
        }
        figment = figment.merge(Named("--database-url", ("database.url", url.clone())));
    }
    if let Some(host) = &o.smtp_host {
        figment = figment.merge(Named("--smtp-host", ("smtp.host", host.clone())));
    }
    if let Some(port) = o.smtp_port {
        figment = figment.merge(Named("--smtp-port", ("smtp.port", port)));
    }

    let layers = figment;
    let mut config: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(&layers)
        .extract()
        .map_err(|err| {
            let messages: Vec<String> = err.into_iter().map(|e| without_values(&e)).collect();
            anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
        })?;
    // The flag names a file; a URL from a lower layer would win over it.
    if o.db.is_some()
        && let Some(place) =
            set_in(&layers, "database.url").filter(|_| config.database.url.is_some())
    {
        config.database.url = None;
        notes.push(format!(
            "--db: database.url (set in {place}) is not used: the database is the file --db names"
        ));
    }
    if o.ephemeral {
        let adjusted = ephemeral::apply(&mut config, |key| set_in(&layers, key));
        warnings.extend(adjusted.warnings);
        notes.extend(adjusted.notes);
    }
    config.validate()?;
    Ok(Loaded {
        config,
        warnings,
        notes,
    })
}

/// Where the user set `key` (`smtp.host`): the file, the environment
/// variable or the flag; `None` if it has its default.
fn set_in(layers: &Figment, key: &str) -> Option<String> {
    let metadata = layers.find_metadata(key)?;
    Some(match &metadata.source {
        Some(file) => file.to_string(),
        None => metadata.name.to_string(),
    })
}

/// A layer's values under the name of where they came from
/// (`LATCH_SMTP_HOST`, `--smtp-host`), for messages.
struct Named<N, P>(N, P);

impl<N: AsRef<str>, P: Provider> Provider for Named<N, P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.as_ref().to_string())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.1.data()
    }
}

/// Settings whose values must not appear in an error message.
const SECRET_KEYS: [&str; 4] = [
    "jwt.secret",
    "reset.secret",
    "smtp.password",
    "database.url",
];

/// An error's text without anything that could be a secret: a bad value of a
/// secret setting is not quoted, and a file that does not parse is reported
/// by position, without the quoted line.
fn without_values(err: &figment::Error) -> String {
    let key = err.path.join(".");
    if SECRET_KEYS.contains(&key.as_str()) {
        return format!("invalid {key}: must be text (the value is not shown)");
    }
    let text = err.to_string();
    if !err.path.is_empty() {
        return text;
    }
    // toml's parse errors quote the offending line between their first line
    // (the position) and their last (the reason).
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if lines.len() > 2 => format!("{first}: {}", last.trim()),
        _ => text,
    }
}

/// A setting as the environment names it.
pub(super) struct EnvKey {
    /// `smtp.host`
    pub path: String,
    /// A number or a switch, parsed from its text; other values are text.
    pub scalar: bool,
}

/// Maps lower-cased environment names (after the prefix) to settings.
pub(super) fn env_names() -> BTreeMap<String, EnvKey> {
    let mut names = BTreeMap::new();
    let defaults = serde_json::to_value(Config::default()).expect("config serializes");
    for (section, table) in defaults.as_object().expect("config is a table") {
        for (key, default) in table.as_object().expect("sections are tables") {
            let key_info = EnvKey {
                path: format!("{section}.{key}"),
                scalar: default.is_number() || default.is_boolean(),
            };
            names.insert(format!("{section}_{key}"), key_info);
        }
    }
    names
}

impl Config {
    /// Checks what types alone cannot; each message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (key, value, range) in self.numbers() {
            if !range.contains(&value) {
                bail!(
                    "invalid {key}: {value} is out of range (must be from {} to {})",
                    range.start(),
                    range.end()
                );
            }
        }
        let p = &self.password;
        p.scrypt_params()?;
        // 128 * r * N bytes per hash; refuse what would not fit in memory.
        if u64::from(p.scrypt_r) * (1 << p.scrypt_log_n) * 128 > 1 << 32 {
            bail!("invalid password.scrypt_log_n/scrypt_r: one hash would need over 4 GiB");
        }
        if p.min_length > p.max_length {
            bail!(
                "invalid password.min_length: {} is above password.max_length ({})",
                p.min_length,
                p.max_length
            );
        }
        for (key, secret) in [
            ("jwt.secret", &self.jwt.secret),
            ("reset.secret", &self.reset.secret),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                bail!("invalid {key}: must not be empty (leave it out to have one generated)");
            }
        }
        let jwt = &self.jwt;
        match (jwt.algorithm.is_asymmetric(), &jwt.private_key_file) {
            (true, None) => bail!(
                "invalid jwt.private_key_file: jwt.algorithm = {:?} signs with a private key; give its PEM file",
                jwt.algorithm
            ),
            (false, Some(_)) => bail!(
                "invalid jwt.private_key_file: jwt.algorithm = {:?} is an HMAC; use EdDSA or RS256 with a key file",
                jwt.algorithm
            ),
            _ => {}
        }
        if !jwt.algorithm.is_asymmetric() && !jwt.previous_public_key_files.is_empty() {
            bail!("invalid jwt.previous_public_key_files: only used with EdDSA or RS256");
        }
        for (key, value) in [("jwt.issuer", &jwt.issuer), ("jwt.audience", &jwt.audience)] {
            if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
                bail!("invalid {key}: must not be empty (leave it out to not use it)");
            }
        }
        for origin in &self.cors.allowed_origins {
            if !is_origin(origin) {
                bail!(
                    "invalid cors.allowed_origins: {origin:?} is not \"*\" or scheme://host[:port]"
                );
            }
        }
        for proxy in &self.limits.trusted_proxies {
            parse_network(proxy).with_context(|| {
                format!(
                    "invalid limits.trusted_proxies: {proxy:?} is not an IP address or CIDR block"
                )
            })?;
        }
        if !(self.reset.url.starts_with("http://") || self.reset.url.starts_with("https://"))
            || self.reset.url.chars().any(char::is_whitespace)
        {
            bail!(
                "invalid reset.url: {:?} is not an http(s) URL",
                self.reset.url
            );
        }
        if let Some(path) = self.reset_page_path() {
            check_reset_page_path(path)?;
        }
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| {
                format!("invalid mail.from: {:?} is not an address", self.mail.from)
            })?;
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            bail!("invalid server.tls_cert_file/server.tls_key_file: give both or neither");
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            bail!("invalid smtp.username/smtp.password: give both or neither");
        }
        if let Some(metrics) = self.metrics.bind {
            let api = self.server.bind;
            let same_host = metrics.ip() == api.ip()
                || metrics.ip().is_unspecified()
                || api.ip().is_unspecified();
            if metrics.port() != 0 && metrics.port() == api.port() && same_host {
                bail!(
                    "invalid metrics.bind: {metrics} is server.bind's port too; metrics are served on an address of their own (or set metrics.bind = \"\" for none)"
                );
            }
        }
        if self.mail.lease_secs < 2 * self.smtp.timeout_secs {
            bail!(
                "invalid mail.lease_secs: {} must be at least twice smtp.timeout_secs ({}), so that a send fits in a lease before another instance may take the mail over",
                self.mail.lease_secs,
                self.smtp.timeout_secs
            );
        }
        self.database.location()?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .with_context(|| format!("invalid log.level: {:?}", self.log.level))?;
        Ok(())
    }

    /// Every number among the settings with the range it must lie in. The
    /// README's table of settings states the same ranges.
    pub fn numbers(&self) -> Vec<(&'static str, u64, RangeInclusive<u64>)> {
        let (s, d, j, p, r, l) = (
            &self.server,
            &self.database,
            &self.jwt,
            &self.password,
            &self.reset,
            &self.limits,
        );
        const DURATION: RangeInclusive<u64> = 1..=MAX_DURATION_SECS;
        let n = |v: usize| v as u64;
        vec![
            ("server.max_body_bytes", s.max_body_bytes, 1024..=64 << 20),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
                1..=3600,
            ),
            (
                "server.body_read_timeout_secs",
                s.body_read_timeout_secs,
                1..=3600,
            ),
            ("server.idle_timeout_secs", s.idle_timeout_secs, 1..=86_400),
            (
                "server.max_connections",
                n(s.max_connections),
                1..=1_000_000,
            ),
            (
                "server.shutdown_timeout_secs",
                s.shutdown_timeout_secs,
                1..=3600,
            ),
            ("database.busy_timeout_ms", d.busy_timeout_ms, 0..=600_000),
            ("database.pool_size", u64::from(d.pool_size), 1..=1024),
            ("jwt.leeway_secs", j.leeway_secs, 0..=3600),
            (
                "jwt.access_token_lifetime_secs",
                j.access_token_lifetime_secs,
                DURATION,
            ),
            (
                "jwt.refresh_token_lifetime_secs",
                j.refresh_token_lifetime_secs,
                DURATION,
            ),
            ("jwt.rotation_grace_secs", j.rotation_grace_secs, 0..=3600),
            ("password.min_length", n(p.min_length), 1..=4096),
            ("password.max_length", n(p.max_length), 1..=65_536),
            ("password.scrypt_log_n", u64::from(p.scrypt_log_n), 1..=24),
            ("password.scrypt_r", u64::from(p.scrypt_r), 1..=64),
            ("password.scrypt_p", u64::from(p.scrypt_p), 1..=64),
            ("password.hash_threads", n(p.hash_threads), 0..=256),
            (
                "password.hash_queue_depth",
                n(p.hash_queue_depth),
                1..=1_000_000,
            ),
            ("reset.token_lifetime_secs", r.token_lifetime_secs, DURATION),
            ("reset.mail_cooldown_secs", r.mail_cooldown_secs, 0..=86_400),
            ("smtp.port", u64::from(self.smtp.port), 1..=65_535),
            ("smtp.timeout_secs", self.smtp.timeout_secs, 1..=3600),
            ("mail.retry_max_secs", self.mail.retry_max_secs, 1..=86_400),
            ("mail.lease_secs", self.mail.lease_secs, 1..=86_400),
            (
                "limits.login_failures_per_account",
                u64::from(l.login_failures_per_account),
                1..=1_000_000,
            ),
            (
                "limits.login_failures_per_ip",
                u64::from(l.login_failures_per_ip),
                1..=1_000_000,
            ),
            (
                "limits.login_window_secs",
                l.login_window_secs,
                1..=30 * 86_400,
            ),
            (
                "limits.registrations_per_ip",
                u64::from(l.registrations_per_ip),
                1..=1_000_000,
            ),
            (
                "limits.reset_requests_per_ip",
                u64::from(l.reset_requests_per_ip),
                1..=1_000_000,
            ),
            ("limits.ip_window_secs", l.ip_window_secs, 1..=30 * 86_400),
        ]
    }

    /// Where `./auth.toml` is looked for when no `--config` is given.
    pub fn default_file() -> &'static Path {
        Path::new("auth.toml")
    }
}

/// The longest duration any setting may have: ten years, in seconds.
const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 60 * 60;

/// Paths of latch's own endpoints, which the reset page must leave alone.
/// Every path of latch's own routes falls under one of these (the route
/// table refuses to start with two routes on one path besides).
const RESERVED_PATHS: [&str; 4] = ["/api", "/healthz", "/readyz", "/.well-known"];

/// The reset page's path (from `reset.url`) must be one the route table can
/// hold and the page can name its assets under: plain characters, no empty,
/// `.` or `..` segment, and none of latch's own paths.
fn check_reset_page_path(path: &str) -> anyhow::Result<()> {
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'));
    let segments_ok = path == "/"
        || path
            .split('/')
            .skip(1)
            .all(|segment| !matches!(segment, "" | "." | ".."));
    if !plain || !segments_ok {
        bail!(
            "invalid reset.url: latch serves the reset page (reset.page) at its path {path:?}, \
             which must be made of letters, digits, - . _ ~ and single slashes"
        );
    }
    if let Some(taken) = RESERVED_PATHS
        .iter()
        .find(|r| path == **r || path.starts_with(&format!("{r}/")))
    {
        bail!(
            "invalid reset.url: latch serves the reset page (reset.page) at its path {path:?}, \
             but {taken} is latch's own; choose another path or set reset.page = false"
        );
    }
    Ok(())
}

/// `*`, or an origin as browsers send it: `http(s)://host[:port]`, no path.
fn is_origin(origin: &str) -> bool {
    if origin == "*" {
        return true;
    }
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "0"));
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        && port.parse::<u16>().is_ok()
}

/// An address (`10.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`).
pub fn parse_network(text: &str) -> anyhow::Result<ipnet::IpNet> {
    let text = text.trim();
    Ok(match text.parse::<IpAddr>() {
        Ok(addr) => ipnet::IpNet::from(addr),
        Err(_) => text.parse::<ipnet::IpNet>()?,
    })
}
