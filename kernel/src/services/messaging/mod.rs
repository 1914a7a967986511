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
//!
//! With NATS JetStream configured (`jetstream.rs`) the events table is also
//! an outbox: a new event is marked `streamed = 0` in its publishing
//! transaction, a relay publishes it to the stream and marks it, and the
//! node that takes it from the stream's shared consumer claims and delivers
//! that event's deliveries here (`dispatch_event`). The claim is what makes
//! a delivery happen once, so both paths can run at the same time; while
//! the stream is live the poller leaves first attempts younger than
//! `STREAM_GRACE_MS` to it, and it keeps doing retries, deliveries held back
//! for order, and everything when NATS is down.

pub mod jetstream;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::core::error::ServiceError;
use crate::db::{Db, Dialect, now, now_ms};

/// A claimed delivery is someone else's to retry after this long.
const LEASE_MS: i64 = 120_000;
/// How often a dispatcher looks for work published on other nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const CLAIM_BATCH: i64 = 16;
/// While JetStream carries events, how long the poller leaves a new
/// delivery to the node that takes it from the stream.
pub const STREAM_GRACE_MS: i64 = 2_000;
/// Events the relay publishes per database round.
pub const RELAY_BATCH: i64 = 64;
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

/// An event a plugin published, with where it went: what a plugin's
/// author reads to see their events without opening the database.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub key: Option<String>,
    /// The org the kernel stamped on it.
    pub org_id: Option<String>,
    pub published_at: i64,
    pub payload: Option<String>,
    pub deliveries: Vec<DeliveryState>,
}

/// One subscriber's delivery of an event.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryState {
    pub subscriber: String,
    /// `pending`, `done` or `dead`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at: i64,
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

/// First topic segments no plugin publishes under: the kernel's own events
/// (`kernel.job.…`, `kernel.approval.…`) and names the platform keeps.
/// Plugin ids cannot be these either (`package::is_reserved_name`), so the
/// own-prefix rule already covers them; this keeps it so if that changes.
pub fn is_reserved_prefix(topic: &str) -> bool {
    let first = topic.split('.').next().unwrap_or_default();
    crate::core::ids::KERNEL_NAMES.contains(&first)
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

/// An event the relay has yet to publish to JetStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub source: String,
    pub key: Option<String>,
}

/// Where the relay sends events: JetStream (`jetstream.rs`). True once the
/// stream has acknowledged the event.
pub trait Publisher: Send + Sync {
    fn publish<'a>(&'a self, event: &'a Outgoing) -> futures_util::future::BoxFuture<'a, bool>;
}

/// What one relay round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Events the stream acknowledged (and are now marked streamed).
    pub published: usize,
    /// A publish failed; the rest wait for the next round.
    pub failed: bool,
    /// The batch was full: more may be waiting.
    pub more: bool,
}

pub struct Messaging {
    db: Db,
    dialect: Dialect,
    bus: Arc<crate::cluster::Bus>,
    retries: crate::core::config::EventsConfig,
    /// New events go through the JetStream outbox (`streamed = 0`).
    streaming: bool,
    /// This node's JetStream consumer is receiving (see `stream_live`).
    stream_up: std::sync::atomic::AtomicBool,
    /// Wakes this node's relay after a commit that added events.
    pub outbox: tokio::sync::Notify,
}

impl Messaging {
    /// `streaming`: JetStream is configured, so new events are queued for
    /// the relay.
    pub fn new(
        db: Db,
        retries: crate::core::config::EventsConfig,
        bus: Arc<crate::cluster::Bus>,
        streaming: bool,
    ) -> Self {
        let dialect = Dialect::of(&db);
        Messaging {
            db,
            dialect,
            bus,
            retries,
            streaming,
            stream_up: std::sync::atomic::AtomicBool::new(false),
            outbox: tokio::sync::Notify::new(),
        }
    }

