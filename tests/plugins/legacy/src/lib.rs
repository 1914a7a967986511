//! A plugin built directly against the frozen `tianshan:plugin@1.0.0`
//! (`wit/released/1.0.0`), with wit-bindgen and no SDK: the kernel must
//! keep serving plugins of every released minor version.
// Raw wit-bindgen exports are `#[export_name]` functions; the SDK hides
// this, a plugin without it allows it.
#![allow(unsafe_code)]

#[allow(unsafe_code, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit/released/1.0.0",
    });
}

use bindings::exports::tianshan::plugin::{event_handler, http_handler, lifecycle};
use bindings::tianshan::plugin::{identity, types};

struct Legacy;

impl http_handler::Guest for Legacy {
    fn handle(request: types::Request) -> types::Response {
        let caller = identity::caller().map(|p| p.username).unwrap_or_default();
        let body = format!(
            "{{\"contract\":\"1.0.0\",\"path\":\"{}\",\"caller\":\"{}\",\"version\":\"{}\"}}",
            request.path,
            caller,
            identity::plugin_version()
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
