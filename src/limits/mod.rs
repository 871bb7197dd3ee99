//! Brute-force and abuse limits:
//! - failed logins per username (known or not, from any address), in the
//!   database (`account.rs`), shared by every instance;
//! - failed logins per client address; a login reserves a cell of both
//!   before the password is checked and gives both back when it was right;
//! - registrations and reset requests per client address;
//! - reset mail per address (a cooldown).
//!
//! All but the first are decided by governor (GCRA) in memory, per process.
//! `[limits] enabled = false` turns them all off.

mod account;
mod client_ip;
mod store;

pub use account::AccountLimit;
pub use client_ip::ClientIp;

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::{Quota, RateLimiter};

use crate::config::{LimitsConfig, ResetConfig};
use crate::error::ApiError;
use crate::metrics::LimitHits;
use store::RefundableStore;

/// Keys one limiter remembers at most. Keys are fixed-size (an address, or a
/// 64-bit keyed hash of a username), so this is a few tens of MiB at worst.
/// Past it, new keys are decided but not remembered (and a warning is logged):
/// login keys only appear on failed logins, which each cost a password hash,
/// so a flood cannot get there within one window.
const MAX_KEYS: usize = 200_000;

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for a `Retry-After` header, never 0.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// One keyed limit: `burst` events per `window`, replenished evenly.
pub struct Limiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, RefundableStore<K>, C, NoOpMiddleware<C::Instant>>,
    store: RefundableStore<K>,
    /// The time one cell takes to come back.
    interval: Nanos,
    clock: C,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(burst: u32, window: Duration) -> Self {
        Limiter::with_clock(burst, window, DefaultClock::default())
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> Limiter<K, C> {
    pub fn with_clock(burst: u32, window: Duration, clock: C) -> Self {
        Limiter::build(burst, window, clock, MAX_KEYS)
    }

    fn build(burst: u32, window: Duration, clock: C, max_keys: usize) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let interval = (window / burst.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(interval)
            .expect("the interval is not zero")
            .allow_burst(burst);
        let store = RefundableStore::new(max_keys);
        Limiter {
            limiter: RateLimiter::new(quota, store.clone(), clock.clone()),
            store,
            interval: interval.into(),
            clock,
        }
    }

    /// Takes one cell for `key`, or says how long until one is free.
    pub fn acquire(&self, key: &K) -> Result<(), Limited> {
        self.limiter.check_key(key).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Gives back a cell taken by `acquire` (the event did not count).
    pub fn refund(&self, key: &K) {
        self.store.refund(key, self.interval);
    }

    /// Forgets keys that are back to a full allowance.
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    pub fn untracked_decisions(&self) -> u64 {
        self.store.untracked()
    }
}

/// The key of a client address: an IPv6 client usually holds a whole /64,
/// so it counts as one.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Every limit of the server; `None` when limits are off.
pub struct Limits {
    login_per_account: AccountLimit,
    login_per_ip: Limiter<IpAddr>,
    registrations: Limiter<IpAddr>,
    reset_requests: Limiter<IpAddr>,
    /// None when `reset.mail_cooldown_secs` is 0.
    reset_mail: Option<Limiter<String>>,
    /// Untracked decisions already reported by `housekeeping`.
    reported_untracked: std::sync::atomic::AtomicU64,
    /// Where refusals are counted, if anywhere.
    hits: Option<LimitHits>,
}

/// A login's reservation: one cell per limit, given back when the password
/// turns out right (see [`Limits::login_not_failed`]); dropped, it counts as
/// a failure.
#[must_use]
pub struct LoginAttempt {
    account: String,
    ip: IpAddr,
}

impl Limits {
    /// `accounts` is the per-username limit (see [`AccountLimit::new`]).
    pub fn from_config(
        limits: &LimitsConfig,
        reset: &ResetConfig,
        accounts: AccountLimit,
    ) -> Option<Limits> {
        if !limits.enabled {
            return None;
        }
        let login_window = Duration::from_secs(limits.login_window_secs);
        let ip_window = Duration::from_secs(limits.ip_window_secs);
        Some(Limits {
            login_per_account: accounts,
            login_per_ip: Limiter::new(limits.login_failures_per_ip, login_window),
            registrations: Limiter::new(limits.registrations_per_ip, ip_window),
            reset_requests: Limiter::new(limits.reset_requests_per_ip, ip_window),
            reset_mail: (reset.mail_cooldown_secs > 0)
                .then(|| Limiter::new(1, Duration::from_secs(reset.mail_cooldown_secs))),
            reported_untracked: Default::default(),
            hits: None,
        })
    }

    /// Counts every refusal, per limit, in `hits` (the server's metrics).
    pub fn count_hits_in(mut self, hits: LimitHits) -> Limits {
        self.hits = Some(hits);
        self
    }

    fn hit(&self, counter: impl Fn(&LimitHits) -> &prometheus::IntCounter) {
        if let Some(hits) = &self.hits {
            counter(hits).inc();
        }
    }

    /// Before a password is checked: refused when this address or this
    /// username (whether it exists or not) has used up its failures.
    /// The database deciding the username's share can fail (503).
    pub async fn login_attempt(
        &self,
        ip: IpAddr,
        username: &str,
    ) -> Result<LoginAttempt, ApiError> {
        let ip = ip_key(ip);
        if let Err(limited) = self.login_per_ip.acquire(&ip) {
            self.hit(|h| &h.login_per_ip);
            return Err(limited.into());
        }
        let account = self.login_per_account.account(username);
        match self.login_per_account.acquire(&account).await {
            Ok(Ok(())) => Ok(LoginAttempt { account, ip }),
            Ok(Err(limited)) => {
                self.login_per_ip.refund(&ip);
                self.hit(|h| &h.login_per_account);
                Err(limited.into())
            }
            Err(err) => {
                self.login_per_ip.refund(&ip);
                Err(err.into())
            }
        }
    }

    /// The password was right, or it could not be checked (server busy):
    /// the attempt does not count as a failure.
    pub async fn login_not_failed(&self, attempt: LoginAttempt) {
        self.login_per_ip.refund(&attempt.ip);
        if let Err(err) = self.login_per_account.refund(attempt.account).await {
            // The failure stays counted until it comes back by itself.
            tracing::warn!(error = %err, "limits: could not give back a login's reservation");
        }
    }

    pub fn registration(&self, ip: IpAddr) -> Result<(), Limited> {
        let decided = self.registrations.acquire(&ip_key(ip));
        if decided.is_err() {
            self.hit(|h| &h.registrations_per_ip);
        }
        decided
    }

    pub fn reset_request(&self, ip: IpAddr) -> Result<(), Limited> {
        let decided = self.reset_requests.acquire(&ip_key(ip));
        if decided.is_err() {
            self.hit(|h| &h.reset_requests_per_ip);
        }
        decided
    }

    /// True when a reset mail may go to this address now (and starts its cooldown).
    pub fn reset_mail_allowed(&self, email_key: &str) -> bool {
        match &self.reset_mail {
            Some(limiter) => {
                let allowed = limiter.acquire(&email_key.to_string()).is_ok();
                if !allowed {
                    self.hit(|h| &h.reset_mail_per_address);
                }
                allowed
            }
            None => true,
        }
    }

    /// The mail could not be queued after all: the cooldown does not start.
    pub fn reset_mail_not_sent(&self, email_key: &str) {
        if let Some(limiter) = &self.reset_mail {
            limiter.refund(&email_key.to_string());
        }
    }

    /// Forgets keys back at a full allowance, and says how many decisions
    /// went untracked since it last ran; run every minute or so.
    pub async fn housekeeping(&self) -> u64 {
        if let Err(err) = self.login_per_account.purge().await {
            tracing::warn!(error = %err, "limits: could not purge the login limits of the past");
        }
        self.login_per_ip.housekeeping();
        self.registrations.housekeeping();
        self.reset_requests.housekeeping();
        if let Some(l) = &self.reset_mail {
            l.housekeeping();
        }
        let untracked = self.login_per_ip.untracked_decisions()
            + self.registrations.untracked_decisions()
            + self.reset_requests.untracked_decisions()
            + self
                .reset_mail
                .as_ref()
                .map_or(0, Limiter::untracked_decisions);
        let new = self.newly_untracked(untracked);
        if new > 0 {
            tracing::warn!(
                untracked = new,
                max_keys = MAX_KEYS,
                "rate limiters are full: some clients or usernames were not tracked (a flood of distinct keys?)"
            );
        }
        new
    }

    /// Of `total` untracked decisions so far, how many were not yet reported.
    fn newly_untracked(&self, total: u64) -> u64 {
        let before = self
            .reported_untracked
            .swap(total, std::sync::atomic::Ordering::Relaxed);
        total.saturating_sub(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    /// Limits as configured, the per-username one in a store on a
    /// temporary file (kept while the directory lives).
    fn limits(config: &LimitsConfig) -> (tempfile::TempDir, Limits) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::open_sqlite(&dir.path().join("t.db"), Duration::from_secs(1), 2)
                .unwrap();
        let accounts = AccountLimit::new(
            store,
            b"key",
            crate::clock::system(),
            config.login_failures_per_account,
            config.login_window_secs,
        );
        let limits = Limits::from_config(config, &ResetConfig::default(), accounts).unwrap();
        (dir, limits)
    }

    fn limiter(
        burst: u32,
        window_secs: u64,
    ) -> (Limiter<String, FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let l = Limiter::with_clock(burst, Duration::from_secs(window_secs), clock.clone());
        (l, clock)
    }

    #[test]
    fn burst_then_refusal_then_recovery_without_sleeping() {
        let (l, clock) = limiter(5, 900);
        let key = "ann".to_string();
        for _ in 0..5 {
            l.acquire(&key).unwrap();
        }
        let limited = l.acquire(&key).unwrap_err();
        assert_eq!(limited.retry_after, Duration::from_secs(180));
        assert_eq!(limited.retry_after_secs(), 180);
        l.acquire(&"bob".to_string())
            .expect("other keys are not affected");
        clock.advance(Duration::from_secs(180));
        l.acquire(&key).expect("one cell back after window / burst");
        assert!(l.acquire(&key).is_err());
    }

    #[test]
    fn refunded_cells_do_not_count() {
        let (l, _clock) = limiter(2, 60);
        let key = "ann".to_string();
        for _ in 0..10 {
            l.acquire(&key).unwrap();
            l.refund(&key);
        }
        l.acquire(&key).unwrap();
        l.acquire(&key).unwrap();
        assert!(l.acquire(&key).is_err());
    }

    #[test]
    fn housekeeping_forgets_keys_back_at_full_allowance() {
        let (l, clock) = limiter(2, 60);
        for n in 0..100 {
            l.acquire(&n.to_string()).unwrap();
        }
        assert_eq!(l.tracked_keys(), 100);
        clock.advance(Duration::from_secs(61));
        l.housekeeping();
        assert_eq!(l.tracked_keys(), 0);
    }

    #[test]
    fn memory_is_capped_under_a_flood_of_distinct_keys() {
        let capped: Limiter<u32, _> =
            Limiter::build(1, Duration::from_secs(60), FakeRelativeClock::default(), 10);
        for key in 0..1000 {
            capped.acquire(&key).unwrap();
        }
        assert_eq!(capped.tracked_keys(), 10);
        assert_eq!(capped.untracked_decisions(), 990);
        assert!(
            capped.acquire(&0).is_err(),
            "tracked keys are still limited"
        );
    }

    #[tokio::test]
    async fn a_full_limiter_is_reported_once_per_increase_not_every_minute() {
        let (_dir, limits) = limits(&LimitsConfig::default());
        assert_eq!(limits.housekeeping().await, 0);
        assert_eq!(limits.newly_untracked(5), 5);
        assert_eq!(limits.newly_untracked(5), 0);
        assert_eq!(limits.newly_untracked(8), 3);
    }

    #[test]
    fn ipv6_clients_count_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ip_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn a_login_reserves_on_both_and_a_success_gives_both_back() {
        let config = LimitsConfig {
            login_failures_per_account: 2,
            login_failures_per_ip: 3,
            ..LimitsConfig::default()
        };
        let (_dir, limits) = limits(&config);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..10 {
            let attempt = limits.login_attempt(ip, "ann").await.unwrap();
            limits.login_not_failed(attempt).await;
        }
        for _ in 0..2 {
            let attempt = limits.login_attempt(ip, "ann").await.unwrap();
            drop(attempt);
        }
        assert!(
            limits.login_attempt(ip, "ann").await.is_err(),
            "account used up"
        );
        // The refused attempt did not use the address's third failure.
        let attempt = limits.login_attempt(ip, "bob").await.unwrap();
        drop(attempt);
        assert!(
            limits.login_attempt(ip, "carl").await.is_err(),
            "address used up"
        );
        assert!(
            limits
                .login_attempt("127.0.0.10".parse().unwrap(), "ann")
                .await
                .is_err(),
            "the account limit holds from another address"
        );
    }

    #[tokio::test]
    async fn each_refusal_is_counted_under_its_limit() {
        let config = LimitsConfig {
            login_failures_per_account: 1,
            login_failures_per_ip: 2,
            registrations_per_ip: 1,
            reset_requests_per_ip: 1,
            ..LimitsConfig::default()
        };
        let metrics = crate::metrics::Metrics::new();
        let hits = metrics.limit_hits.clone();
        let (_dir, limits) = limits(&config);
        let limits = limits.count_hits_in(hits.clone());
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        drop(limits.login_attempt(ip, "ann").await.unwrap());
        assert!(limits.login_attempt(ip, "ann").await.is_err());
        drop(limits.login_attempt(ip, "bob").await.unwrap());
        assert!(limits.login_attempt(ip, "carl").await.is_err());
        limits.registration(ip).unwrap();
        assert!(limits.registration(ip).is_err());
        limits.reset_request(ip).unwrap();
        assert!(limits.reset_request(ip).is_err());
        assert!(limits.reset_request(ip).is_err());
        assert!(limits.reset_mail_allowed("ann@x.io"));
        assert!(!limits.reset_mail_allowed("ann@x.io"));
        let counts = [
            hits.login_per_account.get(),
            hits.login_per_ip.get(),
            hits.registrations_per_ip.get(),
            hits.reset_requests_per_ip.get(),
            hits.reset_mail_per_address.get(),
        ];
        assert_eq!(counts, [1, 1, 1, 2, 1]);
    }
}
