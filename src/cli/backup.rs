//! `latch backup FILE`: a consistent copy of the database, also while
//! `serve` is answering on it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Failure, Outcome, Target};
use crate::config::{Config, Location};
use crate::store;

#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: Target,
    /// Where to write the copy.
    pub file: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config: Config, args: BackupArgs) -> Outcome {
    let db = &config.database;
    if let Location::Postgres(_) = db.location()? {
        return Err(Failure::new(
            "latch backup copies a SQLite database; this one is on PostgreSQL, which has its own tools: \
             pg_dump for a consistent copy (pg_dump -Fc DB > latch.dump; pg_restore to bring it back), \
             or your provider's snapshots and point-in-time recovery",
        ));
    }
    let busy = Duration::from_millis(db.busy_timeout_ms);
    let report = store::backup(&db.path, &args.file, args.force, busy)?;
    println!(
        "backed up {} to {} ({} bytes, integrity check passed)",
        db.path.display(),
        args.file.display(),
        report.bytes
    );
    Ok(())
}
