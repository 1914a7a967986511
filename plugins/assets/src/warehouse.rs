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

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tianshan_sdk::approvals::{Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Collection, Doc, Find, Write, collection, transact};

use crate::cards::cards;
use crate::common::{self, activity, actor, card_write, lang, new_number, require};
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

fn yes() -> bool {
    true
}

/// A warehouse, physical (实体仓) or virtual (虚拟仓), at its
/// administration's org. Fields this version does not know are kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Warehouse {
    pub name: String,
    pub kind: String,
    pub address: Option<String>,
    pub keeper: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    /// Bins an inspection may put an item in; empty: any.
    pub zones: Vec<String>,
    /// An inactive warehouse takes no intake.
    #[serde(default = "yes")]
    pub active: bool,
    pub created_by: String,
    pub created_on: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An item of the catalogue: a card in the warehouse, with the card's
/// figures copied so every unit below reads them without the card.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Item {
    pub no: String,
    pub status: String,
    /// How it left: withdrawn, reallocated, disposed, donated.
    pub out_type: Option<String>,
    pub warehouse_id: String,
    pub warehouse_name: String,
    pub warehouse_kind: String,
    pub bin: Option<String>,
    pub card_id: String,
    pub card_org: String,
    pub asset_no: String,
    pub name: String,
    pub category: String,
    pub category_top: String,
    pub spec: String,
    pub brand: String,
    pub quantity: i64,
    pub measure_unit: String,
    pub original_value: i64,
    pub net_value: i64,
    pub acquired_on: String,
    pub photos: Vec<String>,
    pub condition: String,
    pub source: String,
    pub available_from: String,
    pub intake_order_id: String,
    /// The order holding it (reserved or on loan).
    pub order_id: Option<String>,
    pub due_on: Option<String>,
    /// Where the card was before a physical warehouse took it, so a
    /// withdrawal puts it back.
    pub location_before: String,
    pub custodian_before: String,
    pub in_on: String,
    pub out_on: Option<String>,
    pub history: Vec<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// An intake (入仓) or outflow (出仓) order. `items` are the summaries
/// the pages and the approver read; `card_ids` name an intake's card,
/// `item_ids` the items an order holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Order {
    pub kind: String,
    pub no: String,
    pub status: String,
    pub warehouse_id: String,
    pub warehouse_org: String,
    pub warehouse_name: String,
    pub items: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub card_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub item_ids: Vec<String>,
    pub total_value: i64,
    pub note: Option<String>,
    pub created_by: String,
    pub created_on: String,
    pub history: Vec<Value>,
    pub approval_id: Option<String>,
    pub to_org: Option<String>,
    pub due_on: Option<String>,
    pub counterparty: Option<String>,
    pub method: Option<String>,
    pub demand_id: Option<String>,
    pub overdue: Option<bool>,
    /// Everything else (terms, dates of each step, the inspection) as
    /// stored: read by the pages, written by the steps that set it.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Order {
    fn set(&mut self, field: &str, value: impl Serialize) {
        self.rest.insert(field.to_string(), json!(value));
    }

    fn get(&self, field: &str) -> &Value {
        self.rest.get(field).unwrap_or(&Value::Null)
    }
}

/// A unit's need (需求), matched against the catalogue.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Demand {
    pub category: String,
    pub category_prefix: String,
    pub quantity: u64,
    pub fulfilled: u64,
    pub description: String,
    pub needed_by: Option<String>,
    pub unit_budget: Option<i64>,
    pub status: String,
    pub created_by: String,
    pub created_on: String,
    pub history: Vec<Value>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
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

/// Items and their original value per status.
fn stock_by_status(find: Find) -> Result<Vec<Value>> {
    let measures = [
        (AggregateOp::Count, None),
        (AggregateOp::Sum, Some("original_value")),
    ];
    let groups = items().aggregate(&find, &["status"], &measures)?;
    Ok(groups
        .into_iter()
        .map(|g| json!({ "status": g.key.first(), "count": g.value(0) as u64, "original_value": g.value(1).round() as i64 }))
        .collect())
}

// ----- warehouses ------------------------------------------------------

