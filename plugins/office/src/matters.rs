//! Supervision (督办): a matter assigned to an org within the clerk's
//! reach with an owner and a deadline, progress reports with a percentage,
//! completion; overdue when the deadline passed while it is open.

use serde::Deserialize;
use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::common::{date_field, required};
use crate::model::{MATTER_STATUS, Matter, overdue};

fn matters() -> Collection {
    collection("matters")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/matters", list)
        .requires("office.view")
        .post("/matters", create)
        .requires("office.clerk")
        .post("/matters/{id}/progress", progress)
        .requires("office.draft")
        .post("/matters/{id}/complete", complete)
        .requires("office.draft")
}

fn view(doc: &Doc<Matter>, today: &str) -> Value {
    json!({
        "id": doc.id, "org": doc.org, "revision": doc.revision, "data": doc.data,
        "overdue": overdue(&doc.data.deadline, today, doc.data.status == "open"),
    })
}

fn list(req: &Request) -> Result<Response> {
    let today = dates::today();
    let find = matters().find();
    let find = list::filter_vocab(find, req, "status", &MATTER_STATUS)?;
    let find = if req.query_param("overdue").as_deref() == Some("true") {
        find.eq("status", "open").lt("deadline", today.clone())
    } else {
        find
    };
    let find = list::sorted(find, req, &["deadline"], "deadline")?;
    let page = list::Paging::of(req)?
        .apply(find.with_total())
        .page::<Matter>()?;
    Ok(Response::json(&json!({
        "records": page.records.iter().map(|d| view(d, &today)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
        "total": page.total,
    })))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct MatterInput {
    title: String,
    org: String,
    owner: String,
    deadline: String,
    incoming_id: String,
}

fn create(req: &Request) -> Result<Response> {
    let input: MatterInput = req.json()?;
    let title = required("title", "title_required", &input.title)?;
    let owner = required("owner", "owner_required", &input.owner)?;
    let deadline = date_field("deadline", "deadline_invalid", &input.deadline)?;
    if deadline.is_empty() {
        return Err(Error::invalid(
            "deadline",
            "deadline_invalid",
            "a matter has a deadline",
        ));
    }
    let org = if input.org.trim().is_empty() {
        identity::caller().map(|p| p.org_id).unwrap_or_default()
    } else {
        let org = orgs::require_active("org", input.org.trim())?;
        if !authz::allowed_at("office.clerk", &org.id) {
            return Err(Error::new(404, "org_unknown", "no such org").with_field("org"));
        }
        org.id
    };
    if !input.incoming_id.is_empty() {
        crate::incoming::incoming()
            .fetch::<Value>(&input.incoming_id)
            .map_err(|e| e.with_field("incoming_id"))?;
    }
    let mut matter = Matter {
        title,
        owner,
        deadline,
        incoming_id: input.incoming_id,
        status: "open".into(),
        ..Matter::default()
    };
    matter.timeline.push("assigned", None);
    let saved = matters().insert_with(None, Some(&org), &matter)?;
    Ok(Response::json(&view(&saved, &dates::today())).with_status(201))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProgressInput {
    note: String,
    percent: Option<f64>,
}

fn open_matter(req: &Request) -> Result<Doc<Matter>> {
    let doc: Doc<Matter> = matters().fetch(req.param("id")?)?;
    if doc.data.status != "open" {
        return Err(Error::new(409, "matter_closed", "the matter is completed"));
    }
    Ok(doc)
}

fn progress(req: &Request) -> Result<Response> {
    let doc = open_matter(req)?;
    let input: ProgressInput = req.json()?;
    let note = required("note", "note_required", &input.note)?;
    let percent = match input.percent {
        None => doc.data.percent,
        Some(p) if (0.0..=100.0).contains(&p) && p.fract() == 0.0 => p as u32,
        Some(_) => {
            return Err(Error::invalid(
                "percent",
                "percent_invalid",
                "a whole percentage 0-100",
            ));
        }
    };
    let by = identity::caller()
        .map(|p| p.display_name)
        .unwrap_or_default();
    let mut next = doc.data.clone();
    next.percent = percent;
    next.progress
        .push(json!({ "on": dates::today(), "by": by, "note": note, "percent": percent }));
    next.timeline.push("progress", Some(Value::from(percent)));
    let saved = matters().update(&doc.id, doc.revision, &next)?;
    Ok(Response::json(&view(&saved, &dates::today())))
}

fn complete(req: &Request) -> Result<Response> {
    let doc = open_matter(req)?;
    let input: ProgressInput = req.json()?;
    let note = required("note", "note_required", &input.note)?;
    let mut next = doc.data.clone();
    next.status = "completed".into();
    next.percent = 100;
    next.completion = note;
    next.timeline.push("completed", None);
    let saved = matters().update(&doc.id, doc.revision, &next)?;
    Ok(Response::json(&view(&saved, &dates::today())))
}
