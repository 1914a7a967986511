//! The space tree: compound → building → floor → room. A child always
//! lives at its parent's org, so the kernel's org scope that hides a
//! county's compound hides its rooms too; every change is checked at the
//! record's org.

use serde::Deserialize;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, Write};

use crate::common::{area, buildings, compounds, floors, required, rooms};
use crate::model::{self, Building, Compound, Floor, Room, invalid};

const VIEW: &str = "property.view";
const MANAGE: &str = "property.manage";

pub fn routes(router: Router) -> Router {
    router
        .get("/compounds", list_compounds)
        .requires(VIEW)
        .post("/compounds", create_compound)
        .requires(MANAGE)
        .get("/buildings", list_buildings)
        .requires(VIEW)
        .post("/buildings", create_building)
        .requires(MANAGE)
        .get("/buildings/{id}", get_building)
        .requires(VIEW)
        .put("/buildings/{id}", update_building)
        .requires(MANAGE)
        .get("/floors", list_floors)
        .requires(VIEW)
        .post("/floors", create_floor)
        .requires(MANAGE)
        .put("/floors/{id}/plan", set_plan)
        .requires(MANAGE)
        .put("/floors/{id}/plan.svg", put_svg_plan)
        .requires(MANAGE)
        .get("/floors/{id}/plan.svg", get_svg_plan)
        .requires(VIEW)
        .get("/floors/{id}/view", crate::occupancy::floor_view)
        .requires(VIEW)
        .get("/rooms", list_rooms)
        .requires(VIEW)
        .post("/rooms", create_room)
        .requires(MANAGE)
        .get("/rooms/{id}", crate::occupancy::room_detail)
        .requires(VIEW)
        .put("/rooms/{id}", update_room)
        .requires(MANAGE)
        .put("/rooms/{id}/outline", set_outline)
        .requires(MANAGE)
}

// ------------------------------------------------------------ compounds

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompoundInput {
    name: String,
    #[serde(default)]
    address: String,
    /// Another org below the acting one (a county registering a unit's
    /// compound); checked as typed input.
    #[serde(default)]
    org: Option<String>,
}

fn list_compounds(req: &Request) -> Result<Response> {
    let mut find = compounds().find();
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.contains("name", &q);
    }
    let find = list::sorted(find, req, &["name"], "name")?;
    list::respond(
        req,
        &find,
        "compounds",
        &[
            ("院落 Compound", "/data/name"),
            ("地址 Address", "/data/address"),
        ],
    )
}

fn create_compound(req: &Request) -> Result<Response> {
    let input: CompoundInput = req.json()?;
    let compound = Compound {
        name: required("name", &input.name)?,
        address: input.address.trim().to_string(),
    };
    let org = orgs::target(MANAGE, input.org.as_deref())?;
    let doc = compounds().insert_with(None, org.as_deref(), &compound)?;
    Ok(Response::json(&doc).with_status(201))
}

// ------------------------------------------------------------ buildings

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildingInput {
    compound_id: String,
    name: String,
    #[serde(default)]
    cert_no: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    registered_m2: Option<f64>,
    measured_m2: f64,
    floors: i64,
    structure: String,
    built_year: i64,
    acquisition: String,
    #[serde(default)]
    usage: String,
}

fn building_from(input: BuildingInput, keep: Option<&Building>) -> Result<Building> {
    model::STRUCTURE.check("structure", &input.structure)?;
    model::ACQUISITION.check("acquisition", &input.acquisition)?;
    if !(1..=200).contains(&input.floors) {
        return Err(invalid("floors", "floors_invalid", "1 to 200 floors"));
    }
    if !(1800..=2100).contains(&input.built_year) {
        return Err(invalid("built_year", "year_invalid", "a year 1800–2100"));
    }
    let registered_m2 = match input.registered_m2 {
        Some(v) => Some(area("registered_m2", v)?),
        None => None,
    };
    Ok(Building {
        compound_id: input.compound_id,
        name: required("name", &input.name)?,
        cert_no: input.cert_no.trim().to_string(),
        owner: input.owner.trim().to_string(),
        registered_m2,
        measured_m2: area("measured_m2", input.measured_m2)?,
        floors: input.floors,
        structure: input.structure,
        built_year: input.built_year,
        acquisition: input.acquisition,
        usage: input.usage.trim().to_string(),
        registration: keep.map_or("pending".into(), |b| b.registration.clone()),
        defects: keep.map_or(Vec::new(), |b| b.defects.clone()),
    })
}

