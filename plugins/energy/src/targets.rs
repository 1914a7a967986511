//! Targets issued level by level (region → prefecture → county →
//! institution) and accepted by the org they are for; quotas (能耗定额:
//! 约束值, 基准值, 引导值 in kgce/m²·a) per building type and climate zone,
//! kept by the region; each org's year tracked against both and against
//! the 2020 baseline; and alerts when a locked month breaks a quota or a
//! target, spikes, or an online meter goes silent.

use serde::{Deserialize, Serialize};
use tianshan_sdk::datacenter::{Granularity, Query};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::common;
use crate::model::{self, ALERT_KIND, BUILDING_TYPE, CLIMATE_ZONE, Statement};

pub fn targets() -> Collection {
    collection("targets")
}
pub fn quotas() -> Collection {
    collection("quotas")
}
pub fn alerts() -> Collection {
    collection("alerts")
}

pub fn routes(router: Router) -> Router {
    router
        .get("/targets", list_targets)
        .requires("energy.view")
        .post("/targets", issue)
        .requires("energy.configure")
        .post("/targets/{id}/accept", accept)
        .requires("energy.report")
        .get("/quotas", list_quotas)
        .requires("energy.view")
        .put("/quotas/{id}", set_quota)
        .requires("energy.configure")
        .get("/tracking", tracking)
        .requires("energy.view")
        .get("/alerts", list_alerts)
        .requires("energy.view")
        .post("/alerts/{id}/close", close_alert)
        .requires("energy.report")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub building_type: String,
    pub climate_zone: String,
    /// 约束值: the ceiling.
    pub constraint: f64,
    /// 基准值.
    pub baseline: f64,
    /// 引导值: what good institutions reach.
    pub guide: f64,
    pub source: String,
}

impl Quota {
    fn validate(&self) -> Result<()> {
        BUILDING_TYPE.check("building_type", &self.building_type)?;
        CLIMATE_ZONE.check("climate_zone", &self.climate_zone)?;
        for (field, v) in [
            ("constraint", self.constraint),
            ("baseline", self.baseline),
            ("guide", self.guide),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 10_000.0) {
                return Err(Error::invalid(field, "quota_invalid", "a value above 0"));
            }
        }
        if !(self.guide <= self.baseline && self.baseline <= self.constraint) {
            return Err(Error::invalid(
                "constraint",
                "quota_order",
                "引导值 ≤ 基准值 ≤ 约束值",
            ));
        }
        Ok(())
    }
}

fn quota_id(building_type: &str, zone: &str) -> String {
    format!("q-{building_type}-{zone}")
}

/// Example quotas for office buildings in Xinjiang's two climate zones,
/// seeded so alerts work from the first day; the region replaces them
/// with its local standard's values (`PUT /quotas/{id}`).
pub fn seed_quotas() -> Result<()> {
    const SOURCE: &str = "示例值：请按自治区公共机构能耗定额地方标准修订";
    for (bt, zone, constraint, baseline, guide) in [
        ("office", "severe_cold", 24.0, 20.0, 16.0),
        ("office", "cold", 21.0, 17.5, 14.0),
        ("school", "severe_cold", 16.0, 13.0, 10.0),
        ("school", "cold", 14.0, 11.5, 9.0),
        ("hospital", "severe_cold", 60.0, 48.0, 38.0),
        ("hospital", "cold", 54.0, 44.0, 35.0),
        ("venue", "severe_cold", 30.0, 25.0, 20.0),
        ("venue", "cold", 27.0, 22.0, 18.0),
    ] {
        let id = quota_id(bt, zone);
        if quotas().get::<Quota>(&id)?.is_none() {
            quotas().insert_with(
                Some(&id),
                None,
                &Quota {
                    building_type: bt.into(),
                    climate_zone: zone.into(),
                    constraint,
                    baseline,
                    guide,
                    source: SOURCE.into(),
                },
            )?;
        }
    }
    Ok(())
}

fn list_quotas(_: &Request) -> Result<Response> {
    Ok(Response::json(
        &json!({ "records": quotas().find().all::<Quota>(100)? }),
    ))
}

