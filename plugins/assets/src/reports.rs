//! Reports: totals by unit, category and funding; the increase/decrease
//! statement (opening + additions − reductions = closing); depreciation
//! summary; idle rate; disposals by method; roll-ups up the org tree from
//! the data center. Each answers JSON, or CSV/XLSX with `?format=`.
//!
//! Totals are computed in the database (grouped aggregates), never by
//! reading every card into the plugin.

use serde_json::{Value, json};
use tianshan_sdk::datacenter;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Find, Group};

use crate::cards::cards;
use crate::common::lang;
use crate::export::{self, Table};
use crate::{categories, dates};

pub fn routes(router: Router) -> Router {
    router
        .get("/reports/totals", totals)
        .requires("assets.view")
        .get("/reports/changes", changes)
        .requires("assets.view")
        .get("/reports/depreciation", depreciation)
        .requires("assets.view")
        .get("/reports/idle", idle)
        .requires("assets.view")
        .get("/reports/disposals", disposals)
        .requires("assets.view")
        .get("/reports/rollup", rollup)
        .requires("assets.view")
        .get("/reports/trend", trend)
        .requires("assets.view")
        .get("/reports/annual", crate::annual::form)
        .requires("assets.view")
}

/// Cards on the books, within `?org=` when given.
fn booked(req: &Request) -> Find {
    cards()
        .find()
        .eq("state", "booked")
        .within(req.query_param("org").filter(|o| !o.is_empty()))
}

pub(crate) fn n(group: &Group, i: usize) -> f64 {
    group.values.get(i).copied().flatten().unwrap_or(0.0)
}

pub(crate) fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn yuan(fen: f64) -> f64 {
    crate::model::fen_to_yuan_number(fen.round() as i64)
}

/// A cell of an exported report: money (fen) in yuan, and a count as the
/// whole number it is (`3`, not `3.0`).
pub(crate) fn file_cell(v: &Value, money: bool) -> Value {
    let Value::Number(n) = v else {
        return v.clone();
    };
    let x = n.as_f64().unwrap_or(0.0);
    let x = if money { yuan(x) } else { x };
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// Answers `rows` as JSON (money in fen) or as a table (money in yuan).
fn answer(
    req: &Request,
    name: &str,
    headers: &[&str],
    rows: Vec<Value>,
    fields: &[(&str, bool)],
) -> Result<Response> {
    if let Some(format) = export::wanted(req)? {
        let mut table = Table::new(name, headers);
        for row in &rows {
            table.push(
                fields
                    .iter()
                    .map(|(f, money)| file_cell(&row[*f], *money))
                    .collect(),
            );
        }
        return export::respond(&table, format);
    }
    Ok(Response::json(&json!({ "rows": rows })))
}

/// `?by=unit|category|funding` (default category).
fn totals(req: &Request) -> Result<Response> {
    let lang = lang(req);
    let en = lang.starts_with("en");
    let by = req.query_param("by").unwrap_or_else(|| "category".into());
    // Only what the grouping shows, so the composite indexes on (state,
    // group, original_value, net_value) answer it without reading cards.
    let measures = [
        (AggregateOp::Count, None),
        (AggregateOp::Sum, Some("original_value")),
        (AggregateOp::Sum, Some("net_value")),
    ];
    let funding_measures = [
        (AggregateOp::Count, None),
        (AggregateOp::Sum, Some("funding_fiscal")),
        (AggregateOp::Sum, Some("funding_other")),
    ];
    let field = match by.as_str() {
        "unit" => "org",
        "category" => "category_top",
        "category_detail" => "category",
        "funding" => "funding",
        _ => {
            return Err(Error::validation(
                "by",
                "by is one of unit, category, category_detail, funding",
            )
            .with_code("not_in_vocabulary"));
        }
    };
    let rows: Vec<Value> = if field == "funding" {
        let groups = cards().aggregate(&booked(req), &[], &funding_measures)?;
        let g = groups.first();
        let get = |i| g.map(|g| n(g, i)).unwrap_or(0.0);
        vec![
            json!({ "key": "fiscal", "name": if en { "Fiscal appropriation" } else { "财政拨款" }, "original_value": get(1), "count": get(0) }),
            json!({ "key": "other", "name": if en { "Non-fiscal funds" } else { "非财政拨款" }, "original_value": get(2), "count": get(0) }),
        ]
    } else {
        let mut groups = cards().aggregate(&booked(req), &[field], &measures)?;
        groups.sort_by(|a, b| n(b, 1).total_cmp(&n(a, 1)));
        groups
            .iter()
            .map(|g| {
                let key = key_text(&g.key[0]);
                let name = if field == "org" {
                    key.clone()
                } else {
                    categories::name(&key, &lang)
                };
                json!({
                    "key": key,
                    "name": name,
                    "count": n(g, 0),
                    "original_value": n(g, 1),
                    "net_value": n(g, 2),
                })
            })
            .collect()
    };
    let headers: &[&str] = if en {
        &[
            "Key",
            "Name",
            "Cards",
            "Original value (yuan)",
            "Net value (yuan)",
        ]
    } else {
        &["代码", "名称", "卡片数", "原值（元）", "净值（元）"]
    };
    answer(
        req,
        &format!("totals-{by}"),
        headers,
        rows,
        &[
            ("key", false),
            ("name", false),
            ("count", false),
            ("original_value", true),
            ("net_value", true),
        ],
    )
}

/// Count and original value of the cards `find` selects.
pub(crate) fn count_value(find: &Find) -> Result<(f64, f64)> {
    let groups = cards().aggregate(
        find,
        &[],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
        ],
    )?;
    Ok(groups
        .first()
        .map(|g| (n(g, 0), n(g, 1)))
        .unwrap_or((0.0, 0.0)))
}

