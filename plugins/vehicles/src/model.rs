//! The vehicle, its vocabularies and the pure checks (plate, VIN,
//! odometer, NEV), kept free of host calls so they test on the host.

use serde::{Deserialize, Serialize};
use tianshan_sdk::vocab::{Term, Vocab};
use tianshan_sdk::{Error, Result};

pub const ENERGY_TYPE: Vocab = Vocab::new(
    "energy_type",
    &[
        Term::new("gasoline", "汽油", "Gasoline"),
        Term::new("diesel", "柴油", "Diesel"),
        Term::new("hev", "油电混合动力(HEV)", "Hybrid (HEV)"),
        Term::new("phev", "插电式混合动力(PHEV)", "Plug-in hybrid (PHEV)"),
        Term::new("bev", "纯电动(BEV)", "Battery electric (BEV)"),
        Term::new("fcev", "燃料电池(FCEV)", "Fuel cell (FCEV)"),
    ],
);

/// Categories of the 2017 rules on official vehicles (党政机关公务用车管理办法).
pub const CATEGORY: Vocab = Vocab::new(
    "category",
    &[
        Term::new("confidential", "机要通信用车", "Confidential communication"),
        Term::new("emergency", "应急保障用车", "Emergency support"),
        Term::new("law_enforcement", "执法执勤用车", "Law enforcement"),
        Term::new("special", "特种专业技术用车", "Special technical"),
        Term::new("other", "其他用车", "Other"),
    ],
);

pub const STATE: Vocab = Vocab::new(
    "state",
    &[
        Term::new("ordered", "已批准待上牌", "Approved, awaiting plates"),
        Term::new("in_service", "在用", "In service"),
        Term::new("idle", "闲置", "Idle"),
        Term::new("repair", "维修中", "Under repair"),
        Term::new("scrapping", "报废审批中", "Being scrapped"),
        Term::new("scrapped", "已报废", "Scrapped"),
    ],
);

pub const PURCHASE_KIND: Vocab = Vocab::new(
    "kind",
    &[
        Term::new("new", "新增", "New"),
        Term::new("replacement", "更新", "Replacement"),
    ],
);

pub const VOCABS: &[&Vocab] = &[
    &ENERGY_TYPE,
    &CATEGORY,
    &STATE,
    &PURCHASE_KIND,
    &crate::trips::TRIP_STATUS,
    &crate::piles::CURRENT,
];

/// New-energy vehicles under the national definition: plug-in hybrids,
/// battery electric and fuel cell; a plain hybrid (HEV) is not one.
pub fn is_nev(energy_type: &str) -> bool {
    matches!(energy_type, "phev" | "bev" | "fcev")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vehicle {
    pub plate: String,
    pub vin: String,
    pub engine_no: String,
    pub brand: String,
    pub model: String,
    /// Litres; 0 for battery electric.
    pub displacement_l: f64,
    pub energy_type: String,
    /// Derived from `energy_type`; a body cannot set it.
    pub nev: bool,
    /// Fen.
    pub price: i64,
    pub registered_on: String,
    pub seats: u32,
    pub category: String,
    pub parking_lat: Option<f64>,
    pub parking_lon: Option<f64>,
    pub driver_ids: Vec<String>,
    pub odometer_km: f64,
    pub insurance_until: String,
    pub inspection_due: String,
    pub terminal_id: String,
    pub fuel_card: String,
    pub charging_card: String,
    pub state: String,
    /// The asset card in `assets`, once its keeper links it (for scrapping).
    pub asset_card_id: String,
    /// The purchase request it came from.
    pub purchase_id: String,
}

const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领警学";

/// A mainland plate: province, issuing-office letter, then five
/// characters (six for new-energy plates), letters without I and O.
pub fn plate_ok(plate: &str) -> bool {
    let chars: Vec<char> = plate.chars().collect();
    if !(7..=8).contains(&chars.len()) || !PROVINCES.contains(chars[0]) {
        return false;
    }
    if !chars[1].is_ascii_uppercase() {
        return false;
    }
    chars[2..].iter().enumerate().all(|(i, c)| {
        (c.is_ascii_digit() || (c.is_ascii_uppercase() && *c != 'I' && *c != 'O'))
            // The last one may be a special suffix (警, 学, 挂, …).
            || (i == chars.len() - 3 && "警学挂领使港澳".contains(*c))
    })
}

/// ISO 3779: 17 characters, digits and capitals without I, O and Q.
pub fn vin_ok(vin: &str) -> bool {
    vin.len() == 17
        && vin
            .chars()
            .all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"IOQ".contains(c)))
}

