//! The public asset warehouse (公物仓): idle assets pooled by the
//! administration and handed on to the units that need them.
//!
//! Records and where they live (the kernel lets a caller write only in its
//! own subtree, and `read-below` collections are also read by the orgs
//! under the record's org):
//! - `warehouses` (read-below), physical (实体仓) or virtual (虚拟仓), at
//!   the owner administration's org;
//! - `warehouse_items` (read-below), the catalogue, at the warehouse's org,
//!   so every unit below sees it;
//! - `warehouse_orders`: intake (入仓) and outflows (出仓: reallocation 调剂,
//!   loan 借用, lease 出租, disposal 处置, donation 捐赠, withdrawal back to
//!   the owner), at the requesting unit's org or the warehouse's;
//! - `demands`: a unit's need (需求), at the unit's org.
//!
//! A unit cannot write at the administration's org above it, so its intake
//! offer is an order `requested` (the 待入仓 stage, card locked to it); the
//! keeper's inspection (验收) creates the item `in_stock`. Likewise a unit's
//! request for an item is `requested` until the keeper reserves the item.
//!
//! The card stays on its unit's books while in the warehouse, with
//! `use_status` `in_warehouse` and locked by the item, so nothing else
//! can move it; a reallocation moves it the way an approved transfer does
//! (the sender's card `transferred`, an `incoming` card at the receiver,
//! who confirms it with `POST /receipts`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tianshan_sdk::approvals::{Flow, Level, Step};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Collection, Doc, Find, Write, collection, transact};

use crate::cards::cards;
use crate::common::{self, activity, actor, body, lang, require, required_text, text_field};
use crate::dates;
use crate::export::{self, Table};
use crate::model::{Card, fen_to_yuan, yuan_to_fen};

pub const WAREHOUSE_KINDS: &[&str] = &["physical", "virtual"];
pub const ITEM_STATUSES: &[&str] = &["in_stock", "reserved", "on_loan", "refurbishing", "out"];
pub const ORDER_KINDS: &[&str] = &[
    "intake",
    "reallocation",
    "loan",
    "lease",
    "disposal",
    "donation",
    "withdrawal",
];
pub const ORDER_STATUSES: &[&str] = &[
    "requested",
    "reserved",
    "in_approval",
    "on_loan",
    "completed",
    "rejected",
    "cancelled",
];
/// 成色: the inspection's grade.
pub const CONDITIONS: &[&str] = &["new", "good", "fair", "poor"];
/// Where an intake comes from (入仓来源).
pub const SOURCES: &[&str] = &[
    "idle",
    "over_standard",
    "event",
    "temporary_body",
    "restructuring",
    "donated",
    "confiscated",
    "other",
];
/// Disposal methods a warehouse disposal may use (free transfer and
/// donation have their own kinds).
const DISPOSAL_METHODS: &[&str] = &["sale", "swap", "scrap", "write_off"];
const MAX_ITEMS_PER_ORDER: usize = 100;

/// Outflows that need the administration's approval.
pub fn needs_approval(kind: &str) -> bool {
    matches!(kind, "reallocation" | "disposal" | "donation")
}

/// The item's state machine: the status after `event`, or 409.
pub fn item_next(status: &str, event: &str) -> Result<&'static str> {
    let to = match (status, event) {
        ("in_stock", "reserve") => "reserved",
        ("reserved", "release") => "in_stock",
        ("reserved", "lend") => "on_loan",
        ("reserved", "out") => "out",
        ("on_loan", "return") => "in_stock",
        ("on_loan", "return_for_refurbishing") => "refurbishing",
        ("in_stock", "refurbish") => "refurbishing",
        ("refurbishing", "ready") => "in_stock",
        _ => {
            return Err(Error::new(
                409,
                "item_state",
                format!("an item that is {status} cannot {event}"),
            ));
        }
    };
    Ok(to)
}

/// The order's state machine by kind: the status after `action`, or 409.
pub fn order_next(kind: &str, status: &str, action: &str) -> Result<&'static str> {
    let approval = needs_approval(kind);
    let temporary = matches!(kind, "loan" | "lease");
    let to = match (status, action) {
        ("requested", "inspect") if kind == "intake" => Some("completed"),
        ("requested", "reject") => Some("rejected"),
        ("requested", "accept") if kind != "intake" => Some("reserved"),
        ("requested" | "reserved", "cancel") => Some("cancelled"),
        ("reserved", "submit") if approval => Some("in_approval"),
        ("in_approval", "approved") => Some("completed"),
        ("in_approval", "rejected") => Some("rejected"),
        ("in_approval", "withdrawn") => Some("cancelled"),
        ("reserved", "issue") if temporary => Some("on_loan"),
        ("reserved", "issue") if kind == "withdrawal" => Some("completed"),
        ("on_loan", "return") => Some("completed"),
        _ => None,
    };
    to.ok_or_else(|| {
        Error::new(
            409,
            "order_state",
            format!("a {kind} order that is {status} cannot {action}"),
        )
    })
}

/// The prefix a category code stands for: a 7-character GB/T 14885 code
/// loses its trailing `00` levels (`A020100` → `A0201`, `A020000` →
/// `A02`); a shorter prefix is taken as given. None if it is no code.
pub fn category_prefix(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    let mut chars = code.chars();
    let letter_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    if !letter_ok || code.len() > 7 || !chars.all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut prefix = code.as_str();
    if prefix.len() == 7 {
        while prefix.len() > 3 && prefix.ends_with("00") {
            prefix = &prefix[..prefix.len() - 2];
        }
    }
    Some(prefix.to_string())
}

/// Purchase money a reallocation saves: the item's value, but never more
/// than the demand's budget or the plan line's price it replaces.
pub fn saving_for(original_value: i64, cap: Option<i64>) -> i64 {
    match cap {
        Some(cap) if cap > 0 => original_value.min(cap),
        _ => original_value,
    }
    .max(0)
}

/// One month of the throughput report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MonthRow {
    pub items_in: u64,
    pub value_in: i64,
    pub items_out: BTreeMap<String, u64>,
    pub value_out: i64,
    pub redeployed: i64,
    pub saving: i64,
}

/// Folds orders into months: intakes by `in_on`, outflows by `out_on`.
pub fn throughput(orders: &[Value], from: &str, to: &str) -> BTreeMap<String, MonthRow> {
    let mut months: BTreeMap<String, MonthRow> = BTreeMap::new();
    for o in orders {
        let kind = o["kind"].as_str().unwrap_or_default();
        let items = o["items"].as_array().map_or(0, Vec::len) as u64;
        let value = o["total_value"].as_i64().unwrap_or(0);
        let date = if kind == "intake" {
            o["in_on"].as_str()
        } else {
            o["out_on"].as_str()
        };
        let Some(month) = date.and_then(|d| d.get(..7)) else {
            continue;
        };
        if month < from || month > to {
            continue;
        }
        let row = months.entry(month.to_string()).or_default();
        if kind == "intake" {
            row.items_in += items;
            row.value_in += value;
        } else {
            *row.items_out.entry(kind.to_string()).or_default() += items;
            row.value_out += value;
            if kind == "reallocation" {
                row.redeployed += value;
                row.saving += o["saving"].as_i64().unwrap_or(0);
            }
        }
    }
    months
}

fn warehouses() -> Collection {
    collection("warehouses")
}
fn items() -> Collection {
    collection("warehouse_items")
}
fn orders() -> Collection {
    collection("warehouse_orders")
}
fn demands() -> Collection {
    collection("demands")
}

fn flow_title(kind: &str) -> &'static str {
    match kind {
        "reallocation" => "公物仓调剂 Warehouse reallocation",
        "donation" => "公物仓捐赠 Warehouse donation",
        _ => "公物仓处置 Warehouse disposal",
    }
}

/// The warehouse's flows: its administration's head approves outflows;
/// disposals and donations at or above the region's threshold go on to
/// the region. Called from the install and upgrade hooks.
pub fn define_flows() -> Result<()> {
    let own = || {
        Step::any(
            "公物仓主管单位审批 Warehouse administration approval",
            "org-admin",
            Level::SelfOrg,
        )
    };
    for kind in ["reallocation", "disposal", "donation"] {
        approvals::define(&Flow::new(&format!("warehouse-{kind}"), flow_title(kind)).step(own()))?;
    }
    approvals::define(
        &Flow::new(
            "warehouse-disposal-region",
            "公物仓处置（大额）Warehouse disposal above the threshold",
        )
        .step(own())
        .step(Step::any(
            "自治区机关事务管理局审批 Regional administration approval",
            "org-admin",
            Level::Region,
        )),
    )?;
    Ok(())
}

pub fn routes(router: Router) -> Router {
    router
        .get("/warehouse/warehouses", list_warehouses)
        .requires("assets.view")
        .post("/warehouse/warehouses", create_warehouse)
        .get("/warehouse/warehouses/{id}", show_warehouse)
        .requires("assets.view")
        .put("/warehouse/warehouses/{id}", edit_warehouse)
        .post("/warehouse/intake", intake)
        .requires("assets.manage")
        .get("/warehouse/items", list_items)
        .requires("assets.view")
        .get("/warehouse/items/{id}", show_item)
        .requires("assets.view")
        .post("/warehouse/items/{id}/refurbish", refurbish)
        .post("/warehouse/items/{id}/ready", ready)
        .get("/warehouse/orders", list_orders)
        .requires("assets.view")
        .post("/warehouse/orders", create_order)
        .requires("assets.view")
        .get("/warehouse/orders/{id}", show_order)
        .requires("assets.view")
        .post("/warehouse/orders/{id}/inspect", inspect)
        .post("/warehouse/orders/{id}/accept", accept)
        .post("/warehouse/orders/{id}/submit", submit)
        .post("/warehouse/orders/{id}/issue", issue)
        .post("/warehouse/orders/{id}/return", return_items)
        .post("/warehouse/orders/{id}/reject", reject)
        .post("/warehouse/orders/{id}/cancel", cancel)
        .get("/warehouse/demands", list_demands)
        .requires("assets.view")
        .post("/warehouse/demands", create_demand)
        .requires("assets.manage")
        .get("/warehouse/demands/{id}", show_demand)
        .requires("assets.view")
        .post("/warehouse/demands/{id}/close", close_demand)
        .requires("assets.manage")
        .get("/warehouse/report", report)
        .requires("assets.view")
}

// ----- shared helpers --------------------------------------------------

fn update_write<T>(name: &str, doc: &Doc<T>, data: Value) -> Write {
    Write::Update {
        collection: name.into(),
        id: doc.id.clone(),
        expected_revision: doc.revision,
        data,
    }
}

