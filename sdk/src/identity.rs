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

pub use crate::bindings::tianshan::plugin::identity::Profile;

/// A user's profile — post rank, position, department — by id or username
/// (contract 1.4): `None` unless the user's unit is within this call's
/// reach or the user is the caller. Ranks are the codes of the kernel's
/// post-rank list (`ministerial` … `staff`); an empty string is "not set".
pub fn profile(user: &str) -> Option<Profile> {
    crate::bindings::tianshan::plugin::identity::profile_of(user)
}

/// The caller's own profile; `None` for kernel-made calls.
pub fn caller_profile() -> Option<Profile> {
    caller().and_then(|me| profile(&me.user_id))
}
