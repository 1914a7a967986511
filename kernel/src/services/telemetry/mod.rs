//! Telemetry (遥测): the devices plugins register (meters, vehicle
//! terminals, charging piles, sensors), the readings that reach the kernel
//! for them (MQTT in `mqtt.rs`, JT/T 808 in `jt808.rs`, the HTTP batch
//! endpoint, a plugin's own manual readings), and what plugins read back:
//! roll-ups per 15 minutes, hour, day and month, latest values, vehicle
//! track points, and alerts from rules the kernel evaluates.
//!
//! Readings never go through a plugin call each: an adapter hands a batch
//! to [`Telemetry::ingest`], which stores it in one transaction — raw
//! readings, the roll-ups it changes, latest values, refused readings —
//! and only then may the adapter acknowledge (MQTT QoS 1, 808 general
//! responses), so an acknowledged reading is a committed one.
//!
//! Counters (`cumulative` channels) roll up as the increments between
//! readings. A counter that goes backwards (`reset`), jumps more than the
//! channel's `max_step` (`jump`) or arrives older than the latest reading
//! (`late`) is kept with that quality and listed as flagged, never summed.
//!
//! Readings are not audited one by one (they are measurements, not
//! decisions); registering devices and rules, and a plugin's manual
//! readings, are.

pub mod demo;
pub mod jt808;
pub mod live;
pub mod mqtt;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::audit::{self, Audit};
use crate::core::calendar;
use crate::core::error::ServiceError;
use crate::core::scope::Scope;
use crate::db::{Db, Dialect, Marks};
use crate::services::messaging::{Message, Messaging};

type Result<T> = std::result::Result<T, ServiceError>;

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

/// Readings a batch may hold; adapters split larger ones.
pub const MAX_READINGS_PER_BATCH: usize = 5_000;
/// Track points one `track` call answers at most.
pub const MAX_TRACK_POINTS: usize = 10_000;
/// Refused readings kept for administrators; older ones are trimmed.
const REJECTED_KEPT: i64 = 10_000;
/// Readings accepted this far in the future (a terminal's clock drifts).
const FUTURE_SLACK_MS: i64 = 10 * 60 * 1000;
/// Readings older than this are refused: a clock that never was set.
const PAST_LIMIT_MS: i64 = 400 * 24 * 3600 * 1000;
/// How long an external id → device lookup is trusted (other nodes may
/// register or remove devices).
const DEVICE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Rows per multi-row statement: at most 11 columns, so within SQLite's
/// (32,766) and PostgreSQL's (65,535) bound parameters.
const CHUNK: usize = 100;

