//! Keeping several kernel nodes that share one PostgreSQL database in step.
//!
//! Shared state that nodes cache in memory (the plugin table, the org tree
//! and role bindings) has a generation counter in `cluster_state`; the node
//! that changes it bumps the counter in the same transaction, and every
//! node polls the counters each second, or at once when the changing node
//! signals over NATS (`bus`), and reloads what moved. On SQLite (one node)
//! the poll finds nothing new and costs one small query.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use super::Kernel;

const POLL_INTERVAL: Duration = Duration::from_secs(1);

async fn generations(kernel: &Kernel) -> sqlx::Result<(i64, i64)> {
    let rows = sqlx::query("SELECT name, generation FROM cluster_state")
        .fetch_all(&kernel.db)
        .await?;
    let mut out = (0, 0);
    for r in rows {
        match r.get::<String, _>(0).as_str() {
            "plugins" => out.0 = r.get(1),
            "access" => out.1 = r.get(1),
            _ => {}
        }
    }
    Ok(out)
}

/// Polls until the process ends.
pub async fn watch(kernel: Arc<Kernel>) {
    let mut seen = generations(&kernel).await.unwrap_or((0, 0));
    let signal = kernel.bus.cluster.clone();
    loop {
        // A NATS signal from the node that made a change cuts the wait.
        let _ = tokio::time::timeout(POLL_INTERVAL, signal.notified()).await;
        let current = match generations(&kernel).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cluster poll failed");
                continue;
            }
        };
        if current.0 != seen.0 {
            match kernel.plugins.sync().await {
                Ok(()) => seen.0 = current.0,
                Err(e) => tracing::error!(error = %e, "reloading plugins failed"),
            }
        }
        if current.1 != seen.1 {
            match kernel.authz.refresh().await {
                Ok(()) => seen.1 = current.1,
                Err(e) => tracing::error!(error = %e, "reloading access failed"),
            }
        }
    }
}
