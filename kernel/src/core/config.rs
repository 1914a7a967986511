//! Kernel configuration: built-in defaults, then an optional TOML file, then
//! command-line flags. `deploy/tianshan.toml` documents every option.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// Where the database, the compiled-code cache and plugin files live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `tianshan.db` in the
    /// data dir. Several nodes share one PostgreSQL database.
    pub database_url: Option<String>,
    /// `nats://host:port` for multi-node deployments: signals between nodes
    /// and, with JetStream (`events.jetstream`), the stream that carries
    /// events; the database stays the source of truth (docs/operations.md).
    pub nats_url: Option<String>,
    /// Name of this node in logs and job claims; defaults to host:pid.
    pub node_id: Option<String>,
    /// Offset of the time zone cron schedules are read in, in minutes
    /// east of UTC (China Standard Time: 480).
    pub utc_offset_minutes: i32,
    /// Largest request body the gateway accepts for plugin and API calls.
    pub max_body_bytes: usize,
    /// Largest plugin package accepted, compressed and unpacked.
    pub max_package_bytes: usize,
    pub runtime: RuntimeConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub events: EventsConfig,
    pub files: FilesConfig,
    pub audit: AuditConfig,
    pub metrics: MetricsConfig,
    pub telemetry: TelemetryConfig,
    pub notifications: NotificationsConfig,
}

/// The notification centre (`services/notifications/`): how long a
/// person's notifications are kept, and the outside channel an operator
/// connects (docs/operations.md "Notifications").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotificationsConfig {
    /// Notifications are deleted this many days after they were made.
    pub retention_days: u32,
    /// Every new notification is POSTed here as JSON (an SMS gateway, the
    /// government app, a mail relay), in batches, retried with backoff.
    pub webhook_url: Option<String>,
    /// Signs each POST: `X-Tianshan-Signature: sha256=<hex HMAC-SHA256 of
    /// the body>`. Or `TIANSHAN_NOTIFICATIONS_WEBHOOK_SECRET`.
    pub webhook_secret: Option<String>,
    /// Seconds one POST may take.
    pub webhook_timeout_secs: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            retention_days: 180,
            webhook_url: None,
            webhook_secret: None,
            webhook_timeout_secs: 10,
        }
    }
}

/// Telemetry ingestion (docs/telemetry.md): the MQTT broker to read
/// readings from and the JT/T 808 listen address, both off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TelemetryConfig {
    /// `mqtt://[user:password@]host[:port]`.
    pub mqtt_url: Option<String>,
    /// Readings arrive on `<mqtt-topic>/<external-id>`.
    pub mqtt_topic: String,
    /// Nodes subscribe as one shared group (`$share/<group>/…`), so each
    /// message reaches one of them; empty: every node gets everything.
    pub mqtt_shared_group: String,
    /// Where JT/T 808 terminals connect, e.g. `0.0.0.0:7808`.
    pub jt808_listen: Option<SocketAddr>,
    /// Raw readings and track points are kept this long; roll-ups stay.
    pub raw_retention_days: u32,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            mqtt_url: None,
            mqtt_topic: "tianshan/telemetry".into(),
            mqtt_shared_group: "tianshan".into(),
            jt808_listen: None,
            raw_retention_days: 400,
        }
    }
}

/// Where the audit chain's key and anchors live: outside the data dir, so
/// that whoever can write the database cannot also forge or cut the chain
/// unseen (docs/operations.md "The audit key and anchors").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditConfig {
    /// The HMAC key file, created (0600) at first start when missing;
    /// `TIANSHAN_AUDIT_KEY_FILE` overrides. Default:
    /// `tianshan-audit.key` beside the data dir (in its parent).
    pub key_file: Option<PathBuf>,
    /// Where the chain head is appended every `anchor-interval-secs`.
    /// Default: `DATA_DIR_NAME.audit-anchors` in the key file's folder.
    pub anchor_file: Option<PathBuf>,
    pub anchor_interval_secs: u64,
    /// The HMAC new records are signed with: `hmac-sha256` (default) or
    /// `hmac-sm3` (for 密评). Records keep theirs, so switching is safe.
    pub algorithm: Algorithm,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key_file: None,
            anchor_file: None,
            anchor_interval_secs: 60,
            algorithm: Algorithm::default(),
        }
    }
}

