//! The only module that speaks SQL. Everything above it sees one async API in
//! plain Rust types (`model.rs`), whatever the backend:
//!
//! - `sqlite/`: one file, the default. Reads run inline (short indexed
//!   lookups); writes queue for one writer thread that commits them in
//!   groups, each after an fsync.
//! - `postgres/`: a server shared by any number of latch instances.
//!
//! Each backend has its own migrations, numbered in step
//! (`migrations/sqlite/`, `migrations/postgres/`).

mod django_source;
mod model;
mod postgres;
mod sqlite;

use std::path::Path;
use std::time::Duration;

pub use django_source::{DjangoTable, DjangoUser, read_django_sqlite};
pub use model::*;
pub use sqlite::{
    BackupReport, Inspection, MEMORY, TemporaryDatabase, backup, inspect, is_memory,
    schema_versions,
};

/// Why a storage call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not take the write or read right now (locked past the
    /// busy timeout, disk full, read-only file, pool exhausted, connection
    /// lost). Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Runs a PostgreSQL write as a task of its own, so that it finishes even
/// when its caller goes away (a client that hung up), as a write given to
/// the SQLite writer thread does.
async fn detached<T: Send + 'static>(
    write: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    tokio::spawn(write)
        .await
        .map_err(|e| StoreError::Other(format!("a database write failed: {e}")))?
}

/// latch's database: every read and write of the server and the admin
/// commands goes through here.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// The schema version of the database at `location` (0: none yet) and the
/// version this latch knows, read without changing anything.
pub async fn schema_versions_at(
    location: &crate::config::Location,
    busy_timeout: Duration,
) -> anyhow::Result<(usize, usize)> {
    match location {
        crate::config::Location::Sqlite(path) => sqlite::schema_versions(path, busy_timeout),
        crate::config::Location::Postgres(url) => {
            postgres::Postgres::schema_versions(url.expose(), busy_timeout).await
        }
    }
}

