//! `/readyz`: ready while writes go in and mail goes out. (A full disk, the
//! database half, is in disk_full.rs.)

use std::time::Duration;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with_smtp};
use crate::smtp::SmtpServer;

#[tokio::test]
async fn a_sound_server_is_ready_and_the_probe_is_a_real_write_at_most_once_a_second() {
    let app = spawn_app().await;
    let probes = async || {
        app.scalar::<String>("SELECT value FROM settings WHERE key = 'readyz_probe'")
            .await
    };
    app.get("/readyz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);
    assert_eq!(probes().await, "1", "a committed write");
    // Asked again at once, it answers from the last probe.
    for _ in 0..20 {
        app.get("/readyz", None)
            .await
            .assert(200, r#"{"status":"ok"}"#);
    }
    assert_eq!(probes().await, "1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.get("/readyz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);
    assert_eq!(probes().await, "2", "a second later, a new probe");
}

#[tokio::test]
async fn mail_that_keeps_failing_makes_the_server_unready_until_it_goes_out() {
    let smtp = SmtpServer::down();
    let app = spawn_app_with_smtp(smtp, |c| c.mail.retry_max_secs = 1).await;
    assert_eq!(
        app.register("ann", "ann@example.com", PASSWORD)
            .await
            .status,
        201
    );
    app.get("/readyz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);
    assert_eq!(app.request_reset("ann@example.com").await.status, 200);

    // Failing for twice mail.retry_max_secs (2 s here): stalled.
    let mut stalled = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stalled.is_none() {
        let ready = app.get("/readyz", None).await;
        if ready.status == 503 {
            stalled = Some(ready);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never said stalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stalled
        .unwrap()
        .assert(503, r#"{"status":"degraded","outbox":"stalled"}"#);

    app.smtp.come_up();
    app.smtp.wait_for_mail(1, Duration::from_secs(15)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.get("/readyz", None).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz stayed {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_mailbox_the_relay_refuses_is_dropped_and_does_not_make_the_server_unready() {
    // Anyone can register an address a relay refuses and ask for a reset:
    // that one mail must not hold up the rest, nor readiness.
    let app = spawn_app_with_smtp(SmtpServer::start(), |c| c.mail.retry_max_secs = 1).await;
    assert_eq!(
        app.register("bad", "refused@example.com", PASSWORD)
            .await
            .status,
        201
    );
    assert_eq!(
        app.register("good", "good@example.com", PASSWORD)
            .await
            .status,
        201
    );
    assert_eq!(app.request_reset("refused@example.com").await.status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.scalar::<i64>("SELECT COUNT(*) FROM outbox").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused mail stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.smtp.received().is_empty());
    // Past twice mail.retry_max_secs: still ready.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.get("/readyz", None)
        .await
        .assert(200, r#"{"status":"ok"}"#);
    assert_eq!(app.request_reset("good@example.com").await.status, 200);
    let mails = app.smtp.wait_for_mail(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, ["good@example.com"]);
}
