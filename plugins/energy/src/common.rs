//! Parsing of the path and query values every part takes: an org the
//! caller reaches, a year, a month.

use tianshan_sdk::prelude::*;

/// An org id or code the caller may read energy figures of, as its id.
/// An org outside the caller's reach answers like one that does not exist.
pub fn org_in_reach(field: &str, id_or_code: &str) -> Result<String> {
    let org = orgs::get(id_or_code)?.ok_or_else(|| {
        Error::not_found("no such org")
            .with_code("org_unknown")
            .with_field(field)
    })?;
    if !authz::allowed_at("energy.view", &org.id) {
        return Err(Error::not_found("no such org")
            .with_code("org_unknown")
            .with_field(field));
    }
    Ok(org.id)
}

/// The acting org (the kernel's decision, never the payload's).
pub fn acting_org() -> String {
    identity::caller().map(|p| p.org_id).unwrap_or_default()
}

pub fn year(field: &str, text: &str) -> Result<i32> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| Error::invalid(field, "year_invalid", "a year between 2000 and 2100"))
}

/// A `YYYY-MM` month: its index and text.
pub fn month(field: &str, text: &str) -> Result<(i64, String)> {
    let index = dates::parse_month(text.trim())
        .filter(|i| (2000 * 12..=2100 * 12).contains(i))
        .ok_or_else(|| Error::invalid(field, "period_invalid", "a month as YYYY-MM"))?;
    Ok((index, dates::month_text(index)))
}
