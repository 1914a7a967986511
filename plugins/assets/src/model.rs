//! The asset card and the vocabularies it uses.
//!
//! Money is in fen (分, integer hundredths of a yuan) so sums are exact;
//! dates are `YYYY-MM-DD`, months `YYYY-MM`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tianshan_sdk::{Error, Result};

use crate::categories;
use crate::dates;

/// How the unit came to hold the asset (取得方式).
pub const ACQUISITION_METHODS: &[&str] = &[
    "purchase",
    "transfer_in",
    "donation",
    "swap",
    "self_built",
    "surplus",
    "other",
];

/// 价值类型.
pub const VALUE_TYPES: &[&str] = &["cost", "provisional", "replacement", "appraised", "nominal"];

/// 采购组织形式.
pub const PROCUREMENT_MODES: &[&str] = &[
    "government_centralised",
    "department_centralised",
    "decentralised",
    "none",
];

/// 使用状况.
pub const USE_STATUSES: &[&str] = &[
    "in_use",
    "idle",
    "rented",
    "lent",
    "in_warehouse",
    "repairing",
    "awaiting_disposal",
];

/// Lifecycle states of a card: a draft becomes `pending` while its
/// registration is approved, then `booked` (在账); `incoming` is a card a
/// transfer created at the receiving unit until it confirms receipt;
/// `transferred` and `disposed` are the reductions (terminal).
pub const STATES: &[&str] = &[
    "draft",
    "pending",
    "booked",
    "incoming",
    "transferred",
    "disposed",
];

/// An asset card (资产卡片).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Card {
    pub asset_no: String,
    pub name: String,
    /// GB/T 14885-2022 code.
    pub category: String,
    /// The top-level group of `category` (`A02`), for roll-ups.
    pub category_top: String,
    pub spec: String,
    pub brand: String,
    /// Above 1 only on batch cards (furniture, books).
    pub quantity: i64,
    pub measure_unit: String,
    /// Set on batch cards: one card stands for `quantity` identical items.
    pub batch: bool,
    pub batch_id: Option<String>,
    pub acquisition_method: String,
    pub acquired_on: String,
    pub booked_on: String,
    pub value_type: String,
    /// Fen. `funding_fiscal + funding_other == original_value`.
    pub original_value: i64,
    pub funding_fiscal: i64,
    pub funding_other: i64,
    pub procurement_mode: String,
    pub contract_no: String,
    pub invoice_no: String,
    pub supplier: String,
    pub warranty_until: String,
    pub voucher_no: String,
    pub department: String,
    pub custodian: String,
    /// The room (存放地点).
    pub location: String,
    pub use_status: String,
    pub state: String,
    /// The open document holding this card; a locked card cannot enter
    /// another document or be edited.
    pub locked_by: Option<String>,
    pub depreciable: bool,
    pub life_months: i64,
    /// Fen, booked by the monthly depreciation run.
    pub accumulated_depreciation: i64,
    pub net_value: i64,
    /// The last month depreciation was booked for.
    pub depreciated_through: String,
    /// The month the card left the books (transfer out or disposal).
    pub reduced_on: String,
    pub disposal_method: String,
    /// Rent or lend terms while `use_status` is rented or lent.
    pub lease: Option<Value>,
    /// Card ids the kernel's file store holds.
    pub photos: Vec<String>,
    pub attachments: Vec<String>,
    /// Category-specific fields (vehicle: plate, vin, …; house: certificate,
    /// address, floor_area, …; land; software: licences).
    pub ext: Map<String, Value>,
    /// Where a transferred-in card came from (card id at the sending unit).
    pub transferred_from: Option<String>,
    /// The Excel import that brought the card in, if one did.
    pub import_id: Option<String>,
}

