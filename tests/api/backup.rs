//! `latch backup`: a consistent copy of a database that is being written to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::admin::{latch_on, latch_with};
use crate::helpers::TestDb;
use crate::helpers::{PASSWORD, spawn_sqlite_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_a_register_flood_holds_every_user_acknowledged_before_it() {
    let app = Arc::new(spawn_sqlite_app_with(|_| {}).await);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<u16>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..4)
        .map(|t| {
            let (app, acknowledged, refused, stop) = (
                app.clone(),
                acknowledged.clone(),
                refused.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("u{t}x{i}");
                    let r = app
                        .register(&name, &format!("{name}@example.com"), PASSWORD)
                        .await;
                    match r.status {
                        201 => acknowledged.lock().unwrap().push(name),
                        other => refused.lock().unwrap().push(other),
                    }
                }
            })
        })
        .collect();
    crate::helpers::wait_until(
        std::time::Duration::from_secs(30),
        "50 registrations",
        async || acknowledged.lock().unwrap().len() >= 50,
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let before = acknowledged.lock().unwrap().clone();
    let (db, port, target) = (app.db_path(), app.smtp.port, copy.clone());
    let ran = tokio::task::spawn_blocking(move || {
        latch_on(&db, port, &["backup", target.to_str().unwrap()], "")
    })
    .await
    .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("integrity check passed"),
        "{}",
        ran.stdout
    );
    // The flood goes on past the backup, then stops.
    let at_backup = acknowledged.lock().unwrap().len();
    crate::helpers::wait_until(
        std::time::Duration::from_secs(30),
        "more registrations",
        async || acknowledged.lock().unwrap().len() >= at_backup + 20,
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for task in flood {
        task.await.unwrap();
    }
    assert_eq!(
        *refused.lock().unwrap(),
        Vec::<u16>::new(),
        "the server answered throughout"
    );

    // A file of its own: no WAL beside it, and sound.
    assert!(!dir.path().join("backup.db-wal").exists());
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn.prepare("SELECT username FROM users").unwrap();
    let in_copy: std::collections::HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(stmt);
    drop(conn);
    let missing: Vec<&String> = before.iter().filter(|u| !in_copy.contains(*u)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup but not in it: {missing:?}"
    );

    // latch serves the copy: a user from before the backup logs in.
    let restored = spawn_sqlite_app_with(|c| c.database.path = copy.clone()).await;
    assert_eq!(restored.login(&before[0], PASSWORD).await.status, 200);
    restored.shutdown().await;

    let again = latch_on(
        &app.db_path(),
        app.smtp.port,
        &["backup", copy.to_str().unwrap()],
        "",
    );
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr,
        format!(
            "latch: {} exists; pass --force to overwrite it\n",
            copy.display()
        )
    );
    let forced = latch_on(
        &app.db_path(),
        app.smtp.port,
        &["backup", copy.to_str().unwrap(), "--force"],
        "",
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

#[tokio::test]
async fn a_backup_over_the_live_database_or_its_wal_is_refused() {
    let app = spawn_sqlite_app_with(|_| {}).await;
    assert_eq!(
        app.register("ann", "ann@example.com", PASSWORD)
            .await
            .status,
        201
    );
    let db = app.db_path();
    let wal = format!("{}-wal", db.display());
    for target in [db.to_str().unwrap(), wal.as_str()] {
        let ran = latch_on(&db, app.smtp.port, &["backup", target, "--force"], "");
        assert_eq!(ran.code, 1, "{target}");
        assert!(
            ran.stderr
                .contains("is the database being backed up (or one of its files)"),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(
        app.login("ann", PASSWORD).await.status,
        200,
        "the server still has its data"
    );
    assert_eq!(
        app.register("bob", "bob@example.com", PASSWORD)
            .await
            .status,
        201
    );
}

#[test]
fn on_postgresql_backup_points_to_its_own_tools() {
    // Refused before any connection: no server needed.
    let db = TestDb::Postgres {
        url: "postgres://latch:secret@127.0.0.1:1/latch".into(),
    };
    let target = tempfile::tempdir().unwrap();
    let copy = target.path().join("copy.db");
    let ran = latch_with(&db, 1, &["backup", copy.to_str().unwrap()], "");
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("pg_dump"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("secret"), "{}", ran.stderr);
    assert!(!copy.exists());
}
