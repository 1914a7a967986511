//! The edge: the router, sessions, the plugin proxy, static files and the
//! kernel API.

pub mod api;
pub mod approvals;
pub mod dashboards;
pub mod datacenter;
pub mod detach;
pub mod gateway;
pub mod health;
pub mod notifications;
pub mod openapi;
pub mod routes;
pub mod session;
pub mod static_files;
pub mod telemetry;
