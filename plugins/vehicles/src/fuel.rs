//! Fuel and charging logs (加油、充电记录): each fill-up or charge of a
//! vehicle, with the odometer, the amount and the cost. Every log
//! republishes its org's month into the open indicators
//! `vehicles.gasoline_l`, `vehicles.diesel_l` and `vehicles.charging_kwh`,
//! which the energy system's statements take vehicle fuel from.

use serde::{Deserialize, Serialize};
use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Sharing};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Collection, Doc, collection};

use crate::model::Vehicle;
use crate::register::vehicles;

pub fn logs() -> Collection {
    collection("fuel_logs")
}

/// `kind` → the indicator its month goes into.
const INDICATORS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "gasoline",
        "vehicles.gasoline_l",
        "公务用车汽油消耗",
        "Gasoline used by official vehicles",
        "L",
    ),
    (
        "diesel",
        "vehicles.diesel_l",
        "公务用车柴油消耗",
        "Diesel used by official vehicles",
        "L",
    ),
    (
        "charging",
        "vehicles.charging_kwh",
        "公务用车充电量",
        "Electricity charged into official vehicles",
        "kWh",
    ),
];

pub fn routes(router: Router) -> Router {
    router
        .get("/fuel", list)
        .requires("vehicles.view")
        .post("/fuel", create)
        .requires("vehicles.manage")
}

pub fn define() -> Result<()> {
    for (_, code, zh, en, unit) in INDICATORS {
        Indicator::new(code, zh, en, unit)
            .aggregation(Aggregation::Sum)
            .granularity(Granularity::Month)
            .sharing(Sharing::Open)
            .define()?;
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FuelLog {
    pub vehicle_id: String,
    /// `gasoline`, `diesel` or `charging`.
    pub kind: String,
    /// `YYYY-MM-DD`.
    pub on: String,
    /// Litres of fuel or kWh charged.
    pub amount: f64,
    #[serde(default)]
    pub cost_fen: i64,
    #[serde(default)]
    pub odometer_km: Option<f64>,
    #[serde(default)]
    pub station: String,
    /// Set from the vehicle; a body cannot choose it.
    #[serde(default)]
    pub plate: String,
    #[serde(default)]
    pub period: String,
}

/// Which kinds a vehicle of `energy_type` takes.
pub fn fits(energy_type: &str, kind: &str) -> bool {
    match kind {
        "gasoline" => matches!(energy_type, "gasoline" | "hev" | "phev"),
        "diesel" => energy_type == "diesel",
        "charging" => matches!(energy_type, "bev" | "phev"),
        _ => false,
    }
}

fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::invalid(field, code, message)
}

fn create(req: &Request) -> Result<Response> {
    let mut log: FuelLog = req.json()?;
    let vehicle: Doc<Vehicle> = vehicles()
        .get(&log.vehicle_id)?
        .ok_or_else(|| invalid("vehicle_id", "vehicle_unknown", "no such vehicle"))?;
    authz::require_at("vehicles.manage", &vehicle.org)?;
    if !INDICATORS.iter().any(|(k, ..)| *k == log.kind) {
        return Err(invalid(
            "kind",
            "fuel_kind_invalid",
            "gasoline, diesel or charging",
        ));
    }
    if !fits(&vehicle.data.energy_type, &log.kind) {
        return Err(invalid(
            "kind",
            "fuel_kind_mismatch",
            "the vehicle does not take this",
        )
        .with_param("energy_type", vehicle.data.energy_type.clone()));
    }
    let on = dates::parse_date(&log.on)
        .map(dates::date_text)
        .ok_or_else(|| invalid("on", "invalid_date", "expected YYYY-MM-DD"))?;
    if on > dates::today() {
        return Err(invalid("on", "date_in_future", "a day that has come")
            .with_param("today", dates::today()));
    }
    if !(log.amount > 0.0 && log.amount <= 2_000.0) {
        return Err(invalid(
            "amount",
            "fuel_amount_invalid",
            "more than 0, at most 2,000",
        ));
    }
    if log.cost_fen < 0 {
        return Err(invalid("cost_fen", "amount_invalid", "a cost of 0 or more"));
    }
    if log
        .odometer_km
        .is_some_and(|km| !(0.0..10_000_000.0).contains(&km))
    {
        return Err(invalid(
            "odometer_km",
            "odometer_invalid",
            "a reading of 0 km or more",
        ));
    }
    log.on = on.clone();
    log.period = on[..7].to_string();
    log.plate = vehicle.data.plate.clone();
    log.station = log.station.trim().chars().take(100).collect();
    let doc = logs().insert_with(None, Some(&vehicle.org), &log)?;
    refresh(&vehicle.org, &log.period)?;
    Ok(Response::json(&doc).with_status(201))
}

/// Republishes one org's month of fuel and charging (its own vehicles'
/// logs; the kernel rolls the orgs above up).
pub fn refresh(org: &str, period: &str) -> Result<()> {
    let filter = logs().find().eq("org", org).eq("period", period);
    let sums = logs().aggregate(&filter, &["kind"], &[(AggregateOp::Sum, Some("amount"))])?;
    for (kind, code, ..) in INDICATORS {
        let total = sums
            .iter()
            .find(|g| g.key.first().and_then(|k| k.as_str()) == Some(*kind))
            .and_then(|g| g.values.first().copied().flatten())
            .unwrap_or(0.0);
        datacenter::publish(
            code,
            &[datacenter::value(
                Some(org),
                period,
                (total * 1000.0).round() / 1000.0,
            )],
        )?;
    }
    Ok(())
}

fn list(req: &Request) -> Result<Response> {
    let find = logs().find();
    let find = match req.query_param("vehicle_id").filter(|v| !v.is_empty()) {
        Some(v) => find.eq("vehicle_id", v),
        None => find,
    };
    let find = list::filter_one_of(find, req, "kind", &["gasoline", "diesel", "charging"])?;
    let find = list::sorted(find, req, &["on", "amount"], "-on")?;
    list::respond(
        req,
        &find,
        "fuel",
        &[
            ("日期 Date", "/data/on"),
            ("车牌号 Plate", "/data/plate"),
            ("类型 Kind", "/data/kind"),
            ("数量 Amount", "/data/amount"),
            ("费用(分) Cost fen", "/data/cost_fen"),
            ("里程 Odometer km", "/data/odometer_km"),
            ("加油站/充电站 Station", "/data/station"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn a_vehicle_takes_what_its_engine_burns_or_its_battery_holds() {
        assert!(
            fits("gasoline", "gasoline") && fits("phev", "gasoline") && fits("phev", "charging")
        );
        assert!(
            !fits("bev", "gasoline")
                && !fits("gasoline", "charging")
                && !fits("diesel", "gasoline")
        );
        assert!(fits("hev", "gasoline") && !fits("hev", "charging"));
    }
}
