//! The demo `tianshan up` seeds: for a handful of units (or counties) of
//! the demo tree, a compound with an office building of two floors, each
//! with an SVG plan and outlined rooms, and occupants — some over the
//! standard. Deterministic and idempotent: an org with a compound is
//! left alone.

use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{self, Write};

use crate::common::{buildings, compounds, floors, organ_level};
use crate::model::{Building, Compound, Floor, Occupancy, Room};

pub fn routes(router: Router) -> Router {
    router.post("/demo/seed", seed)
}

const PEOPLE: &[&str] = &[
    "王芳",
    "李强",
    "张伟",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄勇",
    "艾力",
    "古丽",
    "买买提",
    "阿依努尔",
    "热依拉",
    "马骏",
    "孙丽",
    "朱涛",
];

/// (no, class, subtype, usable m², occupants as (rank suffix, position))
type RoomPlan = (
    &'static str,
    &'static str,
    &'static str,
    f64,
    &'static [(&'static str, &'static str)],
);

const FLOOR_ROOMS: &[RoomPlan] = &[
    ("01", "office", "office.leader", 32.0, &[("head", "主任")]),
    (
        "02",
        "office",
        "office.leader",
        24.0,
        &[("deputy", "副主任")],
    ),
    (
        "03",
        "office",
        "office.staff",
        36.0,
        &[("staff", "科员"), ("staff", "科员")],
    ),
    (
        "04",
        "office",
        "office.staff",
        18.0,
        &[("staff", "科员"), ("staff", "科员")],
    ),
    ("05", "service", "service.meeting", 60.0, &[]),
    ("06", "office", "office.staff", 20.0, &[]),
    ("07", "equipment", "equipment.network", 16.0, &[]),
    ("08", "ancillary", "ancillary.guard", 12.0, &[]),
];

/// The drawing: 4 rooms a row, a corridor between the rows.
fn cell(i: usize) -> [f64; 4] {
    let (col, row) = ((i % 4) as f64, (i / 4) as f64);
    let x = 20.0 + col * 240.0;
    let y = if row == 0.0 { 20.0 } else { 340.0 };
    [x, y, 230.0, 240.0]
}

fn plan_svg(title: &str) -> String {
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 600" width="1000" height="600"><rect width="1000" height="600" fill="#fafafa"/>"##,
    );
    for (i, room) in FLOOR_ROOMS.iter().enumerate() {
        let [x, y, w, h] = cell(i);
        svg.push_str(&format!(
            r##"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="#555" stroke-width="3"/><text x="{}" y="{}" font-size="18" fill="#888">{}</text>"##,
            x + 10.0,
            y + 28.0,
            room.0
        ));
    }
    svg.push_str(&format!(
        r##"<rect x="20" y="270" width="960" height="60" fill="#eee"/><text x="400" y="306" font-size="20" fill="#999">{title}</text></svg>"##
    ));
    svg
}

/// Body: `{"orgs": [{id, level, …}]}` as `tianshan up` sends it.
fn seed(req: &Request) -> Result<Response> {
    if identity::caller().is_some() {
        authz::require("property.configure")?;
    }
    let input: Value = req.json()?;
    let listed: Vec<(String, String)> = input["orgs"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|o| {
                    Some((
                        o["id"].as_str()?.to_string(),
                        o["level"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let pick = |level: &str, n: usize| -> Vec<String> {
        listed
            .iter()
            .filter(|(_, l)| l == level)
            .map(|(id, _)| id.clone())
            .take(n)
            .collect()
    };
    let mut targets = pick("unit", 6);
    targets.extend(pick("county", 3));
    targets.extend(pick("prefecture", 1));
    targets.extend(pick("region", 1));
    if targets.is_empty() {
        return Err(Error::validation("orgs", "name the orgs to seed").with_code("required"));
    }
    let mut seeded = 0;
    for (i, org) in targets.iter().enumerate() {
        if compounds().find().eq("org", org.as_str()).count()? > 0 {
            continue;
        }
        seed_org(org, i)?;
        crate::registration::publish_rates(org)?;
        crate::registration::publish_areas(org)?;
        seeded += 1;
    }
    Ok(Response::json(&json!({ "seeded": seeded, "orgs": targets.len() })).with_status(201))
}

fn seed_org(org: &str, i: usize) -> Result<()> {
    let level = organ_level(org)?;
    let compound = compounds().insert_with(
        None,
        Some(org),
        &Compound {
            name: format!("机关大院{}", i + 1),
            address: format!("人民路{}号", 10 + i),
        },
    )?;
    let registration = ["registered", "in_progress", "pending", "defective"][i % 4];
    let building = buildings().insert_with(
        None,
        Some(org),
        &Building {
            compound_id: compound.id.clone(),
            name: "综合办公楼".into(),
            cert_no: if registration == "registered" {
                format!("新(2021)不动产权第{:07}号", 1000 + i)
            } else {
                String::new()
            },
            owner: if registration == "registered" {
                "机关事务管理局".into()
            } else {
                String::new()
            },
            registered_m2: (registration == "registered").then_some(2400.0),
            measured_m2: 2450.0,
            floors: 2,
            structure: "concrete".into(),
            built_year: 2008 + (i as i64 % 10),
            acquisition: "built".into(),
            usage: "办公".into(),
            registration: registration.into(),
            defects: if registration == "defective" {
                vec!["土地证与房产证权利人不一致".into()]
            } else {
                Vec::new()
            },
        },
    )?;
    let mut person = i * 3;
    for level_no in 1..=2 {
        let floor = floors().insert_with(
            None,
            Some(org),
            &Floor {
                building_id: building.id.clone(),
                level: level_no,
                name: format!("{level_no}层"),
                plan_file: None,
                plan_svg: true,
                plan_size: [1000.0, 600.0],
            },
        )?;
        crate::space::store_svg_plan(&floor, &plan_svg(&format!("{level_no}F")))?;
        let mut writes = Vec::new();
        for (r, (no, class, subtype, usable, occupants)) in FLOOR_ROOMS.iter().enumerate() {
            let [x, y, w, h] = cell(r);
            let room = Room {
                floor_id: floor.id.clone(),
                building_id: building.id.clone(),
                no: format!("{level_no}{no}"),
                class: class.to_string(),
                subtype: subtype.to_string(),
                usable_m2: *usable,
                gross_m2: (*usable * 1.25).round(),
                outline: vec![[x, y], [x + w, y], [x + w, y + h], [x, y + h]],
                assigned_unit: None,
                occupants: occupants.len() as u32,
                photos: Vec::new(),
            };
            // Room ids chosen here so occupancies can name them in the same transaction.
            let room_id = format!("{}-{level_no}{no}", floor.id);
            writes.push(Write::insert_with(
                "rooms",
                Some(&room_id),
                Some(org),
                &room,
            )?);
            for (rank, position) in occupants.iter() {
                let occupancy = Occupancy {
                    room_id: room_id.clone(),
                    person: PEOPLE[person % PEOPLE.len()].into(),
                    user_id: None,
                    rank: format!("{level}.{rank}"),
                    position: position.to_string(),
                    start_on: "2024-03-01".into(),
                    end_on: None,
                    active: true,
                };
                person += 1;
                writes.push(Write::insert_with(
                    "occupancies",
                    None,
                    Some(org),
                    &occupancy,
                )?);
            }
        }
        storage::transact(writes)?;
    }
    Ok(())
}
