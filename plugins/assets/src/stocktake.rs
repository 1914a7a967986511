//! Stocktake campaigns (清查盘点).
//!
//! A campaign names its scope (an org and its subtree, optionally one
//! location and a category prefix) and its dates. Starting it snapshots
//! the booked cards in scope into tasks, one per (unit, location) or
//! (unit, custodian), so later changes to the register do not move the
//! goalposts. Phones scan QR labels (`ts:assets:<card id>`) or asset
//! numbers into a task; each scan is classified at once:
//!
//! - `matched` (相符): the card is in this task and nothing differs;
//! - `mismatch` (信息不符): in the book but found in another task, or at
//!   another location or with another custodian than booked;
//! - `surplus` (盘盈): no card for the code, or a card outside the scope.
//!
//! Closing a task records every card of it nobody found as `loss` (盘亏).
//! Differences are then resolved: a surplus by registering a draft card
//! (acquisition method `surplus`), a loss by a write-off disposal draft, a
//! mismatch by a change document draft, any of them by accepting it with
//! a note. The campaign completes once nothing is open.
//!
//! Status: `plan` → `in_progress` → `reconciling` → `completed` →
//! `archived`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Collection, Doc, Find, Write, collection, transact};

use crate::cards::cards;
use crate::common::{self, activity, actor, lang, push_history, require};
use crate::dates;
use crate::export::{self, Table};
use crate::model::Card;

pub const STATUSES: &[&str] = &[
    "plan",
    "in_progress",
    "reconciling",
    "completed",
    "archived",
];
pub const RESULTS: &[&str] = &["matched", "surplus", "mismatch", "loss"];
pub const CONDITIONS: &[&str] = &["good", "fair", "damaged", "unusable"];
pub const GROUPINGS: &[&str] = &["location", "custodian"];
/// How a difference is resolved.
pub const ACTIONS: &[&str] = &["registration", "write_off", "change", "accept"];

/// (from, action, to): the campaign's only transitions.
const TRANSITIONS: &[(&str, &str, &str)] = &[
    ("plan", "start", "in_progress"),
    ("in_progress", "close", "reconciling"),
    ("reconciling", "complete", "completed"),
    ("completed", "archive", "archived"),
];

/// Bounds that keep one call inside the kernel's limits: a start is one
/// transaction (at most 500 writes) and a task one record (at most 1 MiB).
const MAX_TASKS: usize = 480;
const MAX_TASK_CARDS: usize = 4000;
const MAX_SCOPE_CARDS: usize = 50_000;

/// The state a campaign moves to on `action`, or 409.
pub fn next_status(current: &str, action: &str) -> Result<&'static str> {
    TRANSITIONS
        .iter()
        .find(|(from, a, _)| *from == current && *a == action)
        .map(|(_, _, to)| *to)
        .ok_or_else(|| {
            Error::new(
                409,
                "invalid_transition",
                format!("a stocktake that is {current} cannot {action}"),
            )
        })
}

/// What one scan is, from what was found out about the code.
pub fn classify(
    card_known: bool,
    in_scope: bool,
    in_scanning_task: bool,
    differences: usize,
) -> (&'static str, &'static str) {
    if !card_known {
        ("surplus", "not_in_book")
    } else if !in_scope {
        ("surplus", "not_in_scope")
    } else if !in_scanning_task {
        ("mismatch", "found_elsewhere")
    } else if differences > 0 {
        ("mismatch", "details_differ")
    } else {
        ("matched", "")
    }
}

/// Which resolution fits which result.
pub fn action_fits(result: &str, action: &str) -> bool {
    matches!(
        (result, action),
        ("surplus", "registration")
            | ("loss", "write_off")
            | ("mismatch", "change")
            | ("surplus" | "loss" | "mismatch", "accept")
    )
}

/// 账实相符率: matched cards over book cards, to four decimals; none for
/// an empty book.
pub fn match_rate(matched: u64, book_cards: u64) -> Option<f64> {
    if book_cards == 0 {
        return None;
    }
    Some((matched as f64 / book_cards as f64 * 10_000.0).round() / 10_000.0)
}

/// Fields where what was found differs from the book: `(field, book, found)`.
pub fn differences(
    book_location: &str,
    book_custodian: &str,
    found_location: Option<&str>,
    found_custodian: Option<&str>,
) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for (field, book, found) in [
        ("location", book_location, found_location),
        ("custodian", book_custodian, found_custodian),
    ] {
        if let Some(found) = found.map(str::trim).filter(|f| !f.is_empty())
            && found != book.trim()
        {
            out.push((field, book.to_string(), found.to_string()));
        }
    }
    out
}

