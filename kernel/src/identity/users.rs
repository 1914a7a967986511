//! Users, the password policy and login throttling.
//!
//! Password rules follow OWASP ASVS 2.1: at least 8 characters, at least 64
//! allowed (we allow 128), a blocklist of common passwords, and no
//! composition rules.

use std::net::IpAddr;

use serde::Serialize;
use sqlx::Row;

use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::core::net::IpNet;
use crate::db::{Db, now};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// Checks a new password; the error names the `password` field.
pub fn check_password(password: &str, username: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    let refuse = |m: &str| Err(ApiError::validation("password", m));
    if chars < MIN_PASSWORD_CHARS {
        return refuse("password must be at least 8 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return refuse("password must be at most 128 characters");
    }
    let lower = password.to_lowercase();
    if lower == username.to_lowercase() {
        return refuse("password must not be the username");
    }
    if COMMON_PASSWORDS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|common| common == lower)
    {
        return refuse("this password is too common; choose another");
    }
    Ok(())
}

pub fn is_valid_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub org_id: String,
    pub disabled: bool,
    pub created_at: i64,
    /// The next login must choose a new password first.
    pub must_change_password: bool,
    #[serde(flatten)]
    pub profile: Profile,
}

/// What administrators say about a person, beyond the account.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Profile {
    /// A code of [`POST_RANKS`].
    pub post_rank: Option<String>,
    /// 职务, free text.
    pub position: Option<String>,
    pub department: Option<String>,
}

/// The columns [`row_to_user`] reads. `position` is a keyword in SQL, so
/// the column is `post_title`.
pub const USER_COLUMNS: &str = "id, username, display_name, org_id, disabled, created_at, \
     must_change_password, post_rank, post_title, department";

pub fn row_to_user(r: &sqlx::any::AnyRow) -> User {
    User {
        id: r.get("id"),
        username: r.get("username"),
        display_name: r.get("display_name"),
        org_id: r.get("org_id"),
        disabled: crate::db::flag(r, "disabled"),
        created_at: r.get("created_at"),
        must_change_password: crate::db::flag(r, "must_change_password"),
        profile: Profile {
            post_rank: r.get("post_rank"),
            position: r.get("post_title"),
            department: r.get("department"),
        },
    }
}

pub async fn get(db: &Db, id: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(row_to_user))
}

/// A user by id or username, on a connection of the caller's choosing (a
/// plugin's read connection for the `identity.profile` import).
pub async fn by_id_or_username(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> sqlx::Result<Option<User>> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR username = $1"
    ))
    .bind(key)
    .fetch_all(&mut *conn)
    .await?;
    // An id wins over another account's username that happens to equal it.
    Ok(rows.iter().map(row_to_user).min_by_key(|u| u.id != key))
}

/// The post ranks (职务层次) of the civil service, which the office-area
/// standard (发改投资〔2014〕2674号) and the vehicle rules decide on; the
/// standard names each rank by the organ's level (a county's 县级正职 is
/// `division`, a province's 正处 too), so a plugin maps the rank and the
/// organ level to its figure. Codes are the contract (`identity.profile`);
/// labels are for the administration console (`GET /api/v1/post-ranks`).
pub const POST_RANKS: &[(&str, &str, &str)] = &[
    ("ministerial", "省部级正职", "Minister level, principal"),
    ("vice_ministerial", "省部级副职", "Minister level, deputy"),
    ("bureau", "厅局级正职", "Bureau level, principal"),
    ("vice_bureau", "厅局级副职", "Bureau level, deputy"),
    ("division", "县处级正职", "Division level, principal"),
    ("vice_division", "县处级副职", "Division level, deputy"),
    ("section", "乡科级正职", "Section level, principal"),
    ("vice_section", "乡科级副职", "Section level, deputy"),
    ("staff", "科员及以下", "Staff"),
];

/// What an administrator sets of a user's profile: each field absent
/// keeps the stored value, an empty string clears it.
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize)]
pub struct ProfileChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_rank: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

