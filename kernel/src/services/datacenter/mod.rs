//! The data center (数据中心): a catalogue of indicators, the values plugins
//! and users publish for them per org and period, roll-ups up the org tree
//! (county → prefecture → region) and over periods, share grants between
//! plugins, progress against the plan's own indicators, and a read-only
//! open API.
//!
//! Who may see what is decided here and in the HTTP handlers, never by a
//! plugin: a plugin reads its own indicators, those shared with it and open
//! ones, and only for orgs its caller reaches; a user reads any indicator
//! of the catalogue (the catalogue is the government's, not a plugin's) for
//! the orgs their `kernel.datacenter.read` binding reaches.
//!
//! Aggregation rules (one per indicator, fixed at definition):
//!
//! | rule | across orgs | across periods | for |
//! |---|---|---|---|
//! | `sum` | sum | sum | flows: energy used, water drawn, trips |
//! | `stock` | sum | latest period | counts at a date: vehicles, piles, standards |
//! | `mean` | mean | mean | ratios and rates: per capita, shares in % |
//!
//! | `ratio` | Σ numerator ÷ Σ denominator | the same | rates over a base: occupancy, NEV share |
//!
//! `mean` across orgs is unweighted: each org's ratio counts once. A
//! `ratio` indicator keeps no values: it names two `sum` or `stock`
//! indicators, and a query rolls each up and divides, so a prefecture's
//! rate is the rate of its totals (25 % and 0 % over equal bases give
//! 12.5 % as a mean, but the region's true rate when the bases differ).
//!
//! Every indicator has one granularity (`year`, `quarter`, `month`); values
//! are published at it, and queries may roll them up to a coarser one only,
//! so a number is never counted twice at two granularities. Values are
//! published at the org they belong to, never as aggregates: the kernel
//! rolls them up.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::audit::{self, Audit};
use crate::core::error::ServiceError;
use crate::core::scope::OrgIndex;
use crate::db::{Db, now};

pub mod dashboards;
pub mod overview;
pub use overview::{Change, Overview};

/// The owner of the plan's indicators and of values users enter by hand.
pub const KERNEL_OWNER: &str = "kernel";
/// Plugin ids that may not own indicators: the kernel's and the plan's
/// namespaces.
const RESERVED_OWNERS: [&str; 2] = [KERNEL_OWNER, "plan"];
/// At most this many values in one publish call.
pub const MAX_VALUES_PER_PUBLISH: usize = 1000;
/// A query reads at most this many stored values, so one call stays bounded.
const MAX_VALUES_READ: usize = 200_000;

// ------------------------------------------------------------------ types

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Stock,
    Mean,
    /// Computed from two other indicators ([`Ratio`]); stores no values.
    Ratio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    // Ordered finest first, so `a <= b` means `a` is at least as fine.
    Month,
    Quarter,
    Year,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    Private,
    Shared,
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Change against the baseline, in %, at most the value (−6 means a
    /// cut of at least 6 %).
    ChangeAtMost,
    AtLeast,
    AtMost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Publish,
}

macro_rules! text_enum {
    ($ty:ty { $($v:ident => $s:literal),* $(,)? }) => {
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
text_enum!(Aggregation { Sum => "sum", Stock => "stock", Mean => "mean", Ratio => "ratio" });
text_enum!(Granularity { Month => "month", Quarter => "quarter", Year => "year" });
text_enum!(Sharing { Private => "private", Shared => "shared", Open => "open" });
text_enum!(TargetKind { ChangeAtMost => "change_at_most", AtLeast => "at_least", AtMost => "at_most" });
text_enum!(Access { Read => "read", Publish => "publish" });

/// What the plan asks of an indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub kind: TargetKind,
    pub value: f64,
    /// The period changes are measured against (`change_at_most`).
    pub baseline_period: Option<String>,
    /// The period by which the target should be met.
    pub period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grant {
    pub plugin: String,
    pub access: Access,
}

/// What a ratio indicator divides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    pub numerator: String,
    pub denominator: String,
    /// Multiplies the quotient: 100 for a percentage.
    pub scale: f64,
}

/// What a plugin defines as a ratio.
#[derive(Debug, Clone)]
pub struct RatioDefinition {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub schema: String,
    pub ratio: Ratio,
    pub sharing: Sharing,
}

/// One entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    pub code: String,
    /// A plugin id, or `kernel`.
    pub owner: String,
    pub name: BTreeMap<String, String>,
    pub unit: String,
    /// JSON describing the dataset (dimensions, definitions); `{}` if none.
    pub schema: Value,
    pub aggregation: Aggregation,
    pub granularity: Granularity,
    pub sharing: Sharing,
    pub shared_with: Vec<Grant>,
    pub target: Option<Target>,
    /// Set exactly when `aggregation` is `ratio`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

/// What a plugin (or the seed) defines.
#[derive(Debug, Clone)]
pub struct Definition {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub schema: String,
    pub aggregation: Aggregation,
    pub granularity: Granularity,
    pub sharing: Sharing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub org: String,
    pub period: String,
    pub value: f64,
}

/// One answer row: a raw value, or an aggregate of `count` values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub org: String,
    pub period: String,
    pub value: f64,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Period,
    Org,
}

/// A values query, already checked against the caller's reach.
#[derive(Debug, Clone, Default)]
pub struct ValueQuery {
    pub org: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub rollup: bool,
    pub group: GroupBy,
    /// Bucket size for roll-ups; the indicator's granularity when none.
    pub per: Option<Granularity>,
}

/// Who reads, for the sharing rules.
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    /// A plugin: its own, those shared with it, open ones.
    Plugin(&'a str),
    /// A user through the kernel API (org reach checked by the handler).
    User,
    /// Anyone, without login: open indicators only.
    Anonymous,
}

type Result<T> = std::result::Result<T, ServiceError>;

fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

// ---------------------------------------------------------------- periods

