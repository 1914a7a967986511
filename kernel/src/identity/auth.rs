//! Who is calling: password login (argon2id), session tokens (bearer or
//! cookie), the bootstrap admin. The identity issue grows this into the full
//! org/role model; the gateway already decides every request through
//! [`Auth::authenticate`].

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::core::config::AuthConfig;
use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::core::ids::random_token;
use crate::db::{Db, now};

pub const SESSION_COOKIE: &str = "tianshan_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Writes to `last_seen_at` are batched to this granularity so that reads
/// do not become writes.
const LAST_SEEN_GRANULARITY_SECS: i64 = 60;

/// Who a credential belongs to, before the gateway decides the acting org
/// and roles.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    /// The user's own org (their unit).
    pub home_org: String,
    /// Set when the credential was the session cookie: unsafe methods must
    /// then carry this value in the `X-CSRF-Token` header.
    pub cookie_csrf: Option<String>,
    /// Hash of the session token, to end it at logout (absent for API tokens).
    pub session_hash: Option<String>,
    /// Set for API tokens: the org and permissions the token is limited to.
    pub token_scope: Option<TokenScope>,
}

#[derive(Debug, Clone)]
pub struct TokenScope {
    pub token_id: String,
    pub org_id: String,
    pub permissions: Vec<String>,
}

impl TokenScope {
    /// Whether the token's own list allows `permission` (`*` suffixes match).
    pub fn permits(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => permission.starts_with(prefix),
            None => p == permission,
        })
    }
}

/// API tokens carry this prefix so they are told from session tokens (and
/// found by secret scanners).
pub const API_TOKEN_PREFIX: &str = "tsk_";

/// Credentials that checked out.
/// A session written but not yet committed: see [`Auth::open_session`].
pub struct OpenedSession {
    token: String,
    csrf_token: String,
    expires_at: i64,
}

pub struct Verified {
    pub user_id: String,
    pub must_change_password: bool,
    /// The unit the user belongs to, for the login's audit record.
    pub home_org: String,
}

/// A session's public id: a prefix of its token's hash, which names it to
/// its owner without being usable as a credential.
const SESSION_ID_LEN: usize = 16;

pub fn session_id(token_hash: &str) -> String {
    token_hash[..SESSION_ID_LEN.min(token_hash.len())].to_string()
}

pub struct LoginOutcome {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub identity: Identity,
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

/// argon2id takes tens of milliseconds of CPU: off the async workers.
pub async fn hash_password_off_thread(password: &str) -> String {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .expect("password hashing task does not panic")
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

/// Both credential queries select the user's id, username, display name
/// and unit first.
fn identity_from(
    row: &sqlx::any::AnyRow,
    cookie_csrf: Option<String>,
    session_hash: Option<String>,
    token_scope: Option<TokenScope>,
) -> Identity {
    Identity {
        user_id: row.get(0),
        username: row.get(1),
        display_name: row.get(2),
        home_org: row.get(3),
        cookie_csrf,
        session_hash,
        token_scope,
    }
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

    /// Creates the `admin` account on first start. Returns `None` when it
    /// already existed, else `Some(generated password)` — the inner value is
    /// set when the kernel generated it, so the caller can print it once.
    pub async fn ensure_bootstrap_admin(
        &self,
        root_org: &str,
    ) -> anyhow::Result<Option<Option<String>>> {
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
            "INSERT INTO users (id, username, display_name, password_hash, org_id, created_at)
             VALUES ($1, 'admin', $2, $3, $4, $5)",
        )
        .bind(random_token(16))
        .bind("平台管理员 Platform administrator")
        .bind(hash_password_off_thread(&password).await)
        .bind(root_org)
        .bind(now())
        .execute(&self.db)
        .await?;
        sqlx::query(
            "INSERT INTO bindings (id, user_id, role, org_id, created_at)
             SELECT 'bind-admin', id, $1, $2, $3 FROM users WHERE username = 'admin'",
        )
        .bind(crate::identity::authz::PLATFORM_ADMIN)
        .bind(root_org)
        .bind(now())
        .execute(&self.db)
        .await?;
        Ok(Some(generated.then_some(password)))
    }

    /// Checks a username and password without starting a session.
    /// Unknown users cost what a wrong password does.
    pub async fn verify_credentials(&self, username: &str, password: &str) -> ApiResult<Verified> {
        let row = sqlx::query(
            "SELECT id, password_hash, disabled, must_change_password, org_id FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.db)
        .await?;
        let (user_id, hash, disabled, must_change, home_org) = match &row {
            Some(r) => (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                crate::db::flag(r, 2),
                crate::db::flag(r, 3),
                r.get::<String, _>(4),
            ),
            None => (
                String::new(),
                self.dummy_hash.clone(),
                true,
                false,
                String::new(),
            ),
        };
        // Always verify, so an unknown user costs what a wrong password does.
        let password_ok = {
            let password = password.to_string();
            tokio::task::spawn_blocking(move || verify_password(&password, &hash))
                .await
                .unwrap_or(false)
        };
        if !password_ok || disabled {
            tracing::info!(%username, "credentials refused");
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "unknown username or wrong password",
            ));
        }
        Ok(Verified {
            user_id,
            must_change_password: must_change,
            home_org,
        })
    }

