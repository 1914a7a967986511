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

fn plugin() -> Setup {
    Setup::new()
        .about("assets.view")
        .vocab(model::VOCABS, "assets.view")
        .routes(cards::routes)
        .routes(documents::routes)
        .routes(depreciation::routes)
        .routes(rules::routes)
        .routes(stocktake::routes)
        .routes(warehouse::routes)
        .routes(reports::routes)
        .routes(import::routes)
        .routes(labels::routes)
        .routes(demo::routes)
        // Flows and indicators, (re)defined on install and every upgrade.
        .define(documents::define_flows)
        .define(warehouse::define_flows)
        .define(depreciation::define_indicators)
        // Documents and warehouse orders; the handler tells them apart.
        .on_approval(documents::on_approval)
        .on_event(on_event)
}

/// The kernel's jobs and the other systems' events.
fn on_event(event: &Event) -> Result<()> {
    if let Some(job) = event.topic.strip_prefix("kernel.job.") {
        return match job {
            "loan-reminders" => warehouse::on_job(job),
            _ => depreciation::on_job(job),
        };
    }
    documents::on_other_system(event)
}

tianshan_sdk::export_plugin!(setup = plugin);
