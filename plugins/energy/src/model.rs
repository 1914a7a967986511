//! Records, vocabularies and the pure rules of the energy statistics:
//! conversion to standard coal (kgce) and CO₂ through a versioned factor
//! set, the intensities the plan tracks, annualising a year to date and
//! the review states. Everything here is unit-tested without a kernel.

use serde::{Deserialize, Serialize};
use tianshan_sdk::prelude::*;
use tianshan_sdk::vocab::{Term, Vocab};

/// The plan's base year (the 14th Five-Year Plan compares 2025 with 2020).
pub const BASE_YEAR: i32 = 2020;

const fn term(code: &'static str, zh: &'static str, en: &'static str) -> Term {
    Term::new(code, zh, en)
}

/// 单位性质: the institution categories the summary forms are built by.
pub static NATURE: Vocab = Vocab::new(
    "nature",
    &[
        term("organ", "国家机关", "Government organ"),
        term("party", "党的机关", "Party organ"),
        term("people_congress", "人大机关", "People's congress"),
        term("cppcc", "政协机关", "CPPCC organ"),
        term("judicial", "审判检察机关", "Court or procuratorate"),
        term("education", "教育事业单位", "Education institution"),
        term("health", "卫生事业单位", "Health institution"),
        term(
            "culture",
            "文化体育事业单位",
            "Culture or sports institution",
        ),
        term("other", "其他事业单位", "Other public institution"),
    ],
);

/// 分项: the sub-items of the 2008 sub-metering guide.
pub static SUB_ITEM: Vocab = Vocab::new(
    "sub_item",
    &[
        term("total", "总表", "Main meter"),
        term("lighting", "照明插座", "Lighting and sockets"),
        term("hvac", "空调", "Air-conditioning"),
        term("power", "动力", "Power (lifts, pumps, fans)"),
        term("special", "特殊用电", "Special (data centre, kitchen)"),
    ],
);

pub static METER_KIND: Vocab = Vocab::new(
    "meter_kind",
    &[
        term("online", "在线计量（MQTT）", "Online (MQTT)"),
        term("manual", "人工抄表", "Read by hand"),
    ],
);

/// 建筑类型 for the quotas (能耗定额).
pub static BUILDING_TYPE: Vocab = Vocab::new(
    "building_type",
    &[
        term("office", "办公建筑", "Office building"),
        term("school", "学校", "School"),
        term("hospital", "医院", "Hospital"),
        term("venue", "场馆", "Venue"),
    ],
);

/// Thermal climate zones of GB 50176; Xinjiang spans the first two.
pub static CLIMATE_ZONE: Vocab = Vocab::new(
    "climate_zone",
    &[
        term("severe_cold", "严寒地区", "Severe cold"),
        term("cold", "寒冷地区", "Cold"),
    ],
);

/// 未填报 → 填报中 → 单位审核 → 已上报（主管部门审核）→ 区域汇总审核 → 已锁定,
/// with 退回修改 after a refusal at any review.
pub static STATUS: Vocab = Vocab::new(
    "status",
    &[
        term("not_filed", "未填报", "Not filed"),
        term("draft", "填报中", "Being filled"),
        term("unit_review", "单位审核", "Unit review"),
        term(
            "reported",
            "已上报（主管部门审核）",
            "Reported (department review)",
        ),
        term("region_review", "区域汇总审核", "Regional review"),
        term("locked", "已锁定", "Locked"),
        term("returned", "退回修改", "Returned for changes"),
        term("reopening", "申请解锁中", "Reopening requested"),
    ],
);

pub static ALERT_KIND: Vocab = Vocab::new(
    "alert_kind",
    &[
        term(
            "over_quota",
            "超过定额约束值",
            "Over the quota's constraint value",
        ),
        term("over_target", "超过下达目标", "Over the target issued"),
        term("spike", "月度突增", "Month-on-month spike"),
        term("meter_offline", "计量表离线", "Meter silent"),
    ],
);

pub static VOCABS: &[&Vocab] = &[
    &NATURE,
    &SUB_ITEM,
    &METER_KIND,
    &BUILDING_TYPE,
    &CLIMATE_ZONE,
    &STATUS,
    &ALERT_KIND,
];

// ------------------------------------------------------------ factors

