//! What goes into the data center, from locked statements only:
//! - per month: `energy.kgce_month`, `energy.water_month`, `energy.co2_month`
//!   (sums, so the kernel rolls them up the org tree and into years);
//! - per year: the totals and the profile's denominators, and the four
//!   intensities as ratio indicators, so a prefecture's energy per m² is
//!   its counties' energy over their area, not a mean of means;
//! - the plan's indicators (`plan.energy_per_area`, …) when the platform
//!   granted publishing into them: each institution's year, annualised
//!   from the months locked so far, in the plan's units (tce, tCO₂).

use std::collections::BTreeMap;

use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Point, Ratio, Sharing};
use tianshan_sdk::prelude::*;

use crate::model::{self, Statement};
use crate::statements::statements;

pub fn define() -> Result<()> {
    let def = |code: &str, zh: &str, en: &str, unit: &str, agg: Aggregation, g: Granularity| {
        Indicator::new(code, zh, en, unit)
            .aggregation(agg)
            .granularity(g)
            .sharing(Sharing::Open)
            .define()
    };
    use Aggregation::{Stock, Sum};
    use Granularity::{Month, Year};
    def(
        "energy.kgce_month",
        "月度综合能耗",
        "Energy use per month",
        "kgce",
        Sum,
        Month,
    )?;
    def(
        "energy.water_month",
        "月度用水量",
        "Water use per month",
        "m³",
        Sum,
        Month,
    )?;
    def(
        "energy.co2_month",
        "月度碳排放",
        "CO₂ emissions per month",
        "kgCO₂",
        Sum,
        Month,
    )?;
    def("energy.kgce", "综合能耗", "Energy use", "kgce", Sum, Year)?;
    def("energy.water", "用水量", "Water use", "m³", Sum, Year)?;
    def(
        "energy.co2",
        "碳排放量",
        "CO₂ emissions",
        "kgCO₂",
        Sum,
        Year,
    )?;
    def(
        "energy.area",
        "建筑面积",
        "Building floor area",
        "m²",
        Stock,
        Year,
    )?;
    def(
        "energy.users",
        "用能人数",
        "Energy users",
        "persons",
        Stock,
        Year,
    )?;
    def(
        "energy.months",
        "已锁定月数",
        "Months locked",
        "months",
        Stock,
        Year,
    )?;
    for (code, zh, en, unit, num, den) in [
        (
            "energy.per_area",
            "单位建筑面积能耗（年累计）",
            "Energy per m² (year to date)",
            "kgce/m²",
            "energy.kgce",
            "energy.area",
        ),
        (
            "energy.per_capita",
            "人均综合能耗（年累计）",
            "Energy per person (year to date)",
            "kgce/person",
            "energy.kgce",
            "energy.users",
        ),
        (
            "energy.water_per_capita",
            "人均用水量（年累计）",
            "Water per person (year to date)",
            "m³/person",
            "energy.water",
            "energy.users",
        ),
        (
            "energy.carbon_per_area",
            "单位建筑面积碳排放（年累计）",
            "CO₂ per m² (year to date)",
            "kgCO₂/m²",
            "energy.co2",
            "energy.area",
        ),
    ] {
        Ratio::new(code, zh, en, unit)
            .of(num, den)
            .sharing(Sharing::Open)
            .define()?;
    }
    Ok(())
}

/// Values gathered per indicator and sent in batches the kernel takes.
#[derive(Default)]
pub struct Publisher {
    values: BTreeMap<&'static str, Vec<Point>>,
}

impl Publisher {
    pub fn add(&mut self, code: &'static str, org: &str, period: &str, value: f64) {
        self.values
            .entry(code)
            .or_default()
            .push(datacenter::value(Some(org), period, value));
    }

    /// Sends everything; the plan's indicators only where the platform
    /// granted publishing, this plugin's own always.
    pub fn flush(&mut self) -> Result<()> {
        for (code, points) in std::mem::take(&mut self.values) {
            for chunk in points.chunks(BATCH) {
                if code.starts_with("plan.") {
                    datacenter::publish_if_granted(code, chunk)?;
                } else {
                    datacenter::publish(code, chunk)?;
                }
            }
        }
        Ok(())
    }
}

/// The most values the kernel takes in one publish call.
const BATCH: usize = 1000;

/// Republishes one institution's year.
pub fn refresh_year(org: &str, year: i32) -> Result<()> {
    let mut p = Publisher::default();
    collect_year(&mut p, org, year)?;
    p.flush()
}

/// Gathers one institution's year from its locked statements.
pub fn collect_year(p: &mut Publisher, org: &str, year: i32) -> Result<()> {
    let locked = statements()
        .find()
        .eq("org", org)
        .eq("year", year)
        .eq("status", "locked")
        .all::<Statement>(12)?;
    let months: Vec<&Statement> = locked.iter().map(|d| &d.data).collect();
    let profile = crate::profiles::for_year(org, year)?.map(|d| d.data);
    collect(p, org, year, &months, profile.as_ref());
    Ok(())
}

