//! The operator's series the kernel itself keeps: kernel API requests by
//! route template, failed logins, the database pool, the delivery backlog
//! and job runs. Process-wide, so the audit trail can count failed logins
//! without a handle on the kernel; `/metrics` (`http::health`) renders them.

use std::sync::{LazyLock, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub method: String,
    /// The route template (`/api/v1/users/{id}`), never the raw path, so
    /// ids do not explode the series count.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

/// This module's series. Process-wide: one kernel serves per process, and
/// the audit trail counts failed logins without a handle on the kernel.
pub struct OpsMetrics {
    pub registry: Mutex<Registry>,
    pub api_requests: Family<ApiLabels, Counter>,
    pub api_seconds: Family<ApiLabels, Counter<f64>>,
    pub login_failures: Counter,
    pub pool_size: Gauge,
    pub pool_idle: Gauge,
    pub pool_max: Gauge,
    pub deliveries: Family<StatusLabels, Gauge>,
    pub job_runs: Gauge,
}

pub static OPS: LazyLock<OpsMetrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("tianshan");
    let m = OpsMetrics {
        registry: Mutex::new(Registry::default()),
        api_requests: Family::default(),
        api_seconds: Family::default(),
        login_failures: Counter::default(),
        pool_size: Gauge::default(),
        pool_idle: Gauge::default(),
        pool_max: Gauge::default(),
        deliveries: Family::default(),
        job_runs: Gauge::default(),
    };
    registry.register(
        "api_requests",
        "Kernel API requests, by method, route template and status",
        m.api_requests.clone(),
    );
    registry.register(
        "api_request_seconds",
        "Time spent answering kernel API requests, by method, route template and status",
        m.api_seconds.clone(),
    );
    registry.register(
        "login_failures",
        "Logins refused for a wrong user name or password (throttled attempts are \
         tianshan_api_requests_total with status 429)",
        m.login_failures.clone(),
    );
    registry.register(
        "db_pool_connections",
        "Database connections open in this node's pool",
        m.pool_size.clone(),
    );
    registry.register(
        "db_pool_idle_connections",
        "Open database connections not in use",
        m.pool_idle.clone(),
    );
    registry.register(
        "db_pool_max_connections",
        "The most connections this node's pool opens",
        m.pool_max.clone(),
    );
    registry.register(
        "event_deliveries",
        "Event deliveries by status: pending (the backlog, retries included) and dead \
         (dead letters waiting for a replay)",
        m.deliveries.clone(),
    );
    registry.register(
        "job_runs",
        "Scheduled job runs claimed so far, by all nodes",
        m.job_runs.clone(),
    );
    *m.registry.lock().expect("fresh lock") = registry;
    m
});

/// Called by the audit trail for each record: counts failed logins.
pub fn note_audit(action: &str, outcome: &str) {
    if action == "auth.login" && outcome != "ok" {
        OPS.login_failures.inc();
    }
}
