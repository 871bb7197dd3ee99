//! `--ephemeral`: a throwaway server for a test run. On top of every layer:
//! a private temporary database (`:memory:`, removed at exit), no rate
//! limits, a cheap scrypt cost, reset mail written to `mail.file_dir`
//! instead of sent, unless the user pointed latch at an SMTP server, and no
//! metrics listener unless `metrics.bind` is set.

use std::path::PathBuf;

use super::{Config, MailTransport};

/// scrypt cost (log_n, r, p) under `--ephemeral`: 2 KiB and microseconds
/// per hash instead of 16 MiB and tens of milliseconds. For tests only.
pub const EPHEMERAL_SCRYPT: (u8, u32, u32) = (4, 8, 1);

/// Settings that, set by the user in any layer, mean "send mail by SMTP".
const SMTP_KEYS: [&str; 3] = ["smtp.host", "smtp.port", "mail.transport"];

/// What to log about the adjustments.
#[derive(Debug, Default)]
pub(super) struct Adjusted {
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

/// Adjusts `config` for `--ephemeral`. `set_in(key)` says where the user set
/// a setting (a file, an environment variable, a flag), `None` for a default.
pub(super) fn apply(config: &mut Config, set_in: impl Fn(&str) -> Option<String>) -> Adjusted {
    let mut adjusted = Adjusted::default();

    // The server names the folder in its log when it makes it.
    config.database.path = PathBuf::from(super::MEMORY_DATABASE);
    if let Some(place) = set_in("database.path") {
        adjusted.notes.push(format!(
            "--ephemeral: database.path (set in {place}) is not used: the database is a temporary one"
        ));
    }
    // Never a real database: its users' hashes would be rewritten with the
    // cheap cost below at their next login.
    if config.database.url.take().is_some() {
        let place = set_in("database.url").unwrap_or_else(|| "the configuration".into());
        adjusted.notes.push(format!(
            "--ephemeral: database.url (set in {place}) is not used: the database is a temporary one"
        ));
    }

    config.limits.enabled = false;

    let p = &mut config.password;
    (p.scrypt_log_n, p.scrypt_r, p.scrypt_p) = EPHEMERAL_SCRYPT;
    adjusted.warnings.push(format!(
        "--ephemeral: passwords are hashed with a cheap scrypt cost (ln={}, r={}, p={}), for tests only: never keep real accounts this way",
        p.scrypt_log_n, p.scrypt_r, p.scrypt_p
    ));

    // Test runs start several throwaway servers side by side: a fixed
    // metrics port would stop the second one. Metrics only when asked for.
    let metrics = match set_in("metrics.bind") {
        Some(_) => "",
        None => {
            config.metrics.bind = None;
            " and no metrics are served (set metrics.bind for them)"
        }
    };

    let smtp_set = SMTP_KEYS
        .iter()
        .find_map(|key| set_in(key).map(|place| (key, place)));
    let mail = match (smtp_set, config.mail.transport) {
        (Some((key, place)), MailTransport::Smtp) => format!(
            "reset mail is sent to the SMTP server {}:{} ({key} is set in {place})",
            config.smtp.host, config.smtp.port
        ),
        _ => {
            config.mail.transport = MailTransport::File;
            format!(
                "reset mail is written to {} (mail.file_dir) as .eml files, not sent",
                config.mail.file_dir.display()
            )
        }
    };
    adjusted
        .notes
        .push(format!("--ephemeral: rate limits are off{metrics}; {mail}"));
    adjusted
}