/// Fields a template asks for, beyond the common card.
pub fn template_fields(template: &str) -> &'static [&'static str] {
    match template {
        "vehicle" => &[
            "plate",
            "vin",
            "engine_no",
            "displacement",
            "fuel",
            "establishment",
        ],
        "house" => &[
            "certificate",
            "address",
            "floor_area",
            "structure",
            "completed_on",
        ],
        "land" => &["certificate", "address", "land_area", "land_use"],
        "software" => &["licences", "licence_until", "version"],
        _ => &[],
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}

impl Card {
    /// Fills what follows from the category and checks every field; the
    /// error names the first field that is wrong.
    pub fn normalise(&mut self) -> Result<()> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(Error::validation(
                "name",
                "name is required (at most 100 characters)",
            ));
        }
        let category = categories::find(&self.category).ok_or_else(|| {
            Error::validation(
                "category",
                format!(
                    "unknown category {:?} (GB/T 14885-2022 code)",
                    self.category
                ),
            )
        })?;
        self.category_top = self.category.chars().take(3).collect();
        if self.measure_unit.trim().is_empty() {
            self.measure_unit = category.unit.to_string();
        }
        if self.quantity == 0 {
            self.quantity = 1;
        }
        if self.quantity < 1 {
            return Err(Error::validation("quantity", "quantity must be at least 1"));
        }
        if self.quantity > 1 && !category.batch {
            return Err(Error::validation(
                "quantity",
                format!(
                    "category {} takes one card per item; batch cards are for furniture and books",
                    category.code
                ),
            ));
        }
        self.batch = self.quantity > 1;
        if self.acquisition_method.is_empty() {
            self.acquisition_method = "purchase".into();
        }
        one_of(
            "acquisition_method",
            &self.acquisition_method,
            ACQUISITION_METHODS,
        )?;
        if self.value_type.is_empty() {
            self.value_type = "cost".into();
        }
        one_of("value_type", &self.value_type, VALUE_TYPES)?;
        if self.procurement_mode.is_empty() {
            self.procurement_mode = "none".into();
        }
        one_of(
            "procurement_mode",
            &self.procurement_mode,
            PROCUREMENT_MODES,
        )?;
        dates::parse_date(&self.acquired_on)
            .ok_or_else(|| Error::validation("acquired_on", "acquired_on must be YYYY-MM-DD"))?;
        if self.booked_on.is_empty() {
            self.booked_on = self.acquired_on.clone();
        }
        dates::parse_date(&self.booked_on)
            .ok_or_else(|| Error::validation("booked_on", "booked_on must be YYYY-MM-DD"))?;
        if !self.warranty_until.is_empty() && dates::parse_date(&self.warranty_until).is_none() {
            return Err(Error::validation(
                "warranty_until",
                "warranty_until must be YYYY-MM-DD",
            ));
        }
        if self.original_value < 0 {
            return Err(Error::validation(
                "original_value",
                "original_value (fen) must not be negative",
            ));
        }
        if self.value_type == "nominal" && self.original_value != 100 {
            return Err(Error::validation(
                "original_value",
                "an asset at nominal value is booked at ¥1 (100 fen)",
            ));
        }
        if self.funding_fiscal == 0 && self.funding_other == 0 {
            self.funding_fiscal = self.original_value;
        }
        if self.funding_fiscal < 0
            || self.funding_other < 0
            || self.funding_fiscal + self.funding_other != self.original_value
        {
            return Err(Error::validation(
                "funding_fiscal",
                "fiscal and non-fiscal funding must add up to the original value",
            ));
        }
        if self.use_status.is_empty() {
            self.use_status = "in_use".into();
        }
        one_of("use_status", &self.use_status, USE_STATUSES)?;
        if self.state.is_empty() {
            self.state = "draft".into();
        }
        one_of("state", &self.state, STATES)?;
        // Government accounting: no depreciation for land, relics, books,
        // special animals and plants, or assets at nominal value.
        self.depreciable = category.depreciable && self.value_type != "nominal";
        if self.life_months == 0 {
            self.life_months = category.life_years * 12;
        }
        if self.depreciable && self.life_months <= 0 {
            return Err(Error::validation(
                "life_months",
                "a depreciable asset needs a life in months",
            ));
        }
        if self.depreciated_through.is_empty() {
            self.net_value = self.original_value - self.accumulated_depreciation;
        }
        for (key, value) in &self.ext {
            if !template_fields(category.template).contains(&key.as_str()) {
                return Err(Error::validation(
                    format!("ext.{key}"),
                    format!(
                        "{key} is not a field of {} cards (fields: {})",
                        category.template,
                        template_fields(category.template).join(", ")
                    ),
                ));
            }
            if !(value.is_string() || value.is_number() || value.is_null()) {
                return Err(Error::validation(
                    format!("ext.{key}"),
                    "category fields hold text or numbers",
                ));
            }
        }
        if self.photos.len() + self.attachments.len() > 50 {
            return Err(Error::validation(
                "attachments",
                "at most 50 photos and attachments per card",
            ));
        }
        Ok(())
    }

    /// On the books: counted in totals and open to documents.
    pub fn is_booked(&self) -> bool {
        self.state == "booked"
    }

    pub fn ensure_free(&self, id: &str) -> Result<()> {
        match &self.locked_by {
            Some(doc) => Err(Error::new(
                409,
                "card_locked",
                format!(
                    "card {} ({id}) is held by open document {doc}; finish or withdraw that first",
                    self.asset_no
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Parses an amount in yuan (`"5200.50"`, `5200.5`) into fen.
pub fn yuan_to_fen(value: &Value) -> Option<i64> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().replace([',', '，', '¥', '￥'], ""),
        _ => return None,
    };
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text.as_str(), ""),
    };
    if frac.len() > 2 || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let negative = whole.starts_with('-');
    let whole: i64 = whole
        .trim_start_matches('-')
        .parse()
        .ok()
        .or(if whole.is_empty() { Some(0) } else { None })?;
    let mut cents: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    cents += whole.checked_mul(100)?;
    Some(if negative { -cents } else { cents })
}

/// Fen as a yuan number, for spreadsheets and charts.
pub fn fen_to_yuan_number(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// Fen as yuan text with two decimals.
pub fn fen_to_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn laptop() -> Card {
        Card {
            name: "笔记本电脑".into(),
            category: "A020102".into(),
            acquired_on: "2024-03-15".into(),
            original_value: 650_000,
            ..Card::default()
        }
    }

    #[test]
    fn normalise_fills_from_the_category() {
        let mut card = laptop();
        card.normalise().unwrap();
        assert_eq!(card.category_top, "A02");
        assert_eq!(card.life_months, 72);
        assert!(card.depreciable);
        assert_eq!(card.funding_fiscal, 650_000);
        assert_eq!(card.measure_unit, "台");
        assert_eq!(card.state, "draft");
        assert_eq!(card.net_value, 650_000);
    }

    #[test]
    fn normalise_names_the_wrong_field() {
        let mut card = Card {
            category: "Z999".into(),
            ..laptop()
        };
        assert_eq!(card.normalise().unwrap_err().field(), Some("category"));
        let mut card = Card {
            quantity: 20,
            ..laptop()
        };
        assert_eq!(card.normalise().unwrap_err().field(), Some("quantity"));
        let mut card = Card {
            funding_fiscal: 1,
            funding_other: 1,
            ..laptop()
        };
        assert_eq!(
            card.normalise().unwrap_err().field(),
            Some("funding_fiscal")
        );
        let mut card = laptop();
        card.ext.insert("plate".into(), json!("新A12345"));
        assert_eq!(card.normalise().unwrap_err().field(), Some("ext.plate"));
    }

    #[test]
    fn land_books_and_nominal_assets_do_not_depreciate() {
        let mut land = Card {
            category: "A010300".into(),
            ..laptop()
        };
        land.normalise().unwrap();
        assert!(!land.depreciable);
        let mut nominal = Card {
            value_type: "nominal".into(),
            original_value: 100,
            ..laptop()
        };
        nominal.normalise().unwrap();
        assert!(!nominal.depreciable);
    }

    #[test]
    fn batch_cards_only_where_the_category_allows() {
        let mut chairs = Card {
            name: "办公椅".into(),
            category: "A050102".into(),
            quantity: 40,
            ..laptop()
        };
        chairs.normalise().unwrap();
        assert!(chairs.batch);
    }

    #[test]
    fn yuan_parses_exactly() {
        assert_eq!(yuan_to_fen(&json!("5200.5")), Some(520_050));
        assert_eq!(yuan_to_fen(&json!("¥1,200.05")), Some(120_005));
        assert_eq!(yuan_to_fen(&json!(3)), Some(300));
        assert_eq!(yuan_to_fen(&json!("0.1")), Some(10));
        assert_eq!(yuan_to_fen(&json!("1.234")), None);
        assert_eq!(yuan_to_fen(&json!("abc")), None);
        assert_eq!(fen_to_yuan(520_050), "5200.50");
        assert_eq!(fen_to_yuan(-5), "-0.05");
    }
}
