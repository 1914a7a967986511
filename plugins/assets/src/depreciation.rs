//! Straight-line depreciation by the government accounting rule (政府会计
//! 准则第3号): no residual value; a card depreciates from the month it was
//! added and not in the month it leaves; land, relics, books and nominal
//! assets not at all. The monthly job books each card's accumulated
//! depreciation and net value and records the run; a run too large for one
//! call continues on the next tick of `depreciate-continue`.

use serde_json::{Value, json};
use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Sharing};
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{AggregateOp, Write, collection};

use crate::cards::cards;
use crate::dates;
use crate::model::Card;

/// (accumulated, net) in fen after booking depreciation through `month`.
pub fn schedule(card: &Card, month: i64) -> (i64, i64) {
    if !card.depreciable || card.life_months <= 0 || card.original_value <= 0 {
        return (0, card.original_value);
    }
    let Some(start) = dates::month_of(&card.acquired_on) else {
        return (0, card.original_value);
    };
    // The month a card leaves the books carries no depreciation.
    let last = match dates::parse_month(&card.reduced_on) {
        Some(reduced) => month.min(reduced - 1),
        None => month,
    };
    let months = (last - start + 1).clamp(0, card.life_months);
    let accumulated = if months == card.life_months {
        card.original_value
    } else {
        ((card.original_value as i128 * months as i128) / card.life_months as i128) as i64
    };
    (accumulated, card.original_value - accumulated)
}

/// Books `card`'s depreciation through `month` onto it; returns the
/// amount charged since what it carried.
pub fn book_through(card: &mut Card, month: i64) -> i64 {
    let (accumulated, net) = schedule(card, month);
    let charged = accumulated - card.accumulated_depreciation;
    card.accumulated_depreciation = accumulated;
    card.net_value = net;
    card.depreciated_through = dates::month_text(month);
    charged
}

/// The charge for one month (what the summary reports per month).
pub fn monthly_charge(card: &Card, month: i64) -> i64 {
    schedule(card, month).0 - schedule(card, month - 1).0
}

pub fn routes(router: Router) -> Router {
    router
        .post("/depreciation/run", run_now)
        .requires("assets.configure")
        .get("/depreciation/runs", runs)
        .requires("assets.view")
}

/// Indicators the plugin publishes to the data center (per unit, monthly;
/// the kernel rolls them up county → prefecture → region).
pub fn define_indicators() -> Result<()> {
    for (code, zh, en, unit) in [
        ("assets.count", "资产数量", "Asset cards", "张"),
        ("assets.original_value", "资产原值", "Original value", "元"),
        ("assets.net_value", "资产净值", "Net value", "元"),
        (
            "assets.idle_value",
            "闲置资产原值",
            "Idle assets (original value)",
            "元",
        ),
        (
            "assets.depreciation",
            "当期折旧",
            "Depreciation charged",
            "元",
        ),
    ] {
        let aggregation = if code == "assets.depreciation" {
            Aggregation::Sum
        } else {
            Aggregation::Stock
        };
        Indicator::new(code, zh, en, unit)
            .aggregation(aggregation)
            .granularity(Granularity::Month)
            .sharing(Sharing::Shared)
            .define()?;
    }
    Ok(())
}

const BATCH: u32 = 400;