/// Grouped by top category, as (count, value) per key.
pub(crate) fn by_category(find: &Find) -> Result<std::collections::BTreeMap<String, (f64, f64)>> {
    let groups = cards().aggregate(
        find,
        &["category_top"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
        ],
    )?;
    Ok(groups
        .iter()
        .map(|g| (key_text(&g.key[0]), (n(g, 0), n(g, 1))))
        .collect())
}

const EVER_BOOKED: [&str; 3] = ["booked", "transferred", "disposed"];

/// Every card that was ever on the books, within `org`.
pub(crate) fn ever_booked(org: Option<String>) -> Find {
    cards().find().one_of("state", EVER_BOOKED).within(org)
}

/// Cards booked by the end of month `m` (a month index).
pub(crate) fn added_upto(org: Option<String>, m: i64) -> Find {
    ever_booked(org).lte("booked_on", format!("{}-31", dates::month_text(m)))
}

/// Cards that left the books by the end of month `m`.
pub(crate) fn reduced_upto(org: Option<String>, m: i64) -> Find {
    ever_booked(org)
        .gte("reduced_on", "1900-01")
        .lte("reduced_on", dates::month_text(m))
}

/// `?field=YYYY-MM` as a month index, or `default` when absent.
fn month_param(req: &Request, field: &str, default: i64) -> Result<i64> {
    match req.query_param(field).filter(|m| !m.is_empty()) {
        Some(m) => dates::parse_month(&m).ok_or_else(|| {
            Error::validation(field, format!("{field} must be YYYY-MM")).with_code("month_invalid")
        }),
        None => Ok(default),
    }
}

/// `?year=YYYY` from 1900 to `max` (422 `year_invalid` with `max`), this
/// year when absent.
pub(crate) fn year_param(req: &Request, max: i64) -> Result<i64> {
    match req.query_param("year").filter(|y| !y.is_empty()) {
        Some(y) => y
            .parse::<i64>()
            .ok()
            .filter(|y| (1900..=max).contains(y))
            .ok_or_else(|| {
                Error::validation("year", format!("year must be YYYY, at most {max}"))
                    .with_code("year_invalid")
                    .with_param("max", max)
            }),
        None => Ok(dates::this_month().div_euclid(12)),
    }
}

/// The longest trend one request computes (two aggregates a month).
const TREND_MONTHS: i64 = 60;

