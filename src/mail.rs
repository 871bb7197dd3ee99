//! Delivering the outbox. Mail is queued in the database by the request that
//! causes it (in the same transaction); this worker sends it, promptly when
//! woken, with growing pauses while the server refuses, and again after a
//! restart. Delivery is at-least-once: a crash between the SMTP server's "OK"
//! and the row's deletion sends that mail twice, never zero times.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{Notify, watch};

use crate::config::{Config, MailTransport, SmtpTls};
use crate::reset::{LINK_PLACEHOLDER, ResetLinks};
use crate::store::{QueuedMail, Store};

/// How many queued mails one pass of the worker picks up.
const BATCH: i64 = 32;
/// The worker looks at the queue at least this often, even if nobody pokes it.
const IDLE_CHECK: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_secs(1);

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    resets: Arc<ResetLinks>,
}

impl Mailer {
    pub fn from_config(config: &Config, resets: Arc<ResetLinks>) -> anyhow::Result<Mailer> {
        let from: Mailbox = config.mail.from.parse().context("invalid mail.from")?;
        let transport = match config.mail.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&config.mail.file_dir).with_context(|| {
                    format!("creating mail.file_dir {}", config.mail.file_dir.display())
                })?;
                Transport::File(AsyncFileTransport::new(&config.mail.file_dir))
            }
            MailTransport::Smtp => {
                let smtp = &config.smtp;
                let builder = match smtp.tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                            .context("setting up STARTTLS for smtp.host")?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .context("setting up TLS for smtp.host")?,
                };
                let mut builder = builder
                    .port(smtp.port)
                    .timeout(Some(Duration::from_secs(smtp.timeout_secs)));
                if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose().to_string(),
                    ));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Mailer {
            transport,
            from,
            resets,
        })
    }

    async fn send(&self, mail: &QueuedMail) -> Result<(), SendError> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(self.render_body(mail))
            .map_err(|e| SendError::Permanent(format!("could not build the message: {e}")))?;
        let sent = match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Transport::File(file) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        sent.map_err(SendError::Retry)
    }

    /// The body with its reset link (if any) filled in, only now and only in memory.
    fn render_body(&self, mail: &QueuedMail) -> String {
        match mail.reset {
            Some(r) => mail.body.replace(
                LINK_PLACEHOLDER,
                &self.resets.link(r.token_id, r.user_id, r.expires_at),
            ),
            None => mail.body.clone(),
        }
    }
}

enum SendError {
    /// Could succeed later (server down, timeout, temporary refusal...).
    Retry(String),
    /// Can never succeed as stored.
    Permanent(String),
}

/// Runs until `shutdown` turns true. Never returns early on errors: a broken
/// database or mail server is logged and tried again.
pub async fn run_outbox(
    store: Store,
    mailer: Mailer,
    wakeup: Arc<Notify>,
    retry_max: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match deliver_due(&store, &mailer, retry_max).await {
            Ok(true) => continue,
            Ok(false) => next_wakeup(&store),
            Err(err) => {
                tracing::warn!(error = %err, "outbox: database error; retrying shortly");
                FIRST_RETRY
            }
        };
        tokio::select! {
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Sends what is due. True when a full batch came back, so more may be due
/// at once.
async fn deliver_due(store: &Store, mailer: &Mailer, retry_max: Duration) -> anyhow::Result<bool> {
    let now = now_ms();
    let stale = store.write(move |s| s.discard_stale_mail(now)).await?;
    if stale > 0 {
        tracing::warn!(
            count = stale,
            "outbox: dropped undelivered mail whose link has expired"
        );
    }
    let due = store.due_mail(now, BATCH)?;
    let full_batch = due.len() as i64 == BATCH;
    for mail in due {
        let id = mail.id;
        match mailer.send(&mail).await {
            Ok(()) => {
                store.write(move |s| s.remove_mail(id)).await?;
                tracing::info!(mail_id = id, "outbox: mail delivered");
            }
            Err(SendError::Permanent(why)) => {
                store.write(move |s| s.remove_mail(id)).await?;
                tracing::error!(mail_id = id, error = %why, "outbox: mail can never be delivered; dropped");
            }
            Err(SendError::Retry(why)) => {
                let delay = backoff(mail.attempts, retry_max);
                let next = now_ms().saturating_add(delay.as_millis() as i64);
                tracing::warn!(mail_id = id, attempt = mail.attempts + 1, retry_in_ms = delay.as_millis() as u64,
                    error = %why, "outbox: delivery failed; will retry");
                store.write(move |s| s.mail_failed(id, next, &why)).await?;
            }
        }
    }
    Ok(full_batch)
}

/// How long to sleep when nothing is due right now.
fn next_wakeup(store: &Store) -> Duration {
    match store.next_mail_due_ms() {
        Ok(Some(due)) => {
            Duration::from_millis(due.saturating_sub(now_ms()).max(0) as u64).min(IDLE_CHECK)
        }
        Ok(None) => IDLE_CHECK,
        Err(_) => FIRST_RETRY,
    }
}

/// 1 s, 2 s, 4 s, ... up to `max`.
fn backoff(previous_attempts: i64, max: Duration) -> Duration {
    let exponent = previous_attempts.clamp(0, 20) as u32;
    FIRST_RETRY.saturating_mul(1 << exponent).min(max)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(300);
        let secs: Vec<u64> = (0..11).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(1000, max), max);
    }
}
