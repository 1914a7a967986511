//! Lifecycle documents (业务单据): configuration plan, registration, change,
//! transfer, rent/lend, repair and disposal. Each goes through the kernel's
//! approvals; the cards it names are locked from creation until it ends;
//! each transition lands in the cards' activity logs.
//!
//! Status: `draft` → `in_approval` → `approved` (waiting for a follow-up:
//! receipt, return, repair done) → `completed`; side exits `rejected`,
//! `withdrawn`, `void`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tianshan_sdk::approvals::{Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, Write, collection, transact};

use crate::cards::cards;
use crate::common::{self, activity, actor, card_write, require};
use crate::dates;
use crate::model::{Card, USE_STATUS, fen_to_yuan};

pub const KINDS: &[&str] = &[
    "plan",
    "registration",
    "change",
    "transfer",
    "lease",
    "repair",
    "disposal",
];

/// Where a document stands (see the module comment).
pub const STATUSES: &[&str] = &[
    "draft",
    "in_approval",
    "approved",
    "completed",
    "rejected",
    "withdrawn",
    "void",
];

/// The six disposal methods: free transfer, sale, swap, scrap, write-off
/// of losses, donation.
pub const DISPOSAL_METHODS: &[&str] =
    &["transfer", "sale", "swap", "scrap", "write_off", "donation"];

/// A transfer's approval writes each card's reduction, the receiving
/// unit's incoming card and both activity entries in one transaction
/// (the kernel takes at most 500 writes).
const MAX_TRANSFER_CARDS: usize = 120;

/// Fields a change document may set on a booked card.
const CHANGEABLE: &[&str] = &[
    "name",
    "spec",
    "brand",
    "department",
    "custodian",
    "location",
    "use_status",
    "original_value",
    "life_months",
    "voucher_no",
    "warranty_until",
    "ext",
];

/// A lifecycle document. `cards` are the summaries the pages and the
/// approver read; `payload` holds what its kind adds (a transfer's
/// receiver, a disposal's method, a plan's lines). Step dates and the flow
/// stay in `rest` as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Document {
    pub kind: String,
    pub no: String,
    pub status: String,
    pub card_ids: Vec<String>,
    pub cards: Vec<Value>,
    pub payload: Value,
    pub total_value: i64,
    pub note: Option<String>,
    pub created_by: String,
    pub created_by_name: String,
    pub created_on: String,
    pub history: Vec<Value>,
    pub approval_id: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Document {
    /// The document moved to `status` by `action`, dated today in
    /// `dated` and in its history.
    fn step(&self, status: &str, dated: &str, action: &str, note: Value) -> Document {
        let mut next = self.clone();
        next.status = status.into();
        next.rest.insert(dated.into(), json!(dates::today()));
        next.history.push(common::history_entry(action, note));
        next
    }
}

fn documents() -> tianshan_sdk::storage::Collection {
    collection("documents")
}

fn prefix(kind: &str) -> &'static str {
    match kind {
        "plan" => "PZ",
        "registration" => "DJ",
        "change" => "BG",
        "transfer" => "DB",
        "lease" => "CZ",
        "repair" => "WX",
        _ => "CZZ",
    }
}

fn title(kind: &str) -> &'static str {
    match kind {
        "plan" => "资产配置计划 Configuration plan",
        "registration" => "资产登记 Registration",
        "change" => "资产变更 Change",
        "transfer" => "资产调拨 Transfer",
        "lease" => "资产出租出借 Rent or lend",
        "repair" => "资产维修 Repair",
        _ => "资产处置 Disposal",
    }
}

