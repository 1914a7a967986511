//! Importing a building's existing room register (房间台账) from Excel or
//! CSV on the SDK's import block: every problem of every row is reported
//! and nothing is written unless none is left.

use std::collections::{HashMap, HashSet};

use tianshan_sdk::import::{self, Column, Kind, Problem, Register};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{self, Doc, Write};

use crate::common::{buildings, floors, rooms};
use crate::model::{self, Building, Floor, Room};

const REGISTER: Register = Register::new(&[
    Column::new("level", "楼层", "Floor", Kind::Int).required(),
    Column::new("no", "房间号", "Room no.", Kind::Text).required(),
    Column::new(
        "class",
        "房间分类",
        "Class",
        Kind::Vocab(&model::ROOM_CLASS),
    )
    .required()
    .aliases(&["分类"]),
    Column::new(
        "subtype",
        "具体用途",
        "Sub-type",
        Kind::Vocab(&model::ROOM_SUBTYPE),
    )
    .required()
    .aliases(&["用途"]),
    Column::new("usable_m2", "使用面积", "Usable area", Kind::Number).required(),
    Column::new("gross_m2", "建筑面积", "Gross area", Kind::Number).required(),
]);

/// A problem of the plugin's own, with its words from the page's i18n
/// files (the import block shows `message_zh` / `message`).
fn problem(row: usize, column: &str, code: &str, value: impl Into<serde_json::Value>) -> Problem {
    let words = |file: &str| {
        serde_json::from_str::<serde_json::Value>(file)
            .ok()
            .and_then(|texts| {
                texts[format!("code.{code}")]
                    .as_str()
                    .map(|t| t.replace("{field}", column))
            })
    };
    Problem::new(
        row,
        column,
        code,
        json!({
            "value": value.into(),
            "message_zh": words(include_str!("../ui/i18n/zh-CN.json")).unwrap_or_else(|| code.into()),
            "message": words(include_str!("../ui/i18n/en.json")).unwrap_or_else(|| code.into()),
        }),
    )
}

/// The register's header of a room field (problems name the column).
fn header_of(field: &str) -> &'static str {
    REGISTER
        .columns
        .iter()
        .find(|c| c.field == field)
        .map_or("", |c| c.header)
}

/// At most this many rooms in one upload (one transaction).
const MAX_ROWS: usize = 2000;

pub fn routes(router: Router) -> Router {
    router
        .post("/buildings/{id}/rooms/import", import_rooms)
        .requires("property.manage")
}

fn import_rooms(req: &Request) -> Result<Response> {
    let building = buildings().fetch::<Building>(req.param("id")?)?;
    authz::require_at("property.manage", &building.org)?;
    let lang = req.lang();
    let parsed = REGISTER.parse(req.body());
    if !parsed.problems.is_empty() {
        return Ok(import::failure(&parsed.problems, lang));
    }
    if parsed.rows.len() > MAX_ROWS {
        return Err(
            model::invalid("file", "too_many", "at most 2000 rooms per upload")
                .with_param("max", MAX_ROWS),
        );
    }
    let floor_list = floors()
        .find()
        .eq("building_id", building.id.as_str())
        .all::<Floor>(500)?;
    let by_level: HashMap<i64, &Doc<Floor>> =
        floor_list.iter().map(|f| (f.data.level, f)).collect();
    let existing: HashSet<(String, String)> = rooms()
        .find()
        .eq("building_id", building.id.as_str())
        .all::<Room>(50_000)?
        .into_iter()
        .map(|r| (r.data.floor_id, r.data.no))
        .collect();
    let mut seen = HashSet::new();
    let mut problems = Vec::new();
    let mut writes = Vec::new();
    for row in &parsed.rows {
        let level = row.int("level").unwrap_or_default();
        let Some(floor) = by_level.get(&level) else {
            problems.push(problem(row.number, "楼层", "floor_unknown", level));
            continue;
        };
        let no = row.text("no").unwrap_or_default().to_string();
        let key = (floor.id.clone(), no.clone());
        if existing.contains(&key) || !seen.insert(key) {
            problems.push(problem(row.number, "房间号", "room_exists", no.as_str()));
            continue;
        }
        let number = |f: &str| row.values.get(f).and_then(|v| v.as_f64()).unwrap_or(0.0);
        let input = json!({
            "floor_id": floor.id, "no": no,
            "class": row.text("class"), "subtype": row.text("subtype"),
            "usable_m2": number("usable_m2"), "gross_m2": number("gross_m2"),
        });
        match crate::space::room_from_json(input, floor) {
            Ok(room) => writes.push(Write::insert_with("rooms", None, Some(&floor.org), &room)?),
            Err(e) => {
                let column = header_of(e.field().unwrap_or(""));
                problems.push(problem(row.number, column, e.code(), ""));
            }
        }
    }
    if !problems.is_empty() {
        return Ok(import::failure(&problems, lang));
    }
    let count = writes.len();
    if count > 0 {
        storage::transact(writes)?;
        crate::registration::publish_areas(&building.org)?;
    }
    Ok(Response::json(&json!({ "ok": true, "imported": count })).with_status(201))
}
