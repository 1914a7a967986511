//! A plugin built directly against the frozen `tianshan:plugin@1.2.0`
//! (`wit/released/1.2.0`), with wit-bindgen and no SDK. It imports
//! `approvals` and `datacenter`, whose 1.3.0 versions gained functions
//! (`start-with`, `define-ratio`, `ratio-of`): the kernel must keep linking
//! and serving it, and a ratio indicator reads to it as a `mean`.
// Raw wit-bindgen exports are `#[export_name]` functions; the SDK hides
// this, a plugin without it allows it.
#![allow(unsafe_code)]

#[allow(unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit/released/1.2.0",
    });
}

use bindings::exports::tianshan::plugin::{event_handler, http_handler, lifecycle};
use bindings::tianshan::plugin::{approvals, datacenter, storage, types};

struct Legacy;

fn aggregation(a: datacenter::Aggregation) -> &'static str {
    match a {
        datacenter::Aggregation::Sum => "sum",
        datacenter::Aggregation::Stock => "stock",
        datacenter::Aggregation::Mean => "mean",
    }
}

impl http_handler::Guest for Legacy {
    fn handle(_request: types::Request) -> types::Response {
        // `"<code>":"<aggregation>"` for every indicator it may read.
        let catalogue = match datacenter::catalogue() {
            Ok(list) => list
                .iter()
                .map(|i| format!("\"{}\":\"{}\"", i.code, aggregation(i.aggregation)))
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => String::from("\"error\":\"catalogue\""),
        };
        let approval_found = matches!(approvals::get("01JNOSUCHINSTANCE000000000"), Ok(Some(_)));
        let notes = storage::count("notes", &[], None).unwrap_or(u64::MAX);
        let body = format!(
            "{{\"contract\":\"1.2.0\",\"notes\":{notes},\"approval_found\":{approval_found},\"catalogue\":{{{catalogue}}}}}"
        );
        types::Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }
}

impl lifecycle::Guest for Legacy {
    fn install() -> Result<(), String> {
        Ok(())
    }

    fn upgrade(_previous: String) -> Result<(), String> {
        Ok(())
    }
}

impl event_handler::Guest for Legacy {
    fn handle(_event: types::Event) -> Result<(), String> {
        Ok(())
    }
}

bindings::export!(Legacy with_types_in bindings);
