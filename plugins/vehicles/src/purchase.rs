//! Quotas (编制) and purchase control (控购): a request is checked against
//! the unit's headroom, the category's caps and the NEV rule, approved
//! through the kernel's approvals, and on approval the vehicle is
//! registered (awaiting plates) and `vehicles.purchased` makes its asset
//! card in `assets`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tianshan_sdk::approvals::{self, Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::document::{Numbering, Status, Timeline};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, Write, collection};

use crate::model::{
    CATEGORY, ENERGY_TYPE, PURCHASE_KIND, Rules, Vehicle, YearSoFar, check_purchase, headroom,
    is_nev,
};
use crate::register::vehicles;

const FLOW: &str = "purchase";
const NUMBERS: Numbering = Numbering::official("counters", "新公车购");
const RULES_ID: &str = "purchase-rules";

pub fn routes(router: Router) -> Router {
    router
        .get("/rules", get_rules)
        .requires("vehicles.view")
        .put("/rules", put_rules)
        .requires("vehicles.configure")
        .get("/quotas", list_quotas)
        .requires("vehicles.view")
        .put("/quotas/{category}", put_quota)
        .requires("vehicles.configure")
        .get("/purchases", list_purchases)
        .requires("vehicles.view")
        .post("/purchases", create_purchase)
        .requires("vehicles.manage")
        .get("/purchases/{id}", get_purchase)
        .requires("vehicles.view")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "公务用车购置审批 Official vehicle purchase").step(Step::any(
            "上级机关事务管理局审核 Parent administration review",
            "vehicles.approver",
            Level::Parent,
        )),
    )
}

