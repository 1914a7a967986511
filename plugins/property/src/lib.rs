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
pub mod import;
pub mod model;
pub mod occupancy;
pub mod registration;
pub mod reports;
pub mod space;

use tianshan_sdk::Setup;

fn plugin() -> Setup {
    Setup::new()
        .about("property.view")
        .vocab(model::VOCABS, "property.view")
        .routes(space::routes)
        .routes(occupancy::routes)
        .routes(registration::routes)
        .routes(allocation::routes)
        .routes(reports::routes)
        .routes(import::routes)
        .routes(demo::routes)
        // Flows, indicators and the area standard.
        .define(allocation::define_flows)
        .define(registration::define_indicators)
        .define(occupancy::seed_standards)
        .on_approval(allocation::on_approval)
}

tianshan_sdk::export_plugin!(setup = plugin);

/// Every error code the plugin answers has words in both languages, and
/// the two files hold the same keys (users read Chinese first).
#[cfg(test)]
mod texts {
    /// Every error code the plugin answers has words in both languages, and
    /// the two files hold the same keys (users read Chinese first).
    #[test]
    fn every_code_has_words_in_both_languages() {
        let sources = [
            include_str!("allocation.rs"),
            include_str!("common.rs"),
            include_str!("model.rs"),
            include_str!("occupancy.rs"),
            include_str!("registration.rs"),
            include_str!("space.rs"),
            include_str!("reports.rs"),
            include_str!("import.rs"),
        ];
        // The outline checks name their codes as `Some("outline_…")`.
        let outline: Vec<String> = sources
            .iter()
            .flat_map(|s| s.split("Some(\"outline_").skip(1))
            .map(|rest| {
                let tail: String = rest.chars().take_while(|c| *c != '"').collect();
                format!("outline_{tail}")
            })
            .collect();
        let outline: Vec<&str> = outline.iter().map(String::as_str).collect();
        let checked = tianshan_sdk::texts::assert_error_texts(
            include_str!("../ui/i18n/zh-CN.json"),
            include_str!("../ui/i18n/en.json"),
            &sources,
            &outline,
        );
        assert!(checked > 15, "{checked}");
    }
}
