//! Every schema change, in the one order they apply: numbered, each
//! applied once and recorded with its checksum in `schema_migrations`
//! (`migrate.rs`). A released migration is never edited — the kernel
//! refuses to start on a database whose recorded checksum differs — only
//! followed by a new one. Each comment says which service owns the tables.
//! Version numbers 12, 13 and 15 were never released and stay unused.

use super::Dialect;

/// A migration's SQL. Those written since PostgreSQL support are one text
/// for both databases, with `{serial}`, `{blob}` and `{json}` standing for
/// the column types that differ (integers are `BIGINT` and reals `DOUBLE
/// PRECISION` in both; SQLite reads them by affinity). The first four
/// predate it: one text each, the PostgreSQL schema consolidated in 4.
pub enum Schema {
    Each {
        sqlite: &'static str,
        postgres: &'static str,
    },
    Both(&'static str),
}

impl Schema {
    pub fn text(&self, dialect: Dialect) -> std::borrow::Cow<'static, str> {
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

pub const MIGRATIONS: &[(i64, Schema)] = &[
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
    (
        6,
        Schema::Both(
            r#"
CREATE TABLE dc_indicators (
    code            TEXT PRIMARY KEY,
    owner           TEXT NOT NULL,
    name_zh         TEXT NOT NULL,
    name_en         TEXT NOT NULL,
    unit            TEXT NOT NULL,
    schema_json     TEXT NOT NULL DEFAULT '{}',
    aggregation     TEXT NOT NULL CHECK (aggregation IN ('sum','stock','mean')),
    granularity     TEXT NOT NULL CHECK (granularity IN ('year','quarter','month')),
    sharing         TEXT NOT NULL CHECK (sharing IN ('private','shared','open')),
    target_kind     TEXT CHECK (target_kind IN ('change_at_most','at_least','at_most')),
    target_value    DOUBLE PRECISION,
    baseline_period TEXT,
    target_period   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE TABLE dc_grants (
    code       TEXT NOT NULL REFERENCES dc_indicators(code),
    plugin_id  TEXT NOT NULL,
    access     TEXT NOT NULL CHECK (access IN ('read','publish')),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (code, plugin_id)
);
CREATE TABLE dc_values (
    code       TEXT NOT NULL REFERENCES dc_indicators(code),
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    period     TEXT NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
    source     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (code, org_id, period)
);
CREATE INDEX dc_values_period ON dc_values(code, period);
"#,
        ),
    ),
    (
        7,
        Schema::Both(
            r#"
-- Approval flows each plugin defined (steps as JSON).
CREATE TABLE approval_flows (
    plugin_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    title       TEXT NOT NULL,
    steps       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, name)
);

-- One row per started approval; `steps` is the flow as it was at start,
-- `round` counts step entries so a step re-entered after a rejection gets
-- fresh tasks.
CREATE TABLE approval_instances (
    id           TEXT PRIMARY KEY,
    plugin_id    TEXT NOT NULL,
    flow         TEXT NOT NULL,
    flow_title   TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    title        TEXT NOT NULL,
    org_id       TEXT NOT NULL,
    applicant    TEXT NOT NULL,
    form         TEXT NOT NULL,
    steps        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running','approved','rejected','withdrawn')),
    current_step BIGINT NOT NULL,
    round        BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX approval_instances_subject ON approval_instances(plugin_id, subject_id);
CREATE INDEX approval_instances_applicant ON approval_instances(applicant, created_at);

CREATE TABLE approval_tasks (
    id           TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    step         BIGINT NOT NULL,
    round        BIGINT NOT NULL,
    assignee     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','cancelled','reassigned')),
    origin       TEXT NOT NULL,
    comment      TEXT,
    created_at   BIGINT NOT NULL,
    acted_at     BIGINT
);
CREATE INDEX approval_tasks_assignee ON approval_tasks(assignee, status, created_at);
CREATE INDEX approval_tasks_instance ON approval_tasks(instance_id);

CREATE TABLE approval_copies (
    instance_id  TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    copied_by    TEXT NOT NULL,
    copied_at    BIGINT NOT NULL,
    PRIMARY KEY (instance_id, user_id)
);
CREATE INDEX approval_copies_user ON approval_copies(user_id, copied_at);

CREATE TABLE approval_timeline (
    seq          {serial},
    instance_id  TEXT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    step         BIGINT NOT NULL,
    comment      TEXT,
    detail       TEXT NOT NULL
);
CREATE INDEX approval_timeline_instance ON approval_timeline(instance_id, seq);
"#,
        ),
    ),
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
    (
        11,
        Schema::Both(
            r#"
-- Set by an administrator's reset: the next login must choose a new
-- password first.
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0;
-- The client address a session was opened from, for its owner's list.
ALTER TABLE sessions ADD COLUMN address TEXT;
-- One row per throttled key (an account, an account at a known address, an
-- address). `pending` counts attempts being checked right now, so that
-- simultaneous guesses are counted before their verdict.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL DEFAULT 0,
    pending       BIGINT NOT NULL DEFAULT 0,
    pending_at    BIGINT NOT NULL DEFAULT 0,
    window_start  BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL DEFAULT 0
);
-- Addresses an account logged in from: failures elsewhere do not lock the
-- account there.
CREATE TABLE login_addresses (
    user_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    last_ok_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, address)
);
"#,
        ),
    ),
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
    (
        16,
        Schema::Both(
            r#"
-- Data center: ratio indicators (contract 1.3), computed from two stored
-- indicators when read. Their dc_indicators row says 'mean', which the
-- CHECK there allows and 1.2 plugins are shown; this row makes it a ratio.
CREATE TABLE dc_ratios (
    code        TEXT PRIMARY KEY REFERENCES dc_indicators(code),
    numerator   TEXT NOT NULL REFERENCES dc_indicators(code),
    denominator TEXT NOT NULL REFERENCES dc_indicators(code),
    scale       DOUBLE PRECISION NOT NULL
);
"#,
        ),
    ),
    (
        17,
        Schema::Both(
            r#"
-- Telemetry (services/telemetry): devices a plugin registered, incremental
-- roll-ups, latest values, refused readings, alert rules, their state per
-- device, and alerts. Raw readings and track points are in 18.
CREATE TABLE tm_devices (
    plugin_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    external_id TEXT,
    name        TEXT NOT NULL,
    channels    TEXT NOT NULL,
    formula     TEXT NOT NULL DEFAULT '[]',
    auth_code   TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, id)
);
CREATE UNIQUE INDEX tm_devices_external ON tm_devices (protocol, external_id);
CREATE TABLE tm_rollups (
    plugin_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    channel   TEXT NOT NULL,
    span      TEXT NOT NULL,
    start     BIGINT NOT NULL,
    n         BIGINT NOT NULL,
    total     DOUBLE PRECISION NOT NULL,
    low       DOUBLE PRECISION NOT NULL,
    high      DOUBLE PRECISION NOT NULL,
    last      DOUBLE PRECISION NOT NULL,
    last_at   BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, channel, span, start, device_id)
);
CREATE TABLE tm_latest (
    plugin_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    channel   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    quality   TEXT NOT NULL,
    PRIMARY KEY (plugin_id, device_id, channel)
);
CREATE TABLE tm_rejected (
    id        {serial},
    at        BIGINT NOT NULL,
    source    TEXT NOT NULL,
    plugin_id TEXT,
    device    TEXT,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE TABLE tm_rules (
    plugin_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    rule       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, name)
);
CREATE TABLE tm_alert_state (
    plugin_id TEXT NOT NULL,
    rule      TEXT NOT NULL,
    device_id TEXT NOT NULL,
    since     BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, rule, device_id)
);
CREATE TABLE tm_alerts (
    id        {serial},
    plugin_id TEXT NOT NULL,
    rule      TEXT NOT NULL,
    device_id TEXT NOT NULL,
    org_id    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX tm_alerts_plugin ON tm_alerts (plugin_id, at);
"#,
        ),
    ),
    (
        18,
        Schema::Each {
            // Telemetry's raw readings and vehicle track points. On
            // PostgreSQL they are partitioned by month (of `at`, in ms):
            // the service creates the coming months' partitions ahead
            // (`Telemetry::prepare_partitions`) and drops those past the
            // retention; what falls outside them lands in the default one.
            sqlite: r#"
CREATE TABLE tm_readings (
    plugin_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    delta       DOUBLE PRECISION,
    quality     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, device_id, channel, at)
);
CREATE INDEX tm_readings_at ON tm_readings (at);
CREATE TABLE tm_track (
    plugin_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    latitude   DOUBLE PRECISION NOT NULL,
    longitude  DOUBLE PRECISION NOT NULL,
    altitude_m DOUBLE PRECISION NOT NULL,
    speed_kmh  DOUBLE PRECISION NOT NULL,
    heading    BIGINT NOT NULL,
    alarm      BIGINT NOT NULL,
    status     BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, device_id, at)
);
CREATE INDEX tm_track_at ON tm_track (at);
"#,
            postgres: r#"
