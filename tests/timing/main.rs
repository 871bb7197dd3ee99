//! Timing of answers that must not tell accounts apart. A binary of its own,
//! so that no other test competes for the CPU while it measures (cargo runs
//! test binaries one after another); its two tests take turns on a lock.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "../api/smtp.rs"]
#[allow(dead_code)]
mod smtp;
#[path = "../api/test_db.rs"]
#[allow(dead_code)]
mod test_db;

use std::time::{Duration, Instant};

use helpers::{PASSWORD, TestApp, TestResponse, spawn_app_with};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `a` and `b` alternately, `rounds` times each, and returns the medians.
async fn interleaved_medians<'a, F, Fut>(rounds: usize, mut call: F) -> (Duration, Duration)
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = TestResponse> + 'a,
{
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds * 2 {
        let first = round % 2 == 0;
        let start = Instant::now();
        call(first).await;
        let took = start.elapsed();
        if first { a.push(took) } else { b.push(took) }
    }
    (median(a), median(b))
}

fn relative_difference(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() - b.as_secs_f64()).abs() / a.as_secs_f64().max(b.as_secs_f64())
}

#[tokio::test]
async fn unknown_user_and_wrong_password_take_the_same_time() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // A hash that dominates the request time, as in production.
    let app = spawn_app_with(|c| {
        c.password.scrypt_log_n = 12;
        c.password.scrypt_p = 1;
    })
    .await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let (unknown, wrong) = interleaved_medians(60, |first| {
        let app: &TestApp = &app;
        async move {
            if first {
                app.login("ghost", "some-password").await
            } else {
                app.login("ann", "some-password").await
            }
        }
    })
    .await;
    let difference = relative_difference(unknown, wrong);
    eprintln!("login: unknown {unknown:?}, wrong password {wrong:?}");
    assert!(
        difference <= 0.10,
        "medians differ by {:.1}%: unknown {unknown:?}, wrong password {wrong:?}",
        difference * 100.0
    );
}

/// The answer to a reset request, and the write behind it, take the same
/// time for a known and an unknown address. The SMTP server is down, so the
/// known address's mail stays queued: its delivery, which follows the answer,
/// is not what this measures (see the README on what it reveals).
#[tokio::test]
async fn a_reset_for_an_unknown_address_takes_the_time_of_a_known_one() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = helpers::spawn_app_with_smtp(helpers::SmtpServer::down(), |c| {
        c.reset.reveal_unknown_email = false;
        c.mail.retry_max_secs = 3600;
    })
    .await;
    app.register("ann", "ann@example.com", PASSWORD).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..40 {
        let mut cases = [
            ("ann@example.com", &mut known),
            ("nobody@example.com", &mut unknown),
        ];
        // Alternate which goes first, so that neither always has the same slot.
        if round % 2 == 1 {
            cases.reverse();
        }
        for (email, samples) in cases {
            let start = Instant::now();
            app.request_reset(email)
                .await
                .assert(200, r#"{"message":"Password reset link sent"}"#);
            samples.push(start.elapsed());
            // Every sample starts from the same state: just woken from a sleep.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    let difference = relative_difference(known, unknown);
    eprintln!("reset: known {known:?}, unknown {unknown:?}");
    assert!(
        difference <= 0.15,
        "medians differ by {:.1}%: known {known:?}, unknown {unknown:?}",
        difference * 100.0
    );
    assert_eq!(
        app.scalar::<i64>("SELECT COUNT(*) FROM reset_tokens").await,
        40
    );
}
