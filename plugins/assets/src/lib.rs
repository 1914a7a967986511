//! 资产管理: the state-owned asset system and the public asset warehouse
//! (公物仓), Tianshan's reference plugin. It uses only the SDK, as any
//! prefecture's plugin would: storage for cards and documents, the
//! kernel's approvals for every document, messaging for events, the data
//! center for roll-ups up the org tree, files for photos, jobs for the
//! monthly depreciation.
//!
//! Map of the code:
//! - [`model`]: the card and its vocabularies; [`categories`]: GB/T 14885.
//! - [`cards`]: the register; [`documents`]: lifecycle documents and their
//!   approvals; [`depreciation`]: the monthly run.
//! - [`stocktake`]: campaigns, tasks, scans, differences.
//! - [`warehouse`]: the public asset warehouse.
//! - [`reports`], [`import`], [`labels`]: what leaves and enters (export,
//!   import, dates and money are the SDK's building blocks); [`annual`]:
//!   the annual report's tables, laid out as units file them.
//! - [`demo`]: the register `tianshan up` seeds.

pub mod annual;
pub mod cards;
pub mod categories;
pub mod common;
pub mod demo;
pub mod depreciation;
pub mod documents;
pub mod import;
pub mod labels;
pub mod model;
pub mod reports;
pub mod rules;
pub mod stocktake;
pub mod warehouse;

use tianshan_sdk::prelude::*;
// The SDK's building blocks, under the names the modules use.
pub use tianshan_sdk::{dates, export};

struct Assets;

impl Plugin for Assets {
    fn routes() -> Router {
        let router = Router::new()
            .get("/", about)
            .requires("assets.view")
            .get("/vocab", |_| Ok(vocab::respond(model::VOCABS)))
            .requires("assets.view");
        let router = cards::routes(router);
        let router = documents::routes(router);
        let router = depreciation::routes(router);
        let router = rules::routes(router);
        let router = stocktake::routes(router);
        let router = warehouse::routes(router);
        let router = reports::routes(router);
        let router = import::routes(router);
        let router = labels::routes(router);
        demo::routes(router)
    }

    fn install() -> core::result::Result<(), String> {
        setup().map_err(|e| e.to_string())
    }

    fn upgrade(_previous: &str) -> core::result::Result<(), String> {
        setup().map_err(|e| e.to_string())
    }

    fn on_event(event: Event) -> core::result::Result<(), String> {
        handle_event(&event).map_err(|e| e.to_string())
    }
}

/// Flows and indicators are (re)defined on install and every upgrade;
/// defining is idempotent.
/// `GET /`: what answers here, so an operator (and CI's smoke test) can
/// tell the system is installed and serving without knowing its routes.
fn about(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({
        "plugin": identity::plugin_id(),
        "version": identity::plugin_version(),
    })))
}

fn setup() -> Result<()> {
    documents::define_flows()?;
    warehouse::define_flows()?;
    depreciation::define_indicators()?;
    Ok(())
}

fn handle_event(event: &Event) -> Result<()> {
    if let Some(job) = event.topic.strip_prefix("kernel.job.") {
        return match job {
            "loan-reminders" => warehouse::on_job(job),
            _ => depreciation::on_job(job),
        };
    }
    if event.topic.starts_with("kernel.approval.") {
        return documents::on_approval(event);
    }
    documents::on_other_system(event)
}

tianshan_sdk::export_plugin!(Assets);