fn set_quota(req: &Request) -> Result<Response> {
    let doc: Doc<Quota> = quotas().fetch(req.param("id")?)?;
    authz::require_at("energy.configure", &doc.org)?;
    let mut quota: Quota = req.json()?;
    quota.building_type = doc.data.building_type.clone();
    quota.climate_zone = doc.data.climate_zone.clone();
    quota.validate()?;
    Ok(Response::json(&quotas().update(
        &doc.id,
        doc.revision,
        &quota,
    )?))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Target {
    pub year: i32,
    /// kgce/m²·a, kgce/person·a, m³/person·a, kgCO₂/m²·a; none: not set.
    #[serde(default)]
    pub per_area: Option<f64>,
    #[serde(default)]
    pub per_capita: Option<f64>,
    #[serde(default)]
    pub water_per_capita: Option<f64>,
    #[serde(default)]
    pub carbon_per_area: Option<f64>,
    /// Total energy, tce.
    #[serde(default)]
    pub total_tce: Option<f64>,
    /// 下达 (`issued`) → 确认 (`accepted`).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub issued_by: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueInput {
    org: String,
    year: i32,
    #[serde(default)]
    per_area: Option<f64>,
    #[serde(default)]
    per_capita: Option<f64>,
    #[serde(default)]
    water_per_capita: Option<f64>,
    #[serde(default)]
    carbon_per_area: Option<f64>,
    #[serde(default)]
    total_tce: Option<f64>,
    #[serde(default)]
    note: String,
}

fn target_id(org: &str, year: i32) -> String {
    format!("tg-{org}-{year}")
}

/// `POST /targets`: the acting org issues a target to an org directly
/// below it (level by level; a prefecture cannot set a county's
/// institutions' targets over the county's head).
fn issue(req: &Request) -> Result<Response> {
    let input: IssueInput = req.json()?;
    model::year_ok("year", input.year)?;
    let acting = common::acting_org();
    let org = orgs::require_active("org", &input.org)?;
    if org.parent.as_deref() != Some(acting.as_str()) {
        return Err(Error::invalid(
            "org",
            "target_not_below",
            "targets go to the orgs directly below the acting one",
        ));
    }
    authz::require_at("energy.configure", &acting)?;
    let values = [
        ("per_area", input.per_area),
        ("per_capita", input.per_capita),
        ("water_per_capita", input.water_per_capita),
        ("carbon_per_area", input.carbon_per_area),
        ("total_tce", input.total_tce),
    ];
    if values.iter().all(|(_, v)| v.is_none()) {
        return Err(Error::invalid(
            "per_area",
            "target_empty",
            "set at least one target value",
        ));
    }
    for (field, v) in values {
        if v.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(Error::invalid(field, "target_invalid", "a value above 0"));
        }
    }
    let target = Target {
        year: input.year,
        per_area: input.per_area,
        per_capita: input.per_capita,
        water_per_capita: input.water_per_capita,
        carbon_per_area: input.carbon_per_area,
        total_tce: input.total_tce,
        status: "issued".into(),
        issued_by: acting,
        note: input.note.chars().take(500).collect(),
    };
    let id = target_id(&org.id, input.year);
    let saved = match targets().get::<Target>(&id)? {
        Some(doc) => targets().update(&doc.id, doc.revision, &target)?,
        None => targets().insert_with(Some(&id), Some(&org.id), &target)?,
    };
    Ok(Response::json(&saved).with_status(201))
}

