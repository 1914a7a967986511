//! End-to-end tests: real `tianshan` processes, real plugin components built
//! from tests/plugins/ and plugins/. One test binary keeps link time down.

mod approvals;
mod assets;
mod assets_import;
mod assets_ui;
mod datacenter;
mod gateway;
mod identity;
mod packages;
mod portal;
mod sandbox;
mod services;
mod support;
mod tooling;
