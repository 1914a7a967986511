//! 名录库: one snapshot per institution and year, the denominators of the
//! intensities. The building area and the people in it come from the
//! property system's open indicators when it has them, and are typed in
//! where it has none yet.

use tianshan_sdk::datacenter::Query;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::model::Profile;

pub fn profiles() -> Collection {
    collection("profiles")
}

pub fn id(org: &str, year: i32) -> String {
    format!("pf-{org}-{year}")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/profiles", list)
        .requires("energy.view")
        .get("/profiles/{org}/{year}", show)
        .requires("energy.view")
        .put("/profiles/{org}/{year}", save)
        .requires("energy.report")
}

/// The snapshot in force for `year`: that year's, else the latest before.
pub fn for_year(org: &str, year: i32) -> Result<Option<Doc<Profile>>> {
    if let Some(doc) = profiles().get::<Profile>(&id(org, year))? {
        return Ok(Some(doc));
    }
    let earlier = profiles()
        .find()
        .eq("org", org)
        .lt("year", year)
        .sort_desc("year")
        .limit(1)
        .page::<Profile>()?;
    Ok(earlier.records.into_iter().next().filter(|d| d.org == org))
}

/// What property reports for the org this year: (gross m², occupants).
fn from_property(org: &str, year: i32) -> (Option<f64>, Option<u32>) {
    let at = |code: &str| {
        Query::new(code)
            .org(org)
            .between(Some(year.to_string()), Some(year.to_string()))
            .rows()
            .ok()
            .and_then(|rows| rows.into_iter().find(|r| r.org == org))
            .map(|r| r.value)
            .filter(|v| *v > 0.0)
    };
    (
        at("property.gross_m2"),
        at("property.occupants").map(|v| v as u32),
    )
}

fn list(req: &Request) -> Result<Response> {
    let find = profiles().find();
    let find = match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => find.eq("year", crate::common::year("year", &y)?),
        None => find,
    };
    let find = list::filter_vocab(find, req, "nature", &crate::model::NATURE)?;
    let find = list::sorted(find, req, &["year", "building_m2", "energy_users"], "-year")?;
    list::respond(
        req,
        &find,
        "profiles",
        &[
            ("年度 Year", "/data/year"),
            ("单位 Org", "/org"),
            ("单位性质 Nature", "/data/nature"),
            ("建筑面积 Building m²", "/data/building_m2"),
            ("采暖面积 Heating m²", "/data/heating_m2"),
            ("用能人数 Energy users", "/data/energy_users"),
            ("编制人数 Headcount", "/data/headcount"),
            ("重点用能单位 Key user", "/data/key_user"),
        ],
    )
}

/// `GET /profiles/{org}/{year}`: the stored snapshot, or a draft from the
/// latest earlier one and property's figures (`stored: false`).
fn show(req: &Request) -> Result<Response> {
    let org = crate::common::org_in_reach("org", req.param("org")?)?;
    let year = crate::common::year("year", req.param("year")?)?;
    let (area, people) = from_property(&org, year);
    if let Some(doc) = profiles().get::<Profile>(&id(&org, year))? {
        return Ok(Response::json(&json!({
            "stored": true, "profile": doc.data, "revision": doc.revision,
            "property": { "building_m2": area, "energy_users": people },
        })));
    }
    let mut draft = for_year(&org, year)?.map(|d| d.data).unwrap_or(Profile {
        nature: "organ".into(),
        building_type: "office".into(),
        climate_zone: "severe_cold".into(),
        ..Profile::default()
    });
    draft.year = year;
    if let Some(a) = area {
        draft.building_m2 = a;
        draft.area_source = "property".into();
    }
    if let Some(p) = people.filter(|_| draft.energy_users == 0) {
        draft.energy_users = p;
    }
    Ok(Response::json(&json!({
        "stored": false, "profile": draft,
        "property": { "building_m2": area, "energy_users": people },
    })))
}

fn save(req: &Request) -> Result<Response> {
    let org = crate::common::org_in_reach("org", req.param("org")?)?;
    authz::require_at("energy.report", &org)?;
    let year = crate::common::year("year", req.param("year")?)?;
    let mut profile: Profile = req.json()?;
    profile.year = year;
    if profile.area_source.is_empty() {
        profile.area_source = "entered".into();
    }
    profile.validate()?;
    let saved = match profiles().get::<Profile>(&id(&org, year))? {
        Some(doc) => profiles().update(&doc.id, doc.revision, &profile)?,
        None => profiles().insert_with(Some(&id(&org, year)), Some(&org), &profile)?,
    };
    crate::indicators::refresh_year(&org, year)?;
    Ok(Response::json(&saved))
}
