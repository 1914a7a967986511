//! The data center: fleet and NEV counts per org, the NEV shares as ratio
//! indicators (so a prefecture's share is its NEVs over its vehicles, not
//! the mean of its counties' shares), and the plan's `plan.nev_count` and
//! `plan.nev_share` when the platform granted publishing into them.

use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Query, Ratio, Sharing};
use tianshan_sdk::prelude::*;

use crate::register::vehicles;

pub fn routes(router: Router) -> Router {
    router
        .get("/indicators", overview)
        .requires("vehicles.view")
}

pub fn define() -> Result<()> {
    let stock = |code: &str, zh: &str, en: &str| {
        Indicator::new(code, zh, en, "vehicles")
            .aggregation(Aggregation::Stock)
            .granularity(Granularity::Year)
            .sharing(Sharing::Open)
            .define()
    };
    stock("vehicles.fleet", "公务用车数量", "Official vehicles")?;
    stock(
        "vehicles.nev_stock",
        "新能源公务用车数量",
        "New-energy official vehicles",
    )?;
    stock("vehicles.charging_piles", "充电桩数量", "Charging piles")?;
    stock(
        "vehicles.new_total",
        "本年新增及更新车辆",
        "New and replaced this year",
    )?;
    stock(
        "vehicles.new_nev",
        "本年新增及更新新能源车辆",
        "New and replaced NEVs this year",
    )?;
    Ratio::new(
        "vehicles.nev_share_stock",
        "新能源车辆占比（保有）",
        "NEV share of the fleet",
        "%",
    )
    .of("vehicles.nev_stock", "vehicles.fleet")
    .scale(100.0)
    .sharing(Sharing::Open)
    .define()?;
    Ratio::new(
        "vehicles.nev_share_new",
        "新增及更新车辆新能源比例",
        "NEV share of new and replaced vehicles",
        "%",
    )
    .of("vehicles.new_nev", "vehicles.new_total")
    .scale(100.0)
    .sharing(Sharing::Open)
    .define()?;
    Ok(())
}

/// Counts of one org's own vehicles (never of its subtree: the kernel
/// rolls those up), published for this year.
pub fn refresh(org: &str) -> Result<()> {
    let year = dates::current_period(Granularity::Year);
    let own = || {
        vehicles()
            .find()
            .within(Some(org.to_string()))
            .eq("org", org)
            .ne("state", "scrapped")
    };
    let fleet = own().count()? as f64;
    let nev = own().eq("nev", true).count()? as f64;
    let new = crate::purchase::year_so_far(org, &year)?;
    let at = |v: f64| [datacenter::value(Some(org), &year, v)];
    datacenter::publish("vehicles.fleet", &at(fleet))?;
    datacenter::publish("vehicles.nev_stock", &at(nev))?;
    datacenter::publish("vehicles.new_total", &at(new.total as f64))?;
    datacenter::publish("vehicles.new_nev", &at(new.nev as f64))?;
    datacenter::publish_if_granted("plan.nev_count", &at(nev))?;
    if new.total > 0 {
        datacenter::publish_if_granted(
            "plan.nev_share",
            &at(100.0 * new.nev as f64 / new.total as f64),
        )?;
    }
    Ok(())
}

/// `GET /indicators`: the NEV shares and counts per org below the acting one.
fn overview(_: &Request) -> Result<Response> {
    let rows = |code: &str| Query::new(code).by_org().rows();
    Ok(Response::json(&json!({
        "fleet": rows("vehicles.fleet")?,
        "nev_stock": rows("vehicles.nev_stock")?,
        "nev_share_stock": rows("vehicles.nev_share_stock")?,
        "nev_share_new": rows("vehicles.nev_share_new")?,
    })))
}
