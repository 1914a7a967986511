//! Asset cards: the register itself. Drafts are edited freely; a booked
//! card changes only through a document (change, transfer, lease, repair,
//! disposal), so every change after booking is approved and logged.

use serde_json::{Map, Value, json};
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, Find, Write, collection};

use crate::common::{self, activity, lang, require};
use crate::export::{self, Table};
use crate::model::{Card, fen_to_yuan_number};
use crate::{categories, dates};

pub fn routes(router: Router) -> Router {
    router
        .get("/categories", list_categories)
        .requires("assets.view")
        .get("/cards", list)
        .requires("assets.view")
        .post("/cards", create)
        .requires("assets.manage")
        .get("/cards/{id}", show)
        .requires("assets.view")
        .put("/cards/{id}", edit)
        .requires("assets.manage")
        .delete("/cards/{id}", remove)
        .get("/cards/{id}/history", history)
        .post("/cards/{id}/files", attach)
        .requires("assets.manage")
        .get("/lookup", lookup)
        .requires("assets.view")
}

pub fn cards() -> tianshan_sdk::storage::Collection {
    collection("cards")
}

fn list_categories(req: &Request) -> Result<Response> {
    let lang = lang(req);
    let rows: Vec<Value> = categories::all()
        .iter()
        .map(|c| {
            json!({
                "code": c.code,
                "parent": c.parent,
                "name": if lang.starts_with("en") { c.name_en } else { c.name_zh },
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "template": c.template,
                "life_years": c.life_years,
                "depreciable": c.depreciable,
                "batch": c.batch,
                "unit": c.unit,
            })
        })
        .collect();
    Ok(Response::json(&json!({ "categories": rows })))
}

/// The filters lists share: `q` (asset number prefix or name text),
/// `category` (a code or its prefix), `state`, `use_status`, `location`,
/// `org` (that org and its subtree).
pub fn filtered(req: &Request) -> Result<Find> {
    let mut find = cards().find();
    if let Some(q) = req
        .query_param("q")
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
    {
        if q.len() > 100 {
            return Err(
                Error::validation("q", "search text is at most 100 characters")
                    .with_code("too_long")
                    .with_param("max", 100),
            );
        }
        let looks_like_number = q.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && q.chars().any(|c| c.is_ascii_digit());
        find = if looks_like_number {
            find.prefix("asset_no", &q.to_ascii_uppercase())
        } else {
            find.contains("name", &q)
        };
    }
    if let Some(category) = req.query_param("category").filter(|c| !c.is_empty()) {
        let code = category.trim_end_matches('0');
        find = if code.len() <= 3 {
            find.eq("category_top", &category[..category.len().min(3)])
        } else {
            find.prefix("category", code)
        };
    }
    find = tianshan_sdk::list::filter_vocab(find, req, "state", &crate::model::STATE)?;
    find = tianshan_sdk::list::filter_vocab(find, req, "use_status", &crate::model::USE_STATUS)?;
    for field in ["location", "department", "custodian"] {
        if let Some(v) = req.query_param(field).filter(|v| !v.is_empty()) {
            find = find.eq(field, v);
        }
    }
    if let Some(v) = req.query_param("acquired_from").filter(|v| !v.is_empty()) {
        find = find.gte("acquired_on", v);
    }
    if let Some(v) = req.query_param("acquired_to").filter(|v| !v.is_empty()) {
        find = find.lte("acquired_on", v);
    }
    Ok(find.within(req.query_param("org").filter(|o| !o.is_empty())))
}

const SORTABLE: &[&str] = &[
    "asset_no",
    "acquired_on",
    "original_value",
    "net_value",
    "name",
];