/// FNV-1a, for stable record ids derived from free text (locations and
/// names are Chinese; ids take ASCII only).
pub fn fnv64(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn task_id(stocktake: &str, org: &str, key: &str) -> String {
    format!("{stocktake}.t{:016x}", fnv64(&format!("{org}\u{1f}{key}")))
}

fn stocktakes() -> Collection {
    collection("stocktakes")
}
fn tasks() -> Collection {
    collection("stocktake_tasks")
}
fn results() -> Collection {
    collection("stocktake_results")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/stocktakes", list)
        .requires("assets.view")
        .post("/stocktakes", create)
        .requires("assets.manage")
        .get("/stocktakes/{id}", show)
        .requires("assets.view")
        .put("/stocktakes/{id}", edit)
        .requires("assets.manage")
        .delete("/stocktakes/{id}", remove)
        .post("/stocktakes/{id}/start", start)
        .requires("assets.manage")
        .post("/stocktakes/{id}/close", close)
        .requires("assets.manage")
        .post("/stocktakes/{id}/complete", complete)
        .requires("assets.manage")
        .post("/stocktakes/{id}/archive", archive)
        .requires("assets.manage")
        .get("/stocktakes/{id}/tasks", list_tasks)
        .requires("assets.view")
        .get("/stocktakes/{id}/tasks/{tid}", show_task)
        .requires("assets.view")
        .post("/stocktakes/{id}/tasks/{tid}/close", close_task)
        .requires("assets.manage")
        .post("/stocktakes/{id}/scan", scan)
        .requires("assets.manage")
        .get("/stocktakes/{id}/results", list_results)
        .requires("assets.view")
        .post("/stocktakes/{id}/results/{rid}/resolve", resolve)
        .requires("assets.manage")
        .get("/stocktakes/{id}/report", report)
        .requires("assets.view")
}

/// Every record a query matches, up to `cap` (then 422).
fn collect_all(find: &Find, page_size: u32, cap: usize, what: &str) -> Result<Vec<Doc<Value>>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = find
            .clone()
            .limit(page_size)
            .cursor(cursor)
            .page::<Value>()?;
        out.extend(page.records);
        if out.len() > cap {
            return Err(Error::new(
                422,
                "scope_too_large",
                format!("more than {cap} {what}; narrow the scope"),
            ));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}

fn fetch_stocktake(req: &Request) -> Result<Doc<Value>> {
    stocktakes().fetch::<Value>(req.param("id")?)
}

fn status_of(doc: &Doc<Value>) -> &str {
    doc.data["status"].as_str().unwrap_or_default()
}

// ----- campaigns -------------------------------------------------------

/// The plan fields of a body: name, dates, scope and grouping.
fn plan_from(input: &Form) -> Result<Map<String, Value>> {
    let name = input.required("name")?;
    if name.chars().count() > 100 {
        return Err(Error::validation("name", "at most 100 characters")
            .with_code("too_long")
            .with_param("max", 100));
    }
    let (from, to) = (
        input.required_date("planned_from")?,
        input.required_date("planned_to")?,
    );
    if to < from {
        return Err(
            Error::validation("planned_to", "the campaign ends before it starts")
                .with_code("date_range"),
        );
    }
    let group_by = input.text("group_by").unwrap_or_else(|| "location".into());
    if !GROUPINGS.contains(&group_by.as_str()) {
        return Err(
            Error::validation("group_by", "tasks are per location or per custodian")
                .with_code("not_in_vocabulary"),
        );
    }
    let location = input.text("location");
    if location.as_ref().is_some_and(|l| l.chars().count() > 100) {
        return Err(Error::validation("location", "at most 100 characters")
            .with_code("too_long")
            .with_param("max", 100));
    }
    let category = match input.text("category") {
        Some(c) => {
            let prefix = crate::warehouse::category_prefix(&c).ok_or_else(|| {
                Error::validation("category", "a GB/T 14885 code or its prefix, like A0201")
                    .with_code("category_prefix_invalid")
            })?;
            if !crate::categories::all()
                .iter()
                .any(|cat| cat.code.starts_with(&prefix))
            {
                return Err(Error::validation(
                    "category",
                    format!("no category starts with {prefix}"),
                )
                .with_code("category_prefix_unknown")
                .with_param("prefix", prefix));
            }
            Some(prefix)
        }
        None => None,
    };
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    out.insert("planned_from".into(), json!(from));
    out.insert("planned_to".into(), json!(to));
    out.insert("group_by".into(), json!(group_by));
    out.insert("location".into(), json!(location));
    out.insert("category".into(), json!(category));
    out.insert("note".into(), json!(input.text("note")));
    Ok(out)
}

fn list(req: &Request) -> Result<Response> {
    let mut find = stocktakes().find();
    find = list::filter_one_of(find, req, "status", STATUSES)?;
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.prefix("no", &q.to_ascii_uppercase());
    }
    let find = list::within_org(find, req).sort_desc("no");
    list::respond(
        req,
        &find,
        "stocktakes",
        &[
            ("no", "/data/no"),
            ("name", "/data/name"),
            ("status", "/data/status"),
            ("org", "/org"),
            ("planned_from", "/data/planned_from"),
            ("planned_to", "/data/planned_to"),
            ("book_cards", "/data/book_cards"),
        ],
    )
}

/// `POST /stocktakes`: a campaign in `plan`, at `org` (default: where the
/// request acts) covering that org's subtree.
fn create(req: &Request) -> Result<Response> {
    let input = Form::of(req)?;
    let mut data = plan_from(&input)?;
    let org = input
        .text("org")
        .or_else(common::acting_org)
        .ok_or_else(|| Error::validation("org", "org is required").with_code("required"))?;
    check_scope(&org, &data)?;
    let (no, id) = common::new_number("stocktake", "PD", &org)?;
    data.insert("no".into(), json!(no));
    data.insert("status".into(), json!("plan"));
    data.insert("created_by".into(), json!(actor()));
    data.insert("created_by_name".into(), json!(common::actor_name()));
    data.insert("created_on".into(), json!(dates::today()));
    data.insert(
        "history".into(),
        json!([{
            "on": dates::today(), "actor": actor(), "actor_name": common::actor_name(), "action": "created",
        }]),
    );
    let doc = stocktakes().insert_with(Some(&id), Some(&org), &Value::Object(data))?;
    Ok(Response::json(&doc).with_status(201))
}

fn show(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let open = results()
        .find()
        .eq("stocktake_id", st.id.as_str())
        .eq("status", "open")
        .count()?;
    Ok(Response::json(
        &json!({ "stocktake": st, "open_differences": open }),
    ))
}

/// `PUT /stocktakes/{id}`: a plan's fields change until it starts.
fn edit(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    if status_of(&st) != "plan" {
        return Err(Error::new(
            409,
            "not_a_plan",
            "only a campaign still in plan is edited",
        ));
    }
    let input = Form::of(req)?;
    if let Some(org) = input.text("org")
        && org != st.org
    {
        return Err(
            Error::validation("org", "the campaign's org does not change; plan a new one")
                .with_code("org_fixed"),
        );
    }
    let plan = plan_from(&input)?;
    check_scope(&st.org, &plan)?;
    let mut data = st.data.clone();
    for (k, v) in plan {
        data[k.as_str()] = v;
    }
    push_history(&mut data, "edited", json!(null));
    Ok(Response::json(&stocktakes().update(
        &st.id,
        st.revision,
        &data,
    )?))
}

fn remove(req: &Request) -> Result<Response> {
    require("assets.manage")?;
    let st = fetch_stocktake(req)?;
    if status_of(&st) != "plan" {
        return Err(Error::new(
            409,
            "not_a_plan",
            "a started campaign is kept; archive it when done",
        ));
    }
    stocktakes().delete(&st.id, Some(st.revision))?;
    Ok(Response::empty(204))
}

