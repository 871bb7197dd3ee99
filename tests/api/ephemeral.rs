//! `latch serve --ephemeral` and `--db :memory:` as a test harness starts
//! them: the address on the first line of stdout, a temporary database that
//! is gone after the process exits, no limits, cheap hashing, mail in files.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{PASSWORD, SmtpServer};
use crate::process::Process;
use crate::smtp::ReceivedMail;

/// latch started as a CI job would, in a current folder of its own, with a
/// system temp folder (`TMPDIR`) of its own to check for leftovers.
struct Throwaway {
    latch: Process,
    cwd: TempDir,
    tmp: TempDir,
    client: reqwest::Client,
}

impl Throwaway {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Throwaway {
        let cwd = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let tmp_path = tmp.path().to_str().unwrap().to_string();
        let args = [&["serve"], args, &["--bind", "127.0.0.1:0"]].concat();
        let envs = [envs, &[("TMPDIR", tmp_path.as_str())]].concat();
        Throwaway {
            latch: Process::spawn(cwd.path(), &args, &envs),
            cwd,
            tmp,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The base URL, from the first line on stdout, which must be exactly
    /// `listening on http://127.0.0.1:<port>`.
    fn url(&self) -> String {
        let first = self.latch.first_stdout_line();
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}\n{}", self.latch.output()));
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("first line: {first:?}"));
        assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{first:?}");
        url.to_string()
    }

    /// The folder of the temporary database, as the log names it.
    fn database_dir(&self) -> PathBuf {
        let line = self.latch.wait_for("using a private temporary database");
        let dir = line
            .split("dir=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        PathBuf::from(dir)
    }

    async fn post(&self, url: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{url}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn register(&self, url: &str, username: &str) -> u16 {
        let body = json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        });
        self.post(url, "/api/auth/register/", body).await.0
    }

    async fn login(&self, url: &str, username: &str, password: &str) -> u16 {
        let body = json!({"username": username, "password": password});
        self.post(url, "/api/auth/login/", body).await.0
    }

    /// Stops latch with `signal` (TERM or INT); it must exit 0, having
    /// removed its database: nothing is left in its temp folder.
    fn stop(mut self, signal: &str) -> TempDir {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.latch.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.latch.child.wait().unwrap();
        assert!(exit.success(), "{exit:?}\n{}", self.latch.output());
        self.latch.wait_for("stopped");
        assert_eq!(leftovers(self.tmp.path()), Vec::<String>::new());
        self.cwd
    }
}

