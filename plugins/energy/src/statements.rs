//! The statistics forms (基层表): one statement per institution and month,
//! prefilled from its meters and bills, saved while being filled, then
//! reviewed by the kernel's approvals — the unit (单位审核), the department
//! above (主管部门审核) and the region (区域汇总审核) — and locked. A locked
//! month changes only after a reopening the region approves; every save
//! is in the kernel's history of the record.

use serde::Deserialize;
use tianshan_sdk::approvals::{Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, Write, collection};

use crate::common;
use crate::model::{self, Line, STATUS, Statement};

pub const FLOW: &str = "statement";
pub const REOPEN_FLOW: &str = "reopen";

pub fn statements() -> Collection {
    collection("statements")
}

pub fn id(org: &str, period: &str) -> String {
    format!("st-{org}-{period}")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/statements", list)
        .requires("energy.view")
        .get("/statements/{org}/{period}", show)
        .requires("energy.view")
        .put("/statements/{org}/{period}", save)
        .requires("energy.report")
        .post("/statements/{org}/{period}/submit", submit)
        .requires("energy.report")
        .post("/statements/{org}/{period}/withdraw", withdraw)
        .requires("energy.report")
        .post("/statements/{org}/{period}/reopen", reopen)
        .requires("energy.report")
        .get("/statements/{org}/{period}/history", history)
        .requires("energy.view")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "能耗统计报表 Energy statistics statement")
            .step(Step::any(
                "单位审核 Unit review",
                "energy.reviewer",
                Level::SelfOrg,
            ))
            .step(Step::any(
                "主管部门审核 Department review",
                "energy.reviewer",
                Level::Parent,
            ))
            .step(Step::any(
                "区域汇总审核 Regional review",
                "energy.reviewer",
                Level::Region,
            )),
    )?;
    approvals::define(
        &Flow::new(REOPEN_FLOW, "已锁定报表解锁 Reopening a locked statement").step(Step::any(
            "区域审批 Regional approval",
            "energy.reviewer",
            Level::Region,
        )),
    )
}

/// The statement's running approval (review or reopening), as the kernel
/// keeps it: the record does not copy the instance's id or step.
fn running(doc: &Doc<Statement>) -> Option<approvals::Instance> {
    approvals::for_subject(&doc.id)
        .ok()?
        .into_iter()
        .find(|i| i.status == "running")
}

/// The live status of a stored statement: a running review shows the
/// step the kernel is at.
fn live_status(doc: &Doc<Statement>) -> String {
    if doc.data.status == "in_review"
        && let Some(instance) = running(doc)
    {
        return model::stage_of_step(instance.current_step).to_string();
    }
    doc.data.status.clone()
}

fn view(doc: &Doc<Statement>) -> Value {
    let mut out = serde_json::to_value(doc).unwrap_or(Value::Null);
    out["stage"] = json!(live_status(doc));
    out
}

use serde_json::Value;

/// `GET /statements?period=&year=&status=&nature=&sort=&format=`
fn list(req: &Request) -> Result<Response> {
    let mut find = statements().find();
    if let Some(p) = req.query_param("period").filter(|p| !p.is_empty()) {
        find = find.eq("period", common::month("period", &p)?.1);
    }
    if let Some(y) = req.query_param("year").filter(|y| !y.is_empty()) {
        find = find.eq("year", common::year("year", &y)?);
    }
    if let Some(org) = req.query_param("org").filter(|o| !o.is_empty()) {
        find = find.within(Some(common::org_in_reach("org", &org)?));
    }
    let find = list::filter_vocab(find, req, "status", &STATUS)?;
    let find = list::filter_vocab(find, req, "nature", &model::NATURE)?;
    let find = list::sorted(
        find,
        req,
        &["period", "kgce", "co2_kg", "water_m3"],
        "-period",
    )?;
    if export::wanted(req)?.is_some() {
        return list::respond(
            req,
            &find,
            "statements",
            &[
                ("月份 Period", "/data/period"),
                ("单位 Org", "/org"),
                ("状态 Status", "/data/status"),
                ("综合能耗 kgce", "/data/kgce"),
                ("碳排放 kgCO2", "/data/co2_kg"),
                ("用水 m³", "/data/water_m3"),
                ("费用(分) Cost fen", "/data/cost_fen"),
            ],
        );
    }
    let paging = list::Paging::of(req)?;
    let page = paging.apply(find).with_total().page::<Statement>()?;
    let records: Vec<Value> = page.records.iter().map(view).collect();
    Ok(Response::json(&json!({
        "records": records, "next_cursor": page.next_cursor, "total": page.total,
    })))
}