/// `YYYY`, `YYYY-Qn` or `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    pub year: i32,
    pub granularity: Granularity,
    /// Quarter 1–4 or month 1–12; 0 for a year.
    pub n: u8,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        let year_of = |y: &str| {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse::<i32>().ok())
                .flatten()
                .filter(|y| (1900..=2999).contains(y))
        };
        match s.split_once('-') {
            None => Some(Period {
                year: year_of(s)?,
                granularity: Granularity::Year,
                n: 0,
            }),
            Some((y, q)) if q.len() == 2 && q.starts_with('Q') => {
                let n = q[1..].parse::<u8>().ok().filter(|n| (1..=4).contains(n))?;
                Some(Period {
                    year: year_of(y)?,
                    granularity: Granularity::Quarter,
                    n,
                })
            }
            Some((y, m)) if m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) => {
                let n = m.parse::<u8>().ok().filter(|n| (1..=12).contains(n))?;
                Some(Period {
                    year: year_of(y)?,
                    granularity: Granularity::Month,
                    n,
                })
            }
            _ => None,
        }
    }

    /// The month with index `year * 12 + month - 1`.
    fn of_month(index: i32) -> Period {
        Period {
            year: index.div_euclid(12),
            granularity: Granularity::Month,
            n: index.rem_euclid(12) as u8 + 1,
        }
    }

    /// First and last month, as `year * 12 + month - 1`.
    fn months(&self) -> (i32, i32) {
        let base = self.year * 12;
        match self.granularity {
            Granularity::Year => (base, base + 11),
            Granularity::Quarter => {
                let first = base + (self.n as i32 - 1) * 3;
                (first, first + 2)
            }
            Granularity::Month => (base + self.n as i32 - 1, base + self.n as i32 - 1),
        }
    }

    /// The period of granularity `g` (coarser or equal) containing this one.
    pub fn bucket(&self, g: Granularity) -> Period {
        let (first, _) = self.months();
        let month = (first % 12) as u8 + 1;
        let n = match g {
            Granularity::Year => 0,
            Granularity::Quarter => (month - 1) / 3 + 1,
            Granularity::Month => month,
        };
        Period {
            year: self.year,
            granularity: g,
            n,
        }
    }

    pub fn label(&self) -> String {
        match self.granularity {
            Granularity::Year => format!("{}", self.year),
            Granularity::Quarter => format!("{}-Q{}", self.year, self.n),
            Granularity::Month => format!("{}-{:02}", self.year, self.n),
        }
    }
}

fn parse_period(field: &str, s: &str) -> Result<Period> {
    Period::parse(s)
        .ok_or_else(|| invalid(field, format!("period {s:?}: use YYYY, YYYY-Qn or YYYY-MM")))
}

/// Indicator codes: `<owner>.<name>`, lower-case letters, digits, `_`, `-`
/// and dots; 3 to 128 bytes.
pub fn valid_code(code: &str) -> bool {
    (3..=128).contains(&code.len())
        && code.contains('.')
        && !code.starts_with('.')
        && !code.ends_with('.')
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}

// ---------------------------------------------------------- the plan table

/// Which bundled system feeds each plan indicator. Those ids are reserved
/// to the platform administrator (`core::ids::BUNDLED_SYSTEM_IDS`), so
/// granting them by id cannot hand the plan to a local module posing as
/// one. The standards counts have no system yet: an administrator grants
/// them.
pub const PLAN_FEEDS: &[(&str, &str)] = &[
    ("plan.energy_per_capita", "energy"),
    ("plan.energy_per_area", "energy"),
    ("plan.water_per_capita", "energy"),
    ("plan.carbon_per_area", "energy"),
    ("plan.energy_total", "energy"),
    ("plan.water_total", "energy"),
    ("plan.carbon_total", "energy"),
    ("plan.key_users_metered_share", "energy"),
    ("plan.nev_share", "vehicles"),
    ("plan.nev_count", "vehicles"),
    ("plan.charging_piles", "vehicles"),
    ("plan.physical_warehouses", "assets"),
    ("plan.room_registration_region", "property"),
    ("plan.room_registration_prefecture", "property"),
    ("plan.room_registration_county", "property"),
];

/// The revised 14th Five-Year Plan's own indicators (专栏1, 专栏8; see
/// docs/DOMAIN.md), seeded at every start. Targets are data here, not code
/// paths: (code, zh, en, unit, aggregation, target kind, target value).
/// Change targets compare 2025 against the 2020 baseline (end of the 13th
/// plan); level targets are for 2025.
const PLAN: &[(&str, &str, &str, &str, Aggregation, TargetKind, f64)] = &[
    (
        "plan.energy_per_capita",
        "人均综合能耗",
        "Energy use per capita",
        "kgce/person",
        Aggregation::Mean,
        TargetKind::ChangeAtMost,
        -6.0,
    ),
    (
        "plan.energy_per_area",
        "单位建筑面积能耗",
        "Energy use per m² of floor area",
        "kgce/m²",
        Aggregation::Mean,
        TargetKind::ChangeAtMost,
        -5.0,
    ),
    (
        "plan.water_per_capita",
        "人均用水量",
        "Water use per capita",
        "m³/person",
        Aggregation::Mean,
        TargetKind::ChangeAtMost,
        -6.0,
    ),
    (
        "plan.carbon_per_area",
        "单位建筑面积碳排放",
        "Carbon emissions per m² of floor area",
        "kgCO₂/m²",
        Aggregation::Mean,
        TargetKind::ChangeAtMost,
        -7.0,
    ),
    (
        "plan.energy_total",
        "能源消费总量",
        "Total energy use",
        "tce",
        Aggregation::Sum,
        TargetKind::AtMost,
        3_170_000.0,
    ),
    (
        "plan.water_total",
        "用水总量",
        "Total water use",
        "m³",
        Aggregation::Sum,
        TargetKind::AtMost,
        134_390_000.0,
    ),
    (
        "plan.carbon_total",
        "碳排放总量",
        "Total carbon emissions",
        "tCO₂",
        Aggregation::Sum,
        TargetKind::AtMost,
        9_870_000.0,
    ),
    (
        "plan.nev_share",
        "新增及更新公务用车新能源汽车比例",
        "NEV share of new and replaced official vehicles",
        "%",
        Aggregation::Mean,
        TargetKind::AtLeast,
        80.0,
    ),
    (
        "plan.nev_count",
        "新能源汽车数量",
        "New-energy vehicles",
        "vehicles",
        Aggregation::Stock,
        TargetKind::AtLeast,
        6000.0,
    ),
    (
        "plan.charging_piles",
        "充电桩数量",
        "Charging piles",
        "piles",
        Aggregation::Stock,
        TargetKind::AtLeast,
        6000.0,
    ),
    (
        "plan.regional_standards",
        "自治区地方标准",
        "Regional standards issued",
        "standards",
        Aggregation::Stock,
        TargetKind::AtLeast,
        20.0,
    ),
    (
        "plan.internal_standards",
        "内部标准",
        "Internal standards issued",
        "standards",
        Aggregation::Stock,
        TargetKind::AtLeast,
        200.0,
    ),
    (
        "plan.physical_warehouses",
        "实体公物仓",
        "Physical public asset warehouses",
        "warehouses",
        Aggregation::Stock,
        TargetKind::AtLeast,
        1.0,
    ),
    (
        "plan.key_users_metered_share",
        "重点用能单位电耗在线监测比例",
        "Key energy users with online electricity metering",
        "%",
        Aggregation::Mean,
        TargetKind::AtLeast,
        50.0,
    ),
    (
        "plan.room_registration_region",
        "自治区本级办公用房确权登记率",
        "Office-room ownership registration, region-level units",
        "%",
        Aggregation::Mean,
        TargetKind::AtLeast,
        95.0,
    ),
    (
        "plan.room_registration_prefecture",
        "地州市办公用房确权登记率",
        "Office-room ownership registration, prefectures",
        "%",
        Aggregation::Mean,
        TargetKind::AtLeast,
        90.0,
    ),
    (
        "plan.room_registration_county",
        "县市区办公用房确权登记率",
        "Office-room ownership registration, counties",
        "%",
        Aggregation::Mean,
        TargetKind::AtLeast,
        80.0,
    ),
];
const PLAN_BASELINE: &str = "2020";
const PLAN_TARGET_PERIOD: &str = "2025";