/// One energy type of a factor set. Quantities are entered in `unit`;
/// `density_kg_per_l` converts litres of fuel to the kilograms the
/// coefficients are per.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnergyType {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    /// kgce per unit (当量值), per kg for fuels entered in litres.
    pub kgce: f64,
    /// 等价值 for electricity, when the set converts it that way.
    #[serde(default)]
    pub kgce_equal: Option<f64>,
    #[serde(default)]
    pub density_kg_per_l: Option<f64>,
    /// kg CO₂ per unit (per kg for fuels entered in litres).
    pub co2: f64,
    /// Water is reported in m³, not in 综合能耗.
    #[serde(default = "yes")]
    pub counts_as_energy: bool,
    /// Where the coefficients come from.
    pub source: String,
}

fn yes() -> bool {
    true
}

/// A versioned set of coefficients, effective from a year on, kept by the
/// region (the collection is `read-below`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FactorSet {
    pub name: String,
    /// The first statistics year it applies to.
    pub effective_from: i32,
    /// `equivalent` (当量, the statistics forms' default) or `equal` (等价).
    pub electricity_method: String,
    pub types: Vec<EnergyType>,
}

impl FactorSet {
    pub fn get(&self, code: &str) -> Option<&EnergyType> {
        self.types.iter().find(|t| t.code == code)
    }

    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(Error::invalid(
                "name",
                "required",
                "a factor set needs a name",
            ));
        }
        if !(2000..=2100).contains(&self.effective_from) {
            return Err(Error::invalid(
                "effective_from",
                "year_invalid",
                "a year between 2000 and 2100",
            ));
        }
        if !["equivalent", "equal"].contains(&self.electricity_method.as_str()) {
            return Err(Error::invalid(
                "electricity_method",
                "electricity_method_invalid",
                "equivalent or equal",
            ));
        }
        for (i, t) in self.types.iter().enumerate() {
            let field = |f: &str| format!("types[{i}].{f}");
            if t.code.is_empty() || !t.code.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(Error::invalid(field("code"), "code_invalid", "[a-z_]+"));
            }
            for (name, v) in [("kgce", t.kgce), ("co2", t.co2)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::invalid(
                        field(name),
                        "factor_invalid",
                        "a coefficient of 0 or more",
                    )
                    .with_param("type", t.code.clone()));
                }
            }
            if t.density_kg_per_l.is_some_and(|d| !(d > 0.0 && d < 5.0)) {
                return Err(Error::invalid(
                    field("density_kg_per_l"),
                    "factor_invalid",
                    "a density above 0",
                )
                .with_param("type", t.code.clone()));
            }
        }
        Ok(())
    }

    /// kgce and kg CO₂ of `quantity` of `code`.
    pub fn convert(&self, code: &str, quantity: f64) -> Option<(f64, f64)> {
        let t = self.get(code)?;
        let mass = quantity * t.density_kg_per_l.unwrap_or(1.0);
        let kgce = if !t.counts_as_energy {
            0.0
        } else if self.electricity_method == "equal" {
            mass * t.kgce_equal.unwrap_or(t.kgce)
        } else {
            mass * t.kgce
        };
        Some((kgce, mass * t.co2))
    }
}

fn seeded(
    code: &str,
    zh: &str,
    en: &str,
    unit: &str,
    kgce: f64,
    co2: f64,
    source: &str,
) -> EnergyType {
    EnergyType {
        code: code.into(),
        name_zh: zh.into(),
        name_en: en.into(),
        unit: unit.into(),
        kgce,
        kgce_equal: None,
        density_kg_per_l: None,
        co2,
        counts_as_energy: true,
        source: source.into(),
    }
}