fn list(req: &Request) -> Result<Response> {
    let mut find = filtered(req)?;
    let sort = req
        .query_param("sort")
        .unwrap_or_else(|| "-asset_no".into());
    let (field, descending) = match sort.strip_prefix('-') {
        Some(f) => (f.to_string(), true),
        None => (sort.clone(), false),
    };
    if !SORTABLE.contains(&field.as_str()) {
        return Err(
            Error::validation("sort", format!("sort by one of {}", SORTABLE.join(", ")))
                .with_code("not_in_vocabulary"),
        );
    }
    find = if descending {
        find.sort_desc(&field)
    } else {
        find.sort(&field)
    };
    if let Some(format) = export::wanted(req)? {
        return export::respond(&card_table(find, &lang(req))?, format);
    }
    let tianshan_sdk::list::Paging { limit, cursor } = tianshan_sdk::list::Paging::of(req)?;
    let mut find = find.limit(limit).cursor(cursor);
    if req.query_param("total").as_deref() != Some("false") {
        find = find.with_total();
    }
    let page = find.page::<Card>()?;
    Ok(Response::json(&page))
}

/// At most this many rows in one export, so one request stays bounded.
pub const EXPORT_LIMIT: usize = 50_000;

fn card_table(find: Find, lang: &str) -> Result<Table> {
    let en = lang.starts_with("en");
    let headers: &[&str] = if en {
        &[
            "Asset no.",
            "Name",
            "Category",
            "Category name",
            "Spec",
            "Quantity",
            "Unit",
            "Org",
            "Department",
            "Custodian",
            "Location",
            "Acquired on",
            "Original value",
            "Accumulated depreciation",
            "Net value",
            "Use status",
            "State",
        ]
    } else {
        &[
            "资产编号",
            "资产名称",
            "分类代码",
            "分类名称",
            "规格型号",
            "数量",
            "计量单位",
            "单位",
            "使用部门",
            "使用人",
            "存放地点",
            "取得日期",
            "原值",
            "累计折旧",
            "净值",
            "使用状况",
            "状态",
        ]
    };
    let mut table = Table::new("cards", headers);
    let mut cursor = None;
    loop {
        let page = find.clone().limit(1000).cursor(cursor).page::<Card>()?;
        for doc in &page.records {
            let c = &doc.data;
            table.push(vec![
                json!(c.asset_no),
                json!(c.name),
                json!(c.category),
                json!(categories::name(&c.category, lang)),
                json!(c.spec),
                json!(c.quantity),
                json!(c.measure_unit),
                json!(doc.org),
                json!(c.department),
                json!(c.custodian),
                json!(c.location),
                json!(c.acquired_on),
                json!(fen_to_yuan_number(c.original_value)),
                json!(fen_to_yuan_number(c.accumulated_depreciation)),
                json!(fen_to_yuan_number(c.net_value)),
                json!(c.use_status),
                json!(c.state),
            ]);
        }
        if table.rows.len() >= EXPORT_LIMIT {
            return Err(Error::new(
                422,
                "export_too_large",
                format!("more than {EXPORT_LIMIT} cards match; narrow the filter"),
            ));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(table),
        }
    }
}

/// A card from a request body: amounts may come as `original_value` in fen
/// or `original_value_yuan` in yuan.
pub fn card_from(input: &Map<String, Value>) -> Result<Card> {
    let mut input = input.clone();
    for field in ["original_value", "funding_fiscal", "funding_other"] {
        if let Some(yuan) = input.remove(&format!("{field}_yuan")) {
            let fen = crate::model::yuan_to_fen(&yuan).ok_or_else(|| {
                Error::validation(
                    format!("{field}_yuan"),
                    "an amount in yuan with at most two decimals",
                )
                .with_code("amount_invalid")
            })?;
            input.insert(field.to_string(), json!(fen));
        }
    }
    // The kernel and the workflow own these; a body cannot set them.
    for owned in [
        "asset_no",
        "state",
        "locked_by",
        "accumulated_depreciation",
        "net_value",
        "depreciated_through",
        "reduced_on",
        "disposal_method",
        "lease",
        "category_top",
        "batch",
        "transferred_from",
        "transferred_from_org",
        "import_id",
    ] {
        input.remove(owned);
    }
    let mut card: Card = serde_json::from_value(Value::Object(input)).map_err(|e| {
        Error::validation(
            "body",
            format!("the card does not fit the card fields: {e}"),
        )
        .with_code("invalid_body")
    })?;
    card.normalise()?;
    Ok(card)
}

