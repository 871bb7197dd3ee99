//! `latch check`: the configuration, the database, the secrets and the mail
//! transport, one line each, naming the setting; exit 0 only when nothing
//! is wrong. Reads only (it neither creates nor migrates the database).

use std::time::Duration;

use clap::Args;

use super::{Failure, Outcome, Target, block_on};
use crate::config::{Config, JwtAlgorithm, Location, MailTransport, Secret};
use crate::mail::Outgoing;
use crate::store;
use crate::tokens::Tokens;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
}

/// The SMTP server gets this long to answer, whatever smtp.timeout_secs says.
const SMTP_CHECK_TIMEOUT_SECS: u64 = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Worth knowing, not wrong.
    Note,
    Warn,
    Error,
}

struct Report {
    errors: usize,
}

impl Report {
    fn line(&mut self, verdict: Verdict, setting: &str, text: impl std::fmt::Display) {
        let label = match verdict {
            Verdict::Ok => "ok",
            Verdict::Note => "note",
            Verdict::Warn => "warning",
            Verdict::Error => {
                self.errors += 1;
                "error"
            }
        };
        println!("{label:<8}{setting}: {text}");
    }
}

pub fn run(config: Config, warnings: &[String]) -> Outcome {
    let mut report = Report { errors: 0 };
    report.line(
        Verdict::Ok,
        "configuration",
        "every layer read, every setting valid",
    );
    for warning in warnings {
        report.line(Verdict::Warn, "configuration", warning);
    }
    let stored = database(&config, &mut report);
    secret(
        &mut report,
        "jwt.secret",
        config.jwt.secret.as_ref(),
        &stored,
        store::JWT_SECRET,
    );
    secret(
        &mut report,
        "reset.secret",
        config.reset.secret.as_ref(),
        &stored,
        store::RESET_SECRET,
    );
    keys(&config, &stored, &mut report);
    mail(&config, &mut report);
    match report.errors {
        0 => {
            println!("all is well");
            Ok(())
        }
        1 => Err(Failure::new("1 problem (the line marked error above)")),
        n => Err(Failure(format!(
            "{n} problems (the lines marked error above)"
        ))),
    }
}

/// Checks the database; the settings it stores (generated secrets).
fn database(config: &Config, report: &mut Report) -> Vec<String> {
    match config.database.location() {
        Ok(Location::Sqlite(path)) => sqlite_database(config, &path, report),
        Ok(location) => block_on(postgres_database(config, &location, report)),
        Err(err) => {
            report.line(Verdict::Error, "database.url", format!("{err:#}"));
            Vec::new()
        }
    }
}

/// Connects, reads the schema version, and (when current) counts the users.
async fn postgres_database(
    config: &Config,
    location: &Location,
    report: &mut Report,
) -> Vec<String> {
    let shown = store::describe(location);
    let busy = Duration::from_millis(config.database.busy_timeout_ms);
    let (version, known) = match store::schema_versions_at(location, busy).await {
        Ok(versions) => versions,
        Err(err) => {
            report.line(Verdict::Error, "database.url", format!("{shown}: {err:#}"));
            return Vec::new();
        }
    };
    match version.cmp(&known) {
        std::cmp::Ordering::Equal => {}
        std::cmp::Ordering::Less => {
            let text = match version {
                0 => format!("{shown}: no latch tables yet; the first start creates them"),
                _ => format!("{shown}: schema {version}; the next start migrates it to {known}"),
            };
            report.line(Verdict::Note, "database.url", text);
            return Vec::new();
        }
        std::cmp::Ordering::Greater => {
            report.line(
                Verdict::Error,
                "database.url",
                format!(
                    "{shown}: schema {version} was made by a newer latch (this one knows {known})"
                ),
            );
            return Vec::new();
        }
    }
    let found = async {
        let store = store::Store::open(location, busy, 1).await?;
        anyhow::Ok((store.users().await?.len(), store.setting_keys().await?))
    };
    match found.await {
        Ok((users, settings)) => {
            report.line(
                Verdict::Ok,
                "database.url",
                format!("{shown}: schema {version} (current), {users} users"),
            );
            settings
        }
        Err(err) => {
            report.line(Verdict::Error, "database.url", format!("{shown}: {err:#}"));
            Vec::new()
        }
    }
}

