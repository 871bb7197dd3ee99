//! The database file as a whole: a consistent copy of it while it is in use
//! (`latch backup`), and what `latch check` looks at. Neither migrates: a
//! file made by another latch version is copied or read as it is.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

use super::MIGRATIONS;

/// Opens an existing database file without creating or migrating it.
fn open_existing(path: &Path, busy_timeout: Duration) -> anyhow::Result<Connection> {
    anyhow::ensure!(path.exists(), "there is no database at {}", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

/// `PRAGMA integrity_check`: empty when the file is sound, else what is wrong.
fn integrity_problems(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// How big the copy is.
pub struct BackupReport {
    pub bytes: u64,
}

/// Copies the database at `source` to `dest` through SQLite's online backup
/// API, in one step: one read snapshot, so the copy is consistent and, in
/// WAL mode, writers go on meanwhile. The copy is written under a temporary
/// name beside `dest`, checked (`integrity_check`), turned into a single
/// self-contained file (rollback journal; latch switches it back to WAL when
/// it serves it), synced, and only then given its name: an interrupted
/// backup never leaves a half-written `dest`. An existing `dest` is kept
/// unless `overwrite`.
pub fn backup(
    source: &Path,
    dest: &Path,
    overwrite: bool,
    busy_timeout: Duration,
) -> anyhow::Result<BackupReport> {
    if !overwrite && dest.exists() {
        anyhow::bail!("{} exists; pass --force to overwrite it", dest.display());
    }
    let src = open_existing(source, busy_timeout)?;
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Renaming the copy over the live file (or its WAL) would cut the
    // server off from its own database: its writes would go to a file
    // nobody opens again.
    let live = std::fs::canonicalize(source)?;
    let target = std::fs::canonicalize(folder)
        .with_context(|| format!("finding the folder {}", folder.display()))?
        .join(dest.file_name().unwrap_or_default());
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = live.clone().into_os_string();
        file.push(suffix);
        anyhow::ensure!(
            target != Path::new(&file),
            "{} is the database being backed up (or one of its files); write the copy somewhere else",
            dest.display()
        );
    }
    let partial = tempfile::Builder::new()
        .prefix(".latch-backup-")
        .tempfile_in(folder)
        .with_context(|| format!("creating a file in {}", folder.display()))?;
    {
        let mut copy = Connection::open(partial.path())?;
        let backup = rusqlite::backup::Backup::new(&src, &mut copy)?;
        // -1: every page in one step, from one read snapshot. A lock that
        // keeps the step from starting is waited out up to the busy timeout.
        let started = std::time::Instant::now();
        loop {
            use rusqlite::backup::StepResult;
            match backup.step(-1).context("copying the database")? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if started.elapsed() < busy_timeout => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => anyhow::bail!("copying the database: {other:?} after {busy_timeout:?}"),
            }
        }
    }
    let copy = Connection::open(partial.path())?;
    let problems = integrity_problems(&copy)?;
    anyhow::ensure!(
        problems.is_empty(),
        "the copy failed its integrity check: {}",
        problems.join("; ")
    );
    let mode: String = copy.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("delete"),
        "the copy stayed in {mode} mode"
    );
    drop(copy);
    partial.as_file().sync_all()?;
    let bytes = partial.as_file().metadata()?.len();
    if overwrite {
        partial.persist(dest)
    } else {
        partial.persist_noclobber(dest)
    }
    .map_err(|e| anyhow::anyhow!("naming the copy {}: {}", dest.display(), e.error))?;
    // The new name must survive a crash too.
    std::fs::File::open(folder)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing the folder {}", folder.display()))?;
    Ok(BackupReport { bytes })
}

/// The schema version of an existing database file, and the one this latch
/// migrates to, read without changing anything.
pub fn schema_versions(path: &Path, busy_timeout: Duration) -> anyhow::Result<(usize, usize)> {
    let conn = open_existing(path, busy_timeout)?;
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok((version, MIGRATIONS.len()))
}

/// What `latch check` wants to know about a database file.
pub struct Inspection {
    pub schema_version: usize,
    pub known_version: usize,
    pub integrity_problems: Vec<String>,
    pub users: i64,
    /// Which settings (generated secrets) are stored.
    pub stored_settings: Vec<String>,
}

pub fn inspect(path: &Path, busy_timeout: Duration) -> anyhow::Result<Inspection> {
    let conn = open_existing(path, busy_timeout)?;
    let schema_version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let integrity_problems = integrity_problems(&conn)?;
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
    };
    let users = if has("users")? {
        conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?
    } else {
        0
    };
    let stored_settings = if has("settings")? {
        let mut stmt = conn.prepare("SELECT key FROM settings ORDER BY key")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(Inspection {
        schema_version,
        known_version: MIGRATIONS.len(),
        integrity_problems,
        users,
        stored_settings,
    })
}
