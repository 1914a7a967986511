//! A check for a plugin's own unit tests: every error code its sources
//! answer has words in both languages of its pages (`ui/i18n/zh-CN.json`
//! and `en.json`, keys `code.{code}`), and the two files hold the same
//! keys — so a user never meets an error shown as its English message or
//! its bare code.
//!
//! ```ignore
//! #[test]
//! fn every_error_code_has_words_in_both_languages() {
//!     let checked = tianshan_sdk::texts::assert_error_texts(
//!         include_str!("../ui/i18n/zh-CN.json"),
//!         include_str!("../ui/i18n/en.json"),
//!         &[include_str!("cards.rs"), include_str!("model.rs")],
//!         &[],
//!     );
//!     assert!(checked > 10);
//! }
//! ```

use std::collections::BTreeSet;

/// The codes a source gives errors: `with_code(…)`, `invalid(field, …)`
/// (the SDK's `Error::invalid` or a plugin's own helper of that shape) and
/// `Error::new(status, …)` with the code as a string literal, on one line
/// or several.
pub fn error_codes(source: &str) -> BTreeSet<String> {
    let compact = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let is_code = |c: &str| !c.is_empty() && c.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    let mut codes = BTreeSet::new();
    for rest in compact.split("with_code(").skip(1) {
        let code = rest
            .trim_start()
            .strip_prefix('"')
            .and_then(|r| r.split('"').next());
        if let Some(code) = code.filter(|c| is_code(c)) {
            codes.insert(code.to_string());
        }
    }
    for marker in ["invalid(", "Error::new("] {
        for rest in compact.split(marker).skip(1) {
            let code = rest
                .split(',')
                .nth(1)
                .map(str::trim)
                .and_then(|a| a.strip_prefix('"'))
                .and_then(|a| a.strip_suffix('"'));
            if let Some(code) = code.filter(|c| is_code(c)) {
                codes.insert(code.to_string());
            }
        }
    }
    codes
}

fn keys(json: &str) -> BTreeSet<String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).expect("an i18n file is a JSON object");
    map.keys().cloned().collect()
}

/// Panics naming what is missing: keys in one language only, or codes of
/// `sources` (and `extra`) without `code.{code}` words. Answers how many
/// codes it checked, so a test can tell that it found them at all.
pub fn assert_error_texts(zh: &str, en: &str, sources: &[&str], extra: &[&str]) -> usize {
    let (zh, en) = (keys(zh), keys(en));
    let only_zh: Vec<_> = zh.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&zh).collect();
    assert!(
        only_zh.is_empty() && only_en.is_empty(),
        "zh-CN only: {only_zh:?}; en only: {only_en:?}"
    );
    let mut codes: BTreeSet<String> = sources.iter().flat_map(|s| error_codes(s)).collect();
    codes.extend(extra.iter().map(|c| c.to_string()));
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| !zh.contains(&format!("code.{c}")))
        .collect();
    assert!(missing.is_empty(), "codes without words: {missing:?}");
    codes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The samples put a space after `with_code(`: the kernel's test of the
    // SDK's own codes reads these files too.
    #[test]
    fn codes_are_found_in_every_shape() {
        let source = r#"
            Err(Error::invalid("period", "period_invalid", "YYYY-MM"))
            Error::new(
                409,
                "profile_missing",
                "…",
            )
            Error::conflict("x").with_code( "stale_revision")
            invalid(field, code, "not a literal")
        "#;
        let codes: Vec<_> = error_codes(source).into_iter().collect();
        assert_eq!(
            codes,
            ["period_invalid", "profile_missing", "stale_revision"]
        );
    }

    #[test]
    #[should_panic(expected = "codes without words: [\"b\"]")]
    fn a_code_without_words_fails() {
        assert_error_texts(
            r#"{"code.a": "甲"}"#,
            r#"{"code.a": "A"}"#,
            // Spaced, so the kernel's scan of the SDK's own codes skips it.
            &[r#"with_code( "a") with_code( "b")"#],
            &[],
        );
    }
}