pub fn define_flows() -> Result<()> {
    let parent = || {
        Step::any(
            "上级机关事务管理局审核 Parent administration review",
            "org-admin",
            Level::Parent,
        )
    };
    for kind in KINDS {
        approvals::define(&Flow::new(kind, title(kind)).step(parent()))?;
    }
    approvals::define(
        &Flow::new(
            "disposal-region",
            "资产处置（大额）Disposal above the threshold",
        )
        .step(parent())
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
        .get("/documents", list)
        .requires("assets.view")
        .post("/documents", create)
        .requires("assets.manage")
        .get("/documents/{id}", show)
        .requires("assets.view")
        .delete("/documents/{id}", void)
        .requires("assets.manage")
        .post("/documents/{id}/submit", submit)
        .requires("assets.manage")
        .post("/documents/{id}/withdraw", withdraw)
        .post("/documents/{id}/return", lease_returned)
        .requires("assets.manage")
        .post("/documents/{id}/complete", complete)
        .requires("assets.manage")
        .post("/receipts", receive)
        .requires("assets.manage")
        .get("/plan-check", plan_check)
        .requires("assets.view")
}

fn list(req: &Request) -> Result<Response> {
    let mut find = documents().find();
    find = list::filter_one_of(find, req, "kind", KINDS)?;
    find = list::filter_one_of(find, req, "status", STATUSES)?;
    if let Some(q) = req.query_param("q").filter(|v| !v.is_empty()) {
        find = find.prefix("no", &q.to_ascii_uppercase());
    }
    find = list::within_org(find, req).sort_desc("no");
    list::respond(
        req,
        &find,
        "documents",
        &[
            ("no", "/data/no"),
            ("kind", "/data/kind"),
            ("status", "/data/status"),
            ("org", "/org"),
            ("cards", "#/data/card_ids"),
            ("total_value", "¥/data/total_value"),
            ("created_by", "/data/created_by"),
            ("created_on", "/data/created_on"),
        ],
    )
}

/// Checks the kind's own fields and the cards' states; returns the
/// payload to store and the cards' total original value.
fn validate(kind: &str, input: &Form, cards_in: &[Doc<Card>]) -> Result<Value> {
    let require_state = |states: &[&str], what: &str| -> Result<()> {
        for c in cards_in {
            if !states.contains(&c.data.state.as_str()) {
                return Err(Error::validation(
                    "card_ids",
                    format!("card {} is {}; {what}", c.data.asset_no, c.data.state),
                )
                .with_code("card_state")
                .with_param("asset_no", c.data.asset_no.as_str()));
            }
        }
        Ok(())
    };
    match kind {
        "registration" => {
            require_state(&["draft"], "only drafts are registered")?;
            // Cards that reached the register another way (an event, an
            // older draft) meet the same checks as a form's before booking.
            let today = dates::today();
            for c in cards_in {
                implausible(&c.data, &today, "card_ids")?;
            }
            Ok(json!({}))
        }
        "change" => {
            require_state(&["booked"], "only booked cards change")?;
            let changes = input
                .get("changes")
                .and_then(Value::as_object)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::validation("changes", "say what changes").with_code("nothing_changed")
                })?;
            for (field, value) in changes {
                if !CHANGEABLE.contains(&field.as_str()) {
                    return Err(Error::validation(
                        format!("changes.{field}"),
                        format!(
                            "{field} cannot be changed here (changeable: {})",
                            CHANGEABLE.join(", ")
                        ),
                    )
                    .with_code("not_changeable"));
                }
                if field == "use_status"
                    && !["in_use", "idle"].contains(&value.as_str().unwrap_or(""))
                {
                    return Err(Error::validation(
                        "changes.use_status",
                        "a change sets in_use or idle; renting, lending, repair and disposal have their own documents",
                    ).with_code("use_status_change"));
                }
            }
            // Applying the change to every card must give valid cards.
            for c in cards_in {
                apply_changes(&c.data, changes)?;
            }
            Ok(json!({ "changes": changes, "reason": input.required("reason")? }))
        }
        "transfer" => {
            require_state(&["booked"], "only booked cards are transferred")?;
            // Approval writes four records per card in one transaction.
            if cards_in.len() > MAX_TRANSFER_CARDS {
                return Err(Error::validation(
                    "card_ids",
                    format!("at most {MAX_TRANSFER_CARDS} cards per transfer"),
                )
                .with_code("too_many")
                .with_param("max", MAX_TRANSFER_CARDS));
            }
            // An org the kernel does not know would strand the cards at
            // approval: refuse it now, and keep the id when a code was given.
            let to_org = orgs::require_active("to_org", &input.required("to_org")?)?.id;
            if cards_in.iter().any(|c| c.org == to_org) {
                return Err(Error::validation(
                    "to_org",
                    "the receiving unit holds these cards already",
                )
                .with_code("same_unit"));
            }
            Ok(json!({ "to_org": to_org, "reason": input.required("reason")? }))
        }
        "lease" => {
            require_state(&["booked"], "only booked cards are rented or lent")?;
            for c in cards_in {
                if !["in_use", "idle"].contains(&c.data.use_status.as_str()) {
                    return Err(Error::validation(
                        "card_ids",
                        format!("card {} is {}", c.data.asset_no, c.data.use_status),
                    )
                    .with_code("card_state")
                    .with_param("asset_no", c.data.asset_no.as_str()));
                }
            }
            let mode = input.required("mode")?;
            if mode != "rent" && mode != "lend" {
                return Err(Error::validation("mode", "mode is rent or lend")
                    .with_code("not_in_vocabulary"));
            }
            let (from, until) = (input.required_date("from")?, input.required_date("until")?);
            if until < from {
                return Err(
                    Error::validation("until", "the contract ends before it starts")
                        .with_code("date_range"),
                );
            }
            let income = match input.get("income_yuan") {
                Some(v) => crate::model::yuan_to_fen(v).ok_or_else(|| {
                    Error::validation("income_yuan", "an amount in yuan")
                        .with_code("amount_invalid")
                })?,
                None => 0,
            };
            Ok(json!({
                "mode": mode,
                "counterparty": input.required("counterparty")?,
                "contract_no": input.text("contract_no"),
                "from": from,
                "until": until,
                "income": income,
            }))
        }
        "repair" => {
            require_state(&["booked"], "only booked cards are repaired")?;
            Ok(json!({
                "description": input.required("description")?,
                "vendor": input.text("vendor"),
            }))
        }
        "disposal" => {
            require_state(&["booked"], "only booked cards are disposed of")?;
            for c in cards_in {
                if ["rented", "lent"].contains(&c.data.use_status.as_str()) {
                    return Err(Error::validation(
                        "card_ids",
                        format!(
                            "card {} is {}; take it back first",
                            c.data.asset_no, c.data.use_status
                        ),
                    )
                    .with_code("card_out")
                    .with_param("asset_no", c.data.asset_no.as_str()));
                }
            }
            let method = input.required("method")?;
            if !DISPOSAL_METHODS.contains(&method.as_str()) {
                return Err(Error::validation(
                    "method",
                    format!("method is one of {}", DISPOSAL_METHODS.join(", ")),
                )
                .with_code("not_in_vocabulary"));
            }
            Ok(json!({
                "method": method,
                "reason": input.required("reason")?,
                "appraisal": input.text("appraisal"),
            }))
        }
        _ => Err(
            Error::validation("kind", format!("kind is one of {}", KINDS.join(", ")))
                .with_code("not_in_vocabulary"),
        ),
    }
}

