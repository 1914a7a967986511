//! The demo register `tianshan up` seeds: thousands of cards over the
//! offices administrations and counties, with realistic categories,
//! values, ages, depreciation and use statuses. Deterministic, so two demo
//! starts look alike; idempotent, so a restart adds nothing.

use serde_json::{Value, json};
use tianshan_sdk::form::Form;
use tianshan_sdk::prelude::*;

use crate::cards::{cards, insert_cards};
use crate::dates;
use crate::depreciation::book_through;
use crate::model::Card;

pub fn routes(router: Router) -> Router {
    router.post("/demo/seed", seed)
}

/// (category, name, brand, low, high in yuan, weight)
const KINDS: &[(&str, &str, &str, i64, i64, u32)] = &[
    ("A020101", "台式计算机", "联想 启天M437", 4_200, 5_000, 22),
    ("A020102", "便携式计算机", "华为 MateBook", 5_500, 7_000, 12),
    ("A020204", "激光打印机", "奔图 P3305", 900, 1_200, 10),
    ("A020203", "多功能一体机", "理光 IM C3000", 4_000, 6_000, 4),
    ("A020202", "投影仪", "爱普生 CB-X50", 3_500, 8_000, 3),
    ("A020103", "服务器", "浪潮 NF5280M6", 38_000, 90_000, 1),
    ("A020104", "交换机", "华为 S5735", 6_000, 18_000, 2),
    ("A020601", "空调机", "格力 KFR-72LW", 4_000, 6_000, 8),
    ("A050101", "办公桌", "", 1_200, 3_000, 10),
    ("A050102", "办公椅", "", 400, 1_000, 10),
    ("A050103", "文件柜", "", 900, 2_500, 8),
    ("A050105", "会议桌", "", 3_000, 12_000, 2),
    ("A020301", "公务轿车", "比亚迪 秦PLUS", 110_000, 180_000, 2),
    ("A020304", "新能源公务车", "吉利 几何E", 90_000, 150_000, 1),
    ("A020502", "中央空调机组", "美的 MDV", 120_000, 400_000, 1),
    ("A040100", "图书", "", 30, 120, 2),
    ("A020107", "办公软件", "WPS Office", 600, 2_000, 2),
];