/// Month by month over `?from=&to=` (default: the twelve months up to
/// this one): the cards and original value on the books at each month's
/// end, what came in and what left in the month, and the net value the
/// data center holds for months whose depreciation run is booked (null
/// for the others, which have no booked net value).
fn trend(req: &Request) -> Result<Response> {
    let to = month_param(req, "to", dates::this_month())?;
    let from = month_param(req, "from", to - 11)?;
    if from > to {
        return Err(Error::validation("from", "from is after to").with_code("date_range"));
    }
    if to - from >= TREND_MONTHS {
        return Err(Error::validation(
            "from",
            format!("a trend covers at most {TREND_MONTHS} months"),
        )
        .with_code("range_too_long")
        .with_param("max", TREND_MONTHS));
    }
    let org = req.query_param("org").filter(|o| !o.is_empty());
    let mut net: std::collections::BTreeMap<String, f64> = Default::default();
    let mut query = datacenter::Query::new("assets.net_value")
        .between(Some(dates::month_text(from)), Some(dates::month_text(to)));
    if let Some(org) = &org {
        query = query.org(org.clone());
    }
    for row in query.rows()? {
        // The data center holds yuan; the reports answer fen.
        net.insert(row.period, (row.value * 100.0).round());
    }
    let stock = |m: i64| -> Result<(f64, f64, f64, f64)> {
        let (a, r) = (
            count_value(&added_upto(org.clone(), m))?,
            count_value(&reduced_upto(org.clone(), m))?,
        );
        Ok((a.0, a.1, r.0, r.1))
    };
    let mut before = stock(from - 1)?;
    let mut rows = Vec::new();
    for m in from..=to {
        let now = stock(m)?;
        let month = dates::month_text(m);
        rows.push(json!({
            "month": month,
            "count": now.0 - now.2,
            "original_value": now.1 - now.3,
            "additions_count": now.0 - before.0,
            "additions_value": now.1 - before.1,
            "reductions_count": now.2 - before.2,
            "reductions_value": now.3 - before.3,
            "net_value": net.get(&month),
        }));
        before = now;
    }
    let headers: &[&str] = if lang(req).starts_with("en") {
        &[
            "Month",
            "Cards",
            "Original value (yuan)",
            "Added",
            "Added value (yuan)",
            "Left",
            "Left value (yuan)",
            "Net value (yuan)",
        ]
    } else {
        &[
            "月份",
            "卡片数",
            "原值（元）",
            "本月增加数量",
            "本月增加原值（元）",
            "本月减少数量",
            "本月减少原值（元）",
            "净值（元）",
        ]
    };
    if export::wanted(req)?.is_some() {
        return answer(
            req,
            "trend",
            headers,
            rows,
            &[
                ("month", false),
                ("count", false),
                ("original_value", true),
                ("additions_count", false),
                ("additions_value", true),
                ("reductions_count", false),
                ("reductions_value", true),
                ("net_value", true),
            ],
        );
    }
    Ok(Response::json(&json!({
        "from": dates::month_text(from),
        "to": dates::month_text(to),
        "rows": rows,
    })))
}

/// 资产增减变动表 for `?from=YYYY-MM&to=YYYY-MM` (default: this year so far).
/// Additions are cards booked in the window; reductions are cards that
/// left (transfer out, disposal) in it; opening and closing follow from
/// everything before, so the statement always balances.
fn changes(req: &Request) -> Result<Response> {
    let to = month_param(req, "to", dates::this_month())?;
    let from = month_param(req, "from", to - to.rem_euclid(12))?;
    if from > to {
        return Err(Error::validation("from", "from is after to").with_code("date_range"));
    }
    let org = req.query_param("org").filter(|o| !o.is_empty());
    let base = || ever_booked(org.clone());
    let month_end = |m: i64| format!("{}-31", dates::month_text(m));
    let added_upto = |m: i64| added_upto(org.clone(), m);
    let reduced_upto = |m: i64| reduced_upto(org.clone(), m);
    let added_in = base()
        .gte("booked_on", format!("{}-01", dates::month_text(from)))
        .lte("booked_on", month_end(to));
    let reduced_in = base()
        .gte("reduced_on", dates::month_text(from))
        .lte("reduced_on", dates::month_text(to));

    let (a_before, r_before) = (
        count_value(&added_upto(from - 1))?,
        count_value(&reduced_upto(from - 1))?,
    );
    let additions = count_value(&added_in)?;
    let reductions = count_value(&reduced_in)?;
    let opening = (a_before.0 - r_before.0, a_before.1 - r_before.1);
    let closing = (
        opening.0 + additions.0 - reductions.0,
        opening.1 + additions.1 - reductions.1,
    );

    let cat_open_added = by_category(&added_upto(from - 1))?;
    let cat_open_reduced = by_category(&reduced_upto(from - 1))?;
    let cat_added = by_category(&added_in)?;
    let cat_reduced = by_category(&reduced_in)?;
    let mut keys: std::collections::BTreeSet<&String> = cat_open_added.keys().collect();
    keys.extend(cat_added.keys());
    let lang = lang(req);
    let get = |m: &std::collections::BTreeMap<String, (f64, f64)>, k: &str| {
        m.get(k).copied().unwrap_or((0.0, 0.0))
    };
    let rows: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            let open = (
                get(&cat_open_added, k).0 - get(&cat_open_reduced, k).0,
                get(&cat_open_added, k).1 - get(&cat_open_reduced, k).1,
            );
            let (add, red) = (get(&cat_added, k), get(&cat_reduced, k));
            json!({
                "key": k,
                "name": categories::name(k, &lang),
                "opening_count": open.0, "opening_value": open.1,
                "additions_count": add.0, "additions_value": add.1,
                "reductions_count": red.0, "reductions_value": red.1,
                "closing_count": open.0 + add.0 - red.0, "closing_value": open.1 + add.1 - red.1,
            })
        })
        .collect();
    if export::wanted(req)?.is_some() {
        let en = lang.starts_with("en");
        let headers: &[&str] = if en {
            &[
                "Category",
                "Name",
                "Opening count",
                "Opening value",
                "Additions",
                "Additions value",
                "Reductions",
                "Reductions value",
                "Closing count",
                "Closing value",
            ]
        } else {
            &[
                "分类",
                "名称",
                "期初数量",
                "期初原值",
                "本期增加数量",
                "本期增加原值",
                "本期减少数量",
                "本期减少原值",
                "期末数量",
                "期末原值",
            ]
        };
        return answer(
            req,
            "changes",
            headers,
            rows,
            &[
                ("key", false),
                ("name", false),
                ("opening_count", false),
                ("opening_value", true),
                ("additions_count", false),
                ("additions_value", true),
                ("reductions_count", false),
                ("reductions_value", true),
                ("closing_count", false),
                ("closing_value", true),
            ],
        );
    }
    let pair = |p: (f64, f64)| json!({ "count": p.0, "value": p.1 });
    Ok(Response::json(&json!({
        "from": dates::month_text(from),
        "to": dates::month_text(to),
        "opening": pair(opening),
        "additions": pair(additions),
        "reductions": pair(reductions),
        "closing": pair(closing),
        "by_category": rows,
    })))
}

