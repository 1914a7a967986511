//! Trips (用车申请 → 审批 → 派车 → 出车 → 还车): a short request, approved
//! by the unit's vehicle approver through the kernel's approvals; a
//! dispatcher assigns a vehicle and a driver, refused when either is
//! already on a trip that overlaps; the return records the dispatch sheet
//! (odometer out and in, tolls, parking, fuel) and moves the vehicle's
//! odometer. An emergency trip (应急) is dispatchable at once and approved
//! afterwards.

use serde::{Deserialize, Serialize};
use tianshan_sdk::approvals::{self, Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::document::Numbering;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{self, Collection, Doc, Write, collection};
use tianshan_sdk::vocab::{Term, Vocab};

use crate::model::{Driver, Vehicle};
use crate::register::vehicles;

pub const FLOW: &str = "trip";
const NUMBERS: Numbering = Numbering::official("counters", "派车");

pub const TRIP_STATUS: Vocab = Vocab::new(
    "trip_status",
    &[
        Term::new("submitted", "待审批", "Awaiting approval"),
        Term::new("approved", "待派车", "Awaiting dispatch"),
        Term::new("dispatched", "已派车", "Dispatched"),
        Term::new("returned", "已还车", "Returned"),
        Term::new("rejected", "已驳回", "Rejected"),
        Term::new("cancelled", "已取消", "Cancelled"),
    ],
);

/// What an approval says of a trip, which for an emergency trip comes
/// after it was dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    #[default]
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Trip {
    pub no: String,
    pub applicant: String,
    pub applicant_name: String,
    pub reason: String,
    pub passengers: u32,
    pub destination: String,
    /// `YYYY-MM-DDTHH:MM`, local time; sorts as text.
    pub start_at: String,
    pub end_at: String,
    pub emergency: bool,
    pub status: String,
    pub verdict: Verdict,
    pub approval_id: String,
    pub vehicle_id: String,
    pub plate: String,
    pub driver_id: String,
    pub driver_name: String,
    pub odometer_out: Option<f64>,
    pub odometer_in: Option<f64>,
    pub km: Option<f64>,
    /// Fen.
    pub tolls: i64,
    pub parking: i64,
    pub fuel: i64,
    pub note: String,
}

pub fn trips() -> Collection {
    collection("trips")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/trips", list)
        .requires("vehicles.view")
        .post("/trips", request)
        .requires("vehicles.view")
        .get("/trips/{id}", show)
        .requires("vehicles.view")
        .post("/trips/{id}/dispatch", dispatch)
        .requires("vehicles.dispatch")
        .post("/trips/{id}/return", give_back)
        .requires("vehicles.dispatch")
        .post("/trips/{id}/cancel", cancel)
        .requires("vehicles.view")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "公务用车申请 Official vehicle trip").step(Step::any(
            "单位审批 Unit approval",
            "vehicles.approver",
            Level::SelfOrg,
        )),
    )
}

fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::validation(field, message).with_code(code)
}

/// `YYYY-MM-DDTHH:MM` with a real date and time.
pub fn minute_ok(text: &str) -> bool {
    let Some((day, time)) = text.split_once('T') else {
        return false;
    };
    let Some((h, m)) = time.split_once(':') else {
        return false;
    };
    dates::parse_date(day).is_some()
        && day.len() == 10
        && h.len() == 2
        && m.len() == 2
        && h.parse::<u32>().is_ok_and(|h| h < 24)
        && m.parse::<u32>().is_ok_and(|m| m < 60)
}