/// Books depreciation through `month` for up to `budget` cards (cards
/// that do not depreciate are stamped too, so each month visits every
/// booked card once); returns
/// (cards booked, amount charged per top category, finished).
pub fn book(
    month: i64,
    budget: usize,
) -> Result<(usize, std::collections::BTreeMap<String, i64>, bool)> {
    let through = dates::month_text(month);
    let mut done = 0;
    let mut charged: std::collections::BTreeMap<String, i64> = Default::default();
    while done < budget {
        let page = cards()
            .find()
            .eq("state", "booked")
            .lt("depreciated_through", through.as_str())
            .limit(BATCH)
            .page::<Card>()?;
        if page.records.is_empty() {
            return Ok((done, charged, true));
        }
        let mut writes = Vec::with_capacity(page.records.len());
        let mut batch_charges: Vec<(String, i64)> = Vec::with_capacity(page.records.len());
        for doc in &page.records {
            let mut card = doc.data.clone();
            let charge = book_through(&mut card, month);
            batch_charges.push((card.category_top.clone(), charge));
            writes.push(Write::Update {
                collection: "cards".into(),
                id: doc.id.clone(),
                expected_revision: doc.revision,
                data: serde_json::to_value(&card).map_err(|e| Error::internal(e.to_string()))?,
            });
        }
        done += writes.len();
        // A card changed meanwhile is simply picked up by the next batch.
        match tianshan_sdk::storage::transact(writes) {
            Ok(_) => {
                for (category, charge) in batch_charges {
                    *charged.entry(category).or_default() += charge;
                }
            }
            Err(e) if e.status() == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok((done, charged, false))
}

/// Runs (or continues) the run for `month` and records its progress; when
/// the run completes, publishes the month's totals to the data center.
pub fn run(month: i64, budget: usize) -> Result<Value> {
    let runs = collection("depreciation_runs");
    let id = format!("run-{}", dates::month_text(month));
    let existing = runs.get::<Value>(&id)?;
    if let Some(doc) = &existing
        && doc.data["finished"] == json!(true)
    {
        return Ok(doc.data.clone());
    }
    let (count, by_category, finished) = book(month, budget)?;
    let amount: i64 = by_category.values().sum();
    let mut record = existing
        .as_ref()
        .map(|d| d.data.clone())
        .unwrap_or_else(|| json!({ "month": dates::month_text(month), "cards": 0, "amount": 0, "started_on": dates::today() }));
    record["cards"] = json!(record["cards"].as_i64().unwrap_or(0) + count as i64);
    record["amount"] = json!(record["amount"].as_i64().unwrap_or(0) + amount);
    for (category, charge) in by_category {
        let before = record["by_category"][&category].as_i64().unwrap_or(0);
        if !record["by_category"].is_object() {
            record["by_category"] = json!({});
        }
        record["by_category"][&category] = json!(before + charge);
    }
    record["finished"] = json!(finished);
    if finished {
        record["finished_on"] = json!(dates::today());
    }
    match existing {
        Some(doc) => {
            runs.update(&id, doc.revision, &record)?;
        }
        None => {
            runs.insert_with(Some(&id), None, &record)?;
        }
    }
    if finished {
        publish_totals(month)?;
    }
    Ok(record)
}

/// The month's stock per unit to the data center: count, original, net,
/// idle value (booked cards only).
pub fn publish_totals(month: i64) -> Result<()> {
    let period = dates::month_text(month);
    let booked = cards().find().eq("state", "booked");
    let groups = cards().aggregate(
        &booked,
        &["org", "use_status"],
        &[
            (AggregateOp::Count, None),
            (AggregateOp::Sum, Some("original_value")),
            (AggregateOp::Sum, Some("net_value")),
        ],
    )?;
    let mut per_org: std::collections::BTreeMap<String, [f64; 4]> = Default::default();
    for g in groups {
        let org = g.key[0].as_str().unwrap_or_default().to_string();
        let entry = per_org.entry(org).or_default();
        let n = |i: usize| g.values.get(i).copied().flatten().unwrap_or(0.0);
        entry[0] += n(0);
        entry[1] += n(1) / 100.0;
        entry[2] += n(2) / 100.0;
        if g.key[1] == json!("idle") {
            entry[3] += n(1) / 100.0;
        }
    }
    for (i, code) in [
        "assets.count",
        "assets.original_value",
        "assets.net_value",
        "assets.idle_value",
    ]
    .iter()
    .enumerate()
    {
        let points: Vec<_> = per_org
            .iter()
            .map(|(org, v)| datacenter::value(Some(org), &period, v[i]))
            .collect();
        for chunk in points.chunks(500) {
            datacenter::publish(code, chunk)?;
        }
    }
    Ok(())
}

/// Manual run: `?month=YYYY-MM` (default: this month).
fn run_now(req: &Request) -> Result<Response> {
    let month = match req.query_param("month") {
        Some(m) => dates::parse_month(&m).ok_or_else(|| {
            Error::validation("month", "month must be YYYY-MM").with_code("month_invalid")
        })?,
        None => dates::this_month(),
    };
    if month > dates::this_month() {
        return Err(
            Error::validation("month", "cannot book depreciation for a future month")
                .with_code("future_month"),
        );
    }
    Ok(Response::json(&run(month, 20_000)?))
}

fn runs(req: &Request) -> Result<Response> {
    let find = collection("depreciation_runs").find().sort_desc("month");
    if let Some(format) = crate::export::wanted(req)? {
        let table = crate::export::records(
            &find,
            "depreciation-runs",
            &[
                ("month", "/data/month"),
                ("cards", "/data/cards"),
                ("amount_fen", "/data/amount"),
                ("finished", "/data/finished"),
                ("started_on", "/data/started_on"),
                ("finished_on", "/data/finished_on"),
            ],
        )?;
        return crate::export::respond(&table, format);
    }
    let page = find.limit(60).page::<Value>()?;
    Ok(Response::json(&json!({ "runs": page.records })))
}

/// The job: the 1st of each month books the previous month; the
/// continuation tick finishes any run left unfinished.
pub fn on_job(name: &str) -> Result<()> {
    let month = dates::this_month() - 1;
    match name {
        "depreciate" => run(month, 20_000).map(|_| ()),
        "depreciate-continue" => {
            let open = collection("depreciation_runs")
                .find()
                .eq("finished", false)
                .limit(12)
                .page::<Value>()?;
            for doc in open.records {
                if let Some(m) = doc.data["month"].as_str().and_then(dates::parse_month) {
                    run(m, 20_000)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(original: i64, life: i64, acquired: &str) -> Card {
        Card {
            depreciable: true,
            original_value: original,
            life_months: life,
            acquired_on: acquired.into(),
            ..Card::default()
        }
    }

    #[test]
    fn straight_line_from_the_month_of_addition() {
        let c = card(720_000, 72, "2024-03-20");
        let march = dates::parse_month("2024-03").unwrap();
        assert_eq!(schedule(&c, march - 1), (0, 720_000));
        assert_eq!(schedule(&c, march), (10_000, 710_000));
        assert_eq!(schedule(&c, march + 11), (120_000, 600_000));
        // Fully depreciated at the end of its life, never beyond: no residual.
        assert_eq!(schedule(&c, march + 71), (720_000, 0));
        assert_eq!(schedule(&c, march + 100), (720_000, 0));
        assert_eq!(monthly_charge(&c, march + 5), 10_000);
    }

    #[test]
    fn uneven_amounts_end_exactly_at_the_original_value() {
        let c = card(100_000, 72, "2020-01-01");
        let start = dates::parse_month("2020-01").unwrap();
        let total: i64 = (start..start + 72).map(|m| monthly_charge(&c, m)).sum();
        assert_eq!(total, 100_000);
    }

    #[test]
    fn no_charge_in_the_month_of_reduction_or_when_not_depreciable() {
        let mut c = card(720_000, 72, "2024-03-01");
        c.reduced_on = "2024-06".into();
        let june = dates::parse_month("2024-06").unwrap();
        assert_eq!(schedule(&c, june).0, 30_000);
        assert_eq!(schedule(&c, june + 5).0, 30_000);
        c.depreciable = false;
        assert_eq!(schedule(&c, june), (0, 720_000));
    }
}
