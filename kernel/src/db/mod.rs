//! The kernel's own database: SQLite by default (one file, WAL,
//! synchronous=FULL so an acknowledged write survives a crash), or
//! PostgreSQL when several kernels share one database.
//!
//! Queries go through sqlx's `Any` driver and use `$N` placeholders, which
//! both SQLite and PostgreSQL understand; where the dialects differ (JSON,
//! locking, auto-increment) the code asks [`Dialect::of`].
//!
//! Schema changes are numbered migrations applied in order at start and
//! recorded in `schema_migrations`; a migration is never edited once
//! released, only followed by a new one. Each has a SQLite and a PostgreSQL
//! text; the PostgreSQL schema started at version 4 as one consolidated
//! text, so its entries 1-3 are empty.

pub mod dialect;
pub mod migrate;
pub mod migrations;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub type Db = AnyPool;

pub use dialect::{Dialect, Marks};

/// Reads an integer flag column (0/1 in both dialects) as a bool.
pub fn flag<I: sqlx::ColumnIndex<AnyRow>>(row: &AnyRow, index: I) -> bool {
    row.get::<i64, _>(index) != 0
}

/// Advisory-lock keys, so nodes sharing a PostgreSQL database take turns.
pub const LOCK_MIGRATIONS: i64 = 0x7473_0001;
pub const LOCK_AUDIT: i64 = 0x7473_0002;

/// The URL connections are opened with: SQLite files are created if missing.
fn open_url(url: &str) -> String {
    match Dialect::of_url(url) {
        Dialect::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_string(),
    }
}

/// Per-connection SQLite settings (synchronous is per connection; WAL
/// sticks to the file).
const SQLITE_SETUP: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                            PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;";

/// Opens (creating if needed) the database and brings the schema up to date.
pub async fn connect(url: &str) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::of_url(url);
    let url = open_url(url);
    let max_connections = match dialect {
        Dialect::Sqlite => 8,
        Dialect::Postgres => 16,
    };
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        // A ping before every acquire doubles the round trips of a short
        // query; a broken connection fails its query instead and the pool
        // replaces it.
        .test_before_acquire(false)
        // A connection must never change hands inside a transaction: a
        // future dropped within `BEGIN` leaves one open with no guard to roll
        // it back, and every later writer would then see "database is
        // locked". Closing the connection rolls it back; the pool opens a
        // fresh one. Checked on the way in too, because on SQLite a BEGIN
        // queued just before the drop may only run after the release.
        .after_release(|conn, _| Box::pin(async move { Ok(outside_transaction(conn, "released")) }))
        .before_acquire(|conn, _| Box::pin(async move { Ok(outside_transaction(conn, "idle")) }))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    conn.execute(sqlx::raw_sql(SQLITE_SETUP)).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| anyhow::anyhow!("opening database {}: {e}", redact(&url)))?;
    if dialect == Dialect::Sqlite {
        check_durability(&pool).await?;
    }
    migrate::migrate(&pool, dialect).await?;
    Ok(pool)
}

/// The connections plugins' storage reads run on, apart from the kernel's
/// pool: however many plugin requests read at once, login, approvals and
/// audit keep the kernel's own connections. Each plugin gets at most
/// `each` of the `total`, so one plugin cannot starve the others either.
///
/// A read checks a connection out for one host call and gives it back when
/// the call returns, never across guest execution: a request that reads
/// once and then computes (or loops) holds nothing. Checkout and return are
/// a semaphore permit and a push onto a list, cheaper than a sqlx pool
/// round trip (which spawns a task to take each connection back), so a
/// checkout per read costs about what keeping one per request did.
pub struct PluginReads {
    url: String,
    dialect: Dialect,
    idle: std::sync::Mutex<Vec<sqlx::AnyConnection>>,
    total: std::sync::Arc<tokio::sync::Semaphore>,
    per_plugin:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>,
    each: usize,
    wait: Duration,
}