/// A parent named by id must be one the caller reaches (else 422 on the
/// field, not a 404 that would say nothing about which field).
fn parent<T: serde::de::DeserializeOwned>(
    col: &tianshan_sdk::storage::Collection,
    field: &str,
    id: &str,
) -> Result<Doc<T>> {
    col.get::<T>(id)?
        .ok_or_else(|| invalid(field, "parent_unknown", "no such record in reach"))
}

fn list_buildings(req: &Request) -> Result<Response> {
    let mut find = buildings().find();
    if let Some(c) = req.query_param("compound_id").filter(|c| !c.is_empty()) {
        find = find.eq("compound_id", c);
    }
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.contains("name", &q);
    }
    let find = list::filter_vocab(find, req, "registration", &model::REGISTRATION)?;
    let find = list::sorted(find, req, &["name", "registration"], "name")?;
    list::respond(
        req,
        &find,
        "buildings",
        &[
            ("楼栋 Building", "/data/name"),
            ("不动产权证号 Certificate", "/data/cert_no"),
            ("权利人 Owner", "/data/owner"),
            ("登记面积 Registered m²", "/data/registered_m2"),
            ("实测面积 Measured m²", "/data/measured_m2"),
            ("层数 Floors", "/data/floors"),
            ("建成年份 Built", "/data/built_year"),
            ("登记状态 Registration", "/data/registration"),
        ],
    )
}

fn create_building(req: &Request) -> Result<Response> {
    let input: BuildingInput = req.json()?;
    let compound = parent::<Compound>(&compounds(), "compound_id", &input.compound_id)?;
    authz::require_at(MANAGE, &compound.org)?;
    let building = building_from(input, None)?;
    let doc = buildings().insert_with(None, Some(&compound.org), &building)?;
    crate::registration::publish_rates(&doc.org)?;
    Ok(Response::json(&doc).with_status(201))
}

fn get_building(req: &Request) -> Result<Response> {
    let building = buildings().fetch::<Building>(req.param("id")?)?;
    let floors = floors()
        .find()
        .eq("building_id", building.id.as_str())
        .sort("level")
        .limit(200)
        .page::<Floor>()?;
    Ok(Response::json(
        &json!({ "building": building, "floors": floors.records }),
    ))
}

fn update_building(req: &Request) -> Result<Response> {
    let current = buildings().fetch::<Building>(req.param("id")?)?;
    authz::require_at(MANAGE, &current.org)?;
    let input: BuildingInput = req.json()?;
    if input.compound_id != current.data.compound_id {
        return Err(invalid(
            "compound_id",
            "immutable",
            "a building stays in its compound",
        ));
    }
    let building = building_from(input, Some(&current.data))?;
    Ok(Response::json(&buildings().update(
        &current.id,
        current.revision,
        &building,
    )?))
}

// --------------------------------------------------------------- floors

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FloorInput {
    building_id: String,
    level: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    plan_size: Option<[f64; 2]>,
}

fn list_floors(req: &Request) -> Result<Response> {
    let building = req
        .query_param("building_id")
        .ok_or_else(|| invalid("building_id", "required", "name the building"))?;
    let find = floors().find().eq("building_id", building).sort("level");
    list::page(req, &find)
}

fn create_floor(req: &Request) -> Result<Response> {
    let input: FloorInput = req.json()?;
    let building = parent::<Building>(&buildings(), "building_id", &input.building_id)?;
    authz::require_at(MANAGE, &building.org)?;
    if input.level == 0 || input.level.abs() > building.data.floors.max(1) + 10 {
        return Err(invalid(
            "level",
            "floor_level_invalid",
            "a storey of the building",
        ));
    }
    let taken = floors()
        .find()
        .eq("building_id", building.id.as_str())
        .eq("level", input.level)
        .count()?;
    if taken > 0 {
        return Err(invalid(
            "level",
            "floor_exists",
            "the building has that storey",
        ));
    }
    let size = input.plan_size.unwrap_or_else(model::default_plan_size);
    if !size
        .iter()
        .all(|v| v.is_finite() && *v >= 10.0 && *v <= 100_000.0)
    {
        return Err(invalid("plan_size", "plan_size_invalid", "10–100000 units"));
    }
    let floor = Floor {
        building_id: building.id.clone(),
        level: input.level,
        name: input.name.trim().to_string(),
        plan_file: None,
        plan_svg: false,
        plan_size: size,
    };
    let doc = floors().insert_with(None, Some(&building.org), &floor)?;
    Ok(Response::json(&doc).with_status(201))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    file_id: String,
    #[serde(default)]
    plan_size: Option<[f64; 2]>,
}

