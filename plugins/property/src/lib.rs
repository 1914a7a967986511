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
        let router = import::routes(router);
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

/// Every error code the plugin answers has words in both languages, and
/// the two files hold the same keys (users read Chinese first).
#[cfg(test)]
mod texts {
    use std::collections::BTreeSet;

    const SOURCES: &[&str] = &[
        include_str!("allocation.rs"),
        include_str!("common.rs"),
        include_str!("model.rs"),
        include_str!("occupancy.rs"),
        include_str!("registration.rs"),
        include_str!("space.rs"),
        include_str!("reports.rs"),
        include_str!("import.rs"),
    ];

    fn keys(json: &str) -> BTreeSet<String> {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
        map.keys().cloned().collect()
    }

    #[test]
    fn every_code_has_words_in_both_languages() {
        let zh = keys(include_str!("../ui/i18n/zh-CN.json"));
        let en = keys(include_str!("../ui/i18n/en.json"));
        assert_eq!(zh, en);
        let mut codes = BTreeSet::new();
        for text in SOURCES {
            // invalid(field, "code", …) and Error::new(status, "code", …)
            for marker in ["invalid(", "Error::new("] {
                for rest in text.split(marker).skip(1) {
                    let args: Vec<&str> = rest.splitn(3, ',').collect();
                    if let Some(code) = args
                        .get(1)
                        .map(|a| a.trim())
                        .filter(|a| a.starts_with('"'))
                        .map(|a| a.trim_matches('"'))
                        .filter(|c| {
                            !c.is_empty() && c.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                    {
                        codes.insert(code.to_string());
                    }
                }
            }
            for rest in text.split("Some(\"outline_").skip(1) {
                let tail: String = rest.chars().take_while(|c| *c != '"').collect();
                codes.insert(format!("outline_{tail}"));
            }
        }
        assert!(codes.len() > 15, "{codes:?}");
        let missing: Vec<_> = codes
            .iter()
            .filter(|c| !zh.contains(&format!("code.{c}")))
            .collect();
        assert!(missing.is_empty(), "codes without words: {missing:?}");
    }
}
