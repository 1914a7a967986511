//! The org tree: region → prefecture → county → unit. Division levels carry
//! their GB/T 2260 code; units carry a unified social credit code (GB 32100).
//! The identity issue adds editing and headcounts; this module owns the
//! tree's storage and the demo data.

use serde::Serialize;
use sqlx::Row;

use crate::db::{Db, now};

const DIVISIONS: &str = include_str!("../../data/xinjiang-divisions.tsv");

/// The root of every tree: the autonomous region.
pub const ROOT_CODE: &str = "650000";

#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub code: String,
    pub name: crate::core::text::LocalizedText,
    pub active: bool,
    pub headcount_authorized: i64,
    pub headcount_actual: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Org>,
}

const ORG_COLUMNS: &str =
    "id, parent_id, level, code, name_zh, name_en, active, headcount_authorized, headcount_actual";

fn row_to_org(r: &sqlx::any::AnyRow) -> Org {
    Org {
        id: r.get(0),
        parent_id: r.get(1),
        level: r.get(2),
        code: r.get(3),
        name: crate::core::text::LocalizedText {
            zh_cn: r.get(4),
            en: r.get(5),
        },
        active: crate::db::flag(r, 6),
        headcount_authorized: r.get(7),
        headcount_actual: r.get(8),
        children: Vec::new(),
    }
}

/// Levels from the top; a unit may sit under any level, including a unit.
pub const LEVELS: [&str; 4] = ["region", "prefecture", "county", "unit"];

fn level_may_be_under(level: &str, parent_level: &str) -> bool {
    match level {
        "prefecture" => parent_level == "region",
        "county" => parent_level == "prefecture",
        "unit" => true,
        _ => false,
    }
}

/// A GB/T 2260 code: six digits, extending the parent's significant prefix.
fn is_division_code(code: &str, level: &str, parent_code: &str) -> bool {
    let digits = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let prefix = match level {
        "prefecture" => &parent_code[..2.min(parent_code.len())],
        "county" => &parent_code[..4.min(parent_code.len())],
        _ => "",
    };
    digits && code.starts_with(prefix) && code != parent_code
}

/// A GB 32100 unified social credit code with a valid check character.
pub fn is_credit_code(code: &str) -> bool {
    const CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    const WEIGHTS: [usize; 18] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28, 1,
    ];
    code.len() == 18
        && code
            .chars()
            .zip(WEIGHTS)
            .try_fold(0usize, |sum, (c, w)| CHARS.find(c).map(|v| sum + v * w))
            .is_some_and(|sum| sum % 31 == 0)
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// The parent's id or code.
    #[serde(alias = "parent")]
    pub parent_id: String,
    pub level: String,
    pub code: String,
    pub name: crate::core::text::LocalizedText,
    #[serde(default)]
    pub headcount_authorized: i64,
    #[serde(default)]
    pub headcount_actual: i64,
}

#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrgUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<crate::core::text::LocalizedText>,
    /// Moves the org (and its subtree) under another parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headcount_authorized: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headcount_actual: Option<i64>,
}

use crate::core::error::{ApiError, ApiResult, ErrorCode};

pub async fn get<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: &str,
) -> sqlx::Result<Option<Org>> {
    let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(row_to_org))
}

/// The org with this id, or else with this code.
pub async fn by_id_or_code(
    conn: &mut sqlx::AnyConnection,
    id_or_code: &str,
) -> sqlx::Result<Option<Org>> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1 OR code = $1 ORDER BY (id = $1) DESC LIMIT 1"
    ))
    .bind(id_or_code)
    // fetch_all: fetch_optional costs PostgreSQL a second exchange
    // (services/storage `get_on`).
    .fetch_all(conn)
    .await?;
    Ok(row.first().map(row_to_org))
}

/// One entry of the org directory: what anyone logged in may know of an
/// active org (its id, code, names, level and parent), to name a transfer's
/// receiver or label a record from another district.
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryEntry {
    pub id: String,
    pub parent_id: Option<String>,
    pub level: String,
    pub code: String,
    pub name: crate::core::text::LocalizedText,
}

/// Active orgs at `level` (any when `None`) whose name or code holds `q`,
/// by code; at most `limit`.
pub async fn directory(
    db: &Db,
    level: Option<&str>,
    q: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<DirectoryEntry>> {
    let pattern = q.map(|q| format!("%{}%", q.replace(['%', '_'], "")));
    let rows = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs
         WHERE active = 1 AND ($1 IS NULL OR level = $1)
           AND ($2 IS NULL OR name_zh LIKE $2 OR name_en LIKE $2 OR code LIKE $2)
         ORDER BY code LIMIT $3"
    ))
    .bind(level)
    .bind(pattern)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let org = row_to_org(r);
            DirectoryEntry {
                id: org.id,
                parent_id: org.parent_id,
                level: org.level,
                code: org.code,
                name: org.name,
            }
        })
        .collect())
}

