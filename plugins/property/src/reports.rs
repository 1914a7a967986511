//! Reports: area by class, by unit and by building; office area per
//! person against the standard; idle area; registration; over-standard
//! figures. Totals come from the kernel's grouped aggregates over the
//! declared composite indexes, so they stay fast on large registers.

use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Group};

use crate::common::{buildings, occupancies, rooms};
use crate::model;

pub fn routes(router: Router) -> Router {
    router
        .get("/reports/area", area)
        .requires("property.view")
        .get("/reports/summary", summary)
        .requires("property.view")
}

fn sums(find: &tianshan_sdk::storage::Find, by: &[&str]) -> Result<Vec<Group>> {
    rooms().aggregate(
        find,
        by,
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("usable_m2")),
            (AggregateOp::Sum, Some("gross_m2")),
        ],
    )
}

fn n(g: &Group, i: usize) -> f64 {
    model::round2(g.values.get(i).copied().flatten().unwrap_or(0.0))
}

/// `GET /reports/area?by=class|org|building` (`&format=csv|xlsx`).
fn area(req: &Request) -> Result<Response> {
    let by = req.query_param("by").unwrap_or_else(|| "class".into());
    let field = match by.as_str() {
        "class" => "class",
        "org" => "org",
        "building" => "building_id",
        _ => {
            return Err(model::invalid(
                "by",
                "invalid_choice",
                "class, org or building",
            ));
        }
    };
    let lang = req.lang();
    let groups = sums(&rooms().find(), &[field])?;
    let rows: Vec<_> = groups
        .iter()
        .map(|g| {
            let key = g.key.first().and_then(|k| k.as_str()).unwrap_or("").to_string();
            let label = match field {
                "class" => model::ROOM_CLASS.label(&key, lang).to_string(),
                "org" => orgs::get(&key)
                    .ok()
                    .flatten()
                    .map(|o| if lang.starts_with("en") { o.name_en } else { o.name_zh })
                    .unwrap_or_else(|| key.clone()),
                _ => buildings()
                    .get::<model::Building>(&key)
                    .ok()
                    .flatten()
                    .map(|b| b.data.name)
                    .unwrap_or_else(|| key.clone()),
            };
            json!({ "key": key, "label": label, "rooms": n(g, 0), "usable_m2": n(g, 1), "gross_m2": n(g, 2) })
        })
        .collect();
    if let Some(format) = export::wanted(req)? {
        let mut table = export::Table::new(
            &format!("area-by-{by}"),
            &[
                "分组 Group",
                "房间数 Rooms",
                "使用面积 Usable m²",
                "建筑面积 Gross m²",
            ],
        );
        for r in &rows {
            table.push(vec![
                r["label"].clone(),
                r["rooms"].clone(),
                r["usable_m2"].clone(),
                r["gross_m2"].clone(),
            ]);
        }
        return export::respond(&table, format);
    }
    Ok(Response::json(&json!({ "by": by, "rows": rows })))
}

/// `GET /reports/summary`: the headline figures of the reach.
fn summary(_: &Request) -> Result<Response> {
    let all = sums(&rooms().find(), &[])?;
    let offices = sums(&rooms().find().eq("class", "office"), &[])?;
    let idle = sums(
        &rooms().find().eq("class", "office").eq("occupants", 0),
        &[],
    )?;
    let first = |g: &[Group], i: usize| g.first().map_or(0.0, |g| n(g, i));
    let office_m2 = first(&offices, 1);
    let idle_m2 = first(&idle, 1);
    let people = occupancies().find().eq("active", true).count()?;
    let total_buildings = buildings().find().count()?;
    let registered = buildings()
        .find()
        .eq("registration", "registered")
        .count()?;
    let (persons, units) = crate::occupancy::over_standard_rows()?;
    let excess: f64 = persons.iter().filter_map(|p| p["excess_m2"].as_f64()).sum();
    let pct = |a: f64, b: f64| {
        if b > 0.0 {
            model::round2(a * 100.0 / b)
        } else {
            0.0
        }
    };
    Ok(Response::json(&json!({
        "rooms": first(&all, 0),
        "usable_m2": first(&all, 1),
        "gross_m2": first(&all, 2),
        "office_m2": office_m2,
        "occupants": people,
        "office_m2_per_person": if people > 0 { model::round2(office_m2 / people as f64) } else { 0.0 },
        "idle_office_m2": idle_m2,
        "idle_rate": pct(idle_m2, office_m2),
        "buildings": total_buildings,
        "buildings_registered": registered,
        "registration_rate": pct(registered as f64, total_buildings as f64),
        "over_standard_persons": persons.len(),
        "over_standard_units": units.len(),
        "excess_m2": model::round2(excess),
    })))
}
