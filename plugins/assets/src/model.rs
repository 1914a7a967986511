//! The asset card and the vocabularies it uses.
//!
//! Money is in fen (分, integer hundredths of a yuan) so sums are exact;
//! dates are `YYYY-MM-DD`, months `YYYY-MM`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tianshan_sdk::vocab::{Term, Vocab};
use tianshan_sdk::{Error, Result};

use crate::categories;
use crate::dates;

/// How the unit came to hold the asset (取得方式).
pub const ACQUISITION_METHOD: Vocab = Vocab::new(
    "acquisition_method",
    &[
        Term::new("purchase", "购置", "Purchase"),
        Term::new("transfer_in", "调入", "Transfer in"),
        Term::new("donation", "接受捐赠", "Donation"),
        Term::new("swap", "置换", "Swap"),
        Term::new("self_built", "自建", "Self-built"),
        Term::new("surplus", "盘盈", "Surplus"),
        Term::new("other", "其他", "Other"),
    ],
);

/// 价值类型.
pub const VALUE_TYPE: Vocab = Vocab::new(
    "value_type",
    &[
        Term::new("cost", "原值", "Cost"),
        Term::new("provisional", "暂估值", "Provisional"),
        Term::new("replacement", "重置值", "Replacement"),
        Term::new("appraised", "评估值", "Appraised"),
        Term::new("nominal", "名义金额", "Nominal"),
    ],
);

/// 采购组织形式.
pub const PROCUREMENT_MODE: Vocab = Vocab::new(
    "procurement_mode",
    &[
        Term::new(
            "government_centralised",
            "政府集中采购",
            "Government centralised",
        ),
        Term::new(
            "department_centralised",
            "部门集中采购",
            "Department centralised",
        ),
        Term::new("decentralised", "分散采购", "Decentralised"),
        Term::new("none", "非政府采购", "Not procured"),
    ],
);

/// 使用状况.
pub const USE_STATUS: Vocab = Vocab::new(
    "use_status",
    &[
        Term::new("in_use", "在用", "In use"),
        Term::new("idle", "闲置", "Idle"),
        Term::new("rented", "出租", "Rented"),
        Term::new("lent", "出借", "Lent"),
        Term::new("in_warehouse", "在公物仓", "In the warehouse"),
        Term::new("repairing", "维修中", "Under repair"),
        Term::new("awaiting_disposal", "待处置", "Awaiting disposal"),
    ],
);

/// Lifecycle states of a card: a draft becomes `pending` while its
/// registration is approved, then `booked` (在账); `incoming` is a card a
/// transfer created at the receiving unit until it confirms receipt;
/// `transferred` and `disposed` are the reductions (terminal).
pub const STATE: Vocab = Vocab::new(
    "state",
    &[
        Term::new("draft", "草稿", "Draft"),
        Term::new("pending", "登记审批中", "Pending"),
        Term::new("booked", "在账", "Booked"),
        Term::new("incoming", "待接收", "Incoming"),
        Term::new("transferred", "已调出", "Transferred"),
        Term::new("disposed", "已处置", "Disposed"),
    ],
);

