//! Outgoing documents (发文): 拟稿 → 部门审核 → 核稿 → 会签 → 签发 → 复核 in
//! the kernel's approval `outgoing`, then 编号登记, 用印 and 分发 together
//! when the approval passes, and 归档.
//!
//! Registration writes into other orgs (each recipient's incoming box), so
//! it runs in the approval's outcome event, which the kernel sends with the
//! plugin's install scope because the kernel decided it; a user's request
//! could only write within his own reach. The counter, the document and
//! the copies are one transaction: a number is never lost or given twice.

use serde_json::Value;
use tianshan_sdk::approvals::{self, Decision, Flow, Level, Outcome, Step};
use tianshan_sdk::document::reserve;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, Write, collection};

use crate::common::{self, stale};
use crate::model::{
    self, DOC_TYPE, Delivery, Incoming, OUT_STATUS, Outgoing, OutgoingInput, document_no,
};

pub const FLOW: &str = "outgoing";

pub fn outgoing() -> Collection {
    collection("outgoing")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/outgoing", list)
        .requires("office.view")
        .post("/outgoing", create)
        .requires("office.draft")
        .get("/outgoing/{id}", show)
        .requires("office.view")
        .put("/outgoing/{id}", save)
        .requires("office.draft")
        .get("/outgoing/{id}/revisions", revisions)
        .requires("office.view")
        .get("/outgoing/{id}/diff", diff)
        .requires("office.view")
        .post("/outgoing/{id}/submit", submit)
        .requires("office.draft")
        .post("/outgoing/{id}/withdraw", withdraw)
        .requires("office.draft")
        .post("/outgoing/{id}/archive", archive)
        .requires("office.clerk")
}

pub fn define_flows() -> Result<()> {
    approvals::define(
        &Flow::new(FLOW, "发文审批 Outgoing document")
            .step(Step::any(
                "部门审核 Department review",
                "office.reviewer",
                Level::SelfOrg,
            ))
            .step(Step::any("核稿 Checking", "office.checker", Level::SelfOrg))
            .step(Step::all(
                "会签 Co-signing",
                "office.cosigner",
                Level::SelfOrg,
            ))
            .step(Step::any("签发 Signing", "office.signer", Level::SelfOrg))
            .step(Step::any(
                "复核、编号登记、用印与分发 Final check, registration, seal and distribution",
                "office.clerk",
                Level::SelfOrg,
            )),
    )
}

fn list(req: &Request) -> Result<Response> {
    let find = outgoing().find();
    let find = list::filter_vocab(find, req, "status", &OUT_STATUS)?;
    let find = list::filter_vocab(find, req, "doc_type", &DOC_TYPE)?;
    let find = match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => find.eq("year", common::year_param(&y)?),
        None => find,
    };
    let find = match req.query_param("q") {
        Some(q) if !q.trim().is_empty() => find.contains("title", q.trim()),
        _ => find,
    };
    let find = list::sorted(find, req, &["updated-at", "no", "title"], "-updated-at")?;
    list::respond(
        req,
        &find,
        "outgoing",
        &[
            ("发文字号 No.", "/data/no"),
            ("标题 Title", "/data/title"),
            ("文种 Type", "/data/doc_type"),
            ("紧急程度 Urgency", "/data/urgency"),
            ("主送 To", "/data/main_recipients"),
            ("成文日期 Date", "/data/issued_on"),
            ("拟稿人 Drafter", "/data/drafter_name"),
            ("状态 Status", "/data/status"),
        ],
    )
}

/// The recipients exist and take documents.
fn check_recipients(input: &OutgoingInput) -> Result<()> {
    for (i, org) in input.distribute_to.iter().enumerate() {
        orgs::require_active(&format!("distribute_to[{i}]"), org)?;
    }
    Ok(())
}

fn create(req: &Request) -> Result<Response> {
    let input = req.json::<OutgoingInput>()?.validated()?;
    check_recipients(&input)?;
    let me = common::caller()?;
    let mut doc = Outgoing {
        status: "draft".into(),
        year: common::this_year(),
        drafter: me.user_id.clone(),
        drafter_name: me.display_name.clone(),
        department: identity::caller_profile()
            .map(|p| p.department)
            .unwrap_or_default(),
        ..Outgoing::default()
    };
    input.apply(&mut doc);
    doc.timeline.push("created", None);
    let saved = outgoing().insert(&doc)?;
    Ok(Response::json(&saved).with_status(201))
}

fn fetch(req: &Request) -> Result<Doc<Outgoing>> {
    outgoing().fetch(req.param("id")?)
}

