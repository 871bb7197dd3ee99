//! kill -9 at a bad moment loses nothing that was acknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use serde_json::json;

use crate::helpers::{PASSWORD, SmtpServer};
use crate::process::Process;

/// Cheap hashing, a known secret, and no rate limits (one address floods).
const TEST_SETTINGS: [(&str, &str); 4] = [
    ("LATCH_PASSWORD_SCRYPT_LOG_N", "4"),
    ("LATCH_PASSWORD_SCRYPT_P", "1"),
    ("LATCH_JWT_SECRET", "crash-test-secret-0123456789abcdef0123"),
    ("LATCH_LIMITS_ENABLED", "false"),
];

#[tokio::test]
async fn every_acknowledged_registration_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let latch = Process::start(dir.path(), &[], &TEST_SETTINGS);
    let base = format!("http://{}", latch.addr());
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let name = format!("w{w}n{n}");
                    let body = json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
                    match client.post(format!("{base}/api/auth/register/")).json(&body).send().await {
                        Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push(name),
                        Ok(r) => panic!("unexpected {} for {name}", r.status()),
                        Err(_) => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    let moment = rand::rng().random_range(200..700);
    tokio::time::sleep(Duration::from_millis(moment)).await;
    latch.kill_hard();
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "nothing was registered before the kill at {moment} ms"
    );

    let db = rusqlite::Connection::open(dir.path().join("data/auth.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);

    let latch = Process::start(dir.path(), &[], &TEST_SETTINGS);
    let base = format!("http://{}", latch.addr());
    for name in &acknowledged {
        let r = client
            .post(format!("{base}/api/auth/login/"))
            .json(&json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "{name} got a 201 before the kill at {moment} ms, but cannot log in"
        );
    }
    eprintln!(
        "kill -9 at {moment} ms: {} acknowledged registrations, all kept",
        acknowledged.len()
    );
}

#[tokio::test]
async fn reset_mail_queued_before_kill_9_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::down();
    let port = smtp.port.to_string();
    let args = ["--smtp-host", "127.0.0.1", "--smtp-port", port.as_str()];
    let mut env = TEST_SETTINGS.to_vec();
    env.push(("LATCH_MAIL_RETRY_MAX_SECS", "1"));
    // Mail the killed process had claimed (its worker was trying it) is due
    // again when the claim's lease ends: short here, minutes by default.
    env.extend([
        ("LATCH_MAIL_LEASE_SECS", "3"),
        ("LATCH_SMTP_TIMEOUT_SECS", "1"),
    ]);

    let latch = Process::start(dir.path(), &args, &env);
    let base = format!("http://{}", latch.addr());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let body = json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD});
    let r = client
        .post(format!("{base}/api/auth/register/"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for _ in 0..5 {
        let r = client
            .post(format!("{base}/api/auth/password/reset/"))
            .json(&json!({"email": "alice@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    latch.kill_hard();

    let _latch = Process::start(dir.path(), &args, &env);
    smtp.come_up();
    let mails = smtp.wait_for_mail(5, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 5);
    assert!(mails.iter().all(|m| m.to == ["alice@example.com"]));
}
