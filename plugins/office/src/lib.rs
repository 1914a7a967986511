//! 协同办公: paperless official documents. Outgoing documents in the
//! GB/T 9704 form drafted, reviewed, co-signed and signed through the
//! kernel's approvals, registered, sealed and distributed into the
//! recipients' incoming boxes; incoming documents handled to the archive;
//! notices with read receipts; supervision; search. Built only on the SDK.
//!
//! - [`model`]: the documents, vocabularies, validation, marked changes, snippets.
//! - [`outgoing`]: 发文, its approval, registration and distribution.
//! - [`incoming`]: 收文 from registration to the archive.
//! - [`notices`]: 通知公告 and receipts.
//! - [`matters`]: supervision (督办) of assigned matters.
//! - [`search`]: a phrase in titles and bodies.
//! - [`indicators`]: documents issued and received into the data center.
//! - [`demo`]: the year of documents `tianshan up` seeds.

pub mod common;
pub mod demo;
pub mod incoming;
pub mod indicators;
pub mod matters;
pub mod model;
pub mod notices;
pub mod outgoing;
pub mod search;

use tianshan_sdk::Setup;

fn plugin() -> Setup {
    Setup::new()
        .about("office.view")
        .vocab(model::VOCABS, "office.view")
        .routes(outgoing::routes)
        .routes(incoming::routes)
        .routes(notices::routes)
        .routes(matters::routes)
        .routes(search::routes)
        .routes(demo::routes)
        .define(outgoing::define_flows)
        .define(indicators::define)
        .on_flow(outgoing::FLOW, outgoing::decided)
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
                include_str!("common.rs"),
                include_str!("outgoing.rs"),
                include_str!("incoming.rs"),
                include_str!("notices.rs"),
                include_str!("matters.rs"),
                include_str!("search.rs"),
            ],
            &[],
        );
        assert!(checked > 25, "{checked}");
    }
}
