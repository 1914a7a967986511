//! Energy types and their coefficients as versioned data (折标系数, CO₂
//! factors), kept by the region. A statement uses the set in force for its
//! year; changing a set recomputes every statement it governs and
//! republishes their figures, and the kernel's history of the record is
//! the audit of who changed which coefficient.

use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, Doc, collection};

use crate::model::{self, FactorSet};

pub fn sets() -> Collection {
    collection("factor_sets")
}

/// The seeded set's id; later sets get kernel ids.
pub const DEFAULT_ID: &str = "fs-default";

pub fn routes(router: Router) -> Router {
    router
        .get("/factors", list)
        .requires("energy.view")
        .post("/factors", create)
        .requires("energy.configure")
        .put("/factors/{id}", update)
        .requires("energy.configure")
        .get("/factors/{id}/history", history)
        .requires("energy.view")
}

/// Seeds the default set at the install scope's org (the region) once.
pub fn seed() -> Result<()> {
    if sets().get::<FactorSet>(DEFAULT_ID)?.is_none() {
        sets().insert_with(Some(DEFAULT_ID), None, &model::default_factor_set())?;
    }
    Ok(())
}

/// Every set the caller sees (the region's are readable below it).
pub fn all() -> Result<Vec<Doc<FactorSet>>> {
    let mut out = sets().find().all::<FactorSet>(100)?;
    out.sort_by_key(|d| d.data.effective_from);
    Ok(out)
}

/// The set in force for `year`: the latest one effective by then.
pub fn for_year(year: i32) -> Result<Doc<FactorSet>> {
    all()?
        .into_iter()
        .rfind(|d| d.data.effective_from <= year)
        .ok_or_else(|| {
            Error::new(
                409,
                "no_factor_set",
                "no factor set is in force for this year",
            )
            .with_param("year", year)
        })
}

fn list(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "records": all()? })))
}

/// Only the region sets coefficients: one table for the whole region.
fn region_only() -> Result<()> {
    let org = crate::common::acting_org();
    match orgs::get(&org)? {
        Some(o) if o.level == "region" => Ok(()),
        _ => Err(Error::forbidden("factor sets are kept by the region").with_code("region_only")),
    }
}

fn create(req: &Request) -> Result<Response> {
    region_only()?;
    let set: FactorSet = req.json()?;
    set.validate()?;
    if all()?
        .iter()
        .any(|d| d.data.effective_from == set.effective_from)
    {
        return Err(
            Error::conflict("a factor set is already effective from this year")
                .with_code("factor_set_year_taken")
                .with_field("effective_from"),
        );
    }
    crate::statements::ensure_recomputable(set.effective_from)?;
    let doc = sets().insert(&set)?;
    let recomputed = crate::statements::recompute_from(set.effective_from)?;
    Ok(Response::json(&json!({ "set": doc, "recomputed": recomputed })).with_status(201))
}

fn update(req: &Request) -> Result<Response> {
    region_only()?;
    let doc: Doc<FactorSet> = sets().fetch(req.param("id")?)?;
    let set: FactorSet = req.json()?;
    set.validate()?;
    if all()?
        .iter()
        .any(|d| d.id != doc.id && d.data.effective_from == set.effective_from)
    {
        return Err(
            Error::conflict("a factor set is already effective from this year")
                .with_code("factor_set_year_taken")
                .with_field("effective_from"),
        );
    }
    let from = set.effective_from.min(doc.data.effective_from);
    crate::statements::ensure_recomputable(from)?;
    let saved = sets().update(&doc.id, doc.revision, &set)?;
    let recomputed = crate::statements::recompute_from(from)?;
    Ok(Response::json(
        &json!({ "set": saved, "recomputed": recomputed }),
    ))
}

fn history(req: &Request) -> Result<Response> {
    Ok(Response::json(
        &json!({ "history": sets().revisions(req.param("id")?)? }),
    ))
}