/// The plan's codes, for tests and docs.
pub fn plan_codes() -> impl Iterator<Item = &'static str> {
    PLAN.iter().map(|p| p.0)
}

// ---------------------------------------------------------------- service

pub struct DataCenter {
    db: Db,
    audit: Arc<Audit>,
    /// Which values changed on this node, for the wall's live stream
    /// (`overview.rs`).
    live: overview::Live,
}

/// A ratio's row in `dc_indicators` says `mean` (that table's CHECK
/// predates ratios); its `dc_ratios` row makes it a ratio.
const INDICATOR_COLUMNS: &str = "i.code, i.owner, i.name_zh, i.name_en, i.unit, i.schema_json, \
     i.aggregation, i.granularity, i.sharing, i.target_kind, i.target_value, i.baseline_period, \
     i.target_period, r.numerator, r.denominator, r.scale";
const INDICATOR_FROM: &str = "dc_indicators i LEFT JOIN dc_ratios r ON r.code = i.code";

fn row_to_indicator(r: &AnyRow, grants: Vec<Grant>) -> Indicator {
    let target_kind: Option<String> = r.get(9);
    let target = target_kind
        .as_deref()
        .and_then(TargetKind::parse)
        .map(|kind| Target {
            kind,
            value: r.get::<Option<f64>, _>(10).unwrap_or(0.0),
            baseline_period: r.get(11),
            period: r.get(12),
        });
    let schema: String = r.get(5);
    let ratio = r.get::<Option<String>, _>(13).map(|numerator| Ratio {
        numerator,
        denominator: r.get(14),
        scale: r.get(15),
    });
    Indicator {
        code: r.get(0),
        owner: r.get(1),
        name: BTreeMap::from([
            ("zh-CN".to_string(), r.get(2)),
            ("en".to_string(), r.get(3)),
        ]),
        unit: r.get(4),
        schema: serde_json::from_str(&schema).unwrap_or(Value::Null),
        aggregation: match ratio {
            Some(_) => Aggregation::Ratio,
            None => Aggregation::parse(r.get::<&str, _>(6)).unwrap_or(Aggregation::Sum),
        },
        granularity: Granularity::parse(r.get::<&str, _>(7)).unwrap_or(Granularity::Year),
        sharing: Sharing::parse(r.get::<&str, _>(8)).unwrap_or(Sharing::Private),
        shared_with: grants,
        target,
        ratio,
    }
}

impl Indicator {
    /// A plugin that happens to be called `kernel` owns nothing of the
    /// kernel's.
    fn owned_by(&self, plugin: &str) -> bool {
        self.owner == plugin && plugin != KERNEL_OWNER
    }

    /// The sharing rule for reading.
    pub fn readable_by(&self, reader: Reader<'_>) -> bool {
        match reader {
            Reader::User => true,
            Reader::Anonymous => self.sharing == Sharing::Open,
            Reader::Plugin(p) => {
                self.owned_by(p)
                    || self.sharing == Sharing::Open
                    || (self.sharing == Sharing::Shared
                        && self.shared_with.iter().any(|g| g.plugin == p))
            }
        }
    }

    /// Plugins publish into their own indicators, and into others' (the
    /// plan's, say) only with a `publish` grant.
    pub fn publishable_by(&self, plugin: &str) -> bool {
        self.owned_by(plugin)
            || self
                .shared_with
                .iter()
                .any(|g| g.plugin == plugin && g.access == Access::Publish)
    }
}

impl DataCenter {
    pub fn new(db: Db, audit: Arc<Audit>) -> Self {
        DataCenter {
            db,
            audit,
            live: overview::Live::new(),
        }
    }

    /// Registers the plan's indicators; run at every start. Names, units
    /// and targets follow the table; sharing and grants, which an
    /// administrator may have changed, are kept.
    /// Grants `plugin` publishing into the plan indicators [`PLAN_FEEDS`]
    /// names it for, keeping any grant an administrator already set;
    /// answers the codes newly granted. `tianshan up` calls it when it first
    /// installs a bundled system, as it grants the system's subscriptions.
    pub async fn grant_plan_feeds(&self, plugin: &str, actor: &str) -> Result<Vec<String>> {
        let codes: Vec<&str> = PLAN_FEEDS
            .iter()
            .filter(|(_, feeder)| *feeder == plugin)
            .map(|(code, _)| *code)
            .collect();
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.audit.begin().await?;
        let mut granted = Vec::new();
        for code in codes {
            let added = sqlx::query(
                "INSERT INTO dc_grants (code, plugin_id, access, granted_at) VALUES ($1, $2, 'publish', $3)
                 ON CONFLICT (code, plugin_id) DO NOTHING",
            )
            .bind(code)
            .bind(plugin)
            .bind(now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added > 0 {
                granted.push(code.to_string());
            }
        }
        let entry = audit::Entry::new(actor, "datacenter.share", "ok")
            .target(plugin.to_string())
            .detail(json!({ "plan_feeds": granted, "access": "publish" }));
        tx.commit(&entry).await?;
        Ok(granted)
    }

    pub async fn seed_plan(&self) -> sqlx::Result<()> {
        let now = now();
        for (code, zh, en, unit, aggregation, kind, target) in PLAN {
            let baseline = (*kind == TargetKind::ChangeAtMost).then_some(PLAN_BASELINE);
            sqlx::query(
                "INSERT INTO dc_indicators (code, owner, name_zh, name_en, unit, schema_json, aggregation,
                     granularity, sharing, target_kind, target_value, baseline_period, target_period,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, '{}', $6, 'year', 'open', $7, $8, $9, $10, $11, $11)
                 ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en,
                     unit = excluded.unit, aggregation = excluded.aggregation,
                     target_kind = excluded.target_kind, target_value = excluded.target_value,
                     baseline_period = excluded.baseline_period, target_period = excluded.target_period",
            )
            .bind(*code)
            .bind(KERNEL_OWNER)
            .bind(*zh)
            .bind(*en)
            .bind(*unit)
            .bind(aggregation.as_str())
            .bind(kind.as_str())
            .bind(*target)
            .bind(baseline)
            .bind(PLAN_TARGET_PERIOD)
            .bind(now)
            .execute(&self.db)
            .await?;
        }
        Ok(())
    }

