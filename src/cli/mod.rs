//! The admin commands. Each file is one command group and a thin shell over
//! the functions the HTTP handlers call (`accounts`, `store`, `mail`), so a
//! rule such as the username format or the password policy lives once.
//!
//! A command prints its result on stdout and, when it fails, one line
//! `latch: <what went wrong>` on stderr with exit code 1.

pub mod backup;
pub mod check;
pub mod import_django;
pub mod mail;
pub mod migrate_store;
pub mod user;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::clock::{self, SharedClock};
use crate::config::{Config, Location};
use crate::error::ApiError;
use crate::passwords::Hasher;
use crate::store::{self, Store, StoreError, User};
use crate::validate::PasswordPolicy;

/// Which configuration and database a command works on (the same layers as
/// `serve`: defaults, auth.toml, LATCH_* variables, then these flags).
#[derive(Args, Clone, Default, Debug)]
pub struct Target {
    /// Configuration file [default: ./auth.toml if it exists]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// SQLite database file [default: data/auth.db, or as configured]
    #[arg(long, value_name = "FILE", global = true)]
    pub db: Option<PathBuf>,
    /// The database as a URL (sqlite://FILE or postgres://USER@HOST/DB), without a password
    #[arg(long, value_name = "URL", global = true, conflicts_with = "db")]
    pub database_url: Option<String>,
}

/// Why a command failed, in one line.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    pub fn new(text: impl Into<String>) -> Failure {
        Failure(text.into())
    }
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Failure(err.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        Failure(err.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure(format!("{err:#}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Self {
        Failure(err.to_string())
    }
}

pub type Outcome = Result<(), Failure>;

/// The exit code for `outcome`, its failure printed on stderr.
pub fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(text)) => {
            eprintln!("latch: {text}");
            ExitCode::FAILURE
        }
    }
}

/// What the account commands work with: the same store, hashing and
/// password policy the server builds from the same configuration.
pub struct Tools {
    /// Runs the commands' async calls; the store's connections live on it.
    runtime: tokio::runtime::Runtime,
    pub config: Config,
    pub store: Store,
    pub hasher: Hasher,
    pub policy: PasswordPolicy,
    pub clock: SharedClock,
}

/// Whether a command may create the database file when there is none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Refuse,
}

impl Tools {
    pub fn open(config: Config, missing: Missing) -> Result<Tools, Failure> {
        let db = &config.database;
        let location = db.location()?;
        let shown = store::describe(&location);
        let exists = match &location {
            Location::Sqlite(path) => path.exists(),
            Location::Postgres(_) => true,
        };
        if missing == Missing::Refuse && !exists {
            return Err(Failure(format!(
                "there is no database at {shown} (set database.path, LATCH_DATABASE_PATH or --db)"
            )));
        }
        let busy = Duration::from_millis(db.busy_timeout_ms);
        let runtime = runtime();
        // Migrating is the server's job: a command run with a newer latch
        // must not change the schema under an older one still serving.
        if exists {
            let (version, known) = runtime.block_on(store::schema_versions_at(&location, busy))?;
            let on_postgres = matches!(location, Location::Postgres(_));
            if version == 0 && on_postgres && missing == Missing::Refuse {
                return Err(Failure(format!(
                    "the database {shown} has no latch tables yet: start `latch serve` on it once"
                )));
            }
            if version < known && version > 0 {
                return Err(Failure(format!(
                    "the database {shown} has schema version {version}, and this latch uses {known}: start this latch's `serve` on it once to migrate it, then run the command again"
                )));
            }
        }
        let store = runtime.block_on(Store::open(&location, busy, 2))?;
        let params = config.password.scrypt_params()?;
        let hasher = Hasher::new(params, 1, 4)?;
        let policy = PasswordPolicy::from_config(&config.password);
        Ok(Tools {
            runtime,
            config,
            store,
            hasher,
            policy,
            clock: clock::system(),
        })
    }

    /// The user named `who`, or else (when `who` is a number) the one with
    /// that id: a username may be all digits, and then it wins.
    pub fn find_user(&self, who: &str) -> Result<User, Failure> {
        self.block_on(async {
            if let Some(user) = self.store.user_by_username(who).await? {
                return Ok(user);
            }
            if let Ok(id) = who.parse::<i64>()
                && let Some(user) = self.store.user_by_id(id).await?
            {
                return Ok(user);
            }
            Err(Failure(format!("no user with the username or id {who:?}")))
        })
    }

    /// Runs one of the command's async calls (a store call, hashing).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

/// A single-threaded runtime for a command's async calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
}

/// Runs a command's async calls that need no store.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// A password typed twice at the terminal, or one line from stdin with
/// `from_stdin` (its line ending removed, nothing else). Never a flag:
/// flags are visible to every user of the machine in the process list.
pub fn read_password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure(format!("reading the password from stdin: {e}")))?;
        let password = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line);
        return Ok(password.to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            "no terminal to ask for the password on: pass --password-stdin and the password on stdin",
        ));
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    if first != again {
        return Err(Failure::new(
            "the two passwords differ; nothing was changed",
        ));
    }
    Ok(first)
}

/// Unix seconds as an RFC 3339 UTC time.
pub fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}
