//! The summary forms (综合表) and the analysis pages: a year by
//! administrative area (the orgs directly below, from the data center's
//! roll-up) or by institution category (单位性质, from the locked
//! statements and profiles), exported as XLSX in the form's columns; and
//! one org's structure by energy type, months against the year before,
//! and the ranking of the orgs below by energy per m².

use std::collections::BTreeMap;

use tianshan_sdk::datacenter::{Granularity, Query};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::AggregateOp;

use crate::common;
use crate::model::{self, NATURE, Profile, Statement};

pub fn routes(router: Router) -> Router {
    router
        .get("/summary", summary)
        .requires("energy.view")
        .get("/analysis", analysis)
        .requires("energy.view")
}

fn org_and_year(req: &Request) -> Result<(String, i32)> {
    let org = match req.query_param("org").filter(|o| !o.is_empty()) {
        Some(o) => common::org_in_reach("org", &o)?,
        None => common::acting_org(),
    };
    let year = match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => common::year("year", &y)?,
        None => dates::current_period(Granularity::Year)
            .parse()
            .unwrap_or(2026),
    };
    Ok((org, year))
}

struct Row {
    key: String,
    name: String,
    kgce: f64,
    co2_kg: f64,
    water_m3: f64,
    area: f64,
    users: f64,
}

impl Row {
    fn json(&self, months: usize) -> Value {
        let scale = 12.0 / months.max(1) as f64;
        let per = |v: f64, d: f64| (d > 0.0).then(|| model::round(v * scale / d, 3));
        json!({
            "key": self.key, "name": self.name,
            "kgce": model::round(self.kgce, 3),
            "tce": model::round(self.kgce / 1000.0, 3),
            "co2_t": model::round(self.co2_kg / 1000.0, 3),
            "water_m3": model::round(self.water_m3, 3),
            "building_m2": self.area, "energy_users": self.users,
            "per_area": per(self.kgce, self.area),
            "per_capita": per(self.kgce, self.users),
            "water_per_capita": per(self.water_m3, self.users),
            "carbon_per_area": per(self.co2_kg, self.area),
        })
    }
}

use serde_json::Value;

/// Per direct child org (and the org itself), from the data center.
fn by_area(org: &str, year: i32) -> Result<Vec<Row>> {
    let y = year.to_string();
    let rows = |code: &str| -> Result<BTreeMap<String, f64>> {
        Ok(Query::new(code)
            .org(org)
            .between(Some(y.clone()), Some(y.clone()))
            .by_org()
            .rows()?
            .into_iter()
            .map(|r| (r.org, r.value))
            .collect())
    };
    let (kgce, co2, water, area, users) = (
        rows("energy.kgce")?,
        rows("energy.co2")?,
        rows("energy.water")?,
        rows("energy.area")?,
        rows("energy.users")?,
    );
    let mut out = Vec::new();
    for (child, value) in &kgce {
        let name = orgs::get(child)?
            .map(|o| o.name_zh)
            .unwrap_or_else(|| child.clone());
        out.push(Row {
            key: child.clone(),
            name,
            kgce: *value,
            co2_kg: co2.get(child).copied().unwrap_or(0.0),
            water_m3: water.get(child).copied().unwrap_or(0.0),
            area: area.get(child).copied().unwrap_or(0.0),
            users: users.get(child).copied().unwrap_or(0.0),
        });
    }
    Ok(out)
}

/// Per institution category, over the org's subtree.
fn by_category(org: &str, year: i32) -> Result<Vec<Row>> {
    let locked = crate::statements::statements()
        .find()
        .within(Some(org.to_string()))
        .eq("year", year)
        .eq("status", "locked");
    let sums = crate::statements::statements().aggregate(
        &locked,
        &["nature"],
        &[
            (AggregateOp::Sum, Some("kgce")),
            (AggregateOp::Sum, Some("co2_kg")),
            (AggregateOp::Sum, Some("water_m3")),
        ],
    )?;
    let profiles = crate::profiles::profiles()
        .find()
        .within(Some(org.to_string()))
        .eq("year", year)
        .all::<Profile>(20_000)?;
    let mut out = Vec::new();
    for g in sums {
        let nature = g
            .key
            .first()
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        let (area, users) = profiles
            .iter()
            .filter(|p| p.data.nature == nature)
            .fold((0.0, 0.0), |(a, u), p| {
                (a + p.data.building_m2, u + p.data.energy_users as f64)
            });
        out.push(Row {
            name: NATURE.label(&nature, "zh-CN").to_string(),
            key: nature,
            kgce: g.values.first().copied().flatten().unwrap_or(0.0),
            co2_kg: g.values.get(1).copied().flatten().unwrap_or(0.0),
            water_m3: g.values.get(2).copied().flatten().unwrap_or(0.0),
            area,
            users,
        });
    }
    Ok(out)
}

