//! End-to-end tests: real `tianshan` processes, real plugin components built
//! from tests/plugins/ and plugins/. One test binary keeps link time down.

mod admin_console;
mod approvals;
mod assets;
mod assets_import;
mod assets_ui;
mod audit_chain;
mod backup;
mod datacenter;
mod energy;
mod gateway;
mod identity;
mod lanes;
mod layers;
mod live;
mod login;
mod office;
mod office_ui;
mod operations;
mod packages;
mod pages;
mod portal;
mod property;
mod reach;
mod sandbox;
mod seams;
mod services;
mod support;
mod telemetry;
mod tooling;
mod vehicles;
mod vendor;
mod wall;
