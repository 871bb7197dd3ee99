//! `latch import django` against databases made by the real Django
//! (tests/interop/django_users.py): every hasher Django ships, unusable and
//! inactive users, unicode names, gaps in ids, blank and clashing emails.
//! Imported users log in over HTTP with their Django passwords, keep their
//! ids, and tokens Django minted with the shared key keep working.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::admin::{Ran, latch_with};
use crate::helpers::{TEST_SECRET, TestApp, spawn_app, wait_until};
use crate::interop::{ask, python};

/// A Django project's database, its dumpdata export and what is in them.
struct Fixture {
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Fixture {
    fn make(python: &str, options: Value) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut job = json!({"dir": dir.path(), "signing_key": TEST_SECRET});
        job.as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        assert_eq!(ask(python, "django_users.py", &job), json!({"ok": true}));
        let manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap())
                .unwrap();
        Fixture { dir, manifest }
    }

    fn sqlite(&self) -> PathBuf {
        self.dir.path().join("django.sqlite3")
    }

    fn dumpdata(&self) -> PathBuf {
        self.dir.path().join("dumpdata.json")
    }

    fn users(&self) -> &Vec<Value> {
        self.manifest["users"].as_array().unwrap()
    }
}

fn import(app: &TestApp, source: &Path, flags: &[&str]) -> Ran {
    let mut args = vec!["import", "django", source.to_str().unwrap()];
    args.extend_from_slice(flags);
    latch_with(&app.db, app.smtp.port, &args, "")
}

/// The files of a folder with their contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Every active user with a password logs in with it and sees its Django id
/// in profile; the others are refused exactly like a wrong password.
async fn assert_every_user_logs_in(app: &TestApp, fixture: &Fixture) {
    for user in fixture.users() {
        let name = user["username"].as_str().unwrap();
        let Some(password) = user["password"].as_str() else {
            for guess in ["!", "None", "unusable"] {
                assert_eq!(app.login(name, guess).await.status, 401, "{name}");
            }
            continue;
        };
        let login = app.login(name, password).await;
        if !user["is_active"].as_bool().unwrap() {
            assert_eq!(login.status, 401, "{name} is inactive");
            continue;
        }
        assert_eq!(
            login.status, 200,
            "{name} ({}): {}",
            user["hasher"], login.text
        );
        let profile = app.profile(login.json()["access"].as_str().unwrap()).await;
        assert_eq!(
            profile.json(),
            json!({"id": user["id"], "username": name, "email": user["email"]}),
        );
        assert_eq!(
            app.login(name, "wrong-password").await.status,
            401,
            "{name}"
        );
    }
}