/// The longest position or department name kept, in characters.
const PROFILE_TEXT_CHARS: usize = 64;

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        self.post_rank.is_none() && self.position.is_none() && self.department.is_none()
    }

    /// The profile after the change, checked: a known rank code, short
    /// texts without control characters.
    pub fn applied_to(&self, stored: &Profile) -> ApiResult<Profile> {
        fn merged(change: &Option<String>, stored: &Option<String>) -> Option<String> {
            match change {
                None => stored.clone(),
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(v.trim().to_string()),
            }
        }
        let rank = merged(&self.post_rank, &stored.post_rank);
        if let Some(code) = &rank
            && !POST_RANKS.iter().any(|(c, _, _)| c == code)
        {
            return Err(ApiError::validation(
                "post_rank",
                format!("{code} is not a post rank; GET /api/v1/post-ranks lists them"),
            ));
        }
        let position = merged(&self.position, &stored.position);
        let department = merged(&self.department, &stored.department);
        for (field, value) in [("position", &position), ("department", &department)] {
            if let Some(v) = value
                && (v.chars().count() > PROFILE_TEXT_CHARS || v.chars().any(char::is_control))
            {
                return Err(ApiError::validation(
                    field,
                    format!("{field} must be at most {PROFILE_TEXT_CHARS} characters on one line"),
                ));
            }
        }
        Ok(Profile {
            post_rank: rank,
            position,
            department,
        })
    }
}

