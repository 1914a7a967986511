//! What live streams read (`GET /api/v1/telemetry/stream`,
//! `http/telemetry.rs`): latest values and alerts of one plugin's devices
//! stored since a moment, in the caller's reach, and what wakes a stream.
//!
//! Nodes share the database, not memory: a stream on one node must see
//! what another node stored. So a stream polls `tm_latest` and `tm_alerts`
//! by the time each row was stored (`updated_at`, `created_at`, migration
//! 18: the storing node's clock, not the device's, so a device whose clock
//! lags is not missed), each second; a batch this node stores wakes it at
//! once ([`Live::changed`]). A row is stamped just before its transaction
//! commits, so a poll may read a moment before rows stamped earlier become
//! visible: each poll reads again [`OVERLAP_MS`] back, and the stream skips
//! what it sent already (`http/telemetry.rs` `Cursor`).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;
use tokio::sync::watch;

use super::{Quality, Result, Telemetry};
use crate::core::scope::Scope;
use crate::core::streams::{StreamSlot, StreamSlots};

/// How far back each poll reads again: covers a batch's time between its
/// stamp and its commit, and the clocks of nodes that differ by less.
pub const OVERLAP_MS: i64 = 3_000;
/// Rows one poll reads at most; a full page is followed at once by the next.
pub const PAGE: i64 = 1_000;
/// Devices a stream may name.
pub const MAX_DEVICES: usize = 500;

/// Streams' wake-ups, and their slots per user on this node with the
/// node's shutdown (`core/streams.rs`).
pub struct Live {
    changes: watch::Sender<u64>,
    slots: Arc<StreamSlots>,
}

/// One open stream of one user.
pub type Slot = StreamSlot;

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    pub fn new() -> Self {
        Live {
            changes: watch::channel(0).0,
            slots: Arc::new(StreamSlots::default()),
        }
    }

    /// Something was stored on this node: wake the streams.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The node is shutting down: every stream ends.
    pub fn close(&self) {
        self.slots.close();
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.slots.closing()
    }

    /// A stream slot for `user`, none when they hold `max` already (or the
    /// node is shutting down); the slot frees itself when dropped.
    pub fn open(&self, user: &str, max: u32) -> Option<Slot> {
        self.slots.open(user, max)
    }

    /// Open streams on this node, all users.
    pub fn open_streams(&self) -> u32 {
        self.slots.open_streams()
    }
}

/// A latest value as a stream sends it, with when it was stored.
#[derive(Debug, Clone, Serialize)]
pub struct LiveLatest {
    pub device: String,
    pub channel: String,
    pub at: i64,
    pub value: f64,
    pub quality: Quality,
    #[serde(skip)]
    pub stored_at: i64,
}

/// An alert as a stream sends it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveAlert {
    pub id: i64,
    pub rule: String,
    pub device: String,
    pub org: String,
    pub at: i64,
    pub detail: Value,
    #[serde(skip)]
    pub stored_at: i64,
}

/// One poll's rows, with where the page ended (before the reach filter,
/// so the next page starts after it) and whether it was full.
#[derive(Debug, Default)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    pub last: Option<K>,
    pub full: bool,
}

/// Where a page of latest values starts: after (stored, device, channel).
pub type LatestKey = (i64, String, String);
/// Where a page of alerts starts: after (stored, id).
pub type AlertKey = (i64, i64);

/// `AND d.id IN ($n, …)` for a device list (none: every device).
fn device_filter(devices: Option<&[String]>, first: usize) -> String {
    match devices {
        Some(list) if !list.is_empty() => {
            let marks: Vec<String> = (0..list.len()).map(|i| format!("${}", first + i)).collect();
            format!(" AND d.id IN ({})", marks.join(","))
        }
        _ => String::new(),
    }
}

impl Telemetry {
    /// Latest values of `scope.plugin`'s devices (all, or those listed)
    /// at orgs the caller reaches, stored after `after` (this kernel's
    /// clocks), oldest first, at most `limit` rows read. `after = None`:
    /// the current values, newest first.
    pub async fn live_latest(
        &self,
        scope: &Scope,
        devices: Option<&[String]>,
        after: Option<&LatestKey>,
        limit: i64,
    ) -> Result<Page<LiveLatest, LatestKey>> {
        let (since, order, first) = match after {
            Some(_) => (
                " AND (l.updated_at > $3 OR (l.updated_at = $3 AND (l.device_id > $4 \
                 OR (l.device_id = $4 AND l.channel > $5))))",
                "l.updated_at, l.device_id, l.channel",
                6,
            ),
            None => ("", "l.updated_at DESC, l.device_id, l.channel", 3),
        };
        let sql = format!(
            "SELECT l.device_id, l.channel, l.at, l.value, l.quality, l.updated_at, d.org_id
             FROM tm_latest l JOIN tm_devices d ON d.plugin_id = l.plugin_id AND d.id = l.device_id
             WHERE l.plugin_id = $1{since}{}
             ORDER BY {order} LIMIT $2",
            device_filter(devices, first)
        );
        let mut q = sqlx::query(&sql).bind(&scope.plugin).bind(limit);
        if let Some((at, device, channel)) = after {
            q = q.bind(*at).bind(device).bind(channel);
        }
        for d in devices.unwrap_or_default() {
            q = q.bind(d);
        }
        let rows = q.fetch_all(&self.db).await?;
        let last = rows.last().map(|r| (r.get(5), r.get(0), r.get(1)));
        Ok(Page {
            full: rows.len() as i64 >= limit,
            last,
            items: rows
                .iter()
                .filter(|r| scope.reaches(r.get::<&str, _>(6)))
                .map(|r| LiveLatest {
                    device: r.get(0),
                    channel: r.get(1),
                    at: r.get(2),
                    value: r.get(3),
                    quality: Quality::parse(r.get::<&str, _>(4)).unwrap_or(Quality::Good),
                    stored_at: r.get(5),
                })
                .collect(),
        })
    }