fn card_write(card: &Doc<Card>, data: &Card) -> Result<Write> {
    Ok(update_write(
        "cards",
        card,
        serde_json::to_value(data).map_err(|e| Error::internal(e.to_string()))?,
    ))
}

fn push_history(data: &mut Value, action: &str, note: Value) {
    if !data["history"].is_array() {
        data["history"] = json!([]);
    }
    if let Some(h) = data["history"].as_array_mut() {
        h.push(json!({
            "on": dates::today(), "actor": actor(), "actor_name": common::actor_name(),
            "action": action, "note": note,
        }));
    }
}

fn require_keeper(org: &str) -> Result<()> {
    if authz::allowed_at("assets.warehouse", org) {
        Ok(())
    } else {
        Err(
            Error::forbidden("only the warehouse's keepers (assets.warehouse) do this")
                .with_code("keepers_only"),
        )
    }
}

/// Is `org` within the caller's reach? (Asking storage for a scope there
/// fails for an org out of reach or unknown.)
fn reachable(org: &str) -> Result<bool> {
    match orders()
        .find()
        .within(Some(org.to_string()))
        .limit(1)
        .count()
    {
        Ok(_) => Ok(true),
        Err(e) if e.status() == 403 => Ok(false),
        Err(e) => Err(e),
    }
}

fn yuan_cell(fen: i64) -> Value {
    json!(crate::model::fen_to_yuan_number(fen))
}

fn date_field(input: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match text_field(input, field) {
        Some(v) => {
            dates::parse_date(&v).ok_or_else(|| {
                Error::validation(field, format!("{field} must be YYYY-MM-DD"))
                    .with_code("date_invalid")
            })?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

fn one_of(
    input: &Map<String, Value>,
    field: &str,
    allowed: &[&str],
    default: &str,
) -> Result<String> {
    let v = text_field(input, field).unwrap_or_else(|| default.to_string());
    if v.is_empty() || !allowed.contains(&v.as_str()) {
        return Err(
            Error::validation(field, format!("{field} is one of {}", allowed.join(", ")))
                .with_code("not_in_vocabulary"),
        );
    }
    Ok(v)
}

fn new_number(series: &str, prefix: &str, org: &str) -> Result<(String, String)> {
    let year = dates::today()[..4].to_string();
    let seq = common::reserve_numbers(&format!("{series}{year}"), org, 1)?;
    let no = common::number(prefix, &year, seq);
    let id = format!("{no}.{org}").to_ascii_lowercase();
    Ok((no, id))
}

// ----- warehouses ------------------------------------------------------

fn list_warehouses(req: &Request) -> Result<Response> {
    let mut find = warehouses().find();
    if let Some(kind) = req.query_param("kind").filter(|k| !k.is_empty()) {
        find = find.eq("kind", kind);
    }
    let find = find.sort("name");
    tianshan_sdk::list::respond(
        req,
        &find,
        "warehouses",
        &[
            ("name", "/data/name"),
            ("kind", "/data/kind"),
            ("org", "/org"),
            ("address", "/data/address"),
            ("keeper", "/data/keeper"),
            ("phone", "/data/phone"),
            ("active", "/data/active"),
        ],
    )
}

fn warehouse_fields(input: &Map<String, Value>, data: &mut Value, creating: bool) -> Result<()> {
    if creating || input.contains_key("name") {
        let name = required_text(input, "name")?;
        if name.chars().count() > 100 {
            return Err(Error::validation("name", "at most 100 characters")
                .with_code("too_long")
                .with_param("max", 100));
        }
        data["name"] = json!(name);
    }
    if creating {
        data["kind"] = json!(one_of(input, "kind", WAREHOUSE_KINDS, "")?);
    } else if input.contains_key("kind") {
        return Err(
            Error::validation("kind", "a warehouse stays physical or virtual")
                .with_code("warehouse_kind_fixed"),
        );
    }
    for field in ["address", "keeper", "phone", "note"] {
        if input.contains_key(field) {
            let v = text_field(input, field);
            if v.as_ref().is_some_and(|v| v.chars().count() > 200) {
                return Err(Error::validation(field, "at most 200 characters")
                    .with_code("too_long")
                    .with_param("max", 200));
            }
            data[field] = json!(v);
        }
    }
    if let Some(zones) = input.get("zones") {
        let list: Vec<String> = zones
            .as_array()
            .ok_or_else(|| {
                Error::validation("zones", "zones is a list of names").with_code("zones_invalid")
            })?
            .iter()
            .map(|z| z.as_str().map(str::trim).unwrap_or_default().to_string())
            .collect();
        if list.iter().any(|z| z.is_empty() || z.chars().count() > 50) || list.len() > 200 {
            return Err(
                Error::validation("zones", "at most 200 zone names of 1-50 characters")
                    .with_code("zones_invalid"),
            );
        }
        data["zones"] = json!(list);
    }
    if let Some(active) = input.get("active") {
        data["active"] = json!(active.as_bool().ok_or_else(|| {
            Error::validation("active", "true or false").with_code("boolean_invalid")
        })?);
    }
    Ok(())
}

/// `POST /warehouse/warehouses` `{name, kind, address?, zones?, keeper?,
/// phone?, note?, org?}`.
fn create_warehouse(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let org = text_field(&input, "org")
        .or_else(common::acting_org)
        .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?;
    require_keeper(&org)?;
    let mut data = json!({
        "zones": [], "active": true, "created_by": actor(), "created_on": dates::today(),
    });
    warehouse_fields(&input, &mut data, true)?;
    let doc = warehouses().insert_with(None, Some(&org), &data)?;
    Ok(Response::json(&doc).with_status(201))
}

fn show_warehouse(req: &Request) -> Result<Response> {
    let wh = warehouses().fetch::<Value>(req.param("id")?)?;
    let stock = items().aggregate(
        &items().find().eq("warehouse_id", wh.id.as_str()),
        &["status"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
        ],
    )?;
    let stock: Vec<Value> = stock
        .into_iter()
        .map(|g| {
            json!({
                "status": g.key.first(), "count": g.values.first().copied().flatten().unwrap_or(0.0) as u64,
                "original_value": g.values.get(1).copied().flatten().unwrap_or(0.0).round() as i64,
            })
        })
        .collect();
    Ok(Response::json(&json!({ "warehouse": wh, "stock": stock })))
}

fn edit_warehouse(req: &Request) -> Result<Response> {
    let wh = warehouses().fetch::<Value>(req.param("id")?)?;
    require_keeper(&wh.org)?;
    let input = body(req)?;
    let mut data = wh.data.clone();
    warehouse_fields(&input, &mut data, false)?;
    Ok(Response::json(&warehouses().update(
        &wh.id,
        wh.revision,
        &data,
    )?))
}

// ----- intake ----------------------------------------------------------

fn item_summary(card: &Doc<Card>) -> Value {
    let c = &card.data;
    json!({
        "card_id": card.id, "card_org": card.org, "asset_no": c.asset_no, "name": c.name,
        "category": c.category, "original_value": c.original_value, "net_value": c.net_value,
        "quantity": c.quantity,
    })
}

/// `POST /warehouse/intake` `{card_id, warehouse_id, condition, source?,
/// note?, available_from?}`: a unit offers a booked idle card; the order
/// waits for the keeper's inspection and the card is locked to it.
fn intake(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let card_id = required_text(&input, "card_id")?;
    let wh = warehouses()
        .fetch::<Value>(&required_text(&input, "warehouse_id")?)
        .map_err(|e| e.with_field("warehouse_id"))?;
    if wh.data["active"] == false {
        return Err(
            Error::validation("warehouse_id", "the warehouse takes no intake now")
                .with_code("intake_closed"),
        );
    }
    let condition = one_of(&input, "condition", CONDITIONS, "")?;
    let source = one_of(&input, "source", SOURCES, "idle")?;
    let available_from = date_field(&input, "available_from")?;
    let card = cards()
        .fetch::<Card>(&card_id)
        .map_err(|e| e.with_field("card_id"))?;
    if !card.data.is_booked() {
        return Err(Error::validation(
            "card_id",
            format!(
                "card {} is {}; only booked cards go to the warehouse",
                card.data.asset_no, card.data.state
            ),
        )
        .with_code("card_state")
        .with_param("asset_no", card.data.asset_no.as_str()));
    }
    if card.data.use_status != "idle" {
        return Err(Error::validation(
            "card_id",
            format!(
                "card {} is {}; set it idle (change document) before offering it",
                card.data.asset_no, card.data.use_status
            ),
        )
        .with_code("card_not_idle")
        .with_param("asset_no", card.data.asset_no.as_str()));
    }
    card.data.ensure_free(&card.id)?;
    // The keeper must reach the card to take it in: it must sit under the
    // warehouse's org. (A warehouse above the caller covers all it reaches.)
    match cards()
        .find()
        .within(Some(wh.org.clone()))
        .eq("id", card.id.as_str())
        .count()
    {
        Ok(1) => {}
        Ok(_) => {
            return Err(Error::validation(
                "warehouse_id",
                "the card's unit is not under this warehouse's administration",
            )
            .with_code("warehouse_out_of_reach"));
        }
        Err(e) if e.status() == 403 => {}
        Err(e) => return Err(e),
    }
    let (no, id) = new_number("whorder", "RK", &card.org)?;
    let data = json!({
        "kind": "intake", "no": no, "status": "requested",
        "warehouse_id": wh.id, "warehouse_org": wh.org, "warehouse_name": wh.data["name"],
        "items": [item_summary(&card)], "card_ids": [card.id],
        "total_value": card.data.original_value,
        "condition": condition, "source": source, "available_from": available_from,
        "note": text_field(&input, "note"),
        "created_by": actor(), "created_on": dates::today(),
        "history": [{ "on": dates::today(), "actor": actor(), "action": "requested" }],
    });
    let mut locked = card.data.clone();
    locked.locked_by = Some(id.clone());
    let writes = vec![
        Write::Insert {
            collection: "warehouse_orders".into(),
            id: Some(id.clone()),
            org: Some(card.org.clone()),
            data,
        },
        card_write(&card, &locked)?,
        activity(
            &card.id,
            &card.org,
            "warehouse_intake_requested",
            Some(&id),
            json!({ "no": no, "warehouse": wh.data["name"] }),
        ),
    ];
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()).with_status(201))
}

/// The writes that put `card` into `wh` as a new item (the inspection's
/// effect; the demo seed uses it too). Returns the item id with them.
#[allow(clippy::too_many_arguments)]
fn stock_in(
    wh: &Doc<Value>,
    card: &Doc<Card>,
    order_id: &str,
    condition: &str,
    source: &str,
    bin: Option<String>,
    refurbish: bool,
    available_from: Option<String>,
) -> Result<(String, Vec<Write>)> {
    let (no, item_id) = new_number("whitem", "GWC", &wh.org)?;
    let c = &card.data;
    let physical = wh.data["kind"] == "physical";
    let status = if refurbish {
        "refurbishing"
    } else {
        "in_stock"
    };
    let item = json!({
        "no": no, "status": status, "out_type": null,
        "warehouse_id": wh.id, "warehouse_name": wh.data["name"], "warehouse_kind": wh.data["kind"],
        "bin": bin, "card_id": card.id, "card_org": card.org,
        "asset_no": c.asset_no, "name": c.name, "category": c.category,
        "category_top": c.category_top, "spec": c.spec, "brand": c.brand,
        "quantity": c.quantity, "measure_unit": c.measure_unit,
        "original_value": c.original_value, "net_value": c.net_value,
        "acquired_on": c.acquired_on, "photos": c.photos,
        "condition": condition, "source": source,
        "available_from": available_from.unwrap_or_else(dates::today),
        "intake_order_id": order_id, "order_id": null, "due_on": null,
        "location_before": c.location, "custodian_before": c.custodian,
        "in_on": dates::today(),
        "history": [{ "on": dates::today(), "actor": actor(), "action": "in", "note": { "order": order_id } }],
    });
    let mut moved = c.clone();
    moved.use_status = "in_warehouse".into();
    moved.locked_by = Some(item_id.clone());
    if physical {
        let place = wh.data["address"]
            .as_str()
            .or(wh.data["name"].as_str())
            .unwrap_or_default();
        moved.location = match &bin {
            Some(b) => format!("{place} {b}"),
            None => place.to_string(),
        };
        moved.custodian = String::new();
    }
    let writes = vec![
        Write::Insert {
            collection: "warehouse_items".into(),
            id: Some(item_id.clone()),
            org: Some(wh.org.clone()),
            data: item,
        },
        card_write(card, &moved)?,
        activity(
            &card.id,
            &card.org,
            "warehouse_in",
            Some(order_id),
            json!({ "item": no, "warehouse": wh.data["name"], "condition": condition }),
        ),
    ];
    Ok((item_id, writes))
}

/// `POST /warehouse/orders/{id}/inspect` `{accept, condition?, bin?,
/// refurbish?, note?}`: the keeper's inspection of an intake. Accepted,
/// the card becomes an item `in_stock` (or `refurbishing`); refused, the
/// card is free again.
fn inspect(req: &Request) -> Result<Response> {
    let order = orders().fetch::<Value>(req.param("id")?)?;
    let wh_org = order.data["warehouse_org"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    require_keeper(&wh_org)?;
    let kind = order.data["kind"].as_str().unwrap_or_default();
    let status = order.data["status"].as_str().unwrap_or_default();
    let input = body(req)?;
    let accept = input
        .get("accept")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            Error::validation("accept", "accept is true or false").with_code("boolean_invalid")
        })?;
    let to = order_next(kind, status, if accept { "inspect" } else { "reject" })?;
    if kind != "intake" {
        return Err(Error::new(
            409,
            "not_an_intake",
            "only intakes are inspected",
        ));
    }
    let card_id = order.data["card_ids"][0].as_str().unwrap_or_default();
    let card = cards().fetch::<Card>(card_id)?;
    if card.data.locked_by.as_deref() != Some(order.id.as_str()) {
        return Err(Error::new(
            409,
            "card_moved",
            "the card is no longer held by this intake",
        ));
    }
    let note = text_field(&input, "note");
    let mut data = order.data.clone();
    data["status"] = json!(to);
    data["inspected_by"] = json!(actor());
    data["inspected_on"] = json!(dates::today());
    data["inspection_note"] = json!(note);
    let mut writes = Vec::new();
    let mut item_id = None;
    if accept {
        let condition = one_of(
            &input,
            "condition",
            CONDITIONS,
            order.data["condition"].as_str().unwrap_or(""),
        )?;
        let bin = text_field(&input, "bin");
        let wh =
            warehouses().fetch::<Value>(order.data["warehouse_id"].as_str().unwrap_or_default())?;
        if let Some(b) = &bin
            && let Some(zones) = wh.data["zones"].as_array()
            && !zones.is_empty()
            && !zones.iter().any(|z| z == b.as_str())
        {
            return Err(Error::validation("bin", "not one of the warehouse's zones")
                .with_code("bin_unknown"));
        }
        let refurbish = input.get("refurbish").and_then(Value::as_bool) == Some(true);
        let (id, item_writes) = stock_in(
            &wh,
            &card,
            &order.id,
            &condition,
            order.data["source"].as_str().unwrap_or("idle"),
            bin,
            refurbish,
            order.data["available_from"].as_str().map(str::to_string),
        )?;
        data["condition"] = json!(condition);
        data["item_ids"] = json!([id]);
        data["in_on"] = json!(dates::today());
        push_history(&mut data, "accepted", json!({ "item": id }));
        writes.push(update_write("warehouse_orders", &order, data));
        writes.extend(item_writes);
        item_id = Some(id);
    } else {
        if note.is_none() {
            return Err(Error::validation("note", "say why the intake is refused")
                .with_code("reason_required"));
        }
        push_history(&mut data, "rejected", json!(note));
        writes.push(update_write("warehouse_orders", &order, data));
        let mut free = card.data.clone();
        free.locked_by = None;
        writes.push(card_write(&card, &free)?);
        writes.push(activity(
            &card.id,
            &card.org,
            "warehouse_intake_rejected",
            Some(&order.id),
            json!({ "note": note }),
        ));
    }
    let written = transact(writes)?;
    if let Some(item) = &item_id {
        common::publish(
            "warehouse.intake",
            item,
            &wh_org,
            &json!({
                "item_id": item, "order_id": order.id, "card_id": card.id,
                "asset_no": card.data.asset_no, "category": card.data.category,
                "original_value": card.data.original_value, "from_org": card.org,
                "warehouse_id": order.data["warehouse_id"],
            }),
            &format!("{}:intake", order.id),
        )?;
    }
    Ok(Response::json(&written.into_iter().next().flatten()))
}

