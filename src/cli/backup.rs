//! `latch backup FILE`: a consistent copy of the database, also while
//! `serve` is answering on it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Outcome, Target};
use crate::config::Config;
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
