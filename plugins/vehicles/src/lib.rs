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
//! - [`fuel`]: fuel and charging logs, per org and month in the data center.
//! - [`indicators`]: what goes into the data center.
//! - [`demo`]: the fleet `tianshan up` seeds.

pub mod demo;
pub mod fuel;
pub mod indicators;
pub mod model;
pub mod purchase;
pub mod register;
pub mod scrap;
pub mod trips;

use tianshan_sdk::prelude::*;

struct Vehicles;

impl Plugin for Vehicles {
    fn routes() -> Router {
        let router = Router::new()
            .get("/", about)
            .requires("vehicles.view")
            .get("/vocab", |_| Ok(vocab::respond(model::VOCABS)))
            .requires("vehicles.view");
        let router = register::routes(router);
        let router = purchase::routes(router);
        let router = scrap::routes(router);
        let router = trips::routes(router);
        let router = indicators::routes(router);
        let router = fuel::routes(router);
        demo::routes(router)
    }

    fn install() -> core::result::Result<(), String> {
        Ok(setup()?)
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        Ok(setup()?)
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        if let Some(outcome) = event.approval()? {
            let decided = if outcome.flow == scrap::FLOW {
                scrap::decided(&outcome)
            } else if outcome.flow == trips::FLOW {
                trips::decided(&outcome)
            } else {
                purchase::decided(&outcome)
            };
            return Ok(decided?);
        }
        Ok(())
    }
}

fn about(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({
        "plugin": identity::plugin_id(),
        "version": identity::plugin_version(),
    })))
}

/// Flows, indicators and the region's default rules; all idempotent.
fn setup() -> Result<()> {
    purchase::define_flows()?;
    scrap::define_flows()?;
    trips::define_flows()?;
    purchase::seed_rules()?;
    indicators::define()?;
    fuel::define()?;
    Ok(())
}

tianshan_sdk::export_plugin!(Vehicles);

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
            ],
            &[],
        );
        assert!(checked > 15, "{checked}");
    }
}