fn list_warehouses(req: &Request) -> Result<Response> {
    let find = list::filter_eq(&["kind"], warehouses().find(), req).sort("name");
    list::respond(
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

fn warehouse_fields(input: &Form, wh: &mut Warehouse, creating: bool) -> Result<()> {
    if creating || input.contains_key("name") {
        wh.name = input.required("name")?;
        if wh.name.chars().count() > 100 {
            return Err(Error::validation("name", "at most 100 characters")
                .with_code("too_long")
                .with_param("max", 100));
        }
    }
    if creating {
        wh.kind = input.one_of("kind", WAREHOUSE_KINDS, "")?;
    } else if input.contains_key("kind") {
        return Err(
            Error::validation("kind", "a warehouse stays physical or virtual")
                .with_code("warehouse_kind_fixed"),
        );
    }
    for (field, slot) in [
        ("address", &mut wh.address),
        ("keeper", &mut wh.keeper),
        ("phone", &mut wh.phone),
        ("note", &mut wh.note),
    ] {
        if input.contains_key(field) {
            *slot = input.text(field);
            if slot.as_ref().is_some_and(|v| v.chars().count() > 200) {
                return Err(Error::validation(field, "at most 200 characters")
                    .with_code("too_long")
                    .with_param("max", 200));
            }
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
        wh.zones = list;
    }
    if let Some(active) = input.get("active") {
        wh.active = active.as_bool().ok_or_else(|| {
            Error::validation("active", "true or false").with_code("boolean_invalid")
        })?;
    }
    Ok(())
}

/// `POST /warehouse/warehouses` `{name, kind, address?, zones?, keeper?,
/// phone?, note?, org?}`.
fn create_warehouse(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let org = input
        .text("org")
        .or_else(common::acting_org)
        .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?;
    require_keeper(&org)?;
    let mut wh = Warehouse {
        active: true,
        created_by: actor(),
        created_on: dates::today(),
        ..Warehouse::default()
    };
    warehouse_fields(&input, &mut wh, true)?;
    let doc = warehouses().insert_with(None, Some(&org), &wh)?;
    publish_physical(&org)?;
    Ok(Response::json(&doc).with_status(201))
}

/// The plan's 实体公物仓 at `org`: its active physical warehouses this
/// year, published where the platform granted this plugin the indicator
/// (the kernel rolls it up the tree).
pub fn publish_physical(org: &str) -> Result<()> {
    let n = warehouses()
        .find()
        .within(Some(org.to_string()))
        .eq("org", org)
        .eq("kind", "physical")
        .eq("active", true)
        .count()?;
    let year = dates::current_period(datacenter::Granularity::Year);
    datacenter::publish_if_granted(
        "plan.physical_warehouses",
        &[datacenter::value(Some(org), &year, n as f64)],
    )?;
    Ok(())
}

fn show_warehouse(req: &Request) -> Result<Response> {
    let wh = warehouses().fetch::<Value>(req.param("id")?)?;
    let stock = stock_by_status(items().find().eq("warehouse_id", wh.id.as_str()))?;
    Ok(Response::json(&json!({ "warehouse": wh, "stock": stock })))
}

fn edit_warehouse(req: &Request) -> Result<Response> {
    let mut wh = warehouses().fetch::<Warehouse>(req.param("id")?)?;
    require_keeper(&wh.org)?;
    warehouse_fields(&Form::of(req)?, &mut wh.data, false)?;
    let saved = warehouses().update(&wh.id, wh.revision, &wh.data)?;
    publish_physical(&saved.org)?;
    Ok(Response::json(&saved))
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

/// A new intake order of `card` into `wh`, as the unit offers it (the
/// demo seed completes it at once).
fn intake_order(wh: &Doc<Warehouse>, card: &Doc<Card>, no: String, status: &str) -> Order {
    Order {
        kind: "intake".into(),
        no,
        status: status.into(),
        warehouse_id: wh.id.clone(),
        warehouse_org: wh.org.clone(),
        warehouse_name: wh.data.name.clone(),
        items: vec![item_summary(card)],
        card_ids: vec![card.id.clone()],
        total_value: card.data.original_value,
        created_by: actor(),
        created_on: dates::today(),
        ..Order::default()
    }
}

/// `POST /warehouse/intake` `{card_id, warehouse_id, condition, source?,
/// note?, available_from?}`: a unit offers a booked idle card; the order
/// waits for the keeper's inspection and the card is locked to it.
fn intake(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let card_id = input.required("card_id")?;
    let wh = warehouses()
        .fetch::<Warehouse>(&input.required("warehouse_id")?)
        .map_err(|e| e.with_field("warehouse_id"))?;
    if !wh.data.active {
        return Err(
            Error::validation("warehouse_id", "the warehouse takes no intake now")
                .with_code("intake_closed"),
        );
    }
    let condition = input.one_of("condition", CONDITIONS, "")?;
    let source = input.one_of("source", SOURCES, "idle")?;
    let available_from = input.date("available_from")?;
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
    let mut order = intake_order(&wh, &card, no.clone(), "requested");
    order.note = input.text("note");
    order.history = vec![json!({ "on": dates::today(), "actor": actor(), "action": "requested" })];
    order.set("condition", condition);
    order.set("source", source);
    order.set("available_from", available_from);
    let mut locked = card.data.clone();
    locked.locked_by = Some(id.clone());
    let writes = vec![
        Write::insert_with("warehouse_orders", Some(&id), Some(&card.org), &order)?,
        card_write(&card, &locked)?,
        activity(
            &card.id,
            &card.org,
            "warehouse_intake_requested",
            Some(&id),
            json!({ "no": no, "warehouse": wh.data.name }),
        ),
    ];
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()).with_status(201))
}

/// What an inspection (or the demo seed) decides about an intake.
struct Intake<'a> {
    order_id: &'a str,
    condition: &'a str,
    source: &'a str,
    bin: Option<String>,
    refurbish: bool,
    available_from: Option<String>,
}

/// The writes that put `card` into `wh` as a new item (the inspection's
/// effect; the demo seed uses it too). Returns the item id with them.
fn stock_in(wh: &Doc<Warehouse>, card: &Doc<Card>, how: Intake) -> Result<(String, Vec<Write>)> {
    let (no, item_id) = new_number("whitem", "GWC", &wh.org)?;
    let c = &card.data;
    let item = Item {
        no: no.clone(),
        status: if how.refurbish {
            "refurbishing"
        } else {
            "in_stock"
        }
        .into(),
        warehouse_id: wh.id.clone(),
        warehouse_name: wh.data.name.clone(),
        warehouse_kind: wh.data.kind.clone(),
        bin: how.bin.clone(),
        card_id: card.id.clone(),
        card_org: card.org.clone(),
        asset_no: c.asset_no.clone(),
        name: c.name.clone(),
        category: c.category.clone(),
        category_top: c.category_top.clone(),
        spec: c.spec.clone(),
        brand: c.brand.clone(),
        quantity: c.quantity,
        measure_unit: c.measure_unit.clone(),
        original_value: c.original_value,
        net_value: c.net_value,
        acquired_on: c.acquired_on.clone(),
        photos: c.photos.clone(),
        condition: how.condition.into(),
        source: how.source.into(),
        available_from: how.available_from.unwrap_or_else(dates::today),
        intake_order_id: how.order_id.into(),
        location_before: c.location.clone(),
        custodian_before: c.custodian.clone(),
        in_on: dates::today(),
        history: vec![
            json!({ "on": dates::today(), "actor": actor(), "action": "in", "note": { "order": how.order_id } }),
        ],
        ..Item::default()
    };
    let mut moved = c.clone();
    moved.use_status = "in_warehouse".into();
    moved.locked_by = Some(item_id.clone());
    if wh.data.kind == "physical" {
        let place = wh.data.address.as_deref().unwrap_or(&wh.data.name);
        moved.location = match &how.bin {
            Some(b) => format!("{place} {b}"),
            None => place.to_string(),
        };
        moved.custodian = String::new();
    }
    let writes = vec![
        Write::insert_with("warehouse_items", Some(&item_id), Some(&wh.org), &item)?,
        card_write(card, &moved)?,
        activity(
            &card.id,
            &card.org,
            "warehouse_in",
            Some(how.order_id),
            json!({ "item": no, "warehouse": wh.data.name, "condition": how.condition }),
        ),
    ];
    Ok((item_id, writes))
}

/// `POST /warehouse/orders/{id}/inspect` `{accept, condition?, bin?,
/// refurbish?, note?}`: the keeper's inspection of an intake. Accepted,
/// the card becomes an item `in_stock` (or `refurbishing`); refused, the
/// card is free again.
fn inspect(req: &Request) -> Result<Response> {
    let order = orders().fetch::<Order>(req.param("id")?)?;
    let o = &order.data;
    require_keeper(&o.warehouse_org)?;
    let input = Form::of(req)?;
    let accept = input
        .get("accept")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            Error::validation("accept", "accept is true or false").with_code("boolean_invalid")
        })?;
    let to = order_next(
        &o.kind,
        &o.status,
        if accept { "inspect" } else { "reject" },
    )?;
    if o.kind != "intake" {
        return Err(Error::new(
            409,
            "not_an_intake",
            "only intakes are inspected",
        ));
    }
    let card_id = o.card_ids.first().map(String::as_str).unwrap_or_default();
    let card = cards().fetch::<Card>(card_id)?;
    if card.data.locked_by.as_deref() != Some(order.id.as_str()) {
        return Err(Error::new(
            409,
            "card_moved",
            "the card is no longer held by this intake",
        ));
    }
    let note = input.text("note");
    let mut data = o.clone();
    data.status = to.into();
    data.set("inspected_by", actor());
    data.set("inspected_on", dates::today());
    data.set("inspection_note", &note);
    let mut writes = Vec::new();
    let mut item_id = None;
    if accept {
        let condition = input.one_of(
            "condition",
            CONDITIONS,
            o.get("condition").as_str().unwrap_or(""),
        )?;
        let bin = input.text("bin");
        let wh = warehouses().fetch::<Warehouse>(&o.warehouse_id)?;
        if let Some(b) = &bin
            && !wh.data.zones.is_empty()
            && !wh.data.zones.contains(b)
        {
            return Err(Error::validation("bin", "not one of the warehouse's zones")
                .with_code("bin_unknown"));
        }
        let how = Intake {
            order_id: &order.id,
            condition: &condition,
            source: o.get("source").as_str().unwrap_or("idle"),
            bin,
            refurbish: input.flag("refurbish"),
            available_from: o.get("available_from").as_str().map(str::to_string),
        };
        let (id, item_writes) = stock_in(&wh, &card, how)?;
        data.set("condition", &condition);
        data.item_ids = vec![id.clone()];
        data.set("in_on", dates::today());
        data.history
            .push(common::history_entry("accepted", json!({ "item": id })));
        writes.push(Write::update("warehouse_orders", &order, &data)?);
        writes.extend(item_writes);
        item_id = Some(id);
    } else {
        if note.is_none() {
            return Err(Error::validation("note", "say why the intake is refused")
                .with_code("reason_required"));
        }
        data.history
            .push(common::history_entry("rejected", json!(note)));
        writes.push(Write::update("warehouse_orders", &order, &data)?);
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
            &o.warehouse_org,
            &json!({
                "item_id": item, "order_id": order.id, "card_id": card.id,
                "asset_no": card.data.asset_no, "category": card.data.category,
                "original_value": card.data.original_value, "from_org": card.org,
                "warehouse_id": o.warehouse_id,
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
    find = list::filter_one_of(find, req, "status", ITEM_STATUSES)?;
    find = list::filter_eq(&["warehouse_id", "condition", "card_org"], find, req);
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
    list::respond(
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
    let item = items().fetch::<Item>(req.param("id")?)?;
    require_keeper(&item.org)?;
    let input = Form::of(req).unwrap_or_default();
    let mut data = item.data.clone();
    data.status = item_next(&item.data.status, event)?.into();
    if event == "ready"
        && let Some(c) = input.text("condition")
    {
        data.condition = condition_of(c)?;
    }
    data.history
        .push(common::history_entry(event, json!(input.text("note"))));
    Ok(Response::json(&items().update(
        &item.id,
        item.revision,
        &data,
    )?))
}

/// A condition a keeper names after a refurbishment or a return.
fn condition_of(c: String) -> Result<String> {
    if !CONDITIONS.contains(&c.as_str()) {
        return Err(Error::validation(
            "condition",
            format!("condition is one of {}", CONDITIONS.join(", ")),
        )
        .with_code("not_in_vocabulary"));
    }
    Ok(c)
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
        .page::<Item>()?;
    Ok(page
        .records
        .into_iter()
        .map(|d| {
            let i = &d.data;
            json!({
                "id": d.id, "org": d.org, "no": i.no, "name": i.name,
                "category": i.category, "quantity": i.quantity,
                "condition": i.condition, "warehouse_id": i.warehouse_id,
                "warehouse_name": i.warehouse_name, "original_value": i.original_value,
                "net_value": i.net_value, "available_from": i.available_from,
            })
        })
        .collect())
}

// ----- outflow orders --------------------------------------------------

fn list_orders(req: &Request) -> Result<Response> {
    let mut find = orders().find();
    find = list::filter_one_of(find, req, "kind", ORDER_KINDS)?;
    find = list::filter_one_of(find, req, "status", ORDER_STATUSES)?;
    find = list::filter_eq(&["item_id", "warehouse_id", "demand_id"], find, req);
    if req.query_param("overdue").as_deref() == Some("true") {
        find = find.eq("overdue", true);
    }
    let find = list::within_org(find, req).sort_desc("no");
    list::respond(
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

/// The cap a demand or plan line puts on the saving, checked against the
/// items' categories.
fn saving_cap(
    input: &Form,
    to_org: Option<&str>,
    list: &[Doc<Item>],
) -> Result<(Option<Doc<Demand>>, Option<i64>, Value)> {
    let fits = |prefix: &str| list.iter().all(|i| i.data.category.starts_with(prefix));
    if let Some(demand_id) = input.text("demand_id") {
        let demand = demands()
            .fetch::<Demand>(&demand_id)
            .map_err(|e| e.with_field("demand_id"))?;
        if demand.data.status != "open" {
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
        if !fits(&demand.data.category_prefix) {
            return Err(
                Error::validation("item_ids", "an item is not of the demand's category")
                    .with_code("category_mismatch"),
            );
        }
        let cap = demand.data.unit_budget;
        let link = json!({ "demand_id": demand.id });
        return Ok((Some(demand), cap, link));
    }
    if let Some(plan_id) = input.text("plan_id") {
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
    let input = Form::of(req)?;
    let kind = input.required("kind")?;
    if kind == "intake" || !ORDER_KINDS.contains(&kind.as_str()) {
        return Err(Error::validation(
            "kind",
            "kind is one of reallocation, loan, lease, disposal, donation, withdrawal (intake: POST /warehouse/intake)",
        ).with_code("not_in_vocabulary"));
    }
    let ids = input.ids("item_ids", MAX_ITEMS_PER_ORDER)?;
    let mut list = Vec::with_capacity(ids.len());
    for id in &ids {
        let item = items()
            .fetch::<Item>(id)
            .map_err(|e| e.with_field("item_ids"))?;
        if item.data.status != "in_stock" {
            return Err(Error::new(
                409,
                "item_unavailable",
                format!("item {:?} is {:?}", item.data.no, item.data.status),
            )
            .with_field("item_ids"));
        }
        list.push(item);
    }
    let first = list[0].data.clone();
    if list
        .iter()
        .any(|i| i.data.warehouse_id != first.warehouse_id)
    {
        return Err(
            Error::validation("item_ids", "one order takes items of one warehouse")
                .with_code("one_warehouse_per_order"),
        );
    }
    let wh_org = list[0].org.clone();
    let keeper = authz::allowed_at("assets.warehouse", &wh_org);
    let acting = common::acting_org().unwrap_or_default();
    let mut to_org = input.text("to_org");
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
            if kind == "loan" && to_org.is_none() && input.text("counterparty").is_none() {
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
                if list
                    .iter()
                    .any(|i| !reachable(&i.data.card_org).unwrap_or(false))
                {
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
            .any(|i| Some(i.data.card_org.as_str()) == to_org.as_deref())
    {
        return Err(Error::validation(
            "to_org",
            "the unit owns the item already; withdraw it instead",
        )
        .with_code("already_owner"));
    }
    let mut order = Order {
        kind: kind.clone(),
        warehouse_id: first.warehouse_id.clone(),
        warehouse_org: wh_org.clone(),
        warehouse_name: first.warehouse_name.clone(),
        item_ids: ids.clone(),
        note: input.text("note"),
        created_by: actor(),
        created_on: dates::today(),
        ..Order::default()
    };
    match kind.as_str() {
        "loan" | "lease" => {
            let due_on = input.date("due_on")?.ok_or_else(|| {
                Error::validation("due_on", "the return date is required").with_code("required")
            })?;
            if due_on < dates::today() {
                return Err(Error::validation("due_on", "the return date has passed")
                    .with_code("due_passed"));
            }
            order.due_on = Some(due_on);
            order.counterparty = input.text("counterparty");
            if kind == "lease" && order.counterparty.is_none() {
                return Err(Error::validation("counterparty", "the lessee is required")
                    .with_code("required"));
            }
            if let Some(v) = input.get("income_yuan") {
                let income = yuan_to_fen(v).ok_or_else(|| {
                    Error::validation("income_yuan", "an amount in yuan")
                        .with_code("amount_invalid")
                })?;
                order.set("income", income);
            }
        }
        "disposal" => {
            order.method = Some(input.one_of("method", DISPOSAL_METHODS, "")?);
            order.set("appraisal", input.text("appraisal"));
        }
        "donation" => order.counterparty = Some(input.required("counterparty")?),
        _ => {}
    }
    let reason = input.required("reason")?;
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
    let saving: i64 = if kind == "reallocation" && !link.is_null() {
        list.iter()
            .map(|i| saving_for(i.data.original_value, cap))
            .sum()
    } else {
        0
    };
    let status = if keeper { "reserved" } else { "requested" };
    order.no = no;
    order.status = status.into();
    order.items = list
        .iter()
        .map(|i| {
            json!({
                "item_id": i.id, "no": i.data.no, "card_id": i.data.card_id,
                "card_org": i.data.card_org, "asset_no": i.data.asset_no, "name": i.data.name,
                "category": i.data.category, "original_value": i.data.original_value,
                "net_value": i.data.net_value,
            })
        })
        .collect();
    order.total_value = list.iter().map(|i| i.data.original_value).sum();
    order.to_org = to_org;
    order.demand_id = demand.map(|d| d.id);
    order.history = vec![json!({ "on": dates::today(), "actor": actor(), "action": status })];
    order.set("item_id", &ids[0]);
    order.set("saving", saving);
    order.set("link", link);
    order.set("reason", reason);
    let mut writes = vec![Write::insert_with(
        "warehouse_orders",
        Some(&id),
        Some(&order_org),
        &order,
    )?];
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
    if keeper && input.flag("submit") && needs_approval(&kind) {
        return Ok(Response::json(&submit_order(&doc.id)?).with_status(201));
    }
    Ok(Response::json(&doc).with_status(201))
}

fn reserve_write(item: &Doc<Item>, order_id: &str) -> Result<Write> {
    let mut data = item.data.clone();
    data.status = item_next(&item.data.status, "reserve")?.into();
    data.order_id = Some(order_id.into());
    data.history.push(common::history_entry(
        "reserved",
        json!({ "order": order_id }),
    ));
    Write::update("warehouse_items", item, &data)
}

/// The order's items, each checked to be held by the order.
fn held_items(order: &Doc<Order>) -> Result<Vec<Doc<Item>>> {
    let mut out = Vec::new();
    for id in &order.data.item_ids {
        let item = items().fetch::<Item>(id)?;
        if item.data.order_id.as_deref() != Some(order.id.as_str()) {
            return Err(Error::new(
                409,
                "item_not_held",
                format!("item {:?} is not held by this order", item.data.no),
            ));
        }
        out.push(item);
    }
    Ok(out)
}

/// The order moved to `to`, with the step in its history.
fn order_step(order: &Doc<Order>, to: &str, action: &str, note: Value) -> Order {
    let mut data = order.data.clone();
    data.status = to.into();
    data.history.push(common::history_entry(action, note));
    data
}

fn fetch_order(req: &Request) -> Result<Doc<Order>> {
    orders().fetch::<Order>(req.param("id")?)
}

/// `POST /warehouse/orders/{id}/accept` `{submit?}`: the keeper takes a
/// unit's request and reserves its items.
fn accept(req: &Request) -> Result<Response> {
    let order = fetch_order(req)?;
    let o = &order.data;
    require_keeper(&o.warehouse_org)?;
    let to = order_next(&o.kind, &o.status, "accept")?;
    let data = order_step(&order, to, "reserved", json!(null));
    let mut writes = vec![Write::update("warehouse_orders", &order, &data)?];
    for id in &o.item_ids {
        let item = items().fetch::<Item>(id)?;
        if item.data.status != "in_stock" {
            return Err(Error::new(
                409,
                "item_unavailable",
                format!("item {:?} is {:?} now", item.data.no, item.data.status),
            ));
        }
        writes.push(reserve_write(&item, &order.id)?);
    }
    let written = transact(writes)?;
    if Form::of(req).unwrap_or_default().flag("submit") && needs_approval(&o.kind) {
        return Ok(Response::json(&submit_order(&order.id)?));
    }
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/submit`: a reserved reallocation, disposal
/// or donation goes to approval.
fn submit(req: &Request) -> Result<Response> {
    let order = fetch_order(req)?;
    require_keeper(&order.data.warehouse_org)?;
    Ok(Response::json(&submit_order(&order.id)?))
}

fn submit_order(id: &str) -> Result<Doc<Order>> {
    let order = orders().fetch::<Order>(id)?;
    let o = &order.data;
    let to = order_next(&o.kind, &o.status, "submit")?;
    let total = o.total_value;
    let flow = if o.kind != "reallocation"
        && total >= crate::rules::current()?.disposal_region_threshold
    {
        "warehouse-disposal-region".to_string()
    } else {
        format!("warehouse-{}", o.kind)
    };
    let form = json!({
        "no": o.no, "kind": o.kind, "items": o.items,
        "total_value_yuan": fen_to_yuan(total), "to_org": o.to_org,
        "counterparty": o.counterparty, "method": o.method,
        "reason": o.get("reason"),
        "title": crate::common::both_langs(flow_title(&o.kind), &o.no),
        "summary": order_summary(o),
    });
    let instance = approvals::start(
        &flow,
        &order.id,
        &format!("{} {}", flow_title(&o.kind), o.no),
        Some(&o.warehouse_org),
        &form,
    )?;
    let mut data = order_step(&order, to, "submitted", json!({ "flow": flow }));
    data.approval_id = Some(instance.id);
    data.set("flow", &flow);
    data.set("submitted_on", dates::today());
    orders().update(&order.id, order.revision, &data)
}

/// The subject summary of a warehouse order's approval (docs/plugin-guide.md,
/// "What the approver sees").
fn order_summary(o: &Order) -> Value {
    use crate::common::summary_line as line;
    let mut lines = vec![
        line("单据编号", "Order no.", json!(o.no), "text"),
        line("物品数量", "Items", json!(o.items.len()), "number"),
        line(
            "原值合计",
            "Total original value",
            json!(o.total_value),
            "money_fen",
        ),
    ];
    let reason = o.get("reason").as_str();
    for (v, zh, en) in [
        (o.to_org.as_deref(), "调入单位", "Receiving unit"),
        (o.counterparty.as_deref(), "对方单位", "Counterparty"),
        (o.method.as_deref(), "处置方式", "Disposal method"),
        (reason, "事由", "Reason"),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            let value = match zh {
                "调入单位" => crate::common::org_name(v),
                "处置方式" => crate::documents::method_label(v),
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
    let order = fetch_order(req)?;
    let o = &order.data;
    require_keeper(&o.warehouse_org)?;
    let to = order_next(&o.kind, &o.status, "issue")?;
    let list = held_items(&order)?;
    let today = dates::today();
    let note = json!(Form::of(req).unwrap_or_default().text("note"));
    let mut data = order_step(&order, to, "issued", note);
    data.set("out_on", &today);
    if to == "completed" {
        data.set("completed_on", &today);
    }
    let mut writes = vec![Write::update("warehouse_orders", &order, &data)?];
    let temporary = o.kind == "loan" || o.kind == "lease";
    for item in &list {
        let card = cards().fetch::<Card>(&item.data.card_id)?;
        let mut c = card.data.clone();
        let mut idata = item.data.clone();
        if temporary {
            idata.status = item_next("reserved", "lend")?.into();
            idata.due_on = o.due_on.clone();
            c.use_status = if o.kind == "lease" { "rented" } else { "lent" }.into();
            c.lease = Some(json!({
                "warehouse_order": order.id, "counterparty": o.counterparty.as_ref().or(o.to_org.as_ref()),
                "from": today, "until": o.due_on, "income": o.get("income"),
            }));
        } else {
            idata.status = item_next("reserved", "out")?.into();
            idata.out_type = Some("withdrawn".into());
            idata.out_on = Some(today.clone());
            c.use_status = "idle".into();
            c.locked_by = None;
            if item.data.warehouse_kind == "physical" {
                c.location = item.data.location_before.clone();
                c.custodian = item.data.custodian_before.clone();
            }
        }
        idata.history.push(common::history_entry(
            "issued",
            json!({ "order": order.id, "kind": o.kind }),
        ));
        writes.push(Write::update("warehouse_items", item, &idata)?);
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            &format!("warehouse_{}_out", o.kind),
            Some(&order.id),
            json!({ "no": o.no, "due_on": o.due_on }),
        ));
    }
    if temporary && let Some(w) = demand_progress(&order, list.len() as u64)? {
        writes.push(w);
    }
    let written = transact(writes)?;
    publish_out(&order)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/return` `{condition?, refurbish?, note?}`:
/// 归还验收: loaned or leased items come back into stock.
fn return_items(req: &Request) -> Result<Response> {
    let order = fetch_order(req)?;
    let o = &order.data;
    require_keeper(&o.warehouse_org)?;
    let to = order_next(&o.kind, &o.status, "return")?;
    let input = Form::of(req).unwrap_or_default();
    let condition = input.text("condition").map(condition_of).transpose()?;
    let refurbish = input.flag("refurbish");
    let list = held_items(&order)?;
    let today = dates::today();
    let note = json!({ "condition": condition, "note": input.text("note") });
    let mut data = order_step(&order, to, "returned", note.clone());
    data.set("returned_on", &today);
    data.set("completed_on", &today);
    data.set("return_inspection", note);
    let mut writes = vec![Write::update("warehouse_orders", &order, &data)?];
    for item in &list {
        let card = cards().fetch::<Card>(&item.data.card_id)?;
        let mut idata = item.data.clone();
        let event = if refurbish {
            "return_for_refurbishing"
        } else {
            "return"
        };
        idata.status = item_next("on_loan", event)?.into();
        idata.order_id = None;
        idata.due_on = None;
        if let Some(c) = &condition {
            idata.condition = c.clone();
        }
        idata.history.push(common::history_entry(
            "returned",
            json!({ "order": order.id }),
        ));
        writes.push(Write::update("warehouse_items", item, &idata)?);
        let mut c = card.data.clone();
        c.use_status = "in_warehouse".into();
        c.lease = None;
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            "warehouse_returned",
            Some(&order.id),
            json!({ "no": o.no, "condition": condition }),
        ));
    }
    let written = transact(writes)?;
    common::publish(
        "warehouse.returned",
        &order.id,
        &o.warehouse_org,
        &json!({
            "order_id": order.id, "kind": o.kind, "item_ids": o.item_ids,
            "to_org": o.to_org, "condition": condition, "returned_on": today,
        }),
        &format!("{}:returned", order.id),
    )?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// Writes that give the order's reserved items back to stock.
fn release_writes(order: &Doc<Order>) -> Result<Vec<Write>> {
    let mut writes = Vec::new();
    for id in &order.data.item_ids {
        let Some(item) = items().get::<Item>(id)? else {
            continue;
        };
        if item.data.order_id.as_deref() == Some(order.id.as_str())
            && item.data.status == "reserved"
        {
            let mut data = item.data.clone();
            data.status = item_next("reserved", "release")?.into();
            data.order_id = None;
            data.history.push(common::history_entry(
                "released",
                json!({ "order": order.id }),
            ));
            writes.push(Write::update("warehouse_items", &item, &data)?);
        }
    }
    Ok(writes)
}

/// Writes that free an intake's card.
fn unlock_intake_writes(order: &Doc<Order>, action: &str) -> Result<Vec<Write>> {
    let mut writes = Vec::new();
    for id in &order.data.card_ids {
        let card = cards().fetch::<Card>(id)?;
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
    let order = fetch_order(req)?;
    let o = &order.data;
    require_keeper(&o.warehouse_org)?;
    if o.kind == "intake" {
        return Err(Error::new(
            409,
            "use_inspect",
            "an intake is refused by inspecting it with accept: false",
        ));
    }
    let to = order_next(&o.kind, &o.status, "reject")?;
    let note = Form::of(req)?.text("note").ok_or_else(|| {
        Error::validation("note", "say why the request is declined").with_code("reason_required")
    })?;
    let data = order_step(&order, to, "rejected", json!(note));
    let written = transact(vec![Write::update("warehouse_orders", &order, &data)?])?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// `POST /warehouse/orders/{id}/cancel`: the requester or a keeper calls
/// an order off before its items leave; reserved items return to stock,
/// an intake's card is free again, a running approval is withdrawn.
fn cancel(req: &Request) -> Result<Response> {
    let order = fetch_order(req)?;
    let o = &order.data;
    if !authz::allowed_at("assets.warehouse", &o.warehouse_org) {
        require("assets.manage")?;
    }
    if o.status == "in_approval" {
        approvals::withdraw(o.approval_id.as_deref().unwrap_or_default())?;
        // The withdrawn event finds the order closed already.
        let order = orders().fetch::<Order>(&order.id)?;
        close_order(&order, "withdrawn", json!({ "by": actor() }))?;
        return Ok(Response::json(&orders().fetch::<Value>(&order.id)?));
    }
    let to = order_next(&o.kind, &o.status, "cancel")?;
    let data = order_step(&order, to, "cancelled", json!(null));
    let mut writes = vec![Write::update("warehouse_orders", &order, &data)?];
    if o.kind == "intake" {
        writes.extend(unlock_intake_writes(&order, "warehouse_intake_cancelled")?);
    } else {
        writes.extend(release_writes(&order)?);
    }
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// A rejected or withdrawn approval: the order ends, its items go back.
fn close_order(order: &Doc<Order>, outcome: &str, note: Value) -> Result<()> {
    let to = order_next(&order.data.kind, &order.data.status, outcome)?;
    let data = order_step(order, to, outcome, note);
    let mut writes = vec![Write::update("warehouse_orders", order, &data)?];
    writes.extend(release_writes(order)?);
    transact(writes).map(|_| ())
}

/// The demand's progress after `count` items reached its unit.
fn demand_progress(order: &Doc<Order>, count: u64) -> Result<Option<Write>> {
    let Some(demand_id) = &order.data.demand_id else {
        return Ok(None);
    };
    let Some(demand) = demands().get::<Demand>(demand_id)? else {
        return Ok(None);
    };
    let mut data = demand.data.clone();
    data.fulfilled += count;
    if data.fulfilled >= data.quantity.max(1) {
        data.status = "fulfilled".into();
        data.rest
            .insert("fulfilled_on".into(), json!(dates::today()));
    }
    data.history.push(common::history_entry(
        "matched",
        json!({ "order": order.id, "items": count }),
    ));
    Ok(Some(Write::update("demands", &demand, &data)?))
}

fn publish_out(order: &Doc<Order>) -> Result<()> {
    let o = &order.data;
    common::publish(
        "warehouse.out",
        &order.id,
        &o.warehouse_org,
        &json!({
            "order_id": order.id, "no": o.no, "type": o.kind,
            "item_ids": o.item_ids, "to_org": o.to_org,
            "total_value": o.total_value, "saving": o.get("saving"),
            "due_on": o.due_on,
        }),
        &format!("{}:out", order.id),
    )
}

/// An approval outcome for a warehouse order (`subject_id` is the order).
/// Safe to receive twice: only an order still in approval under this
/// instance changes.
pub fn on_approval(outcome: &Outcome) -> Result<()> {
    let subject = &outcome.subject_id;
    let Some(order) = orders().get::<Order>(subject)? else {
        log::warn(format!(
            "approval outcome for unknown subject {subject} ignored"
        ));
        return Ok(());
    };
    if order.data.approval_id.as_deref() != Some(outcome.instance_id.as_str())
        || order.data.status != "in_approval"
    {
        return Ok(());
    }
    let note = common::outcome_note(outcome);
    match outcome.decision {
        Decision::Approved => execute_outflow(&order, note),
        Decision::Rejected => close_order(&order, "rejected", note),
        Decision::Withdrawn => close_order(&order, "withdrawn", note),
        Decision::Returned => Ok(()),
    }
}

/// An approved reallocation, disposal or donation takes effect, all in
/// one transaction: the items leave, the cards are reduced (and, for a
/// reallocation, an incoming card appears at the receiving unit).
fn execute_outflow(order: &Doc<Order>, note: Value) -> Result<()> {
    let o = &order.data;
    let to = order_next(&o.kind, "in_approval", "approved")?;
    let list = held_items(order)?;
    let today = dates::today();
    let month = dates::month_text(dates::this_month());
    let mut data = order_step(order, to, "approved", note);
    data.set("out_on", &today);
    data.set("completed_on", &today);
    let mut writes = vec![Write::update("warehouse_orders", order, &data)?];
    let to_org = o.to_org.clone().unwrap_or_default();
    let mut incoming = Vec::new();
    let mut events = Vec::new();
    for item in &list {
        let card = cards().fetch::<Card>(&item.data.card_id)?;
        let mut c = card.data.clone();
        c.locked_by = None;
        c.reduced_on = month.clone();
        let out_type = match o.kind.as_str() {
            "reallocation" => {
                let mut new_card = Card::incoming(&card);
                new_card.use_status = "in_use".into();
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
                c.disposal_method = if o.kind == "donation" {
                    "donation".into()
                } else {
                    o.method.clone().unwrap_or_else(|| "scrap".into())
                };
                events.push((
                    "disposed",
                    card.id.clone(),
                    card.org.clone(),
                    json!({ "card_id": card.id, "asset_no": c.asset_no, "method": c.disposal_method, "original_value": c.original_value, "net_value": c.net_value, "warehouse_order": order.id }),
                ));
                if o.kind == "donation" {
                    "donated"
                } else {
                    "disposed"
                }
            }
        };
        let mut idata = item.data.clone();
        idata.status = item_next("reserved", "out")?.into();
        idata.out_type = Some(out_type.into());
        idata.out_on = Some(today.clone());
        idata.history.push(common::history_entry(
            out_type,
            json!({ "order": order.id }),
        ));
        writes.push(Write::update("warehouse_items", item, &idata)?);
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            &format!("warehouse_{out_type}"),
            Some(&order.id),
            json!({ "no": o.no, "to_org": o.to_org }),
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
            writes.push(Write::insert_with(
                "cards",
                Some(&id),
                Some(&to_org),
                &card,
            )?);
        }
        if let Some(w) = demand_progress(order, list.len() as u64)? {
            writes.push(w);
        }
    }
    transact(writes)?;
    common::publish_all(&order.id, events)?;
    publish_out(order)
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
            .page::<Order>()?;
        let mut writes = Vec::new();
        let mut due = Vec::new();
        for order in page.records.iter().filter(|o| o.data.overdue != Some(true)) {
            let mut data = order_step(order, &order.data.status, "overdue", json!(null));
            data.overdue = Some(true);
            data.set("overdue_since", &today);
            writes.push(Write::update("warehouse_orders", order, &data)?);
            due.push(order);
        }
        if !writes.is_empty() {
            transact(writes)?;
        }
        for order in due {
            let o = &order.data;
            let due_on = o.due_on.as_deref().unwrap_or(&today);
            common::publish(
                "warehouse.loan_overdue",
                &order.id,
                &o.warehouse_org,
                &json!({
                    "order_id": order.id, "no": o.no, "kind": o.kind,
                    "to_org": o.to_org, "counterparty": o.counterparty,
                    "due_on": o.due_on, "days_overdue": dates::days_between(due_on, &today),
                    "item_ids": o.item_ids,
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
    let input = Form::of(req)?;
    let category = input.required("category")?;
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
    let description = input.required("description")?;
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
    let org = input
        .text("org")
        .or_else(common::acting_org)
        .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?;
    let demand = Demand {
        category: category.to_ascii_uppercase(),
        category_prefix: prefix,
        quantity,
        description,
        needed_by: input.date("needed_by")?,
        unit_budget,
        status: "open".into(),
        created_by: actor(),
        created_on: dates::today(),
        history: vec![json!({ "on": dates::today(), "actor": actor(), "action": "posted" })],
        ..Demand::default()
    };
    let doc = demands().insert_with(None, Some(&org), &demand)?;
    Ok(Response::json(&doc).with_status(201))
}

fn list_demands(req: &Request) -> Result<Response> {
    let mut find = list::filter_eq(&["status"], demands().find(), req);
    if let Some(category) = req.query_param("category").filter(|c| !c.is_empty()) {
        let prefix = category_prefix(&category).ok_or_else(|| {
            Error::validation("category", "a GB/T 14885 code or prefix")
                .with_code("category_unknown")
        })?;
        find = find.prefix("category", &prefix);
    }
    let find = list::within_org(find, req).sort_desc("created-at");
    list::respond(
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
    let demand = demands().fetch::<Demand>(req.param("id")?)?;
    if demand.data.status != "open" {
        return Err(Error::new(409, "not_open", "the demand is not open"));
    }
    let mut data = demand.data.clone();
    data.status = "closed".into();
    let note = json!(Form::of(req).unwrap_or_default().text("note"));
    data.history.push(common::history_entry("closed", note));
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
        rows.extend(find.all::<Value>(200_000)?.into_iter().map(|d| d.data));
    }
    let months = throughput(&rows, &from, &to);
    let mut stock_find = items().find();
    if let Some(w) = &warehouse {
        stock_find = stock_find.eq("warehouse_id", w.as_str());
    }
    let stock = stock_by_status(stock_find)?;
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
            let mut row = vec![json!(m), json!(r.items_in), export::yuan(r.value_in)];
            for k in out_kinds {
                row.push(json!(r.items_out.get(k).copied().unwrap_or(0)));
                *total.items_out.entry(k.to_string()).or_default() +=
                    r.items_out.get(k).copied().unwrap_or(0);
            }
            row.extend([
                export::yuan(r.value_out),
                export::yuan(r.redeployed),
                export::yuan(r.saving),
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
            export::yuan(total.value_in),
        ];
        for k in out_kinds {
            row.push(json!(total.items_out.get(k).copied().unwrap_or(0)));
        }
        row.extend([
            export::yuan(total.value_out),
            export::yuan(total.redeployed),
            export::yuan(total.saving),
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
        ("公物仓（实体仓）", "physical", Some("公物仓库房")),
        ("公物仓（虚拟仓）", "virtual", None),
    ] {
        let wh = Warehouse {
            name: name.into(),
            kind: kind.into(),
            address: address.map(str::to_string),
            zones: if kind == "physical" {
                vec!["A区".into(), "B区".into(), "C区".into()]
            } else {
                Vec::new()
            },
            active: true,
            created_by: actor(),
            created_on: dates::today(),
            ..Warehouse::default()
        };
        made.push(warehouses().insert_with(None, Some(home), &wh)?);
    }
    publish_physical(home)?;
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
        let how = Intake {
            order_id: &order_id,
            condition: "good",
            source: "idle",
            bin: physical.then(|| "A区".to_string()),
            refurbish: false,
            available_from: None,
        };
        let (item_id, mut writes) = stock_in(wh, card, how)?;
        let mut order = intake_order(wh, card, no, "completed");
        order.item_ids = vec![item_id];
        order.history = vec![json!({ "on": dates::today(), "actor": actor(), "action": "demo" })];
        order.set("condition", "good");
        order.set("source", "idle");
        order.set("in_on", dates::today());
        writes.insert(
            0,
            Write::insert_with("warehouse_orders", Some(&order_id), Some(&card.org), &order)?,
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
