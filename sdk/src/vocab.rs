//! Vocabularies: the closed lists of codes a field takes, each code with
//! its zh-CN and en label. One source serves validation (422 naming the
//! field), imports (a register says `在用`, not `in_use`) and the UI
//! (`GET /vocab` instead of lists retyped in JavaScript).
//!
//! ```ignore
//! use tianshan_sdk::vocab::{Term, Vocab};
//! pub const USE_STATUS: Vocab = Vocab::new("use_status", &[
//!     Term::new("in_use", "在用", "In use"),
//!     Term::new("idle", "闲置", "Idle"),
//! ]);
//! USE_STATUS.check("use_status", "in_use")?;
//! assert_eq!(USE_STATUS.resolve("在用"), Some("in_use"));
//! // router.get("/vocab", |_| Ok(vocab::respond(&[&USE_STATUS])))
//! ```

use serde_json::{Map, Value, json};

use crate::{Error, Response, Result};

/// One code of a vocabulary with its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
}

impl Term {
    pub const fn new(code: &'static str, zh: &'static str, en: &'static str) -> Term {
        Term { code, zh, en }
    }
}

/// A named, closed list of codes.
#[derive(Debug, Clone, Copy)]
pub struct Vocab {
    pub name: &'static str,
    pub terms: &'static [Term],
}

impl Vocab {
    pub const fn new(name: &'static str, terms: &'static [Term]) -> Vocab {
        Vocab { name, terms }
    }

    pub fn codes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.terms.iter().map(|t| t.code)
    }

    pub fn contains(&self, code: &str) -> bool {
        self.terms.iter().any(|t| t.code == code)
    }

    /// The code a user's text means: the code itself, or its zh-CN or en
    /// label (case and surrounding space ignored).
    pub fn resolve(&self, text: &str) -> Option<&'static str> {
        let text = text.trim();
        self.terms
            .iter()
            .find(|t| t.code == text || t.zh == text || t.en.eq_ignore_ascii_case(text))
            .map(|t| t.code)
    }

    /// The label of `code` in `lang` (`en…` or zh-CN); the code when unknown.
    pub fn label<'a>(&self, code: &'a str, lang: &str) -> &'a str {
        match self.terms.iter().find(|t| t.code == code) {
            Some(t) if lang.starts_with("en") => t.en,
            Some(t) => t.zh,
            None => code,
        }
    }

    /// 422 `validation_failed` on `field` unless `code` is in the list.
    pub fn check(&self, field: &str, code: &str) -> Result<()> {
        if self.contains(code) {
            Ok(())
        } else {
            Err(self.refusal(field))
        }
    }

    pub(crate) fn refusal(&self, field: &str) -> Error {
        let allowed = self.codes().collect::<Vec<_>>().join(", ");
        Error::validation(field, format!("{field} must be one of {allowed}"))
            .with_code("not_in_vocabulary")
            .with_param("allowed", allowed)
    }

    /// `[{code, zh, en}]`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.terms
                .iter()
                .map(|t| json!({ "code": t.code, "zh-CN": t.zh, "en": t.en }))
                .collect(),
        )
    }
}

/// The answer of a `GET /vocab` route: `{name: [{code, zh-CN, en}]}`.
pub fn respond(vocabs: &[&Vocab]) -> Response {
    let map: Map<String, Value> = vocabs
        .iter()
        .map(|v| (v.name.to_string(), v.to_json()))
        .collect();
    Response::json(&Value::Object(map)).header("cache-control", "max-age=300")
}

#[cfg(test)]
mod tests {
    use super::*;

    const USE: Vocab = Vocab::new(
        "use_status",
        &[
            Term::new("in_use", "在用", "In use"),
            Term::new("idle", "闲置", "Idle"),
        ],
    );

    #[test]
    fn codes_and_labels_resolve() {
        assert_eq!(USE.resolve("在用"), Some("in_use"));
        assert_eq!(USE.resolve(" in use "), Some("in_use"));
        assert_eq!(USE.resolve("idle"), Some("idle"));
        assert_eq!(USE.resolve("报废"), None);
        assert_eq!(USE.label("idle", "zh-CN"), "闲置");
        assert_eq!(
            USE.check("use_status", "x").unwrap_err().field(),
            Some("use_status")
        );
    }
}
