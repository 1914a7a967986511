//! The kernel process: what one node holds ([`Kernel`]), how it opens a
//! data dir, and the background loops it starts.

pub mod backup;
pub mod reload;

use std::sync::Arc;

use crate::cluster;
use crate::core::config::Config;
use crate::db::Db;
use crate::identity::{auth, authz, orgs, users};
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeStats};
use crate::services::messaging::jetstream;
use crate::services::{
    approvals, datacenter, files, jobs, messaging, notifications, storage, telemetry,
};
use crate::{audit, db, plugins, runtime};

/// Everything one kernel process holds. Cheap to share (`Arc<Kernel>`).
pub struct Kernel {
    pub config: Config,
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub plugins: plugins::Plugins,
    pub auth: auth::Auth,
    pub authz: Arc<authz::Authz>,
    pub audit: Arc<audit::Audit>,
    pub storage: Arc<storage::Storage>,
    pub messaging: Arc<messaging::Messaging>,
    pub files: Arc<files::Files>,
    pub approvals: Arc<approvals::Approvals>,
    pub notifications: Arc<notifications::Notifications>,
    pub datacenter: Arc<datacenter::DataCenter>,
    pub telemetry: Arc<telemetry::Telemetry>,
    /// This node's name in logs and job claims.
    pub node_id: String,
    /// Signals to and from other nodes (NATS when configured).
    pub bus: Arc<cluster::Bus>,
    pub throttle: users::Throttle,
    pub metrics: Arc<Metrics>,
    pub root_org: String,
}

/// What opening a kernel found or created.
pub struct Opened {
    pub kernel: Arc<Kernel>,
    /// Set on first start when the admin password was generated: print it once.
    pub generated_admin_password: Option<String>,
}