/// `POST /targets/{id}/accept`: only the org the target is for accepts it.
fn accept(req: &Request) -> Result<Response> {
    let doc: Doc<Target> = targets().fetch(req.param("id")?)?;
    if common::acting_org() != doc.org {
        return Err(
            Error::forbidden("the org the target is for accepts it").with_code("target_not_yours")
        );
    }
    authz::require_at("energy.report", &doc.org)?;
    if doc.data.status != "issued" {
        return Err(Error::conflict("already accepted").with_code("target_accepted"));
    }
    let mut next = doc.data.clone();
    next.status = "accepted".into();
    Ok(Response::json(&targets().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}

fn list_targets(req: &Request) -> Result<Response> {
    let find = targets().find();
    let find = match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => find.eq("year", common::year("year", &y)?),
        None => find,
    };
    let find = list::sorted(find, req, &["year"], "-year")?;
    list::respond(
        req,
        &find,
        "targets",
        &[
            ("年度 Year", "/data/year"),
            ("单位 Org", "/org"),
            ("单位面积能耗 kgce/m²", "/data/per_area"),
            ("人均能耗 kgce/person", "/data/per_capita"),
            ("人均用水 m³/person", "/data/water_per_capita"),
            ("单位面积碳排放 kgCO2/m²", "/data/carbon_per_area"),
            ("状态 Status", "/data/status"),
        ],
    )
}

/// One org's year so far (annualised where it is an intensity), from the
/// data center's roll-up of its subtree.
fn year_figures(org: &str, year: i32) -> Result<Value> {
    let y = year.to_string();
    let at = |code: &str| -> Result<Option<f64>> {
        Ok(Query::new(code)
            .org(org)
            .between(Some(y.clone()), Some(y.clone()))
            .rows()?
            .into_iter()
            .next()
            .map(|r| r.value))
    };
    let months = Query::new("energy.kgce_month")
        .org(org)
        .between(Some(format!("{y}-01")), Some(format!("{y}-12")))
        .rows()?;
    let count = months.len().max(1) as f64;
    let annual = |v: Option<f64>| v.map(|v| model::round(v * 12.0 / count, 3));
    Ok(json!({
        "year": year,
        "months": months.len(),
        "kgce": at("energy.kgce")?,
        "per_area": annual(at("energy.per_area")?),
        "per_capita": annual(at("energy.per_capita")?),
        "water_per_capita": annual(at("energy.water_per_capita")?),
        "carbon_per_area": annual(at("energy.carbon_per_area")?),
        "monthly": months.iter().map(|r| json!({ "period": r.period, "kgce": r.value })).collect::<Vec<_>>(),
    }))
}

use serde_json::Value;

/// `GET /tracking?org=&year=`: the year against its target, the quota of
/// the org's building type and the 2020 baseline.
fn tracking(req: &Request) -> Result<Response> {
    let org = match req.query_param("org").filter(|o| !o.is_empty()) {
        Some(o) => common::org_in_reach("org", &o)?,
        None => common::acting_org(),
    };
    let year = match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => common::year("year", &y)?,
        None => dates::current_period(Granularity::Year)
            .parse()
            .unwrap_or(2026),
    };
    let current = year_figures(&org, year)?;
    let baseline = year_figures(&org, model::BASE_YEAR)?;
    let target = targets().get::<Target>(&target_id(&org, year))?;
    let profile = crate::profiles::for_year(&org, year)?;
    let quota = match &profile {
        Some(p) => quotas().get::<Quota>(&quota_id(&p.data.building_type, &p.data.climate_zone))?,
        None => None,
    };
    let change = |key: &str| -> Option<f64> {
        let now = current[key].as_f64()?;
        let base = baseline[key].as_f64().filter(|b| *b > 0.0)?;
        Some(model::round((now - base) / base * 100.0, 2))
    };
    Ok(Response::json(&json!({
        "org": org,
        "current": current,
        "baseline": baseline,
        "change_pct": {
            "per_area": change("per_area"),
            "per_capita": change("per_capita"),
            "water_per_capita": change("water_per_capita"),
            "carbon_per_area": change("carbon_per_area"),
        },
        "target": target,
        "quota": quota.map(|q| q.data),
    })))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub kind: String,
    pub period: String,
    pub value: f64,
    pub limit: f64,
    /// `open` → `closed`.
    pub state: String,
    #[serde(default)]
    pub meter: String,
    #[serde(default)]
    pub closed_note: String,
}

fn raise(org: &str, key: &str, alert: Alert) -> Result<()> {
    let id = format!("al-{org}-{key}");
    match alerts().get::<Alert>(&id)? {
        Some(doc) if doc.data.state == "open" => {
            alerts().update(&doc.id, doc.revision, &alert)?;
        }
        Some(_) => {} // closed by someone who looked at it: not raised again
        None => {
            alerts().insert_with(Some(&id), Some(org), &alert)?;
        }
    }
    Ok(())
}

