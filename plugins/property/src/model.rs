//! The records and the pure rules of the property system: the room
//! classes, the ownership-registration state machine, the 2014 area
//! standard and the over-standard arithmetic. Nothing here calls the
//! kernel, so all of it is unit-tested on the host.

use serde::{Deserialize, Serialize};
use tianshan_sdk::prelude::*;
use tianshan_sdk::vocab::{Term, Vocab};

/// The four classes of office buildings' rooms (党政机关办公用房).
pub const ROOM_CLASS: Vocab = Vocab::new(
    "room_class",
    &[
        Term::new("office", "办公室", "Office"),
        Term::new("service", "服务用房", "Service room"),
        Term::new("equipment", "设备用房", "Equipment room"),
        Term::new("ancillary", "附属用房", "Ancillary room"),
    ],
);

/// Sub-types, each prefixed with its class so a sub-type names its class.
pub const ROOM_SUBTYPE: Vocab = Vocab::new(
    "room_subtype",
    &[
        Term::new("office.leader", "领导办公室", "Leader's office"),
        Term::new("office.staff", "一般工作人员办公室", "Staff office"),
        Term::new("service.meeting", "会议室", "Meeting room"),
        Term::new("service.reception", "接待室", "Reception room"),
        Term::new("service.archive", "档案室", "Archive"),
        Term::new("service.print", "文印室", "Print room"),
        Term::new("service.storage", "储藏室", "Storeroom"),
        Term::new("service.duty", "值班室", "Duty room"),
        Term::new("equipment.power", "配电室", "Power room"),
        Term::new("equipment.network", "网络机房", "Server room"),
        Term::new("equipment.hvac", "空调机房", "HVAC plant"),
        Term::new("equipment.pump", "水泵房", "Pump room"),
        Term::new("ancillary.canteen", "食堂", "Canteen"),
        Term::new("ancillary.garage", "汽车库", "Garage"),
        Term::new(
            "ancillary.civil_defense",
            "人防设施",
            "Civil-defence shelter",
        ),
        Term::new("ancillary.guard", "警卫用房", "Guard room"),
    ],
);

/// 不动产权登记 status of a building.
pub const REGISTRATION: Vocab = Vocab::new(
    "registration",
    &[
        Term::new("pending", "待登记", "To register"),
        Term::new("in_progress", "办理中", "In progress"),
        Term::new("registered", "已登记", "Registered"),
        Term::new("defective", "有瑕疵", "With defects"),
    ],
);

pub const STRUCTURE: Vocab = Vocab::new(
    "structure",
    &[
        Term::new("steel", "钢结构", "Steel"),
        Term::new("concrete", "钢筋混凝土结构", "Reinforced concrete"),
        Term::new("brick_concrete", "砖混结构", "Brick and concrete"),
        Term::new("brick_wood", "砖木结构", "Brick and wood"),
        Term::new("other", "其他", "Other"),
    ],
);

pub const ACQUISITION: Vocab = Vocab::new(
    "acquisition",
    &[
        Term::new("built", "新建", "Built"),
        Term::new("purchased", "购置", "Purchased"),
        Term::new("transferred", "划拨调入", "Transferred in"),
        Term::new("donated", "接受捐赠", "Donated"),
        Term::new("leased_in", "租用", "Leased in"),
    ],
);

/// Organ levels of the 2014 standard that the region's org tree maps to
/// (no central organs sit in a region's tree).
pub const ORGAN_LEVEL: Vocab = Vocab::new(
    "organ_level",
    &[
        Term::new("provincial", "省级机关", "Provincial organ"),
        Term::new("municipal", "市级机关", "Municipal organ"),
        Term::new("county", "县级机关", "County organ"),
    ],
);

