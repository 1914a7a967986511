//! Events between plugins, durable in the kernel's database.
//!
//! Publishing writes the event and one delivery row per granted subscriber
//! in one transaction. Every node runs a dispatcher that claims due
//! deliveries with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so two
//! nodes never claim the same row), calls the subscriber's event handler,
//! and marks the row done, or schedules a retry with exponential backoff,
//! or after the last attempt moves it to the dead-letter list. A delivery
//! waits while an earlier delivery with the same key to the same subscriber
//! is pending: order per key holds across retries and nodes.
//!
//! Delivery is at least once: a node that dies mid-delivery loses its lease
//! and another node delivers again, with the same event id.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::db::{Db, Dialect, now, now_ms};

/// A claimed delivery is someone else's to retry after this long.
const LEASE_MS: i64 = 120_000;
/// How often a dispatcher looks for work published on other nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const CLAIM_BATCH: i64 = 16;
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The publisher id events from the kernel carry (scheduled jobs).
pub const KERNEL_SOURCE: &str = "kernel";

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub key: Option<String>,
    pub org: Option<String>,
    pub payload: Vec<u8>,
    pub idempotency_key: Option<String>,
}

/// One event as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub key: Option<String>,
    pub org: Option<String>,
    pub source: String,
    pub payload: Vec<u8>,
    pub attempt: i64,
}

/// A delivery as admins see it on the dead-letter list.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub subscriber: String,
    pub event_seq: i64,
    pub event_id: String,
    pub topic: String,
    pub source: String,
    pub key: Option<String>,
    pub org_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub published_at: i64,
    pub failed_at: i64,
    /// The payload as text when it is UTF-8, for reading.
    pub payload: Option<String>,
}

/// Where the dispatcher hands events; the kernel calls the plugin's
/// event handler. `Err` asks for a retry.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(
        &self,
        subscriber: &str,
        event: Delivered,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>>;
}

/// A topic: dot-separated segments of `[a-z0-9_-]`, at most 128 bytes.
pub fn valid_topic(topic: &str) -> bool {
    topic.len() <= 128
        && !topic.is_empty()
        && topic.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// A subscription: a topic, or a prefix ending in `.*` (`vehicles.*`).
pub fn valid_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => valid_topic(prefix),
        None => valid_topic(pattern),
    }
}

pub fn pattern_matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => topic
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == topic,
    }
}