    /// Alerts of `scope.plugin`'s devices (all, or those listed) at orgs
    /// the caller reaches now, stored after `after`, oldest first.
    pub async fn live_alerts(
        &self,
        scope: &Scope,
        devices: Option<&[String]>,
        after: AlertKey,
        limit: i64,
    ) -> Result<Page<LiveAlert, AlertKey>> {
        let sql = format!(
            "SELECT a.id, a.rule, a.device_id, a.org_id, a.at, a.detail, a.created_at, d.org_id
             FROM tm_alerts a JOIN tm_devices d ON d.plugin_id = a.plugin_id AND d.id = a.device_id
             WHERE a.plugin_id = $1 AND (a.created_at > $3 OR (a.created_at = $3 AND a.id > $4)){}
             ORDER BY a.created_at, a.id LIMIT $2",
            device_filter(devices, 5)
        );
        let mut q = sqlx::query(&sql)
            .bind(&scope.plugin)
            .bind(limit)
            .bind(after.0)
            .bind(after.1);
        for d in devices.unwrap_or_default() {
            q = q.bind(d);
        }
        let rows = q.fetch_all(&self.db).await?;
        let last = rows.last().map(|r| (r.get(6), r.get(0)));
        Ok(Page {
            full: rows.len() as i64 >= limit,
            last,
            items: rows
                .iter()
                .filter(|r| scope.reaches(r.get::<&str, _>(7)))
                .map(|r| LiveAlert {
                    id: r.get(0),
                    rule: r.get(1),
                    device: r.get(2),
                    org: r.get(3),
                    at: r.get(4),
                    detail: serde_json::from_str(r.get::<&str, _>(5)).unwrap_or(Value::Null),
                    stored_at: r.get(6),
                })
                .collect(),
        })
    }
}

/// A terminal's newest position, as the wall's and live maps draw it.
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    pub device: String,
    pub name: String,
    pub org: String,
    pub at: i64,
    pub latitude: f64,
    pub longitude: f64,
    pub speed_kmh: f64,
    pub heading: i64,
    pub alarm: i64,
}

/// Positions one answer holds at most: the live view of a region's fleet.
pub const MAX_POSITIONS: i64 = 10_000;

impl Telemetry {
    /// The newest position of each of `scope.plugin`'s terminals at an org
    /// in `within`'s subtree that the caller reaches, newest first, at
    /// most [`MAX_POSITIONS`] (and whether more were left out).
    pub async fn positions(&self, scope: &Scope, within: &str) -> Result<(Vec<Position>, bool)> {
        let rows = sqlx::query(
            "SELECT p.device_id, d.name, d.org_id, p.at, p.latitude, p.longitude, p.speed_kmh,
                    p.heading, p.alarm
             FROM tm_positions p JOIN tm_devices d ON d.plugin_id = p.plugin_id AND d.id = p.device_id
             WHERE p.plugin_id = $1 ORDER BY p.at DESC",
        )
        .bind(&scope.plugin)
        .fetch_all(&self.db)
        .await?;
        let mut out = Vec::new();
        let mut more = false;
        for r in rows {
            let org: String = r.get(2);
            if !scope.reaches(&org) || !scope.orgs.is_within(&org, within) {
                continue;
            }
            if out.len() as i64 >= MAX_POSITIONS {
                more = true;
                break;
            }
            out.push(Position {
                device: r.get(0),
                name: r.get(1),
                org,
                at: r.get(3),
                latitude: r.get(4),
                longitude: r.get(5),
                speed_kmh: r.get(6),
                heading: r.get(7),
                alarm: r.get(8),
            });
        }
        Ok((out, more))
    }

    /// The newest `limit` alerts of `scope.plugin`'s devices at orgs in
    /// `within`'s subtree that the caller reaches, raised at or after
    /// `since` (ms), newest first, with the device's name.
    pub async fn recent_alerts(
        &self,
        scope: &Scope,
        within: &str,
        since: i64,
        limit: usize,
    ) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT a.id, a.rule, a.device_id, d.name, d.org_id, a.at, a.detail
             FROM tm_alerts a JOIN tm_devices d ON d.plugin_id = a.plugin_id AND d.id = a.device_id
             WHERE a.plugin_id = $1 AND a.at >= $2 ORDER BY a.at DESC, a.id DESC",
        )
        .bind(&scope.plugin)
        .bind(since)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .filter(|r| {
                let org = r.get::<&str, _>(4);
                scope.reaches(org) && scope.orgs.is_within(org, within)
            })
            .take(limit)
            .map(|r| {
                serde_json::json!({
                    "id": r.get::<i64, _>(0),
                    "rule": r.get::<String, _>(1),
                    "device": r.get::<String, _>(2),
                    "name": r.get::<String, _>(3),
                    "org": r.get::<String, _>(4),
                    "at": r.get::<i64, _>(5),
                    "detail": serde_json::from_str::<Value>(r.get::<&str, _>(6)).unwrap_or(Value::Null),
                })
            })
            .collect())
    }
}