    async fn grants(&self, code: &str) -> sqlx::Result<Vec<Grant>> {
        let rows = sqlx::query(
            "SELECT plugin_id, access FROM dc_grants WHERE code = $1 ORDER BY plugin_id",
        )
        .bind(code)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Grant {
                plugin: r.get(0),
                access: Access::parse(r.get::<&str, _>(1)).unwrap_or(Access::Read),
            })
            .collect())
    }

    /// The whole catalogue, by code.
    pub async fn list(&self) -> Result<Vec<Indicator>> {
        let rows = sqlx::query(&format!(
            "SELECT {INDICATOR_COLUMNS} FROM {INDICATOR_FROM} ORDER BY i.code"
        ))
        .fetch_all(&self.db)
        .await?;
        let grant_rows =
            sqlx::query("SELECT code, plugin_id, access FROM dc_grants ORDER BY plugin_id")
                .fetch_all(&self.db)
                .await?;
        let mut grants: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        for r in &grant_rows {
            grants.entry(r.get(0)).or_default().push(Grant {
                plugin: r.get(1),
                access: Access::parse(r.get::<&str, _>(2)).unwrap_or(Access::Read),
            });
        }
        Ok(rows
            .iter()
            .map(|r| {
                let code: String = r.get(0);
                row_to_indicator(r, grants.remove(&code).unwrap_or_default())
            })
            .collect())
    }

    /// The indicators `reader` may read.
    pub async fn catalogue(&self, reader: Reader<'_>) -> Result<Vec<Indicator>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|i| i.readable_by(reader))
            .collect())
    }

    pub async fn get(&self, code: &str) -> Result<Option<Indicator>> {
        let row = sqlx::query(&format!(
            "SELECT {INDICATOR_COLUMNS} FROM {INDICATOR_FROM} WHERE i.code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.db)
        .await?;
        match row {
            Some(r) => Ok(Some(row_to_indicator(&r, self.grants(code).await?))),
            None => Ok(None),
        }
    }

    /// The indicator if `reader` may read it; not found otherwise, so a
    /// private indicator's existence does not leak.
    pub async fn readable(&self, code: &str, reader: Reader<'_>) -> Result<Indicator> {
        match self.get(code).await? {
            Some(i) if i.readable_by(reader) => Ok(i),
            _ => Err(ServiceError::NotFound(format!("indicator {code}"))),
        }
    }

    /// Defines (or redefines, from an upgrade hook) one of `plugin`'s
    /// indicators. Its code must start with `<plugin>.`. A redefinition
    /// updates names, unit and schema; it keeps sharing and grants (an
    /// administrator's decisions) and refuses to change the aggregation or
    /// granularity, which would change the meaning of stored values.
    pub async fn define(&self, plugin: &str, actor: &str, def: Definition) -> Result<Indicator> {
        if def.aggregation == Aggregation::Ratio {
            return Err(invalid(
                "aggregation",
                "a ratio names its numerator and denominator: define it with define-ratio",
            ));
        }
        let schema = check_definition(
            plugin,
            &def.code,
            &def.name_zh,
            &def.name_en,
            &def.unit,
            &def.schema,
        )?;
        let naming = Naming {
            code: &def.code,
            name_zh: &def.name_zh,
            name_en: &def.name_en,
            unit: &def.unit,
            schema: &schema,
        };
        let mut tx = self.audit.begin().await?;
        let existing = sqlx::query(
            "SELECT i.owner, i.aggregation, i.granularity, r.code FROM dc_indicators i
             LEFT JOIN dc_ratios r ON r.code = i.code WHERE i.code = $1",
        )
        .bind(&def.code)
        .fetch_optional(&mut *tx)
        .await?;
        let now = now();
        let op = match existing {
            Some(r) => {
                let owner: String = r.get(0);
                if owner != plugin {
                    return Err(ServiceError::Forbidden(format!(
                        "indicator {} belongs to {owner}",
                        def.code
                    )));
                }
                if r.get::<Option<String>, _>(3).is_some()
                    || r.get::<String, _>(1) != def.aggregation.as_str()
                    || r.get::<String, _>(2) != def.granularity.as_str()
                {
                    return Err(invalid(
                        "aggregation",
                        "the aggregation and granularity of an indicator cannot change",
                    ));
                }
                naming.rename(&mut tx, now).await?;
                "redefine"
            }
            None => {
                naming
                    .insert(
                        &mut tx,
                        plugin,
                        def.aggregation,
                        def.granularity,
                        def.sharing,
                        now,
                    )
                    .await?;
                "define"
            }
        };
        let entry = audit::Entry::new(actor, &format!("datacenter.{op}"), "ok")
            .target(def.code.clone())
            .detail(json!({ "owner": plugin, "sharing": def.sharing.as_str() }));
        tx.commit(&entry).await?;
        self.get(&def.code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("indicator {}", def.code)))
    }

    /// Defines (or redefines) one of `plugin`'s ratio indicators over two
    /// `sum` or `stock` indicators of one granularity that it may read. A
    /// redefinition updates names, unit and schema and refuses other parts
    /// or another scale.
    pub async fn define_ratio(
        &self,
        plugin: &str,
        actor: &str,
        def: RatioDefinition,
    ) -> Result<Indicator> {
        let schema = check_definition(
            plugin,
            &def.code,
            &def.name_zh,
            &def.name_en,
            &def.unit,
            &def.schema,
        )?;
        let ratio = &def.ratio;
        if !ratio.scale.is_finite() || ratio.scale == 0.0 {
            return Err(invalid("scale", "scale: a finite number other than 0"));
        }
        let mut granularity = None;
        for (field, code) in [
            ("numerator", &ratio.numerator),
            ("denominator", &ratio.denominator),
        ] {
            let part = match self.get(code).await? {
                Some(i) if i.readable_by(Reader::Plugin(plugin)) => i,
                _ => {
                    return Err(invalid(
                        field,
                        format!("{field} {code:?}: no such indicator readable by {plugin}"),
                    ));
                }
            };
            if !matches!(part.aggregation, Aggregation::Sum | Aggregation::Stock) {
                return Err(invalid(
                    field,
                    format!(
                        "{field} {code:?} is a {} indicator; a ratio divides sum or stock indicators",
                        part.aggregation.as_str()
                    ),
                ));
            }
            if granularity.is_some_and(|g| g != part.granularity) {
                return Err(invalid(
                    field,
                    "the numerator and denominator must have one granularity",
                ));
            }
            granularity = Some(part.granularity);
        }
        if ratio.numerator == def.code || ratio.denominator == def.code {
            return Err(invalid("numerator", "a ratio cannot divide itself"));
        }
        let granularity = granularity.expect("two parts were read");
        let naming = Naming {
            code: &def.code,
            name_zh: &def.name_zh,
            name_en: &def.name_en,
            unit: &def.unit,
            schema: &schema,
        };
        let mut tx = self.audit.begin().await?;
        let existing = sqlx::query(
            "SELECT i.owner, r.numerator, r.denominator, r.scale FROM dc_indicators i
             LEFT JOIN dc_ratios r ON r.code = i.code WHERE i.code = $1",
        )
        .bind(&def.code)
        .fetch_optional(&mut *tx)
        .await?;
        let now = now();
        let op = match existing {
            Some(r) => {
                let owner: String = r.get(0);
                if owner != plugin {
                    return Err(ServiceError::Forbidden(format!(
                        "indicator {} belongs to {owner}",
                        def.code
                    )));
                }
                let same = r.get::<Option<String>, _>(1).as_deref() == Some(&ratio.numerator)
                    && r.get::<Option<String>, _>(2).as_deref() == Some(&ratio.denominator)
                    && r.get::<Option<f64>, _>(3) == Some(ratio.scale);
                if !same {
                    return Err(invalid(
                        "numerator",
                        "the parts and scale of a ratio indicator cannot change",
                    ));
                }
                naming.rename(&mut tx, now).await?;
                "redefine"
            }
            None => {
                // The CHECK on this column predates ratios (INDICATOR_COLUMNS).
                naming
                    .insert(
                        &mut tx,
                        plugin,
                        Aggregation::Mean,
                        granularity,
                        def.sharing,
                        now,
                    )
                    .await?;
                sqlx::query(
                    "INSERT INTO dc_ratios (code, numerator, denominator, scale) VALUES ($1, $2, $3, $4)",
                )
                .bind(&def.code)
                .bind(&ratio.numerator)
                .bind(&ratio.denominator)
                .bind(ratio.scale)
                .execute(&mut *tx)
                .await?;
                "define"
            }
        };
        let entry = audit::Entry::new(actor, &format!("datacenter.{op}"), "ok")
            .target(def.code.clone())
            .detail(json!({
                "owner": plugin,
                "sharing": def.sharing.as_str(),
                "ratio": ratio,
            }));
        tx.commit(&entry).await?;
        self.get(&def.code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("indicator {}", def.code)))
    }

    /// Stores values (insert or replace per org and period), audited in the
    /// same transaction. The caller has checked that `source` may publish
    /// into `indicator` and that every org is within reach.
    pub async fn publish(
        &self,
        indicator: &Indicator,
        source: &str,
        actor: &str,
        acting_org: &str,
        points: &[Point],
    ) -> Result<u32> {
        if let Some(ratio) = &indicator.ratio {
            return Err(invalid(
                "code",
                format!(
                    "indicator {} is computed as {} / {}: publish those",
                    indicator.code, ratio.numerator, ratio.denominator
                ),
            ));
        }
        if points.is_empty() || points.len() > MAX_VALUES_PER_PUBLISH {
            return Err(invalid(
                "values",
                format!("publish 1 to {MAX_VALUES_PER_PUBLISH} values at a time"),
            ));
        }
        let mut normalized = Vec::with_capacity(points.len());
        for p in points {
            let period = parse_period("period", &p.period)?;
            if period.granularity != indicator.granularity {
                return Err(invalid(
                    "period",
                    format!(
                        "indicator {} takes {} periods; got {:?}",
                        indicator.code,
                        indicator.granularity.as_str(),
                        p.period
                    ),
                ));
            }
            if !p.value.is_finite() {
                return Err(invalid("value", "value must be a finite number"));
            }
            normalized.push((p.org.clone(), period.label(), p.value));
        }
        let mut tx = self.audit.begin().await?;
        let now = now();
        for (org, period, value) in &normalized {
            sqlx::query(
                "INSERT INTO dc_values (code, org_id, period, value, source, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (code, org_id, period) DO UPDATE SET value = excluded.value,
                     source = excluded.source, updated_at = excluded.updated_at",
            )
            .bind(&indicator.code)
            .bind(org)
            .bind(period)
            .bind(*value)
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let orgs: std::collections::BTreeSet<&str> =
            normalized.iter().map(|(o, ..)| o.as_str()).collect();
        let entry = audit::Entry::new(actor, "datacenter.publish", "ok")
            .org(if orgs.len() == 1 {
                orgs.first().unwrap().to_string()
            } else {
                acting_org.to_string()
            })
            .target(indicator.code.clone())
            .detail(json!({ "source": source, "values": normalized.len(), "orgs": orgs.len() }));
        tx.commit(&entry).await?;
        // After the commit, so a stream that hears it reads the new values.
        self.live.changed(
            &indicator.code,
            orgs.into_iter().map(str::to_string).collect(),
        );
        Ok(normalized.len() as u32)
    }

    /// Replaces an indicator's sharing level and grants (an administrator's
    /// act, audited).
    pub async fn set_sharing(
        &self,
        code: &str,
        actor: &str,
        sharing: Sharing,
        grants: &[Grant],
    ) -> Result<Indicator> {
        let mut tx = self.audit.begin().await?;
        let n =
            sqlx::query("UPDATE dc_indicators SET sharing = $2, updated_at = $3 WHERE code = $1")
                .bind(code)
                .bind(sharing.as_str())
                .bind(now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Err(ServiceError::NotFound(format!("indicator {code}")));
        }
        sqlx::query("DELETE FROM dc_grants WHERE code = $1")
            .bind(code)
            .execute(&mut *tx)
            .await?;
        for g in grants {
            sqlx::query(
                "INSERT INTO dc_grants (code, plugin_id, access, granted_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(code)
            .bind(&g.plugin)
            .bind(g.access.as_str())
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        let entry = audit::Entry::new(actor, "datacenter.share", "ok")
            .target(code.to_string())
            .detail(json!({ "sharing": sharing.as_str(), "grants": grants }));
        tx.commit(&entry).await?;
        self.get(code)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("indicator {code}")))
    }

    /// Values of `indicator` for `q.org` and its subtree, raw or rolled up.
    /// `q.org` must already be checked against the caller's reach: every
    /// org below a reached org is reached too.
    pub async fn query(
        &self,
        indicator: &Indicator,
        orgs: &OrgIndex,
        q: &ValueQuery,
    ) -> Result<Vec<Row>> {
        let Some(ratio) = &indicator.ratio else {
            return self.query_stored(indicator, orgs, q).await;
        };
        let part = |code: &str| {
            let code = code.to_string();
            async move {
                match self.get(&code).await? {
                    Some(i) if i.ratio.is_none() => Ok(i),
                    _ => Err(ServiceError::Unavailable(format!(
                        "part {code} of ratio {} is gone",
                        indicator.code
                    ))),
                }
            }
        };
        let numerator = part(&ratio.numerator).await?;
        let denominator = part(&ratio.denominator).await?;
        let above = self.query_stored(&numerator, orgs, q).await?;
        let below = self.query_stored(&denominator, orgs, q).await?;
        Ok(divide(above, below, ratio.scale))
    }

    /// [`query`](Self::query) of an indicator that stores its values.
    async fn query_stored(
        &self,
        indicator: &Indicator,
        orgs: &OrgIndex,
        q: &ValueQuery,
    ) -> Result<Vec<Row>> {
        if !orgs.exists(&q.org) {
            return Err(ServiceError::OutsideReach(q.org.clone()));
        }
        let from = q
            .from
            .as_deref()
            .map(|s| parse_period("from", s))
            .transpose()?;
        let to = q.to.as_deref().map(|s| parse_period("to", s)).transpose()?;
        let per = q.per.unwrap_or(indicator.granularity);
        if q.rollup && per < indicator.granularity {
            return Err(invalid(
                "per",
                format!(
                    "indicator {} is kept per {}; it cannot be split per {}",
                    indicator.code,
                    indicator.granularity.as_str(),
                    per.as_str()
                ),
            ));
        }
        let lo = from.map(|p| p.months().0);
        let hi = to.map(|p| p.months().1);
        // Labels of one granularity sort as text, so the bounds narrow the
        // read in SQL (loosely: the exact test is below); the org filter
        // stays here, as a subtree can be thousands of orgs.
        let g = indicator.granularity;
        let lower = lo.map_or_else(
            || "0000".to_string(),
            |m| Period::of_month(m).bucket(g).label(),
        );
        let upper = hi.map_or_else(
            || "9999".to_string(),
            |m| Period::of_month(m).bucket(g).label(),
        );
        let rows = sqlx::query(
            "SELECT org_id, period, value FROM dc_values
             WHERE code = $1 AND period >= $2 AND period <= $3 LIMIT $4",
        )
        .bind(&indicator.code)
        .bind(lower)
        .bind(upper)
        .bind(MAX_VALUES_READ as i64 + 1)
        .fetch_all(&self.db)
        .await?;
        if rows.len() > MAX_VALUES_READ {
            return Err(invalid("from", "too many values; narrow the period"));
        }
        let subtree: HashSet<String> = orgs.subtree(&q.org).into_iter().collect();
        let values: Vec<(String, Period, f64)> = rows
            .iter()
            .filter_map(|r| {
                let org: String = r.get(0);
                let period = Period::parse(r.get::<&str, _>(1))?;
                let (first, last) = period.months();
                let inside = subtree.contains(&org)
                    && lo.is_none_or(|lo| first >= lo)
                    && hi.is_none_or(|hi| last <= hi);
                inside.then(|| (org, period, r.get::<f64, _>(2)))
            })
            .collect();
        let targets: Vec<(String, HashSet<String>)> = if !q.rollup {
            Vec::new()
        } else {
            let orgs_of = |o: &str| -> (String, HashSet<String>) {
                (o.to_string(), orgs.subtree(o).into_iter().collect())
            };
            match q.group {
                GroupBy::Period => vec![orgs_of(&q.org)],
                GroupBy::Org => std::iter::once(orgs_of(&q.org))
                    .chain(
                        orgs.subtree(&q.org)
                            .iter()
                            .filter(|o| orgs.parent_of(o) == Some(q.org.as_str()))
                            .map(|o| orgs_of(o)),
                    )
                    .collect(),
            }
        };
        Ok(compute(indicator.aggregation, &targets, per, values))
    }
}