    /// Whether JetStream is carrying events to this node right now: the
    /// consumer receives and the connection is up. When not, the poller
    /// takes every due delivery at once.
    pub fn stream_live(&self) -> bool {
        self.streaming
            && self.stream_up.load(std::sync::atomic::Ordering::Relaxed)
            && self.bus.is_up()
    }

    pub fn set_stream_up(&self, up: bool) {
        self.stream_up
            .store(up, std::sync::atomic::Ordering::Relaxed);
    }

    /// Publishes `message` from plugin `source` to every plugin granted a
    /// matching subscription whose lane the event is in. `stamped_org` is
    /// the org the publishing call acted at, as the kernel decided it (the
    /// caller checked it is in the publisher's reach); it is stored as the
    /// event's org whatever the payload says, and a subscriber installed for
    /// a subtree gets the event only when that org lies in its subtree,
    /// unless the platform administrator granted it events beyond. Returns
    /// the event id (the earlier event's id when the idempotency key was
    /// used before).
    pub async fn publish(
        &self,
        source: &str,
        stamped_org: &str,
        message: Message,
        orgs: &crate::core::scope::OrgIndex,
    ) -> Result<String, ServiceError> {
        if !valid_topic(&message.topic)
            || !message
                .topic
                .strip_prefix(source)
                .is_some_and(|rest| rest.starts_with('.'))
        {
            return Err(ServiceError::refused(format!(
                "topic {:?}: a plugin publishes on topics that start with its id and a dot ({source}.…), \
                 in lower-case segments",
                message.topic
            )));
        }
        if is_reserved_prefix(&message.topic) {
            return Err(ServiceError::refused(format!(
                "topic {:?}: that prefix is the kernel's",
                message.topic
            )));
        }
        let subscribers = self
            .subscribers_of(&message.topic, stamped_org, orgs)
            .await?;
        let message = Message {
            org: Some(stamped_org.to_string()),
            ..message
        };
        self.insert(source, stamped_org, message, &subscribers)
            .await
    }

