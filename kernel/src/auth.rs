//! Who is calling: password login (argon2id), session tokens (bearer or
//! cookie), the bootstrap admin. The identity issue grows this into the full
//! org/role model; the gateway already decides every request through
//! [`Auth::authenticate`].

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::AuthConfig;
use crate::db::{Db, now};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::runtime::Principal;

pub const SESSION_COOKIE: &str = "tianshan_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const PLATFORM_ADMIN_ROLE: &str = "platform-admin";

/// Writes to `last_seen_at` are batched to this granularity so that reads
/// do not become writes.
const LAST_SEEN_GRANULARITY_SECS: i64 = 60;

/// An authenticated caller and how they authenticated.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub is_platform_admin: bool,
    /// Set when the session came from the cookie: unsafe methods must then
    /// carry this value in the `X-CSRF-Token` header.
    pub cookie_csrf: Option<String>,
    pub token_hash: String,
}

pub struct LoginOutcome {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub session: Session,
}

#[derive(Clone)]
pub struct Auth {
    db: Db,
    config: AuthConfig,
    /// Verified against when the username is unknown, so both failures cost
    /// the same time.
    dummy_hash: String,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: m=19 MiB, t=2, p=1.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("static argon2 params are valid"),
    )
}

pub fn hash_password(password: &str) -> String {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt encodes");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid params does not fail")
        .to_string()
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Auth {
    pub fn new(db: Db, config: AuthConfig) -> Self {
        Auth {
            db,
            config,
            dummy_hash: hash_password("not-a-real-password"),
        }
    }

    /// Creates the `admin` account on first start. Returns the password
    /// when the kernel generated it, so the caller can print it once.
    pub async fn ensure_bootstrap_admin(&self, root_org: &str) -> anyhow::Result<Option<String>> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin'")
                .fetch_optional(&self.db)
                .await?;
        if exists.is_some() {
            return Ok(None);
        }
        let (password, generated) = match std::env::var("TIANSHAN_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (random_token(20), true),
        };
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, org_id, is_platform_admin, created_at)
             VALUES (?, 'admin', ?, ?, ?, 1, ?)",
        )
        .bind(random_token(16))
        .bind("平台管理员 Platform administrator")
        .bind(hash_password(&password))
        .bind(root_org)
        .bind(now())
        .execute(&self.db)
        .await?;
        Ok(generated.then_some(password))
    }

    pub async fn login(&self, username: &str, password: &str) -> ApiResult<LoginOutcome> {
        let row = sqlx::query("SELECT id, password_hash, disabled FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.db)
            .await?;
        let (user_id, hash, disabled) = match &row {
            Some(r) => (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<bool, _>(2),
            ),
            None => (String::new(), self.dummy_hash.clone(), true),
        };
        // Always verify, so an unknown user costs what a wrong password does.
        let password_ok = {
            let password = password.to_string();
            tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false)
        };
        if !password_ok || disabled {
            tracing::info!(%username, "login failed");
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "unknown username or wrong password",
            ));
        }
        let token = random_token(43);
        let csrf_token = random_token(32);
        let created = now();
        let expires_at = created + self.config.session_absolute_secs as i64;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, csrf_token, last_seen_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash(&token))
        .bind(&user_id)
        .bind(created)
        .bind(&csrf_token)
        .bind(created)
        .bind(expires_at)
        .execute(&self.db)
        .await?;
        tracing::info!(%username, "login ok");
        let session = self
            .authenticate(&token, false)
            .await?
            .ok_or_else(|| ApiError::internal("session vanished right after login"))?;
        Ok(LoginOutcome {
            token,
            csrf_token,
            expires_at,
            session,
        })
    }

    /// Resolves a bearer token or session cookie. `Ok(None)`: not a live
    /// session (unknown, expired, idle too long, or the user is disabled).
    pub async fn authenticate(&self, token: &str, from_cookie: bool) -> ApiResult<Option<Session>> {
        let hash = token_hash(token);
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.org_id, u.is_platform_admin, u.disabled,
                    s.csrf_token, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?",
        )
        .bind(&hash)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = now();
        let last_seen: i64 = row.get(7);
        let expires_at: i64 = row.get(8);
        if row.get::<bool, _>(5)
            || now >= expires_at
            || now - last_seen > self.config.session_idle_secs as i64
        {
            return Ok(None);
        }
        if now - last_seen >= LAST_SEEN_GRANULARITY_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?")
                .bind(now)
                .bind(&hash)
                .execute(&self.db)
                .await?;
        }
        let is_platform_admin: bool = row.get(4);
        let mut roles = vec!["member".to_string()];
        if is_platform_admin {
            roles.insert(0, PLATFORM_ADMIN_ROLE.to_string());
        }
        Ok(Some(Session {
            principal: Principal {
                user_id: row.get(0),
                username: row.get(1),
                display_name: row.get(2),
                org_id: row.get(3),
                roles,
            },
            is_platform_admin,
            cookie_csrf: from_cookie.then(|| row.get(6)),
            token_hash: hash,
        }))
    }

    pub async fn logout(&self, session: &Session) -> ApiResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(&session.token_hash)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery staple");
        let b = hash_password("correct horse battery staple");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery staple", &a));
        assert!(!verify_password("wrong", &a));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let t = random_token(43);
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token(43));
        assert_eq!(token_hash(&t).len(), 64);
        assert_ne!(token_hash(&t), t);
    }
}
