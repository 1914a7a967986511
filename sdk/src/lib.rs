//! Write Tianshan plugins in Rust.
//!
//! A plugin is a WebAssembly component implementing the `tianshan:plugin`
//! contract (`wit/plugin.wit`). This crate hides the generated bindings
//! behind a small API: a [`Router`] of handlers taking a [`Request`] and
//! returning a [`Response`] or a typed [`Error`], plus wrappers over the
//! kernel's imports ([`log`], [`config`], [`identity`], [`orgs`], [`authz`],
//! [`storage`], [`messaging`], [`files`], [`approvals`], [`datacenter`],
//! [`telemetry`]).
//!
//! ```ignore
//! use tianshan_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn routes() -> Router {
//!         Router::new().get("/", index).get("/greet/{name}", greet)
//!     }
//! }
//!
//! fn index(_: &Request) -> Result<Response> {
//!     Ok(Response::json(&json!({ "message": "hello" })))
//! }
//!
//! fn greet(req: &Request) -> Result<Response> {
//!     let name = req.param("name")?;
//!     Ok(Response::json(&json!({ "hello": name })))
//! }
//!
//! tianshan_sdk::export_plugin!(Hello);
//! ```
//!
//! Every request runs in a fresh instance of the plugin, so the router is
//! built once per request; keep [`Plugin::routes`] cheap.

mod error;
mod request;
mod response;
mod router;

pub mod approvals;
pub mod authz;
pub mod config;
pub mod datacenter;
pub mod files;
pub mod identity;
pub mod log;
pub mod messaging;
pub mod orgs;
pub mod storage;
pub mod telemetry;

// Building blocks every business system needs (the plugin kit).
pub mod dates;
pub mod document;
pub mod export;
pub mod form;
#[cfg(feature = "import")]
pub mod import;
pub mod list;
pub mod money;
pub mod setup;
pub mod texts;
pub mod vocab;

