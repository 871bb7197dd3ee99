//! `latch import django SOURCE`: users from a Django project's SQLite
//! database or a `manage.py dumpdata auth.user` export, with their ids and
//! password hashes.

use std::cell::{Cell, OnceCell};
use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Missing, Outcome, Target, Tools, block_on};
use crate::config::{Config, Location};
use crate::import;
use crate::store;

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Subcommand, Debug)]
pub enum ImportFrom {
    /// Users of a Django project: its SQLite database file (read-only, never
    /// written) or the JSON of `manage.py dumpdata auth.user`.
    Django {
        source: PathBuf,
        /// Change nothing; print what the import would do, conflicts included.
        #[arg(long)]
        dry_run: bool,
        /// Import the users without conflicts and list the others, instead of
        /// stopping before writing anything.
        #[arg(long)]
        skip_conflicts: bool,
    },
}

/// Users with a hash latch cannot check are listed up to this many.
const WARNINGS_SHOWN: usize = 20;
/// Below this many users there is nothing to watch.
const PROGRESS_FROM: usize = 10_000;

pub fn run(config: Config, from: ImportFrom) -> Outcome {
    let ImportFrom::Django {
        source,
        dry_run,
        skip_conflicts,
    } = from;
    let read = import::read_source(&source)?;
    let total = read.table.users.len();
    println!(
        "{}: a Django {} with {total} users",
        source.display(),
        read.kind
    );
    if read.other_objects > 0 {
        println!(
            "  ({} objects of other models in the export are ignored)",
            read.other_objects
        );
    }
    // A dry run against a database that does not exist yet plans against
    // an empty one, and leaves no file behind.
    let mut config = config;
    let scratch = tempfile::tempdir()?;
    if dry_run && !has_latch_tables(&config)? {
        config.database.url = None;
        config.database.path = scratch.path().join("empty.db");
    }
    let tools = Tools::open(config, Missing::Create)?;
    let plan = if dry_run {
        tools.block_on(import::dry_run(&tools.store, read.table))?
    } else {
        let progress = Progress::new();
        let plan = tools.block_on(import::run(
            &tools.store,
            read.table,
            skip_conflicts,
            &|done, total| progress.show(done, total),
        ))?;
        progress.finish();
        plan
    };
    println!("  new:                {}", plan.new.len());
    println!("  already in latch:   {} (left alone)", plan.present);
    println!("  conflicts:          {}", plan.conflicts.len());
    if !plan.formats.is_empty() {
        let formats: Vec<String> = plan
            .formats
            .iter()
            .map(|(format, n)| format!("{format} {n}"))
            .collect();
        println!("  password hashes of the new users: {}", formats.join(", "));
    }
    for warning in plan.unverifiable.iter().take(WARNINGS_SHOWN) {
        println!("warning: {warning}");
    }
    if plan.unverifiable.len() > WARNINGS_SHOWN {
        println!(
            "warning: ... and {} more users whose password hash latch cannot check",
            plan.unverifiable.len() - WARNINGS_SHOWN
        );
    }
    let verb = if skip_conflicts {
        "skipped"
    } else {
        "conflict"
    };
    for conflict in &plan.conflicts {
        println!("{verb}: {conflict}");
    }
    if !plan.conflicts.is_empty() && !skip_conflicts {
        let would = if dry_run { "would stop" } else { "stopped" };
        return Err(Failure(format!(
            "the import {would} before writing anything: {} conflicts (listed above); fix them in Django, or pass --skip-conflicts to import the other users",
            plan.conflicts.len()
        )));
    }
    match (dry_run, plan.new.len()) {
        (true, n) => println!("dry run: nothing was changed; the import would add {n} users"),
        (false, 0) => println!("nothing new to import"),
        (false, n) => println!(
            "imported {n} users; accounts made in latch from now on get ids above {}",
            plan.id_floor
        ),
    }
    Ok(())
}

/// A bar on a terminal, a line per tenth otherwise (logs of a CI job);
/// nothing for small tables.
struct Progress {
    terminal: bool,
    bar: OnceCell<indicatif::ProgressBar>,
    tenths_shown: Cell<usize>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            bar: OnceCell::new(),
            tenths_shown: Cell::new(0),
        }
    }

    fn show(&self, done: usize, total: usize) {
        if total < PROGRESS_FROM {
            return;
        }
        if self.terminal {
            let bar = self.bar.get_or_init(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "importing {bar:40} {pos}/{len} users ({per_sec}, {eta} left)",
                ) {
                    bar.set_style(style);
                }
                bar
            });
            return bar.set_position(done as u64);
        }
        let tenths = done * 10 / total;
        if tenths > self.tenths_shown.get() {
            self.tenths_shown.set(tenths);
            eprintln!("importing: {done} of {total} users");
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// Whether the configured database exists and has latch's tables (a dry run
/// must not create or migrate it).
fn has_latch_tables(config: &Config) -> Result<bool, Failure> {
    let busy = std::time::Duration::from_millis(config.database.busy_timeout_ms);
    Ok(match config.database.location()? {
        Location::Sqlite(path) => path.exists(),
        location @ Location::Postgres(_) => {
            block_on(store::schema_versions_at(&location, busy))?.0 > 0
        }
    })
}