/// The first of `card`'s implausible values (a future acquisition, ¥0) as
/// a 422 on `field` with its code and the card's number, or Ok.
fn implausible(card: &Card, today: &str, field: &str) -> Result<()> {
    match crate::model::plausibility(card, today).into_iter().next() {
        Some((which, code, _, en)) => {
            Err(Error::new(422, code, format!("{}: {en}", card.asset_no))
                .with_field(field)
                .with_param("asset_no", card.asset_no.clone())
                .with_param("date", card.acquired_on.clone())
                .with_param("today", today.to_string())
                .with_param("which", which))
        }
        None => Ok(()),
    }
}

/// The card after a change document's `changes`.
fn apply_changes(card: &Card, changes: &Map<String, Value>) -> Result<Card> {
    apply_changes_on(card, changes, &dates::today())
}

/// As [`apply_changes`], on `today`: a change may not set a value the form
/// refuses (¥0, an acquisition after today).
fn apply_changes_on(card: &Card, changes: &Map<String, Value>, today: &str) -> Result<Card> {
    let mut value = serde_json::to_value(card).map_err(|e| Error::internal(e.to_string()))?;
    for (field, v) in changes {
        value[field] = v.clone();
    }
    let mut changed: Card = serde_json::from_value(value).map_err(|e| {
        Error::validation("changes", format!("the change does not fit the card: {e}"))
            .with_code("invalid_body")
    })?;
    if changes.contains_key("original_value") {
        // A value adjustment moves the non-fiscal share; fiscal funding
        // stays as booked unless it exceeds the new value.
        changed.funding_fiscal = changed.funding_fiscal.min(changed.original_value);
        changed.funding_other = changed.original_value - changed.funding_fiscal;
    }
    changed.normalise().map_err(|e| {
        let mut out = Error::validation(
            format!("changes.{}", e.field().unwrap_or("card")),
            e.message().to_string(),
        )
        .with_code(e.code().to_string());
        for (k, v) in e.params().into_iter().flatten() {
            out = out.with_param(k, v.clone());
        }
        out
    })?;
    for (field, code, _, en) in crate::model::plausibility(&changed, today) {
        if changes.contains_key(field) {
            return Err(Error::new(422, code, en)
                .with_field(format!("changes.{field}"))
                .with_param("date", changed.acquired_on.clone())
                .with_param("today", today.to_string()));
        }
    }
    Ok(changed)
}

