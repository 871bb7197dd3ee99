//! Password hashes: latch's own scrypt in PHC format
//! (`$scrypt$ln=14,r=8,p=5$salt$hash`), and the formats of users imported
//! from Django (`django`: PBKDF2, scrypt, argon2), all computed on a small
//! pool of dedicated threads.
//!
//! Why a pool of its own rather than `spawn_blocking`: each hash holds
//! 128·r·N bytes (16 MiB by default) for its whole run. A fixed set of threads
//! bounds that memory and the CPU taken from the async workers; a bounded queue
//! in front of them turns a flood into quick 503s instead of unbounded waiting.
//! A job runs to the end on its thread even if the client goes away meanwhile,
//! so the bound holds for abandoned requests too; a job whose client left
//! while it was still queued is skipped.
//!
//! latch only ever writes its own format. A Django hash that matches asks for
//! a rehash, so the first login of an imported user replaces it.

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use rand::RngCore as _;
use scrypt::Scrypt;
use scrypt::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash};
use tokio::sync::oneshot;

mod django;

pub use django::{
    Limit, MAX_ARGON2_PASSES, MAX_MEMORY, MAX_PARALLELISM, MAX_PBKDF2_ITERATIONS, MAX_WORK,
};

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    /// The queue of waiting hash jobs is full.
    #[error("password hashing queue is full")]
    Busy,
    /// A worker thread died (it panicked); never expected.
    #[error("password hashing worker failed")]
    WorkerLost,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash used other parameters than the configured ones.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct Hasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: scrypt::Params,
    jobs: Sender<Job>,
    /// A well-formed hash of nothing anyone knows, with the configured
    /// parameters: verifying against it costs what a real check costs.
    dummy_hash: String,
}

impl Hasher {
    /// Starts `threads` hashing threads behind a queue of `queue_depth` jobs.
    pub fn new(
        params: scrypt::Params,
        threads: usize,
        queue_depth: usize,
    ) -> std::io::Result<Hasher> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(queue_depth);
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("latch-hash-{n}"))
                .spawn(move || {
                    for job in queue {
                        // A panicking job must not take the thread with it; its
                        // caller sees the dropped reply as WorkerLost.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })?;
        }
        let dummy_hash = dummy_hash(params);
        Ok(Hasher {
            inner: Arc::new(Inner {
                params,
                jobs,
                dummy_hash,
            }),
        })
    }

    /// True while the queue of waiting jobs is full: a job now gets `Busy`.
    pub fn is_saturated(&self) -> bool {
        self.inner.jobs.is_full()
    }

    /// Jobs waiting for a hashing thread (not those being computed).
    pub fn queued(&self) -> usize {
        self.inner.jobs.len()
    }

    /// How many jobs may wait; past that, a job gets `Busy`.
    pub fn queue_capacity(&self) -> usize {
        self.inner.jobs.capacity().unwrap_or(usize::MAX)
    }

    /// Hashes `password` with the configured parameters and a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.inner.params;
        self.run(move || hash_now(params, password.as_bytes()))
            .await?
    }

    /// Checks `password` against a stored hash: latch's PHC scrypt, or one of
    /// Django's formats (see [`recognise`]). A stored value that can never
    /// match (an unusable password, an unknown or malformed format, a Django
    /// hash beyond latch's bounds) fails after the time a real check takes,
    /// so that such accounts do not stand out by answering fast.
    pub async fn verify(&self, password: String, stored: String) -> Result<Verified, HashError> {
        let configured = self.inner.params;
        let dummy = self.inner.dummy_hash.clone();
        self.run(move || verify_stored(configured, password.as_bytes(), &stored, &dummy))
            .await
    }

    /// Spends the time of a real verification and always fails: used when the
    /// user does not exist, so that timing does not tell which usernames do.
    pub async fn verify_dummy(&self, password: String) -> Result<(), HashError> {
        let configured = self.inner.params;
        let dummy = self.inner.dummy_hash.clone();
        self.run(move || verify_now(configured, password.as_bytes(), &dummy))
            .await
            .map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waits any more (the client hung up while this job was
            // queued): skip the work rather than burn a core on it. Once
            // started, a hash runs to the end on this thread, inside the bound.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(work());
        });
        match self.inner.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(HashError::WorkerLost),
        }
        rx.await.map_err(|_| HashError::WorkerLost)
    }
}