macro_rules! text_enum {
    ($ty:ident { $($v:ident => $s:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $ty { $($v),* }
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

text_enum!(DeviceKind { Meter => "meter", VehicleTerminal => "vehicle_terminal", ChargingPile => "charging_pile", Sensor => "sensor" });
text_enum!(Protocol { Mqtt => "mqtt", Jt808 => "jt808", Http => "http", Manual => "manual", Virtual => "virtual" });
text_enum!(ChannelKind { Cumulative => "cumulative", Instantaneous => "instantaneous" });
text_enum!(Quality { Good => "good", Manual => "manual", Bill => "bill", Reset => "reset", Jump => "jump", Late => "late" });
text_enum!(Span { QuarterHour => "15m", Hour => "hour", Day => "day", Month => "month" });
text_enum!(Measure { Sum => "sum", Avg => "avg", Min => "min", Max => "max", Last => "last", Count => "count" });

impl Quality {
    /// Kept, but not summed into roll-ups.
    pub fn flagged(self) -> bool {
        matches!(self, Quality::Reset | Quality::Jump | Quality::Late)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub name: String,
    pub unit: String,
    pub kind: ChannelKind,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub max_step: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub device: String,
    pub channel: String,
    pub coefficient: f64,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub plugin: String,
    pub id: String,
    pub kind: DeviceKind,
    pub org: String,
    pub protocol: Protocol,
    pub external_id: Option<String>,
    pub name: String,
    pub channels: Vec<Channel>,
    pub formula: Vec<Term>,
    /// The latest reading or track point; none before the first.
    pub last_seen: Option<i64>,
    pub created_at: i64,
}

impl Device {
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }
}

/// What a plugin registers.
#[derive(Debug, Clone)]
pub struct DeviceInput {
    pub id: String,
    pub kind: DeviceKind,
    pub org: Option<String>,
    pub protocol: Protocol,
    pub external_id: String,
    pub name: String,
    pub channels: Vec<Channel>,
    pub formula: Vec<Term>,
}

/// One reading of a known device.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub device: Arc<Device>,
    pub channel: String,
    pub at: i64,
    pub value: f64,
    pub quality: Quality,
}

/// One vehicle position of a known device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackPoint {
    pub at: i64,
    pub latitude: f64,
    pub longitude: f64,
    pub altitude_m: f64,
    pub speed_kmh: f64,
    pub heading: u16,
    pub alarm: u32,
    pub status: u32,
}

/// A reading the kernel refused before knowing its device (unknown
/// device, malformed payload) or after (unknown channel, out of range).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub source: String,
    pub plugin: Option<String>,
    pub device: Option<String>,
    pub reason: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub stored: u32,
    pub duplicates: u32,
    pub rejected: u32,
    /// Stored, but with a flagged quality (not summed).
    pub flagged: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latest {
    pub device: String,
    pub channel: String,
    pub at: i64,
    pub value: f64,
    pub quality: Quality,
}

#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub devices: Vec<String>,
    pub within_org: String,
    pub channel: String,
    pub from: i64,
    pub to: i64,
    pub span: Span,
    pub measure: Measure,
    pub per_device: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub device: Option<String>,
    pub start: i64,
    pub value: f64,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Above {
        channel: String,
        limit: f64,
    },
    Below {
        channel: String,
        limit: f64,
    },
    RateAbove {
        channel: String,
        per_hour: f64,
    },
    OutsideCircle {
        latitude: f64,
        longitude: f64,
        radius_m: f64,
    },
    OutsidePolygon {
        vertices: Vec<(f64, f64)>,
    },
    Offline {
        minutes: u32,
    },
    OutsideHours {
        from_hour: u8,
        to_hour: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<String>,
    pub condition: Condition,
}

impl Rule {
    fn covers(&self, device: &str) -> bool {
        self.devices.is_empty() || self.devices.iter().any(|d| d == device)
    }
}

/// Counters for `/metrics` and the system page.
#[derive(Debug, Default)]
pub struct Stats {
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub flagged: AtomicU64,
    pub alerts: AtomicU64,
    pub batches: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> Value {
        json!({
            "stored": self.stored.load(Ordering::Relaxed),
            "duplicates": self.duplicates.load(Ordering::Relaxed),
            "rejected": self.rejected.load(Ordering::Relaxed),
            "flagged": self.flagged.load(Ordering::Relaxed),
            "alerts": self.alerts.load(Ordering::Relaxed),
            "batches": self.batches.load(Ordering::Relaxed),
        })
    }
}

/// What one batch left for the alert rules to look at: its readings in
/// time order (with a counter's rate) and the newest position.
#[derive(Debug, Default)]
struct Observed {
    values: Vec<Seen>,
    positions: Vec<(Arc<Device>, TrackPoint)>,
}

/// One stored reading, as the alert rules see it.
#[derive(Debug)]
struct Seen {
    device: Arc<Device>,
    channel: String,
    at: i64,
    value: f64,
    /// A counter's increase per hour since its previous reading.
    rate: Option<f64>,
}

type DeviceCache = HashMap<(Protocol, String), (Option<Arc<Device>>, Instant)>;
type RuleCache = HashMap<String, (Arc<Vec<Rule>>, Instant)>;

/// One roll-up row (or a sum of them): readings, their total, bounds and
/// the last value.
#[derive(Debug, Clone, Copy)]
struct Cell {
    n: i64,
    total: f64,
    low: f64,
    high: f64,
    last: f64,
}

impl Cell {
    const EMPTY: Cell = Cell {
        n: 0,
        total: 0.0,
        low: f64::INFINITY,
        high: f64::NEG_INFINITY,
        last: 0.0,
    };

    /// Adds `other`, scaled (a virtual device's term).
    fn add(&mut self, other: &Cell, coefficient: f64) {
        self.n += other.n;
        self.total += coefficient * other.total;
        self.low = self.low.min(other.low);
        self.high = self.high.max(other.high);
        self.last += coefficient * other.last;
    }

    fn value(&self, measure: Measure) -> f64 {
        match measure {
            Measure::Sum => self.total,
            Measure::Avg if self.n > 0 => self.total / self.n as f64,
            Measure::Avg => 0.0,
            Measure::Min => self.low,
            Measure::Max => self.high,
            Measure::Last => self.last,
            Measure::Count => self.n as f64,
        }
    }
}

/// Topic of the alert events a plugin receives.
pub const ALERT_TOPIC: &str = "kernel.telemetry.alert";

pub struct Telemetry {
    db: Db,
    dialect: Dialect,
    audit: Arc<Audit>,
    messaging: Arc<Messaging>,
    utc_offset_ms: i64,
    raw_retention_days: u32,
    external: std::sync::RwLock<DeviceCache>,
    rules: std::sync::RwLock<RuleCache>,
    pub stats: Stats,
    /// What live streams wait on (`live.rs`).
    pub live: Arc<live::Live>,
}

fn valid_id(id: &str, max: usize, extra: &[char]) -> bool {
    (1..=max).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
}

fn device_of(r: &sqlx::any::AnyRow) -> Device {
    Device {
        plugin: r.get(0),
        id: r.get(1),
        kind: DeviceKind::parse(r.get::<&str, _>(2)).unwrap_or(DeviceKind::Sensor),
        org: r.get(3),
        protocol: Protocol::parse(r.get::<&str, _>(4)).unwrap_or(Protocol::Manual),
        external_id: r.get(5),
        name: r.get(6),
        channels: serde_json::from_str(r.get::<&str, _>(7)).unwrap_or_default(),
        formula: serde_json::from_str(r.get::<&str, _>(8)).unwrap_or_default(),
        last_seen: r.get(9),
        created_at: r.get(10),
    }
}

/// The devices' columns, with `last_seen` from the latest values and the
/// newest position.
const DEVICE_SELECT: &str = "SELECT d.plugin_id, d.id, d.kind, d.org_id, d.protocol, d.external_id, \
     d.name, d.channels, d.formula, \
     (SELECT MAX(m) FROM (SELECT MAX(l.at) AS m FROM tm_latest l \
         WHERE l.plugin_id = d.plugin_id AND l.device_id = d.id \
      UNION ALL SELECT p.at FROM tm_positions p \
         WHERE p.plugin_id = d.plugin_id AND p.device_id = d.id) seen), \
     d.created_at FROM tm_devices d";
/// The same without `last_seen` (two subqueries a device), for the lookups
/// on the ingestion and query paths that do not show it.
const DEVICE_SELECT_PLAIN: &str = "SELECT d.plugin_id, d.id, d.kind, d.org_id, d.protocol, \
     d.external_id, d.name, d.channels, d.formula, CAST(NULL AS BIGINT), d.created_at \
     FROM tm_devices d";

impl Telemetry {
    pub fn new(
        db: Db,
        audit: Arc<Audit>,
        messaging: Arc<Messaging>,
        utc_offset_minutes: i32,
        raw_retention_days: u32,
    ) -> Self {
        Telemetry {
            dialect: Dialect::of(&db),
            db,
            audit,
            messaging,
            utc_offset_ms: utc_offset_minutes as i64 * 60_000,
            raw_retention_days,
            external: Default::default(),
            rules: Default::default(),
            stats: Stats::default(),
            live: Arc::new(live::Live::new()),
        }
    }

    // ------------------------------------------------------------ devices

    /// Creates or updates one of `plugin`'s devices at an org the caller
    /// reaches; audited.
    pub async fn register(&self, scope: &Scope, input: DeviceInput) -> Result<Device> {
        let plugin = &scope.plugin;
        if !valid_id(&input.id, 64, &['.', ':']) {
            return Err(invalid("id", "id: 1-64 of A-Z a-z 0-9 _ - . :"));
        }
        if input.name.trim().is_empty() || input.name.chars().count() > 200 {
            return Err(invalid("name", "name: 1-200 characters"));
        }
        let org = input
            .org
            .clone()
            .unwrap_or_else(|| scope.acting_org.clone());
        if !scope.reaches(&org) {
            return Err(ServiceError::OutsideReach(org));
        }
        if !scope.orgs.is_active(&org) {
            return Err(invalid(
                "org",
                format!("org {org} does not exist or is inactive"),
            ));
        }
        let external = input.external_id.trim().to_string();
        match input.protocol {
            Protocol::Virtual if !external.is_empty() => {
                return Err(invalid(
                    "external_id",
                    "a virtual device reports nothing: leave external_id empty",
                ));
            }
            Protocol::Mqtt | Protocol::Http | Protocol::Jt808 if external.is_empty() => {
                return Err(invalid(
                    "external_id",
                    "the id the device reports with is required",
                ));
            }
            Protocol::Jt808
                if !(external.len() <= 20 && external.bytes().all(|b| b.is_ascii_digit())) =>
            {
                return Err(invalid(
                    "external_id",
                    "a JT/T 808 terminal's phone number: up to 20 digits",
                ));
            }
            _ if !external.is_empty() && !valid_id(&external, 128, &['.', ':']) => {
                return Err(invalid(
                    "external_id",
                    "external_id: 1-128 of A-Z a-z 0-9 _ - . :",
                ));
            }
            _ => {}
        }
        // The 808 server reads a phone number without the BCD field's
        // leading zeros; a number written as printed on the terminal
        // (013912345678) must match it.
        let external = match input.protocol {
            Protocol::Jt808 => jt808::phone_number(&external),
            _ => external,
        };
        if input.channels.is_empty() && input.kind != DeviceKind::VehicleTerminal {
            return Err(invalid("channels", "a device reports at least one channel"));
        }
        if input.channels.len() > 64 {
            return Err(invalid("channels", "at most 64 channels"));
        }
        let mut names = HashSet::new();
        for c in &input.channels {
            if !valid_id(&c.name, 32, &[]) || c.name.chars().any(|ch| ch.is_ascii_uppercase()) {
                return Err(invalid(
                    "channels",
                    format!("channel {:?}: 1-32 of a-z 0-9 _ -", c.name),
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(invalid(
                    "channels",
                    format!("channel {} is listed twice", c.name),
                ));
            }
            if c.unit.chars().count() > 32 {
                return Err(invalid(
                    "channels",
                    format!("channel {}: unit up to 32 characters", c.name),
                ));
            }
            if let (Some(lo), Some(hi)) = (c.min, c.max)
                && lo > hi
            {
                return Err(invalid(
                    "channels",
                    format!("channel {}: min above max", c.name),
                ));
            }
        }
        if input.protocol == Protocol::Virtual {
            if input.formula.is_empty() || input.formula.len() > 100 {
                return Err(invalid("formula", "a virtual device sums 1 to 100 terms"));
            }
            for t in &input.formula {
                let term = self.device(plugin, &t.device).await?.ok_or_else(|| {
                    invalid(
                        "formula",
                        format!("term device {} is not one of this plugin's", t.device),
                    )
                })?;
                if term.protocol == Protocol::Virtual {
                    return Err(invalid(
                        "formula",
                        "a term cannot be another virtual device",
                    ));
                }
                if term.channel(&t.channel).is_none() || !t.coefficient.is_finite() {
                    return Err(invalid(
                        "formula",
                        format!(
                            "term {}.{}: no such channel, or a bad coefficient",
                            t.device, t.channel
                        ),
                    ));
                }
            }
        } else if !input.formula.is_empty() {
            return Err(invalid("formula", "only a virtual device has a formula"));
        }
        let external_id = (!external.is_empty()).then_some(external);
        let now = calendar::now_ms();
        let mut tx = self.audit.begin().await?;
        if let Some(ext) = &external_id {
            let holder: Option<(String, String)> = sqlx::query(
                "SELECT plugin_id, id FROM tm_devices WHERE protocol = $1 AND external_id = $2",
            )
            .bind(input.protocol.as_str())
            .bind(ext)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .next()
            .map(|r| (r.get(0), r.get(1)));
            if holder.is_some_and(|(p, id)| p != *plugin || id != input.id) {
                return Err(ServiceError::Conflict(format!(
                    "external_id {ext} already reports for another device"
                )));
            }
        }
        let existing: Option<String> =
            sqlx::query_scalar("SELECT org_id FROM tm_devices WHERE plugin_id = $1 AND id = $2")
                .bind(plugin)
                .bind(&input.id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .next();
        // Moving a device needs the reach of where it was, too.
        if let Some(old) = &existing
            && !scope.reaches(old)
        {
            return Err(ServiceError::NotFound(format!("device {}", input.id)));
        }
        let channels = serde_json::to_string(&input.channels).expect("channels serialize");
        let formula = serde_json::to_string(&input.formula).expect("formula serializes");
        sqlx::query(
            "INSERT INTO tm_devices (plugin_id, id, kind, org_id, protocol, external_id, name, channels,
                 formula, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
             ON CONFLICT (plugin_id, id) DO UPDATE SET kind = excluded.kind, org_id = excluded.org_id,
                 protocol = excluded.protocol, external_id = excluded.external_id, name = excluded.name,
                 channels = excluded.channels, formula = excluded.formula, updated_at = excluded.updated_at",
        )
        .bind(plugin)
        .bind(&input.id)
        .bind(input.kind.as_str())
        .bind(&org)
        .bind(input.protocol.as_str())
        .bind(&external_id)
        .bind(input.name.trim())
        .bind(&channels)
        .bind(&formula)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit(
            &audit::Entry::new(&scope.actor_name, "telemetry.device.register", "ok")
                .org(&org)
                .target(format!("{plugin}/{}", input.id))
                .detail(json!({
                    "kind": input.kind.as_str(),
                    "protocol": input.protocol.as_str(),
                    "external_id": external_id,
                    "created": existing.is_none(),
                })),
        )
        .await?;
        self.forget_external();
        self.device(plugin, &input.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("device {}", input.id)))
    }

    pub async fn remove(&self, scope: &Scope, id: &str) -> Result<bool> {
        let Some(device) = self.device(&scope.plugin, id).await? else {
            return Ok(false);
        };
        if !scope.reaches(&device.org) {
            return Ok(false);
        }
        let mut tx = self.audit.begin().await?;
        sqlx::query("DELETE FROM tm_devices WHERE plugin_id = $1 AND id = $2")
            .bind(&scope.plugin)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for table in ["tm_alert_state", "tm_positions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE plugin_id = $1 AND device_id = $2"
            ))
            .bind(&scope.plugin)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit(
            &audit::Entry::new(&scope.actor_name, "telemetry.device.remove", "ok")
                .org(&device.org)
                .target(format!("{}/{id}", scope.plugin)),
        )
        .await?;
        self.forget_external();
        Ok(true)
    }

    /// One of `plugin`'s devices, whatever the caller reaches.
    pub async fn device(&self, plugin: &str, id: &str) -> Result<Option<Device>> {
        let row = sqlx::query(&format!(
            "{DEVICE_SELECT} WHERE d.plugin_id = $1 AND d.id = $2"
        ))
        .bind(plugin)
        .bind(id)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .next();
        Ok(row.as_ref().map(device_of))
    }

    /// These devices of the plugin, in the order asked, when the caller
    /// reaches every one; not found otherwise. One query per 500 ids.
    pub async fn visible_all(&self, scope: &Scope, ids: &[String]) -> Result<Vec<Device>> {
        let mut found: HashMap<String, Device> = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut marks = Marks::new(self.dialect);
            let sql = format!(
                "{DEVICE_SELECT_PLAIN} WHERE d.plugin_id = {} AND d.id IN ({})",
                marks.mark(),
                marks.list(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(&scope.plugin);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.db).await? {
                let d = device_of(&r);
                found.insert(d.id.clone(), d);
            }
        }
        ids.iter()
            .map(|id| match found.get(id) {
                Some(d) if scope.reaches(&d.org) => Ok(d.clone()),
                _ => Err(ServiceError::NotFound(format!("device {id}"))),
            })
            .collect()
    }

    /// One of the plugin's devices if the caller reaches its org.
    pub async fn visible(&self, scope: &Scope, id: &str) -> Result<Device> {
        match self.device(&scope.plugin, id).await? {
            Some(d) if scope.reaches(&d.org) => Ok(d),
            _ => Err(ServiceError::NotFound(format!("device {id}"))),
        }
    }

    /// `plugin`'s devices at `org` and below, by id, with when each was
    /// last seen.
    pub async fn devices(&self, scope: &Scope, org: &str) -> Result<Vec<Device>> {
        self.devices_in(scope, org, DEVICE_SELECT).await
    }

    async fn devices_in(&self, scope: &Scope, org: &str, select: &str) -> Result<Vec<Device>> {
        if !scope.reaches(org) {
            return Err(ServiceError::OutsideReach(org.to_string()));
        }
        let rows = sqlx::query(&format!("{select} WHERE d.plugin_id = $1 ORDER BY d.id"))
            .bind(&scope.plugin)
            .fetch_all(&self.db)
            .await?;
        Ok(rows
            .iter()
            .map(device_of)
            .filter(|d| scope.orgs.is_within(&d.org, org))
            .collect())
    }

    fn forget_external(&self) {
        self.external
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The device reporting as `external_id` over `protocol`, cached for a
    /// while (unknown ids too, so a flood of them costs no query each).
    pub async fn by_external(
        &self,
        protocol: Protocol,
        external_id: &str,
    ) -> Result<Option<Arc<Device>>> {
        let key = (protocol, external_id.to_string());
        if let Some((device, at)) = self
            .external
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < DEVICE_CACHE_TTL
        {
            return Ok(device.clone());
        }
        let row = sqlx::query(&format!(
            "{DEVICE_SELECT_PLAIN} WHERE d.protocol = $1 AND d.external_id = $2"
        ))
        .bind(protocol.as_str())
        .bind(external_id)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .next();
        let device = row.as_ref().map(device_of).map(Arc::new);
        let mut cache = self.external.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(key, (device.clone(), Instant::now()));
        Ok(device)
    }

    /// JT/T 808: the auth code handed to a terminal at registration.
    pub async fn auth_code(&self, phone: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT auth_code FROM tm_devices WHERE protocol = 'jt808' AND external_id = $1",
        )
        .bind(phone)
        .fetch_all(&self.db)
        .await?
        .into_iter()
        .next()
        .flatten())
    }

    /// JT/T 808: registers a terminal the plugin declared, giving it an
    /// auth code; none when no plugin declared this phone number.
    pub async fn issue_auth_code(&self, phone: &str) -> Result<Option<String>> {
        let code = crate::core::ids::new_record_id();
        let n = sqlx::query(
            "UPDATE tm_devices SET auth_code = $2 WHERE protocol = 'jt808' AND external_id = $1",
        )
        .bind(phone)
        .bind(&code)
        .execute(&self.db)
        .await?
        .rows_affected();
        Ok((n > 0).then_some(code))
    }

    // ----------------------------------------------------------- ingestion

    /// Stores a batch of readings of known devices (and the refusals met
    /// on the way) in one transaction; then evaluates the alert rules of
    /// what it stored. Returns once committed: acknowledge after this.
    pub async fn ingest(
        &self,
        source: &str,
        readings: Vec<Incoming>,
        rejections: Vec<Rejection>,
    ) -> Result<Recorded> {
        let mut tx = crate::db::begin_write(&self.db).await?;
        let (recorded, observed) = self
            .ingest_in(&mut tx, source, readings, rejections)
            .await?;
        tx.commit().await?;
        self.note(&recorded);
        self.evaluate(observed).await;
        Ok(recorded)
    }

    /// [`ingest`](Self::ingest) for a person's upload through the kernel
    /// API: the batch commits with one audit record of what it stored.
    pub async fn ingest_audited(
        &self,
        source: &str,
        readings: Vec<Incoming>,
        rejections: Vec<Rejection>,
        actor: &str,
        org: &str,
    ) -> Result<Recorded> {
        let mut tx = self.audit.begin().await?;
        let (recorded, observed) = self
            .ingest_in(&mut tx, source, readings, rejections)
            .await?;
        tx.commit(
            &audit::Entry::new(actor, "telemetry.readings.post", "ok")
                .org(org)
                .detail(json!({ "recorded": recorded })),
        )
        .await?;
        self.note(&recorded);
        self.evaluate(observed).await;
        Ok(recorded)
    }

    /// A plugin's own readings (read by hand, from a bill), of its devices
    /// in the caller's reach; audited as one entry.
    pub async fn record(
        &self,
        scope: &Scope,
        readings: Vec<(String, String, i64, f64)>,
        quality: Quality,
    ) -> Result<Recorded> {
        if readings.is_empty() || readings.len() > MAX_READINGS_PER_BATCH {
            return Err(invalid(
                "readings",
                format!("1 to {MAX_READINGS_PER_BATCH} readings at a time"),
            ));
        }
        let mut devices: HashMap<String, Arc<Device>> = HashMap::new();
        let mut incoming = Vec::with_capacity(readings.len());
        for (device, channel, at, value) in readings {
            let d = match devices.get(&device) {
                Some(d) => d.clone(),
                None => {
                    let d = Arc::new(self.visible(scope, &device).await?);
                    devices.insert(device.clone(), d.clone());
                    d
                }
            };
            if d.protocol == Protocol::Virtual {
                return Err(invalid(
                    "readings",
                    format!("device {device} is virtual: it has no readings"),
                ));
            }
            incoming.push(Incoming {
                device: d,
                channel,
                at,
                value,
                quality,
            });
        }
        let mut tx = self.audit.begin().await?;
        let source = format!("plugin:{}", scope.plugin);
        let (recorded, observed) = self
            .ingest_in(&mut tx, &source, incoming, Vec::new())
            .await?;
        tx.commit(
            &audit::Entry::new(&scope.actor_name, "telemetry.readings.record", "ok")
                .org(&scope.acting_org)
                .target(scope.plugin.clone())
                .detail(json!({ "quality": quality.as_str(), "recorded": recorded })),
        )
        .await?;
        self.note(&recorded);
        self.evaluate(observed).await;
        Ok(recorded)
    }

    /// Counts a stored batch and wakes this node's live streams.
    fn note(&self, r: &Recorded) {
        self.live.changed();
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .stored
            .fetch_add(r.stored as u64, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(r.duplicates as u64, Ordering::Relaxed);
        self.stats
            .rejected
            .fetch_add(r.rejected as u64, Ordering::Relaxed);
        self.stats
            .flagged
            .fetch_add(r.flagged as u64, Ordering::Relaxed);
    }

    async fn ingest_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        source: &str,
        readings: Vec<Incoming>,
        mut rejections: Vec<Rejection>,
    ) -> Result<(Recorded, Observed)> {
        let now = calendar::now_ms();
        let mut recorded = Recorded::default();
        // Validate, then group by device and channel in time order.
        let mut series: BTreeMap<(String, String, String), Vec<Incoming>> = BTreeMap::new();
        for r in readings {
            let refuse = |reason: &'static str, detail: String| Rejection {
                source: source.to_string(),
                plugin: Some(r.device.plugin.clone()),
                device: Some(r.device.id.clone()),
                reason,
                detail,
            };
            let Some(channel) = r.device.channel(&r.channel) else {
                rejections.push(refuse(
                    "unknown_channel",
                    format!("channel {:?}", r.channel),
                ));
                continue;
            };
            if !r.value.is_finite()
                || channel.min.is_some_and(|lo| r.value < lo)
                || channel.max.is_some_and(|hi| r.value > hi)
            {
                rejections.push(refuse(
                    "out_of_range",
                    format!("{} = {}", r.channel, r.value),
                ));
                continue;
            }
            if r.at > now + FUTURE_SLACK_MS || r.at < now - PAST_LIMIT_MS {
                rejections.push(refuse("bad_time", format!("at {}", r.at)));
                continue;
            }
            series
                .entry((
                    r.device.plugin.clone(),
                    r.device.id.clone(),
                    r.channel.clone(),
                ))
                .or_default()
                .push(r);
        }
        let latest = self.latest_of(tx, series.keys()).await?;
        // (plugin, device, channel, at, value, delta, quality)
        let mut rows: Vec<(Incoming, Option<f64>)> = Vec::new();
        let mut observed = Observed::default();
        for (key, mut list) in series {
            list.sort_by_key(|r| r.at);
            list.dedup_by_key(|r| r.at);
            let kind = list[0]
                .device
                .channel(&key.2)
                .map(|c| (c.kind, c.max_step))
                .expect("validated above");
            let mut prev = latest.get(&key).copied();
            for mut r in list {
                let mut delta = None;
                let mut rate = None;
                if kind.0 == ChannelKind::Cumulative {
                    match prev {
                        Some((at, _)) if r.at <= at => r.quality = Quality::Late,
                        Some((at, value)) => {
                            let step = r.value - value;
                            if step < 0.0 {
                                r.quality = Quality::Reset;
                            } else if kind.1.is_some_and(|max| step > max) {
                                r.quality = Quality::Jump;
                            } else {
                                delta = Some(step);
                                let hours = (r.at - at) as f64 / 3_600_000.0;
                                rate = (hours > 0.0).then(|| step / hours);
                            }
                        }
                        // The first reading of a counter starts it.
                        None => delta = Some(0.0),
                    }
                    if r.quality != Quality::Late {
                        prev = Some((r.at, r.value));
                    }
                }
                if r.quality.flagged() {
                    rejections.push(Rejection {
                        source: source.to_string(),
                        plugin: Some(key.0.clone()),
                        device: Some(key.1.clone()),
                        reason: match r.quality {
                            Quality::Reset => "counter_backwards",
                            Quality::Jump => "counter_jump",
                            _ => "counter_late",
                        },
                        detail: format!("{} = {} at {} (kept, not summed)", key.2, r.value, r.at),
                    });
                }
                // Every reading, in time order: a breach and its recovery
                // inside one batch are both seen.
                if r.quality != Quality::Late {
                    observed.values.push(Seen {
                        device: r.device.clone(),
                        channel: key.2.clone(),
                        at: r.at,
                        value: r.value,
                        rate,
                    });
                }
                rows.push((r, delta));
            }
        }
        // Raw readings. Nearly always every one is new, and then nothing
        // needs to come back: a plain insert under a savepoint, checked by
        // its count. Only when some were there already is it undone and
        // redone returning the new ones, to tell them from the duplicates.
        sqlx::Executor::execute(&mut *tx, "SAVEPOINT tm_readings").await?;
        let mut all_new = true;
        for chunk in rows.chunks(CHUNK) {
            let sql = self.readings_sql(chunk.len(), false);
            let q = bind_readings(sqlx::query(&sql), chunk, now);
            if q.execute(&mut *tx).await?.rows_affected() != chunk.len() as u64 {
                all_new = false;
                break;
            }
        }
        let mut inserted: Option<HashSet<(String, String, String, i64)>> = None;
        if all_new {
            sqlx::Executor::execute(&mut *tx, "RELEASE SAVEPOINT tm_readings").await?;
        } else {
            sqlx::Executor::execute(&mut *tx, "ROLLBACK TO SAVEPOINT tm_readings").await?;
            sqlx::Executor::execute(&mut *tx, "RELEASE SAVEPOINT tm_readings").await?;
            let new = inserted.get_or_insert_with(HashSet::new);
            for chunk in rows.chunks(CHUNK) {
                let sql = self.readings_sql(chunk.len(), true);
                let q = bind_readings(sqlx::query(&sql), chunk, now);
                for row in q.fetch_all(&mut *tx).await? {
                    new.insert((row.get(0), row.get(1), row.get(2), row.get(3)));
                }
            }
        }
        // Roll-ups of what was new.
        #[derive(Default)]
        struct Acc {
            n: i64,
            total: f64,
            low: f64,
            high: f64,
            last: f64,
            last_at: i64,
        }
        let mut acc: BTreeMap<(String, String, String, Span, i64), Acc> = BTreeMap::new();
        let mut newest: BTreeMap<(String, String, String), (i64, f64, Quality)> = BTreeMap::new();
        for (r, delta) in &rows {
            let key = (
                r.device.plugin.clone(),
                r.device.id.clone(),
                r.channel.clone(),
                r.at,
            );
            if inserted.as_ref().is_some_and(|new| !new.contains(&key)) {
                recorded.duplicates += 1;
                rejections.push(Rejection {
                    source: source.to_string(),
                    plugin: Some(key.0.clone()),
                    device: Some(key.1.clone()),
                    reason: "duplicate",
                    detail: format!("{} at {}", key.2, key.3),
                });
                continue;
            }
            recorded.stored += 1;
            if r.quality.flagged() {
                recorded.flagged += 1;
            }
            let latest_key = (key.0.clone(), key.1.clone(), key.2.clone());
            if r.quality != Quality::Late
                && newest.get(&latest_key).is_none_or(|(at, ..)| r.at >= *at)
            {
                newest.insert(latest_key, (r.at, r.value, r.quality));
            }
            if r.quality.flagged() {
                continue;
            }
            let cumulative = r
                .device
                .channel(&r.channel)
                .is_some_and(|c| c.kind == ChannelKind::Cumulative);
            let amount = if cumulative {
                delta.unwrap_or(0.0)
            } else {
                r.value
            };
            for span in [Span::QuarterHour, Span::Hour, Span::Day, Span::Month] {
                let start = self.bucket_start(span, r.at);
                let a = acc
                    .entry((key.0.clone(), key.1.clone(), key.2.clone(), span, start))
                    .or_insert_with(|| Acc {
                        low: f64::INFINITY,
                        high: f64::NEG_INFINITY,
                        last_at: i64::MIN,
                        ..Acc::default()
                    });
                a.n += 1;
                a.total += amount;
                a.low = a.low.min(r.value);
                a.high = a.high.max(r.value);
                if r.at >= a.last_at {
                    a.last = r.value;
                    a.last_at = r.at;
                }
            }
        }
        let (least, greatest) = match self.dialect {
            Dialect::Sqlite => ("MIN", "MAX"),
            Dialect::Postgres => ("LEAST", "GREATEST"),
        };
        let acc: Vec<_> = acc.into_iter().collect();
        for chunk in acc.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO tm_rollups (plugin_id, device_id, channel, span, start, n, total, low, high, last, last_at) VALUES ",
            );
            sql.push_str(&Marks::new(self.dialect).rows(chunk.len(), 11));
            sql.push_str(&format!(
                " ON CONFLICT (plugin_id, channel, span, start, device_id) DO UPDATE SET
                   n = tm_rollups.n + excluded.n, total = tm_rollups.total + excluded.total,
                   low = {least}(tm_rollups.low, excluded.low), high = {greatest}(tm_rollups.high, excluded.high),
                   last = CASE WHEN excluded.last_at >= tm_rollups.last_at THEN excluded.last ELSE tm_rollups.last END,
                   last_at = {greatest}(tm_rollups.last_at, excluded.last_at)"
            ));
            let mut q = sqlx::query(&sql);
            for ((plugin, device, channel, span, start), a) in chunk {
                q = q
                    .bind(plugin)
                    .bind(device)
                    .bind(channel)
                    .bind(span.as_str())
                    .bind(*start)
                    .bind(a.n)
                    .bind(a.total)
                    .bind(a.low)
                    .bind(a.high)
                    .bind(a.last)
                    .bind(a.last_at);
            }
            q.execute(&mut *tx).await?;
        }
        let newest: Vec<_> = newest.into_iter().collect();
        // When it was stored, for live streams: read as late as possible,
        // just before the commit (live.rs allows for the rest).
        let stored_at = calendar::now_ms();
        for chunk in newest.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO tm_latest (plugin_id, device_id, channel, at, value, quality, updated_at) VALUES ",
            );
            sql.push_str(&Marks::new(self.dialect).rows(chunk.len(), 7));
            sql.push_str(
                " ON CONFLICT (plugin_id, device_id, channel) DO UPDATE SET at = excluded.at,
                   value = excluded.value, quality = excluded.quality, updated_at = excluded.updated_at
                   WHERE excluded.at >= tm_latest.at",
            );
            let mut q = sqlx::query(&sql);
            for ((plugin, device, channel), (at, value, quality)) in chunk {
                q = q
                    .bind(plugin)
                    .bind(device)
                    .bind(channel)
                    .bind(*at)
                    .bind(*value)
                    .bind(quality.as_str())
                    .bind(stored_at);
            }
            q.execute(&mut *tx).await?;
        }
        recorded.rejected = rejections
            .iter()
            .filter(|r| {
                !matches!(
                    r.reason,
                    "duplicate" | "counter_backwards" | "counter_jump" | "counter_late"
                )
            })
            .count() as u32;
        self.store_rejections(tx, &rejections, now).await?;
        Ok((recorded, observed))
    }

    /// A multi-row insert of `rows` raw readings, the new ones' keys
    /// returned when asked; its values come from [`bind_readings`].
    fn readings_sql(&self, rows: usize, returning: bool) -> String {
        let mut sql = String::from(
            "INSERT INTO tm_readings (plugin_id, device_id, channel, at, value, delta, quality, received_at) VALUES ",
        );
        // A NULL real is bound as a 4-byte type by sqlx's Any driver, and
        // PostgreSQL then refuses an 8-byte value in the same prepared
        // statement: the delta goes as a number and a flag.
        let mut marks = Marks::new(self.dialect);
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            let m: Vec<String> = (0..9).map(|_| marks.mark()).collect();
            sql.push_str(&format!(
                "({},{},{},{},{},CASE WHEN {} THEN {} ELSE NULL END,{},{})",
                m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
            ));
        }
        sql.push_str(" ON CONFLICT DO NOTHING");
        if returning {
            sql.push_str(" RETURNING plugin_id, device_id, channel, at");
        }
        sql
    }

    /// Refusals that found no device at all (malformed payloads, unknown
    /// devices), stored on their own.
    pub async fn reject(&self, rejections: Vec<Rejection>) -> Result<()> {
        if rejections.is_empty() {
            return Ok(());
        }
        let n = rejections.len() as u64;
        let mut tx = crate::db::begin_write(&self.db).await?;
        self.store_rejections(&mut tx, &rejections, calendar::now_ms())
            .await?;
        tx.commit().await?;
        self.stats.rejected.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    async fn store_rejections(
        &self,
        tx: &mut sqlx::AnyConnection,
        rejections: &[Rejection],
        now: i64,
    ) -> Result<()> {
        for chunk in rejections.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO tm_rejected (at, source, plugin_id, device, reason, detail) VALUES ",
            );
            sql.push_str(&Marks::new(self.dialect).rows(chunk.len(), 6));
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let detail: String = r.detail.chars().take(500).collect();
                q = q
                    .bind(now)
                    .bind(&r.source)
                    .bind(&r.plugin)
                    .bind(&r.device)
                    .bind(r.reason)
                    .bind(detail);
            }
            q.execute(&mut *tx).await?;
        }
        Ok(())
    }

    async fn latest_of<'k>(
        &self,
        tx: &mut sqlx::AnyConnection,
        keys: impl Iterator<Item = &'k (String, String, String)>,
    ) -> Result<HashMap<(String, String, String), (i64, f64)>> {
        let mut by_plugin: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (plugin, device, _) in keys {
            let list = by_plugin.entry(plugin).or_default();
            if list.last() != Some(&device.as_str()) {
                list.push(device);
            }
        }
        let mut out = HashMap::new();
        for (plugin, devices) in by_plugin {
            for chunk in devices.chunks(CHUNK) {
                let mut marks = Marks::new(self.dialect);
                let sql = format!(
                    "SELECT device_id, channel, at, value FROM tm_latest
                     WHERE plugin_id = {} AND device_id IN ({})",
                    marks.mark(),
                    marks.list(chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(plugin);
                for d in chunk {
                    q = q.bind(*d);
                }
                for r in q.fetch_all(&mut *tx).await? {
                    out.insert(
                        (plugin.to_string(), r.get(0), r.get(1)),
                        (r.get(2), r.get(3)),
                    );
                }
            }
        }
        Ok(out)
    }

    /// Stores vehicle positions of one terminal (duplicates by time are
    /// skipped), then evaluates the position rules.
    pub async fn ingest_track(&self, device: Arc<Device>, points: Vec<TrackPoint>) -> Result<u32> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut tx = crate::db::begin_write(&self.db).await?;
        let mut stored = 0;
        for chunk in points.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO tm_track (plugin_id, device_id, at, latitude, longitude, altitude_m, speed_kmh,
                     heading, alarm, status) VALUES ",
            );
            sql.push_str(&Marks::new(self.dialect).rows(chunk.len(), 10));
            sql.push_str(" ON CONFLICT DO NOTHING");
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(&device.plugin)
                    .bind(&device.id)
                    .bind(p.at)
                    .bind(p.latitude)
                    .bind(p.longitude)
                    .bind(p.altitude_m)
                    .bind(p.speed_kmh)
                    .bind(p.heading as i64)
                    .bind(p.alarm as i64)
                    .bind(p.status as i64);
            }
            stored += q.execute(&mut *tx).await?.rows_affected() as u32;
        }
        let newest = points
            .iter()
            .max_by_key(|p| p.at)
            .cloned()
            .expect("points is not empty");
        // A late batch (a terminal's stored positions sent after it was
        // offline) does not move the vehicle back.
        sqlx::query(
            "INSERT INTO tm_positions (plugin_id, device_id, at, latitude, longitude, speed_kmh,
                 heading, alarm, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (plugin_id, device_id) DO UPDATE SET at = excluded.at,
                 latitude = excluded.latitude, longitude = excluded.longitude,
                 speed_kmh = excluded.speed_kmh, heading = excluded.heading,
                 alarm = excluded.alarm, updated_at = excluded.updated_at
             WHERE tm_positions.at < excluded.at",
        )
        .bind(&device.plugin)
        .bind(&device.id)
        .bind(newest.at)
        .bind(newest.latitude)
        .bind(newest.longitude)
        .bind(newest.speed_kmh)
        .bind(newest.heading as i64)
        .bind(newest.alarm as i64)
        .bind(calendar::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.stats
            .stored
            .fetch_add(stored as u64, Ordering::Relaxed);
        self.evaluate(Observed {
            values: Vec::new(),
            positions: vec![(device, newest)],
        })
        .await;
        Ok(stored)
    }

    /// The start of the bucket of `span` holding `at`: 15 minutes and hours
    /// as on the clock, days and months in the region's time zone.
    pub fn bucket_start(&self, span: Span, at: i64) -> i64 {
        const DAY: i64 = 86_400_000;
        match span {
            Span::QuarterHour => at - at.rem_euclid(900_000),
            Span::Hour => at - at.rem_euclid(3_600_000),
            Span::Day => {
                let local = at + self.utc_offset_ms;
                local - local.rem_euclid(DAY) - self.utc_offset_ms
            }
            Span::Month => {
                let days = (at + self.utc_offset_ms).div_euclid(DAY);
                let (y, m, _) = calendar::civil_from_days(days);
                calendar::days_from_civil(y, m, 1) * DAY - self.utc_offset_ms
            }
        }
    }

    // ------------------------------------------------------------- queries

    /// Roll-ups of one channel over a device set, per bucket.
    pub async fn aggregate(&self, scope: &Scope, q: &SeriesQuery) -> Result<Vec<Bucket>> {
        if q.to <= q.from {
            return Err(invalid("to", "to must be after from"));
        }
        let devices: Vec<Device> = if q.devices.is_empty() {
            self.devices_in(scope, &q.within_org, DEVICE_SELECT_PLAIN)
                .await?
        } else {
            if q.devices.len() > 5_000 {
                return Err(invalid("devices", "at most 5,000 devices per query"));
            }
            self.visible_all(scope, &q.devices).await?
        };
        // Each device reads as a sum of (coefficient, device, channel).
        type Terms = Vec<(f64, String, String)>;
        let mut terms: Vec<(String, Terms)> = Vec::new();
        for d in &devices {
            if d.protocol == Protocol::Virtual {
                if !matches!(q.measure, Measure::Sum | Measure::Last) {
                    return Err(invalid("measure", "a virtual device answers sum and last"));
                }
                if d.channel(&q.channel).is_none() {
                    continue;
                }
                terms.push((
                    d.id.clone(),
                    d.formula
                        .iter()
                        .map(|t| (t.coefficient, t.device.clone(), t.channel.clone()))
                        .collect(),
                ));
            } else if d.channel(&q.channel).is_some() {
                terms.push((d.id.clone(), vec![(1.0, d.id.clone(), q.channel.clone())]));
            }
        }
        // Read every (device, channel) needed, one query per channel.
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, list) in &terms {
            for (_, device, channel) in list {
                wanted.entry(channel).or_default().push(device);
            }
        }
        let lo = self.bucket_start(q.span, q.from);
        let mut cells: HashMap<(String, String), BTreeMap<i64, Cell>> = HashMap::new();
        for (channel, mut list) in wanted {
            list.sort();
            list.dedup();
            for chunk in list.chunks(500) {
                let mut m = Marks::new(self.dialect);
                let sql = format!(
                    "SELECT device_id, start, n, total, low, high, last FROM tm_rollups
                     WHERE plugin_id = {} AND channel = {} AND span = {} AND start >= {} AND start < {}
                       AND device_id IN ({})",
                    m.mark(),
                    m.mark(),
                    m.mark(),
                    m.mark(),
                    m.mark(),
                    m.list(chunk.len())
                );
                let mut query = sqlx::query(&sql)
                    .bind(&scope.plugin)
                    .bind(channel)
                    .bind(q.span.as_str())
                    .bind(lo)
                    .bind(q.to);
                for d in chunk {
                    query = query.bind(*d);
                }
                for r in query.fetch_all(&self.db).await? {
                    cells
                        .entry((r.get(0), channel.to_string()))
                        .or_default()
                        .insert(
                            r.get(1),
                            Cell {
                                n: r.get(2),
                                total: r.get(3),
                                low: r.get(4),
                                high: r.get(5),
                                last: r.get(6),
                            },
                        );
                }
            }
        }
        let mut per_device: Vec<(String, BTreeMap<i64, Cell>)> = Vec::new();
        for (id, list) in &terms {
            let mut series: BTreeMap<i64, Cell> = BTreeMap::new();
            for (coefficient, device, channel) in list {
                if let Some(found) = cells.get(&(device.clone(), channel.clone())) {
                    for (start, cell) in found {
                        series
                            .entry(*start)
                            .or_insert(Cell::EMPTY)
                            .add(cell, *coefficient);
                    }
                }
            }
            per_device.push((id.clone(), series));
        }
        let mut out = Vec::new();
        if q.per_device {
            for (id, series) in per_device {
                for (start, cell) in series {
                    out.push(Bucket {
                        device: Some(id.clone()),
                        start,
                        value: cell.value(q.measure),
                        count: cell.n as u32,
                    });
                }
            }
        } else {
            let mut set: BTreeMap<i64, Cell> = BTreeMap::new();
            for (_, series) in per_device {
                for (start, cell) in series {
                    set.entry(start).or_insert(Cell::EMPTY).add(&cell, 1.0);
                }
            }
            for (start, cell) in set {
                out.push(Bucket {
                    device: None,
                    start,
                    value: cell.value(q.measure),
                    count: cell.n as u32,
                });
            }
        }
        Ok(out)
    }

    /// The latest value of every channel of these devices.
    pub async fn latest(&self, scope: &Scope, devices: &[String]) -> Result<Vec<Latest>> {
        if devices.len() > 5_000 {
            return Err(invalid("devices", "at most 5,000 devices per call"));
        }
        self.visible_all(scope, devices).await?;
        let mut out = Vec::new();
        for chunk in devices.chunks(500) {
            let mut marks = Marks::new(self.dialect);
            let sql = format!(
                "SELECT device_id, channel, at, value, quality FROM tm_latest
                 WHERE plugin_id = {} AND device_id IN ({}) ORDER BY device_id, channel",
                marks.mark(),
                marks.list(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(&scope.plugin);
            for d in chunk {
                q = q.bind(d);
            }
            for r in q.fetch_all(&self.db).await? {
                out.push(Latest {
                    device: r.get(0),
                    channel: r.get(1),
                    at: r.get(2),
                    value: r.get(3),
                    quality: Quality::parse(r.get::<&str, _>(4)).unwrap_or(Quality::Good),
                });
            }
        }
        Ok(out)
    }

    pub async fn track(
        &self,
        scope: &Scope,
        device: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<TrackPoint>> {
        self.visible(scope, device).await?;
        let rows = sqlx::query(
            "SELECT at, latitude, longitude, altitude_m, speed_kmh, heading, alarm, status FROM tm_track
             WHERE plugin_id = $1 AND device_id = $2 AND at >= $3 AND at < $4 ORDER BY at LIMIT $5",
        )
        .bind(&scope.plugin)
        .bind(device)
        .bind(from)
        .bind(to)
        .bind(MAX_TRACK_POINTS as i64)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TrackPoint {
                at: r.get(0),
                latitude: r.get(1),
                longitude: r.get(2),
                altitude_m: r.get(3),
                speed_kmh: r.get(4),
                heading: r.get::<i64, _>(5) as u16,
                alarm: r.get::<i64, _>(6) as u32,
                status: r.get::<i64, _>(7) as u32,
            })
            .collect())
    }

    /// Refused and flagged readings, newest first, for administrators.
    pub async fn rejected(&self, before: Option<i64>, limit: i64) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT id, at, source, plugin_id, device, reason, detail FROM tm_rejected
             WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.get::<i64, _>(0), "at": r.get::<i64, _>(1), "source": r.get::<String, _>(2),
                    "plugin": r.get::<Option<String>, _>(3), "device": r.get::<Option<String>, _>(4),
                    "reason": r.get::<String, _>(5), "detail": r.get::<String, _>(6),
                })
            })
            .collect())
    }

    // -------------------------------------------------------------- alerts

    pub async fn define_rule(&self, scope: &Scope, rule: Rule) -> Result<()> {
        if !valid_id(&rule.name, 64, &[]) || rule.name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("name", "rule name: 1-64 of a-z 0-9 _ -"));
        }
        if rule.devices.len() > 10_000 {
            return Err(invalid("devices", "at most 10,000 devices per rule"));
        }
        match &rule.condition {
            Condition::Above { limit, .. } | Condition::Below { limit, .. }
                if !limit.is_finite() =>
            {
                return Err(invalid("condition", "the limit must be a number"));
            }
            Condition::RateAbove { per_hour, .. } if !per_hour.is_finite() || *per_hour <= 0.0 => {
                return Err(invalid("condition", "the rate must be above 0 per hour"));
            }
            Condition::OutsideCircle {
                latitude,
                longitude,
                radius_m,
            } if latitude.abs() > 90.0 || longitude.abs() > 180.0 || *radius_m <= 0.0 => {
                return Err(invalid(
                    "condition",
                    "a circle: latitude, longitude and a radius above 0 m",
                ));
            }
            Condition::OutsidePolygon { vertices } if !(3..=1000).contains(&vertices.len()) => {
                return Err(invalid("condition", "a polygon has 3 to 1,000 vertices"));
            }
            Condition::Offline { minutes } if *minutes == 0 => {
                return Err(invalid("condition", "offline for at least 1 minute"));
            }
            Condition::OutsideHours { from_hour, to_hour } if *from_hour > 24 || *to_hour > 24 => {
                return Err(invalid("condition", "hours are 0 to 24"));
            }
            _ => {}
        }
        let text = serde_json::to_string(&rule).expect("rules serialize");
        let mut tx = self.audit.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT rule FROM tm_rules WHERE plugin_id = $1 AND name = $2")
                .bind(&scope.plugin)
                .bind(&rule.name)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .next();
        // The install and upgrade hooks define rules every time.
        if current.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO tm_rules (plugin_id, name, rule, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (plugin_id, name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at",
        )
        .bind(&scope.plugin)
        .bind(&rule.name)
        .bind(&text)
        .bind(calendar::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit(
            &audit::Entry::new(&scope.actor_name, "telemetry.rule.define", "ok")
                .target(format!("{}/{}", scope.plugin, rule.name))
                .detail(json!({ "condition": rule.condition })),
        )
        .await?;
        self.rules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&scope.plugin);
        Ok(())
    }

    pub async fn remove_rule(&self, scope: &Scope, name: &str) -> Result<bool> {
        let mut tx = self.audit.begin().await?;
        let n = sqlx::query("DELETE FROM tm_rules WHERE plugin_id = $1 AND name = $2")
            .bind(&scope.plugin)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM tm_alert_state WHERE plugin_id = $1 AND rule = $2")
            .bind(&scope.plugin)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit(
            &audit::Entry::new(&scope.actor_name, "telemetry.rule.remove", "ok")
                .target(format!("{}/{name}", scope.plugin)),
        )
        .await?;
        self.rules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&scope.plugin);
        Ok(true)
    }

    async fn rules_of(&self, plugin: &str) -> Result<Arc<Vec<Rule>>> {
        if let Some((rules, at)) = self
            .rules
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(plugin)
            && at.elapsed() < DEVICE_CACHE_TTL
        {
            return Ok(rules.clone());
        }
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT rule FROM tm_rules WHERE plugin_id = $1 ORDER BY name")
                .bind(plugin)
                .fetch_all(&self.db)
                .await?;
        let rules = Arc::new(
            rows.iter()
                .filter_map(|r| serde_json::from_str::<Rule>(r).ok())
                .collect::<Vec<_>>(),
        );
        self.rules
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(plugin.to_string(), (rules.clone(), Instant::now()));
        Ok(rules)
    }

    /// Checks what a batch stored against the rules; a failure is logged,
    /// never the batch's (it is committed already).
    async fn evaluate(&self, observed: Observed) {
        if let Err(e) = self.evaluate_inner(observed).await {
            tracing::warn!(error = %e, "telemetry alert evaluation failed");
        }
    }

    async fn evaluate_inner(&self, observed: Observed) -> Result<()> {
        // (device, rule, violated, at, detail)
        let mut verdicts: Vec<(Arc<Device>, String, bool, i64, Value)> = Vec::new();
        for Seen {
            device,
            channel,
            at,
            value,
            rate,
        } in &observed.values
        {
            for rule in self.rules_of(&device.plugin).await?.iter() {
                if !rule.covers(&device.id) {
                    continue;
                }
                let verdict = match &rule.condition {
                    Condition::Above { channel: c, limit } if c == channel => Some(*value > *limit),
                    Condition::Below { channel: c, limit } if c == channel => Some(*value < *limit),
                    Condition::RateAbove {
                        channel: c,
                        per_hour,
                    } if c == channel => rate.map(|r| r > *per_hour),
                    _ => None,
                };
                if let Some(violated) = verdict {
                    verdicts.push((
                        device.clone(),
                        rule.name.clone(),
                        violated,
                        *at,
                        json!({ "channel": channel, "value": value, "rate_per_hour": rate }),
                    ));
                }
            }
        }
        for (device, p) in &observed.positions {
            for rule in self.rules_of(&device.plugin).await?.iter() {
                if !rule.covers(&device.id) {
                    continue;
                }
                let verdict = match &rule.condition {
                    Condition::OutsideCircle {
                        latitude,
                        longitude,
                        radius_m,
                    } => {
                        Some(distance_m(p.latitude, p.longitude, *latitude, *longitude) > *radius_m)
                    }
                    Condition::OutsidePolygon { vertices } => {
                        Some(!inside_polygon(p.latitude, p.longitude, vertices))
                    }
                    Condition::OutsideHours { from_hour, to_hour } => {
                        let hour =
                            ((p.at + self.utc_offset_ms).rem_euclid(86_400_000) / 3_600_000) as u8;
                        let allowed = if from_hour <= to_hour {
                            (*from_hour..*to_hour).contains(&hour)
                        } else {
                            hour >= *from_hour || hour < *to_hour
                        };
                        Some(p.speed_kmh > 0.0 && !allowed)
                    }
                    _ => None,
                };
                if let Some(violated) = verdict {
                    verdicts.push((
                        device.clone(),
                        rule.name.clone(),
                        violated,
                        p.at,
                        json!({ "latitude": p.latitude, "longitude": p.longitude, "speed_kmh": p.speed_kmh }),
                    ));
                }
            }
        }
        self.settle_verdicts(verdicts).await
    }

    /// Turns verdicts into alerts on the way into violation (a rule that
    /// keeps failing alerts once until it holds again), each alert stored
    /// and sent to its plugin as one event per org, in one transaction.
    async fn settle_verdicts(
        &self,
        verdicts: Vec<(Arc<Device>, String, bool, i64, Value)>,
    ) -> Result<()> {
        // Only changes of state matter: [breach, breach, fine, breach]
        // is [breach, fine, breach].
        let mut last: HashMap<(String, String, String), bool> = HashMap::new();
        let verdicts: Vec<_> = verdicts
            .into_iter()
            .filter(|(device, rule, violated, ..)| {
                let key = (device.plugin.clone(), device.id.clone(), rule.clone());
                last.insert(key, *violated) != Some(*violated)
            })
            .collect();
        if verdicts.is_empty() {
            return Ok(());
        }
        let mut tx = crate::db::begin_write(&self.db).await?;
        let mut fired: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for (device, rule, violated, at, detail) in verdicts {
            if violated {
                let n = sqlx::query(
                    "INSERT INTO tm_alert_state (plugin_id, rule, device_id, since) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&device.plugin)
                .bind(&rule)
                .bind(&device.id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO tm_alerts (plugin_id, rule, device_id, org_id, at, detail, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&device.plugin)
                .bind(&rule)
                .bind(&device.id)
                .bind(&device.org)
                .bind(at)
                .bind(detail.to_string())
                .bind(calendar::now_ms())
                .execute(&mut *tx)
                .await?;
                fired
                    .entry((device.plugin.clone(), device.org.clone()))
                    .or_default()
                    .push(json!({ "rule": rule, "device": device.id, "org": device.org, "at": at, "detail": detail }));
            } else {
                sqlx::query("DELETE FROM tm_alert_state WHERE plugin_id = $1 AND rule = $2 AND device_id = $3")
                    .bind(&device.plugin)
                    .bind(&rule)
                    .bind(&device.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let mut count = 0;
        for ((plugin, org), alerts) in &fired {
            count += alerts.len() as u64;
            self.messaging
                .enqueue_in(
                    &mut tx,
                    plugin,
                    Message {
                        topic: ALERT_TOPIC.to_string(),
                        key: None,
                        org: Some(org.clone()),
                        payload: json!({ "alerts": alerts }).to_string().into_bytes(),
                        idempotency_key: None,
                    },
                )
                .await?;
        }
        tx.commit().await?;
        if count > 0 {
            self.stats.alerts.fetch_add(count, Ordering::Relaxed);
            self.messaging.wake();
            self.live.changed();
        }
        Ok(())
    }

    /// Offline rules: devices silent for longer than the rule allows (never
    /// seen: since registration). Run by every node; the alert state keeps
    /// one alert per silence.
    pub async fn sweep_offline(&self) -> Result<()> {
        let plugins: Vec<String> = sqlx::query_scalar("SELECT DISTINCT plugin_id FROM tm_rules")
            .fetch_all(&self.db)
            .await?;
        let now = calendar::now_ms();
        let mut verdicts = Vec::new();
        for plugin in plugins {
            let rules = self.rules_of(&plugin).await?;
            let offline: Vec<(&Rule, u32)> = rules
                .iter()
                .filter_map(|r| match r.condition {
                    Condition::Offline { minutes } => Some((r, minutes)),
                    _ => None,
                })
                .collect();
            if offline.is_empty() {
                continue;
            }
            let rows = sqlx::query(&format!("{DEVICE_SELECT} WHERE d.plugin_id = $1"))
                .bind(&plugin)
                .fetch_all(&self.db)
                .await?;
            for device in rows.iter().map(device_of) {
                if matches!(device.protocol, Protocol::Manual | Protocol::Virtual) {
                    continue;
                }
                let device = Arc::new(device);
                let seen = device.last_seen.unwrap_or(device.created_at);
                for (rule, minutes) in &offline {
                    if rule.covers(&device.id) {
                        let silent = now - seen > *minutes as i64 * 60_000;
                        verdicts.push((
                            device.clone(),
                            rule.name.clone(),
                            silent,
                            now,
                            json!({ "last_seen": device.last_seen, "minutes": minutes }),
                        ));
                    }
                }
            }
        }
        self.settle_verdicts(verdicts).await
    }

    /// PostgreSQL: the monthly partitions of raw readings and track points
    /// from the oldest month a reading is still taken for to two months
    /// ahead (a partition cannot be cut out of the default one once that
    /// holds rows of its month, so they are made before their month).
    pub async fn prepare_partitions(&self) -> Result<u32> {
        if self.dialect != Dialect::Postgres {
            return Ok(0);
        }
        let now = calendar::now_ms();
        let mut start = self.bucket_start(Span::Month, now - PAST_LIMIT_MS);
        let last = self.bucket_start(Span::Month, now + 62 * 86_400_000);
        let mut made = 0;
        while start <= last {
            let end = self.bucket_start(Span::Month, start + 32 * 86_400_000);
            let days = (start + self.utc_offset_ms).div_euclid(86_400_000);
            let (y, m, _) = calendar::civil_from_days(days);
            for table in ["tm_readings", "tm_track"] {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {table}_{y:04}{m:02} PARTITION OF {table}
                     FOR VALUES FROM ({start}) TO ({end})"
                );
                match sqlx::raw_sql(&sql).execute(&self.db).await {
                    Ok(_) => made += 1,
                    // Rows of that month already sit in the default
                    // partition: they stay there.
                    Err(e) => tracing::debug!(%table, y, m, error = %e, "partition not made"),
                }
            }
            start = end;
        }
        Ok(made)
    }

    /// PostgreSQL: drops the monthly partitions that end before `cutoff`.
    async fn drop_old_partitions(&self, cutoff: i64) -> Result<()> {
        for table in ["tm_readings", "tm_track"] {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
            )
            .bind(table)
            .fetch_all(&self.db)
            .await?;
            for name in names {
                let Some(month) = name.strip_prefix(&format!("{table}_")) else {
                    continue;
                };
                let (Ok(y), Ok(m)) = (
                    month.get(..4).unwrap_or("").parse::<i64>(),
                    month.get(4..).unwrap_or("").parse::<u32>(),
                ) else {
                    continue;
                };
                let start = calendar::days_from_civil(y, m, 1) * 86_400_000 - self.utc_offset_ms;
                let end = self.bucket_start(Span::Month, start + 32 * 86_400_000);
                if end <= cutoff {
                    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {name}"))
                        .execute(&self.db)
                        .await?;
                    tracing::info!(partition = %name, "dropped telemetry partition past retention");
                }
            }
        }
        Ok(())
    }

    /// Drops raw readings and track points past the retention (roll-ups
    /// stay) and trims the refused list.
    pub async fn sweep_retention(&self) -> Result<u64> {
        let cutoff = calendar::now_ms() - self.raw_retention_days as i64 * 86_400_000;
        if self.dialect == Dialect::Postgres {
            self.prepare_partitions().await?;
            self.drop_old_partitions(cutoff).await?;
        }
        let mut n = sqlx::query("DELETE FROM tm_readings WHERE at < $1")
            .bind(cutoff)
            .execute(&self.db)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM tm_track WHERE at < $1")
            .bind(cutoff)
            .execute(&self.db)
            .await?
            .rows_affected();
        let top: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM tm_rejected")
            .fetch_one(&self.db)
            .await?;
        if let Some(top) = top {
            sqlx::query("DELETE FROM tm_rejected WHERE id <= $1")
                .bind(top - REJECTED_KEPT)
                .execute(&self.db)
                .await?;
        }
        Ok(n)
    }

    /// The sweeps, forever.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        let mut round: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = self.sweep_offline().await {
                tracing::warn!(error = %e, "telemetry offline sweep failed");
            }
            // Hourly.
            if round.is_multiple_of(120)
                && let Err(e) = self.sweep_retention().await
            {
                tracing::warn!(error = %e, "telemetry retention sweep failed");
            }
            round += 1;
        }
    }
}

