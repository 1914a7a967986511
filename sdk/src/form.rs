//! A request body read field by field, for handlers whose bodies mix
//! optional fields, vocabularies and dates: each refusal is a 422 naming
//! the field with a stable code the UI kit has words for.
//!
//! ```ignore
//! use tianshan_sdk::form::Form;
//! let input = Form::from(body);                           // a JSON object
//! let name = input.required("name")?;                      // 422 `required`
//! let kind = input.one_of("kind", &["a", "b"], "a")?;      // 422 `not_in_vocabulary`
//! let due = input.date("due_on")?;                         // Option, 422 `date_invalid`
//! ```

use std::ops::Deref;

use serde_json::{Map, Value};

use crate::{Error, Result, dates};

/// A JSON object body. It derefs to the object, so `get`, `contains_key`
/// and friends read raw values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Form(pub Map<String, Value>);

impl Deref for Form {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl From<Map<String, Value>> for Form {
    fn from(map: Map<String, Value>) -> Form {
        Form(map)
    }
}

impl Form {
    /// The request's JSON body, which must be an object: 400 `invalid_json`
    /// when it is not JSON, 400 `invalid_body` when it is another value.
    pub fn of(req: &crate::Request) -> Result<Form> {
        match req.json::<Value>()? {
            Value::Object(map) => Ok(Form(map)),
            _ => Err(Error::bad_request(
                "invalid_body",
                "the body must be a JSON object",
            )),
        }
    }

    /// The ids of the records an action covers (the cards of a document,
    /// the items of an order): at least one (422 `none_selected`), at most
    /// `max` (422 `too_many` with `max`), none twice (422 `named_twice`),
    /// each refusal naming `field`.
    pub fn ids(&self, field: &str, max: usize) -> Result<Vec<String>> {
        let ids: Vec<String> = self
            .0
            .get(field)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Err(
                Error::validation(field, format!("{field}: name at least one"))
                    .with_code("none_selected"),
            );
        }
        if ids.len() > max {
            return Err(Error::validation(field, format!("{field}: at most {max}"))
                .with_code("too_many")
                .with_param("max", max));
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != ids.len() {
            return Err(
                Error::validation(field, format!("{field}: one is named twice"))
                    .with_code("named_twice"),
            );
        }
        Ok(ids)
    }

    /// The trimmed text of `field`; none when absent, not text, or blank.
    pub fn text(&self, field: &str) -> Option<String> {
        self.0
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Like [`text`](Self::text), but 422 `required` when missing.
    pub fn required(&self, field: &str) -> Result<String> {
        self.text(field).ok_or_else(|| {
            Error::validation(field, format!("{field} is required")).with_code("required")
        })
    }

    /// `true` only when the field is the JSON `true`.
    pub fn flag(&self, field: &str) -> bool {
        self.0.get(field).and_then(Value::as_bool) == Some(true)
    }

    /// A `YYYY-MM-DD` date when given; 422 `date_invalid` when not a date.
    pub fn date(&self, field: &str) -> Result<Option<String>> {
        match self.text(field) {
            Some(v) if dates::parse_date(&v).is_some() => Ok(Some(v)),
            Some(_) => Err(
                Error::validation(field, format!("{field} must be YYYY-MM-DD"))
                    .with_code("date_invalid"),
            ),
            None => Ok(None),
        }
    }

    /// Like [`date`](Self::date), but 422 `required` when missing.
    pub fn required_date(&self, field: &str) -> Result<String> {
        self.required(field)?;
        Ok(self.date(field)?.unwrap_or_default())
    }

    /// The field's text, `default` when absent, refused with 422
    /// `not_in_vocabulary` unless one of `allowed` (an empty default makes
    /// the field required).
    pub fn one_of(&self, field: &str, allowed: &[&str], default: &str) -> Result<String> {
        let v = self.text(field).unwrap_or_else(|| default.to_string());
        if v.is_empty() || !allowed.contains(&v.as_str()) {
            return Err(Error::validation(
                field,
                format!("{field} is one of {}", allowed.join(", ")),
            )
            .with_code("not_in_vocabulary"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(v: Value) -> Form {
        Form(v.as_object().cloned().unwrap())
    }

    #[test]
    fn fields_are_trimmed_checked_and_named() {
        let f = form(json!({
            "name": " 桌子 ", "blank": "  ", "n": 3, "due": "2026-02-30",
            "on": "2026-03-05", "kind": "b", "go": true,
        }));
        assert_eq!(f.text("name").as_deref(), Some("桌子"));
        assert_eq!((f.text("blank"), f.text("n")), (None, None));
        let e = f.required("blank").unwrap_err();
        assert_eq!(
            (e.status(), e.code(), e.field()),
            (422, "required", Some("blank"))
        );
        assert_eq!(f.date("on").unwrap().as_deref(), Some("2026-03-05"));
        assert_eq!(f.date("none").unwrap(), None);
        assert_eq!(f.date("due").unwrap_err().code(), "date_invalid");
        assert_eq!(f.required_date("none").unwrap_err().code(), "required");
        assert_eq!(f.one_of("kind", &["a", "b"], "").unwrap(), "b");
        assert_eq!(f.one_of("other", &["a", "b"], "a").unwrap(), "a");
        assert_eq!(
            f.one_of("other", &["a"], "").unwrap_err().code(),
            "not_in_vocabulary"
        );
        assert!(f.flag("go") && !f.flag("name"));
    }

    #[test]
    fn ids_are_one_or_more_distinct_and_bounded() {
        let f = form(json!({"none": [], "two": ["a", "b"], "twice": ["a", "a"], "odd": "a"}));
        assert_eq!(f.ids("two", 2).unwrap(), ["a", "b"]);
        for (field, max, code) in [
            ("none", 5, "none_selected"),
            ("odd", 5, "none_selected"),
            ("absent", 5, "none_selected"),
            ("two", 1, "too_many"),
            ("twice", 5, "named_twice"),
        ] {
            let e = f.ids(field, max).unwrap_err();
            assert_eq!((e.status(), e.code(), e.field()), (422, code, Some(field)));
        }
    }
}