/// A plan: year, headcount and lines, each checked against the region's
/// standards and the public warehouse's stock.
fn validate_plan(input: &Form) -> Result<(Value, i64)> {
    let year = input
        .get("year")
        .and_then(Value::as_i64)
        .filter(|y| (2000..=2999).contains(y))
        .ok_or_else(|| {
            Error::validation("year", "the budget year is required").with_code("required")
        })?;
    let headcount = input
        .get("headcount")
        .and_then(Value::as_i64)
        .filter(|h| *h > 0)
        .ok_or_else(|| {
            Error::validation("headcount", "headcount (staff establishment) is required")
                .with_code("required")
        })?;
    let lines = input
        .get("lines")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            Error::validation("lines", "a plan needs at least one line").with_code("no_lines")
        })?;
    if lines.len() > 100 {
        return Err(Error::validation("lines", "at most 100 lines")
            .with_code("too_many")
            .with_param("max", 100));
    }
    let rules = crate::rules::current()?;
    let mut out = Vec::new();
    let mut total = 0i64;
    for (i, line) in lines.iter().enumerate() {
        let field = |f: &str| format!("lines[{i}].{f}");
        let category = line["category"].as_str().unwrap_or_default();
        let cat = crate::categories::find(category).ok_or_else(|| {
            Error::validation(field("category"), format!("unknown category {category:?}"))
                .with_code("category_unknown")
                .with_param("category", category)
        })?;
        let quantity = line["quantity"]
            .as_i64()
            .filter(|q| *q > 0)
            .ok_or_else(|| {
                Error::validation(field("quantity"), "quantity must be at least 1")
                    .with_code("quantity_min")
            })?;
        let unit_price = line
            .get("unit_price_yuan")
            .and_then(crate::model::yuan_to_fen)
            .or_else(|| line["unit_price"].as_i64())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                Error::validation(field("unit_price_yuan"), "the unit price is required")
                    .with_code("required")
            })?;
        let justification = line["justification"]
            .as_str()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut checks = Vec::new();
        if let Some(standard) = rules.standard_for(category) {
            if standard.max_unit_price > 0 && unit_price > standard.max_unit_price {
                return Err(Error::validation(
                    field("unit_price_yuan"),
                    format!(
                        "{} is above the standard's ceiling of ¥{} for {}",
                        fen_to_yuan(unit_price),
                        fen_to_yuan(standard.max_unit_price),
                        cat.name_zh
                    ),
                )
                .with_code("price_above_standard")
                .with_param("price", fen_to_yuan(unit_price))
                .with_param("ceiling", fen_to_yuan(standard.max_unit_price))
                .with_param("category", cat.name_zh));
            }
            if standard.max_per_person > 0.0 {
                let allowed = (standard.max_per_person * headcount as f64).floor() as i64;
                let held = cards()
                    .find()
                    .prefix("category", category.trim_end_matches('0'))
                    .eq("state", "booked")
                    .count()? as i64;
                if held + quantity > allowed {
                    return Err(Error::validation(
                        field("quantity"),
                        format!(
                            "{held} held + {quantity} planned exceeds the standard's {allowed} for a headcount of {headcount}"
                        ),
                    )
                    .with_code("quantity_above_standard")
                    .with_param("held", held)
                    .with_param("quantity", quantity)
                    .with_param("allowed", allowed)
                    .with_param("headcount", headcount));
                }
                checks.push(json!({ "standard": standard, "held": held, "allowed": allowed }));
            }
        }
        let in_warehouse = crate::warehouse::available_count(category)?;
        if in_warehouse > 0 && justification.is_empty() {
            return Err(Error::new(
                422,
                "warehouse_stock_available",
                format!(
                    "the public warehouse has {in_warehouse} matching item(s) of {}; take them or give a justification",
                    cat.name_zh
                ),
            )
            .with_field(field("justification"))
            .with_param("count", in_warehouse)
            .with_param("category", cat.name_zh));
        }
        total += unit_price * quantity;
        out.push(json!({
            "category": category,
            "name": line["name"].as_str().unwrap_or(cat.name_zh),
            "quantity": quantity,
            "unit_price": unit_price,
            "amount": unit_price * quantity,
            "reason": line["reason"].as_str().unwrap_or(""),
            "justification": justification,
            "warehouse_available": in_warehouse,
            "checks": checks,
        }));
    }
    Ok((
        json!({ "year": year, "headcount": headcount, "lines": out }),
        total,
    ))
}

/// What the warehouse holds for a category, shown before a plan line is
/// proposed: `?category=`.
fn plan_check(req: &Request) -> Result<Response> {
    let category = req
        .query_param("category")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Error::validation("category", "?category= is required").with_code("required")
        })?;
    let rules = crate::rules::current()?;
    Ok(Response::json(&json!({
        "category": category,
        "standard": rules.standard_for(&category),
        "warehouse_available": crate::warehouse::available_count(&category)?,
        "warehouse_items": crate::warehouse::available_items(&category, 20)?,
    })))
}

fn create(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let kind = input.required("kind")?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(
            Error::validation("kind", format!("kind is one of {}", KINDS.join(", ")))
                .with_code("not_in_vocabulary"),
        );
    }
    let doc = create_document(&kind, &input, input.text("org"))?;
    if input.flag("submit") {
        return match submit_document(&doc.id) {
            Ok(submitted) => Ok(Response::json(&submitted).with_status(201)),
            Err(e) => {
                // Create-and-submit is one action to the user: when the
                // approval cannot start (no approver, say), the draft goes
                // too and its cards are free again, so a retry is clean.
                let draft = documents().fetch::<Document>(&doc.id)?;
                close(&draft, "void", json!({ "reason": e.message() }))?;
                Err(e)
            }
        };
    }
    Ok(Response::json(&doc).with_status(201))
}

/// Creates a draft and locks its cards, in one transaction.
pub fn create_document(
    kind: &str,
    input: &Map<String, Value>,
    org: Option<String>,
) -> Result<Doc<Document>> {
    let input = &Form(input.clone());
    let (payload, ids, cards_in, total) = if kind == "plan" {
        let (payload, total) = validate_plan(input)?;
        (payload, Vec::new(), Vec::new(), total)
    } else {
        let ids = input.ids("card_ids", 200)?;
        let mut cards_in = Vec::with_capacity(ids.len());
        for id in &ids {
            let card = cards().fetch::<Card>(id)?;
            card.data.ensure_free(id)?;
            cards_in.push(card);
        }
        if cards_in.iter().any(|c| c.org != cards_in[0].org) {
            return Err(
                Error::validation("card_ids", "one document holds cards of one unit")
                    .with_code("one_unit_per_document"),
            );
        }
        let payload = validate(kind, input, &cards_in)?;
        let total = cards_in.iter().map(|c| c.data.original_value).sum();
        (payload, ids, cards_in, total)
    };
    let org = match cards_in.first() {
        Some(c) => c.org.clone(),
        None => org
            .or_else(common::acting_org)
            .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?,
    };
    let (no, id) = common::new_number("doc", prefix(kind), &org)?;
    let data = Document {
        kind: kind.into(),
        no: no.clone(),
        status: "draft".into(),
        card_ids: ids,
        cards: cards_in
            .iter()
            .map(|c| {
                json!({
                    "id": c.id, "asset_no": c.data.asset_no, "name": c.data.name,
                    "original_value": c.data.original_value, "net_value": c.data.net_value,
                })
            })
            .collect(),
        payload,
        total_value: total,
        note: input.text("note"),
        created_by: actor(),
        created_by_name: common::actor_name(),
        created_on: dates::today(),
        history: vec![json!({
            "on": dates::today(), "actor": actor(), "actor_name": common::actor_name(), "action": "created",
        })],
        ..Document::default()
    };
    let mut writes = vec![Write::insert_with(
        "documents",
        Some(&id),
        Some(&org),
        &data,
    )?];
    for card in &cards_in {
        let mut locked = card.data.clone();
        locked.locked_by = Some(id.clone());
        writes.push(card_write(card, &locked)?);
        writes.push(activity(
            &card.id,
            &card.org,
            &format!("{kind}_opened"),
            Some(&id),
            json!({ "no": no }),
        ));
    }
    first_written(transact(writes)?)
}

