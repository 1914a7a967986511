//! The demo `tianshan up` seeds: a profile and locked monthly statements
//! for every org of the demo tree for 2020 (the plan's base year), last
//! year and this year up to last month — most institutions a few per cent
//! below their 2020 intensity, some above it and some over the quota —,
//! an online electricity meter with a month of hourly readings for each
//! prefecture (its key energy user), a manual water meter at the region,
//! and this year's targets from the region to the prefectures. Everything
//! is derived from the org's code, so seeding twice adds nothing.

use serde::Deserialize;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Write, collection};
use tianshan_sdk::telemetry::{self, Quality};

use crate::indicators::{self, Publisher};
use crate::model::{self, Line, Profile, Statement};
use crate::statements::statements;

pub fn routes(router: Router) -> Router {
    router.post("/demo/seed", seed)
}

#[derive(Deserialize)]
struct DemoOrg {
    id: String,
    level: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    parent_id: Option<String>,
}

#[derive(Deserialize)]
struct Seed {
    orgs: Vec<DemoOrg>,
}

/// A number in [0, 1) fixed by the text, so the demo is the same each time.
fn unit_hash(text: &str, salt: u32) -> f64 {
    let mut h: u32 = 2_166_136_261 ^ salt;
    for b in text.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(16_777_619);
    }
    (h % 10_000) as f64 / 10_000.0
}

const NATURES: [&str; 6] = [
    "organ",
    "party",
    "education",
    "health",
    "judicial",
    "culture",
];

fn profile_of(org: &DemoOrg, index: usize, year: i32) -> Profile {
    let r = unit_hash(&org.code, 1);
    let building_m2: f64 = match org.level.as_str() {
        "region" => 68_000.0,
        "prefecture" => 20_000.0 + 25_000.0 * r,
        _ => 6_000.0 + 12_000.0 * r,
    }
    .round();
    // 15-22 m² of floor per person: the national 2020 figures (18.48
    // kgce/m², 329.56 kgce/person) imply about 18.
    let density = 15.0 + 7.0 * unit_hash(&org.code, 2);
    Profile {
        year,
        nature: if org.level == "county" {
            NATURES[index % NATURES.len()].into()
        } else {
            "organ".into()
        },
        building_m2,
        heating_m2: (building_m2 * 0.92).round(),
        energy_users: (building_m2 / density).round() as u32,
        headcount: (building_m2 / density * 0.85).round() as u32,
        key_user: org.level != "county" || index.is_multiple_of(3),
        model_unit: index.is_multiple_of(7),
        building_type: "office".into(),
        climate_zone: if unit_hash(&org.code, 3) < 0.6 {
            "severe_cold".into()
        } else {
            "cold".into()
        },
        area_source: "entered".into(),
    }
}

/// One month's lines for an institution: electricity with a summer and a
/// winter peak, district heat from October to April, canteen gas, water,
/// a little fuel. `level` scales the 2020 intensity (≈ 20 kgce/m²·a).
fn lines_of(p: &Profile, month: u32, level: f64) -> Vec<Line> {
    let season = match month {
        1 | 2 | 12 => 1.2,
        6..=8 => 1.3,
        _ => 0.85,
    };
    let heating = matches!(month, 1..=4 | 10..=12);
    let line = |t: &str, q: f64, fen_per: f64| Line {
        energy_type: t.into(),
        quantity: model::round(q, 1),
        cost_fen: (q * fen_per).round() as i64,
        source: "bill".into(),
        estimated: false,
    };
    let mut out = vec![
        line("electricity", p.building_m2 * 5.0 * season * level, 55.0),
        line("water", p.energy_users as f64 * 1.8 * level, 480.0),
        line("natural_gas", p.building_m2 * 0.08 * level, 280.0),
        line("gasoline", p.energy_users as f64 * 0.6 * level, 780.0),
    ];
    if heating {
        out.push(line("heat", p.heating_m2 * 0.05 * level, 3_500.0));
    }
    out
}