/// The booked cards a campaign at `org` covers: the org's subtree, the
/// locations that begin with `location` (a scope "主楼" covers "主楼201"
/// and "主楼3层"), the categories under `category`.
fn scope_find(org: &str, location: Option<&str>, category: Option<&str>) -> Find {
    let mut find = cards()
        .find()
        .eq("state", "booked")
        .within(Some(org.to_string()));
    if let Some(location) = location {
        find = find.prefix("location", location);
    }
    if let Some(prefix) = category {
        find = if prefix.len() <= 3 {
            find.eq("category_top", prefix)
        } else {
            find.prefix("category", prefix)
        };
    }
    find
}

/// Refuses a plan whose scope holds no booked card, when it is saved
/// rather than when it is started, naming the field that narrowed it to
/// nothing (the location, else the category, else the org).
fn check_scope(org: &str, plan: &Map<String, Value>) -> Result<()> {
    let location = plan.get("location").and_then(Value::as_str);
    let category = plan.get("category").and_then(Value::as_str);
    if scope_find(org, location, category)
        .limit(1)
        .page::<Value>()?
        .records
        .is_empty()
    {
        let field = if location.is_some()
            && !scope_find(org, None, category)
                .limit(1)
                .page::<Value>()?
                .records
                .is_empty()
        {
            "location"
        } else if category.is_some() {
            "category"
        } else {
            "org"
        };
        return Err(Error::new(
            422,
            "nothing_in_scope",
            "no booked card is in the campaign's scope",
        )
        .with_field(field));
    }
    Ok(())
}

/// One card as the snapshot keeps it.
fn snapshot_entry(card: &Doc<Card>) -> Value {
    let c = &card.data;
    json!({
        "id": card.id, "asset_no": c.asset_no, "name": c.name, "category": c.category,
        "location": c.location, "custodian": c.custodian, "department": c.department,
        "original_value": c.original_value, "net_value": c.net_value,
    })
}

/// `POST /stocktakes/{id}/start`: snapshots the booked cards in scope into
/// tasks and opens scanning, in one transaction.
fn start(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let to = next_status(status_of(&st), "start")?;
    let group_by = st.data["group_by"]
        .as_str()
        .unwrap_or("location")
        .to_string();
    let find = scope_find(
        &st.org,
        st.data["location"].as_str(),
        st.data["category"].as_str(),
    );
    let booked = find.sort("asset_no").all::<Card>(MAX_SCOPE_CARDS + 1)?;
    if booked.len() > MAX_SCOPE_CARDS {
        return Err(Error::new(
            422,
            "scope_too_large",
            format!(
                "more than {MAX_SCOPE_CARDS} booked cards in scope; plan campaigns per unit or category"
            ),
        ));
    }
    let mut groups: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for card in &booked {
        let key = if group_by == "custodian" {
            &card.data.custodian
        } else {
            &card.data.location
        };
        let group = groups.entry((card.org.clone(), key.trim().to_string()));
        group.or_default().push(snapshot_entry(card));
    }
    let count = booked.len();
    let book_value: i64 = booked.iter().map(|c| c.data.original_value).sum();
    if count == 0 {
        return Err(Error::new(
            422,
            "nothing_in_scope",
            "no booked card is in the campaign's scope",
        ));
    }
    if groups.len() > MAX_TASKS {
        return Err(Error::new(
            422,
            "too_many_tasks",
            format!(
                "the scope makes {} tasks (at most {MAX_TASKS}); narrow it by unit, location or category",
                groups.len()
            ),
        ));
    }
    let mut writes = Vec::with_capacity(groups.len() + 1);
    for (i, ((org, key), entries)) in groups.iter().enumerate() {
        if entries.len() > MAX_TASK_CARDS {
            return Err(Error::new(
                422,
                "task_too_large",
                format!(
                    "{} cards at {org} / {key:?}; group by custodian or narrow the scope",
                    entries.len()
                ),
            ));
        }
        let value: i64 = entries
            .iter()
            .map(|e| e["original_value"].as_i64().unwrap_or(0))
            .sum();
        let label = if key.is_empty() {
            if group_by == "custodian" {
                "（未填写使用人）No custodian".to_string()
            } else {
                "（未填写存放地点）No location".to_string()
            }
        } else {
            key.clone()
        };
        let task = json!({
            "stocktake_id": st.id, "no": format!("T{:03}", i + 1), "group_by": group_by,
            "key": key, "label": label, "status": "open", "expected": entries.len(),
            "book_value": value, "cards": entries,
        });
        let id = task_id(&st.id, org, key);
        writes.push(Write::insert_with(
            "stocktake_tasks",
            Some(&id),
            Some(org),
            &task,
        )?);
    }
    let mut data = st.data.clone();
    data["status"] = json!(to);
    data["started_on"] = json!(dates::today());
    data["book_cards"] = json!(count);
    data["book_value"] = json!(book_value);
    data["task_count"] = json!(groups.len());
    push_history(
        &mut data,
        "started",
        json!({ "cards": count, "tasks": groups.len() }),
    );
    writes.push(Write::update("stocktakes", &st, &data)?);
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().last().flatten()))
}

/// `POST /stocktakes/{id}/close`: ends scanning; every open task closes
/// and records its losses, then the campaign is reconciling. A failure
/// part way leaves closed tasks closed; calling again finishes the rest.
fn close(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let to = next_status(status_of(&st), "close")?;
    let open = collect_all(
        &tasks()
            .find()
            .eq("stocktake_id", st.id.as_str())
            .eq("status", "open"),
        20,
        MAX_TASKS,
        "tasks",
    )?;
    let mut losses = 0u64;
    for task in &open {
        losses += close_one_task(&st, task)?;
    }
    let st = stocktakes().fetch::<Value>(&st.id)?;
    let mut data = st.data.clone();
    data["status"] = json!(to);
    data["closed_on"] = json!(dates::today());
    push_history(
        &mut data,
        "closed",
        json!({ "tasks_closed": open.len(), "losses": losses }),
    );
    Ok(Response::json(&stocktakes().update(
        &st.id,
        st.revision,
        &data,
    )?))
}

