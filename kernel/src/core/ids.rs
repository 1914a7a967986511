//! Identifiers: record ids, random tokens, and the names plugin ids may and
//! may not take.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Time-ordered record ids (ULID layout: 48 bits of milliseconds, 80 random
/// bits, Crockford base32), so the default order is insertion order.
pub fn new_record_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = crate::core::calendar::now_ms() as u128 & ((1 << 48) - 1);
    let random: u128 = rand::random::<u128>() & ((1 << 80) - 1);
    let value = (millis << 80) | random;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// A random alphanumeric string (session tokens, passwords, key ids).
pub fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Names the kernel itself answers to — the source of its own events
/// (`kernel`), the actor of its own changes (`system`), segments of its
/// routes (`/api`, `/ui`, `/portal`, `/api/v1/p`) — which no plugin may
/// take as its id, so none can publish as the kernel or shadow a route.
pub const KERNEL_NAMES: &[&str] = &[
    "kernel",
    "system",
    "admin",
    "api",
    "ui",
    "wall",
    "kit",
    "apidocs",
    "readyz",
    "portal",
    "platform",
    "plugin",
    "plugins",
    "root",
    "auth",
    "me",
    "metrics",
    "healthz",
    "open",
    "static",
    "approvals",
    "files",
    "events",
    "datacenter",
    "todos",
    "orgs",
    "users",
];

/// Ids of the region's own business systems (the bundled `plugins/*` and
/// those planned). Only the platform administrator installs a plugin under
/// one of them, so a prefecture's module cannot pose as the region's
/// system to the systems that trust its events.
pub const BUNDLED_SYSTEM_IDS: &[&str] = &[
    "assets",
    "property",
    "vehicles",
    "energy",
    "office",
    "cost",
    "logistics",
    "reception",
    "canteen",
    "welcome",
];

/// Whether only the platform administrator may install a plugin with `id`.
pub fn is_reserved_id(id: &str) -> bool {
    BUNDLED_SYSTEM_IDS.contains(&id) || KERNEL_NAMES.contains(&id)
}

pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (2..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}