impl Vehicle {
    /// Trims, derives `nev`, and checks every field a person typed.
    pub fn normalise(&mut self) -> Result<()> {
        self.plate = self.plate.trim().to_uppercase();
        self.vin = self.vin.trim().to_uppercase();
        self.brand = self.brand.trim().to_string();
        self.model = self.model.trim().to_string();
        self.terminal_id = self.terminal_id.trim().to_string();
        crate::terminals::check_terminal(&self.terminal_id)?;
        if self.state.is_empty() {
            self.state = "in_service".into();
        }
        STATE.check("state", &self.state)?;
        ENERGY_TYPE.check("energy_type", &self.energy_type)?;
        CATEGORY.check("category", &self.category)?;
        self.nev = is_nev(&self.energy_type);
        // A vehicle approved for purchase has no plate or VIN yet.
        if self.state != "ordered" || !self.plate.is_empty() {
            if !plate_ok(&self.plate) {
                return Err(Error::validation("plate", "not a valid plate number")
                    .with_code("plate_invalid")
                    .with_param("plate", self.plate.clone()));
            }
            if !vin_ok(&self.vin) {
                return Err(
                    Error::validation("vin", "a VIN is 17 characters without I, O, Q")
                        .with_code("vin_invalid"),
                );
            }
        }
        if self.brand.is_empty() {
            return Err(Error::validation("brand", "brand is required").with_code("brand_required"));
        }
        if self.price < 0 {
            return Err(Error::validation("price", "price must not be negative")
                .with_code("amount_invalid"));
        }
        if !(0.0..=10.0).contains(&self.displacement_l) {
            return Err(
                Error::validation("displacement_l", "displacement is 0–10 litres")
                    .with_code("displacement_invalid"),
            );
        }
        if self.seats > 60 {
            return Err(Error::validation("seats", "at most 60 seats").with_code("seats_invalid"));
        }
        if !self.odometer_km.is_finite() || self.odometer_km < 0.0 {
            return Err(Error::validation("odometer_km", "odometer must be ≥ 0")
                .with_code("odometer_invalid"));
        }
        for (field, date) in [
            ("registered_on", &self.registered_on),
            ("insurance_until", &self.insurance_until),
            ("inspection_due", &self.inspection_due),
        ] {
            if !date.is_empty() && tianshan_sdk::dates::parse_date(date).is_none() {
                return Err(Error::validation(field, "a date YYYY-MM-DD").with_code("date_invalid"));
            }
        }
        if let (Some(lat), Some(lon)) = (self.parking_lat, self.parking_lon)
            && (!(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon))
        {
            return Err(
                Error::validation("parking_lat", "not a position").with_code("position_invalid")
            );
        }
        Ok(())
    }
}

