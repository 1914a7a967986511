//! Scheduled jobs. Each node wakes every second; for each minute that
//! passed, each enabled plugin's jobs whose schedule names that minute are
//! claimed by inserting `(plugin, job, minute)` into `job_runs`. The primary
//! key lets exactly one node win; the winner, in the same transaction,
//! queues a `kernel.job.<name>` event for the plugin, which then gets the
//! messaging guarantees (retries, dead letters, at least once).

pub mod cron;

use std::sync::Arc;
use std::time::Duration;

use crate::db::{Db, now};
use crate::services::jobs::cron::Schedule;
use crate::services::messaging::{Message, Messaging};

/// Minutes a node catches up on after a pause (restart, long GC, …).
const CATCH_UP_MINUTES: i64 = 60;

/// One job of one plugin, with its parsed schedule.
#[derive(Debug, Clone)]
pub struct Job {
    pub plugin: String,
    pub name: String,
    pub schedule: Schedule,
}

pub fn minute_now() -> i64 {
    now().div_euclid(60)
}

/// Claims and queues the runs of `jobs` due at `minute`. Returns the jobs
/// this node claimed.
pub async fn fire_due(
    db: &Db,
    messaging: &Messaging,
    jobs: &[Job],
    minute: i64,
    utc_offset_minutes: i32,
    node: &str,
) -> sqlx::Result<Vec<Job>> {
    let mut claimed = Vec::new();
    for job in jobs {
        if !job.schedule.matches(minute, utc_offset_minutes) {
            continue;
        }
        let mut tx = crate::db::begin_write(db).await?;
        let inserted = sqlx::query(
            "INSERT INTO job_runs (plugin_id, job, scheduled_for, node, claimed_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (plugin_id, job, scheduled_for) DO NOTHING",
        )
        .bind(&job.plugin)
        .bind(&job.name)
        .bind(minute * 60)
        .bind(node)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        let payload = serde_json::json!({
            "job": job.name,
            "scheduled_for": minute * 60,
        });
        messaging
            .enqueue_in(
                &mut tx,
                &job.plugin,
                Message {
                    topic: format!("kernel.job.{}", job.name),
                    key: Some(format!("kernel.job.{}", job.name)),
                    org: None,
                    payload: payload.to_string().into_bytes(),
                    idempotency_key: Some(format!("job:{}:{}:{minute}", job.plugin, job.name)),
                },
            )
            .await?;
        tx.commit().await?;
        tracing::info!(plugin = %job.plugin, job = %job.name, minute, "scheduled job claimed");
        claimed.push(job.clone());
    }
    if !claimed.is_empty() {
        messaging.wake();
    }
    Ok(claimed)
}

/// The scheduler loop of one node. `jobs` lists the current jobs of
/// enabled plugins each time it is called.
pub async fn run(
    db: Db,
    messaging: Arc<Messaging>,
    jobs: impl Fn() -> Vec<Job> + Send + 'static,
    utc_offset_minutes: i32,
    node: String,
) {
    let mut last_done = minute_now() - 1;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let current = minute_now();
        if current <= last_done {
            continue;
        }
        let list = jobs();
        let from = (last_done + 1).max(current - CATCH_UP_MINUTES);
        let mut ok = true;
        for minute in from..=current {
            if let Err(e) =
                fire_due(&db, &messaging, &list, minute, utc_offset_minutes, &node).await
            {
                tracing::error!(error = %e, minute, "scheduling jobs failed; will retry");
                ok = false;
                break;
            }
        }
        if ok {
            last_done = current;
        }
    }
}