/// `POST /stocktakes/{id}/complete`: once no difference is open; the
/// report's figures are kept on the campaign.
fn complete(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let to = next_status(status_of(&st), "complete")?;
    let open = results()
        .find()
        .eq("stocktake_id", st.id.as_str())
        .eq("status", "open")
        .count()?;
    if open > 0 {
        return Err(Error::new(
            409,
            "unresolved_differences",
            format!("{open} difference(s) are not resolved yet"),
        ));
    }
    let summary = summary_of(&st)?;
    let mut data = st.data.clone();
    data["status"] = json!(to);
    data["completed_on"] = json!(dates::today());
    data["summary"] = summary.clone();
    push_history(&mut data, "completed", json!(null));
    let updated = stocktakes().update(&st.id, st.revision, &data)?;
    common::publish(
        "stocktake.completed",
        &st.id,
        &st.org,
        &json!({ "stocktake_id": st.id, "no": st.data["no"], "summary": summary }),
        &format!("{}:completed", st.id),
    )?;
    Ok(Response::json(&updated))
}

fn archive(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let to = next_status(status_of(&st), "archive")?;
    let mut data = st.data.clone();
    data["status"] = json!(to);
    data["archived_on"] = json!(dates::today());
    push_history(&mut data, "archived", json!(null));
    Ok(Response::json(&stocktakes().update(
        &st.id,
        st.revision,
        &data,
    )?))
}

// ----- tasks -----------------------------------------------------------

fn fetch_task(st: &Doc<Value>, tid: &str) -> Result<Doc<Value>> {
    let task = tasks().fetch::<Value>(tid)?;
    if task.data["stocktake_id"] != st.id.as_str() {
        return Err(
            Error::not_found(format!("no task {tid} in stocktake {}", st.id))
                .with_code("task_not_found"),
        );
    }
    Ok(task)
}

/// A task without its card list (lists stay small).
fn task_summary(task: &Doc<Value>) -> Value {
    let mut data = task.data.clone();
    if let Some(map) = data.as_object_mut() {
        map.remove("cards");
    }
    json!({ "id": task.id, "org": task.org, "revision": task.revision, "data": data })
}

fn list_tasks(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let find = list::filter_eq(&["status"], tasks().find(), req).eq("stocktake_id", st.id.as_str());
    let list::Paging { limit, cursor } = list::Paging::of(req)?;
    let page = find
        .sort("no")
        .limit(limit.min(50))
        .cursor(cursor)
        .with_total()
        .page::<Value>()?;
    let rows: Vec<Value> = page.records.iter().map(task_summary).collect();
    Ok(Response::json(&json!({
        "records": rows, "next_cursor": page.next_cursor, "total": page.total,
    })))
}

/// Results whose card was booked in `task` (found anywhere, or lost).
fn booked_results(st: &Doc<Value>, task: &Doc<Value>) -> Result<Vec<Doc<Value>>> {
    collect_all(
        &results()
            .find()
            .eq("stocktake_id", st.id.as_str())
            .eq("expected_task_id", task.id.as_str()),
        1000,
        MAX_TASK_CARDS * 2,
        "results",
    )
}

/// `GET /stocktakes/{id}/tasks/{tid}`: the task's cards, each with what
/// its scan found (none yet: still to find), and the surpluses scanned in it.
fn show_task(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let task = fetch_task(&st, req.param("tid")?)?;
    let found: BTreeMap<String, Value> = booked_results(&st, &task)?
        .into_iter()
        .filter_map(|r| {
            let card = r.data["card_id"].as_str()?.to_string();
            Some((
                card,
                json!({ "result_id": r.id, "result": r.data["result"], "status": r.data["status"] }),
            ))
        })
        .collect();
    let cards_out: Vec<Value> = task.data["cards"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|c| {
                    let mut c = c.clone();
                    let id = c["id"].as_str().unwrap_or_default().to_string();
                    c["scan"] = found.get(&id).cloned().unwrap_or(Value::Null);
                    c
                })
                .collect()
        })
        .unwrap_or_default();
    let surplus = results()
        .find()
        .eq("stocktake_id", st.id.as_str())
        .eq("task_id", task.id.as_str())
        .eq("result", "surplus")
        .limit(500)
        .page::<Value>()?;
    let remaining = cards_out.iter().filter(|c| c["scan"].is_null()).count();
    Ok(Response::json(&json!({
        "task": task_summary(&task),
        "cards": cards_out,
        "remaining": remaining,
        "surplus": surplus.records,
    })))
}

