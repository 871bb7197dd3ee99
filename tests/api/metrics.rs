//! `GET /metrics` on `metrics.bind`: Prometheus's text format, parsed by a
//! Prometheus parser; counters move by exactly what was done, routes are
//! labelled by pattern, each server counts its own requests, and the
//! listener is off, refused or stopped as configured.

use std::time::Duration;

use prometheus_parse::{Scrape, Value};
use serde_json::json;

use crate::helpers::{
    PASSWORD, SmtpServer, TestApp, spawn_app, spawn_app_with, spawn_app_with_smtp, test_config,
};

/// One scrape, parsed.
struct Metrics(Scrape);

impl Metrics {
    async fn of(app: &TestApp) -> Metrics {
        let response = app.client.get(app.metrics_url()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Metrics(Scrape::parse(lines).expect("Prometheus's text format"))
    }

    /// The value of the sample with exactly these labels; 0 when there is
    /// none (a counter that never moved may have no series yet).
    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == metric && has_labels(s, labels))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                other => panic!("{metric} is {other:?}"),
            })
            .collect();
        assert!(found.len() <= 1, "{metric} {labels:?}: {found:?}");
        found.first().copied().unwrap_or(0.0)
    }

    /// Whether a sample of `metric` exists at all (types declared even
    /// when it has no series yet are not enough).
    fn has(&self, metric: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == metric)
    }

    /// The requests counted for a route, by status.
    fn requests(&self, route: &str, status: &str) -> f64 {
        self.get(
            "latch_http_requests_total",
            &[("route", route), ("status", status)],
        )
    }

    /// How many latencies the route's histogram holds (`_count`).
    fn timed(&self, route: &str) -> f64 {
        self.get(
            "latch_http_request_duration_seconds_count",
            &[("route", route)],
        )
    }

    /// Every value of the `route` label.
    fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .0
            .samples
            .iter()
            .filter_map(|s| s.labels.get("route").map(String::from))
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }

    /// The sum of every `latch_http_requests_total` series.
    fn all_requests(&self) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == "latch_http_requests_total")
            .map(|s| match s.value {
                Value::Counter(v) => v,
                ref other => panic!("{other:?}"),
            })
            .sum()
    }
}

