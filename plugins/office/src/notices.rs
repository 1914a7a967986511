//! Notices (通知公告) with read receipts. A notice is stored at its
//! audience org: the collection is `read-below`, so the org's whole
//! subtree reads it and nobody outside does, by the kernel's scoping and
//! not by a filter here. `audience` narrows it further to leaders or the
//! office. Reading one records a receipt at the reader's org.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::common::{self, required};
use crate::model::{AUDIENCE, Notice, Receipt, audience_permission};

pub fn notices() -> Collection {
    collection("notices")
}

fn receipts() -> Collection {
    collection("receipts")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/notices", list)
        .requires("office.view")
        .post("/notices", publish)
        .requires("office.clerk")
        .get("/notices/{id}", show)
        .requires("office.view")
        .get("/notices/{id}/receipts", receipts_of)
        .requires("office.clerk")
}

/// Whether the caller is in the notice's audience.
fn addressed_to_me(doc: &Doc<Notice>) -> bool {
    match audience_permission(&doc.data.audience) {
        None => true,
        Some(permission) => authz::allowed(permission) || published_by_me(doc),
    }
}

fn published_by_me(doc: &Doc<Notice>) -> bool {
    identity::caller().is_some_and(|me| me.user_id == doc.data.publisher)
}

fn receipt_id(notice: &str, user: &str) -> String {
    format!("{notice}.{}", user.trim_start_matches("user-"))
}

/// How many pages past the first a list reads to fill a page that the
/// audience filter thinned out, so one request stays bounded.
const LOOK_AHEAD_PAGES: usize = 4;

/// Notices for the caller, newest first, each with whether he has read it.
/// Notices for an audience he is not in are left out after the kernel's
/// paging, so the next pages are read (whole, so the cursor skips nothing)
/// until the page is full or the list ends.
fn list(req: &Request) -> Result<Response> {
    let me = common::caller()?;
    let page = list::Paging::of(req)?;
    let mut found = page
        .apply(notices().find().sort_desc("published_at"))
        .page::<Notice>()?;
    let mut shown: Vec<Doc<Notice>> = Vec::new();
    for looked in 0..=LOOK_AHEAD_PAGES {
        shown.extend(found.records.drain(..).filter(addressed_to_me));
        let Some(next) = found.next_cursor.clone() else {
            break;
        };
        if shown.len() >= page.limit as usize || looked == LOOK_AHEAD_PAGES {
            break;
        }
        found = page
            .apply(notices().find().sort_desc("published_at"))
            .cursor(Some(next))
            .page::<Notice>()?;
    }
    // Only this page's receipts, not every receipt the reader ever left.
    let ids: Vec<String> = shown.iter().map(|d| d.id.clone()).collect();
    let read: HashSet<String> = if ids.is_empty() {
        HashSet::new()
    } else {
        receipts()
            .find()
            .eq("user", me.user_id.clone())
            .one_of("notice_id", ids.clone())
            .all::<Receipt>(ids.len())?
            .into_iter()
            .map(|r| r.data.notice_id)
            .collect()
    };
    let records: Vec<Value> = shown
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "org": d.org, "data": d.data,
                "read": read.contains(&d.id),
            })
        })
        .collect();
    Ok(Response::json(&json!({
        "records": records,
        "next_cursor": found.next_cursor,
    })))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct NoticeInput {
    title: String,
    body: String,
    audience_org: String,
    audience: String,
    attachments: Vec<String>,
}

fn publish(req: &Request) -> Result<Response> {
    let input: NoticeInput = req.json()?;
    let me = common::caller()?;
    let title = required("title", "title_required", &input.title)?;
    if title.chars().count() > 200 {
        return Err(Error::invalid(
            "title",
            "title_too_long",
            "a title has 200 characters at most",
        ));
    }
    let audience = if input.audience.is_empty() {
        "all".to_string()
    } else {
        input.audience
    };
    AUDIENCE.check("audience", &audience)?;
    // The audience org: the caller's own by default, or one he publishes
    // for (the kernel refuses a write outside his reach as well).
    let org = if input.audience_org.trim().is_empty() {
        me.org_id.clone()
    } else {
        let org = orgs::require_active("audience_org", input.audience_org.trim())?;
        if !authz::allowed_at("office.clerk", &org.id) {
            return Err(Error::new(404, "org_unknown", "no such org").with_field("audience_org"));
        }
        org.id
    };
    let notice = Notice {
        title,
        body: input.body,
        audience,
        publisher: me.user_id.clone(),
        publisher_name: me.display_name.clone(),
        publisher_org: me.org_id.clone(),
        published_at: dates::now_ms(),
        published_on: dates::today(),
        attachments: input.attachments,
    };
    let saved = notices().insert_with(None, Some(&org), &notice)?;
    Ok(Response::json(&saved).with_status(201))
}

fn fetch_for_me(req: &Request) -> Result<Doc<Notice>> {
    let doc: Doc<Notice> = notices().fetch(req.param("id")?)?;
    if !addressed_to_me(&doc) {
        return Err(Error::not_found("no such notice"));
    }
    Ok(doc)
}

/// The notice; the first read records the caller's receipt.
fn show(req: &Request) -> Result<Response> {
    let doc = fetch_for_me(req)?;
    let me = common::caller()?;
    let id = receipt_id(&doc.id, &me.user_id);
    if receipts().get::<Receipt>(&id)?.is_none() {
        let receipt = Receipt {
            notice_id: doc.id.clone(),
            user: me.user_id.clone(),
            name: me.display_name.clone(),
            at: dates::now_ms(),
        };
        match receipts().insert_with(Some(&id), Some(&me.org_id), &receipt) {
            Ok(_) => {}
            // Two tabs at once: the other one recorded it.
            Err(e) if e.status() == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Response::json(&json!({ "notice": doc, "read": true })))
}

/// Who has read it, for the office of the notice's org or above.
fn receipts_of(req: &Request) -> Result<Response> {
    let doc = fetch_for_me(req)?;
    authz::require_at("office.clerk", &doc.org)?;
    let read = receipts()
        .find()
        .eq("notice_id", doc.id.clone())
        .all::<Receipt>(5000)?;
    let rows: Vec<Value> = read
        .iter()
        .map(|r| {
            json!({
                "user": r.data.user, "name": r.data.name, "org": r.org,
                "at": r.data.at,
            })
        })
        .collect();
    Ok(Response::json(
        &json!({ "read": rows, "count": rows.len() }),
    ))
}
