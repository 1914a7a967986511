//! What every part takes: the caller, this year, a stale-revision refusal,
//! a date field, the search phrase.

use tianshan_sdk::prelude::*;

/// The signed-in caller; kernel-made calls have none.
pub fn caller() -> Result<Principal> {
    identity::caller().ok_or_else(|| Error::unauthorized("sign in first"))
}

/// The year in the region.
pub fn this_year() -> i32 {
    dates::today()[..4].parse().unwrap_or(2026)
}

pub fn year_param(text: &str) -> Result<i32> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| Error::invalid("year", "year_invalid", "a year between 2000 and 2100"))
}

/// 409 `stale`: someone saved since this copy was read.
pub fn stale(current: u64) -> Error {
    Error::new(
        409,
        "stale",
        "the document was changed since you opened it; reload it",
    )
    .with_param("revision", current)
}

/// An optional `YYYY-MM-DD` field; empty stays empty.
pub fn date_field(field: &str, code: &'static str, text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    if text.len() != 10 || dates::parse_date(text).is_none() {
        return Err(Error::invalid(field, code, "a date as YYYY-MM-DD"));
    }
    Ok(text.to_string())
}

/// Required text, trimmed.
pub fn required(field: &str, code: &'static str, text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid(field, code, format!("{field} is required")));
    }
    Ok(text.to_string())
}
