//! The kernel's own database: SQLite by default (one file, WAL,
//! synchronous=FULL so an acknowledged write survives a crash).
//!
//! Schema changes are numbered migrations applied in order at start and
//! recorded in `schema_migrations`; a migration is never edited once
//! released, only followed by a new one.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

pub type Db = SqlitePool;

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES orgs(id),
    level       TEXT NOT NULL CHECK (level IN ('region','prefecture','county','unit')),
    code        TEXT NOT NULL UNIQUE,
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    is_platform_admin INTEGER NOT NULL DEFAULT 0,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    csrf_token   TEXT NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE plugin_packages (
    plugin_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    package     BLOB NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    installed_at INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    FOREIGN KEY (id, version) REFERENCES plugin_packages(plugin_id, version)
);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE orgs ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE orgs ADD COLUMN headcount_authorized INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN headcount_actual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orgs ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

ALTER TABLE users ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE bindings (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, role, org_id)
);
CREATE INDEX bindings_user ON bindings(user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(id),
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    permissions  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- Append-only: the kernel only ever inserts; the hash chain makes edits visible.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    org_id    TEXT,
    action    TEXT NOT NULL,
    target    TEXT,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_actor ON audit(actor);
CREATE INDEX audit_action ON audit(action);
"#,
    ),
    (
        3,
        r#"
-- Where a plugin is installed; NULL means the whole platform.
ALTER TABLE plugins ADD COLUMN org_id TEXT REFERENCES orgs(id);
"#,
    ),
    (
        4,
        r#"
-- Platform administration is a role binding now; the flag was never read.
ALTER TABLE users DROP COLUMN is_platform_admin;
"#,
    ),
];

/// Opens (creating if needed) the database and brings the schema up to date.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("opening database {url}: {e}"))?;
    check_durability(&pool).await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Refuses to run on settings that could lose acknowledged writes.
async fn check_durability(pool: &Db) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    // 2 = FULL
    anyhow::ensure!(
        journal.eq_ignore_ascii_case("wal") && synchronous == 2,
        "SQLite is not in WAL mode with synchronous=FULL (journal_mode={journal}, synchronous={synchronous})"
    );
    Ok(())
}

async fn migrate(pool: &Db) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

/// Seconds since the UNIX epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_in_wal_with_full_sync_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = connect(&url).await.unwrap();
        drop(db);
        let db = connect(&url).await.unwrap();
        let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(versions, MIGRATIONS.len() as i64);
    }
}