/// The pure part: the points of one institution's year.
pub fn collect(
    p: &mut Publisher,
    org: &str,
    year: i32,
    months: &[&Statement],
    profile: Option<&model::Profile>,
) {
    let y = year.to_string();
    for s in months {
        p.add("energy.kgce_month", org, &s.period, s.totals.kgce);
        p.add("energy.water_month", org, &s.period, s.totals.water_m3);
        p.add("energy.co2_month", org, &s.period, s.totals.co2_kg);
    }
    let totals: Vec<model::Totals> = months.iter().map(|s| s.totals).collect();
    let sum = |f: fn(&model::Totals) -> f64| model::round(totals.iter().map(f).sum(), 3);
    p.add("energy.kgce", org, &y, sum(|t| t.kgce));
    p.add("energy.water", org, &y, sum(|t| t.water_m3));
    p.add("energy.co2", org, &y, sum(|t| t.co2_kg));
    p.add("energy.months", org, &y, months.len() as f64);
    let Some(profile) = profile else {
        return;
    };
    p.add("energy.area", org, &y, profile.building_m2);
    p.add("energy.users", org, &y, profile.energy_users as f64);
    if let Some(i) = model::intensities(&totals, profile.building_m2, profile.energy_users) {
        p.add("plan.energy_per_area", org, &y, i.per_area);
        p.add("plan.energy_per_capita", org, &y, i.per_capita);
        p.add("plan.water_per_capita", org, &y, i.water_per_capita);
        p.add("plan.carbon_per_area", org, &y, i.carbon_per_area);
        p.add(
            "plan.energy_total",
            org,
            &y,
            model::round(i.kgce / 1000.0, 3),
        );
        p.add("plan.water_total", org, &y, i.water_m3);
        p.add(
            "plan.carbon_total",
            org,
            &y,
            model::round(i.co2_kg / 1000.0, 3),
        );
    }
}

/// `plan.key_users_metered_share`: each key energy user counts 100 when
/// an online electricity meter measures it and 0 when not, so the mean
/// the kernel rolls up is the share of key users metered online.
pub fn collect_metered(p: &mut Publisher, org: &str, year: i32, metered: bool) {
    p.add(
        "plan.key_users_metered_share",
        org,
        &year.to_string(),
        if metered { 100.0 } else { 0.0 },
    );
}

/// Whether `org` is a key user and has an online electricity meter;
/// publishes its share entry for this year.
pub fn refresh_metered(org: &str) -> Result<()> {
    let year = dates::this_month().div_euclid(12) as i32;
    let Some(profile) = crate::profiles::for_year(org, year)? else {
        return Ok(());
    };
    if !profile.data.key_user {
        return Ok(());
    }
    let metered = crate::meters::meters()
        .find()
        .eq("org", org)
        .eq("kind", "online")
        .eq("energy_type", "electricity")
        .count()?
        > 0;
    let mut p = Publisher::default();
    collect_metered(&mut p, org, year, metered);
    p.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_publishes_months_totals_and_the_plan_in_its_units() {
        let month = |period: &str, kgce: f64| Statement {
            period: period.into(),
            year: 2026,
            status: "locked".into(),
            totals: model::Totals {
                kgce,
                co2_kg: kgce * 2.0,
                water_m3: 10.0,
                cost_fen: 0,
            },
            ..Statement::default()
        };
        let (a, b) = (month("2026-01", 1500.0), month("2026-02", 500.0));
        let profile = model::Profile {
            building_m2: 1000.0,
            energy_users: 50,
            ..model::Profile::default()
        };
        let mut p = Publisher::default();
        collect(&mut p, "org-1", 2026, &[&a, &b], Some(&profile));
        let value = |code: &str| p.values[code].iter().map(|v| v.value).collect::<Vec<_>>();
        assert_eq!(value("energy.kgce_month"), vec![1500.0, 500.0]);
        assert_eq!(value("energy.kgce"), vec![2000.0]);
        // Two months of 2,000 kgce is 12,000 a year over 1,000 m².
        assert_eq!(value("plan.energy_per_area"), vec![12.0]);
        assert_eq!(value("plan.energy_total"), vec![2.0]);
        assert_eq!(value("plan.carbon_total"), vec![4.0]);
        assert_eq!(p.values["energy.area"][0].period, "2026");
    }

    #[test]
    fn without_a_profile_only_the_totals_go_out() {
        let mut p = Publisher::default();
        collect(&mut p, "org-1", 2026, &[], None);
        assert!(p.values.contains_key("energy.kgce"));
        assert!(!p.values.contains_key("plan.energy_per_area"));
    }
}