    /// Sends a kernel event to one plugin only (scheduled jobs), inside the
    /// caller's transaction.
    pub async fn enqueue_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        subscriber: &str,
        message: Message,
    ) -> sqlx::Result<String> {
        let id = crate::core::ids::new_record_id();
        let seq = self
            .insert_event(tx, &id, KERNEL_SOURCE, None, &message, self.streaming)
            .await?;
        self.insert_delivery(tx, seq, subscriber, message.key.as_deref())
            .await?;
        Ok(id)
    }

    /// Nudges the dispatchers, this node's and (over NATS) the others',
    /// after a commit that added work.
    pub fn wake(&self) {
        if self.streaming {
            self.outbox.notify_one();
        }
        self.bus.signal(crate::cluster::EVENTS);
    }

    /// The plugins that receive an event on `topic` stamped at `org`: a
    /// matching grant, and the org inside the subscriber's install subtree
    /// (a platform-wide plugin's subtree is everything) unless its grant
    /// reaches beyond it.
    async fn subscribers_of(
        &self,
        topic: &str,
        org: &str,
        orgs: &crate::core::scope::OrgIndex,
    ) -> sqlx::Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT g.plugin_id, g.topic, g.beyond_subtree, p.org_id
             FROM subscription_grants g JOIN plugins p ON p.id = g.plugin_id",
        )
        .fetch_all(&self.db)
        .await?;
        let mut out: Vec<String> = rows
            .iter()
            .filter(|r| pattern_matches(&r.get::<String, _>(1), topic))
            .filter(|r| {
                let beyond = r.get::<i64, _>(2) != 0;
                let install: Option<String> = r.get(3);
                beyond || install.is_none_or(|at| orgs.is_within(org, &at))
            })
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
    ) -> Result<String, ServiceError> {
        if message.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(ServiceError::refused(format!(
                "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                message.payload.len()
            )));
        }
        if let Some(key) = &message.idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(ServiceError::invalid("idempotency_key", "1-200 bytes"));
            }
            if let Some(id) = self.existing(source, key).await? {
                return Ok(id);
            }
        }
        let id = crate::core::ids::new_record_id();
        let mut tx = crate::db::begin_write(&self.db).await?;
        let seq = match self
            .insert_event(
                &mut tx,
                &id,
                source,
                Some(default_org),
                &message,
                // An event nobody subscribes to has nothing to carry.
                self.streaming && !subscribers.is_empty(),
            )
            .await
        {
            Ok(seq) => seq,
            // A concurrent publish with the same idempotency key won.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let key = message.idempotency_key.as_deref().unwrap_or_default();
                return match self.existing(source, key).await? {
                    Some(id) => Ok(id),
                    None => Err(ServiceError::Conflict("duplicate event".into())),
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
        tx: &mut sqlx::AnyConnection,
        id: &str,
        source: &str,
        default_org: Option<&str>,
        message: &Message,
        stream: bool,
    ) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO events (id, source, topic, event_key, org_id, payload, idempotency_key,
                                 published_at, streamed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq",
        )
        .bind(id)
        .bind(source)
        .bind(&message.topic)
        .bind(&message.key)
        .bind(message.org.as_deref().or(default_org))
        .bind(&message.payload)
        .bind(&message.idempotency_key)
        .bind(now())
        .bind(if stream { 0_i64 } else { 1 })
        .fetch_one(&mut *tx)
        .await
    }

    async fn insert_delivery(
        &self,
        tx: &mut sqlx::AnyConnection,
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
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Claims up to a batch of due deliveries for this node: any (the
    /// poller), or those of the event with id `only` (taken from JetStream).
    pub async fn claim(&self, only: Option<&str>) -> sqlx::Result<Vec<(String, Delivered)>> {
        let now = now_ms();
        // First attempts younger than the grace are the stream's while it
        // is live; retries (attempts > 0) are always the poller's.
        let fresh_until = if only.is_none() && self.stream_live() {
            now - STREAM_GRACE_MS
        } else {
            now
        };
        let only_event = if only.is_some() {
            " AND d.event_seq = (SELECT seq FROM events WHERE id = $6)"
        } else {
            ""
        };
        let lock = self.dialect.for_update_skip_locked();
        // Null keys are unordered; `IS` compares them in SQLite, so the
        // NOT EXISTS names the key explicitly.
        let sql = format!(
            "UPDATE deliveries SET lease_until_ms = $1, attempts = attempts + 1, updated_at = $2
             WHERE (subscriber, event_seq) IN (
                 SELECT d.subscriber, d.event_seq FROM deliveries d
                 WHERE d.status = 'pending' AND d.next_at_ms <= $3 AND d.lease_until_ms < $3
                   AND (d.attempts > 0 OR d.next_at_ms <= $5){only_event}
                   AND NOT EXISTS (
                       SELECT 1 FROM deliveries e
                       WHERE e.subscriber = d.subscriber AND d.event_key IS NOT NULL
                         AND e.event_key = d.event_key AND e.status = 'pending'
                         AND e.event_seq < d.event_seq)
                 ORDER BY d.event_seq LIMIT $4{lock})
             RETURNING subscriber, event_seq, attempts"
        );
        let mut query = sqlx::query(&sql)
            .bind(now + LEASE_MS)
            .bind(crate::db::now())
            .bind(now)
            .bind(CLAIM_BATCH)
            .bind(fresh_until);
        if let Some(id) = only {
            query = query.bind(id);
        }
        let claimed = query.fetch_all(&self.db).await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        // One query for the whole batch's events, not one per delivery.
        let sql = format!(
            "SELECT seq, id, topic, event_key, org_id, source, payload FROM events WHERE seq IN ({})",
            crate::db::Marks::new(self.dialect).list(claimed.len())
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
        self.dispatch(None, sink).await
    }

    /// Delivers what is due of one event (its id from JetStream): each
    /// delivery is claimed as the poller would, so one already taken, done,
    /// or waiting behind an earlier one with its key is left alone.
    pub async fn dispatch_event(&self, id: &str, sink: &dyn EventSink) -> sqlx::Result<usize> {
        self.dispatch(Some(id), sink).await
    }

    async fn dispatch(&self, only: Option<&str>, sink: &dyn EventSink) -> sqlx::Result<usize> {
        let mut handled = 0;
        loop {
            let batch = self.claim(only).await?;
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

    /// Events `source` published, newest first (before `before_seq` when
    /// given, `topic` only when given), each with its deliveries.
    pub async fn published(
        &self,
        source: &str,
        topic: Option<&str>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<Vec<Published>> {
        let rows = sqlx::query(
            "SELECT seq, id, topic, event_key, org_id, published_at, payload FROM events
             WHERE source = $1 AND ($2 IS NULL OR topic = $2) AND ($3 IS NULL OR seq < $3)
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(source)
        .bind(topic)
        .bind(before_seq)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        let mut events: Vec<Published> = rows
            .iter()
            .map(|r| Published {
                seq: r.get(0),
                id: r.get(1),
                topic: r.get(2),
                key: r.get(3),
                org_id: r.get(4),
                published_at: r.get(5),
                payload: String::from_utf8(r.get::<Vec<u8>, _>(6)).ok(),
                deliveries: Vec::new(),
            })
            .collect();
        let (Some(newest), Some(oldest)) = (events.first(), events.last()) else {
            return Ok(events);
        };
        let deliveries = sqlx::query(
            "SELECT event_seq, subscriber, status, attempts, last_error, updated_at FROM deliveries
             WHERE event_seq BETWEEN $1 AND $2 ORDER BY subscriber",
        )
        .bind(oldest.seq)
        .bind(newest.seq)
        .fetch_all(&self.db)
        .await?;
        for r in deliveries {
            let seq: i64 = r.get(0);
            if let Some(event) = events.iter_mut().find(|e| e.seq == seq) {
                event.deliveries.push(DeliveryState {
                    subscriber: r.get(1),
                    status: r.get(2),
                    attempts: r.get(3),
                    last_error: r.get(4),
                    updated_at: r.get(5),
                });
            }
        }
        Ok(events)
    }

    /// Puts a dead delivery back in line with a fresh set of attempts.
    /// (The event is not sent through JetStream again: the replayed
    /// delivery is due for the poller at once, past the stream's grace.)
    /// Inside the caller's audited write; the dispatcher wakes once it
    /// committed (`Messaging::wake`).
    pub async fn replay(
        conn: &mut sqlx::AnyConnection,
        subscriber: &str,
        event_seq: i64,
    ) -> sqlx::Result<bool> {
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_at_ms = $1,
                 lease_until_ms = 0, updated_at = $2
             WHERE subscriber = $3 AND event_seq = $4 AND status = 'dead'",
        )
        .bind(now_ms() - STREAM_GRACE_MS)
        .bind(now())
        .bind(subscriber)
        .bind(event_seq)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// One relay round: takes up to `RELAY_BATCH` events not yet streamed,
    /// oldest first, hands each to `publish` (true once the stream has
    /// acknowledged it) and marks those acknowledged. On PostgreSQL the rows
    /// are locked (`SKIP LOCKED`) so two nodes' relays take different
    /// events; were one to publish an event twice anyway (a crash between
    /// publish and mark), JetStream drops the copy by its `Nats-Msg-Id`
    /// within the stream's duplicate window, and a later copy only finds
    /// its deliveries done.
    pub async fn relay(&self, publisher: &dyn Publisher) -> sqlx::Result<Relayed> {
        async fn take(conn: &mut sqlx::AnyConnection, lock: &str) -> sqlx::Result<Vec<Outgoing>> {
            let rows = sqlx::query(&format!(
                "SELECT seq, id, topic, source, event_key FROM events WHERE streamed = 0
                 ORDER BY seq LIMIT $1{lock}"
            ))
            .bind(RELAY_BATCH)
            .fetch_all(conn)
            .await?;
            Ok(rows
                .iter()
                .map(|r| Outgoing {
                    seq: r.get(0),
                    id: r.get(1),
                    topic: r.get(2),
                    source: r.get(3),
                    key: r.get(4),
                })
                .collect())
        }
        async fn mark(conn: &mut sqlx::AnyConnection, seqs: &[i64]) -> sqlx::Result<()> {
            if seqs.is_empty() {
                return Ok(());
            }
            let dialect = Dialect::of_backend(conn.backend_name());
            let sql = format!(
                "UPDATE events SET streamed = 1 WHERE seq IN ({})",
                crate::db::Marks::new(dialect).list(seqs.len())
            );
            let mut query = sqlx::query(&sql);
            for seq in seqs {
                query = query.bind(*seq);
            }
            query.execute(conn).await?;
            Ok(())
        }
        async fn send(batch: &[Outgoing], publisher: &dyn Publisher) -> (Vec<i64>, bool) {
            let mut sent = Vec::with_capacity(batch.len());
            for event in batch {
                if !publisher.publish(event).await {
                    // Stop here: later events wait rather than overtake.
                    return (sent, true);
                }
                sent.push(event.seq);
            }
            (sent, false)
        }
        let (sent, failed, full) = match self.dialect {
            Dialect::Postgres => {
                let mut tx = self.db.begin().await?;
                let batch = take(&mut tx, " FOR UPDATE SKIP LOCKED").await?;
                let (sent, failed) = send(&batch, publisher).await;
                mark(&mut tx, &sent).await?;
                tx.commit().await?;
                (sent, failed, batch.len() as i64 == RELAY_BATCH)
            }
            // One node: no one to race, and no write lock held while
            // waiting on NATS.
            Dialect::Sqlite => {
                let mut conn = self.db.acquire().await?;
                let batch = take(&mut conn, "").await?;
                let (sent, failed) = send(&batch, publisher).await;
                mark(&mut conn, &sent).await?;
                (sent, failed, batch.len() as i64 == RELAY_BATCH)
            }
        };
        Ok(Relayed {
            published: sent.len(),
            failed,
            more: full && !failed,
        })
    }

    /// Grants `plugin` the subscriptions it asked for (`topics` ⊆ manifest),
    /// for events of its own subtree.
    pub async fn grant(&self, plugin: &str, topics: &[String], by: &str) -> sqlx::Result<()> {
        let mut conn = self.db.acquire().await?;
        Messaging::grant_with(&mut conn, plugin, topics, by, false).await
    }

    /// As [`Messaging::grant`]; `beyond_subtree` also lets a plugin
    /// installed for a subtree receive events stamped outside it, which
    /// only the platform administrator decides (the caller checks).
    pub async fn grant_with(
        conn: &mut sqlx::AnyConnection,
        plugin: &str,
        topics: &[String],
        by: &str,
        beyond_subtree: bool,
    ) -> sqlx::Result<()> {
        for topic in topics {
            sqlx::query(
                "INSERT INTO subscription_grants (plugin_id, topic, granted_by, granted_at, beyond_subtree)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (plugin_id, topic) DO UPDATE SET beyond_subtree = excluded.beyond_subtree,
                     granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            )
            .bind(plugin)
            .bind(topic)
            .bind(by)
            .bind(now())
            .bind(i64::from(beyond_subtree))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The granted topics of `plugin` that reach beyond its subtree.
    pub async fn granted_beyond(&self, plugin: &str) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT topic FROM subscription_grants WHERE plugin_id = $1 AND beyond_subtree <> 0
             ORDER BY topic",
        )
        .bind(plugin)
        .fetch_all(&self.db)
        .await
    }

    pub async fn revoke(
        conn: &mut sqlx::AnyConnection,
        plugin: &str,
        topic: Option<&str>,
    ) -> sqlx::Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM subscription_grants WHERE plugin_id = $1 AND ($2 IS NULL OR topic = $2)",
        )
        .bind(plugin)
        .bind(topic)
        .execute(&mut *conn)
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