/// Only the kernel seeds; a signed-in user is refused.
fn seed(req: &Request) -> Result<Response> {
    if identity::caller().is_some() {
        return Err(Error::forbidden("the demo is seeded by the kernel"));
    }
    let seed: Seed = req.json()?;
    let Some(first) = seed.orgs.first() else {
        return Ok(Response::json(&json!({ "seeded": 0 })));
    };
    let this_month = dates::this_month();
    let this_year = this_month.div_euclid(12) as i32;
    if statements()
        .get::<Statement>(&crate::statements::id(
            &first.id,
            &format!("{}-01", model::BASE_YEAR),
        ))?
        .is_some()
    {
        return Ok(Response::json(&json!({ "seeded": 0, "already": true })));
    }
    let factors = crate::factors::for_year(this_year)?;
    let mut writes = Vec::new();
    let mut publisher = Publisher::default();
    let mut made = 0usize;
    let years = [model::BASE_YEAR, this_year - 1, this_year];
    for (index, org) in seed.orgs.iter().enumerate() {
        // Most institutions save 3-10 % on 2020; every ninth uses more,
        // and every thirteenth is well over the quota.
        let trend = if index % 13 == 5 {
            1.3
        } else if index % 9 == 4 {
            1.04
        } else {
            0.97 - 0.07 * unit_hash(&org.code, 4)
        };
        for year in years {
            let profile = profile_of(org, index, year);
            if year == model::BASE_YEAR || year == this_year {
                writes.push(Write::insert_with(
                    "profiles",
                    Some(&crate::profiles::id(&org.id, year)),
                    Some(&org.id),
                    &profile,
                )?);
            }
            let level = if year == model::BASE_YEAR {
                1.0
            } else {
                trend * (1.0 + 0.02 * (this_year - year) as f64)
            };
            let last_month = if year == this_year {
                this_month.rem_euclid(12) as u32
            } else {
                12
            };
            let mut locked = Vec::new();
            for month in 1..=last_month {
                let lines = lines_of(&profile, month, level);
                let period = format!("{year:04}-{month:02}");
                let mut s = Statement {
                    period: period.clone(),
                    year,
                    status: "locked".into(),
                    totals: model::totals(&lines, &factors.data),
                    lines,
                    building_m2: profile.building_m2,
                    energy_users: profile.energy_users,
                    nature: profile.nature.clone(),
                    factor_set: factors.id.clone(),
                    ..Statement::default()
                };
                s.timeline
                    .push_as(&format!("{period}-28"), "system", "demo", None);
                writes.push(Write::insert_with(
                    "statements",
                    Some(&crate::statements::id(&org.id, &period)),
                    Some(&org.id),
                    &s,
                )?);
                locked.push(s);
                made += 1;
            }
            let refs: Vec<&Statement> = locked.iter().collect();
            indicators::collect(&mut publisher, &org.id, year, &refs, Some(&profile));
            if year == this_year && profile.key_user {
                indicators::collect_metered(&mut publisher, &org.id, year, org.level != "county");
            }
            if writes.len() >= 400 {
                tianshan_sdk::storage::transact(std::mem::take(&mut writes))?;
            }
        }
    }
    if !writes.is_empty() {
        tianshan_sdk::storage::transact(writes)?;
    }
    publisher.flush()?;
    let meters = seed_meters(&seed.orgs, this_month)?;
    let targets = seed_targets(&seed.orgs, this_year)?;
    let mut alerts = 0;
    for (index, org) in seed.orgs.iter().enumerate() {
        if index % 13 == 5 || index % 9 == 4 {
            let period = dates::month_text(this_month - 1);
            if let Some(doc) =
                statements().get::<Statement>(&crate::statements::id(&org.id, &period))?
            {
                crate::targets::check_alerts(&org.id, &doc.data)?;
                alerts += 1;
            }
        }
    }
    Ok(Response::json(&json!({
        "seeded": made, "meters": meters, "targets": targets, "checked_for_alerts": alerts,
    })))
}

