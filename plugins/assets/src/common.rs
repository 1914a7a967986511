//! Helpers every part of the plugin uses: permissions, numbering, the
//! activity log, events and the caller's language.

use serde::Serialize;
use serde_json::{Value, json};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Doc, Write};

use crate::model::Card;

/// The caller's language (`en` or `zh-CN`).
pub fn lang(req: &Request) -> String {
    req.lang().to_string()
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

/// The caller's name as people know it (their display name), for the
/// histories people read; `actor()` stays the stable username.
pub fn actor_name() -> String {
    identity::caller()
        .map(|p| {
            if p.display_name.trim().is_empty() {
                p.username
            } else {
                p.display_name
            }
        })
        .unwrap_or_else(|| "system".into())
}

/// The org the request acts in (the kernel's choice, never the body's).
pub fn acting_org() -> Option<String> {
    identity::caller().map(|p| p.org_id)
}

/// Reserves `count` consecutive numbers of series `series` in `org` and
/// returns the first (the SDK's document numbering, on `counters`).
pub fn reserve_numbers(series: &str, org: &str, count: i64) -> Result<i64> {
    tianshan_sdk::document::reserve("counters", series, org, count)
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
            "actor_name": actor_name(),
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

/// One entry of a record's `history` (who, when, what), as the pages show
/// it: the username and the display name.
pub fn history_entry(action: &str, note: Value) -> Value {
    json!({
        "on": crate::dates::today(), "actor": actor(), "actor_name": actor_name(),
        "action": action, "note": note,
    })
}

/// Appends to a raw record's `history`, starting one if it has none.
pub fn push_history(data: &mut Value, action: &str, note: Value) {
    if !data["history"].is_array() {
        data["history"] = json!([]);
    }
    if let Some(h) = data["history"].as_array_mut() {
        h.push(history_entry(action, note));
    }
}

/// A new record number of `series` in `org` this year (`PREFIX` + year +
/// six digits) and the record id derived from it, so a number names one
/// record per org.
pub fn new_number(series: &str, prefix: &str, org: &str) -> Result<(String, String)> {
    let year = crate::dates::today()[..4].to_string();
    let seq = reserve_numbers(&format!("{series}{year}"), org, 1)?;
    let no = number(prefix, &year, seq);
    let id = format!("{no}.{org}").to_ascii_lowercase();
    Ok((no, id))
}

/// The update of a card to `data` at the revision it was read at.
pub fn card_write(card: &Doc<Card>, data: &Card) -> Result<Write> {
    Write::update("cards", card, data)
}

/// Publishes the events an approved document or order caused, each once
/// per (record, topic, key) however often the outcome is delivered.
pub fn publish_all(record: &str, events: Vec<(&str, String, String, Value)>) -> Result<()> {
    for (topic, key, org, body) in events {
        publish(topic, &key, &org, &body, &format!("{record}:{topic}:{key}"))?;
    }
    Ok(())
}

/// Who decided an approval and what they said, for the record's history:
/// the approver by name when the kernel's event carries it.
pub fn outcome_note(outcome: &tianshan_sdk::approvals::Outcome) -> Value {
    json!({ "by": outcome.actor, "by_name": outcome.actor_name, "comment": outcome.comment })
}

/// `"资产登记 Registration"` (how this plugin names its kinds and flows) as
/// the `{zh-CN, en}` pair the UI kit shows in one language.
pub fn both_langs(bilingual: &str, suffix: &str) -> Value {
    let (zh, en) = bilingual.split_once(' ').unwrap_or((bilingual, bilingual));
    json!({ "zh-CN": format!("{zh} {suffix}").trim(), "en": format!("{en} {suffix}").trim() })
}

/// One line of an approval's subject summary (docs/plugin-guide.md, "What
/// the approver sees"): a label in both languages, the value and its format.
pub fn summary_line(zh: &str, en: &str, value: Value, format: &str) -> Value {
    let mut line = json!({ "label": { "zh-CN": zh, "en": en }, "value": value, "format": format });
    if format == "money_fen" {
        line["unit"] = json!({ "zh-CN": "元", "en": "yuan" });
    }
    line
}

/// At most this many records are listed one by one in a summary; the
/// count and the total cover the rest.
pub const SUMMARY_RECORDS: usize = 10;

/// An org's name as a `{zh-CN, en}` pair for a summary (its id when the
/// kernel does not know it): an approver sees a receiver by name.
pub fn org_name(id: &str) -> Value {
    match tianshan_sdk::orgs::get(id) {
        Ok(Some(o)) => {
            let en = if o.name_en.is_empty() {
                o.name_zh.clone()
            } else {
                o.name_en
            };
            json!({ "zh-CN": o.name_zh, "en": en })
        }
        _ => json!(id),
    }
}