/// Stores a checked profile (from [`ProfileChange::applied_to`]).
pub async fn set_profile(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    profile: &Profile,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET post_rank = $1, post_title = $2, department = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(&profile.post_rank)
    .bind(&profile.position)
    .bind(&profile.department)
    .bind(now())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts a user (password already checked) as a member of their unit.
/// The caller reloads authorization and writes the audit record.
/// `password_hash` comes from `auth::hash_password_off_thread`, before the
/// write begins: hashing holds no transaction.
pub async fn create(
    tx: &mut sqlx::AnyConnection,
    username: &str,
    display_name: &str,
    password_hash: &str,
    unit: &str,
    must_change: bool,
) -> ApiResult<String> {
    let id = format!("user-{}", crate::core::ids::random_token(12));
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, display_name, password_hash, org_id, created_at, updated_at, must_change_password)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING",
    )
    .bind(&id)
    .bind(username)
    .bind(display_name)
    .bind(password_hash)
    .bind(unit)
    .bind(now())
    .bind(now())
    .bind(i64::from(must_change))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(
            ApiError::new(ErrorCode::Conflict, format!("username {username} is taken"))
                .with_field("username"),
        );
    }
    // Every user is a member of their own unit.
    sqlx::query(
        "INSERT INTO bindings (id, user_id, role, org_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(format!("bind-{}", crate::core::ids::random_token(12)))
    .bind(&id)
    .bind(crate::identity::authz::MEMBER)
    .bind(unit)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

/// Ends every session of a user (password change, reset, disable).
pub async fn end_sessions<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

/// Sets a password; `must_change` when an administrator chose it, so the
/// user replaces it at their next login.
/// `password_hash` from `auth::hash_password_off_thread`, before the write.
pub async fn set_password<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: &str,
    password_hash: &str,
    must_change: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(password_hash)
    .bind(i64::from(must_change))
    .bind(now())
    .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Failures allowed in a window before blocking.
const ACCOUNT_FREE_FAILURES: i64 = 5;
const ADDRESS_FREE_FAILURES: i64 = 20;
const WINDOW_SECS: i64 = 15 * 60;
/// The first block, doubling with each failure past the free ones: long
/// enough that a lock outlives a node's restart, short enough for a typo.
const FIRST_BLOCK_SECS: i64 = 30;
const MAX_BLOCK_SECS: i64 = 15 * 60;
/// A reservation older than this belongs to an attempt that died (a node
/// stopped mid-check); it no longer counts.
const STALE_PENDING_SECS: i64 = 60;
/// An address stays "usual" for an account this long after a good login.
const KNOWN_ADDRESS_SECS: i64 = 90 * 86_400;

/// Failed-login throttling, in the database. Each attempt first reserves a
/// slot under every key it falls under, in one conditional `UPDATE` per key,
/// so fifty simultaneous guesses cannot all pass a check that none of them
/// has counted yet. Keys: the address (any account), and the account — or,
/// from an address the account logged in from before, the account at that
/// address, so a stranger's guesses do not lock the owner out of their
/// usual desk.
pub struct Throttle {
    db: Db,
    trusted_proxies: Vec<IpNet>,
}

/// An attempt holding reservations; hand it back to [`Throttle::failed`]
/// or [`Throttle::succeeded`].
pub struct Attempt {
    keys: Vec<(String, i64)>,
    account_key: String,
    address: Option<IpAddr>,
}

fn account_name(username: &str) -> String {
    username.to_lowercase()
}

impl Throttle {
    pub fn new(db: Db, trusted_proxies: Vec<IpNet>) -> Self {
        Throttle {
            db,
            trusted_proxies,
        }
    }

    /// The client's address for this request (see [`client_address`]).
    pub fn client_of(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<IpAddr> {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        client_address(peer, forwarded, &self.trusted_proxies)
    }

    async fn is_known_address(&self, username: &str, addr: IpAddr) -> sqlx::Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT a.last_ok_at FROM login_addresses a JOIN users u ON u.id = a.user_id
             WHERE u.username = $1 AND a.address = $2",
        )
        .bind(username)
        .bind(addr.to_string())
        .fetch_optional(&self.db)
        .await?;
        Ok(found.is_some_and(|at| at > now() - KNOWN_ADDRESS_SECS))
    }

    /// Reserves one try under `key`; `false` when the key is blocked or
    /// its free tries are all taken by attempts still being checked.
    async fn reserve(&self, key: &str, free: i64) -> sqlx::Result<bool> {
        let t = now();
        sqlx::query(
            "INSERT INTO login_throttle (key, window_start) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(t)
        .execute(&self.db)
        .await?;
        // Old values on the right of SET and in WHERE: an expired window
        // counts as no failures, stale reservations as none. Past the free
        // tries, one try at a time once the block ends.
        let reserved = sqlx::query(
            "UPDATE login_throttle SET
                failures = CASE WHEN window_start < $2 THEN 0 ELSE failures END,
                window_start = CASE WHEN window_start < $2 THEN $3 ELSE window_start END,
                pending = CASE WHEN pending_at < $4 THEN 0 ELSE pending END + 1,
                pending_at = $3
             WHERE key = $1 AND blocked_until <= $3
               AND ((CASE WHEN window_start < $2 THEN 0 ELSE failures END)
                    + (CASE WHEN pending_at < $4 THEN 0 ELSE pending END) < $5
                 OR ((CASE WHEN window_start < $2 THEN 0 ELSE failures END) >= $5
                    AND (CASE WHEN pending_at < $4 THEN 0 ELSE pending END) = 0))",
        )
        .bind(key)
        .bind(t - WINDOW_SECS)
        .bind(t)
        .bind(t - STALE_PENDING_SECS)
        .bind(free)
        .execute(&self.db)
        .await?;
        Ok(reserved.rows_affected() == 1)
    }

    async fn release(&self, key: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE login_throttle SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END
             WHERE key = $1",
        )
        .bind(key)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn refusal(&self, key: &str) -> sqlx::Result<ApiError> {
        let until: Option<i64> =
            sqlx::query_scalar("SELECT blocked_until FROM login_throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.db)
                .await?;
        let wait = (until.unwrap_or(0) - now()).max(1) as u64;
        let mut e = ApiError::new(
            ErrorCode::TooManyAttempts,
            format!("too many failed logins; try again in {wait} s"),
        );
        e.retry_after = Some(wait);
        Ok(e)
    }

    /// Reserves a try for `username` from `addr`, or answers 429 with
    /// Retry-After. Run it, the check and the verdict on a task a dropped
    /// request does not cancel (a lost reservation goes stale after a
    /// minute, it never locks anyone for good).
    pub async fn begin(&self, username: &str, addr: Option<IpAddr>) -> ApiResult<Attempt> {
        let name = account_name(username);
        let account_key = match addr {
            Some(a) if self.is_known_address(username, a).await? => format!("acct:{name}@{a}"),
            _ => format!("acct:{name}"),
        };
        let mut wanted = vec![(account_key.clone(), ACCOUNT_FREE_FAILURES)];
        if let Some(a) = addr {
            wanted.push((format!("addr:{a}"), ADDRESS_FREE_FAILURES));
        }
        let mut held: Vec<(String, i64)> = Vec::new();
        for (key, free) in wanted {
            if !self.reserve(&key, free).await? {
                for (k, _) in &held {
                    self.release(k).await?;
                }
                return Err(self.refusal(&key).await?);
            }
            held.push((key, free));
        }
        Ok(Attempt {
            keys: held,
            account_key,
            address: addr,
        })
    }

    /// Counts the failure; past the free tries each one blocks the key for
    /// 30 s, 60 s, 120 s … up to 15 minutes.
    pub async fn failed(&self, attempt: Attempt) -> sqlx::Result<()> {
        let t = now();
        for (key, free) in &attempt.keys {
            let failures: Option<i64> = sqlx::query_scalar(
                "UPDATE login_throttle SET failures = failures + 1,
                    pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END
                 WHERE key = $1 RETURNING failures",
            )
            .bind(key)
            .fetch_optional(&self.db)
            .await?;
            if let Some(failures) = failures
                && failures >= *free
            {
                let exponent = (failures - free).min(10) as u32;
                let until = t + (FIRST_BLOCK_SECS << exponent).min(MAX_BLOCK_SECS);
                sqlx::query(
                    "UPDATE login_throttle SET blocked_until = $2
                     WHERE key = $1 AND blocked_until < $2",
                )
                .bind(key)
                .bind(until)
                .execute(&self.db)
                .await?;
            }
        }
        // Forget keys whose window and block are long over, now and then.
        if rand::random::<u8>() < 4 {
            sqlx::query(
                "DELETE FROM login_throttle WHERE window_start < $1 AND blocked_until < $2 AND pending = 0",
            )
            .bind(t - WINDOW_SECS)
            .bind(t)
            .execute(&self.db)
            .await?;
        }
        Ok(())
    }

    /// Clears the account's failures and remembers the address as one the
    /// account logs in from (`user_id` given: a real login, not a password
    /// check).
    pub async fn succeeded(&self, attempt: Attempt, user_id: Option<&str>) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(&attempt.account_key)
            .execute(&self.db)
            .await?;
        for (key, _) in attempt
            .keys
            .iter()
            .filter(|(k, _)| *k != attempt.account_key)
        {
            self.release(key).await?;
        }
        if let (Some(user_id), Some(addr)) = (user_id, attempt.address) {
            sqlx::query(
                "INSERT INTO login_addresses (user_id, address, last_ok_at) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, address) DO UPDATE SET last_ok_at = $3",
            )
            .bind(user_id)
            .bind(addr.to_string())
            .bind(now())
            .execute(&self.db)
            .await?;
        }
        Ok(())
    }

    /// Lifts every block on an account (an administrator's unlock); answers
    /// how many keys were blocked.
    pub async fn unlock(conn: &mut sqlx::AnyConnection, username: &str) -> sqlx::Result<u64> {
        let name = account_name(username);
        let blocked = sqlx::query("DELETE FROM login_throttle WHERE key = $1 OR key LIKE $2")
            .bind(format!("acct:{name}"))
            .bind(format!("acct:{name}@%"))
            .execute(&mut *conn)
            .await?;
        Ok(blocked.rows_affected())
    }

    /// Until when the account is blocked for strangers, if it is.
    pub async fn locked_until(&self, username: &str) -> sqlx::Result<Option<i64>> {
        let until: Option<i64> =
            sqlx::query_scalar("SELECT blocked_until FROM login_throttle WHERE key = $1")
                .bind(format!("acct:{}", account_name(username)))
                .fetch_optional(&self.db)
                .await?;
        Ok(until.filter(|u| *u > now()))
    }
}

/// The client's address: the TCP peer, or — only when the peer is a
/// trusted proxy — the nearest address in `X-Forwarded-For` that is not
/// itself a trusted proxy. Anyone else's `X-Forwarded-For` is ignored, so a
/// client cannot pick the address its guesses are counted under.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut nearest = peer;
    for hop in header.rsplit(',') {
        let Ok(addr) = hop.trim().parse::<IpAddr>() else {
            // A garbled hop: trust nothing left of it.
            break;
        };
        nearest = addr;
        if !is_trusted(&addr) {
            break;
        }
    }
    Some(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_change_keeps_clears_and_checks() {
        let stored = Profile {
            post_rank: Some("section".into()),
            position: Some("科长".into()),
            department: Some("办公室".into()),
        };
        let change = ProfileChange {
            post_rank: Some(" vice_division ".into()),
            department: Some("  ".into()),
            ..ProfileChange::default()
        };
        let after = change.applied_to(&stored).unwrap();
        assert_eq!(after.post_rank.as_deref(), Some("vice_division"));
        assert_eq!(after.position.as_deref(), Some("科长"), "absent keeps");
        assert_eq!(after.department, None, "blank clears");
        let unknown = ProfileChange {
            post_rank: Some("emperor".into()),
            ..ProfileChange::default()
        };
        assert_eq!(
            unknown.applied_to(&stored).unwrap_err().field.as_deref(),
            Some("post_rank")
        );
        let long = ProfileChange {
            position: Some("长".repeat(65)),
            ..ProfileChange::default()
        };
        assert_eq!(
            long.applied_to(&stored).unwrap_err().field.as_deref(),
            Some("position")
        );
        assert!(ProfileChange::default().is_empty());
        assert!(POST_RANKS.iter().all(|(code, zh, en)| {
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !zh.is_empty()
                && !en.is_empty()
        }));
    }

    #[test]
    fn password_rules_follow_owasp() {
        assert!(check_password("short", "u").is_err());
        assert!(check_password("correct horse battery staple", "u").is_ok());
        assert!(
            check_password("alllowercaseisfine", "u").is_ok(),
            "no composition rules"
        );
        assert!(
            check_password(&"x".repeat(64), "u").is_ok(),
            "64 characters allowed"
        );
        assert!(check_password(&"x".repeat(129), "u").is_err());
        let e = check_password("Password123", "u").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("password"));
        assert!(e.message.contains("common"));
        assert!(check_password("zhangsan01", "ZhangSan01").is_err());
        assert!(
            check_password("天山天山天山天山", "u").is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = ["10.0.0.0/24", "::1"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_address(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
        // Behind nginx: the address nginx saw.
        assert_eq!(
            client_address(Some(ip("10.0.0.5")), Some("198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // A forged hop left of the proxy's own entry is not believed.
        assert_eq!(
            client_address(
                Some(ip("10.0.0.5")),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.9"),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_address(Some(ip("10.0.0.5")), Some("garbage"), &trusted),
            Some(ip("10.0.0.5"))
        );
        assert!(
            !"10.0.0.0/24"
                .parse::<IpNet>()
                .unwrap()
                .contains(&ip("10.0.1.1"))
        );
        assert!("::1".parse::<IpNet>().unwrap().contains(&ip("::1")));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn usernames_are_plain() {
        assert!(is_valid_username("zhang.san"));
        assert!(!is_valid_username("a"));
        assert!(!is_valid_username("bad name"));
    }
}