/// The format of a stored password hash, as [`recognise`] tells it.
///
/// The Django formats are verified as Django 5.2 verifies them, and ask for a
/// rehash when they match. The last four never match any password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFormat {
    /// latch's own scrypt PHC string, `$scrypt$ln=..,r=..,p=..$salt$hash`.
    LatchScrypt,
    /// Django's `pbkdf2_sha256$<iterations>$<salt>$<hash>` (its default).
    DjangoPbkdf2Sha256,
    /// Django's `pbkdf2_sha1$<iterations>$<salt>$<hash>`.
    DjangoPbkdf2Sha1,
    /// Django's `scrypt$<N>$<salt>$<r>$<p>$<hash>`.
    DjangoScrypt,
    /// Django's `argon2$argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`.
    DjangoArgon2id,
    /// Django's `argon2$argon2i$...` (with or without `v=`).
    DjangoArgon2i,
    /// Django's `argon2$argon2d$...` (argon2-cffi verifies it too).
    DjangoArgon2d,
    /// Django's unusable password (`!` and random characters, from
    /// `set_unusable_password`), or an empty value.
    Unusable,
    /// Names one of the formats above, but a field is missing or invalid
    /// (one that Django would raise an error for, or could never match).
    Malformed,
    /// A well-formed Django hash that asks for more work than latch allows
    /// (see [`Limit`]); Django itself would verify it.
    OverLimit(Limit),
    /// Anything else: Django's other hashers (`md5$`, `bcrypt_sha256$`,
    /// `sha1$`, unsalted MD5, ...), other PHC strings, other text.
    Unknown,
}

impl HashFormat {
    /// Whether a password can match a hash in this format.
    pub fn is_verifiable(self) -> bool {
        !matches!(
            self,
            HashFormat::Unusable
                | HashFormat::Malformed
                | HashFormat::OverLimit(_)
                | HashFormat::Unknown
        )
    }
}

impl std::fmt::Display for HashFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashFormat::LatchScrypt => "latch scrypt",
            HashFormat::DjangoPbkdf2Sha256 => "Django pbkdf2_sha256",
            HashFormat::DjangoPbkdf2Sha1 => "Django pbkdf2_sha1",
            HashFormat::DjangoScrypt => "Django scrypt",
            HashFormat::DjangoArgon2id => "Django argon2id",
            HashFormat::DjangoArgon2i => "Django argon2i",
            HashFormat::DjangoArgon2d => "Django argon2d",
            HashFormat::Unusable => "unusable",
            HashFormat::Malformed => "malformed",
            HashFormat::OverLimit(limit) => {
                return write!(f, "over latch's limit: {}", limit.reason());
            }
            HashFormat::Unknown => "unknown",
        })
    }
}

/// Which format a stored password hash is in, without computing anything (no
/// password needed, cheap): for an import to count the formats it brings in
/// and to report the hashes latch cannot verify (`!is_verifiable()`: those
/// users cannot log in until they reset their password). `Hasher::verify`
/// decides on the same parse.
pub fn recognise(stored: &str) -> HashFormat {
    match parse(stored) {
        Stored::Latch => HashFormat::LatchScrypt,
        Stored::Django(parsed) => parsed.format(),
        Stored::Never(format) => format,
    }
}

/// A stored hash, parsed: what checking a password against it takes.
enum Stored<'a> {
    /// latch's PHC scrypt: `verify_now`.
    Latch,
    Django(django::Parsed<'a>),
    /// Never matches, for the reason this format says.
    Never(HashFormat),
}

