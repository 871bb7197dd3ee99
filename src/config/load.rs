//! Reading the layers (defaults, file, environment, flags) into one `Config`,
//! then checking what types alone cannot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::Config;

/// Values given on the command line; `None` leaves the layers below alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
    pub db: Option<PathBuf>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
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

/// A loaded configuration and the warnings worth logging once logging is up.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

const ENV_PREFIX: &str = "LATCH_";

pub fn load(sources: Sources) -> anyhow::Result<Loaded> {
    let mut warnings = Vec::new();
    let mut figment = Figment::from(Serialized::defaults(Config::default()));

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
            Some(path) => {
                let value: figment::value::Value = value.parse().expect("parsing is infallible");
                figment = figment.merge((path.as_str(), value));
            }
            None => warnings.push(format!(
                "ignoring unknown environment variable {name}: it matches no setting"
            )),
        }
    }

    let o = &sources.overrides;
    if let Some(bind) = o.bind {
        figment = figment.merge(("server.bind", bind.to_string()));
    }
    if let Some(db) = &o.db {
        figment = figment.merge(("database.path", db.clone()));
    }
    if let Some(host) = &o.smtp_host {
        figment = figment.merge(("smtp.host", host.clone()));
    }
    if let Some(port) = o.smtp_port {
        figment = figment.merge(("smtp.port", port));
    }

    let config: Config = figment.extract().map_err(|err| {
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
    })?;
    config.validate()?;
    Ok(Loaded { config, warnings })
}

/// Maps lower-cased environment names (after the prefix) to dotted keys.
pub(super) fn env_names() -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let defaults = serde_json::to_value(Config::default()).expect("config serializes");
    for (section, table) in defaults.as_object().expect("config is a table") {
        for key in table.as_object().expect("sections are tables").keys() {
            names.insert(format!("{section}_{key}"), format!("{section}.{key}"));
        }
    }
    names
}

impl Config {
    /// Checks what types alone cannot; each message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let p = &self.password;
        p.scrypt_params()?;
        // 128 * r * N bytes per hash; refuse what would not fit in memory.
        if p.scrypt_log_n > 24 || u64::from(p.scrypt_r) * (1 << p.scrypt_log_n) * 128 > 1 << 32 {
            bail!("invalid password.scrypt_log_n/scrypt_r: one hash would need over 4 GiB");
        }
        if p.min_length == 0 {
            bail!("invalid password.min_length: must be at least 1");
        }
        if p.hash_queue_depth == 0 {
            bail!("invalid password.hash_queue_depth: must be at least 1");
        }
        if let Some(secret) = &self.jwt.secret
            && secret.expose().is_empty()
        {
            bail!("invalid jwt.secret: must not be empty (leave it out to have one generated)");
        }
        // Durations: zero would refuse everything, and beyond ten years the
        // arithmetic on instants and timestamps could overflow.
        let server = &self.server;
        for (key, value) in [
            (
                "jwt.access_token_lifetime_secs",
                self.jwt.access_token_lifetime_secs,
            ),
            (
                "jwt.refresh_token_lifetime_secs",
                self.jwt.refresh_token_lifetime_secs,
            ),
            ("reset.token_lifetime_secs", self.reset.token_lifetime_secs),
            ("smtp.timeout_secs", self.smtp.timeout_secs),
            ("mail.retry_max_secs", self.mail.retry_max_secs),
            (
                "server.header_read_timeout_secs",
                server.header_read_timeout_secs,
            ),
            (
                "server.body_read_timeout_secs",
                server.body_read_timeout_secs,
            ),
            ("server.idle_timeout_secs", server.idle_timeout_secs),
            ("server.shutdown_timeout_secs", server.shutdown_timeout_secs),
        ] {
            if !(1..=MAX_DURATION_SECS).contains(&value) {
                bail!("invalid {key}: must be from 1 to {MAX_DURATION_SECS} (ten years)");
            }
        }
        if server.max_connections == 0 {
            bail!("invalid server.max_connections: must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            bail!("invalid server.max_body_bytes: must be at least 1024");
        }
        for origin in &self.cors.allowed_origins {
            if !is_origin(origin) {
                bail!(
                    "invalid cors.allowed_origins: {origin:?} is not \"*\" or scheme://host[:port]"
                );
            }
        }
        if self.database.pool_size == 0 {
            bail!("invalid database.pool_size: must be at least 1");
        }
        if !(self.reset.url.starts_with("http://") || self.reset.url.starts_with("https://"))
            || self.reset.url.chars().any(char::is_whitespace)
        {
            bail!(
                "invalid reset.url: {:?} is not an http(s) URL",
                self.reset.url
            );
        }
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| {
                format!("invalid mail.from: {:?} is not an address", self.mail.from)
            })?;
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            bail!("invalid smtp.username/smtp.password: give both or neither");
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .with_context(|| format!("invalid log.level: {:?}", self.log.level))?;
        Ok(())
    }

    /// Where `./auth.toml` is looked for when no `--config` is given.
    pub fn default_file() -> &'static Path {
        Path::new("auth.toml")
    }
}

/// The longest duration any setting may have: ten years, in seconds.
const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 60 * 60;

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