/// The region's rules, seeded once at the install scope (the region) and
/// read by every unit below it.
pub fn seed_rules() -> Result<()> {
    let rules = collection("rules");
    if rules.get::<Value>(RULES_ID)?.is_none() {
        match rules.insert_with(Some(RULES_ID), None, &Rules::default()) {
            Ok(_) => {}
            Err(e) if e.code() == "conflict" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn rules() -> Result<Rules> {
    Ok(collection("rules")
        .get::<Rules>(RULES_ID)?
        .map(|d| d.data)
        .unwrap_or_default())
}

fn get_rules(_: &Request) -> Result<Response> {
    Ok(Response::json(&rules()?))
}

/// `PUT /rules`: the region edits its caps; the record is the region's, so
/// only a configurer at the region (where it lives) may change it.
fn put_rules(req: &Request) -> Result<Response> {
    let next: Rules = req.json()?;
    if !(0.0..=100.0).contains(&next.nev_target_pct) {
        return Err(
            Error::validation("nev_target_pct", "a percentage 0–100").with_code("percent_invalid")
        );
    }
    for (i, cap) in next.caps.iter().enumerate() {
        CATEGORY
            .check(&format!("caps.{i}.category"), &cap.category)
            .and_then(|_| {
                if cap.price_max < 0 || cap.displacement_max_l < 0.0 {
                    Err(Error::validation(format!("caps.{i}"), "caps are ≥ 0")
                        .with_code("amount_invalid"))
                } else {
                    Ok(())
                }
            })?;
    }
    let doc = collection("rules").fetch::<Rules>(RULES_ID)?;
    authz::require_at("vehicles.configure", &doc.org)?;
    Ok(Response::json(&collection("rules").update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Quota {
    category: String,
    quota: u64,
}

fn quota_of(org: &str, category: &str) -> Result<u64> {
    Ok(collection("quotas")
        .get::<Quota>(&format!("{org}.{category}"))?
        .map(|d| d.data.quota)
        .unwrap_or(0))
}

/// `GET /quotas`: each quota with what its unit holds and has requested.
fn list_quotas(req: &Request) -> Result<Response> {
    let page = list::Paging::of(req)?
        .apply(collection("quotas").find().sort("category"))
        .page::<Quota>()?;
    let mut rows = Vec::new();
    for q in &page.records {
        let held = held(&q.org, &q.data.category)?;
        let requested = requested(&q.org, &q.data.category)?;
        rows.push(json!({
            "id": q.id, "org": q.org, "category": q.data.category, "quota": q.data.quota,
            "held": held, "requested": requested,
            "headroom": headroom(q.data.quota, held, requested),
        }));
    }
    Ok(Response::json(
        &json!({ "records": rows, "next_cursor": page.next_cursor }),
    ))
}

#[derive(Deserialize)]
struct QuotaInput {
    org: String,
    quota: u64,
}

/// `PUT /quotas/{category}` with `{org, quota}`: set by a configurer at
/// (or above) that org, which must be an active org the caller reaches.
fn put_quota(req: &Request) -> Result<Response> {
    let category = req.param("category")?.to_string();
    CATEGORY.check("category", &category)?;
    let input: QuotaInput = req.json()?;
    let org = orgs::require_active("org", &input.org)?;
    authz::require_at("vehicles.configure", &org.id)?;
    let id = format!("{}.{category}", org.id);
    let quotas = collection("quotas");
    let data = Quota {
        category,
        quota: input.quota,
    };
    let doc = match quotas.get::<Quota>(&id)? {
        Some(doc) => quotas.update(&doc.id, doc.revision, &data)?,
        None => quotas.insert_with(Some(&id), Some(&org.id), &data)?,
    };
    Ok(Response::json(&doc))
}

/// Vehicles a unit holds in a category: every state but scrapped.
fn held(org: &str, category: &str) -> Result<u64> {
    vehicles()
        .find()
        .within(Some(org.to_string()))
        .eq("org", org)
        .eq("category", category)
        .ne("state", "scrapped")
        .count()
}

/// New (not replacement) requests in approval that would take a slot.
fn requested(org: &str, category: &str) -> Result<u64> {
    collection("purchases")
        .find()
        .eq("org", org)
        .eq("category", category)
        .eq("kind", "new")
        .eq("status", "submitted")
        .count()
}

/// This year's approved new and replaced vehicles of `org`.
pub fn year_so_far(org: &str, year: &str) -> Result<YearSoFar> {
    let approved = || {
        collection("purchases")
            .find()
            .eq("org", org)
            .eq("year", year)
            .one_of("status", ["approved", "executed"])
    };
    Ok(YearSoFar {
        total: approved().count()?,
        nev: approved().eq("nev", true).count()?,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Purchase {
    pub no: String,
    pub kind: String,
    pub category: String,
    pub energy_type: String,
    pub nev: bool,
    pub brand: String,
    pub model: String,
    pub price: i64,
    pub displacement_l: f64,
    pub seats: u32,
    pub replaces: String,
    pub reason: String,
    pub year: String,
    pub status: Status,
    pub approval_id: String,
    pub vehicle_id: String,
    pub timeline: Timeline,
}

fn list_purchases(req: &Request) -> Result<Response> {
    let find = list::filter_one_of(
        collection("purchases").find(),
        req,
        "status",
        &["submitted", "approved", "rejected", "withdrawn", "executed"],
    )?;
    let find = list::sorted(find, req, &["no"], "-no")?;
    list::respond(
        req,
        &find,
        "purchases",
        &[
            ("编号 No.", "/data/no"),
            ("类型 Kind", "/data/kind"),
            ("类别 Category", "/data/category"),
            ("能源 Energy", "/data/energy_type"),
            ("价格(分) Price fen", "/data/price"),
            ("状态 Status", "/data/status"),
        ],
    )
}

fn get_purchase(req: &Request) -> Result<Response> {
    let doc: Doc<Value> = collection("purchases").fetch(req.param("id")?)?;
    Ok(Response::json(&doc))
}

/// `POST /purchases`: checked, numbered and put into approval in one
/// transaction (no request is left without its approval).
fn create_purchase(req: &Request) -> Result<Response> {
    let mut body: serde_json::Map<String, Value> = req.json()?;
    let org = match body
        .remove("org")
        .and_then(|o| o.as_str().map(String::from))
    {
        Some(org) => orgs::require_active("org", &org)?.id,
        None => identity::caller()
            .map(|p| p.org_id)
            .ok_or_else(|| Error::forbidden("a purchase is someone's"))?,
    };
    authz::require_at("vehicles.manage", &org)?;
    for owned in [
        "no",
        "nev",
        "year",
        "status",
        "approval_id",
        "vehicle_id",
        "timeline",
    ] {
        body.remove(owned);
    }
    let mut p: Purchase = serde_json::from_value(Value::Object(body))
        .map_err(|e| Error::validation("body", e.to_string()).with_code("invalid_body"))?;
    PURCHASE_KIND.check("kind", &p.kind)?;
    CATEGORY.check("category", &p.category)?;
    ENERGY_TYPE.check("energy_type", &p.energy_type)?;
    if p.brand.trim().is_empty() {
        return Err(Error::validation("brand", "brand is required").with_code("brand_required"));
    }
    p.nev = is_nev(&p.energy_type);
    let today = dates::today();
    p.year = today[..4].to_string();
    if p.kind == "replacement" {
        // The vehicle replaced is the unit's own and not yet scrapped.
        let old = vehicles()
            .get::<Vehicle>(&p.replaces)?
            .filter(|d| d.org == org);
        if old.is_none_or(|d| d.data.state == "scrapped") {
            return Err(Error::validation("replaces", "not a vehicle of this unit")
                .with_code("replaced_vehicle_unknown"));
        }
    } else {
        let left = headroom(
            quota_of(&org, &p.category)?,
            held(&org, &p.category)?,
            requested(&org, &p.category)?,
        );
        if left <= 0 {
            return Err(Error::validation("category", "the unit's quota is used up")
                .with_code("quota_exceeded")
                .with_param("headroom", left));
        }
    }
    check_purchase(
        &rules()?,
        &p.category,
        p.price,
        p.displacement_l,
        &p.energy_type,
        year_so_far(&org, &p.year)?,
    )?;
    p.no = NUMBERS.next(&org, &p.year)?;
    p.status = Status::Draft.submit()?;
    p.timeline.push("submitted", None);
    let form = json!({
        "no": p.no,
        "title": { "zh-CN": format!("公务用车购置 {}", p.no), "en": format!("Vehicle purchase {}", p.no) },
        "summary": [
            { "label": { "zh-CN": "单据编号", "en": "Document no." }, "value": p.no },
            { "label": { "zh-CN": "车辆类别", "en": "Category" },
              "value": { "zh-CN": CATEGORY.label(&p.category, "zh-CN"), "en": CATEGORY.label(&p.category, "en") } },
            { "label": { "zh-CN": "能源类型", "en": "Energy type" },
              "value": { "zh-CN": ENERGY_TYPE.label(&p.energy_type, "zh-CN"), "en": ENERGY_TYPE.label(&p.energy_type, "en") } },
            { "label": { "zh-CN": "品牌型号", "en": "Make and model" }, "value": format!("{} {}", p.brand, p.model) },
            { "label": { "zh-CN": "价格", "en": "Price" }, "value": p.price, "format": "money_fen" },
            { "label": { "zh-CN": "排量(升)", "en": "Displacement (L)" }, "value": p.displacement_l, "format": "number" }
        ]
    });
    let (approval, docs) = approvals::start_with(
        FLOW,
        "",
        &format!("公务用车购置 Vehicle purchase {}", p.no),
        Some(&org),
        &form,
        vec![Write::insert_with("purchases", None, Some(&org), &p)?],
    )?;
    let doc = docs
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Error::internal("the purchase was not written"))?;
    let purchases = collection("purchases");
    let mut saved: Purchase =
        serde_json::from_value(doc.data.clone()).map_err(|e| Error::internal(e.to_string()))?;
    saved.approval_id = approval.id;
    let doc = purchases.update(&doc.id, doc.revision, &saved)?;
    Ok(Response::json(&doc).with_status(201))
}

/// The approval's outcome. Approved: the vehicle is registered (awaiting
/// plates) at the request's org and `vehicles.purchased` published once.
pub fn decided(outcome: &Outcome) -> Result<()> {
    if outcome.flow != FLOW {
        return Ok(());
    }
    let purchases = collection("purchases");
    let Some(doc) = purchases.get::<Purchase>(&outcome.subject_id)? else {
        return Ok(());
    };
    let status = doc.data.status.decide(outcome.decision);
    if status == doc.data.status {
        return Ok(()); // a redelivery, or returned to an earlier step
    }
    let mut p = doc.data.clone();
    p.status = status;
    p.timeline.push_as(
        &dates::today(),
        &outcome.actor,
        status.code(),
        Some(json!(outcome.comment)),
    );
    if outcome.decision != Decision::Approved {
        purchases.update(&doc.id, doc.revision, &p)?;
        return Ok(());
    }
    let vehicle = Vehicle {
        brand: p.brand.clone(),
        model: p.model.clone(),
        displacement_l: p.displacement_l,
        energy_type: p.energy_type.clone(),
        nev: p.nev,
        price: p.price,
        seats: p.seats,
        category: p.category.clone(),
        state: "ordered".into(),
        purchase_id: doc.id.clone(),
        registered_on: dates::today(),
        ..Vehicle::default()
    };
    // The vehicle's id follows from the request, so a redelivered outcome
    // cannot register it twice.
    let vehicle_id = format!("v-{}", doc.id);
    p.vehicle_id = vehicle_id.clone();
    tianshan_sdk::storage::transact(vec![
        Write::update("purchases", &doc, &p)?,
        Write::insert_with("vehicles", Some(&vehicle_id), Some(&doc.org), &vehicle)?,
    ])?;
    let name = format!("{} {}", p.brand, p.model).trim().to_string();
    messaging::Event::json(
        "vehicles.purchased",
        &json!({
            "org": doc.org,
            "name": name,
            // GB/T 14885: new-energy vehicles, else sedans.
            "category": if p.nev { "A020304" } else { "A020301" },
            "original_value": p.price,
            "acquired_on": dates::today(),
            "plate": "",
            "vin": "",
        }),
    )?
    .org(doc.org.clone())
    .key(vehicle_id.clone())
    .idempotency_key(format!("purchased:{vehicle_id}"))
    .publish()?;
    crate::indicators::refresh(&doc.org)?;
    Ok(())
}