/// Two half-open spans of time overlap.
pub fn overlaps(a: (&str, &str), b: (&str, &str)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TripInput {
    reason: String,
    #[serde(default = "one")]
    passengers: u32,
    destination: String,
    start_at: String,
    end_at: String,
    #[serde(default)]
    emergency: bool,
}

fn one() -> u32 {
    1
}

/// `POST /trips`: a member of the unit asks for a car; the trip goes into
/// approval with its number in one transaction, or, for an emergency, is
/// dispatchable at once and approved afterwards.
fn request(req: &Request) -> Result<Response> {
    let me = identity::caller().ok_or_else(|| Error::unauthorized("sign in"))?;
    let input: TripInput = req.json()?;
    for (field, value) in [
        ("reason", &input.reason),
        ("destination", &input.destination),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(field, "required", "required"));
        }
    }
    for (field, value) in [("start_at", &input.start_at), ("end_at", &input.end_at)] {
        if !minute_ok(value) {
            return Err(invalid(field, "time_invalid", "YYYY-MM-DDTHH:MM"));
        }
    }
    if input.end_at <= input.start_at {
        return Err(invalid(
            "end_at",
            "end_before_start",
            "the end is after the start",
        ));
    }
    if !(1..=60).contains(&input.passengers) {
        return Err(invalid(
            "passengers",
            "passengers_invalid",
            "1–60 passengers",
        ));
    }
    let org = me.org_id.clone();
    let trip = Trip {
        no: NUMBERS.next(&org, &input.start_at[..4])?,
        applicant: me.user_id.clone(),
        applicant_name: me.display_name.clone(),
        reason: input.reason.trim().to_string(),
        passengers: input.passengers,
        destination: input.destination.trim().to_string(),
        start_at: input.start_at,
        end_at: input.end_at,
        emergency: input.emergency,
        status: if input.emergency {
            "approved"
        } else {
            "submitted"
        }
        .into(),
        ..Trip::default()
    };
    let form = json!({
        "no": trip.no,
        "title": { "zh-CN": format!("用车申请 {}", trip.no), "en": format!("Trip request {}", trip.no) },
        "summary": [
            { "label": { "zh-CN": "事由", "en": "Reason" }, "value": trip.reason },
            { "label": { "zh-CN": "目的地", "en": "Destination" }, "value": trip.destination },
            { "label": { "zh-CN": "用车时间", "en": "Time" }, "value": format!("{} – {}", trip.start_at, trip.end_at) },
            { "label": { "zh-CN": "乘车人数", "en": "Passengers" }, "value": trip.passengers, "format": "number" },
            { "label": { "zh-CN": "应急用车", "en": "Emergency" }, "value": if trip.emergency { "是 Yes" } else { "否 No" } }
        ]
    });
    let (approval, docs) = approvals::start_with(
        FLOW,
        "",
        &format!("用车申请 Trip request {}", trip.no),
        Some(&org),
        &form,
        vec![Write::insert_with("trips", None, Some(&org), &trip)?],
    )?;
    let doc = docs
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Error::internal("the trip was not written"))?;
    let mut saved: Trip = serde_json::from_value(doc.data.clone())?;
    saved.approval_id = approval.id;
    let doc = trips().update(&doc.id, doc.revision, &saved)?;
    Ok(Response::json(&doc).with_status(201))
}

/// `GET /trips?status=&q=&sort=`: the dispatch board's queue with
/// `status=approved`, a driver's or a unit's list otherwise.
fn list(req: &Request) -> Result<Response> {
    let find = trips().find();
    let find = list::filter_vocab(find, req, "status", &TRIP_STATUS)?;
    let find = match req.query_param("vehicle_id") {
        Some(v) if !v.is_empty() => find.eq("vehicle_id", v),
        _ => find,
    };
    let find = match req.query_param("q") {
        Some(q) if !q.trim().is_empty() => find.contains("destination", q.trim()),
        _ => find,
    };
    let find = list::sorted(find, req, &["start_at", "no"], "start_at")?;
    list::respond(
        req,
        &find,
        "trips",
        &[
            ("派车单号 No.", "/data/no"),
            ("申请人 Applicant", "/data/applicant_name"),
            ("事由 Reason", "/data/reason"),
            ("目的地 Destination", "/data/destination"),
            ("开始 Start", "/data/start_at"),
            ("结束 End", "/data/end_at"),
            ("状态 Status", "/data/status"),
            ("车牌 Plate", "/data/plate"),
            ("驾驶员 Driver", "/data/driver_name"),
            ("里程 km", "/data/km"),
        ],
    )
}