/// The document a transaction wrote first.
fn first_written(written: Vec<Option<Doc<Value>>>) -> Result<Doc<Document>> {
    written
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| Error::internal("the document was not written"))?
        .typed()
}

fn show(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let doc = documents().fetch::<Value>(id)?;
    let approvals = approvals::for_subject(id).unwrap_or_default();
    Ok(Response::json(
        &json!({ "document": doc, "approvals": approvals }),
    ))
}

/// The subject summary of a document's approval: its number and kind, the
/// cards with their original values, the total, and what the kind adds
/// (the receiving unit of a transfer, a disposal's method, the reason).
fn approval_summary(data: &Document) -> Value {
    let kind = data.kind.as_str();
    use common::summary_line as line;
    let (zh, en) = title(kind)
        .split_once(' ')
        .unwrap_or((title(kind), title(kind)));
    let mut lines = vec![
        line("单据编号", "Document no.", json!(data.no), "text"),
        line("业务类型", "Kind", json!({ "zh-CN": zh, "en": en }), "text"),
    ];
    let cards = &data.cards;
    for c in cards.iter().take(common::SUMMARY_RECORDS) {
        let name = format!(
            "{} {}",
            c["asset_no"].as_str().unwrap_or_default(),
            c["name"].as_str().unwrap_or_default()
        );
        lines.push(
            json!({ "label": name, "value": c["original_value"], "format": "money_fen",
            "unit": { "zh-CN": "元", "en": "yuan" } }),
        );
    }
    lines.push(line("资产数量", "Cards", json!(cards.len()), "number"));
    lines.push(line(
        "原值合计",
        "Total original value",
        json!(data.total_value),
        "money_fen",
    ));
    let p = &data.payload;
    let extra: &[(&str, &str, &str)] = &[
        ("to_org", "调入单位", "Receiving unit"),
        ("method", "处置方式", "Disposal method"),
        ("counterparty", "对方单位", "Counterparty"),
        ("reason", "事由", "Reason"),
    ];
    for (key, zh, en) in extra {
        if let Some(v) = p[*key].as_str().filter(|v| !v.is_empty()) {
            let value = match *key {
                "to_org" => common::org_name(v),
                "method" => method_label(v),
                _ => json!(v),
            };
            lines.push(line(zh, en, value, "text"));
        }
    }
    if let Some(note) = data.note.as_deref().filter(|v| !v.is_empty()) {
        lines.push(line("备注", "Note", json!(note), "text"));
    }
    Value::Array(lines)
}

/// A disposal method by its name in both languages, for the summary.
pub fn method_label(method: &str) -> Value {
    let (zh, en) = match method {
        "transfer" => ("无偿划转", "Free transfer"),
        "sale" => ("出售", "Sale"),
        "swap" => ("置换", "Swap"),
        "scrap" => ("报废", "Scrapping"),
        "write_off" => ("报损", "Write-off"),
        "donation" => ("对外捐赠", "Donation"),
        other => (other, other),
    };
    json!({ "zh-CN": zh, "en": en })
}

/// The photos of a document's cards: the files its approval lists.
fn photos_of(doc: &Document) -> Vec<String> {
    let mut files = Vec::new();
    for card_id in doc.card_ids.iter().take(common::SUMMARY_RECORDS) {
        if let Ok(card) = cards().fetch::<Card>(card_id) {
            files.extend(card.data.photos.iter().cloned());
        }
    }
    files
}

fn submit(req: &Request) -> Result<Response> {
    Ok(Response::json(&submit_document(req.param("id")?)?))
}

