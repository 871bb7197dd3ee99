//! The admin commands (`latch user ...`, `check`, `send-test-email`,
//! `backup`), run as the real binary on the database file of a server that
//! is answering meanwhile.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestDb, spawn_app, spawn_sqlite_app_with};
use crate::process::BIN;
use crate::smtp::SmtpServer;

/// What a command printed, and how it ended.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `latch ARGS --db DB`, with `stdin` piped in (never a terminal), from
/// an empty folder so that no auth.toml is picked up; hashing is cheap and
/// mail goes to `smtp_port`.
pub fn latch_on(db: &Path, smtp_port: u16, args: &[&str], stdin: &str) -> Ran {
    latch_with(&TestDb::Sqlite(db.to_path_buf()), smtp_port, args, stdin)
}

/// `latch ARGS` on the test's database: a SQLite file by `--db`, a
/// PostgreSQL URL (with its password) by `LATCH_DATABASE_URL`.
pub fn latch_with(db: &TestDb, smtp_port: u16, args: &[&str], stdin: &str) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    // Only what this test sets: not the LATCH_* variables of the test run
    // itself (LATCH_INTEROP_PYTHON in CI).
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LATCH_") {
            command.env_remove(name);
        }
    }
    match db {
        TestDb::Sqlite(path) => command.args(args).arg("--db").arg(path),
        TestDb::Postgres { url } => command.args(args).env("LATCH_DATABASE_URL", url),
    };
    let mut child = command
        .current_dir(dir.path())
        .env("LATCH_PASSWORD_SCRYPT_LOG_N", "4")
        .env("LATCH_PASSWORD_SCRYPT_P", "1")
        .env("LATCH_SMTP_HOST", "127.0.0.1")
        .env("LATCH_SMTP_PORT", smtp_port.to_string())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn latch(app: &TestApp, args: &[&str], stdin: &str) -> Ran {
    latch_with(&app.db, app.smtp.port, args, stdin)
}

/// A failure: exit 1 and exactly one line `latch: <what>` on stderr.
fn assert_fails(ran: &Ran, what: &str) {
    assert_eq!(
        ran.code, 1,
        "stdout: {}\nstderr: {}",
        ran.stdout, ran.stderr
    );
    assert_eq!(ran.stderr, format!("latch: {what}\n"));
}

fn users_json(app: &TestApp) -> Vec<Value> {
    let ran = latch(app, &["user", "list", "--json"], "");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    serde_json::from_str::<Value>(&ran.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_user_created_on_the_command_line_logs_in_on_the_running_server() {
    let app = spawn_app().await;
    let ran = latch(
        &app,
        &[
            "user",
            "create",
            "root",
            "--email",
            "Root@Example.COM",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.stdout, "created user root (id 1)\n");
    let login = app.login("root", PASSWORD).await;
    assert_eq!(
        login.status, 200,
        "the trailing newline is not part of the password"
    );
    let profile = app.profile(login.json()["access"].as_str().unwrap()).await;
    assert_eq!(
        profile.json(),
        json!({"id": 1, "username": "root", "email": "Root@example.com"})
    );
}

#[tokio::test]
async fn user_create_refuses_what_registration_refuses_in_the_same_words() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("taken", "taken@example.com", PASSWORD)
            .await
            .status,
        201
    );
    let create = |name: &str, email: &str, password: &str| {
        latch(
            &app,
            &["user", "create", name, "--email", email, "--password-stdin"],
            &format!("{password}\n"),
        )
    };
    assert_fails(
        &create("taken", "new@example.com", PASSWORD),
        "Username already exists.",
    );
    assert_fails(
        &create("new", "TAKEN@example.com", PASSWORD),
        "Email already exists.",
    );
    assert_fails(
        &create("bad name", "b@example.com", PASSWORD),
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    );
    assert_fails(
        &create("new", "not-an-email", PASSWORD),
        "Enter a valid email address.",
    );
    assert_fails(
        &create("new", "new@example.com", "short"),
        "This password is too short. It must contain at least 8 characters.",
    );
    // Without --password-stdin there must be a terminal to ask on.
    let no_tty = latch(
        &app,
        &["user", "create", "new", "--email", "n@example.com"],
        PASSWORD,
    );
    assert_fails(
        &no_tty,
        "no terminal to ask for the password on: pass --password-stdin and the password on stdin",
    );
    assert_eq!(users_json(&app).len(), 1, "nothing was stored");
}

#[tokio::test]
async fn list_and_show_by_name_or_id() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("ann", "ann@example.com", PASSWORD)
            .await
            .status,
        201
    );
    assert_eq!(
        app.register("42", "num@example.com", PASSWORD).await.status,
        201
    );
    assert_eq!(app.login("ann", PASSWORD).await.status, 200);

    let users = users_json(&app);
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "42"]);
    assert!(users[0]["last_login"].is_string(), "{users:?}");
    assert_eq!(users[1]["last_login"], Value::Null);
    assert_eq!(users[0]["is_active"], true);

    let table = latch(&app, &["user", "list"], "");
    assert_eq!(table.code, 0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID  USERNAME  EMAIL"),
        "{}",
        table.stdout
    );
    assert!(
        lines[1].starts_with("1   ann       ann@example.com  yes"),
        "{}",
        table.stdout
    );

    let show = |who: &str| {
        let ran = latch(&app, &["user", "show", who, "--json"], "");
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        serde_json::from_str::<Value>(&ran.stdout).unwrap()
    };
    assert_eq!(show("ann")["id"], 1);
    assert_eq!(
        show("ann")["password"],
        "latch scrypt",
        "the format, never the hash"
    );
    assert_eq!(show("1")["username"], "ann");
    assert_eq!(show("42")["username"], "42", "a username wins over an id");
    assert_eq!(show("2")["username"], "42");
    assert_fails(
        &latch(&app, &["user", "show", "nobody"], ""),
        "no user with the username or id \"nobody\"",
    );
}

