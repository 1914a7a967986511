//! Users, the password policy and login throttling.
//!
//! Password rules follow OWASP ASVS 2.1: at least 8 characters, at least 64
//! allowed (we allow 128), a blocklist of common passwords, and no
//! composition rules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;

use crate::db::{Db, now};
use crate::error::{ApiError, ApiResult, ErrorCode};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

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
}

pub fn row_to_user(r: &sqlx::any::AnyRow) -> User {
    User {
        id: r.get("id"),
        username: r.get("username"),
        display_name: r.get("display_name"),
        org_id: r.get("org_id"),
        disabled: crate::db::flag(r, "disabled"),
        created_at: r.get("created_at"),
    }
}

pub async fn get(db: &Db, id: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query(
        "SELECT id, username, display_name, org_id, disabled, created_at FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.as_ref().map(row_to_user))
}

/// Inserts a user (password already checked) as a member of their unit.
/// The caller reloads authorization and writes the audit record.
pub async fn create(
    db: &Db,
    username: &str,
    display_name: &str,
    password: &str,
    unit: &str,
) -> ApiResult<String> {
    let id = format!("user-{}", crate::auth::random_token(12));
    let hash = crate::auth::hash_password_off_thread(password).await;
    let mut tx = crate::db::begin_write(db).await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, display_name, password_hash, org_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING",
    )
    .bind(&id)
    .bind(username)
    .bind(display_name)
    .bind(hash)
    .bind(unit)
    .bind(now())
    .bind(now())
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
    .bind(format!("bind-{}", crate::auth::random_token(12)))
    .bind(&id)
    .bind(crate::authz::MEMBER)
    .bind(unit)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Ends every session of a user (password change, reset, disable).
pub async fn end_sessions(db: &Db, user_id: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(db)
        .await?
        .rows_affected())
}

pub async fn set_password(db: &Db, user_id: &str, password: &str) -> sqlx::Result<()> {
    let hash = crate::auth::hash_password_off_thread(password).await;
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now())
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Failed-login throttling per account and per source address. In memory:
/// per node, which is what matters against online guessing.
pub struct Throttle {
    state: Mutex<HashMap<String, Failures>>,
}

struct Failures {
    count: u32,
    window_start: Instant,
    blocked_until: Option<Instant>,
}

/// Failures allowed in a window before blocking.
const ACCOUNT_FREE_FAILURES: u32 = 5;
const ADDRESS_FREE_FAILURES: u32 = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            state: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    fn keys(username: &str, addr: Option<IpAddr>) -> Vec<(String, u32)> {
        let mut keys = vec![(
            format!("user:{}", username.to_lowercase()),
            ACCOUNT_FREE_FAILURES,
        )];
        if let Some(addr) = addr {
            keys.push((format!("addr:{addr}"), ADDRESS_FREE_FAILURES));
        }
        keys
    }

    /// Refuses with 429 and Retry-After while the account or address is
    /// blocked.
    pub fn check(&self, username: &str, addr: Option<IpAddr>) -> ApiResult<()> {
        let state = self.state.lock().expect("throttle lock");
        let now = Instant::now();
        let wait = Self::keys(username, addr)
            .iter()
            .filter_map(|(k, _)| state.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => {
                let mut e = ApiError::new(
                    ErrorCode::TooManyAttempts,
                    format!(
                        "too many failed logins; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                );
                e.retry_after = Some(wait.as_secs().max(1));
                Err(e)
            }
            None => Ok(()),
        }
    }

    pub fn failed(&self, username: &str, addr: Option<IpAddr>) {
        let mut state = self.state.lock().expect("throttle lock");
        let now = Instant::now();
        for (key, free) in Self::keys(username, addr) {
            let f = state.entry(key).or_insert(Failures {
                count: 0,
                window_start: now,
                blocked_until: None,
            });
            if now - f.window_start > WINDOW {
                f.count = 0;
                f.window_start = now;
            }
            f.count += 1;
            if f.count >= free {
                // 1 s, 2 s, 4 s … per failure past the free ones, capped.
                let exponent = (f.count - free).min(10);
                let block = Duration::from_secs(1 << exponent).min(MAX_BLOCK);
                f.blocked_until = Some(now + block);
            }
        }
        if state.len() > 100_000 {
            state.retain(|_, f| now - f.window_start <= WINDOW);
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.state
            .lock()
            .expect("throttle lock")
            .remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn throttling_blocks_after_repeated_failures_and_says_when() {
        let t = Throttle::default();
        let addr: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..ACCOUNT_FREE_FAILURES - 1 {
            t.failed("alice", Some(addr));
            assert!(t.check("alice", Some(addr)).is_ok());
        }
        t.failed("alice", Some(addr));
        let e = t.check("alice", Some(addr)).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManyAttempts);
        assert!(e.retry_after.unwrap() >= 1);
        // Another account from another address is unaffected.
        assert!(t.check("bob", Some("10.0.0.1".parse().unwrap())).is_ok());
    }

    #[test]
    fn usernames_are_plain() {
        assert!(is_valid_username("zhang.san"));
        assert!(!is_valid_username("a"));
        assert!(!is_valid_username("bad name"));
    }
}
