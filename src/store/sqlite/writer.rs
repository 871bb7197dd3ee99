//! The writer: one thread with one connection that commits the writes waiting
//! at a time together (group commit). Each write runs in a savepoint of its
//! own inside one `BEGIN IMMEDIATE` transaction, so one write's failure rolls
//! back only that write; the batch then commits with one fsync, and only
//! after the commit is any write acknowledged. Under load many writes share
//! one fsync; alone, a write costs what it did in a transaction of its own.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{Sqlite, exec};
use crate::store::{StoreError, StoreResult};

/// Most writes committed together.
const MAX_BATCH: usize = 128;

/// Told whether the batch committed (None) or why not.
type Done = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// Runs one write against the store (inside the batch) and returns how to
/// answer its caller once the batch is over.
pub(super) type Job = Box<dyn FnOnce(&Sqlite) -> Done + Send>;

thread_local! {
    /// The writer thread's connection, while it is inside a batch: the
    /// store's writes on this thread run in a savepoint of it.
    static BATCH: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// A write job for `f`, and where its answer arrives.
pub(super) fn job<T, F>(f: F) -> (Job, oneshot::Receiver<StoreResult<T>>)
where
    F: FnOnce(&Sqlite) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    let (answer, answered) = oneshot::channel();
    let job: Job = Box::new(move |store| {
        let result = f(store);
        Box::new(move |commit_error| {
            let result = match (result, commit_error) {
                (Ok(_), Some(err)) => Err(err.clone()),
                (result, _) => result,
            };
            // The caller may have gone away: the write stands all the same.
            let _ = answer.send(result);
        })
    });
    (job, answered)
}

/// True on the writer thread inside a batch.
pub(super) fn batching() -> bool {
    BATCH.with(|batch| batch.borrow().is_some())
}

/// Runs `f` in a savepoint of the batch (see [`batching`]).
pub(super) fn in_batch<T>(f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
    BATCH.with(|batch| {
        let batch = batch.borrow();
        let conn = batch.as_ref().expect("called inside a batch");
        let savepoint = Savepoint::start(conn)?;
        let value = f(conn)?;
        savepoint.release()?;
        Ok(value)
    })
}

/// One write's savepoint: rolled back unless released, also when the write
/// fails or panics. (rusqlite's own would parse its SQL on every write.)
struct Savepoint<'c> {
    conn: &'c Connection,
    released: bool,
}

impl<'c> Savepoint<'c> {
    fn start(conn: &'c Connection) -> StoreResult<Savepoint<'c>> {
        exec(conn, "SAVEPOINT write", [])?;
        Ok(Savepoint {
            conn,
            released: false,
        })
    }

    fn release(mut self) -> StoreResult<()> {
        exec(self.conn, "RELEASE write", [])?;
        self.released = true;
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.released {
            let _ = exec(self.conn, "ROLLBACK TO write", []);
            let _ = exec(self.conn, "RELEASE write", []);
        }
    }
}

/// Starts the writer thread on `conn`. It ends when every sender is gone.
pub(super) fn spawn(store: Sqlite, conn: Connection) -> std::io::Result<Sender<Job>> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    std::thread::Builder::new()
        .name("latch-writer".into())
        .spawn(move || run(&store, conn, &queue))?;
    Ok(jobs)
}

fn with_conn<T>(f: impl FnOnce(&Connection) -> T) -> T {
    BATCH.with(|batch| {
        f(batch
            .borrow()
            .as_ref()
            .expect("the writer owns its connection"))
    })
}

fn run(store: &Sqlite, conn: Connection, queue: &Receiver<Job>) {
    BATCH.with(|batch| *batch.borrow_mut() = Some(conn));
    // Jobs of a batch that SQLite ended under them, to run in the next one.
    let mut leftover: Vec<Job> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut leftover);
        if batch.is_empty() {
            let Ok(first) = queue.recv() else { return };
            batch.push(first);
        }
        batch.extend(queue.try_iter().take(MAX_BATCH.saturating_sub(batch.len())));
        if let Err(err) = with_conn(|c| c.execute_batch("BEGIN IMMEDIATE")) {
            // Another process holds the write lock past the busy timeout:
            // each write is tried on its own (and most likely answers 503).
            tracing::warn!(error = %err, "writer: could not start a transaction");
            let conn = BATCH.with(|b| b.borrow_mut().take());
            for job in batch {
                finish(store, job)(None);
            }
            BATCH.with(|b| *b.borrow_mut() = conn);
            continue;
        }
        let mut jobs = batch.into_iter();
        let mut dones: Vec<Done> = Vec::new();
        for job in jobs.by_ref() {
            dones.push(finish(store, job));
            // Some errors (a full disk, an I/O error) make SQLite roll the
            // whole transaction back by itself. The jobs after that must not
            // run outside it (they would be committed one by one while their
            // callers hear the batch failed): they go to the next batch.
            if with_conn(|c| c.is_autocommit()) {
                leftover.extend(jobs.by_ref());
                break;
            }
        }
        let committed = with_conn(|c| c.execute_batch("COMMIT")).map_err(StoreError::from);
        if committed.is_err() {
            let _ = with_conn(|c| c.execute_batch("ROLLBACK"));
        }
        for done in dones {
            done(committed.as_ref().err());
        }
    }
}

