//! Telemetry (contract 1.3.0): meters, vehicle terminals, charging piles
//! and sensors report to the kernel (MQTT, JT/T 808, the HTTP batch
//! endpoint), never through a call into your plugin per reading. You
//! register your devices, read roll-ups, latest values and track points,
//! and declare alert rules; alerts arrive in batches as
//! `kernel.telemetry.alert` events ([`Event::telemetry_alerts`]).
//!
//! ```no_run
//! use tianshan_sdk::prelude::*;
//! use tianshan_sdk::telemetry::{self, Channel, Condition, Device, Interval, Measure, Rule, Series};
//!
//! # fn main() -> tianshan_sdk::Result<()> {
//! // A building's main meter, reporting over MQTT to tianshan/telemetry/BLD7-MAIN.
//! telemetry::register(
//!     &Device::meter("bld7-main", "7号楼总表", "BLD7-MAIN")
//!         .channel(Channel::counter("kwh", "kWh").max_step(5_000.0))
//!         .channel(Channel::level("power_kw", "kW")),
//! )?;
//! telemetry::define_rule(&Rule::new("overload", Condition::Above(("power_kw".into(), 800.0))))?;
//! // Consumption per day in March, for every meter in the acting org's subtree.
//! let days = Series::new("kwh")
//!     .between(1_740_758_400_000, 1_743_436_800_000)
//!     .per(Interval::Day)
//!     .measure(Measure::Sum)
//!     .buckets()?;
//! # let _ = days;
//! # Ok(())
//! # }
//! ```

use crate::bindings::tianshan::plugin::telemetry as wit;
use crate::{Error, Result};

pub use wit::{
    Bucket, Channel, ChannelKind, Condition, Device, DeviceInfo, DeviceKind, Interval,
    LatestReading, Measure, Protocol, Quality, Reading, Recorded, Rule, Term, TrackPoint,
};

/// Maps the kernel's telemetry errors to HTTP-style errors.
pub fn to_error(e: wit::TelemetryError) -> Error {
    match e {
        wit::TelemetryError::NotFound => Error::not_found("no such device or rule"),
        wit::TelemetryError::ForbiddenOrg(org) => {
            Error::forbidden(format!("org {org} is outside your reach")).with_field("org")
        }
        wit::TelemetryError::Conflict(m) => {
            Error::conflict(m).with_code("device_external_id_taken")
        }
        wit::TelemetryError::Invalid(m) => {
            // The kernel leads with the field: "external_id: …".
            match m.split_once(": ") {
                Some((field, rest)) if !field.contains(' ') => {
                    Error::validation(field, rest.to_string())
                }
                _ => Error::new(422, "validation_failed", m),
            }
        }
        wit::TelemetryError::Unavailable(m) => Error::new(503, "unavailable", m),
    }
}

impl Channel {
    /// A counter (kWh, m³): roll-ups sum its increments.
    pub fn counter(name: &str, unit: &str) -> Channel {
        Channel {
            name: name.to_string(),
            unit: unit.to_string(),
            kind: ChannelKind::Cumulative,
            min: None,
            max: None,
            max_step: None,
        }
    }

    /// A level (kW, °C, km/h): roll-ups sum, average and bound its values.
    pub fn level(name: &str, unit: &str) -> Channel {
        Channel {
            kind: ChannelKind::Instantaneous,
            ..Channel::counter(name, unit)
        }
    }

    /// Readings outside `[min, max]` are refused as out of range.
    pub fn range(mut self, min: f64, max: f64) -> Channel {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    /// A counter step above this is kept but flagged `jump`, not summed.
    pub fn max_step(mut self, step: f64) -> Channel {
        self.max_step = Some(step);
        self
    }
}

impl Device {
    fn new(
        kind: DeviceKind,
        protocol: Protocol,
        id: &str,
        name: &str,
        external_id: &str,
    ) -> Device {
        Device {
            id: id.to_string(),
            kind,
            org: None,
            protocol,
            external_id: external_id.to_string(),
            name: name.to_string(),
            channels: Vec::new(),
            formula: Vec::new(),
        }
    }

    /// A meter reporting over MQTT as `external_id`.
    pub fn meter(id: &str, name: &str, external_id: &str) -> Device {
        Device::new(DeviceKind::Meter, Protocol::Mqtt, id, name, external_id)
    }

    /// A JT/T 808 vehicle terminal known by its phone number.
    pub fn vehicle_terminal(id: &str, name: &str, phone: &str) -> Device {
        Device::new(
            DeviceKind::VehicleTerminal,
            Protocol::Jt808,
            id,
            name,
            phone,
        )
    }

    /// A device whose readings your plugin records (read by hand, bills).
    pub fn manual(kind: DeviceKind, id: &str, name: &str) -> Device {
        Device::new(kind, Protocol::Manual, id, name, "")
    }

    /// A device computed from others: each channel is the sum of `terms`
    /// (e.g. a building = its floor meters minus a sub-meter).
    pub fn virtual_sum(id: &str, name: &str, terms: Vec<Term>) -> Device {
        let mut d = Device::new(DeviceKind::Meter, Protocol::Virtual, id, name, "");
        d.formula = terms;
        d
    }