impl Kernel {
    /// Opens the data dir: database (migrated), runtime, installed plugins,
    /// bootstrap admin.
    /// Opens with the host services `lib.rs` lists (`Kernel::open`).
    pub async fn assemble(
        config: Config,
        host_services: &[runtime::LinkHostService],
    ) -> anyhow::Result<Opened> {
        config.events.check()?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("creating data dir {}: {e}", config.data_dir.display()))?;
        let db = db::connect(&config.database_url()).await?;
        let node_id = config.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}:{}", host.trim(), std::process::id())
        });
        let bus = Arc::new(match &config.nats_url {
            Some(url) => cluster::Bus::connect(url, &node_id).await?,
            None => cluster::Bus::local(&node_id),
        });
        let metrics = Arc::new(Metrics::new());
        let stats = RuntimeStats {
            compilations: metrics.compilations.clone(),
            cache_hits: metrics.compile_cache_hits.clone(),
            log_dropped: metrics.plugin_log_dropped.clone(),
        };
        let runtime = Arc::new(Runtime::new(
            config.runtime.clone(),
            config.cache_dir(),
            stats,
            host_services,
        )?);
        let root_org = orgs::ensure_root(&db).await?;
        let auth = auth::Auth::new(db.clone(), config.auth.clone());
        let bootstrap = auth.ensure_bootstrap_admin(&root_org).await?;
        let audit_key_file = config.audit_key_file();
        let (audit_key, created) = audit::AuditKey::load_or_create(&audit_key_file)?;
        if created {
            tracing::warn!(file = %audit_key_file.display(), key_id = %audit_key.id,
                "created the audit key: keep a copy apart from the data dir's backups");
        }
        let audit_key = audit_key.with_algorithm(config.audit.algorithm);
        let audit = Arc::new(audit::Audit::keyed(db.clone(), audit_key));
        if bootstrap.is_some() {
            audit
                .record(
                    audit::Entry::new("system", "user.bootstrap", "ok")
                        .org(&root_org)
                        .target("admin")
                        .detail(serde_json::json!({ "role": authz::PLATFORM_ADMIN })),
                )
                .await;
        }
        let generated_admin_password = bootstrap.flatten();
        let authz = Arc::new(authz::Authz::new(db.clone()).await?);
        runtime.set_access_policy(Arc::new(authz::PluginAccess(authz.clone())));
        authz.set_bus(bus.clone());
        let storage = Arc::new(storage::Storage::new(db.clone(), audit.clone()));
        let messaging = Arc::new(messaging::Messaging::new(
            db.clone(),
            config.events.clone(),
            bus.clone(),
            bus.is_connected() && config.events.jetstream,
        ));
        let notifications = Arc::new(notifications::Notifications::new(
            db.clone(),
            audit.clone(),
            bus.clone(),
            &node_id,
            config.notifications.webhook_url.is_some(),
        ));
        let approvals = Arc::new(approvals::Approvals::new(
            db.clone(),
            audit.clone(),
            messaging.clone(),
            authz.clone(),
            notifications.clone(),
        ));
        let files = Arc::new(files::Files::new(
            db.clone(),
            &config.files,
            &config.data_dir,
            audit.clone(),
        )?);
        let datacenter = Arc::new(datacenter::DataCenter::new(db.clone(), audit.clone()));
        datacenter.seed_plan().await?;
        let telemetry = Arc::new(telemetry::Telemetry::new(
            db.clone(),
            audit.clone(),
            messaging.clone(),
            config.utc_offset_minutes,
            config.telemetry.raw_retention_days,
        ));
        // Before any reading arrives: see `prepare_partitions`.
        if let Err(e) = telemetry.prepare_partitions().await {
            tracing::warn!(error = %e, "telemetry partitions not prepared");
        }
        runtime.set_services(Arc::new(runtime::host::Services {
            files: files.clone(),
            storage: storage.clone(),
            messaging: messaging.clone(),
            approvals: approvals.clone(),
            datacenter: datacenter.clone(),
            telemetry: telemetry.clone(),
            authz: authz.clone(),
            root_org: root_org.clone(),
            reads: db::PluginReads::new(
                &config.database_url(),
                config.database.plugin_read_connections,
                config.database.plugin_read_connections_each,
                std::time::Duration::from_millis(config.database.plugin_read_wait_ms),
            ),
        }));
        let plugins = plugins::Plugins::new(
            db.clone(),
            runtime.clone(),
            authz.clone(),
            audit.clone(),
            config.max_package_bytes,
        );
        plugins.set_bus(bus.clone());
        let loaded = plugins.load_installed().await?;
        tracing::info!(plugins = loaded, data_dir = %config.data_dir.display(), "kernel opened");
        let throttle = users::Throttle::new(db.clone(), config.auth.trusted_proxies.clone());
        Ok(Opened {
            kernel: Arc::new(Kernel {
                audit,
                config,
                db,
                runtime,
                plugins,
                auth,
                authz,
                throttle,
                metrics,
                root_org,
                storage,
                messaging,
                files,
                approvals,
                notifications,
                datacenter,
                telemetry,
                node_id,
                bus,
            }),
            generated_admin_password,
        })
    }

    /// Starts what a serving node runs besides the gateway: the event
    /// dispatcher (and, with NATS, the JetStream relay and consumer), the
    /// job scheduler and the cluster watcher.
    pub fn start_background(self: &Arc<Self>) {
        let sink: Arc<dyn messaging::EventSink> = Arc::new(PluginEventSink(Arc::downgrade(self)));
        tokio::spawn(self.messaging.clone().run(sink.clone()));
        if let Some(client) = self.bus.client().filter(|_| self.config.events.jetstream) {
            tokio::spawn(jetstream::run(
                client.clone(),
                self.config.events.clone(),
                self.messaging.clone(),
                sink,
                self.metrics.stream.clone(),
            ));
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(jobs::run(
            self.db.clone(),
            self.messaging.clone(),
            move || {
                weak.upgrade()
                    .map(|k| k.scheduled_jobs())
                    .unwrap_or_default()
            },
            self.config.utc_offset_minutes,
            self.node_id.clone(),
        ));
        tokio::spawn(reload::watch(self.clone()));
        tokio::spawn(notifications::webhook::run(
            self.notifications.clone(),
            self.config.notifications.clone(),
        ));
        tokio::spawn(self.notifications.clone().listen());
        tokio::spawn(self.telemetry.clone().run());
        if let Some(addr) = self.config.telemetry.jt808_listen {
            let terminals = Arc::new(telemetry::Terminals808(self.telemetry.clone()));
            tokio::spawn(async move {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => {
                        tracing::info!(%addr, "JT/T 808 terminals connect here");
                        telemetry::jt808::serve(listener, terminals, std::future::pending()).await;
                    }
                    Err(e) => {
                        tracing::error!(%addr, error = %e, "JT/T 808 listen address unavailable")
                    }
                }
            });
        }
        if let Some(url) = &self.config.telemetry.mqtt_url {
            tokio::spawn(telemetry::mqtt::run(
                self.telemetry.clone(),
                url.clone(),
                self.config.telemetry.mqtt_topic.clone(),
                self.config.telemetry.mqtt_shared_group.clone(),
                self.mqtt_client_id(),
            ));
        }
        tokio::spawn(audit::run_anchors(
            self.db.clone(),
            self.config.audit_anchor_file(),
            std::time::Duration::from_secs(self.config.audit.anchor_interval_secs.max(1)),
            self.node_id.clone(),
        ));
        tokio::spawn(
            self.bus
                .clone()
                .listen(self.metrics.bus_signals_received.clone()),
        );
    }

    /// The MQTT client id: the same after a restart (the broker keeps the
    /// session and its unacknowledged messages for it), different for each
    /// node — the configured node id, else this host and data dir.
    fn mqtt_client_id(&self) -> String {
        use sha2::Digest;
        let raw = match &self.config.node_id {
            Some(node) => format!("tianshan-{node}"),
            None => {
                let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
                let dir = std::fs::canonicalize(&self.config.data_dir)
                    .unwrap_or_else(|_| self.config.data_dir.clone());
                let digest = sha2::Sha256::digest(dir.to_string_lossy().as_bytes());
                format!("tianshan-{}-{}", host.trim(), &hex::encode(digest)[..12])
            }
        };
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect()
    }

    /// The jobs of every enabled plugin.
    pub fn scheduled_jobs(&self) -> Vec<jobs::Job> {
        self.plugins
            .list()
            .iter()
            .filter(|p| p.enabled())
            .flat_map(|p| {
                p.manifest.jobs.iter().filter_map(|j| {
                    Some(jobs::Job {
                        plugin: p.manifest.id.clone(),
                        name: j.name.clone(),
                        schedule: j.schedule.parse().ok()?,
                    })
                })
            })
            .collect()
    }
}

