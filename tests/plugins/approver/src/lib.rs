//! Test plugin for the approvals import: a two-step purchase flow (any one
//! county officer, then every prefecture director), requests that start
//! it, and an event handler that records the outcome on the request.

use tianshan_sdk::approvals::{Flow, Level, Step};
use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;
use tianshan_sdk::storage::collection;

struct Approver;

const FLOW: &str = "purchase";

fn flow() -> Flow {
    Flow::new(FLOW, "Purchase request")
        .step(Step::any(
            "County review",
            "approver.officer",
            Level::County,
        ))
        .step(Step::all(
            "Prefecture sign-off",
            "approver.director",
            Level::Prefecture,
        ))
}

impl Plugin for Approver {
    fn routes() -> Router {
        Router::new()
            .post("/requests", create)
            .get("/requests/{id}", show)
            .post("/requests/{id}/withdraw", withdraw)
            .post("/atomic", create_atomically)
            .get("/count", count)
    }

    // Defining is idempotent, so both hooks simply (re)define the flow.
    fn install() -> core::result::Result<(), String> {
        approvals::define(&flow()).map_err(|e| e.to_string())
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        approvals::define(&flow()).map_err(|e| e.to_string())
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        apply_outcome(&event).map_err(|e| e.to_string())
    }
}

fn create(req: &Request) -> Result<Response> {
    let input = req.json::<Value>()?;
    let title = input
        .get("title")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::validation("title", "title is required"))?
        .to_string();
    let org = input.get("org").and_then(Value::as_str);
    let requests = collection("requests");
    let doc = requests.insert_with(
        None,
        org,
        &json!({ "title": title, "amount": input.get("amount"), "status": "draft" }),
    )?;
    let instance = approvals::start(
        FLOW,
        &doc.id,
        &title,
        Some(&doc.org),
        &json!({ "amount": input.get("amount") }),
    )?;
    let doc = requests.update(
        &doc.id,
        doc.revision,
        &json!({
            "title": title,
            "amount": input.get("amount"),
            "status": "in_approval",
            "approval_id": instance.id,
        }),
    )?;
    Ok(Response::json(&json!({ "request": doc, "approval": instance })).with_status(201))
}

/// The request and its approval made together (`approvals::start_with`):
/// `{"title", "amount", "org"?, "flow"?, "collection"?}`. A flow or a
/// collection other than the plugin's lets a test make either half fail.
fn create_atomically(req: &Request) -> Result<Response> {
    let input = req.json::<Value>()?;
    let title = input["title"].as_str().unwrap_or("").to_string();
    let flow = input["flow"].as_str().unwrap_or(FLOW);
    let collection = input["collection"].as_str().unwrap_or("requests");
    let org = input["org"].as_str();
    let record = json!({ "title": title, "amount": input["amount"], "status": "in_approval" });
    let (instance, docs) = approvals::start_with(
        flow,
        "",
        &title,
        org,
        &json!({ "amount": input["amount"] }),
        vec![storage::Write::insert_with(collection, None, org, &record)?],
    )?;
    Ok(Response::json(&json!({ "request": docs[0], "approval": instance })).with_status(201))
}

fn count(_: &Request) -> Result<Response> {
    let n = collection("requests").find().count()?;
    Ok(Response::json(&json!({ "requests": n })))
}

fn show(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let doc = collection("requests").fetch::<Value>(id)?;
    let approvals = approvals::for_subject(id)?;
    Ok(Response::json(
        &json!({ "request": doc, "approvals": approvals }),
    ))
}

fn withdraw(req: &Request) -> Result<Response> {
    let doc = collection("requests").fetch::<Value>(req.param("id")?)?;
    let id = doc.data["approval_id"]
        .as_str()
        .ok_or_else(|| Error::conflict("the request has no approval"))?;
    let instance = approvals::withdraw(id)?;
    Ok(Response::json(&instance))
}

/// The request's status follows the approval's outcome. Setting a status
/// twice is harmless, so redelivered events need no bookkeeping; an event
/// of an older instance than the request's current one is ignored.
fn apply_outcome(event: &Event) -> Result<()> {
    let Some(outcome) = event.topic.strip_prefix("kernel.approval.") else {
        return Ok(());
    };
    let payload: Value = tianshan_sdk::serde_json::from_slice(&event.payload)?;
    let subject = payload["subject_id"].as_str().unwrap_or_default();
    let requests = collection("requests");
    let Some(doc) = requests.get::<Value>(subject)? else {
        return Ok(());
    };
    if doc.data["approval_id"] != payload["instance_id"] {
        return Ok(());
    }
    let status = match outcome {
        "approved" => "approved",
        "rejected" => "rejected",
        "withdrawn" => "withdrawn",
        _ => "in_approval",
    };
    let mut data = doc.data.clone();
    data["status"] = json!(status);
    data["last_outcome"] = json!(outcome);
    data["last_comment"] = payload["comment"].clone();
    requests.update(&doc.id, doc.revision, &data)?;
    Ok(())
}

tianshan_sdk::export_plugin!(Approver);
