//! Region rules (data, editable per region): the configuration standards
//! a plan line is checked against, and the value threshold above which a
//! disposal needs the region's approval. Stored at the region's org in a
//! `read-below` collection, so every unit under it reads them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::collection;

use crate::common::require;

/// 配置标准 for one category (or a category prefix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standard {
    pub category: String,
    /// Fen; 0 = no ceiling.
    #[serde(default)]
    pub max_unit_price: i64,
    /// Per person; 0 = no limit.
    #[serde(default)]
    pub max_per_person: f64,
    #[serde(default)]
    pub min_use_years: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Fen: a disposal whose total original value reaches this needs the
    /// region's approval after the parent administration's.
    pub disposal_region_threshold: i64,
    pub standards: Vec<Standard>,
}

impl Default for Rules {
    /// Defaults after the central general office equipment and furniture
    /// standard (财资〔2016〕27号); each region sets its own.
    fn default() -> Self {
        let s = |category: &str, yuan: i64, per_person: f64, years: i64| Standard {
            category: category.into(),
            max_unit_price: yuan * 100,
            max_per_person: per_person,
            min_use_years: years,
        };
        Rules {
            disposal_region_threshold: 200_000 * 100,
            standards: vec![
                s("A020101", 5_000, 1.0, 6),
                s("A020102", 7_000, 0.5, 6),
                s("A020204", 1_200, 0.5, 6),
                s("A020203", 6_000, 0.1, 6),
                s("A020201", 30_000, 0.05, 6),
                s("A020202", 10_000, 0.05, 6),
                s("A020601", 6_000, 0.5, 8),
                s("A050101", 3_000, 1.0, 15),
                s("A050102", 1_000, 1.0, 15),
                s("A050103", 2_500, 1.0, 15),
            ],
        }
    }
}

impl Rules {
    /// The most specific standard for `category`.
    pub fn standard_for(&self, category: &str) -> Option<&Standard> {
        self.standards
            .iter()
            .filter(|s| category.starts_with(s.category.trim_end_matches('0')))
            .max_by_key(|s| s.category.trim_end_matches('0').len())
    }

    fn validate(&self) -> Result<()> {
        if self.disposal_region_threshold <= 0 {
            return Err(Error::validation(
                "disposal_region_threshold",
                "the threshold must be a positive amount in fen",
            )
            .with_code("amount_positive"));
        }
        for (i, s) in self.standards.iter().enumerate() {
            if crate::categories::all().iter().all(|c| {
                !c.code.starts_with(s.category.trim_end_matches('0')) || s.category.is_empty()
            }) {
                return Err(Error::validation(
                    format!("standards[{i}].category"),
                    format!("unknown category {:?}", s.category),
                )
                .with_code("category_unknown")
                .with_param("category", s.category.as_str()));
            }
            if s.max_unit_price < 0 || s.max_per_person < 0.0 || s.min_use_years < 0 {
                return Err(Error::validation(
                    format!("standards[{i}]"),
                    "limits must not be negative",
                )
                .with_code("limits_negative"));
            }
        }
        Ok(())
    }
}

const RULES_ID: &str = "region-rules";

/// The rules in force for the caller: the nearest record up the tree
/// (there is one per region), else the defaults.
pub fn current() -> Result<Rules> {
    let page = collection("rules").find().limit(10).page::<Rules>()?;
    Ok(page
        .records
        .into_iter()
        .max_by_key(|d| d.updated_at)
        .map(|d| d.data)
        .unwrap_or_default())
}

pub fn routes(router: Router) -> Router {
    router.get("/rules", show).put("/rules", save)
}

fn show(_: &Request) -> Result<Response> {
    require("assets.view")?;
    Ok(Response::json(&current()?))
}

/// Sets the region's rules, so units cannot loosen their own standards:
/// the platform administrator places them; afterwards the administration
/// at their org may change them too.
fn save(req: &Request) -> Result<Response> {
    require("assets.configure")?;
    let caller = identity::caller().ok_or_else(|| Error::unauthorized("login required"))?;
    let input = Form::of(req)?;
    let rules: Rules = serde_json::from_value(Value::Object(input.0)).map_err(|e| {
        Error::validation("body", format!("rules do not fit: {e}")).with_code("invalid_body")
    })?;
    rules.validate()?;
    let rules_coll = collection("rules");
    // Who first places the region's record decides where it lives; only
    // the platform administrator may, so no prefecture can take the
    // region's place. After that, the administration at the record's org
    // (or the platform administrator) keeps it current.
    let platform_admin = caller.roles.iter().any(|r| r == "platform-admin");
    match rules_coll.get::<Rules>(RULES_ID)? {
        Some(doc) if doc.org == caller.org_id || platform_admin => Ok(Response::json(
            &rules_coll.update(RULES_ID, doc.revision, &rules)?,
        )),
        Some(_) => Err(Error::forbidden(
            "the region's rules are set by the region's administration",
        )
        .with_code("rules_region_only")),
        None if platform_admin => {
            Ok(
                Response::json(&rules_coll.insert_with(Some(RULES_ID), None, &rules)?)
                    .with_status(201),
            )
        }
        None => Err(Error::forbidden(
            "the region's rules are first set by the platform administrator, at the region",
        )
        .with_code("rules_platform_first")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_standard_wins() {
        let mut rules = Rules::default();
        rules.standards.push(Standard {
            category: "A020100".into(),
            max_unit_price: 1,
            max_per_person: 1.0,
            min_use_years: 1,
        });
        assert_eq!(
            rules.standard_for("A020101").unwrap().max_unit_price,
            500_000
        );
        assert_eq!(rules.standard_for("A020105").unwrap().max_unit_price, 1);
        assert!(rules.standard_for("A010101").is_none());
        assert!(rules.validate().is_ok());
    }
}
