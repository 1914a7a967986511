//! 公务用车管理: official vehicles. The register of vehicles and drivers,
//! quotas per unit and category, purchase requests checked against the
//! region's caps and NEV rule and approved through the kernel's approvals,
//! the asset card made in `assets` by `vehicles.purchased`, and the NEV
//! indicators of the plan. Built only on the SDK.
//!
//! - [`model`]: the vehicle, vocabularies and pure checks.
//! - [`register`]: vehicles and drivers.
//! - [`purchase`]: rules, quotas, purchase requests and their approval.
//! - [`scrap`]: scrap requests and their approval.
//! - [`trips`]: trip requests, approval, dispatch and return.
//! - [`terminals`]: each vehicle's terminal in the kernel's telemetry, and
//!   the compliance rules.
//! - [`alerts`]: the rules' alerts, handled to a verdict.
//! - [`piles`]: charging piles, metered through telemetry, counted into
//!   the plan.
//! - [`fuel`]: fuel and charging logs, per org and month in the data center.
//! - [`indicators`]: what goes into the data center.
//! - [`demo`]: the fleet `tianshan up` seeds.

pub mod alerts;
pub mod demo;
pub mod fuel;
pub mod indicators;
pub mod model;
pub mod piles;
pub mod purchase;
pub mod register;
pub mod scrap;
pub mod terminals;
pub mod trips;

use tianshan_sdk::Setup;

fn plugin() -> Setup {
    Setup::new()
        .about("vehicles.view")
        .vocab(model::VOCABS, "vehicles.view")
        .routes(register::routes)
        .routes(purchase::routes)
        .routes(scrap::routes)
        .routes(trips::routes)
        .routes(indicators::routes)
        .routes(fuel::routes)
        .routes(alerts::routes)
        .routes(piles::routes)
        .routes(demo::routes)
        // Flows, the region's default rules and the indicators.
        .define(purchase::define_flows)
        .define(scrap::define_flows)
        .define(trips::define_flows)
        .define(purchase::seed_rules)
        .define(indicators::define)
        .define(fuel::define)
        .define(terminals::define_rules)
        .on_flow(scrap::FLOW, scrap::decided)
        .on_flow(trips::FLOW, trips::decided)
        .on_alerts(alerts::raised)
        // Purchases are every other flow.
        .on_approval(purchase::decided)
        .on_event(on_event)
}

/// The kernel's jobs.
fn on_event(event: &tianshan_sdk::prelude::Event) -> tianshan_sdk::Result<()> {
    match event.topic.strip_prefix("kernel.job.") {
        Some("trip-check") => alerts::check_trips().map(|_| ()),
        _ => Ok(()),
    }
}

tianshan_sdk::export_plugin!(setup = plugin);

#[cfg(test)]
mod tests {
    /// Every error code this plugin answers has words in both languages of
    /// its pages, and both files have the same keys.
    #[test]
    fn every_error_code_has_texts_in_both_languages() {
        let checked = tianshan_sdk::texts::assert_error_texts(
            include_str!("../ui/i18n/zh-CN.json"),
            include_str!("../ui/i18n/en.json"),
            &[
                include_str!("model.rs"),
                include_str!("register.rs"),
                include_str!("purchase.rs"),
                include_str!("scrap.rs"),
                include_str!("trips.rs"),
                include_str!("fuel.rs"),
                include_str!("terminals.rs"),
                include_str!("alerts.rs"),
                include_str!("piles.rs"),
            ],
            &[],
        );
        assert!(checked > 15, "{checked}");
    }
}
