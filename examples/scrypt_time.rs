//! The hashing ceiling for `bench/`: how long one scrypt hash takes with the
//! given parameters, on one thread (median of several, in milliseconds).
//! Usage: scrypt_time LOG_N R P [RUNS]

use scrypt::password_hash::PasswordHasher as _;

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let (log_n, r, p) = (args[0] as u8, args[1], args[2]);
    let runs = args.get(3).copied().unwrap_or(7);
    let hasher =
        scrypt::Scrypt::from(scrypt::Params::new(log_n, r, p).expect("valid scrypt parameters"));
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            hasher
                .hash_password(b"benchmark-password")
                .expect("hashing works");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
}