fn show(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let approvals = approvals::for_subject(&doc.id)?;
    // Every write bumps the revision and leaves one history row, so the
    // revision is the count without reading the history.
    let revisions = doc.revision;
    Ok(Response::json(&json!({
        "document": doc,
        "approvals": approvals,
        "revisions": revisions,
    })))
}

/// Only the drafter (or the org's clerk) edits, and only a draft.
fn editable(doc: &Doc<Outgoing>) -> Result<()> {
    let me = common::caller()?;
    if doc.data.status != "draft" {
        return Err(not_a_draft(&doc.data.status));
    }
    if doc.data.drafter != me.user_id && !authz::allowed_at("office.clerk", &doc.org) {
        return Err(
            Error::forbidden("only the drafter or the office edits a draft")
                .with_code("not_the_drafter"),
        );
    }
    Ok(())
}

fn not_a_draft(status: &str) -> Error {
    if status == "archived" {
        return Error::new(
            409,
            "document_archived",
            "an archived document is read-only",
        );
    }
    Error::new(409, "not_a_draft", format!("the document is {status}"))
        .with_param("status", status.to_string())
}

fn save(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    editable(&doc)?;
    let input = req.json::<OutgoingInput>()?.validated()?;
    if input.revision.is_some_and(|r| r != doc.revision) {
        return Err(stale(doc.revision));
    }
    check_recipients(&input)?;
    let mut next = doc.data.clone();
    input.apply(&mut next);
    if next == doc.data {
        return Ok(Response::json(&doc));
    }
    next.timeline.push("saved", None);
    let saved = outgoing()
        .update(&doc.id, doc.revision, &next)
        .map_err(|e| {
            if e.status() == 409 {
                stale(doc.revision)
            } else {
                e
            }
        })?;
    Ok(Response::json(&saved))
}

/// Every saved version, oldest first, with what a reader compares.
fn versions(id: &str) -> Result<Vec<Value>> {
    Ok(outgoing()
        .revisions(id)?
        .into_iter()
        .filter(|r| r["op"] != "delete")
        .map(|r| {
            json!({
                "revision": r["revision"],
                "at": r["at"],
                "by": r["actor"],
                "status": r["data"]["status"],
                "title": r["data"]["title"],
                "body": r["data"]["body"],
            })
        })
        .collect())
}

fn revisions(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    Ok(Response::json(&json!({ "versions": versions(&doc.id)? })))
}

/// `?from=&to=` revisions (default: the first and the current), the body's
/// changes marked, and the title's when it changed.
fn diff(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let all = versions(&doc.id)?;
    let pick = |field: &str, default: Option<&Value>| -> Result<Value> {
        match req.query_param(field).filter(|v| !v.is_empty()) {
            None => default
                .cloned()
                .ok_or_else(|| Error::not_found("no revision").with_code("revision_unknown")),
            Some(v) => {
                let wanted: u64 = v.parse().map_err(|_| {
                    Error::invalid(field, "revision_unknown", "a revision is a number")
                })?;
                all.iter()
                    .find(|r| r["revision"].as_u64() == Some(wanted))
                    .cloned()
                    .ok_or_else(|| {
                        Error::new(404, "revision_unknown", format!("no revision {wanted}"))
                            .with_field(field)
                    })
            }
        }
    };
    let from = pick("from", all.first())?;
    let to = pick("to", all.last())?;
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    Ok(Response::json(&json!({
        "from": from["revision"],
        "to": to["revision"],
        "title": model::diff(&text(&from, "title"), &text(&to, "title")),
        "ops": model::diff(&text(&from, "body"), &text(&to, "body")),
    })))
}

fn submit(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    editable(&doc)?;
    if doc.data.body.trim().is_empty() {
        return Err(Error::invalid(
            "body",
            "body_required",
            "a document needs its text",
        ));
    }
    if doc.data.distribute_to.is_empty() {
        return Err(Error::invalid(
            "distribute_to",
            "recipients_required",
            "name at least one org to distribute to",
        ));
    }
    let mut next = doc.data.clone();
    next.status = "reviewing".into();
    next.timeline.push("submitted", None);
    let d = &doc.data;
    let form = json!({
        "title": { "zh-CN": format!("发文 {}", d.title), "en": format!("Outgoing document: {}", d.title) },
        "summary": [
            { "label": { "zh-CN": "文种", "en": "Type" }, "value": DOC_TYPE.label(&d.doc_type, "zh-CN") },
            { "label": { "zh-CN": "标题", "en": "Title" }, "value": d.title },
            { "label": { "zh-CN": "主送", "en": "To" }, "value": d.main_recipients },
            { "label": { "zh-CN": "紧急程度", "en": "Urgency" }, "value": model::URGENCY.label(&d.urgency, "zh-CN") },
            { "label": { "zh-CN": "拟稿人", "en": "Drafter" }, "value": d.drafter_name },
            { "label": { "zh-CN": "分发单位数", "en": "Recipients" }, "value": d.distribute_to.len(), "format": "number" },
        ],
    });
    let (approval, _) = approvals::start_with(
        FLOW,
        &doc.id,
        &format!("发文 {} Outgoing document", d.title),
        Some(&doc.org),
        &form,
        vec![Write::update("outgoing", &doc, &next)?],
    )
    .map_err(|e| {
        // A second submit raced the first: the document is no longer the
        // revision it read.
        if e.status() == 409 {
            not_a_draft("reviewing")
        } else {
            e
        }
    })?;
    let saved: Doc<Outgoing> = outgoing().fetch(&doc.id)?;
    Ok(Response::json(&json!({
        "document": saved,
        "approval": approval,
    }))
    .with_status(201))
}