    pub fn kind(mut self, kind: DeviceKind) -> Device {
        self.kind = kind;
        self
    }

    pub fn protocol(mut self, protocol: Protocol, external_id: &str) -> Device {
        self.protocol = protocol;
        self.external_id = external_id.to_string();
        self
    }

    /// The org it belongs to; the acting org when not set.
    pub fn org(mut self, org: &str) -> Device {
        self.org = Some(org.to_string());
        self
    }

    pub fn channel(mut self, channel: Channel) -> Device {
        self.channels.push(channel);
        self
    }
}

impl Term {
    pub fn new(device: &str, channel: &str, coefficient: f64) -> Term {
        Term {
            device: device.to_string(),
            channel: channel.to_string(),
            coefficient,
        }
    }
}

impl Rule {
    /// A rule over every device of this plugin.
    pub fn new(name: &str, condition: Condition) -> Rule {
        Rule {
            name: name.to_string(),
            devices: Vec::new(),
            condition,
        }
    }

    /// Only these devices.
    pub fn devices(mut self, devices: &[&str]) -> Rule {
        self.devices = devices.iter().map(|d| d.to_string()).collect();
        self
    }
}

/// Creates or updates a device; its org must be in the caller's reach.
pub fn register(device: &Device) -> Result<DeviceInfo> {
    wit::register(device).map_err(to_error)
}

pub fn remove(id: &str) -> Result<bool> {
    wit::remove(id).map_err(to_error)
}

pub fn get(id: &str) -> Result<Option<DeviceInfo>> {
    wit::get(id).map_err(to_error)
}

/// Your devices in `within_org`'s subtree (none: the acting org's).
pub fn devices(within_org: Option<&str>) -> Result<Vec<DeviceInfo>> {
    wit::devices(within_org).map_err(to_error)
}

/// Readings you have yourself: `Quality::Manual` (read by hand) or
/// `Quality::Bill` (from a utility bill).
pub fn record(readings: &[Reading], quality: Quality) -> Result<Recorded> {
    wit::record_readings(readings, quality).map_err(to_error)
}

pub fn reading(device: &str, channel: &str, at: i64, value: f64) -> Reading {
    Reading {
        device: device.to_string(),
        channel: channel.to_string(),
        at,
        value,
    }
}

pub fn latest(devices: &[String]) -> Result<Vec<LatestReading>> {
    wit::latest(devices).map_err(to_error)
}

/// Track points in `[from, to)` (ms), oldest first, at most 10,000.
pub fn track(device: &str, from: i64, to: i64) -> Result<Vec<TrackPoint>> {
    wit::track(device, from, to).map_err(to_error)
}

pub fn define_rule(rule: &Rule) -> Result<()> {
    wit::define_rule(rule).map_err(to_error)
}

pub fn remove_rule(name: &str) -> Result<bool> {
    wit::remove_rule(name).map_err(to_error)
}

/// A roll-up query; by default every device in the acting org's subtree,
/// per hour, summed, as one series.
#[derive(Debug, Clone)]
pub struct Series {
    query: wit::SeriesQuery,
}

impl Series {
    pub fn new(channel: &str) -> Series {
        Series {
            query: wit::SeriesQuery {
                devices: Vec::new(),
                within_org: None,
                channel: channel.to_string(),
                from: 0,
                to: i64::MAX,
                interval: Interval::Hour,
                measure: Measure::Sum,
                per_device: false,
            },
        }
    }

    pub fn devices(mut self, devices: &[&str]) -> Series {
        self.query.devices = devices.iter().map(|d| d.to_string()).collect();
        self
    }

    pub fn within(mut self, org: &str) -> Series {
        self.query.within_org = Some(org.to_string());
        self
    }

    /// `[from, to)` in milliseconds.
    pub fn between(mut self, from: i64, to: i64) -> Series {
        self.query.from = from;
        self.query.to = to;
        self
    }

    pub fn per(mut self, interval: Interval) -> Series {
        self.query.interval = interval;
        self
    }

    pub fn measure(mut self, measure: Measure) -> Series {
        self.query.measure = measure;
        self
    }

    /// One series per device instead of one for the set.
    pub fn per_device(mut self) -> Series {
        self.query.per_device = true;
        self
    }

    pub fn buckets(&self) -> Result<Vec<Bucket>> {
        wit::aggregate(&self.query).map_err(to_error)
    }
}

/// One alert of a `kernel.telemetry.alert` event.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Alert {
    pub rule: String,
    pub device: String,
    pub org: String,
    /// When the reading that broke the rule was taken (ms).
    pub at: i64,
    /// What broke it: the channel and value, or the position.
    #[serde(default)]
    pub detail: serde_json::Value,
}

#[derive(serde::Deserialize)]
struct AlertBatch {
    alerts: Vec<Alert>,
}

impl crate::Event {
    /// The alerts, when this is a `kernel.telemetry.alert` event.
    pub fn telemetry_alerts(&self) -> Result<Option<Vec<Alert>>> {
        if self.topic != "kernel.telemetry.alert" {
            return Ok(None);
        }
        self.json::<AlertBatch>().map(|b| Some(b.alerts))
    }
}
