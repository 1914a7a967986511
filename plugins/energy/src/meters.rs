//! Meters and bills. A meter is a record here and a device in the
//! kernel's telemetry service: online meters report over MQTT to
//! `tianshan/telemetry/<external id>`, manual ones are read by hand on a
//! phone (with a photo of the dial) and recorded by this plugin. A
//! month's consumption is the kernel's roll-up of the counter's
//! increments, times the meter's multiplier (CT/PT ratio). Meters with a
//! parent are sub-meters (分项): they break a main meter down and are not
//! counted again in the statement. Bills (utility invoices) fill an
//! energy type no meter measures.

use serde::{Deserialize, Serialize};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};
use tianshan_sdk::telemetry::{
    Channel, Condition, Device, DeviceKind, Interval, Measure, Quality, Rule, Series,
};

use crate::common;
use crate::model::{Line, METER_KIND, SUB_ITEM};

pub fn meters() -> Collection {
    collection("meters")
}
pub fn bills() -> Collection {
    collection("bills")
}

/// Online meters silent for a day raise an alert.
pub const OFFLINE_RULE: &str = "meter-offline";
const OFFLINE_MINUTES: u32 = 24 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    pub name: String,
    /// The building or place it is installed at, as people say it.
    #[serde(default)]
    pub building: String,
    pub energy_type: String,
    #[serde(default = "total")]
    pub sub_item: String,
    /// `online` or `manual`.
    pub kind: String,
    /// What an online meter reports as (its MQTT topic segment).
    #[serde(default)]
    pub external_id: String,
    /// 户号: the utility's account number.
    #[serde(default)]
    pub account_no: String,
    #[serde(default = "one")]
    pub multiplier: f64,
    /// The main meter this one breaks down.
    #[serde(default)]
    pub parent: String,
}

fn total() -> String {
    "total".into()
}
fn one() -> f64 {
    1.0
}

/// The telemetry channel a meter of an energy type counts on.
pub fn channel_for(energy_type: &str) -> &'static str {
    match energy_type {
        "electricity" => "kwh",
        "water" | "natural_gas" => "m3",
        "heat" => "gj",
        _ => "qty",
    }
}

pub fn routes(router: Router) -> Router {
    router
        .get("/meters", list)
        .requires("energy.view")
        .post("/meters", create)
        .requires("energy.report")
        .get("/meters/{id}", show)
        .requires("energy.view")
        .put("/meters/{id}", update)
        .requires("energy.report")
        .post("/meters/{id}/readings", read)
        .requires("energy.report")
        .post("/meters/{id}/photos", photo)
        .requires("energy.report")
        .get("/bills", list_bills)
        .requires("energy.view")
        .post("/bills", create_bill)
        .requires("energy.report")
}

pub fn define_rules() -> Result<()> {
    tianshan_sdk::telemetry::define_rule(&Rule::new(
        OFFLINE_RULE,
        Condition::Offline(OFFLINE_MINUTES),
    ))
}

impl Meter {
    fn normalise(&mut self) -> Result<()> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(Error::invalid(
                "name",
                "required",
                "a name of 1-100 characters",
            ));
        }
        let factors = crate::factors::for_year(dates::this_month().div_euclid(12) as i32)?;
        if factors.data.get(&self.energy_type).is_none() {
            return Err(Error::invalid(
                "energy_type",
                "energy_type_unknown",
                "not an energy type of the factor set",
            )
            .with_param("type", self.energy_type.clone()));
        }
        SUB_ITEM.check("sub_item", &self.sub_item)?;
        METER_KIND.check("kind", &self.kind)?;
        self.external_id = self.external_id.trim().to_string();
        if self.kind == "online" {
            let ok = !self.external_id.is_empty()
                && self.external_id.len() <= 64
                && self
                    .external_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !ok {
                return Err(Error::invalid(
                    "external_id",
                    "external_id_invalid",
                    "an online meter reports as 1-64 letters, digits, '_', '.', ':' or '-'",
                ));
            }
        } else {
            self.external_id.clear();
        }
        if !(self.multiplier.is_finite() && self.multiplier > 0.0 && self.multiplier <= 100_000.0) {
            return Err(Error::invalid(
                "multiplier",
                "multiplier_invalid",
                "a multiplier above 0",
            ));
        }
        Ok(())
    }

    fn device(&self, id: &str, org: &str) -> Device {
        let channel = Channel::counter(channel_for(&self.energy_type), "").range(0.0, 1e12);
        let device = if self.kind == "online" {
            Device::meter(id, &self.name, &self.external_id)
        } else {
            Device::manual(DeviceKind::Meter, id, &self.name)
        };
        device.org(org).channel(channel)
    }
}