fn withdraw(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    if doc.data.status != "reviewing" {
        return Err(Error::new(
            409,
            "not_in_review",
            "only a document in review is withdrawn",
        ));
    }
    let running = approvals::for_subject(&doc.id)?
        .into_iter()
        .find(|i| i.status == "running")
        .ok_or_else(|| Error::new(409, "not_in_review", "no running approval"))?;
    approvals::withdraw(&running.id)?;
    // The outcome event puts the document back to draft; answer what will be.
    let mut shown = doc.clone();
    shown.data.status = "draft".into();
    Ok(Response::json(&shown))
}

#[derive(serde::Deserialize)]
struct ArchiveInput {
    #[serde(default)]
    category: String,
    #[serde(default)]
    retention: String,
}

/// Validated filing data and the archive number: org code, year,
/// retention and a sequence per org, year and retention.
pub fn file_as(org: &str, year: i32, req: &Request) -> Result<model::Archive> {
    let input: ArchiveInput = req.json()?;
    let category = input.category.trim().to_string();
    if category.is_empty() {
        return Err(Error::invalid(
            "category",
            "category_required",
            "a filing category is required",
        ));
    }
    model::RETENTION.check("retention", &input.retention)?;
    let series = format!("DA{year}{}", input.retention);
    let seq = reserve("counters", &series, org, 1)?;
    let code = orgs::get(org)?.map(|o| o.code).unwrap_or_default();
    let retention = model::RETENTION.label(&input.retention, "zh-CN");
    Ok(model::Archive {
        category,
        archive_no: format!("{code}-WS·{year}-{retention}-{seq:04}"),
        retention: input.retention,
        archived_on: dates::today(),
    })
}

fn archive(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    authz::require_at("office.clerk", &doc.org)?;
    if doc.data.status != "issued" {
        return Err(Error::new(
            409,
            "not_issued",
            "only an issued document is archived",
        ));
    }
    let mut next = doc.data.clone();
    next.archive = Some(file_as(&doc.org, doc.data.year, req)?);
    next.status = "archived".into();
    next.timeline.push("archived", None);
    Ok(Response::json(&outgoing().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

/// The approval's outcome. Approved: registered, sealed and distributed in
/// one transaction (retried when a concurrent registration took the
/// counter first); withdrawn or sent back to the drafter: a draft again.
pub fn decided(outcome: &Outcome) -> Result<()> {
    let Some(doc) = outgoing().get::<Outgoing>(&outcome.subject_id)? else {
        return Ok(());
    };
    if doc.data.status != "reviewing" {
        return Ok(()); // a redelivery
    }
    // An earlier approval's outcome, delivered again after the document
    // was sent back and submitted anew, is not this review's.
    let newest = approvals::for_subject(&doc.id)?.into_iter().next();
    if newest.is_some_and(|i| i.id != outcome.instance_id) {
        return Ok(());
    }
    match outcome.decision {
        Decision::Returned => Ok(()),
        // Sent back to the drafter (退回修改) or taken back: a draft again,
        // revised and submitted anew.
        Decision::Withdrawn | Decision::Rejected => {
            let mut next = doc.data.clone();
            next.status = "draft".into();
            let action = if outcome.decision == Decision::Withdrawn {
                "withdrawn"
            } else {
                "returned"
            };
            next.timeline.push_as(
                &dates::today(),
                "system",
                action,
                outcome.comment.clone().map(Value::from),
            );
            outgoing().update(&doc.id, doc.revision, &next)?;
            Ok(())
        }
        Decision::Approved => {
            for _ in 0..16 {
                match register(&outcome.subject_id) {
                    Err(e) if e.status() == 409 => continue,
                    other => return other,
                }
            }
            Err(Error::conflict(
                "registration is contended; the event is delivered again",
            ))
        }
    }
}

/// A counter read at its revision, as one write of a transaction.
fn take_number(series: &str, org: &str) -> Result<(i64, Write)> {
    let id = format!("{series}.{}", org.trim_start_matches("org-"));
    let counters = collection("counters");
    Ok(match counters.get::<Value>(&id)? {
        Some(doc) => {
            let next = doc.data["next"].as_i64().unwrap_or(1);
            (
                next,
                Write::update("counters", &doc, &json!({ "next": next + 1 }))?,
            )
        }
        None => (
            1,
            Write::insert_with("counters", Some(&id), Some(org), &json!({ "next": 2 }))?,
        ),
    })
}

/// Counter ids are record ids: characters storage takes.
pub fn series_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c.to_string()
            } else {
                format!("_{:x}", c as u32)
            }
        })
        .collect()
}

