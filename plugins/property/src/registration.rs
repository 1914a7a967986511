//! Ownership registration (确权登记) per building and the registration
//! rate: counts published at each building's org into the property
//! system's own indicators (a ratio the kernel divides at every level),
//! and the org's rate into the plan's indicator for its level.

use serde::Deserialize;
use tianshan_sdk::datacenter::{self, Granularity, Indicator, Ratio, Sharing};
use tianshan_sdk::prelude::*;

use crate::common::buildings;
use crate::model::{self, Building, invalid};

pub const TOTAL: &str = "property.buildings_total";
pub const REGISTERED: &str = "property.buildings_registered";
pub const RATE: &str = "property.registration_rate";
/// Denominators for other systems (energy per m², per capita).
pub const USABLE: &str = "property.usable_m2";
pub const GROSS: &str = "property.gross_m2";
pub const OCCUPANTS: &str = "property.occupants";

pub fn routes(router: Router) -> Router {
    router
        .post("/buildings/{id}/registration", change)
        .requires("property.manage")
}

pub fn define_indicators() -> Result<()> {
    Indicator::new(TOTAL, "办公用房楼栋数", "Office buildings", "buildings")
        .aggregation(datacenter::Aggregation::Stock)
        .granularity(Granularity::Year)
        .sharing(Sharing::Open)
        .define()?;
    Indicator::new(
        REGISTERED,
        "已确权登记楼栋数",
        "Registered buildings",
        "buildings",
    )
    .aggregation(datacenter::Aggregation::Stock)
    .granularity(Granularity::Year)
    .sharing(Sharing::Open)
    .define()?;
    for (code, zh, en, unit) in [
        (
            USABLE,
            "办公用房使用面积",
            "Usable area of office buildings",
            "m²",
        ),
        (
            GROSS,
            "办公用房建筑面积",
            "Gross area of office buildings",
            "m²",
        ),
        (
            OCCUPANTS,
            "办公用房使用人数",
            "People in office rooms",
            "persons",
        ),
    ] {
        Indicator::new(code, zh, en, unit)
            .aggregation(datacenter::Aggregation::Stock)
            .granularity(Granularity::Year)
            .sharing(Sharing::Open)
            .define()?;
    }
    Ratio::new(
        RATE,
        "办公用房确权登记率",
        "Ownership registration rate",
        "%",
    )
    .of(REGISTERED, TOTAL)
    .scale(100.0)
    .sharing(Sharing::Open)
    .define()?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeInput {
    status: String,
    #[serde(default)]
    cert_no: Option<String>,
    #[serde(default)]
    defects: Vec<String>,
}

/// `POST /buildings/{id}/registration`: one step of 待登记 → 办理中 →
/// 已登记 / 有瑕疵. Registered needs the certificate number; defective
/// needs the defects.
fn change(req: &Request) -> Result<Response> {
    let current = buildings().fetch::<Building>(req.param("id")?)?;
    authz::require_at("property.manage", &current.org)?;
    let input: ChangeInput = req.json()?;
    model::REGISTRATION.check("status", &input.status)?;
    if !model::registration_step_allowed(&current.data.registration, &input.status) {
        return Err(Error::new(
            409,
            "registration_step",
            "not a step from the current status",
        )
        .with_field("status")
        .with_param("from", current.data.registration.clone())
        .with_param("to", input.status.clone()));
    }
    let mut data = current.data.clone();
    if let Some(cert) = input
        .cert_no
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
    {
        data.cert_no = cert;
    }
    match input.status.as_str() {
        "registered" if data.cert_no.is_empty() => {
            return Err(invalid("cert_no", "required", "the certificate number"));
        }
        "defective" => {
            let defects: Vec<String> = input
                .defects
                .iter()
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect();
            if defects.is_empty() {
                return Err(invalid("defects", "required", "name the defects"));
            }
            data.defects = defects;
        }
        "registered" => data.defects.clear(),
        _ => {}
    }
    data.registration = input.status;
    let doc = buildings().update(&current.id, current.revision, &data)?;
    let rate = publish_rates(&doc.org)?;
    Ok(Response::json(&json!({ "building": doc, "rate": rate })))
}

/// Publishes the org's counts and its rate for this year; answers the rate
/// and whether the plan indicator took it (it needs a publish grant the
/// platform administrator gives; without one the own indicators still
/// carry the figures).
pub fn publish_rates(org: &str) -> Result<serde_json::Value> {
    let total = buildings().find().eq("org", org).count()?;
    let registered = buildings()
        .find()
        .eq("org", org)
        .eq("registration", "registered")
        .count()?;
    let year = dates::current_period(Granularity::Year);
    datacenter::publish(TOTAL, &[datacenter::value(Some(org), &year, total as f64)])?;
    datacenter::publish(
        REGISTERED,
        &[datacenter::value(Some(org), &year, registered as f64)],
    )?;
    let rate = if total == 0 {
        0.0
    } else {
        model::round2(registered as f64 * 100.0 / total as f64)
    };
    let plan = model::plan_registration_indicator(crate::common::organ_level(org)?);
    let plan_published =
        match datacenter::publish(plan, &[datacenter::value(Some(org), &year, rate)]) {
            Ok(_) => true,
            Err(e) => {
                log::warn(format!("{plan} not published at {org}: {}", e.message()));
                false
            }
        };
    Ok(json!({
        "org": org, "period": year, "total": total, "registered": registered,
        "rate": rate, "plan_indicator": plan, "plan_published": plan_published,
    }))
}

/// Publishes an org's room areas and headcount for this year (stock
/// values at the org; the kernel sums them up the tree), after any change
/// of its rooms or occupants.
pub fn publish_areas(org: &str) -> Result<()> {
    use tianshan_sdk::storage::AggregateOp;
    let sums = crate::common::rooms().aggregate(
        &crate::common::rooms().find().eq("org", org),
        &[],
        &[
            (AggregateOp::Sum, Some("usable_m2")),
            (AggregateOp::Sum, Some("gross_m2")),
        ],
    )?;
    let value = |i: usize| {
        sums.first()
            .and_then(|g| g.values.get(i).copied().flatten())
            .map_or(0.0, model::round2)
    };
    let people = crate::common::occupancies()
        .find()
        .eq("org", org)
        .eq("active", true)
        .count()?;
    let year = dates::current_period(Granularity::Year);
    datacenter::publish(USABLE, &[datacenter::value(Some(org), &year, value(0))])?;
    datacenter::publish(GROSS, &[datacenter::value(Some(org), &year, value(1))])?;
    datacenter::publish(
        OCCUPANTS,
        &[datacenter::value(Some(org), &year, people as f64)],
    )?;
    Ok(())
}
