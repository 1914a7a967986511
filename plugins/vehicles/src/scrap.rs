//! Scrapping (报废): a request checked against the region's age and
//! mileage thresholds, approved through the kernel's approvals; on approval
//! the vehicle is scrapped (its quota slot freed, since held vehicles
//! exclude scrapped ones) and `vehicles.scrap_approved` asks `assets` to
//! open the disposal of its card.

use serde::Deserialize;
use tianshan_sdk::approvals::{self, Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::Doc;

use crate::model::{Vehicle, scrap_allowed};
use crate::register::vehicles;

pub const FLOW: &str = "scrap";

pub fn routes(router: Router) -> Router {
    router
        .post("/vehicles/{id}/scrap", request_scrap)
        .requires("vehicles.manage")
        .put("/vehicles/{id}/asset-card", link_card)
        .requires("vehicles.manage")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "公务用车报废审批 Official vehicle scrapping").step(Step::any(
            "上级机关事务管理局审核 Parent administration review",
            "vehicles.approver",
            Level::Parent,
        )),
    )
}

#[derive(Deserialize)]
struct ScrapInput {
    reason: String,
}

/// `POST /vehicles/{id}/scrap` with `{reason}`.
fn request_scrap(req: &Request) -> Result<Response> {
    let doc: Doc<Vehicle> = vehicles().fetch(req.param("id")?)?;
    authz::require_at("vehicles.manage", &doc.org)?;
    let input: ScrapInput = req.json()?;
    if input.reason.trim().is_empty() {
        return Err(
            Error::validation("reason", "a reason is required").with_code("reason_required")
        );
    }
    if doc.data.state == "scrapped" || doc.data.state == "scrapping" {
        return Err(Error::conflict("the vehicle is scrapped or being scrapped")
            .with_code("vehicle_not_in_service"));
    }
    scrap_allowed(
        &crate::purchase::rules()?,
        &doc.data.registered_on,
        doc.data.odometer_km,
        &dates::today(),
    )?;
    let form = json!({
        "reason": input.reason,
        "title": { "zh-CN": format!("公务用车报废 {}", doc.data.plate), "en": format!("Vehicle scrapping {}", doc.data.plate) },
        "summary": [
            { "label": { "zh-CN": "车牌号", "en": "Plate" }, "value": doc.data.plate },
            { "label": { "zh-CN": "登记日期", "en": "Registered" }, "value": doc.data.registered_on, "format": "date" },
            { "label": { "zh-CN": "里程(公里)", "en": "Odometer (km)" }, "value": doc.data.odometer_km, "format": "number" },
            { "label": { "zh-CN": "报废原因", "en": "Reason" }, "value": input.reason }
        ]
    });
    let mut next = doc.data.clone();
    next.state = "scrapping".into();
    let (approval, _) = approvals::start_with(
        FLOW,
        &doc.id,
        &format!("公务用车报废 Vehicle scrapping {}", doc.data.plate),
        Some(&doc.org),
        &form,
        vec![tianshan_sdk::storage::Write::update(
            "vehicles", &doc, &next,
        )?],
    )?;
    Ok(Response::json(&json!({ "vehicle": doc.id, "approval": approval.id })).with_status(201))
}

#[derive(Deserialize)]
struct CardLink {
    card_id: String,
}

/// `PUT /vehicles/{id}/asset-card` with `{card_id}`: the asset card
/// `assets` made from `vehicles.purchased`, so scrapping can name it.
fn link_card(req: &Request) -> Result<Response> {
    let doc: Doc<Vehicle> = vehicles().fetch(req.param("id")?)?;
    authz::require_at("vehicles.manage", &doc.org)?;
    let link: CardLink = req.json()?;
    let mut next = doc.data.clone();
    next.asset_card_id = link.card_id.trim().to_string();
    Ok(Response::json(&vehicles().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

/// The outcome: approved scraps the vehicle and tells `assets`; any other
/// end puts it back in service.
pub fn decided(outcome: &Outcome) -> Result<()> {
    let Some(doc) = vehicles().get::<Vehicle>(&outcome.subject_id)? else {
        return Ok(());
    };
    if doc.data.state != "scrapping" {
        return Ok(()); // a redelivery
    }
    let mut next = doc.data.clone();
    next.state = match outcome.decision {
        Decision::Approved => "scrapped",
        Decision::Returned => return Ok(()),
        Decision::Rejected | Decision::Withdrawn => "in_service",
    }
    .into();
    vehicles().update(&doc.id, doc.revision, &next)?;
    if next.state == "scrapped" {
        messaging::Event::json(
            "vehicles.scrap_approved",
            &json!({
                "card_id": doc.data.asset_card_id,
                "reason": format!("公务用车报废 {} Vehicle scrapped", doc.data.plate),
            }),
        )?
        .org(doc.org.clone())
        .key(doc.id.clone())
        .idempotency_key(format!("scrap:{}", outcome.instance_id))
        .publish()?;
        crate::indicators::refresh(&doc.org)?;
    }
    Ok(())
}
