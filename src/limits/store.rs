//! A keyed state store for governor that can also give a cell back.
//!
//! governor decides (GCRA); this store only keeps each key's state, as its
//! own DashMap store does, with two additions a login limit needs:
//! - `refund`: a login reserves a cell before the password is checked, so
//!   that concurrent guesses cannot all pass one last free cell; when the
//!   password was right, the cell is given back (only failures count);
//! - a cap on the number of keys, so a flood of distinct addresses or
//!   usernames cannot grow memory without bound: past the cap, new keys are
//!   decided but not remembered (counted in `untracked`).

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;

/// A handle: the limiter owns one, the code that refunds keeps another.
pub struct RefundableStore<K: Hash + Eq>(Arc<Shared<K>>);

pub struct Shared<K: Hash + Eq> {
    /// Each key's theoretical arrival time, in governor's nanoseconds since
    /// the limiter started; 0 means a fresh key.
    states: DashMap<K, AtomicU64>,
    max_keys: usize,
    /// Decisions made for keys that could not be remembered.
    untracked: AtomicU64,
}

impl<K: Hash + Eq> Clone for RefundableStore<K> {
    fn clone(&self) -> Self {
        RefundableStore(self.0.clone())
    }
}

impl<K: Hash + Eq + Clone> RefundableStore<K> {
    pub fn new(max_keys: usize) -> Self {
        RefundableStore(Arc::new(Shared {
            states: DashMap::new(),
            max_keys,
            untracked: AtomicU64::new(0),
        }))
    }

    /// How many decisions were made for keys past the cap.
    pub fn untracked(&self) -> u64 {
        self.0.untracked.load(Ordering::Relaxed)
    }

    /// Moves the key's arrival time back by `interval`: one cell returned.
    pub fn refund(&self, key: &K, interval: Nanos) {
        if let Some(state) = self.0.states.get(key) {
            let _ = state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(interval.as_u64()))
            });
        }
    }
}

/// The same compare-and-swap loop as governor's in-memory state.
fn measure<T, E>(
    state: &AtomicU64,
    f: impl Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
) -> Result<T, E> {
    let mut prev = state.load(Ordering::Acquire);
    loop {
        let (result, next) = f((prev != 0).then(|| Nanos::from(prev)))?;
        match state.compare_exchange_weak(prev, next.as_u64(), Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Ok(result),
            Err(actual) => prev = actual,
        }
    }
}

impl<K: Hash + Eq + Clone> StateStore for RefundableStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if let Some(state) = self.0.states.get(key) {
            return measure(&state, f);
        }
        if self.0.states.len() >= self.0.max_keys {
            self.0.untracked.fetch_add(1, Ordering::Relaxed);
            return f(None).map(|(result, _)| result);
        }
        let state = self.0.states.entry(key.clone()).or_default();
        measure(&state, f)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for RefundableStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0
            .states
            .retain(|_, state| state.load(Ordering::Relaxed) > drop_below.as_u64());
    }

    fn shrink_to_fit(&self) {
        self.0.states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.states.len()
    }

    fn is_empty(&self) -> bool {
        self.0.states.is_empty()
    }
}
