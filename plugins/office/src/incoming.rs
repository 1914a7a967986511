//! Incoming documents (收文): 签收 and 登记 (automatic for documents
//! distributed on the platform, by the clerk for paper), 拟办, 领导批办,
//! 承办 with progress reports and 传阅, 办结, 归档 — each step a state change
//! on the record with its entry in the timeline.

use serde::Deserialize;
use serde_json::Value;
use tianshan_sdk::document::reserve;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::common::{self, date_field, required};
use crate::model::{self, IN_STATUS, Incoming, Reader, URGENCY, incoming_next};

pub fn incoming() -> Collection {
    collection("incoming")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/incoming", list)
        .requires("office.view")
        .post("/incoming", register)
        .requires("office.clerk")
        .get("/incoming/{id}", show)
        .requires("office.view")
        .post("/incoming/{id}/propose", propose)
        .requires("office.clerk")
        .post("/incoming/{id}/instruct", instruct)
        .requires("office.instruct")
        .post("/incoming/{id}/report", report)
        .requires("office.draft")
        .post("/incoming/{id}/circulate", circulate)
        .requires("office.clerk")
        .post("/incoming/{id}/read", read)
        .requires("office.view")
        .post("/incoming/{id}/complete", complete)
        .requires("office.draft")
        .post("/incoming/{id}/archive", archive)
        .requires("office.clerk")
}