/// Starts the document's approval; a disposal at or above the region's
/// threshold takes the two-step flow.
pub fn submit_document(id: &str) -> Result<Doc<Document>> {
    let doc = documents().fetch::<Document>(id)?;
    let d = &doc.data;
    if d.status != "draft" {
        return Err(Error::new(
            409,
            "not_a_draft",
            format!("document is {:?}", d.status),
        ));
    }
    let kind = d.kind.as_str();
    let flow = if kind == "disposal"
        && d.total_value >= crate::rules::current()?.disposal_region_threshold
    {
        "disposal-region"
    } else {
        kind
    };
    // `no`, `kind`, `cards`, `total_value_yuan` and `payload` are read by
    // the pages; `title`, `summary` and `files` are what the approver sees
    // (the portal's approval page and the kit's panel render them).
    let form = json!({
        "no": d.no,
        "kind": kind,
        "cards": d.cards,
        "total_value_yuan": fen_to_yuan(d.total_value),
        "payload": d.payload,
        "title": common::both_langs(title(kind), &d.no),
        "summary": approval_summary(d),
        "files": photos_of(d),
    });
    let instance = approvals::start(
        flow,
        &doc.id,
        &format!("{} {}", title(kind), d.no),
        Some(&doc.org),
        &form,
    )?;
    let mut data = d.step(
        "in_approval",
        "submitted_on",
        "submitted",
        json!({ "flow": flow }),
    );
    data.approval_id = Some(instance.id);
    data.rest.insert("flow".into(), json!(flow));
    let mut writes = vec![Write::update("documents", &doc, &data)?];
    // A registration in approval: its cards are pending (登记审批中), not
    // drafts, until the outcome books them or gives them back.
    if kind == "registration" {
        for card_id in &d.card_ids {
            let card = cards().fetch::<Card>(card_id)?;
            if card.data.state == "draft" {
                let mut c = card.data.clone();
                c.state = "pending".into();
                writes.push(card_write(&card, &c)?);
            }
        }
    }
    first_written(transact(writes)?)
}

fn withdraw(req: &Request) -> Result<Response> {
    require("assets.manage")?;
    let doc = documents().fetch::<Document>(req.param("id")?)?;
    if doc.data.status != "in_approval" {
        return Err(Error::new(
            409,
            "not_in_approval",
            "only a document in approval is withdrawn",
        ));
    }
    approvals::withdraw(doc.data.approval_id.as_deref().unwrap_or_default())?;
    // The kernel's withdrawn event closes the document; do it now too so
    // the answer shows it (the event then finds nothing left to do).
    Ok(Response::json(&close(&doc, "withdrawn", json!(null))?))
}

/// Deletes a draft and frees its cards.
fn void(req: &Request) -> Result<Response> {
    let doc = documents().fetch::<Document>(req.param("id")?)?;
    if doc.data.status != "draft" {
        return Err(Error::new(409, "not_a_draft", "only drafts are voided"));
    }
    close(&doc, "void", json!(null))?;
    Ok(Response::empty(204))
}

/// Ends a document without effect: unlocks its cards.
fn close(doc: &Doc<Document>, status: &str, note: Value) -> Result<Doc<Document>> {
    let data = doc.data.step(status, "decided_on", status, note);
    let mut writes = vec![Write::update("documents", doc, &data)?];
    for id in &doc.data.card_ids {
        if let Some(card) = cards().get::<Card>(id)?
            && card.data.locked_by.as_deref() == Some(doc.id.as_str())
        {
            let mut free = card.data.clone();
            free.locked_by = None;
            // A registration that ends without effect leaves a draft.
            if free.state == "pending" {
                free.state = "draft".into();
            }
            writes.push(card_write(&card, &free)?);
            writes.push(activity(
                &card.id,
                &card.org,
                status,
                Some(&doc.id),
                json!({}),
            ));
        }
    }
    first_written(transact(writes)?)
}

/// An approval's outcome: applied to the document and its cards, or, for
/// a warehouse order, to the order. Safe to receive twice: only a document
/// still in approval under this instance changes.
pub fn on_approval(outcome: &Outcome) -> Result<()> {
    let Some(doc) = documents().get::<Document>(&outcome.subject_id)? else {
        return crate::warehouse::on_approval(outcome);
    };
    if doc.data.approval_id.as_deref() != Some(outcome.instance_id.as_str())
        || doc.data.status != "in_approval"
    {
        return Ok(());
    }
    let note = common::outcome_note(outcome);
    match outcome.decision {
        Decision::Approved => approve(&doc, note),
        Decision::Rejected => close(&doc, "rejected", note).map(|_| ()),
        Decision::Withdrawn => close(&doc, "withdrawn", note).map(|_| ()),
        // Sent back to an earlier step: the approval runs on.
        Decision::Returned => Ok(()),
    }
}

