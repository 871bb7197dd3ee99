//! Several latch processes opening one new database file at once: exactly
//! one migrates it, every one of them serves.

use crate::process::Process;

#[tokio::test]
async fn processes_started_together_on_a_new_file_all_serve() {
    let client = reqwest::Client::new();
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shared.db");
        let db = db.to_str().unwrap();
        let processes: Vec<Process> = (0..4)
            .map(|_| {
                Process::start(
                    dir.path(),
                    &["--db", db, "--smtp-port", "1"],
                    &[("LATCH_JWT_SECRET", "multi-process-secret-0123456789abcdef")],
                )
            })
            .collect();
        for latch in &processes {
            let r = client
                .get(format!("http://{}/healthz", latch.addr()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", latch.output()));
            assert_eq!(r.status(), 200, "round {round}: {}", latch.output());
        }
        let conn = rusqlite::Connection::open(db).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5, "round {round}");
    }
}
