//! The org tree as anyone logged in may know it (contract 1.3.0): the id,
//! code, names, level and parent of an org. Use it to check an org a user
//! typed (a transfer's receiver, a lender) before saving, and to show its
//! name; who may act where is still `authz`'s and the storage scope's.
//!
//! ```no_run
//! use tianshan_sdk::prelude::*;
//!
//! # fn main() -> tianshan_sdk::Result<()> {
//! // 422 naming `to_org` when there is no such active org.
//! let receiver = orgs::require_active("to_org", "650103")?;
//! assert_eq!(receiver.level, "county");
//! # Ok(())
//! # }
//! ```

use crate::bindings::tianshan::plugin::orgs as wit;
use crate::{Error, Result};

pub use wit::Org;

/// The org with this id or code; `None` when there is none.
pub fn get(id_or_code: &str) -> Result<Option<Org>> {
    wit::get(id_or_code).map_err(|m| Error::new(503, "unavailable", m))
}

/// The active org with this id or code, or a 422 naming `field` with the
/// code `org_unknown` (no such org) or `org_inactive` (deactivated).
pub fn require_active(field: &str, id_or_code: &str) -> Result<Org> {
    match get(id_or_code)? {
        Some(org) if org.active => Ok(org),
        Some(org) => Err(Error::new(
            422,
            "org_inactive",
            format!("org {} ({}) is deactivated", org.id, org.code),
        )
        .with_field(field)),
        None => Err(Error::new(
            422,
            "org_unknown",
            format!("there is no org {id_or_code:?}"),
        )
        .with_field(field)),
    }
}

/// Where a new record goes when the caller may name the org (`org` in
/// the body): that org — active (else 422 naming `org`) and one where the
/// caller holds `permission` (else 403) — or `None` for the acting org
/// when they name none (absent or empty).
///
/// ```no_run
/// # use tianshan_sdk::prelude::*;
/// # fn f(body: &serde_json::Value) -> tianshan_sdk::Result<()> {
/// let org = orgs::target("vehicles.manage", body["org"].as_str())?;
/// # let _ = org; Ok(()) }
/// ```
pub fn target(permission: &str, named: Option<&str>) -> Result<Option<String>> {
    match named.map(str::trim).filter(|o| !o.is_empty()) {
        Some(named) => {
            let org = require_active("org", named)?;
            crate::authz::require_at(permission, &org.id)?;
            Ok(Some(org.id))
        }
        None => Ok(None),
    }
}