/// The coefficients of docs/reference §10.1 and §10.4: GB/T 2589 for
/// standard coal, the NDRC accounting guideline's fuel defaults, and the
/// MEE/NBS 2022 grid factor of the north-west grid, which Xinjiang is on.
pub fn default_factor_set() -> FactorSet {
    const COAL: &str = "GB/T 2589 附录";
    const FUEL_CO2: &str = "GB/T 2589; CO₂: 国家发展改革委温室气体核算指南缺省值";
    let mut electricity = seeded(
        "electricity",
        "电力",
        "Electricity",
        "kWh",
        0.1229,
        0.5857,
        "当量值 3600/29307 kgce/kWh; CO₂: 生态环境部 国家统计局 2022年西北区域电网平均排放因子（2024年公告）",
    );
    electricity.kgce_equal = Some(0.3);
    let mut water = seeded(
        "water",
        "水",
        "Water",
        "m³",
        0.0,
        0.0,
        "按立方米单独统计，不计入综合能耗",
    );
    water.counts_as_energy = false;
    let mut gasoline = seeded(
        "gasoline", "汽油", "Gasoline", "L", 1.4714, 2.9251, FUEL_CO2,
    );
    gasoline.density_kg_per_l = Some(0.73);
    let mut diesel = seeded("diesel", "柴油", "Diesel", "L", 1.4571, 3.0959, FUEL_CO2);
    diesel.density_kg_per_l = Some(0.86);
    FactorSet {
        name: "默认系数（GB/T 2589，2022年西北电网因子）".into(),
        effective_from: 2015,
        electricity_method: "equivalent".into(),
        types: vec![
            electricity,
            water,
            seeded(
                "natural_gas",
                "天然气",
                "Natural gas",
                "m³",
                1.2143,
                2.1622,
                FUEL_CO2,
            ),
            seeded("lpg", "液化石油气", "LPG", "kg", 1.7143, 3.1013, FUEL_CO2),
            seeded("coal", "原煤", "Raw coal", "kg", 0.7143, 1.9003, FUEL_CO2),
            gasoline,
            diesel,
            seeded(
                "heat",
                "热力",
                "Heat",
                "GJ",
                34.12,
                110.0,
                "0.03412 kgce/MJ; CO₂: 外购热力 0.11 tCO₂/GJ（指南缺省值）",
            ),
            seeded(
                "other_tce",
                "其他能源（折标准煤）",
                "Other energy (as tce)",
                "tce",
                1000.0,
                0.0,
                COAL,
            ),
        ],
    }
}

// ------------------------------------------------------------ profiles

/// 名录库: one institution's annual snapshot, the denominators of the
/// intensities.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub year: i32,
    pub nature: String,
    /// 建筑面积: the office area's gross floor area, housing excluded.
    pub building_m2: f64,
    #[serde(default)]
    pub heating_m2: f64,
    /// 用能人数: the people actually working there.
    pub energy_users: u32,
    /// 编制人数.
    #[serde(default)]
    pub headcount: u32,
    #[serde(default)]
    pub key_user: bool,
    #[serde(default)]
    pub model_unit: bool,
    #[serde(default = "office")]
    pub building_type: String,
    #[serde(default = "severe_cold")]
    pub climate_zone: String,
    /// Where the area came from: `property` or `entered`.
    #[serde(default)]
    pub area_source: String,
}

fn office() -> String {
    "office".into()
}
fn severe_cold() -> String {
    "severe_cold".into()
}

impl Profile {
    pub fn validate(&self) -> Result<()> {
        year_ok("year", self.year)?;
        NATURE.check("nature", &self.nature)?;
        BUILDING_TYPE.check("building_type", &self.building_type)?;
        CLIMATE_ZONE.check("climate_zone", &self.climate_zone)?;
        if !(self.building_m2.is_finite() && self.building_m2 > 0.0 && self.building_m2 < 1e8) {
            return Err(Error::invalid(
                "building_m2",
                "area_invalid",
                "an area above 0 m²",
            ));
        }
        if !(self.heating_m2.is_finite() && self.heating_m2 >= 0.0) {
            return Err(Error::invalid(
                "heating_m2",
                "area_invalid",
                "an area of 0 m² or more",
            ));
        }
        if self.energy_users == 0 || self.energy_users > 1_000_000 {
            return Err(Error::invalid(
                "energy_users",
                "users_invalid",
                "at least one person uses energy there",
            ));
        }
        Ok(())
    }
}

pub fn year_ok(field: &str, year: i32) -> Result<()> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "year_invalid",
            "a year between 2000 and 2100",
        ))
    }
}

// ------------------------------------------------------------ statements

/// One energy type's line of a monthly statement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Line {
    #[serde(rename = "type")]
    pub energy_type: String,
    pub quantity: f64,
    /// 费用 in fen.
    #[serde(default)]
    pub cost_fen: i64,
    /// `meter`, `bill`, `vehicles` (the vehicles system's fuel logs) or
    /// `entered`.
    #[serde(default = "entered")]
    pub source: String,
    /// A gap filled by estimate (估算), flagged on the form.
    #[serde(default)]
    pub estimated: bool,
}

fn entered() -> String {
    "entered".into()
}

/// What a statement's lines come to under its factor set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Totals {
    pub kgce: f64,
    pub co2_kg: f64,
    pub water_m3: f64,
    pub cost_fen: i64,
}