/// One plugin read connection, back to [`PluginReads`] on drop.
pub struct ReadConn {
    conn: Option<sqlx::AnyConnection>,
    reads: std::sync::Arc<PluginReads>,
    _plugin: tokio::sync::OwnedSemaphorePermit,
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl PluginReads {
    /// `total` connections at most (0: 4 on SQLite, 8 on PostgreSQL), `each`
    /// per plugin (0: half of `total`); a read waits up to `wait` for one.
    pub fn new(
        url: &str,
        total: usize,
        each: usize,
        wait: Duration,
    ) -> std::sync::Arc<PluginReads> {
        let dialect = Dialect::of_url(url);
        let total = match (total, dialect) {
            (0, Dialect::Sqlite) => 4,
            (0, Dialect::Postgres) => 8,
            (n, _) => n,
        };
        let each = if each == 0 {
            total.div_ceil(2)
        } else {
            each.min(total)
        };
        std::sync::Arc::new(PluginReads {
            url: open_url(url),
            dialect,
            idle: Default::default(),
            total: std::sync::Arc::new(tokio::sync::Semaphore::new(total)),
            per_plugin: Default::default(),
            each,
            wait,
        })
    }

    /// A connection for one read by `plugin`; an error message when the
    /// plugin's share (or all plugin connections) stayed busy past the wait.
    pub async fn acquire(self: &std::sync::Arc<Self>, plugin: &str) -> Result<ReadConn, String> {
        let mine = {
            let mut map = self.per_plugin.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(plugin.to_string())
                .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(self.each)))
                .clone()
        };
        let busy = || {
            format!(
                "database connections for plugin reads stayed busy for {} ms; retry",
                self.wait.as_millis()
            )
        };
        let _plugin = permit(mine, self.wait).await.ok_or_else(busy)?;
        let _total = permit(self.total.clone(), self.wait)
            .await
            .ok_or_else(busy)?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self
                .open()
                .await
                .map_err(|e| format!("opening a database connection: {e}"))?,
        };
        Ok(ReadConn {
            conn: Some(conn),
            reads: self.clone(),
            _plugin,
            _total,
        })
    }

    async fn open(&self) -> sqlx::Result<sqlx::AnyConnection> {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url).await?;
        if self.dialect == Dialect::Sqlite {
            conn.execute(sqlx::raw_sql(SQLITE_SETUP)).await?;
        }
        Ok(conn)
    }

    /// Connections opened and idle now (for tests and metrics).
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A permit now if one is free, else within `wait`.
async fn permit(
    semaphore: std::sync::Arc<tokio::sync::Semaphore>,
    wait: Duration,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match semaphore.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => tokio::time::timeout(wait, semaphore.acquire_owned())
            .await
            .ok()?
            .ok(),
    }
}

impl ReadConn {
    /// Closes the connection instead of reusing it when the read failed in
    /// the database (it may be broken, e.g. after a server restart).
    pub fn settle<T>(mut self, result: &Result<T, crate::core::error::ServiceError>) {
        if matches!(
            result,
            Err(crate::core::error::ServiceError::Unavailable(_))
        ) {
            self.conn = None;
        }
    }
}

impl std::ops::Deref for ReadConn {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        self.conn.as_ref().expect("a read connection until dropped")
    }
}

impl std::ops::DerefMut for ReadConn {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        self.conn.as_mut().expect("a read connection until dropped")
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !sqlx::Connection::is_in_transaction(&conn)
        {
            self.reads
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
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

/// `false` (and a warning) when `conn` is inside a transaction, so the pool
/// closes it instead of handing it on.
fn outside_transaction(conn: &mut sqlx::AnyConnection, state: &str) -> bool {
    let open = sqlx::Connection::is_in_transaction(&*conn);
    if open {
        tracing::warn!(
            state,
            "closing a pooled database connection left inside a transaction"
        );
    }
    !open
}

/// Begins a transaction that will write. On SQLite it takes the write lock
/// up front (`BEGIN IMMEDIATE`): a transaction that reads first and writes
/// later would otherwise fail with SQLITE_BUSY when another connection
/// wrote in between, which no busy timeout can wait out.
///
/// Cancellation-safe: `begin_with` has an await between running BEGIN and
/// handing out the guard that rolls back on drop, so the BEGIN runs on its
/// own task. If the caller is dropped meanwhile, the task still finishes
/// and drops the transaction, which rolls it back.
pub async fn begin_write(db: &Db) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Any>> {
    let db = db.clone();
    let begin = tokio::spawn(async move {
        match Dialect::of(&db) {
            Dialect::Sqlite => db.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => db.begin().await,
        }
    });
    begin
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("beginning a transaction: {e}")))?
}

/// Bumps a cluster generation so other nodes reload (see `cluster`).
pub async fn bump_generation<'e, E>(executor: E, name: &str) -> sqlx::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE cluster_state SET generation = generation + 1 WHERE name = $1")
        .bind(name)
        .execute(executor)
        .await?;
    Ok(())
}

pub use crate::core::calendar::{now, now_ms};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrations::MIGRATIONS;

    #[test]
    fn shared_migrations_translate_every_placeholder() {
        for (version, schema) in MIGRATIONS {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let text = schema.text(dialect);
                for token in ["{serial}", "{blob}", "{json}"] {
                    assert!(!text.contains(token), "migration {version} keeps {token}");
                }
            }
        }
        let (_, storage) = &MIGRATIONS[4];
        assert!(
            storage
                .text(Dialect::Postgres)
                .contains("data        JSONB")
        );
        assert!(
            storage
                .text(Dialect::Sqlite)
                .contains("INTEGER PRIMARY KEY AUTOINCREMENT")
        );
    }

    /// A released migration edited after it was applied stops the start,
    /// naming it; a database from before checksums gets them on first start.
    #[tokio::test]
    async fn an_edited_migration_stops_the_start_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = connect(&url).await.unwrap();
        sqlx::query("UPDATE schema_migrations SET checksum = NULL")
            .execute(&db)
            .await
            .unwrap();
        drop(db);
        let db = connect(&url).await.expect("checksums filled in on start");
        let missing: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE checksum IS NULL")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(missing, 0);
        sqlx::query("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 7")
            .execute(&db)
            .await
            .unwrap();
        drop(db);
        let refused = connect(&url)
            .await
            .expect_err("an edited migration is refused");
        let message = refused.to_string();
        assert!(
            message.contains("migration 7 was edited") && message.contains("new migration"),
            "{message}"
        );
    }

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