#[tokio::test]
async fn django_users_log_in_with_their_django_passwords_and_keep_their_ids() {
    let Some(python) = python() else { return };
    let fixture = Fixture::make(&python, json!({}));
    let app = spawn_app().await;
    let before = snapshot(fixture.dir.path());

    let dry = import(&app, &fixture.sqlite(), &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    let count = fixture.users().len();
    assert!(
        dry.stdout
            .contains(&format!("the import would add {count} users")),
        "{}",
        dry.stdout
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM users").await,
        0,
        "a dry run changes nothing"
    );

    let ran = import(&app, &fixture.sqlite(), &[]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains(&format!(
            "imported {count} users; accounts made in latch from now on get ids above 1000"
        )),
        "{}",
        ran.stdout
    );
    assert_eq!(
        snapshot(fixture.dir.path()),
        before,
        "the Django file is never written"
    );

    // Kept as Django had them.
    for user in fixture.users() {
        let id = user["id"].as_i64().unwrap();
        let row: (String, String, i64, i64, i64, i64, Option<i64>, String) =
            serde_json::from_value(serde_json::Value::Array(
                app.row(&format!(
                    "SELECT username, email, CASE WHEN is_active THEN 1 ELSE 0 END,
                            CASE WHEN is_staff THEN 1 ELSE 0 END,
                            CASE WHEN is_superuser THEN 1 ELSE 0 END,
                            date_joined, last_login, password_hash FROM users WHERE id = {id}"
                ))
                .await,
            ))
            .unwrap();
        assert_eq!(row.0, user["username"].as_str().unwrap());
        assert_eq!(row.1, user["email"].as_str().unwrap());
        assert_eq!(row.2 == 1, user["is_active"].as_bool().unwrap());
        assert_eq!(row.3 == 1, user["is_staff"].as_bool().unwrap());
        assert_eq!(row.4 == 1, user["is_superuser"].as_bool().unwrap());
        assert_eq!(row.5, user["date_joined"].as_i64().unwrap(), "{}", row.0);
        assert_eq!(row.6, user["last_login"].as_i64(), "{}", row.0);
        assert_eq!(
            row.7,
            user["stored_hash"].as_str().unwrap(),
            "copied, not computed"
        );
    }

    // Tokens Django minted before the switch work here (shared key).
    for user in fixture.users().iter().filter(|u| u["access"].is_string()) {
        let profile = app.profile(user["access"].as_str().unwrap()).await;
        assert_eq!(profile.status, 200, "{}", user["username"]);
        assert_eq!(profile.json()["id"], user["id"]);
        let refreshed = app
            .post_json(
                "/api/auth/token/refresh/",
                json!({"refresh": user["refresh"]}),
            )
            .await;
        assert_eq!(refreshed.status, 200, "{}", user["username"]);
    }

    assert_every_user_logs_in(&app, &fixture).await;

    // The first login replaced each Django hash with latch's scrypt.
    let with_passwords = fixture
        .users()
        .iter()
        .filter(|u| u["password"].is_string() && u["is_active"].as_bool().unwrap())
        .count() as i64;
    wait_until(
        std::time::Duration::from_secs(10),
        "hashes upgraded",
        async || {
            app.scalar::<i64>("SELECT COUNT(*) FROM users WHERE password_hash LIKE '$scrypt$%'")
                .await
                == with_passwords
        },
    )
    .await;
    assert_every_user_logs_in(&app, &fixture).await;

    // Again: nothing to do, nobody touched (the new hashes stay).
    let again = import(&app, &fixture.sqlite(), &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stdout
            .contains(&format!("already in latch:   {count}")),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.ends_with("nothing new to import\n"),
        "{}",
        again.stdout
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM users WHERE password_hash LIKE '$scrypt$%'")
            .await,
        with_passwords
    );

    // An account made in latch gets an id above every id Django ever used,
    // including the deleted highest one.
    let r = app
        .register("newcomer", "newcomer@example.com", "newcomer-pass-9")
        .await;
    assert_eq!(r.status, 201);
    let id: i64 = app
        .scalar("SELECT id FROM users WHERE username = 'newcomer'")
        .await;
    assert_eq!(id, fixture.manifest["max_id_ever"].as_i64().unwrap() + 1);
}

#[tokio::test]
async fn a_dumpdata_export_imports_the_same_users() {
    let Some(python) = python() else { return };
    let fixture = Fixture::make(&python, json!({"blank_email_pair": true}));
    let app = spawn_app().await;
    let ran = import(&app, &fixture.dumpdata(), &[]);
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.contains("a Django dumpdata export"),
        "{}",
        ran.stdout
    );
    assert_every_user_logs_in(&app, &fixture).await;
    // The SQLite file of the same project then finds everyone already here.
    let again = import(&app, &fixture.sqlite(), &[]);
    assert!(
        again.stdout.ends_with("nothing new to import\n"),
        "{}",
        again.stdout
    );
}

#[tokio::test]
async fn emails_equal_but_for_case_stop_the_import_unless_skipped() {
    let Some(python) = python() else { return };
    let fixture = Fixture::make(&python, json!({"case_conflict": true}));
    let app = spawn_app().await;
    let id_of = |name: &str| {
        fixture
            .users()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (upper, lower) = (id_of("caseupper"), id_of("caselower"));
    let expected = [
        format!(
            "\"caseupper\" (id {upper}): its email Case@example.com is also the email of \"caselower\" (id {lower}, case@EXAMPLE.com)"
        ),
        format!(
            "\"caselower\" (id {lower}): its email case@EXAMPLE.com is also the email of \"caseupper\" (id {upper}, Case@example.com)"
        ),
    ];
    for flags in [&[][..], &["--dry-run"]] {
        let ran = import(&app, &fixture.sqlite(), flags);
        assert_eq!(ran.code, 1, "{flags:?}: {}", ran.stdout);
        for conflict in &expected {
            assert!(
                ran.stdout.contains(&format!("conflict: {conflict}")),
                "{}",
                ran.stdout
            );
        }
        assert!(
            ran.stderr.contains("before writing anything: 2 conflicts"),
            "{}",
            ran.stderr
        );
        assert_eq!(
            app.scalar::<i64>("SELECT COUNT(*) FROM users").await,
            0,
            "{flags:?}"
        );
    }
    let ran = import(&app, &fixture.sqlite(), &["--skip-conflicts"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for conflict in &expected {
        assert!(
            ran.stdout.contains(&format!("skipped: {conflict}")),
            "{}",
            ran.stdout
        );
    }
    let imported: i64 = app.scalar("SELECT COUNT(*) FROM users").await;
    assert_eq!(imported as usize, fixture.users().len() - 2);
    assert_eq!(app.login("caseupper", "x").await.status, 401);
}

#[tokio::test]
async fn a_large_table_imports_with_progress_lines_off_a_terminal() {
    let Some(python) = python() else { return };
    let fixture = Fixture::make(&python, json!({"count": 20_000}));
    let app = spawn_app().await;
    let ran = import(&app, &fixture.sqlite(), &[]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("importing: 2000 of 20000 users\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.ends_with("importing: 20000 of 20000 users\n"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM users").await,
        20_000
    );
    let password = fixture.manifest["password"].as_str().unwrap();
    assert_eq!(app.login("user019999", password).await.status, 200);
}
