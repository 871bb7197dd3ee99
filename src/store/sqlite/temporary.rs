//! `:memory:` as a database path: a private temporary database for a
//! throwaway server (`--db :memory:`, `--ephemeral`).
//!
//! SQLite's own in-memory database would not do: every connection would get
//! a database of its own (the pool's and the writer thread's), and it cannot
//! be in WAL mode. So `:memory:` means a real file, in a folder of its own in
//! the system temp folder (`$TMPDIR`), that is removed with the folder when
//! the server stops. A process killed with SIGKILL cannot remove it: the
//! folder (`latch-*`) is then left in the temp folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

pub use crate::config::MEMORY_DATABASE as MEMORY;

/// How often, and how far apart, a failed removal is tried again.
const REMOVE_TRIES: u32 = 10;
const REMOVE_PAUSE: Duration = Duration::from_millis(20);

/// True for the path `:memory:`.
pub fn is_memory(path: &Path) -> bool {
    path.as_os_str() == MEMORY
}

/// A folder in the temp folder holding the database file (and its WAL);
/// removed by [`TemporaryDatabase::remove`], or when dropped.
#[derive(Debug)]
pub struct TemporaryDatabase {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TemporaryDatabase {
    /// Makes a new, empty folder (readable by this user only).
    pub fn create() -> anyhow::Result<TemporaryDatabase> {
        let dir = tempfile::Builder::new()
            .prefix("latch-")
            .tempdir()
            .with_context(|| {
                format!(
                    "creating a temporary database folder in {}",
                    std::env::temp_dir().display()
                )
            })?;
        let path = dir.path().join("auth.db");
        Ok(TemporaryDatabase { dir, path })
    }

    /// The database file to open (it does not exist yet).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder that is removed.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the folder and everything in it, saying why if it could not.
    /// A connection still closing elsewhere (the writer thread ends just
    /// after the last handle of the store) may be deleting its WAL or, from
    /// a pool topping itself up, creating a file at that moment: the removal
    /// is tried again for a little while.
    pub fn remove(self) -> std::io::Result<()> {
        let dir = self.dir.keep();
        let mut tries = 0;
        loop {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) if tries < REMOVE_TRIES => {
                    tries += 1;
                    std::thread::sleep(REMOVE_PAUSE);
                }
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;

    #[test]
    fn memory_is_the_exact_path_only() {
        assert!(is_memory(Path::new(":memory:")));
        assert!(!is_memory(Path::new("./:memory:")));
        assert!(!is_memory(Path::new("data/auth.db")));
    }

    #[test]
    fn a_temporary_database_is_a_usable_store_and_goes_away() {
        let temporary = TemporaryDatabase::create().unwrap();
        let dir = temporary.dir().to_path_buf();
        assert!(dir.is_dir());
        assert!(
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("latch-")
        );
        let store = Sqlite::open(temporary.path(), Duration::from_secs(1), 2).unwrap();
        assert!(store.is_healthy());
        assert!(temporary.path().is_file());
        drop(store);
        temporary.remove().unwrap();
        assert!(!dir.exists());

        let temporary = TemporaryDatabase::create().unwrap();
        let dir = temporary.dir().to_path_buf();
        drop(temporary);
        assert!(!dir.exists(), "dropping removes it too");
    }

    #[test]
    fn opening_memory_directly_says_what_it_means() {
        let err = Sqlite::open(Path::new(MEMORY), Duration::from_secs(1), 1)
            .err()
            .expect("refused");
        let text = format!("{err:#}");
        assert!(text.contains(":memory:") && !text.contains("WAL"), "{text}");
    }
}