/// A monthly 基层表 of one institution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Statement {
    /// `YYYY-MM`.
    pub period: String,
    pub year: i32,
    pub status: String,
    pub lines: Vec<Line>,
    /// Flat on the record, so the summary forms group and sum them.
    #[serde(flatten)]
    pub totals: Totals,
    /// The profile's denominators when it was filed.
    pub building_m2: f64,
    pub energy_users: u32,
    pub nature: String,
    /// The factor set used (its record id).
    pub factor_set: String,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub timeline: tianshan_sdk::document::Timeline,
}

pub fn check_lines(lines: &[Line], factors: &FactorSet) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let field = format!("lines[{i}].quantity");
        if factors.get(&line.energy_type).is_none() {
            return Err(Error::invalid(
                format!("lines[{i}].type"),
                "energy_type_unknown",
                "not an energy type of the factor set",
            )
            .with_param("type", line.energy_type.clone()));
        }
        if !seen.insert(line.energy_type.as_str()) {
            return Err(Error::invalid(
                format!("lines[{i}].type"),
                "energy_type_twice",
                "each energy type once",
            )
            .with_param("type", line.energy_type.clone()));
        }
        if !(line.quantity.is_finite() && line.quantity >= 0.0 && line.quantity < 1e12) {
            return Err(Error::invalid(
                field,
                "quantity_invalid",
                "a quantity of 0 or more",
            ));
        }
        if line.cost_fen < 0 {
            return Err(Error::invalid(
                format!("lines[{i}].cost_fen"),
                "cost_invalid",
                "a cost of 0 or more",
            ));
        }
        if !["meter", "bill", "vehicles", "entered"].contains(&line.source.as_str()) {
            return Err(Error::invalid(
                format!("lines[{i}].source"),
                "source_invalid",
                "meter, bill, vehicles or entered",
            ));
        }
    }
    Ok(())
}

pub fn totals(lines: &[Line], factors: &FactorSet) -> Totals {
    let mut t = Totals::default();
    for line in lines {
        if let Some((kgce, co2)) = factors.convert(&line.energy_type, line.quantity) {
            t.kgce += kgce;
            t.co2_kg += co2;
        }
        if line.energy_type == "water" {
            t.water_m3 += line.quantity;
        }
        t.cost_fen += line.cost_fen;
    }
    t.kgce = round(t.kgce, 3);
    t.co2_kg = round(t.co2_kg, 3);
    t.water_m3 = round(t.water_m3, 3);
    t
}

pub fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// A year's intensities from the months locked so far, annualised
/// (×12 / months) so a year to date compares with a whole baseline year.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Intensities {
    pub months: u32,
    pub kgce: f64,
    pub co2_kg: f64,
    pub water_m3: f64,
    /// kgce/m²·a, kgce/person·a, m³/person·a, kgCO₂/m²·a.
    pub per_area: f64,
    pub per_capita: f64,
    pub water_per_capita: f64,
    pub carbon_per_area: f64,
}

pub fn intensities(months: &[Totals], building_m2: f64, users: u32) -> Option<Intensities> {
    if months.is_empty() || building_m2 <= 0.0 || users == 0 {
        return None;
    }
    let n = months.len().min(12) as u32;
    let scale = 12.0 / n as f64;
    let kgce: f64 = months.iter().map(|m| m.kgce).sum();
    let co2: f64 = months.iter().map(|m| m.co2_kg).sum();
    let water: f64 = months.iter().map(|m| m.water_m3).sum();
    let users = users as f64;
    Some(Intensities {
        months: n,
        kgce: round(kgce, 3),
        co2_kg: round(co2, 3),
        water_m3: round(water, 3),
        per_area: round(kgce * scale / building_m2, 3),
        per_capita: round(kgce * scale / users, 3),
        water_per_capita: round(water * scale / users, 3),
        carbon_per_area: round(co2 * scale / building_m2, 3),
    })
}

/// The review stage of a statement whose approval is running, from the
/// kernel's current step (1-based): the flow is unit → department → region.
pub fn stage_of_step(step: u32) -> &'static str {
    match step {
        0 | 1 => "unit_review",
        2 => "reported",
        _ => "region_review",
    }
}

/// A statement may be edited while nobody reviews it.
pub fn editable(status: &str) -> bool {
    matches!(status, "not_filed" | "draft" | "returned")
}