/// Depreciation summary by category for `?month=` (default: last month):
/// original, accumulated, net, and the month's charge from its run.
fn depreciation(req: &Request) -> Result<Response> {
    let month = match req.query_param("month").filter(|m| !m.is_empty()) {
        Some(m) => dates::parse_month(&m).ok_or_else(|| {
            Error::validation("month", "month must be YYYY-MM").with_code("month_invalid")
        })?,
        None => dates::this_month() - 1,
    };
    let run = tianshan_sdk::storage::collection("depreciation_runs")
        .get::<Value>(&format!("run-{}", dates::month_text(month)))?
        .map(|d| d.data);
    let groups = cards().aggregate(
        &booked(req),
        &["category_top"],
        &[
            (AggregateOp::Sum, Some("original_value")),
            (AggregateOp::Sum, Some("accumulated_depreciation")),
            (AggregateOp::Sum, Some("net_value")),
            (AggregateOp::Count, None),
        ],
    )?;
    let lang = lang(req);
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| {
            let key = key_text(&g.key[0]);
            json!({
                "category": key,
                "name": categories::name(&key, &lang),
                "count": n(g, 3),
                "original_value": n(g, 0),
                "accumulated": n(g, 1),
                "net_value": n(g, 2),
                "charge": run.as_ref().and_then(|r| r["by_category"][&key].as_f64()).unwrap_or(0.0),
            })
        })
        .collect();
    let headers: &[&str] = if lang.starts_with("en") {
        &[
            "Category",
            "Name",
            "Cards",
            "Original value",
            "Accumulated depreciation",
            "Net value",
            "Charge this month",
        ]
    } else {
        &[
            "分类",
            "名称",
            "卡片数",
            "原值",
            "累计折旧",
            "净值",
            "本月计提",
        ]
    };
    if export::wanted(req)?.is_some() {
        return answer(
            req,
            "depreciation",
            headers,
            rows,
            &[
                ("category", false),
                ("name", false),
                ("count", false),
                ("original_value", true),
                ("accumulated", true),
                ("net_value", true),
                ("charge", true),
            ],
        );
    }
    // Which months are booked, so a month without a run says so instead
    // of showing last month's figures with a charge of ¥0.
    let booked_months: Vec<Value> = tianshan_sdk::storage::collection("depreciation_runs")
        .find()
        .sort_desc("month")
        .limit(36)
        .page::<Value>()?
        .records
        .into_iter()
        .map(|d| json!({ "month": d.data["month"], "finished": d.data["finished"] }))
        .collect();
    let booked = run.as_ref().is_some_and(|r| r["finished"] == true);
    let last_booked = booked_months
        .iter()
        .find(|m| m["finished"] == true)
        .map(|m| m["month"].clone());
    Ok(Response::json(&json!({
        "month": dates::month_text(month), "run": run, "rows": rows,
        "booked": booked, "booked_months": booked_months, "last_booked": last_booked,
        "runnable": month <= dates::this_month(),
    })))
}

