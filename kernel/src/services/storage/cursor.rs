//! Sealed keyset cursors.
//!
//! A page's `next_cursor` carries the sort values (and id) of the page's
//! last record. Given in the clear it would show a caller values of a
//! record it has not been served yet, and let it craft positions of its own.
//! So the payload is sealed with XChaCha20-Poly1305 under a key derived from
//! the audit key's secret (every node of a deployment shares it, so a cursor
//! made on one node pages on another), with a hash of the query it belongs
//! to as associated data: a cursor opens only on the query that gave it.
//! Cursor text is base64url (no padding) of nonce || ciphertext || tag.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::audit::AuditKey;

use super::{Condition, SortKey};

/// What the audit key's secret is derived for ([`AuditKey::derive`]).
pub const PURPOSE: &str = "storage-cursor-v1";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

pub struct CursorKey(XChaCha20Poly1305);

impl CursorKey {
    pub fn new(key: [u8; 32]) -> Self {
        CursorKey(XChaCha20Poly1305::new(Key::from_slice(&key)))
    }

    /// The deployment's key when the audit trail is keyed; otherwise (tests,
    /// tools) one random key for the whole process, so every `Storage` of
    /// the process agrees and nothing outside it can forge a cursor.
    pub fn for_audit(key: Option<&AuditKey>) -> Self {
        match key {
            Some(key) => Self::new(key.derive(PURPOSE)),
            None => {
                static PROCESS: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
                Self::new(*PROCESS.get_or_init(|| {
                    use rand::Rng;
                    rand::rng().random()
                }))
            }
        }
    }

    /// Seals `payload` for the query `binding` names ([`binding`]).
    pub fn seal(&self, binding: &[u8; 32], payload: &[u8]) -> String {
        use rand::Rng;
        let nonce: [u8; NONCE_LEN] = rand::rng().random();
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: binding,
                },
            )
            .expect("XChaCha20-Poly1305 seals any payload of this size");
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The payload of a cursor this key sealed for the same query; `None`
    /// for anything else (garbage, truncated, altered, another query's or
    /// another deployment's), with no hint which.
    pub fn open(&self, binding: &[u8; 32], cursor: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: binding,
                },
            )
            .ok()
    }
}