fn path(req: &Request) -> Result<(String, i64, String)> {
    let org = common::org_in_reach("org", req.param("org")?)?;
    let (index, period) = common::month("period", req.param("period")?)?;
    Ok((org, index, period))
}

/// `GET /statements/{org}/{period}`: the stored statement, or a draft
/// prefilled from meters and bills (`status: not_filed`), with the gaps
/// the meters left and what the meters and bills say today either way.
fn show(req: &Request) -> Result<Response> {
    let (org, index, period) = path(req)?;
    let measured = crate::meters::measured(&org, index)?;
    let year = index.div_euclid(12) as i32;
    let factors = crate::factors::for_year(year)?;
    let profile = crate::profiles::for_year(&org, year)?;
    let stored = statements().get::<Statement>(&id(&org, &period))?;
    // Every review and reopening of the month, newest first, for the panel.
    let history = match &stored {
        Some(doc) => approvals::for_subject(&doc.id)?,
        None => Vec::new(),
    };
    let statement = match stored {
        Some(doc) => view(&doc),
        None => {
            let totals = model::totals(&measured.lines, &factors.data);
            json!({
                "id": null, "org": org,
                "data": {
                    "period": period, "year": year, "status": "not_filed",
                    "lines": measured.lines,
                    "kgce": totals.kgce, "co2_kg": totals.co2_kg,
                    "water_m3": totals.water_m3, "cost_fen": totals.cost_fen,
                },
                "stage": "not_filed",
            })
        }
    };
    Ok(Response::json(&json!({
        "statement": statement,
        "prefill": measured.lines,
        "gaps": measured.gaps,
        "profile": profile.map(|p| p.data),
        "factors": factors,
        "approvals": history,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    lines: Vec<Line>,
    #[serde(default)]
    note: String,
    /// The revision the page edited; a stale one is a conflict.
    #[serde(default)]
    revision: Option<u64>,
}

/// Fills a statement's derived fields from its lines, the profile in
/// force and the factor set of its year.
fn derive(org: &str, s: &mut Statement) -> Result<()> {
    let factors = crate::factors::for_year(s.year)?;
    model::check_lines(&s.lines, &factors.data)?;
    let profile = crate::profiles::for_year(org, s.year)?.ok_or_else(|| {
        Error::new(
            409,
            "profile_missing",
            "enter the institution's profile for this year first",
        )
        .with_param("year", s.year)
    })?;
    s.totals = model::totals(&s.lines, &factors.data);
    s.building_m2 = profile.data.building_m2;
    s.energy_users = profile.data.energy_users;
    s.nature = profile.data.nature;
    s.factor_set = factors.id;
    Ok(())
}

fn save(req: &Request) -> Result<Response> {
    let (org, index, period) = path(req)?;
    authz::require_at("energy.report", &org)?;
    let input: Input = req.json()?;
    if input.lines.len() > 20 {
        return Err(Error::invalid(
            "lines",
            "too_many_lines",
            "at most 20 lines",
        ));
    }
    if index > dates::this_month() {
        return Err(Error::invalid(
            "period",
            "period_in_future",
            "a month that has begun",
        ));
    }
    let existing = statements().get::<Statement>(&id(&org, &period))?;
    if let Some(doc) = &existing {
        if !model::editable(&doc.data.status) {
            return Err(locked_error(&doc.data.status));
        }
        if input.revision.is_some_and(|r| r != doc.revision) {
            return Err(Error::conflict("someone saved this statement meanwhile")
                .with_code("stale_revision"));
        }
    }
    let mut next = existing
        .as_ref()
        .map(|d| d.data.clone())
        .unwrap_or(Statement {
            period: period.clone(),
            year: index.div_euclid(12) as i32,
            ..Statement::default()
        });
    next.lines = input.lines;
    next.note = input.note.chars().take(500).collect();
    derive(&org, &mut next)?;
    if next.status != "returned" {
        next.status = "draft".into();
    }
    next.timeline.push("saved", None);
    let saved = match existing {
        Some(doc) => statements().update(&doc.id, doc.revision, &next)?,
        None => statements().insert_with(Some(&id(&org, &period)), Some(&org), &next)?,
    };
    Ok(Response::json(&view(&saved)))
}

fn locked_error(status: &str) -> Error {
    Error::conflict("the statement is in review or locked")
        .with_code("statement_not_editable")
        .with_param("status", status.to_string())
}

fn fetch(org: &str, period: &str) -> Result<Doc<Statement>> {
    statements()
        .get::<Statement>(&id(org, period))?
        .ok_or_else(|| {
            Error::not_found("save the statement first").with_code("statement_not_saved")
        })
}

/// `POST …/submit`: 上报 — the review starts with the unit's reviewer.
fn submit(req: &Request) -> Result<Response> {
    let (org, _, period) = path(req)?;
    authz::require_at("energy.report", &org)?;
    let doc = fetch(&org, &period)?;
    if !model::editable(&doc.data.status) {
        return Err(locked_error(&doc.data.status));
    }
    if doc.data.lines.is_empty() {
        return Err(Error::invalid(
            "lines",
            "statement_empty",
            "a statement needs at least one line",
        ));
    }
    let mut next = doc.data.clone();
    derive(&org, &mut next)?;
    next.status = "in_review".into();
    next.timeline.push("submitted", None);
    let form = json!({
        "title": {
            "zh-CN": format!("能耗统计报表 {}", next.period),
            "en": format!("Energy statement {}", next.period),
        },
        "summary": [
            { "label": { "zh-CN": "统计月份", "en": "Month" }, "value": next.period },
            { "label": { "zh-CN": "综合能耗", "en": "Energy use" }, "value": next.totals.kgce, "format": "number", "unit": "kgce" },
            { "label": { "zh-CN": "碳排放", "en": "CO₂" }, "value": next.totals.co2_kg, "format": "number", "unit": "kgCO₂" },
            { "label": { "zh-CN": "用水量", "en": "Water" }, "value": next.totals.water_m3, "format": "number", "unit": "m³" },
            { "label": { "zh-CN": "费用", "en": "Cost" }, "value": next.totals.cost_fen, "format": "money_fen" },
        ],
    });
    approvals::start_with(
        FLOW,
        &doc.id,
        &format!("能耗统计 {} Energy statement", next.period),
        Some(&org),
        &form,
        vec![Write::update("statements", &doc, &next)?],
    )?;
    let saved = statements().fetch::<Statement>(&doc.id)?;
    Ok(Response::json(&view(&saved)).with_status(201))
}

fn withdraw(req: &Request) -> Result<Response> {
    let (org, _, period) = path(req)?;
    let doc = fetch(&org, &period)?;
    let approval = match running(&doc) {
        Some(i) if ["in_review", "reopening"].contains(&doc.data.status.as_str()) => i.id,
        _ => {
            return Err(Error::conflict("nothing to withdraw").with_code("not_in_review"));
        }
    };
    approvals::withdraw(&approval)?;
    // The kernel's outcome event sets the status; answer what it will be.
    Ok(Response::json(&json!({ "withdrawn": approval })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReopenInput {
    reason: String,
}

/// `POST …/reopen`: asks the region to unlock a locked month.
fn reopen(req: &Request) -> Result<Response> {
    let (org, _, period) = path(req)?;
    authz::require_at("energy.report", &org)?;
    let input: ReopenInput = req.json()?;
    let reason = input.reason.trim();
    if reason.chars().count() < 4 {
        return Err(Error::invalid(
            "reason",
            "reason_required",
            "say why the month must change",
        ));
    }
    let doc = fetch(&org, &period)?;
    if doc.data.status != "locked" {
        return Err(Error::conflict("only a locked statement is reopened").with_code("not_locked"));
    }
    let mut next = doc.data.clone();
    next.status = "reopening".into();
    next.timeline
        .push("reopen_requested", Some(json!({ "reason": reason })));
    approvals::start_with(
        REOPEN_FLOW,
        &doc.id,
        &format!("解锁能耗报表 {} Reopen energy statement", next.period),
        Some(&org),
        &json!({ "period": next.period, "reason": reason }),
        vec![Write::update("statements", &doc, &next)?],
    )?;
    let saved = statements().fetch::<Statement>(&doc.id)?;
    Ok(Response::json(&view(&saved)).with_status(201))
}

fn history(req: &Request) -> Result<Response> {
    let (org, _, period) = path(req)?;
    Ok(Response::json(
        &json!({ "history": statements().revisions(&id(&org, &period))? }),
    ))
}

/// An approval of this plugin ended (or went back a step).
pub fn decided(outcome: &Outcome) -> Result<()> {
    let Some(doc) = statements().get::<Statement>(&outcome.subject_id)? else {
        return Ok(());
    };
    let reopening = outcome.flow == REOPEN_FLOW;
    let expected = if reopening { "reopening" } else { "in_review" };
    if doc.data.status != expected {
        return Ok(()); // a redelivery
    }
    let mut next = doc.data.clone();
    let note = outcome.comment.clone().map(|c| json!({ "comment": c }));
    let (status, action) = match (reopening, outcome.decision) {
        (_, Decision::Returned) => return Ok(()),
        (false, Decision::Approved) => ("locked", "locked"),
        (false, Decision::Rejected) => ("returned", "returned"),
        (false, Decision::Withdrawn) => ("draft", "withdrawn"),
        (true, Decision::Approved) => ("draft", "reopened"),
        (true, Decision::Rejected | Decision::Withdrawn) => ("locked", "reopen_refused"),
    };
    next.status = status.into();
    next.timeline
        .push_as(&dates::today(), "system", action, note);
    statements().update(&doc.id, doc.revision, &next)?;
    if status == "locked" && !reopening {
        crate::indicators::refresh_year(&doc.org, next.year)?;
        crate::targets::check_alerts(&doc.org, &next)?;
    }
    Ok(())
}

/// The most statements one factor change recomputes in its request.
const RECOMPUTE_CAP: usize = 50_000;

/// Refuses a factor change that would recompute more statements than one
/// request may touch, before anything is written.
pub fn ensure_recomputable(year: i32) -> Result<()> {
    if statements().find().gte("year", year).count()? > RECOMPUTE_CAP as u64 {
        return Err(Error::invalid(
            "effective_from",
            "recompute_too_large",
            "too many statements to recompute in one change",
        )
        .with_param("max", RECOMPUTE_CAP as u64));
    }
    Ok(())
}

/// Recomputes the totals of every statement from `year` on under the
/// factor sets now in force, and republishes the years that changed.
/// Answers how many statements changed; callers check
/// [`ensure_recomputable`] first.
pub fn recompute_from(year: i32) -> Result<usize> {
    let docs = statements()
        .find()
        .gte("year", year)
        .all::<Statement>(RECOMPUTE_CAP)?;
    let mut sets = std::collections::BTreeMap::new();
    let mut changed = 0;
    let mut years = std::collections::BTreeSet::new();
    let mut writes = Vec::new();
    for doc in &docs {
        if let std::collections::btree_map::Entry::Vacant(slot) = sets.entry(doc.data.year) {
            slot.insert(crate::factors::for_year(doc.data.year)?);
        }
        let set = &sets[&doc.data.year];
        let totals = model::totals(&doc.data.lines, &set.data);
        if totals == doc.data.totals && set.id == doc.data.factor_set {
            continue;
        }
        let mut next = doc.data.clone();
        next.totals = totals;
        next.factor_set = set.id.clone();
        next.timeline
            .push("recomputed", Some(json!({ "factor_set": set.id })));
        writes.push(Write::update("statements", doc, &next)?);
        years.insert((doc.org.clone(), doc.data.year));
        changed += 1;
        if writes.len() == 200 {
            tianshan_sdk::storage::transact(std::mem::take(&mut writes))?;
        }
    }
    if !writes.is_empty() {
        tianshan_sdk::storage::transact(writes)?;
    }
    let mut publisher = crate::indicators::Publisher::default();
    for (org, year) in years {
        crate::indicators::collect_year(&mut publisher, &org, year)?;
    }
    publisher.flush()?;
    Ok(changed)
}
