//! Delivering the outbox. Mail is queued in the database by the request that
//! causes it (in the same transaction); this worker sends it, promptly when
//! woken, with growing pauses while the server refuses, and again after a
//! restart. A mail the SMTP server has accepted is not sent again by this
//! worker, even when removing its row fails (the worker remembers it and
//! keeps retrying the removal). Delivery is at-least-once: a crash between
//! the SMTP server's "OK" and the row's deletion sends that mail twice,
//! never zero times.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::{Config, MailTransport, SmtpTls};
use crate::metrics::Metrics;
use crate::reset::{LINK_PLACEHOLDER, ResetLinks};
use crate::store::{QueuedMail, Store, StoreError};

/// A send stops this long before its mail's lease ends (or a tenth of the
/// lease, if that is shorter), for the clocks and the round trips of
/// recording the outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(1);
/// How many queued mails one pass of the worker picks up.
const BATCH: i64 = 32;
/// The worker looks at the queue at least this often, even if nobody pokes it.
const IDLE_CHECK: Duration = Duration::from_secs(30);
const FIRST_RETRY: Duration = Duration::from_secs(1);

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// The configured way out for mail (SMTP or a folder), and the sender.
pub struct Outgoing {
    transport: Transport,
    from: Mailbox,
    /// "host:port" of the SMTP server, or the folder, for messages.
    target: String,
}

impl Outgoing {
    pub fn from_config(config: &Config) -> anyhow::Result<Outgoing> {
        let from: Mailbox = config.mail.from.parse().context("invalid mail.from")?;
        let (transport, target) = match config.mail.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&config.mail.file_dir).with_context(|| {
                    format!("creating mail.file_dir {}", config.mail.file_dir.display())
                })?;
                let folder = config.mail.file_dir.display().to_string();
                (
                    Transport::File(AsyncFileTransport::new(&config.mail.file_dir)),
                    folder,
                )
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
                (
                    Transport::Smtp(builder.build()),
                    format!("{}:{}", smtp.host, smtp.port),
                )
            }
        };
        Ok(Outgoing {
            transport,
            from,
            target,
        })
    }

    /// Where mail goes: the SMTP server's "host:port", or the folder.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends a plain-text mail now. What the SMTP server answered (its code
    /// and text), or the whole chain of what went wrong (DNS, TLS,
    /// authentication, a refusal), in one line.
    pub async fn send_now(&self, to: &str, subject: &str, body: String) -> Result<String, String> {
        let message = self.message(to, subject, body)?;
        self.send_message(message).await.map_err(|f| f.text)
    }

    /// The mail, or why it can never be sent as it is.
    fn message(&self, to: &str, subject: &str, body: String) -> Result<Message, String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("bad recipient address: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("could not build the message: {e}"))
    }

    async fn send_message(&self, message: Message) -> Result<String, Failure> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|response| {
                    let text: Vec<&str> = response.message().collect();
                    format!("{} {}", response.code(), text.join(" "))
                })
                .map_err(|e| Failure {
                    kind: FailureKind::of(&e),
                    text: error_chain(&e),
                }),
            Transport::File(file) => file
                .send(message)
                .await
                .map(|id| format!("written to {}/{id}.eml", self.target))
                .map_err(|e| Failure {
                    kind: FailureKind::Unreachable,
                    text: error_chain(&e),
                }),
        }
    }

    /// Connects to the SMTP server and says EHLO (or, for the folder, checks
    /// it can be written to), sending nothing.
    pub async fn check(&self) -> Result<(), String> {
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("the server did not answer NOOP".into()),
                Err(e) => Err(error_chain(&e)),
            },
            Transport::File(_) => tempfile::tempfile_in(&self.target)
                .map(drop)
                .map_err(|e| format!("cannot write to the folder: {e}")),
        }
    }
}

/// Why a mail did not go.
struct Failure {
    kind: FailureKind,
    text: String,
}