fn list(req: &Request) -> Result<Response> {
    let find = incoming().find();
    let find = list::filter_vocab(find, req, "status", &IN_STATUS)?;
    let find = match req.query_param("q") {
        Some(q) if !q.trim().is_empty() => find.contains("title", q.trim()),
        _ => find,
    };
    // Overdue: a deadline passed while the document is still open.
    let find = if req.query_param("overdue").as_deref() == Some("true") {
        find.one_of(
            "status",
            ["registered", "proposed", "instructed", "handling"],
        )
        .gt("deadline", "")
        .lt("deadline", dates::today())
    } else {
        find
    };
    let find = list::sorted(
        find,
        req,
        &["received_on", "deadline", "no"],
        "-received_on",
    )?;
    list::respond(
        req,
        &find,
        "incoming",
        &[
            ("收文号 No.", "/data/no"),
            ("来文单位 From", "/data/source_organ"),
            ("来文字号 Their No.", "/data/source_no"),
            ("标题 Title", "/data/title"),
            ("收文日期 Received", "/data/received_on"),
            ("办理时限 Deadline", "/data/deadline"),
            ("主办 Lead", "/data/lead"),
            ("状态 Status", "/data/status"),
        ],
    )
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
struct PaperInput {
    source_organ: String,
    source_no: String,
    doc_type: String,
    title: String,
    urgency: String,
    received_on: String,
    deadline: String,
    body: String,
    attachments: Vec<String>,
}

/// A paper document registered by the clerk, its scans attached.
fn register(req: &Request) -> Result<Response> {
    let input: PaperInput = req.json()?;
    let today = dates::today();
    let source_organ = required("source_organ", "source_organ_required", &input.source_organ)?;
    let title = required("title", "title_required", &input.title)?;
    let urgency = if input.urgency.trim().is_empty() {
        "normal".to_string()
    } else {
        input.urgency.trim().to_string()
    };
    URGENCY.check("urgency", &urgency)?;
    if !input.doc_type.is_empty() {
        model::DOC_TYPE.check("doc_type", &input.doc_type)?;
    }
    let mut received_on = date_field("received_on", "received_on_invalid", &input.received_on)?;
    if received_on.is_empty() {
        received_on = today.clone();
    }
    if received_on > today {
        return Err(Error::invalid(
            "received_on",
            "date_in_future",
            "a document is not received in the future",
        ));
    }
    let deadline = date_field("deadline", "deadline_invalid", &input.deadline)?;
    for (i, id) in input.attachments.iter().enumerate() {
        files::info(id).map_err(|e| e.with_field(format!("attachments[{i}]")))?;
    }
    let org = common::caller()?.org_id;
    let year = &received_on[..4];
    let seq = reserve("counters", &format!("SW{year}"), &org, 1)?;
    let mut doc = Incoming {
        no: format!("收〔{year}〕{seq}号"),
        source_organ,
        source_no: input.source_no.trim().to_string(),
        doc_type: input.doc_type,
        title,
        urgency,
        body: input.body,
        attachments: input.attachments,
        period: crate::indicators::period_of(&received_on),
        received_on,
        deadline,
        status: "registered".into(),
        ..Incoming::default()
    };
    doc.timeline.push("registered", None);
    let saved = incoming().insert(&doc)?;
    crate::indicators::refresh(crate::indicators::RECEIVED, &saved.org, &saved.data.period)?;
    Ok(Response::json(&saved).with_status(201))
}

fn fetch(req: &Request) -> Result<Doc<Incoming>> {
    incoming().fetch(req.param("id")?)
}

fn show(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let overdue = model::overdue(
        &doc.data.deadline,
        &dates::today(),
        !matches!(doc.data.status.as_str(), "completed" | "archived"),
    );
    Ok(Response::json(
        &json!({ "document": doc, "overdue": overdue }),
    ))
}

/// Moves `doc` by `action`, after `change` filled in what it records.
fn step(
    doc: Doc<Incoming>,
    action: &str,
    note: Option<Value>,
    change: impl FnOnce(&mut Incoming),
) -> Result<Response> {
    let next_status = incoming_next(&doc.data.status, action)?;
    let mut next = doc.data.clone();
    change(&mut next);
    if !next_status.is_empty() {
        next.status = next_status.into();
    }
    next.timeline.push(action, note);
    Ok(Response::json(&incoming().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Opinion {
    opinion: String,
    note: String,
    lead: String,
    assisting: Vec<String>,
    deadline: String,
    readers: Vec<String>,
}

fn propose(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let input: Opinion = req.json()?;
    let opinion = required("opinion", "opinion_required", &input.opinion)?;
    step(doc, "propose", Some(Value::from(opinion.clone())), |d| {
        d.proposal = opinion
    })
}

fn instruct(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let input: Opinion = req.json()?;
    let opinion = required("opinion", "opinion_required", &input.opinion)?;
    let lead = required("lead", "lead_required", &input.lead)?;
    let deadline = date_field("deadline", "deadline_invalid", &input.deadline)?;
    let assisting: Vec<String> = input
        .assisting
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    step(doc, "instruct", Some(Value::from(opinion.clone())), |d| {
        d.instruction = opinion;
        d.lead = lead;
        d.assisting = assisting;
        if !deadline.is_empty() {
            d.deadline = deadline;
        }
    })
}

fn report(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let input: Opinion = req.json()?;
    let note = required("note", "note_required", &input.note)?;
    let me = common::caller()?;
    let entry = json!({ "on": dates::today(), "by": me.display_name, "note": note });
    step(doc, "report", Some(Value::from(note)), |d| {
        d.reports.push(entry)
    })
}

fn circulate(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let input: Opinion = req.json()?;
    if input.readers.is_empty() {
        return Err(Error::invalid(
            "readers",
            "readers_required",
            "name who should read it",
        ));
    }
    let mut readers = Vec::new();
    for (i, user) in input.readers.iter().enumerate() {
        // Only people the caller reaches: a profile outside is none.
        let profile = identity::profile(user.trim()).ok_or_else(|| {
            Error::invalid(
                format!("readers[{i}]"),
                "reader_unknown",
                "no such user within reach",
            )
        })?;
        readers.push(Reader {
            user: profile.user_id,
            name: profile.display_name,
            read_on: String::new(),
        });
    }
    let note = input.note.trim().to_string();
    step(doc, "circulate", Some(Value::from(note)), |d| {
        for r in readers {
            if !d.readers.iter().any(|x| x.user == r.user) {
                d.readers.push(r);
            }
        }
    })
}

/// 已阅: a reader the document was circulated to marks it read.
fn read(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let me = common::caller()?;
    let Some(position) = doc.data.readers.iter().position(|r| r.user == me.user_id) else {
        return Err(
            Error::forbidden("the document was not circulated to you").with_code("not_a_reader")
        );
    };
    if !doc.data.readers[position].read_on.is_empty() {
        return Ok(Response::json(&doc));
    }
    let mut next = doc.data.clone();
    next.readers[position].read_on = dates::today();
    next.timeline.push("read", None);
    Ok(Response::json(&incoming().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

fn complete(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    let input: Opinion = req.json()?;
    let note = required("note", "note_required", &input.note)?;
    step(doc, "complete", Some(Value::from(note.clone())), |d| {
        d.completion = note
    })
}

fn archive(req: &Request) -> Result<Response> {
    let doc = fetch(req)?;
    incoming_next(&doc.data.status, "archive")?;
    let year = doc.data.received_on[..4].parse().unwrap_or(2026);
    let filed = crate::outgoing::file_as(&doc.org, year, req)?;
    step(doc, "archive", None, |d| d.archive = Some(filed))
}
