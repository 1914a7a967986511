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
//! - [`indicators`]: what goes into the data center.
//! - [`demo`]: the fleet `tianshan up` seeds.

pub mod demo;
pub mod indicators;
pub mod model;
pub mod purchase;
pub mod register;
pub mod scrap;

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
        let router = indicators::routes(router);
        demo::routes(router)
    }

    fn install() -> core::result::Result<(), String> {
        setup().map_err(|e| e.to_string())
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        setup().map_err(|e| e.to_string())
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        if let Some(outcome) = event.approval().map_err(|e| e.to_string())? {
            let decided = if outcome.flow == scrap::FLOW {
                scrap::decided(&outcome)
            } else {
                purchase::decided(&outcome)
            };
            return decided.map_err(|e| e.to_string());
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
    purchase::seed_rules()?;
    indicators::define()?;
    Ok(())
}

tianshan_sdk::export_plugin!(Vehicles);