fn list(req: &Request) -> Result<Response> {
    let find = meters().find();
    let find = list::filter_vocab(find, req, "sub_item", &SUB_ITEM)?;
    let find = list::filter_vocab(find, req, "kind", &METER_KIND)?;
    let find = match req.query_param("energy_type").filter(|t| !t.is_empty()) {
        Some(t) => find.eq("energy_type", t),
        None => find,
    };
    let find = match req.query_param("org").filter(|o| !o.is_empty()) {
        Some(o) => find.within(Some(common::org_in_reach("org", &o)?)),
        None => find,
    };
    let find = list::sorted(find, req, &["name", "building"], "name")?;
    if export::wanted(req)?.is_some() {
        return list::respond(
            req,
            &find,
            "meters",
            &[
                ("名称 Name", "/data/name"),
                ("位置 Building", "/data/building"),
                ("能源 Energy", "/data/energy_type"),
                ("分项 Sub-item", "/data/sub_item"),
                ("户号 Account", "/data/account_no"),
                ("倍率 Multiplier", "/data/multiplier"),
            ],
        );
    }
    let page = list::Paging::of(req)?
        .apply(find)
        .with_total()
        .page::<Meter>()?;
    let ids: Vec<String> = page.records.iter().map(|d| d.id.clone()).collect();
    let latest = if ids.is_empty() {
        Vec::new()
    } else {
        tianshan_sdk::telemetry::latest(&ids)?
    };
    let records: Vec<_> = page
        .records
        .iter()
        .map(|d| {
            let last = latest.iter().find(|l| l.device == d.id);
            json!({
                "id": d.id, "org": d.org, "revision": d.revision, "data": d.data,
                "latest": last.map(|l| json!({ "at": l.at, "value": l.value })),
            })
        })
        .collect();
    Ok(Response::json(&json!({
        "records": records, "next_cursor": page.next_cursor, "total": page.total,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateInput {
    #[serde(default)]
    org: Option<String>,
    #[serde(flatten)]
    meter: Meter,
    /// A manual meter's reading when it was put in, so the first month
    /// read by hand has something to count from.
    #[serde(default)]
    initial_reading: Option<f64>,
}

fn create(req: &Request) -> Result<Response> {
    let input: CreateInput = req.json()?;
    let org = match input.org.filter(|o| !o.is_empty()) {
        Some(o) => common::org_in_reach("org", &o)?,
        None => common::acting_org(),
    };
    authz::require_at("energy.report", &org)?;
    let mut meter = input.meter;
    meter.normalise()?;
    if !meter.parent.is_empty() {
        let parent: Doc<Meter> = meters()
            .get(&meter.parent)?
            .ok_or_else(|| Error::invalid("parent", "meter_unknown", "no such meter"))?;
        if parent.org != org {
            return Err(Error::invalid(
                "parent",
                "meter_other_org",
                "a sub-meter hangs under a meter of the same institution",
            ));
        }
    }
    let doc = meters().insert_with(None, Some(&org), &meter)?;
    if let Err(e) = tianshan_sdk::telemetry::register(&meter.device(&doc.id, &org)) {
        // No half-made meter: the record goes when the device cannot be made.
        meters().delete(&doc.id, Some(doc.revision))?;
        return Err(match e.status() {
            409 => e.with_code("external_id_taken").with_field("external_id"),
            _ => e,
        });
    }
    if let Some(value) = input.initial_reading {
        record_reading(&doc, value, dates::now_ms() - 60_000, None)?;
    }
    Ok(Response::json(&doc).with_status(201))
}

fn show(req: &Request) -> Result<Response> {
    let doc: Doc<Meter> = meters().fetch(req.param("id")?)?;
    let latest = tianshan_sdk::telemetry::latest(std::slice::from_ref(&doc.id))?;
    let this = dates::this_month();
    let (from, _) = dates::month_bounds_ms(this - 11);
    let (_, to) = dates::month_bounds_ms(this);
    let months = Series::new(channel_for(&doc.data.energy_type))
        .devices(&[doc.id.as_str()])
        .between(from, to)
        .per(Interval::Month)
        .measure(Measure::Sum)
        .buckets()?;
    let readings = collection("readings")
        .find()
        .eq("meter", doc.id.as_str())
        .sort_desc("at")
        .limit(12)
        .page::<Value>()?;
    Ok(Response::json(&json!({
        "meter": doc,
        "latest": latest.first().map(|l| json!({ "at": l.at, "value": l.value })),
        "months": months.iter().map(|b| json!({
            "period": dates::period_at(b.start / 1000, dates::Granularity::Month),
            "consumption": crate::model::round(b.value * doc.data.multiplier, 3),
            "readings": b.count,
        })).collect::<Vec<_>>(),
        "readings": readings.records,
    })))
}

use serde_json::Value;

fn update(req: &Request) -> Result<Response> {
    let doc: Doc<Meter> = meters().fetch(req.param("id")?)?;
    authz::require_at("energy.report", &doc.org)?;
    let mut meter: Meter = req.json()?;
    meter.normalise()?;
    if meter.energy_type != doc.data.energy_type {
        return Err(Error::invalid(
            "energy_type",
            "meter_type_fixed",
            "a meter's energy type does not change; add a new meter",
        ));
    }
    tianshan_sdk::telemetry::register(&meter.device(&doc.id, &doc.org)).map_err(|e| {
        match e.status() {
            409 => e.with_code("external_id_taken").with_field("external_id"),
            _ => e,
        }
    })?;
    Ok(Response::json(&meters().update(
        &doc.id,
        doc.revision,
        &meter,
    )?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadingInput {
    /// The dial's cumulative value.
    value: f64,
    /// `YYYY-MM-DD` the meter was read (noon in the region); today when
    /// not given.
    #[serde(default)]
    on: Option<String>,
    /// A photo of the dial, uploaded through the kernel's files first.
    #[serde(default)]
    photo: Option<String>,
}

/// `POST /meters/{id}/readings`: a reading by hand.
fn read(req: &Request) -> Result<Response> {
    let doc: Doc<Meter> = meters().fetch(req.param("id")?)?;
    authz::require_at("energy.report", &doc.org)?;
    if doc.data.kind != "manual" {
        return Err(Error::invalid(
            "value",
            "meter_is_online",
            "an online meter reports by itself",
        ));
    }
    let input: ReadingInput = req.json()?;
    let on = match input.on.filter(|d| !d.is_empty()) {
        Some(d) => dates::parse_date(&d)
            .map(dates::date_text)
            .ok_or_else(|| Error::invalid("on", "invalid_date", "expected YYYY-MM-DD"))?,
        None => dates::today(),
    };
    if on > dates::today() {
        return Err(
            Error::invalid("on", "date_in_future", "a day that has come")
                .with_param("today", dates::today()),
        );
    }
    let (y, m, d) = dates::parse_date(&on).unwrap_or((1970, 1, 1));
    // Now for today; noon in the region for an earlier day, so the reading
    // sits inside its day and month.
    let at = if on == dates::today() {
        dates::now_ms()
    } else {
        (dates::days_from_civil(y, m, d) * 86_400 + 4 * 3600) * 1000
    };
    if let Some(photo) = &input.photo {
        files::info(photo)
            .map_err(|_| Error::invalid("photo", "photo_unknown", "upload the photo first"))?;
    }
    let recorded = record_reading(&doc, input.value, at, input.photo.as_deref())?;
    Ok(Response::json(&recorded).with_status(201))
}

/// `POST /meters/{id}/photos?name=`: a photo of the dial (the body), kept
/// in the kernel's files at the meter's org; the reading names it.
fn photo(req: &Request) -> Result<Response> {
    let doc: Doc<Meter> = meters().fetch(req.param("id")?)?;
    authz::require_at("energy.report", &doc.org)?;
    let name = req
        .query_param("name")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "meter.jpg".into());
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream");
    let info = files::put(&name, content_type, req.body(), Some(&doc.org))?;
    Ok(Response::json(&json!({ "file": { "id": info.id, "size": info.size } })).with_status(201))
}

/// Records a reading of a meter, refusing one below the latest reading
/// before it (a dial does not run backwards; a replaced meter is a new
/// meter). Keeps the reading and its photo in `readings` too, so the
/// register shows who read what.
fn record_reading(doc: &Doc<Meter>, value: f64, at: i64, photo: Option<&str>) -> Result<Value> {
    if !(0.0..1e12).contains(&value) {
        return Err(Error::invalid(
            "value",
            "reading_invalid",
            "a reading of 0 or more",
        ));
    }
    // Readings go in the order they were taken: the kernel counts a
    // counter's increments between consecutive readings.
    let before = collection("readings")
        .find()
        .eq("meter", doc.id.as_str())
        .sort_desc("at")
        .limit(1)
        .page::<Value>()?;
    if let Some(last) = before.records.first() {
        let last_at = last.data["at"].as_i64().unwrap_or(0);
        if at <= last_at {
            return Err(Error::invalid(
                "on",
                "reading_not_latest",
                "a reading taken after the last one",
            )
            .with_param(
                "last",
                dates::date_at(last_at / 1000, dates::REGION_OFFSET_MINUTES),
            ));
        }
        let last_value = last.data["value"].as_f64().unwrap_or(0.0);
        if value < last_value {
            return Err(Error::invalid(
                "value",
                "reading_below_last",
                "a reading below the one before it",
            )
            .with_param("last", last_value));
        }
    }
    let channel = channel_for(&doc.data.energy_type);
    let recorded = tianshan_sdk::telemetry::record(
        &[tianshan_sdk::telemetry::reading(
            &doc.id, channel, at, value,
        )],
        Quality::Manual,
    )?;
    if recorded.stored == 0 && recorded.duplicates == 0 {
        return Err(Error::invalid(
            "value",
            "reading_refused",
            "the kernel refused the reading",
        ));
    }
    let by = identity::caller().map(|p| p.username).unwrap_or_default();
    collection("readings").insert_with(
        None,
        Some(&doc.org),
        &json!({ "meter": doc.id, "at": at, "value": value, "photo": photo, "by": by }),
    )?;
    Ok(json!({ "meter": doc.id, "at": at, "value": value, "stored": recorded.stored }))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bill {
    pub energy_type: String,
    /// `YYYY-MM`.
    pub period: String,
    pub quantity: f64,
    #[serde(default)]
    pub cost_fen: i64,
    #[serde(default)]
    pub account_no: String,
    #[serde(default)]
    pub invoice_no: String,
}

fn list_bills(req: &Request) -> Result<Response> {
    let find = bills().find();
    let find = match req.query_param("period").filter(|p| !p.is_empty()) {
        Some(p) => find.eq("period", common::month("period", &p)?.1),
        None => find,
    };
    let find = list::sorted(find, req, &["period", "quantity"], "-period")?;
    list::respond(
        req,
        &find,
        "bills",
        &[
            ("月份 Period", "/data/period"),
            ("能源 Energy", "/data/energy_type"),
            ("数量 Quantity", "/data/quantity"),
            ("费用(分) Cost fen", "/data/cost_fen"),
            ("户号 Account", "/data/account_no"),
            ("发票号 Invoice", "/data/invoice_no"),
        ],
    )
}

fn create_bill(req: &Request) -> Result<Response> {
    let mut body: serde_json::Map<String, Value> = req.json()?;
    let org = match body
        .remove("org")
        .and_then(|o| o.as_str().map(String::from))
    {
        Some(o) if !o.is_empty() => common::org_in_reach("org", &o)?,
        _ => common::acting_org(),
    };
    authz::require_at("energy.report", &org)?;
    let mut bill: Bill = serde_json::from_value(Value::Object(body))
        .map_err(|e| Error::validation("body", e.to_string()).with_code("invalid_body"))?;
    let (index, period) = common::month("period", &bill.period)?;
    bill.period = period;
    let factors = crate::factors::for_year(index.div_euclid(12) as i32)?;
    crate::model::check_lines(
        &[Line {
            energy_type: bill.energy_type.clone(),
            quantity: bill.quantity,
            cost_fen: bill.cost_fen,
            source: "bill".into(),
            estimated: false,
        }],
        &factors.data,
    )
    .map_err(|e| {
        let field = if e.code() == "energy_type_unknown" {
            "energy_type"
        } else if e.code() == "cost_invalid" {
            "cost_fen"
        } else {
            "quantity"
        };
        e.with_field(field)
    })?;
    Ok(Response::json(&bills().insert_with(None, Some(&org), &bill)?).with_status(201))
}

/// What the meters and bills of one institution say about one month.
pub struct Measured {
    pub lines: Vec<Line>,
    /// Main meters with no reading in the month: the form flags them.
    pub gaps: Vec<Value>,
}

/// The month's consumption per energy type of `org`'s own main meters
/// (sub-meters break these down and are not added), and bills for any
/// type no meter measured.
pub fn measured(org: &str, month: i64) -> Result<Measured> {
    let (from, to) = dates::month_bounds_ms(month);
    let mains = meters()
        .find()
        .eq("org", org)
        .eq("parent", "")
        .all::<Meter>(500)?;
    let mut lines: Vec<Line> = Vec::new();
    let mut gaps = Vec::new();
    for meter in &mains {
        let buckets = Series::new(channel_for(&meter.data.energy_type))
            .devices(&[meter.id.as_str()])
            .between(from, to)
            .per(Interval::Month)
            .measure(Measure::Sum)
            .buckets()?;
        let readings: u32 = buckets.iter().map(|b| b.count).sum();
        if readings == 0 {
            gaps.push(json!({ "meter": meter.id, "name": meter.data.name }));
            continue;
        }
        let quantity: f64 = buckets.iter().map(|b| b.value).sum::<f64>() * meter.data.multiplier;
        add(&mut lines, &meter.data.energy_type, quantity, 0, "meter");
    }
    let period = dates::month_text(month);
    for bill in bills()
        .find()
        .eq("org", org)
        .eq("period", period.as_str())
        .all::<Bill>(200)?
    {
        let metered = lines
            .iter()
            .any(|l| l.energy_type == bill.data.energy_type && l.source == "meter");
        if metered {
            // The meter measured it; the bill brings the cost.
            if let Some(l) = lines
                .iter_mut()
                .find(|l| l.energy_type == bill.data.energy_type)
            {
                l.cost_fen += bill.data.cost_fen;
            }
        } else {
            add(
                &mut lines,
                &bill.data.energy_type,
                bill.data.quantity,
                bill.data.cost_fen,
                "bill",
            );
        }
    }
    // Vehicle fuel from the vehicles system's logs, for what no meter or
    // bill gave. Charging is not added: the piles hang off the building's
    // own meters, which count it already.
    for (energy_type, code) in [
        ("gasoline", "vehicles.gasoline_l"),
        ("diesel", "vehicles.diesel_l"),
    ] {
        if lines.iter().any(|l| l.energy_type == energy_type) {
            continue;
        }
        let own = tianshan_sdk::datacenter::Query::new(code)
            .org(org)
            .between(Some(period.clone()), Some(period.clone()))
            .raw()
            .rows();
        // Without the vehicles system (or its indicator) there is nothing to add.
        let litres: f64 = own
            .unwrap_or_default()
            .iter()
            .filter(|r| r.org == org)
            .map(|r| r.value)
            .sum();
        if litres > 0.0 {
            add(&mut lines, energy_type, litres, 0, "vehicles");
        }
    }
    for l in &mut lines {
        l.quantity = crate::model::round(l.quantity, 3);
    }
    Ok(Measured { lines, gaps })
}

fn add(lines: &mut Vec<Line>, energy_type: &str, quantity: f64, cost_fen: i64, source: &str) {
    match lines.iter_mut().find(|l| l.energy_type == energy_type) {
        Some(l) => {
            l.quantity += quantity;
            l.cost_fen += cost_fen;
        }
        None => lines.push(Line {
            energy_type: energy_type.into(),
            quantity,
            cost_fen,
            source: source.into(),
            estimated: false,
        }),
    }
}
