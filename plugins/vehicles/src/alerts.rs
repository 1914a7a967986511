//! Compliance alerts (违规告警): each alert the kernel raises on a terminal
//! (the rules in [`crate::terminals`]) becomes a record of the vehicle's
//! org, named by its plate, that a fleet manager handles to a verdict —
//! 合规 (compliant: it had a reason) or 违规 (a violation) — with a note
//! saying why. A verdict is final.
//!
//! One rule needs trips, which the kernel does not know: `no_trip`, a
//! vehicle moving with no trip dispatched (公车私用). The job
//! `trip-check` (every five minutes) and `POST /alerts/check` look at each
//! terminal's latest speed and raise it, once until it is decided.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};
use tianshan_sdk::telemetry::{self, Alert as Raised};

pub fn routes(router: Router) -> Router {
    router
        .get("/alerts", list_alerts)
        .requires("vehicles.view")
        .post("/alerts/{id}/verdict", decide)
        .requires("vehicles.manage")
        .post("/alerts/check", check_now)
        .requires("vehicles.manage")
}

/// The rules an alert can come from: the kernel's three, and this
/// plugin's own.
pub const RULES: &[&str] = &["overspeed", "outside_hours", "offline", NO_TRIP];
pub const NO_TRIP: &str = "no_trip";
/// Moving: above this speed, in a report of the last ten minutes.
const MOVING_KMH: f64 = 5.0;
const RECENT_MS: i64 = 10 * 60 * 1000;

pub fn alerts() -> Collection {
    collection("alerts")
}

pub const STATUS: &[&str] = &["open", "compliant", "violation"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceAlert {
    pub rule: String,
    pub vehicle_id: String,
    pub plate: String,
    /// When the breaking report was taken (ms).
    pub at: i64,
    pub detail: Value,
    pub status: String,
    pub note: String,
    pub decided_by: String,
    pub decided_at: i64,
}

/// A batch of the kernel's alerts: one record each, once (a redelivered
/// batch finds its records there).
pub fn raised(batch: &[Raised]) -> Result<()> {
    for a in batch {
        let id = format!("al-{}-{}-{}", a.device, a.rule, a.at);
        if alerts().get::<Value>(&id)?.is_some() {
            continue;
        }
        let plate = crate::register::vehicles()
            .get::<crate::model::Vehicle>(&a.device)?
            .map(|v| v.data.plate)
            .unwrap_or_default();
        let record = ComplianceAlert {
            rule: a.rule.clone(),
            vehicle_id: a.device.clone(),
            plate,
            at: a.at,
            detail: a.detail.clone(),
            status: "open".into(),
            ..ComplianceAlert::default()
        };
        match alerts().insert_with(Some(&id), Some(&a.org), &record) {
            Ok(_) => {}
            Err(e) if e.code() == "conflict" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `GET /alerts?status=&rule=&vehicle_id=&sort=&format=csv|xlsx`, newest
/// first.
fn list_alerts(req: &Request) -> Result<Response> {
    let find = list::filter_one_of(alerts().find(), req, "status", STATUS)?;
    let find = list::filter_one_of(find, req, "rule", RULES)?;
    let find = list::filter_eq(&["vehicle_id"], find, req);
    let find = list::sorted(find, req, &["at"], "-at")?;
    list::respond(
        req,
        &find,
        "alerts",
        &[
            ("车牌号 Plate", "/data/plate"),
            ("告警 Rule", "/data/rule"),
            ("时间 At (ms)", "/data/at"),
            ("状态 Status", "/data/status"),
            ("说明 Note", "/data/note"),
            ("处理人 By", "/data/decided_by"),
        ],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictInput {
    verdict: String,
    note: String,
}

/// `POST /alerts/{id}/verdict` `{verdict: compliant|violation, note}`, by
/// a manager at the alert's org, once.
fn decide(req: &Request) -> Result<Response> {
    let doc: Doc<ComplianceAlert> = alerts().fetch(req.param("id")?)?;
    authz::require_at("vehicles.manage", &doc.org)?;
    let input: VerdictInput = req.json()?;
    if !["compliant", "violation"].contains(&input.verdict.as_str()) {
        return Err(Error::invalid(
            "verdict",
            "verdict_invalid",
            "compliant or violation",
        ));
    }
    let note = input.note.trim();
    if note.chars().count() < 2 {
        return Err(Error::invalid(
            "note",
            "reason_required",
            "say why: the trip it was, or what was wrong",
        ));
    }
    if doc.data.status != "open" {
        return Err(Error::conflict("this alert has its verdict")
            .with_code("alert_decided")
            .with_param("status", doc.data.status.clone()));
    }
    let me = identity::caller().ok_or_else(|| Error::forbidden("sign in first"))?;
    let mut next = doc.data.clone();
    next.status = input.verdict;
    next.note = note.chars().take(500).collect();
    next.decided_by = me.display_name;
    next.decided_at = dates::now_ms();
    Ok(Response::json(&alerts().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

/// `POST /alerts/check`: the trip check now, over the vehicles in reach;
/// answers how many alerts it raised.
fn check_now(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "raised": check_trips()? })))
}

/// Vehicles whose terminal reports them moving with no trip dispatched get
/// a `no_trip` alert, unless one is open for them already.
pub fn check_trips() -> Result<usize> {
    let cars = crate::register::vehicles()
        .find()
        .ne("terminal_id", "")
        .ne("state", "scrapped")
        .all::<crate::model::Vehicle>(5_000)?;
    let ids: Vec<String> = cars.iter().map(|c| c.id.clone()).collect();
    // Two reads for the whole fleet, not two per moving vehicle.
    let vehicle_ids = |docs: Vec<Doc<Value>>| -> std::collections::HashSet<String> {
        docs.iter()
            .filter_map(|d| d.data["vehicle_id"].as_str().map(String::from))
            .collect()
    };
    let on_trip = vehicle_ids(
        crate::trips::trips()
            .find()
            .eq("status", "dispatched")
            .all::<Value>(10_000)?,
    );
    let open = vehicle_ids(
        alerts()
            .find()
            .eq("rule", NO_TRIP)
            .eq("status", "open")
            .all::<Value>(10_000)?,
    );
    let now = dates::now_ms();
    let mut raised = 0;
    for chunk in ids.chunks(500) {
        for latest in telemetry::latest(chunk)? {
            if latest.channel != "speed_kmh"
                || latest.value <= MOVING_KMH
                || now - latest.at > RECENT_MS
            {
                continue;
            }
            if on_trip.contains(&latest.device) || open.contains(&latest.device) {
                continue;
            }
            let Some(car) = cars.iter().find(|c| c.id == latest.device) else {
                continue;
            };
            let record = ComplianceAlert {
                rule: NO_TRIP.into(),
                vehicle_id: car.id.clone(),
                plate: car.data.plate.clone(),
                at: latest.at,
                detail: json!({ "speed_kmh": latest.value }),
                status: "open".into(),
                ..ComplianceAlert::default()
            };
            let id = format!("al-{}-{NO_TRIP}-{}", car.id, latest.at);
            match alerts().insert_with(Some(&id), Some(&car.org), &record) {
                Ok(_) => raised += 1,
                Err(e) if e.code() == "conflict" => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(raised)
}