/// The most memory and parallelism one of latch's own scrypt hashes may
/// ask for: what `password.scrypt_*` may be configured to (config/load.rs).
const MAX_LATCH_SCRYPT_MEMORY: u128 = 4 << 30;
const MAX_LATCH_SCRYPT_P: u32 = 64;

fn parse(stored: &str) -> Stored<'_> {
    // PHC strings start with "$"; none of Django's formats does.
    if stored.starts_with('$') {
        if !stored.starts_with("$scrypt$") {
            return Stored::Never(HashFormat::Unknown);
        }
        let params = PasswordHash::new(stored)
            .ok()
            .filter(|hash| hash.hash.is_some())
            .and_then(|hash| scrypt::Params::try_from(&hash).ok());
        return match params {
            None => Stored::Never(HashFormat::Malformed),
            // Never more than latch itself may be configured to make: an
            // imported row must not ask for terabytes.
            Some(p) if (128 * u128::from(p.r())) << p.log_n() > MAX_LATCH_SCRYPT_MEMORY => {
                Stored::Never(HashFormat::OverLimit(Limit::Memory))
            }
            Some(p) if p.p() > MAX_LATCH_SCRYPT_P => {
                Stored::Never(HashFormat::OverLimit(Limit::Parallelism))
            }
            Some(_) => Stored::Latch,
        };
    }
    match django::parse(stored) {
        Ok(parsed) => Stored::Django(parsed),
        Err(format) => Stored::Never(format),
    }
}

/// [`Hasher::verify`]'s work, on a hashing thread.
fn verify_stored(
    configured: scrypt::Params,
    password: &[u8],
    stored: &str,
    dummy: &str,
) -> Verified {
    match parse(stored) {
        Stored::Latch => verify_now(configured, password, stored),
        Stored::Django(parsed) => Verified {
            matches: parsed.matches(password),
            needs_rehash: true,
        },
        Stored::Never(format) => {
            if let HashFormat::OverLimit(limit) = format {
                tracing::warn!(
                    reason = limit.reason(),
                    "a stored password hash asks for more work than latch allows; it never matches"
                );
            }
            verify_now(configured, password, dummy);
            Verified {
                matches: false,
                needs_rehash: false,
            }
        }
    }
}

