//! The org tree: region → prefecture → county → unit. Division levels carry
//! their GB/T 2260 code; units carry a unified social credit code (GB 32100).
//! The identity issue adds editing and headcounts; this module owns the
//! tree's storage and the demo data.

use serde::Serialize;
use sqlx::Row;

use crate::db::{Db, now};

const DIVISIONS: &str = include_str!("../data/xinjiang-divisions.tsv");

/// The root of every tree: the autonomous region.
pub const ROOT_CODE: &str = "650000";

#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub code: String,
    pub name: crate::package::LocalizedText,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Org>,
}

struct Division<'a> {
    code: &'a str,
    parent: Option<&'a str>,
    level: &'a str,
    name_zh: &'a str,
    name_en: &'a str,
}

fn divisions() -> impl Iterator<Item = Division<'static>> {
    DIVISIONS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            Division {
                code: f[0],
                parent: Some(f[1]).filter(|p| !p.is_empty()),
                level: f[2],
                name_zh: f[3],
                name_en: f[4],
            }
        })
}

/// Org ids are stable, readable and derived from the code.
fn org_id(code: &str) -> String {
    format!("org-{code}")
}

async fn insert_org(
    db: &Db,
    code: &str,
    parent: Option<&str>,
    level: &str,
    zh: &str,
    en: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO orgs (id, parent_id, level, code, name_zh, name_en, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
    )
    .bind(org_id(code))
    .bind(parent.map(org_id))
    .bind(level)
    .bind(code)
    .bind(zh)
    .bind(en)
    .bind(now())
    .execute(db)
    .await?;
    Ok(())
}

/// Creates the region root on first start; returns its id.
pub async fn ensure_root(db: &Db) -> anyhow::Result<String> {
    let root = divisions().next().expect("division table has a root");
    insert_org(db, root.code, None, root.level, root.name_zh, root.name_en).await?;
    Ok(org_id(ROOT_CODE))
}

/// Seeds the real prefectures and counties of Xinjiang and, under the
/// region and each prefecture, its offices administration as a unit.
pub async fn seed_demo_tree(db: &Db) -> anyhow::Result<usize> {
    let mut tx_count = 0;
    for d in divisions() {
        insert_org(db, d.code, d.parent, d.level, d.name_zh, d.name_en).await?;
        tx_count += 1;
        if d.level == "region" || d.level == "prefecture" {
            let (zh, en) = if d.level == "region" {
                (
                    "自治区机关事务管理局".to_string(),
                    "Regional Government Offices Administration".to_string(),
                )
            } else {
                (
                    format!("{}机关事务管理局", d.name_zh),
                    format!("{} Government Offices Administration", d.name_en),
                )
            };
            let code = unified_social_credit_code(d.code, 1);
            insert_org(db, &code, Some(d.code), "unit", &zh, &en).await?;
            tx_count += 1;
        }
    }
    Ok(tx_count)
}

/// A GB 32100-2015 code for a government organ (registration authority 1,
/// organ type 1) in `division`, with a valid check character.
pub fn unified_social_credit_code(division: &str, sequence: u32) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let body = format!("11{division}MB{sequence:07}");
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(c, w)| CHARS.iter().position(|x| *x == c).expect("code alphabet") as u32 * w)
        .sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", CHARS[check as usize] as char)
}

/// The whole tree, children ordered by code.
pub async fn tree(db: &Db) -> sqlx::Result<Vec<Org>> {
    let rows =
        sqlx::query("SELECT id, parent_id, level, code, name_zh, name_en FROM orgs ORDER BY code")
            .fetch_all(db)
            .await?;
    let flat: Vec<Org> = rows
        .iter()
        .map(|r| Org {
            id: r.get(0),
            parent_id: r.get(1),
            level: r.get(2),
            code: r.get(3),
            name: crate::package::LocalizedText {
                zh_cn: r.get(4),
                en: r.get(5),
            },
            children: Vec::new(),
        })
        .collect();
    fn attach(parent: Option<&str>, flat: &[Org]) -> Vec<Org> {
        flat.iter()
            .filter(|o| o.parent_id.as_deref() == parent)
            .map(|o| Org {
                children: attach(Some(&o.id), flat),
                ..o.clone()
            })
            .collect()
    }
    Ok(attach(None, &flat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_table_is_the_real_xinjiang() {
        let all: Vec<_> = divisions().collect();
        assert_eq!(all.iter().filter(|d| d.level == "region").count(), 1);
        assert_eq!(all.iter().filter(|d| d.level == "prefecture").count(), 14);
        assert!(all.iter().filter(|d| d.level == "county").count() >= 90);
        for d in &all {
            assert_eq!(d.code.len(), 6, "{}", d.code);
            if let Some(parent) = d.parent {
                assert!(
                    all.iter().any(|p| p.code == parent),
                    "{} has no parent",
                    d.code
                );
            }
        }
    }

    #[test]
    fn credit_codes_have_valid_check_characters() {
        // Check character recomputed independently: a code is valid when
        // the weighted sum of all 18 characters is divisible by 31.
        let code = unified_social_credit_code("650000", 1);
        assert_eq!(code.len(), 18);
        let chars = "0123456789ABCDEFGHJKLMNPQRTUWXY";
        let weights = [
            1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28, 1,
        ];
        let sum: usize = code
            .chars()
            .zip(weights)
            .map(|(c, w)| chars.find(c).unwrap() * w)
            .sum();
        assert_eq!(sum % 31, 0, "{code}");
    }
}