/// `PUT /floors/{id}/plan`: a drawing the user uploaded through the
/// kernel's files API (an image or SVG).
fn set_plan(req: &Request) -> Result<Response> {
    let floor = floors().fetch::<Floor>(req.param("id")?)?;
    authz::require_at(MANAGE, &floor.org)?;
    let input: PlanInput = req.json()?;
    let info = files::info(&input.file_id)
        .map_err(|_| invalid("file_id", "file_unknown", "no such upload"))?;
    if !info.content_type.starts_with("image/") {
        return Err(invalid(
            "file_id",
            "plan_not_image",
            "an image or SVG drawing",
        ));
    }
    let mut data = floor.data.clone();
    data.plan_file = Some(info.id);
    data.plan_svg = false;
    if let Some(size) = input.plan_size {
        data.plan_size = size;
    }
    Ok(Response::json(&floors().update(
        &floor.id,
        floor.revision,
        &data,
    )?))
}

/// `PUT /floors/{id}/plan.svg`: an SVG drawing as the body, kept in the
/// `plans` collection next to the floor (at its org).
fn put_svg_plan(req: &Request) -> Result<Response> {
    let floor = floors().fetch::<Floor>(req.param("id")?)?;
    authz::require_at(MANAGE, &floor.org)?;
    let svg = req.text()?;
    if let Some(code) = model::svg_error(svg) {
        return Err(invalid("file", code, "not a plain SVG drawing"));
    }
    store_svg_plan(&floor, svg)?;
    let mut data = floor.data.clone();
    data.plan_svg = true;
    data.plan_file = None;
    Ok(Response::json(&floors().update(
        &floor.id,
        floor.revision,
        &data,
    )?))
}

pub fn store_svg_plan(floor: &Doc<Floor>, svg: &str) -> Result<()> {
    let plans = tianshan_sdk::storage::collection("plans");
    let body = json!({ "svg": svg });
    match plans.get::<serde_json::Value>(&floor.id)? {
        Some(current) => plans
            .update(&current.id, current.revision, &body)
            .map(|_| ()),
        None => plans
            .insert_with(Some(&floor.id), Some(&floor.org), &body)
            .map(|_| ()),
    }
}

fn get_svg_plan(req: &Request) -> Result<Response> {
    let floor = floors().fetch::<Floor>(req.param("id")?)?;
    let plan = tianshan_sdk::storage::collection("plans").fetch::<serde_json::Value>(&floor.id)?;
    let svg = plan.data["svg"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    Ok(Response::bytes("image/svg+xml", svg)
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        )
        .header("content-disposition", "attachment; filename=\"plan.svg\""))
}

// ---------------------------------------------------------------- rooms

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomInput {
    floor_id: String,
    no: String,
    class: String,
    subtype: String,
    usable_m2: f64,
    gross_m2: f64,
    /// Absent on a change: the drawn outline and the photos stay.
    #[serde(default)]
    outline: Option<Vec<[f64; 2]>>,
    #[serde(default)]
    photos: Option<Vec<String>>,
}

/// A new room from a JSON body (the import builds one per row).
pub fn room_from_json(body: serde_json::Value, floor: &Doc<Floor>) -> Result<Room> {
    let input: RoomInput = serde_json::from_value(body)?;
    room_from(input, floor, None)
}

fn room_from(input: RoomInput, floor: &Doc<Floor>, keep: Option<&Room>) -> Result<Room> {
    model::ROOM_CLASS.check("class", &input.class)?;
    model::ROOM_SUBTYPE.check("subtype", &input.subtype)?;
    if input.subtype.split('.').next() != Some(input.class.as_str()) {
        return Err(invalid(
            "subtype",
            "subtype_not_in_class",
            "a sub-type of the class",
        ));
    }
    let usable = area("usable_m2", input.usable_m2)?;
    let gross = area("gross_m2", input.gross_m2)?;
    if usable > gross {
        return Err(invalid(
            "usable_m2",
            "usable_above_gross",
            "usable area ≤ gross area",
        ));
    }
    let outline = input
        .outline
        .unwrap_or_else(|| keep.map_or(Vec::new(), |r| r.outline.clone()));
    if let Some(code) = model::outline_error(&outline, floor.data.plan_size) {
        return Err(invalid(
            "outline",
            code,
            "the outline does not fit the drawing",
        ));
    }
    let photos = input
        .photos
        .unwrap_or_else(|| keep.map_or(Vec::new(), |r| r.photos.clone()));
    if photos.len() > 20 {
        return Err(invalid("photos", "too_many", "at most 20 photos"));
    }
    Ok(Room {
        floor_id: floor.id.clone(),
        building_id: floor.data.building_id.clone(),
        no: required("no", &input.no)?,
        class: input.class,
        subtype: input.subtype,
        usable_m2: usable,
        gross_m2: gross,
        outline,
        assigned_unit: keep.and_then(|r| r.assigned_unit.clone()),
        occupants: keep.map_or(0, |r| r.occupants),
        photos,
    })
}