/// Closes one task: a `loss` row for each of its cards no scan found, in
/// transactions of at most 400 writes; the task's own update rides with
/// the last, so a retry after a failure adds only what is missing.
/// Returns the number of losses added.
fn close_one_task(st: &Doc<Value>, task: &Doc<Value>) -> Result<u64> {
    if task.data["status"] == "closed" {
        return Ok(0);
    }
    let recorded = booked_results(st, task)?;
    let seen: BTreeSet<String> = recorded
        .iter()
        .filter_map(|r| r.data["card_id"].as_str().map(str::to_string))
        .collect();
    let today = dates::today();
    let mut inserts = Vec::new();
    for c in task.data["cards"].as_array().into_iter().flatten() {
        let card_id = c["id"].as_str().unwrap_or_default();
        if card_id.is_empty() || seen.contains(card_id) {
            continue;
        }
        let loss = json!({
            "stocktake_id": st.id, "task_id": task.id, "expected_task_id": task.id,
            "card_id": card_id, "asset_no": c["asset_no"], "name": c["name"],
            "result": "loss", "reason": "not_found", "status": "open",
            "book_location": c["location"], "book_custodian": c["custodian"],
            "original_value": c["original_value"], "net_value": c["net_value"],
            "differences": [], "on": today, "by": actor(),
        });
        let id = format!("{}.r.{card_id}", st.id);
        inserts.push(Write::insert_with(
            "stocktake_results",
            Some(&id),
            Some(&task.org),
            &loss,
        )?);
    }
    let added = inserts.len() as u64;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for r in &recorded {
        *counts
            .entry(r.data["result"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    *counts.entry("loss".into()).or_default() += added;
    let surplus = results()
        .find()
        .eq("stocktake_id", st.id.as_str())
        .eq("task_id", task.id.as_str())
        .eq("result", "surplus")
        .count()?;
    let mut data = task.data.clone();
    data["status"] = json!("closed");
    data["closed_on"] = json!(today);
    data["closed_by"] = json!(actor());
    data["counts"] = json!({
        "matched": counts.get("matched").copied().unwrap_or(0),
        "mismatch": counts.get("mismatch").copied().unwrap_or(0),
        "loss": counts.get("loss").copied().unwrap_or(0),
        "surplus": surplus,
    });
    inserts.push(Write::update("stocktake_tasks", task, &data)?);
    for chunk in inserts.chunks(400) {
        transact(chunk.to_vec())?;
    }
    Ok(added)
}

/// `POST /stocktakes/{id}/tasks/{tid}/close`: one task is done (its
/// losses are recorded); scanning goes on in the others.
fn close_task(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    if status_of(&st) != "in_progress" {
        return Err(Error::new(
            409,
            "not_scanning",
            format!("the stocktake is {}", status_of(&st)),
        ));
    }
    let task = fetch_task(&st, req.param("tid")?)?;
    if task.data["status"] == "closed" {
        return Err(Error::new(409, "task_closed", "the task is closed already"));
    }
    let losses = close_one_task(&st, &task)?;
    let task = tasks().fetch::<Value>(&task.id)?;
    Ok(Response::json(
        &json!({ "task": task_summary(&task), "losses_added": losses }),
    ))
}

// ----- scanning --------------------------------------------------------

/// The card a scanned code names: a label `ts:assets:<id>`, a bare card
/// id or an asset number.
fn card_for_code(code: &str) -> Result<Option<Doc<Card>>> {
    let id = code.strip_prefix("ts:assets:").unwrap_or(code).trim();
    if id.is_empty() {
        return Ok(None);
    }
    if let Some(card) = cards().get::<Card>(id)? {
        return Ok(Some(card));
    }
    Ok(cards()
        .find()
        .eq("asset_no", id.to_ascii_uppercase())
        .limit(1)
        .page::<Card>()?
        .records
        .into_iter()
        .next())
}

fn entry_in<'a>(task: &'a Doc<Value>, card_id: &str) -> Option<&'a Value> {
    task.data["cards"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == card_id)
}

/// The task of this campaign that booked `card`: the scanning task, the
/// one its current org and location (or custodian) name, else a search.
fn booking_task(
    st: &Doc<Value>,
    scanning: &Doc<Value>,
    card: &Doc<Card>,
) -> Result<Option<Doc<Value>>> {
    if entry_in(scanning, &card.id).is_some() {
        return Ok(Some(scanning.clone()));
    }
    let key = if st.data["group_by"] == "custodian" {
        card.data.custodian.trim()
    } else {
        card.data.location.trim()
    };
    if let Some(task) = tasks().get::<Value>(&task_id(&st.id, &card.org, key))?
        && entry_in(&task, &card.id).is_some()
    {
        return Ok(Some(task));
    }
    // Moved since the snapshot: look through the campaign's tasks.
    let mut cursor = None;
    loop {
        let page = tasks()
            .find()
            .eq("stocktake_id", st.id.as_str())
            .limit(20)
            .cursor(cursor)
            .page::<Value>()?;
        if let Some(task) = page
            .records
            .into_iter()
            .find(|t| entry_in(t, &card.id).is_some())
        {
            return Ok(Some(task));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(None),
        }
    }
}

/// `POST /stocktakes/{id}/scan` `{"code", "task_id", "location"?,
/// "custodian"?, "condition"?, "note"?, "photo"?}`: one label scanned.
/// A repeated scan answers the first result with `duplicate: true`.
fn scan(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    if status_of(&st) != "in_progress" {
        return Err(Error::new(
            409,
            "not_scanning",
            format!(
                "the stocktake is {}; scans go into a started one",
                status_of(&st)
            ),
        ));
    }
    let input = Form::of(req)?;
    let code = input.required("code")?;
    if code.len() > 200 {
        return Err(Error::validation("code", "at most 200 characters")
            .with_code("too_long")
            .with_param("max", 200));
    }
    let task = fetch_task(&st, &input.required("task_id")?).map_err(|e| e.with_field("task_id"))?;
    if task.data["status"] != "open" {
        return Err(Error::new(
            409,
            "task_closed",
            "the task is closed; scan into an open one",
        ));
    }
    let condition = input.text("condition").unwrap_or_else(|| "good".into());
    if !CONDITIONS.contains(&condition.as_str()) {
        return Err(Error::validation(
            "condition",
            format!("condition is one of {}", CONDITIONS.join(", ")),
        )
        .with_code("not_in_vocabulary"));
    }
    let location = input.text("location");
    let custodian = input.text("custodian");
    for (field, v) in [("location", &location), ("custodian", &custodian)] {
        if v.as_ref().is_some_and(|v| v.chars().count() > 100) {
            return Err(Error::validation(field, "at most 100 characters")
                .with_code("too_long")
                .with_param("max", 100));
        }
    }
    let card = card_for_code(&code)?;
    let booked_in = match &card {
        Some(c) => booking_task(&st, &task, c)?,
        None => None,
    };
    let in_task = booked_in.as_ref().is_some_and(|t| t.id == task.id);
    // What the scan found: what the phone says, else what the task stands for.
    let (found_location, found_custodian) = {
        let task_key = task.data["key"].as_str().map(str::to_string);
        let by_custodian = task.data["group_by"] == "custodian";
        (
            location
                .clone()
                .or(if by_custodian { None } else { task_key.clone() }),
            custodian
                .clone()
                .or(if by_custodian { task_key } else { None }),
        )
    };
    let entry = match (&booked_in, &card) {
        (Some(t), Some(c)) => entry_in(t, &c.id).cloned(),
        _ => None,
    };
    let diffs = match &entry {
        Some(e) => differences(
            e["location"].as_str().unwrap_or_default(),
            e["custodian"].as_str().unwrap_or_default(),
            found_location.as_deref(),
            found_custodian.as_deref(),
        ),
        None => Vec::new(),
    };
    let (result, reason) = classify(card.is_some(), booked_in.is_some(), in_task, diffs.len());
    let (id, org) = match &card {
        Some(c) => (format!("{}.r.{}", st.id, c.id), c.org.clone()),
        None => (
            format!("{}.s{:016x}", st.id, fnv64(&code.to_ascii_uppercase())),
            task.org.clone(),
        ),
    };
    if let Some(existing) = results().get::<Value>(&id)? {
        return Ok(Response::json(
            &json!({ "result": existing, "duplicate": true }),
        ));
    }
    let today = dates::today();
    let data = json!({
        "stocktake_id": st.id, "task_id": task.id,
        "expected_task_id": booked_in.as_ref().map(|t| t.id.clone()),
        "card_id": card.as_ref().map(|c| c.id.clone()),
        "asset_no": card.as_ref().map(|c| c.data.asset_no.clone()),
        "name": card.as_ref().map(|c| c.data.name.clone()),
        "code": code, "result": result, "reason": reason,
        "status": if result == "matched" { "none" } else { "open" },
        "book_location": entry.as_ref().map(|e| e["location"].clone()),
        "book_custodian": entry.as_ref().map(|e| e["custodian"].clone()),
        "location": found_location, "custodian": found_custodian, "condition": condition,
        "differences": diffs.iter().map(|(f, b, n)| json!({ "field": f, "book": b, "found": n })).collect::<Vec<_>>(),
        "original_value": card.as_ref().map(|c| c.data.original_value),
        "net_value": card.as_ref().map(|c| c.data.net_value),
        "note": input.text("note"), "photo": input.text("photo"),
        "on": today, "by": actor(),
    });
    let mut writes = vec![Write::insert_with(
        "stocktake_results",
        Some(&id),
        Some(&org),
        &data,
    )?];
    if let Some(c) = &card {
        writes.push(activity(
            &c.id,
            &c.org,
            "stocktake_scanned",
            Some(&st.id),
            json!({ "no": st.data["no"], "result": result, "condition": condition }),
        ));
    }
    match transact(writes) {
        Ok(written) => Ok(Response::json(&json!({
            "result": written.into_iter().next().flatten(),
            "duplicate": false,
        }))
        .with_status(201)),
        // Two phones scanned the same label at once: the first one wins.
        Err(e) if e.status() == 409 => Ok(Response::json(&json!({
            "result": results().fetch::<Value>(&id)?,
            "duplicate": true,
        }))),
        Err(e) => Err(e),
    }
}

// ----- results and their resolution ------------------------------------

fn results_find(req: &Request, st: &Doc<Value>) -> Result<Find> {
    let mut find = results().find().eq("stocktake_id", st.id.as_str());
    find = list::filter_one_of(find, req, "result", RESULTS)?;
    Ok(list::filter_eq(&["task_id", "status"], find, req))
}

/// `GET /stocktakes/{id}/results`: `?result=`, `?task_id=`, `?status=
/// open|resolved|none`; `?format=csv|xlsx` for the whole list.
fn list_results(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let find = results_find(req, &st)?;
    if let Some(format) = export::wanted(req)? {
        let en = lang(req).starts_with("en");
        let headers: &[&str] = if en {
            &[
                "Asset no.",
                "Name",
                "Code",
                "Result",
                "Reason",
                "Booked at",
                "Found at",
                "Booked custodian",
                "Found custodian",
                "Condition",
                "Original value",
                "Status",
                "Resolution",
                "Scanned on",
                "By",
            ]
        } else {
            &[
                "资产编号",
                "资产名称",
                "扫描码",
                "盘点结果",
                "原因",
                "账面存放地点",
                "实际存放地点",
                "账面使用人",
                "实际使用人",
                "状况",
                "原值",
                "处理状态",
                "处理方式",
                "盘点日期",
                "盘点人",
            ]
        };
        let mut table = Table::new("stocktake-results", headers);
        for r in collect_all(
            &find.sort("on"),
            1000,
            crate::cards::EXPORT_LIMIT,
            "results",
        )? {
            let d = &r.data;
            table.push(vec![
                d["asset_no"].clone(),
                d["name"].clone(),
                d["code"].clone(),
                json!(result_label(d["result"].as_str().unwrap_or_default(), en)),
                d["reason"].clone(),
                d["book_location"].clone(),
                d["location"].clone(),
                d["book_custodian"].clone(),
                d["custodian"].clone(),
                d["condition"].clone(),
                export::yuan(d["original_value"].as_i64().unwrap_or(0)),
                d["status"].clone(),
                d["resolution"]["action"].clone(),
                d["on"].clone(),
                d["by"].clone(),
            ]);
        }
        return export::respond(&table, format);
    }
    let list::Paging { limit, cursor } = list::Paging::of(req)?;
    Ok(Response::json(
        &find
            .sort_desc("on")
            .limit(limit)
            .cursor(cursor)
            .with_total()
            .page::<Value>()?,
    ))
}

fn result_label(result: &str, en: bool) -> &str {
    if en {
        return result;
    }
    match result {
        "matched" => "相符",
        "surplus" => "盘盈",
        "mismatch" => "信息不符",
        "loss" => "盘亏",
        other => other,
    }
}

/// `POST /stocktakes/{id}/results/{rid}/resolve` `{"action", …}`:
/// - `registration` (surplus): `{"card": {name, category, acquired_on,
///   original_value_yuan, …}, "org"?}` → a draft card, method `surplus`;
/// - `write_off` (loss): `{"reason"?}` → a disposal draft, method write_off;
/// - `change` (mismatch): `{"changes"?, "reason"?}` → a change draft
///   (default: the location and custodian found);
/// - `accept` (any difference): `{"note"}` → recorded, nothing else.
fn resolve(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    if !["in_progress", "reconciling"].contains(&status_of(&st)) {
        return Err(Error::new(
            409,
            "not_reconciling",
            format!("the stocktake is {}", status_of(&st)),
        ));
    }
    let result = results().fetch::<Value>(req.param("rid")?)?;
    if result.data["stocktake_id"] != st.id.as_str() {
        return Err(
            Error::not_found("no such result in this stocktake").with_code("result_not_found")
        );
    }
    if result.data["status"] != "open" {
        return Err(Error::new(
            409,
            "nothing_to_resolve",
            format!(
                "the result is {} ({})",
                result.data["result"], result.data["status"]
            ),
        ));
    }
    let input = Form::of(req)?;
    let action = input.required("action")?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(Error::validation(
            "action",
            format!("action is one of {}", ACTIONS.join(", ")),
        )
        .with_code("not_in_vocabulary"));
    }
    let kind = result.data["result"].as_str().unwrap_or_default();
    if !action_fits(kind, &action) {
        return Err(Error::validation(
            "action",
            format!("a {kind} result is not resolved by {action}"),
        )
        .with_code("action_mismatch"));
    }
    let card_id = result.data["card_id"].as_str().map(str::to_string);
    let no = st.data["no"].as_str().unwrap_or_default();
    let reason = input.text("reason");
    let mut resolution = json!({
        "action": action, "by": actor(), "on": dates::today(), "note": input.text("note"),
    });
    match action.as_str() {
        "registration" => {
            let mut card_input = input
                .get("card")
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| {
                    Error::validation("card", "the surplus asset's card fields are required")
                        .with_code("required")
                })?;
            card_input.insert("acquisition_method".into(), json!("surplus"));
            card_input.insert("use_status".into(), json!("in_use"));
            if !card_input.contains_key("location")
                && let Some(l) = result.data["location"].as_str()
            {
                card_input.insert("location".into(), json!(l));
            }
            let mut card = crate::cards::card_from(&card_input).map_err(|e| {
                let field = format!("card.{}", e.field().unwrap_or("card"));
                e.with_field(field)
            })?;
            let org = input.text("org").unwrap_or_else(|| result.org.clone());
            let created = crate::cards::insert_cards(
                std::slice::from_mut(&mut card),
                Some(&org),
                "stocktake_surplus",
                Some(&st.id),
            )?
            .pop()
            .ok_or_else(|| Error::internal("insert returned nothing"))?;
            resolution["card_id"] = json!(created.id);
            resolution["asset_no"] = json!(created.data.asset_no);
        }
        "write_off" => {
            let mut doc_input = Map::new();
            doc_input.insert("card_ids".into(), json!([card_id]));
            doc_input.insert("method".into(), json!("write_off"));
            doc_input.insert(
                "reason".into(),
                json!(reason.unwrap_or_else(|| format!("清查盘亏 Stocktake loss {no}"))),
            );
            let doc = crate::documents::create_document("disposal", &doc_input, None)?;
            resolution["document_id"] = json!(doc.id);
            resolution["document_no"] = json!(doc.data.no);
        }
        "change" => {
            let changes = match input.get("changes").and_then(Value::as_object) {
                Some(c) if !c.is_empty() => c.clone(),
                _ => result.data["differences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| Some((d["field"].as_str()?.to_string(), d["found"].clone())))
                    .collect(),
            };
            if changes.is_empty() {
                return Err(Error::validation(
                    "changes",
                    "nothing differs on record; say what changes, or accept the result",
                )
                .with_code("nothing_changed"));
            }
            let mut doc_input = Map::new();
            doc_input.insert("card_ids".into(), json!([card_id]));
            doc_input.insert("changes".into(), Value::Object(changes));
            doc_input.insert(
                "reason".into(),
                json!(reason.unwrap_or_else(|| format!("清查信息不符 Stocktake difference {no}"))),
            );
            let doc = crate::documents::create_document("change", &doc_input, None)?;
            resolution["document_id"] = json!(doc.id);
            resolution["document_no"] = json!(doc.data.no);
        }
        _ => {
            if resolution["note"].is_null() {
                return Err(
                    Error::validation("note", "say why the difference is accepted")
                        .with_code("reason_required"),
                );
            }
        }
    }
    let mut data = result.data.clone();
    data["status"] = json!("resolved");
    data["resolution"] = resolution.clone();
    let mut writes = vec![Write::update("stocktake_results", &result, &data)?];
    if let Some(card_id) = &card_id {
        writes.push(activity(
            card_id,
            &result.org,
            &format!("stocktake_{kind}_resolved"),
            resolution["document_id"].as_str().or(Some(st.id.as_str())),
            json!({ "no": no, "action": action }),
        ));
    }
    let written = transact(writes)?;
    Ok(Response::json(&written.into_iter().next().flatten()))
}