/// Post ranks, qualified by organ level: the same word (正职) means a
/// different post at each level, and the standard is per level.
pub const POST_RANK: Vocab = Vocab::new(
    "post_rank",
    &[
        Term::new("provincial.head", "省级正职", "Provincial head"),
        Term::new("provincial.deputy", "省级副职", "Provincial deputy"),
        Term::new("provincial.bureau_head", "正厅(局)级", "Department head"),
        Term::new(
            "provincial.bureau_deputy",
            "副厅(局)级",
            "Deputy department head",
        ),
        Term::new("provincial.division_head", "正处级", "Division head"),
        Term::new(
            "provincial.division_deputy",
            "副处级",
            "Deputy division head",
        ),
        Term::new("provincial.staff", "处级以下", "Below division"),
        Term::new("municipal.head", "市级正职", "Municipal head"),
        Term::new("municipal.deputy", "市级副职", "Municipal deputy"),
        Term::new("municipal.bureau_head", "正局(处)级", "Bureau head"),
        Term::new(
            "municipal.bureau_deputy",
            "副局(处)级",
            "Deputy bureau head",
        ),
        Term::new("municipal.staff", "局(处)级以下", "Below bureau"),
        Term::new("county.head", "县级正职", "County head"),
        Term::new("county.deputy", "县级副职", "County deputy"),
        Term::new("county.section_head", "正科级", "Section head"),
        Term::new("county.section_deputy", "副科级", "Deputy section head"),
        Term::new("county.staff", "科级以下", "Below section"),
    ],
);

pub const ALLOCATION_KIND: Vocab = Vocab::new(
    "allocation_kind",
    &[
        Term::new("adjust", "调剂", "Reallocation"),
        Term::new("swap", "置换", "Exchange"),
        Term::new("rent", "租用", "Lease-in"),
        Term::new("build", "建设", "Construction"),
    ],
);

pub const ALLOCATION_STATUS: Vocab = Vocab::new(
    "allocation_status",
    &[
        Term::new("draft", "草稿", "Draft"),
        Term::new("submitted", "审批中", "In approval"),
        Term::new("approved", "已批准", "Approved"),
        Term::new("rejected", "已驳回", "Rejected"),
        Term::new("withdrawn", "已撤回", "Withdrawn"),
        Term::new("executed", "已交接", "Handed over"),
    ],
);

pub const VOCABS: &[&Vocab] = &[
    &ROOM_CLASS,
    &ROOM_SUBTYPE,
    &REGISTRATION,
    &STRUCTURE,
    &ACQUISITION,
    &ORGAN_LEVEL,
    &POST_RANK,
    &ALLOCATION_KIND,
    &ALLOCATION_STATUS,
];

