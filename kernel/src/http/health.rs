//! Readiness and the operator's metrics.
//!
//! `/healthz` (gateway) answers as long as the process serves: liveness, for
//! restarts. `/readyz` answers 200 only when this node can do its work — the
//! database answers, NATS is connected when configured, every plugin of the
//! plugin table is loaded — and 503 in the one error shape naming the
//! failing part otherwise: load balancers take the node out until then.
//!
//! `/metrics` is the kernel's Prometheus registry plus what operators watch
//! here: kernel API requests by route template and status, the database
//! pool, the delivery backlog and dead letters, failed logins and job runs.
//! It can require a bearer token (`metrics.token`) and be moved off the
//! public listener to its own address (`metrics.listen`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sqlx::Row;

use crate::core::error::{ApiError, ErrorCode};
use crate::node::Kernel;

type AppState = Arc<Kernel>;

use crate::metrics::ops::{ApiLabels, OPS, StatusLabels};

/// Middleware on the kernel API routes: counts each request under its
/// route template.
pub async fn track_api(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = ApiLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    OPS.api_requests.get_or_create(&labels).inc();
    OPS.api_seconds
        .get_or_create(&labels)
        .inc_by(started.elapsed().as_secs_f64());
    response
}

/// `/readyz`, plus `/metrics` unless it has its own listener.
pub fn routes(kernel: &Kernel) -> Router<AppState> {
    let router = Router::new().route("/readyz", get(readyz));
    if kernel.config.metrics.listen.is_some() {
        router
    } else {
        router.route("/metrics", get(metrics))
    }
}

/// The router of `metrics.listen`: `/metrics` only.
pub fn metrics_router(kernel: Arc<Kernel>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(kernel)
}

/// Serves [`metrics_router`] on `metrics.listen` when configured.
pub async fn serve_metrics(kernel: Arc<Kernel>) -> anyhow::Result<()> {
    let Some(addr) = kernel.config.metrics.listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("metrics.listen {addr}: {e}"))?;
    tracing::info!(%addr, "serving /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics_router(kernel)).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(())
}

fn not_ready(part: &str, message: String) -> Response {
    tracing::warn!(part, %message, "not ready");
    ApiError::new(ErrorCode::NotReady, message)
        .with_field(part)
        .into_response()
}

async fn readyz(State(k): State<AppState>) -> Response {
    // A database that hangs is as unready as one that refuses.
    let probe = tokio::time::timeout(Duration::from_secs(2), async {
        sqlx::query("SELECT id FROM plugins").fetch_all(&k.db).await
    })
    .await;
    let rows = match probe {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return not_ready("database", format!("the database refused: {e}")),
        Err(_) => {
            return not_ready("database", "the database did not answer within 2 s".into());
        }
    };
    let nats = match &k.config.nats_url {
        None => "not configured",
        Some(_) if k.bus.is_up() => "ok",
        Some(_) => return not_ready("nats", "NATS is configured but not connected".into()),
    };
    let missing: Vec<String> = rows
        .iter()
        .map(|r| r.get::<String, _>(0))
        .filter(|id| k.plugins.get(id).is_none())
        .collect();
    if !missing.is_empty() {
        return not_ready(
            "plugins",
            format!(
                "installed plugins not loaded on this node: {}",
                missing.join(", ")
            ),
        );
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "status": "ready",
            "checks": {"database": "ok", "nats": nats, "plugins": "ok"},
            "plugins": rows.len(),
        })),
    )
        .into_response()
}

fn token_matches(headers: &HeaderMap, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests so the time taken does not depend on where the
    // strings first differ.
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

async fn metrics(State(k): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = k.config.metrics_token()
        && !token_matches(&headers, &token)
    {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "/metrics needs Authorization: Bearer with the metrics token",
        )
        .into_response();
    }
    k.metrics
        .plugins_installed
        .set(k.plugins.list().len() as i64);
    refresh(&k).await;
    let mut text = k.metrics.render();
    // Both registries end the exposition with `# EOF`; keep one, at the end.
    if let Some(stripped) = text.strip_suffix("# EOF\n") {
        text.truncate(stripped.len());
    }
    {
        let registry = OPS.registry.lock().expect("metrics registry lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Body::from(text),
    )
        .into_response()
}

/// Reads the gauges that live in the database at scrape time; a slow or
/// failing database leaves the previous values (and is /readyz's concern).
async fn refresh(k: &Kernel) {
    OPS.pool_size.set(k.db.size() as i64);
    OPS.pool_idle.set(k.db.num_idle() as i64);
    OPS.pool_max
        .set(k.db.options().get_max_connections() as i64);
    let counts = tokio::time::timeout(Duration::from_secs(2), async {
        let deliveries = sqlx::query(
            "SELECT status, COUNT(*) FROM deliveries WHERE status IN ('pending', 'dead') GROUP BY status",
        )
        .fetch_all(&k.db)
        .await?;
        let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs")
            .fetch_one(&k.db)
            .await?;
        Ok::<_, sqlx::Error>((deliveries, jobs))
    })
    .await;
    match counts {
        Ok(Ok((deliveries, jobs))) => {
            let (mut pending, mut dead) = (0, 0);
            for row in deliveries {
                match row.get::<String, _>(0).as_str() {
                    "pending" => pending = row.get::<i64, _>(1),
                    _ => dead = row.get::<i64, _>(1),
                }
            }
            OPS.deliveries
                .get_or_create(&StatusLabels { status: "pending" })
                .set(pending);
            OPS.deliveries
                .get_or_create(&StatusLabels { status: "dead" })
                .set(dead);
            OPS.job_runs.set(jobs);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: reading the delivery backlog"),
        Err(_) => tracing::warn!("metrics: the database did not answer within 2 s"),
    }
}