/// JT/T 808 terminals as the telemetry service knows them: a terminal is
/// a `jt808` device whose external id is its phone number.
pub struct Terminals808(pub Arc<Telemetry>);

impl Terminals808 {
    async fn terminal(&self, phone: &str) -> Option<Arc<Device>> {
        match self.0.by_external(Protocol::Jt808, phone).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(%phone, error = %e, "JT/T 808 terminal lookup failed");
                None
            }
        }
    }
}

impl jt808::Terminals for Terminals808 {
    fn register<'a>(
        &'a self,
        phone: &'a str,
        registration: &'a jt808::Registration,
    ) -> futures_util::future::BoxFuture<'a, std::result::Result<String, jt808::RegisterResult>>
    {
        Box::pin(async move {
            if self.terminal(phone).await.is_none() {
                tracing::info!(%phone, plate = %registration.plate, "JT/T 808 registration of an undeclared terminal");
                return Err(jt808::RegisterResult::NoSuchTerminal);
            }
            match self.0.issue_auth_code(phone).await {
                Ok(Some(code)) => Ok(code),
                _ => Err(jt808::RegisterResult::NoSuchTerminal),
            }
        })
    }

    fn authenticate<'a>(
        &'a self,
        phone: &'a str,
        auth_code: &'a str,
    ) -> futures_util::future::BoxFuture<'a, bool> {
        Box::pin(async move {
            matches!(self.0.auth_code(phone).await, Ok(Some(code)) if code == auth_code)
        })
    }

    fn locations<'a>(
        &'a self,
        phone: &'a str,
        _kind: jt808::BatchKind,
        reports: Vec<jt808::LocationReport>,
    ) -> futures_util::future::BoxFuture<'a, std::result::Result<(), String>> {
        Box::pin(async move {
            let device = self
                .terminal(phone)
                .await
                .ok_or_else(|| format!("terminal {phone} is not registered"))?;
            let points: Vec<TrackPoint> = reports
                .iter()
                .map(|r| TrackPoint {
                    at: r.at * 1000,
                    latitude: r.latitude,
                    longitude: r.longitude,
                    altitude_m: r.altitude_m as f64,
                    speed_kmh: r.speed_kmh,
                    heading: r.heading,
                    alarm: r.alarm,
                    status: r.status,
                })
                .collect();
            // Speed and odometer are also channels, when the plugin
            // declared them, so they roll up like any reading.
            let mut readings = Vec::new();
            for r in &reports {
                let mut add = |channel: &str, value: f64| {
                    if device.channel(channel).is_some() {
                        readings.push(Incoming {
                            device: device.clone(),
                            channel: channel.to_string(),
                            at: r.at * 1000,
                            value,
                            quality: Quality::Good,
                        });
                    }
                };
                add("speed_kmh", r.speed_kmh);
                if let Some(km) = r.mileage_km {
                    add("mileage_km", km);
                }
            }
            if !readings.is_empty() {
                self.0
                    .ingest("jt808", readings, Vec::new())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            self.0
                .ingest_track(device, points)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The values of [`Telemetry::readings_sql`]'s insert.
fn bind_readings<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    chunk: &'q [(Incoming, Option<f64>)],
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for (r, delta) in chunk {
        q = q
            .bind(&r.device.plugin)
            .bind(&r.device.id)
            .bind(&r.channel)
            .bind(r.at)
            .bind(r.value)
            .bind(delta.is_some())
            .bind(delta.unwrap_or(0.0))
            .bind(r.quality.as_str())
            .bind(now);
    }
    q
}

/// Great-circle distance in metres.
fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().asin()
}

/// Ray casting over (latitude, longitude) vertices.
fn inside_polygon(lat: f64, lon: f64, vertices: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for i in 0..vertices.len() {
        let (yi, xi) = vertices[i];
        let (yj, xj) = vertices[j];
        if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buckets_follow_the_regions_clock() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        let bus = Arc::new(crate::cluster::Bus::local("test"));
        let messaging = Arc::new(Messaging::new(db.clone(), Default::default(), bus, false));
        let t = Telemetry::new(db.clone(), Arc::new(Audit::new(db)), messaging, 480, 400);
        // 2025-03-31 16:30 UTC is 2025-04-01 00:30 in UTC+8.
        let at = 1_743_438_600_000;
        assert_eq!(t.bucket_start(Span::QuarterHour, at), at);
        assert_eq!(t.bucket_start(Span::Hour, at), at - 30 * 60_000);
        // The region's day and month begin at 16:00 UTC the day before.
        assert_eq!(t.bucket_start(Span::Day, at), 1_743_436_800_000);
        assert_eq!(t.bucket_start(Span::Month, at), 1_743_436_800_000);
        // A minute before midnight is still March.
        let march = 1_743_436_740_000;
        assert_eq!(t.bucket_start(Span::Month, march), 1_740_758_400_000);
    }

    /// Duplicates come back only when a batch has some: a batch of new
    /// readings over several statements stores them all; one that mixes
    /// new readings with stored ones (the plain insert undone, redone
    /// returning) stores only the new, and sums them once.
    #[tokio::test]
    async fn a_batch_with_duplicates_stores_only_the_new_readings() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        let bus = Arc::new(crate::cluster::Bus::local("test"));
        let messaging = Arc::new(Messaging::new(db.clone(), Default::default(), bus, false));
        let t = Telemetry::new(
            db.clone(),
            Arc::new(Audit::new(db.clone())),
            messaging,
            480,
            400,
        );
        sqlx::query(
            "INSERT INTO tm_devices (plugin_id, id, kind, org_id, protocol, external_id, name, channels, created_at, updated_at)
             VALUES ('p', 'm1', 'meter', 'org-1', 'mqtt', 'M1', 'm1',
               '[{\"name\":\"kw\",\"unit\":\"kW\",\"kind\":\"instantaneous\",\"min\":null,\"max\":null,\"max_step\":null}]', 0, 0)",
        )
        .execute(&db)
        .await
        .unwrap();
        let device = Arc::new(t.device("p", "m1").await.unwrap().unwrap());
        // An hour's start in the recent past, so every reading is in it.
        let hour = (calendar::now_ms() - 2 * 3_600_000) / 3_600_000 * 3_600_000;
        let reading = |second: i64| Incoming {
            device: device.clone(),
            channel: "kw".into(),
            at: hour + second * 1000,
            value: 1.0,
            quality: Quality::Good,
        };
        let first: Vec<Incoming> = (0..250).map(reading).collect();
        let r = t.ingest("test", first, Vec::new()).await.unwrap();
        assert_eq!((r.stored, r.duplicates), (250, 0));
        // 200..249 are stored already; 250..299 are new.
        let second: Vec<Incoming> = (200..300).map(reading).collect();
        let r = t.ingest("test", second, Vec::new()).await.unwrap();
        assert_eq!((r.stored, r.duplicates), (50, 50));
        let (rows, n, total): (i64, i64, f64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM tm_readings), n, total FROM tm_rollups
             WHERE span = 'hour' AND start = $1",
        )
        .bind(hour)
        .fetch_one(&db)
        .await
        .unwrap();
        assert_eq!((rows, n, total), (300, 300, 300.0));
    }

    #[test]
    fn distances_and_polygons() {
        // Urumqi to Kashgar, about 1,060 km as the crow flies.
        let d = distance_m(43.8256, 87.6168, 39.4704, 75.9898);
        assert!((1_000_000.0..1_100_000.0).contains(&d), "{d}");
        let square = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
        assert!(inside_polygon(0.5, 0.5, &square));
        assert!(!inside_polygon(1.5, 0.5, &square));
    }
}