enum FailureKind {
    /// No answer from the server: connection, DNS, TLS, a timeout, refused
    /// credentials (or the mail folder cannot be written). Nothing goes out
    /// until that changes: what makes the outbox stalled.
    Unreachable,
    /// The server refuses this recipient for good (550, 551, 553): the mail
    /// is dropped. One bad address must not hold anything up.
    Recipient,
    /// Any other refusal (4xx, or a 5xx about this one transaction): tried
    /// again later; it says nothing about whether other mail goes out.
    Refused,
}

impl FailureKind {
    fn of(err: &lettre::transport::smtp::Error) -> FailureKind {
        let Some(code) = err.status() else {
            return FailureKind::Unreachable;
        };
        match code.to_string().as_str() {
            "550" | "551" | "553" => FailureKind::Recipient,
            // Authentication refused, or the service is closing: no mail
            // will go until that changes.
            "421" | "530" | "534" | "535" | "538" => FailureKind::Unreachable,
            _ => FailureKind::Refused,
        }
    }
}

/// An error and its causes, outermost first, in one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    text
}

pub struct Mailer {
    outgoing: Outgoing,
    resets: Arc<ResetLinks>,
}

impl Mailer {
    pub fn from_config(config: &Config, resets: Arc<ResetLinks>) -> anyhow::Result<Mailer> {
        Ok(Mailer {
            outgoing: Outgoing::from_config(config)?,
            resets,
        })
    }

    async fn send(&self, mail: &QueuedMail) -> Result<(), SendError> {
        let message = self
            .outgoing
            .message(&mail.recipient, &mail.subject, self.render_body(mail))
            .map_err(SendError::Permanent)?;
        match self.outgoing.send_message(message).await {
            Ok(_) => Ok(()),
            Err(Failure {
                kind: FailureKind::Recipient,
                text,
            }) => Err(SendError::Permanent(text)),
            Err(Failure {
                kind: FailureKind::Unreachable,
                text,
            }) => Err(SendError::Retry {
                why: text,
                stuck: true,
            }),
            Err(Failure {
                kind: FailureKind::Refused,
                text,
            }) => Err(SendError::Retry {
                why: text,
                stuck: false,
            }),
        }
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
    /// Could succeed later (server down, timeout, temporary refusal...);
    /// `stuck` when nothing can go out at all (no answer from the server).
    Retry { why: String, stuck: bool },
    /// Can never succeed as stored.
    Permanent(String),
}

/// Whether mail is going out, for `/readyz`: since when delivery has kept
/// failing with nothing delivered in between. Kept in memory by the worker.
#[derive(Debug, Default)]
pub struct OutboxHealth {
    /// Unix milliseconds of the first failure of the current run of them; 0
    /// while mail goes out (or there is none).
    failing_since_ms: AtomicI64,
}

impl OutboxHealth {
    /// How long delivery has been failing without a success, if it is.
    pub fn failing_for(&self) -> Option<Duration> {
        match self.failing_since_ms.load(Ordering::Relaxed) {
            0 => None,
            since => Some(Duration::from_millis(
                now_ms().saturating_sub(since).max(0) as u64
            )),
        }
    }

