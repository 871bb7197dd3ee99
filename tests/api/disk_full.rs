//! A full disk: writes answer 503 JSON, reads keep working, and the server
//! recovers by itself once space returns. Uses a real 1 MiB tmpfs, so it
//! needs root (as CI has); elsewhere it says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{PASSWORD, spawn_app_with};

/// A tmpfs mounted for the test, lazily unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(at.to_path_buf()))
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).and_then(|_| file.sync_all()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_gives_503s_for_writes_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "1m") else {
        eprintln!("disk-full test skipped: mounting a tmpfs needs root");
        return;
    };
    let db = disk.0.join("auth.db");
    let app = spawn_app_with(|c| c.database.path = db).await;
    let (access, _) = app.user_with_tokens("alice").await;

    let filler = disk.fill();
    // Writes fail as 503s (SQLite may fit a few more into space it holds).
    let mut first_503 = None;
    for i in 0..200 {
        let r = app
            .register(&format!("u{i}"), &format!("u{i}@example.com"), PASSWORD)
            .await;
        assert!(
            r.status == 201 || r.status == 503,
            "{} {}",
            r.status,
            r.text
        );
        if r.status == 503 {
            r.assert(
                503,
                r#"{"detail":"Service temporarily unavailable, try again later."}"#,
            );
            assert_eq!(r.header("retry-after"), Some("1"));
            first_503 = Some(i);
            break;
        }
    }
    let first_503 = first_503.expect("200 registrations fit on a full disk");
    eprintln!("disk full: registration {first_503} was the first to get 503");
    // Reads keep working.
    assert_eq!(app.profile(&access).await.status, 200);
    assert_eq!(app.login("alice", PASSWORD).await.status, 200);
    app.get("/healthz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);

    // Space returns: the next write works, no restart needed.
    std::fs::remove_file(filler).unwrap();
    app.register("carol", "carol@example.com", PASSWORD)
        .await
        .assert(201, r#"{"message":"User registered successfully."}"#);
    assert_eq!(app.login("carol", PASSWORD).await.status, 200);
    drop(app);
}
