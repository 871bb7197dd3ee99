//! Prometheus metrics, served by `GET /metrics` on `metrics.bind`
//! (`http/metrics.rs`), never on the API's address.
//!
//! Every [`crate::Server`] has a registry of its own (a `prometheus::Registry`,
//! not the crate's global default one), created at start-up and handed down
//! explicitly to whatever counts: the route table, the connection loop, the
//! outbox worker, the limits. So servers started side by side in one process
//! (the test suite) each show their own figures; only the process's resident
//! memory is shared by nature.
//!
//! On the request path a metric costs an atomic add: each route's handles
//! are made once, when the route table is built; a (route, status) counter
//! is registered the first time that pair occurs and then kept in its slot.
//! Nothing is formatted and no label is looked up per request. What takes a
//! query or a file read (the outbox, the resident memory) and what a
//! structure already knows (the hashing queue) is read when Prometheus
//! scrapes, not kept up to date request by request.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use warp::http::StatusCode;

use crate::passwords::Hasher;
use crate::store::Store;

/// Upper bounds of the request latency buckets, in seconds: 0.5 ms (a
/// profile read) to 2 s (a login queued behind a flood of hashes).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
];

/// The route label of requests for paths that no route serves (their 404s):
/// one value, whatever the path, so that scanners cannot make series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The statuses latch answers with, each with a counter slot of its own per
/// route; anything else (none is expected) counts as `other`.
const STATUSES: [u16; 13] = [
    200, 201, 400, 401, 403, 404, 405, 408, 413, 415, 429, 500, 503,
];
const STATUS_LABELS: [&str; STATUSES.len() + 1] = [
    "200", "201", "400", "401", "403", "404", "405", "408", "413", "415", "429", "500", "503",
    "other",
];

fn status_slot(status: StatusCode) -> usize {
    // A jump table, not a lookup: the set is fixed.
    match status.as_u16() {
        200 => 0,
        201 => 1,
        400 => 2,
        401 => 3,
        403 => 4,
        404 => 5,
        405 => 6,
        408 => 7,
        413 => 8,
        415 => 9,
        429 => 10,
        500 => 11,
        503 => 12,
        _ => STATUSES.len(),
    }
}

/// Every metric of one server.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Connections open on the API's address.
    pub open_connections: IntGauge,
    hash_queue_depth: IntGauge,
    hash_queue_capacity: IntGauge,
    /// Requests refused with 503 because the hashing queue was full.
    pub hash_busy: IntCounter,
    outbox_pending: IntGauge,
    outbox_oldest_age: Gauge,
    pub mail_delivered: IntCounter,
    /// A delivery attempt failed and will be retried.
    pub mail_failed_transient: IntCounter,
    /// A mail was dropped as undeliverable (a bad recipient address).
    pub mail_failed_permanent: IntCounter,
    /// Logins refused for wrong credentials (not for limits or a busy server).
    pub login_failures: IntCounter,
    pub limit_hits: LimitHits,
    /// Operations that failed because the database could not be used (busy
    /// past `database.busy_timeout_ms`, locked, full, read-only).
    pub db_unavailable: IntCounter,
    resident_memory: IntGauge,
}

