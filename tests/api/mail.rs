//! The outbox: mail is never lost while the SMTP server is away, nor across restarts.

use std::time::Duration;

use crate::helpers::{
    PASSWORD, SmtpServer, TestApp, TestDb, spawn_app, spawn_app_with, spawn_app_with_smtp,
    wait_until,
};

const SENT: &str = r#"{"message":"Password reset link sent"}"#;

#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_when_it_comes_back() {
    let app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    for _ in 0..3 {
        app.request_reset("alice@example.com")
            .await
            .assert(200, r#"{"message":"Password reset link sent"}"#);
    }
    // The worker has tried (and failed) each of them at least once.
    wait_until(
        Duration::from_secs(5),
        "the worker never tried the queued mail",
        async || app.scalar::<i64>("SELECT MIN(attempts) FROM outbox").await >= 1,
    )
    .await;
    assert_eq!(app.store().queued_mail_count().await.unwrap(), 3);
    assert!(app.smtp.received().is_empty());

    app.smtp.come_up();
    let mails = app.smtp.wait_for_mail(3, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 3);
    // Each carries its own working link.
    let tokens: std::collections::HashSet<String> =
        mails.iter().map(|m| m.reset_params().1).collect();
    assert_eq!(tokens.len(), 3);
    wait_until(
        Duration::from_secs(5),
        "delivered mail stayed in the outbox",
        async || app.store().queued_mail_count().await.unwrap() == 0,
    )
    .await;
}

#[tokio::test]
async fn queued_mail_survives_a_restart() {
    let mut app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, r#"{"message":"Password reset link sent"}"#);
    app.restart().await;
    app.smtp.come_up();
    let mails = app.smtp.wait_for_mail(1, Duration::from_secs(10)).await;
    let (uid, token) = mails[0].reset_params();
    app.confirm_reset(&uid, &token, "brand-new-password")
        .await
        .assert(200, r#"{"message":"Password has been reset"}"#);
}

#[tokio::test]
async fn file_transport_writes_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().to_path_buf();
    let app = spawn_app_with(|c| {
        c.mail.transport = latch::config::MailTransport::File;
        c.mail.file_dir = mail_dir.clone();
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    app.request_reset("alice@example.com").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        if let Some(file) = files
            .iter()
            .find(|f| f.path().extension().is_some_and(|e| e == "eml"))
        {
            let text = std::fs::read_to_string(file.path()).unwrap();
            assert!(text.contains("Subject: Password reset"), "{text}");
            assert!(text.contains("uid=3D") || text.contains("uid=MQ"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no .eml file written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes every DELETE on the outbox fail, as a broken database would,
/// through a connection of the test's own.
async fn refuse_outbox_deletes(app: &TestApp) {
    match &app.db {
        TestDb::Sqlite(_) => app
            .sqlite()
            .execute_batch(
                "CREATE TRIGGER refuse_outbox_deletes BEFORE DELETE ON outbox
                 BEGIN SELECT RAISE(ABORT, 'injected'); END",
            )
            .unwrap(),
        TestDb::Postgres { url } => crate::test_db::client(url)
            .await
            .batch_execute(
                "CREATE FUNCTION refuse_deletes() RETURNS trigger LANGUAGE plpgsql
                     AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$;
                 CREATE TRIGGER refuse_outbox_deletes BEFORE DELETE ON outbox
                     FOR EACH ROW EXECUTE FUNCTION refuse_deletes();",
            )
            .await
            .unwrap(),
    }
}

async fn allow_outbox_deletes(app: &TestApp) {
    let drop = match &app.db {
        TestDb::Sqlite(_) => "DROP TRIGGER refuse_outbox_deletes",
        TestDb::Postgres { .. } => "DROP TRIGGER refuse_outbox_deletes ON outbox",
    };
    app.execute(drop).await;
}

async fn queued(app: &TestApp) -> i64 {
    app.store().queued_mail_count().await.unwrap()
}

#[tokio::test]
async fn a_delivered_mail_is_not_sent_again_when_removing_it_fails() {
    let app = spawn_app().await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    refuse_outbox_deletes(&app).await;
    app.request_reset("alice@example.com")
        .await
        .assert(200, SENT);
    app.smtp.wait_for_mail(1, Duration::from_secs(5)).await;
    // Retries are 1 s apart in tests (mail.retry_max_secs = 1): three seconds
    // give a worker that re-sends room to do it two or three times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        queued(&app).await,
        1,
        "the injected failure did not happen: the row was removed"
    );
    assert_eq!(
        app.smtp.received().len(),
        1,
        "a mail the SMTP server accepted was sent again"
    );

    // Once the database takes the DELETE again, the row goes, and the mail
    // was still sent once.
    allow_outbox_deletes(&app).await;
    wait_until(
        Duration::from_secs(10),
        "the delivered mail never left the outbox",
        async || queued(&app).await == 0,
    )
    .await;
    assert_eq!(app.smtp.received().len(), 1);
}

#[tokio::test]
async fn a_mail_that_cannot_be_removed_does_not_hold_up_the_others() {
    // Both mails are queued while SMTP is down, so one pass sends them in turn.
    let app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    for user in ["alice", "bob"] {
        let email = format!("{user}@example.com");
        app.register(user, &email, PASSWORD).await;
        app.request_reset(&email).await.assert(200, SENT);
    }
    refuse_outbox_deletes(&app).await;
    app.smtp.come_up();
    let mails = app.smtp.wait_for_mail(2, Duration::from_secs(10)).await;
    let mut to: Vec<&str> = mails.iter().map(|m| m.to[0].as_str()).collect();
    to.sort();
    assert_eq!(to, ["alice@example.com", "bob@example.com"]);
    // And neither is sent again while its row stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.smtp.received().len(), 2);
    assert_eq!(queued(&app).await, 2);
}

/// lettre bounds only the connection by smtp.timeout_secs: a server that
/// takes its time over the rest would keep a send going past its lease,
/// when another instance may take the mail. The send is cut off before the
/// lease ends and counted as a failed attempt, to be tried again.
#[tokio::test]
async fn a_send_slower_than_its_lease_is_cut_off_and_retried() {
    let smtp = SmtpServer::start();
    smtp.set_delay(Duration::from_secs(4));
    let app = spawn_app_with_smtp(smtp, |c| {
        c.smtp.timeout_secs = 1;
        c.mail.lease_secs = 2;
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let started = std::time::Instant::now();
    app.request_reset("alice@example.com")
        .await
        .assert(200, r#"{"message":"Password reset link sent"}"#);
    wait_until(
        Duration::from_secs(3),
        "the slow send was not cut off within its lease",
        async || app.scalar::<i64>("SELECT attempts FROM outbox").await >= 1,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let error: String = app.scalar("SELECT last_error FROM outbox").await;
    assert!(error.contains("lease"), "{error}");
}