/// Month-on-month or year-on-year spike: more than `factor` times the
/// reference, when the reference is worth comparing with.
pub fn spiked(current: f64, reference: f64, factor: f64) -> bool {
    reference > 0.0 && current > reference * factor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(t: &str, q: f64) -> Line {
        Line {
            energy_type: t.into(),
            quantity: q,
            cost_fen: 0,
            source: "entered".into(),
            estimated: false,
        }
    }

    #[test]
    fn electricity_converts_at_the_equivalent_value_by_default() {
        let f = default_factor_set();
        let (kgce, co2) = f.convert("electricity", 10_000.0).unwrap();
        assert!((kgce - 1229.0).abs() < 1e-6);
        assert!((co2 - 5857.0).abs() < 1e-6);
        let mut equal = f.clone();
        equal.electricity_method = "equal".into();
        assert!((equal.convert("electricity", 10_000.0).unwrap().0 - 3000.0).abs() < 1e-6);
    }

    #[test]
    fn litres_of_fuel_go_through_the_density() {
        let f = default_factor_set();
        let (kgce, co2) = f.convert("gasoline", 100.0).unwrap();
        // 100 L × 0.73 kg/L × 1.4714 kgce/kg
        assert!((kgce - 107.4122).abs() < 1e-4);
        assert!((co2 - 213.5323).abs() < 1e-4);
    }

    #[test]
    fn water_is_counted_in_cubic_metres_not_in_energy() {
        let f = default_factor_set();
        let t = totals(&[line("water", 120.0), line("natural_gas", 1000.0)], &f);
        assert_eq!(t.water_m3, 120.0);
        assert_eq!(t.kgce, 1214.3);
        assert_eq!(t.co2_kg, 2162.2);
    }

    #[test]
    fn lines_are_checked_against_the_factor_set() {
        let f = default_factor_set();
        let unknown = check_lines(&[line("uranium", 1.0)], &f).unwrap_err();
        assert_eq!(unknown.code(), "energy_type_unknown");
        let twice = check_lines(&[line("water", 1.0), line("water", 2.0)], &f).unwrap_err();
        assert_eq!(twice.code(), "energy_type_twice");
        let negative = check_lines(&[line("water", -1.0)], &f).unwrap_err();
        assert_eq!(negative.field(), Some("lines[0].quantity"));
        assert!(check_lines(&[line("water", 1.0), line("electricity", 2.0)], &f).is_ok());
    }

    #[test]
    fn a_year_to_date_is_annualised() {
        let month = Totals {
            kgce: 1000.0,
            co2_kg: 2000.0,
            water_m3: 50.0,
            cost_fen: 0,
        };
        let i = intensities(&[month; 6], 1000.0, 100).unwrap();
        assert_eq!(i.months, 6);
        assert_eq!(i.kgce, 6000.0);
        assert_eq!(i.per_area, 12.0);
        assert_eq!(i.per_capita, 120.0);
        assert_eq!(i.water_per_capita, 6.0);
        assert_eq!(i.carbon_per_area, 24.0);
        assert!(intensities(&[], 1000.0, 100).is_none());
        assert!(intensities(&[month], 0.0, 100).is_none());
    }

    #[test]
    fn the_default_set_is_valid_and_a_bad_one_is_refused() {
        assert!(default_factor_set().validate().is_ok());
        let mut bad = default_factor_set();
        bad.types[0].kgce = -1.0;
        assert_eq!(bad.validate().unwrap_err().field(), Some("types[0].kgce"));
        bad = default_factor_set();
        bad.electricity_method = "guess".into();
        assert_eq!(
            bad.validate().unwrap_err().code(),
            "electricity_method_invalid"
        );
    }

    #[test]
    fn stages_follow_the_kernel_step() {
        assert_eq!(stage_of_step(1), "unit_review");
        assert_eq!(stage_of_step(2), "reported");
        assert_eq!(stage_of_step(3), "region_review");
        assert!(editable("returned") && !editable("locked") && !editable("reported"));
        assert!(spiked(160.0, 100.0, 1.5) && !spiked(140.0, 100.0, 1.5) && !spiked(5.0, 0.0, 1.5));
    }

    #[test]
    fn a_profile_needs_an_area_and_people() {
        let mut p = Profile {
            year: 2026,
            nature: "organ".into(),
            building_m2: 12_000.0,
            energy_users: 300,
            building_type: "office".into(),
            climate_zone: "cold".into(),
            ..Profile::default()
        };
        assert!(p.validate().is_ok());
        p.building_m2 = 0.0;
        assert_eq!(p.validate().unwrap_err().code(), "area_invalid");
        p.building_m2 = 1.0;
        p.nature = "club".into();
        assert_eq!(p.validate().unwrap_err().field(), Some("nature"));
    }
}