fn list_rooms(req: &Request) -> Result<Response> {
    let mut find = rooms().find();
    for field in ["floor_id", "building_id"] {
        if let Some(v) = req.query_param(field).filter(|v| !v.is_empty()) {
            find = find.eq(field, v);
        }
    }
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.contains("no", &q);
    }
    let find = list::filter_vocab(find, req, "class", &model::ROOM_CLASS)?;
    let find = list::sorted(find, req, &["no", "usable_m2"], "no")?;
    list::respond(
        req,
        &find,
        "rooms",
        &[
            ("房间号 Room", "/data/no"),
            ("分类 Class", "/data/class"),
            ("用途 Use", "/data/subtype"),
            ("使用面积 Usable m²", "/data/usable_m2"),
            ("建筑面积 Gross m²", "/data/gross_m2"),
            ("使用人数 Occupants", "/data/occupants"),
        ],
    )
}

fn create_room(req: &Request) -> Result<Response> {
    let input: RoomInput = req.json()?;
    let floor = parent::<Floor>(&floors(), "floor_id", &input.floor_id)?;
    authz::require_at(MANAGE, &floor.org)?;
    let taken = rooms()
        .find()
        .eq("floor_id", floor.id.as_str())
        .eq("no", input.no.trim())
        .count()?;
    if taken > 0 {
        return Err(invalid(
            "no",
            "room_exists",
            "the floor has a room of that number",
        ));
    }
    let room = room_from(input, &floor, None)?;
    let doc = rooms().insert_with(None, Some(&floor.org), &room)?;
    crate::registration::publish_areas(&doc.org)?;
    Ok(Response::json(&doc).with_status(201))
}

/// A change of area or class re-runs the over-standard check of the
/// room's occupants; the answer carries it.
fn update_room(req: &Request) -> Result<Response> {
    let current = rooms().fetch::<Room>(req.param("id")?)?;
    authz::require_at(MANAGE, &current.org)?;
    let input: RoomInput = req.json()?;
    if input.floor_id != current.data.floor_id {
        return Err(invalid(
            "floor_id",
            "immutable",
            "a room stays on its floor",
        ));
    }
    let floor = floors().fetch::<Floor>(&current.data.floor_id)?;
    let room = room_from(input, &floor, Some(&current.data))?;
    let doc = rooms().update(&current.id, current.revision, &room)?;
    crate::registration::publish_areas(&doc.org)?;
    let check = crate::occupancy::room_check(&doc)?;
    Ok(Response::json(&json!({ "room": doc, "check": check })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutlineInput {
    outline: Vec<[f64; 2]>,
}

/// `PUT /rooms/{id}/outline`: the polygon the user drew on the plan.
fn set_outline(req: &Request) -> Result<Response> {
    let current = rooms().fetch::<Room>(req.param("id")?)?;
    authz::require_at(MANAGE, &current.org)?;
    let input: OutlineInput = req.json()?;
    let floor = floors().fetch::<Floor>(&current.data.floor_id)?;
    if let Some(code) = model::outline_error(&input.outline, floor.data.plan_size) {
        return Err(invalid(
            "outline",
            code,
            "the outline does not fit the drawing",
        ));
    }
    let mut room = current.data.clone();
    room.outline = input
        .outline
        .iter()
        .map(|p| [model::round2(p[0]), model::round2(p[1])])
        .collect();
    Ok(Response::json(&rooms().update(
        &current.id,
        current.revision,
        &room,
    )?))
}

/// Writes for a room whose occupant count changes.
pub fn room_count_write(room: &Doc<Room>, occupants: u32) -> Result<Write> {
    let mut data = room.data.clone();
    data.occupants = occupants;
    Write::update("rooms", room, &data)
}