// ----- the catalogue ---------------------------------------------------

fn items_find(req: &Request) -> Result<Find> {
    let mut find = items().find();
    if let Some(category) = req.query_param("category").filter(|c| !c.is_empty()) {
        let prefix = category_prefix(&category).ok_or_else(|| {
            Error::validation("category", "a GB/T 14885 code or prefix")
                .with_code("category_unknown")
        })?;
        find = find.prefix("category", &prefix);
    }
    find = tianshan_sdk::list::filter_one_of(find, req, "status", ITEM_STATUSES)?;
    for field in ["warehouse_id", "condition", "card_org"] {
        if let Some(v) = req.query_param(field).filter(|v| !v.is_empty()) {
            find = find.eq(field, v);
        }
    }
    if let Some(q) = req
        .query_param("q")
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
    {
        if q.chars().count() > 100 {
            return Err(Error::validation("q", "at most 100 characters")
                .with_code("too_long")
                .with_param("max", 100));
        }
        let number = q.chars().all(|c| c.is_ascii_alphanumeric());
        find = if number && q.to_ascii_uppercase().starts_with("GWC") {
            find.prefix("no", &q.to_ascii_uppercase())
        } else if number && q.chars().any(|c| c.is_ascii_digit()) {
            find.prefix("asset_no", &q.to_ascii_uppercase())
        } else {
            find.contains("name", &q)
        };
    }
    Ok(find)
}

/// `GET /warehouse/items`: the catalogue every unit under the warehouse
/// sees; `?category= &status= &warehouse_id= &condition= &q=`, paging,
/// `?format=csv|xlsx`.
fn list_items(req: &Request) -> Result<Response> {
    let find = items_find(req)?.sort_desc("no");
    let en = lang(req).starts_with("en");
    let column = |zh: &'static str, en_name: &'static str, pointer: &'static str| {
        (if en { en_name } else { zh }, pointer)
    };
    tianshan_sdk::list::respond(
        req,
        &find,
        "warehouse-items",
        &[
            column("入仓编号", "Item no.", "/data/no"),
            column("资产编号", "Asset no.", "/data/asset_no"),
            column("资产名称", "Name", "/data/name"),
            column("分类代码", "Category", "/data/category"),
            column("数量", "Quantity", "/data/quantity"),
            column("公物仓", "Warehouse", "/data/warehouse_name"),
            column("库位", "Bin", "/data/bin"),
            column("成色", "Condition", "/data/condition"),
            column("状态", "Status", "/data/status"),
            column("原权属单位", "Owner of record", "/data/card_org"),
            column("原值", "Original value", "¥/data/original_value"),
            column("净值", "Net value", "¥/data/net_value"),
            column("入仓日期", "In on", "/data/in_on"),
            column("归还期限", "Due on", "/data/due_on"),
        ],
    )
}

fn show_item(req: &Request) -> Result<Response> {
    let item = items().fetch::<Value>(req.param("id")?)?;
    // Orders the caller reaches (a unit sees its own).
    let related = orders()
        .find()
        .eq("item_id", item.id.as_str())
        .limit(100)
        .page::<Value>()?;
    let intake = item.data["intake_order_id"]
        .as_str()
        .map(|id| orders().get::<Value>(id))
        .transpose()?
        .flatten();
    Ok(Response::json(
        &json!({ "item": item, "intake": intake, "orders": related.records }),
    ))
}

fn item_step(req: &Request, event: &str) -> Result<Response> {
    let item = items().fetch::<Value>(req.param("id")?)?;
    require_keeper(&item.org)?;
    let input = body(req).unwrap_or_default();
    let to = item_next(item.data["status"].as_str().unwrap_or_default(), event)?;
    let mut data = item.data.clone();
    data["status"] = json!(to);
    if event == "ready"
        && let Some(c) = text_field(&input, "condition")
    {
        if !CONDITIONS.contains(&c.as_str()) {
            return Err(Error::validation(
                "condition",
                format!("condition is one of {}", CONDITIONS.join(", ")),
            )
            .with_code("not_in_vocabulary"));
        }
        data["condition"] = json!(c);
    }
    push_history(&mut data, event, json!(text_field(&input, "note")));
    Ok(Response::json(&items().update(
        &item.id,
        item.revision,
        &data,
    )?))
}

/// `POST /warehouse/items/{id}/refurbish` `{note?}`: 整备 (in stock → refurbishing).
fn refurbish(req: &Request) -> Result<Response> {
    item_step(req, "refurbish")
}

/// `POST /warehouse/items/{id}/ready` `{condition?, note?}`: back in stock.
fn ready(req: &Request) -> Result<Response> {
    item_step(req, "ready")
}