/// Idle rate per unit: idle original value over all original value.
fn idle(req: &Request) -> Result<Response> {
    let groups = cards().aggregate(
        &booked(req),
        &["org", "use_status"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
        ],
    )?;
    let mut per_org: std::collections::BTreeMap<String, [f64; 4]> = Default::default();
    for g in &groups {
        let e = per_org.entry(key_text(&g.key[0])).or_default();
        e[0] += n(g, 0);
        e[1] += n(g, 1);
        if g.key[1] == json!("idle") {
            e[2] += n(g, 0);
            e[3] += n(g, 1);
        }
    }
    let rows: Vec<Value> = per_org
        .into_iter()
        .map(|(org, v)| {
            json!({
                "org": org, "count": v[0], "original_value": v[1], "idle_count": v[2], "idle_value": v[3],
                "idle_rate": if v[1] > 0.0 { (v[3] / v[1] * 10_000.0).round() / 10_000.0 } else { 0.0 },
            })
        })
        .collect();
    let headers: &[&str] = if lang(req).starts_with("en") {
        &[
            "Org",
            "Cards",
            "Original value",
            "Idle cards",
            "Idle value",
            "Idle rate",
        ]
    } else {
        &["单位", "卡片数", "原值", "闲置数量", "闲置原值", "闲置率"]
    };
    answer(
        req,
        "idle",
        headers,
        rows,
        &[
            ("org", false),
            ("count", false),
            ("original_value", true),
            ("idle_count", false),
            ("idle_value", true),
            ("idle_rate", false),
        ],
    )
}

/// Disposals by method in `?year=` (default this year).
fn disposals(req: &Request) -> Result<Response> {
    let year = year_param(req, 2999)?;
    let find = cards()
        .find()
        .eq("state", "disposed")
        .prefix("reduced_on", &format!("{year:04}-"))
        .within(req.query_param("org").filter(|o| !o.is_empty()));
    let groups = cards().aggregate(
        &find,
        &["disposal_method"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
            (AggregateOp::Sum, Some("net_value")),
        ],
    )?;
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| json!({ "method": key_text(&g.key[0]), "count": n(g, 0), "original_value": n(g, 1), "net_value": n(g, 2) }))
        .collect();
    let headers: &[&str] = if lang(req).starts_with("en") {
        &["Method", "Cards", "Original value", "Net value"]
    } else {
        &["处置方式", "数量", "原值", "净值"]
    };
    answer(
        req,
        "disposals",
        headers,
        rows,
        &[
            ("method", false),
            ("count", false),
            ("original_value", true),
            ("net_value", true),
        ],
    )
}

/// Totals rolled up the org tree by the data center: `?indicator=`
/// (assets.original_value by default), `?org=`, `?period=YYYY-MM`; one row
/// per child org.
fn rollup(req: &Request) -> Result<Response> {
    let code = req
        .query_param("indicator")
        .unwrap_or_else(|| "assets.original_value".into());
    if !code.starts_with("assets.") {
        return Err(
            Error::validation("indicator", "an assets.* indicator").with_code("not_in_vocabulary")
        );
    }
    let mut query = datacenter::Query::new(&code).by_org();
    if let Some(org) = req.query_param("org").filter(|o| !o.is_empty()) {
        query = query.org(org);
    }
    if let Some(period) = req.query_param("period").filter(|p| !p.is_empty()) {
        query = query.between(Some(period.clone()), Some(period));
    }
    let rows: Vec<Value> = query
        .rows()?
        .into_iter()
        .map(|r| json!({ "org": r.org, "period": r.period, "value": r.value, "count": r.count }))
        .collect();
    answer(
        req,
        "rollup",
        &["org", "period", "value", "count"],
        rows,
        &[
            ("org", false),
            ("period", false),
            ("value", false),
            ("count", false),
        ],
    )
}
