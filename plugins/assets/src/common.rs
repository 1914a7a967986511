//! Helpers every part of the plugin uses: permissions, numbering, the
//! activity log, events, paging and the caller's language.

use serde::Serialize;
use serde_json::{Value, json};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Write, collection};

/// The caller's language: `?lang=`, else Accept-Language, else zh-CN.
pub fn lang(req: &Request) -> String {
    if let Some(lang) = req.query_param("lang") {
        return lang;
    }
    match req.header("accept-language") {
        Some(h) if h.trim_start().starts_with("en") => "en".into(),
        _ => "zh-CN".into(),
    }
}

pub fn require(permission: &str) -> Result<()> {
    authz::require(permission)
}

/// Who acts, for histories: the username, or `system` for kernel calls.
pub fn actor() -> String {
    identity::caller()
        .map(|p| p.username)
        .unwrap_or_else(|| "system".into())
}

/// The org the request acts in (the kernel's choice, never the body's).
pub fn acting_org() -> Option<String> {
    identity::caller().map(|p| p.org_id)
}

/// Reserves `count` consecutive numbers of series `series` in `org` and
/// returns the first. Concurrent callers retry on the counter's revision,
/// so no number is handed out twice.
pub fn reserve_numbers(series: &str, org: &str, count: i64) -> Result<i64> {
    let counters = collection("counters");
    let id = format!("{series}.{}", org.trim_start_matches("org-"));
    for _ in 0..8 {
        match counters.get::<Value>(&id)? {
            Some(doc) => {
                let next = doc.data["next"].as_i64().unwrap_or(1);
                match counters.update(&id, doc.revision, &json!({ "next": next + count })) {
                    Ok(_) => return Ok(next),
                    Err(e) if e.status() == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
            None => {
                match counters.insert_with(Some(&id), Some(org), &json!({ "next": 1 + count })) {
                    Ok(_) => return Ok(1),
                    Err(e) if e.status() == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(Error::new(503, "busy", "numbering is contended; try again"))
}

/// A document or card number: `PREFIX` + year + six digits.
pub fn number(prefix: &str, year: &str, seq: i64) -> String {
    format!("{prefix}{year}{seq:06}")
}

/// One entry of a card's activity log (every transition writes one).
pub fn activity(
    card_id: &str,
    org: &str,
    action: &str,
    document: Option<&str>,
    detail: Value,
) -> Write {
    Write::Insert {
        collection: "activity".into(),
        id: None,
        org: Some(org.to_string()),
        data: json!({
            "card_id": card_id,
            "action": action,
            "document_id": document,
            "actor": actor(),
            "on": crate::dates::today(),
            "detail": detail,
        }),
    }
}

/// Publishes `assets.<topic>` about `org`, keyed so one record's events
/// stay in order; the idempotency key makes a retried handler publish once.
pub fn publish(
    topic: &str,
    key: &str,
    org: &str,
    payload: &impl Serialize,
    once: &str,
) -> Result<()> {
    messaging::Event::json(&format!("assets.{topic}"), payload)?
        .key(key)
        .org(org)
        .idempotency_key(once)
        .publish()
        .map(|_| ())
}

/// `?limit=` (1–200, default 20) and `?cursor=`.
pub fn paging(req: &Request) -> Result<(u32, Option<String>)> {
    let limit = match req.query_param("limit") {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or_else(|| Error::validation("limit", "limit must be 1-200"))?,
        None => 20,
    };
    Ok((limit, req.query_param("cursor").filter(|c| !c.is_empty())))
}

/// `find` narrowed to `?{field}=` when the request gives one, refused with
/// a validation error naming `field` unless it is one of `allowed`.
pub fn filter_one_of(
    find: tianshan_sdk::storage::Find,
    req: &Request,
    field: &str,
    allowed: &[&str],
) -> Result<tianshan_sdk::storage::Find> {
    match req.query_param(field).filter(|v| !v.is_empty()) {
        None => Ok(find),
        Some(v) if allowed.contains(&v.as_str()) => Ok(find.eq(field, v)),
        Some(_) => Err(Error::validation(
            field,
            format!("{field} is one of {}", allowed.join(", ")),
        )),
    }
}

/// A JSON body that must be an object.
pub fn body(req: &Request) -> Result<serde_json::Map<String, Value>> {
    match req.json::<Value>()? {
        Value::Object(map) => Ok(map),
        _ => Err(Error::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        )),
    }
}

pub fn text_field(map: &serde_json::Map<String, Value>, field: &str) -> Option<String> {
    map.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn required_text(map: &serde_json::Map<String, Value>, field: &str) -> Result<String> {
    text_field(map, field).ok_or_else(|| Error::validation(field, format!("{field} is required")))
}
