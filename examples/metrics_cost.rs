//! What counting one request costs on the hot path: `RouteMetrics::record`
//! (a status counter and a latency histogram) plus the `Instant::now()` it
//! needs, on one thread and on two threads hammering the same route at once
//! (the worst case for the shared cache lines). Nanoseconds per request,
//! median of 5.
//! Usage: metrics_cost [MILLIONS]

use std::time::{Duration, Instant};

use latch::metrics::Metrics;
use warp::http::StatusCode;

fn per_call(threads: usize, calls: u32) -> f64 {
    let metrics = Metrics::new();
    let route = metrics.route("/api/auth/profile");
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..calls {
                    let request = Instant::now();
                    route.record(
                        StatusCode::OK,
                        request.elapsed() + Duration::from_micros(300),
                    );
                }
            });
        }
    });
    // Per request: each thread did `calls` of them, side by side.
    started.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    let millions: u32 = std::env::args()
        .nth(1)
        .map_or(5, |a| a.parse().expect("a number"));
    let calls = millions * 1_000_000;
    let one = median((0..5).map(|_| per_call(1, calls)).collect());
    let two = median((0..5).map(|_| per_call(2, calls)).collect());
    println!("one thread: {one:.1} ns per request");
    println!(
        "two threads on one route: {two:.1} ns per request (wall time per request of each thread)"
    );
}
