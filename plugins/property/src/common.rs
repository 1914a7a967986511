//! Small shared pieces: the collections, where an org sits in the 2014
//! standard, and the standard itself as the region keeps it.

use std::collections::HashMap;

use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, collection};

use crate::model::{self, Standard};

pub fn compounds() -> Collection {
    collection("compounds")
}
pub fn buildings() -> Collection {
    collection("buildings")
}
pub fn floors() -> Collection {
    collection("floors")
}
pub fn rooms() -> Collection {
    collection("rooms")
}
pub fn occupancies() -> Collection {
    collection("occupancies")
}
pub fn standards() -> Collection {
    collection("standards")
}
pub fn allocations() -> Collection {
    collection("allocations")
}

/// The organ level (provincial / municipal / county) of an org: its own
/// level's, or for a unit the level of the first administrative org above.
pub fn organ_level(org_id: &str) -> Result<&'static str> {
    let mut current = org_id.to_string();
    for _ in 0..8 {
        let Some(org) = orgs::get(&current)? else {
            break;
        };
        if let Some(level) = model::organ_level_of(&org.level) {
            return Ok(level);
        }
        match org.parent {
            Some(parent) => current = parent,
            None => break,
        }
    }
    // A unit hanging off nothing administrative: the strictest standard.
    Ok("county")
}

/// Organ levels looked up once per request.
#[derive(Default)]
pub struct Levels(HashMap<String, &'static str>);

impl Levels {
    pub fn of(&mut self, org: &str) -> Result<&'static str> {
        if let Some(level) = self.0.get(org) {
            return Ok(level);
        }
        let level = organ_level(org)?;
        self.0.insert(org.to_string(), level);
        Ok(level)
    }
}

/// The standard as stored (the region may have edited it), falling back
/// to the 2014 values for a rank nobody stored.
pub struct Standards(HashMap<String, f64>);

impl Standards {
    pub fn load() -> Result<Standards> {
        let mut map: HashMap<String, f64> = model::STANDARD_2014
            .iter()
            .map(|(rank, m2)| (rank.to_string(), *m2))
            .collect();
        let page = standards().find().limit(200).page::<Standard>()?;
        for doc in page.records {
            map.insert(doc.data.rank, doc.data.m2);
        }
        Ok(Standards(map))
    }

    pub fn m2(&self, rank: &str) -> Option<f64> {
        self.0.get(rank).copied()
    }
}

/// A date field as `YYYY-MM-DD`, or 422 `invalid_date` on it.
pub fn date(field: &str, text: &str) -> Result<String> {
    tianshan_sdk::dates::parse_date(text)
        .map(tianshan_sdk::dates::date_text)
        .ok_or_else(|| model::invalid(field, "invalid_date", "expected YYYY-MM-DD"))
}

pub fn required(field: &str, text: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(model::invalid(field, "required", "must not be empty"));
    }
    if t.chars().count() > 200 {
        return Err(model::invalid(field, "too_long", "at most 200 characters"));
    }
    Ok(t.to_string())
}

pub fn area(field: &str, v: f64) -> Result<f64> {
    if model::area_ok(v) {
        Ok(model::round2(v))
    } else {
        Err(model::invalid(field, "area_invalid", "an area above 0 m²"))
    }
}
