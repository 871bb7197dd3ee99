//! Settings, layered: built-in defaults, then `auth.toml`, then `LATCH_*`
//! environment variables, then command-line flags. Every key of the file has
//! an environment twin: `[smtp] host` is `LATCH_SMTP_HOST`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};

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
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub max_body_bytes: u64,
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_body_bytes: 64 * 1024,
            shutdown_timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins (`https://app.example.com`) whose pages may call the API; `*` for any.
    #[serde(deserialize_with = "string_list_lenient")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub path: PathBuf,
    pub busy_timeout_ms: u64,
    pub pool_size: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("data/auth.db"),
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
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    #[serde(deserialize_with = "opt_string_lenient")]
    pub secret: Option<String>,
    pub algorithm: JwtAlgorithm,
    pub access_token_lifetime_secs: u64,
    pub refresh_token_lifetime_secs: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            secret: None,
            algorithm: JwtAlgorithm::HS256,
            access_token_lifetime_secs: 5 * 60,
            refresh_token_lifetime_secs: 24 * 60 * 60,
        }
    }
}

// Written by hand so the secret can never reach a log through `{:?}`.
impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("algorithm", &self.algorithm)
            .field(
                "access_token_lifetime_secs",
                &self.access_token_lifetime_secs,
            )
            .field(
                "refresh_token_lifetime_secs",
                &self.refresh_token_lifetime_secs,
            )
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
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
            scrypt_log_n: 14,
            scrypt_r: 8,
            scrypt_p: 5,
            hash_threads: 0,
            hash_queue_depth: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResetConfig {
    pub url: String,
    pub token_lifetime_secs: u64,
}

impl Default for ResetConfig {
    fn default() -> Self {
        ResetConfig {
            url: "http://localhost:8000/reset-password".into(),
            token_lifetime_secs: 60 * 60,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(deserialize_with = "opt_string_lenient")]
    pub username: Option<String>,
    #[serde(deserialize_with = "opt_string_lenient")]
    pub password: Option<String>,
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

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_secs", &self.timeout_secs)
            .finish()
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
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::Smtp,
            from: "webmaster@localhost".into(),
            file_dir: PathBuf::from("data/mail"),
            retry_max_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `latch=debug,warn`... `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

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
fn env_names() -> BTreeMap<String, String> {
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
        scrypt::Params::new(p.scrypt_log_n, p.scrypt_r, p.scrypt_p).map_err(|_| {
            anyhow::anyhow!(
                "invalid password.scrypt_log_n/scrypt_r/scrypt_p: {}/{}/{} are not valid scrypt parameters",
                p.scrypt_log_n,
                p.scrypt_r,
                p.scrypt_p
            )
        })?;
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
            && secret.is_empty()
        {
            bail!("invalid jwt.secret: must not be empty (leave it out to have one generated)");
        }
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
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
            ),
            ("mail.retry_max_secs", self.mail.retry_max_secs),
        ] {
            if value == 0 {
                bail!("invalid {key}: must be at least 1");
            }
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

/// Environment values are parsed as TOML-ish scalars, so `LATCH_SMTP_PASSWORD=1234`
/// arrives as a number; accept that for string settings.
fn opt_string_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Str(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Str(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

/// A list, or (handy in an environment variable) one comma-separated string.
fn string_list_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = load(Sources::default()).unwrap().config;
        assert_eq!(c.server.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(c.database.path, PathBuf::from("data/auth.db"));
        assert_eq!((c.smtp.host.as_str(), c.smtp.port), ("localhost", 1025));
        assert_eq!(
            (
                c.password.scrypt_log_n,
                c.password.scrypt_r,
                c.password.scrypt_p
            ),
            (14, 8, 5)
        );
        assert_eq!(c.jwt.access_token_lifetime_secs, 300);
        assert_eq!(c.jwt.refresh_token_lifetime_secs, 86400);
        assert_eq!(c.reset.token_lifetime_secs, 3600);
        assert!(c.jwt.secret.is_none());
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let (_dir, path) =
            file("[smtp]\nhost = \"file\"\nport = 2525\n[jwt]\nsecret = \"from-file\"\n");
        let loaded = load(Sources {
            config_file: Some(path),
            env: env(&[("LATCH_SMTP_HOST", "env"), ("LATCH_JWT_SECRET", "1234")]),
            overrides: Overrides {
                smtp_port: Some(26),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.smtp.host, "env");
        assert_eq!(c.smtp.port, 26);
        assert_eq!(
            c.jwt.secret.as_deref(),
            Some("1234"),
            "numeric env value kept as a string"
        );
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn env_keys_with_underscores_map_whole() {
        let c = load(Sources {
            env: env(&[
                ("LATCH_SERVER_MAX_BODY_BYTES", "4096"),
                ("LATCH_PASSWORD_SCRYPT_LOG_N", "10"),
            ]),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(c.server.max_body_bytes, 4096);
        assert_eq!(c.password.scrypt_log_n, 10);
    }

    #[test]
    fn cors_origins_from_env_as_a_comma_separated_string() {
        let c = load(Sources {
            env: env(&[(
                "LATCH_CORS_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:3000",
            )]),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(
            c.cors.allowed_origins,
            ["https://a.example", "http://localhost:3000"]
        );
    }

    #[test]
    fn unknown_env_var_is_a_warning_naming_it() {
        let loaded = load(Sources {
            env: env(&[("LATCH_SMTP_HSOT", "x"), ("PATH", "/bin")]),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("LATCH_SMTP_HSOT"));
    }

    #[test]
    fn unknown_file_key_is_an_error_naming_it() {
        let (_dir, path) = file("[smtp]\nhots = \"x\"\n");
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
        let (_dir, path) = file("[smpt]\nhost = \"x\"\n");
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("smpt"), "{err}");
    }

    #[test]
    fn invalid_values_are_errors_naming_the_key() {
        let (_dir, path) = file("[smtp]\nport = \"many\"\n");
        let err = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
        for (text, key) in [
            ("[password]\nscrypt_r = 0\n", "scrypt"),
            ("[reset]\nurl = \"ftp://x\"\n", "reset.url"),
            ("[mail]\nfrom = \"not an address\"\n", "mail.from"),
            ("[jwt]\nsecret = \"\"\n", "jwt.secret"),
            ("[jwt]\nalgorithm = \"RS256\"\n", "algorithm"),
            ("[smtp]\ntls = \"maybe\"\n", "tls"),
            (
                "[cors]\nallowed_origins = [\"https://x.io/path\"]\n",
                "cors.allowed_origins",
            ),
            (
                "[cors]\nallowed_origins = [\"x.io\"]\n",
                "cors.allowed_origins",
            ),
        ] {
            let (_dir, path) = file(text);
            let err = load(Sources {
                config_file: Some(path),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn missing_explicit_config_file_is_an_error() {
        let err = load(Sources {
            config_file: Some("/nonexistent/auth.toml".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/auth.toml"));
    }

    #[test]
    fn repository_auth_toml_lists_every_setting_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("auth.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        // Every key appears, commented or not...
        for dotted in env_names().values() {
            let (section, key) = dotted.split_once('.').unwrap();
            assert!(
                text.contains(&format!("[{section}]")),
                "auth.toml lacks [{section}]"
            );
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "auth.toml lacks {dotted}"
            );
        }
        // ...and the uncommented values are the defaults.
        let from_file = load(Sources {
            config_file: Some(path),
            ..Default::default()
        })
        .unwrap()
        .config;
        assert_eq!(
            serde_json::to_value(from_file).unwrap(),
            serde_json::to_value(Config::default()).unwrap()
        );
    }
}