/// §10.5: 《党政机关办公用房建设标准》(发改投资〔2014〕2674号), usable
/// office area per person in m², for the levels a region's tree holds.
pub const STANDARD_2014: &[(&str, f64)] = &[
    ("provincial.head", 54.0),
    ("provincial.deputy", 42.0),
    ("provincial.bureau_head", 30.0),
    ("provincial.bureau_deputy", 24.0),
    ("provincial.division_head", 18.0),
    ("provincial.division_deputy", 12.0),
    ("provincial.staff", 9.0),
    ("municipal.head", 42.0),
    ("municipal.deputy", 30.0),
    ("municipal.bureau_head", 24.0),
    ("municipal.bureau_deputy", 18.0),
    ("municipal.staff", 9.0),
    ("county.head", 30.0),
    ("county.deputy", 24.0),
    ("county.section_head", 18.0),
    ("county.section_deputy", 12.0),
    ("county.staff", 9.0),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Compound {
    pub name: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Building {
    pub compound_id: String,
    pub name: String,
    /// 不动产权证号 (empty until registered).
    #[serde(default)]
    pub cert_no: String,
    #[serde(default)]
    pub owner: String,
    pub registered_m2: Option<f64>,
    pub measured_m2: f64,
    pub floors: i64,
    pub structure: String,
    pub built_year: i64,
    pub acquisition: String,
    #[serde(default)]
    pub usage: String,
    #[serde(default = "pending")]
    pub registration: String,
    #[serde(default)]
    pub defects: Vec<String>,
}

fn pending() -> String {
    "pending".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Floor {
    pub building_id: String,
    /// Storey number: negative below ground, never 0.
    pub level: i64,
    #[serde(default)]
    pub name: String,
    /// The plan drawing: a file id from the kernel's files API.
    #[serde(default)]
    pub plan_file: Option<String>,
    /// An SVG drawing kept by the plugin (the kernel's files API takes
    /// raster images only), served by `GET /floors/{id}/plan.svg`.
    #[serde(default)]
    pub plan_svg: bool,
    /// The drawing's coordinate space (its width and height) that room
    /// outlines are in.
    #[serde(default = "default_plan_size")]
    pub plan_size: [f64; 2],
}

pub fn default_plan_size() -> [f64; 2] {
    [1000.0, 600.0]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    pub floor_id: String,
    pub building_id: String,
    pub no: String,
    pub class: String,
    pub subtype: String,
    pub usable_m2: f64,
    pub gross_m2: f64,
    /// The polygon on the floor's drawing, in its coordinates.
    #[serde(default)]
    pub outline: Vec<[f64; 2]>,
    /// The unit the room is allocated to when not the owner (a hand-over).
    #[serde(default)]
    pub assigned_unit: Option<String>,
    /// Current occupants, kept on the room so a floor view needs no join.
    #[serde(default)]
    pub occupants: u32,
    #[serde(default)]
    pub photos: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Occupancy {
    pub room_id: String,
    pub person: String,
    /// A platform user, when the person has one.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Kept on the record until the kernel's profile carries the rank.
    pub rank: String,
    #[serde(default)]
    pub position: String,
    pub start_on: String,
    #[serde(default)]
    pub end_on: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Standard {
    pub rank: String,
    pub m2: f64,
}

/// The organ level of the standard that an org level maps to: the region's
/// own units are provincial organs (自治区本级), a prefecture's are
/// municipal (地州市), a county's are county organs (县市区). A unit takes
/// the level of the administrative org above it.
pub fn organ_level_of(org_level: &str) -> Option<&'static str> {
    match org_level {
        "region" => Some("provincial"),
        "prefecture" => Some("municipal"),
        "county" => Some("county"),
        _ => None,
    }
}

/// The plan indicator a registration rate at that org level counts in.
pub fn plan_registration_indicator(organ_level: &str) -> &'static str {
    match organ_level {
        "provincial" => "plan.room_registration_region",
        "municipal" => "plan.room_registration_prefecture",
        _ => "plan.room_registration_county",
    }
}

/// 待登记 → 办理中 → 已登记 / 有瑕疵; a defective one goes back to
/// 办理中 once the defects are being cured, or straight to 已登记.
pub fn registration_step_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("pending", "in_progress")
            | ("in_progress", "registered")
            | ("in_progress", "defective")
            | ("defective", "in_progress")
            | ("defective", "registered")
    )
}

/// One person's share of a room against the standard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub standard_m2: f64,
    pub actual_m2: f64,
    pub excess_m2: f64,
    pub over: bool,
}

/// A shared office's usable area is split evenly by its occupants; the
/// excess is what the share passes the standard by (0 when within).
pub fn check_share(usable_m2: f64, occupants: u32, standard_m2: f64) -> Check {
    let actual = if occupants == 0 {
        usable_m2
    } else {
        usable_m2 / occupants as f64
    };
    let actual = round2(actual);
    let excess = round2((actual - standard_m2).max(0.0));
    Check {
        standard_m2,
        actual_m2: actual,
        excess_m2: excess,
        over: excess > 0.0,
    }
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The standard's rank for a person whose kernel profile names their
/// national post rank (职务层次, contract 1.4): the standard names posts by
/// the organ's level, so a county's 县级正职 is a `division` and a
/// province's 正处 too. A rank above what the organ level lists takes its
/// top row; `None` for a code the kernel does not have.
pub fn rank_from_profile(post_rank: &str, organ_level: &str) -> Option<&'static str> {
    const ORDER: [&str; 9] = [
        "ministerial",
        "vice_ministerial",
        "bureau",
        "vice_bureau",
        "division",
        "vice_division",
        "section",
        "vice_section",
        "staff",
    ];
    let tier = ORDER.iter().position(|r| *r == post_rank)?;
    let rows: [&'static str; 9] = match organ_level {
        "provincial" => [
            "provincial.head",
            "provincial.deputy",
            "provincial.bureau_head",
            "provincial.bureau_deputy",
            "provincial.division_head",
            "provincial.division_deputy",
            "provincial.staff",
            "provincial.staff",
            "provincial.staff",
        ],
        "municipal" => [
            "municipal.head",
            "municipal.head",
            "municipal.head",
            "municipal.deputy",
            "municipal.bureau_head",
            "municipal.bureau_deputy",
            "municipal.staff",
            "municipal.staff",
            "municipal.staff",
        ],
        _ => [
            "county.head",
            "county.head",
            "county.head",
            "county.head",
            "county.head",
            "county.deputy",
            "county.section_head",
            "county.section_deputy",
            "county.staff",
        ],
    };
    Some(rows[tier])
}