/// Hands dispatched events to the subscribing plugin's event handler.
struct PluginEventSink(std::sync::Weak<Kernel>);

impl messaging::EventSink for PluginEventSink {
    fn deliver(
        &self,
        subscriber: &str,
        event: messaging::Delivered,
    ) -> futures_util::future::BoxFuture<'_, Result<(), String>> {
        let subscriber = subscriber.to_string();
        Box::pin(async move {
            let kernel = self.0.upgrade().ok_or("the kernel is shutting down")?;
            let plugin = kernel
                .plugins
                .get(&subscriber)
                .filter(|p| p.enabled())
                .ok_or_else(|| format!("plugin {subscriber} is not installed or is disabled"))?;
            let started = std::time::Instant::now();
            let outcome = kernel
                .runtime
                .deliver_event(
                    &plugin.component,
                    runtime::PluginEvent {
                        id: event.id,
                        topic: event.topic.clone(),
                        key: event.key,
                        org: event.org,
                        source: event.source,
                        payload: event.payload,
                    },
                )
                .await;
            let outcome = match outcome {
                Ok(inner) => inner,
                Err(failure) => Err(failure.to_api_error(&subscriber).message),
            };
            tracing::debug!(plugin = %subscriber, topic = %event.topic,
                ms = started.elapsed().as_millis() as u64, ok = outcome.is_ok(), "delivered event");
            outcome
        })
    }
}