/// What a folder holds, recursively, as relative paths.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                folders.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The first `.eml` file in `dir`, waited for.
async fn mail_file(dir: &Path) -> ReceivedMail {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let eml = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "eml"))
        });
        if let Some(path) = eml {
            return ReceivedMail {
                to: Vec::new(),
                raw: std::fs::read_to_string(path).unwrap(),
            };
        }
        assert!(Instant::now() < deadline, "no .eml file in {dir:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ephemeral_is_a_throwaway_server_that_leaves_no_database_behind() {
    let app = Throwaway::start(&["--ephemeral"], &[]);
    let url = app.url();
    let db_dir = app.database_dir();
    assert!(db_dir.starts_with(app.tmp.path()), "{db_dir:?}");
    assert!(db_dir.join("auth.db").is_file());

    assert_eq!(app.register(&url, "alice").await, 201);
    assert_eq!(app.login(&url, "alice", PASSWORD).await, 200);

    // No limits: more registrations than one address may make per hour,
    // and more failed logins than one account may have, as fast as they go.
    let registrations = (0..40).map(|n| {
        let (app, url) = (&app, &url);
        async move { app.register(url, &format!("user{n}")).await }
    });
    let statuses = futures_util::future::join_all(registrations).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    for _ in 0..10 {
        assert_eq!(app.login(&url, "alice", "wrong-password").await, 401);
    }
    assert_eq!(app.login(&url, "alice", PASSWORD).await, 200);

    // Cheap hashing, said loudly.
    let warning = app.latch.wait_for("for tests only");
    assert!(warning.contains("WARN"), "{warning}");

    // Reset mail lands in data/mail; its link works.
    let (status, _) = app
        .post(
            &url,
            "/api/auth/password/reset/",
            json!({"email": "alice@example.com"}),
        )
        .await;
    assert_eq!(status, 200);
    let mail = mail_file(&app.cwd.path().join("data/mail")).await;
    let (uid, token) = mail.reset_params();
    let (status, body) = app
        .post(
            &url,
            &format!("/api/auth/password/reset/confirm/?uid={uid}&token={token}"),
            json!({"new_password": "another-horse-10"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.login(&url, "alice", "another-horse-10").await, 200);

    let cwd = app.stop("TERM");
    assert!(!db_dir.exists(), "{db_dir:?} is still there");
    // Only the mail, for the tester to read; no database in the current folder.
    let left = leftovers(cwd.path());
    assert!(left.iter().all(|p| p.starts_with("data")), "{left:?}");
    assert!(!cwd.path().join("data/auth.db").exists());
}

#[tokio::test]
async fn memory_database_serves_and_leaves_nothing_behind_and_the_address_comes_first() {
    // Warnings logged before the port is bound: an unknown LATCH_ variable
    // (while loading the settings) and a short secret (while starting).
    let config = tempfile::tempdir().unwrap();
    let config_file = config.path().join("auth.toml");
    std::fs::write(&config_file, "[jwt]\nsecret = \"short\"\n").unwrap();
    let app = Throwaway::start(
        &[
            "--db",
            ":memory:",
            "--config",
            config_file.to_str().unwrap(),
        ],
        &[("LATCH_SMTP_HSOT", "typo")],
    );
    let url = app.url();
    let db_dir = app.database_dir();
    assert!(db_dir.starts_with(app.tmp.path()), "{db_dir:?}");

    let health = app
        .client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.register(&url, "alice").await, 201);
    assert_eq!(app.login(&url, "alice", PASSWORD).await, 200);

    // The warnings are there, after the first line.
    app.latch.wait_for("LATCH_SMTP_HSOT");
    app.latch.wait_for("shorter than 32 bytes");
    let stdout = app.latch.stdout_lines();
    assert!(stdout[0].starts_with("listening on "), "{stdout:?}");
    assert!(
        stdout[1..].iter().any(|l| l.contains("LATCH_SMTP_HSOT")),
        "{stdout:?}"
    );
    // Only --ephemeral changes the rest: these are the usual settings.
    assert!(!app.latch.output().contains("for tests only"));

    let cwd = app.stop("TERM");
    assert!(!db_dir.exists(), "{db_dir:?} is still there");
    assert_eq!(leftovers(cwd.path()), Vec::<String>::new());
}

#[tokio::test]
async fn ephemeral_with_an_smtp_host_sends_by_smtp() {
    let smtp = SmtpServer::start();
    let port = smtp.port.to_string();
    let app = Throwaway::start(
        &[
            "--ephemeral",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
        ],
        &[],
    );
    let url = app.url();
    app.latch.wait_for("reset mail is sent to the SMTP server");
    assert_eq!(app.register(&url, "alice").await, 201);
    let (status, _) = app
        .post(
            &url,
            "/api/auth/password/reset/",
            json!({"email": "alice@example.com"}),
        )
        .await;
    assert_eq!(status, 200);
    let mails = smtp.wait_for_mail(1, Duration::from_secs(10)).await;
    let (uid, token) = mails[0].reset_params();
    let (status, _) = app
        .post(
            &url,
            &format!("/api/auth/password/reset/confirm/?uid={uid}&token={token}"),
            json!({"new_password": "another-horse-10"}),
        )
        .await;
    assert_eq!(status, 200);

    // SIGINT (Ctrl-C) cleans up as SIGTERM does; no mail folder was made.
    let cwd = app.stop("INT");
    assert_eq!(leftovers(cwd.path()), Vec::<String>::new());
}

#[test]
fn a_signal_as_soon_as_the_address_is_out_still_cleans_up() {
    for _ in 0..3 {
        let app = Throwaway::start(&["--ephemeral"], &[]);
        app.url();
        app.stop("TERM");
    }
}

#[test]
fn a_failed_start_removes_its_temporary_database_too() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut latch = Process::spawn(
        cwd.path(),
        &["serve", "--ephemeral", "--bind", &addr],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    let exit = latch.child.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{}", latch.output());
    latch.wait_for(&format!("binding {addr}"));
    // Its log was not lost for want of a first line.
    latch.wait_for("using a private temporary database");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

#[test]
fn ephemeral_and_a_database_file_do_not_go_together() {
    let out = Command::new(crate::process::BIN)
        .args(["serve", "--ephemeral", "--db", "x.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("--ephemeral") && stderr.contains("--db"),
        "{stderr}"
    );
}
