//! Access decisions, made by the kernel (contract 1.1.0).
//!
//! The kernel answers from the caller's role bindings; a plugin cannot
//! change the answer, only ask. Use it for fine-grained checks inside a
//! handler; combine with [`crate::Error::forbidden`] to refuse.

/// May the caller use `permission` at the org the request acts in?
pub fn allowed(permission: &str) -> bool {
    crate::bindings::tianshan::plugin::authz::allowed(permission, None)
}

/// May the caller use `permission` at `org` (a binding at an org reaches
/// its whole subtree)?
pub fn allowed_at(permission: &str, org: &str) -> bool {
    crate::bindings::tianshan::plugin::authz::allowed(permission, Some(org))
}

/// `Ok(())` when allowed, else a 403 error naming the permission.
pub fn require(permission: &str) -> crate::Result<()> {
    if allowed(permission) {
        Ok(())
    } else {
        Err(crate::Error::forbidden(format!(
            "you lack the permission {permission} here"
        )))
    }
}

/// `Ok(())` when the caller may use `permission` at `org` (say, the org of
/// the record a handler is about to change), else 403.
///
/// ```ignore
/// let doc = collection("rooms").fetch::<Room>(id)?;
/// authz::require_at("rooms.manage", &doc.org)?;
/// ```
pub fn require_at(permission: &str, org: &str) -> crate::Result<()> {
    if allowed_at(permission, org) {
        Ok(())
    } else {
        Err(crate::Error::forbidden(format!(
            "you lack the permission {permission} at {org}"
        )))
    }
}