fn register(id: &str) -> Result<()> {
    let doc: Doc<Outgoing> = outgoing().fetch(id)?;
    if doc.data.status != "reviewing" {
        return Ok(());
    }
    let today = dates::today();
    let year = common::this_year();
    let (seq, counter) = take_number(
        &series_id(&format!("FW{}{year}", doc.data.organ_code)),
        &doc.org,
    )?;
    let mut next = doc.data.clone();
    next.seq = seq;
    next.year = year;
    next.no = document_no(&doc.data.organ_code, year, seq);
    next.issued_on = today.clone();
    next.period = crate::indicators::period_of(&today);
    next.printed_on = today.clone();
    next.sealed = true;
    next.status = "issued".into();
    next.timeline.push_as(
        &today,
        "system",
        "registered",
        Some(Value::from(next.no.clone())),
    );
    next.timeline.push_as(&today, "system", "sealed", None);
    let sender_name = orgs::get(&doc.org)?.map(|o| o.name_zh).unwrap_or_default();
    let mut writes = vec![counter];
    let mut deliveries = Vec::new();
    for org in &doc.data.distribute_to {
        let Some(recipient) = orgs::get(org)? else {
            continue; // removed since the draft was checked
        };
        let copy_id = format!("in-{}-{}", doc.id, recipient.id.trim_start_matches("org-"));
        if crate::incoming::incoming()
            .get::<Value>(&copy_id)?
            .is_some()
        {
            continue;
        }
        let (in_seq, in_counter) = take_number(&format!("SW{year}"), &recipient.id)?;
        let no = format!("收〔{year}〕{in_seq}号");
        let mut copy = Incoming {
            no: no.clone(),
            source_organ: if doc.data.issuing_organ.is_empty() {
                sender_name.clone()
            } else {
                doc.data.issuing_organ.clone()
            },
            source_org: doc.org.clone(),
            source_id: doc.id.clone(),
            source_no: next.no.clone(),
            doc_type: doc.data.doc_type.clone(),
            title: doc.data.title.clone(),
            urgency: doc.data.urgency.clone(),
            body: doc.data.body.clone(),
            attachments: copy_attachments(&doc.data.attachments, &recipient.id)?,
            received_on: today.clone(),
            period: crate::indicators::period_of(&today),
            status: "registered".into(),
            ..Incoming::default()
        };
        copy.timeline.push_as(
            &today,
            "system",
            "received",
            Some(Value::from(next.no.clone())),
        );
        writes.push(in_counter);
        writes.push(Write::insert_with(
            "incoming",
            Some(&copy_id),
            Some(&recipient.id),
            &copy,
        )?);
        deliveries.push(Delivery {
            org: recipient.id.clone(),
            org_name: recipient.name_zh.clone(),
            incoming_id: copy_id,
            no,
        });
    }
    next.deliveries = deliveries;
    next.timeline.push_as(
        &today,
        "system",
        "distributed",
        Some(Value::from(next.deliveries.len())),
    );
    writes.insert(1, Write::update("outgoing", &doc, &next)?);
    storage::transact(writes).map_err(|e| {
        // Another registration moved a counter or the document first.
        if e.status() == 409 {
            Error::conflict("retry")
        } else {
            e
        }
    })?;
    crate::indicators::refresh(crate::indicators::ISSUED, &doc.org, &next.period)?;
    for delivery in &next.deliveries {
        crate::indicators::refresh(crate::indicators::RECEIVED, &delivery.org, &next.period)?;
    }
    Ok(())
}

/// Attachments copied into the recipient's org, where its people can
/// read them; the sender's files stay the sender's.
fn copy_attachments(ids: &[String], org: &str) -> Result<Vec<String>> {
    let mut copies = Vec::new();
    for id in ids {
        let info = files::info(id)?;
        let content = files::read(id)?;
        copies.push(files::put(&info.name, &info.content_type, &content, Some(org))?.id);
    }
    Ok(copies)
}
