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

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub type Db = AnyPool;

/// Which SQL dialect a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(db: &Db) -> Dialect {
        Self::of_url(db.connect_options().database_url.as_str())
    }

    pub fn of_url(url: &str) -> Dialect {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }
}

/// Reads an integer flag column (0/1 in both dialects) as a bool.
pub fn flag<I: sqlx::ColumnIndex<AnyRow>>(row: &AnyRow, index: I) -> bool {
    row.get::<i64, _>(index) != 0
}

/// A migration's SQL. Those written since PostgreSQL support are one text
/// for both databases, with `{serial}`, `{blob}` and `{json}` standing for
/// the column types that differ (integers are `BIGINT` and reals `DOUBLE
/// PRECISION` in both; SQLite reads them by affinity). The first four
/// predate it: one text each, the PostgreSQL schema consolidated in 4.
enum Schema {
    Each {
        sqlite: &'static str,
        postgres: &'static str,
    },
    Both(&'static str),
}

impl Schema {
    fn text(&self, dialect: Dialect) -> std::borrow::Cow<'static, str> {
        match (self, dialect) {
            (Schema::Each { sqlite, .. }, Dialect::Sqlite) => (*sqlite).into(),
            (Schema::Each { postgres, .. }, Dialect::Postgres) => (*postgres).into(),
            (Schema::Both(text), Dialect::Sqlite) => text
                .replace("{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                .replace("{blob}", "BLOB")
                .replace("{json}", "TEXT")
                .into(),
            (Schema::Both(text), Dialect::Postgres) => text
                .replace("{serial}", "BIGSERIAL PRIMARY KEY")
                .replace("{blob}", "BYTEA")
                .replace("{json}", "JSONB")
                .into(),
        }
    }
}

const MIGRATIONS: &[(i64, Schema)] = &[
    (
        1,
        Schema::Each {
            sqlite: r#"
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
            postgres: "",
        },
    ),
    (
        2,
        Schema::Each {
            sqlite: r#"
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
            postgres: "",
        },
    ),
    (
        3,
        Schema::Each {
            sqlite: r#"
-- Where a plugin is installed; NULL means the whole platform.
ALTER TABLE plugins ADD COLUMN org_id TEXT REFERENCES orgs(id);
"#,
            postgres: "",
        },
    ),
    (
        4,
        Schema::Each {
            sqlite: r#"
-- Platform administration is a role binding now; the flag was never read.
ALTER TABLE users DROP COLUMN is_platform_admin;
"#,
            postgres: r#"
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES orgs(id),
    level       TEXT NOT NULL CHECK (level IN ('region','prefecture','county','unit')),
    code        TEXT NOT NULL UNIQUE,
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    headcount_authorized BIGINT NOT NULL DEFAULT 0,
    headcount_actual     BIGINT NOT NULL DEFAULT 0,
    updated_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orgs_parent ON orgs(parent_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    csrf_token   TEXT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE plugin_packages (
    plugin_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    package     BYTEA NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    enabled      BIGINT NOT NULL DEFAULT 1,
    installed_at BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    org_id       TEXT REFERENCES orgs(id),
    FOREIGN KEY (id, version) REFERENCES plugin_packages(plugin_id, version)
);

-- `rowid` mirrors SQLite's implicit column so bindings keep insertion order
-- with the same query on both databases.
CREATE TABLE bindings (
    rowid      BIGSERIAL,
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    created_at BIGINT NOT NULL,
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
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
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
        },
    ),
    (
        5,
        Schema::Both(
            r#"
-- Plugin storage: one row per document; `data` is a JSON object.
CREATE TABLE records (
    plugin_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    id          TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    data        {json} NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    created_by  TEXT,
    updated_by  TEXT,
    PRIMARY KEY (plugin_id, collection, id)
);
CREATE INDEX records_org ON records(plugin_id, collection, org_id);

-- Every revision of every record, deletes included.
CREATE TABLE record_history (
    seq         {serial},
    plugin_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    id          TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('insert','update','delete')),
    data        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT
);
CREATE INDEX record_history_record ON record_history(plugin_id, collection, id);

-- Indexes the kernel created for manifests' indexed fields, so an upgrade
-- only adds what is new.
CREATE TABLE record_indexes (
    name        TEXT PRIMARY KEY,
    plugin_id   TEXT NOT NULL,
    collection  TEXT NOT NULL,
    field       TEXT NOT NULL
);

-- Messaging: the durable log of published events and one delivery row per
-- subscriber.
CREATE TABLE events (
    seq             {serial},
    id              TEXT NOT NULL UNIQUE,
    source          TEXT NOT NULL,
    topic           TEXT NOT NULL,
    event_key       TEXT,
    org_id          TEXT,
    payload         {blob} NOT NULL,
    idempotency_key TEXT,
    published_at    BIGINT NOT NULL,
    UNIQUE (source, idempotency_key)
);

CREATE TABLE deliveries (
    event_seq    BIGINT NOT NULL,
    subscriber   TEXT NOT NULL,
    event_key    TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending','done','dead')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at_ms   BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (subscriber, event_seq)
);
CREATE INDEX deliveries_due ON deliveries(status, next_at_ms);
CREATE INDEX deliveries_key ON deliveries(subscriber, event_key, status);

-- Topics an installer allowed a plugin to receive.
CREATE TABLE subscription_grants (
    plugin_id  TEXT NOT NULL,
    topic      TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, topic)
);

-- One row per scheduled run: the primary key is what makes a run happen
-- once across nodes.
CREATE TABLE job_runs (
    plugin_id     TEXT NOT NULL,
    job           TEXT NOT NULL,
    scheduled_for BIGINT NOT NULL,
    node          TEXT NOT NULL,
    claimed_at    BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, job, scheduled_for)
);

-- Generations other nodes poll to learn that shared state changed.
CREATE TABLE cluster_state (
    name       TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO cluster_state (name, generation) VALUES ('plugins', 0), ('access', 0);
"#,
        ),
    ),
    (6, Schema::Both(crate::datacenter::SCHEMA)),
    (7, Schema::Both(crate::approvals::SCHEMA)),
    (
        8,
        Schema::Both(
            r#"
-- Attachments: metadata here, content by hash on disk or in file_blobs.
CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    plugin_id    TEXT,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);
CREATE INDEX files_org ON files(org_id);

CREATE TABLE file_blobs (
    sha256  TEXT PRIMARY KEY,
    content {blob} NOT NULL
);
"#,
        ),
    ),
    (
        9,
        Schema::Both(
            r#"
-- The events table as JetStream's outbox: 0 until the relay has published
-- the event to the stream. Events from before, and all events when
-- JetStream is not configured, are 1 (nothing to relay).
ALTER TABLE events ADD COLUMN streamed BIGINT NOT NULL DEFAULT 1;
CREATE INDEX events_unstreamed ON events(seq) WHERE streamed = 0;
"#,
        ),
    ),
    (
        10,
        Schema::Both(
            r#"
-- Lanes (issue 10.3): a grant of a plugin installed for a subtree carries
-- only events stamped inside it unless the platform administrator set this.
ALTER TABLE subscription_grants ADD COLUMN beyond_subtree BIGINT NOT NULL DEFAULT 0;
-- Every plugin id ever installed and the org it belongs to (NULL: the
-- platform), kept after an uninstall: the id's records stay keyed by it.
CREATE TABLE plugin_ids (
    id          TEXT PRIMARY KEY,
    org_id      TEXT,
    claimed_at  BIGINT NOT NULL
);
INSERT INTO plugin_ids (id, org_id, claimed_at) SELECT id, org_id, installed_at FROM plugins;
-- Separation of duties (issue 10.8): an applicant never approves their
-- own instance unless the platform administrator allowed it for the flow.
ALTER TABLE approval_flows ADD COLUMN allow_self_approval BIGINT NOT NULL DEFAULT 0;
"#,
        ),
    ),
    (11, Schema::Both(crate::users::SCHEMA)),
    (
        14,
        Schema::Both(
            r#"
-- Keyed audit records: the algorithm and the id of the key that signed
-- each record (audit.rs). Records from before stay NULL: plain SHA-256.
ALTER TABLE audit ADD COLUMN alg TEXT;
ALTER TABLE audit ADD COLUMN key_id TEXT;
"#,
        ),
    ),
];

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
    migrate(&pool, dialect).await?;
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
    pub fn settle<T>(mut self, result: &Result<T, crate::storage::StorageError>) {
        if matches!(result, Err(crate::storage::StorageError::Unavailable(_))) {
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

async fn migrate(pool: &Db, dialect: Dialect) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres {
        // Two nodes starting at once must not both apply a migration.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_MIGRATIONS)
            .execute(&mut *conn)
            .await?;
    }
    let result = migrate_locked(&mut conn, dialect).await;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_MIGRATIONS)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn migrate_locked(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, schema) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let sql = schema.text(dialect);
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if !sql.is_empty() {
            sqlx::raw_sql(&sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version}: {e}"))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
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

/// Milliseconds since the UNIX epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