/// A hash naming the query a cursor pages through: the plugin, collection,
/// org it is confined to, filters and sort keys. Page size and the total
/// flag may change between pages.
pub fn binding(
    plugin: &str,
    collection: &str,
    within_org: Option<&str>,
    filter: &[Condition],
    sort: &[SortKey],
) -> [u8; 32] {
    let filter: Vec<_> = filter
        .iter()
        .map(|c| serde_json::json!([c.field, format!("{:?}", c.op), c.value]))
        .collect();
    let sort: Vec<_> = sort
        .iter()
        .map(|k| serde_json::json!([k.field, k.descending]))
        .collect();
    // JSON of each part keeps the input unambiguous.
    let canonical = serde_json::json!([
        "tianshan-cursor",
        plugin,
        collection,
        within_org,
        filter,
        sort
    ]);
    Sha256::digest(canonical.to_string().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::storage::Op;

    fn sort(field: &str) -> Vec<SortKey> {
        vec![SortKey {
            field: field.into(),
            descending: false,
        }]
    }

    fn query(field: &str) -> [u8; 32] {
        binding("notes", "cards", None, &[], &sort(field))
    }

    #[test]
    fn round_trip() {
        let key = CursorKey::new([7; 32]);
        let b = query("title");
        let cursor = key.seal(&b, br#"["secret-title","id-1"]"#);
        assert_eq!(
            key.open(&b, &cursor).as_deref(),
            Some(&br#"["secret-title","id-1"]"#[..])
        );
        // Text safe in a URL as is.
        assert!(
            cursor
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn the_same_position_seals_differently_each_time() {
        let key = CursorKey::new([7; 32]);
        let b = query("title");
        assert_ne!(key.seal(&b, b"[1]"), key.seal(&b, b"[1]"));
    }

    #[test]
    fn a_flipped_byte_is_refused() {
        let key = CursorKey::new([7; 32]);
        let b = query("title");
        let cursor = key.seal(&b, br#"["a","id-1"]"#);
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            assert_eq!(key.open(&b, &URL_SAFE_NO_PAD.encode(altered)), None, "{i}");
        }
        // Truncated, extended, garbage, empty.
        assert_eq!(key.open(&b, &cursor[..cursor.len() - 1]), None);
        assert_eq!(key.open(&b, &URL_SAFE_NO_PAD.encode(&bytes[..30])), None);
        assert_eq!(key.open(&b, &format!("{cursor}AA")), None);
        assert_eq!(key.open(&b, "zz"), None);
        assert_eq!(key.open(&b, "not base64!"), None);
        assert_eq!(key.open(&b, ""), None);
    }

    #[test]
    fn a_cursor_from_another_query_is_refused() {
        let key = CursorKey::new([7; 32]);
        let cursor = key.seal(&query("title"), br#"["a","id-1"]"#);
        assert_eq!(key.open(&query("rank"), &cursor), None);
        let descending = vec![SortKey {
            field: "title".into(),
            descending: true,
        }];
        assert_eq!(
            key.open(&binding("notes", "cards", None, &[], &descending), &cursor),
            None
        );
        assert_eq!(
            key.open(
                &binding("other", "cards", None, &[], &sort("title")),
                &cursor
            ),
            None
        );
        assert_eq!(
            key.open(
                &binding("notes", "boards", None, &[], &sort("title")),
                &cursor
            ),
            None
        );
        assert_eq!(
            key.open(
                &binding("notes", "cards", Some("org-1"), &[], &sort("title")),
                &cursor
            ),
            None
        );
        let filter = vec![Condition {
            field: "done".into(),
            op: Op::Eq,
            value: "true".into(),
        }];
        assert_eq!(
            key.open(
                &binding("notes", "cards", None, &filter, &sort("title")),
                &cursor
            ),
            None
        );
    }

    #[test]
    fn a_cursor_under_another_key_is_refused() {
        let cursor = CursorKey::new([7; 32]).seal(&query("title"), b"[1]");
        assert_eq!(CursorKey::new([8; 32]).open(&query("title"), &cursor), None);
    }

    #[test]
    fn nodes_sharing_the_audit_secret_share_the_key() {
        let a = CursorKey::for_audit(Some(&AuditKey::from_secret([3; 32])));
        let b = CursorKey::for_audit(Some(&AuditKey::from_secret([3; 32])));
        let other = CursorKey::for_audit(Some(&AuditKey::from_secret([4; 32])));
        let cursor = a.seal(&query("title"), b"[1]");
        assert!(b.open(&query("title"), &cursor).is_some());
        assert!(other.open(&query("title"), &cursor).is_none());
        // Unkeyed: one key for the process.
        let cursor = CursorKey::for_audit(None).seal(&query("title"), b"[1]");
        assert!(
            CursorKey::for_audit(None)
                .open(&query("title"), &cursor)
                .is_some()
        );
    }

    #[test]
    fn the_cursor_does_not_show_the_sort_value() {
        let key = CursorKey::new([7; 32]);
        let payload = br#"["confidential-title-42","rec-0001"]"#;
        let cursor = key.seal(&query("title"), payload);
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for shown in [
            cursor.clone(),
            cursor.to_ascii_lowercase(),
            hex::encode(&bytes),
        ] {
            assert!(!shown.contains("confidential"));
            assert!(!shown.contains("rec-0001"));
            assert!(!shown.contains(&hex::encode("confidential-title-42")));
            assert!(!shown.contains(&hex::encode("rec-0001")));
            assert!(!shown.contains(&URL_SAFE_NO_PAD.encode("confidential-title-42")));
        }
        assert!(
            !bytes
                .windows(b"confidential".len())
                .any(|w| w == b"confidential")
        );
    }
}