/// Who may read `/metrics`.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// When set, `/metrics` answers only `Authorization: Bearer TOKEN`;
    /// `TIANSHAN_METRICS_TOKEN` overrides.
    pub token: Option<String>,
    /// When set, `/metrics` is served only on this address (e.g. a
    /// management network) and no longer on `listen`.
    pub listen: Option<SocketAddr>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("listen", &self.listen)
            .finish()
    }
}

/// Attachments.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilesConfig {
    /// `disk` (under `dir`), `database` (in the kernel's database, which
    /// several nodes share without a shared disk) or `s3` (an S3-compatible
    /// object store, `[files.s3]`).
    pub backend: String,
    /// For `disk`; defaults to `files/` in the data dir.
    pub dir: Option<PathBuf>,
    /// Largest file accepted.
    pub max_bytes: usize,
    pub s3: S3Config,
}

/// An S3-compatible object store for `files.backend = "s3"`. The access
/// keys may also come from `TIANSHAN_S3_ACCESS_KEY_ID` and
/// `TIANSHAN_S3_SECRET_ACCESS_KEY`, which take precedence.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Config {
    /// `https://host[:port][/path]` of the S3 API.
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    /// The region requests are signed for; MinIO and most on-premises
    /// stores accept `us-east-1`.
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `endpoint/bucket/key` (true) or `bucket.endpoint/key` (false).
    pub path_style: bool,
    /// Prepended to every object key, e.g. `tianshan/`.
    pub prefix: String,
    /// PEM file of the CAs to trust for `https` instead of the public web
    /// roots (a private CA in front of an on-premises store).
    pub ca_file: Option<PathBuf>,
    /// Deadline of one request to the store.
    pub timeout_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            bucket: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            prefix: String::new(),
            ca_file: None,
            timeout_secs: 30,
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            backend: "disk".into(),
            dir: None,
            max_bytes: 20 << 20,
            s3: S3Config::default(),
        }
    }
}

/// Event delivery: retries, and the JetStream stream that carries events
/// between nodes when `nats-url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EventsConfig {
    /// Attempts before a delivery goes to the dead-letter list.
    pub max_attempts: i64,
    /// First retry delay; each further retry doubles it, up to 10 minutes.
    pub retry_base_ms: i64,
    /// With `nats-url`: carry events between nodes through a JetStream
    /// stream. Off: NATS only signals, nodes poll the database.
    pub jetstream: bool,
    /// The stream's name; subjects are `STREAM.<topic>` and the nodes'
    /// shared durable consumer is `STREAM_dispatch`. Deployments sharing a
    /// NATS server need different names.
    pub stream: String,
    /// How long the stream keeps an event (the database keeps it for good).
    pub stream_max_age_secs: u64,
    /// Copies of the stream in a clustered NATS (1 on a single server).
    pub stream_replicas: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_attempts: 8,
            retry_base_ms: 1000,
            jetstream: true,
            stream: "TIANSHAN_EVENTS".into(),
            stream_max_age_secs: 7 * 24 * 3600,
            stream_replicas: 1,
        }
    }
}

impl EventsConfig {
    /// A stream name NATS accepts and that leaves room for `_dispatch`.
    pub fn check(&self) -> anyhow::Result<()> {
        let valid = !self.stream.is_empty()
            && self.stream.len() <= 64
            && self
                .stream
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            anyhow::bail!("events.stream {:?}: 1-64 of A-Z a-z 0-9 _ -", self.stream);
        }
        if !(1..=5).contains(&self.stream_replicas) {
            anyhow::bail!("events.stream-replicas: 1 to 5");
        }
        if self.max_attempts < 1 || self.retry_base_ms < 1 {
            anyhow::bail!("events.max-attempts and events.retry-base-ms must be at least 1");
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            nats_url: None,
            node_id: None,
            utc_offset_minutes: 480,
            max_body_bytes: 8 << 20,
            max_package_bytes: 64 << 20,
            runtime: RuntimeConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            events: EventsConfig::default(),
            files: FilesConfig::default(),
            audit: AuditConfig::default(),
            metrics: MetricsConfig::default(),
            telemetry: TelemetryConfig::default(),
            notifications: NotificationsConfig::default(),
        }
    }
}

