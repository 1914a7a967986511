//! The data center (contract 1.2.0; ratios since 1.3.0): indicators shared across plugins,
//! their values per org and period, and roll-ups up the org tree and over
//! periods.
//!
//! Define your indicators in the install (and upgrade) hook, publish values
//! at the org they belong to (never aggregates: the kernel rolls them up),
//! and query with roll-up:
//!
//! ```no_run
//! use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Sharing};
//!
//! fn install() -> Result<(), String> {
//!     Indicator::new("energy.electricity", "用电量", "Electricity use", "kWh")
//!         .aggregation(Aggregation::Sum)
//!         .granularity(Granularity::Month)
//!         .sharing(Sharing::Open)
//!         .define()?;
//!     Ok(())
//! }
//!
//! # fn main() -> tianshan_sdk::Result<()> {
//! datacenter::publish("energy.electricity", &[datacenter::value(None, "2025-03", 1520.5)])?;
//! let by_year = datacenter::Query::new("energy.electricity").per(Granularity::Year).rows()?;
//! # Ok(())
//! # }
//! ```
//!
//! Every org is limited by the kernel to the caller's reach; an indicator
//! another plugin has not shared with yours is simply not found.

use crate::bindings::tianshan::plugin::datacenter as wit;
use crate::{Error, Result};

pub use wit::{Aggregation, Granularity, GroupBy, Indicator as Entry, Point, Row, Sharing};

/// Maps the kernel's data-center errors to HTTP-style errors.
pub fn to_error(e: wit::DatacenterError) -> Error {
    match e {
        wit::DatacenterError::NotFound(code) => {
            Error::not_found(format!("indicator {code} not found"))
        }
        wit::DatacenterError::ForbiddenOrg(org) => {
            Error::forbidden(format!("org {org} is outside your reach")).with_field("org")
        }
        wit::DatacenterError::Forbidden(m) => Error::forbidden(m),
        wit::DatacenterError::Invalid(m) => Error::bad_request("invalid_datacenter_call", m),
        wit::DatacenterError::Unavailable(m) => Error::new(503, "datacenter_unavailable", m),
    }
}

/// A definition of one of this plugin's indicators.
#[derive(Debug, Clone)]
pub struct Indicator {
    definition: wit::Definition,
}

impl Indicator {
    /// `code` is `<plugin-id>.<name>`. Defaults: `sum`, per `year`, `private`.
    pub fn new(code: &str, name_zh: &str, name_en: &str, unit: &str) -> Self {
        Indicator {
            definition: wit::Definition {
                code: code.to_string(),
                name_zh: name_zh.to_string(),
                name_en: name_en.to_string(),
                unit: unit.to_string(),
                schema: String::new(),
                aggregation: Aggregation::Sum,
                granularity: Granularity::Year,
                sharing: Sharing::Private,
            },
        }
    }

    pub fn aggregation(mut self, a: Aggregation) -> Self {
        self.definition.aggregation = a;
        self
    }

    pub fn granularity(mut self, g: Granularity) -> Self {
        self.definition.granularity = g;
        self
    }

    /// Applies on first definition only; later the administrator decides.
    pub fn sharing(mut self, s: Sharing) -> Self {
        self.definition.sharing = s;
        self
    }

    /// A JSON object describing the dataset.
    pub fn schema(mut self, schema: &serde_json::Value) -> Self {
        self.definition.schema = schema.to_string();
        self
    }

    /// Defines it, or updates names, unit and schema when it exists.
    pub fn define(self) -> Result<Entry> {
        wit::define_indicator(&self.definition).map_err(to_error)
    }
}

/// A ratio indicator (contract 1.3): the quotient of two `sum` or `stock`
/// indicators, computed by the kernel for every org and period it is read
/// at, so a rolled-up rate is the rate of the totals. It keeps no values:
/// publish its parts.
///
/// ```no_run
/// use tianshan_sdk::datacenter::{Indicator, Granularity, Ratio};
/// # fn main() -> tianshan_sdk::Result<()> {
/// Indicator::new("property.occupied_m2", "在用面积", "Occupied area", "m²").define()?;
/// Indicator::new("property.usable_m2", "可用面积", "Usable area", "m²").define()?;
/// Ratio::new("property.occupancy", "使用率", "Occupancy", "%")
///     .of("property.occupied_m2", "property.usable_m2")
///     .scale(100.0)
///     .define()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Ratio {
    definition: wit::RatioDefinition,
}

