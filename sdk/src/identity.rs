//! Who is calling and who the plugin is, as established by the kernel.

pub use crate::bindings::tianshan::plugin::identity::Principal;

/// The caller of the current request; `None` when the kernel itself invokes
/// the plugin (install, upgrade, events, jobs).
pub fn caller() -> Option<Principal> {
    crate::bindings::tianshan::plugin::identity::caller()
}

/// This plugin's id.
pub fn plugin_id() -> String {
    crate::bindings::tianshan::plugin::identity::plugin_id()
}

/// This plugin's installed version (semver).
pub fn plugin_version() -> String {
    crate::bindings::tianshan::plugin::identity::plugin_version()
}