#[tokio::test]
async fn set_password_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let (_access, refresh) = app.user_with_tokens("ann").await;
    let new_password = "another-horse-77";
    let weak = latch(
        &app,
        &["user", "set-password", "ann", "--password-stdin"],
        "ann\n",
    );
    assert_fails(
        &weak,
        "This password is too short. It must contain at least 8 characters.",
    );
    let ran = latch(
        &app,
        &["user", "set-password", "ann", "--password-stdin"],
        &format!("{new_password}\n"),
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(app.login("ann", PASSWORD).await.status, 401);
    assert_eq!(app.login("ann", new_password).await.status, 200);
    let old = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(old.status, 401, "the refresh token from before is revoked");
}

#[tokio::test]
async fn deactivate_locks_the_user_out_and_activate_lets_it_in_without_old_sessions() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("ann").await;
    let ran = latch(&app, &["user", "deactivate", "ann"], "");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(app.login("ann", PASSWORD).await.status, 401);
    assert_eq!(app.profile(&access).await.status, 401);

    let ran = latch(&app, &["user", "activate", "ann"], "");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(app.login("ann", PASSWORD).await.status, 200);
    let old = app
        .post_json("/api/auth/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(old.status, 401, "deactivation revoked it for good");
    assert_fails(
        &latch(&app, &["user", "activate", "nobody"], ""),
        "no user with the username or id \"nobody\"",
    );
}

#[tokio::test]
async fn delete_asks_unless_yes_and_the_id_is_never_reused() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("ann", "ann@example.com", PASSWORD)
            .await
            .status,
        201
    );
    assert_fails(
        &latch(&app, &["user", "delete", "ann"], "y\n"),
        "no terminal to confirm on: pass --yes to delete without asking",
    );
    assert_eq!(app.login("ann", PASSWORD).await.status, 200, "still there");
    let ran = latch(&app, &["user", "delete", "ann", "--yes"], "");
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "deleted ann (id 1)\n"));
    assert_eq!(app.login("ann", PASSWORD).await.status, 401);
    assert_eq!(
        app.register("ann", "ann@example.com", PASSWORD)
            .await
            .status,
        201
    );
    assert_eq!(users_json(&app)[0]["id"], 2);
}

#[test]
fn commands_on_a_database_that_does_not_exist_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo.db");
    let copy = dir.path().join("copy.db");
    let copy = copy.to_str().unwrap();
    for args in [
        &["user", "list"][..],
        &["user", "show", "x"],
        &["user", "set-password", "x", "--password-stdin"],
        &["user", "deactivate", "x"],
        &["user", "delete", "x", "--yes"],
        &["backup", copy],
    ] {
        let ran = latch_on(&db, 1, args, "");
        assert_eq!(ran.code, 1, "{args:?}");
        assert!(
            ran.stderr.starts_with("latch: there is no database at "),
            "{}",
            ran.stderr
        );
        assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file left behind"
    );
}