/// An odometer reads only upwards.
pub fn odometer_moves_on(before: f64, after: f64) -> Result<()> {
    if after < before {
        return Err(
            Error::validation("odometer_km", "the odometer cannot go backwards")
                .with_code("odometer_decreased")
                .with_param("before", before)
                .with_param("after", after),
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Driver {
    pub name: String,
    pub licence_no: String,
    /// A1, A2, B1, B2, C1, C2 …
    pub licence_class: String,
    pub licence_expires: String,
    pub phone: String,
}

const LICENCE_CLASSES: &[&str] = &["A1", "A2", "A3", "B1", "B2", "C1", "C2", "C3", "C4", "C5"];

impl Driver {
    pub fn normalise(&mut self) -> Result<()> {
        self.name = self.name.trim().to_string();
        self.licence_class = self.licence_class.trim().to_uppercase();
        if self.name.is_empty() {
            return Err(Error::validation("name", "name is required").with_code("name_required"));
        }
        if !LICENCE_CLASSES.contains(&self.licence_class.as_str()) {
            return Err(
                Error::validation("licence_class", "a licence class such as C1")
                    .with_code("licence_class_invalid"),
            );
        }
        if tianshan_sdk::dates::parse_date(&self.licence_expires).is_none() {
            return Err(
                Error::validation("licence_expires", "a date YYYY-MM-DD").with_code("date_invalid")
            );
        }
        Ok(())
    }
}

/// The caps of one category, in the region's rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cap {
    pub category: String,
    /// Fen.
    pub price_max: i64,
    pub displacement_max_l: f64,
}

/// The region's purchase and scrapping rules (region-editable data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    pub nev_target_pct: f64,
    pub caps: Vec<Cap>,
    /// A vehicle may be scrapped once it is this old or has run this far.
    pub scrap_min_years: i64,
    pub scrap_min_km: f64,
}

impl Default for Rules {
    /// The 2017 rules' caps as the region ships them: 180,000 yuan and
    /// 1.8 L for general use, more for special technical vehicles.
    fn default() -> Rules {
        let cap = |category: &str, yuan: i64, litres: f64| Cap {
            category: category.into(),
            price_max: yuan * 100,
            displacement_max_l: litres,
        };
        Rules {
            nev_target_pct: 80.0,
            caps: vec![
                cap("confidential", 180_000, 1.8),
                cap("emergency", 250_000, 3.0),
                cap("law_enforcement", 180_000, 1.8),
                cap("special", 450_000, 3.0),
                cap("other", 180_000, 1.8),
            ],
            scrap_min_years: 8,
            scrap_min_km: 250_000.0,
        }
    }
}

/// What a purchase is checked against: this year's new and replaced
/// vehicles of the org so far and how many of them are new-energy.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct YearSoFar {
    pub total: u64,
    pub nev: u64,
}

/// The caps and the NEV rule for one request: the price and displacement
/// within the category's caps, and, for a request that is not new-energy,
/// this year's NEV share staying at or above the target after it.
pub fn check_purchase(
    rules: &Rules,
    category: &str,
    price: i64,
    displacement_l: f64,
    energy_type: &str,
    year: YearSoFar,
) -> Result<()> {
    let cap = rules
        .caps
        .iter()
        .find(|c| c.category == category)
        .ok_or_else(|| {
            Error::validation("category", "no cap for this category").with_code("cap_missing")
        })?;
    if price > cap.price_max {
        return Err(Error::validation("price", "above the category's price cap")
            .with_code("price_over_cap")
            .with_param("cap", cap.price_max));
    }
    if displacement_l > cap.displacement_max_l {
        return Err(
            Error::validation("displacement_l", "above the category's displacement cap")
                .with_code("displacement_over_cap")
                .with_param("cap", cap.displacement_max_l),
        );
    }
    if !is_nev(energy_type) {
        let share = 100.0 * year.nev as f64 / (year.total + 1) as f64;
        if share < rules.nev_target_pct {
            return Err(Error::validation(
                "energy_type",
                "this purchase must be a new-energy vehicle",
            )
            .with_code("nev_share_short")
            .with_param("share", (share * 10.0).round() / 10.0)
            .with_param("target", rules.nev_target_pct));
        }
    }
    Ok(())
}

/// A unit's headroom in a category: its quota less the vehicles it has
/// (scrapped ones free their slot) and the new ones already requested.
pub fn headroom(quota: u64, held: u64, requested: u64) -> i64 {
    quota as i64 - held as i64 - requested as i64
}