fn has_labels(sample: &prometheus_parse::Sample, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

const REGISTER: &str = "/api/auth/register";
const LOGIN: &str = "/api/auth/login";
const PROFILE: &str = "/api/auth/profile";
const UNMATCHED: &str = "unmatched";

#[tokio::test]
async fn requests_are_counted_by_route_pattern_and_status_exactly() {
    let app = spawn_app().await;
    let before = Metrics::of(&app).await;
    assert_eq!(before.all_requests(), 0.0, "scrapes are not API requests");

    let r = app
        .register("metricus", "metricus@example.com", PASSWORD)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.login("metricus", "wrong-password").await.status, 401);
    for path in ["/no/such/path", "/api/auth/nope/123/", "/metrics"] {
        assert_eq!(app.get(path, None).await.status, 404, "{path}");
    }
    let r = app.login("metricus", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.json()["access"].as_str().unwrap().to_string();
    assert_eq!(app.profile(&access).await.status, 200);

    let after = Metrics::of(&app).await;
    let moved =
        |route: &str, status: &str| after.requests(route, status) - before.requests(route, status);
    assert_eq!(moved(REGISTER, "201"), 1.0);
    assert_eq!(moved(LOGIN, "401"), 1.0);
    assert_eq!(moved(LOGIN, "200"), 1.0);
    assert_eq!(moved(UNMATCHED, "404"), 3.0);
    assert_eq!(moved(PROFILE, "200"), 1.0);
    assert_eq!(after.all_requests() - before.all_requests(), 7.0);
    for (route, count) in [
        (REGISTER, 1.0),
        (LOGIN, 2.0),
        (UNMATCHED, 3.0),
        (PROFILE, 1.0),
    ] {
        assert_eq!(after.timed(route) - before.timed(route), count, "{route}");
    }
    // Every route of the table has its histogram from the start; no raw
    // path ever becomes a label.
    let routes = after.routes();
    for route in [REGISTER, LOGIN, PROFILE, UNMATCHED, "/healthz"] {
        assert!(routes.iter().any(|r| r == route), "{route}: {routes:?}");
    }
    // Only route patterns of the table (the reset page's path comes from
    // reset.url, here the default), never a raw path like the 404s' above.
    assert!(
        routes.iter().all(|r| r == UNMATCHED
            || [
                "/healthz",
                "/readyz",
                "/.well-known/jwks.json",
                "/api/openapi.json"
            ]
            .contains(&r.as_str())
            || r.starts_with("/api/auth/")
            || r.starts_with("/api/docs")
            || r.starts_with("/reset-password")),
        "{routes:?}"
    );

    assert_eq!(
        after.get("latch_login_failures_total", &[])
            - before.get("latch_login_failures_total", &[]),
        1.0
    );
    assert!(after.get("latch_http_open_connections", &[]) >= 1.0);
    assert!(after.get("latch_process_resident_memory_bytes", &[]) > 1e6);
    assert_eq!(
        after.get("latch_password_hash_queue_capacity", &[]),
        app.config.password.hash_queue_depth as f64
    );
    assert_eq!(after.get("latch_password_hash_queue_depth", &[]), 0.0);
    assert_eq!(after.get("latch_mail_outbox_pending", &[]), 0.0);
    assert_eq!(after.get("latch_mail_outbox_oldest_age_seconds", &[]), 0.0);
    assert_eq!(
        after.get("latch_database_unavailable_errors_total", &[]),
        0.0
    );
    for limit in [
        "login_per_account",
        "login_per_ip",
        "registrations_per_ip",
        "reset_requests_per_ip",
        "reset_mail_per_address",
    ] {
        assert_eq!(
            after.get("latch_rate_limit_hits_total", &[("limit", limit)]),
            0.0
        );
        assert!(after.has("latch_rate_limit_hits_total"));
    }
}

#[tokio::test]
async fn latency_buckets_span_half_a_millisecond_to_two_seconds() {
    let app = spawn_app().await;
    app.get("/healthz", None).await;
    let m = Metrics::of(&app).await;
    let sample =
        m.0.samples
            .iter()
            .find(|s| {
                s.metric == "latch_http_request_duration_seconds"
                    && s.labels.get("route") == Some("/healthz")
            })
            .expect("the health route's histogram");
    let Value::Histogram(buckets) = &sample.value else {
        panic!("{sample:?}")
    };
    let bounds: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
    assert_eq!(bounds.first(), Some(&0.0005));
    assert!(bounds.contains(&2.0) && bounds.last() == Some(&f64::INFINITY));
    assert_eq!(buckets.last().unwrap().count, 1.0);
}

#[tokio::test]
async fn the_api_port_does_not_serve_metrics() {
    let app = spawn_app().await;
    for path in ["/metrics", "/metrics/"] {
        let r = app.get(path, None).await;
        r.assert(404, r#"{"detail":"Not found."}"#);
    }
    // And the metrics port serves nothing else.
    let addr = app.metrics_addr().unwrap();
    let r = app
        .client
        .get(format!("http://{addr}/api/auth/profile/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), r#"{"detail":"Not found."}"#);
    let r = app.client.post(app.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn each_server_counts_its_own_requests() {
    let (a, b) = (spawn_app().await, spawn_app().await);
    assert_ne!(a.metrics_addr(), b.metrics_addr());
    for _ in 0..3 {
        a.get("/healthz", None).await;
    }
    b.get("/healthz", None).await;
    assert_eq!(Metrics::of(&a).await.requests("/healthz", "200"), 3.0);
    assert_eq!(Metrics::of(&b).await.requests("/healthz", "200"), 1.0);
}

#[tokio::test]
async fn an_empty_bind_serves_no_metrics() {
    let loaded = latch::config::load(latch::config::Sources {
        env: vec![("LATCH_METRICS_BIND".into(), String::new())],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config.metrics.bind, None);
    let app = spawn_app_with(|c| c.metrics.bind = loaded.config.metrics.bind).await;
    assert_eq!(app.metrics_addr(), None);
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn a_taken_metrics_port_stops_start_up_naming_metrics_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir, 1);
    config.metrics.bind = Some(addr);
    let err = match latch::Server::start(config).await {
        Ok(_) => panic!("started with {addr} taken"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains("metrics.bind") && err.contains(&addr.to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn the_metrics_listener_stops_with_the_server() {
    let app = spawn_app().await;
    let addr = app.metrics_addr().unwrap();
    Metrics::of(&app).await;
    app.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening on {addr}"
    );
}

#[tokio::test]
async fn rate_limit_hits_are_counted_per_limit() {
    let app = spawn_app_with(|c| {
        c.limits.enabled = true;
        c.limits.registrations_per_ip = 1;
    })
    .await;
    app.register("first", "first@example.com", PASSWORD).await;
    let r = app.register("second", "second@example.com", PASSWORD).await;
    assert_eq!(r.status, 429);
    let m = Metrics::of(&app).await;
    let hits = |limit| m.get("latch_rate_limit_hits_total", &[("limit", limit)]);
    assert_eq!(hits("registrations_per_ip"), 1.0);
    assert_eq!(hits("login_per_ip"), 0.0);
    assert_eq!(m.requests(REGISTER, "429"), 1.0);
}

#[tokio::test]
async fn busy_rejections_count_the_503s_of_a_full_hashing_queue() {
    let app = spawn_app_with(|c| {
        c.password.hash_threads = 1;
        c.password.hash_queue_depth = 2;
        c.password.scrypt_log_n = 15;
    })
    .await;
    app.register("alice", "alice@example.com", PASSWORD).await;
    let logins = (0..12).map(|_| app.login("alice", PASSWORD));
    let responses = futures_util::future::join_all(logins).await;
    let busy = responses.iter().filter(|r| r.status == 503).count();
    assert!(busy > 0);
    let m = Metrics::of(&app).await;
    assert_eq!(
        m.get("latch_password_hash_busy_rejections_total", &[]),
        busy as f64
    );
    assert_eq!(m.requests(LOGIN, "503"), busy as f64);
    assert_eq!(m.get("latch_password_hash_queue_capacity", &[]), 2.0);
}

/// Scrapes until `done` holds for a scrape (10 s at most), and returns it.
async fn scrape_until(app: &TestApp, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    for _ in 0..200 {
        let m = Metrics::of(app).await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn the_outbox_backlog_and_delivery_failures_show() {
    let app = spawn_app_with_smtp(SmtpServer::down(), |_| {}).await;
    let r = app.register("mailer", "mailer@example.com", PASSWORD).await;
    assert_eq!(r.status, 201);
    let r = app.request_reset("mailer@example.com").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = scrape_until(&app, "a failed delivery", |m| {
        m.get(
            "latch_mail_delivery_failures_total",
            &[("kind", "transient")],
        ) >= 1.0
    })
    .await;
    assert_eq!(m.get("latch_mail_outbox_pending", &[]), 1.0);
    assert_eq!(m.get("latch_mail_delivered_total", &[]), 0.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let age = Metrics::of(&app)
        .await
        .get("latch_mail_outbox_oldest_age_seconds", &[]);
    assert!((0.2..60.0).contains(&age), "{age}");

    app.smtp.come_up();
    app.smtp.wait_for_mail(1, Duration::from_secs(10)).await;
    let m = scrape_until(&app, "the delivery counted", |m| {
        m.get("latch_mail_delivered_total", &[]) == 1.0
            && m.get("latch_mail_outbox_pending", &[]) == 0.0
    })
    .await;
    assert_eq!(m.get("latch_mail_outbox_oldest_age_seconds", &[]), 0.0);
    assert_eq!(
        m.get(
            "latch_mail_delivery_failures_total",
            &[("kind", "permanent")]
        ),
        0.0
    );
}

#[tokio::test]
async fn cors_answers_are_counted_under_their_route() {
    let app = spawn_app_with(|c| {
        c.cors.allowed_origins = vec!["https://app.example.com".into()];
    })
    .await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/auth/login/"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let refused = app
        .client
        .post(app.url("/api/auth/login/"))
        .header("origin", "https://evil.example.com")
        .json(&json!({"username": "x", "password": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let allowed = app
        .client
        .post(app.url("/api/auth/login/"))
        .header("origin", "https://app.example.com")
        .json(&json!({"username": "x", "password": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 401);
    let m = Metrics::of(&app).await;
    assert_eq!(m.requests(LOGIN, "200"), 1.0, "the preflight");
    assert_eq!(m.requests(LOGIN, "403"), 1.0, "the refused origin");
    assert_eq!(
        m.requests(LOGIN, "401"),
        1.0,
        "counted once, by the endpoint"
    );
    assert_eq!(m.timed(LOGIN), 3.0);
    assert_eq!(m.all_requests(), 3.0);
}