/// The rank must belong to the room's organ level.
pub fn rank_fits_level(rank: &str, organ_level: &str) -> bool {
    rank.split_once('.').map(|(level, _)| level) == Some(organ_level)
}

/// An outline is at least a triangle of finite points inside the drawing.
pub fn outline_error(points: &[[f64; 2]], size: [f64; 2]) -> Option<&'static str> {
    if points.is_empty() {
        return None; // no outline yet: allowed, the room is not drawn
    }
    if points.len() < 3 {
        return Some("outline_too_short");
    }
    if points.len() > 200 {
        return Some("outline_too_long");
    }
    let inside = |p: &[f64; 2]| {
        p[0].is_finite()
            && p[1].is_finite()
            && (0.0..=size[0]).contains(&p[0])
            && (0.0..=size[1]).contains(&p[1])
    };
    if !points.iter().all(inside) {
        return Some("outline_outside_plan");
    }
    if polygon_area(points) < 1e-6 {
        return Some("outline_degenerate");
    }
    None
}

/// Shoelace area, in drawing units squared.
pub fn polygon_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum();
    twice.abs() / 2.0
}

/// Why an SVG drawing is refused, if it is: pages show it as an `<img>`
/// (where scripts never run), but the route can be opened directly, so
/// anything active is refused outright.
pub fn svg_error(svg: &str) -> Option<&'static str> {
    if svg.len() > 2 << 20 {
        return Some("plan_too_large");
    }
    let lower = svg.to_ascii_lowercase();
    if !lower.contains("<svg") {
        return Some("plan_not_svg");
    }
    let active = [
        "<script",
        "javascript:",
        "<foreignobject",
        "<iframe",
        "<embed",
        "<object",
    ];
    let handler = lower
        .split(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
        .any(|w| w.starts_with("on") && w.contains('='));
    if handler || active.iter().any(|a| lower.contains(a)) {
        return Some("plan_active_content");
    }
    None
}

/// A positive, finite area of at most 1,000,000 m² (larger is a typo).
pub fn area_ok(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= 1_000_000.0
}