/// Each prefecture's main electricity meter online, with the last 30 days
/// of hourly readings; the region's water meter read by hand.
fn seed_meters(orgs: &[DemoOrg], this_month: i64) -> Result<usize> {
    let (month_start, _) = dates::month_bounds_ms(this_month);
    let now = month_start.max(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    );
    let mut made = 0;
    for org in orgs.iter().filter(|o| o.level == "prefecture") {
        let id = format!("demo-{}-e", org.code);
        let meter = crate::meters::Meter {
            name: "办公楼总表（电）".into(),
            building: "机关办公楼".into(),
            energy_type: "electricity".into(),
            sub_item: "total".into(),
            kind: "online".into(),
            external_id: format!("DEMO-{}-E", org.code),
            account_no: format!("65{}0001", org.code),
            multiplier: 1.0,
            parent: String::new(),
        };
        collection("meters").insert_with(Some(&id), Some(&org.id), &meter)?;
        telemetry::register(
            &telemetry::Device::meter(&id, &meter.name, &meter.external_id)
                .org(&org.id)
                .channel(telemetry::Channel::counter("kwh", "kWh").range(0.0, 1e12)),
        )?;
        let hour = 3_600_000;
        let start = (now - 30 * 24 * hour) / hour * hour;
        let mut value = 1_000_000.0 * (1.0 + unit_hash(&org.code, 5));
        let readings: Vec<_> = (0..30 * 24)
            .map(|h| {
                let hour_of_day = (h + 8) % 24;
                let working = (8..20).contains(&hour_of_day);
                value += if working { 180.0 } else { 45.0 };
                telemetry::reading(&id, "kwh", start + h * hour, model::round(value, 1))
            })
            .collect();
        for chunk in readings.chunks(1000) {
            telemetry::record(chunk, Quality::Good)?;
        }
        made += 1;
    }
    if let Some(region) = orgs.iter().find(|o| o.level == "region") {
        let meter = crate::meters::Meter {
            name: "综合楼水表".into(),
            building: "综合楼".into(),
            energy_type: "water".into(),
            sub_item: "total".into(),
            kind: "manual".into(),
            external_id: String::new(),
            account_no: "SW-650000-01".into(),
            multiplier: 1.0,
            parent: String::new(),
        };
        let id = "demo-region-water";
        collection("meters").insert_with(Some(id), Some(&region.id), &meter)?;
        telemetry::register(
            &telemetry::Device::manual(telemetry::DeviceKind::Meter, id, &meter.name)
                .org(&region.id)
                .channel(telemetry::Channel::counter("m3", "m³").range(0.0, 1e12)),
        )?;
        let at = month_start - 86_400_000;
        telemetry::record(
            &[telemetry::reading(id, "m3", at, 48_210.0)],
            Quality::Manual,
        )?;
        collection("readings").insert_with(
            None,
            Some(&region.id),
            &json!({ "meter": id, "at": at, "value": 48_210.0, "photo": null, "by": "demo" }),
        )?;
        made += 1;
    }
    Ok(made)
}

/// This year's targets from the region to each prefecture: 5 % under its
/// 2020 energy per m².
fn seed_targets(orgs: &[DemoOrg], year: i32) -> Result<usize> {
    let Some(region) = orgs.iter().find(|o| o.level == "region") else {
        return Ok(0);
    };
    let mut made = 0;
    for (index, org) in orgs.iter().enumerate() {
        if org.level != "prefecture" || org.parent_id.as_deref() != Some(region.id.as_str()) {
            continue;
        }
        let p = profile_of(org, index, model::BASE_YEAR);
        let base: Vec<model::Totals> = (1..=12)
            .map(|m| model::totals(&lines_of(&p, m, 1.0), &crate::model::default_factor_set()))
            .collect();
        let Some(i) = model::intensities(&base, p.building_m2, p.energy_users) else {
            continue;
        };
        let target = crate::targets::Target {
            year,
            per_area: Some(model::round(i.per_area * 0.95, 2)),
            per_capita: Some(model::round(i.per_capita * 0.94, 2)),
            water_per_capita: Some(model::round(i.water_per_capita * 0.94, 2)),
            carbon_per_area: Some(model::round(i.carbon_per_area * 0.93, 2)),
            total_tce: None,
            status: if index % 2 == 0 { "accepted" } else { "issued" }.into(),
            issued_by: region.id.clone(),
            note: "十四五目标分解（演示）".into(),
        };
        crate::targets::targets().insert_with(
            Some(&format!("tg-{}-{year}", org.id)),
            Some(&org.id),
            &target,
        )?;
        made += 1;
    }
    Ok(made)
}