    /// Opens a session for a user whose credentials were verified, inside
    /// the caller's audited write; [`login_outcome`](Self::login_outcome)
    /// reads it back once that committed.
    pub async fn open_session(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: &str,
        address: Option<String>,
    ) -> ApiResult<OpenedSession> {
        let token = random_token(43);
        let csrf_token = random_token(32);
        let created = now();
        let expires_at = created + self.config.session_absolute_secs as i64;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, csrf_token, last_seen_at, expires_at, address)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(created)
        .bind(&csrf_token)
        .bind(created)
        .bind(expires_at)
        .bind(address)
        .execute(&mut *conn)
        .await?;
        Ok(OpenedSession {
            token,
            csrf_token,
            expires_at,
        })
    }

    /// The answer to a login whose session committed.
    pub async fn login_outcome(&self, opened: OpenedSession) -> ApiResult<LoginOutcome> {
        let OpenedSession {
            token,
            csrf_token,
            expires_at,
        } = opened;
        let identity = self
            .authenticate(&token, false)
            .await?
            .ok_or_else(|| ApiError::internal("session vanished right after login"))?;
        tracing::info!(username = %identity.username, "login ok");
        Ok(LoginOutcome {
            token,
            csrf_token,
            expires_at,
            identity,
        })
    }

    /// A user's live sessions, newest first; `current` marks the caller's.
    pub async fn sessions_of(
        &self,
        user_id: &str,
        current: Option<&str>,
    ) -> ApiResult<Vec<serde_json::Value>> {
        let rows = sqlx::query(
            "SELECT token_hash, created_at, last_seen_at, expires_at, address FROM sessions
             WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3 ORDER BY created_at DESC",
        )
        .bind(user_id)
        .bind(now())
        .bind(now() - self.config.session_idle_secs as i64)
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let hash: String = r.get(0);
                serde_json::json!({
                    "id": session_id(&hash),
                    "created_at": r.get::<i64, _>(1),
                    "last_seen_at": r.get::<i64, _>(2),
                    "expires_at": r.get::<i64, _>(3),
                    "address": r.get::<Option<String>, _>(4),
                    "current": current == Some(hash.as_str()),
                })
            })
            .collect())
    }

    /// Ends one of the user's own sessions; `false` when there is none by
    /// that id.
    pub async fn end_session(
        conn: &mut sqlx::AnyConnection,
        user_id: &str,
        id: &str,
    ) -> ApiResult<bool> {
        if id.len() != SESSION_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash LIKE $2")
            .bind(user_id)
            .bind(format!("{id}%"))
            .execute(&mut *conn)
            .await?;
        Ok(ended.rows_affected() > 0)
    }

    /// Resolves a bearer token, API token or session cookie. `Ok(None)`: not
    /// a live credential (unknown, expired, idle too long, revoked, or the
    /// user is disabled).
    pub async fn authenticate(
        &self,
        token: &str,
        from_cookie: bool,
    ) -> ApiResult<Option<Identity>> {
        if token.starts_with(API_TOKEN_PREFIX) && !from_cookie {
            return self.authenticate_api_token(token).await;
        }
        let hash = token_hash(token);
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.org_id, u.disabled,
                    s.csrf_token, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = now();
        let last_seen: i64 = row.get(6);
        let expires_at: i64 = row.get(7);
        if crate::db::flag(&row, 4)
            || now >= expires_at
            || now - last_seen > self.config.session_idle_secs as i64
        {
            return Ok(None);
        }
        if now - last_seen >= LAST_SEEN_GRANULARITY_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(&hash)
                .execute(&self.db)
                .await?;
        }
        let csrf = from_cookie.then(|| row.get(5));
        Ok(Some(identity_from(&row, csrf, Some(hash), None)))
    }

    /// Whether the session with this token hash is still live (not ended,
    /// expired or idle too long, its user not disabled), without counting
    /// the question as activity: a long-lived live stream checks with this,
    /// so an open page does not keep an idle session open.
    pub async fn session_live(&self, hash: &str) -> ApiResult<bool> {
        let row = sqlx::query(
            "SELECT u.disabled, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let now = now();
        Ok(!crate::db::flag(&row, 0)
            && now < row.get::<i64, _>(2)
            && now - row.get::<i64, _>(1) <= self.config.session_idle_secs as i64)
    }

    async fn authenticate_api_token(&self, token: &str) -> ApiResult<Option<Identity>> {
        let hash = token_hash(token);
        let row = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.org_id, u.disabled,
                    t.id, t.org_id, t.permissions, t.expires_at, t.revoked_at, t.last_used_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = now();
        if crate::db::flag(&row, 4)
            || row.get::<Option<i64>, _>(9).is_some()
            || now >= row.get::<i64, _>(8)
        {
            return Ok(None);
        }
        let token_id: String = row.get(5);
        if now - row.get::<Option<i64>, _>(10).unwrap_or(0) >= LAST_SEEN_GRANULARITY_SECS {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token_id)
                .execute(&self.db)
                .await?;
        }
        let scope = TokenScope {
            token_id,
            org_id: row.get(6),
            permissions: serde_json::from_str(&row.get::<String, _>(7)).unwrap_or_default(),
        };
        Ok(Some(identity_from(&row, None, None, Some(scope))))
    }

    /// Creates an API token; the secret is returned once and stored hashed.
    pub async fn create_api_token(
        conn: &mut sqlx::AnyConnection,
        user_id: &str,
        name: &str,
        org_id: &str,
        permissions: &[String],
        expires_at: i64,
    ) -> ApiResult<(String, String)> {
        let id = format!("tok-{}", random_token(12));
        let secret = format!("{API_TOKEN_PREFIX}{}", random_token(40));
        sqlx::query(
            "INSERT INTO api_tokens (id, token_hash, name, user_id, org_id, permissions, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(token_hash(&secret))
        .bind(name)
        .bind(user_id)
        .bind(org_id)
        .bind(serde_json::to_string(permissions).map_err(ApiError::internal)?)
        .bind(now())
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        Ok((id, secret))
    }

    pub async fn logout(conn: &mut sqlx::AnyConnection, identity: &Identity) -> ApiResult<()> {
        if let Some(hash) = &identity.session_hash {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(hash)
                .execute(&mut *conn)
                .await?;
        }
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