// ----- report ----------------------------------------------------------

/// Counts and amounts per result, per task and overall.
fn summary_of(st: &Doc<Value>) -> Result<Value> {
    let filter = results().find().eq("stocktake_id", st.id.as_str());
    let groups = results().aggregate(
        &filter,
        &["result"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
        ],
    )?;
    let mut counts: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for g in groups {
        let key = g.key_text(0);
        counts.insert(
            key.to_string(),
            (g.value(0) as u64, g.value(1).round() as i64),
        );
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or((0, 0));
    let book_cards = st.data["book_cards"].as_u64().unwrap_or(0);
    let (matched, mismatch, surplus, loss) =
        (get("matched"), get("mismatch"), get("surplus"), get("loss"));
    let found = matched.0 + mismatch.0;
    Ok(json!({
        "book_cards": book_cards,
        "book_value": st.data["book_value"].as_i64().unwrap_or(0),
        "matched": { "count": matched.0, "value": matched.1 },
        "mismatch": { "count": mismatch.0, "value": mismatch.1 },
        "surplus": { "count": surplus.0, "value": surplus.1 },
        "loss": { "count": loss.0, "value": loss.1 },
        "not_yet_found": book_cards.saturating_sub(found + loss.0),
        "match_rate": match_rate(matched.0, book_cards),
        "found_rate": match_rate(found, book_cards),
    }))
}

/// `GET /stocktakes/{id}/report`: the summary and one row per task;
/// `?format=csv|xlsx` exports the task rows with a total line.
fn report(req: &Request) -> Result<Response> {
    let st = fetch_stocktake(req)?;
    let summary = summary_of(&st)?;
    let groups = results().aggregate(
        &results().find().eq("stocktake_id", st.id.as_str()),
        &["task_id", "result"],
        &[(AggregateOp::Count, None)],
    )?;
    let mut per_task: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for g in groups {
        let task = g.key_text(0);
        let result = g.key_text(1);
        per_task
            .entry(task.to_string())
            .or_default()
            .insert(result.to_string(), g.value(0) as u64);
    }
    let all_tasks = collect_all(
        &tasks().find().eq("stocktake_id", st.id.as_str()).sort("no"),
        20,
        MAX_TASKS,
        "tasks",
    )?;
    let rows: Vec<Value> = all_tasks
        .iter()
        .map(|t| {
            let c = per_task.get(&t.id).cloned().unwrap_or_default();
            let n = |k: &str| c.get(k).copied().unwrap_or(0);
            let expected = t.data["expected"].as_u64().unwrap_or(0);
            json!({
                "task_id": t.id, "no": t.data["no"], "org": t.org, "label": t.data["label"],
                "status": t.data["status"], "expected": expected,
                "book_value": t.data["book_value"],
                "matched": n("matched"), "mismatch": n("mismatch"),
                "surplus": n("surplus"), "loss": n("loss"),
                "match_rate": match_rate(n("matched"), expected),
            })
        })
        .collect();
    if let Some(format) = export::wanted(req)? {
        let en = lang(req).starts_with("en");
        let headers: &[&str] = if en {
            &[
                "Task",
                "Unit",
                "Location / custodian",
                "Book cards",
                "Book value",
                "Matched",
                "Mismatch",
                "Surplus",
                "Loss",
                "Match rate",
            ]
        } else {
            &[
                "任务",
                "单位",
                "存放地点/使用人",
                "账面数量",
                "账面原值",
                "相符",
                "信息不符",
                "盘盈",
                "盘亏",
                "账实相符率",
            ]
        };
        let mut table = Table::new(
            &format!("stocktake-{}", st.data["no"].as_str().unwrap_or("report")),
            headers,
        );
        for r in &rows {
            table.push(vec![
                r["no"].clone(),
                r["org"].clone(),
                r["label"].clone(),
                r["expected"].clone(),
                export::yuan(r["book_value"].as_i64().unwrap_or(0)),
                r["matched"].clone(),
                r["mismatch"].clone(),
                r["surplus"].clone(),
                r["loss"].clone(),
                r["match_rate"].clone(),
            ]);
        }
        table.push(vec![
            json!(if en { "Total" } else { "合计" }),
            json!(st.org),
            json!(""),
            summary["book_cards"].clone(),
            export::yuan(summary["book_value"].as_i64().unwrap_or(0)),
            summary["matched"]["count"].clone(),
            summary["mismatch"]["count"].clone(),
            summary["surplus"]["count"].clone(),
            summary["loss"]["count"].clone(),
            summary["match_rate"].clone(),
        ]);
        return export::respond(&table, format);
    }
    Ok(Response::json(&json!({
        "stocktake": { "id": st.id, "no": st.data["no"], "name": st.data["name"], "status": st.data["status"], "org": st.org },
        "summary": summary,
        "tasks": rows,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaign_moves_only_forward_one_step() {
        assert_eq!(next_status("plan", "start").unwrap(), "in_progress");
        assert_eq!(next_status("in_progress", "close").unwrap(), "reconciling");
        assert_eq!(next_status("reconciling", "complete").unwrap(), "completed");
        assert_eq!(next_status("completed", "archive").unwrap(), "archived");
        for (from, action) in [
            ("plan", "close"),
            ("plan", "complete"),
            ("in_progress", "start"),
            ("in_progress", "complete"),
            ("reconciling", "start"),
            ("archived", "archive"),
            ("completed", "start"),
        ] {
            let e = next_status(from, action).unwrap_err();
            assert_eq!(e.status(), 409, "{from} {action}");
            assert_eq!(e.code(), "invalid_transition");
        }
        for (from, _, to) in TRANSITIONS {
            assert!(STATUSES.contains(from) && STATUSES.contains(to));
        }
    }

    #[test]
    fn scans_are_classified() {
        assert_eq!(classify(false, false, false, 0).0, "surplus");
        assert_eq!(classify(false, false, false, 0).1, "not_in_book");
        assert_eq!(classify(true, false, false, 0), ("surplus", "not_in_scope"));
        assert_eq!(
            classify(true, true, false, 0),
            ("mismatch", "found_elsewhere")
        );
        assert_eq!(
            classify(true, true, true, 1),
            ("mismatch", "details_differ")
        );
        assert_eq!(classify(true, true, true, 0), ("matched", ""));
    }

    #[test]
    fn differences_compare_what_was_said() {
        assert!(differences("101室", "王芳", None, None).is_empty());
        assert!(differences("101室", "王芳", Some(" 101室 "), Some("")).is_empty());
        let d = differences("101室", "王芳", Some("205室"), Some("李强"));
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], ("location", "101室".into(), "205室".into()));
        assert_eq!(d[1].0, "custodian");
    }

    #[test]
    fn match_rate_is_matched_over_book() {
        assert_eq!(match_rate(0, 0), None);
        assert_eq!(match_rate(95, 100), Some(0.95));
        assert_eq!(match_rate(2, 3), Some(0.6667));
        assert_eq!(match_rate(100, 100), Some(1.0));
    }

    #[test]
    fn resolutions_fit_results() {
        assert!(action_fits("surplus", "registration"));
        assert!(action_fits("loss", "write_off"));
        assert!(action_fits("mismatch", "change"));
        assert!(action_fits("loss", "accept"));
        assert!(!action_fits("matched", "accept"));
        assert!(!action_fits("surplus", "write_off"));
        assert!(!action_fits("loss", "registration"));
        assert!(!action_fits("mismatch", "registration"));
    }

    #[test]
    fn task_ids_are_stable_and_ascii() {
        let a = task_id("pd2026000001.org-a", "org-a", "主楼101室");
        assert_eq!(a, task_id("pd2026000001.org-a", "org-a", "主楼101室"));
        assert_ne!(a, task_id("pd2026000001.org-a", "org-b", "主楼101室"));
        assert_ne!(a, task_id("pd2026000001.org-a", "org-a", "主楼102室"));
        assert!(a.is_ascii() && a.len() < 128);
        // FNV-1a reference value for the empty string.
        assert_eq!(fnv64(""), 0xcbf2_9ce4_8422_2325);
    }
}
