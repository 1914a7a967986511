//! 公共机构能耗: energy and water of public institutions. Each institution
//! has an annual profile (名录库), meters online (MQTT, through the
//! kernel's telemetry) or read by hand, and bills; a monthly statement
//! (基层表) is prefilled from them, filled in, reviewed up the org tree
//! through the kernel's approvals and locked; the locked months feed the
//! data center — the plugin's own indicators and the plan's energy,
//! water and carbon indicators — and the summary forms (综合表). Targets
//! go down the levels, quotas come from the region, alerts follow.
//! Built on the SDK's blocks only.
//!
//! - [`model`]: records, vocabularies, conversion and the pure rules.
//! - [`factors`]: energy types and coefficients as versioned data.
//! - [`profiles`]: the annual institution profiles.
//! - [`meters`]: meters, readings by hand, bills, what a month measured.
//! - [`statements`]: the monthly forms, their review and locking.
//! - [`indicators`]: what goes into the data center.
//! - [`targets`]: targets, quotas, tracking and alerts.
//! - [`analysis`]: the summary forms and the analysis pages.
//! - [`demo`]: what `tianshan up` seeds.

pub mod analysis;
pub mod common;
pub mod demo;
pub mod factors;
pub mod indicators;
pub mod meters;
pub mod model;
pub mod profiles;
pub mod statements;
pub mod targets;

use tianshan_sdk::Setup;

fn plugin() -> Setup {
    Setup::new()
        .about("energy.view")
        .vocab(model::VOCABS, "energy.view")
        .routes(factors::routes)
        .routes(profiles::routes)
        .routes(meters::routes)
        .routes(statements::routes)
        .routes(targets::routes)
        .routes(analysis::routes)
        .routes(demo::routes)
        // Reference data, quotas, flows, indicators and rules.
        .define(factors::seed)
        .define(targets::seed_quotas)
        .define(statements::define_flows)
        .define(indicators::define)
        .define(meters::define_rules)
        .on_approval(statements::decided)
        .on_alerts(targets::meter_alerts)
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
                include_str!("analysis.rs"),
                include_str!("common.rs"),
                include_str!("factors.rs"),
                include_str!("meters.rs"),
                include_str!("model.rs"),
                include_str!("profiles.rs"),
                include_str!("statements.rs"),
                include_str!("targets.rs"),
            ],
            &[],
        );
        assert!(checked > 30, "{checked}");
    }
}