/// After a month is locked: quota and target by the year's annualised
/// energy per m², and the month against the same month a year before.
pub fn check_alerts(org: &str, locked: &Statement) -> Result<()> {
    let year = locked.year;
    let months = crate::statements::statements()
        .find()
        .eq("org", org)
        .eq("year", year)
        .eq("status", "locked")
        .all::<Statement>(12)?;
    let totals: Vec<model::Totals> = months.iter().map(|d| d.data.totals).collect();
    let Some(i) = model::intensities(&totals, locked.building_m2, locked.energy_users) else {
        return Ok(());
    };
    if let Some(profile) = crate::profiles::for_year(org, year)?
        && let Some(q) = quotas().get::<Quota>(&quota_id(
            &profile.data.building_type,
            &profile.data.climate_zone,
        ))?
        && i.per_area > q.data.constraint
    {
        raise(
            org,
            &format!("quota-{year}"),
            alert("over_quota", &locked.period, i.per_area, q.data.constraint),
        )?;
    }
    if let Some(t) = targets().get::<Target>(&target_id(org, year))?
        && let Some(limit) = t.data.per_area
        && i.per_area > limit
    {
        raise(
            org,
            &format!("target-{year}"),
            alert("over_target", &locked.period, i.per_area, limit),
        )?;
    }
    let index = dates::parse_month(&locked.period).unwrap_or(0);
    let year_before = dates::month_text(index - 12);
    if let Some(before) = crate::statements::statements()
        .get::<Statement>(&crate::statements::id(org, &year_before))?
        && before.data.status == "locked"
        && model::spiked(locked.totals.kgce, before.data.totals.kgce, 1.3)
    {
        raise(
            org,
            &format!("spike-{}", locked.period),
            alert(
                "spike",
                &locked.period,
                locked.totals.kgce,
                before.data.totals.kgce,
            ),
        )?;
    }
    Ok(())
}

fn alert(kind: &str, period: &str, value: f64, limit: f64) -> Alert {
    Alert {
        kind: kind.into(),
        period: period.into(),
        value: model::round(value, 3),
        limit: model::round(limit, 3),
        state: "open".into(),
        meter: String::new(),
        closed_note: String::new(),
    }
}

/// The kernel's offline alerts for this plugin's meters.
pub fn meter_alerts(batch: &[tianshan_sdk::telemetry::Alert]) -> Result<()> {
    for a in batch {
        if a.rule != crate::meters::OFFLINE_RULE {
            continue;
        }
        let period = dates::period_at(a.at / 1000, Granularity::Month);
        let mut al = alert("meter_offline", &period, 0.0, 0.0);
        al.meter = a.device.clone();
        raise(&a.org, &format!("offline-{}", a.device), al)?;
    }
    Ok(())
}

fn list_alerts(req: &Request) -> Result<Response> {
    let find = alerts().find();
    let find = list::filter_vocab(find, req, "kind", &ALERT_KIND)?;
    let find = list::filter_one_of(find, req, "state", &["open", "closed"])?;
    let find = list::sorted(find, req, &["period"], "-period")?;
    list::respond(
        req,
        &find,
        "alerts",
        &[
            ("月份 Period", "/data/period"),
            ("单位 Org", "/org"),
            ("类型 Kind", "/data/kind"),
            ("数值 Value", "/data/value"),
            ("限值 Limit", "/data/limit"),
            ("状态 State", "/data/state"),
        ],
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseInput {
    note: String,
}

fn close_alert(req: &Request) -> Result<Response> {
    let doc: Doc<Alert> = alerts().fetch(req.param("id")?)?;
    authz::require_at("energy.report", &doc.org)?;
    let input: CloseInput = req.json()?;
    if input.note.trim().chars().count() < 2 {
        return Err(Error::invalid(
            "note",
            "reason_required",
            "say how it was handled",
        ));
    }
    if doc.data.state != "open" {
        return Err(Error::conflict("already closed").with_code("alert_closed"));
    }
    let mut next = doc.data.clone();
    next.state = "closed".into();
    next.closed_note = input.note.trim().chars().take(500).collect();
    Ok(Response::json(&alerts().update(
        &doc.id,
        doc.revision,
        &next,
    )?))
}