/// How to name `location` in a message: the file, or the URL without its
/// password.
pub fn describe(location: &crate::config::Location) -> String {
    match location {
        crate::config::Location::Sqlite(path) => path.display().to_string(),
        crate::config::Location::Postgres(url) => postgres::redact(url.expose()),
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Store {
    /// Opens (creating if needed) the SQLite file at `path`, switches it to
    /// WAL and brings the schema up to date.
    pub fn open_sqlite(
        path: &Path,
        busy_timeout: Duration,
        pool_size: u32,
    ) -> anyhow::Result<Store> {
        Ok(Store {
            backend: Backend::Sqlite(sqlite::Sqlite::open(path, busy_timeout, pool_size)?),
        })
    }

    /// Opens the database a configuration names (see `Location`).
    pub async fn open(
        location: &crate::config::Location,
        busy_timeout: Duration,
        pool_size: u32,
    ) -> anyhow::Result<Store> {
        match location {
            crate::config::Location::Sqlite(path) => {
                Store::open_sqlite(path, busy_timeout, pool_size)
            }
            crate::config::Location::Postgres(url) => {
                Store::open_postgres(url.expose(), busy_timeout, pool_size).await
            }
        }
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema
    /// up to date (once, whatever the number of instances starting).
    pub async fn open_postgres(
        url: &str,
        busy_timeout: Duration,
        pool_size: u32,
    ) -> anyhow::Result<Store> {
        Ok(Store {
            backend: Backend::Postgres(
                postgres::Postgres::open(url, busy_timeout, pool_size).await?,
            ),
        })
    }

    /// True when this store is on PostgreSQL (what only SQLite has, such
    /// as `latch backup`, says so).
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// True when the database answers a query.
    pub async fn is_healthy(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => s.is_healthy(),
            Backend::Postgres(p) => p.is_healthy().await,
        }
    }

    // Users.

    pub async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
        match &self.backend {
            Backend::Sqlite(s) => s.user_by_id(id),
            Backend::Postgres(p) => p.user_by_id(id).await,
        }
    }

    /// Exact, case-sensitive match, as Django's default user model does.
    /// No name holds a NUL (registration refuses it; PostgreSQL cannot even
    /// be asked for one), so such a name matches nobody.
    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        if username.contains('\0') {
            return Ok(None);
        }
        match &self.backend {
            Backend::Sqlite(s) => s.user_by_username(username),
            Backend::Postgres(p) => p.user_by_username(username).await,
        }
    }

    pub async fn user_by_email_key(&self, email_key: &str) -> StoreResult<Option<User>> {
        if email_key.contains('\0') {
            return Ok(None);
        }
        match &self.backend {
            Backend::Sqlite(s) => s.user_by_email_key(email_key),
            Backend::Postgres(p) => p.user_by_email_key(email_key).await,
        }
    }

    /// Every user, by id.
    pub async fn users(&self) -> StoreResult<Vec<User>> {
        match &self.backend {
            Backend::Sqlite(s) => s.users(),
            Backend::Postgres(p) => p.users().await,
        }
    }

    /// The UNIQUE constraints decide who wins a race for a username or an
    /// address, not an earlier read.
    pub async fn insert_user(&self, user: NewUser, now: i64) -> StoreResult<InsertUser> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.insert_user(&user, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.insert_user(user, now).await }).await
            }
        }
    }

    /// Sets a new password hash (an administrator's doing): every reset link
    /// of the user dies and every refresh token is revoked, as after a reset.
    /// False when there is no such user.
    pub async fn set_password(&self, id: i64, new_hash: String, now: i64) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.set_password(id, &new_hash, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.set_password(id, new_hash, now).await }).await
            }
        }
    }

    /// Deactivating also revokes the user's refresh tokens and reset links.
    /// False when there is no such user.
    pub async fn set_active(&self, id: i64, active: bool, now: i64) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.set_active(id, active, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.set_active(id, active, now).await }).await
            }
        }
    }

    /// Deletes the user with its tokens, reset links and their queued mail.
    /// Its id is never handed out again. False when there is no such user.
    pub async fn delete_user(&self, id: i64) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.delete_user(id)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.delete_user(id).await }).await
            }
        }
    }

    /// Replaces a hash with a stronger one for the same password, unless the
    /// password changed in the meantime (then the newer password wins).
    pub async fn upgrade_password_hash(
        &self,
        id: i64,
        old_hash: String,
        new_hash: String,
    ) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.upgrade_password_hash(id, &old_hash, &new_hash))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.upgrade_password_hash(id, old_hash, new_hash).await }).await
            }
        }
    }

    // Refresh tokens.

    /// Records the refresh token of a login, if the user is still active and
    /// still has the password hash that was verified. False, recording
    /// nothing, when not.
    pub async fn record_login_token(
        &self,
        token: IssuedToken,
        verified_hash: String,
        now: i64,
    ) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.record_login_token(&token, &verified_hash, now))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.record_login_token(token, verified_hash, now).await }).await
            }
        }
    }

    pub async fn refresh_state(&self, user_id: i64, jti: &str) -> StoreResult<RefreshState> {
        match &self.backend {
            Backend::Sqlite(s) => s.refresh_state(user_id, jti),
            Backend::Postgres(p) => p.refresh_state(user_id, jti).await,
        }
    }

    pub async fn rotate_refresh_token(
        &self,
        presented: IssuedToken,
        new: IssuedToken,
        now: i64,
        grace: i64,
    ) -> StoreResult<Rotation> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.rotate_refresh_token(&presented, &new, now, grace))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.rotate_refresh_token(presented, new, now, grace).await })
                    .await
            }
        }
    }

    /// Revokes the login (family) of token `jti` of user `user_id` (its
    /// verified claim): a replay was seen.
    pub async fn revoke_family_of(&self, user_id: i64, jti: String, now: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.revoke_family_of(&jti, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.revoke_family_of(user_id, jti, now).await }).await
            }
        }
    }

    /// Blacklists token `jti` of user `user_id` (its verified claim) and
    /// revokes the rest of its login. Settled against a rotation of the same
    /// token on another instance: one of the two goes first.
    pub async fn blacklist_token(
        &self,
        user_id: i64,
        jti: String,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.blacklist_token(&jti, expires_at, now))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.blacklist_token(user_id, jti, expires_at, now).await })
                    .await
            }
        }
    }

    pub async fn revoke_user_tokens(&self, user_id: i64, now: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.revoke_user_tokens(user_id, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.revoke_user_tokens(user_id, now).await }).await
            }
        }
    }

    pub async fn blacklisted_count(&self) -> StoreResult<i64> {
        match &self.backend {
            Backend::Sqlite(s) => s.blacklisted_count(),
            Backend::Postgres(p) => p.blacklisted_count().await,
        }
    }

    // Reset links.

    /// Creates a reset token and queues the mail that announces it, in one
    /// transaction: either both are kept or neither is.
    pub async fn create_reset_token(
        &self,
        user_id: i64,
        expires_at: i64,
        mail: NewMail,
        now: i64,
    ) -> StoreResult<i64> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.create_reset_token(user_id, expires_at, &mail, now))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.create_reset_token(user_id, expires_at, mail, now).await })
                    .await
            }
        }
    }

    /// The same write as [`Store::create_reset_token`], undone before the
    /// commit: for answers that must not be told apart from a queued reset
    /// mail by their timing.
    pub async fn reset_decoy_write(&self, mail: NewMail, now: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.reset_decoy_write(&mail, now)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.reset_decoy_write(mail, now).await }).await
            }
        }
    }

    pub async fn live_reset_tokens(
        &self,
        user_id: i64,
        now: i64,
    ) -> StoreResult<Vec<LiveResetToken>> {
        match &self.backend {
            Backend::Sqlite(s) => s.live_reset_tokens(user_id, now),
            Backend::Postgres(p) => p.live_reset_tokens(user_id, now).await,
        }
    }

    /// Uses reset token `token_id` of this (active) user, if still live:
    /// sets the new password, ends every reset link and refresh token of the
    /// user. False, changing nothing, when the token is not (or no longer)
    /// live. Of two confirmations of one token, exactly one succeeds.
    pub async fn reset_password(
        &self,
        user_id: i64,
        token_id: i64,
        new_hash: String,
        now: i64,
    ) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.reset_password(user_id, token_id, &new_hash, now))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.reset_password(user_id, token_id, new_hash, now).await })
                    .await
            }
        }
    }

    // The outbox.

    /// Claims up to `limit` mails due at `now_ms` (oldest first, leaving out
    /// the ids in `except`) for `lease_ms`, committed before it answers: no
    /// other worker, of any instance, takes them until the lease ends, and
    /// if this one dies mid-send they are due again then.
    pub async fn claim_mail(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
        except: &[i64],
    ) -> StoreResult<Vec<QueuedMail>> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let except = except.to_vec();
                s.write(move |s| s.claim_mail(now_ms, limit, lease_ms, &except))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                let except = except.to_vec();
                detached(async move { p.claim_mail(now_ms, limit, lease_ms, &except).await }).await
            }
        }
    }

    pub async fn outbox_backlog(&self) -> StoreResult<OutboxBacklog> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_backlog(),
            Backend::Postgres(p) => p.outbox_backlog().await,
        }
    }

    /// When the next attempt is due, if anything but the ids in `except` is queued.
    pub async fn next_mail_due_ms(&self, except: &[i64]) -> StoreResult<Option<i64>> {
        match &self.backend {
            Backend::Sqlite(s) => s.next_mail_due_ms(except),
            Backend::Postgres(p) => p.next_mail_due_ms(except).await,
        }
    }

    /// Forgets a mail: delivered, or never deliverable.
    pub async fn remove_mail(&self, id: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.remove_mail(id)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.remove_mail(id).await }).await
            }
        }
    }

    /// Records a failed attempt at mail `id`, claimed until
    /// `lease_until_ms`, and when to try again. Nothing, if the lease ran out
    /// and another worker has taken the mail since.
    pub async fn mail_failed(
        &self,
        id: i64,
        lease_until_ms: i64,
        next_attempt_ms: i64,
        error: String,
    ) -> StoreResult<()> {
        // An SMTP server's words, which PostgreSQL cannot store with a NUL.
        let error = error.replace('\0', "\u{fffd}");
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.mail_failed(id, lease_until_ms, next_attempt_ms, &error))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move {
                    p.mail_failed(id, lease_until_ms, next_attempt_ms, error)
                        .await
                })
                .await
            }
        }
    }

    /// Drops mail whose link has expired; returns how many.
    pub async fn discard_stale_mail(&self, now_ms: i64) -> StoreResult<usize> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.discard_stale_mail(now_ms)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.discard_stale_mail(now_ms).await }).await
            }
        }
    }

    pub async fn queued_mail_count(&self) -> StoreResult<i64> {
        match &self.backend {
            Backend::Sqlite(s) => s.queued_mail_count(),
            Backend::Postgres(p) => p.queued_mail_count().await,
        }
    }

    // The login-failure limit, shared by every instance.

    /// Takes one of `burst` cells replenished every `interval_ms` for
    /// `account`, or says in how many milliseconds one is free.
    pub async fn login_limit_acquire(
        &self,
        account: String,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreResult<Result<(), i64>> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.login_limit_acquire(&account, now_ms, interval_ms, burst))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move {
                    p.login_limit_acquire(account, now_ms, interval_ms, burst)
                        .await
                })
                .await
            }
        }
    }

    /// Gives a cell back: the attempt was not a failure.
    pub async fn login_limit_refund(&self, account: String, interval_ms: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.write(move |s| s.login_limit_refund(&account, interval_ms))
                    .await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.login_limit_refund(account, interval_ms).await }).await
            }
        }
    }

    /// Forgets accounts back at their full allowance; returns how many.
    pub async fn purge_login_limits(&self, now_ms: i64) -> StoreResult<u64> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(move |s| s.purge_login_limits(now_ms)).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.purge_login_limits(now_ms).await }).await
            }
        }
    }

    // Settings.

    /// A real, committed write of one small row: proof for `/readyz` that
    /// the database takes writes.
    pub async fn probe_write(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(|s| s.probe_write()).await,
            Backend::Postgres(p) => {
                let p = p.clone();
                detached(async move { p.probe_write().await }).await
            }
        }
    }

    /// The keys of the stored settings (not their values).
    pub async fn setting_keys(&self) -> StoreResult<Vec<String>> {
        match &self.backend {
            Backend::Sqlite(s) => s.setting_keys(),
            Backend::Postgres(p) => p.setting_keys().await,
        }
    }

    /// The stored value of `key`, storing `candidate` first if there is none;
    /// true when this call stored it. Of callers racing (instances started
    /// together), the first insert wins and all get its value.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        candidate: String,
    ) -> StoreResult<(String, bool)> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let key = key.to_string();
                s.write(move |s| s.setting_or_insert(&key, candidate)).await
            }
            Backend::Postgres(p) => {
                let p = p.clone();
                let key = key.to_string();
                detached(async move { p.setting_or_insert(&key, candidate).await }).await
            }
        }
    }

    // The Django import.

    /// What latch holds now (a read, for a dry run).
    pub async fn holdings(&self) -> StoreResult<Holdings> {
        match &self.backend {
            Backend::Sqlite(s) => s.holdings(),
            Backend::Postgres(p) => p.holdings().await,
        }
    }

    /// An import as one write: under the write lock, `plan` sees what latch
    /// holds and decides; the users it returns are inserted with their ids
    /// and the id sequence raised, all or none. Holding the lock from the
    /// plan to the insert, no registration can take a username, address or
    /// id the plan counted as free. `progress` hears how many of how many are in.
    pub async fn import_users<T>(
        &self,
        plan: impl FnOnce(Holdings) -> T,
        write: impl FnOnce(&T) -> Option<ImportWrite<'_>>,
        progress: &dyn Fn(usize, usize),
    ) -> StoreResult<T> {
        match &self.backend {
            // An admin command's one write, in a transaction of its own.
            Backend::Sqlite(s) => s.import_users(plan, write, progress),
            Backend::Postgres(p) => p.import_users(plan, write, progress).await,
        }
    }

    // Moving between backends (`latch migrate-store`).

    /// Every row, read at one consistent moment.
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        match &self.backend {
            // An admin command's one read, on its own thread.
            Backend::Sqlite(s) => s.snapshot(),
            Backend::Postgres(p) => p.snapshot().await,
        }
    }

    /// Rows per table, in the order of [`TABLES`].
    pub async fn table_counts(&self) -> StoreResult<[u64; 7]> {
        match &self.backend {
            Backend::Sqlite(s) => s.table_counts(),
            Backend::Postgres(p) => p.table_counts().await,
        }
    }

    /// Writes `snapshot` into this database, which must hold no rows at
    /// all, in one transaction.
    pub async fn restore(&self, snapshot: &Snapshot) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.restore(snapshot),
            Backend::Postgres(p) => p.restore(snapshot).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_schema_steps_under_the_same_names() {
        let names = |steps: &[(&'static str, &str)]| steps.iter().map(|s| s.0).collect::<Vec<_>>();
        assert_eq!(
            names(&super::sqlite::MIGRATIONS),
            names(&super::postgres::MIGRATIONS)
        );
    }
}