/// Exponential backoff with a cap: base, 2×base, 4×base … 10 min.
pub fn backoff_ms(base_ms: i64, attempt: i64) -> i64 {
    let exp = attempt.clamp(1, 20) - 1;
    (base_ms.max(1) << exp).min(600_000)
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Invalid(String),
    #[error("messaging unavailable")]
    Unavailable(#[from] sqlx::Error),
}

pub struct Messaging {
    db: Db,
    dialect: Dialect,
    bus: Arc<crate::bus::Bus>,
    retries: crate::config::EventsConfig,
}

impl Messaging {
    pub fn new(db: Db, retries: crate::config::EventsConfig, bus: Arc<crate::bus::Bus>) -> Self {
        let dialect = Dialect::of(&db);
        Messaging {
            db,
            dialect,
            bus,
            retries,
        }
    }

    /// Publishes `message` from plugin `source` to every plugin granted a
    /// matching subscription. Returns the event id (the earlier event's id
    /// when the idempotency key was used before).
    pub async fn publish(
        &self,
        source: &str,
        default_org: &str,
        message: Message,
    ) -> Result<String, PublishError> {
        if !valid_topic(&message.topic)
            || !message
                .topic
                .strip_prefix(source)
                .is_some_and(|rest| rest.starts_with('.'))
        {
            return Err(PublishError::Invalid(format!(
                "topic {:?}: a plugin publishes on topics that start with its id and a dot ({source}.…), \
                 in lower-case segments",
                message.topic
            )));
        }
        let subscribers = self.subscribers_of(&message.topic).await?;
        self.insert(source, default_org, message, &subscribers)
            .await
    }

    /// Sends a kernel event to one plugin only (scheduled jobs), inside the
    /// caller's transaction.
    pub async fn enqueue_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        subscriber: &str,
        message: Message,
    ) -> sqlx::Result<String> {
        let id = crate::storage::new_record_id();
        let seq = self
            .insert_event(tx, &id, KERNEL_SOURCE, None, &message)
            .await?;
        self.insert_delivery(tx, seq, subscriber, message.key.as_deref())
            .await?;
        Ok(id)
    }

    /// Nudges the dispatchers, this node's and (over NATS) the others',
    /// after a commit that added work.
    pub fn wake(&self) {
        self.bus.signal(crate::bus::EVENTS);
    }

    async fn subscribers_of(&self, topic: &str) -> sqlx::Result<Vec<String>> {
        let rows = sqlx::query("SELECT plugin_id, topic FROM subscription_grants")
            .fetch_all(&self.db)
            .await?;
        let mut out: Vec<String> = rows
            .iter()
            .filter(|r| pattern_matches(&r.get::<String, _>(1), topic))
            .map(|r| r.get::<String, _>(0))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn insert(
        &self,
        source: &str,
        default_org: &str,
        message: Message,
        subscribers: &[String],
    ) -> Result<String, PublishError> {
        if message.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(PublishError::Invalid(format!(
                "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                message.payload.len()
            )));
        }
        if let Some(key) = &message.idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(PublishError::Invalid("idempotency key: 1-200 bytes".into()));
            }
            if let Some(id) = self.existing(source, key).await? {
                return Ok(id);
            }
        }
        let id = crate::storage::new_record_id();
        let mut tx = crate::db::begin_write(&self.db).await?;
        let seq = match self
            .insert_event(&mut tx, &id, source, Some(default_org), &message)
            .await
        {
            Ok(seq) => seq,
            // A concurrent publish with the same idempotency key won.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let key = message.idempotency_key.as_deref().unwrap_or_default();
                return match self.existing(source, key).await? {
                    Some(id) => Ok(id),
                    None => Err(PublishError::Invalid("duplicate event".into())),
                };
            }
            Err(e) => return Err(e.into()),
        };
        for subscriber in subscribers {
            self.insert_delivery(&mut tx, seq, subscriber, message.key.as_deref())
                .await?;
        }
        tx.commit().await?;
        if !subscribers.is_empty() {
            self.wake();
        }
        Ok(id)
    }

    async fn existing(&self, source: &str, key: &str) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT id FROM events WHERE source = $1 AND idempotency_key = $2")
            .bind(source)
            .bind(key)
            .fetch_optional(&self.db)
            .await
    }

    async fn insert_event(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
        source: &str,
        default_org: Option<&str>,
        message: &Message,
    ) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO events (id, source, topic, event_key, org_id, payload, idempotency_key, published_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
        )
        .bind(id)
        .bind(source)
        .bind(&message.topic)
        .bind(&message.key)
        .bind(message.org.as_deref().or(default_org))
        .bind(&message.payload)
        .bind(&message.idempotency_key)
        .bind(now())
        .fetch_one(&mut **tx)
        .await
    }

    async fn insert_delivery(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        seq: i64,
        subscriber: &str,
        key: Option<&str>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO deliveries (event_seq, subscriber, event_key, status, next_at_ms, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $5)",
        )
        .bind(seq)
        .bind(subscriber)
        .bind(key)
        .bind(now_ms())
        .bind(now())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Claims up to a batch of due deliveries for this node.
    pub async fn claim(&self) -> sqlx::Result<Vec<(String, Delivered)>> {
        let now = now_ms();
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        // Null keys are unordered; `IS` compares them in SQLite, so the
        // NOT EXISTS names the key explicitly.
        let claimed = sqlx::query(&format!(
            "UPDATE deliveries SET lease_until_ms = $1, attempts = attempts + 1, updated_at = $2
             WHERE (subscriber, event_seq) IN (
                 SELECT d.subscriber, d.event_seq FROM deliveries d
                 WHERE d.status = 'pending' AND d.next_at_ms <= $3 AND d.lease_until_ms < $3
                   AND NOT EXISTS (
                       SELECT 1 FROM deliveries e
                       WHERE e.subscriber = d.subscriber AND d.event_key IS NOT NULL
                         AND e.event_key = d.event_key AND e.status = 'pending'
                         AND e.event_seq < d.event_seq)
                 ORDER BY d.event_seq LIMIT $4{lock})
             RETURNING subscriber, event_seq, attempts"
        ))
        .bind(now + LEASE_MS)
        .bind(crate::db::now())
        .bind(now)
        .bind(CLAIM_BATCH)
        .fetch_all(&self.db)
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // One query for the whole batch's events, not one per delivery.
        let placeholders: Vec<String> = (1..=claimed.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT seq, id, topic, event_key, org_id, source, payload FROM events WHERE seq IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for row in &claimed {
            query = query.bind(row.get::<i64, _>(1));
        }
        let events: std::collections::HashMap<i64, sqlx::any::AnyRow> = query
            .fetch_all(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r))
            .collect();
        let mut out = Vec::with_capacity(claimed.len());
        for row in claimed {
            let subscriber: String = row.get(0);
            let seq: i64 = row.get(1);
            let attempt: i64 = row.get(2);
            let Some(event) = events.get(&seq) else {
                continue;
            };
            out.push((
                subscriber,
                Delivered {
                    seq,
                    id: event.get(1),
                    topic: event.get(2),
                    key: event.get(3),
                    org: event.get(4),
                    source: event.get(5),
                    payload: event.get(6),
                    attempt,
                },
            ));
        }
        out.sort_by_key(|(_, e)| e.seq);
        Ok(out)
    }

    /// Records the outcome of one delivery.
    pub async fn settle(
        &self,
        subscriber: &str,
        event: &Delivered,
        outcome: Result<(), String>,
    ) -> sqlx::Result<()> {
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE deliveries SET status = 'done', lease_until_ms = 0, last_error = NULL,
                         updated_at = $1
                     WHERE subscriber = $2 AND event_seq = $3",
                )
                .bind(now())
                .bind(subscriber)
                .bind(event.seq)
                .execute(&self.db)
                .await?;
            }
            Err(error) => {
                let dead = event.attempt >= self.retries.max_attempts;
                let mut error = error;
                error.truncate(2000);
                tracing::warn!(subscriber, topic = %event.topic, event = %event.id,
                    attempt = event.attempt, dead, error = %error, "event delivery failed");
                sqlx::query(
                    "UPDATE deliveries SET status = $1, lease_until_ms = 0, last_error = $2,
                         next_at_ms = $3, updated_at = $4
                     WHERE subscriber = $5 AND event_seq = $6",
                )
                .bind(if dead { "dead" } else { "pending" })
                .bind(&error)
                .bind(now_ms() + backoff_ms(self.retries.retry_base_ms, event.attempt))
                .bind(now())
                .bind(subscriber)
                .bind(event.seq)
                .execute(&self.db)
                .await?;
            }
        }
        Ok(())
    }

    /// Claims and delivers until nothing is due; returns how many it handled.
    pub async fn dispatch_once(&self, sink: &dyn EventSink) -> sqlx::Result<usize> {
        let mut handled = 0;
        loop {
            let batch = self.claim().await?;
            if batch.is_empty() {
                return Ok(handled);
            }
            for (subscriber, event) in batch {
                let outcome = sink.deliver(&subscriber, event.clone()).await;
                self.settle(&subscriber, &event, outcome).await?;
                handled += 1;
            }
        }
    }

    /// The dispatcher loop of one node; runs until the process ends.
    pub async fn run(self: Arc<Self>, sink: Arc<dyn EventSink>) {
        loop {
            if let Err(e) = self.dispatch_once(sink.as_ref()).await {
                tracing::error!(error = %e, "event dispatcher failed; retrying");
            }
            let _ = tokio::time::timeout(POLL_INTERVAL, self.bus.events.notified()).await;
        }
    }

    pub async fn dead_letters(&self, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT d.subscriber, d.event_seq, e.id, e.topic, e.source, e.event_key, e.org_id,
                    d.attempts, d.last_error, e.published_at, d.updated_at, e.payload
             FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.status = 'dead' ORDER BY d.updated_at DESC, d.event_seq DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                subscriber: r.get(0),
                event_seq: r.get(1),
                event_id: r.get(2),
                topic: r.get(3),
                source: r.get(4),
                key: r.get(5),
                org_id: r.get(6),
                attempts: r.get(7),
                last_error: r.get(8),
                published_at: r.get(9),
                failed_at: r.get(10),
                payload: String::from_utf8(r.get::<Vec<u8>, _>(11)).ok(),
            })
            .collect())
    }

    /// Puts a dead delivery back in line with a fresh set of attempts.
    pub async fn replay(&self, subscriber: &str, event_seq: i64) -> sqlx::Result<bool> {
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_at_ms = $1,
                 lease_until_ms = 0, updated_at = $2
             WHERE subscriber = $3 AND event_seq = $4 AND status = 'dead'",
        )
        .bind(now_ms())
        .bind(now())
        .bind(subscriber)
        .bind(event_seq)
        .execute(&self.db)
        .await?
        .rows_affected();
        if n > 0 {
            self.wake();
        }
        Ok(n > 0)
    }

    /// Grants `plugin` the subscriptions it asked for (`topics` ⊆ manifest).
    pub async fn grant(&self, plugin: &str, topics: &[String], by: &str) -> sqlx::Result<()> {
        for topic in topics {
            sqlx::query(
                "INSERT INTO subscription_grants (plugin_id, topic, granted_by, granted_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (plugin_id, topic) DO NOTHING",
            )
            .bind(plugin)
            .bind(topic)
            .bind(by)
            .bind(now())
            .execute(&self.db)
            .await?;
        }
        Ok(())
    }

    pub async fn revoke(&self, plugin: &str, topic: Option<&str>) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM subscription_grants WHERE plugin_id = $1 AND ($2 IS NULL OR topic = $2)",
        )
        .bind(plugin)
        .bind(topic)
        .execute(&self.db)
        .await?
        .rows_affected())
    }

    pub async fn granted(&self, plugin: &str) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT topic FROM subscription_grants WHERE plugin_id = $1 ORDER BY topic",
        )
        .bind(plugin)
        .fetch_all(&self.db)
        .await
    }

    /// Delivery counts by status, for `/metrics` and the admin view.
    pub async fn counts(&self) -> sqlx::Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
            .fetch_all(&self.db)
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_patterns() {
        assert!(valid_topic("assets.registered"));
        assert!(valid_topic("vehicles.scrapped-v2"));
        for bad in ["", "Assets.x", "a..b", ".a", "a.", "a b", "a.*"] {
            assert!(!valid_topic(bad), "{bad:?}");
        }
        assert!(valid_pattern("vehicles.*"));
        assert!(pattern_matches("vehicles.*", "vehicles.scrapped"));
        assert!(pattern_matches("vehicles.*", "vehicles.a.b"));
        assert!(!pattern_matches("vehicles.*", "vehiclesx.scrapped"));
        assert!(!pattern_matches("vehicles.*", "vehicles"));
        assert!(pattern_matches("assets.registered", "assets.registered"));
        assert!(!pattern_matches("assets.registered", "assets.registered.x"));
    }

    #[test]
    fn backoff_grows_then_caps() {
        assert_eq!(backoff_ms(1000, 1), 1000);
        assert_eq!(backoff_ms(1000, 2), 2000);
        assert_eq!(backoff_ms(1000, 4), 8000);
        assert_eq!(backoff_ms(1000, 30), 600_000);
        assert_eq!(backoff_ms(100, 3), 400);
    }
}