/// A card a person enters has been acquired by today and has a value; the
/// first failure, in the caller's language, names its field.
fn plausible(card: &Card, lang: &str) -> Result<()> {
    match crate::model::plausibility(card, &dates::today())
        .into_iter()
        .next()
    {
        Some((field, code, zh, en)) => {
            Err(Error::new(422, code, if lang == "en" { en } else { zh })
                .with_field(field)
                .with_param("date", card.acquired_on.clone())
                .with_param("today", dates::today()))
        }
        None => Ok(()),
    }
}

/// New draft cards; `org` in the body puts them in another org the caller
/// reaches (a unit under the caller's administration).
fn create(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let org = input.text("org");
    let mut card = card_from(&input)?;
    plausible(&card, req.lang())?;
    let doc = insert_cards(
        std::slice::from_mut(&mut card),
        org.as_deref(),
        "created",
        None,
    )?
    .pop()
    .ok_or_else(|| Error::internal("insert returned nothing"))?;
    Ok(Response::json(&doc).with_status(201))
}

/// Inserts cards with fresh asset numbers and one activity entry each, all
/// or nothing (at most 240 cards a call: two writes each).
pub fn insert_cards(
    new_cards: &mut [Card],
    org: Option<&str>,
    action: &str,
    document: Option<&str>,
) -> Result<Vec<Doc<Card>>> {
    if new_cards.is_empty() {
        return Ok(Vec::new());
    }
    let writes = insert_writes(new_cards, org, action, document)?;
    let written = tianshan_sdk::storage::transact(writes)?;
    written
        .into_iter()
        .step_by(2)
        .flatten()
        .map(|d| {
            Ok(Doc {
                data: serde_json::from_value(d.data).map_err(|e| Error::internal(e.to_string()))?,
                id: d.id,
                org: d.org,
                revision: d.revision,
                created_at: d.created_at,
                updated_at: d.updated_at,
            })
        })
        .collect()
}

/// The writes that insert `new_cards` with fresh asset numbers of `org`
/// (none: the acting org), two per card (the card, its activity entry), for
/// callers that commit them together with writes of their own.
pub fn insert_writes(
    new_cards: &mut [Card],
    org: Option<&str>,
    action: &str,
    document: Option<&str>,
) -> Result<Vec<Write>> {
    let org = match org {
        Some(o) => o.to_string(),
        None => common::acting_org()
            .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?,
    };
    let year = dates::today()[..4].to_string();
    // A unit's own asset numbers (an import) are kept; the others get the
    // next numbers of the unit's series.
    let fresh = new_cards.iter().filter(|c| c.asset_no.is_empty()).count() as i64;
    let mut next = if fresh > 0 {
        common::reserve_numbers(&format!("card{year}"), &org, fresh)?
    } else {
        0
    };
    let mut writes = Vec::with_capacity(new_cards.len() * 2);
    for card in new_cards.iter_mut() {
        if card.asset_no.is_empty() {
            card.asset_no = common::number("ZC", &year, next);
            next += 1;
        }
        let id = new_id(&card.asset_no, &org);
        writes.push(Write::Insert {
            collection: "cards".into(),
            id: Some(id.clone()),
            org: Some(org.clone()),
            data: serde_json::to_value(&*card).map_err(|e| Error::internal(e.to_string()))?,
        });
        writes.push(activity(
            &id,
            &org,
            action,
            document,
            json!({ "asset_no": card.asset_no }),
        ));
    }
    Ok(writes)
}

/// Card ids are unique across units: the asset number is unique within
/// its unit, so the pair is; readable ids make logs and labels legible.
fn new_id(asset_no: &str, org: &str) -> String {
    // Imported numbers may hold characters a record id cannot.
    let no: String = asset_no
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{no}.{org}").to_ascii_lowercase()
}

fn show(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let card = cards().fetch::<Card>(id)?;
    let activity = collection("activity")
        .find()
        .eq("card_id", id)
        .sort_desc("on")
        .limit(200)
        .page::<Value>()?;
    let approvals = approvals::for_subject(id).unwrap_or_default();
    let category = categories::find(&card.data.category);
    Ok(Response::json(&json!({
        "card": card,
        "category": category,
        "activity": activity.records,
        "approvals": approvals,
        "net_value_now": crate::depreciation::schedule(&card.data, dates::this_month()).1,
    })))
}