/// Refusals by the brute-force and abuse limits, one counter per limit.
#[derive(Clone)]
pub struct LimitHits {
    pub login_per_account: IntCounter,
    pub login_per_ip: IntCounter,
    pub registrations_per_ip: IntCounter,
    pub reset_requests_per_ip: IntCounter,
    pub reset_mail_per_address: IntCounter,
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = Register(&registry);
        let requests = r.add(
            IntCounterVec::new(
                Opts::new(
                    "latch_http_requests_total",
                    "HTTP requests answered, by route pattern and status code.",
                ),
                &["route", "status"],
            )
            .expect("valid metric"),
        );
        let latency = r.add(
            HistogramVec::new(
                HistogramOpts::new(
                    "latch_http_request_duration_seconds",
                    "Time from routing a request to its answer, by route pattern.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route"],
            )
            .expect("valid metric"),
        );
        let failures = r.add(
            IntCounterVec::new(
                Opts::new(
                    "latch_mail_delivery_failures_total",
                    "Failed mail deliveries: transient ones are retried, permanent ones dropped.",
                ),
                &["kind"],
            )
            .expect("valid metric"),
        );
        let limits = r.add(
            IntCounterVec::new(
                Opts::new(
                    "latch_rate_limit_hits_total",
                    "Requests refused (or reset mails not sent) by a brute-force or abuse limit.",
                ),
                &["limit"],
            )
            .expect("valid metric"),
        );
        let limit = |name: &str| limits.with_label_values(&[name]);
        Metrics {
            open_connections: r.gauge(
                "latch_http_open_connections",
                "Connections open on the API's address.",
            ),
            hash_queue_depth: r.gauge(
                "latch_password_hash_queue_depth",
                "Password hash jobs waiting for a hashing thread.",
            ),
            hash_queue_capacity: r.gauge(
                "latch_password_hash_queue_capacity",
                "Most hash jobs allowed to wait (password.hash_queue_depth); past it, 503.",
            ),
            hash_busy: r.counter(
                "latch_password_hash_busy_rejections_total",
                "Requests refused with 503 because the password hashing queue was full.",
            ),
            outbox_pending: r.gauge(
                "latch_mail_outbox_pending",
                "Mails waiting in the outbox for delivery.",
            ),
            outbox_oldest_age: r.add(
                Gauge::new(
                    "latch_mail_outbox_oldest_age_seconds",
                    "How long the oldest mail in the outbox has waited; 0 when it is empty.",
                )
                .expect("valid metric"),
            ),
            mail_delivered: r.counter(
                "latch_mail_delivered_total",
                "Mails the mail server (or the file transport) accepted.",
            ),
            mail_failed_transient: failures.with_label_values(&["transient"]),
            mail_failed_permanent: failures.with_label_values(&["permanent"]),
            login_failures: r.counter(
                "latch_login_failures_total",
                "Logins refused for wrong credentials, an unknown or an inactive user.",
            ),
            limit_hits: LimitHits {
                login_per_account: limit("login_per_account"),
                login_per_ip: limit("login_per_ip"),
                registrations_per_ip: limit("registrations_per_ip"),
                reset_requests_per_ip: limit("reset_requests_per_ip"),
                reset_mail_per_address: limit("reset_mail_per_address"),
            },
            db_unavailable: r.counter(
                "latch_database_unavailable_errors_total",
                "Operations that failed because the database was busy, locked, full or read-only.",
            ),
            resident_memory: r.gauge(
                "latch_process_resident_memory_bytes",
                "Resident memory of the whole process.",
            ),
            registry,
            requests,
            latency,
        }
    }

    /// The handles of one route (`route` is its pattern, or [`UNMATCHED_ROUTE`]).
    pub fn route(&self, route: impl Into<Cow<'static, str>>) -> RouteMetrics {
        let route = route.into();
        RouteMetrics {
            latency: self.latency.with_label_values(&[&*route]),
            route,
            requests: self.requests.clone(),
            by_status: std::array::from_fn(|_| OnceLock::new()),
            hash_busy: self.hash_busy.clone(),
            db_unavailable: self.db_unavailable.clone(),
        }
    }

    /// The text a scrape gets: the counters as they are, and the gauges read
    /// now from `sources`.
    pub async fn render(&self, sources: &Sources) -> String {
        self.hash_queue_depth
            .set(gauge_value(sources.hasher.queued()));
        self.hash_queue_capacity
            .set(gauge_value(sources.hasher.queue_capacity()));
        match sources.store.outbox_backlog().await {
            Ok(backlog) => {
                self.outbox_pending.set(backlog.pending);
                self.outbox_oldest_age
                    .set(backlog.oldest_age_ms as f64 / 1000.0);
            }
            Err(err) => {
                // The last values stay; a busy or unavailable database shows
                // in this counter.
                if matches!(err, crate::store::StoreError::Unavailable(_)) {
                    self.db_unavailable.inc();
                }
                tracing::warn!(error = %err, "metrics: could not read the outbox");
            }
        }
        if let Some(bytes) = resident_memory_bytes() {
            self.resident_memory.set(gauge_value(bytes));
        }
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("the text format takes any metric")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// What the gauges read at scrape time come from.
pub struct Sources {
    pub store: Store,
    pub hasher: Hasher,
}

/// Registers metrics in a registry as they are made.
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric names are unique");
        metric
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help).expect("valid metric"))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help).expect("valid metric"))
    }
}

fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// One route's request counters and latency histogram.
pub struct RouteMetrics {
    route: Cow<'static, str>,
    requests: IntCounterVec,
    /// The counter of each status, registered at its first use.
    by_status: [OnceLock<IntCounter>; STATUS_LABELS.len()],
    latency: Histogram,
    hash_busy: IntCounter,
    db_unavailable: IntCounter,
}

impl RouteMetrics {
    /// Counts one answered request.
    pub fn record(&self, status: StatusCode, elapsed: Duration) {
        let slot = status_slot(status);
        self.by_status[slot]
            .get_or_init(|| {
                self.requests
                    .with_label_values(&[&*self.route, STATUS_LABELS[slot]])
            })
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// A request refused because the hashing queue was full.
    pub fn count_hash_busy(&self) {
        self.hash_busy.inc();
    }

    /// A request that failed because the database could not be used.
    pub fn count_db_unavailable(&self) {
        self.db_unavailable.inc();
    }
}

/// The process's resident set size, from `/proc/self/statm` (Linux).
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_slot_has_its_label() {
        for (slot, code) in STATUSES.iter().enumerate() {
            let status = StatusCode::from_u16(*code).unwrap();
            assert_eq!(status_slot(status), slot);
            assert_eq!(STATUS_LABELS[slot], code.to_string());
        }
        assert_eq!(STATUS_LABELS[status_slot(StatusCode::IM_A_TEAPOT)], "other");
    }

    #[test]
    fn a_route_counts_by_status_and_times_every_request() {
        let metrics = Metrics::new();
        let route = metrics.route("/api/auth/profile");
        route.record(StatusCode::OK, Duration::from_micros(300));
        route.record(StatusCode::OK, Duration::from_millis(3));
        route.record(StatusCode::UNAUTHORIZED, Duration::from_secs(5));
        let text = TextEncoder::new()
            .encode_to_string(&metrics.registry.gather())
            .unwrap();
        for line in [
            r#"latch_http_requests_total{route="/api/auth/profile",status="200"} 2"#,
            r#"latch_http_requests_total{route="/api/auth/profile",status="401"} 1"#,
            r#"latch_http_request_duration_seconds_bucket{route="/api/auth/profile",le="0.0005"} 1"#,
            r#"latch_http_request_duration_seconds_bucket{route="/api/auth/profile",le="0.005"} 2"#,
            r#"latch_http_request_duration_seconds_bucket{route="/api/auth/profile",le="2"} 2"#,
            r#"latch_http_request_duration_seconds_bucket{route="/api/auth/profile",le="+Inf"} 3"#,
            r#"latch_http_request_duration_seconds_count{route="/api/auth/profile"} 3"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in:\n{text}");
        }
        // A status never answered has no series.
        assert!(!text.contains(r#"status="404""#), "{text}");
    }

    /// The metric names of a registry (a histogram's also as its `_bucket`,
    /// `_sum` and `_count` series are named).
    fn names(metrics: &Metrics) -> Vec<String> {
        metrics
            .registry
            .gather()
            .iter()
            .flat_map(|family| {
                let name = family.name().to_string();
                match family.get_field_type() {
                    prometheus::proto::MetricType::HISTOGRAM => ["", "_bucket", "_sum", "_count"]
                        .iter()
                        .map(|suffix| format!("{name}{suffix}"))
                        .collect(),
                    _ => vec![name],
                }
            })
            .collect()
    }

    /// The `latch_*` names in a text.
    fn mentioned(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("latch_"))
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_readme_and_the_dashboard_name_only_metrics_that_exist() {
        let metrics = Metrics::new();
        // A counter family with no series yet is not exported at all.
        metrics
            .route("/healthz")
            .record(StatusCode::OK, Duration::ZERO);
        let names = names(&metrics);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let dashboard =
            std::fs::read_to_string(root.join("contrib/grafana-dashboard.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
        for (file, text) in [("README.md", &readme), ("the dashboard", &dashboard)] {
            for name in mentioned(text) {
                assert!(
                    names.contains(&name),
                    "{file} names {name}, which latch does not export"
                );
            }
        }
        // ...and the README's table describes every one of them.
        for family in metrics.registry.gather() {
            let row = format!("| `{}", family.name());
            assert!(
                readme.contains(&row),
                "README.md does not describe {}",
                family.name()
            );
        }
    }

    #[test]
    fn resident_memory_is_read() {
        assert!(resident_memory_bytes().is_some_and(|b| b > 0));
    }
}
