//! The host services plugins and users call: storage, messaging, files,
//! approvals, the data center and jobs. Each folder holds the service in
//! domain types, its WIT face (`host.rs`) and its kernel routes (`http.rs`).

pub mod approvals;
pub mod datacenter;
pub mod files;
pub mod jobs;
pub mod messaging;
pub mod storage;