/// Edits a draft (with its revision); booked cards change by document.
fn edit(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let input = Form::of(req)?;
    let revision = input
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            Error::validation("revision", "revision is required").with_code("required")
        })?;
    let current = cards().fetch::<Card>(id)?;
    if current.data.state != "draft" {
        return Err(Error::new(
            409,
            "not_a_draft",
            "a booked card changes through a change document",
        ));
    }
    current.data.ensure_free(id)?;
    let mut card = card_from(&input)?;
    plausible(&card, req.lang())?;
    card.asset_no = current.data.asset_no.clone();
    card.photos = current.data.photos.clone();
    card.attachments = current.data.attachments.clone();
    let updated = cards().update(id, revision, &card)?;
    tianshan_sdk::storage::transact(vec![activity(id, &current.org, "edited", None, json!({}))])?;
    Ok(Response::json(&updated))
}

fn remove(req: &Request) -> Result<Response> {
    require("assets.manage")?;
    let id = req.param("id")?;
    let current = cards().fetch::<Card>(id)?;
    if current.data.state != "draft" {
        return Err(Error::new(
            409,
            "not_a_draft",
            "only drafts are deleted; booked cards leave by disposal",
        ));
    }
    current.data.ensure_free(id)?;
    cards().delete(id, Some(current.revision))?;
    Ok(Response::empty(204))
}

fn history(req: &Request) -> Result<Response> {
    require("assets.view")?;
    let id = req.param("id")?;
    cards().fetch::<Card>(id)?;
    let revisions: Vec<Value> = cards()
        .history(id)?
        .into_iter()
        .map(|r| {
            json!({
                "revision": r.revision,
                "op": r.op,
                "at": r.at,
                "actor": r.actor,
                "data": serde_json::from_str::<Value>(&r.data).unwrap_or(Value::Null),
            })
        })
        .collect();
    let activity = collection("activity")
        .find()
        .eq("card_id", id)
        .sort("on")
        .limit(1000)
        .page::<Value>()?;
    Ok(Response::json(&json!({
        "activity": activity.records,
        "revisions": revisions,
    })))
}

/// Adds a photo or attachment: the body is the file, `?name=` its name,
/// `?kind=photo|attachment`.
fn attach(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let name = req
        .query_param("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::validation("name", "?name= is required").with_code("required"))?;
    let kind = req
        .query_param("kind")
        .unwrap_or_else(|| "attachment".into());
    if kind != "photo" && kind != "attachment" {
        return Err(
            Error::validation("kind", "kind is photo or attachment").with_code("not_in_vocabulary")
        );
    }
    let content_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream");
    let current = cards().fetch::<Card>(id)?;
    let info = files::put(&name, content_type, req.body(), Some(&current.org))?;
    let mut card = current.data.clone();
    if kind == "photo" {
        card.photos.push(info.id.clone());
    } else {
        card.attachments.push(info.id.clone());
    }
    card.normalise()?;
    let updated = cards().update(id, current.revision, &card)?;
    tianshan_sdk::storage::transact(vec![activity(
        id,
        &current.org,
        "file_added",
        None,
        json!({ "file": info.id, "name": name, "kind": kind }),
    )])?;
    Ok(Response::json(&json!({ "card": updated, "file": { "id": info.id, "sha256": info.sha256, "size": info.size } })).with_status(201))
}

/// What a scanned QR label resolves to: the label carries `ts:assets:<id>`.
fn lookup(req: &Request) -> Result<Response> {
    let code = req
        .query_param("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::validation("code", "?code= is required").with_code("required"))?;
    let id = code.strip_prefix("ts:assets:").unwrap_or(&code);
    if let Some(card) = cards().get::<Card>(id)? {
        return Ok(Response::json(&card));
    }
    let page = cards()
        .find()
        .eq("asset_no", id.to_ascii_uppercase())
        .limit(1)
        .page::<Card>()?;
    match page.records.into_iter().next() {
        Some(card) => Ok(Response::json(&card)),
        None => Err(Error::not_found(format!("no card for code {code}"))
            .with_code("card_not_found")
            .with_param("code", code.as_str())),
    }
}