/// Every vocabulary of a card, as `GET /vocab` serves them to the UI.
pub const VOCABS: &[&Vocab] = &[
    &ACQUISITION_METHOD,
    &VALUE_TYPE,
    &PROCUREMENT_MODE,
    &USE_STATUS,
    &STATE,
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
    /// The sending unit of a transferred-in card: the receiver cannot read
    /// the sender's card, so its page names the sender from this.
    pub transferred_from_org: Option<String>,
    /// The Excel import that brought the card in, if one did.
    pub import_id: Option<String>,
    /// 备注.
    pub note: String,
    /// What identifies an imported row without an asset number of the
    /// unit's own, so the same file imported twice is recognised.
    pub import_key: Option<String>,
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

impl Card {
    /// Fills what follows from the category and checks every field; the
    /// error names the first field that is wrong.
    pub fn normalise(&mut self) -> Result<()> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(
                Error::validation("name", "name is required (at most 100 characters)")
                    .with_code("name_required"),
            );
        }
        let category = categories::find(&self.category).ok_or_else(|| {
            Error::validation(
                "category",
                format!(
                    "unknown category {:?} (GB/T 14885-2022 code)",
                    self.category
                ),
            )
            .with_code("category_unknown")
            .with_param("category", self.category.clone())
        })?;
        self.category_top = self.category.chars().take(3).collect();
        if self.measure_unit.trim().is_empty() {
            self.measure_unit = category.unit.to_string();
        }
        if self.quantity == 0 {
            self.quantity = 1;
        }
        if self.quantity < 1 {
            return Err(Error::validation("quantity", "quantity must be at least 1")
                .with_code("quantity_min")
                .with_code("quantity_min"));
        }
        if self.quantity > 1 && !category.batch {
            return Err(Error::validation(
                "quantity",
                format!(
                    "category {} takes one card per item; batch cards are for furniture and books",
                    category.code
                ),
            )
            .with_code("one_card_per_item")
            .with_param("category", category.code)
            .with_param("name", category.name_zh));
        }
        self.batch = self.quantity > 1;
        if self.acquisition_method.is_empty() {
            self.acquisition_method = "purchase".into();
        }
        ACQUISITION_METHOD.check("acquisition_method", &self.acquisition_method)?;
        if self.value_type.is_empty() {
            self.value_type = "cost".into();
        }
        VALUE_TYPE.check("value_type", &self.value_type)?;
        if self.procurement_mode.is_empty() {
            self.procurement_mode = "none".into();
        }
        PROCUREMENT_MODE.check("procurement_mode", &self.procurement_mode)?;
        dates::parse_date(&self.acquired_on).ok_or_else(|| {
            Error::validation("acquired_on", "acquired_on must be YYYY-MM-DD")
                .with_code("date_invalid")
        })?;
        if self.booked_on.is_empty() {
            self.booked_on = self.acquired_on.clone();
        }
        dates::parse_date(&self.booked_on).ok_or_else(|| {
            Error::validation("booked_on", "booked_on must be YYYY-MM-DD").with_code("date_invalid")
        })?;
        if !self.warranty_until.is_empty() && dates::parse_date(&self.warranty_until).is_none() {
            return Err(
                Error::validation("warranty_until", "warranty_until must be YYYY-MM-DD")
                    .with_code("date_invalid"),
            );
        }
        if self.original_value < 0 {
            return Err(Error::validation(
                "original_value",
                "original_value (fen) must not be negative",
            )
            .with_code("value_negative"));
        }
        if self.value_type == "nominal" && self.original_value != 100 {
            return Err(Error::validation(
                "original_value",
                "an asset at nominal value is booked at ¥1 (100 fen)",
            )
            .with_code("nominal_value"));
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
            )
            .with_code("funding_mismatch"));
        }
        if self.use_status.is_empty() {
            self.use_status = "in_use".into();
        }
        USE_STATUS.check("use_status", &self.use_status)?;
        if self.state.is_empty() {
            self.state = "draft".into();
        }
        STATE.check("state", &self.state)?;
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
            )
            .with_code("life_required"));
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
                )
                .with_code("ext_unknown"));
            }
            if !(value.is_string() || value.is_number() || value.is_null()) {
                return Err(Error::validation(
                    format!("ext.{key}"),
                    "category fields hold text or numbers",
                )
                .with_code("ext_value_type"));
            }
        }
        if self.photos.len() + self.attachments.len() > 50 {
            return Err(Error::validation(
                "attachments",
                "at most 50 photos and attachments per card",
            )
            .with_code("too_many")
            .with_param("max", 50));
        }
        Ok(())
    }

    /// On the books: counted in totals and open to documents.
    pub fn is_booked(&self) -> bool {
        self.state == "booked"
    }

    /// The card a receiving unit gets for `card` (a transfer, a
    /// reallocation): incoming until it confirms, numbered in its own
    /// series, in no room and with no custodian yet.
    pub fn incoming(card: &tianshan_sdk::storage::Doc<Card>) -> Card {
        Card {
            state: "incoming".into(),
            acquisition_method: "transfer_in".into(),
            transferred_from: Some(card.id.clone()),
            transferred_from_org: Some(card.org.clone()),
            asset_no: String::new(),
            locked_by: None,
            reduced_on: String::new(),
            department: String::new(),
            custodian: String::new(),
            location: String::new(),
            ..card.data.clone()
        }
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
            )
            .with_param("asset_no", self.asset_no.clone())
            .with_param("document", doc.clone())),
            None => Ok(()),
        }
    }
}

pub use tianshan_sdk::money::{fen_to_yuan_number, yuan_text as fen_to_yuan, yuan_to_fen};

/// What a new card's values must be beyond their form (issue 15.2): an
/// acquisition is not in the future, and a card has a value (an asset
/// without a known cost is booked at the nominal ¥1). Answers (field,
/// code, zh-CN, en) for each failure, so a form and an import can both
/// show every one.
pub fn plausibility(card: &Card, today: &str) -> Vec<(&'static str, &'static str, String, String)> {
    let mut out = Vec::new();
    if !today.is_empty() && card.acquired_on.as_str() > today {
        out.push((
            "acquired_on",
            "date_in_future",
            format!("取得日期 {} 晚于今天（{today}）", card.acquired_on),
            format!("acquired_on {} is after today ({today})", card.acquired_on),
        ));
    }
    if card.original_value == 0 {
        out.push((
            "original_value",
            "value_zero",
            "原值不能为 0；成本不详的资产按名义金额 1 元入账".to_string(),
            "the original value cannot be ¥0; an asset of unknown cost is booked at the nominal ¥1"
                .to_string(),
        ));
    }
    out
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
    fn future_dates_and_zero_values_are_implausible() {
        let card = Card {
            acquired_on: "2030-01-01".into(),
            original_value: 0,
            ..laptop()
        };
        let fields: Vec<&str> = plausibility(&card, "2026-12-01")
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(fields, vec!["acquired_on", "original_value"]);
        assert!(plausibility(&laptop(), "2026-12-01").is_empty());
    }
}