fn show(req: &Request) -> Result<Response> {
    Ok(Response::json(&trips().fetch::<Trip>(req.param("id")?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchInput {
    vehicle_id: String,
    driver_id: String,
}

/// Dispatched trips of a vehicle or a driver that overlap `trip`.
fn clash(field: &str, value: &str, trip: &Doc<Trip>) -> Result<Option<String>> {
    let busy = trips()
        .find()
        .eq(field, value)
        .eq("status", "dispatched")
        .limit(1000)
        .page::<Trip>()?;
    Ok(busy
        .records
        .into_iter()
        .find(|t| {
            t.id != trip.id
                && overlaps(
                    (&t.data.start_at, &t.data.end_at),
                    (&trip.data.start_at, &trip.data.end_at),
                )
        })
        .map(|t| t.data.no))
}

/// `POST /trips/{id}/dispatch` with `{vehicle_id, driver_id}`. The
/// vehicle and driver records are rewritten in the same transaction, so
/// two dispatchers assigning one car at once meet a revision conflict
/// instead of a double booking.
fn dispatch(req: &Request) -> Result<Response> {
    let trip: Doc<Trip> = trips().fetch(req.param("id")?)?;
    authz::require_at("vehicles.dispatch", &trip.org)?;
    if trip.data.status != "approved" {
        return Err(Error::conflict("only an approved trip is dispatched")
            .with_code("trip_not_dispatchable")
            .with_param("status", trip.data.status.as_str()));
    }
    let input: DispatchInput = req.json()?;
    let vehicle: Doc<Vehicle> = vehicles()
        .get(&input.vehicle_id)?
        .ok_or_else(|| invalid("vehicle_id", "vehicle_unknown", "a vehicle you dispatch"))?;
    authz::require_at("vehicles.dispatch", &vehicle.org)?;
    if vehicle.data.state != "in_service" {
        return Err(invalid("vehicle_id", "vehicle_not_available", "in service")
            .with_param("state", vehicle.data.state.as_str()));
    }
    let driver: Doc<Driver> = collection("drivers")
        .get(&input.driver_id)?
        .ok_or_else(|| invalid("driver_id", "driver_unknown", "a driver you dispatch"))?;
    let day = &trip.data.end_at[..10];
    if !driver.data.licence_expires.is_empty() && driver.data.licence_expires.as_str() < day {
        return Err(invalid("driver_id", "licence_expired", "a valid licence")
            .with_param("expires", driver.data.licence_expires.as_str()));
    }
    if let Some(no) = clash("vehicle_id", &vehicle.id, &trip)? {
        return Err(Error::conflict("the vehicle is on another trip then")
            .with_code("vehicle_busy")
            .with_field("vehicle_id")
            .with_param("trip", no));
    }
    if let Some(no) = clash("driver_id", &driver.id, &trip)? {
        return Err(Error::conflict("the driver is on another trip then")
            .with_code("driver_busy")
            .with_field("driver_id")
            .with_param("trip", no));
    }
    let mut next = trip.data.clone();
    next.status = "dispatched".into();
    next.vehicle_id = vehicle.id.clone();
    next.plate = vehicle.data.plate.clone();
    next.driver_id = driver.id.clone();
    next.driver_name = driver.data.name.clone();
    let written = storage::transact(vec![
        Write::update("trips", &trip, &next)?,
        Write::update("vehicles", &vehicle, &vehicle.data)?,
        Write::update("drivers", &driver, &driver.data)?,
    ])?;
    Ok(Response::json(&written[0]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnInput {
    odometer_out: f64,
    odometer_in: f64,
    #[serde(default)]
    tolls: i64,
    #[serde(default)]
    parking: i64,
    #[serde(default)]
    fuel: i64,
    #[serde(default)]
    note: String,
}

/// The dispatch sheet's figures, checked against the vehicle's odometer.
pub fn check_sheet(odometer_now: f64, out: f64, back: f64, fees: [i64; 3]) -> Result<f64> {
    if !(out.is_finite() && back.is_finite()) || out < odometer_now {
        return Err(invalid(
            "odometer_out",
            "odometer_decreased",
            "not below the vehicle's odometer",
        )
        .with_param("before", odometer_now)
        .with_param("after", out));
    }
    if back < out {
        return Err(invalid(
            "odometer_in",
            "odometer_decreased",
            "not below the odometer out",
        )
        .with_param("before", out)
        .with_param("after", back));
    }
    if back - out > 5000.0 {
        return Err(invalid(
            "odometer_in",
            "trip_too_long",
            "at most 5,000 km on one trip",
        ));
    }
    if fees.iter().any(|f| *f < 0) {
        return Err(invalid(
            "tolls",
            "amount_invalid",
            "amounts are not negative",
        ));
    }
    Ok(((back - out) * 10.0).round() / 10.0)
}

/// `POST /trips/{id}/return`: the dispatch sheet; the vehicle's odometer
/// moves to the odometer in, in the same transaction.
fn give_back(req: &Request) -> Result<Response> {
    let trip: Doc<Trip> = trips().fetch(req.param("id")?)?;
    authz::require_at("vehicles.dispatch", &trip.org)?;
    if trip.data.status != "dispatched" {
        return Err(Error::conflict("only a dispatched trip is returned")
            .with_code("trip_not_dispatched")
            .with_param("status", trip.data.status.as_str()));
    }
    let input: ReturnInput = req.json()?;
    let vehicle: Doc<Vehicle> = vehicles().fetch(&trip.data.vehicle_id)?;
    let km = check_sheet(
        vehicle.data.odometer_km,
        input.odometer_out,
        input.odometer_in,
        [input.tolls, input.parking, input.fuel],
    )?;
    let mut next = trip.data.clone();
    next.status = "returned".into();
    next.odometer_out = Some(input.odometer_out);
    next.odometer_in = Some(input.odometer_in);
    next.km = Some(km);
    next.tolls = input.tolls;
    next.parking = input.parking;
    next.fuel = input.fuel;
    next.note = input.note.trim().to_string();
    let mut moved = vehicle.data.clone();
    moved.odometer_km = input.odometer_in;
    let written = storage::transact(vec![
        Write::update("trips", &trip, &next)?,
        Write::update("vehicles", &vehicle, &moved)?,
    ])?;
    Ok(Response::json(&written[0]))
}

/// `POST /trips/{id}/cancel`: the applicant, or a dispatcher, before the
/// car leaves; the approval in flight is withdrawn.
fn cancel(req: &Request) -> Result<Response> {
    let trip: Doc<Trip> = trips().fetch(req.param("id")?)?;
    let me = identity::caller().ok_or_else(|| Error::unauthorized("sign in"))?;
    if me.user_id != trip.data.applicant {
        authz::require_at("vehicles.dispatch", &trip.org)?;
    }
    if !matches!(trip.data.status.as_str(), "submitted" | "approved") {
        return Err(Error::conflict("the trip cannot be cancelled now")
            .with_code("trip_not_cancellable")
            .with_param("status", trip.data.status.as_str()));
    }
    let mut next = trip.data.clone();
    next.status = "cancelled".into();
    let doc = trips().update(&trip.id, trip.revision, &next)?;
    if trip.data.verdict == Verdict::Pending && !trip.data.approval_id.is_empty() {
        // Best effort: a decided approval cannot be withdrawn, and the
        // trip is cancelled either way.
        let _ = approvals::withdraw(&trip.data.approval_id);
    }
    Ok(Response::json(&doc))
}

/// The approval's outcome. A normal trip becomes dispatchable or ends; an
/// emergency trip, already dispatchable or out, keeps its course and
/// records the verdict given afterwards.
pub fn decided(outcome: &Outcome) -> Result<()> {
    let Some(doc) = trips().get::<Trip>(&outcome.subject_id)? else {
        return Ok(());
    };
    let verdict = match outcome.decision {
        Decision::Approved => Verdict::Approved,
        Decision::Rejected => Verdict::Rejected,
        Decision::Returned | Decision::Withdrawn => return Ok(()),
    };
    if doc.data.verdict == verdict {
        return Ok(()); // a redelivery
    }
    let mut next = doc.data.clone();
    next.verdict = verdict;
    if doc.data.status == "submitted" {
        next.status = match verdict {
            Verdict::Approved => "approved",
            _ => "rejected",
        }
        .into();
    }
    trips().update(&doc.id, doc.revision, &next)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_spans_and_sheets() {
        assert!(minute_ok("2026-03-01T09:30"));
        assert!(!minute_ok("2026-02-30T09:30"));
        assert!(!minute_ok("2026-03-01 09:30"));
        assert!(!minute_ok("2026-03-01T24:00"));
        assert!(overlaps(
            ("2026-03-01T09:00", "2026-03-01T12:00"),
            ("2026-03-01T11:00", "2026-03-01T13:00")
        ));
        assert!(!overlaps(
            ("2026-03-01T09:00", "2026-03-01T12:00"),
            ("2026-03-01T12:00", "2026-03-01T13:00")
        ));
        assert_eq!(
            check_sheet(1000.0, 1000.0, 1042.36, [0, 0, 0]).unwrap(),
            42.4
        );
        assert_eq!(
            check_sheet(1000.0, 999.0, 1042.0, [0, 0, 0])
                .unwrap_err()
                .code(),
            "odometer_decreased"
        );
        assert_eq!(
            check_sheet(1000.0, 1010.0, 1005.0, [0, 0, 0])
                .unwrap_err()
                .field(),
            Some("odometer_in")
        );
        assert_eq!(
            check_sheet(1000.0, 1000.0, 1010.0, [0, -5, 0])
                .unwrap_err()
                .code(),
            "amount_invalid"
        );
    }
}
