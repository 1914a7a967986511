//! Compliance alerts (违规告警): each alert the kernel raises on a terminal
//! (the rules in [`crate::terminals`]) becomes a record of the vehicle's
//! org, named by its plate, that a fleet manager handles to a verdict —
//! 合规 (compliant: it had a reason) or 违规 (a violation) — with a note
//! saying why. A verdict is final.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};
use tianshan_sdk::telemetry::Alert as Raised;

pub fn routes(router: Router) -> Router {
    router
        .get("/alerts", list_alerts)
        .requires("vehicles.view")
        .post("/alerts/{id}/verdict", decide)
        .requires("vehicles.manage")
}

pub fn alerts() -> Collection {
    collection("alerts")
}

pub const STATUS: &[&str] = &["open", "compliant", "violation"];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceAlert {
    pub rule: String,
    pub vehicle_id: String,
    pub plate: String,
    /// When the breaking report was taken (ms).
    pub at: i64,
    pub detail: Value,
    pub status: String,
    pub note: String,
    pub decided_by: String,
    pub decided_at: i64,
}

/// A batch of the kernel's alerts: one record each, once (a redelivered
/// batch finds its records there).
pub fn raised(batch: &[Raised]) -> Result<()> {
    for a in batch {
        let id = format!("al-{}-{}-{}", a.device, a.rule, a.at);
        if alerts().get::<Value>(&id)?.is_some() {
            continue;
        }
        let plate = crate::register::vehicles()
            .get::<crate::model::Vehicle>(&a.device)?
            .map(|v| v.data.plate)
            .unwrap_or_default();
        let record = ComplianceAlert {
            rule: a.rule.clone(),
            vehicle_id: a.device.clone(),
            plate,
            at: a.at,
            detail: a.detail.clone(),
            status: "open".into(),
            ..ComplianceAlert::default()
        };
        match alerts().insert_with(Some(&id), Some(&a.org), &record) {
            Ok(_) => {}
            Err(e) if e.code() == "conflict" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `GET /alerts?status=&rule=&vehicle_id=&sort=&format=csv|xlsx`, newest
/// first.
fn list_alerts(req: &Request) -> Result<Response> {
    let find = list::filter_one_of(alerts().find(), req, "status", STATUS)?;
    let find = list::filter_one_of(
        find,
        req,
        "rule",
        &["overspeed", "outside_hours", "offline"],
    )?;
    let find = list::filter_eq(&["vehicle_id"], find, req);
    let find = list::sorted(find, req, &["at"], "-at")?;
    list::respond(
        req,
        &find,
        "alerts",
        &[
            ("车牌号 Plate", "/data/plate"),
            ("告警 Rule", "/data/rule"),
            ("时间 At (ms)", "/data/at"),
            ("状态 Status", "/data/status"),
            ("说明 Note", "/data/note"),
            ("处理人 By", "/data/decided_by"),
        ],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictInput {
    verdict: String,
    note: String,
}

/// `POST /alerts/{id}/verdict` `{verdict: compliant|violation, note}`, by
/// a manager at the alert's org, once.
fn decide(req: &Request) -> Result<Response> {
    let doc: Doc<ComplianceAlert> = alerts().fetch(req.param("id")?)?;
    authz::require_at("vehicles.manage", &doc.org)?;
    let input: VerdictInput = req.json()?;
    if !["compliant", "violation"].contains(&input.verdict.as_str()) {
        return Err(Error::invalid(
            "verdict",
            "verdict_invalid",
            "compliant or violation",
        ));
    }
    let note = input.note.trim();
    if note.chars().count() < 2 {
        return Err(Error::invalid(
            "note",
            "reason_required",
            "say why: the trip it was, or what was wrong",
        ));
    }
    if doc.data.status != "open" {
        return Err(Error::conflict("this alert has its verdict")
            .with_code("alert_decided")
            .with_param("status", doc.data.status.clone()));
    }
    let me = identity::caller().ok_or_else(|| Error::forbidden("sign in first"))?;
    let mut next = doc.data.clone();
    next.status = input.verdict;
    next.note = note.chars().take(500).collect();
    next.decided_by = me.display_name;
    next.decided_at = dates::now_ms();
    Ok(Response::json(&alerts().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}
