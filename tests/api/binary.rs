//! The `latch` executable itself: flags, configuration errors, logging and
//! graceful shutdown on SIGTERM.

use std::process::Command;

use serde_json::json;

use crate::process::{BIN, Process};

const FLAGS: [&str; 6] = [
    "--config",
    "--bind",
    "--db",
    "--smtp-host",
    "--smtp-port",
    "--ephemeral",
];

#[test]
fn help_describes_every_flag() {
    for args in [&["--help"][..], &["serve", "--help"][..]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = help.lines().collect();
        for flag in FLAGS {
            let at = lines
                .iter()
                .position(|l| l.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
            // `--db <FILE>  Text` or, in the long help, the text on the next line.
            let usage = lines[at].trim_start();
            let usage_end = usage.find('>').map_or(flag.len(), |i| i + 1);
            let description = match usage[usage_end..].trim() {
                "" => lines.get(at + 1).map_or("", |l| l.trim()),
                text => text,
            };
            assert!(description.len() > 10, "{flag} has no description:\n{help}");
        }
    }
}

#[test]
fn unknown_config_keys_and_bad_values_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[server]\nbnd = \"x\"\n", "bnd"),
        ("[database]\npool_size = -1\n", "pool_size"),
    ] {
        let path = dir.path().join("auth.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(key), "{stderr}");
    }
}

#[tokio::test]
async fn serves_on_defaults_logs_safely_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut latch = Process::start(
        dir.path(),
        &["--smtp-port", "1"],
        &[("LATCH_SMTP_HSOT", "typo")],
    );
    let base = format!("http://{}", latch.addr());
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        dir.path().join("data/auth.db").is_file(),
        "default database path, folder created"
    );
    latch.wait_for("LATCH_SMTP_HSOT");
    assert!(
        latch
            .output()
            .contains("no jwt.secret configured: generated a random 256-bit secret")
    );

    let password = "a-secret-password-1";
    let r = client
        .post(format!("{base}/api/auth/register/"))
        .json(&json!({"username": "alice", "email": "alice@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tokens: serde_json::Value = client
        .post(format!("{base}/api/auth/login/"))
        .json(&json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access"].as_str().unwrap();
    let r = client
        .get(format!("{base}/api/auth/profile/"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!(
            "{base}/api/auth/password/reset/confirm/?uid=MQ&token=query-secret-value"
        ))
        .json(&json!({"new_password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // One line per request, and no secret anywhere in the log.
    latch.wait_for("path=/api/auth/password/reset/confirm/ status=400");
    let log = latch.output();
    assert!(
        log.contains("method=POST path=/api/auth/login/ status=200 latency_ms="),
        "{log}"
    );
    let stored_secret: String = rusqlite::Connection::open(dir.path().join("data/auth.db"))
        .unwrap()
        .query_row(
            "SELECT value FROM settings WHERE key = 'jwt_secret'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for secret in [
        password,
        access,
        tokens["refresh"].as_str().unwrap(),
        "query-secret-value",
        &stored_secret,
    ] {
        assert!(!log.contains(secret), "log leaks {secret:?}:\n{log}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &latch.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = latch.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    latch.wait_for("stopped");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_fields() {
    let dir = tempfile::tempdir().unwrap();
    let latch = Process::start(
        dir.path(),
        &["--smtp-port", "1"],
        &[("LATCH_LOG_FORMAT", "json")],
    );
    let listening = latch.wait_for("latch is listening");
    let line: serde_json::Value = serde_json::from_str(&listening).expect("a JSON line");
    let addr = line["addr"]
        .as_str()
        .expect("the address as a field")
        .to_string();
    let r = reqwest::get(format!("http://{addr}/healthz?token=secret-in-query"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request = latch.wait_for("\"path\":\"/healthz\"");
    let request: serde_json::Value = serde_json::from_str(&request).unwrap();
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], 200);
    assert_eq!(request["level"], "INFO");
    assert!(request["timestamp"].is_string());
    // The first line is the plain one a test harness reads; the log follows.
    let output = latch.output();
    assert_eq!(
        output.lines().next(),
        Some(format!("listening on http://{addr}").as_str())
    );
    for line in output.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(parsed.is_object(), "{line}");
    }
    assert!(
        !output.contains("secret-in-query"),
        "the query is never logged"
    );
}