#[tokio::test]
async fn check_passes_on_a_sound_setup_and_names_each_broken_setting() {
    let app = spawn_app().await;
    let ok = latch(&app, &["check"], "");
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let database = match app.db {
        TestDb::Sqlite(_) => "ok      database.path: ",
        TestDb::Postgres { .. } => "ok      database.url: ",
    };
    assert!(ok.stdout.contains(database), "{}", ok.stdout);
    assert!(
        ok.stdout.contains("ok      smtp.host: 127.0.0.1:"),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.ends_with("all is well\n"), "{}", ok.stdout);

    // The SMTP server is down.
    let down = SmtpServer::down();
    let ran = latch_with(&app.db, down.port, &["check"], "");
    assert_eq!(ran.code, 1);
    let line = ran.stdout.lines().find(|l| l.starts_with("error")).unwrap();
    assert!(line.starts_with("error   smtp.host: 127.0.0.1:"), "{line}");
    assert!(line.contains("Connection refused"), "{line}");
    assert_eq!(
        ran.stderr,
        "latch: 1 problem (the line marked error above)\n"
    );

    // A database file that is not one.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let ran = latch_on(&junk, app.smtp.port, &["check"], "");
    assert_eq!(ran.code, 1);
    assert!(
        ran.stdout.contains("error   database.path: "),
        "{}",
        ran.stdout
    );
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        vec![b'x'; 8192],
        "check writes nothing"
    );

    // A bad setting stops it before anything else, naming the key.
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "[database]\npool_size = -1\n").unwrap();
    let ran = latch_with(
        &app.db,
        1,
        &["check", "--config", toml.to_str().unwrap()],
        "",
    );
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("pool_size"), "{}", ran.stderr);
}

#[tokio::test]
async fn send_test_email_reports_the_servers_answer_or_the_exact_failure() {
    let app = spawn_app().await;
    let ran = latch(&app, &["send-test-email", "ops@example.com"], "");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with(&format!(
            "sent to ops@example.com through 127.0.0.1:{}: 250",
            app.smtp.port
        )),
        "{}",
        ran.stdout
    );
    let mails = app.smtp.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["ops@example.com"]);

    let down = SmtpServer::down();
    let ran = latch_with(
        &app.db,
        down.port,
        &["send-test-email", "ops@example.com"],
        "",
    );
    assert_fails(
        &ran,
        &format!(
            "could not send through 127.0.0.1:{}: Connection error: Connection refused (os error 111)",
            down.port
        ),
    );
    let ran = latch(&app, &["send-test-email", "not an address"], "");
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("bad recipient address"),
        "{}",
        ran.stderr
    );
}

#[test]
fn import_refuses_a_source_that_is_not_a_django_database_or_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latch.db");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let ran = latch_on(&db, 1, &["import", "django", text.to_str().unwrap()], "");
    assert_fails(
        &ran,
        &format!(
            "{} is neither a SQLite database nor the JSON of manage.py dumpdata auth.user",
            text.display()
        ),
    );
    // A SQLite database of something else.
    let other = dir.path().join("other.sqlite3");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let ran = latch_on(&db, 1, &["import", "django", other.to_str().unwrap()], "");
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("has no auth_user table"),
        "{}",
        ran.stderr
    );
    let missing = dir.path().join("missing.sqlite3");
    let ran = latch_on(&db, 1, &["import", "django", missing.to_str().unwrap()], "");
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .starts_with(&format!("latch: opening {}", missing.display())),
        "{}",
        ran.stderr
    );
    let export = dir.path().join("users.json");
    std::fs::write(
        &export,
        r#"[{"model": "auth.user", "fields": {"username": "a"}}]"#,
    )
    .unwrap();
    let ran = latch_on(&db, 1, &["import", "django", export.to_str().unwrap()], "");
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("--natural-primary"), "{}", ran.stderr);
    assert!(!db.exists(), "nothing was created");
}

#[tokio::test]
async fn commands_do_not_migrate_a_database_an_older_latch_still_serves() {
    let app = spawn_sqlite_app_with(|_| {}).await;
    app.sqlite()
        .execute_batch("PRAGMA user_version = 2")
        .unwrap();
    let ran = latch(&app, &["user", "list"], "");
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains(
            "has schema version 2, and this latch uses 5: start this latch's `serve` on it once"
        ),
        "{}",
        ran.stderr
    );
    assert_eq!(
        app.scalar::<i64>("PRAGMA user_version").await,
        2,
        "left as it was"
    );
}
