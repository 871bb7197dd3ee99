//! Where the data lives: `database.url` names the backend, or, unset, the
//! SQLite file at `database.path` (the default).

use std::path::PathBuf;

use anyhow::bail;

use super::{DatabaseConfig, Secret};

/// The database a configuration points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (or `:memory:`, a temporary one).
    Sqlite(PathBuf),
    /// A PostgreSQL server: `postgres://user:pass@host:port/db?sslmode=...`.
    Postgres(Secret),
}

impl DatabaseConfig {
    /// `database.url` if set (`sqlite://PATH` or `postgres://...`), else the
    /// SQLite file at `database.path`.
    pub fn location(&self) -> anyhow::Result<Location> {
        let Some(url) = &self.url else {
            return Ok(Location::Sqlite(self.path.clone()));
        };
        let url = url.expose();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("invalid database.url: sqlite:// needs a file, as in sqlite://data/auth.db");
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(Secret::from(url)));
        }
        // Not echoed: it may hold a password.
        bail!(
            "invalid database.url: it must start with sqlite:// or postgres:// (or postgresql://)"
        )
    }
}

/// True when a database URL carries a password (`user:pass@`, or
/// `password=` among its parameters).
pub fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    // As tokio-postgres reads a URL: the user part is everything up to the
    // first '@' ('/' and '?' in a password included).
    let in_userinfo = rest
        .split_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let in_query = query.split('&').any(|pair| {
        pair.split('=')
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("password"))
    });
    in_userinfo || in_query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_found_in_the_userinfo_or_the_parameters_only() {
        assert!(has_password("postgres://latch:s3cret@db:5432/latch"));
        assert!(has_password("postgres://latch:@db/latch"));
        assert!(has_password(
            "postgres://db/latch?sslmode=require&password=x"
        ));
        assert!(!has_password(
            "postgres://latch@db:5432/latch?sslmode=verify-full"
        ));
        assert!(!has_password("postgres://db:5432/latch"));
        // Passwords holding what ends a host elsewhere: tokio-postgres
        // reads the user part up to the first '@'.
        assert!(has_password("postgres://latch:ab/cd@db/latch"));
        assert!(has_password("postgres://latch:pa?ss@db/latch"));
    }

    #[test]
    fn the_url_picks_the_backend_and_the_path_is_the_default() {
        let mut db = DatabaseConfig::default();
        assert_eq!(
            db.location().unwrap(),
            Location::Sqlite("data/auth.db".into())
        );
        db.url = Some("sqlite:///var/lib/latch/auth.db".into());
        assert_eq!(
            db.location().unwrap(),
            Location::Sqlite("/var/lib/latch/auth.db".into())
        );
        db.url = Some("postgresql://latch@db/latch".into());
        assert!(matches!(db.location().unwrap(), Location::Postgres(_)));
        db.url = Some("mysql://root:hunter2@db/latch".into());
        let err = db.location().unwrap_err().to_string();
        assert!(
            err.contains("postgres://") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