/// In-stock items whose category falls under `category` (a code or its
/// prefix), in the warehouses the caller sees.
pub fn available_count(category: &str) -> Result<u64> {
    let Some(prefix) = category_prefix(category) else {
        return Ok(0);
    };
    items()
        .find()
        .eq("status", "in_stock")
        .prefix("category", &prefix)
        .count()
}

/// Up to `limit` of those items, oldest in first, for a plan's check.
pub fn available_items(category: &str, limit: u32) -> Result<Vec<Value>> {
    let Some(prefix) = category_prefix(category) else {
        return Ok(Vec::new());
    };
    let page = items()
        .find()
        .eq("status", "in_stock")
        .prefix("category", &prefix)
        .sort("available_from")
        .limit(limit.clamp(1, 200))
        .page::<Value>()?;
    Ok(page
        .records
        .into_iter()
        .map(|d| {
            let i = &d.data;
            json!({
                "id": d.id, "org": d.org, "no": i["no"], "name": i["name"],
                "category": i["category"], "quantity": i["quantity"],
                "condition": i["condition"], "warehouse_id": i["warehouse_id"],
                "warehouse_name": i["warehouse_name"], "original_value": i["original_value"],
                "net_value": i["net_value"], "available_from": i["available_from"],
            })
        })
        .collect())
}

// ----- outflow orders --------------------------------------------------

fn list_orders(req: &Request) -> Result<Response> {
    let mut find = orders().find();
    find = tianshan_sdk::list::filter_one_of(find, req, "kind", ORDER_KINDS)?;
    find = tianshan_sdk::list::filter_one_of(find, req, "status", ORDER_STATUSES)?;
    for field in ["item_id", "warehouse_id", "demand_id"] {
        if let Some(v) = req.query_param(field).filter(|v| !v.is_empty()) {
            find = find.eq(field, v);
        }
    }
    if req.query_param("overdue").as_deref() == Some("true") {
        find = find.eq("overdue", true);
    }
    let find = find
        .within(req.query_param("org").filter(|o| !o.is_empty()))
        .sort_desc("no");
    tianshan_sdk::list::respond(
        req,
        &find,
        "warehouse-orders",
        &[
            ("no", "/data/no"),
            ("kind", "/data/kind"),
            ("status", "/data/status"),
            ("org", "/org"),
            ("to_org", "/data/to_org"),
            ("due_on", "/data/due_on"),
            ("warehouse", "/data/warehouse_name"),
            ("total_value_fen", "/data/total_value"),
            ("saving_fen", "/data/saving"),
            ("reason", "/data/reason"),
        ],
    )
}

fn show_order(req: &Request) -> Result<Response> {
    let order = orders().fetch::<Value>(req.param("id")?)?;
    let approvals = approvals::for_subject(&order.id).unwrap_or_default();
    Ok(Response::json(
        &json!({ "order": order, "approvals": approvals }),
    ))
}

fn item_ids(input: &Map<String, Value>) -> Result<Vec<String>> {
    let ids: Vec<String> = input
        .get("item_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(
            Error::validation("item_ids", "name at least one item").with_code("none_selected")
        );
    }
    if ids.len() > MAX_ITEMS_PER_ORDER {
        return Err(Error::validation(
            "item_ids",
            format!("at most {MAX_ITEMS_PER_ORDER} items per order"),
        )
        .with_code("too_many")
        .with_param("max", MAX_ITEMS_PER_ORDER));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != ids.len() {
        return Err(
            Error::validation("item_ids", "an item is named twice").with_code("named_twice")
        );
    }
    Ok(ids)
}

/// The cap a demand or plan line puts on the saving, checked against the
/// items' categories.
fn saving_cap(
    input: &Map<String, Value>,
    to_org: Option<&str>,
    list: &[Doc<Value>],
) -> Result<(Option<Doc<Value>>, Option<i64>, Value)> {
    let fits = |prefix: &str| {
        list.iter().all(|i| {
            i.data["category"]
                .as_str()
                .is_some_and(|c| c.starts_with(prefix))
        })
    };
    if let Some(demand_id) = text_field(input, "demand_id") {
        let demand = demands()
            .fetch::<Value>(&demand_id)
            .map_err(|e| e.with_field("demand_id"))?;
        if demand.data["status"] != "open" {
            return Err(
                Error::validation("demand_id", "the demand is not open").with_code("not_open")
            );
        }
        if to_org.is_some_and(|o| o != demand.org) {
            return Err(Error::validation(
                "to_org",
                "the items go to the unit that posted the demand",
            )
            .with_code("demand_unit"));
        }
        let prefix = demand.data["category_prefix"].as_str().unwrap_or_default();
        if !fits(prefix) {
            return Err(
                Error::validation("item_ids", "an item is not of the demand's category")
                    .with_code("category_mismatch"),
            );
        }
        let cap = demand.data["unit_budget"].as_i64();
        let link = json!({ "demand_id": demand.id });
        return Ok((Some(demand), cap, link));
    }
    if let Some(plan_id) = text_field(input, "plan_id") {
        let plan = collection("documents")
            .fetch::<Value>(&plan_id)
            .map_err(|e| e.with_field("plan_id"))?;
        if plan.data["kind"] != "plan" {
            return Err(
                Error::validation("plan_id", "not a configuration plan").with_code("plan_unknown")
            );
        }
        let index = input
            .get("plan_line")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                Error::validation("plan_line", "the plan line's index is required")
                    .with_code("required")
            })?;
        let line = plan.data["payload"]["lines"]
            .get(index as usize)
            .ok_or_else(|| {
                Error::validation("plan_line", "the plan has no such line")
                    .with_code("plan_line_unknown")
            })?;
        let prefix =
            category_prefix(line["category"].as_str().unwrap_or_default()).unwrap_or_default();
        if prefix.is_empty() || !fits(&prefix) {
            return Err(Error::validation(
                "item_ids",
                "an item is not of the plan line's category",
            )
            .with_code("category_mismatch"));
        }
        let link = json!({ "plan_id": plan.id, "plan_no": plan.data["no"], "plan_line": index });
        return Ok((None, line["unit_price"].as_i64(), link));
    }
    Ok((None, None, Value::Null))
}

/// `POST /warehouse/orders` `{kind, item_ids, to_org?, demand_id?,
/// plan_id? + plan_line?, due_on?, counterparty?, income_yuan?, method?,
/// reason, note?, submit?}`.
///
/// A unit (assets.manage) asks for a reallocation or loan to itself, or
/// the withdrawal of its own items: the order is `requested`. A keeper
/// (assets.warehouse at the warehouse) may open any kind: the items are
/// reserved at once, and with `submit: true` an approval starts.
fn create_order(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let kind = required_text(&input, "kind")?;
    if kind == "intake" || !ORDER_KINDS.contains(&kind.as_str()) {
        return Err(Error::validation(
            "kind",
            "kind is one of reallocation, loan, lease, disposal, donation, withdrawal (intake: POST /warehouse/intake)",
        ).with_code("not_in_vocabulary"));
    }
    let ids = item_ids(&input)?;
    let mut list = Vec::with_capacity(ids.len());
    for id in &ids {
        let item = items()
            .fetch::<Value>(id)
            .map_err(|e| e.with_field("item_ids"))?;
        if item.data["status"] != "in_stock" {
            return Err(Error::new(
                409,
                "item_unavailable",
                format!("item {} is {}", item.data["no"], item.data["status"]),
            )
            .with_field("item_ids"));
        }
        list.push(item);
    }
    let wh_id = list[0].data["warehouse_id"].clone();
    if list.iter().any(|i| i.data["warehouse_id"] != wh_id) {
        return Err(
            Error::validation("item_ids", "one order takes items of one warehouse")
                .with_code("one_warehouse_per_order"),
        );
    }
    let wh_org = list[0].org.clone();
    let keeper = authz::allowed_at("assets.warehouse", &wh_org);
    let acting = common::acting_org().unwrap_or_default();
    let mut to_org = text_field(&input, "to_org");
    match kind.as_str() {
        "reallocation" | "loan" => {
            if !keeper {
                require("assets.manage")?;
                if to_org.as_deref().is_some_and(|o| o != acting) {
                    return Err(Error::validation(
                        "to_org",
                        "a unit asks for itself; the keeper allocates to others",
                    )
                    .with_code("self_request"));
                }
                to_org = Some(acting.clone());
            }
            if kind == "loan" && to_org.is_none() && text_field(&input, "counterparty").is_none() {
                return Err(Error::validation(
                    "to_org",
                    "say who borrows: to_org (a unit) or counterparty",
                )
                .with_code("borrower_required"));
            }
            if kind == "reallocation" && to_org.is_none() {
                return Err(
                    Error::validation("to_org", "the receiving unit is required")
                        .with_code("required"),
                );
            }
            if let Some(org) = &to_org {
                to_org = Some(orgs::require_active("to_org", org)?.id);
            }
        }
        "withdrawal" => {
            if !keeper {
                require("assets.manage")?;
                if list.iter().any(|i| {
                    !reachable(i.data["card_org"].as_str().unwrap_or_default()).unwrap_or(false)
                }) {
                    return Err(
                        Error::forbidden("a unit withdraws only the items it put in")
                            .with_code("withdraw_own_only"),
                    );
                }
            }
            to_org = None;
        }
        _ => {
            require_keeper(&wh_org)?;
            to_org = None;
        }
    }
    if let Some(org) = &to_org
        && !reachable(org)?
    {
        return Err(
            Error::validation("to_org", format!("{org} is not a unit you reach"))
                .with_code("org_out_of_reach"),
        );
    }
    if kind == "reallocation"
        && list
            .iter()
            .any(|i| Some(i.data["card_org"].as_str().unwrap_or_default()) == to_org.as_deref())
    {
        return Err(Error::validation(
            "to_org",
            "the unit owns the item already; withdraw it instead",
        )
        .with_code("already_owner"));
    }
    let mut terms = Map::new();
    match kind.as_str() {
        "loan" | "lease" => {
            let due_on = date_field(&input, "due_on")?.ok_or_else(|| {
                Error::validation("due_on", "the return date is required").with_code("required")
            })?;
            if due_on < dates::today() {
                return Err(Error::validation("due_on", "the return date has passed")
                    .with_code("due_passed"));
            }
            terms.insert("due_on".into(), json!(due_on));
            let counterparty = text_field(&input, "counterparty");
            if kind == "lease" && counterparty.is_none() {
                return Err(Error::validation("counterparty", "the lessee is required")
                    .with_code("required"));
            }
            terms.insert("counterparty".into(), json!(counterparty));
            if let Some(v) = input.get("income_yuan") {
                terms.insert(
                    "income".into(),
                    json!(yuan_to_fen(v).ok_or_else(|| {
                        Error::validation("income_yuan", "an amount in yuan")
                            .with_code("amount_invalid")
                    })?),
                );
            }
        }
        "disposal" => {
            terms.insert(
                "method".into(),
                json!(one_of(&input, "method", DISPOSAL_METHODS, "")?),
            );
            terms.insert("appraisal".into(), json!(text_field(&input, "appraisal")));
        }
        "donation" => {
            terms.insert(
                "counterparty".into(),
                json!(required_text(&input, "counterparty")?),
            );
        }
        _ => {}
    }
    let reason = required_text(&input, "reason")?;
    let (demand, cap, link) = if kind == "reallocation" || kind == "loan" {
        saving_cap(&input, to_org.as_deref(), &list)?
    } else {
        (None, None, Value::Null)
    };
    let order_org = match (&to_org, keeper) {
        (Some(org), _) => org.clone(),
        (None, true) => wh_org.clone(),
        (None, false) => acting.clone(),
    };
    let (no, id) = new_number("whorder", "CK", &order_org)?;
    let total: i64 = list
        .iter()
        .map(|i| i.data["original_value"].as_i64().unwrap_or(0))
        .sum();
    let saving: i64 = if kind == "reallocation" && !link.is_null() {
        list.iter()
            .map(|i| saving_for(i.data["original_value"].as_i64().unwrap_or(0), cap))
            .sum()
    } else {
        0
    };
    let status = if keeper { "reserved" } else { "requested" };
    let mut data = json!({
        "kind": kind, "no": no, "status": status,
        "warehouse_id": wh_id, "warehouse_org": wh_org,
        "warehouse_name": list[0].data["warehouse_name"],
        "item_ids": ids, "item_id": ids[0],
        "items": list.iter().map(|i| json!({
            "item_id": i.id, "no": i.data["no"], "card_id": i.data["card_id"],
            "card_org": i.data["card_org"], "asset_no": i.data["asset_no"], "name": i.data["name"],
            "category": i.data["category"], "original_value": i.data["original_value"],
            "net_value": i.data["net_value"],
        })).collect::<Vec<_>>(),
        "to_org": to_org, "total_value": total, "saving": saving, "link": link,
        "demand_id": demand.as_ref().map(|d| d.id.clone()),
        "reason": reason, "note": text_field(&input, "note"),
        "created_by": actor(), "created_on": dates::today(),
        "history": [{ "on": dates::today(), "actor": actor(), "action": status }],
    });
    for (k, v) in terms {
        data[k.as_str()] = v;
    }
    let mut writes = vec![Write::Insert {
        collection: "warehouse_orders".into(),
        id: Some(id.clone()),
        org: Some(order_org),
        data,
    }];
    if keeper {
        for item in &list {
            writes.push(reserve_write(item, &id)?);
        }
    }
    let written = transact(writes)?;
    let doc = written
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Error::internal("the order was not written"))?;
    if keeper && input.get("submit").and_then(Value::as_bool) == Some(true) && needs_approval(&kind)
    {
        return Ok(Response::json(&submit_order(&doc.id)?).with_status(201));
    }
    Ok(Response::json(&doc).with_status(201))
}

