//! The plugin's configuration: the installer's value for a key, else the
//! default from the `[config]` table of `plugin.toml`.

/// The value of `key`, or `None` when neither the installer nor the
/// manifest sets it.
pub fn get(key: &str) -> Option<String> {
    crate::bindings::tianshan::plugin::config::get(key)
}