/// 422 on `field` with `code` (the UI has words for each code).
pub fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::new(422, code, message).with_field(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_office_is_split_by_its_occupants() {
        // 36 m² for two staff of a county organ: 18 each against 9.
        let c = check_share(36.0, 2, 9.0);
        assert_eq!((c.actual_m2, c.excess_m2, c.over), (18.0, 9.0, true));
        let c = check_share(36.0, 4, 9.0);
        assert_eq!((c.actual_m2, c.excess_m2, c.over), (9.0, 0.0, false));
        let c = check_share(20.0, 3, 9.0);
        assert_eq!(c.actual_m2, 6.67);
        assert!(!c.over);
    }

    #[test]
    fn org_levels_map_to_organ_levels_and_plan_indicators() {
        assert_eq!(organ_level_of("region"), Some("provincial"));
        assert_eq!(organ_level_of("prefecture"), Some("municipal"));
        assert_eq!(organ_level_of("county"), Some("county"));
        assert_eq!(organ_level_of("unit"), None);
        assert_eq!(
            plan_registration_indicator("county"),
            "plan.room_registration_county"
        );
        assert_eq!(
            plan_registration_indicator("provincial"),
            "plan.room_registration_region"
        );
    }

    #[test]
    fn the_standard_covers_every_rank_with_the_2014_values() {
        assert_eq!(STANDARD_2014.len(), POST_RANK.codes().count());
        for (rank, m2) in STANDARD_2014 {
            assert!(POST_RANK.contains(rank), "{rank}");
            assert!(*m2 >= 9.0 && *m2 <= 54.0);
        }
        let county_head = STANDARD_2014.iter().find(|s| s.0 == "county.head");
        assert_eq!(county_head.map(|s| s.1), Some(30.0));
        assert!(rank_fits_level("county.staff", "county"));
        // The kernel's national ranks land on the level's own rows.
        assert_eq!(rank_from_profile("division", "county"), Some("county.head"));
        assert_eq!(
            rank_from_profile("division", "municipal"),
            Some("municipal.bureau_head")
        );
        assert_eq!(
            rank_from_profile("division", "provincial"),
            Some("provincial.division_head")
        );
        assert_eq!(
            rank_from_profile("bureau", "municipal"),
            Some("municipal.head")
        );
        assert_eq!(
            rank_from_profile("vice_section", "county"),
            Some("county.section_deputy")
        );
        assert_eq!(
            rank_from_profile("staff", "provincial"),
            Some("provincial.staff")
        );
        assert_eq!(rank_from_profile("emperor", "county"), None);
        for level in ["provincial", "municipal", "county"] {
            for r in ["ministerial", "vice_division", "staff"] {
                let row = rank_from_profile(r, level).unwrap();
                assert!(
                    rank_fits_level(row, level) && POST_RANK.contains(row),
                    "{row}"
                );
            }
        }
        assert!(!rank_fits_level("provincial.head", "county"));
    }

    #[test]
    fn registration_moves_only_forward_or_back_from_a_defect() {
        assert!(registration_step_allowed("pending", "in_progress"));
        assert!(registration_step_allowed("in_progress", "defective"));
        assert!(registration_step_allowed("defective", "registered"));
        assert!(!registration_step_allowed("pending", "registered"));
        assert!(!registration_step_allowed("registered", "pending"));
    }

    #[test]
    fn outlines_are_polygons_inside_the_drawing() {
        let size = [100.0, 100.0];
        assert_eq!(outline_error(&[], size), None);
        assert_eq!(
            outline_error(&[[0.0, 0.0], [1.0, 1.0]], size),
            Some("outline_too_short")
        );
        assert_eq!(
            outline_error(&[[0.0, 0.0], [10.0, 0.0], [10.0, 200.0]], size),
            Some("outline_outside_plan")
        );
        assert_eq!(
            outline_error(&[[0.0, 0.0], [5.0, 5.0], [10.0, 10.0]], size),
            Some("outline_degenerate")
        );
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert_eq!(outline_error(&square, size), None);
        assert_eq!(polygon_area(&square), 100.0);
    }

    #[test]
    fn svg_plans_are_plain_drawings() {
        assert_eq!(
            svg_error(r#"<svg viewBox="0 0 10 10"><rect width="5" height="5"/></svg>"#),
            None
        );
        assert_eq!(svg_error("<html></html>"), Some("plan_not_svg"));
        assert_eq!(
            svg_error("<svg><script>alert(1)</script></svg>"),
            Some("plan_active_content")
        );
        assert_eq!(
            svg_error(r#"<svg><rect onclick="x()"/></svg>"#),
            Some("plan_active_content")
        );
        assert_eq!(
            svg_error(r#"<svg><a href="javascript:x()"/></svg>"#),
            Some("plan_active_content")
        );
    }

    #[test]
    fn areas_must_be_positive_and_plausible() {
        assert!(area_ok(12.5));
        assert!(!area_ok(0.0));
        assert!(!area_ok(-3.0));
        assert!(!area_ok(f64::NAN));
        assert!(!area_ok(2_000_000.0));
    }
}