fn reserve_write(item: &Doc<Value>, order_id: &str) -> Result<Write> {
    let mut data = item.data.clone();
    data["status"] = json!(item_next(
        item.data["status"].as_str().unwrap_or_default(),
        "reserve"
    )?);
    data["order_id"] = json!(order_id);
    push_history(&mut data, "reserved", json!({ "order": order_id }));
    Ok(update_write("warehouse_items", item, data))
}

/// The order's items, each checked to be held by the order.
fn held_items(order: &Doc<Value>) -> Result<Vec<Doc<Value>>> {
    let mut out = Vec::new();
    for id in order.data["item_ids"].as_array().into_iter().flatten() {
        let item = items().fetch::<Value>(id.as_str().unwrap_or_default())?;
        if item.data["order_id"] != order.id.as_str() {
            return Err(Error::new(
                409,
                "item_not_held",
                format!("item {} is not held by this order", item.data["no"]),
            ));
        }
        out.push(item);
    }
    Ok(out)
}

fn order_update(order: &Doc<Value>, to: &str, action: &str, note: Value) -> (Value, Write) {
    let mut data = order.data.clone();
    data["status"] = json!(to);
    push_history(&mut data, action, note);
    let w = update_write("warehouse_orders", order, data.clone());
    (data, w)
}

