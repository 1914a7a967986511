//! People in rooms and the area standard: the over-standard check runs on
//! every assignment, every end of an occupancy and every change of a room,
//! and the lists of over-standard persons and units come from the same
//! arithmetic ([`model::check_share`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{self, Doc, Write};

use crate::common::{Levels, Standards, date, floors, occupancies, required, rooms, standards};
use crate::model::{self, Floor, Occupancy, Room, Standard, invalid};

const VIEW: &str = "property.view";
const MANAGE: &str = "property.manage";
const CONFIGURE: &str = "property.configure";

pub fn routes(router: Router) -> Router {
    router
        .post("/rooms/{id}/occupants", assign)
        .requires(MANAGE)
        .post("/occupancies/{id}/end", end)
        .requires(MANAGE)
        .get("/standards", list_standards)
        .requires(VIEW)
        .put("/standards/{rank}", set_standard)
        .requires(CONFIGURE)
        .get("/overstandard", over_standard)
        .requires(VIEW)
}

/// Seeds the 2014 table at the install scope (the region); a value the
/// region edited is kept.
pub fn seed_standards() -> Result<()> {
    for (rank, m2) in model::STANDARD_2014 {
        let row = Standard {
            rank: rank.to_string(),
            m2: *m2,
        };
        match standards().insert_with(Some(rank), None, &row) {
            Ok(_) => {}
            Err(e) if e.code() == "conflict" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn list_standards(req: &Request) -> Result<Response> {
    let table = Standards::load()?;
    let lang = req.lang();
    let rows: Vec<_> = model::POST_RANK
        .codes()
        .map(|rank| {
            json!({
                "rank": rank,
                "label": model::POST_RANK.label(rank, lang),
                "organ_level": rank.split('.').next(),
                "m2": table.m2(rank),
            })
        })
        .collect();
    Ok(Response::json(&json!({ "standards": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StandardInput {
    m2: f64,
}

/// `PUT /standards/{rank}`: the region edits its table; checked at the
/// stored row's org, so a county administrator cannot change it.
fn set_standard(req: &Request) -> Result<Response> {
    let rank = req.param("rank")?;
    model::POST_RANK.check("rank", rank)?;
    let input: StandardInput = req.json()?;
    if !(input.m2.is_finite() && input.m2 > 0.0 && input.m2 <= 200.0) {
        return Err(invalid("m2", "area_invalid", "0–200 m² per person"));
    }
    let row = Standard {
        rank: rank.to_string(),
        m2: model::round2(input.m2),
    };
    let doc = match standards().get::<Standard>(rank)? {
        Some(current) => {
            authz::require_at(CONFIGURE, &current.org)?;
            standards().update(&current.id, current.revision, &row)?
        }
        // A rank nobody stored yet: only the region stores the table, so a
        // county cannot write itself a laxer standard.
        None => {
            let caller = identity::caller().ok_or_else(|| Error::unauthorized("sign in"))?;
            let acting = orgs::get(&caller.org_id)?;
            if acting.map(|o| o.level) != Some("region".into()) {
                return Err(Error::forbidden("the region keeps the area standard"));
            }
            standards().insert_with(Some(rank), None, &row)?
        }
    };
    Ok(Response::json(&doc))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignInput {
    person: String,
    #[serde(default)]
    user_id: Option<String>,
    /// Empty: the rank of the user's kernel profile.
    #[serde(default)]
    rank: String,
    #[serde(default)]
    position: String,
    start_on: String,
}

/// A person who is a platform user brings what administrators set on
/// their profile (contract 1.4): the name, the position and, unless the
/// form names one, the rank, mapped onto the organ level's row.
fn with_profile(mut input: AssignInput, level: &'static str) -> Result<AssignInput> {
    let Some(user) = input.user_id.clone().filter(|u| !u.trim().is_empty()) else {
        return Ok(input);
    };
    // None for a user beyond the caller's reach, exactly as for nobody.
    let profile = identity::profile(user.trim())
        .ok_or_else(|| invalid("user_id", "user_unknown", "a user of a unit you manage"))?;
    input.user_id = Some(profile.user_id.clone());
    if input.person.trim().is_empty() {
        input.person = profile.display_name.clone();
    }
    if input.position.trim().is_empty() {
        input.position = profile.position.clone();
    }
    if input.rank.is_empty() {
        input.rank = model::rank_from_profile(&profile.post_rank, level)
            .ok_or_else(|| {
                invalid(
                    "rank",
                    "rank_not_on_profile",
                    "the rank, or set it on the user's profile",
                )
            })?
            .to_string();
    }
    Ok(input)
}

/// One occupant's figures, as the API answers the check.
#[derive(Debug, Clone, Serialize)]
pub struct PersonCheck {
    pub occupancy_id: String,
    pub person: String,
    pub rank: String,
    pub position: String,
    #[serde(flatten)]
    pub check: model::Check,
}

/// The check of a room: every current occupant against the standard.
#[derive(Debug, Clone, Serialize)]
pub struct RoomCheck {
    pub organ_level: &'static str,
    pub applies: bool,
    pub occupants: Vec<PersonCheck>,
    pub over: bool,
    pub excess_m2: f64,
}

fn current_occupants(room_id: &str) -> Result<Vec<Doc<Occupancy>>> {
    occupancies()
        .find()
        .eq("room_id", room_id)
        .eq("active", true)
        .all(500)
}

fn evaluate(
    room: &Doc<Room>,
    people: &[Doc<Occupancy>],
    organ_level: &'static str,
    table: &Standards,
) -> RoomCheck {
    // The standard is for office rooms (办公室); service, equipment and
    // ancillary rooms are not counted per person.
    let applies = room.data.class == "office";
    let count = people.len() as u32;
    let occupants: Vec<PersonCheck> = people
        .iter()
        .map(|o| {
            let standard = table.m2(&o.data.rank).unwrap_or(0.0);
            let check = if applies {
                model::check_share(room.data.usable_m2, count, standard)
            } else {
                model::Check {
                    standard_m2: standard,
                    actual_m2: 0.0,
                    excess_m2: 0.0,
                    over: false,
                }
            };
            PersonCheck {
                occupancy_id: o.id.clone(),
                person: o.data.person.clone(),
                rank: o.data.rank.clone(),
                position: o.data.position.clone(),
                check,
            }
        })
        .collect();
    let excess = model::round2(occupants.iter().map(|p| p.check.excess_m2).sum());
    RoomCheck {
        organ_level,
        applies,
        over: excess > 0.0,
        excess_m2: excess,
        occupants,
    }
}

pub fn room_check(room: &Doc<Room>) -> Result<RoomCheck> {
    let people = current_occupants(&room.id)?;
    let level = crate::common::organ_level(&room.org)?;
    Ok(evaluate(room, &people, level, &Standards::load()?))
}

/// `POST /rooms/{id}/occupants`: the person moves in; the answer is the
/// room's check with them in it, so the page can warn at once.
fn assign(req: &Request) -> Result<Response> {
    let room = rooms().fetch::<Room>(req.param("id")?)?;
    authz::require_at(MANAGE, &room.org)?;
    let input: AssignInput = req.json()?;
    let level = crate::common::organ_level(&room.org)?;
    let input = with_profile(input, level)?;
    model::POST_RANK.check("rank", &input.rank)?;
    if !model::rank_fits_level(&input.rank, level) {
        return Err(invalid(
            "rank",
            "rank_not_of_level",
            "a rank of the unit's organ level",
        )
        .with_param("level", level));
    }
    let person = required("person", &input.person)?;
    let start_on = date("start_on", &input.start_on)?;
    let people = current_occupants(&room.id)?;
    if people.iter().any(|o| {
        o.data.person == person || (input.user_id.is_some() && o.data.user_id == input.user_id)
    }) {
        return Err(invalid(
            "person",
            "already_in_room",
            "the person is in the room",
        ));
    }
    let occupancy = Occupancy {
        room_id: room.id.clone(),
        person,
        user_id: input.user_id.filter(|u| !u.is_empty()),
        rank: input.rank,
        position: input.position.trim().to_string(),
        start_on,
        end_on: None,
        active: true,
    };
    let written = storage::transact(vec![
        Write::insert_with("occupancies", None, Some(&room.org), &occupancy)?,
        crate::space::room_count_write(&room, people.len() as u32 + 1)?,
    ])?;
    let room = rooms().fetch::<Room>(&room.id)?;
    crate::registration::publish_areas(&room.org)?;
    let check = room_check(&room)?;
    let id = written[0].as_ref().map(|d| d.id.clone());
    Ok(Response::json(&json!({ "occupancy_id": id, "check": check })).with_status(201))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndInput {
    end_on: String,
}

/// `POST /occupancies/{id}/end`: the person moves out (kept as history).
fn end(req: &Request) -> Result<Response> {
    let occ = occupancies().fetch::<Occupancy>(req.param("id")?)?;
    authz::require_at(MANAGE, &occ.org)?;
    if !occ.data.active {
        return Err(Error::new(
            409,
            "occupancy_ended",
            "the occupancy has ended",
        ));
    }
    let input: EndInput = req.json()?;
    let end_on = date("end_on", &input.end_on)?;
    if end_on < occ.data.start_on {
        return Err(invalid(
            "end_on",
            "end_before_start",
            "ends before it starts",
        ));
    }
    let room = rooms().fetch::<Room>(&occ.data.room_id)?;
    let mut ended = occ.data.clone();
    ended.end_on = Some(end_on);
    ended.active = false;
    storage::transact(vec![
        Write::update("occupancies", &occ, &ended)?,
        crate::space::room_count_write(&room, room.data.occupants.saturating_sub(1))?,
    ])?;
    let room = rooms().fetch::<Room>(&room.id)?;
    crate::registration::publish_areas(&room.org)?;
    Ok(Response::json(&json!({ "check": room_check(&room)? })))
}

/// `GET /rooms/{id}`: the room, its occupants now and before, the check.
pub fn room_detail(req: &Request) -> Result<Response> {
    let room = rooms().fetch::<Room>(req.param("id")?)?;
    let history = occupancies()
        .find()
        .eq("room_id", room.id.as_str())
        .sort_desc("created-at")
        .limit(200)
        .page::<Occupancy>()?;
    let check = room_check(&room)?;
    Ok(Response::json(&json!({
        "room": room,
        "check": check,
        "occupancies": history.records,
    })))
}

/// `GET /floors/{id}/view`: what the plan view draws — the drawing and
/// every room with its outline, use, vacancy and over-standard flag.
pub fn floor_view(req: &Request) -> Result<Response> {
    let floor = floors().fetch::<Floor>(req.param("id")?)?;
    let list = rooms()
        .find()
        .eq("floor_id", floor.id.as_str())
        .all::<Room>(2000)?;
    let ids: Vec<String> = list.iter().map(|r| r.id.clone()).collect();
    let mut by_room: HashMap<String, Vec<Doc<Occupancy>>> = HashMap::new();
    if !ids.is_empty() {
        let people = occupancies()
            .find()
            .one_of("room_id", ids.iter().map(|s| s.as_str()))
            .eq("active", true)
            .all::<Occupancy>(20_000)?;
        for o in people {
            by_room.entry(o.data.room_id.clone()).or_default().push(o);
        }
    }
    let table = Standards::load()?;
    let level = crate::common::organ_level(&floor.org)?;
    let rooms: Vec<_> = list
        .iter()
        .map(|room| {
            let people = by_room.get(&room.id).map(Vec::as_slice).unwrap_or(&[]);
            let check = evaluate(room, people, level, &table);
            json!({
                "id": room.id, "no": room.data.no, "class": room.data.class,
                "subtype": room.data.subtype, "usable_m2": room.data.usable_m2,
                "outline": room.data.outline, "occupants": people.len(),
                "vacant": people.is_empty(), "over": check.over, "excess_m2": check.excess_m2,
            })
        })
        .collect();
    Ok(Response::json(&json!({ "floor": floor, "rooms": rooms })))
}

/// Everyone over the standard in reach, with the excess, and the units
/// they belong to (the room's org) summed.
pub fn over_standard_rows() -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>)> {
    let offices = rooms()
        .find()
        .eq("class", "office")
        .gt("occupants", 0)
        .all::<Room>(50_000)?;
    let people = occupancies()
        .find()
        .eq("active", true)
        .all::<Occupancy>(200_000)?;
    let mut by_room: HashMap<&str, Vec<Doc<Occupancy>>> = HashMap::new();
    for o in &people {
        by_room
            .entry(o.data.room_id.as_str())
            .or_default()
            .push(o.clone());
    }
    let table = Standards::load()?;
    let mut levels = Levels::default();
    let mut persons = Vec::new();
    let mut units: HashMap<String, (u32, f64)> = HashMap::new();
    for room in &offices {
        let Some(list) = by_room.get(room.id.as_str()) else {
            continue;
        };
        let check = evaluate(room, list, levels.of(&room.org)?, &table);
        for p in check.occupants.iter().filter(|p| p.check.over) {
            persons.push(json!({
                "org": room.org, "room_id": room.id, "room_no": room.data.no,
                "building_id": room.data.building_id, "person": p.person, "rank": p.rank,
                "position": p.position, "standard_m2": p.check.standard_m2,
                "actual_m2": p.check.actual_m2, "excess_m2": p.check.excess_m2,
            }));
            let unit = units.entry(room.org.clone()).or_default();
            unit.0 += 1;
            unit.1 += p.check.excess_m2;
        }
    }
    persons.sort_by(|a, b| {
        b["excess_m2"]
            .as_f64()
            .partial_cmp(&a["excess_m2"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut unit_rows: Vec<_> = units
        .into_iter()
        .map(|(org, (n, excess))| {
            let name = orgs::get(&org).ok().flatten().map(|o| o.name_zh);
            json!({ "org": org, "org_name": name, "persons": n, "excess_m2": model::round2(excess) })
        })
        .collect();
    unit_rows.sort_by(|a, b| {
        b["excess_m2"]
            .as_f64()
            .partial_cmp(&a["excess_m2"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok((persons, unit_rows))
}

/// `GET /overstandard` (`?format=csv|xlsx` exports the persons).
fn over_standard(req: &Request) -> Result<Response> {
    let (persons, units) = over_standard_rows()?;
    if let Some(format) = export::wanted(req)? {
        let mut table = export::Table::new(
            "overstandard",
            &[
                "房间 Room",
                "使用人 Person",
                "职级 Rank",
                "职务 Position",
                "标准 Standard m²",
                "实际 Actual m²",
                "超标 Excess m²",
            ],
        );
        let lang = req.lang();
        for p in &persons {
            table.push(vec![
                p["room_no"].clone(),
                p["person"].clone(),
                json!(model::POST_RANK.label(p["rank"].as_str().unwrap_or(""), lang)),
                p["position"].clone(),
                p["standard_m2"].clone(),
                p["actual_m2"].clone(),
                p["excess_m2"].clone(),
            ]);
        }
        return export::respond(&table, format);
    }
    Ok(Response::json(
        &json!({ "persons": persons, "units": units }),
    ))
}
