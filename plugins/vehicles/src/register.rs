//! The register: vehicles and drivers of the acting org's subtree.

use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, collection};

use crate::model::{CATEGORY, Driver, ENERGY_TYPE, STATE, Vehicle, odometer_moves_on};

pub fn routes(router: Router) -> Router {
    router
        .get("/vehicles", list_vehicles)
        .requires("vehicles.view")
        .post("/vehicles", create_vehicle)
        .requires("vehicles.manage")
        .get("/vehicles/{id}", get_vehicle)
        .requires("vehicles.view")
        .put("/vehicles/{id}", update_vehicle)
        .requires("vehicles.manage")
        .get("/drivers", list_drivers)
        .requires("vehicles.view")
        .post("/drivers", create_driver)
        .requires("vehicles.manage")
}

pub fn vehicles() -> tianshan_sdk::storage::Collection {
    collection("vehicles")
}

/// `GET /vehicles?q=&category=&energy_type=&state=&sort=&format=csv|xlsx`
fn list_vehicles(req: &Request) -> Result<Response> {
    let mut find = vehicles().find();
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.contains("plate", &q);
    }
    let find = list::filter_vocab(find, req, "category", &CATEGORY)?;
    let find = list::filter_vocab(find, req, "energy_type", &ENERGY_TYPE)?;
    let find = list::filter_vocab(find, req, "state", &STATE)?;
    let find = list::sorted(
        find,
        req,
        &["plate", "registered_on", "odometer_km"],
        "plate",
    )?;
    list::respond(
        req,
        &find,
        "vehicles",
        &[
            ("车牌号 Plate", "/data/plate"),
            ("车架号 VIN", "/data/vin"),
            ("品牌 Brand", "/data/brand"),
            ("型号 Model", "/data/model"),
            ("能源类型 Energy", "/data/energy_type"),
            ("类别 Category", "/data/category"),
            ("里程 Odometer km", "/data/odometer_km"),
            ("状态 State", "/data/state"),
        ],
    )
}

/// A plate is unique among the vehicles the caller reaches (a county's
/// manager cannot see, so cannot be told about, another county's plates).
fn plate_taken(plate: &str, except: Option<&str>) -> Result<bool> {
    if plate.is_empty() {
        return Ok(false);
    }
    let found = vehicles()
        .find()
        .eq("plate", plate)
        .limit(2)
        .page::<Value>()?;
    Ok(found.records.iter().any(|d| Some(d.id.as_str()) != except))
}

fn check_plate(v: &Vehicle, except: Option<&str>) -> Result<()> {
    if plate_taken(&v.plate, except)? {
        return Err(Error::conflict("a vehicle with this plate is registered")
            .with_code("plate_taken")
            .with_field("plate")
            .with_param("plate", v.plate.clone()));
    }
    Ok(())
}

fn create_vehicle(req: &Request) -> Result<Response> {
    let mut body: serde_json::Map<String, Value> = req.json()?;
    // The org is the acting org or one the caller names and reaches; the
    // kernel refuses one outside the caller's reach.
    let org = orgs::target(
        "vehicles.manage",
        body.remove("org").as_ref().and_then(Value::as_str),
    )?;
    for owned in ["nev", "asset_card_id", "purchase_id"] {
        body.remove(owned);
    }
    let mut vehicle: Vehicle = serde_json::from_value(Value::Object(body))
        .map_err(|e| Error::validation("body", e.to_string()).with_code("invalid_body"))?;
    vehicle.normalise()?;
    check_plate(&vehicle, None)?;
    let doc = vehicles().insert_with(None, org.as_deref(), &vehicle)?;
    if let Err(e) = crate::terminals::bind(&doc.id, &doc.org, &vehicle) {
        // No vehicle whose terminal could not be made.
        vehicles().delete(&doc.id, Some(doc.revision))?;
        return Err(e);
    }
    crate::indicators::refresh(&doc.org)?;
    Ok(Response::json(&doc).with_status(201))
}

fn get_vehicle(req: &Request) -> Result<Response> {
    let doc: Doc<Value> = vehicles().fetch(req.param("id")?)?;
    Ok(Response::json(&doc))
}

/// `PUT /vehicles/{id}`: the fields given change; the odometer only
/// upwards; the org, NEV flag and links stay the kernel's and the
/// workflow's.
fn update_vehicle(req: &Request) -> Result<Response> {
    let doc: Doc<Vehicle> = vehicles().fetch(req.param("id")?)?;
    authz::require_at("vehicles.manage", &doc.org)?;
    let body: serde_json::Map<String, Value> = req.json()?;
    let mut merged = serde_json::to_value(&doc.data)
        .map_err(|e| Error::internal(e.to_string()))?
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in body {
        if !["org", "nev", "asset_card_id", "purchase_id"].contains(&k.as_str()) {
            merged.insert(k, v);
        }
    }
    let mut next: Vehicle = serde_json::from_value(Value::Object(merged))
        .map_err(|e| Error::validation("body", e.to_string()).with_code("invalid_body"))?;
    // A vehicle of an approved purchase gets its plate: it is in service.
    if doc.data.state == "ordered" && !next.plate.is_empty() && next.state == "ordered" {
        next.state = "in_service".into();
    }
    next.normalise()?;
    // Scrapping and the purchase's ordered state are the workflow's.
    let workflow = ["scrapping", "scrapped", "ordered"];
    if next.state != doc.data.state
        && (workflow.contains(&next.state.as_str())
            || workflow[..2].contains(&doc.data.state.as_str()))
    {
        return Err(Error::conflict("this state changes through its approval")
            .with_code("state_by_workflow")
            .with_field("state"));
    }
    odometer_moves_on(doc.data.odometer_km, next.odometer_km)?;
    if next.plate != doc.data.plate {
        check_plate(&next, Some(&doc.id))?;
    }
    if next.terminal_id != doc.data.terminal_id || next.plate != doc.data.plate {
        crate::terminals::bind(&doc.id, &doc.org, &next)?;
    }
    let saved = vehicles().update(&doc.id, doc.revision, &next)?;
    crate::indicators::refresh(&saved.org)?;
    Ok(Response::json(&saved))
}

fn list_drivers(req: &Request) -> Result<Response> {
    let find = list::sorted(collection("drivers").find(), req, &["name"], "name")?;
    list::respond(
        req,
        &find,
        "drivers",
        &[
            ("姓名 Name", "/data/name"),
            ("准驾车型 Class", "/data/licence_class"),
            ("驾驶证有效期 Expires", "/data/licence_expires"),
        ],
    )
}

fn create_driver(req: &Request) -> Result<Response> {
    let mut driver: Driver = req.json()?;
    driver.normalise()?;
    Ok(Response::json(&collection("drivers").insert(&driver)?).with_status(201))
}