/// Whether a vehicle registered on `registered_on` with `odometer_km` may
/// be scrapped on `today` under `rules` (old enough or run far enough).
pub fn scrap_allowed(
    rules: &Rules,
    registered_on: &str,
    odometer_km: f64,
    today: &str,
) -> Result<()> {
    let days = tianshan_sdk::dates::days_between(registered_on, today).unwrap_or(0);
    if days >= rules.scrap_min_years * 365 || odometer_km >= rules.scrap_min_km {
        return Ok(());
    }
    Err(
        Error::validation("id", "neither old enough nor run far enough to scrap")
            .with_code("scrap_too_early")
            .with_param("years", rules.scrap_min_years)
            .with_param("km", rules.scrap_min_km),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_and_vins() {
        assert!(plate_ok("新A12345"));
        assert!(plate_ok("新AD12345"));
        assert!(plate_ok("新A1234警"));
        assert!(!plate_ok("XA12345"));
        assert!(!plate_ok("新a12345"));
        assert!(!plate_ok("新A1234O"));
        assert!(!plate_ok("新A123"));
        assert!(vin_ok("LSVAU2180N2183294"));
        assert!(!vin_ok("LSVAU2180N218329"));
        assert!(!vin_ok("LSVAU2180N218329I"));
    }

    #[test]
    fn nev_is_derived_and_hev_is_not_one() {
        let mut v = Vehicle {
            plate: " 新a12345 ".into(),
            vin: "lsvau2180n2183294".into(),
            brand: "比亚迪".into(),
            energy_type: "hev".into(),
            category: "other".into(),
            nev: true,
            ..Vehicle::default()
        };
        v.normalise().unwrap();
        assert_eq!(v.plate, "新A12345");
        assert!(!v.nev);
        v.energy_type = "bev".into();
        v.normalise().unwrap();
        assert!(v.nev);
        v.vin = "SHORT".into();
        assert_eq!(v.normalise().unwrap_err().code(), "vin_invalid");
    }

    #[test]
    fn an_odometer_never_goes_back() {
        assert!(odometer_moves_on(100.0, 100.0).is_ok());
        let e = odometer_moves_on(100.0, 99.9).unwrap_err();
        assert_eq!(
            (e.code(), e.field()),
            ("odometer_decreased", Some("odometer_km"))
        );
    }

    #[test]
    fn caps_and_the_nev_rule() {
        let rules = Rules::default();
        let year = YearSoFar { total: 4, nev: 4 };
        // 4 of 5 after a fuel car: 80 %, at the target.
        assert!(check_purchase(&rules, "other", 15_000_000, 1.5, "gasoline", year).is_ok());
        // 3 of 4 after one: 60 %: it must be new-energy.
        let short = YearSoFar { total: 3, nev: 3 };
        let e = check_purchase(&rules, "other", 15_000_000, 1.5, "gasoline", short).unwrap_err();
        assert_eq!(e.code(), "nev_share_short");
        assert!(check_purchase(&rules, "other", 15_000_000, 0.0, "bev", short).is_ok());
        let e = check_purchase(&rules, "other", 19_000_000, 0.0, "bev", year).unwrap_err();
        assert_eq!((e.code(), e.field()), ("price_over_cap", Some("price")));
        let e = check_purchase(&rules, "other", 15_000_000, 2.0, "phev", year).unwrap_err();
        assert_eq!(e.code(), "displacement_over_cap");
    }

    #[test]
    fn scrapping_follows_age_or_mileage() {
        let rules = Rules::default();
        assert!(scrap_allowed(&rules, "2017-01-01", 10.0, "2026-01-01").is_ok());
        assert!(scrap_allowed(&rules, "2024-01-01", 260_000.0, "2026-01-01").is_ok());
        let e = scrap_allowed(&rules, "2024-01-01", 10.0, "2026-01-01").unwrap_err();
        assert_eq!(e.code(), "scrap_too_early");
    }

    #[test]
    fn headroom_counts_requests_in_flight() {
        assert_eq!(headroom(3, 2, 0), 1);
        assert_eq!(headroom(3, 2, 1), 0);
    }
}
