use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use latch::cli;
use latch::config::{self, Loaded, LogFormat, Overrides, Sources};
use latch::log_writer::BatchedWriter;
use tracing_subscriber::EnvFilter;

/// latch: a self-hosted authentication server speaking the Django REST
/// Framework + simplejwt user API (register, login, refresh, profile, password
/// reset), from one binary with an embedded SQLite database.
///
/// Settings come from built-in defaults, then auth.toml, then LATCH_*
/// environment variables (LATCH_SMTP_HOST for [smtp] host), then these flags.
/// The JWT signing secret is read from auth.toml or LATCH_JWT_SECRET only.
#[derive(Parser)]
#[command(name = "latch", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (what latch does with no subcommand).
    Serve(ServeArgs),
    /// Manage accounts: create, list, show, set-password, activate, deactivate, delete.
    User(cli::user::UserArgs),
    /// Bring users over from Django: `latch import django SOURCE`.
    Import(cli::import_django::ImportArgs),
    /// Check the configuration, the database, the secrets and the SMTP server.
    Check(cli::check::CheckArgs),
    /// Send one mail through the configured transport now, and show the answer.
    SendTestEmail(cli::mail::SendTestEmailArgs),
    /// Copy the database consistently, also while `serve` runs on it.
    Backup(cli::backup::BackupArgs),
    /// Copy every table into an empty database on another backend (SQLite
    /// to PostgreSQL, or back), and check the counts.
    MigrateStore(MigrateStoreCommand),
}

#[derive(Args)]
struct MigrateStoreCommand {
    /// Configuration file (for LATCH_DATABASE_URL's password and the timeouts)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    args: cli::migrate_store::MigrateStoreArgs,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    /// Configuration file [default: ./auth.toml if it exists]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8000]
    #[arg(long, value_name = "ADDR:PORT")]
    bind: Option<SocketAddr>,
    /// SQLite database file; its folder is created if missing. `:memory:`: a
    /// private temporary database, removed at exit [default: data/auth.db]
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The database as a URL: sqlite://FILE, or postgres://USER@HOST:PORT/DB?sslmode=...
    /// without a password (give that in LATCH_DATABASE_URL or auth.toml)
    #[arg(long, value_name = "URL", conflicts_with = "db")]
    database_url: Option<String>,
    /// SMTP server that password reset mail is sent through [default: localhost]
    #[arg(long, value_name = "HOST")]
    smtp_host: Option<String>,
    /// Port of the SMTP server [default: 1025]
    #[arg(long, value_name = "PORT")]
    smtp_port: Option<u16>,
    /// For test runs: a private temporary database removed at exit, rate
    /// limits off, cheap (test-only) password hashing, and reset mail written
    /// to mail.file_dir unless an SMTP host or port is set
    #[arg(long, conflicts_with_all = ["db", "database_url"])]
    ephemeral: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let (config_file, overrides) = match &command {
        Command::Serve(args) => (
            args.config.clone(),
            Overrides {
                bind: args.bind,
                db: args.db.clone(),
                database_url: args.database_url.clone(),
                smtp_host: args.smtp_host.clone(),
                smtp_port: args.smtp_port,
                ephemeral: args.ephemeral,
            },
        ),
        Command::User(args) => target(&args.target),
        Command::Import(args) => target(&args.target),
        Command::Check(args) => target(&args.target),
        Command::SendTestEmail(args) => target(&args.target),
        Command::Backup(args) => target(&args.target),
        Command::MigrateStore(command) => (command.config.clone(), Overrides::default()),
    };
    let loaded = match load_config(config_file, overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    match command {
        Command::Serve(_) => run_server(loaded),
        Command::User(args) => {
            admin_logs(&loaded.warnings);
            cli::finish(cli::user::run(loaded.config, args.command))
        }
        Command::Import(args) => {
            admin_logs(&loaded.warnings);
            cli::finish(cli::import_django::run(loaded.config, args.from))
        }
        Command::Check(_) => {
            // check lists the warnings itself, among its findings.
            admin_logs(&[]);
            cli::finish(cli::check::run(loaded.config, &loaded.warnings))
        }
        Command::SendTestEmail(args) => {
            admin_logs(&loaded.warnings);
            cli::finish(cli::mail::run(loaded.config, args))
        }
        Command::Backup(args) => {
            admin_logs(&loaded.warnings);
            cli::finish(cli::backup::run(loaded.config, args))
        }
        Command::MigrateStore(command) => {
            admin_logs(&loaded.warnings);
            cli::finish(cli::migrate_store::run(loaded.config, command.args))
        }
    }
}

/// The configuration file and overrides an admin command names.
fn target(target: &cli::Target) -> (Option<PathBuf>, Overrides) {
    let overrides = Overrides {
        db: target.db.clone(),
        database_url: target.database_url.clone(),
        ..Overrides::default()
    };
    (target.config.clone(), overrides)
}

/// Every configuration layer, or exit code 2 with the reason on stderr.
fn load_config(config_file: Option<PathBuf>, overrides: Overrides) -> Result<Loaded, ExitCode> {
    let env = environment().map_err(|name| {
        eprintln!("latch: environment variable {name} is not valid UTF-8");
        ExitCode::from(2)
    })?;
    config::load(Sources {
        config_file,
        default_config_file: Some(latch::Config::default_file().to_path_buf()),
        env,
        overrides,
    })
    .map_err(|err| {
        eprintln!("latch: {err:#}");
        ExitCode::from(2)
    })
}

/// An admin command's own output is on stdout; warnings go to stderr.
fn admin_logs(warnings: &[String]) {
    // `latch user list | head` ends quietly, as other command-line tools
    // do, rather than with a panic about a broken pipe. (The server keeps
    // ignoring SIGPIPE: a client hanging up is an error to handle there.)
    #[cfg(unix)]
    // SAFETY: restoring a signal's default action, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("warn"))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    for warning in warnings {
        tracing::warn!("{warning}");
    }
}

