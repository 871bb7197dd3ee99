//! `latch migrate-store --from URL --to URL`: every table copied from one
//! database to another (SQLite to PostgreSQL, or back), counts verified.
//! The target must be empty; the source is only read. Stop the servers on
//! the source first: what they write after the copy is not in it.

use clap::Args;

use super::{Failure, Outcome, block_on};
use crate::config::{Config, Location, has_password};
use crate::store::{self, Store, TABLES};

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// The database to copy: sqlite://FILE or postgres://USER@HOST:PORT/DB
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The empty database to copy into (created or migrated to the current
    /// schema first). A password is taken from LATCH_DATABASE_URL when it
    /// names the same server, never from a flag.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

pub fn run(config: Config, args: MigrateStoreArgs) -> Outcome {
    let from = location(&config, &args.from, "--from")?;
    let to = location(&config, &args.to, "--to")?;
    if from == to {
        return Err(Failure::new("--from and --to name the same database"));
    }
    block_on(copy(&config, &from, &to))
}

/// A flag's URL as a location; a password in it is refused (flags show in
/// `ps`), and LATCH_DATABASE_URL (database.url) supplies it instead when it
/// is the same URL with a password.
fn location(config: &Config, url: &str, flag: &str) -> Result<Location, Failure> {
    if has_password(url) {
        return Err(Failure(format!(
            "{flag} must not hold a password: other users can read a command line (ps). \
             Put the URL with its password in LATCH_DATABASE_URL and give it here without"
        )));
    }
    let mut probe = config.database.clone();
    probe.url = Some(url.into());
    let location = probe
        .location()
        .map_err(|e| Failure(format!("{flag}: {e:#}")))?;
    Ok(match (location, config.database.url.as_ref()) {
        (Location::Postgres(given), Some(configured))
            if without_password(configured.expose()) == given.expose() =>
        {
            Location::Postgres(configured.clone())
        }
        (location, _) => location,
    })
}

/// `url` with the password (if any) taken out of its user info.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

async fn copy(config: &Config, from: &Location, to: &Location) -> Outcome {
    let busy = std::time::Duration::from_millis(config.database.busy_timeout_ms);
    if let Location::Sqlite(path) = from
        && !path.exists()
    {
        return Err(Failure(format!(
            "there is no database at {}",
            path.display()
        )));
    }
    // Only read: a source made or served by another latch version is
    // refused rather than migrated under it.
    let (version, known) = store::schema_versions_at(from, busy)
        .await
        .map_err(|e| Failure(format!("reading --from: {e:#}")))?;
    if version != known {
        return Err(Failure(format!(
            "--from has schema version {version}, and this latch uses {known}: start this latch's `serve` on it once (or use the latch that made it), then copy"
        )));
    }
    let source = Store::open(from, busy, 2)
        .await
        .map_err(|e| Failure(format!("opening --from: {e:#}")))?;
    let target = Store::open(to, busy, 2)
        .await
        .map_err(|e| Failure(format!("opening --to: {e:#}")))?;
    let snapshot = source.snapshot().await?;
    let counts = snapshot.counts();
    target.restore(&snapshot).await?;
    let copied = target.table_counts().await?;
    for ((table, want), got) in TABLES.iter().zip(counts).zip(copied) {
        if want != got {
            return Err(Failure(format!(
                "table {table}: {want} rows read but {got} in the target; the target is not usable"
            )));
        }
        println!("  {table:<20} {got}");
    }
    println!(
        "copied {} users and everything that belongs to them; the counts match",
        counts[0]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_taken_out_of_the_user_info_only() {
        assert_eq!(
            without_password("postgres://latch:s3cret@db:5432/latch?sslmode=require"),
            "postgres://latch@db:5432/latch?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://db/latch"),
            "postgres://db/latch"
        );
    }

    #[test]
    fn a_flag_with_a_password_is_refused_and_the_configured_one_is_used() {
        let mut config = Config::default();
        let err = location(&config, "postgres://u:p@db/x", "--to").unwrap_err();
        assert!(
            err.0.contains("LATCH_DATABASE_URL") && !err.0.contains(":p@"),
            "{}",
            err.0
        );
        config.database.url = Some("postgres://u:p@db/x".into());
        let Location::Postgres(url) = location(&config, "postgres://u@db/x", "--to").unwrap()
        else {
            panic!("a PostgreSQL location")
        };
        assert_eq!(url.expose(), "postgres://u:p@db/x");
        assert_eq!(
            location(&config, "sqlite://old.db", "--from").unwrap(),
            Location::Sqlite("old.db".into())
        );
    }
}