/// Org id → (name, code), for labelling bindings.
pub async fn names(
    db: &Db,
) -> sqlx::Result<std::collections::HashMap<String, (serde_json::Value, String)>> {
    let rows = sqlx::query("SELECT id, name_zh, name_en, code FROM orgs")
        .fetch_all(db)
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let name =
                serde_json::json!({"zh-CN": r.get::<String, _>(1), "en": r.get::<String, _>(2)});
            (r.get(0), (name, r.get(3)))
        })
        .collect())
}

fn check_headcounts(authorized: i64, actual: i64) -> ApiResult<()> {
    if authorized < 0 {
        return Err(ApiError::validation(
            "headcount_authorized",
            "must not be negative",
        ));
    }
    if actual < 0 {
        return Err(ApiError::validation(
            "headcount_actual",
            "must not be negative",
        ));
    }
    Ok(())
}

fn check_name(name: &crate::core::text::LocalizedText) -> ApiResult<()> {
    if name.zh_cn.trim().is_empty() || name.en.trim().is_empty() {
        return Err(ApiError::validation("name", "name needs both zh-CN and en"));
    }
    Ok(())
}

pub async fn create(conn: &mut sqlx::AnyConnection, req: &NewOrg) -> ApiResult<Org> {
    let parent = get(&mut *conn, &req.parent_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("org {} not found", req.parent_id)).with_field("parent_id")
    })?;
    if !parent.active {
        return Err(ApiError::validation(
            "parent_id",
            "the parent org is deactivated",
        ));
    }
    if !LEVELS.contains(&req.level.as_str()) || !level_may_be_under(&req.level, &parent.level) {
        return Err(ApiError::validation(
            "level",
            format!("a {} cannot be placed under a {}", req.level, parent.level),
        ));
    }
    let code_ok = if req.level == "unit" {
        is_credit_code(&req.code)
    } else {
        is_division_code(&req.code, &req.level, &parent.code)
    };
    if !code_ok {
        let what = if req.level == "unit" {
            "an 18-character unified social credit code with a valid check character"
        } else {
            "a six-digit GB/T 2260 division code within the parent's"
        };
        return Err(ApiError::validation("code", format!("code must be {what}")));
    }
    check_name(&req.name)?;
    check_headcounts(req.headcount_authorized, req.headcount_actual)?;
    let id = org_id(&req.code);
    let inserted = sqlx::query(
        "INSERT INTO orgs (id, parent_id, level, code, name_zh, name_en, created_at, headcount_authorized, headcount_actual, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&req.parent_id)
    .bind(&req.level)
    .bind(&req.code)
    .bind(req.name.zh_cn.trim())
    .bind(req.name.en.trim())
    .bind(now())
    .bind(req.headcount_authorized)
    .bind(req.headcount_actual)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("an org with code {} exists", req.code),
        )
        .with_field("code"));
    }
    get(&mut *conn, &id)
        .await?
        .ok_or_else(|| ApiError::internal("org vanished"))
}

pub async fn update(
    conn: &mut sqlx::AnyConnection,
    index: &crate::core::scope::OrgIndex,
    id: &str,
    req: &OrgUpdate,
) -> ApiResult<Org> {
    let org = get(&mut *conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("org {id} not found")))?;
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    check_headcounts(
        req.headcount_authorized.unwrap_or(org.headcount_authorized),
        req.headcount_actual.unwrap_or(org.headcount_actual),
    )?;
    if org.parent_id.is_none() && (req.parent_id.is_some() || req.active == Some(false)) {
        return Err(ApiError::validation(
            "parent_id",
            "the root org cannot be moved or deactivated",
        ));
    }
    if let Some(parent_id) = &req.parent_id {
        if index.is_within(parent_id, id) {
            return Err(ApiError::validation(
                "parent_id",
                "an org cannot move under itself or its own subtree",
            ));
        }
        let parent = get(&mut *conn, parent_id)
            .await?
            .ok_or_else(|| ApiError::not_found("parent not found"))?;
        if !level_may_be_under(&org.level, &parent.level) {
            return Err(ApiError::validation(
                "parent_id",
                format!("a {} cannot be placed under a {}", org.level, parent.level),
            ));
        }
    }
    sqlx::query(
        "UPDATE orgs SET name_zh = COALESCE($1, name_zh), name_en = COALESCE($2, name_en),
            parent_id = COALESCE($3, parent_id), active = COALESCE($4, active),
            headcount_authorized = COALESCE($5, headcount_authorized),
            headcount_actual = COALESCE($6, headcount_actual), updated_at = $7
         WHERE id = $8",
    )
    .bind(req.name.as_ref().map(|n| n.zh_cn.trim().to_string()))
    .bind(req.name.as_ref().map(|n| n.en.trim().to_string()))
    .bind(&req.parent_id)
    .bind(req.active.map(i64::from))
    .bind(req.headcount_authorized)
    .bind(req.headcount_actual)
    .bind(now())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    get(&mut *conn, id)
        .await?
        .ok_or_else(|| ApiError::internal("org vanished"))
}