/// Runs one job; a panic answers its caller with an error (by dropping its
/// answer) and leaves the batch to the others.
fn finish(store: &Sqlite, job: Job) -> Done {
    let done = std::panic::catch_unwind(AssertUnwindSafe(|| job(store)))
        .unwrap_or_else(|_| Box::new(|_| tracing::error!("writer: a write panicked")));
    // A write may defer foreign keys for itself (the reset decoy); never
    // for the writes after it.
    let _ = BATCH.with(|b| {
        b.borrow()
            .as_ref()
            .map(|c| exec(c, "PRAGMA defer_foreign_keys = OFF", []))
    });
    done
}

#[cfg(test)]
mod tests {
    use super::super::Sqlite;
    use super::*;
    use std::time::Duration;

    /// SQLite ends the whole transaction by itself on some errors (a full
    /// disk): the writes after that point run in the next transaction, not
    /// one by one outside any, and each caller hears what became of its own.
    #[tokio::test(flavor = "multi_thread")]
    async fn writes_after_the_batch_was_rolled_back_under_them_go_in_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let insert = |key: &'static str| {
            let store = store.clone();
            async move {
                store
                    .write(move |s| {
                        s.in_write_tx(|c| {
                            exec(
                                c,
                                "INSERT INTO settings (key, value) VALUES (?1, 'v')",
                                [key],
                            )?;
                            Ok(())
                        })
                    })
                    .await
            }
        };
        // Hold the writer, so that the next three are one batch.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(move |_| {
                        held.recv().unwrap();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = tokio::spawn(insert("before"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let rolled_back = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(|s| {
                        s.in_write_tx(|c| {
                            // What SQLite does on its own after SQLITE_FULL.
                            c.execute_batch("ROLLBACK")?;
                            Ok(())
                        })
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = tokio::spawn(insert("after"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert!(before.await.unwrap().is_err(), "rolled back with its batch");
        assert!(rolled_back.await.unwrap().is_err());
        after.await.unwrap().unwrap();
        let conn = store.conn().unwrap();
        let keys: Vec<String> = conn
            .prepare("SELECT key FROM settings ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            keys,
            ["after"],
            "what a caller was told failed is not there"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_write_undoes_only_itself_and_the_rest_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let writes = (0..64).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |s| {
                        s.in_write_tx(|c| {
                            c.execute(
                                "INSERT INTO settings (key, value) VALUES (?1, 'v')",
                                [format!("k{n}")],
                            )?;
                            if n % 2 == 1 {
                                return Err(StoreError::Other(format!("write {n} fails")));
                            }
                            Ok(n)
                        })
                    })
                    .await
            })
        });
        let results: Vec<_> = futures_util::future::join_all(writes).await;
        for (n, result) in results.into_iter().enumerate() {
            match result.unwrap() {
                Ok(v) => assert_eq!((v, n % 2), (n, 0)),
                Err(StoreError::Other(why)) => assert_eq!(why, format!("write {n} fails")),
                Err(other) => panic!("{other:?}"),
            }
        }
        let conn = store.conn().unwrap();
        let kept: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM settings WHERE key LIKE 'k%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 32);
        let odd: i64 = conn
            .query_row("SELECT COUNT(*) FROM settings WHERE key = 'k1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(odd, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_write_answers_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("t.db"), Duration::from_secs(1), 2).unwrap();
        let panicked = store.write(|_| -> StoreResult<()> { panic!("boom") }).await;
        assert!(panicked.is_err());
        let (value, created) = store
            .write(|s| s.setting_or_insert("after", "ok".into()))
            .await
            .unwrap();
        assert_eq!((value.as_str(), created), ("ok", true));
    }
}