fn run_server(loaded: Loaded) -> ExitCode {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(&loaded.config.log.level));
    // A request never waits for stdout: lines go to a buffer that a thread
    // of its own writes out (all of it when `_flush` drops at exit). Until
    // `serve` writes the first line, `listening on ...`, lines wait.
    let (stdout, _flush) = latch::log_writer::batched_after_first_line(std::io::stdout());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(stdout.clone());
    match loaded.config.log.format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        // One object per line: {"timestamp", "level", "message", fields...}.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    for note in &loaded.notes {
        tracing::info!("{note}");
    }
    match serve(loaded.config, stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The environment as text. A `LATCH_*` variable that is not text is an
/// error (naming it), not silently dropped: it may be the secret.
fn environment() -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        let ours = name.as_encoded_bytes().starts_with(b"LATCH_");
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => env.push((name, value)),
            (name, _) if ours => {
                return Err(name.unwrap_or_else(|n| n.to_string_lossy().into_owned()));
            }
            _ => {}
        }
    }
    Ok(env)
}

#[tokio::main]
async fn serve(config: latch::Config, stdout: BatchedWriter) -> anyhow::Result<()> {
    // Listened for before anything is made: a signal from the moment the
    // address is out (or earlier) stops latch cleanly, removing a temporary
    // database.
    let mut signals = Signals::install().context("installing signal handlers")?;
    let server = latch::Server::start(config).await?;
    // Always the first line on stdout, and out at once: a test harness
    // that started latch on port 0 reads the address from it.
    stdout.first_line(&format!("listening on {}", server.url()));
    loop {
        match signals.next().await {
            Signal::Stop => break,
            // A throwaway server whose terminal closed: clean up and go.
            Signal::Reload if server.is_throwaway() => break,
            Signal::Reload => match server.reload_tls() {
                Ok(true) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
                Ok(false) => tracing::info!("SIGHUP: nothing to reload (no TLS configured)"),
                Err(err) => {
                    tracing::error!("SIGHUP: {err:#}; still serving the previous certificate")
                }
            },
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

enum Signal {
    /// SIGINT (Ctrl-C) or SIGTERM.
    Stop,
    /// SIGHUP: read the TLS files again (systemd's ExecReload).
    Reload,
}

/// The signals latch acts on, listened for from [`Signals::install`] on.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Signal::Stop,
                _ = self.interrupt.recv() => Signal::Stop,
                _ = self.hangup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            self.ctrl_c.recv().await;
            Signal::Stop
        }
    }
}