/// Plugin sandbox limits. Manifests may ask for less or more than the
/// defaults, never more than the maxima.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeConfig {
    pub default_memory_mib: u64,
    pub max_memory_mib: u64,
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Plugin instances alive at once across all plugins; sizes the pool.
    pub max_concurrent_instances: u32,
    /// Granularity of deadlines and of yielding from busy plugins.
    pub epoch_tick_ms: u64,
    /// Fresh, never-used instances kept ready per plugin version (made in
    /// the background after a request takes one); 0 instantiates every
    /// request inline.
    pub prewarm_instances: usize,
    /// Calls of one plugin running at once (requests, events and jobs);
    /// past it a call waits up to `busy-wait-ms`, then gets `plugin_busy`.
    pub max_concurrent_per_plugin: u32,
    pub busy_wait_ms: u64,
    /// A call that has run this long counts as heavy: from then on it runs
    /// one epoch tick at a time, taking turns with the other heavy calls
    /// for `heavy-slots`, so long runners cannot take every core from
    /// short requests (and while short calls keep ending, each turn is
    /// followed by a rest twice its length).
    pub heavy_after_ms: u64,
    /// Heavy calls running at once; 0: half the cores (at least 1).
    pub heavy_slots: u32,
    /// Linear memory all plugin instances together may hold (MiB); past
    /// it, growth is refused and new calls get `memory_budget_exhausted`.
    /// 0: half of the machine's memory.
    pub memory_budget_mib: u64,
    /// Log lines (host log calls and stderr) one plugin may write per
    /// second, with bursts up to `log-burst`; the rest are dropped and
    /// counted in a summary line.
    pub log_lines_per_sec: u32,
    pub log_burst: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_memory_mib: 64,
            max_memory_mib: 512,
            default_timeout_ms: 5_000,
            max_timeout_ms: 60_000,
            max_concurrent_instances: 1_000,
            epoch_tick_ms: 10,
            prewarm_instances: 2,
            max_concurrent_per_plugin: 32,
            busy_wait_ms: 1_000,
            heavy_after_ms: 20,
            heavy_slots: 0,
            memory_budget_mib: 0,
            log_lines_per_sec: 100,
            log_burst: 1_000,
        }
    }
}

/// The kernel's database connections and the share plugins get.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseConfig {
    /// Connections for plugins' storage reads, apart from the kernel's own
    /// pool (which login, approvals and audit use); 0: 4 on SQLite, 8 on
    /// PostgreSQL.
    pub plugin_read_connections: usize,
    /// How many of those one plugin may hold at once; 0: half.
    pub plugin_read_connections_each: usize,
    /// How long a plugin read waits for a connection before failing as
    /// unavailable.
    pub plugin_read_wait_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            plugin_read_connections: 0,
            plugin_read_connections_each: 0,
            plugin_read_wait_ms: 5_000,
        }
    }
}