/// How many months of the year are locked anywhere in the org's subtree.
fn months_of(org: &str, year: i32) -> Result<usize> {
    Ok(Query::new("energy.kgce_month")
        .org(org)
        .between(Some(format!("{year}-01")), Some(format!("{year}-12")))
        .rows()?
        .len())
}

/// `GET /summary?org=&year=&by=area|category&format=xlsx`
fn summary(req: &Request) -> Result<Response> {
    let (org, year) = org_and_year(req)?;
    let by = req.query_param("by").unwrap_or_else(|| "area".into());
    let rows = match by.as_str() {
        "area" => by_area(&org, year)?,
        "category" => by_category(&org, year)?,
        _ => {
            return Err(Error::invalid(
                "by",
                "summary_by_invalid",
                "area or category",
            ));
        }
    };
    let months = months_of(&org, year)?;
    let rows: Vec<Value> = rows.iter().map(|r| r.json(months)).collect();
    if let Some(format) = export::wanted(req)? {
        let mut table = export::Table::new(
            &format!("公共机构能源资源消费综合表 {year}"),
            &[
                "单位/类别 Org or category",
                "综合能耗(吨标准煤) tce",
                "碳排放(吨) tCO2",
                "用水量(立方米) m³",
                "建筑面积(平方米) m²",
                "用能人数 Energy users",
                "单位建筑面积能耗(kgce/m²) Energy per m²",
                "人均综合能耗(kgce/人) Energy per person",
                "人均用水量(m³/人) Water per person",
                "单位建筑面积碳排放(kgCO2/m²) CO2 per m²",
            ],
        );
        for r in &rows {
            table.push(
                [
                    "name",
                    "tce",
                    "co2_t",
                    "water_m3",
                    "building_m2",
                    "energy_users",
                    "per_area",
                    "per_capita",
                    "water_per_capita",
                    "carbon_per_area",
                ]
                .iter()
                .map(|k| r[*k].clone())
                .collect(),
            );
        }
        return export::respond(&table, format);
    }
    Ok(Response::json(&json!({
        "org": org, "year": year, "by": by, "months": months, "rows": rows,
    })))
}

/// `GET /analysis?org=&year=`: structure by energy type, this year's
/// months against last year's, and the ranking of the orgs below.
fn analysis(req: &Request) -> Result<Response> {
    let (org, year) = org_and_year(req)?;
    let locked = crate::statements::statements()
        .find()
        .within(Some(org.clone()))
        .eq("year", year)
        .eq("status", "locked")
        .all::<Statement>(20_000)?;
    let factors = crate::factors::for_year(year)?;
    let mut structure: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for doc in &locked {
        for line in &doc.data.lines {
            if let Some((kgce, _)) = factors.data.convert(&line.energy_type, line.quantity) {
                let e = structure.entry(line.energy_type.clone()).or_default();
                e.0 += line.quantity;
                e.1 += kgce;
            }
        }
    }
    let months = |y: i32| -> Result<Vec<Value>> {
        Ok(Query::new("energy.kgce_month")
            .org(&org)
            .between(Some(format!("{y}-01")), Some(format!("{y}-12")))
            .rows()?
            .iter()
            .map(|r| json!({ "period": r.period, "kgce": model::round(r.value, 3) }))
            .collect())
    };
    let count = months_of(&org, year)?;
    let mut ranking: Vec<Value> = by_area(&org, year)?
        .iter()
        .filter(|r| r.key != org)
        .map(|r| r.json(count))
        .collect();
    ranking.sort_by(|a, b| {
        b["per_area"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["per_area"].as_f64().unwrap_or(0.0))
    });
    Ok(Response::json(&json!({
        "org": org,
        "year": year,
        "structure": structure.iter().map(|(t, (q, k))| json!({
            "type": t,
            "name": factors.data.get(t).map(|f| f.name_zh.clone()),
            "name_en": factors.data.get(t).map(|f| f.name_en.clone()),
            "quantity": model::round(*q, 3),
            "kgce": model::round(*k, 3),
        })).collect::<Vec<_>>(),
        "months": months(year)?,
        "months_before": months(year - 1)?,
        "ranking": ranking,
    })))
}
