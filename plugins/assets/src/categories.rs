//! The GB/T 14885-2022 category tree, shipped as data (`data/categories.csv`)
//! with each class's card template and default depreciation life.

use std::sync::OnceLock;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub code: &'static str,
    pub parent: Option<&'static str>,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    /// Which extra card fields apply: general, house, structure, land,
    /// vehicle, software, furniture, book, relic.
    pub template: &'static str,
    pub life_years: i64,
    pub depreciable: bool,
    /// Furniture and books may be carded in batches.
    pub batch: bool,
    pub unit: &'static str,
}

const TABLE: &str = include_str!("../data/categories.csv");

pub fn all() -> &'static [Category] {
    static PARSED: OnceLock<Vec<Category>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let f: Vec<&'static str> = line.split(',').collect();
                Category {
                    code: f[0],
                    parent: Some(f[1]).filter(|p| !p.is_empty()),
                    name_zh: f[2],
                    name_en: f[3],
                    template: f[4],
                    life_years: f[5].parse().unwrap_or(0),
                    depreciable: f[6] == "1",
                    batch: f[7] == "1",
                    unit: f[8],
                }
            })
            .collect()
    })
}

pub fn find(code: &str) -> Option<&'static Category> {
    all().iter().find(|c| c.code == code)
}

/// A category as a register gives it: its code, or its exact zh-CN or
/// en name (`会议桌` is A050105).
pub fn resolve(text: &str) -> Option<&'static Category> {
    let text = text.trim();
    find(text).or_else(|| {
        all()
            .iter()
            .find(|c| c.name_zh == text || c.name_en.eq_ignore_ascii_case(text))
    })
}

/// The likeliest category for a name that is not one: the most specific
/// whose name is contained in it or contains it (`台式电脑` → 台式计算机 is
/// not found this way, but `木质会议桌` → 会议桌 is).
pub fn suggest(text: &str) -> Option<&'static Category> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    all()
        .iter()
        .filter(|c| text.contains(c.name_zh) || c.name_zh.contains(text))
        .max_by_key(|c| {
            (
                c.name_zh.chars().count(),
                c.code.trim_end_matches('0').len(),
            )
        })
}

/// The name of a code, or of a top-level group by its three-character
/// prefix (`A02`, what `category_top` holds), in the language asked for;
/// else the code itself.
pub fn name(code: &str, lang: &str) -> String {
    let found = all().iter().find(|c| {
        c.code == code || (code.len() == 3 && c.parent.is_none() && c.code.starts_with(code))
    });
    match found {
        Some(c) if lang.starts_with("en") => c.name_en.to_string(),
        Some(c) => c.name_zh.to_string(),
        None => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_a_tree_with_lives() {
        assert!(all().len() > 50);
        for c in all() {
            assert_eq!(c.code.len(), 7, "{}", c.code);
            if let Some(p) = c.parent {
                assert!(find(p).is_some(), "{} has unknown parent {p}", c.code);
            }
            if c.depreciable {
                assert!(c.life_years > 0, "{} depreciates without a life", c.code);
            }
        }
        assert_eq!(find("A020301").unwrap().life_years, 8);
        assert!(!find("A010300").unwrap().depreciable);
        assert_eq!(name("A02", "zh-CN"), "设备");
        assert_eq!(name("A020101", "en"), "Desktop computers");
        assert_eq!(resolve("会议桌").map(|c| c.code), Some("A050105"));
        assert_eq!(resolve("A050105").map(|c| c.code), Some("A050105"));
        assert_eq!(suggest("木质会议桌").map(|c| c.code), Some("A050105"));
    }
}