const PEOPLE: &[&str] = &[
    "王芳",
    "李强",
    "张伟",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄勇",
    "周婷",
    "吴军",
    "艾力",
    "古丽",
    "买买提",
    "阿依努尔",
    "热依拉",
    "马骏",
    "孙丽",
    "朱涛",
];
const DEPARTMENTS: &[&str] = &[
    "办公室",
    "财务处",
    "资产处",
    "后勤服务中心",
    "信息中心",
    "人事处",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Builds `count` cards for one org (pure: the tests and the benchmark
/// use it too).
pub fn generate(seed: u64, count: usize, this_month: i64) -> Vec<Card> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let total_weight: u32 = KINDS.iter().map(|k| k.5).sum();
    (0..count)
        .map(|_| {
            let mut roll = rng.below(total_weight as u64) as u32;
            let kind = KINDS
                .iter()
                .find(|k| {
                    if roll < k.5 {
                        true
                    } else {
                        roll -= k.5;
                        false
                    }
                })
                .unwrap_or(&KINDS[0]);
            let (category, name, brand, low, high, _) = *kind;
            let quantity = match category {
                "A050101" | "A050102" | "A050103" => 1 + rng.below(12) as i64,
                "A040100" => 20 + rng.below(300) as i64,
                _ => 1,
            };
            let unit_price = (low + rng.below((high - low + 1) as u64) as i64) * 100;
            let original = unit_price * quantity;
            let months_ago = rng.below(12 * 11) as i64;
            let acquired_month = this_month - months_ago;
            let acquired_on = format!(
                "{}-{:02}",
                dates::month_text(acquired_month),
                1 + rng.below(28)
            );
            let use_status = match rng.below(100) {
                0..=84 => "in_use",
                85..=93 => "idle",
                94..=96 => "lent",
                _ => "repairing",
            };
            let floor = 1 + rng.below(6);
            let mut card = Card {
                name: name.to_string(),
                category: category.to_string(),
                brand: brand.to_string(),
                spec: brand.split(' ').nth(1).unwrap_or_default().to_string(),
                quantity,
                acquired_on,
                original_value: original,
                funding_fiscal: original,
                procurement_mode: if original >= 100_000 * 100 {
                    "government_centralised"
                } else {
                    "decentralised"
                }
                .into(),
                department: rng.pick(DEPARTMENTS).to_string(),
                custodian: rng.pick(PEOPLE).to_string(),
                location: format!("主楼{floor}{:02}室", 1 + rng.below(30)),
                use_status: use_status.into(),
                state: "booked".into(),
                ..Card::default()
            };
            if category.starts_with("A0203") {
                card.ext.insert(
                    "plate".into(),
                    json!(format!("新A{:05}", rng.below(100_000))),
                );
                card.ext.insert(
                    "fuel".into(),
                    json!(if category == "A020304" {
                        "electric"
                    } else {
                        "gasoline"
                    }),
                );
            }
            if card.normalise().is_err() {
                card.category = "A020101".into();
                let _ = card.normalise();
            }
            book_through(&mut card, this_month - 1);
            card
        })
        .collect()
}

/// `POST /demo/seed`: as the kernel (demo start) or an administrator.
/// Body: `{"orgs": [{id, level, …}], "per_org": n, "force": bool}`; by
/// default 150 cards in each unit and each of the first counties, and only
/// when the register is empty.
fn seed(req: &Request) -> Result<Response> {
    if identity::caller().is_some() {
        authz::require("assets.configure")?;
    }
    let input = Form::of(req)?;
    let force = input.flag("force");
    let existing = cards().find().count()?;
    if existing > 0 && !force {
        return Ok(Response::json(
            &json!({ "seeded": 0, "existing": existing }),
        ));
    }
    let per_org = input
        .get("per_org")
        .and_then(Value::as_u64)
        .unwrap_or(150)
        .min(20_000) as usize;
    let orgs: Vec<(String, String)> = input
        .get("orgs")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|o| {
                    Some((
                        o["id"].as_str()?.to_string(),
                        o["level"].as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let units: Vec<&String> = orgs
        .iter()
        .filter(|(_, l)| l == "unit")
        .map(|(id, _)| id)
        .collect();
    let counties: Vec<&String> = orgs
        .iter()
        .filter(|(_, l)| l == "county")
        .map(|(id, _)| id)
        .take(12)
        .collect();
    let targets: Vec<&String> = if units.is_empty() && counties.is_empty() {
        orgs.iter().map(|(id, _)| id).collect()
    } else {
        units.into_iter().chain(counties).collect()
    };
    if targets.is_empty() {
        return Err(Error::validation("orgs", "name the orgs to seed").with_code("required"));
    }
    let month = dates::this_month();
    let mut seeded = 0;
    for (i, org) in targets.iter().enumerate() {
        let seed = existing + i as u64 * 7919 + 1;
        let mut generated = generate(seed, per_org, month);
        for chunk in generated.chunks_mut(240) {
            seeded += insert_cards(chunk, Some(org.as_str()), "imported", None)?.len();
        }
    }
    // The demo start publishes last month's totals at once, so roll-ups
    // through the data center show the register without waiting for the
    // first monthly run.
    let mut warehouse_items = 0;
    if !force {
        crate::depreciation::publish_totals(month - 1)?;
        // The region's public warehouse, visible to every unit below it.
        let region: Vec<String> = orgs
            .iter()
            .filter(|(_, level)| level == "region")
            .map(|(id, _)| id.clone())
            .collect();
        warehouse_items = crate::warehouse::seed_demo(&region)?;
    }
    Ok(Response::json(
        &json!({ "seeded": seeded, "orgs": targets.len(), "warehouse_items": warehouse_items }),
    )
    .with_status(201))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_cards_are_valid_and_deterministic() {
        let month = dates::parse_month("2026-11").unwrap();
        let a = generate(42, 300, month);
        let b = generate(42, 300, month);
        assert_eq!(a, b);
        for card in &a {
            let mut check = card.clone();
            check.normalise().unwrap();
            assert!(card.net_value <= card.original_value);
            assert_eq!(card.depreciated_through, "2026-10");
        }
        assert!(a.iter().any(|c| c.use_status == "idle"));
        assert!(a.iter().any(|c| c.batch));
    }
}