fn hash_now(params: scrypt::Params, password: &[u8]) -> Result<String, HashError> {
    Scrypt::from(params)
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_now(configured: scrypt::Params, password: &[u8], stored: &str) -> Verified {
    let Ok(hash) = PasswordHash::new(stored) else {
        return Verified {
            matches: false,
            needs_rehash: false,
        };
    };
    let matches = Scrypt::default().verify_password(password, &hash).is_ok();
    let needs_rehash = match scrypt::Params::try_from(&hash) {
        Ok(p) => (p.log_n(), p.r(), p.p()) != (configured.log_n(), configured.r(), configured.p()),
        Err(_) => true,
    };
    Verified {
        matches,
        needs_rehash,
    }
}

/// A PHC string with the configured parameters, a random salt and a random
/// "hash": verifying it does the full scrypt work, and nothing matches it.
fn dummy_hash(params: scrypt::Params) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut salt = [0u8; 16];
    let mut output = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    rand::rng().fill_bytes(&mut output);
    format!(
        "$scrypt$ln={},r={},p={}${}${}",
        params.log_n(),
        params.r(),
        params.p(),
        b64.encode(salt),
        b64.encode(output)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> scrypt::Params {
        scrypt::Params::new(4, 8, 1).unwrap()
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$scrypt$ln=4,r=8,p=1$"), "{hash}");
        let ok = hasher
            .verify("correct horse".into(), hash.clone())
            .await
            .unwrap();
        assert_eq!(
            ok,
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        let bad = hasher.verify("wrong horse".into(), hash).await.unwrap();
        assert!(!bad.matches);
    }

    #[tokio::test]
    async fn weaker_stored_parameters_ask_for_a_rehash() {
        let weak = Hasher::new(scrypt::Params::new(3, 8, 1).unwrap(), 1, 8).unwrap();
        let hash = weak.hash("pw".into()).await.unwrap();
        let strong = Hasher::new(cheap(), 1, 8).unwrap();
        assert_eq!(
            strong.verify("pw".into(), hash).await.unwrap(),
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn a_scrypt_row_asking_for_more_than_latch_could_make_is_over_the_limit() {
        // 2^40 * 128 * 8 bytes: an imported row must not get that allocated.
        let huge = "$scrypt$ln=40,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        assert_eq!(recognise(huge), HashFormat::OverLimit(Limit::Memory));
        let wide = "$scrypt$ln=4,r=8,p=65$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        assert_eq!(recognise(wide), HashFormat::OverLimit(Limit::Parallelism));
        let v = verify_stored(cheap(), b"password", huge, &dummy_hash(cheap()));
        assert!(!v.matches);
        // The largest latch may be configured to make is still its own.
        let big = "$scrypt$ln=22,r=8,p=64$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        assert_eq!(recognise(big), HashFormat::LatchScrypt);
    }

    #[test]
    fn verifies_a_passlib_test_vector() {
        // From passlib's scrypt documentation: password "password".
        let stored = "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E";
        let v = verify_now(cheap(), b"password", stored);
        assert_eq!(
            v,
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
        assert!(!verify_now(cheap(), b"Password", stored).matches);
    }

    #[tokio::test]
    async fn malformed_stored_hash_never_matches() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        assert!(
            !hasher
                .verify("pw".into(), "not a hash".into())
                .await
                .unwrap()
                .matches
        );
        assert!(!hasher.verify("".into(), "".into()).await.unwrap().matches);
    }

    #[tokio::test]
    async fn dummy_verification_does_real_work_and_fails() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        assert!(PasswordHash::new(&hasher.inner.dummy_hash).is_ok());
        hasher.verify_dummy("anything".into()).await.unwrap();
    }

    /// Keeps a (single-threaded) hasher's thread busy until told to stop;
    /// returns once the blocking job is running on it.
    async fn occupy(
        hasher: &Hasher,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<Option<()>, HashError>>,
    ) {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let blocker = tokio::spawn({
            let h = hasher.clone();
            async move {
                h.run(move || {
                    let _ = started_tx.send(());
                    release_rx.recv().ok()
                })
                .await
            }
        });
        started_rx.await.expect("the blocking job started");
        (release_tx, blocker)
    }

    /// Waits until `n` jobs wait in the queue (not yet taken by a thread).
    async fn wait_until_queued(hasher: &Hasher, n: usize) {
        let start = std::time::Instant::now();
        while hasher.inner.jobs.len() < n {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "{} jobs queued, expected {n}",
                hasher.inner.jobs.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn jobs_whose_caller_left_are_skipped() {
        let hasher = Hasher::new(cheap(), 1, 8).unwrap();
        let (release_tx, blocker) = occupy(&hasher).await;
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let abandoned = tokio::spawn({
            let (h, ran) = (hasher.clone(), ran.clone());
            async move {
                h.run(move || ran.store(true, std::sync::atomic::Ordering::SeqCst))
                    .await
            }
        });
        wait_until_queued(&hasher, 1).await;
        abandoned.abort();
        let _ = abandoned.await;
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // A job queued after the abandoned one proves the queue moved past it.
        hasher.hash("after".into()).await.unwrap();
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "the abandoned job ran"
        );
    }

    #[tokio::test]
    async fn full_queue_answers_busy_at_once() {
        let hasher = Hasher::new(cheap(), 1, 1).unwrap();
        // Occupy the only thread, then fill the one queue slot.
        let (release_tx, blocker) = occupy(&hasher).await;
        let queued = tokio::spawn({
            let h = hasher.clone();
            async move { h.hash("a".into()).await }
        });
        wait_until_queued(&hasher, 1).await;
        assert_eq!(hasher.hash("b".into()).await, Err(HashError::Busy));
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(queued.await.unwrap().is_ok());
    }
}