/// A ratio's rows: for each org and period both parts have, the
/// numerator's value over the denominator's, times `scale`; a zero
/// denominator gives no row (the rate is undefined, not 0 or infinite).
/// `count` is the numerator's.
fn divide(numerator: Vec<Row>, denominator: Vec<Row>, scale: f64) -> Vec<Row> {
    let below: BTreeMap<(String, String), f64> = denominator
        .into_iter()
        .map(|r| ((r.org, r.period), r.value))
        .collect();
    numerator
        .into_iter()
        .filter_map(|r| {
            let d = *below.get(&(r.org.clone(), r.period.clone()))?;
            (d != 0.0).then(|| Row {
                value: r.value / d * scale,
                ..r
            })
        })
        .collect()
}

/// What a definition names, checked: the part `define` and
/// `define_ratio` write alike.
struct Naming<'a> {
    code: &'a str,
    name_zh: &'a str,
    name_en: &'a str,
    unit: &'a str,
    schema: &'a str,
}

impl Naming<'_> {
    async fn rename(&self, tx: &mut audit::AuditedWrite<'_>, now: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE dc_indicators SET name_zh = $2, name_en = $3, unit = $4, schema_json = $5,
                 updated_at = $6 WHERE code = $1",
        )
        .bind(self.code)
        .bind(self.name_zh)
        .bind(self.name_en)
        .bind(self.unit)
        .bind(self.schema)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert(
        &self,
        tx: &mut audit::AuditedWrite<'_>,
        owner: &str,
        aggregation: Aggregation,
        granularity: Granularity,
        sharing: Sharing,
        now: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO dc_indicators (code, owner, name_zh, name_en, unit, schema_json,
                 aggregation, granularity, sharing, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(self.code)
        .bind(owner)
        .bind(self.name_zh)
        .bind(self.name_en)
        .bind(self.unit)
        .bind(self.schema)
        .bind(aggregation.as_str())
        .bind(granularity.as_str())
        .bind(sharing.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// The checks `define` and `define_ratio` share; the schema normalised.
fn check_definition(
    plugin: &str,
    code: &str,
    name_zh: &str,
    name_en: &str,
    unit: &str,
    schema: &str,
) -> Result<String> {
    // The kernel's names are not for plugins that happen to share them.
    if RESERVED_OWNERS.contains(&plugin) {
        return Err(ServiceError::Forbidden(format!(
            "plugin id {plugin} is reserved in the data center"
        )));
    }
    if !valid_code(code) || !code.starts_with(&format!("{plugin}.")) {
        return Err(invalid(
            "code",
            format!(
                "indicator code {code:?}: use \"{plugin}.<name>\" with lower-case letters, digits, '_', '-', '.'"
            ),
        ));
    }
    for (field, text, max) in [
        ("name_zh", name_zh, 200),
        ("name_en", name_en, 200),
        ("unit", unit, 64),
    ] {
        if text.trim().is_empty() || text.len() > max {
            return Err(invalid(field, format!("{field}: 1 to {max} bytes")));
        }
    }
    if schema.trim().is_empty() {
        return Ok("{}".to_string());
    }
    match serde_json::from_str::<Value>(schema) {
        Ok(v @ Value::Object(_)) if schema.len() <= 64 * 1024 => Ok(v.to_string()),
        _ => Err(invalid("schema", "schema: a JSON object up to 64 KiB")),
    }
}

/// The roll-up itself, pure so it can be tested without a database.
/// `targets`: each org to answer for, with its subtree; empty for raw rows.
fn compute(
    aggregation: Aggregation,
    targets: &[(String, HashSet<String>)],
    per: Granularity,
    values: Vec<(String, Period, f64)>,
) -> Vec<Row> {
    if targets.is_empty() {
        let mut rows: Vec<Row> = values
            .into_iter()
            .map(|(org, period, value)| Row {
                org,
                period: period.label(),
                value,
                count: 1,
            })
            .collect();
        rows.sort_by(|a, b| (&a.org, &a.period).cmp(&(&b.org, &b.period)));
        return rows;
    }
    let mut out = Vec::new();
    for (target, within) in targets {
        // Step 1: across orgs, per stored period.
        let mut per_period: BTreeMap<Period, (f64, u32)> = BTreeMap::new();
        for (org, period, value) in &values {
            if within.contains(org) {
                let e = per_period.entry(*period).or_insert((0.0, 0));
                e.0 += value;
                e.1 += 1;
            }
        }
        // Step 2: across the stored periods of each bucket.
        let mut buckets: BTreeMap<Period, Vec<(f64, u32)>> = BTreeMap::new();
        for (period, (sum, n)) in per_period {
            let across_orgs = match aggregation {
                Aggregation::Sum | Aggregation::Stock => sum,
                // A ratio's parts are rolled up, never a ratio (`query`).
                Aggregation::Mean | Aggregation::Ratio => sum / n as f64,
            };
            buckets
                .entry(period.bucket(per))
                .or_default()
                .push((across_orgs, n));
        }
        for (bucket, series) in buckets {
            let count = series.iter().map(|(_, n)| n).sum();
            let value = match aggregation {
                Aggregation::Sum => series.iter().map(|(v, _)| v).sum(),
                // BTreeMap order: the last entry is the latest period.
                Aggregation::Stock => series.last().map(|(v, _)| *v).unwrap_or(0.0),
                Aggregation::Mean | Aggregation::Ratio => {
                    series.iter().map(|(v, _)| v).sum::<f64>() / series.len() as f64
                }
            };
            out.push(Row {
                org: target.clone(),
                period: bucket.label(),
                value,
                count,
            });
        }
    }
    out
}

/// Progress of one plan indicator at one org.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub code: String,
    pub name: BTreeMap<String, String>,
    pub unit: String,
    pub target: Option<Target>,
    pub baseline: Option<f64>,
    /// The latest year with a value, up to the asked period.
    pub latest_period: Option<String>,
    pub latest: Option<f64>,
    /// (latest − baseline) / baseline × 100, rounded to 0.01.
    pub change_pct: Option<f64>,
    /// None when the data to decide is missing.
    pub met: Option<bool>,
}

impl DataCenter {
    /// Every indicator with a target, rolled up at `org` up to `period`
    /// (a year), with its change against the baseline and whether the
    /// target is met.
    pub async fn plan(
        &self,
        orgs: &OrgIndex,
        org: &str,
        period: Option<&str>,
    ) -> Result<Vec<Progress>> {
        let until = plan_period(period)?;
        let mut out = Vec::new();
        for ind in self.list().await? {
            if ind.target.is_some() {
                out.push(self.progress_of(ind, orgs, org, until).await?);
            }
        }
        Ok(out)
    }

    /// One indicator's progress at `org` (rolled up per year, up to
    /// `until`): the latest year against its target and baseline; without
    /// a target, the latest year and no verdict.
    pub async fn progress_of(
        &self,
        ind: Indicator,
        orgs: &OrgIndex,
        org: &str,
        until: Option<Period>,
    ) -> Result<Progress> {
        let rows = self
            .query(
                &ind,
                orgs,
                &ValueQuery {
                    org: org.to_string(),
                    to: until.map(|p| p.label()),
                    rollup: true,
                    per: Some(Granularity::Year),
                    ..ValueQuery::default()
                },
            )
            .await?;
        Ok(progress_from(ind, &rows))
    }
}

/// The plan's period: a year, or the latest when none.
pub(crate) fn plan_period(period: Option<&str>) -> Result<Option<Period>> {
    let until = period.map(|p| parse_period("period", p)).transpose()?;
    if let Some(p) = until
        && p.granularity != Granularity::Year
    {
        return Err(invalid("period", "the plan is tracked per year: use YYYY"));
    }
    Ok(until)
}

/// Progress from an indicator's yearly values at one org, oldest first.
pub(crate) fn progress_from(ind: Indicator, rows: &[Row]) -> Progress {
    let target = ind.target.clone();
    let baseline_period = target.as_ref().and_then(|t| t.baseline_period.as_deref());
    let baseline = baseline_period
        .and_then(|b| rows.iter().find(|r| r.period == b))
        .map(|r| r.value);
    let latest_row = rows
        .iter()
        .rfind(|r| baseline_period != Some(r.period.as_str()));
    let latest = latest_row.map(|r| r.value);
    let change_pct = match (baseline, latest) {
        (Some(b), Some(l)) if b != 0.0 => Some(((l - b) / b * 10_000.0).round() / 100.0),
        _ => None,
    };
    let met = target.as_ref().and_then(|t| match t.kind {
        TargetKind::ChangeAtMost => change_pct.map(|c| c <= t.value),
        TargetKind::AtLeast => latest.map(|l| l >= t.value),
        TargetKind::AtMost => latest.map(|l| l <= t.value),
    });
    Progress {
        code: ind.code,
        name: ind.name,
        unit: ind.unit,
        target,
        baseline,
        latest_period: latest_row.map(|r| r.period.clone()),
        latest,
        change_pct,
        met,
    }
}

// ------------------------------------------------------------- exports

use crate::core::csv::field as csv_field;

pub fn to_csv(indicator: &Indicator, rows: &[Row], org_codes: &BTreeMap<String, String>) -> String {
    let mut out = String::from("indicator,org,org_code,period,value,unit,count\r\n");
    for r in rows {
        let line = [
            csv_field(&indicator.code),
            csv_field(&r.org),
            csv_field(org_codes.get(&r.org).map(String::as_str).unwrap_or("")),
            csv_field(&r.period),
            r.value.to_string(),
            csv_field(&indicator.unit),
            r.count.to_string(),
        ]
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

pub fn to_xlsx(
    indicator: &Indicator,
    rows: &[Row],
    org_codes: &BTreeMap<String, String>,
) -> std::result::Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    let headers = [
        "indicator",
        "org",
        "org_code",
        "period",
        "value",
        "unit",
        "count",
    ];
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &indicator.code)?;
        sheet.write_string(row, 1, &r.org)?;
        sheet.write_string(
            row,
            2,
            org_codes.get(&r.org).map(String::as_str).unwrap_or(""),
        )?;
        sheet.write_string(row, 3, &r.period)?;
        sheet.write_number(row, 4, r.value)?;
        sheet.write_string(row, 5, &indicator.unit)?;
        sheet.write_number(row, 6, r.count as f64)?;
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_feed_is_a_plan_indicator_fed_by_a_reserved_system() {
        for (code, feeder) in PLAN_FEEDS {
            assert!(
                PLAN.iter().any(|p| p.0 == *code),
                "{code} is not in the plan"
            );
            assert!(
                crate::core::ids::BUNDLED_SYSTEM_IDS.contains(feeder),
                "{feeder} is not reserved"
            );
        }
    }

    #[test]
    fn periods_parse_and_bucket() {
        let m = Period::parse("2025-07").unwrap();
        assert_eq!(m.bucket(Granularity::Quarter).label(), "2025-Q3");
        assert_eq!(m.bucket(Granularity::Year).label(), "2025");
        assert_eq!(
            Period::parse("2025-Q4")
                .unwrap()
                .bucket(Granularity::Year)
                .label(),
            "2025"
        );
        for bad in [
            "25", "2025-13", "2025-Q5", "2025-1", "2025-q1", "abcd", "2025-00", "1800",
        ] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
        assert!(Granularity::Month < Granularity::Year);
        let (first, last) = Period::parse("2024-Q2").unwrap().months();
        assert_eq!(Period::of_month(first).label(), "2024-04");
        assert_eq!(Period::of_month(last).label(), "2024-06");
    }

    #[test]
    fn codes() {
        assert!(valid_code("energy.per_capita"));
        assert!(!valid_code("Energy.x"));
        assert!(!valid_code("nodot"));
        assert!(!valid_code("a.b;drop"));
    }

    #[test]
    fn rules_roll_up_months_into_years() {
        let p = |s: &str| Period::parse(s).unwrap();
        let values = || {
            vec![
                ("a".to_string(), p("2025-01"), 10.0),
                ("a".to_string(), p("2025-02"), 20.0),
                ("a".to_string(), p("2025-03"), 60.0),
                ("b".to_string(), p("2025-03"), 40.0),
                ("c".to_string(), p("2025-03"), 1000.0),
            ]
        };
        let targets = vec![(
            "top".to_string(),
            HashSet::from(["top".to_string(), "a".to_string(), "b".to_string()]),
        )];
        let run = |a, per| compute(a, &targets, per, values());
        // March: a + b = 100 (sum, stock) or 50 (mean); c is outside.
        assert_eq!(run(Aggregation::Sum, Granularity::Year)[0].value, 130.0);
        assert_eq!(run(Aggregation::Stock, Granularity::Year)[0].value, 100.0);
        assert_eq!(
            run(Aggregation::Mean, Granularity::Year)[0].value,
            (10.0 + 20.0 + 50.0) / 3.0
        );
        assert_eq!(run(Aggregation::Sum, Granularity::Year)[0].count, 4);
        let quarters = run(Aggregation::Sum, Granularity::Quarter);
        assert_eq!(quarters.len(), 1);
        assert_eq!(quarters[0].period, "2025-Q1");
        let months = run(Aggregation::Sum, Granularity::Month);
        assert_eq!(
            months.iter().map(|r| r.value).collect::<Vec<_>>(),
            [10.0, 20.0, 100.0]
        );
        // Raw rows: everything given, ordered by org then period.
        assert_eq!(
            compute(Aggregation::Sum, &[], Granularity::Year, values()).len(),
            5
        );
    }

    #[test]
    fn a_ratio_divides_its_parts_and_skips_a_zero_base() {
        let row = |org: &str, value: f64, count: u32| Row {
            org: org.into(),
            period: "2025".into(),
            value,
            count,
        };
        let out = divide(
            vec![
                row("p", 25.0, 2),
                row("a", 25.0, 1),
                row("z", 5.0, 1),
                row("n", 1.0, 1),
            ],
            vec![row("p", 400.0, 2), row("a", 100.0, 1), row("z", 0.0, 1)],
            100.0,
        );
        assert_eq!(out, vec![row("p", 6.25, 2), row("a", 25.0, 1)]);
    }
}
