//! The host services plugins and users call: storage, messaging, files,
//! approvals, the data center, telemetry and jobs, each in domain types: a `Scope`
//! the kernel decided in, a `ServiceError` out. Their faces sit in the
//! layers above: the WIT import in `runtime/host/<service>.rs`, the kernel
//! routes in `http/<service>.rs`.

pub mod approvals;
pub mod datacenter;
pub mod files;
pub mod jobs;
pub mod messaging;
pub mod notifications;
pub mod storage;
pub mod telemetry;