CREATE TABLE tm_readings (
    plugin_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    at          BIGINT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    delta       DOUBLE PRECISION,
    quality     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, device_id, channel, at)
) PARTITION BY RANGE (at);
CREATE TABLE tm_readings_default PARTITION OF tm_readings DEFAULT;
CREATE INDEX tm_readings_at ON tm_readings (at);
CREATE TABLE tm_track (
    plugin_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    latitude   DOUBLE PRECISION NOT NULL,
    longitude  DOUBLE PRECISION NOT NULL,
    altitude_m DOUBLE PRECISION NOT NULL,
    speed_kmh  DOUBLE PRECISION NOT NULL,
    heading    BIGINT NOT NULL,
    alarm      BIGINT NOT NULL,
    status     BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, device_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE tm_track_default PARTITION OF tm_track DEFAULT;
CREATE INDEX tm_track_at ON tm_track (at);
"#,
        },
    ),
    (
        19,
        Schema::Both(
            r#"
-- Telemetry's live stream (http/telemetry.rs `stream`): when each latest
-- value and alert was stored, by the storing node's clock, so a stream
-- on any node finds what is new whatever time the devices reported.
-- Rows from before stay 0.
ALTER TABLE tm_latest ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tm_latest_updated ON tm_latest (plugin_id, updated_at);
ALTER TABLE tm_alerts ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tm_alerts_created ON tm_alerts (plugin_id, created_at);
"#,
        ),
    ),
    (
        20,
        Schema::Both(
            r#"
-- A person's profile (contract 1.4 `identity.profile`): the post rank
-- (a code of identity/users.rs POST_RANKS), 职务 and department, set by
-- administrators, read by systems that decide on them (office area by
-- rank). `position` is an SQL keyword, hence post_title.
ALTER TABLE users ADD COLUMN post_rank TEXT;
ALTER TABLE users ADD COLUMN post_title TEXT;
ALTER TABLE users ADD COLUMN department TEXT;
"#,
        ),
    ),
    (
        21,
        Schema::Each {
            sqlite: r#"
-- Delegation while away (services/approvals/delegation.rs): one per user,
-- the region's days as typed and as seconds, the end exclusive.
CREATE TABLE approval_delegations (
    user_id     TEXT PRIMARY KEY,
    delegate_id TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    note        TEXT,
    created_at  BIGINT NOT NULL
);
-- 审批人去重 per flow (services/approvals/repeat.rs), the platform
-- administrator's to turn on; off keeps every flow as it was.
ALTER TABLE approval_flows ADD COLUMN auto_approve_repeat BIGINT NOT NULL DEFAULT 0;
-- 待阅 / 已阅 of copies (抄送).
ALTER TABLE approval_copies ADD COLUMN read_at BIGINT;
-- Tasks: 催办's urged_at, `held` for the others' tasks while one
-- approver has claimed (签收) the step, `lent` while delegated (委派). SQLite changes a CHECK only by
-- rebuilding the table.
CREATE TABLE approval_tasks_new (
    id           TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    step         BIGINT NOT NULL,
    round        BIGINT NOT NULL,
    assignee     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','cancelled','reassigned','held','lent')),
    origin       TEXT NOT NULL,
    comment      TEXT,
    created_at   BIGINT NOT NULL,
    acted_at     BIGINT,
    urged_at     BIGINT
);
INSERT INTO approval_tasks_new (id, instance_id, step, round, assignee, status, origin, comment, created_at, acted_at)
    SELECT id, instance_id, step, round, assignee, status, origin, comment, created_at, acted_at FROM approval_tasks;
DROP TABLE approval_tasks;
ALTER TABLE approval_tasks_new RENAME TO approval_tasks;
CREATE INDEX approval_tasks_assignee ON approval_tasks(assignee, status, created_at);
CREATE INDEX approval_tasks_instance ON approval_tasks(instance_id);
"#,
            postgres: r#"
-- Delegation while away (services/approvals/delegation.rs): one per user,
-- the region's days as typed and as seconds, the end exclusive.
CREATE TABLE approval_delegations (
    user_id     TEXT PRIMARY KEY,
    delegate_id TEXT NOT NULL,
    starts_on   TEXT NOT NULL,
    ends_on     TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    note        TEXT,
    created_at  BIGINT NOT NULL
);
-- 审批人去重 per flow (services/approvals/repeat.rs), the platform
-- administrator's to turn on; off keeps every flow as it was.
ALTER TABLE approval_flows ADD COLUMN auto_approve_repeat BIGINT NOT NULL DEFAULT 0;
-- 待阅 / 已阅 of copies (抄送).
ALTER TABLE approval_copies ADD COLUMN read_at BIGINT;
-- Tasks: 催办's urged_at, `held` while one approver has claimed (签收)
-- the step, `lent` while delegated (委派).
ALTER TABLE approval_tasks ADD COLUMN urged_at BIGINT;
ALTER TABLE approval_tasks DROP CONSTRAINT approval_tasks_status_check;
ALTER TABLE approval_tasks ADD CONSTRAINT approval_tasks_status_check
    CHECK (status IN ('pending','approved','rejected','cancelled','reassigned','held','lent'));
"#,
        },
    ),
    (
        22,
        Schema::Both(
            r#"
-- The notification centre (services/notifications/): what reached one
-- person — a new to-do, an urge, a copy, the outcome of their application
-- — with its read state. `seq` orders them and is the streams' event id.
-- `webhook_due` is set while the operator's outside channel still has to
-- receive it (NULL: delivered, given up, or no channel configured).
CREATE TABLE notifications (
    seq              {serial},
    user_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    plugin_id        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    link             TEXT NOT NULL,
    actor_id         TEXT,
    detail           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    read_at          BIGINT,
    webhook_due      BIGINT,
    webhook_attempts BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_user ON notifications (user_id, seq);
CREATE INDEX notifications_unread ON notifications (user_id, read_at);
CREATE INDEX notifications_subject ON notifications (subject, created_at);
CREATE INDEX notifications_webhook ON notifications (webhook_due) WHERE webhook_due IS NOT NULL;
CREATE INDEX notifications_created ON notifications (created_at);
"#,
        ),
    ),
    (
        23,
        Schema::Both(
            r#"
-- Dashboards as data (services/datacenter/dashboards.rs): a definition
-- (panels as JSON) of one org, drawn by the wall.
CREATE TABLE dashboards (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    rotate_secs BIGINT NOT NULL,
    panels      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX dashboards_org ON dashboards (org_id);
"#,
        ),
    ),
    (
        24,
        Schema::Both(
            r#"
-- Reads of one indicator over a range of periods (every roll-up, the
-- wall's overview) take org and value from the index instead of visiting
-- each row.
DROP INDEX dc_values_period;
CREATE INDEX dc_values_period ON dc_values (code, period, org_id, value);
"#,
        ),
    ),
    (
        25,
        Schema::Both(
            r#"
-- Each terminal's newest position (services/telemetry/live.rs
-- `positions`), kept on ingest so the wall and live maps read one row per
-- vehicle instead of searching the track.
CREATE TABLE tm_positions (
    plugin_id  TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    latitude   DOUBLE PRECISION NOT NULL,
    longitude  DOUBLE PRECISION NOT NULL,
    speed_kmh  DOUBLE PRECISION NOT NULL,
    heading    BIGINT NOT NULL,
    alarm      BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, device_id)
);
INSERT INTO tm_positions (plugin_id, device_id, at, latitude, longitude, speed_kmh, heading, alarm, updated_at)
SELECT t.plugin_id, t.device_id, t.at, t.latitude, t.longitude, t.speed_kmh, t.heading, t.alarm, t.at
FROM tm_track t
WHERE t.at = (SELECT MAX(x.at) FROM tm_track x WHERE x.plugin_id = t.plugin_id AND x.device_id = t.device_id);
"#,
        ),
    ),
];
