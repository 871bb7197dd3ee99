//! The failed-login limit per username, kept in the database so that every
//! instance on it counts against one allowance: N instances must not give an
//! attacker N times the guesses. The same GCRA as governor's, run by the
//! store; the accounts are HMACs of usernames (a username field sometimes
//! holds a mistyped password), under a key kept in the database.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::Limited;
use crate::clock::SharedClock;
use crate::store::{Store, StoreResult};

pub struct AccountLimit {
    store: Store,
    key: Vec<u8>,
    clock: SharedClock,
    /// The time one failure takes to come back.
    interval_ms: i64,
    burst: i64,
}

impl AccountLimit {
    pub fn new(store: Store, key: &[u8], clock: SharedClock, burst: u32, window_secs: u64) -> Self {
        let burst = i64::from(burst.max(1));
        let window_ms = i64::try_from(window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        AccountLimit {
            store,
            key: key.to_vec(),
            clock,
            interval_ms: (window_ms / burst).max(1),
            burst,
        }
    }

    /// The row's name for `username`.
    pub fn account(&self, username: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(username.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().saturating_mul(1000)
    }

    /// Takes one failure of the account's allowance, or says when one is back.
    pub async fn acquire(&self, account: &str) -> StoreResult<Result<(), Limited>> {
        let decided = self
            .store
            .login_limit_acquire(
                account.to_string(),
                self.now_ms(),
                self.interval_ms,
                self.burst,
            )
            .await?;
        Ok(decided.map_err(|wait_ms| Limited {
            retry_after: std::time::Duration::from_millis(wait_ms.max(1) as u64),
        }))
    }

    /// Gives one back: the attempt was not a failure.
    pub async fn refund(&self, account: String) -> StoreResult<()> {
        self.store
            .login_limit_refund(account, self.interval_ms)
            .await
    }

    /// Forgets accounts back at their full allowance.
    pub async fn purge(&self) -> StoreResult<u64> {
        self.store.purge_login_limits(self.now_ms()).await
    }
}