impl RuntimeConfig {
    /// Small pools so many test kernels fit in one process's address space.
    pub fn for_tests() -> Self {
        RuntimeConfig {
            max_concurrent_instances: 64,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthConfig {
    /// Lifetime of a bearer token or session from login.
    pub session_absolute_secs: u64,
    /// A session unused this long ends.
    pub session_idle_secs: u64,
    /// Addresses (or `addr/prefix` blocks) of the reverse proxies in front
    /// of this node: only their `X-Forwarded-For` names the client, for
    /// login throttling and the audit trail. Empty: the TCP peer is the
    /// client.
    pub trusted_proxies: Vec<crate::core::net::IpNet>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_absolute_secs: 12 * 3600,
            session_idle_secs: 30 * 60,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// `text` for people, `json` for log shippers.
    pub format: String,
    /// tracing filter directives; `RUST_LOG` overrides.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

impl Config {
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tianshan.db").display()))
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache").join("compiled")
    }

    /// The folder the data dir is in: where the audit key and anchors go by
    /// default, so they are not inside what a backup or a database copy
    /// carries.
    fn beside_data_dir(&self, name: &str) -> PathBuf {
        match self.data_dir.parent() {
            Some(parent) => parent.join(name),
            None => self.data_dir.join(name),
        }
    }

    pub fn audit_key_file(&self) -> PathBuf {
        if let Some(path) = std::env::var_os("TIANSHAN_AUDIT_KEY_FILE").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        self.audit
            .key_file
            .clone()
            .unwrap_or_else(|| self.beside_data_dir("tianshan-audit.key"))
    }

    pub fn audit_anchor_file(&self) -> PathBuf {
        self.audit.anchor_file.clone().unwrap_or_else(|| {
            let name = self
                .data_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "tianshan".into());
            // Beside the key: the one place kept apart from the data dir.
            let file = format!("{name}.audit-anchors");
            match self.audit_key_file().parent() {
                Some(dir) => dir.join(file),
                None => PathBuf::from(file),
            }
        })
    }

    /// The bearer token `/metrics` requires, if any.
    pub fn metrics_token(&self) -> Option<String> {
        std::env::var("TIANSHAN_METRICS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| self.metrics.token.clone())
    }
}

/// The algorithm of keyed records (the `alg` column); plain SHA-256
/// records from before keying have none.
pub const ALG_HMAC_SHA256: &str = "hmac-sha256";
/// HMAC over SM3 (GB/T 32905), for deployments assessed under 密评.
pub const ALG_HMAC_SM3: &str = "hmac-sm3";

/// The HMAC new records are signed with (`[audit] algorithm`). Each record
/// names its own, so a chain that changed algorithm still verifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Algorithm {
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    #[serde(rename = "hmac-sm3")]
    HmacSm3,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => ALG_HMAC_SHA256,
            Algorithm::HmacSm3 => ALG_HMAC_SM3,
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        [Algorithm::HmacSha256, Algorithm::HmacSm3]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tianshan.toml");
        let parsed = Config::from_file(&path).unwrap();
        let defaults = Config::default();
        assert_eq!(parsed.listen, defaults.listen);
        assert_eq!(parsed.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(parsed.max_package_bytes, defaults.max_package_bytes);
        assert_eq!(parsed.runtime.default_memory_mib, 64);
        assert_eq!(parsed.runtime.default_timeout_ms, 5_000);
        assert_eq!(
            parsed.runtime.max_memory_mib,
            defaults.runtime.max_memory_mib
        );
        assert_eq!(
            parsed.auth.session_idle_secs,
            defaults.auth.session_idle_secs
        );
    }

    #[test]
    fn the_example_config_documents_host_service_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tianshan.toml");
        let parsed = Config::from_file(&path).unwrap();
        let defaults = Config::default();
        assert_eq!(parsed.utc_offset_minutes, defaults.utc_offset_minutes);
        assert_eq!(parsed.events.max_attempts, defaults.events.max_attempts);
        assert_eq!(parsed.events.retry_base_ms, defaults.events.retry_base_ms);
        assert_eq!(parsed.events.jetstream, defaults.events.jetstream);
        assert_eq!(parsed.events.stream, defaults.events.stream);
        assert_eq!(
            parsed.events.stream_max_age_secs,
            defaults.events.stream_max_age_secs
        );
        assert_eq!(
            parsed.events.stream_replicas,
            defaults.events.stream_replicas
        );
        parsed.events.check().unwrap();
        assert_eq!(
            parsed.notifications.retention_days,
            defaults.notifications.retention_days
        );
        assert_eq!(
            parsed.notifications.webhook_timeout_secs,
            defaults.notifications.webhook_timeout_secs
        );
        assert!(parsed.notifications.webhook_url.is_none());
        assert_eq!(parsed.files.backend, defaults.files.backend);
        assert_eq!(parsed.files.max_bytes, defaults.files.max_bytes);
        let (s3, default_s3) = (&parsed.files.s3, &defaults.files.s3);
        assert_eq!(s3.region, default_s3.region);
        assert_eq!(s3.path_style, default_s3.path_style);
        assert_eq!(s3.prefix, default_s3.prefix);
        assert_eq!(s3.timeout_secs, default_s3.timeout_secs);
        assert!(s3.endpoint.is_none() && s3.secret_access_key.is_none());
        assert_eq!(
            parsed.audit.anchor_interval_secs,
            defaults.audit.anchor_interval_secs
        );
        assert!(parsed.audit.key_file.is_none() && parsed.metrics.token.is_none());
        assert!(parsed.metrics.listen.is_none());
    }

    #[test]
    fn the_cluster_node_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster/node.toml");
        let parsed = Config::from_file(&path).unwrap();
        assert!(parsed.database_url.unwrap().starts_with("postgres://"));
        assert!(parsed.nats_url.is_some());
        assert_eq!(parsed.files.backend, "database");
    }

    #[test]
    fn stream_names_are_checked() {
        let named = |stream: &str| EventsConfig {
            stream: stream.into(),
            ..Default::default()
        };
        assert!(named("TIANSHAN_EVENTS").check().is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(named(bad).check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_options_are_refused() {
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisten-port = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen-port"), "{err}");
    }
}