impl Ratio {
    /// `code` is `<plugin-id>.<name>`. Defaults: scale 1, `private`.
    pub fn new(code: &str, name_zh: &str, name_en: &str, unit: &str) -> Self {
        Ratio {
            definition: wit::RatioDefinition {
                code: code.to_string(),
                name_zh: name_zh.to_string(),
                name_en: name_en.to_string(),
                unit: unit.to_string(),
                schema: String::new(),
                numerator: String::new(),
                denominator: String::new(),
                scale: 1.0,
                sharing: Sharing::Private,
            },
        }
    }

    /// The indicators divided: `numerator / denominator`.
    pub fn of(mut self, numerator: &str, denominator: &str) -> Self {
        self.definition.numerator = numerator.to_string();
        self.definition.denominator = denominator.to_string();
        self
    }

    /// Multiplies the quotient: 100 for a percentage.
    pub fn scale(mut self, scale: f64) -> Self {
        self.definition.scale = scale;
        self
    }

    /// Applies on first definition only; later the administrator decides.
    pub fn sharing(mut self, s: Sharing) -> Self {
        self.definition.sharing = s;
        self
    }

    /// A JSON object describing the dataset.
    pub fn schema(mut self, schema: &serde_json::Value) -> Self {
        self.definition.schema = schema.to_string();
        self
    }

    /// Defines it, or updates names, unit and schema when it exists.
    pub fn define(self) -> Result<Entry> {
        wit::define_ratio(&self.definition).map_err(to_error)
    }
}

/// The parts of a ratio indicator; none for one that is not a ratio.
pub fn ratio_of(code: &str) -> Result<Option<wit::Ratio>> {
    wit::ratio_of(code).map_err(to_error)
}

/// One value; `org` none means the org the request acts in.
pub fn value(org: Option<&str>, period: &str, value: f64) -> Point {
    Point {
        org: org.map(str::to_string),
        period: period.to_string(),
        value,
    }
}

/// Stores values, all or nothing; returns how many.
pub fn publish(code: &str, values: &[Point]) -> Result<u32> {
    wit::publish(code, values).map_err(to_error)
}

/// Publishes into an indicator that takes values only from plugins an
/// administrator granted `publish` (the plan's `plan.*`): without the grant
/// (or the indicator) it stores nothing, logs why at debug level and
/// answers 0, so a plugin's own indicators still carry its figures; any
/// other failure is an error.
pub fn publish_if_granted(code: &str, values: &[Point]) -> Result<u32> {
    match publish(code, values) {
        Ok(n) => Ok(n),
        Err(e) if e.status() == 403 || e.status() == 404 => {
            crate::log::debug(format!("{code} not granted: {}", e.message()));
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// The indicators this plugin may read.
pub fn catalogue() -> Result<Vec<Entry>> {
    wit::catalogue().map_err(to_error)
}

/// A values query; by default rolled up at the acting org, per the
/// indicator's granularity.
#[derive(Debug, Clone)]
pub struct Query {
    query: wit::ValueQuery,
}

impl Query {
    pub fn new(code: &str) -> Self {
        Query {
            query: wit::ValueQuery {
                code: code.to_string(),
                org: None,
                from: None,
                to: None,
                rollup: true,
                group_by: GroupBy::Period,
                per: None,
            },
        }
    }

    /// The org (and its subtree) to answer for.
    pub fn org(mut self, org: impl Into<String>) -> Self {
        self.query.org = Some(org.into());
        self
    }

    /// Inclusive period bounds (`YYYY`, `YYYY-Qn`, `YYYY-MM`).
    pub fn between(mut self, from: Option<String>, to: Option<String>) -> Self {
        self.query.from = from;
        self.query.to = to;
        self
    }

    /// The stored values one by one instead of a roll-up.
    pub fn raw(mut self) -> Self {
        self.query.rollup = false;
        self
    }

    /// One row per direct child org (and the org itself).
    pub fn by_org(mut self) -> Self {
        self.query.group_by = GroupBy::Org;
        self
    }

    /// Roll up into buckets of this size (coarser than the indicator's).
    pub fn per(mut self, g: Granularity) -> Self {
        self.query.per = Some(g);
        self
    }

    pub fn rows(&self) -> Result<Vec<Row>> {
        wit::query(&self.query).map_err(to_error)
    }
}