fn fetch_order(req: &Request) -> Result<(Doc<Value>, String, String, String)> {
    let order = orders().fetch::<Value>(req.param("id")?)?;
    let kind = order.data["kind"].as_str().unwrap_or_default().to_string();
    let status = order.data["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let wh_org = order.data["warehouse_org"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok((order, kind, status, wh_org))
}

/// `POST /warehouse/orders/{id}/accept` `{submit?}`: the keeper takes a
/// unit's request and reserves its items.
fn accept(req: &Request) -> Result<Response> {
    let (order, kind, status, wh_org) = fetch_order(req)?;
    require_keeper(&wh_org)?;
    let to = order_next(&kind, &status, "accept")?;
    let mut writes = Vec::new();
    for id in order.data["item_ids"].as_array().into_iter().flatten() {
        let item = items().fetch::<Value>(id.as_str().unwrap_or_default())?;
        if item.data["status"] != "in_stock" {
            return Err(Error::new(
                409,
                "item_unavailable",
                format!("item {} is {} now", item.data["no"], item.data["status"]),
            ));
        }
        writes.push(reserve_write(&item, &order.id)?);
    }
    let (_, w) = order_update(&order, to, "reserved", json!(null));
    writes.insert(0, w);
    let written = transact(writes)?;
    let input = body(req).unwrap_or_default();
    if input.get("submit").and_then(Value::as_bool) == Some(true) && needs_approval(&kind) {
        return Ok(Response::json(&submit_order(&order.id)?));
    }
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/submit`: a reserved reallocation, disposal
/// or donation goes to approval.
fn submit(req: &Request) -> Result<Response> {
    let (order, _, _, wh_org) = fetch_order(req)?;
    require_keeper(&wh_org)?;
    Ok(Response::json(&submit_order(&order.id)?))
}

fn submit_order(id: &str) -> Result<Doc<Value>> {
    let order = orders().fetch::<Value>(id)?;
    let kind = order.data["kind"].as_str().unwrap_or_default().to_string();
    let to = order_next(
        &kind,
        order.data["status"].as_str().unwrap_or_default(),
        "submit",
    )?;
    let total = order.data["total_value"].as_i64().unwrap_or(0);
    let flow =
        if kind != "reallocation" && total >= crate::rules::current()?.disposal_region_threshold {
            "warehouse-disposal-region".to_string()
        } else {
            format!("warehouse-{kind}")
        };
    let wh_org = order.data["warehouse_org"].as_str().unwrap_or_default();
    let no = order.data["no"].as_str().unwrap_or_default();
    let form = json!({
        "no": no, "kind": kind, "items": order.data["items"],
        "total_value_yuan": fen_to_yuan(total), "to_org": order.data["to_org"],
        "counterparty": order.data["counterparty"], "method": order.data["method"],
        "reason": order.data["reason"],
        "title": crate::common::both_langs(flow_title(&kind), no),
        "summary": order_summary(&order.data, total),
    });
    let instance = approvals::start(
        &flow,
        &order.id,
        &format!("{} {no}", flow_title(&kind)),
        Some(wh_org),
        &form,
    )?;
    let (mut data, _) = order_update(&order, to, "submitted", json!({ "flow": flow }));
    data["approval_id"] = json!(instance.id);
    data["flow"] = json!(flow);
    data["submitted_on"] = json!(dates::today());
    orders().update(&order.id, order.revision, &data)
}

/// The subject summary of a warehouse order's approval (docs/plugin-guide.md,
/// "What the approver sees").
fn order_summary(data: &Value, total: i64) -> Value {
    use crate::common::summary_line as line;
    let items = data["items"].as_array().map(Vec::len).unwrap_or(0);
    let mut lines = vec![
        line("单据编号", "Order no.", data["no"].clone(), "text"),
        line("物品数量", "Items", json!(items), "number"),
        line(
            "原值合计",
            "Total original value",
            json!(total),
            "money_fen",
        ),
    ];
    for (key, zh, en) in [
        ("to_org", "调入单位", "Receiving unit"),
        ("counterparty", "对方单位", "Counterparty"),
        ("method", "处置方式", "Disposal method"),
        ("reason", "事由", "Reason"),
    ] {
        if let Some(v) = data[key].as_str().filter(|v| !v.is_empty()) {
            let value = match key {
                "to_org" => crate::common::org_name(v),
                "method" => crate::documents::method_label(v),
                _ => json!(v),
            };
            lines.push(line(zh, en, value, "text"));
        }
    }
    Value::Array(lines)
}

/// `POST /warehouse/orders/{id}/issue` `{note?}`: 出库: a loan or lease
/// hands its items over until `due_on`; a withdrawal gives them back to
/// their unit.
fn issue(req: &Request) -> Result<Response> {
    let (order, kind, status, wh_org) = fetch_order(req)?;
    require_keeper(&wh_org)?;
    let to = order_next(&kind, &status, "issue")?;
    let list = held_items(&order)?;
    let today = dates::today();
    let (mut data, _) = order_update(
        &order,
        to,
        "issued",
        json!(text_field(&body(req).unwrap_or_default(), "note")),
    );
    data["out_on"] = json!(today);
    if to == "completed" {
        data["completed_on"] = json!(today);
    }
    let mut writes = vec![update_write("warehouse_orders", &order, data)];
    let temporary = kind == "loan" || kind == "lease";
    for item in &list {
        let card = cards().fetch::<Card>(item.data["card_id"].as_str().unwrap_or_default())?;
        let mut c = card.data.clone();
        let mut idata = item.data.clone();
        if temporary {
            idata["status"] = json!(item_next("reserved", "lend")?);
            idata["due_on"] = order.data["due_on"].clone();
            c.use_status = if kind == "lease" { "rented" } else { "lent" }.into();
            c.lease = Some(json!({
                "warehouse_order": order.id, "counterparty": order.data["counterparty"].as_str().or(order.data["to_org"].as_str()),
                "from": today, "until": order.data["due_on"], "income": order.data["income"],
            }));
        } else {
            idata["status"] = json!(item_next("reserved", "out")?);
            idata["out_type"] = json!("withdrawn");
            idata["out_on"] = json!(today);
            c.use_status = "idle".into();
            c.locked_by = None;
            if item.data["warehouse_kind"] == "physical" {
                c.location = item.data["location_before"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                c.custodian = item.data["custodian_before"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        push_history(
            &mut idata,
            "issued",
            json!({ "order": order.id, "kind": kind }),
        );
        writes.push(update_write("warehouse_items", item, idata));
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            &format!("warehouse_{kind}_out"),
            Some(&order.id),
            json!({ "no": order.data["no"], "due_on": order.data["due_on"] }),
        ));
    }
    if temporary && let Some(w) = demand_progress(&order, list.len() as u64)? {
        writes.push(w);
    }
    let written = transact(writes)?;
    publish_out(&order, &kind)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/return` `{condition?, refurbish?, note?}`:
/// 归还验收: loaned or leased items come back into stock.
fn return_items(req: &Request) -> Result<Response> {
    let (order, kind, status, wh_org) = fetch_order(req)?;
    require_keeper(&wh_org)?;
    let to = order_next(&kind, &status, "return")?;
    let input = body(req).unwrap_or_default();
    let condition = match text_field(&input, "condition") {
        Some(c) if CONDITIONS.contains(&c.as_str()) => Some(c),
        Some(_) => {
            return Err(Error::validation(
                "condition",
                format!("condition is one of {}", CONDITIONS.join(", ")),
            )
            .with_code("not_in_vocabulary"));
        }
        None => None,
    };
    let refurbish = input.get("refurbish").and_then(Value::as_bool) == Some(true);
    let list = held_items(&order)?;
    let today = dates::today();
    let note = json!({ "condition": condition, "note": text_field(&input, "note") });
    let (mut data, _) = order_update(&order, to, "returned", note.clone());
    data["returned_on"] = json!(today);
    data["completed_on"] = json!(today);
    data["return_inspection"] = note;
    let mut writes = vec![update_write("warehouse_orders", &order, data)];
    for item in &list {
        let card = cards().fetch::<Card>(item.data["card_id"].as_str().unwrap_or_default())?;
        let mut idata = item.data.clone();
        idata["status"] = json!(item_next(
            "on_loan",
            if refurbish {
                "return_for_refurbishing"
            } else {
                "return"
            }
        )?);
        idata["order_id"] = Value::Null;
        idata["due_on"] = Value::Null;
        idata["overdue"] = Value::Null;
        if let Some(c) = &condition {
            idata["condition"] = json!(c);
        }
        push_history(&mut idata, "returned", json!({ "order": order.id }));
        writes.push(update_write("warehouse_items", item, idata));
        let mut c = card.data.clone();
        c.use_status = "in_warehouse".into();
        c.lease = None;
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            "warehouse_returned",
            Some(&order.id),
            json!({ "no": order.data["no"], "condition": condition }),
        ));
    }
    let written = transact(writes)?;
    common::publish(
        "warehouse.returned",
        &order.id,
        &wh_org,
        &json!({
            "order_id": order.id, "kind": kind, "item_ids": order.data["item_ids"],
            "to_org": order.data["to_org"], "condition": condition, "returned_on": today,
        }),
        &format!("{}:returned", order.id),
    )?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// Writes that give the order's reserved items back to stock.
fn release_writes(order: &Doc<Value>) -> Result<Vec<Write>> {
    let mut writes = Vec::new();
    for id in order.data["item_ids"].as_array().into_iter().flatten() {
        let Some(item) = items().get::<Value>(id.as_str().unwrap_or_default())? else {
            continue;
        };
        if item.data["order_id"] == order.id.as_str() && item.data["status"] == "reserved" {
            let mut data = item.data.clone();
            data["status"] = json!(item_next("reserved", "release")?);
            data["order_id"] = Value::Null;
            push_history(&mut data, "released", json!({ "order": order.id }));
            writes.push(update_write("warehouse_items", &item, data));
        }
    }
    Ok(writes)
}

/// Writes that free an intake's card.
fn unlock_intake_writes(order: &Doc<Value>, action: &str) -> Result<Vec<Write>> {
    let mut writes = Vec::new();
    for id in order.data["card_ids"].as_array().into_iter().flatten() {
        let card = cards().fetch::<Card>(id.as_str().unwrap_or_default())?;
        if card.data.locked_by.as_deref() == Some(order.id.as_str()) {
            let mut free = card.data.clone();
            free.locked_by = None;
            writes.push(card_write(&card, &free)?);
            writes.push(activity(
                &card.id,
                &card.org,
                action,
                Some(&order.id),
                json!({}),
            ));
        }
    }
    Ok(writes)
}

/// `POST /warehouse/orders/{id}/reject` `{note}`: the keeper declines a
/// unit's request (an intake is refused through `inspect`).
fn reject(req: &Request) -> Result<Response> {
    let (order, kind, status, wh_org) = fetch_order(req)?;
    require_keeper(&wh_org)?;
    if kind == "intake" {
        return Err(Error::new(
            409,
            "use_inspect",
            "an intake is refused by inspecting it with accept: false",
        ));
    }
    let to = order_next(&kind, &status, "reject")?;
    let note = text_field(&body(req)?, "note").ok_or_else(|| {
        Error::validation("note", "say why the request is declined").with_code("reason_required")
    })?;
    let (_, w) = order_update(&order, to, "rejected", json!(note));
    let written = transact(vec![w])?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/cancel`: the requester or a keeper calls
/// an order off before its items leave; reserved items return to stock,
/// an intake's card is free again, a running approval is withdrawn.
fn cancel(req: &Request) -> Result<Response> {
    let (order, kind, status, wh_org) = fetch_order(req)?;
    if !authz::allowed_at("assets.warehouse", &wh_org) {
        require("assets.manage")?;
    }
    if status == "in_approval" {
        approvals::withdraw(order.data["approval_id"].as_str().unwrap_or_default())?;
        // The withdrawn event finds the order closed already.
        let order = orders().fetch::<Value>(&order.id)?;
        close_order(&order, "withdrawn", json!({ "by": actor() }))?;
        return Ok(Response::json(&orders().fetch::<Value>(&order.id)?));
    }
    let to = order_next(&kind, &status, "cancel")?;
    let (_, w) = order_update(&order, to, "cancelled", json!(null));
    let mut writes = vec![w];
    if kind == "intake" {
        writes.extend(unlock_intake_writes(&order, "warehouse_intake_cancelled")?);
    } else {
        writes.extend(release_writes(&order)?);
    }
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// A rejected or withdrawn approval: the order ends, its items go back.
fn close_order(order: &Doc<Value>, outcome: &str, note: Value) -> Result<()> {
    let kind = order.data["kind"].as_str().unwrap_or_default();
    let to = order_next(
        kind,
        order.data["status"].as_str().unwrap_or_default(),
        outcome,
    )?;
    let (_, w) = order_update(order, to, outcome, note);
    let mut writes = vec![w];
    writes.extend(release_writes(order)?);
    transact(writes).map(|_| ())
}

/// The demand's progress after `count` items reached its unit.
fn demand_progress(order: &Doc<Value>, count: u64) -> Result<Option<Write>> {
    let Some(demand_id) = order.data["demand_id"].as_str() else {
        return Ok(None);
    };
    let Some(demand) = demands().get::<Value>(demand_id)? else {
        return Ok(None);
    };
    let mut data = demand.data.clone();
    let filled = data["fulfilled"].as_u64().unwrap_or(0) + count;
    data["fulfilled"] = json!(filled);
    if filled >= data["quantity"].as_u64().unwrap_or(1) {
        data["status"] = json!("fulfilled");
        data["fulfilled_on"] = json!(dates::today());
    }
    push_history(
        &mut data,
        "matched",
        json!({ "order": order.id, "items": count }),
    );
    Ok(Some(update_write("demands", &demand, data)))
}

fn publish_out(order: &Doc<Value>, kind: &str) -> Result<()> {
    common::publish(
        "warehouse.out",
        &order.id,
        order.data["warehouse_org"].as_str().unwrap_or(&order.org),
        &json!({
            "order_id": order.id, "no": order.data["no"], "type": kind,
            "item_ids": order.data["item_ids"], "to_org": order.data["to_org"],
            "total_value": order.data["total_value"], "saving": order.data["saving"],
            "due_on": order.data["due_on"],
        }),
        &format!("{}:out", order.id),
    )
}

/// An approval outcome for a warehouse order (`subject_id` is the order).
/// Safe to receive twice: only an order still in approval under this
/// instance changes.
pub fn on_approval(outcome: &str, payload: &Value) -> Result<()> {
    let subject = payload["subject_id"].as_str().unwrap_or_default();
    let Some(order) = orders().get::<Value>(subject)? else {
        log::warn(format!(
            "approval outcome for unknown subject {subject} ignored"
        ));
        return Ok(());
    };
    if order.data["approval_id"] != payload["instance_id"] || order.data["status"] != "in_approval"
    {
        return Ok(());
    }
    let note = json!({ "by": payload["actor"], "by_name": payload["actor_name"], "comment": payload["comment"] });
    match outcome {
        "approved" => execute_outflow(&order, note),
        "rejected" | "withdrawn" => close_order(&order, outcome, note),
        _ => Ok(()),
    }
}

/// An approved reallocation, disposal or donation takes effect, all in
/// one transaction: the items leave, the cards are reduced (and, for a
/// reallocation, an incoming card appears at the receiving unit).
fn execute_outflow(order: &Doc<Value>, note: Value) -> Result<()> {
    let kind = order.data["kind"].as_str().unwrap_or_default().to_string();
    let to = order_next(&kind, "in_approval", "approved")?;
    let list = held_items(order)?;
    let today = dates::today();
    let month = dates::month_text(dates::this_month());
    let (mut data, _) = order_update(order, to, "approved", note);
    data["out_on"] = json!(today);
    data["completed_on"] = json!(today);
    let mut writes = vec![update_write("warehouse_orders", order, data)];
    let to_org = order.data["to_org"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut incoming = Vec::new();
    let mut events = Vec::new();
    for item in &list {
        let card = cards().fetch::<Card>(item.data["card_id"].as_str().unwrap_or_default())?;
        let mut c = card.data.clone();
        c.locked_by = None;
        c.reduced_on = month.clone();
        let out_type = match kind.as_str() {
            "reallocation" => {
                let mut new_card = c.clone();
                new_card.state = "incoming".into();
                new_card.acquisition_method = "transfer_in".into();
                new_card.transferred_from = Some(card.id.clone());
                new_card.transferred_from_org = Some(card.org.clone());
                new_card.reduced_on = String::new();
                new_card.use_status = "in_use".into();
                new_card.department = String::new();
                new_card.custodian = String::new();
                new_card.location = String::new();
                incoming.push(new_card);
                c.state = "transferred".into();
                events.push((
                    "transferred",
                    card.id.clone(),
                    card.org.clone(),
                    json!({ "card_id": card.id, "asset_no": c.asset_no, "to_org": to_org, "warehouse_order": order.id }),
                ));
                "reallocated"
            }
            _ => {
                c.state = "disposed".into();
                c.use_status = "awaiting_disposal".into();
                c.disposal_method = if kind == "donation" {
                    "donation".into()
                } else {
                    order.data["method"].as_str().unwrap_or("scrap").to_string()
                };
                events.push((
                    "disposed",
                    card.id.clone(),
                    card.org.clone(),
                    json!({ "card_id": card.id, "asset_no": c.asset_no, "method": c.disposal_method, "original_value": c.original_value, "net_value": c.net_value, "warehouse_order": order.id }),
                ));
                if kind == "donation" {
                    "donated"
                } else {
                    "disposed"
                }
            }
        };
        let mut idata = item.data.clone();
        idata["status"] = json!(item_next("reserved", "out")?);
        idata["out_type"] = json!(out_type);
        idata["out_on"] = json!(today);
        push_history(&mut idata, out_type, json!({ "order": order.id }));
        writes.push(update_write("warehouse_items", item, idata));
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            &format!("warehouse_{out_type}"),
            Some(&order.id),
            json!({ "no": order.data["no"], "to_org": order.data["to_org"] }),
        ));
    }
    if !incoming.is_empty() {
        // The receiver's cards, numbered in its series, in this same
        // transaction (as `cards::insert_cards` would number them).
        let year = today[..4].to_string();
        let first =
            common::reserve_numbers(&format!("card{year}"), &to_org, incoming.len() as i64)?;
        for (i, mut card) in incoming.into_iter().enumerate() {
            card.asset_no = common::number("ZC", &year, first + i as i64);
            let id = format!("{}.{}", card.asset_no, to_org).to_ascii_lowercase();
            writes.push(activity(
                &id,
                &to_org,
                "transfer_in",
                Some(&order.id),
                json!({ "asset_no": card.asset_no, "from": card.transferred_from }),
            ));
            writes.push(Write::Insert {
                collection: "cards".into(),
                id: Some(id),
                org: Some(to_org.clone()),
                data: serde_json::to_value(&card).map_err(|e| Error::internal(e.to_string()))?,
            });
        }
        if let Some(w) = demand_progress(order, list.len() as u64)? {
            writes.push(w);
        }
    }
    transact(writes)?;
    for (topic, key, org, body) in events {
        common::publish(
            topic,
            &key,
            &org,
            &body,
            &format!("{}:{topic}:{key}", order.id),
        )?;
    }
    publish_out(order, &kind)
}

/// The daily `loan-reminders` job: loans and leases past their due date
/// are marked overdue and announced once (`assets.warehouse.loan_overdue`).
pub fn on_job(name: &str) -> Result<()> {
    if name != "loan-reminders" {
        return Ok(());
    }
    let today = dates::today();
    let mut cursor = None;
    loop {
        let page = orders()
            .find()
            .eq("status", "on_loan")
            .lt("due_on", today.as_str())
            .sort("due_on")
            .limit(400)
            .cursor(cursor)
            .page::<Value>()?;
        let mut writes = Vec::new();
        let mut due = Vec::new();
        for order in &page.records {
            if order.data["overdue"] == true {
                continue;
            }
            let mut data = order.data.clone();
            data["overdue"] = json!(true);
            data["overdue_since"] = json!(today);
            push_history(&mut data, "overdue", json!(null));
            writes.push(update_write("warehouse_orders", order, data));
            due.push(order.clone());
        }
        if !writes.is_empty() {
            transact(writes)?;
        }
        for order in &due {
            let overdue_days =
                dates::days_between(order.data["due_on"].as_str().unwrap_or(&today), &today);
            common::publish(
                "warehouse.loan_overdue",
                &order.id,
                order.data["warehouse_org"].as_str().unwrap_or(&order.org),
                &json!({
                    "order_id": order.id, "no": order.data["no"], "kind": order.data["kind"],
                    "to_org": order.data["to_org"], "counterparty": order.data["counterparty"],
                    "due_on": order.data["due_on"], "days_overdue": overdue_days,
                    "item_ids": order.data["item_ids"],
                }),
                &format!("{}:overdue", order.id),
            )?;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

// ----- demands ---------------------------------------------------------

/// `POST /warehouse/demands` `{category, quantity, description,
/// needed_by?, unit_budget_yuan?, org?}`: a unit's need, matched against
/// the catalogue.
fn create_demand(req: &Request) -> Result<Response> {
    let input = body(req)?;
    let category = required_text(&input, "category")?;
    let prefix = category_prefix(&category)
        .filter(|p| {
            crate::categories::all()
                .iter()
                .any(|c| c.code.starts_with(p.as_str()))
        })
        .ok_or_else(|| {
            Error::validation("category", "a GB/T 14885 code or prefix")
                .with_code("category_unknown")
        })?;
    let quantity = input
        .get("quantity")
        .and_then(Value::as_u64)
        .filter(|q| (1..=1000).contains(q))
        .ok_or_else(|| {
            Error::validation("quantity", "quantity is 1-1000")
                .with_code("quantity_range")
                .with_param("min", 1)
                .with_param("max", 1000)
        })?;
    let description = required_text(&input, "description")?;
    if description.chars().count() > 500 {
        return Err(Error::validation("description", "at most 500 characters")
            .with_code("too_long")
            .with_param("max", 500));
    }
    let unit_budget = match input.get("unit_budget_yuan") {
        Some(v) => Some(yuan_to_fen(v).filter(|f| *f >= 0).ok_or_else(|| {
            Error::validation("unit_budget_yuan", "an amount in yuan").with_code("amount_invalid")
        })?),
        None => None,
    };
    let org = text_field(&input, "org")
        .or_else(common::acting_org)
        .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?;
    let data = json!({
        "category": category.to_ascii_uppercase(), "category_prefix": prefix,
        "quantity": quantity, "fulfilled": 0, "description": description,
        "needed_by": date_field(&input, "needed_by")?, "unit_budget": unit_budget,
        "status": "open", "created_by": actor(), "created_on": dates::today(),
        "history": [{ "on": dates::today(), "actor": actor(), "action": "posted" }],
    });
    let doc = demands().insert_with(None, Some(&org), &data)?;
    Ok(Response::json(&doc).with_status(201))
}

fn list_demands(req: &Request) -> Result<Response> {
    let mut find = demands().find();
    if let Some(status) = req.query_param("status").filter(|s| !s.is_empty()) {
        find = find.eq("status", status);
    }
    if let Some(category) = req.query_param("category").filter(|c| !c.is_empty()) {
        let prefix = category_prefix(&category).ok_or_else(|| {
            Error::validation("category", "a GB/T 14885 code or prefix")
                .with_code("category_unknown")
        })?;
        find = find.prefix("category", &prefix);
    }
    let find = find
        .within(req.query_param("org").filter(|o| !o.is_empty()))
        .sort_desc("created-at");
    tianshan_sdk::list::respond(
        req,
        &find,
        "demands",
        &[
            ("no", "/data/no"),
            ("category", "/data/category"),
            ("quantity", "/data/quantity"),
            ("status", "/data/status"),
            ("org", "/org"),
            ("needed_by", "/data/needed_by"),
            ("description", "/data/description"),
        ],
    )
}

/// A demand with the in-stock items that would meet it.
fn show_demand(req: &Request) -> Result<Response> {
    let demand = demands().fetch::<Value>(req.param("id")?)?;
    let prefix = demand.data["category_prefix"].as_str().unwrap_or_default();
    let matches = available_items(prefix, 50)?;
    let related = orders()
        .find()
        .eq("demand_id", demand.id.as_str())
        .limit(100)
        .page::<Value>()?;
    Ok(Response::json(&json!({
        "demand": demand, "matching_items": matches, "orders": related.records,
    })))
}

/// `POST /warehouse/demands/{id}/close` `{note?}`: the unit withdraws it.
fn close_demand(req: &Request) -> Result<Response> {
    let demand = demands().fetch::<Value>(req.param("id")?)?;
    if demand.data["status"] != "open" {
        return Err(Error::new(409, "not_open", "the demand is not open"));
    }
    let mut data = demand.data.clone();
    data["status"] = json!("closed");
    push_history(
        &mut data,
        "closed",
        json!(text_field(&body(req).unwrap_or_default(), "note")),
    );
    Ok(Response::json(&demands().update(
        &demand.id,
        demand.revision,
        &data,
    )?))
}

// ----- report ----------------------------------------------------------

/// `GET /warehouse/report` `?from=YYYY-MM&to=YYYY-MM` (default: the last
/// twelve months) `&warehouse_id=`, `?format=csv|xlsx`: items in and out
/// per month, value redeployed, purchases saved, and the stock now.
fn report(req: &Request) -> Result<Response> {
    let now = dates::this_month();
    let month = |field: &str, default: i64| -> Result<String> {
        match req.query_param(field).filter(|v| !v.is_empty()) {
            Some(v) => dates::parse_month(&v)
                .map(dates::month_text)
                .ok_or_else(|| {
                    Error::validation(field, format!("{field} must be YYYY-MM"))
                        .with_code("month_invalid")
                }),
            None => Ok(dates::month_text(default)),
        }
    };
    let (from, to) = (month("from", now - 11)?, month("to", now)?);
    if to < from {
        return Err(
            Error::validation("to", "the period ends before it starts").with_code("date_range")
        );
    }
    let first_day = format!("{from}-01");
    let warehouse = req.query_param("warehouse_id").filter(|w| !w.is_empty());
    let mut rows = Vec::new();
    for date_field in ["in_on", "out_on"] {
        let mut find = orders().find().gte(date_field, first_day.as_str());
        if let Some(w) = &warehouse {
            find = find.eq("warehouse_id", w.as_str());
        }
        let mut cursor = None;
        loop {
            let page = find.clone().limit(1000).cursor(cursor).page::<Value>()?;
            rows.extend(page.records.into_iter().map(|d| d.data));
            match page.next_cursor {
                Some(c) if rows.len() < 200_000 => cursor = Some(c),
                _ => break,
            }
        }
    }
    let months = throughput(&rows, &from, &to);
    let mut stock_find = items().find();
    if let Some(w) = &warehouse {
        stock_find = stock_find.eq("warehouse_id", w.as_str());
    }
    let stock: Vec<Value> = items()
        .aggregate(
            &stock_find,
            &["status"],
            &[
                (AggregateOp::Count, None),
                (AggregateOp::Sum, Some("original_value")),
            ],
        )?
        .into_iter()
        .map(|g| {
            json!({
                "status": g.key.first(), "count": g.values.first().copied().flatten().unwrap_or(0.0) as u64,
                "original_value": g.values.get(1).copied().flatten().unwrap_or(0.0).round() as i64,
            })
        })
        .collect();
    let out_kinds = [
        "reallocation",
        "loan",
        "lease",
        "disposal",
        "donation",
        "withdrawal",
    ];
    if let Some(format) = export::wanted(req)? {
        let en = lang(req).starts_with("en");
        let mut headers: Vec<&str> = if en {
            vec!["Month", "Items in", "Value in"]
        } else {
            vec!["月份", "入仓件数", "入仓原值"]
        };
        let labels_zh = ["调剂出仓", "借出", "出租", "处置", "捐赠", "退回原单位"];
        for (i, k) in out_kinds.iter().enumerate() {
            headers.push(if en { k } else { labels_zh[i] });
        }
        headers.extend(if en {
            ["Value out", "Value redeployed", "Savings"]
        } else {
            ["出仓原值", "调剂盘活价值", "节约采购资金"]
        });
        let mut table = Table::new("warehouse-report", &headers);
        let mut total = MonthRow::default();
        for (m, r) in &months {
            let mut row = vec![json!(m), json!(r.items_in), yuan_cell(r.value_in)];
            for k in out_kinds {
                row.push(json!(r.items_out.get(k).copied().unwrap_or(0)));
                *total.items_out.entry(k.to_string()).or_default() +=
                    r.items_out.get(k).copied().unwrap_or(0);
            }
            row.extend([
                yuan_cell(r.value_out),
                yuan_cell(r.redeployed),
                yuan_cell(r.saving),
            ]);
            table.push(row);
            total.items_in += r.items_in;
            total.value_in += r.value_in;
            total.value_out += r.value_out;
            total.redeployed += r.redeployed;
            total.saving += r.saving;
        }
        let mut row = vec![
            json!(if en { "Total" } else { "合计" }),
            json!(total.items_in),
            yuan_cell(total.value_in),
        ];
        for k in out_kinds {
            row.push(json!(total.items_out.get(k).copied().unwrap_or(0)));
        }
        row.extend([
            yuan_cell(total.value_out),
            yuan_cell(total.redeployed),
            yuan_cell(total.saving),
        ]);
        table.push(row);
        return export::respond(&table, format);
    }
    let month_rows: Vec<Value> = months
        .iter()
        .map(|(m, r)| {
            json!({
                "month": m, "items_in": r.items_in, "value_in": r.value_in,
                "items_out": r.items_out, "value_out": r.value_out,
                "redeployed": r.redeployed, "saving": r.saving,
            })
        })
        .collect();
    let sum = |f: fn(&MonthRow) -> i64| months.values().map(f).sum::<i64>();
    Ok(Response::json(&json!({
        "from": from, "to": to,
        "months": month_rows,
        "totals": {
            "items_in": months.values().map(|r| r.items_in).sum::<u64>(),
            "items_out": months.values().map(|r| r.items_out.values().sum::<u64>()).sum::<u64>(),
            "value_in": sum(|r| r.value_in), "value_out": sum(|r| r.value_out),
            "redeployed": sum(|r| r.redeployed), "saving": sum(|r| r.saving),
        },
        "stock": stock,
    })))
}

// ----- demo ------------------------------------------------------------

/// The demo's warehouses: a physical and a virtual one at the first org,
/// stocked with up to eight idle cards of the orgs under it. Idempotent:
/// nothing happens once a warehouse exists. Runs as the kernel.
pub fn seed_demo(orgs: &[String]) -> Result<usize> {
    let Some(home) = orgs.first() else {
        return Ok(0);
    };
    if warehouses().find().count()? > 0 {
        return Ok(0);
    }
    let mut made = Vec::new();
    for (name, kind, address) in [
        ("公物仓（实体仓）", "physical", "公物仓库房"),
        ("公物仓（虚拟仓）", "virtual", ""),
    ] {
        let data = json!({
            "name": name, "kind": kind, "address": if address.is_empty() { Value::Null } else { json!(address) },
            "zones": if kind == "physical" { json!(["A区", "B区", "C区"]) } else { json!([]) },
            "active": true, "created_by": actor(), "created_on": dates::today(),
        });
        made.push(warehouses().insert_with(None, Some(home), &data)?);
    }
    let idle = cards()
        .find()
        .eq("state", "booked")
        .eq("use_status", "idle")
        .within(Some(home.clone()))
        .sort("asset_no")
        .limit(40)
        .page::<Card>()?;
    let mut stocked = 0;
    for card in idle
        .records
        .iter()
        .filter(|c| c.data.locked_by.is_none())
        .take(8)
    {
        // Furniture and air-conditioners to the physical warehouse, the
        // rest stays with its unit in the virtual one.
        let physical =
            card.data.category.starts_with("A05") || card.data.category.starts_with("A0206");
        let wh = if physical { &made[0] } else { &made[1] };
        let (no, order_id) = new_number("whorder", "RK", &card.org)?;
        let (item_id, mut writes) = stock_in(
            wh,
            card,
            &order_id,
            "good",
            "idle",
            physical.then(|| "A区".to_string()),
            false,
            None,
        )?;
        writes.insert(
            0,
            Write::Insert {
                collection: "warehouse_orders".into(),
                id: Some(order_id.clone()),
                org: Some(card.org.clone()),
                data: json!({
                    "kind": "intake", "no": no, "status": "completed",
                    "warehouse_id": wh.id, "warehouse_org": wh.org, "warehouse_name": wh.data["name"],
                    "items": [item_summary(card)], "card_ids": [card.id], "item_ids": [item_id],
                    "total_value": card.data.original_value, "condition": "good", "source": "idle",
                    "in_on": dates::today(), "created_by": actor(), "created_on": dates::today(),
                    "history": [{ "on": dates::today(), "actor": actor(), "action": "demo" }],
                }),
            },
        );
        transact(writes)?;
        stocked += 1;
    }
    Ok(stocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_prefixes_drop_empty_levels() {
        assert_eq!(category_prefix("A020101").as_deref(), Some("A020101"));
        assert_eq!(category_prefix("A020100").as_deref(), Some("A0201"));
        assert_eq!(category_prefix("A020000").as_deref(), Some("A02"));
        assert_eq!(category_prefix("a010300").as_deref(), Some("A0103"));
        // A level of 10 keeps its zero.
        assert_eq!(category_prefix("A020110").as_deref(), Some("A020110"));
        assert_eq!(category_prefix("A02").as_deref(), Some("A02"));
        assert_eq!(category_prefix("A0201").as_deref(), Some("A0201"));
        assert_eq!(category_prefix(""), None);
        assert_eq!(category_prefix("020101"), None);
        assert_eq!(category_prefix("A02x101"), None);
        assert_eq!(category_prefix("A0201011"), None);
    }

    #[test]
    fn items_move_only_along_their_machine() {
        assert_eq!(item_next("in_stock", "reserve").unwrap(), "reserved");
        assert_eq!(item_next("reserved", "release").unwrap(), "in_stock");
        assert_eq!(item_next("reserved", "lend").unwrap(), "on_loan");
        assert_eq!(item_next("on_loan", "return").unwrap(), "in_stock");
        assert_eq!(
            item_next("on_loan", "return_for_refurbishing").unwrap(),
            "refurbishing"
        );
        assert_eq!(item_next("reserved", "out").unwrap(), "out");
        assert_eq!(item_next("refurbishing", "ready").unwrap(), "in_stock");
        for (from, event) in [
            ("in_stock", "out"),
            ("in_stock", "lend"),
            ("out", "return"),
            ("out", "reserve"),
            ("on_loan", "reserve"),
            ("refurbishing", "reserve"),
            ("reserved", "reserve"),
        ] {
            assert_eq!(
                item_next(from, event).unwrap_err().status(),
                409,
                "{from} {event}"
            );
        }
    }

    #[test]
    fn orders_follow_their_kind() {
        assert_eq!(
            order_next("intake", "requested", "inspect").unwrap(),
            "completed"
        );
        assert!(order_next("intake", "requested", "accept").is_err());
        assert_eq!(
            order_next("reallocation", "requested", "accept").unwrap(),
            "reserved"
        );
        assert_eq!(
            order_next("reallocation", "reserved", "submit").unwrap(),
            "in_approval"
        );
        assert_eq!(
            order_next("reallocation", "in_approval", "approved").unwrap(),
            "completed"
        );
        assert_eq!(
            order_next("disposal", "in_approval", "rejected").unwrap(),
            "rejected"
        );
        assert!(order_next("reallocation", "reserved", "issue").is_err());
        assert!(order_next("loan", "reserved", "submit").is_err());
        assert_eq!(order_next("loan", "reserved", "issue").unwrap(), "on_loan");
        assert_eq!(
            order_next("lease", "on_loan", "return").unwrap(),
            "completed"
        );
        assert_eq!(
            order_next("withdrawal", "reserved", "issue").unwrap(),
            "completed"
        );
        assert_eq!(
            order_next("loan", "requested", "cancel").unwrap(),
            "cancelled"
        );
        assert!(order_next("loan", "on_loan", "cancel").is_err());
        assert!(order_next("donation", "completed", "cancel").is_err());
        assert!(needs_approval("donation") && !needs_approval("loan"));
    }

    #[test]
    fn savings_never_exceed_the_purchase_avoided() {
        assert_eq!(saving_for(500_000, None), 500_000);
        assert_eq!(saving_for(500_000, Some(420_000)), 420_000);
        assert_eq!(saving_for(300_000, Some(420_000)), 300_000);
        assert_eq!(saving_for(300_000, Some(0)), 300_000);
        assert_eq!(saving_for(-5, None), 0);
    }

    #[test]
    fn throughput_groups_by_month_and_kind() {
        let orders = vec![
            json!({ "kind": "intake", "in_on": "2026-01-10", "items": [{}, {}], "total_value": 1000 }),
            json!({ "kind": "reallocation", "out_on": "2026-01-20", "items": [{}], "total_value": 600, "saving": 500 }),
            json!({ "kind": "loan", "out_on": "2026-02-02", "items": [{}], "total_value": 400 }),
            json!({ "kind": "disposal", "out_on": "2025-12-31", "items": [{}], "total_value": 9 }),
            json!({ "kind": "intake", "items": [{}], "total_value": 9 }),
        ];
        let m = throughput(&orders, "2026-01", "2026-02");
        assert_eq!(m.len(), 2);
        let jan = &m["2026-01"];
        assert_eq!((jan.items_in, jan.value_in), (2, 1000));
        assert_eq!(jan.items_out["reallocation"], 1);
        assert_eq!((jan.redeployed, jan.saving), (600, 500));
        let feb = &m["2026-02"];
        assert_eq!(feb.items_out["loan"], 1);
        assert_eq!((feb.redeployed, feb.value_out), (0, 400));
    }
}