/// Bindings generated from `wit/plugin.wit`; use the wrappers instead.
#[doc(hidden)]
#[allow(unsafe_code, clippy::all, missing_docs, rustdoc::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        pub_export_macro: true,
        default_bindings_module: "tianshan_sdk::bindings",
        additional_type_attributes: {
            "tianshan:plugin/identity@1.4.0/principal": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/identity@1.4.0/profile": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/approvals@1.4.0/instance": [#[derive(serde::Serialize)]],
            "tianshan:plugin/datacenter@1.4.0/row": [#[derive(serde::Serialize)]],
            "tianshan:plugin/datacenter@1.4.0/indicator": [#[derive(serde::Serialize)]],
            "tianshan:plugin/datacenter@1.4.0/aggregation": [#[derive(serde::Serialize)]],
            "tianshan:plugin/datacenter@1.4.0/granularity": [#[derive(serde::Serialize)]],
            "tianshan:plugin/datacenter@1.4.0/sharing": [#[derive(serde::Serialize)]],
            "tianshan:plugin/orgs@1.4.0/org": [#[derive(serde::Serialize)]],
            "tianshan:plugin/telemetry@1.4.0/device": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/device-info": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/channel": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/term": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/reading": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/latest-reading": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/recorded": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/bucket": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/track-point": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/rule": [#[derive(serde::Serialize, serde::Deserialize)]],
            "tianshan:plugin/telemetry@1.4.0/device-kind": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/protocol": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/channel-kind": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/quality": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/interval": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/measure": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
            "tianshan:plugin/telemetry@1.4.0/condition": [#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = "snake_case")]],
        },
    });
}

pub use error::{Error, Result};
pub use request::Request;
pub use response::Response;
pub use router::{Handler, Router};
pub use setup::Setup;

/// An event of a topic the plugin subscribed to.
pub use bindings::tianshan::plugin::types::Event;

/// The caller of a request, as established by the kernel.
pub use bindings::tianshan::plugin::identity::Principal;

pub use serde;
pub use serde_json;
pub use serde_json::json;

/// `docs/plugin-guide.md`, whose Rust samples rustdoc compiles (and, when
/// they need no kernel, runs) as this crate's doctests: `cargo test -p
/// tianshan-sdk`, and `cargo test` at the workspace root, fail when the
/// guide and the SDK drift apart.
#[cfg(doctest)]
#[doc = include_str!("../../docs/plugin-guide.md")]
pub struct PluginGuide;

/// What a plugin implements. Only [`Plugin::routes`] is required.
///
/// The hooks answer the kernel with a `String`; an SDK [`Error`] converts
/// into one, so `?` works in them directly.
pub trait Plugin {
    /// The HTTP routes of the plugin, below `/api/v1/p/{plugin}`.
    fn routes() -> Router;

    /// Called once on first install; an error aborts the install.
    fn install() -> core::result::Result<(), String> {
        Ok(())
    }

    /// Called once when upgrading from `previous` (a semver version); an
    /// error aborts the upgrade and keeps the previous version.
    fn upgrade(previous: &str) -> core::result::Result<(), String> {
        let _ = previous;
        Ok(())
    }

    /// An event of a subscribed topic; an error asks for a retry.
    fn on_event(event: Event) -> core::result::Result<(), String> {
        let _ = event;
        Ok(())
    }
}

/// The usual imports for writing a plugin.
pub mod prelude {
    pub use crate::{
        Error, Event, Plugin, Principal, Request, Response, Result, Router, Setup, approvals,
        authz, config, datacenter, dates, export, files, identity, json, list, log, messaging,
        money, orgs, storage, telemetry, vocab,
    };
}

/// Glue used by [`export_plugin!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::tianshan::plugin::types;
    use crate::{Plugin, Request};

    pub fn handle<P: Plugin>(request: types::Request) -> types::Response {
        let types::Request {
            method,
            path,
            query,
            headers,
            body,
        } = request;
        let request = Request::from_parts(method, path, query, headers, body);
        let response = P::routes().handle_logged(request);
        let (status, headers, body) = response.into_parts();
        types::Response {
            status,
            headers,
            body,
        }
    }

    pub fn install<P: Plugin>() -> Result<(), String> {
        P::install()
    }

    pub fn upgrade<P: Plugin>(previous: String) -> Result<(), String> {
        P::upgrade(&previous)
    }

    pub fn on_event<P: Plugin>(event: types::Event) -> Result<(), String> {
        P::on_event(event)
    }
}

/// Export a type implementing [`Plugin`] as the plugin's component exports,
/// or with `setup = f` the plugin `f()` declares ([`Setup`]). Invoke once,
/// at the root of the plugin crate.
#[macro_export]
macro_rules! export_plugin {
    (setup = $setup:path) => {
        #[doc(hidden)]
        struct __TianshanSetupPlugin;

        impl $crate::Plugin for __TianshanSetupPlugin {
            fn routes() -> $crate::Router {
                $setup().router()
            }

            fn install() -> ::core::result::Result<(), ::std::string::String> {
                Ok($setup().install()?)
            }

            fn upgrade(previous: &str) -> ::core::result::Result<(), ::std::string::String> {
                Ok($setup().upgrade(previous)?)
            }

            fn on_event(
                event: $crate::Event,
            ) -> ::core::result::Result<(), ::std::string::String> {
                Ok($setup().handle_event(&event)?)
            }
        }

        $crate::export_plugin!(__TianshanSetupPlugin);
    };
    ($ty:ty) => {
        #[doc(hidden)]
        struct __TianshanPluginExports;

        impl $crate::bindings::exports::tianshan::plugin::http_handler::Guest
            for __TianshanPluginExports
        {
            fn handle(
                request: $crate::bindings::tianshan::plugin::types::Request,
            ) -> $crate::bindings::tianshan::plugin::types::Response {
                $crate::__private::handle::<$ty>(request)
            }
        }

        impl $crate::bindings::exports::tianshan::plugin::lifecycle::Guest
            for __TianshanPluginExports
        {
            fn install() -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private::install::<$ty>()
            }

            fn upgrade(
                previous_version: ::std::string::String,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private::upgrade::<$ty>(previous_version)
            }
        }

        impl $crate::bindings::exports::tianshan::plugin::event_handler::Guest
            for __TianshanPluginExports
        {
            fn handle(
                event: $crate::bindings::tianshan::plugin::types::Event,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private::on_event::<$ty>(event)
            }
        }

        // Component exports exist only in the WebAssembly build: a host
        // build of a plugin crate (`cargo build` at the workspace root, unit
        // tests) would otherwise ask the host linker for export names such
        // as `cabi_post_tianshan:plugin/event-handler@1.2.0#handle`, which
        // it refuses.
        #[cfg(target_family = "wasm")]
        $crate::bindings::export!(__TianshanPluginExports with_types_in $crate::bindings);
        // On the host the exports above are all that would use the plugin
        // type; keep it (and so the author's handlers) live for the lints.
        #[cfg(not(target_family = "wasm"))]
        const _: __TianshanPluginExports = __TianshanPluginExports;
    };
}
