//! How long latch takes to verify one password against one stored hash, on
//! one hashing thread, through `Hasher::verify` as a login does (median of
//! several, in milliseconds). The stored hash may be latch's own or one of
//! Django's; the password must match it (the run stops otherwise).
//! Usage: verify_time PASSWORD STORED [RUNS]
//! e.g. the Django 5.2 default, PBKDF2-SHA256 with 1,000,000 iterations:
//!   verify_time 'pässwörd ü' 'pbkdf2_sha256$1000000$w8rLmEHXyCUFAWbJg3Ekq1$HFaDMVw/YS5NSuz8hbgsTfdsRe7MrGNWAF+6hSY1aHI='

use latch::passwords::{Hasher, recognise};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [password, stored, rest @ ..] = args.as_slice() else {
        panic!("usage: verify_time PASSWORD STORED [RUNS]");
    };
    let runs: usize = rest.first().map_or(7, |r| r.parse().expect("a number"));
    let format = recognise(stored);
    assert!(
        format.is_verifiable(),
        "latch cannot verify this hash: {format}"
    );
    // latch's default parameters; they only matter for latch's own hashes.
    let params = scrypt::Params::new(14, 8, 5).expect("valid scrypt parameters");
    let hasher = Hasher::new(params, 1, 1).expect("a hashing thread");
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let verified = hasher
            .verify(password.clone(), stored.clone())
            .await
            .expect("the hashing thread answers");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(
            verified.matches,
            "the password does not match this {format} hash"
        );
    }
    times.sort_by(f64::total_cmp);
    eprintln!("{format}");
    println!("{:.2}", times[times.len() / 2]);
}
