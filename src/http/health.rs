//! `GET /healthz`: the process serves and the database answers reads.
//! `GET /readyz`: besides, a write would succeed now (a real, committed
//! probe write) and the outbox is draining; else 503 naming what is wrong,
//! so that a load balancer or orchestrator notices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use warp::http::StatusCode;

use super::{AppState, GET, HandlerResult, Request, Route, endpoint, reply};
use crate::mail::OutboxHealth;

pub fn routes() -> [Route; 2] {
    [
        endpoint("/healthz", GET, healthz),
        endpoint("/readyz", GET, readyz),
    ]
}

async fn healthz(state: AppState, _req: Request) -> HandlerResult {
    if state.store.is_healthy().await {
        reply(StatusCode::OK, json!({"status": "ok"}))
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable"}),
        )
    }
}

/// A probe is written at most this often, however often `/readyz` is
/// asked; answers in between repeat the last finding.
const PROBE_EVERY: Duration = Duration::from_secs(1);

pub struct Readiness {
    outbox: Arc<OutboxHealth>,
    /// When the database was last probed, and whether the write went in.
    last_probe: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub fn new(outbox: Arc<OutboxHealth>) -> Readiness {
        Readiness {
            outbox,
            last_probe: Mutex::new(None),
        }
    }
}

async fn readyz(state: AppState, _req: Request) -> HandlerResult {
    let writable = database_writable(&state).await;
    // Mail has kept failing for two of the longest pauses between attempts:
    // not a passing hiccup of the SMTP server.
    let stalled_after = Duration::from_secs(state.config.mail.retry_max_secs.saturating_mul(2));
    let stalled = state
        .readiness
        .outbox
        .failing_for()
        .is_some_and(|failing| failing >= stalled_after);
    if writable && !stalled {
        return reply(StatusCode::OK, json!({"status": "ok"}));
    }
    let mut body = Map::new();
    body.insert("status".into(), "degraded".into());
    if !writable {
        body.insert("database".into(), "read-only".into());
    }
    if stalled {
        body.insert("outbox".into(), "stalled".into());
    }
    reply(StatusCode::SERVICE_UNAVAILABLE, Value::Object(body))
}

/// Whether a write goes in, probed at most once per [`PROBE_EVERY`]; callers
/// arriving meanwhile wait for the probe in progress and share its finding.
async fn database_writable(state: &AppState) -> bool {
    let mut last = state.readiness.last_probe.lock().await;
    if let Some((at, writable)) = *last
        && at.elapsed() < PROBE_EVERY
    {
        return writable;
    }
    let result = state.store.probe_write().await;
    if let Err(err) = &result {
        tracing::warn!(error = %err, "readyz: the database does not take writes");
    }
    *last = Some((Instant::now(), result.is_ok()));
    result.is_ok()
}