/// The approved document takes effect on its cards.
fn approve(doc: &Doc<Document>, note: Value) -> Result<()> {
    let kind = doc.data.kind.as_str();
    let payload = &doc.data.payload;
    let month = dates::month_text(dates::this_month());
    // Documents with a follow-up wait in `approved`; the others are done.
    let follow_up = matches!(kind, "transfer" | "lease" | "repair");
    let status = if follow_up { "approved" } else { "completed" };
    let data = doc.data.step(status, "decided_on", "approved", note);
    let mut writes = vec![Write::update("documents", doc, &data)?];
    let mut events: Vec<(&str, String, String, Value)> = Vec::new();
    let mut new_cards: Vec<Card> = Vec::new();
    for id in &doc.data.card_ids {
        let card = cards().fetch::<Card>(id)?;
        let mut c = card.data.clone();
        let before = serde_json::to_value(&card.data).unwrap_or(Value::Null);
        match kind {
            "registration" => {
                c.state = "booked".into();
                c.locked_by = None;
                events.push(("registered", card.id.clone(), card.org.clone(), json!({ "card_id": card.id, "asset_no": c.asset_no, "category": c.category, "original_value": c.original_value, "name": c.name })));
            }
            "change" => {
                let changes = payload["changes"].as_object().cloned().unwrap_or_default();
                let mut changed = apply_changes(&c, &changes)?;
                changed.locked_by = None;
                if changed.use_status == "idle" && c.use_status != "idle" {
                    events.push(("idle", card.id.clone(), card.org.clone(), json!({ "card_id": card.id, "asset_no": c.asset_no, "category": c.category })));
                }
                events.push((
                    "changed",
                    card.id.clone(),
                    card.org.clone(),
                    json!({ "card_id": card.id, "asset_no": c.asset_no, "changes": changes }),
                ));
                c = changed;
            }
            "transfer" => {
                // The sending unit books a reduction now; the receiving unit
                // gets an incoming card it confirms (see `receive`).
                new_cards.push(Card::incoming(&card));
                c.state = "transferred".into();
                c.reduced_on = month.clone();
                c.locked_by = None;
                events.push(("transferred", card.id.clone(), card.org.clone(), json!({ "card_id": card.id, "asset_no": c.asset_no, "to_org": payload["to_org"] })));
            }
            "lease" => {
                c.use_status = if payload["mode"] == "rent" {
                    "rented"
                } else {
                    "lent"
                }
                .into();
                c.lease = Some(
                    json!({ "document_id": doc.id, "counterparty": payload["counterparty"], "from": payload["from"], "until": payload["until"], "income": payload["income"] }),
                );
            }
            "repair" => {
                c.use_status = "repairing".into();
            }
            "disposal" => {
                c.state = "disposed".into();
                c.use_status = "awaiting_disposal".into();
                c.reduced_on = month.clone();
                c.disposal_method = payload["method"].as_str().unwrap_or_default().to_string();
                c.locked_by = None;
                events.push(("disposed", card.id.clone(), card.org.clone(), json!({ "card_id": card.id, "asset_no": c.asset_no, "method": c.disposal_method, "original_value": c.original_value, "net_value": c.net_value })));
            }
            _ => {}
        }
        debug_assert!(USE_STATUS.contains(&c.use_status));
        writes.push(card_write(&card, &c)?);
        writes.push(activity(&card.id, &card.org, &format!("{kind}_approved"), Some(&doc.id), json!({ "before": summary(&before), "after": summary(&serde_json::to_value(&c).unwrap_or(Value::Null)) })));
    }
    if !new_cards.is_empty() {
        // The receiving unit's incoming cards commit with the sender's
        // reduction: a transfer never leaves a card on neither book.
        let to_org = payload["to_org"].as_str().unwrap_or_default().to_string();
        writes.extend(crate::cards::insert_writes(
            &mut new_cards,
            Some(&to_org),
            "transfer_in",
            Some(&doc.id),
        )?);
    }
    transact(writes)?;
    common::publish_all(&doc.id, events)
}

fn summary(card: &Value) -> Value {
    json!({
        "state": card["state"], "use_status": card["use_status"], "name": card["name"],
        "location": card["location"], "custodian": card["custodian"],
        "original_value": card["original_value"], "net_value": card["net_value"],
    })
}

/// The receiving unit confirms a transfer's incoming cards:
/// `{"card_ids": [...]}`; they go on its books.
fn receive(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let ids = input.ids("card_ids", 200)?;
    let mut writes = Vec::new();
    for id in &ids {
        let card = cards().fetch::<Card>(id)?;
        if card.data.state != "incoming" {
            return Err(Error::validation(
                "card_ids",
                format!("card {} is not waiting for receipt", card.data.asset_no),
            )
            .with_code("card_not_receivable")
            .with_param("asset_no", card.data.asset_no.as_str()));
        }
        let mut c = card.data.clone();
        c.state = "booked".into();
        c.booked_on = dates::today();
        if let Some(location) = input.text("location") {
            c.location = location;
        }
        writes.push(card_write(&card, &c)?);
        writes.push(activity(
            &card.id,
            &card.org,
            "received",
            None,
            json!({ "from": card.data.transferred_from }),
        ));
    }
    transact(writes)?;
    for id in &ids {
        common::publish(
            "registered",
            id,
            &cards().fetch::<Card>(id)?.org,
            &json!({ "card_id": id, "acquisition_method": "transfer_in" }),
            &format!("received:{id}"),
        )?;
    }
    Ok(Response::json(&json!({ "received": ids.len() })))
}

/// A rented or lent card comes back.
fn lease_returned(req: &Request) -> Result<Response> {
    finish(req.param("id")?, "lease", |c, _| {
        c.use_status = "in_use".into();
        c.lease = None;
    })
}

