//! Test plugin for the `telemetry` import of contract 1.3: its routes pass
//! JSON straight to the SDK's telemetry calls, so tests drive devices,
//! readings, roll-ups, rules and alerts end to end; its event handler keeps
//! every alert it receives in the `alerts` collection.

use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;
use tianshan_sdk::storage::collection;
use tianshan_sdk::telemetry::{self, Device, Interval, Measure, Quality, Reading, Rule, Series};

struct Meters;

impl Plugin for Meters {
    fn routes() -> Router {
        Router::new()
            .post("/devices", register)
            .get("/devices", list)
            .delete("/devices/{id}", remove)
            .post("/readings", record)
            .get("/aggregate", aggregate)
            .get("/latest", latest)
            .get("/track", track)
            .post("/rules", define_rule)
            .get("/alerts", alerts)
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        keep_alerts(&event).map_err(|e| e.to_string())
    }
}

fn register(req: &Request) -> Result<Response> {
    let device: Device = req.json()?;
    Ok(Response::json(&telemetry::register(&device)?).with_status(201))
}

fn list(req: &Request) -> Result<Response> {
    let org = req.query_param("org");
    Ok(Response::json(
        &json!({ "devices": telemetry::devices(org.as_deref())? }),
    ))
}

fn remove(req: &Request) -> Result<Response> {
    Ok(Response::json(
        &json!({ "removed": telemetry::remove(req.param("id")?)? }),
    ))
}

/// `{"readings": [Reading], "quality": "manual" | "bill" | "good"}`
fn record(req: &Request) -> Result<Response> {
    #[derive(tianshan_sdk::serde::Deserialize)]
    #[serde(crate = "tianshan_sdk::serde")]
    struct Input {
        readings: Vec<Reading>,
        quality: Quality,
    }
    let input: Input = req.json()?;
    Ok(Response::json(&telemetry::record(
        &input.readings,
        input.quality,
    )?))
}

fn number(req: &Request, name: &str) -> Result<i64> {
    req.query_param(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::validation(name, format!("{name} (ms) is required")))
}

/// `?channel=&from=&to=&interval=&measure=&devices=a,b&org=&per_device=1`
fn aggregate(req: &Request) -> Result<Response> {
    let channel = req
        .query_param("channel")
        .ok_or_else(|| Error::validation("channel", "channel is required"))?;
    let mut series = Series::new(&channel).between(number(req, "from")?, number(req, "to")?);
    series = series.per(match req.query_param("interval").as_deref() {
        Some("15m") => Interval::QuarterHour,
        Some("day") => Interval::Day,
        Some("month") => Interval::Month,
        _ => Interval::Hour,
    });
    series = series.measure(match req.query_param("measure").as_deref() {
        Some("avg") => Measure::Avg,
        Some("min") => Measure::Min,
        Some("max") => Measure::Max,
        Some("last") => Measure::Last,
        Some("count") => Measure::Count,
        _ => Measure::Sum,
    });
    if let Some(devices) = req.query_param("devices") {
        let list: Vec<&str> = devices.split(',').collect();
        series = series.devices(&list);
    }
    if let Some(org) = req.query_param("org") {
        series = series.within(&org);
    }
    if req.query_param("per_device").is_some() {
        series = series.per_device();
    }
    Ok(Response::json(&json!({ "buckets": series.buckets()? })))
}

fn latest(req: &Request) -> Result<Response> {
    let devices: Vec<String> = req
        .query_param("devices")
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    Ok(Response::json(
        &json!({ "latest": telemetry::latest(&devices)? }),
    ))
}

fn track(req: &Request) -> Result<Response> {
    let device = req
        .query_param("device")
        .ok_or_else(|| Error::validation("device", "device is required"))?;
    let points = telemetry::track(&device, number(req, "from")?, number(req, "to")?)?;
    Ok(Response::json(&json!({ "points": points })))
}

fn define_rule(req: &Request) -> Result<Response> {
    let rule: Rule = req.json()?;
    telemetry::define_rule(&rule)?;
    Ok(Response::empty(204))
}

fn alerts(_: &Request) -> Result<Response> {
    let page = collection("alerts").find().limit(200).page::<Value>()?;
    let alerts: Vec<Value> = page.records.into_iter().map(|d| d.data).collect();
    Ok(Response::json(&json!({ "alerts": alerts })))
}

/// One record per alert, keyed by the event and its place in it, so a
/// redelivered event adds nothing.
fn keep_alerts(event: &Event) -> Result<()> {
    let Some(alerts) = event.telemetry_alerts()? else {
        return Ok(());
    };
    for (i, alert) in alerts.iter().enumerate() {
        let id = format!("{}-{i}", event.id);
        match collection("alerts").insert_with(Some(&id), Some(&alert.org), alert) {
            Ok(_) => {}
            Err(e) if e.status() == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

tianshan_sdk::export_plugin!(Meters);