    fn failed(&self) {
        let _ = self.failing_since_ms.compare_exchange(
            0,
            now_ms().max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    fn draining(&self) {
        self.failing_since_ms.store(0, Ordering::Relaxed);
    }
}

/// Runs until `shutdown` turns true. Never returns early on errors: a broken
/// database or mail server is logged and tried again.
pub async fn run_outbox(
    store: Store,
    mailer: Mailer,
    wakeup: Arc<Notify>,
    timing: OutboxTiming,
    health: Arc<OutboxHealth>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut worker = Worker {
        store,
        mailer,
        retry_max: timing.retry_max,
        lease: timing.lease,
        send_time: timing.send_time,
        unremoved: HashMap::new(),
        health,
        metrics,
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match worker.deliver_due().await {
            Ok(Pass { more_due: true, .. }) => continue,
            Ok(Pass { trouble, .. }) => {
                let pause = worker.next_wakeup().await;
                // A local failure may have left a mail due at once (its
                // failed attempt could not be recorded): don't spin on it.
                if trouble {
                    pause.max(FIRST_RETRY)
                } else {
                    pause
                }
            }
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

/// How the outbox worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct OutboxTiming {
    /// The longest pause between attempts at one mail.
    pub retry_max: Duration,
    /// How long a claimed mail is this worker's before another may take it.
    pub lease: Duration,
    /// The longest one delivery may take (the SMTP timeout): a mail is only
    /// sent while at least this much of its lease is left.
    pub send_time: Duration,
}

struct Worker {
    store: Store,
    mailer: Mailer,
    retry_max: Duration,
    lease: Duration,
    send_time: Duration,
    /// Mail this worker is done with (the SMTP server accepted it, or it can
    /// never be sent) whose row could not be removed. It is never sent again;
    /// its removal is retried, with growing pauses, before anything else.
    /// Kept in memory only: after a restart such a mail is sent once more.
    unremoved: HashMap<i64, Removal>,
    health: Arc<OutboxHealth>,
    /// Deliveries, failures and database trouble are counted here.
    metrics: Arc<Metrics>,
}

struct Removal {
    failures: i64,
    next_try: Instant,
}

/// What one pass of the worker saw.
struct Pass {
    /// A full batch went out cleanly, so more may be due at once.
    more_due: bool,
    /// A local (database) step failed for some mail.
    trouble: bool,
}

impl Worker {
    /// Finishes owed removals, then sends what is due. A local failure for
    /// one mail is logged and the pass goes on with the others; only a
    /// failure to read the queue at all ends it early.
    async fn deliver_due(&mut self) -> anyhow::Result<Pass> {
        let mut trouble = !self.retry_removals().await;
        match self.store.discard_stale_mail(now_ms()).await {
            Ok(0) => {}
            Ok(stale) => tracing::warn!(
                count = stale,
                "outbox: dropped undelivered mail whose link has expired"
            ),
            Err(err) => {
                self.count_store_error(&err);
                tracing::warn!(error = %err, "outbox: could not drop expired mail");
                trouble = true;
            }
        }
        // Taken before the claim, so that the lease this worker counts on
        // never outlasts the one in the database.
        let claimed_at = Instant::now();
        let lease_ms = self.lease.as_millis().try_into().unwrap_or(i64::MAX);
        let due = self
            .store
            .claim_mail(now_ms(), BATCH, lease_ms, &self.unremoved_ids())
            .await
            .inspect_err(|err| self.count_store_error(err))?;
        let full_batch = due.len() as i64 == BATCH;
        if due.is_empty()
            && self
                .store
                .next_mail_due_ms(&self.unremoved_ids())
                .await?
                .is_none()
        {
            // Nothing waits: nothing is stuck.
            self.health.draining();
        }
        for mail in due {
            let id = mail.id;
            // A send must end before the lease does, or another instance
            // could take the mail over while it is still being sent. lettre
            // bounds only the connection by smtp.timeout_secs, so the whole
            // send is bounded here; the rest wait for their leases to end.
            let left = self
                .lease
                .saturating_sub(claimed_at.elapsed())
                .saturating_sub(LEASE_MARGIN.min(self.lease / 10));
            if left < self.send_time {
                tracing::warn!(
                    mail_id = id,
                    lease_secs = self.lease.as_secs(),
                    "outbox: the lease ran short before this mail's turn; it is sent when the lease ends"
                );
                break;
            }
            let sent = match tokio::time::timeout(left, self.mailer.send(&mail)).await {
                Ok(sent) => sent,
                Err(_) => Err(SendError::Retry {
                    why: format!(
                        "the SMTP server took longer than the {} s left of the mail's lease",
                        left.as_secs()
                    ),
                    stuck: false,
                }),
            };
            match sent {
                Ok(()) => {
                    self.health.draining();
                    self.metrics.mail_delivered.inc();
                    tracing::info!(mail_id = id, "outbox: mail delivered");
                    trouble |= !self.remove(id).await;
                }
                Err(SendError::Permanent(why)) => {
                    // The server answered: mail is moving, this one cannot.
                    self.health.draining();
                    self.metrics.mail_failed_permanent.inc();
                    tracing::error!(mail_id = id, error = %why, "outbox: mail can never be delivered; dropped");
                    trouble |= !self.remove(id).await;
                }
                Err(SendError::Retry { why, stuck }) => {
                    // A refusal of one mail says nothing of the others.
                    if stuck {
                        self.health.failed();
                    }
                    self.metrics.mail_failed_transient.inc();
                    let delay = backoff(mail.attempts, self.retry_max);
                    let next = now_ms().saturating_add(delay.as_millis() as i64);
                    tracing::warn!(mail_id = id, attempt = mail.attempts + 1, retry_in_ms = delay.as_millis() as u64,
                        error = %why, "outbox: delivery failed; will retry");
                    let lease = mail.lease_until_ms;
                    if let Err(err) = self.store.mail_failed(id, lease, next, why).await {
                        self.count_store_error(&err);
                        tracing::warn!(mail_id = id, error = %err, "outbox: could not record a failed delivery");
                        trouble = true;
                    }
                }
            }
        }
        Ok(Pass {
            more_due: full_batch && !trouble,
            trouble,
        })
    }

    /// Removes a mail that is done with; if that fails, remembers it so it
    /// is not sent again. True when the row is gone.
    async fn remove(&mut self, id: i64) -> bool {
        let now = Instant::now();
        self.unremoved.insert(
            id,
            Removal {
                failures: 0,
                next_try: now,
            },
        );
        self.try_remove(id).await
    }

    /// Retries the removals that are due. True when none of them failed.
    async fn retry_removals(&mut self) -> bool {
        let now = Instant::now();
        let due: Vec<i64> = self
            .unremoved
            .iter()
            .filter(|(_, r)| r.next_try <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut all_done = true;
        for id in due {
            all_done &= self.try_remove(id).await;
        }
        all_done
    }

    /// One attempt at removing an owed mail: forgotten once its row is gone,
    /// tried again later, after a growing pause, if not.
    async fn try_remove(&mut self, id: i64) -> bool {
        let result = self.store.remove_mail(id).await;
        let Some(removal) = self.unremoved.get_mut(&id) else {
            return true;
        };
        match result {
            Ok(()) => {
                if removal.failures > 0 {
                    tracing::info!(mail_id = id, "outbox: finished mail removed at last");
                }
                self.unremoved.remove(&id);
                true
            }
            Err(err) => {
                if matches!(err, StoreError::Unavailable(_)) {
                    self.metrics.db_unavailable.inc();
                }
                let delay = backoff(removal.failures, self.retry_max);
                removal.failures += 1;
                removal.next_try = Instant::now() + delay;
                tracing::warn!(mail_id = id, attempt = removal.failures, retry_in_ms = delay.as_millis() as u64,
                    error = %err, "outbox: could not remove a finished mail; it will not be sent again, removal will be retried");
                false
            }
        }
    }

    fn idle_check(&self) -> Duration {
        IDLE_CHECK.min(self.lease)
    }

    fn count_store_error(&self, err: &StoreError) {
        if matches!(err, StoreError::Unavailable(_)) {
            self.metrics.db_unavailable.inc();
        }
    }

    fn unremoved_ids(&self) -> Vec<i64> {
        self.unremoved.keys().copied().collect()
    }

    /// How long to sleep when nothing is due right now: until the next mail
    /// or the next owed removal is due, at most `IDLE_CHECK` or a lease:
    /// mail queued by another instance, or left by one that died, is not
    /// announced here.
    async fn next_wakeup(&self) -> Duration {
        let next_mail = match self.store.next_mail_due_ms(&self.unremoved_ids()).await {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now_ms()).max(0) as u64),
            Ok(None) => self.idle_check(),
            Err(_) => FIRST_RETRY,
        };
        let now = Instant::now();
        let next_removal = self
            .unremoved
            .values()
            .map(|r| r.next_try.saturating_duration_since(now))
            .min()
            .unwrap_or(IDLE_CHECK);
        next_mail.min(next_removal).min(self.idle_check())
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