/// A repair is done (`{"cost_yuan": …}`), or a transfer's sender closes it.
fn complete(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let doc = documents().fetch::<Document>(id)?;
    match doc.data.kind.as_str() {
        "repair" => finish(id, "repair", |c, _| c.use_status = "in_use".into()),
        "transfer" => finish(id, "transfer", |_, _| {}),
        _ => Err(Error::new(
            409,
            "nothing_to_complete",
            "this document completes on approval",
        )),
    }
}

fn finish(id: &str, kind: &str, change: impl Fn(&mut Card, &Value)) -> Result<Response> {
    let doc = documents().fetch::<Document>(id)?;
    if doc.data.kind != kind || doc.data.status != "approved" {
        return Err(Error::new(
            409,
            "not_approved",
            format!("only an approved {kind} document completes"),
        ));
    }
    let data = doc
        .data
        .step("completed", "completed_on", "completed", json!(null));
    let mut writes = vec![Write::update("documents", &doc, &data)?];
    if kind != "transfer" {
        for card_id in &doc.data.card_ids {
            let card = cards().fetch::<Card>(card_id)?;
            let mut c = card.data.clone();
            change(&mut c, &doc.data.payload);
            c.locked_by = None;
            writes.push(card_write(&card, &c)?);
            writes.push(activity(
                &card.id,
                &card.org,
                &format!("{kind}_completed"),
                Some(&doc.id),
                json!({}),
            ));
        }
    }
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

/// Events of the other systems. `vehicles.scrap_approved` (payload
/// `{"card_id", "reason"}`) opens a scrap disposal draft for the vehicle's
/// card; `vehicles.purchased` (`{"org", "name", "category", "original_value",
/// "acquired_on", "plate", "vin"}`) adds a draft card to register.
pub fn on_other_system(event: &Event) -> Result<()> {
    let payload: Value = serde_json::from_slice(&event.payload).unwrap_or(Value::Null);
    match event.topic.as_str() {
        "vehicles.scrap_approved" => {
            let card_id = payload["card_id"].as_str().unwrap_or_default();
            let Some(card) = cards().get::<Card>(card_id)? else {
                log::warn(format!("scrap of unknown card {card_id} ignored"));
                return Ok(());
            };
            if card.data.locked_by.is_some() || card.data.state != "booked" {
                return Ok(());
            }
            let mut input = Map::new();
            input.insert("card_ids".into(), json!([card_id]));
            input.insert("method".into(), json!("scrap"));
            input.insert(
                "reason".into(),
                json!(
                    payload["reason"]
                        .as_str()
                        .unwrap_or("车辆报废 Vehicle scrapped")
                ),
            );
            create_document("disposal", &input, None).map(|_| ())
        }
        "vehicles.purchased" => {
            let org = payload["org"]
                .as_str()
                .or(event.org.as_deref())
                .unwrap_or_default()
                .to_string();
            let mut input = payload.as_object().cloned().unwrap_or_default();
            let ext: Map<String, Value> = ["plate", "vin"]
                .iter()
                .filter_map(|k| input.remove(*k).map(|v| (k.to_string(), v)))
                .collect();
            input.remove("org");
            input.insert("ext".into(), Value::Object(ext));
            let mut card = crate::cards::card_from(&input)?;
            // One draft per purchase event, however often it is delivered.
            if cards().find().eq("import_id", event.id.as_str()).count()? > 0 {
                return Ok(());
            }
            card.import_id = Some(event.id.clone());
            crate::cards::insert_cards(
                std::slice::from_mut(&mut card),
                Some(&org),
                "created_from_vehicles",
                None,
            )
            .map(|_| ())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laptop() -> Card {
        let mut card = Card {
            name: "笔记本电脑".into(),
            category: "A020102".into(),
            acquired_on: "2024-03-15".into(),
            original_value: 650_000,
            ..Card::default()
        };
        card.normalise().unwrap();
        card
    }

    fn changes(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// Issue 15.2: a change document may not do what the form refuses.
    #[test]
    fn a_change_to_nothing_is_refused_like_the_form() {
        let e = apply_changes_on(
            &laptop(),
            &changes(json!({"original_value": 0})),
            "2026-12-01",
        )
        .unwrap_err();
        assert_eq!(e.code(), "value_zero");
        assert_eq!(e.field(), Some("changes.original_value"));
        let ok = apply_changes_on(
            &laptop(),
            &changes(json!({"original_value": 700_000})),
            "2026-12-01",
        )
        .unwrap();
        assert_eq!(ok.original_value, 700_000);
        // Other changes of a card whose values are fine pass.
        assert!(
            apply_changes_on(
                &laptop(),
                &changes(json!({"location": "主楼201"})),
                "2026-12-01"
            )
            .is_ok()
        );
    }

    #[test]
    fn a_card_registered_is_plausible() {
        let future = Card {
            acquired_on: "2030-01-01".into(),
            ..laptop()
        };
        let e = implausible(&future, "2026-12-01", "card_ids").unwrap_err();
        assert_eq!((e.code(), e.field()), ("date_in_future", Some("card_ids")));
        assert_eq!(e.params().unwrap()["date"], "2030-01-01");
        assert!(implausible(&laptop(), "2026-12-01", "card_ids").is_ok());
    }
}
