//! Test plugin for the `datacenter` import of contract 1.2 and 1.3: its
//! install hook defines indicators (two stored, two parts and a ratio) named after its own id (so the same
//! component installed under another id owns its own), and its routes
//! publish and query values, so tests drive the WIT path end to end.

use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Sharing};
use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;

struct Probe;

impl Plugin for Probe {
    fn routes() -> Router {
        Router::new()
            .post("/publish", publish)
            .get("/query", query)
            .get("/catalogue", catalogue)
            .post("/define", define)
            .get("/ratio", ratio)
    }

    fn install() -> core::result::Result<(), String> {
        define_own().map_err(|e| e.message().to_string())
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        define_own().map_err(|e| e.message().to_string())
    }
}

/// `<id>.visits`: monthly totals, private. `<id>.sites`: a yearly count,
/// open to everyone.
fn define_own() -> Result<()> {
    let id = identity::plugin_id();
    Indicator::new(&format!("{id}.visits"), "到访人次", "Visits", "visits")
        .aggregation(Aggregation::Sum)
        .granularity(Granularity::Month)
        .schema(&json!({"description": "visitors counted at the door"}))
        .define()?;
    Indicator::new(&format!("{id}.sites"), "站点数", "Sites", "sites")
        .aggregation(Aggregation::Stock)
        .granularity(Granularity::Year)
        .sharing(Sharing::Open)
        .define()?;
    // A rate over a base (contract 1.3): occupied over usable area.
    Indicator::new(&format!("{id}.occupied"), "在用面积", "Occupied area", "m²").define()?;
    Indicator::new(&format!("{id}.usable"), "可用面积", "Usable area", "m²").define()?;
    datacenter::Ratio::new(&format!("{id}.occupancy"), "使用率", "Occupancy", "%")
        .of(&format!("{id}.occupied"), &format!("{id}.usable"))
        .scale(100.0)
        .sharing(Sharing::Open)
        .define()?;
    Ok(())
}

/// `{"code": …, "values": [{"org": …, "period": …, "value": …}]}`
fn publish(req: &Request) -> Result<Response> {
    let body = req.json::<Value>()?;
    let code = body["code"]
        .as_str()
        .ok_or_else(|| Error::validation("code", "code is required"))?;
    let values: Vec<datacenter::Point> = body["values"]
        .as_array()
        .ok_or_else(|| Error::validation("values", "a list of values"))?
        .iter()
        .map(|v| {
            datacenter::value(
                v["org"].as_str(),
                v["period"].as_str().unwrap_or(""),
                v["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    let stored = datacenter::publish(code, &values)?;
    Ok(Response::json(&json!({ "stored": stored })).with_status(201))
}

/// `?code=&org=&from=&to=&raw=1&by_org=1&per=year|quarter|month`
fn query(req: &Request) -> Result<Response> {
    let code = req
        .query_param("code")
        .ok_or_else(|| Error::validation("code", "code is required"))?;
    let mut q =
        datacenter::Query::new(&code).between(req.query_param("from"), req.query_param("to"));
    if let Some(org) = req.query_param("org") {
        q = q.org(org);
    }
    if req.query_param("raw").is_some() {
        q = q.raw();
    }
    if req.query_param("by_org").is_some() {
        q = q.by_org();
    }
    match req.query_param("per").as_deref() {
        Some("year") => q = q.per(Granularity::Year),
        Some("quarter") => q = q.per(Granularity::Quarter),
        Some("month") => q = q.per(Granularity::Month),
        Some(_) => return Err(Error::validation("per", "year, quarter or month")),
        None => {}
    }
    Ok(Response::json(&json!({ "rows": q.rows()? })))
}

fn catalogue(_: &Request) -> Result<Response> {
    let codes: Vec<String> = datacenter::catalogue()?
        .into_iter()
        .map(|i| i.code)
        .collect();
    Ok(Response::json(&json!({ "codes": codes })))
}

/// `?code=`: the parts of a ratio indicator, or null.
fn ratio(req: &Request) -> Result<Response> {
    let code = req
        .query_param("code")
        .ok_or_else(|| Error::validation("code", "code is required"))?;
    let parts = datacenter::ratio_of(&code)?.map(
        |r| json!({ "numerator": r.numerator, "denominator": r.denominator, "scale": r.scale }),
    );
    Ok(Response::json(&json!({ "ratio": parts })))
}

/// Tries to define an arbitrary code (tests the owner prefix rule).
fn define(req: &Request) -> Result<Response> {
    let body = req.json::<Value>()?;
    let code = body["code"].as_str().unwrap_or("");
    let entry = Indicator::new(code, "测试", "Test", "n").define()?;
    Ok(Response::json(&entry).with_status(201))
}

tianshan_sdk::export_plugin!(Probe);
