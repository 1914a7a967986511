//! 房地产管理 / 办公用房管理: office compounds, buildings, floors and rooms
//! managed on floor plans (以图管房), the people in them against the 2014
//! per-rank area standard, ownership registration and allocation requests.
//! Built on the SDK's blocks only: storage with org scope, list, vocab,
//! document, approvals, the data center, files, export.
//!
//! Map of the code:
//! - [`model`]: records, vocabularies and the pure rules (unit-tested).
//! - [`space`]: the space tree; [`occupancy`]: people, the standard, the
//!   over-standard check and the floor view.
//! - [`registration`]: 确权登记 and the rate in the data center.
//! - [`allocation`]: 调剂 / 置换 / 租用 / 建设 requests and hand-over.
//! - [`reports`]; [`demo`]: what `tianshan up` seeds.

pub mod allocation;
pub mod common;
pub mod demo;
pub mod model;
pub mod occupancy;
pub mod registration;
pub mod reports;
pub mod space;

use tianshan_sdk::prelude::*;

struct Property;

impl Plugin for Property {
    fn routes() -> Router {
        let router = Router::new()
            .get("/", about)
            .requires("property.view")
            .get("/vocab", |_| Ok(vocab::respond(model::VOCABS)))
            .requires("property.view");
        let router = space::routes(router);
        let router = occupancy::routes(router);
        let router = registration::routes(router);
        let router = allocation::routes(router);
        let router = reports::routes(router);
        demo::routes(router)
    }

    fn install() -> core::result::Result<(), String> {
        setup()?;
        Ok(())
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        setup()?;
        Ok(())
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        if let Some(outcome) = event.approval()? {
            allocation::on_approval(&outcome)?;
        }
        Ok(())
    }
}

/// Flows, indicators and the standard are (re)defined on install and every
/// upgrade; each is idempotent.
fn setup() -> Result<()> {
    allocation::define_flows()?;
    registration::define_indicators()?;
    occupancy::seed_standards()?;
    Ok(())
}

fn about(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({
        "plugin": identity::plugin_id(),
        "version": identity::plugin_version(),
    })))
}

tianshan_sdk::export_plugin!(Property);