fn sqlite_database(config: &Config, path: &std::path::Path, report: &mut Report) -> Vec<String> {
    let shown = path.display();
    if !path.exists() {
        report.line(
            Verdict::Note,
            "database.path",
            format!("{shown} does not exist yet; `latch serve` creates it"),
        );
        return Vec::new();
    }
    let busy = Duration::from_millis(config.database.busy_timeout_ms);
    let found = match store::inspect(path, busy) {
        Ok(found) => found,
        Err(err) => {
            report.line(Verdict::Error, "database.path", format!("{shown}: {err:#}"));
            return Vec::new();
        }
    };
    let (version, known) = (found.schema_version, found.known_version);
    match version.cmp(&known) {
        std::cmp::Ordering::Equal => report.line(
            Verdict::Ok,
            "database.path",
            format!("{shown}: schema {version} (current), {} users", found.users),
        ),
        std::cmp::Ordering::Less => report.line(
            Verdict::Note,
            "database.path",
            format!("{shown}: schema {version}; the next start migrates it to {known}"),
        ),
        std::cmp::Ordering::Greater => report.line(
            Verdict::Error,
            "database.path",
            format!("{shown}: schema {version} was made by a newer latch (this one knows {known})"),
        ),
    }
    match found.integrity_problems.as_slice() {
        [] => report.line(Verdict::Ok, "database.path", "integrity check passed"),
        problems => report.line(
            Verdict::Error,
            "database.path",
            format!("integrity check failed: {}", problems.join("; ")),
        ),
    }
    found.stored_settings
}

fn secret(
    report: &mut Report,
    setting: &str,
    configured: Option<&Secret>,
    stored: &[String],
    stored_as: &str,
) {
    match configured {
        Some(secret) if secret.is_short() => report.line(
            Verdict::Warn,
            setting,
            "set, but shorter than 32 bytes; a longer random secret is safer",
        ),
        Some(_) => report.line(Verdict::Ok, setting, "set"),
        None if stored.iter().any(|s| s == stored_as) => report.line(
            Verdict::Ok,
            setting,
            "not set; the one generated on the first start is kept in the database",
        ),
        None => report.line(
            Verdict::Note,
            setting,
            "not set; the first start generates one and keeps it in the database",
        ),
    }
}

/// The signing keys load (EdDSA/RS256 key files; an HMAC secret's length).
fn keys(config: &Config, stored: &[String], report: &mut Report) {
    let jwt = &config.jwt;
    let hmac = matches!(
        jwt.algorithm,
        JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
    );
    if hmac && jwt.secret.is_none() && !stored.iter().any(|s| s == store::JWT_SECRET) {
        return;
    }
    // An HMAC key's bytes do not matter here, only the key files' do.
    let secret = jwt
        .secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .unwrap_or_else(|| "x".repeat(32));
    match Tokens::new(jwt, secret.as_bytes()) {
        Ok(_) => report.line(
            Verdict::Ok,
            "jwt.algorithm",
            format!("{:?}: the signing keys load", jwt.algorithm),
        ),
        Err(err) => report.line(Verdict::Error, "jwt.private_key_file", format!("{err:#}")),
    }
}

fn mail(config: &Config, report: &mut Report) {
    if config.mail.transport == MailTransport::File {
        let dir = &config.mail.file_dir;
        let verdict = match tempfile::tempfile_in(dir) {
            Ok(_) => (Verdict::Ok, format!("{}: writable", dir.display())),
            Err(_) if !dir.exists() => (
                Verdict::Note,
                format!(
                    "{} does not exist yet; `latch serve` creates it",
                    dir.display()
                ),
            ),
            Err(err) => (
                Verdict::Error,
                format!("{}: cannot write there: {err}", dir.display()),
            ),
        };
        return report.line(verdict.0, "mail.file_dir", verdict.1);
    }
    let mut config = config.clone();
    config.smtp.timeout_secs = config.smtp.timeout_secs.min(SMTP_CHECK_TIMEOUT_SECS);
    // lettre's connection pool starts a task: it needs the runtime.
    let answer = block_on(async {
        let outgoing = Outgoing::from_config(&config).map_err(|e| format!("{e:#}"))?;
        match outgoing.check().await {
            Ok(()) => Ok(format!("{}: the SMTP server answers", outgoing.target())),
            Err(why) => Err(format!("{}: {why}", outgoing.target())),
        }
    });
    match answer {
        Ok(text) => report.line(Verdict::Ok, "smtp.host", text),
        Err(text) => report.line(Verdict::Error, "smtp.host", text),
    }
}