/// An org that holds anything (children, users, role bindings) is never
/// deleted; deactivate it instead.
pub async fn delete_if_empty(conn: &mut sqlx::AnyConnection, id: &str) -> ApiResult<()> {
    let held: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM orgs WHERE parent_id = $1) + (SELECT COUNT(*) FROM users WHERE org_id = $1)
              + (SELECT COUNT(*) FROM bindings WHERE org_id = $1) + (SELECT COUNT(*) FROM api_tokens WHERE org_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    if held > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "this org holds data (sub-orgs, users or roles) and is never deleted; deactivate it instead",
        ));
    }
    sqlx::query("DELETE FROM orgs WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The subtrees of `tree` whose roots satisfy `is_root`, without nesting a
/// root inside another root's subtree twice.
pub fn subtrees(
    tree: Vec<Org>,
    is_root: &dyn Fn(&str) -> bool,
    index: &crate::core::scope::OrgIndex,
) -> Vec<Org> {
    let mut out = Vec::new();
    fn walk(
        org: Org,
        is_root: &dyn Fn(&str) -> bool,
        index: &crate::core::scope::OrgIndex,
        out: &mut Vec<Org>,
    ) {
        let covered_above = index
            .ancestors_and_self(&org.id)
            .iter()
            .skip(1)
            .any(|a| is_root(a));
        if is_root(&org.id) && !covered_above {
            out.push(org);
        } else {
            for child in org.children {
                walk(child, is_root, index, out);
            }
        }
    }
    for org in tree {
        walk(org, is_root, index, &mut out);
    }
    out
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
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING",
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

/// Demo accounts for `tianshan up`, so a newcomer can see the platform
/// through other eyes than the admin's: (username, display name, division
/// whose offices administration is their unit, role at that division).
pub const DEMO_USERS: &[(&str, &str, &str, &str)] = &[
    (
        "demo.region",
        "区局审计员 Regional auditor",
        "650000",
        "auditor",
    ),
    (
        "demo.urumqi",
        "乌鲁木齐市局管理员 Ürümqi administrator",
        "650100",
        "org-admin",
    ),
    (
        "demo.kashgar",
        "喀什地区局职员 Kashgar staff",
        "653100",
        "member",
    ),
];

/// Creates the demo accounts once; returns their shared password when it
/// created them (from `TIANSHAN_DEMO_PASSWORD`, else generated).
pub async fn seed_demo_users(db: &Db) -> crate::core::error::ApiResult<Option<String>> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(DEMO_USERS[0].0)
        .fetch_optional(db)
        .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let password = std::env::var("TIANSHAN_DEMO_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| crate::core::ids::random_token(16));
    let hash = crate::identity::auth::hash_password_off_thread(&password).await;
    for (username, display, division, role) in DEMO_USERS {
        let unit = org_id(&unified_social_credit_code(division, 1));
        let mut conn = db.acquire().await?;
        let id = crate::identity::users::create(&mut conn, username, display, &hash, &unit, false)
            .await?;
        drop(conn);
        if *role != crate::identity::authz::MEMBER {
            sqlx::query("INSERT INTO bindings (id, user_id, role, org_id, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(format!("bind-{}", crate::core::ids::random_token(12)))
                .bind(&id)
                .bind(role)
                .bind(org_id(division))
                .bind(now())
                .execute(db)
                .await?;
        }
    }
    Ok(Some(password))
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
    let rows = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs ORDER BY code"))
        .fetch_all(db)
        .await?;
    let flat: Vec<Org> = rows.iter().map(row_to_org).collect();
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
    fn division_and_credit_codes_are_checked() {
        assert!(is_division_code("650102", "county", "650100"));
        assert!(!is_division_code("660102", "county", "650100"));
        assert!(!is_division_code("65010", "county", "650100"));
        assert!(is_credit_code(&unified_social_credit_code("650100", 7)));
        let mut bad = unified_social_credit_code("650100", 7);
        bad.replace_range(17..18, if bad.ends_with('0') { "1" } else { "0" });
        assert!(!is_credit_code(&bad));
        assert!(level_may_be_under("county", "prefecture"));
        assert!(!level_may_be_under("county", "region"));
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
