//! Allocation requests (调剂, 置换, 租用, 建设): numbered documents on the
//! SDK's document block, approved through the kernel's approvals by the
//! allocation approver of the requesting unit's parent org, and applied by
//! a hand-over confirmation at the room's org.

use serde::{Deserialize, Serialize};
use tianshan_sdk::approvals::{Flow, Level, Outcome, Step};
use tianshan_sdk::document::{Numbering, Status, Timeline};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::Doc;

use crate::common::{allocations, area, required, rooms};
use crate::model::{self, Room, invalid};

const FLOW: &str = "property-allocation";
const NUMBERS: Numbering = Numbering::official("counters", "房调");

pub fn routes(router: Router) -> Router {
    router
        .get("/allocations", list_allocations)
        .requires("property.view")
        .post("/allocations", create)
        .requires("property.manage")
        .get("/allocations/{id}", get)
        .requires("property.view")
        .post("/allocations/{id}/submit", submit)
        .requires("property.manage")
        .post("/allocations/{id}/handover", handover)
        .requires("property.manage")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "办公用房调剂申请 Office-room allocation request").step(Step::any(
            "上级机关事务管理局审核 Parent administration review",
            "property.approver",
            Level::Parent,
        )),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    pub no: String,
    pub kind: String,
    /// The room asked for (none for a construction request).
    pub room_id: Option<String>,
    pub area_m2: f64,
    pub reason: String,
    pub status: Status,
    pub approval_id: Option<String>,
    pub timeline: Timeline,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    kind: String,
    #[serde(default)]
    room_id: Option<String>,
    area_m2: f64,
    reason: String,
}

fn list_allocations(req: &Request) -> Result<Response> {
    let find = allocations().find();
    let find = list::filter_vocab(find, req, "kind", &model::ALLOCATION_KIND)?;
    let find = list::filter_vocab(find, req, "status", &model::ALLOCATION_STATUS)?;
    let find = list::sorted(find, req, &["no"], "-no")?;
    list::respond(
        req,
        &find,
        "allocations",
        &[
            ("编号 No.", "/data/no"),
            ("类型 Kind", "/data/kind"),
            ("面积 Area m²", "/data/area_m2"),
            ("事由 Reason", "/data/reason"),
            ("状态 Status", "/data/status"),
        ],
    )
}

/// `POST /allocations`: a draft of the acting unit (the requester is
/// always the org the caller acts in, never one named in the body).
fn create(req: &Request) -> Result<Response> {
    let input: Input = req.json()?;
    model::ALLOCATION_KIND.check("kind", &input.kind)?;
    // The room asked for usually sits at another org (the county's pool),
    // out of the requester's reach: its keeper checks it at the hand-over.
    let room_id = input.room_id.filter(|r| !r.is_empty());
    if room_id.is_none() && matches!(input.kind.as_str(), "adjust" | "swap") {
        return Err(invalid("room_id", "required", "name the room asked for"));
    }
    let caller = identity::caller().ok_or_else(|| Error::unauthorized("sign in"))?;
    let mut timeline = Timeline::default();
    timeline.push("created", None);
    let allocation = Allocation {
        no: NUMBERS.next(&caller.org_id, &dates::today()[..4])?,
        kind: input.kind,
        room_id,
        area_m2: area("area_m2", input.area_m2)?,
        reason: required("reason", &input.reason)?,
        status: Status::Draft,
        approval_id: None,
        timeline,
    };
    Ok(Response::json(&allocations().insert(&allocation)?).with_status(201))
}

fn get(req: &Request) -> Result<Response> {
    let doc = allocations().fetch::<Allocation>(req.param("id")?)?;
    let approvals = approvals::for_subject(&doc.id)?;
    Ok(Response::json(
        &json!({ "allocation": doc, "approvals": approvals }),
    ))
}

fn form(doc: &Doc<Allocation>) -> serde_json::Value {
    let kind_zh = model::ALLOCATION_KIND.label(&doc.data.kind, "zh-CN");
    let kind_en = model::ALLOCATION_KIND.label(&doc.data.kind, "en");
    json!({
        "no": doc.data.no,
        "kind": doc.data.kind,
        "title": { "zh-CN": format!("办公用房{kind_zh}申请 {}", doc.data.no),
                   "en": format!("Office-room {kind_en} request {}", doc.data.no) },
        "summary": [
            { "label": { "zh-CN": "单据编号", "en": "Document no." }, "value": doc.data.no },
            { "label": { "zh-CN": "申请类型", "en": "Kind" },
              "value": { "zh-CN": kind_zh, "en": kind_en } },
            { "label": { "zh-CN": "申请面积", "en": "Area" }, "value": doc.data.area_m2,
              "format": "number", "unit": "m²" },
            { "label": { "zh-CN": "事由", "en": "Reason" }, "value": doc.data.reason },
        ],
    })
}

fn submit(req: &Request) -> Result<Response> {
    let doc = allocations().fetch::<Allocation>(req.param("id")?)?;
    authz::require_at("property.manage", &doc.org)?;
    let status = doc.data.status.submit()?;
    let title = format!("办公用房调剂申请 {}", doc.data.no);
    let approval = approvals::start(FLOW, &doc.id, &title, Some(&doc.org), &form(&doc))?;
    let mut data = doc.data.clone();
    data.status = status;
    data.approval_id = Some(approval.id);
    data.timeline.push("submitted", None);
    Ok(Response::json(&allocations().update(
        &doc.id,
        doc.revision,
        &data,
    )?))
}

/// The approval's outcome; a redelivery finds the status decided already.
pub fn on_approval(outcome: &Outcome) -> Result<()> {
    if outcome.flow != FLOW {
        return Ok(());
    }
    let Some(doc) = allocations().get::<Allocation>(&outcome.subject_id)? else {
        return Ok(());
    };
    let status = doc.data.status.decide(outcome.decision);
    if status == doc.data.status {
        return Ok(());
    }
    let mut data = doc.data.clone();
    data.status = status;
    data.timeline.push_as(
        &dates::today(),
        &outcome.actor,
        status.code(),
        outcome.comment.clone().map(serde_json::Value::String),
    );
    allocations().update(&doc.id, doc.revision, &data)?;
    Ok(())
}

/// `POST /allocations/{id}/handover`: the room's keeper confirms the
/// hand-over, and the room is assigned to the requesting unit. Checked at
/// the room's org: the requester cannot hand itself a room.
fn handover(req: &Request) -> Result<Response> {
    let doc = allocations().fetch::<Allocation>(req.param("id")?)?;
    let status = doc.data.status.execute()?;
    let mut data = doc.data.clone();
    data.status = status;
    data.timeline.push("executed", None);
    let mut writes = Vec::new();
    if let Some(room_id) = &doc.data.room_id {
        let room = rooms().fetch::<Room>(room_id)?;
        authz::require_at("property.manage", &room.org)?;
        let mut assigned = room.data.clone();
        assigned.assigned_unit = Some(doc.org.clone());
        writes.push(tianshan_sdk::storage::Write::update(
            "rooms", &room, &assigned,
        )?);
    } else {
        authz::require_at("property.manage", &doc.org)?;
    }
    writes.push(tianshan_sdk::storage::Write::update(
        "allocations",
        &doc,
        &data,
    )?);
    storage::transact(writes)?;
    Ok(Response::json(&allocations().fetch::<Allocation>(&doc.id)?))
}
